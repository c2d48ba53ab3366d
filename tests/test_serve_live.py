"""The stores' change feeds (``PatternStore.changes``) and ``LiveIndex`` on top of them."""

from __future__ import annotations

import numpy as np
import pytest

from synapse_mojo import PatternIndex
from synapse_mojo.patternmap import PatternMap
from synapse_mojo.serve.live import LiveIndex
from synapse_mojo.stores import Pattern, open_store
from synapse_mojo.stores.sqlite import SQLiteStore


def _p(pid: str, seed: int) -> Pattern:
    v = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return Pattern(pid, f"text {pid}", {"name": pid}, v)


@pytest.fixture(params=["sqlite", "redis"])
def two_views(request, tmp_path):
    """Two store objects on one store: a writer and a follower (as two processes would be)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'p.db'}"
    else:
        url = request.getfixturevalue("redis_server").url
    with open_store(url) as writer, open_store(url) as reader:
        yield writer, reader


def test_changes_report_written_and_deleted_ids_once(two_views):
    _written_and_deleted_once(*two_views)


def test_cleared_store_asks_for_a_rebuild(two_views):
    _cleared_asks_for_rebuild(*two_views)


def test_neo4j_change_feed(neo4j_url):
    """Neo4j: a change counter node and change nodes written in each write transaction."""
    with open_store(neo4j_url) as writer, open_store(neo4j_url) as reader:
        _written_and_deleted_once(writer, reader)
        _cleared_asks_for_rebuild(writer, reader)


def _written_and_deleted_once(writer, reader):
    start = reader.changes()
    assert start.ids == [] and start.token is not None
    assert reader.changes(start.token) == start  # nothing happened
    writer.upsert([_p("a", 1), _p("b", 2)])
    first = reader.changes(start.token)
    assert sorted(first.ids) == ["a", "b"]
    writer.upsert([_p("a", 3)])
    writer.delete(["b"])
    writer.upsert([_p("c", 4)])
    second = reader.changes(first.token)
    assert sorted(second.ids) == ["a", "b", "c"]
    assert reader.changes(second.token).ids == []


def _cleared_asks_for_rebuild(writer, reader):
    writer.upsert([_p("a", 1)])
    token = reader.changes().token
    writer.clear()
    writer.upsert([_p("z", 9)])
    feed = reader.changes(token)
    assert feed.ids is None or set(feed.ids) >= {"a", "z"}  # rebuild, or every id touched


def test_sqlite_feed_trimmed_past_the_token_asks_for_a_rebuild(tmp_path):
    with SQLiteStore(tmp_path / "p.db") as store:
        store.upsert([_p("a", 1)])
        token = store.changes().token
        store.upsert([_p("b", 2)])
        store.upsert([_p("c", 3)])
        with store._transaction() as conn:  # what the prune trigger does after 10,000 rows
            conn.execute("DELETE FROM changes WHERE seq <= ?", (token + 1,))
        assert store.changes(token).ids is None


def test_sqlite_file_from_before_the_feed_gets_it_on_a_writable_open(tmp_path):
    path = tmp_path / "old.db"
    with SQLiteStore(path) as store:
        store.upsert([_p("a", 1)])
        with store._transaction() as conn:  # an older version's file: no feed
            for name in (
                "changes_on_insert",
                "changes_on_update",
                "changes_on_delete",
                "changes_prune",
            ):
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute("DROP TABLE changes")
    with SQLiteStore(path, read_only=True) as old:
        assert old.changes().token is None  # read-only: left as it is, not followed
    with SQLiteStore(path) as store:
        token = store.changes().token
        store.upsert([_p("b", 2)])
        assert store.changes(token).ids == ["b"]


def test_live_index_applies_small_changes_and_rebuilds_on_a_gap(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as writer:
        writer.upsert([_p("a", 1), _p("b", 2)])
        with PatternMap(open_store(url)) as pmap:
            pmap.start()
            live = LiveIndex(pmap)
            assert live.following and live.poll() == 0
            writer.upsert([_p("c", 3)])
            writer.delete(["a"])
            assert live.poll() == 2
            assert "c" in pmap.index and "a" not in pmap.index and live.rebuilds == 0
            writer.clear()
            writer.upsert([_p("d", 4)])
            live.poll()
            assert sorted(pmap.index.ids()) == ["d"]


def test_saved_index_beside_the_store_is_opened_mapped_while_the_store_is_unchanged(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as writer:
        writer.upsert([_p("a", 1), _p("b", 2)])
    with PatternMap(open_store(url), saved_index=True) as cold:
        cold.start()
        assert cold.index_source == "store"  # built, then saved beside the store
    assert (tmp_path / "p.db.index").is_dir() and (tmp_path / "p.db.index.json").is_file()
    with PatternMap(open_store(url), saved_index=True) as warm:
        warm.start()
        assert warm.index_source == "saved" and warm.index.info()["memory_mapped"]
        assert sorted(warm.index.ids()) == ["a", "b"]
    with open_store(url) as writer:
        writer.upsert([_p("c", 3)])
    with PatternMap(open_store(url), saved_index=True) as changed:
        changed.start()
        assert changed.index_source == "store" and sorted(changed.index.ids()) == ["a", "b", "c"]
    # One saved before the index kept codes by default (quantization None) is rebuilt once,
    # and saved again in the default's form.
    with PatternMap(open_store(url), saved_index=True) as again:
        again.start()
        assert again.index_source == "saved" and again.index.quantization == "auto"
        old = PatternIndex(again.index.dim, quantization=None)
        for pattern_id in again.index.ids():
            old.upsert(pattern_id, *again.index.get(pattern_id))
    old.save(tmp_path / "p.db.index")
    for source in ("store", "saved"):
        with PatternMap(open_store(url), saved_index=True) as reopened:
            reopened.start()
            assert reopened.index_source == source, source
            assert reopened.index.quantization == "auto" and len(reopened.index) == 3


def test_saved_index_leaves_foreign_files_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(url) as writer:
        writer.upsert([_p("a", 1)])
    (tmp_path / "p.db.index.json").write_text("my notes")
    (tmp_path / "p.db.index").mkdir()
    (tmp_path / "p.db.index" / "mine.txt").write_text("keep me")
    for _ in range(2):
        with PatternMap(open_store(url), saved_index=True) as pmap:
            pmap.start()
            assert pmap.index_source == "store"
    assert (tmp_path / "p.db.index.json").read_text() == "my notes"
    assert (tmp_path / "p.db.index" / "mine.txt").read_text() == "keep me"
