"""A read-through cache in front of a store of record: ``ReadThroughStore(cache, backing)``.

    from synapse_mojo.stores import open_store
    open_store("redis://cache:6379/0?backing=neo4j://graph:7687&ttl=3600")  # built by open_store
    ReadThroughStore(RedisPatternCache(connection, ttl=3600), Neo4jStore(...))  # the same by hand

Reads look in the cache first, fetch misses from the backing store and put them in the cache
(unless read-only). Writes go to the backing store first (its transaction), then the touched
entries are invalidated in the cache, so a cache that fails after the write serves stale
entries at most until their ``ttl`` runs out (the error says so). Counting, iteration,
relations, info and the change feed come from the backing store. Search is pushed down to the
cache when it keeps a vector index (a Redis vector set); ``sync_vectors`` rebuilds that index
from the backing store. Read-only (``read_only=1``): no command that writes reaches the cache
or the backing store, and every write method raises ``ReadOnlyStoreError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import ReadOnlyStoreError, StoreError
from .base import (
    INFO_EMBEDDING_DIM,
    ChangeFeed,
    Pattern,
    PatternStore,
    Relation,
    WriteResult,
    id_list,
)


class PatternCache(ABC):
    """Where a ``ReadThroughStore`` keeps copies of patterns (and, optionally, a vector index).

    The cache never decides what is true: entries may expire or vanish at any time, and
    ``ReadThroughStore`` refills them from the backing store."""

    #: Backend name (``redis``): what a ``ReadThroughStore`` over this cache reports.
    backend: str = ""

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the cache is, with any password removed."""

    @abstractmethod
    def get_many(self, ids: list[str]) -> dict[str, Pattern]:
        """The cached patterns among ``ids`` (misses left out)."""

    @abstractmethod
    def put(self, patterns: list[Pattern]) -> None:
        """Caches patterns read from the backing store; best effort (a failure is logged)."""

    @abstractmethod
    def invalidate(self, ids: list[str], written: list[Pattern] | None) -> None:
        """Drops the entries of ``ids`` after a write to the backing store, and brings the
        vector index in step: ``written`` are the patterns now stored under those ids, None
        for a delete. Raises ``StoreError`` when the cache could not be updated."""

    @abstractmethod
    def clear(self) -> None:
        """Drops every entry and the vector index."""

    @property
    def supports_search(self) -> bool:
        """True when ``search`` can answer from a vector index in the cache."""
        return False

    def search(self, query: Any, top_k: int, dim: int | None) -> list[tuple[str, float]]:
        """(id, cosine) of the ``top_k`` nearest patterns; ``dim`` is the store's dimension."""
        raise NotImplementedError

    def vector_count(self) -> int:
        """Vectors in the cache's vector index (0 without one)."""
        return 0

    def rebuild_vectors(
        self, batches: Iterable[list[Pattern]], progress: Callable[[int], None] | None = None
    ) -> int:
        """Replaces the vector index with the embeddings of ``batches``; returns how many."""
        return 0

    @abstractmethod
    def close(self) -> None:
        """Releases connections. Idempotent."""


class ReadThroughStore(PatternStore):
    """``backing`` (the store of record) with ``cache`` in front of its reads."""

    def __init__(self, cache: PatternCache, backing: PatternStore, *, read_only: bool = False):
        self.cache = cache
        self.backing = backing
        self.read_only = read_only
        self.backend = cache.backend

    @property
    def url(self) -> str:
        return f"{self.cache.url} (cache over {self.backing.url})"

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.url} was opened read-only")

    def _invalidate(self, ids: list[str], written: list[Pattern] | None) -> None:
        try:
            self.cache.invalidate(ids, written)
        except StoreError as exc:
            raise type(exc)(
                f"{exc} -- the backing store {self.backing.url} was written, but the cache may "
                "serve stale entries for these ids until they expire or are written again"
            ) from exc.__cause__

    # ------------------------------------------------------------------ writes

    def upsert(
        self, patterns: Iterable[Pattern], relations: Iterable[Relation] = ()
    ) -> WriteResult:
        self._check_writable()
        pattern_list = list(patterns)
        result = self.backing.upsert(pattern_list, relations)
        self._invalidate([p.id for p in pattern_list], pattern_list)
        return result

    def delete(self, ids: Iterable[str]) -> int:
        self._check_writable()
        wanted = id_list(ids)
        removed = self.backing.delete(wanted)
        self._invalidate(wanted, None)
        return removed

    def set_info(self, values: Mapping[str, Any]) -> None:
        self._check_writable()
        self.backing.set_info(values)

    def clear(self) -> None:
        self._check_writable()
        self.backing.clear()
        self.cache.clear()

    # ------------------------------------------------------------------ reads

    def get_many(self, ids: Iterable[str]) -> dict[str, Pattern]:
        wanted = id_list(ids)
        found = self.cache.get_many(wanted)
        misses = [i for i in wanted if i not in found]
        if misses:
            fetched = self.backing.get_many(misses)
            found.update(fetched)
            if fetched and not self.read_only:
                self.cache.put(list(fetched.values()))
        return {i: found[i] for i in wanted if i in found}

    def iter_batches(self, batch_size: int = 1000) -> Iterator[list[Pattern]]:
        return self.backing.iter_batches(batch_size)

    def count(self) -> int:
        return self.backing.count()

    def relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        return self.backing.relations(ids)

    def info(self) -> dict[str, Any]:
        return self.backing.info()

    def changes(self, since: Any = None) -> ChangeFeed:
        return self.backing.changes(since)

    # ------------------------------------------------------------------ search push-down

    @property
    def supports_search(self) -> bool:
        return self.cache.supports_search

    def search(self, query: Any, top_k: int = 10) -> list[tuple[str, float]]:
        if not self.cache.supports_search:
            return super().search(query, top_k)
        return self.cache.search(query, top_k, self.info().get(INFO_EMBEDDING_DIM))

    def vectors_out_of_step(self) -> bool:
        return self.cache.supports_search and self.cache.vector_count() != self.count()

    def sync_vectors(
        self, progress: Callable[[int], None] | None = None, batch_size: int = 1000
    ) -> int:
        self._check_writable()
        return self.cache.rebuild_vectors(self.backing.iter_batches(batch_size), progress)

    def vector_count(self) -> int:
        """Vectors in the cache's vector index (0 without one)."""
        return self.cache.vector_count()

    def close(self) -> None:
        try:
            self.cache.close()
        finally:
            self.backing.close()
