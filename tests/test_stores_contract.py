"""The PatternStore contract, one test body per behaviour, run on every backend.

Backends (all real): SQLite (a temp file), Redis 8.2 as the store of record, Redis as a
read-through cache over SQLite, and Neo4j (every server in NEO4J_TARGETS: the launcher's 5.26
LTS and later releases, or NEO4J_TEST_URL). Embeddings read back must be bit-exact everywhere.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_mojo.errors import DimensionMismatchError, InvalidInputError, UnknownIdError
from synapse_mojo.stores import Pattern, Relation, open_store

from .conftest import NEO4J_TARGETS, clean_neo4j_url

DIM = 16
BACKENDS = ["sqlite", "redis", "redis_cache", *(f"neo4j-{t}" for t in NEO4J_TARGETS)]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    kind = request.param
    if kind == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    elif kind == "redis":
        server = request.getfixturevalue("redis_server")
        s = open_store(server.url)
    elif kind == "redis_cache":
        server = request.getfixturevalue("redis_server")
        s = open_store(f"{server.url}?backing=sqlite:///{tmp_path / 'backing.db'}&ttl=60")
    else:
        server = request.getfixturevalue("neo4j_pool").get(kind.removeprefix("neo4j-"))
        s = open_store(clean_neo4j_url(server), environ={})
    yield s
    s.close()


def _vec(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def assert_same_vector(store, got: np.ndarray | None, want: np.ndarray | None) -> None:
    if want is None:
        assert got is None
        return
    assert got is not None and got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)


def _patterns(rng, n, prefix="p"):
    return [
        Pattern(
            f"{prefix}{i:03d}",
            f"text {i}",
            {"i": i, "tags": ["a", "b"], "nested": {"x": [1, 2.5, None]}},
            _vec(rng),
        )
        for i in range(n)
    ]


# ------------------------------------------------------------------ basic writes and reads


def test_upsert_and_get_round_trip(store):
    rng = np.random.default_rng(1)
    patterns = _patterns(rng, 5)
    result = store.upsert(patterns)
    assert result == (5, 0, 0)
    assert store.count() == 5
    got = store.get("p003")
    assert got.text == "text 3"
    assert got.metadata == {"i": 3, "tags": ["a", "b"], "nested": {"x": [1, 2.5, None]}}
    assert_same_vector(store, got.embedding, patterns[3].embedding)
    assert got.created_at is not None and got.created_at.tzinfo is not None
    assert got.updated_at is not None and got.updated_at >= got.created_at
    assert store.info()["embedding_dim"] == DIM


def test_update_replaces_and_keeps_created_at(store):
    rng = np.random.default_rng(2)
    store.upsert(_patterns(rng, 2))
    first = store.get("p000")
    replacement = Pattern("p000", "new text", {"changed": True}, _vec(rng))
    assert store.upsert([replacement, Pattern("p100", "added", {}, _vec(rng))]) == (1, 1, 0)
    again = store.get("p000")
    assert again.text == "new text" and again.metadata == {"changed": True}
    assert_same_vector(store, again.embedding, replacement.embedding)
    assert again.created_at == first.created_at
    assert again.updated_at >= first.updated_at
    # Upserting without an embedding removes the old one.
    store.upsert([Pattern("p000", "bare", {})])
    assert store.get("p000").embedding is None


def test_explicit_created_at_is_kept(store):
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    store.upsert([Pattern("old", "from another store", {}, None, created_at=moment)])
    assert store.get("old").created_at == moment


def test_get_many_and_unknown_ids(store):
    store.upsert(_patterns(np.random.default_rng(3), 3))
    found = store.get_many(["p002", "nope", "p000"])
    assert list(found) == ["p002", "p000"]
    with pytest.raises(UnknownIdError, match="nope"):
        store.get("nope")
    assert store.get_many([]) == {}


def test_iter_batches_sees_every_pattern_once_in_a_stable_order(store):
    store.upsert(_patterns(np.random.default_rng(4), 23))
    batches = list(store.iter_batches(5))
    assert all(1 <= len(b) <= 5 for b in batches)
    ids = [p.id for b in batches for p in b]
    assert sorted(ids) == [f"p{i:03d}" for i in range(23)]
    assert ids == [p.id for p in store.iter_patterns(7)]
    with pytest.raises(InvalidInputError):
        list(store.iter_batches(0))


def test_delete_removes_patterns_and_their_relations(store):
    store.upsert(
        _patterns(np.random.default_rng(5), 4),
        [
            Relation("p000", "p001"),
            Relation("p002", "p000", "refines", 0.25),
            Relation("p002", "p003"),
        ],
    )
    assert store.delete(["p000", "missing"]) == 1
    assert store.count() == 3
    assert store.relations() == [Relation("p002", "p003")]
    assert store.delete([]) == 0


# ------------------------------------------------------------------ relations


def test_relations_round_trip_and_replace_weight(store):
    store.upsert(_patterns(np.random.default_rng(6), 3), [Relation("p000", "p001", "refines", 0.5)])
    # In the same batch as new patterns, and to ones already stored.
    store.upsert(
        [Pattern("q", "new", {})],
        [
            Relation("q", "p000"),
            Relation("p000", "p001", "refines", 0.75),
            Relation("p000", "p001", "contradicts", 0.1),
        ],
    )
    rels = {r.key: r.weight for r in store.relations()}
    assert rels == {
        ("p000", "p001", "refines"): 0.75,
        ("p000", "p001", "contradicts"): 0.1,
        ("q", "p000", "related_to"): 1.0,
    }
    touching = {r.key for r in store.relations(["q"])}
    assert touching == {("q", "p000", "related_to")}
    assert {r.key for r in store.relations(["p001"])} == {
        ("p000", "p001", "refines"),
        ("p000", "p001", "contradicts"),
    }


# ------------------------------------------------------------------ all or nothing


def test_dimension_mismatch_writes_nothing(store):
    rng = np.random.default_rng(7)
    store.upsert(_patterns(rng, 2))
    with pytest.raises(DimensionMismatchError, match="dimension 16"):
        store.upsert(
            [Pattern("ok", "fine", {}, _vec(rng)), Pattern("bad", "wrong", {}, _vec(rng, 8))]
        )
    with pytest.raises(DimensionMismatchError):
        store.upsert([Pattern("bad", "wrong", {}, _vec(rng, 32))])
    assert store.count() == 2
    assert store.get_many(["ok", "bad"]) == {}


def test_dimension_mismatch_within_a_first_batch(store):
    rng = np.random.default_rng(8)
    with pytest.raises(DimensionMismatchError):
        store.upsert([Pattern("a", "x", {}, _vec(rng, 4)), Pattern("b", "y", {}, _vec(rng, 5))])
    assert store.count() == 0
    assert "embedding_dim" not in store.info()


def test_relation_to_unknown_pattern_writes_nothing(store):
    store.upsert(_patterns(np.random.default_rng(9), 1))
    with pytest.raises(InvalidInputError, match="ghost"):
        store.upsert(
            [Pattern("new", "text", {})], [Relation("new", "ghost"), Relation("p000", "new")]
        )
    assert store.count() == 1 and store.relations() == []


def test_bad_metadata_writes_nothing(store):
    with pytest.raises(InvalidInputError, match="JSON"):
        store.upsert([Pattern("a", "x", {}), Pattern("b", "y", {"score": math.nan})])
    with pytest.raises(InvalidInputError):
        store.upsert([Pattern("c", "z", {"when": datetime.now()})])
    assert store.count() == 0


def test_duplicate_ids_in_one_batch_are_rejected(store):
    with pytest.raises(InvalidInputError, match="duplicate"):
        store.upsert([Pattern("a", "x"), Pattern("a", "y")])
    assert store.count() == 0


# ------------------------------------------------------------------ injection-looking strings

HOSTILE = [
    "x'}) DETACH DELETE n //",
    "'; DROP TABLE patterns; --",
    "MATCH (n) DETACH DELETE n",
    '" OR 1=1 --',
    "$id {id: 'p'}",
    "back\\slash and \\' escaped quote",
    "it's",
    "newline\nand\ttab",
    "ünïcödé 🚀 模式",
    "synapse:pm:pattern:other",
    "*",
]


def test_injection_looking_ids_and_text_are_stored_literally(store):
    rng = np.random.default_rng(10)
    store.upsert(_patterns(rng, 2))
    hostile = [Pattern(s, s, {s: s}, _vec(rng)) for s in HOSTILE]
    assert store.upsert(hostile, [Relation(HOSTILE[0], HOSTILE[1], HOSTILE[2])]) == (
        len(HOSTILE),
        0,
        1,
    )
    assert store.count() == 2 + len(HOSTILE)
    for s in HOSTILE:
        got = store.get(s)
        assert got.id == s and got.text == s and got.metadata == {s: s}
    assert store.relations([HOSTILE[0]]) == [Relation(HOSTILE[0], HOSTILE[1], HOSTILE[2])]
    assert store.get("p001").text == "text 1"  # nothing else was touched
    assert store.delete([HOSTILE[0], "*"]) == 2
    assert store.count() == len(HOSTILE)


@settings(
    max_examples=int(os.environ.get("SYNAPSE_TEST_EXAMPLES", 20)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_property_round_trip(store, data):
    ident = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
    chars = st.characters(blacklist_categories=("Cs",))
    ids = data.draw(st.lists(ident, min_size=1, max_size=5, unique=True), label="ids")
    text = data.draw(st.text(chars, max_size=60), label="text")
    number = data.draw(
        st.one_of(
            st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False, width=32)
        ),
        label="number",
    )
    store.clear()
    store.upsert([Pattern(i, text, {"n": number, "id": i}) for i in ids])
    found = store.get_many(ids)
    assert list(found) == ids
    for i in ids:
        assert found[i].text == text
        # Metadata is JSON text in every backend: numbers come back exactly.
        assert found[i].metadata == {"n": number, "id": i}


# ------------------------------------------------------------------ info, clear


def test_info_set_and_remove(store):
    store.set_info({"pattern_map.meta": {"version": "2", "list": [1, "two"]}, "owner": "it's me"})
    assert store.info()["pattern_map.meta"] == {"version": "2", "list": [1, "two"]}
    assert store.info()["owner"] == "it's me"
    store.set_info({"owner": None})
    assert "owner" not in store.info()
    with pytest.raises(InvalidInputError):
        store.set_info({"bad": math.inf})


def test_clear(store):
    store.upsert(_patterns(np.random.default_rng(11), 3), [Relation("p000", "p001")])
    store.set_info({"x": 1})
    store.clear()
    assert store.count() == 0 and store.relations() == [] and store.info() == {}
    store.upsert(_patterns(np.random.default_rng(12), 1))
    assert store.count() == 1


def test_control_characters_and_edge_whitespace_in_ids(store):
    ids = ["\x01", "a\x1fb", " ", "\t", "a ", " b", "\x00"]
    store.upsert([Pattern(i, repr(i)) for i in ids])
    assert {i: p.text for i, p in store.get_many(ids).items()} == {i: repr(i) for i in ids}


def test_pattern_validation_happens_before_any_store():
    with pytest.raises(InvalidInputError):
        Pattern("")
    with pytest.raises(TypeError):
        Pattern(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Pattern("a", "x", {}, np.array([1.0, math.nan]))
    with pytest.raises(InvalidInputError):
        Relation("a", "b", "t", math.inf)
