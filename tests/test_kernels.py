"""Kernel toolchain: compile cache, file lock, prebuilt modules, broken sources. Real compiler."""

from __future__ import annotations

import json
import logging
import os
import re
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
        source_dir(load_settings(environ={})),
        mojo_compiler,
        _settings(SYNAPSE_TARGET_CPU="x86-64-v3"),
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
    kernel.write_text(
        re.sub(r"comptime ABI_VERSION = \d+", "comptime ABI_VERSION = 999", kernel.read_text())
    )
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
    proc = run_cli(
        "kernels", "build", "--out", str(out), env={"SYNAPSE_KERNEL_CACHE": str(tmp_path / "c1")}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "pattern_search.so").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["artefacts"]["pattern_search"]["sha256"]
        == kernels_module.file_sha256(out / "pattern_search.so")[1]
    )
    handle = load_kernel("pattern_search", _settings(SYNAPSE_KERNEL_DIR=str(out)))
    assert handle.origin == "prebuilt" and handle.path == str(out / "pattern_search.so")

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pattern_search.so").write_bytes(b"not an ELF file")
    handle = load_kernel(
        "pattern_search",
        _settings(SYNAPSE_KERNEL_DIR=str(bad), SYNAPSE_KERNEL_CACHE=str(tmp_path / "c2")),
    )
    assert handle.loaded and handle.origin == "compiled"
    assert any("prebuilt" in a and "bad" in a for a in handle.attempts)


# --------------------------------------------------------------------------------------------
# Damaged modules: verified before import, probed in a child, rebuilt or refused (issue 14.3)
# --------------------------------------------------------------------------------------------


def _session_entry(kernel_cache: Path, compiler) -> Path:
    """The session cache's entry (pattern_search built there by the ``search_kernel`` fixture)."""
    settings = _settings(SYNAPSE_KERNEL_CACHE=str(kernel_cache))
    return kernel_cache / kernels_module.cache_key(source_dir(settings), compiler, settings)


def _copy_entry(entry: Path, cache: Path) -> Path:
    shutil.copytree(entry, cache / entry.name, ignore=shutil.ignore_patterns("*.lock", ".*"))
    return cache / entry.name / "pattern_search.so"


