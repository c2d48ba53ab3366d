"""``synapse-mojo patterns``: import, add, search, inspect and export the pattern map.

    synapse-mojo patterns import PATTERN_MAP.json           # embeds with a progress bar
    synapse-mojo patterns add --text "Retry with jittered backoff" --meta lang=py
    synapse-mojo patterns search "how do I retry safely" --top-k 5
    synapse-mojo patterns stats
    synapse-mojo patterns export --format pattern_map -o PATTERN_MAP.json

Every command takes ``--store URL`` (default: ``SYNAPSE_STORE_URL``, else
``~/.local/share/synapse-mojo/patterns.db``); text is embedded by the embedder the
environment selects (``SYNAPSE_EMBEDDINGS_URL``/``SYNAPSE_EMBEDDINGS_MODEL``, else the local
MiniLM).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import InvalidInputError
from . import main

if TYPE_CHECKING:
    from ..patternmap import PatternMap


class _OnUse:
    """``module:name``, imported at its first use: the command group loads without NumPy, the
    model or rich, so that ``patterns search`` through a running server starts fast."""

    def __init__(self, target: str) -> None:
        self._target = target

    def _get(self) -> Any:
        module, name = self._target.split(":")
        return getattr(importlib.import_module(module, __package__), name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get()(*args, **kwargs)


Table = _OnUse("rich.table:Table")
console = _OnUse("synapse_mojo.cli:console")
err_console = _OnUse("synapse_mojo.cli:err_console")


def nonempty_store_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("empty store URL (leave --store out for the default store)")
    return value


_store_option = click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    callback=nonempty_store_url,
    help="Pattern store URL: sqlite:///path.db, neo4j://host:7687, redis://host:6379/0 "
    "[default: SYNAPSE_STORE_URL or the user data file].",
)


def _parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON (numbers, true, lists) is taken as such."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected key=value", param_hint=what)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = value
    return out


def _open(
    store_url: str | None,
    *,
    start: bool,
    progress: bool = False,
    search: str = "memory",
    saved_index: bool = False,
    create: bool = False,
) -> PatternMap:
    """Opens the store; only the commands that write (import, add) pass ``create=True``: the
    others fail with "no store at PATH" rather than create a database."""
    from ..patternmap import PatternMap
    from ..stores import default_store_url

    url = store_url if store_url is not None else default_store_url()
    return PatternMap.open(
        url, start=start, progress=progress, search=search, saved_index=saved_index, create=create
    )


def _interactive() -> bool:
    return err_console.is_terminal


@main.group()
def patterns() -> None:
    """Import, add, search, inspect and export the pattern map."""


@patterns.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@_store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "pattern_map", "jsonl"]),
    default="auto",
    show_default=True,
    help="File format; auto looks at the content.",
)
@click.option(
    "--reembed", is_flag=True, help="Embed every pattern, even if the file carries embeddings."
)
@click.option("--strict", is_flag=True, help="Fail on the first record that cannot be imported.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(
    file: str, store_url: str | None, fmt: str, reembed: bool, strict: bool, as_json: bool
) -> None:
    """Import a PATTERN_MAP.json or JSONL file: embed, then write in one transaction."""
    with _open(store_url, start=False, create=True) as pmap:
        report = pmap.import_file(
            file, format=fmt, reembed=reembed, strict=strict, progress=not as_json
        )
        if as_json:
            click.echo(json.dumps({
                "source": report.source, "format": report.format, "store": pmap.store.url,
                "added": report.added, "updated": report.updated, "relations": report.relations,
                "embedded": report.embedded, "reused": report.reused,
                "skipped": [{"where": s.where, "reason": s.reason} for s in report.skipped],
            }, indent=2))  # fmt: skip
            return
        console.print(
            f"imported [bold]{report.patterns}[/bold] patterns ({report.added} new, "
            f"{report.updated} updated; {report.embedded} embedded, {report.reused} reused) and "
            f"[bold]{report.relations}[/bold] relations from {report.source} "
            f"({report.format}) into {pmap.store.url}"
        )
        if report.skipped:
            table = Table(title=f"skipped: {len(report.skipped)}", title_justify="left")
            table.add_column("where")
            table.add_column("why")
            for item in report.skipped[:50]:
                table.add_row(item.where, item.reason)
            console.print(table)
            if len(report.skipped) > 50:
                console.print(f"... and {len(report.skipped) - 50} more (use --json for all)")


@patterns.command()
@click.option("--text", required=True, help="The pattern text (what gets embedded).")
@click.option(
    "--id", "pattern_id", default=None, help="Pattern id [default: p_ + hash of the text]."
)
@click.option(
    "--meta",
    "meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata; repeatable. JSON values (numbers, true, lists) are parsed.",
)
@_store_option
def add(text: str, pattern_id: str | None, meta: tuple[str, ...], store_url: str | None) -> None:
    """Embed and store one pattern."""
    metadata = _parse_pairs(meta, "--meta")
    with _open(store_url, start=False, create=True) as pmap:
        pattern = pmap.add_text(text, metadata, pattern_id=pattern_id)
        console.print(
            f"stored [bold]{pattern.id}[/bold] in {pmap.store.url}"
            f" ({pmap.embedder.model}, {pmap.embedder.dim} dims)"
        )


@patterns.command()
@click.argument("query")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata equality filter; repeatable.",
)
@click.option(
    "--search",
    "mode",
    type=click.Choice(["memory", "store"]),
    default="memory",
    show_default=True,
    help="memory: exact search on the in-memory index (Mojo or NumPy); store: the "
    "store's own vector index (Neo4j, Redis 8).",
)
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
def search(
    query: str,
    top_k: int,
    filters: tuple[str, ...],
    mode: str,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Find the patterns most similar to QUERY."""
    flt = _parse_pairs(filters, "--filter") or None
    if mode == "memory" and _search_on_server(query, top_k, flt, store_url, as_json):
        return
    with _open(
        store_url,
        start=True,
        progress=not as_json and _interactive(),
        search=mode,
        saved_index=True,
    ) as pmap:
        result = pmap.search_detailed(query, top_k=top_k, filter=flt)
        if as_json:
            click.echo(json.dumps({
                "query": query, "runtime": result.runtime, "search_ms": result.search_ms,
                "embed_ms": result.embed_ms, "fallback_reason": result.fallback_reason,
                "hits": [
                    {"id": h.id, "score": h.score, "text": h.text, "metadata": h.metadata}
                    for h in result.hits
                ],
            }, indent=2, ensure_ascii=False))  # fmt: skip
            return
        table = Table(
            title=f"{query!r}: answered by [bold]{result.runtime}[/bold]"
            f" in {result.search_ms:.2f} ms (embedding {result.embed_ms:.1f} ms)",
            title_justify="left",
        )
        table.add_column("rank", justify="right")
        table.add_column("id")
        table.add_column("cosine", justify="right")
        table.add_column("pattern", overflow="fold")
        for rank, hit in enumerate(result.hits, 1):
            table.add_row(
                str(rank), hit.id, f"{hit.score:.4f}", hit.text.splitlines()[0] if hit.text else ""
            )
        console.print(table)
        if result.fallback_reason:
            console.print(f"[yellow]fell back to Python: {result.fallback_reason}[/yellow]")


