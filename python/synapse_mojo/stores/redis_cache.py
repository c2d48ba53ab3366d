"""Redis as the cache of a ``ReadThroughStore``: pattern entries with a TTL, and a vector set.

    open_store("redis://cache:6379/0?backing=neo4j://graph:7687&ttl=3600")
    open_store("redis://cache:6379/0?backing=sqlite:///p.db&read_only=1")  # never writes

Entries are the ``pattern:<id>`` hashes of the key schema (``redis_keys``), each expiring
``ttl`` seconds after it was filled (default 3600; 0 = no expiry). Ids, relations and info are
never cached: they come from the backing store. On Redis 8 the cache also keeps a vector set
in step with the writes that pass through it, so search can be pushed down to ``VSIM``;
``ReadThroughStore.sync_vectors()`` rebuilds it from the backing store (e.g. when a cache is
put in front of an existing Neo4j map). URL options: ``ttl``, ``read_only`` and those of
``RedisConnection`` (``prefix``, ``vector_set``, ``quantization``, ``timeout``, redis-py's).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import StoreError
from .base import Pattern, now_micros, to_micros
from .read_through import PatternCache
from .redis_connection import PIPELINE_CHUNK, RedisConnection, pattern_fields
from .url_options import take_number

log = logging.getLogger("synapse_mojo.stores.redis")

#: Seconds a cached entry lives when the URL gives no ``ttl``.
DEFAULT_TTL = 3600


class RedisPatternCache(PatternCache):
    """Cached pattern entries (``ttl`` seconds; 0 = no expiry) and a vector set in Redis."""

    backend = "redis"

    def __init__(self, connection: RedisConnection, *, ttl: int = DEFAULT_TTL) -> None:
        self._connection = connection
        self.keys = connection.keys
        self.ttl = int(ttl)

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, str]) -> RedisPatternCache:
        """Connects to the cache a ``redis://`` URL names (``read_only``/``backing`` already
        taken by the caller)."""
        opts = dict(options)
        ttl = int(take_number(opts, "ttl", DEFAULT_TTL, url, integer=True))
        connection = RedisConnection.from_url(url, opts, own=("backing", "read_only", "ttl"))
        return cls(connection, ttl=ttl)

    @property
    def url(self) -> str:
        return self._connection.url

    def get_many(self, ids: list[str]) -> dict[str, Pattern]:
        with self._connection.errors("reading cached patterns"):
            return self._connection.read_patterns(ids)

    def put(self, patterns: list[Pattern]) -> None:
        try:
            with self._connection.errors("filling the cache"):
                pipe = self._connection.client.pipeline(transaction=False)
                for p in patterns:
                    key = self.keys.pattern(p.id)
                    created = to_micros(p.created_at) if p.created_at else now_micros()
                    updated = to_micros(p.updated_at) if p.updated_at else created
                    metadata = json.dumps(p.metadata, ensure_ascii=False)
                    pipe.delete(key)
                    pipe.hset(key, mapping=pattern_fields(p, metadata, created, updated))
                    if self.ttl > 0:
                        pipe.expire(key, self.ttl)
                pipe.execute()
        except StoreError as exc:
            log.warning("could not fill the Redis cache: %s", exc)

    def invalidate(self, ids: list[str], written: list[Pattern] | None) -> None:
        connection = self._connection
        with connection.errors("invalidating cached patterns"):
            for start in range(0, len(ids), PIPELINE_CHUNK):
                chunk = ids[start : start + PIPELINE_CHUNK]
                pipe = connection.client.pipeline(transaction=True)
                pipe.delete(*[self.keys.pattern(i) for i in chunk])
                if connection.vector_set:
                    if written is None:
                        for i in chunk:
                            pipe.execute_command("VREM", self.keys.vectors, i)
                    else:
                        for pattern in written[start : start + PIPELINE_CHUNK]:
                            connection.queue_vector(pipe, pattern)
                pipe.execute()

    def clear(self) -> None:
        client = self._connection.client
        with self._connection.errors("clearing the cache"):
            batch: list[bytes] = []
            for key in client.scan_iter(match=self.keys.all_keys_glob, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)

    @property
    def supports_search(self) -> bool:
        return self._connection.vector_set

    def search(self, query: Any, top_k: int, dim: int | None) -> list[tuple[str, float]]:
        return self._connection.search_vectors(query, top_k, dim)

    def vector_count(self) -> int:
        return self._connection.vector_count()

    def rebuild_vectors(
        self, batches: Iterable[list[Pattern]], progress: Callable[[int], None] | None = None
    ) -> int:
        return self._connection.rebuild_vectors(batches, progress)

    def close(self) -> None:
        self._connection.close()
