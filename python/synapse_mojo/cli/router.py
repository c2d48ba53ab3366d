"""``synapse-mojo router``: inspect a router transport (queue depths, rates, dead letters)."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from ..router.base import RouterStats
from ..router.url import default_url, open_router
from . import console, main

_URL_HELP = (
    "Router URL (default: SYNAPSE_ROUTER_URL)."
    " In-process routers live inside their process: use a redis:// URL."
)


@main.group()
def router() -> None:
    """Inspect the message router: depths, rates, consumers, dead letters."""


def _open(url: str | None):
    target = url or default_url()
    if target.startswith("memory://"):
        raise click.ClickException(
            "a memory:// router lives inside the process that created it; its metrics are in "
            "that process's Prometheus export (synapse_router_*). Pass --url redis://host:port/db "
            "(or set SYNAPSE_ROUTER_URL) to inspect a Redis Streams router."
        )
    return open_router(target)


def _depth_text(depths: list[int]) -> str:
    parts = [f"p{p}:{n}" for p, n in reversed(list(enumerate(depths))) if n]
    return " ".join(parts) or "-"


def _stats_table(stats: RouterStats, rates: dict[str, dict[str, float]] | None) -> Table:
    table = Table(title=f"router {stats.url}", title_justify="left")
    for col in (
        "destination",
        "waiting",
        "by priority",
        "in flight",
        "published",
        "acked",
        "dead letters",
        "duplicates skipped",
    ):
        table.add_column(
            col, justify="right" if col not in ("destination", "by priority") else "left"
        )
    if rates:
        table.add_column("publish/s", justify="right")
        table.add_column("ack/s", justify="right")
    for name, d in stats.destinations.items():
        row = [
            name,
            f"{d.depth:,}",
            _depth_text(d.depth_by_priority),
            f"{d.in_flight:,}",
            f"{d.published:,}",
            f"{d.acked:,}",
            f"{d.dead_letter_depth:,} ({d.dead_lettered:,} total)",
            f"{d.duplicates:,}",
        ]
        if rates:
            row += [f"{rates[name]['published']:,.1f}", f"{rates[name]['acked']:,.1f}"]
        table.add_row(*row)
    return table


@router.command("stats")
@click.option("--url", default=None, help=_URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option(
    "--rate-window",
    default=0.0,
    show_default=True,
    help="Seconds between two readings to compute publish/ack rates (0: no rates).",
)
def stats_command(url: str | None, as_json: bool, rate_window: float) -> None:
    """Depth per destination and priority band, in-flight (pending) entries, counters,
    dead letters and consumers of a Redis Streams router."""
    r = _open(url)
    try:
        first = r.stats()
        rates = None
        if rate_window > 0:
            time.sleep(rate_window)
            second = r.stats()
            rates = {
                name: {
                    key: (getattr(second.destinations[name], key) - getattr(d, key)) / rate_window
                    for key in ("published", "acked")
                }
                for name, d in first.destinations.items()
            }
            first = second
        consumers = {name: r.consumers(name) for name in first.destinations}
        if as_json:
            data = first.to_dict()
            data["consumers"] = consumers
            if rates:
                data["rates_per_s"] = rates
            click.echo(json.dumps(data, indent=2, default=str))
            return
        console.print(_stats_table(first, rates))
        for name, items in consumers.items():
            if not items:
                continue
            table = Table(
                title=f"consumers of {name} (group {first.extra.get('group')})",
                title_justify="left",
            )
            for col in ("consumer", "pending", "idle"):
                table.add_column(col, justify="left" if col == "consumer" else "right")
            for c in items:
                table.add_row(c["name"], f"{c['pending']:,}", f"{c['idle_ms'] / 1000:,.1f} s")
            console.print(table)
    finally:
        r.close()


@router.command("dead-letters")
@click.argument("destination")
@click.option("--url", default=None, help=_URL_HELP)
@click.option("--limit", default=20, show_default=True, help="How many (oldest first).")
@click.option(
    "--requeue",
    is_flag=True,
    help="Publish them again (attempts reset) and remove them from the dead letters.",
)
def dead_letters_command(destination: str, url: str | None, limit: int, requeue: bool) -> None:
    """List (or requeue) a destination's dead letters."""
    r = _open(url)
    try:
        if requeue:
            n = r.requeue_dead_letters(destination, limit)
            console.print(f"requeued {n} dead letter(s) to {destination}")
            return
        letters = r.dead_letters(destination, limit)
        table = Table(
            title=f"dead letters of {destination} ({len(letters)} shown)", title_justify="left"
        )
        for col in ("message id", "priority", "attempts", "dead at", "reason"):
            table.add_column(col, overflow="fold")
        for dl in letters:
            m = dl.message
            table.add_row(
                m.id if m else "(undecodable)",
                str(m.priority) if m else "-",
                str(dl.attempts),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(dl.dead_at))
                if dl.dead_at
                else "-",
                dl.reason,
            )
        console.print(table)
    finally:
        r.close()
