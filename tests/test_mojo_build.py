"""The one Mojo build tool (runtime/mojo_build.py, its command line runtime/mojo_build_cli.py):
discovery, command lines, targets, and a real build of a small source tree (an extension module,
a program, a helper module) with the real compiler, run as the script the Nix derivation and the
cross build use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_mojo.runtime import mojo_build
from synapse_mojo.runtime.mojo_build import MojoBuildError, Target

from .conftest import REPO

SCRIPT = REPO / "python" / "synapse_mojo" / "runtime" / "mojo_build_cli.py"

EXTENSION = """
from std.os import abort
from std.python import PythonObject
from std.python.bindings import PythonModuleBuilder


def answer() -> PythonObject:
    return PythonObject(42)


@export
def PyInit_tiny() abi("C") -> PythonObject:
    try:
        var m = PythonModuleBuilder("tiny")
        m.def_function[answer]("answer", docstring="The answer.")
        return m.finalize()
    except e:
        abort(String("failed to create module tiny: ", e))
"""

PROGRAM = '''"""A tiny program.

Smoke: 7 "two words"
"""
from std.sys import argv

from bench.helper import double


def main() raises:
    var args = argv()
    print('{"n": ', double(Int(args[1])), ', "argc": ', len(args), "}")
'''

HELPER = """def double(x: Int) -> Int:
    return 2 * x
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "mojo"
    (src / "bench").mkdir(parents=True)
    (src / "tiny.mojo").write_text(EXTENSION)
    (src / "not_a_module.mojo").write_text("def helper() -> Int:\n    return 1\n")
    (src / "bench" / "prog.mojo").write_text(PROGRAM)
    (src / "bench" / "helper.mojo").write_text(HELPER)
    (src / "bench" / "__init__.mojo").write_text("")
    return src


def test_discovery_separates_modules_programs_and_helpers(tree):
    assert mojo_build.extension_modules(tree) == ["tiny"]
    assert mojo_build.standalone_programs(tree) == ["prog"]
    assert mojo_build.smoke_args(tree / "bench" / "prog.mojo") == ["7", "two words"]
    assert mojo_build.smoke_args(tree / "bench" / "helper.mojo") is None
    plan = mojo_build.plan(tree, Path("/out"))
    assert [(a.name, a.kind, str(a.output)) for a in plan] == [
        ("tiny", "shared-lib", "/out/tiny.so"),
        ("prog", "exe", "/out/bin/prog"),
    ]
    with pytest.raises(MojoBuildError, match=r"unknown artefact\(s\) \['nope'\]"):
        mojo_build.plan(tree, Path("/out"), names=["nope"])


def test_the_repository_sources_are_discovered():
    src = REPO / "mojo"
    assert "pattern_search" in mojo_build.extension_modules(src)
    assert "kernel_support" not in mojo_build.extension_modules(src)


def test_portable_targets_per_architecture():
    assert Target.portable("x86_64-unknown-linux-gnu") == Target(
        "x86_64-unknown-linux-gnu", "x86-64-v3"
    )
    assert Target.portable("aarch64-unknown-linux-gnu").cpu == "neoverse-n1"
    assert Target.portable("arm64-apple-darwin").cpu == "neoverse-n1"
    assert Target.portable(None).arch == mojo_build.host_arch()
    with pytest.raises(MojoBuildError, match="no portable CPU known for architecture 'riscv64'"):
        Target.portable("riscv64-unknown-linux-gnu")
    assert Target("aarch64-unknown-linux-gnu").is_cross == (mojo_build.host_arch() != "aarch64")


def test_command_lines():
    cmd = mojo_build.mojo_command(
        "mojo",
        Path("src/k.mojo"),
        Path("out/k.so"),
        kind="shared-lib",
        include=[Path("src")],
        target=Target("aarch64-unknown-linux-gnu", "neoverse-n1"),
    )
    assert cmd == [
        "mojo",
        "build",
        "--target-triple",
        "aarch64-unknown-linux-gnu",
        "--target-cpu",
        "neoverse-n1",
        "-I",
        "src",
        "src/k.mojo",
        "--emit",
        "shared-lib",
        "-o",
        "out/k.so",
    ]
    exe = mojo_build.mojo_command("mojo", Path("p.mojo"), Path("p"), kind="exe")
    assert exe == ["mojo", "build", "p.mojo", "-o", "p"]
    with pytest.raises(ValueError, match="kind must be"):
        mojo_build.mojo_command("mojo", Path("p.mojo"), Path("p"), kind="object")


