"""``ReadThroughStore(cache, backing)`` with a cache that is not Redis, and the vector-index
methods every store has (``vectors_out_of_step``, ``sync_vectors``).

``DictCache`` is a real, complete ``PatternCache`` (a dict), written here to show that the
read-through logic depends on the interface only; ``BrokenCache`` fails where a cache server
would (on invalidation) to check what the store says then. The Redis cache itself runs against
a real Redis in test_stores_redis.py and the contract tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import redis

from synapse_mojo.errors import ReadOnlyStoreError, StoreUnavailableError
from synapse_mojo.stores import (
    Pattern,
    PatternCache,
    ReadThroughStore,
    Relation,
    open_store,
)
from synapse_mojo.stores.redis_keys import RedisKeys


class DictCache(PatternCache):
    backend = "dict"

    def __init__(self) -> None:
        self.entries: dict[str, Pattern] = {}
        self.puts = 0
        self.closed = False

    @property
    def url(self) -> str:
        return "dict://"

    def get_many(self, ids: list[str]) -> dict[str, Pattern]:
        return {i: self.entries[i] for i in ids if i in self.entries}

    def put(self, patterns: list[Pattern]) -> None:
        self.puts += 1
        self.entries.update((p.id, p) for p in patterns)

    def invalidate(self, ids: list[str], written: list[Pattern] | None) -> None:
        for i in ids:
            self.entries.pop(i, None)

    def clear(self) -> None:
        self.entries.clear()

    def close(self) -> None:
        self.closed = True


class BrokenCache(DictCache):
    def invalidate(self, ids: list[str], written: list[Pattern] | None) -> None:
        raise StoreUnavailableError("dict:// is unavailable while invalidating")


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_reads_go_through_the_cache_and_writes_invalidate_it():
    cache = DictCache()
    with ReadThroughStore(cache, open_store("sqlite://")) as store:
        assert store.url == "dict:// (cache over sqlite://)" and store.backend == "dict"
        store.upsert([Pattern("a", "x", {}, _vec(1)), Pattern("b", "y")], [Relation("a", "b")])
        assert cache.entries == {}  # writes never fill
        assert store.get("a").text == "x" and "a" in cache.entries
        store.get("a")
        assert cache.puts == 1  # the second read was a hit
        store.upsert([Pattern("a", "changed")])
        assert "a" not in cache.entries and store.get("a").text == "changed"
        assert store.count() == 2 and len(store.relations()) == 1
        assert store.delete(["a"]) == 1 and store.get_many(["a"]) == {}
        assert not store.supports_search and not store.vectors_out_of_step()
        assert store.sync_vectors() == 0
    assert cache.closed


def test_read_only_never_fills_or_writes():
    backing = open_store("sqlite://")
    backing.upsert([Pattern("a", "x")])
    cache = DictCache()
    store = ReadThroughStore(cache, backing, read_only=True)
    assert store.get("a").text == "x" and cache.entries == {}
    for write in (
        lambda: store.upsert([Pattern("b", "y")]),
        lambda: store.delete(["a"]),
        lambda: store.set_info({"k": 1}),
        store.clear,
        store.sync_vectors,
    ):
        with pytest.raises(ReadOnlyStoreError):
            write()
    store.close()


def test_a_cache_failing_after_the_write_says_the_backing_store_was_written():
    backing = open_store("sqlite://")
    store = ReadThroughStore(BrokenCache(), backing)
    with pytest.raises(StoreUnavailableError, match="sqlite:// was written, but the cache may"):
        store.upsert([Pattern("a", "x")])
    assert backing.get("a").text == "x"
    store.close()


def test_stores_without_a_separate_vector_index(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        store.upsert([Pattern("a", "x", {}, _vec(1))])
        assert not store.vectors_out_of_step() and store.sync_vectors() == 0


def test_redis_vector_sets_report_and_repair_falling_behind(redis_server, tmp_path):
    backing = f"sqlite:///{tmp_path / 'b.db'}"
    with open_store(backing) as sqlite_store:  # a map that exists before the cache does
        sqlite_store.upsert([Pattern(f"p{i}", "x", {}, _vec(i)) for i in range(5)])
    with open_store(f"{redis_server.url}?backing={backing}") as cache:
        assert cache.vectors_out_of_step()
        assert cache.sync_vectors() == 5 and not cache.vectors_out_of_step()
    with open_store(f"{redis_server.url}?prefix=own") as store:
        store.upsert([Pattern("a", "x", {}, _vec(1))])
        assert not store.vectors_out_of_step()
        # The set lost (e.g. vector_set turned on after the patterns were written):
        redis.Redis.from_url(redis_server.url).unlink(RedisKeys("own").vectors)
        assert store.vectors_out_of_step()
        assert store.sync_vectors() == 1 and not store.vectors_out_of_step()
