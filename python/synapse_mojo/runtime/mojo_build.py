"""How this project invokes ``mojo build``: the library behind every build of a Mojo artefact.

Two kinds of artefact come out of ``mojo/``:

* **extension modules** - every top-level ``mojo/<name>.mojo`` that defines ``PyInit_<name>``,
  built with ``--emit shared-lib`` into ``<out>/<name>.so`` and imported by the runtime;
* **standalone programs** - every ``mojo/bench/<prog>.mojo`` with a top-level ``main``, built
  into ``<out>/bin/<prog>`` (pure Mojo benchmarks, no Python). A program declares how to run it
  briefly with a ``Smoke: <args>`` line in its docstring (e.g. ``Smoke: 2000 64 5``); the Nix
  checks and the aarch64 cross build run that (``--run-smoke``), under qemu for the latter.

Every caller goes through this module, so the compiler flags live in one place:

* the runtime's per-user compile cache and ``synapse-mojo kernels build``
  (``runtime/kernels.py`` imports :func:`compile_source`);
* the Nix kernels derivation and the aarch64 cross build, which run its command line
  (:mod:`.mojo_build_cli`, beside this file) as a script with any Python >= 3.11: both files use
  the standard library only, so the Nix build does not need the project's Python environment::

      python3 python/synapse_mojo/runtime/mojo_build_cli.py --out build/kernels
      python3 python/synapse_mojo/runtime/mojo_build_cli.py --out build/aarch64 \\
          --target-triple aarch64-unknown-linux-gnu \\
          --linker-driver /usr/bin/aarch64-linux-gnu-gcc \\
          --runtime-root build/aarch64-sdk/modular

Targets: the build tool defaults to a *portable* CPU per architecture (``x86-64-v3`` on x86_64,
``neoverse-n1`` on aarch64: the baselines Modular's own Linux toolchain requires), so that an
artefact built on one machine runs on any machine of that architecture; ``--target-cpu native``
compiles for the build host instead (what the runtime's compile cache does by default).

Cross-compiling: ``mojo`` links with the C compiler driver named by
``MODULAR_MOJO_MAX_LINKER_DRIVER`` (an absolute path; ``cc`` from PATH otherwise) against the Mojo
runtime libraries under ``$MODULAR_MOJO_MAX_PACKAGE_ROOT/lib``. For another architecture both
must be the target's: ``--linker-driver`` (e.g. ``aarch64-linux-gnu-gcc``) and ``--runtime-root``
(the ``modular`` directory of that architecture's ``mojo-compiler`` and
``mojo-compiler-mojo-libs`` wheels, unpacked together). The artefacts' RUNPATH points at
``<runtime-root>/lib``, so keep that directory where it is.

The compiler writes caches and crash-reporter settings under ``$HOME``; the build tool gives it
a fresh temporary HOME (removed afterwards), which also keeps builds independent of the
caller's.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------

#: The CPU each architecture's portable build targets (Modular's own baseline per architecture).
PORTABLE_CPUS: dict[str, str] = {"x86_64": "x86-64-v3", "aarch64": "neoverse-n1"}

#: Target triple per architecture.
TRIPLES: dict[str, str] = {
    "x86_64": "x86_64-unknown-linux-gnu",
    "aarch64": "aarch64-unknown-linux-gnu",
}

_ARCH_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64"}

#: Compiler output lines that are noise, not diagnostics.
_NOISE = ("Failed to initialize Crashpad",)

DEFAULT_TIMEOUT_S = 900.0


class MojoBuildError(RuntimeError):
    """``mojo build`` could not run or failed; ``output`` holds what the compiler printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def host_arch() -> str:
    """The build host's architecture as a triple prefix (``x86_64``, ``aarch64``, ...)."""
    machine = platform.machine().lower()
    return _ARCH_ALIASES.get(machine, machine)


def triple_arch(triple: str | None) -> str:
    """The architecture a target triple names (the host's when ``triple`` is empty)."""
    if not triple:
        return host_arch()
    arch = triple.split("-", 1)[0].lower()
    return _ARCH_ALIASES.get(arch, arch)


