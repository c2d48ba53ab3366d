"""``synapse-mojo bench search``: the pattern-search benchmark."""

from __future__ import annotations

import platform
import shlex
import sys
from pathlib import Path

import click

from .._dev.bench.report import write_document
from .._dev.bench.search import (
    ALL_BACKENDS,
    DEFAULT_DIMS,
    DEFAULT_NS,
    SearchCase,
    run_search_benchmark,
)
from .._dev.bench.summary import search_markdown
from . import console
from .bench import bench


@bench.command("search")
@click.option(
    "--n",
    "ns",
    type=int,
    multiple=True,
    help=f"Patterns (repeatable). Default: {', '.join(f'{n:,}' for n in DEFAULT_NS)}.",
)
@click.option(
    "--dim",
    "dims",
    type=int,
    multiple=True,
    help=f"Dimensions (repeatable). Default: {', '.join(map(str, DEFAULT_DIMS))}.",
)
@click.option("--k", default=10, show_default=True)
@click.option(
    "--backends",
    default=",".join(ALL_BACKENDS),
    show_default=True,
    help="Comma-separated backends; peers are skipped when not installed.",
)
@click.option("--queries", default=200, show_default=True, help="Timed single queries per case.")
@click.option(
    "--batch-size",
    default=64,
    show_default=True,
    help="Queries per batch call (1 disables batch mode).",
)
@click.option(
    "--threads", type=int, default=None, help="Threads (default: all cores; SYNAPSE_THREADS)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "Directory for search.json, search.md and the PNG plots (default: the --json file's "
        "directory when --json is given, else bench-results/<arch>)."
    ),
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON output path (overrides --out for the JSON; without --out the markdown and "
    "plots go beside it).",
)
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.option(
    "--memory/--no-memory",
    default=True,
    show_default=True,
    help="Also measure PatternIndex memory (f32 and int8, built and memory-mapped) at the "
    "largest N and first d.",
)
@click.option("--seed", default=20261125, show_default=True)
@click.option(
    "--grid",
    type=click.Choice(["latency"]),
    default=None,
    help="latency: every public search path (PatternIndex auto/mojo/python, an int8 "
    "PatternIndex, compat PatternSearch with array and list input) against NumPy doing the same "
    "job, N 10..100,000 x d 384/1024 "
    "(or --n/--dim), interleaved, plus calls alternating with NumPy; writes "
    "search-latency.json/.md/.png.",
)
@click.option(
    "--rounds", default=5, show_default=True, help="--grid latency: interleaved rounds per cell."
)
@click.option(
    "--cell-seconds", default=8.0, show_default=True, help="--grid latency: time budget per cell."
)
@click.option(
    "--from-json",
    "from_json",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="--grid latency: no measuring; rebuild the table and plot from this JSON (into --out).",
)
def search_command(
    ns,
    dims,
    k,
    backends,
    queries,
    batch_size,
    threads,
    out_dir,
    json_path,
    no_plots,
    memory,
    seed,
    grid,
    rounds,
    cell_seconds,
    from_json,
):
    """Exact top-k search: Mojo vs NumPy vs pure Python vs FAISS/usearch, one run, same data.

    Without --n/--dim it runs the whole matrix (N x d). Never run two benchmarks at once:
    they share the memory bandwidth they measure. With --grid latency it runs the latency
    grid instead (see docs/search-latency.md).
    """
    if grid == "latency":
        _latency_grid(ns, dims, k, out_dir, json_path, no_plots, rounds, cell_seconds, from_json)
        return
    names = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(ALL_BACKENDS))
    if unknown:
        raise click.BadParameter(
            f"unknown backend(s) {unknown}; choose from {', '.join(ALL_BACKENDS)}",
            param_hint="--backends",
        )
    cases = [SearchCase(n, d, k) for d in (dims or DEFAULT_DIMS) for n in (ns or DEFAULT_NS)]
    if any(c.n < 1 or c.dim < 1 for c in cases) or k < 1 or queries < 1:
        raise click.BadParameter("--n, --dim, --k and --queries must be >= 1")
    out = _output_dir(out_dir, json_path)
    command = "synapse-mojo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with console.status("starting ...") as status:
        doc = run_search_benchmark(
            cases,
            names,
            queries=queries,
            batch_size=batch_size,
            threads=threads,
            seed=seed,
            command=command,
            progress=lambda msg: status.update(msg),
        )
    if memory and sys.platform.startswith("linux"):
        import tempfile

        from .._dev.bench.memory import measure

        n_mem, d_mem = max(c.n for c in cases), cases[0].dim
        with (
            console.status(
                f"measuring index memory at N={n_mem:,}, d={d_mem} (fresh processes) ..."
            ),
            tempfile.TemporaryDirectory() as workdir,
        ):
            doc["memory"] = [
                measure(n_mem, d_mem, q, workdir, queries=queries) for q in (None, "int8")
            ]
    path = write_document(doc, json_path or out / "search.json")
    md = search_markdown(doc)
    md_path = out / "search.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(md)
    console.print(md)
    console.print(f"JSON: {path}\nmarkdown: {md_path}")
    if not no_plots:
        from .._dev.bench.plots import plot_search

        for png in plot_search(doc, out):
            console.print(f"plot: {png}")


def _output_dir(out_dir: Path | None, json_path: Path | None) -> Path:
    """Where the markdown and plots go: ``--out``, else beside ``--json``, else
    bench-results/<arch> (a run asked for one file does not also write into another tree)."""
    if out_dir is not None:
        return out_dir
    if json_path is not None:
        return json_path.parent
    return Path("bench-results") / platform.machine()


def _latency_grid(
    ns, dims, k, out_dir, json_path, no_plots, rounds, cell_seconds, from_json=None
) -> None:
    from .._dev.bench.latency import (
        GRID_DIMS,
        GRID_NS,
        latency_markdown,
        load_latency_grid,
        plot_latency,
        run_latency_grid,
    )

    out = _output_dir(out_dir, json_path)
    if from_json is not None:
        doc = load_latency_grid(from_json)
        path = from_json
    else:
        command = "synapse-mojo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        with console.status("starting ...") as status:
            doc = run_latency_grid(
                ns or GRID_NS,
                dims or GRID_DIMS,
                k,
                rounds=rounds,
                budget_s=cell_seconds,
                command=command,
                progress=lambda msg: status.update(msg),
            )
        path = write_document(doc, json_path or out / "search-latency.json")
    md = latency_markdown(doc)
    md_path = out / "search-latency.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(md)
    console.print(md)
    console.print(f"JSON: {path}\nmarkdown: {md_path}")
    if not no_plots:
        console.print(f"plot: {plot_latency(doc, out)}")
