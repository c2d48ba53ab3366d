"""``synapse-mojo bench serve``: per-query cost of the ways an agent reaches the pattern map."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from .bench import bench


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers") from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"{text!r}: expected integers >= 1")
    return values


@bench.command("serve")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Store to query [default: a temporary SQLite store with --patterns sample patterns].",
)
@click.option(
    "--patterns",
    default=300,
    show_default=True,
    type=click.IntRange(1),
    help="Sample patterns in the temporary store.",
)
@click.option(
    "--calls",
    default=50,
    show_default=True,
    type=click.IntRange(1),
    help="Timed tool calls per client.",
)
@click.option(
    "--clients", default="1,4,16", show_default=True, help="Concurrent clients (comma-separated)."
)
@click.option(
    "--transports", default="http,stdio", show_default=True, help="MCP transports: http, stdio."
)
@click.option(
    "--startup-runs",
    default=10,
    show_default=True,
    type=click.IntRange(1),
    help="Rounds of the process start-up cases (interleaved).",
)
@click.option(
    "--pilot-runs",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    help="Fresh `synapse-mojo search --json` processes without a server (the pilot's path).",
)
@click.option("--max-results", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench-results/serve.json"),
    show_default=True,
    help="JSON output path (a serve.md table is written beside it).",
)
def serve_command(
    store_url,
    patterns,
    calls,
    clients,
    transports,
    startup_runs,
    pilot_runs,
    max_results,
    json_path,
):
    """MCP tool calls (HTTP, stdio; 1/4/16 clients) vs in-process PatternMap.search vs the
    pilot's CLI process per query, one run.

    Also times process start-up (python -c pass, --help, search --help) and a CLI search
    answered by the running server, interleaved. The summary holds the target ratios.
    """
    from .._dev.bench.report import machine_summary, markdown_table, write_document
    from .._dev.bench.serve import ServeBenchConfig, run_serve_benchmark
    from .._urls import redact_text
    from . import console

    names = tuple(t.strip() for t in transports.split(",") if t.strip())
    if not set(names) <= {"http", "stdio"}:
        raise click.BadParameter(
            f"{transports!r}: expected http and/or stdio", param_hint="--transports"
        )
    cfg = ServeBenchConfig(
        store_url=store_url,
        patterns=patterns,
        calls=calls,
        clients=_ints(clients),
        transports=names,
        max_results=max_results,
        startup_runs=startup_runs,
        pilot_runs=pilot_runs,
    )
    doc = run_serve_benchmark(cfg, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    if sys.argv[1:]:  # no passwords in results
        doc["command"] = "synapse-mojo " + shlex.join(redact_text(a) for a in sys.argv[1:])
    path = write_document(doc, json_path)
    table = markdown_table(doc)
    summary = "\n".join(f"- {k}: {v}" for k, v in doc["summary"].items())
    path.with_suffix(".md").write_text(
        f"{machine_summary(doc['machine'])}\n\n{table}\n\n{summary}\n", encoding="utf-8"
    )
    console.print(table)
    console.print(summary)
    console.print(f"wrote {path} and {path.with_suffix('.md')}")