@dataclass(frozen=True)
class Target:
    """What to compile for. ``None`` fields mean "the compiler's default" (the host)."""

    triple: str | None = None
    cpu: str | None = None

    @classmethod
    def portable(cls, triple: str | None = None) -> Target:
        """The portable target of ``triple``'s architecture (the host's when ``triple`` is None)."""
        arch = triple_arch(triple)
        if arch not in PORTABLE_CPUS:
            raise MojoBuildError(
                f"no portable CPU known for architecture {arch!r}; pass --target-cpu "
                f"(known: {', '.join(sorted(PORTABLE_CPUS))})"
            )
        return cls(triple, PORTABLE_CPUS[arch])

    @property
    def arch(self) -> str:
        return triple_arch(self.triple)

    @property
    def is_cross(self) -> bool:
        return self.arch != host_arch()

    def flags(self) -> list[str]:
        flags: list[str] = []
        if self.triple:
            flags += ["--target-triple", self.triple]
        if self.cpu:
            flags += ["--target-cpu", self.cpu]
        return flags

    def label(self) -> str:
        return f"{self.triple or TRIPLES.get(self.arch, self.arch)} / {self.cpu or 'host CPU'}"


# --------------------------------------------------------------------------------------------
# What to build
# --------------------------------------------------------------------------------------------

_MAIN_RE = re.compile(r"^(?:def|fn)\s+main\s*\(", re.MULTILINE)


def extension_modules(src: Path) -> list[str]:
    """Every top-level ``src/<name>.mojo`` that defines the extension module ``<name>``."""
    if not src.is_dir():
        return []
    return sorted(p.stem for p in src.glob("*.mojo") if f"PyInit_{p.stem}" in p.read_text("utf-8"))


def standalone_programs(src: Path) -> list[str]:
    """Every ``src/bench/<prog>.mojo`` with a top-level ``main`` (helpers without one are
    modules the programs import, not programs)."""
    bench = src / "bench"
    if not bench.is_dir():
        return []
    return sorted(p.stem for p in bench.glob("*.mojo") if _MAIN_RE.search(p.read_text("utf-8")))


_SMOKE_RE = re.compile(r"^\s*Smoke:[ \t]*(.*)$", re.MULTILINE)


