"""Kernel toolchain: compile cache, file lock, prebuilt modules, broken sources. Real compiler."""

from __future__ import annotations

import json
import re
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from synapse_mojo import PatternIndex, Runtime, load_settings
from synapse_mojo.runtime import kernels as kernels_module
from synapse_mojo.runtime.kernels import Compiler, load_kernel, source_dir

from .conftest import REPO, run_cli


def _settings(**env: str):
    return load_settings(environ=env)


def _copy_sources(tmp_path: Path) -> Path:
    src = tmp_path / "mojo-src"
    shutil.copytree(source_dir(load_settings(environ={})), src)
    return src


def test_compiles_once_then_loads_from_cache(mojo_compiler, tmp_path):
    cache = tmp_path / "cache"
    first = load_kernel("pattern_search", _settings(SYNAPSE_KERNEL_CACHE=str(cache)))
    assert first.loaded and first.origin == "compiled", first.error
    assert first.build_seconds and first.build_seconds > 0
    second = load_kernel("pattern_search", _settings(SYNAPSE_KERNEL_CACHE=str(cache)))
    assert second.loaded and second.origin == "cache" and second.path == first.path
    entry = Path(first.path).parent
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["compiler"] == mojo_compiler.version
    assert "pattern_search" in meta["kernels"]
    # The key changes with the target CPU: a different target means a different entry.
    other = kernels_module.cache_key(
        source_dir(load_settings(environ={})), mojo_compiler, _settings(SYNAPSE_TARGET_CPU="x86-64-v3")
    )
    assert other != entry.name


def test_broken_source_falls_back_with_the_compiler_message(mojo_compiler, tmp_path, caplog):
    src = _copy_sources(tmp_path)
    kernel = src / "pattern_search.mojo"
    kernel.write_text(kernel.read_text() + "\ndef broken(:\n    this is not mojo\n")
    env = {"SYNAPSE_KERNEL_SOURCE": str(src), "SYNAPSE_KERNEL_CACHE": str(tmp_path / "cache")}
    with caplog.at_level(logging.ERROR, logger="synapse_mojo.kernels"):
        runtime = Runtime(_settings(**env))
        index = PatternIndex(4, runtime=runtime)
        index.upsert(["a", "b"], [[1, 0, 0, 0], [0, 1, 0, 0]])
        result = index.search_detailed([1, 0, 0, 0], top_k=1)
    assert result.hits[0].id == "a" and result.runtime == "python"
    assert result.fallback_reason is None  # auto mode: Python is the expected answer
    handle = runtime.kernel_handle("pattern_search")
    assert not handle.loaded
    assert "mojo build pattern_search failed" in handle.error
    assert "pattern_search.mojo" in handle.compiler_output and "error" in handle.compiler_output
    assert "failed to compile" in caplog.text and "error" in caplog.text
    status = runtime.feature("pattern_search").status()
    assert status["active_runtime"] == "python" and "unavailable" in status["self_check"]
    # In mode "on" the caller asked for Mojo: the same answer, recorded as a fallback.
    runtime_on = Runtime(_settings(SYNAPSE_FEATURE_PATTERN_SEARCH="on", **env))
    index_on = PatternIndex(4, runtime=runtime_on)
    index_on.upsert(["a"], [[1, 0, 0, 0]])
    assert index_on.search_detailed([1, 0, 0, 0]).fallback_reason == "kernel_unavailable"


def test_abi_mismatch_is_rejected(mojo_compiler, tmp_path):
    src = _copy_sources(tmp_path)
    kernel = src / "pattern_search.mojo"
    kernel.write_text(re.sub(r"comptime ABI_VERSION = \d+", "comptime ABI_VERSION = 999", kernel.read_text()))
    handle = load_kernel(
        "pattern_search",
        _settings(SYNAPSE_KERNEL_SOURCE=str(src), SYNAPSE_KERNEL_CACHE=str(tmp_path / "cache")),
    )
    assert not handle.loaded
    assert "kernel ABI 999" in handle.error


