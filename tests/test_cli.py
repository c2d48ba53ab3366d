"""The console script, run as a user runs it (subprocesses, real kernels)."""

from __future__ import annotations

import json

from .conftest import run_cli


def test_doctor_reports_mojo_healthy(search_kernel, kernel_cache):
    proc = run_cli("doctor", "--json", env={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)})
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["compiler"]["version"].startswith("Mojo")
    search = status["features"]["pattern_search"]
    assert search["active_runtime"] == "mojo"
    assert search["kernel_loaded"] and search["self_check"].startswith("passed")
    assert search["auto_disabled"] is None and search["force_python"] is False
    assert search["metrics"]["calls"]["mojo"] > 0  # the smoke workload ran on Mojo
    assert status["features"]["vector_engine"]["active_runtime"] == "mojo"


def test_doctor_with_force_python(search_kernel, kernel_cache):
    env = {"SYNAPSE_KERNEL_CACHE": str(kernel_cache), "SYNAPSE_FORCE_PYTHON": "1"}
    status = json.loads(run_cli("doctor", "--json", env=env).stdout)
    search = status["features"]["pattern_search"]
    assert search["force_python"] is True and search["active_runtime"] == "python"
    assert search["metrics"]["calls"]["mojo"] == 0 and search["metrics"]["calls"]["python"] > 0
    human = run_cli("doctor", "--no-smoke", env=env)
    assert human.returncode == 0 and "force python" in human.stdout


def test_doctor_prometheus(search_kernel, kernel_cache):
    proc = run_cli("doctor", "--prometheus", env={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)})
    assert proc.returncode == 0
    assert "synapse_calls_total" in proc.stdout


def test_demo_runs_small(search_kernel, kernel_cache, tmp_path):
    proc = run_cli(
        "demo", "--n", "3000", "--queries", "5", "--python-queries", "1",
        # The demo's pattern store lives under the user data dir: keep it in the test's tmp.
        env={"SYNAPSE_KERNEL_CACHE": str(kernel_cache), "XDG_DATA_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "answered by" in proc.stdout and "mojo" in proc.stdout
    assert "numpy" in proc.stdout and "python" in proc.stdout


def test_bad_config_is_a_clean_error(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("[features]\npattern_search = 'fast'\n")
    proc = run_cli("doctor", "--no-smoke", env={"SYNAPSE_CONFIG": str(bad)})
    assert proc.returncode == 2
    assert "error" in proc.stderr and "Traceback" not in proc.stderr
