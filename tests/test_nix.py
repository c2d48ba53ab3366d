"""The Nix side, as far as it can be checked here: the SDK pins agree with uv.lock, every .nix
file parses, and flake.nix evaluates with stand-in inputs for both systems (nixpkgs and the uv2nix
stack cannot be fetched here; nix/tests/ holds the stand-ins). The negative cases make sure the
evaluation would catch the mistakes it is meant to catch."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO
from .servers import require

NIX_FILES = sorted([REPO / "flake.nix", *REPO.glob("nix/**/*.nix")])


def _load_sources_tool():
    spec = importlib.util.spec_from_file_location(
        "mojo_sdk_sources", REPO / "nix/mojo-sdk/sources.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sources = _load_sources_tool()


@pytest.fixture(scope="module")
def nix_instantiate() -> str:
    path = shutil.which("nix-instantiate")
    require(
        path is not None, "nix-instantiate", "apt-get install nix-bin (nix/offline-checks.sh does)"
    )
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
    relative = (
        "../../packages/packages/3d/bb/9602cbee/mojo_compiler_mojo_libs-1.2.0-py3-none-any.whl"
    )
    assert sources.canonical_url(
        relative, "https://pypi.org/pypi/mojo-compiler-mojo-libs/json"
    ) == (
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
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_flake_evaluates_for_both_systems_with_stand_in_inputs(nix_instantiate):
    proc = _evaluate(nix_instantiate, REPO)
    assert proc.returncode == 0, proc.stderr
    outputs = json.loads(proc.stdout)
    for system in ("x86_64-linux", "aarch64-linux"):
        out = outputs[system]
        assert set(out["packages"]) == {"mojo-sdk", "kernels", "synapse-mojo", "default"}
        assert {"kernels-self-check", "mojo-programs-smoke", "pytest", "bench-smoke"} <= set(
            out["checks"]
        )
        assert out["devShells"]["default"].endswith(".drv")
        assert out["apps"]["demo"]["type"] == "app"
        assert out["apps"]["demo"]["program"].endswith("/bin/synapse-mojo-demo")
        assert all(path.endswith(".drv") for path in out["packages"].values())
    assert (
        outputs["x86_64-linux"]["packages"]["mojo-sdk"]
        != outputs["aarch64-linux"]["packages"]["mojo-sdk"]
    )


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
    for tool in ("mojo_build.py", "mojo_build_cli.py"):
        shutil.copy2(REPO / "python/synapse_mojo/runtime" / tool, pkg / "runtime" / tool)
    return root


def _break(root: Path, edits: list[tuple[str, str, str]]) -> None:
    for file, old, new in edits:
        target = root / file
        text = target.read_text()
        assert old in text, f"{file} no longer contains {old!r}: update the test"
        target.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            [("flake.nix", 'unfreeAllowed = [ "mojo-sdk" ]', "unfreeAllowed = [ ]")],
            "has an unfree licence",
        ),
        ([("nix/python.nix", '"bench"\n', '"benchmarks"\n')], "has no extra or group benchmarks"),
        (
            [("nix/mojo-sdk/sources.json", '"version": "1.2.0"', '"version": "1.3.0"')],
            "uv.lock pins mojo-compiler 1.2.0",
        ),
        (
            [
                (
                    "nix/mojo-sdk/package.nix",
                    "systemSources.mojoCompiler",
                    "systemSources.mojoCompilr",
                )
            ],
            "mojoCompilr",
        ),
        (
            [
                (
                    "nix/kernels.nix",
                    "../python/synapse_mojo/runtime/mojo_build.py",
                    "../nix/build.py",
                )
            ],
            "does not exist",
        ),
    ],
    ids=[
        "unfree-not-allowed",
        "unknown-dependency-group",
        "sdk-and-lock-disagree",
        "typo",
        "missing-file",
    ],
)
def test_evaluation_catches_mistakes(nix_instantiate, flake_copy, edits, message):
    assert _evaluate(nix_instantiate, flake_copy).returncode == 0
    _break(flake_copy, edits)
    proc = _evaluate(nix_instantiate, flake_copy)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


# The classes of mistake the stand-ins were once too lenient for (issue 12): each is the
# defect as it was, or a likely variant, put back into a copy of the flake.
@pytest.mark.parametrize(
    ("edits", "message"),
    [
        # callPackage fills every argument whose name is in pkgs, defaults included.
        (
            [
                ("nix/python.nix", "  pythonInterpreter,\n", "  python ? pkgs.python313,\n"),
                ("nix/python.nix", "  python = pythonInterpreter;\n", ""),
                ("flake.nix", "          pythonInterpreter = final.python313;\n", ""),
            ],
            "argument(s) python have a default, but nixpkgs has top-level attributes",
        ),
        # pkgs.python is Python 2.7, marked insecure, as in nixpkgs.
        (
            [
                (
                    "flake.nix",
                    "pythonInterpreter = final.python313;",
                    "pythonInterpreter = final.python;",
                )
            ],
            "Package 'python-2.7.18.8' is marked as insecure",
        ),
        # uv2nix asserts that the interpreter satisfies uv.lock's requires-python (>=3.11).
        (
            [
                (
                    "flake.nix",
                    "pythonInterpreter = final.python313;",
                    "pythonInterpreter = final.python310;",
                )
            ],
            "does not satisfy uv.lock's requires-python >=3.11",
        ),
        # uv2nix's deps.default is the project's default-groups (dev: pytest, hypothesis, ...).
        (
            [
                (
                    "nix/python.nix",
                    'synapse-mojo = [ "all" ];',
                    'synapse-mojo = [ "all" "dev" ];',
                )
            ],
            "the runtime virtualenv includes the dependency group(s) dev",
        ),
        # The runtime package carries every runtime extra, and no tooling extra.
        (
            [("nix/python.nix", 'synapse-mojo = [ "all" ];', "synapse-mojo = [ ];")],
            "the runtime virtualenv lacks the extra all",
        ),
        (
            [("nix/python.nix", 'synapse-mojo = [ "all" ];', 'synapse-mojo = [ "all" "bench" ];')],
            "the runtime virtualenv carries the tooling extra(s) bench",
        ),
        # Closed argument sets, as in uv2nix and nixpkgs.
        (
            [
                (
                    "nix/python.nix",
                    'mkPyprojectOverlay { sourcePreference = "wheel"; }',
                    'mkPyprojectOverlay { sourcePreference = "wheel"; workspaceRoot = ./.; }',
                )
            ],
            "unexpected argument 'workspaceRoot'",
        ),
        (
            [
                (
                    "flake.nix",
                    "runtimeInputs = [ pkgs.synapse-mojo ];",
                    "runtimeDependencies = [ pkgs.synapse-mojo ];",
                )
            ],
            "unexpected argument 'runtimeDependencies'",
        ),
        # lib.fileset's path checks.
        (
            [("nix/kernels.nix", "      ../mojo\n", '      "${../mojo}"\n')],
            "is a string-like value, but it should be a path",
        ),
        ([("nix/kernels.nix", "root = ../.;", "root = ../mojo;")], "which is not under the `root`"),
        # A nativeWheelLibs key that uv.lock does not lock would patch nothing: nix/python.nix
        # refuses it, and so does the harness without that assertion.
        (
            [("nix/python.nix", "    hf-xet = [ ];", "    hf_xet = [ ];")],
            "nativeWheelLibs names hf_xet",
        ),
        (
            [
                ("nix/python.nix", "    hf-xet = [ ];", "    hf_xet = [ ];"),
                ("nix/python.nix", "(unknownWheelLibs == [ ])", "true"),
            ],
            "nativeWheelLibs names hf_xet, which uv.lock does not lock "
            "(a typo would silently patch nothing)",
        ),
    ],
    ids=[
        "callpackage-captures-python",
        "python-is-insecure-python2",
        "python-below-requires-python",
        "runtime-venv-with-dev-group",
        "runtime-venv-without-runtime-extras",
        "runtime-venv-with-bench-extra",
        "mkPyprojectOverlay-unknown-argument",
        "writeShellApplication-unknown-argument",
        "fileset-string-not-path",
        "fileset-outside-root",
        "nativeWheelLibs-not-locked",
        "nativeWheelLibs-not-locked-harness",
    ],
)
def test_evaluation_catches_what_the_real_inputs_refuse(
    nix_instantiate, flake_copy, edits, message
):
    _break(flake_copy, edits)
    proc = _evaluate(nix_instantiate, flake_copy)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_stand_in_pkgs_carries_the_capturable_top_level_names(nix_instantiate):
    names = subprocess.run(
        [
            nix_instantiate,
            "--eval",
            "--strict",
            "--json",
            "nix/tests/stub-nixpkgs/top-level-names.nix",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert {"python", "python2", "python3", "pkgs", "lib", "stdenv", "system"} <= set(
        json.loads(names.stdout)
    )


def test_eval_real_inputs_requires_every_checkout(tmp_path):
    script = REPO / "nix/eval-real-inputs.sh"
    usage = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "--build-system-pkgs" in usage.stdout
    proc = subprocess.run(
        [
            str(script),
            "--nixpkgs-lib",
            str(tmp_path),
            "--pyproject-nix",
            str(tmp_path),
            "--uv2nix",
            str(tmp_path),
            "--build-system-pkgs",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "no lib/default.nix there" in proc.stderr


def test_lock_pins_every_input_and_follows_nixpkgs():
    lock = json.loads((REPO / "flake.lock").read_text())
    nodes = lock["nodes"]
    assert lock["version"] == 7
    assert set(nodes["root"]["inputs"]) == {
        "nixpkgs",
        "pyproject-nix",
        "uv2nix",
        "pyproject-build-systems",
    }
    for name in nodes["root"]["inputs"]:
        locked = nodes[name]["locked"]
        assert locked["type"] == "github" and len(locked["rev"]) == 40
        assert locked["narHash"].startswith("sha256-")
        for follow in nodes[name].get("inputs", {}).values():
            assert isinstance(follow, list), f"{name}: every input must follow the root's"


# ------------------------------------------------------------------------------------------
# GitHub Actions: pinned refs and what CI=true demands of the uv job
# ------------------------------------------------------------------------------------------

PINS_TOOL = REPO / "nix/action-pins.py"
WORKFLOW = REPO / ".github/workflows/ci.yml"


def _pins_check(workflows: Path, pins: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(PINS_TOOL)]
    if pins is not None:
        command += ["--pins", str(pins)]
    return subprocess.run(
        [*command, "check", "--workflows", str(workflows)], capture_output=True, text=True
    )


def test_every_action_is_pinned_to_the_table():
    proc = _pins_check(WORKFLOW.parent)
    assert proc.returncode == 0, proc.stderr
    pins = json.loads((REPO / ".github/actions-pins.json").read_text())["actions"]
    assert pins["astral-sh/setup-uv"]["tag"].count(".") == 2, (
        "setup-uv publishes full version tags only"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # The defect as it was: setup-uv publishes no moving v8 tag.
        (
            "astral-sh/setup-uv@11f9893b081a58869d3b5fccaea48c9e9e46f990 # v8.3.2",
            "astral-sh/setup-uv@v8",
            "astral-sh/setup-uv must be pinned to 11f9893b081a58869d3b5fccaea48c9e9e46f990",
        ),
        (
            "actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803",
            "actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af804",
            "actions/checkout must be pinned to d23441a48e516b6c34aea4fa41551a30e30af803",
        ),
        (
            "astral-sh/setup-uv@11f9893b081a58869d3b5fccaea48c9e9e46f990",
            "astral-sh/setup-uvv@11f9893b081a58869d3b5fccaea48c9e9e46f990",
            "astral-sh/setup-uvv is not in the pin table",
        ),
        (
            "@d23441a48e516b6c34aea4fa41551a30e30af803 # v6.1.0",
            "@d23441a48e516b6c34aea4fa41551a30e30af803 # v6",
            "should carry the comment `# v6.1.0`",
        ),
    ],
    ids=["moving-tag-that-does-not-exist", "wrong-sha", "unknown-action", "wrong-tag-comment"],
)
def test_a_ref_outside_the_pin_table_is_rejected(tmp_path, old, new, message):
    text = WORKFLOW.read_text()
    assert old in text
    (tmp_path / "ci.yml").write_text(text.replace(old, new, 1))
    proc = _pins_check(tmp_path)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_a_malformed_pin_table_is_an_error(tmp_path):
    table = json.loads((REPO / ".github/actions-pins.json").read_text())
    table["actions"]["actions/checkout"]["sha"] = "v6"
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps(table))
    proc = _pins_check(WORKFLOW.parent, pins)
    assert proc.returncode == 2 and "full 40-character commit SHA" in proc.stderr


def _workflow() -> dict:
    import yaml

    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _extras(command: str) -> set[str]:
    return set(re.findall(r"--extra\s+(\S+)", command))


def test_the_uv_job_has_what_ci_true_demands():
    """GitHub sets CI=true: missing tools then fail tests, so the uv job installs what .ci/run
    does."""
    runs = _runs(_workflow()["jobs"]["uv"])
    assert "ensure_debian_packages nix-bin" in runs, "tests/test_nix.py needs nix-instantiate"
    ci_run = (REPO / ".ci/run").read_text()
    ci_sync = next(line for line in ci_run.splitlines() if line.startswith("uv sync"))
    job_sync = next(
        line.strip() for line in runs.splitlines() if line.strip().startswith("uv sync")
    )
    assert _extras(ci_sync) <= _extras(job_sync), (
        f".ci/run syncs {ci_sync!r}, the uv job {job_sync!r}"
    )


def test_nix_job_checks_every_system_and_compare_runs_after_a_failed_leg():
    jobs = _workflow()["jobs"]
    assert "nix flake check --all-systems" in _runs(jobs["nix"])
    condition = str(jobs["compare"].get("if", ""))
    assert "always()" in condition or "!cancelled()" in condition, (
        "the missing-document branch must be reachable"
    )
