"""The Nix side, as far as it can be checked here: the SDK pins agree with uv.lock, every .nix
file parses, and flake.nix evaluates with stand-in inputs for both systems (nixpkgs and the uv2nix
stack cannot be fetched here; nix/tests/ holds the stand-ins). The negative cases make sure the
evaluation would catch the mistakes it is meant to catch."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO
from .servers import require

NIX_FILES = sorted([REPO / "flake.nix", *REPO.glob("nix/**/*.nix")])


def _load_sources_tool():
    spec = importlib.util.spec_from_file_location("mojo_sdk_sources", REPO / "nix/mojo-sdk/sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sources = _load_sources_tool()


@pytest.fixture(scope="module")
def nix_instantiate() -> str:
    path = shutil.which("nix-instantiate")
    require(path is not None, "nix-instantiate", "apt-get install nix-bin (nix/offline-checks.sh does)")
    return path  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------
# sources.json
# ------------------------------------------------------------------------------------------


def test_sources_pin_the_uv_lock_wheels_for_both_linux_systems():
    data = sources.load_sources()
    assert sorted(data["systems"]) == ["aarch64-linux", "x86_64-linux"]
    assert sources.check_against_uv_lock(data) == []
    for _label, wheel in sources.pinned_wheels(data):
        assert wheel["url"].startswith("https://files.pythonhosted.org/packages/")
        assert wheel["hash"].startswith("sha256-")


def test_sri_hashes_round_trip():
    digest = "3d631f7e798c11d0029c4a892ebae1f5742751fac0c526af74b45a8ae07c3acb"
    sri = sources.sri_from_hex(digest)
    assert sri == "sha256-PWMffnmMEdACnEqJLrrh9XQnUfrAxSavdLRaiuB8Oss="
    assert sources.hex_from_sri(sri) == digest
    with pytest.raises(sources.SourcesError, match="unsupported hash"):
        sources.hex_from_sri("md5-abc")


def test_mirror_urls_become_canonical():
    relative = "../../packages/packages/3d/bb/9602cbee/mojo_compiler_mojo_libs-1.2.0-py3-none-any.whl"
    assert sources.canonical_url(relative, "https://pypi.org/pypi/mojo-compiler-mojo-libs/json") == (
        "https://files.pythonhosted.org/packages/3d/bb/9602cbee/mojo_compiler_mojo_libs-1.2.0-py3-none-any.whl"
    )
    with pytest.raises(sources.SourcesError, match="unexpected distribution URL"):
        sources.canonical_url("https://example.org/x.whl", "https://pypi.org/")


def test_a_drifted_pin_is_reported(tmp_path):
    data = sources.load_sources()
    data["systems"]["x86_64-linux"]["mojoCompiler"]["hash"] = sources.sri_from_hex("00" * 32)
    data["version"] = "9.9.9"
    problems = sources.check_against_uv_lock(data)
    assert any("hash differs from uv.lock's" in p for p in problems)
    assert any("sources.json 9.9.9" in p for p in problems)


def test_unpack_lays_out_a_package_root(tmp_path):
    """Wheels in the real layout (``<dist>.data/platlib/modular/...``), built here."""
    import zipfile

    compiler = tmp_path / "mojo_compiler-1.2.0-py3-none-manylinux_2_34_x86_64.whl"
    with zipfile.ZipFile(compiler, "w") as zf:
        for name in ("bin/mojo", "lib/libKGENCompilerRTShared.so"):
            info = zipfile.ZipInfo(f"mojo_compiler-1.2.0.data/platlib/modular/{name}")
            info.external_attr = 0o755 << 16
            zf.writestr(info, b"\x7fELF")
        zf.writestr("mojo/run.py", "")
    libs = tmp_path / "mojo_compiler_mojo_libs-1.2.0-py3-none-any.whl"
    with zipfile.ZipFile(libs, "w") as zf:
        zf.writestr("mojo_compiler_mojo_libs-1.2.0.data/platlib/modular/lib/mojo/std.mojoc", b"std")
    root = sources.unpack_sdk([compiler, libs], tmp_path / "sdk")
    assert (root / "bin" / "mojo").stat().st_mode & 0o111
    assert (root / "lib" / "mojo" / "std.mojoc").read_bytes() == b"std"
    assert not (root / "run.py").exists()


# ------------------------------------------------------------------------------------------
# Nix evaluation (Debian's nix-bin 2.8, no network)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_nix_file_parses(nix_instantiate, path):
    proc = subprocess.run([nix_instantiate, "--parse", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _evaluate(nix_instantiate: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "nix/tests/eval-flake.nix"],
        cwd=root, capture_output=True, text=True, timeout=600,
    )


def test_flake_evaluates_for_both_systems_with_stand_in_inputs(nix_instantiate):
    proc = _evaluate(nix_instantiate, REPO)
    assert proc.returncode == 0, proc.stderr
    outputs = json.loads(proc.stdout)
    for system in ("x86_64-linux", "aarch64-linux"):
        out = outputs[system]
        assert set(out["packages"]) == {"mojo-sdk", "kernels", "synapse-mojo", "default"}
        assert {"kernels-self-check", "mojo-programs-smoke", "pytest", "bench-smoke"} <= set(out["checks"])
        assert out["devShells"]["default"].endswith(".drv")
        assert out["apps"]["demo"]["type"] == "app"
        assert out["apps"]["demo"]["program"].endswith("/bin/synapse-mojo-demo")
        assert all(path.endswith(".drv") for path in out["packages"].values())
    assert outputs["x86_64-linux"]["packages"]["mojo-sdk"] != outputs["aarch64-linux"]["packages"]["mojo-sdk"]


@pytest.fixture
def flake_copy(tmp_path: Path) -> Path:
    """The files the flake reads, copied so that a test can break one."""
    root = tmp_path / "repo"
    root.mkdir()
    for rel in ("flake.nix", "flake.lock", "pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(REPO / rel, root / rel)
    for rel in ("nix", "mojo"):
        shutil.copytree(REPO / rel, root / rel)
    pkg = root / "python" / "synapse_mojo"
    (pkg / "runtime").mkdir(parents=True)
    shutil.copy2(REPO / "python/synapse_mojo/__init__.py", pkg / "__init__.py")
    shutil.copy2(REPO / "python/synapse_mojo/runtime/mojo_build.py", pkg / "runtime" / "mojo_build.py")
    return root


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("flake.nix", 'unfreeAllowed = [ "mojo-sdk" ]', "unfreeAllowed = [ ]", "has an unfree licence"),
        ("nix/python.nix", '"bench"\n', '"benchmarks"\n', "has no extra or group benchmarks"),
        ("nix/mojo-sdk/sources.json", '"version": "1.2.0"', '"version": "1.3.0"', "uv.lock pins mojo-compiler 1.2.0"),
        ("nix/mojo-sdk/package.nix", "systemSources.mojoCompiler", "systemSources.mojoCompilr", "mojoCompilr"),
        ("nix/kernels.nix", "../python/synapse_mojo/runtime/mojo_build.py", "../nix/build.py", "does not exist"),
    ],
    ids=["unfree-not-allowed", "unknown-dependency-group", "sdk-and-lock-disagree", "typo", "missing-file"],
)
def test_evaluation_catches_mistakes(nix_instantiate, flake_copy, file, old, new, message):
    assert _evaluate(nix_instantiate, flake_copy).returncode == 0
    target = flake_copy / file
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))
    proc = _evaluate(nix_instantiate, flake_copy)
    assert proc.returncode != 0 and message in proc.stderr


def test_lock_pins_every_input_and_follows_nixpkgs():
    lock = json.loads((REPO / "flake.lock").read_text())
    nodes = lock["nodes"]
    assert lock["version"] == 7
    assert set(nodes["root"]["inputs"]) == {"nixpkgs", "pyproject-nix", "uv2nix", "pyproject-build-systems"}
    for name in nodes["root"]["inputs"]:
        locked = nodes[name]["locked"]
        assert locked["type"] == "github" and len(locked["rev"]) == 40
        assert locked["narHash"].startswith("sha256-")
        for follow in nodes[name].get("inputs", {}).values():
            assert isinstance(follow, list), f"{name}: every input must follow the root's"
