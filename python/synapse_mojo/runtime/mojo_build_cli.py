"""The build tool's command line: build every Mojo artefact, or run the built programs' smoke
cases. The work itself is :mod:`.mojo_build` (the library beside this file).

Run as a file by the Nix kernels derivation, the Nix checks and the aarch64 cross build, with
any Python >= 3.11 and no package environment (both files use the standard library only)::

    python3 python/synapse_mojo/runtime/mojo_build_cli.py --out build/kernels
    python3 python/synapse_mojo/runtime/mojo_build_cli.py --out build/kernels --run-smoke

Progress goes to stderr, one line per artefact; ``--list`` and the programs' output go to
stdout. Exit status: 0 success, 1 an artefact or a smoke run failed, 2 bad usage or setup.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:
    from . import mojo_build
else:  # run as a file: load the library beside it without importing the package
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "mojo_build", Path(__file__).with_name("mojo_build.py")
    )
    assert _spec is not None and _spec.loader is not None
    mojo_build = importlib.util.module_from_spec(_spec)
    sys.modules["mojo_build"] = mojo_build  # dataclasses look their module up while defining
    _spec.loader.exec_module(mojo_build)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="mojo_build_cli.py",
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
    p.add_argument(
        "--timeout", type=float, default=mojo_build.DEFAULT_TIMEOUT_S, help="seconds per artefact"
    )
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


def smoke(out: Path, runner: Sequence[str], timeout: float, save_dir: Path | None) -> int:
    """Runs every program of the build in ``out``; returns how many failed. With ``save_dir``, a
    program whose standard output is a JSON document is saved there as ``<name>.json``."""
    programs = mojo_build.smoke_programs(out)
    if not programs:
        _log(f"no standalone programs in {out}")
        return 0
    failed = 0
    for program in programs:
        if program.args is None:
            _log(
                f"note: {program.name} declares no 'Smoke: <args>' line; "
                "running it with its defaults"
            )
        _log(f"== {shlex.join([*runner, str(program.path), *(program.args or [])])}")
        result = mojo_build.run_smoke(program, runner, timeout=timeout)
        output = (result.stdout + result.stderr).strip()
        if output:
            print(output)
        if not result.ok:
            _log(f"  FAILED: {result.problem}")
            failed += 1
            continue
        _log(f"  ok ({result.seconds:.1f} s wall; not a benchmark result)")
        if save_dir is not None:
            try:
                document = json.loads(result.stdout)
            except ValueError:
                continue
            save_dir.mkdir(parents=True, exist_ok=True)
            path = save_dir / f"{program.name}.json"
            path.write_text(json.dumps(document, indent=2) + "\n")
            _log(f"  saved {path}")
    return failed


def build(args: argparse.Namespace) -> int:
    """Builds what the options select into ``args.out`` and writes its ``manifest.json``."""
    src = (args.src or mojo_build.default_src()).resolve()
    target = mojo_build.target_from_options(args.target_triple, args.target_cpu)
    items = mojo_build.plan(
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
        raise mojo_build.MojoBuildError(f"nothing to build under {src}")
    mojo = args.mojo or mojo_build.default_mojo()
    if not mojo:
        raise mojo_build.MojoBuildError(
            "no Mojo compiler: pass --mojo, set $MOJO or put mojo on PATH"
        )
    linker = mojo_build.linker_for(target, args.linker_driver, args.runtime_root)
    args.out.mkdir(parents=True, exist_ok=True)
    # The compiler writes caches and crash-reporter settings under HOME: a fresh one per build.
    home = Path(tempfile.mkdtemp(prefix="mojo-build-home-"))
    failures: list[str] = []
    built: dict[str, dict[str, object]] = {}
    try:
        env = mojo_build.toolchain_env(
            mojo_build.sdk_env(mojo, {**os.environ, "HOME": str(home)}),
            linker_driver=linker,
            runtime_root=args.runtime_root,
        )
        version = mojo_build.compiler_version(mojo, env)
        _log(f"mojo:    {version} ({mojo})")
        _log(f"sources: {src}")
        _log(f"target:  {target.label()}")
        if linker:
            _log(f"linker:  {env['MODULAR_MOJO_MAX_LINKER_DRIVER']}")
        if args.runtime_root is not None:
            _log(f"runtime: {env['MODULAR_MOJO_MAX_PACKAGE_ROOT']}/lib")
        for i, a in enumerate(items, 1):
            _log(f"[{i}/{len(items)}] {a.kind:10} {a.name} ...")
            try:
                seconds = mojo_build.compile_source(
                    mojo,
                    a.source,
                    a.output,
                    kind=a.kind,
                    include=[src],
                    target=target,
                    env=env,
                    timeout=args.timeout,
                )
            except mojo_build.MojoBuildError as exc:
                failures.append(a.name)
                _log(f"  FAILED: {exc}\n{exc.output}")
                continue
            built[a.name] = mojo_build.artefact_record(a, args.out, seconds)
            _log(f"  ok ({seconds:.1f} s) -> {a.output}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    mojo_build.write_manifest(args.out, version, target, built)
    if failures:
        _log(f"{len(failures)} of {len(items)} failed: {', '.join(failures)}")
        return 1
    _log(f"built {len(items)} artefact(s) into {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Builds everything (or runs the smoke cases); returns the exit status."""
    args = _parse_args(argv)
    try:
        if args.run_smoke:
            failed = smoke(
                args.out, shlex.split(args.runner), timeout=args.timeout, save_dir=args.save_json
            )
            return 1 if failed else 0
        return build(args)
    except mojo_build.MojoBuildError as exc:
        _log(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
