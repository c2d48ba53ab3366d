"""``synapse-mojo health [--json] [--verbose]``: the pilot's health tool contract.

The JSON (built by :mod:`synapse_mojo.compat.tools`, shared with the MCP server) is the one of
the pilot's ``synapse_health.py``::

    {"status": "healthy" | "degraded" | "unhealthy", "timestamp": "...Z",
     "checks": {"neo4j": {...}, "redis": {...}, "bge_m3": {...}, "cli_tools": {...}},
     "ready_for_mcp": true}

``checks["neo4j"]`` is the configured pattern store whatever its backend (``backend`` says
which), ``checks["bge_m3"]`` the configured embedder, ``checks["redis"]`` the optional Redis
(``--redis``, else ``SYNAPSE_ROUTER_URL``/``SYNAPSE_STORE_URL`` when they name one). The exit
status is 0 whatever the health, as in the pilot: read ``status``.
"""

from __future__ import annotations

import json

import click

from . import main


@main.command("health")
@click.option(
    "--store",
    "store_url",
    envvar="SYNAPSE_STORE_URL",
    default=None,
    metavar="URL",
    help="Pattern store [default: SYNAPSE_STORE_URL or the embedded user data file].",
)
@click.option(
    "--redis",
    "redis_url",
    default=None,
    metavar="URL",
    help="Redis to check [default: SYNAPSE_ROUTER_URL or SYNAPSE_STORE_URL if a Redis URL].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the pilot's JSON contract.")
@click.option("--verbose", is_flag=True, help="Show versions, paths and errors.")
def health_command(
    store_url: str | None, redis_url: str | None, as_json: bool, verbose: bool
) -> None:
    """Check the pattern store, Redis, the embedder and the tools; say if ready for MCP."""
    from ..compat.tools import health_report

    report = health_report(store_url=store_url, redis_url=redis_url)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    checks = report["checks"]
    store, redis, embedder = checks["neo4j"], checks["redis"], checks["bge_m3"]
    mark = lambda ok: "✓" if ok else "✗"  # noqa: E731
    up = store["status"] == "up"
    click.echo("=== Synapse Health Status ===\n")
    click.echo(
        f"Store:  {mark(up)} {store['status'].upper()}"
        + (f" ({store['latency_ms']}ms, {store['backend']})" if up else "")
    )
    if verbose:
        click.echo(f"  {store.get('version') if up else 'Error: ' + store.get('error', 'unknown')}")
    redis_up = redis["status"] == "up"
    click.echo(
        f"Redis:  {mark(redis_up)} {redis['status'].upper()}"
        + (f" ({redis['latency_ms']}ms, optional)" if redis_up else " (optional)")
    )
    if verbose and not redis_up:
        click.echo(f"  Error: {redis.get('error', 'unknown')}")
    available = embedder["status"] == "available"
    click.echo(
        f"Embedder: {mark(available)} {embedder['status'].upper()}"
        + (f" ({embedder['model']})" if available else "")
    )
    if verbose:
        detail = (
            f"Path: {embedder.get('model_path')}"
            if available
            else f"Error: {embedder.get('error', 'unknown')}"
        )
        click.echo(f"  {detail}")
    click.echo("\nCLI Tools:")
    for tool, status in checks["cli_tools"].items():
        click.echo(f"  {tool}: {mark(status == 'executable')} {status}")
    click.echo(f"\nOverall Status: {report['status'].upper()}")
    click.echo(f"Ready for MCP: {'YES' if report['ready_for_mcp'] else 'NO'}")
    if verbose:
        click.echo(f"\nTimestamp: {report['timestamp']}")
