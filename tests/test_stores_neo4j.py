"""Neo4j store specifics, against real Neo4j Community servers started by the suite
(tests/neo4j-launcher: 5.26 LTS, and a 2026 release where its JDK exists) or the server named by
NEO4J_TEST_URL. Each test runs once per server (ids ``neo4j-5.26``, ``neo4j-2026.08``, ...)."""

from __future__ import annotations

import json
import logging
import threading

import neo4j
import numpy as np
import pytest

from synapse_mojo.errors import (
    ConfigError,
    DimensionMismatchError,
    InvalidInputError,
    ReadOnlyStoreError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
)
from synapse_mojo.stores import Pattern, Relation, open_store
from synapse_mojo.stores.neo4j import (
    DEFAULT_BATCH_BYTES,
    ID_CONSTRAINT,
    QUANTIZATION_OPTION_SINCE,
    SEARCH_CLAUSE_SINCE,
    VECTOR_INDEX,
    Neo4jStore,
    packed_size,
    parse_version,
)

from .conftest import NEO4J_TARGETS, clean_neo4j_url, run_cli
from .servers import NEO4J_RELEASES, Neo4jServer, free_port, launcher_status, require


def _vec(seed: int, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(neo4j_url):
    s = open_store(neo4j_url, environ={})
    yield s
    s.close()


def _driver(server) -> neo4j.Driver:
    return neo4j.GraphDatabase.driver(
        server.url, auth=server.auth, notifications_min_severity="OFF"
    )


# ------------------------------------------------------------------ schema and push-down


def test_server_version_constraint_and_vector_index(neo4j_server, store):
    assert isinstance(store, Neo4jStore)
    if isinstance(neo4j_server, Neo4jServer):
        assert store.version == parse_version(neo4j_server.version)
    store.upsert([Pattern(f"p{i}", f"t{i}", {}, _vec(i, 64)) for i in range(30)])
    with _driver(neo4j_server) as driver, driver.session() as session:
        names = {r["name"] for r in session.run("SHOW CONSTRAINTS YIELD name RETURN name")}
        assert ID_CONSTRAINT in names
        index = session.run(
            "SHOW VECTOR INDEXES YIELD name, state, options WHERE name = $name"
            " RETURN state, options",
            name=VECTOR_INDEX,
        ).single()
    assert index is not None and index["state"] == "ONLINE"
    config = index["options"]["indexConfig"]
    assert (
        config["vector.dimensions"] == 64
        and config["vector.similarity_function"].lower() == "cosine"
    )
    if store.version >= QUANTIZATION_OPTION_SINCE:
        assert config.get("vector.quantization.enabled", False) is False, config
    assert store.supports_search
    hits = store.search(_vec(7, 64), 5)
    assert hits[0][0] == "p7" and abs(hits[0][1] - 1.0) < 1e-5
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    # Scores are cosine similarities, not Neo4j's (1 + cos) / 2.
    for pid, score in hits:
        assert abs(score - float(_vec(int(pid[1:]), 64) @ _vec(7, 64))) < 1e-4


def test_search_flavour_follows_the_server_version(store):
    store.upsert([Pattern(f"p{i}", "t", {}, _vec(i, 8)) for i in range(5)])
    expected = "search_clause" if store.version >= SEARCH_CLAUSE_SINCE else "query_nodes"
    assert store._vector_search_flavour() == expected
    assert store.search(_vec(2, 8), 1)[0][0] == "p2"
    assert not store._search_clause_refused  # the SEARCH clause, where chosen, was accepted


def test_a_server_refusing_the_search_clause_falls_back_to_query_nodes(neo4j_pool, caplog):
    """A server that reports 2026.01+ but refuses SEARCH: the store warns once and uses
    db.index.vector.queryNodes from then on (here: the 5.26 server made to look newer)."""
    server = neo4j_pool.get("5.26" if "5.26" in NEO4J_TARGETS else NEO4J_TARGETS[0])
    store = open_store(clean_neo4j_url(server), environ={})
    if store.version >= SEARCH_CLAUSE_SINCE:  # an external 2026+ server: SEARCH is accepted
        assert store._vector_search_flavour() == "search_clause"
        store.close()
        return
    store.upsert([Pattern(f"p{i}", "t", {}, _vec(i, 8)) for i in range(5)])
    store.version = SEARCH_CLAUSE_SINCE
    assert store._vector_search_flavour() == "search_clause"
    with caplog.at_level(logging.WARNING, logger="synapse_mojo.stores.neo4j"):
        assert store.search(_vec(3, 8), 1)[0][0] == "p3"
    assert store._search_clause_refused and store._vector_search_flavour() == "query_nodes"
    assert "SEARCH clause refused" in caplog.text
    store.close()


def test_search_on_an_empty_store_and_bad_queries(store):
    assert store.search(_vec(1, 8), 3) == []  # no dimension yet: nothing to search
    store.upsert([Pattern("a", "x", {}, _vec(1, 8))])
    with pytest.raises(DimensionMismatchError):
        store.search(_vec(1, 9), 3)
    with pytest.raises(InvalidInputError):
        store.search(_vec(1, 8), 0)
    with pytest.raises(InvalidInputError):
        store.search(np.full(8, np.nan, dtype=np.float32), 3)


def test_candidates_bound_the_index_search_but_never_top_k(neo4j_url):
    """The index is asked for max(top_k, candidates) neighbours; the best top_k come back."""
    with open_store(f"{neo4j_url}&candidates=3", environ={}) as store:
        assert store.candidates == 3
        vectors = [_vec(i, 16) for i in range(40)]
        store.upsert([Pattern(f"p{i:02d}", "t", {}, v) for i, v in enumerate(vectors)])
        hits = store.search(vectors[5], 12)
        assert len(hits) == 12 and hits[0][0] == "p05"
        exact = sorted(range(40), key=lambda i: -float(vectors[i] @ vectors[5]))[:12]
        assert [h[0] for h in hits][:1] == [f"p{exact[0]:02d}"]
    with open_store(neo4j_url, environ={}) as store:
        assert store.candidates == 100
        assert [h[0] for h in store.search(vectors[5], 12)] == [f"p{i:02d}" for i in exact]


def test_clear_drops_the_vector_index_and_a_new_dimension_gets_one(store, neo4j_server):
    store.upsert([Pattern("a", "x", {}, _vec(1, 8))])
    store.clear()
    store.upsert([Pattern("b", "y", {}, _vec(2, 12))])
    assert store.search(_vec(2, 12), 1)[0][0] == "b"
    with _driver(neo4j_server) as driver, driver.session() as session:
        dims = session.run(
            "SHOW VECTOR INDEXES YIELD name, options WHERE name = $name "
            "RETURN options.indexConfig['vector.dimensions'] AS d",
            name=VECTOR_INDEX,
        ).single()["d"]
    assert dims == 12


def test_patterns_search_store_pushes_down_to_the_vector_index(
    neo4j_server, neo4j_url, tmp_path, kernel_cache
):
    """`patterns search --search store` answered by Neo4j's index; the same top hit as memory."""
    doc = {
        "meta": {"version": "1"},
        "patterns": {
            "p_001": {
                "name": "Retry with backoff",
                "description": "Retry transient failures with exponential backoff and jitter.",
            },
            "p_002": {
                "name": "Cache-aside",
                "description": "Read the cache first; load from the database on a miss.",
            },
            "p_003": {
                "name": "Dead-letter queue",
                "description": "Park poison messages after repeated failures.",
            },
        },
    }
    source = tmp_path / "PATTERN_MAP.json"
    source.write_text(json.dumps(doc))
    env = {
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "NEO4J_USER": neo4j_server.user,
        "NEO4J_PASSWORD": neo4j_server.password,
        "SYNAPSE_KERNEL_CACHE": str(kernel_cache),  # compiled once per run, not per test
    }
    url = neo4j_server.url
    proc = run_cli("patterns", "import", str(source), "--store", url, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    answers = {}
    for mode in ("store", "memory"):
        proc = run_cli("patterns", "search", "poison messages keep failing", "--search", mode,
                       "--top-k", "3", "--store", url, "--json", env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert neo4j_server.password not in proc.stdout + proc.stderr
        answers[mode] = json.loads(proc.stdout)
    store_hits, memory_hits = answers["store"]["hits"], answers["memory"]["hits"]
    assert [h["id"] for h in store_hits] == [h["id"] for h in memory_hits]
    assert store_hits[0]["id"] == "p_003"
    for a, b in zip(store_hits, memory_hits, strict=True):
        assert abs(a["score"] - b["score"]) < 1e-3
    assert answers["store"]["runtime"] != answers["memory"]["runtime"]


# ------------------------------------------------------------------ batches and limits


def test_batches_cut_by_rows_and_parameter_bytes(neo4j_server):
    """A small parameter budget: 384-dim embeddings (~3.5 KB each) go a few per statement."""
    url = clean_neo4j_url(neo4j_server, batch_size="7", batch_bytes="20000")
    with open_store(url, environ={}) as store:
        assert store.batch_bytes == 20000
        rows = [{"id": "p000", "embedding": _vec(0, 384).astype(np.float64).tolist()}]
        assert 3000 < packed_size(rows[0]) < 20000
        batches = store._batches(rows * 40, "x")
        assert len(batches) > 40 / 7 and all(len(b) <= 7 for b in batches)
        assert all(sum(packed_size(r) + 2 for r in b) <= 20000 for b in batches)
        patterns = [
            Pattern(f"p{i:03d}", f"it's pattern {i}", {"i": i}, _vec(i, 384)) for i in range(60)
        ]
        relations = [Relation(f"p{i:03d}", f"p{i + 1:03d}", "next", i / 10) for i in range(59)]
        assert store.upsert(patterns, relations) == (60, 0, 59)
        assert store.count() == 60 and len(store.relations()) == 59
        got = store.get_many([p.id for p in patterns])
        for p in patterns:
            assert got[p.id].metadata == {"i": p.metadata["i"]}
            assert np.array_equal(got[p.id].embedding, p.embedding)
        # A row bigger than the whole budget goes in a statement of its own.
        assert store.upsert([Pattern("big", "x" * 50_000, {}, _vec(1, 384))]) == (1, 0, 0)
        assert store.get("big").text == "x" * 50_000


def test_a_batch_over_the_default_parameter_budget(store):
    """~2,800 patterns of 768 dims: more than the 16 MiB default budget, so two statements or
    more, all in one transaction."""
    dim, n = 768, 2800
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    patterns = [Pattern(f"p{i:05d}", f"pattern {i}", {"i": i}, vectors[i]) for i in range(n)]
    rows = [{"id": p.id, "embedding": p.embedding.astype(np.float64).tolist()} for p in patterns]
    assert len(store._batches(rows, "embedding")) >= 2
    assert sum(packed_size(r) for r in rows) > DEFAULT_BATCH_BYTES
    assert store.upsert(patterns) == (n, 0, 0)
    assert store.count() == n
    assert np.array_equal(store.get("p02799").embedding, vectors[2799])
    assert store.search(vectors[1234], 1)[0][0] == "p01234"


def test_wide_embeddings_round_trip_exactly(store):
    vector = _vec(3, 4096)
    store.upsert([Pattern("wide", "x", {}, vector)])
    assert np.array_equal(store.get("wide").embedding, vector)


def test_a_failed_statement_rolls_back_the_whole_upsert(neo4j_server, store):
    """A uniqueness constraint on text (made for this test) fails the second MERGE: the whole
    transaction, first pattern included, is rolled back."""
    with _driver(neo4j_server) as driver:
        with driver.session() as session:
            session.run(
                "CREATE CONSTRAINT synapse_test_text IF NOT EXISTS"
                " FOR (p:Pattern) REQUIRE p.text IS UNIQUE"
            ).consume()
        try:
            with pytest.raises(StoreError, match="writing patterns"):
                store.upsert([Pattern("a", "same text"), Pattern("b", "same text")])
            assert store.count() == 0
        finally:
            with driver.session() as session:
                session.run("DROP CONSTRAINT synapse_test_text IF EXISTS").consume()


# ------------------------------------------------------------------ credentials


def test_credentials_never_in_errors_reprs_or_logs(neo4j_server, neo4j_url, caplog):
    secret = neo4j_server.password
    caplog.set_level(logging.DEBUG)  # the driver's own debug log included
    # The CLI sets the "neo4j" logger's level for its process (-vv shows it); an in-process CLI
    # test earlier in the run leaves that level behind, so set it here too.
    caplog.set_level(logging.DEBUG, logger="neo4j")
    env = {"NEO4J_USER": neo4j_server.user, "NEO4J_PASSWORD": secret}
    with open_store(neo4j_server.url + "?timeout=20", environ=env) as store:
        store.upsert([Pattern("a", "x", {}, _vec(1, 8))])
        store.search(_vec(1, 8), 1)
        for text in (repr(store), str(store.url)):
            assert secret not in text
        with pytest.raises(DimensionMismatchError) as info:
            store.upsert([Pattern("b", "y", {}, _vec(1, 9))])
        assert secret not in str(info.value)
    with open_store(neo4j_url, environ={}) as store:  # password in the URL
        assert secret not in store.url and secret not in repr(store)
    wrong = "definitely-wrong-password"
    for url, environ in (
        (neo4j_server.url + "?timeout=20", {"NEO4J_USER": "neo4j", "NEO4J_PASSWORD": wrong}),
        (neo4j_server.url.replace("bolt://", f"bolt://neo4j:{wrong}@") + "?timeout=20", {}),
    ):
        with pytest.raises(StoreAuthError, match="credentials") as info:
            open_store(url, environ=environ)
        assert wrong not in str(info.value) and wrong not in repr(info.value)
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert caplog.records, "the driver's debug log was captured"
    assert secret not in logged and wrong not in logged
    if isinstance(neo4j_server, Neo4jServer):  # nor in the server's own logs
        for path in [neo4j_server.log, *neo4j_server.home.joinpath("logs").glob("*.log")]:
            assert secret not in path.read_text(errors="replace"), path


def test_address_and_credentials_from_the_environment(neo4j_server):
    env = {
        "NEO4J_URI": neo4j_server.url,
        "NEO4J_USER": neo4j_server.user,
        "NEO4J_PASSWORD": neo4j_server.password,
    }
    with open_store("neo4j://?timeout=20", environ=env) as store:
        assert neo4j_server.url.rsplit(":", 1)[1] in store.url
        store.count()
    with pytest.raises(ConfigError, match="NEO4J_URI"):
        open_store("neo4j://", environ={})


# ------------------------------------------------------------------ options, modes, bad input


@pytest.mark.parametrize(
    "query, message",
    [
        ("batch_size=0", "batch_size"),
        ("candidates=0", "candidates"),
        ("vector_index=sometimes", "boolean"),
        ("colour=red", "unknown option"),
        ("dialect=falkordb", "unknown option"),  # FalkorDB is no longer a target
    ],
)
def test_bad_options(neo4j_server, query, message):
    with pytest.raises(ConfigError, match=message):
        open_store(
            f"{neo4j_server.url}?{query}",
            environ={"NEO4J_USER": "neo4j", "NEO4J_PASSWORD": neo4j_server.password},
        )


def test_read_only(neo4j_url):
    with open_store(neo4j_url, environ={}) as store:
        store.upsert([Pattern("a", "x", {}, _vec(1, 8))])
    with open_store(f"{neo4j_url}&read_only=1", environ={}) as ro:
        assert ro.read_only and ro.get("a").text == "x"
        assert ro.search(_vec(1, 8), 1)[0][0] == "a"
        for write in (
            lambda: ro.upsert([Pattern("b", "y")]),
            lambda: ro.delete(["a"]),
            lambda: ro.set_info({"k": 1}),
            ro.clear,
        ):
            with pytest.raises(ReadOnlyStoreError):
                write()
    with open_store(neo4j_url, environ={}) as store:
        assert store.count() == 1


def test_unknown_database_is_a_clear_error(neo4j_server, neo4j_url):
    with pytest.raises(StoreError, match="(?i)database"):
        open_store(f"{neo4j_url}&database=no_such_db", environ={})
    with open_store(f"{neo4j_url}&database=neo4j", environ={}) as store:
        assert store.count() == 0


CYPHER = [
    "x'}) DETACH DELETE n //",
    "MATCH (n) DETACH DELETE n",
    "') RETURN 1 UNION MATCH (n) DETACH DELETE n //",
    "`backtick` $param {id: 'p'}",
    "CALL dbms.components()",
    "\\u0027 escaped",
]


def test_cypher_looking_input_is_stored_literally_everywhere(store):
    store.upsert([Pattern("keep", "untouched", {}, _vec(0, 8))])
    patterns = [Pattern(s, s, {s: s, "list": [s]}, _vec(i + 1, 8)) for i, s in enumerate(CYPHER)]
    relations = [
        Relation(CYPHER[0], CYPHER[1], CYPHER[2], 0.5),
        Relation(CYPHER[3], CYPHER[4], CYPHER[5]),
    ]
    store.upsert(patterns, relations)
    store.set_info({CYPHER[1]: CYPHER[0]})
    assert store.count() == 1 + len(CYPHER)
    for s in CYPHER:
        got = store.get(s)
        assert (got.id, got.text, got.metadata) == (s, s, {s: s, "list": [s]})
    assert {r.key for r in store.relations()} == {r.key for r in relations}
    assert store.info()[CYPHER[1]] == CYPHER[0]
    assert store.get("keep").text == "untouched"
    assert store.search(_vec(1, 8), 1)[0][0] == CYPHER[0]
    assert store.delete(CYPHER) == len(CYPHER)
    assert store.count() == 1


def test_unicode_and_control_characters_round_trip(store):
    ids = ["\x00", "\x01", "a\x1fb", " ", "\t", "a ", " b", "模式🚀", "\ud7ff"]
    text = "nul \x00 and ' \" \\ \n end"
    store.upsert([Pattern(i, text + repr(i), {"k\x00": i}) for i in ids])
    got = store.get_many(ids)
    assert {i: (p.text, p.metadata) for i, p in got.items()} == {
        i: (text + repr(i), {"k\x00": i}) for i in ids
    }


# ------------------------------------------------------------------ a server that goes away


def _own_launcher_server(neo4j_server) -> tuple[Neo4jServer, bool]:
    """The pool's launcher server, or (for an external target) one started for this test."""
    if isinstance(neo4j_server, Neo4jServer):
        return neo4j_server, False
    release = NEO4J_RELEASES["5.26"]
    ok, why = launcher_status(release)
    require(ok, "a Neo4j the test can stop and restart (tests/neo4j-launcher)", why)
    return Neo4jServer(release).start(), True


def test_server_goes_away_and_comes_back(neo4j_server):
    """Stopped: calls fail with StoreUnavailableError within the timeout. Restarted on the same
    port and data: the same store object works again. Killed and restarted while a call is
    waiting: the driver's retries carry the call through."""
    server, own = _own_launcher_server(neo4j_server)
    try:
        url = clean_neo4j_url(server, timeout="3")
        store = open_store(url, environ={})
        store.upsert([Pattern("a", "x", {}, _vec(1, 8))])
        server.stop()
        with pytest.raises(StoreUnavailableError) as info:
            store.count()
        assert server.password not in str(info.value)
        with pytest.raises(StoreUnavailableError):
            store.upsert([Pattern("b", "y")])
        port = server.port
        server.start()
        assert server.port == port
        assert store.count() == 1 and store.search(_vec(1, 8), 1)[0][0] == "a"
        store.close()

        patient = open_store(url.replace("timeout=3", "timeout=300"), environ={})
        server.stop(kill=True)
        restarter = threading.Thread(target=server.start)
        restarter.start()
        try:
            assert patient.upsert([Pattern("c", "z", {}, _vec(3, 8))]) == (1, 0, 0)
        finally:
            restarter.join()
        assert patient.count() == 2
        patient.close()
    finally:
        if own:
            server.cleanup()


def test_nothing_listening():
    with pytest.raises(StoreUnavailableError, match="unavailable"):
        open_store(f"bolt://neo4j:pw-not-shown@127.0.0.1:{free_port()}?timeout=2", environ={})


def test_helpers():
    assert parse_version("5.26.1") == (5, 26, 1)
    assert parse_version("2026.01.0") == (2026, 1, 0)
    assert parse_version("garbage") is None
    assert parse_version("2026.01.0") >= SEARCH_CLAUSE_SINCE > parse_version("5.26.1")
    assert packed_size({"a": [1.0, 2.0], "b": "xyz"}) >= 2 * 9 + 3
