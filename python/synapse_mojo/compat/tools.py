"""The pilot's two tool contracts, as plain result builders: the search tool
(``synapse_search.py``) and the health tool (``synapse_health.py``).

``synapse-mojo search`` and ``synapse-mojo health`` print these; the MCP server's
``search_pattern_map`` and ``check_system_health`` tools return them. One module, so the
contracts cannot drift apart.

Search (``search_result`` over an open :class:`PatternMap`, ``search_patterns`` opening one)::

    {"query": str, "max_results": int, "latency_ms": int,
     "results": [{"id", "name", "description", "language", "type", "similarity"}, ...],
     "error": str}                                    # only when the search could not run

As in the pilot: an empty (or blank) query answers at once with no results and
``latency_ms`` 0; ``max_results`` 0 gives an empty list; ``latency_ms`` is an int (embedding
the query plus ranking); ``similarity`` is rounded to 3 decimals; ``type`` is the pattern's
``type`` (``"unknown"`` when it has none). A store that cannot be opened or searched gives the
same keys with ``error`` and no results, never an exception. Unlike the pilot (whose Cypher
``LIMIT`` came before the ranking), the whole map is ranked; an empty map says so in ``error``.

Health (``health_report``)::

    {"status": "healthy" | "degraded" | "unhealthy", "timestamp": "...Z",
     "checks": {"neo4j": {...}, "redis": {...}, "bge_m3": {...}, "cli_tools": {...}},
     "ready_for_mcp": bool}

with the pilot's rules: ``unhealthy`` when the pattern store is down or a tool is missing,
``degraded`` when only the optional Redis is down, ``ready_for_mcp`` when the store is up and
the tools are there. ``checks["neo4j"]`` is the configured pattern store, whatever its backend
(``"backend"`` says which: ``neo4j``, ``redis``, ``sqlite``); ``checks["bge_m3"]`` is the
configured embedder; ``checks["cli_tools"]`` lists this package's tools.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the heavy modules load only when a tool runs
    from ..patternmap import PatternHit, PatternMap

#: Pilot tools that have a counterpart here -> the command that provides it.
CLI_TOOLS = {"synapse_search": "search", "synapse_health": "health"}
DEFAULT_MAX_RESULTS = 10


def _field(metadata: dict[str, Any], *names: str) -> Any:
    """The first present metadata field (pattern maps name these differently)."""
    for name in names:
        value = metadata.get(name)
        if value not in (None, "", [], {}):
            return value
    return None


def pattern_result(hit: PatternHit) -> dict[str, Any]:
    """One result row of the search contract."""
    meta = hit.metadata or {}
    first_line = hit.text.splitlines()[0] if hit.text else None
    language = _field(meta, "language", "lang", "applicable_to")
    if isinstance(language, list):
        language = ", ".join(map(str, language))
    kind = meta.get("type")
    return {
        "id": hit.id,
        "name": _field(meta, "name", "title") or first_line,
        "description": _field(meta, "description", "summary"),
        "language": language,
        "type": kind if kind not in (None, "") else "unknown",
        "similarity": round(float(hit.score), 3),
    }


def _answer(
    query: str, max_results: int, started: float | None, results: list, error: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "query": query,
        "max_results": max_results,
        "latency_ms": 0 if started is None else int((time.perf_counter() - started) * 1000),
        "results": results,
    }
    if error is not None:
        out["error"] = error
    return out


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def search_result(
    pmap: PatternMap, query: str, max_results: int = DEFAULT_MAX_RESULTS
) -> dict[str, Any]:
    """The search contract over an open pattern map (see the module docstring)."""
    from ..errors import EmptyIndexError, InvalidInputError, SynapseError

    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0:
        raise InvalidInputError(f"max_results must be an int >= 0, got {max_results!r}")
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a str, got {type(query).__name__}")
    if not query.strip():
        return _answer(query, max_results, None, [])
    started = time.perf_counter()
    try:
        if max_results == 0:
            return _answer(query, max_results, started, [])
        result = pmap.search_detailed(query, top_k=max_results)
    except EmptyIndexError:
        return _answer(
            query,
            max_results,
            started,
            [],
            f"the pattern map at {pmap.store.url} is empty: import or add patterns first",
        )
    except SynapseError as exc:
        return _answer(query, max_results, started, [], _error_text(exc))
    return _answer(query, max_results, started, [pattern_result(hit) for hit in result.hits])


def search_patterns(
    query: str, max_results: int = DEFAULT_MAX_RESULTS, *, store_url: str | None = None
) -> dict[str, Any]:
    """The pilot's ``search_patterns(query, max_results)``: opens the store (``store_url``, else
    ``SYNAPSE_STORE_URL``, else the embedded default), loads the model and kernel before timing,
    and answers with the search contract; failures come back in ``error``."""
    from ..errors import SynapseError
    from ..patternmap import PatternMap

    if isinstance(query, str) and not query.strip():
        return _answer(query, max_results, None, [])
    started = time.perf_counter()
    try:
        # opened mapped when unchanged; read-only: never creates a store
        pmap = PatternMap.open(store_url, start=True, saved_index=True, create=False)
    except SynapseError as exc:
        return _answer(query, max_results, started, [], _error_text(exc))
    try:
        # One-time costs first (model load, kernel load and self-check): latency_ms is the search.
        pmap.warm_up()
        return search_result(pmap, query, max_results)
    except SynapseError as exc:
        return _answer(query, max_results, started, [], _error_text(exc))
    finally:
        pmap.close()


# ---------------------------------------------------------------------------- health


def check_store(store_url: str | None = None, *, pmap: PatternMap | None = None) -> dict[str, Any]:
    """``{"status": "up", "latency_ms", "version", "backend", "store", "patterns"}`` or
    ``{"status": "down", "error"}`` for the pattern store (``pmap``'s open store when given)."""
    from ..stores import open_store
    from ..stores.url import default_store_url, redact

    url = pmap.store.url if pmap is not None else (store_url or default_store_url())
    started = time.perf_counter()
    try:
        store = pmap.store if pmap is not None else open_store(url)
        try:
            patterns = store.count()
            backend = store.backend
        finally:
            if pmap is None:
                store.close()
    except Exception as exc:  # a health check reports every failure, it never raises
        return {"status": "down", "error": _error_text(exc), "store": redact(url)}
    from importlib.metadata import version

    return {
        "status": "up",
        "latency_ms": int((time.perf_counter() - started) * 1000),
        "version": f"synapse-mojo {version('synapse-mojo')} ({backend})",
        "backend": backend,
        "store": redact(url),
        "patterns": patterns,
    }


def check_redis(redis_url: str | None = None) -> dict[str, Any]:
    """The optional Redis: ``redis_url``, else ``SYNAPSE_ROUTER_URL`` or ``SYNAPSE_STORE_URL``
    when either is a Redis URL."""
    from ..stores.url import redact

    if redis_url is None:
        for name in ("SYNAPSE_ROUTER_URL", "SYNAPSE_STORE_URL"):
            value = os.environ.get(name, "").strip()
            if value.startswith(("redis://", "rediss://", "unix://")):
                redis_url = value.split("?", 1)[0]
                break
    if not redis_url:
        return {
            "status": "down",
            "error": "no Redis configured (SYNAPSE_ROUTER_URL=redis://...)",
            "optional": True,
        }
    try:
        from .._extras import require

        require("redis", "the Redis check")
        import redis

        started = time.perf_counter()
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # reported, not raised
        return {
            "status": "down",
            "error": _error_text(exc),
            "optional": True,
            "url": redact(redis_url),
        }
    return {
        "status": "up",
        "latency_ms": int((time.perf_counter() - started) * 1000),
        "optional": True,
        "url": redact(redis_url),
    }


def check_embedder(*, pmap: PatternMap | None = None) -> dict[str, Any]:
    """The configured embedder (the pilot checked its BGE-M3 model): ``available`` when it can
    be created here (or ``pmap``'s loaded one), with its model name and path (or server URL)."""
    from ..embeddings import embedder_from_env
    from ..stores.url import redact

    try:
        embedder = pmap.embedder if pmap is not None else embedder_from_env()
    except Exception as exc:  # reported, not raised
        return {"status": "unavailable", "error": _error_text(exc)}
    path = (
        getattr(embedder, "model_dir", None)
        or getattr(embedder, "url", None)
        or getattr(embedder, "base_url", None)
    )
    out = {
        "status": "available",
        "model": embedder.model,
        "model_path": redact(str(path)) if path else None,
    }
    close = getattr(embedder, "close", None)
    if callable(close) and pmap is None:
        close()
    return out


def check_cli_tools() -> dict[str, str]:
    """``executable`` for each tool whose command is installed (the ``synapse-mojo`` script)."""
    found = shutil.which("synapse-mojo") is not None
    return {tool: "executable" if found else "not_found" for tool in CLI_TOOLS}


def overall_status(checks: dict[str, Any]) -> str:
    store_up = checks["neo4j"]["status"] == "up"
    tools_ok = all(status == "executable" for status in checks["cli_tools"].values())
    if not store_up or not tools_ok:
        return "unhealthy"
    return "degraded" if checks["redis"]["status"] != "up" else "healthy"


def ready_for_mcp(checks: dict[str, Any]) -> bool:
    return checks["neo4j"]["status"] == "up" and all(
        s == "executable" for s in checks["cli_tools"].values()
    )


def health_report(
    *, store_url: str | None = None, redis_url: str | None = None, pmap: PatternMap | None = None
) -> dict[str, Any]:
    """The health contract (see the module docstring). ``pmap``: check this open pattern map's
    store and embedder instead of opening new ones (``synapse-mojo serve``)."""
    checks = {
        "neo4j": check_store(store_url, pmap=pmap),
        "redis": check_redis(redis_url),
        "bge_m3": check_embedder(pmap=pmap),
        "cli_tools": check_cli_tools(),
    }
    return {
        "status": overall_status(checks),
        "timestamp": datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z",
        "checks": checks,
        "ready_for_mcp": ready_for_mcp(checks),
    }


__all__ = [
    "CLI_TOOLS",
    "DEFAULT_MAX_RESULTS",
    "check_cli_tools",
    "check_embedder",
    "check_redis",
    "check_store",
    "health_report",
    "overall_status",
    "pattern_result",
    "ready_for_mcp",
    "search_patterns",
    "search_result",
]
