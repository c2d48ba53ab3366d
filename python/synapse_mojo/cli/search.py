"""``synapse-mojo search QUERY [MAX_RESULTS] --json``: the pilot's search tool contract.

The Synapse system's tools call this command and parse its JSON::

    {"query": ..., "max_results": 5, "latency_ms": 3.2,
     "results": [{"id", "name", "description", "language", "type", "similarity"}, ...]}

``latency_ms`` is embedding the query plus ranking (model and kernel are loaded before timing). It ranks
the whole pattern map of the configured store (``--store`` / ``SYNAPSE_STORE_URL`` /
the embedded default) with exact cosine similarity. The pilot's Cypher query applied ``LIMIT``
before ranking, so it ranked an arbitrary subset; this command never does.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from . import main


def _field(metadata: dict[str, Any], *names: str) -> Any:
    """The first present metadata field (pattern maps name these differently)."""
    for name in names:
        value = metadata.get(name)
        if value not in (None, "", [], {}):
            return value
    return None


def _result(hit: Any) -> dict[str, Any]:
    meta = hit.metadata or {}
    first_line = hit.text.splitlines()[0] if hit.text else None
    language = _field(meta, "language", "lang", "applicable_to")
    if isinstance(language, list):
        language = ", ".join(map(str, language))
    return {
        "id": hit.id,
        "name": _field(meta, "name", "title") or first_line,
        "description": _field(meta, "description", "summary"),
        "language": language,
        "type": _field(meta, "type", "kind", "category", "abstraction_level"),
        "similarity": round(float(hit.score), 6),
    }


@main.command("search")
@click.argument("query")
@click.argument("max_results", required=False, default=5, type=click.IntRange(min=1))
@click.option("--store", "store_url", envvar="SYNAPSE_STORE_URL", default=None, metavar="URL",
              help="Pattern store [default: SYNAPSE_STORE_URL or the embedded user data file].")
@click.option("--json", "as_json", is_flag=True, help="Print the pilot's JSON contract.")
def search_command(query: str, max_results: int, store_url: str | None, as_json: bool) -> None:
    """Rank the whole pattern map against QUERY; print the best MAX_RESULTS (default 5)."""
    if not query.strip():
        raise click.BadParameter("QUERY must not be empty", param_hint="QUERY")
    # Imported here so that `synapse-mojo search --help` stays fast.
    from rich.table import Table

    from ..patternmap import PatternMap
    from ..stores import default_store_url
    from . import console, err_console

    with PatternMap.open(store_url or default_store_url(), start=True, progress=not as_json and err_console.is_terminal) as pmap:
        # One-time costs first (model load, kernel load and self-check): latency_ms is the search.
        pmap.embedder.embed(["warm-up"])
        if pmap.index is not None:
            pmap.index.runtime.feature("pattern_search").kernel()
        started = time.perf_counter()
        result = pmap.search_detailed(query, top_k=max_results)
        latency_ms = (time.perf_counter() - started) * 1e3
    payload = {
        "query": query,
        "max_results": max_results,
        "latency_ms": round(latency_ms, 3),
        "results": [_result(hit) for hit in result.hits],
    }
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    table = Table(title=f"{query!r}: {len(result.hits)} results in {latency_ms:.1f} ms ({result.runtime})", title_justify="left")
    for col in ("rank", "id", "name", "language", "type", "similarity"):
        table.add_column(col, overflow="fold")
    for rank, row in enumerate(payload["results"], 1):
        table.add_row(str(rank), row["id"], str(row["name"] or ""), str(row["language"] or ""), str(row["type"] or ""), f"{row['similarity']:.4f}")
    console.print(table)
