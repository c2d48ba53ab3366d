"""``synapse-mojo bench recall``: int8 recall on Gaussian, clustered and real embeddings."""

from __future__ import annotations

import platform
import shlex
import sys
from pathlib import Path

import click

from .._dev.bench.recall import DATASETS, run_recall_benchmark
from .._dev.bench.report import markdown_table, write_document
from . import console
from .bench import bench


@bench.command("recall")
@click.option(
    "--datasets", default=",".join(DATASETS), show_default=True, help="Comma-separated datasets."
)
@click.option("--n", default=100_000, show_default=True, help="Rows of the synthetic datasets.")
@click.option("--dim", default=384, show_default=True, help="Dimension of the synthetic datasets.")
@click.option(
    "--docstrings",
    default=5_000,
    show_default=True,
    help="Docstrings to embed with MiniLM (cached after the first run; ~30 ms each on 2 cores).",
)
@click.option("--queries", default=100, show_default=True)
@click.option("--k", default=10, show_default=True)
@click.option("--seed", default=20261125, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for recall.json and recall.md (default: bench-results/<arch>).",
)
def recall_command(datasets, n, dim, docstrings, queries, k, seed, out_dir):
    """int8 recall@k: one scan with a fixed rerank factor vs the certified search vs float32.

    Same data and queries for every method, timed interleaved. The docstrings dataset embeds
    the installed packages' docstrings with the bundled MiniLM (offline).
    """
    names = [d.strip() for d in datasets.split(",") if d.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise click.BadParameter(
            f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}",
            param_hint="--datasets",
        )
    if min(n, dim, docstrings, queries, k) < 1:
        raise click.BadParameter("--n, --dim, --docstrings, --queries and --k must be >= 1")
    out = out_dir or Path("bench-results") / platform.machine()
    command = "synapse-mojo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with console.status("starting ...") as status:
        doc = run_recall_benchmark(
            names,
            n=n,
            dim=dim,
            docstrings=docstrings,
            queries=queries,
            k=k,
            seed=seed,
            command=command,
            progress=lambda msg: status.update(msg),
        )
    path = write_document(doc, out / "recall.json")
    md = markdown_table(doc)
    (out / "recall.md").write_text(md + "\n")
    console.print(md)
    console.print(f"JSON: {path}\nmarkdown: {out / 'recall.md'}")
