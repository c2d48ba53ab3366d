"""SQLite store specifics and ``open_store`` URL handling (the shared contract is in
test_stores_contract.py)."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from synapse_mojo.errors import ConfigError, ReadOnlyStoreError, StoreError, StoreUnavailableError
from synapse_mojo.stores import (
    Pattern,
    Relation,
    SQLiteStore,
    default_store_url,
    open_store,
    redact,
)
from synapse_mojo.stores.url import default_data_dir


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_file_store_uses_wal_and_schema_version(tmp_path):
    path = tmp_path / "p.db"
    with open_store(f"sqlite:///{path}") as store:
        store.upsert([Pattern("a", "x", {}, _vec(0))])
        assert store.url == f"sqlite://{path}"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    blob, dim = conn.execute("SELECT embedding, dim FROM patterns WHERE id = 'a'").fetchone()
    assert dim == 8 and np.array_equal(np.frombuffer(blob, "<f4"), _vec(0))
    conn.close()


def test_a_failure_inside_the_transaction_rolls_everything_back(tmp_path):
    """A real SQLite trigger aborts the relation insert: the patterns of the batch go too."""
    path = tmp_path / "p.db"
    with open_store(f"sqlite:///{path}") as store:
        store.upsert([Pattern("keep", "x")])
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON relations WHEN NEW.type = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
    )
    conn.commit()
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        with pytest.raises(StoreError, match="refused by trigger"):
            store.upsert(
                [Pattern("a", "x", {}, _vec(1)), Pattern("b", "y")], [Relation("a", "b", "boom")]
            )
        assert store.count() == 1
        assert store.get_many(["a", "b"]) == {}
        assert "embedding_dim" not in store.info()  # the dimension was not recorded either


def test_read_only(tmp_path):
    path = tmp_path / "p.db"
    with open_store(f"sqlite:///{path}") as store:
        store.upsert([Pattern("a", "x")], [])
    with open_store(f"sqlite:///{path}?read_only=1") as ro:
        assert ro.read_only and ro.get("a").text == "x"
        for write in (
            lambda: ro.upsert([Pattern("b", "y")]),
            lambda: ro.delete(["a"]),
            lambda: ro.set_info({"k": 1}),
            ro.clear,
        ):
            with pytest.raises(ReadOnlyStoreError):
                write()
    with pytest.raises(StoreUnavailableError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}?read_only=1")


def test_other_connections_read_while_one_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    writer, reader = open_store(url), open_store(url)
    try:
        writer.upsert([Pattern(f"p{i}", "x") for i in range(10)])
        assert reader.count() == 10
        writer.delete(["p0"])
        assert reader.count() == 9
    finally:
        writer.close()
        reader.close()


def test_threads_share_one_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(25):
                store.upsert([Pattern(f"t{t}-{i}", "x", {}, _vec(t * 100 + i))])
                store.get(f"t{t}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and store.count() == 100
    store.close()


def test_not_a_store_and_newer_schema(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite"):
        open_store(f"sqlite:///{junk}")
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(f"sqlite:///{newer}")


def test_closed_store_raises(tmp_path):
    store = open_store("sqlite://")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.count()


# ------------------------------------------------------------------ URLs


def test_sqlite_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_store("sqlite://").url == "sqlite://"
    assert open_store(f"sqlite:///{tmp_path}/a.db").url == f"sqlite://{tmp_path}/a.db"
    assert open_store(f"sqlite:////{tmp_path}/b.db").url == f"sqlite://{tmp_path}/b.db"
    rel = open_store("sqlite:rel.db")
    assert rel.url == "sqlite:rel.db" and (tmp_path / "rel.db").exists()
    assert isinstance(open_store(str(tmp_path / "bare.db")), SQLiteStore)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_store("sqlite:~/home.db").url == f"sqlite://{tmp_path}/home.db"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://localhost/db", "unknown scheme 'mysql'"),
        ("http://example.com", "unknown scheme"),
        ("sqlite://host/x.db", "no host"),
        ("sqlite:///tmp/x.db?journal=wal", "unknown option"),
        ("sqlite:///tmp/x.db?read_only=maybe", "not a boolean"),
        ("sqlite:///tmp/x.db?timeout=soon", "not a number"),
        ("sqlite:///tmp/x.db?read_only=1&read_only=0", "given twice"),
        ("   ", "empty"),
    ],
)
def test_bad_urls_are_config_errors(url, message):
    with pytest.raises(ConfigError, match=message):
        open_store(url)


def test_unknown_scheme_error_hides_the_password():
    with pytest.raises(ConfigError) as info:
        open_store("postgres://admin:hunter2@db:5432/patterns")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_redact():
    assert redact("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("neo4j://neo4j:pw@db:7687") == "neo4j://neo4j:***@db:7687"
    assert redact("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_default_store_url(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    assert default_store_url(env) == f"sqlite:///{tmp_path}/data/synapse-mojo/patterns.db"
    assert default_data_dir({"HOME": str(tmp_path)}) in (
        tmp_path / ".local" / "share" / "synapse-mojo",
        tmp_path / "Library" / "Application Support" / "synapse-mojo",
    )
    assert default_store_url({**env, "SYNAPSE_STORE_URL": "redis://r:6379/0"}) == "redis://r:6379/0"
    store = open_store(None, environ=env)
    assert store.url == f"sqlite://{tmp_path}/data/synapse-mojo/patterns.db"
    store.close()
