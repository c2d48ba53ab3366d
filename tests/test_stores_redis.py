"""Redis store specifics against a real redis-server 8.2: the key schema, read-only mode,
the read-through cache and its invalidation, vector-set search push-down, bad credentials and
a server that goes away (the shared contract is in test_stores_contract.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import redis

from synapse_mojo.errors import (
    ConfigError,
    ReadOnlyStoreError,
    StoreAuthError,
    StoreUnavailableError,
    UnsupportedStoreOperationError,
)
from synapse_mojo.stores import Pattern, Relation, open_store
from synapse_mojo.stores.redis_keys import RedisKeys

from .servers import RedisServer

WRITE_COMMANDS = (
    "hset",
    "del",
    "unlink",
    "zadd",
    "zrem",
    "incrby",
    "sadd",
    "srem",
    "hdel",
    "expire",
    "vadd",
    "vrem",
    "set",
    "xadd",
)


def _vec(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _writes(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in WRITE_COMMANDS}


def test_key_schema_is_the_documented_one(redis_server):
    store = open_store(f"{redis_server.url}?prefix=pm-test")
    store.upsert(
        [Pattern("a", "text a", {"k": 1}, _vec(1)), Pattern("b", "text b")],
        [Relation("a", "b", "refines", 0.5)],
    )
    client = redis.Redis.from_url(redis_server.url)
    keys = RedisKeys("pm-test")
    assert {k.decode() for k in client.keys("*")} == {
        keys.pattern("a"), keys.pattern("b"), keys.ids, keys.seq, keys.info,
        keys.relations_out("a"), keys.relations_in("b"), keys.vectors, keys.changes,
    }  # fmt: skip
    fields = client.hgetall(keys.pattern("a"))
    assert fields[b"text"] == b"text a" and fields[b"metadata"] == b'{"k":1}'
    assert (
        np.array_equal(np.frombuffer(fields[b"embedding"], "<f4"), _vec(1))
        and fields[b"dim"] == b"16"
    )
    assert b"embedding" not in client.hgetall(keys.pattern("b"))
    assert client.zrange(keys.ids, 0, -1) == [b"a", b"b"]
    assert client.hgetall(keys.relations_out("a")) == {b'["b","refines"]': b"0.5"}
    assert client.smembers(keys.relations_in("b")) == {b'["a","refines"]'}
    assert client.execute_command("VCARD", keys.vectors) == 1
    store.clear()
    assert client.keys("*") == [keys.changes.encode()]  # the change feed stays, with a clear entry
    store.close()


def test_read_only_sends_no_writes(redis_server):
    with open_store(redis_server.url) as writer:
        writer.upsert(
            [Pattern("a", "x", {}, _vec(2)), Pattern("b", "y", {}, _vec(3))], [Relation("a", "b")]
        )
    client = redis.Redis.from_url(redis_server.url)
    before = _writes(client)
    with open_store(f"{redis_server.url}?read_only=1") as ro:
        assert ro.read_only
        assert ro.get("a").text == "x" and ro.count() == 2 and len(ro.relations()) == 1
        assert [h[0] for h in ro.search(_vec(2), 1)] == ["a"]
        for write in (
            lambda: ro.upsert([Pattern("c", "z")]),
            lambda: ro.delete(["a"]),
            lambda: ro.set_info({"k": 1}),
            ro.clear,
            ro.sync_vectors,
        ):
            with pytest.raises(ReadOnlyStoreError):
                write()
    assert _writes(client) == before


def test_cache_reads_through_fills_and_invalidates(redis_server, tmp_path):
    backing = f"sqlite:///{tmp_path / 'b.db'}"
    client = redis.Redis.from_url(redis_server.url)
    keys = RedisKeys()
    with open_store(backing) as sqlite_store:  # data that exists before the cache does
        sqlite_store.upsert(
            [Pattern("a", "from sqlite", {}, _vec(4)), Pattern("b", "second", {}, _vec(5))]
        )
    with open_store(f"{redis_server.url}?backing={backing}&ttl=120") as cache:
        assert "cache over sqlite" in cache.url
        assert client.exists(keys.pattern("a")) == 0
        assert cache.get("a").text == "from sqlite"
        assert client.exists(keys.pattern("a")) == 1 and 0 < client.ttl(keys.pattern("a")) <= 120
        assert cache.get("a").text == "from sqlite"  # now from Redis
        cache.upsert([Pattern("a", "changed", {}, _vec(6))])
        assert client.exists(keys.pattern("a")) == 0  # invalidated, not left stale
        assert cache.get("a").text == "changed"
        with open_store(backing) as sqlite_store:
            assert sqlite_store.get("a").text == "changed"  # written to the store of record
        assert cache.count() == 2 and cache.info()["embedding_dim"] == 16
        cache.delete(["a"])
        assert client.exists(keys.pattern("a")) == 0 and cache.get_many(["a"]) == {}
        # The vector set only knew "a" (written through the cache): rebuild it from SQLite.
        assert cache.vector_count() == 0
        assert cache.sync_vectors() == 1 and cache.vector_count() == 1
        assert [h[0] for h in cache.search(_vec(5), 1)] == ["b"]


def test_read_only_cache_does_not_fill(redis_server, tmp_path):
    backing = f"sqlite:///{tmp_path / 'b.db'}"
    with open_store(backing) as sqlite_store:
        sqlite_store.upsert([Pattern("a", "x")])
    client = redis.Redis.from_url(redis_server.url)
    with open_store(f"{redis_server.url}?backing={backing}&read_only=1") as ro:
        assert ro.backing.read_only  # the backing store is opened read-only too
        assert ro.get("a").text == "x"
        with pytest.raises(ReadOnlyStoreError):
            ro.upsert([Pattern("b", "y")])
    assert client.keys("*") == []


def test_vector_set_search_push_down(redis_server):
    with open_store(redis_server.url) as store:
        assert store.supports_search
        vectors = {f"p{i}": _vec(10 + i) for i in range(40)}
        store.upsert([Pattern(k, k, {}, v) for k, v in vectors.items()])
        query = vectors["p7"] + 0.05 * _vec(99)
        hits = store.search(query, 5)
        exact = sorted(vectors, key=lambda k: -float(vectors[k] @ (query / np.linalg.norm(query))))
        assert hits[0][0] == exact[0] == "p7"
        for pid, score in hits:  # VSIM reports (1 + cos) / 2; search gives back the cosine
            cos = float(vectors[pid] @ (query / np.linalg.norm(query)))
            assert abs(score - cos) < 1e-5
        store.delete(["p7"])
        assert "p7" not in [h[0] for h in store.search(query, 5)]
        store.upsert([Pattern("p8", "no embedding any more")])
        assert store.vector_count() == 38
        assert store.sync_vectors() == 38


def test_vector_sets_can_be_turned_off(redis_server):
    with open_store(f"{redis_server.url}?vector_set=0") as store:
        store.upsert([Pattern("a", "x", {}, _vec(1))])
        assert not store.supports_search
        with pytest.raises(UnsupportedStoreOperationError):
            store.search(_vec(1), 1)
    assert redis.Redis.from_url(redis_server.url).exists(RedisKeys().vectors) == 0


def test_quantized_vector_set(redis_server):
    with open_store(f"{redis_server.url}?quantization=q8") as store:
        store.upsert([Pattern(f"p{i}", "x", {}, _vec(i)) for i in range(10)])
        assert store.search(_vec(3), 1)[0][0] == "p3"


def test_concurrent_writers_do_not_lose_patterns(redis_server):
    # Eight writers contending for the same keys: optimistic transactions back off and retry
    # (16 immediate retries ran out for 3 of 8 writers).
    writers, per_writer = 8, 40
    stores = [open_store(redis_server.url) for _ in range(writers)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_writer):
                stores[n].upsert([Pattern(f"w{n}-{i}", "x", {}, _vec(n * 1000 + i))])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert stores[0].count() == writers * per_writer
    ids = [p.id for p in stores[0].iter_patterns(7)]
    assert len(ids) == len(set(ids)) == writers * per_writer
    for s in stores:
        s.close()


def test_wrong_credentials(redis_binary):
    with RedisServer(redis_binary, extra_args=["--requirepass", "s3cret-pw"]) as server:
        for url in (server.url, server.url.replace("redis://", "redis://:wrong@")):
            with pytest.raises(StoreAuthError) as info:
                open_store(url)
            assert "wrong" not in str(info.value) and "s3cret" not in str(info.value)
        with open_store(server.url.replace("redis://", "redis://:s3cret-pw@")) as store:
            store.upsert([Pattern("a", "x")])
            assert "s3cret" not in store.url


def test_server_down(redis_binary):
    server = RedisServer(redis_binary).start()
    store = open_store(f"{server.url}?timeout=2")
    store.upsert([Pattern("a", "x")])
    server.cleanup()
    with pytest.raises(StoreUnavailableError):
        store.get("a")
    with pytest.raises(StoreUnavailableError):
        store.upsert([Pattern("b", "y")])
    store.close()
    with pytest.raises(StoreUnavailableError):
        open_store(f"{server.url}?timeout=2")


@pytest.mark.parametrize(
    "query, message",
    [
        ("ttl=60", "needs a backing store"),
        ("backing=redis://other:6379/0", "cannot be the backing store"),
        ("prefix=bad*prefix", "prefix"),
        ("quantization=q4", "quantization"),
        ("vector_set=perhaps", "not a boolean"),
        ("colour=blue", "unknown option"),
        ("backing=cassandra://x", "unknown scheme"),
    ],
)
def test_bad_options(redis_server, query, message):
    with pytest.raises(ConfigError, match=message):
        open_store(f"{redis_server.url}?{query}")