_RACE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from synapse_mojo import load_settings
    from synapse_mojo.runtime.kernels import load_kernel

    barrier = Path(sys.argv[1])
    with open(barrier, "a") as f:
        f.write(f"{os.getpid()}\\n")
    while len(barrier.read_text().split()) < 2:   # start together
        time.sleep(0.01)
    started = time.time()
    handle = load_kernel("pattern_search", load_settings())
    print(json.dumps({"pid": os.getpid(), "origin": handle.origin, "error": handle.error,
                      "started": started, "finished": time.time(),
                      "ok": handle.module.kernel_info()["abi_version"] if handle.module else None}))
    """
)


def test_two_processes_starting_together_compile_once(mojo_compiler, tmp_path):
    cache = tmp_path / "cache"
    barrier = tmp_path / "barrier"
    barrier.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env["SYNAPSE_KERNEL_CACHE"] = str(cache)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE_SCRIPT, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["origin"] for o in outputs) == ["cache", "compiled"], outputs
    assert all(o["ok"] == kernels_module.KERNEL_ABI["pattern_search"] for o in outputs)
    compiled = next(o for o in outputs if o["origin"] == "compiled")
    waited = next(o for o in outputs if o["origin"] == "cache")
    # They really overlapped: the second started before the first finished compiling.
    assert waited["started"] < compiled["finished"]
    meta = json.loads(next(cache.glob("*/meta.json")).read_text())
    assert meta["kernels"]["pattern_search"]["pid"] == compiled["pid"]
    assert len(list(cache.glob("*/pattern_search.so"))) == 1


def test_prebuilt_directory_is_preferred_and_bad_files_are_skipped(mojo_compiler, tmp_path):
    out = tmp_path / "prebuilt"
    proc = run_cli("kernels", "build", "--out", str(out), env={"SYNAPSE_KERNEL_CACHE": str(tmp_path / "c1")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "pattern_search.so").is_file()
    handle = load_kernel("pattern_search", _settings(SYNAPSE_KERNEL_DIR=str(out)))
    assert handle.origin == "prebuilt" and handle.path == str(out / "pattern_search.so")

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pattern_search.so").write_bytes(b"not an ELF file")
    handle = load_kernel(
        "pattern_search", _settings(SYNAPSE_KERNEL_DIR=str(bad), SYNAPSE_KERNEL_CACHE=str(tmp_path / "c2"))
    )
    assert handle.loaded and handle.origin == "compiled"
    assert any("prebuilt" in a and "bad" in a for a in handle.attempts)


def test_kernels_build_reports_compiler_errors(mojo_compiler, tmp_path):
    src = _copy_sources(tmp_path)
    kernel = src / "pattern_search.mojo"
    kernel.write_text(kernel.read_text() + "\ndef broken(:\n")
    proc = run_cli(
        "kernels", "build", "--name", "pattern_search", "--out", str(tmp_path / "o"),
        env={"SYNAPSE_KERNEL_SOURCE": str(src)},
    )
    assert proc.returncode == 1
    assert "pattern_search" in proc.stderr and "error" in proc.stderr


def test_no_compiler_means_python(monkeypatch, tmp_path):
    """Stand-in for a platform without Mojo wheels (cannot be produced on this machine):
    the loader is told no compiler exists and must report it, not raise."""
    monkeypatch.setattr(
        kernels_module, "find_compiler", lambda refresh=False: Compiler(None, None, error="no Mojo compiler found: test")
    )
    handle = load_kernel("pattern_search", _settings(SYNAPSE_KERNEL_CACHE=str(tmp_path)))
    assert not handle.loaded and "no Mojo compiler" in handle.error
    monkeypatch.setattr("synapse_mojo.runtime.adapter.find_compiler", kernels_module.find_compiler)
    runtime = Runtime(_settings(SYNAPSE_KERNEL_CACHE=str(tmp_path)))
    index = PatternIndex(3, runtime=runtime)
    index.upsert(["a"], [[1, 2, 3]])
    assert index.search_detailed([1, 2, 3]).runtime == "python"


def test_compiler_is_present_under_ci(mojo_compiler):
    """Under CI=true the `mojo_compiler` fixture fails rather than skips when Mojo is missing."""
    assert mojo_compiler.version.startswith("Mojo")
    assert (REPO / "mojo" / "pattern_search.mojo").is_file()
    assert np  # keep the import used for readers copying these tests
