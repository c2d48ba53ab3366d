"""``synapse-mojo bench crossovers``: measure where the kernel and NumPy each answer faster."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from . import console
from .bench import bench


@bench.command("crossovers")
@click.option("--rounds", default=7, show_default=True, help="Interleaved rounds per size.")
@click.option(
    "--write/--no-write",
    default=False,
    show_default=True,
    help="Write the result into crossovers.json for this architecture (--path).",
)
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="crossovers.json to update (default: the one shipped in synapse_mojo/search).",
)
@click.option(
    "--from-grid",
    "grid_json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="No measuring: derive the Mojo/NumPy crossovers from a latency-grid JSON "
    "(bench search --grid latency) of this architecture; inline_below stays as shipped.",
)
def crossovers_command(rounds: int, write: bool, path: Path | None, grid_json: Path | None) -> None:
    """Search dispatch crossovers: Mojo vs NumPy (and inline vs pool) per size, measured here.

    Times the calls as the search seam makes them, interleaved, at the latency grid's sizes
    and between them (d = 384 and 1024, 10 to 100,000 rows; about a minute), prints the
    medians and the resulting crossovers, and with --write stores them as this
    architecture's shipped values (run it on a quiet machine; see docs/search-latency.md).
    """
    from .._dev.bench.machine import cpu_model
    from ..config import load_settings
    from ..runtime.adapter import Runtime
    from ..search.dispatch import (
        SHIPPING_MARGIN,
        SHIPPING_PROBES,
        arch,
        format_ranges,
        measure,
        measurement_note,
        write_shipped,
    )
    from ..search.mojo_backend import MojoSearchBackend
    from ..search.numpy_backend import NumpySearchBackend

    if grid_json is not None:
        _from_grid(grid_json, write, path)
        return
    if rounds < 3:
        raise click.BadParameter("--rounds must be >= 3", param_hint="--rounds")
    runtime = Runtime(load_settings())
    kernel = runtime.feature("pattern_search").kernel()
    if kernel is None:
        raise click.ClickException(
            "the pattern_search kernel is not available here: "
            f"{runtime.feature('pattern_search').self_check} (see `synapse-mojo doctor`)"
        )
    mojo = MojoSearchBackend(kernel, runtime.settings.threads)
    with console.status("measuring ...") as status:
        crossovers, records = measure(
            mojo,
            NumpySearchBackend(),
            SHIPPING_PROBES,
            rounds=rounds,
            margin=SHIPPING_MARGIN,
            min_sample_s=2e-4,
            source=f"measured ({arch()})",
            progress=lambda msg: status.update(f"measuring {msg} ..."),
        )
    for r in records:
        console.print(
            f"{r['n']:>8,} x {r['dim']:<5} mojo inline {r['inline_us']:>10,.1f} us  pool "
            f"{r['pool_us']:>10,.1f}  numpy {r['numpy_us']:>10,.1f}  |  cosine mojo "
            f"{r['cosine_us']:>10,.1f}  numpy {r['numpy_cosine_us']:>10,.1f}"
        )
    console.print(f"inline below: {crossovers.inline_below:,} (rows x dims)")
    console.print(f"NumPy answers topk at: {format_ranges(crossovers.numpy_ranges)}")
    console.print(f"NumPy answers topk_cosine at: {format_ranges(crossovers.cosine_numpy_ranges)}")
    if write:
        command = "synapse-mojo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        machine = f"{cpu_model()}, {runtime.settings.threads or 'all'} threads"
        written = write_shipped(crossovers, measurement_note(records, command, machine), path)
        console.print(f"written: {written} ({arch()})")


def _from_grid(grid_json: Path, write: bool, path: Path | None) -> None:
    from .._dev.bench.latency import load_latency_grid
    from ..search.dispatch import (
        arch,
        format_ranges,
        grid_crossovers,
        measurement_note,
        shipped_crossovers,
        write_shipped,
    )

    doc = load_latency_grid(grid_json)
    crossovers, records = grid_crossovers(doc, shipped_crossovers().inline_below)
    console.print(f"NumPy answers topk at: {format_ranges(crossovers.numpy_ranges)}")
    console.print(f"NumPy answers topk_cosine at: {format_ranges(crossovers.cosine_numpy_ranges)}")
    if write:
        machine = str(doc.get("machine", {}).get("cpu_model", "unknown"))
        command = f"{doc.get('command', 'bench search --grid latency')} ({grid_json.name})"
        architecture = arch(doc.get("machine", {}).get("arch"))
        note = measurement_note(records, command, machine)
        written = write_shipped(crossovers, note, path, architecture)
        console.print(f"written: {written} ({architecture})")
