"""Pattern stores: where the pattern map lives (embedded SQLite, Neo4j, Redis).

    from synapse_mojo.stores import Pattern, Relation, open_store
    with open_store("sqlite:///tmp/patterns.db") as store:
        store.upsert([Pattern("p_001", "cache-aside read path", {"lang": "py"})])

``open_store(url)`` picks the backend from the URL scheme (see ``stores.url``); the backends
share the ``PatternStore`` interface (see ``stores.base``). ``ReadThroughStore(cache, backing)``
puts a cache (``RedisPatternCache``) in front of any store (see ``stores.read_through``).
"""

from .base import (
    DEFAULT_RELATION_TYPE,
    INFO_EMBEDDING_DIM,
    INFO_EMBEDDING_MODEL,
    Pattern,
    PatternStore,
    Relation,
    WriteResult,
)
from .read_through import PatternCache, ReadThroughStore
from .sqlite import SQLiteStore
from .url import default_data_dir, default_store_url, open_store, redact

__all__ = [
    "DEFAULT_RELATION_TYPE",
    "INFO_EMBEDDING_DIM",
    "INFO_EMBEDDING_MODEL",
    "Neo4jStore",
    "Pattern",
    "PatternCache",
    "PatternStore",
    "ReadThroughStore",
    "RedisPatternCache",
    "RedisStore",
    "Relation",
    "SQLiteStore",
    "WriteResult",
    "default_data_dir",
    "default_store_url",
    "open_store",
    "redact",
]


def __getattr__(name: str):  # the server backends import their drivers only when used
    if name == "Neo4jStore":
        from .neo4j import Neo4jStore

        return Neo4jStore
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "RedisPatternCache":
        from .redis_cache import RedisPatternCache

        return RedisPatternCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