def test_toolchain_environment(tmp_path):
    root = tmp_path / "modular"
    (root / "lib" / "mojo").mkdir(parents=True)
    env = mojo_build.toolchain_env({"HOME": "/h"}, linker_driver="sh", runtime_root=root)
    assert Path(env["MODULAR_MOJO_MAX_LINKER_DRIVER"]).is_absolute()
    assert env["MODULAR_MOJO_MAX_PACKAGE_ROOT"] == str(root.resolve())
    assert env["MODULAR_MOJO_MAX_IMPORT_PATH"] == str(root.resolve() / "lib" / "mojo")
    with pytest.raises(MojoBuildError, match="not found or not executable"):
        mojo_build.toolchain_env({}, linker_driver="no-such-linker-driver")
    with pytest.raises(MojoBuildError, match="has no lib/ directory"):
        mojo_build.toolchain_env({}, runtime_root=tmp_path / "empty")


def test_compiler_noise_is_dropped_and_the_first_error_found():
    out = mojo_build.clean_output(
        "Failed to initialize Crashpad.  Crash reporting will not be available.\n"
        "a.mojo:1:1: error: boom\nmore"
    )
    assert out == "a.mojo:1:1: error: boom\nmore"
    assert mojo_build.first_error(out) == "a.mojo:1:1: error: boom"


def _script(*args: str) -> subprocess.CompletedProcess:
    # Run as the Nix derivation does: a plain interpreter and the file, no package import.
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *args], capture_output=True, text=True, timeout=900
    )


def test_script_reports_bad_usage_without_a_traceback(tree, tmp_path):
    proc = _script("--src", str(tree), "--out", str(tmp_path / "o"), "--mojo", "/no/such/mojo")
    assert proc.returncode == 2 and "error: mojo at /no/such/mojo does not run" in proc.stderr
    proc = _script(
        "--src",
        str(tree),
        "--out",
        str(tmp_path / "o"),
        "--target-triple",
        "riscv64-unknown-linux-gnu",
    )
    assert proc.returncode == 2 and "no portable CPU known" in proc.stderr
    proc = _script("--src", str(tree), "--out", str(tmp_path / "o"), "--list")
    assert (
        proc.returncode == 0
        and "shared-lib tiny" in proc.stdout
        and "exe        prog" in proc.stdout
    )
    assert "Traceback" not in proc.stderr


def test_script_builds_runs_and_records_everything(mojo_compiler, tree, tmp_path):
    out = tmp_path / "out"
    proc = _script("--src", str(tree), "--out", str(out), "--mojo", mojo_compiler.path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    arch = mojo_build.host_arch()
    assert manifest["target_cpu"] == mojo_build.PORTABLE_CPUS[arch]
    assert manifest["target_triple"] == mojo_build.TRIPLES[arch]
    assert set(manifest["artefacts"]) == {"tiny", "prog"}
    assert manifest["artefacts"]["prog"]["smoke_args"] == ["7", "two words"]
    assert (out / "tiny.so").is_file() and (out / "bin" / "prog").is_file()

    # The extension module imports in this interpreter.
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("tiny", str(out / "tiny.so"))
    spec = importlib.util.spec_from_file_location("tiny", str(out / "tiny.so"), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.answer() == 42

    # The program runs with its declared smoke arguments; its JSON output is saved.
    saved = tmp_path / "results"
    proc = _script("--run-smoke", "--out", str(out), "--save-json", str(saved))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((saved / "prog.json").read_text()) == {"n": 14, "argc": 3}


def test_a_compile_error_fails_the_build_with_the_compiler_message(mojo_compiler, tree, tmp_path):
    (tree / "tiny.mojo").write_text(EXTENSION + "\ndef broken(:\n")
    proc = _script(
        "--src",
        str(tree),
        "--out",
        str(tmp_path / "o"),
        "--mojo",
        mojo_compiler.path,
        "--kernels-only",
    )
    assert proc.returncode == 1
    assert "FAILED: mojo build tiny failed" in proc.stderr and "error:" in proc.stderr
    assert "1 of 1 failed: tiny" in proc.stderr


def test_a_failing_program_fails_the_smoke_run(tmp_path):
    out = tmp_path / "out"
    (out / "bin").mkdir(parents=True)
    prog = out / "bin" / "bad"
    prog.write_text("#!/bin/sh\necho oops >&2\nexit 3\n")
    prog.chmod(0o755)
    (out / "manifest.json").write_text(
        json.dumps({"artefacts": {"bad": {"kind": "exe", "path": "bin/bad", "smoke_args": []}}})
    )
    proc = _script("--run-smoke", "--out", str(out))
    assert proc.returncode == 1 and "FAILED: bad exited 3" in proc.stderr
    proc = _script("--run-smoke", "--out", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "build first" in proc.stderr
