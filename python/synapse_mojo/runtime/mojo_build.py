"""How this project invokes ``mojo build``: the one build tool for every Mojo artefact.

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
* the Nix kernels derivation and the aarch64 cross build, which run this file as a script with
  any Python >= 3.11 (it uses the standard library only, so the Nix build does not need the
  project's Python environment)::

      python3 python/synapse_mojo/runtime/mojo_build.py --out build/kernels
      python3 python/synapse_mojo/runtime/mojo_build.py --out build/aarch64 \\
          --target-triple aarch64-unknown-linux-gnu \\
          --linker-driver /usr/bin/aarch64-linux-gnu-gcc \\
          --runtime-root build/aarch64-sdk/modular

Targets: the script defaults to a *portable* CPU per architecture (``x86-64-v3`` on x86_64,
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

The compiler writes caches and crash-reporter settings under ``$HOME``; the script gives it a
fresh temporary HOME (removed afterwards), which also keeps builds independent of the caller's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
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
# Building everything (the script)
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


def run_smoke(
    out: Path, runner: Sequence[str] = (), timeout: float = 600.0, save_dir: Path | None = None
) -> int:
    """Runs every program of a build (``out/manifest.json``) with its smoke arguments.

    ``runner`` prefixes each command (e.g. ``qemu-aarch64-static -L SYSROOT``). A program that
    declares no smoke arguments runs without arguments (its defaults) and is named in a note.
    With ``save_dir``, a program whose standard output is a JSON document is saved there as
    ``<name>.json`` (the benchmark programs print ``synapse-mojo-bench/1`` documents).
    Returns the number of programs that failed (non-zero exit, timeout, or no output).
    """
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise MojoBuildError(f"no readable {out / 'manifest.json'} (build first): {exc}") from exc
    programs = {n: a for n, a in manifest.get("artefacts", {}).items() if a.get("kind") == "exe"}
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if not programs:
        log(f"no standalone programs in {out}")
        return 0
    failed = 0
    for name, art in sorted(programs.items()):
        args = art.get("smoke_args")
        if args is None:
            log(f"note: {name} declares no 'Smoke: <args>' line; running it with its defaults")
            args = []
        cmd = [*runner, str(out / art["path"]), *args]
        log(f"== {shlex.join(cmd)}")
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            log(f"  FAILED: {name} did not finish within {timeout:.0f} s")
            failed += 1
            continue
        except OSError as exc:
            log(f"  FAILED: {name} could not start: {exc}")
            failed += 1
            continue
        output = (proc.stdout + proc.stderr).strip()
        print(output)
        if proc.returncode != 0 or not proc.stdout.strip():
            log(
                f"  FAILED: {name} exited {proc.returncode}"
                + ("" if proc.stdout.strip() else " with no output")
            )
            failed += 1
        else:
            log(f"  ok ({time.perf_counter() - started:.1f} s wall; not a benchmark result)")
            if save_dir is not None:
                try:
                    document = json.loads(proc.stdout)
                except ValueError:
                    continue
                save_dir.mkdir(parents=True, exist_ok=True)
                path = save_dir / f"{name}.json"
                path.write_text(json.dumps(document, indent=2) + "\n")
                log(f"  saved {path}")
    return failed


def _default_src() -> Path:
    # python/synapse_mojo/runtime/mojo_build.py -> <repo>/mojo; an installed wheel ships _mojo_src.
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "mojo", here.parents[1] / "_mojo_src"):
        if candidate.is_dir():
            return candidate
    return Path("mojo")


def _default_mojo() -> str | None:
    return os.environ.get("MOJO") or shutil.which("mojo")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="mojo_build.py",
        description="Build every Mojo extension module (mojo/*.mojo -> OUT/<name>.so) and "
        "standalone program (mojo/bench/*.mojo -> OUT/bin/<name>).",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--src", type=Path, default=None, help="Mojo sources (default: the repo's mojo/)"
    )
    p.add_argument("--mojo", default=None, help="the compiler (default: $MOJO, then mojo on PATH)")
    p.add_argument(
        "--target-triple", default=None, help="e.g. aarch64-unknown-linux-gnu (default: host)"
    )
    p.add_argument(
        "--target-cpu",
        default="portable",
        help="'portable' (default: x86-64-v3 / neoverse-n1 per architecture), 'native' "
        "(the build host), or a CPU name",
    )
    p.add_argument(
        "--linker-driver",
        default=None,
        help="C compiler driver used to link (made absolute; default: "
        "$MODULAR_MOJO_MAX_LINKER_DRIVER, else cc; <arch>-linux-gnu-gcc when cross-compiling)",
    )
    p.add_argument(
        "--runtime-root",
        type=Path,
        default=None,
        help="Mojo package root of the target architecture (a directory with "
        "lib/libKGENCompilerRTShared.so and lib/mojo); required when cross-compiling",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--kernels-only", action="store_true", help="skip the standalone programs")
    what.add_argument("--programs-only", action="store_true", help="skip the extension modules")
    p.add_argument(
        "--name", action="append", default=[], help="build only this artefact (repeatable)"
    )
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per artefact")
    p.add_argument("--list", action="store_true", help="print what would be built and exit")
    p.add_argument(
        "--run-smoke",
        action="store_true",
        help="instead of building, run every program already built in --out with its smoke "
        "arguments (from OUT/manifest.json)",
    )
    p.add_argument(
        "--runner",
        default="",
        help="command prefix for --run-smoke, e.g. 'qemu-aarch64-static -L SYSROOT'",
    )
    p.add_argument(
        "--save-json",
        type=Path,
        default=None,
        help="with --run-smoke: save each program's JSON output as DIR/<name>.json",
    )
    return p.parse_args(argv)


def _target_from_args(args: argparse.Namespace) -> Target:
    cpu = args.target_cpu
    if cpu == "portable":
        return Target.portable(args.target_triple)
    if cpu in ("native", "host", ""):
        if args.target_triple and triple_arch(args.target_triple) != host_arch():
            raise MojoBuildError("--target-cpu native makes no sense when cross-compiling")
        return Target(args.target_triple, None)
    return Target(args.target_triple, cpu)


def main(argv: Sequence[str] | None = None) -> int:
    """Builds everything; prints one line per artefact to stderr; writes ``OUT/manifest.json``."""
    args = _parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.run_smoke:
            failed = run_smoke(
                args.out, shlex.split(args.runner), timeout=args.timeout, save_dir=args.save_json
            )
            return 1 if failed else 0
        src = (args.src or _default_src()).resolve()
        target = _target_from_args(args)
        items = plan(
            src,
            args.out,
            kernels=not args.programs_only,
            programs=not args.kernels_only,
            names=args.name,
        )
        if args.list:
            for a in items:
                print(f"{a.kind:10} {a.name:24} {a.source} -> {a.output}")
            return 0
        if not items:
            raise MojoBuildError(f"nothing to build under {src}")
        mojo = args.mojo or _default_mojo()
        if not mojo:
            raise MojoBuildError("no Mojo compiler: pass --mojo, set $MOJO or put mojo on PATH")
        linker = args.linker_driver or os.environ.get("MODULAR_MOJO_MAX_LINKER_DRIVER")
        if target.is_cross:
            linker = linker or f"{target.arch}-linux-gnu-gcc"
            if args.runtime_root is None:
                raise MojoBuildError(
                    f"cross-compiling for {target.arch} needs --runtime-root: the 'modular' "
                    f"directory of the {target.arch} mojo-compiler wheels"
                )
        args.out.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="mojo-build-home-"))
        try:
            env = toolchain_env(
                sdk_env(mojo, {**os.environ, "HOME": str(home)}),
                linker_driver=linker,
                runtime_root=args.runtime_root,
            )
            version = compiler_version(mojo, env)
            log(f"mojo:    {version} ({mojo})")
            log(f"sources: {src}")
            log(f"target:  {target.label()}")
            if linker:
                log(f"linker:  {env['MODULAR_MOJO_MAX_LINKER_DRIVER']}")
            if args.runtime_root is not None:
                log(f"runtime: {env['MODULAR_MOJO_MAX_PACKAGE_ROOT']}/lib")
            failures: list[str] = []
            built: dict[str, dict[str, object]] = {}
            for i, a in enumerate(items, 1):
                log(f"[{i}/{len(items)}] {a.kind:10} {a.name} ...")
                try:
                    seconds = compile_source(
                        mojo,
                        a.source,
                        a.output,
                        kind=a.kind,
                        include=[src],
                        target=target,
                        env=env,
                        timeout=args.timeout,
                    )
                except MojoBuildError as exc:
                    failures.append(a.name)
                    log(f"  FAILED: {exc}\n{exc.output}")
                    continue
                built[a.name] = {
                    "kind": a.kind,
                    "path": str(a.output.relative_to(args.out)),
                    "sha256": _sha256(a.output),
                    "build_seconds": round(seconds, 2),
                }
                if a.kind == "exe":
                    built[a.name]["smoke_args"] = smoke_args(a.source)
                log(f"  ok ({seconds:.1f} s) -> {a.output}")
        finally:
            shutil.rmtree(home, ignore_errors=True)
        manifest = {
            "compiler": version,
            "target_triple": target.triple or TRIPLES.get(target.arch, target.arch),
            "target_cpu": target.cpu or "host",
            "artefacts": built,
        }
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if failures:
            log(f"{len(failures)} of {len(items)} failed: {', '.join(failures)}")
            return 1
        log(f"built {len(items)} artefact(s) into {args.out}")
        return 0
    except MojoBuildError as exc:
        log(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