def smoke_args(source: Path) -> list[str] | None:
    """The arguments of a program's smoke run (its ``Smoke: <args>`` line), None if undeclared."""
    match = _SMOKE_RE.search(source.read_text("utf-8"))
    return shlex.split(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------
# Compiling one source
# --------------------------------------------------------------------------------------------


def mojo_command(
    mojo: str,
    source: Path,
    output: Path,
    *,
    kind: str,
    include: Sequence[Path] = (),
    target: Target = Target(),
) -> list[str]:
    """The ``mojo build`` command line for one artefact (``kind``: ``shared-lib`` or ``exe``)."""
    if kind not in ("shared-lib", "exe"):
        raise ValueError(f"kind must be 'shared-lib' or 'exe', not {kind!r}")
    cmd = [str(mojo), "build", *target.flags()]
    for directory in include:
        cmd += ["-I", str(directory)]
    cmd.append(str(source))
    if kind == "shared-lib":
        cmd += ["--emit", "shared-lib"]
    cmd += ["-o", str(output)]
    return cmd


def sdk_env(mojo: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus the package-root variables a *raw* compiler binary needs.

    The wheel's ``mojo`` console script and the Nix SDK's wrapper set these themselves; the
    binary at ``<root>/bin/mojo`` does not, and without them cannot find its standard library.
    Variables already set in ``base`` win.
    """
    env = dict(base)
    path = Path(shutil.which(mojo) or mojo).resolve()
    root = path.parent.parent
    if path.parent.name == "bin" and (root / "lib" / "mojo").is_dir():
        env.setdefault("MODULAR_MOJO_MAX_PACKAGE_ROOT", str(root))
        env.setdefault("MODULAR_MAX_PACKAGE_ROOT", str(root))
        env.setdefault("MODULAR_MOJO_MAX_DRIVER_PATH", str(path))
        env.setdefault("MODULAR_MOJO_MAX_IMPORT_PATH", str(root / "lib" / "mojo"))
    return env


def toolchain_env(
    base: Mapping[str, str],
    *,
    linker_driver: str | None = None,
    runtime_root: Path | None = None,
) -> dict[str, str]:
    """``base`` plus the variables that point ``mojo`` at a linker and a runtime library root."""
    env = dict(base)
    if linker_driver:
        env["MODULAR_MOJO_MAX_LINKER_DRIVER"] = resolve_linker_driver(linker_driver)
    if runtime_root is not None:
        root = runtime_root.resolve()
        if not (root / "lib").is_dir():
            raise MojoBuildError(f"runtime root {root} has no lib/ directory")
        env["MODULAR_MOJO_MAX_PACKAGE_ROOT"] = str(root)
        env["MODULAR_MAX_PACKAGE_ROOT"] = str(root)
        if (root / "lib" / "mojo").is_dir():
            env["MODULAR_MOJO_MAX_IMPORT_PATH"] = str(root / "lib" / "mojo")
    return env


def resolve_linker_driver(driver: str) -> str:
    """An absolute path to an executable linker driver (``mojo`` ignores relative ones)."""
    path = driver if os.path.isabs(driver) else shutil.which(driver)
    if not path or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise MojoBuildError(f"linker driver {driver!r} not found or not executable")
    return os.path.abspath(path)


def clean_output(text: str) -> str:
    """Compiler output without the crash-reporter noise every run prints."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(_NOISE)).strip()


def first_error(output: str) -> str:
    """The first ``error:`` line of compiler output (else its last line)."""
    for line in output.splitlines():
        if "error:" in line:
            return line.strip()
    return output.splitlines()[-1].strip() if output else "no output"


def compile_source(
    mojo: str,
    source: Path,
    output: Path,
    *,
    kind: str,
    include: Sequence[Path] = (),
    target: Target = Target(),
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> float:
    """Compiles ``source`` into ``output`` (atomically replaced); returns the seconds it took.

    Raises :class:`MojoBuildError` with the compiler's output when it fails or cannot start.
    """
    if not source.is_file():
        raise MojoBuildError(f"no Mojo source {source}")
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".so" if kind == "shared-lib" else ""
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp{suffix}")
    cmd = mojo_command(mojo, source, tmp, kind=kind, include=include, target=target)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise MojoBuildError(f"mojo build {source.stem} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise MojoBuildError(f"mojo build {source.stem} could not start ({mojo}): {exc}") from exc
    text = clean_output(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise MojoBuildError(
            f"mojo build {source.stem} failed (exit {proc.returncode}): {first_error(text)}",
            output=text,
        )
    os.replace(tmp, output)
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# Building everything
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artefact:
    name: str
    kind: str  # "shared-lib" | "exe"
    source: Path
    output: Path


def plan(
    src: Path,
    out: Path,
    *,
    kernels: bool = True,
    programs: bool = True,
    names: Sequence[str] = (),
) -> list[Artefact]:
    """The artefacts a build of ``src`` into ``out`` produces (filtered by ``names`` if given)."""
    items: list[Artefact] = []
    if kernels:
        items += [
            Artefact(n, "shared-lib", src / f"{n}.mojo", out / f"{n}.so")
            for n in extension_modules(src)
        ]
    if programs:
        items += [
            Artefact(n, "exe", src / "bench" / f"{n}.mojo", out / "bin" / n)
            for n in standalone_programs(src)
        ]
    if names:
        known = {a.name for a in items}
        unknown = sorted(set(names) - known)
        if unknown:
            raise MojoBuildError(f"unknown artefact(s) {unknown}; have {sorted(known)}")
        items = [a for a in items if a.name in names]
    return items


def target_from_options(triple: str | None, cpu: str) -> Target:
    """The target the build tool's ``--target-triple``/``--target-cpu`` options name: ``cpu`` is
    ``portable`` (the architecture's baseline), ``native``/``host``/empty (the build host), or
    a CPU name."""
    if cpu == "portable":
        return Target.portable(triple)
    if cpu in ("native", "host", ""):
        if triple and triple_arch(triple) != host_arch():
            raise MojoBuildError("--target-cpu native makes no sense when cross-compiling")
        return Target(triple, None)
    return Target(triple, cpu)


def linker_for(target: Target, linker_driver: str | None, runtime_root: Path | None) -> str | None:
    """The linker driver a build for ``target`` uses: ``linker_driver``, else
    ``$MODULAR_MOJO_MAX_LINKER_DRIVER``, else (cross-compiling) ``<arch>-linux-gnu-gcc``; None
    means the compiler's default. A cross build without ``runtime_root`` is refused."""
    linker = linker_driver or os.environ.get("MODULAR_MOJO_MAX_LINKER_DRIVER")
    if target.is_cross:
        linker = linker or f"{target.arch}-linux-gnu-gcc"
        if runtime_root is None:
            raise MojoBuildError(
                f"cross-compiling for {target.arch} needs --runtime-root: the 'modular' "
                f"directory of the {target.arch} mojo-compiler wheels"
            )
    return linker


def default_src() -> Path:
    """The Mojo sources next to this file: the repository's ``mojo/``, or the wheel's copy."""
    # python/synapse_mojo/runtime/mojo_build.py -> <repo>/mojo; an installed wheel ships _mojo_src.
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "mojo", here.parents[1] / "_mojo_src"):
        if candidate.is_dir():
            return candidate
    return Path("mojo")


def default_mojo() -> str | None:
    """The compiler a build uses unless told: ``$MOJO``, then ``mojo`` on PATH."""
    return os.environ.get("MOJO") or shutil.which("mojo")


def compiler_version(mojo: str, env: Mapping[str, str]) -> str:
    try:
        proc = subprocess.run(
            [mojo, "--version"], capture_output=True, text=True, timeout=120, env=dict(env)
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MojoBuildError(f"mojo at {mojo} does not run: {exc}") from exc
    lines = clean_output(proc.stdout + proc.stderr).splitlines()
    if proc.returncode != 0 or not lines:
        raise MojoBuildError(f"`{mojo} --version` failed (exit {proc.returncode})")
    return lines[0].strip()


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def artefact_record(artefact: Artefact, out: Path, seconds: float) -> dict[str, object]:
    """What ``manifest.json`` records of a built artefact (the runtime verifies ``sha256``)."""
    record: dict[str, object] = {
        "kind": artefact.kind,
        "path": str(artefact.output.relative_to(out)),
        "sha256": _sha256(artefact.output),
        "build_seconds": round(seconds, 2),
    }
    if artefact.kind == "exe":
        record["smoke_args"] = smoke_args(artefact.source)
    return record


def write_manifest(
    out: Path, compiler: str, target: Target, built: Mapping[str, Mapping[str, object]]
) -> Path:
    """Writes ``out/manifest.json`` (the record prebuilt directories are verified against)."""
    manifest = {
        "compiler": compiler,
        "target_triple": target.triple or TRIPLES.get(target.arch, target.arch),
        "target_cpu": target.cpu or "host",
        "artefacts": dict(built),
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Smoke runs of the standalone programs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmokeProgram:
    """A built program and the arguments of its smoke run (None: it declares none)."""

    name: str
    path: Path
    args: list[str] | None


@dataclass(frozen=True)
class SmokeResult:
    """How one smoke run went; ``problem`` is None when it succeeded."""

    command: list[str]
    stdout: str
    stderr: str
    seconds: float
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def smoke_programs(out: Path) -> list[SmokeProgram]:
    """Every standalone program of a build (``out/manifest.json``), by name."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise MojoBuildError(f"no readable {out / 'manifest.json'} (build first): {exc}") from exc
    artefacts = manifest.get("artefacts", {}) if isinstance(manifest, dict) else {}
    return [
        SmokeProgram(name, out / art["path"], art.get("smoke_args"))
        for name, art in sorted(artefacts.items())
        if art.get("kind") == "exe"
    ]


def run_smoke(
    program: SmokeProgram, runner: Sequence[str] = (), timeout: float = 600.0
) -> SmokeResult:
    """Runs ``program`` once with its smoke arguments (its defaults when it declares none).

    ``runner`` prefixes the command (e.g. ``qemu-aarch64-static -L SYSROOT``). The run fails
    on a non-zero exit, a timeout, a program that cannot start, or no standard output.
    """
    cmd = [*runner, str(program.path), *(program.args or [])]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        timed_out = f"{program.name} did not finish within {timeout:.0f} s"
        return SmokeResult(cmd, "", "", time.perf_counter() - started, timed_out)
    except OSError as exc:
        no_start = f"{program.name} could not start: {exc}"
        return SmokeResult(cmd, "", "", time.perf_counter() - started, no_start)
    seconds = time.perf_counter() - started
    problem: str | None = None
    if proc.returncode != 0 or not proc.stdout.strip():
        problem = f"{program.name} exited {proc.returncode}" + (
            "" if proc.stdout.strip() else " with no output"
        )
    return SmokeResult(cmd, proc.stdout, proc.stderr, seconds, problem)
