"""``synapse-mojo doctor``: is Mojo in use, and is it healthy?"""

from __future__ import annotations

import json

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from ..config import FEATURES

# The services register their kernels' self-checks when imported.
from ..router import mojo_queue as _router_checks  # noqa: F401
from ..runtime.adapter import get_runtime
from ..search import mojo_backend as _search_checks  # noqa: F401
from ..search.index import PatternIndex
from . import console, main


def _smoke(n: int = 20_000, dim: int = 384, queries: int = 50) -> None:
    """A few real calls so that the metrics columns show this machine's numbers."""
    rng = np.random.default_rng(0)
    index = PatternIndex(dim)
    index.upsert([f"p{i}" for i in range(n)], rng.standard_normal((n, dim), dtype=np.float32))
    for q in rng.standard_normal((queries, dim), dtype=np.float32):
        index.search(q, top_k=10)
    index.search_batch(rng.standard_normal((8, dim), dtype=np.float32), top_k=10)


def _fmt_latency(summary: dict) -> str:
    if not summary or not summary.get("samples"):
        return "-"
    return f"{summary['p50_ms']:.3f} / {summary['p95_ms']:.3f} / {summary['p99_ms']:.3f}"


def _dispatch_status() -> dict:
    """Search crossovers: the shipped ones (steering calls) and this machine's re-check."""
    from ..search.adaptive import measured_crossovers
    from ..search.dispatch import shipped_crossovers

    measured = measured_crossovers()
    return {
        "shipped": shipped_crossovers().as_dict(),
        "measured": measured.as_dict() if measured else None,
    }


def _fmt_crossovers(c: dict) -> str:
    from ..search.dispatch import UNBOUNDED

    def work(value: int) -> str:
        return "never" if value >= UNBOUNDED else f"{value:,}"

    def ranges(pairs: list) -> str:
        if not pairs:
            return "never"
        return "; ".join(
            f"{low:,} - {'...' if high is None else f'{high:,}'}" for low, high in pairs
        )

    return (
        f"inline below {work(c['inline_below'])}; NumPy answers topk: "
        f"{ranges(c['numpy_ranges'])}, cosine: {ranges(c['cosine_numpy_ranges'])} "
        f"(rows x dims; {c['source']})"
    )


@main.command()
@click.option(
    "--smoke/--no-smoke",
    default=True,
    help="Run a small search workload first so metrics have data.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--prometheus", is_flag=True, help="Print the metrics in Prometheus text format.")
def doctor(smoke: bool, as_json: bool, prometheus: bool) -> None:
    """Per feature: compiler, kernel, self-check, mode, force-python, auto-disable, metrics."""
    runtime = get_runtime()
    if smoke:
        if as_json or prometheus:
            _smoke()
        else:
            with console.status("running a small search workload ..."):
                _smoke()
    status = runtime.status()
    status["search_dispatch"] = _dispatch_status()
    if prometheus:
        click.echo(runtime.metrics_prometheus(), nl=False)
        return
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
        return

    comp = status["compiler"]
    console.print(
        "[bold]Mojo compiler[/bold]: "
        + (
            f"[green]{comp['version']}[/green] ({comp['path']})"
            if comp["version"]
            else f"[red]not found[/red] - {comp['error']}"
        )
    )
    console.print(f"settings: {status['settings_source']}   threads: {status['threads']}")
    for name in FEATURES:
        f = status["features"][name]
        metrics = f["metrics"]
        table = Table(title=f"[bold]{name}[/bold]", show_header=False, title_justify="left")
        table.add_column("field", style="dim")
        table.add_column("value", overflow="fold")
        table.add_row(
            "runtime",
            "[green]mojo[/green]" if f["active_runtime"] == "mojo" else "[yellow]python[/yellow]",
        )
        table.add_row("mode", f["mode"])
        table.add_row("force python", "[yellow]yes[/yellow]" if f["force_python"] else "no")
        if name == "pattern_search":
            dispatch = status["search_dispatch"]
            table.add_row("crossovers", _fmt_crossovers(dispatch["shipped"]))
            table.add_row(
                "measured here",
                _fmt_crossovers(dispatch["measured"]) + "; its inline threshold is the one used"
                if dispatch["measured"]
                else "not yet (kernel not checked)",
            )
        if f["kernel_loaded"]:
            table.add_row("kernel", f"{f['kernel']}: {f['kernel_origin']} ({f['kernel_path']})")
        else:
            table.add_row("kernel", f"{f['kernel']}: [red]{escape(str(f['kernel_error']))}[/red]")
        for note in f.get("kernel_notes", []):
            if not note.endswith(": not present"):  # where a prebuilt module would be: noise
                table.add_row("kernel note", f"[yellow]{escape(note)}[/yellow]")
        table.add_row("self-check", f["self_check"])
        table.add_row(
            "auto-disabled", f"[red]{f['auto_disabled']}[/red]" if f["auto_disabled"] else "no"
        )
        calls = metrics["calls"]
        table.add_row("calls", f"mojo {calls.get('mojo', 0)}, python {calls.get('python', 0)}")
        fallbacks = ", ".join(f"{k}={v}" for k, v in metrics["fallbacks"].items()) or "0"
        table.add_row("fallbacks", fallbacks)
        errors = ", ".join(f"{k}={v}" for k, v in metrics["errors"].items()) or "0"
        table.add_row("errors", errors)
        for runtime_name in ("mojo", "python"):
            table.add_row(
                f"latency {runtime_name}",
                _fmt_latency(metrics["latency"].get(runtime_name, {})) + " ms (p50/p95/p99)",
            )
        console.print(table)
    for name in FEATURES:
        for message in status["features"][name]["alerts"].values():
            console.print(f"[yellow]warning[/yellow] {name}: {message}")