def _replace_with(path: Path, data: bytes) -> None:
    # A new file under the old name, never an in-place write: this test process may have the
    # old file mapped (a loaded module), and truncating a mapped file kills its owner with
    # SIGBUS when a page beyond the new end is touched -- here, at interpreter exit.
    tmp = path.with_name(path.name + ".damaged")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    _replace_with(path, data[: len(data) // 3])


def _flip_code_bytes(path: Path) -> None:
    """Inverts 256 bytes in the middle of the first third of the file (inside .text)."""
    data = bytearray(path.read_bytes())
    at = len(data) // 6
    data[at : at + 256] = bytes(b ^ 0xFF for b in data[at : at + 256])
    _replace_with(path, bytes(data))


def _doctor(cache: Path, **env: str) -> dict:
    proc = run_cli(
        "doctor", "--json", "--no-smoke", env={"SYNAPSE_KERNEL_CACHE": str(cache), **env}
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    )
    return json.loads(proc.stdout)["features"]["pattern_search"]


@pytest.mark.parametrize(
    "damage,reason",
    [(_truncate, "bytes"), (_flip_code_bytes, "SHA-256")],
    ids=["truncated", "flipped-code-bytes"],
)
def test_a_damaged_cache_entry_is_rebuilt_not_fatal(
    search_kernel, mojo_compiler, kernel_cache, tmp_path, damage, reason
):
    """Once: exit 135 (SIGBUS) on every command for a truncated entry, with nothing printed."""
    so = _copy_entry(_session_entry(kernel_cache, mojo_compiler), tmp_path / "cache")
    assert kernels_module.sidecar_path(so).is_file()
    damage(so)
    status = _doctor(tmp_path / "cache")
    assert status["kernel_loaded"] and status["kernel_origin"] == "compiled", status
    notes = " ".join(status["kernel_notes"])
    assert "damaged" in notes and reason in notes and "rebuilding" in notes
    assert status["self_check"].startswith("passed") and status["active_runtime"] == "mojo"
    again = _doctor(tmp_path / "cache")  # the rebuilt entry is used as it is
    assert again["kernel_origin"] == "cache" and not again["kernel_notes"]


def test_an_entry_without_a_record_is_probed_in_a_child_first(
    search_kernel, mojo_compiler, kernel_cache, tmp_path
):
    """An entry from before the records (or whose record was lost) cannot be checked against a
    digest: a child process imports it first, takes the SIGBUS, and the entry is rebuilt."""
    so = _copy_entry(_session_entry(kernel_cache, mojo_compiler), tmp_path / "cache")
    kernels_module.sidecar_path(so).unlink()
    _truncate(so)
    proc = run_cli(
        "doctor",
        "--no-smoke",
        env={"SYNAPSE_KERNEL_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "SIGBUS" in proc.stdout and "rebuilding" in proc.stdout  # the doctor's kernel note
    record = json.loads(kernels_module.sidecar_path(so).read_text())
    assert record["size"] == so.stat().st_size


def test_prebuilt_modules_are_verified_against_their_manifest(
    search_kernel, mojo_compiler, kernel_cache, tmp_path
):
    good = _session_entry(kernel_cache, mojo_compiler) / "pattern_search.so"
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    so = prebuilt / "pattern_search.so"
    settings = _settings(SYNAPSE_KERNEL_DIR=str(prebuilt), SYNAPSE_KERNEL_CACHE=str(kernel_cache))

    def load(expect_refusal: str | None):
        handle = load_kernel("pattern_search", settings)
        assert handle.loaded, handle.error
        if expect_refusal is None:
            assert handle.origin == "prebuilt", handle.attempts
        else:  # refused with the reason, then the (verified) compile cache answered
            assert handle.origin == "cache"
            assert any(expect_refusal in a and str(so) in a for a in handle.attempts), (
                handle.attempts
            )

    shutil.copyfile(good, so)
    load("unverified: no manifest.json")
    kernels_module.record_prebuilt(prebuilt, "pattern_search", mojo_compiler, "")
    load(None)
    _flip_code_bytes(so)
    load("damaged: SHA-256")
    # A module that matches its manifest but crashes on import (damaged before the manifest
    # was written, or built for another CPU): the probe process takes the crash.
    _truncate(so)
    kernels_module.record_prebuilt(prebuilt, "pattern_search", mojo_compiler, "")
    load("SIGBUS")


def test_a_warm_start_hashes_each_module_once(
    search_kernel, mojo_compiler, kernel_cache, monkeypatch
):
    hashed: list[str] = []
    real = kernels_module.hashlib.file_digest

    def counting(f, digest):
        hashed.append(f.name)
        return real(f, digest)

    monkeypatch.setattr(kernels_module.hashlib, "file_digest", counting)
    monkeypatch.setattr(kernels_module, "_digests", {})
    for _ in range(3):
        assert (
            load_kernel("pattern_search", _settings(SYNAPSE_KERNEL_CACHE=str(kernel_cache))).origin
            == "cache"
        )
    assert len(hashed) == 1, hashed


def test_kernels_build_reports_compiler_errors(mojo_compiler, tmp_path):
    src = _copy_sources(tmp_path)
    kernel = src / "pattern_search.mojo"
    kernel.write_text(kernel.read_text() + "\ndef broken(:\n")
    proc = run_cli(
        "kernels",
        "build",
        "--name",
        "pattern_search",
        "--out",
        str(tmp_path / "o"),
        env={"SYNAPSE_KERNEL_SOURCE": str(src)},
    )
    assert proc.returncode == 1
    assert "pattern_search" in proc.stderr and "error" in proc.stderr


def test_no_compiler_means_python(monkeypatch, tmp_path):
    """Stand-in for a platform without Mojo wheels (cannot be produced on this machine):
    the loader is told no compiler exists and must report it, not raise."""
    monkeypatch.setattr(
        kernels_module,
        "find_compiler",
        lambda refresh=False: Compiler(None, None, error="no Mojo compiler found: test"),
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
