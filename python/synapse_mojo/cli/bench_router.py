"""``synapse-mojo bench router``: the message-router benchmark."""

from __future__ import annotations

import platform
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from .._dev.bench.report import machine_summary, markdown_table, write_document
from .._dev.bench.router import (
    ALL_BACKENDS,
    RouterBenchConfig,
    bounds_markdown,
    plot_router,
    run_router_benchmark,
    targets_markdown,
)
from .._urls import redact_text
from ..errors import RouterError
from . import console, err_console
from .bench import bench


@bench.command("router")
@click.option(
    "--messages", default=100_000, show_default=True, help="Messages per in-process case."
)
@click.option(
    "--redis-messages",
    default=None,
    type=int,
    help="Messages per Redis batch case (default: min(--messages, 50000)).",
)
@click.option("--batch-size", default=1024, show_default=True, help="Messages per batch call.")
@click.option(
    "--backends",
    default=",".join(ALL_BACKENDS),
    show_default=True,
    help="Comma-separated backends.",
)
@click.option(
    "--redis-url",
    default=None,
    help="Use this Redis (default: start a private redis-server on a random loopback port).",
)
@click.option(
    "--paced-rate", default=1000, show_default=True, help="Messages/s of the latency (paced) cases."
)
@click.option(
    "--paced-seconds", default=3.0, show_default=True, help="Duration of each paced case."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for router.json, router.md and router.png (default: bench-results/<arch>).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON output path.",
)
@click.option(
    "--markdown",
    "md_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Markdown output path.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG plot path.",
)
@click.option("--no-plots", is_flag=True, help="Skip the PNG plot.")
def router_command(
    messages,
    redis_messages,
    batch_size,
    backends,
    redis_url,
    paced_rate,
    paced_seconds,
    out_dir,
    json_path,
    md_path,
    plot_path,
    no_plots,
):
    """In-process router (Mojo, heapq) vs a queue.PriorityQueue router, and the Redis Streams
    transport vs raw redis-py pipelines: throughput, p50/p95/p99, lost messages, one run.

    Never run two benchmarks at once.
    """
    names = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(ALL_BACKENDS))
    if unknown:
        raise click.BadParameter(
            f"unknown backend(s) {unknown}; choose from {', '.join(ALL_BACKENDS)}",
            param_hint="--backends",
        )
    if messages < 1 or batch_size < 1 or paced_rate < 1 or paced_seconds <= 0:
        raise click.BadParameter(
            "--messages, --batch-size, --paced-rate and --paced-seconds must be positive"
        )
    cfg = RouterBenchConfig(
        messages=messages,
        batch_size=batch_size,
        redis_messages=redis_messages or min(messages, 50_000),
        redis_single_messages=min(messages, 5_000),
        paced_rate=paced_rate,
        paced_seconds=paced_seconds,
    )
    out = out_dir or Path("bench-results") / platform.machine()
    command = "synapse-mojo " + " ".join(
        shlex.quote(redact_text(a)) for a in sys.argv[1:]
    )  # no passwords in results
    with ExitStack() as stack:
        url = redis_url
        if url is None and any(b.startswith("redis") for b in names):
            from ..router.local_redis import LocalRedis

            try:
                server = stack.enter_context(LocalRedis())
                url = server.url
                console.print(f"started redis-server {server.binary} on {url}")
            except RouterError as exc:
                err_console.print(f"[yellow]Redis cases skipped:[/yellow] {exc}")
        with console.status("starting ...") as status:
            doc = run_router_benchmark(
                cfg, names, redis_url=url, command=command, progress=status.update
            )
    path = write_document(doc, json_path or out / "router.json")
    md = (
        f"# Router benchmark\n\n{machine_summary(doc['machine'])}\n\n{markdown_table(doc)}\n\n"
        f"## Targets (same run)\n\n{targets_markdown(doc)}\n\n"
        f"## What one call costs\n\n{bounds_markdown(doc)}\n"
    )
    for note in doc.get("notes", []):
        md += f"\n- {note}"
    md_file = md_path or out / "router.md"
    md_file.parent.mkdir(parents=True, exist_ok=True)
    md_file.write_text(md + "\n")
    console.print(md)
    console.print(f"JSON: {path}\nmarkdown: {md_file}")
    if not no_plots:
        try:
            png = plot_router(doc, str(plot_path or out / "router.png"))
            console.print(f"plot: {png}")
        except Exception as exc:  # matplotlib missing: the numbers are already written
            err_console.print(f"[yellow]plot skipped:[/yellow] {exc}")
