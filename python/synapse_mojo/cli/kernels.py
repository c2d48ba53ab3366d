"""``synapse-mojo kernels``: prebuild and inspect the Mojo kernels."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from ..config import load_settings
from ..errors import KernelBuildError, KernelError
from ..runtime.kernels import (
    build_kernel,
    cache_key,
    find_compiler,
    kernel_names,
    record_cache_entry,
    record_prebuilt,
    source_dir,
    target_label,
)
from . import console, err_console, main
from .lazy import LazyGroup

#: subcommands in other modules -> (module, their line in ``kernels --help``)
SUBCOMMANDS = {
    "check": (
        "synapse_mojo.cli.kernels_check",
        "Load every kernel and run its self-checks against the Python reference.",
    ),
}


@main.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def kernels() -> None:
    """Build and inspect the Mojo kernels."""


@kernels.command("build")
@click.option(
    "--target-cpu",
    default="",
    help="Compile for this CPU (e.g. x86-64-v3, neoverse-n1); default: the host.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write <name>.so files and their manifest.json (SHA-256 of each) here, for "
    "SYNAPSE_KERNEL_DIR; default: the compile cache.",
)
@click.option("--name", "names", multiple=True, help="Build only this kernel (repeatable).")
def build(target_cpu: str, out_dir: Path | None, names: tuple[str, ...]) -> None:
    """Prebuild every kernel (compile errors are shown in full)."""
    settings = load_settings()
    if target_cpu:
        from dataclasses import replace

        settings = replace(settings, target_cpu=target_cpu)
    compiler = find_compiler()
    if not compiler.found:
        raise click.ClickException(compiler.error or "no Mojo compiler")
    src = source_dir(settings)
    selected = list(names) or kernel_names(src)
    if not selected:
        raise click.ClickException(f"no kernels found under {src}")
    unknown = set(selected) - set(kernel_names(src))
    if unknown:
        raise click.ClickException(f"unknown kernel(s) {sorted(unknown)}; have {kernel_names(src)}")
    destination = out_dir or settings.cache_dir() / cache_key(src, compiler, settings)
    console.print(
        f"compiler: {compiler.version} ({compiler.path})\n"
        f"sources:  {src}\ntarget:   {target_label(settings)}\noutput:   {destination}"
    )
    failed = False
    for name in selected:
        with console.status(f"compiling {name} ..."):
            try:
                seconds = build_kernel(name, src, destination / f"{name}.so", compiler, target_cpu)
                # What was built, for verification before import (size + SHA-256).
                if out_dir is not None:
                    record_prebuilt(out_dir, name, compiler, target_cpu)
                else:
                    record_cache_entry(destination / f"{name}.so")
            except KernelBuildError as exc:
                failed = True
                err_console.print(f"[red]✗ {name}[/red]: {exc}\n{exc.compiler_output}")
                continue
            except KernelError as exc:
                failed = True
                err_console.print(f"[red]✗ {name}[/red]: {exc}")
                continue
        console.print(f"[green]✓[/green] {name}.so  ({seconds:.1f} s)")
    if failed:
        raise SystemExit(1)


@kernels.command("list")
def list_kernels() -> None:
    """Show the kernel sources, the compiler and where builds would go."""
    settings = load_settings()
    compiler = find_compiler()
    src = source_dir(settings)
    table = Table(title="Mojo kernels")
    table.add_column("kernel")
    table.add_column("source")
    for name in kernel_names(src):
        table.add_row(name, str(src / f"{name}.mojo"))
    console.print(table)
    console.print(f"compiler: {compiler.version or compiler.error}")
    if compiler.found:
        console.print(f"cache:    {settings.cache_dir() / cache_key(src, compiler, settings)}")