def _search_on_server(
    query: str, top_k: int, flt: dict | None, store_url: str | None, as_json: bool
) -> bool:
    """Answers through a running ``synapse-mojo serve`` of this store, if there is one
    (docs/serve.md); False when the search has to run here."""
    from ..serve.client import call as call_server
    from ..serve.limits import LIMITS

    if not query.strip() or top_k > LIMITS.max_results or len(query) > LIMITS.query_chars:
        return False  # the in-process path gives the usual errors; the server's bounds are tighter
    found = call_server(
        "search_patterns", {"query": query, "top_k": top_k, "filter": flt}, store_url=store_url
    )
    if found is None:
        return False
    logging.getLogger("synapse_mojo.cli").info("answered by the server")
    hits = found["hits"]
    if as_json:
        click.echo(json.dumps({
            "query": query, "runtime": found["runtime"], "search_ms": found["search_ms"],
            "embed_ms": found["embed_ms"], "fallback_reason": found["fallback_reason"],
            "hits": [
                {"id": h["id"], "score": h["score"], "text": h["text"], "metadata": h["metadata"]}
                for h in hits
            ],
        }, indent=2, ensure_ascii=False))  # fmt: skip
        return True
    table = Table(
        title=f"{query!r}: answered by [bold]{found['runtime']}[/bold] (server)"
        f" in {found['search_ms']:.2f} ms (embedding {found['embed_ms']:.1f} ms)",
        title_justify="left",
    )
    table.add_column("rank", justify="right")
    table.add_column("id")
    table.add_column("cosine", justify="right")
    table.add_column("pattern", overflow="fold")
    for rank, hit in enumerate(hits, 1):
        table.add_row(
            str(rank),
            hit["id"],
            f"{hit['score']:.4f}",
            hit["text"].splitlines()[0] if hit["text"] else "",
        )
    console.print(table)
    return True


