"""``synapse-mojo kernels check``: load every kernel and run its self-checks against the reference.

Used on prebuilt artefacts (the Nix kernels derivation, the aarch64 cross build run under qemu)
to prove that what was built loads and computes the same answers as the Python reference:

    synapse-mojo kernels check --kernel-dir result/lib/synapse-mojo/kernels
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import click
from rich.table import Table

from ..config import load_settings

# The services register their kernels' self-checks when imported.
from ..router import mojo_queue as _router_checks  # noqa: F401
from ..runtime.adapter import FEATURE_KERNELS, Runtime
from ..runtime.kernels import kernel_names, source_dir
from ..search import mojo_backend as _search_checks  # noqa: F401
from . import console, err_console
from .kernels import kernels


@dataclass
class KernelCheck:
    """The outcome for one kernel module: how it loaded and each feature's self-check."""

    kernel: str
    ok: bool = False
    origin: str = "none"
    path: str | None = None
    error: str | None = None
    abi_version: object = None
    self_checks: dict[str, str] = field(default_factory=dict)


def available_kernels(kernel_dir: Path | None = None, settings=None) -> list[str]:
    """The kernels ``check`` knows: the ``*.so`` files of ``kernel_dir``, else the Mojo sources'."""
    if kernel_dir is not None:
        return sorted(p.stem for p in kernel_dir.glob("*.so"))
    return kernel_names(source_dir(settings if settings is not None else load_settings()))


def check_kernels(
    kernel_dir: Path | None = None, names: list[str] | None = None
) -> list[KernelCheck]:
    """Loads each kernel and runs every registered self-check of the features using it.

    With ``kernel_dir`` only the prebuilt modules there count (a kernel that would have to be
    compiled instead is a failure) and the kernels checked are the ``*.so`` files in it;
    otherwise the kernels are those of the Mojo sources, loaded or compiled as usual.
    """
    settings = load_settings()
    if kernel_dir is not None:
        settings = replace(settings, kernel_dir=str(kernel_dir))
    available = available_kernels(kernel_dir, settings)
    selected = names or available
    runtime = Runtime(settings)
    results = []
    for name in selected:
        result = KernelCheck(name)
        results.append(result)
        if name not in available:
            result.error = f"no kernel {name!r} (have {available})"
            continue
        handle = runtime.kernel_handle(name)
        result.origin, result.path = handle.origin, handle.path
        if handle.module is None:  # not loaded
            result.error = handle.error or "; ".join(handle.attempts) or "not loaded"
            continue
        if kernel_dir is not None and handle.origin != "prebuilt":
            result.error = f"the prebuilt module was rejected: {'; '.join(handle.attempts)}"
            continue
        try:
            info = handle.module.kernel_info()
            result.abi_version = info.get("abi_version") if isinstance(info, dict) else None
        except Exception as exc:  # a kernel that loads but cannot describe itself is broken
            result.error = f"kernel_info() failed: {type(exc).__name__}: {exc}"
            continue
        for feature, kernel in FEATURE_KERNELS.items():
            if kernel != name:
                continue
            feature_runtime = runtime.feature(feature)
            feature_runtime.kernel()
            result.self_checks[feature] = feature_runtime.self_check
        failed = {f: s for f, s in result.self_checks.items() if not s.startswith("passed")}
        if failed:
            result.error = "; ".join(f"{f}: {s}" for f, s in failed.items())
        else:
            result.ok = True
    return results


@kernels.command("check")
@click.option(
    "--kernel-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Check the prebuilt <name>.so modules in this directory (no compiling).",
)
@click.option("--name", "names", multiple=True, help="Check only this kernel (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(kernel_dir: Path | None, names: tuple[str, ...], as_json: bool) -> None:
    """Load every kernel and run its self-checks against the Python reference.

    Exits 1 if any kernel fails to load or any self-check fails. A kernel that no feature
    uses is only loaded (and its kernel_info() called).
    """
    from ..runtime.host import is_emulated

    if kernel_dir is not None and not any(kernel_dir.glob("*.so")) and not names:
        raise click.ClickException(f"no kernel modules (*.so) in {kernel_dir}")
    known = available_kernels(kernel_dir)
    unknown = sorted(set(names) - set(known))
    if unknown:
        where = f"in {kernel_dir}" if kernel_dir is not None else "among the Mojo sources"
        raise click.BadParameter(
            f"unknown kernel(s) {', '.join(unknown)}; known {where}: {', '.join(known) or 'none'}",
            param_hint="--name",
        )
    with err_console.status("loading kernels and running self-checks ..."):
        results = check_kernels(kernel_dir, list(names) or None)
    if not results:
        raise click.ClickException("no kernels to check")
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2, default=str))
    else:
        import platform

        emulated = " (EMULATED: timings are not performance)" if is_emulated() else ""
        console.print(f"machine: {platform.machine()}{emulated}")
        table = Table(title="Mojo kernel self-checks")
        for column in ("kernel", "result", "origin", "self-checks", "path"):
            table.add_column(column, overflow="fold")
        for r in results:
            checks = "\n".join(f"{f}: {s}" for f, s in r.self_checks.items()) or "(none registered)"
            verdict = "[green]ok[/green]" if r.ok else f"[red]FAILED[/red]: {r.error}"
            table.add_row(r.kernel, verdict, r.origin, checks, r.path or "-")
        console.print(table)
    failed = [r.kernel for r in results if not r.ok]
    if failed:
        err_console.print(f"[red]self-check failed for {', '.join(failed)}[/red]")
        raise SystemExit(1)
