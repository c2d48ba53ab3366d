"""``PatternMap``: the index built from the store on start and kept in step on writes, text
search with the local MiniLM, push-down to Redis vector sets, and its error cases."""

from __future__ import annotations

import numpy as np
import pytest

from synapse_mojo.embeddings import MiniLMEmbedder
from synapse_mojo.errors import (
    DimensionMismatchError,
    EmptyIndexError,
    InvalidInputError,
    UnsupportedStoreOperationError,
)
from synapse_mojo.patternmap import PatternMap
from synapse_mojo.runtime.adapter import Runtime
from synapse_mojo.stores import Pattern, Relation, open_store

TEXTS = {
    "retry": "Retry transient network failures with exponential backoff and jitter",
    "cache": "Cache-aside: read from Redis first and load from the database on a miss",
    "batch": "Batch many small database writes into one transaction",
    "queue": "Bounded queue with backpressure between producers and consumers",
    "dlq": "Move poison messages to a dead-letter queue after repeated failures",
}


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def pmap(tmp_path, embedder):
    with PatternMap.open(f"sqlite:///{tmp_path / 'p.db'}", embedder=embedder) as pm:
        for pid, text in TEXTS.items():
            pm.add_text(
                text,
                {"kind": pid, "lang": "py" if pid in ("retry", "batch") else "go"},
                pattern_id=pid,
            )
        yield pm


def test_text_search_finds_the_right_pattern(pmap):
    result = pmap.search_detailed("how should I retry failed HTTP calls?", top_k=3)
    assert result.hits[0].id == "retry"
    assert result.runtime in ("mojo", "python") and result.search_ms >= 0 and result.embed_ms > 0
    assert result.hits[0].text == TEXTS["retry"] and result.hits[0].metadata["kind"] == "retry"
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert pmap.search("poison message handling", top_k=1)[0].id == "dlq"


def test_filters(pmap):
    hits = pmap.search("database", top_k=5, filter={"lang": "go"})
    assert {h.id for h in hits} <= {"cache", "queue", "dlq"} and hits[0].id == "cache"


def test_index_stays_in_step_with_writes(pmap):
    assert len(pmap.index) == 5
    pmap.add_text(
        "Use a circuit breaker to stop calling a failing dependency", pattern_id="breaker"
    )
    assert len(pmap.index) == 6
    assert pmap.search("stop calling a dependency that keeps failing", top_k=1)[0].id == "breaker"
    pmap.delete("breaker")
    assert "breaker" not in pmap.index and "breaker" not in pmap
    pmap.upsert([Pattern("cache", "Sort a list of numbers in place")])  # text changed: re-embedded
    assert pmap.search("sorting numbers", top_k=1)[0].id == "cache"
    vector, _ = pmap.index.get("cache")
    np.testing.assert_allclose(vector, pmap.store.get("cache").embedding, atol=1e-6)


def test_a_failed_write_leaves_index_and_store_unchanged(pmap):
    before = pmap.index.ids()
    with pytest.raises(InvalidInputError, match="ghost"):
        pmap.upsert([Pattern("new", "a brand new pattern")], [Relation("new", "ghost")])
    assert pmap.index.ids() == before and "new" not in pmap


def test_start_rebuilds_from_the_store_and_embeds_what_is_missing(tmp_path, embedder):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as store:  # written by someone else, without embeddings
        store.upsert([Pattern(pid, text, {"kind": pid}) for pid, text in TEXTS.items()])
    with PatternMap.open(url, embedder=embedder) as pm:
        assert len(pm.index) == 5 and pm.not_indexed == 0
        assert pm.store.get("retry").embedding is not None  # written back
        assert pm.store.info()["embedding_model"] == embedder.model
        assert pm.stats()["indexed"] == 5
    with PatternMap.open(url, embedder=embedder) as again:  # vectors now come from the store
        assert len(again.index) == 5


def test_read_only_store_leaves_unembedded_patterns_out(tmp_path, embedder):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as store:
        store.upsert([Pattern("a", "no vector yet")])
    with PatternMap.open(f"{url}?read_only=1", embedder=embedder) as pm:
        assert pm.not_indexed == 1 and pm.index is None
        with pytest.raises(EmptyIndexError):
            pm.search("anything")