@patterns.command()
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def stats(store_url: str | None, as_json: bool) -> None:
    """Counts, embedding model and dimension of the pattern map."""
    with _open(store_url, start=False) as pmap:
        data = pmap.stats()
        for key in ("search", "indexed", "not_indexed", "index_bytes"):
            data.pop(key, None)  # about the in-memory index, which stats does not build
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        table = Table(show_header=False, title="pattern map", title_justify="left")
        table.add_column("field", style="dim")
        table.add_column("value")
        for key, value in data.items():
            table.add_row(key.replace("_", " "), "-" if value is None else str(value))
        console.print(table)


@patterns.command()
@click.argument("pattern_id")
@_store_option
def show(pattern_id: str, store_url: str | None) -> None:
    """Print one pattern (text, metadata, relations) as JSON."""
    with _open(store_url, start=False) as pmap:
        pattern = pmap.get(pattern_id)
        relations = pmap.store.relations([pattern_id])
        click.echo(json.dumps({
            "id": pattern.id, "text": pattern.text, "metadata": pattern.metadata,
            "embedding_dim": None if pattern.embedding is None else int(pattern.embedding.shape[0]),
            "created_at": pattern.created_at.isoformat() if pattern.created_at else None,
            "updated_at": pattern.updated_at.isoformat() if pattern.updated_at else None,
            "relations": [
                {"source": r.source, "target": r.target, "type": r.type, "weight": r.weight}
                for r in relations
            ],
        }, indent=2, ensure_ascii=False))  # fmt: skip


@patterns.command()
@click.argument("pattern_ids", nargs=-1, required=True)
@_store_option
def delete(pattern_ids: tuple[str, ...], store_url: str | None) -> None:
    """Delete patterns (and their relations)."""
    with _open(store_url, start=False) as pmap:
        removed = pmap.delete(list(pattern_ids))
        console.print(f"deleted {removed} of {len(pattern_ids)} pattern(s) from {pmap.store.url}")


@patterns.command()
@_store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "pattern_map"]),
    default="jsonl",
    show_default=True,
    help=(
        "jsonl: complete (embeddings, relations, info); pattern_map: the Synapse PATTERN_MAP.json."
    ),
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default="-",
    show_default=True,
    help="Output file; - for stdout.",
)
@click.option(
    "--no-embeddings",
    is_flag=True,
    help="Leave embeddings out of JSONL (smaller; re-embedded on import).",
)
def export(store_url: str | None, fmt: str, output: str, no_embeddings: bool) -> None:
    """Export the pattern map."""
    with _open(store_url, start=False) as pmap:
        if output == "-":
            count = pmap.export(sys.stdout, fmt, embeddings=not no_embeddings)
        else:
            try:
                with open(output, "w", encoding="utf-8") as fh:
                    count = pmap.export(fh, fmt, embeddings=not no_embeddings)
            except OSError as exc:
                raise InvalidInputError(f"cannot write {output}: {exc.strerror}") from exc
        err_console.print(f"exported {count} patterns from {pmap.store.url} ({fmt})")
