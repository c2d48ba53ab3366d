"""``synapse-mojo search QUERY [MAX_RESULTS] --json``: the pilot's search tool contract.

The Synapse system's tools call this command and parse its JSON (built by
:mod:`synapse_mojo.compat.tools`, shared with the MCP server)::

    {"query": ..., "max_results": 10, "latency_ms": 3,
     "results": [{"id", "name", "description", "language", "type", "similarity"}, ...]}

As the pilot's ``synapse_search.py``: ``MAX_RESULTS`` defaults to 10 and 0 gives no results; an
empty query prints an empty result list; a store that cannot be searched (or an empty one)
prints the same keys plus ``error``; with ``--json`` the exit status is 0 in every one of these
cases. When a ``synapse-mojo serve`` of the same store is running (``SYNAPSE_SERVER_URL``, or its
Unix socket in the runtime directory), it answers instead: same document, no model or index
loaded here. It ranks the whole pattern map of the configured store (``--store`` /
``SYNAPSE_STORE_URL`` / the embedded default) with exact cosine similarity; the pilot's Cypher
query applied ``LIMIT`` before ranking, so it ranked an arbitrary subset.
"""

from __future__ import annotations

import json
import logging
import sys

import click

from . import main


@main.command("search")
@click.argument("query")
@click.argument("max_results", required=False, default=10, type=click.IntRange(min=0))
@click.option(
    "--store",
    "store_url",
    envvar="SYNAPSE_STORE_URL",
    default=None,
    metavar="URL",
    help="Pattern store [default: SYNAPSE_STORE_URL or the embedded user data file].",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the pilot's JSON contract (exit status 0, errors in 'error').",
)
def search_command(query: str, max_results: int, store_url: str | None, as_json: bool) -> None:
    """Rank the whole pattern map against QUERY; print the best MAX_RESULTS (default 10)."""
    # A running server (SYNAPSE_SERVER_URL, or the socket in the runtime dir; see docs/serve.md)
    # answers without loading anything here; otherwise the search runs in this process.
    # Imported here so that `synapse-mojo search --help` stays fast.
    from ..serve.client import call as call_server
    from ..serve.limits import LIMITS

    payload = None
    if (
        max_results <= LIMITS.max_results and len(query) <= LIMITS.query_chars
    ):  # else: over the server's bounds
        arguments = {"query": query, "max_results": max_results}
        payload = call_server("search_pattern_map", arguments, store_url=store_url)
    if payload is not None:
        logging.getLogger("synapse_mojo.cli").info("answered by the server")
    else:
        from ..compat.tools import search_patterns

        payload = search_patterns(query, max_results, store_url=store_url)
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    from rich.table import Table

    from . import console, err_console

    if "error" in payload:
        err_console.print(f"[red]error:[/red] {payload['error']}")
        sys.exit(2)
    rows = payload["results"]
    table = Table(
        title=f"{query!r}: {len(rows)} results in {payload['latency_ms']} ms", title_justify="left"
    )
    for col in ("rank", "id", "name", "language", "type", "similarity"):
        table.add_column(col, overflow="fold")
    for rank, row in enumerate(rows, 1):
        table.add_row(
            str(rank),
            row["id"],
            str(row["name"] or ""),
            str(row["language"] or ""),
            str(row["type"]),
            f"{row['similarity']:.3f}",
        )
    console.print(table)
