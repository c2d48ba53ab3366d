"""The console script, run as a user runs it (subprocesses, real kernels)."""

from __future__ import annotations

import json

from .conftest import run_cli


def _numpy_answers(crossovers: dict, work: int) -> bool:
    return any(low <= work < (high or 1 << 62) for low, high in crossovers["numpy_ranges"])


def test_doctor_reports_mojo_healthy(search_kernel, kernel_cache):
    proc = run_cli("doctor", "--json", env={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)})
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["compiler"]["version"].startswith("Mojo")
    search = status["features"]["pattern_search"]
    assert search["active_runtime"] == "mojo"
    assert search["kernel_loaded"] and search["self_check"].startswith("passed")
    assert search["auto_disabled"] is None and search["force_python"] is False
    # The smoke workload (20,000 x 384) ran on Mojo unless the shipped crossovers give it to NumPy.
    smoke_on_numpy = _numpy_answers(status["search_dispatch"]["shipped"], 20_000 * 384)
    assert search["metrics"]["calls"]["python" if smoke_on_numpy else "mojo"] > 0
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
        "demo",
        "--n",
        "3000",
        "--queries",
        "5",
        "--python-queries",
        "1",
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


def _one_error_line(proc, prefix: str = "error: ") -> str:
    """Exit 2, no traceback, one error line, not wrapped at the 80 columns of a non-terminal."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(prefix)]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_demo_rejects_bad_numbers_before_running_anything():
    """``demo --n -1`` ran the whole demo (pattern map, router) before a traceback."""
    for args, option in (
        (["--n", "-1"], "--n"),
        (["--n", "2"], "--n"),
        (["--top-k", "0"], "--top-k"),
        (["--seed", "-1"], "--seed"),
        (["--router-messages", "0"], "--router-messages"),
    ):
        proc = run_cli("demo", *args, timeout=60)
        line = _one_error_line(proc, prefix="Error: ")
        assert option in line and proc.stdout == ""


def test_kernels_check_names_an_unknown_kernel():
    proc = run_cli("kernels", "check", "--name", "no_such_kernel")
    line = _one_error_line(proc, prefix="Error: ")
    assert (
        "unknown kernel(s) no_such_kernel" in line
        and "pattern_search" in line
        and "message_router" in line
    )
    assert "self-check failed" not in proc.stderr


def test_error_lines_do_not_wrap(tmp_path):
    deep = tmp_path / ("a-directory-with-a-long-name-" * 3) / "patterns.db"
    proc = run_cli("patterns", "stats", "--store", f"sqlite:///{deep}", env={"COLUMNS": "80"})
    line = _one_error_line(proc)
    assert f"no store at {deep}" in line and len(line) > 80


def test_the_neo4j_drivers_own_error_line_is_not_printed():
    """The driver logged "ERROR Unable to retrieve routing information" before our line."""
    from .servers import free_port

    proc = run_cli("patterns", "stats", "--store", f"neo4j://127.0.0.1:{free_port()}")
    line = _one_error_line(proc)
    assert "unavailable" in line
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == [line]


def test_bench_search_with_json_writes_its_markdown_beside_it(kernel_cache, tmp_path):
    """``--json FILE`` without ``--out``: the markdown goes beside FILE; nothing is written
    into bench-results/ under the working directory."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env["SYNAPSE_KERNEL_CACHE"] = str(kernel_cache)
    proc = subprocess.run(
        [
            "synapse-mojo",
            "bench",
            "search",
            "--n",
            "50",
            "--dim",
            "8",
            "--backends",
            "numpy",
            "--queries",
            "5",
            "--batch-size",
            "1",
            "--json",
            "results/run.json",
            "--no-plots",
            "--no-memory",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "results" / "run.json").read_text())["suite"] == "search"
    assert (tmp_path / "results" / "search.md").is_file()
    assert not (tmp_path / "bench-results").exists()