def test_dimension_mismatch_between_embedder_and_store(tmp_path, embedder):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as store:
        store.upsert([Pattern("a", "x", {}, np.ones(16, dtype=np.float32))])
    with PatternMap.open(url, embedder=embedder) as pm:
        with pytest.raises(
            DimensionMismatchError, match="16-dimensional.*384 dimensions.*SYNAPSE_EMBEDDINGS_URL"
        ):
            pm.search("some text")
        with pytest.raises(DimensionMismatchError):
            pm.add_text("another pattern")
        assert pm.store.count() == 1
        # A vector query of the store's dimension still works.
        assert pm.search(np.ones(16), top_k=1)[0].id == "a"


def test_empty_map_and_bad_queries(tmp_path, embedder):
    with PatternMap.open(f"sqlite:///{tmp_path / 'p.db'}", embedder=embedder) as pm:
        with pytest.raises(EmptyIndexError, match="import or add"):
            pm.search("anything")
        with pytest.raises(InvalidInputError, match="empty"):
            pm.search("   ")
        with pytest.raises(InvalidInputError):
            pm.add_text("")


def test_warm_up_starts_the_map_and_loads_the_kernel(tmp_path, embedder):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with PatternMap.open(url, embedder=embedder) as pm:
        for pid, text in TEXTS.items():
            pm.add_text(text, pattern_id=pid)
    runtime = Runtime()
    with PatternMap.open(url, embedder=embedder, runtime=runtime, start=False) as pm:
        assert not pm.started
        pm.warm_up()
        assert pm.started and len(pm.index) == len(TEXTS)
        assert runtime.feature("pattern_search").self_check != "not run"
        pm.warm_up()  # again: nothing left to do, no error
        assert pm.search("exponential backoff", top_k=1)[0].id == "retry"
    with PatternMap.open(f"sqlite:///{tmp_path / 'empty.db'}", embedder=embedder) as empty:
        empty.warm_up()  # an empty map has no index to warm: no error either
        assert empty.index is None


def test_search_push_down_to_redis_vector_sets(redis_server, tmp_path, embedder):
    with PatternMap.open(redis_server.url, embedder=embedder) as memory:
        for pid, text in TEXTS.items():
            memory.add_text(text, pattern_id=pid)
        expected = memory.search("retrying failed calls", top_k=3)
    with PatternMap.open(redis_server.url, embedder=embedder, search="store") as pushed:
        assert pushed.index is None  # nothing loaded into memory
        result = pushed.search_detailed("retrying failed calls", top_k=3)
        assert result.runtime == "redis"
        assert [h.id for h in result.hits] == [h.id for h in expected]
        np.testing.assert_allclose(
            [h.score for h in result.hits], [h.score for h in expected], atol=1e-5
        )
        with pytest.raises(InvalidInputError, match="filters"):
            pushed.search("x", filter={"a": 1})
    # A cache over SQLite gets its vector set built on start.
    backing = f"sqlite:///{tmp_path / 'b.db'}"
    with PatternMap.open(backing, embedder=embedder) as pm:
        pm.add_text(TEXTS["queue"], pattern_id="queue")
    with PatternMap.open(
        f"{redis_server.url}?prefix=cache&backing={backing}", embedder=embedder, search="store"
    ) as cached:
        assert cached.search("backpressure", top_k=1)[0].id == "queue"


def test_store_search_needs_a_store_that_can(tmp_path, embedder):
    with pytest.raises(UnsupportedStoreOperationError):
        PatternMap.open(f"sqlite:///{tmp_path / 'p.db'}", embedder=embedder, search="store")
    with pytest.raises(InvalidInputError):
        PatternMap(open_store("sqlite://"), embedder, search="somewhere")


def test_public_exports_are_complete():
    import synapse_mojo.embeddings as embeddings
    import synapse_mojo.patternmap as patternmap
    import synapse_mojo.stores as stores

    for module in (stores, embeddings, patternmap):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert stores.Neo4jStore.backend == "neo4j" and stores.RedisStore.backend == "redis"
