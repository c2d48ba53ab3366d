"""``synapse-mojo bench compare``: per-case ratios between two benchmark documents."""

from __future__ import annotations

from pathlib import Path

import click

from .._dev.bench.compare import compare_documents
from .._dev.bench.report import load_document
from . import err_console
from .bench import bench


@bench.command("compare")
@click.argument("a_path", metavar="A.json", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b_path", metavar="B.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the markdown report here (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw the ratios into this PNG (needs matplotlib: the `bench` extra).",
)
@click.option("--label-a", default=None, help="Name for A (default: its machine's architecture).")
@click.option("--label-b", default=None, help="Name for B (default: its machine's architecture).")
def compare(
    a_path: Path,
    b_path: Path,
    markdown_path: Path | None,
    plot_path: Path | None,
    label_a: str | None,
    label_b: str | None,
) -> None:
    """Compare two benchmark JSON documents of one suite (e.g. x86_64 vs aarch64).

    Records are matched by case key; for each case the p50/p95/p99 latency and throughput
    ratios say which side is faster (above 1: A is faster). Cases on one side only are listed.
    Runs under emulation are flagged: their timings are not performance.
    """
    a, b = load_document(a_path), load_document(b_path)
    comparison = compare_documents(
        a, b, label_a=label_a, label_b=label_b, path_a=str(a_path), path_b=str(b_path)
    )
    report = comparison.markdown()
    click.echo(report, nl=False)  # plain markdown on stdout (pipeable), notes on stderr
    for warning in comparison.warnings():
        err_console.print(f"[bold red]warning:[/bold red] {warning}")
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        with markdown_path.open(
            "a" if markdown_path.exists() and _is_summary(markdown_path) else "w", encoding="utf-8"
        ) as f:
            f.write(report)
        err_console.print(f"markdown: {markdown_path}")
    if plot_path is not None:
        err_console.print(f"plot:     {comparison.plot(plot_path)}")


def _is_summary(path: Path) -> bool:
    """GitHub's job summary file is appended to (other steps write to it too)."""
    import os

    return os.environ.get("GITHUB_STEP_SUMMARY") == str(path)
