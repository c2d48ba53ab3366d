"""The embedded default store: one SQLite file (stdlib ``sqlite3``, WAL mode).

    from synapse_mojo.stores import SQLiteStore
    with SQLiteStore("~/.local/share/synapse-mojo/patterns.db") as store:
        store.upsert(patterns, relations)

URL forms (``open_store``): ``sqlite:///absolute/path.db``, ``sqlite:relative/path.db``
(``sqlite:~/patterns.db`` expands ``~``), ``sqlite://`` for a private in-memory database.
Query options: ``?read_only=1``, ``?timeout=<seconds to wait for a lock>`` (default 30).

Schema (``PRAGMA user_version`` = 1)::

    patterns(seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- insertion order, for iteration
             id TEXT UNIQUE, text TEXT, metadata TEXT (JSON), embedding BLOB (float32 LE),
             dim INTEGER, created_at INTEGER, updated_at INTEGER)   -- UTC microseconds
    relations(source TEXT, target TEXT, type TEXT, weight REAL,
              PRIMARY KEY (source, target, type),
              FOREIGN KEYs -> patterns(id) ON DELETE CASCADE)
    store_info(key TEXT PRIMARY KEY, value TEXT (JSON))
    changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT)  -- change feed, filled by triggers

The ``changes`` table is the change feed (``changes()``): triggers on ``patterns`` append the id
of every inserted, updated or deleted pattern, so writes by any process (and older versions of
this package) are seen; the oldest rows are pruned beyond ``CHANGE_LOG_KEEP``. It is added to an
existing file the first time the file is opened writable (older versions ignore it).

WAL lets readers in other processes work while one process writes; ``upsert`` runs in one
``BEGIN IMMEDIATE`` transaction (all or nothing). One connection per store object, shared by
threads under a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReadOnlyStoreError, StoreError, StoreUnavailableError
from .base import (
    INFO_EMBEDDING_DIM,
    ChangeFeed,
    Pattern,
    PatternStore,
    Relation,
    WriteResult,
    check_batch_size,
    endpoint_error,
    from_micros,
    id_list,
    info_json,
    missing_endpoints,
    now_micros,
    prepare_batch,
    to_micros,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS patterns (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    text       TEXT    NOT NULL,
    metadata   TEXT    NOT NULL,
    embedding  BLOB,
    dim        INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS relations (
    source TEXT NOT NULL REFERENCES patterns(id) ON DELETE CASCADE,
    target TEXT NOT NULL REFERENCES patterns(id) ON DELETE CASCADE,
    type   TEXT NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (source, target, type)
);
CREATE INDEX IF NOT EXISTS relations_by_target ON relations(target);
CREATE TABLE IF NOT EXISTS store_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: Rows kept in the change feed; a reader further behind rebuilds its index.
CHANGE_LOG_KEEP = 10_000

_CHANGE_FEED = (
    """CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id  TEXT NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS changes_on_insert AFTER INSERT ON patterns
        BEGIN INSERT INTO changes (id) VALUES (NEW.id); END""",
    """CREATE TRIGGER IF NOT EXISTS changes_on_update AFTER UPDATE ON patterns
        BEGIN INSERT INTO changes (id) VALUES (NEW.id); END""",
    """CREATE TRIGGER IF NOT EXISTS changes_on_delete AFTER DELETE ON patterns
        BEGIN INSERT INTO changes (id) VALUES (OLD.id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS changes_prune AFTER INSERT ON changes WHEN NEW.seq % 1000 = 0
        BEGIN DELETE FROM changes WHERE seq <= NEW.seq - {CHANGE_LOG_KEEP}; END""",
)

#: SQLite's default limit on bound parameters is 999 on old builds; stay under it.
_IN_CHUNK = 500


class SQLiteStore(PatternStore):
    """Patterns in one SQLite database file (``":memory:"`` for a private in-memory one)."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, read_only: bool = False, timeout: float = 30.0) -> None:
        self.read_only = read_only
        self._memory = str(path) == ":memory:"
        self.path = Path(path).expanduser() if not self._memory else None
        self._lock = threading.RLock()
        self._closed = False
        try:
            if self._memory:
                if read_only:
                    raise StoreError("a read-only in-memory SQLite store would always be empty")
                self._conn = sqlite3.connect(
                    ":memory:", timeout=timeout, check_same_thread=False, isolation_level=None
                )
            elif read_only:
                if not self.path.exists():  # type: ignore[union-attr]
                    raise StoreUnavailableError(
                        f"SQLite store {self.path} does not exist (read-only)"
                    )
                uri = self.path.resolve().as_uri() + "?mode=ro"  # type: ignore[union-attr]
                self._conn = sqlite3.connect(
                    uri, uri=True, timeout=timeout, check_same_thread=False, isolation_level=None
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
                self._conn = sqlite3.connect(
                    str(self.path), timeout=timeout, check_same_thread=False, isolation_level=None
                )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open SQLite store {self.url}: {exc}") from exc
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create SQLite store {self.url}: {exc}") from exc
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.url} is not a usable SQLite pattern store: {exc}") from exc

    # ------------------------------------------------------------------ setup

    @property
    def url(self) -> str:
        if self._memory:
            return "sqlite://"
        return f"sqlite://{self.path}" if self.path.is_absolute() else f"sqlite:{self.path}"  # type: ignore[union-attr]

    def _setup(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.url} has schema version {version}, newer than this synapse-mojo "
                f"understands ({SCHEMA_VERSION}); upgrade synapse-mojo"
            )
        if self.read_only:
            if version == 0:
                raise StoreError(f"{self.url} is not a synapse-mojo pattern store")
            return
        if not self._memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.url}: could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        if version == 0:
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        has_feed = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'changes_%'"
        ).fetchone()[0]
        if has_feed < 4:
            with self._transaction():
                for statement in _CHANGE_FEED:
                    conn.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error; sqlite errors translated."""
        with self._lock:
            self._check_open()
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.url) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc, self.url) from exc
                raise

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise _translate(exc, self.url) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.url} is closed")

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.url} was opened read-only")

    # ------------------------------------------------------------------ writes

    def upsert(
        self, patterns: Iterable[Pattern], relations: Iterable[Relation] = ()
    ) -> WriteResult:
        self._check_writable()
        pattern_list, relation_list = list(patterns), list(relations)
        with self._lock:
            now = now_micros()
            with self._transaction() as conn:
                # Validated inside the write transaction: another process may have fixed the
                # store's dimension since we last looked.
                row = conn.execute(
                    "SELECT value FROM store_info WHERE key = ?", (INFO_EMBEDDING_DIM,)
                ).fetchone()
                store_dim = json.loads(row[0]) if row else None
                batch = prepare_batch(pattern_list, relation_list, store_dim)
                ids = [p.id for p in batch.patterns]
                existing = self._existing(conn, ids)
                if batch.relations:
                    ends = {e for r in batch.relations for e in (r.source, r.target)}
                    known = set(ids) | self._existing(conn, ends - set(ids))
                    if missing := missing_endpoints(batch.relations, known):
                        raise endpoint_error(missing)
                conn.executemany(
                    """
                    INSERT INTO patterns
                        (id, text, metadata, embedding, dim, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET
                        text = excluded.text,
                        metadata = excluded.metadata,
                        embedding = excluded.embedding,
                        dim = excluded.dim,
                        created_at = CASE WHEN ? IS NULL THEN patterns.created_at ELSE ? END,
                        updated_at = excluded.updated_at
                    """,
                    (
                        (
                            p.id,
                            p.text,
                            meta,
                            None if p.embedding is None else p.embedding.astype("<f4").tobytes(),
                            None if p.embedding is None else int(p.embedding.shape[0]),
                            given if (given := _micros_or_none(p)) is not None else now,
                            now,
                            given,
                            given,
                        )
                        for p, meta in zip(batch.patterns, batch.metadata, strict=True)
                    ),
                )
                conn.executemany(
                    """
                    INSERT INTO relations (source, target, type, weight) VALUES (?, ?, ?, ?)
                    ON CONFLICT (source, target, type) DO UPDATE SET weight = excluded.weight
                    """,
                    ((r.source, r.target, r.type, r.weight) for r in batch.relations),
                )
                if batch.dim is not None and store_dim is None:
                    conn.execute(
                        "INSERT OR REPLACE INTO store_info (key, value) VALUES (?, ?)",
                        (INFO_EMBEDDING_DIM, json.dumps(batch.dim)),
                    )
        added = sum(1 for i in ids if i not in existing)
        return WriteResult(added, len(ids) - added, len(batch.relations))

    def delete(self, ids: Iterable[str]) -> int:
        self._check_writable()
        wanted = id_list(ids)
        removed = 0
        with self._transaction() as conn:
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                # Relations go with their patterns (ON DELETE CASCADE).
                removed += conn.execute(
                    f"DELETE FROM patterns WHERE id IN ({marks})", chunk
                ).rowcount
        return removed

    def set_info(self, values: Mapping[str, Any]) -> None:
        self._check_writable()
        encoded = [(k, None if v is None else info_json(k, v)) for k, v in dict(values).items()]
        with self._transaction() as conn:
            for key, value in encoded:
                if value is None:
                    conn.execute("DELETE FROM store_info WHERE key = ?", (key,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO store_info (key, value) VALUES (?, ?)", (key, value)
                    )

    def clear(self) -> None:
        self._check_writable()
        with self._transaction() as conn:
            conn.execute("DELETE FROM relations")
            conn.execute("DELETE FROM patterns")
            conn.execute("DELETE FROM store_info")

    # ------------------------------------------------------------------ reads

    def get_many(self, ids: Iterable[str]) -> dict[str, Pattern]:
        wanted = id_list(ids)
        found: dict[str, Pattern] = {}
        with self._reading() as conn:
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT {_COLUMNS} FROM patterns WHERE id IN ({marks})", chunk)
                for row in rows:
                    pattern = _row_to_pattern(row)
                    found[pattern.id] = pattern
        return {i: found[i] for i in wanted if i in found}

    def iter_batches(self, batch_size: int = 1000) -> Iterator[list[Pattern]]:
        size = check_batch_size(batch_size)
        after = -1
        while True:
            with self._reading() as conn:
                rows = conn.execute(
                    f"SELECT seq, {_COLUMNS} FROM patterns WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after, size),
                ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [_row_to_pattern(row[1:]) for row in rows]
            if len(rows) < size:
                return

    def count(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT count(*) FROM patterns").fetchone()[0])

    def relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        with self._reading() as conn:
            if ids is None:
                rows = conn.execute(
                    "SELECT source, target, type, weight FROM relations ORDER BY rowid"
                ).fetchall()
            else:
                wanted = id_list(ids)
                seen: dict[tuple, None] = {}
                rows = []
                for chunk in _chunks(wanted):
                    marks = ",".join("?" * len(chunk))
                    for row in conn.execute(
                        f"SELECT source, target, type, weight FROM relations "
                        f"WHERE source IN ({marks}) OR target IN ({marks}) ORDER BY rowid",
                        chunk + chunk,
                    ):
                        if row[:3] not in seen:
                            seen[row[:3]] = None
                            rows.append(row)
        return [Relation(s, t, ty, w) for s, t, ty, w in rows]

    def info(self) -> dict[str, Any]:
        with self._reading() as conn:
            rows = conn.execute("SELECT key, value FROM store_info ORDER BY key").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def changes(self, since: Any = None) -> ChangeFeed:
        with self._reading() as conn:
            try:
                row = conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
                ).fetchone()
            except sqlite3.OperationalError:  # no AUTOINCREMENT table yet: no feed
                return ChangeFeed(None, [])
            if row is None and not self._has_feed(conn):
                return ChangeFeed(None, [])  # a read-only file from before the change feed
            token = int(row[0]) if row is not None else 0
            if since is None or since == token:
                return ChangeFeed(token, [])
            if token < since:  # the sequence went back: not the history we know
                return ChangeFeed(token, None)
            oldest = conn.execute("SELECT min(seq) FROM changes").fetchone()[0]
            if oldest is None or oldest > since + 1:  # pruned past our token
                return ChangeFeed(token, None)
            rows = conn.execute(
                "SELECT id FROM changes WHERE seq > ? AND seq <= ? GROUP BY id ORDER BY max(seq)",
                (since, token),
            )
            ids = [r[0] for r in rows]
        return ChangeFeed(token, ids)

    def _has_feed(self, conn: sqlite3.Connection) -> bool:
        return (
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'changes'").fetchone()
            is not None
        )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # ------------------------------------------------------------------ internals

    def _existing(self, conn: sqlite3.Connection, ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            out.update(
                r[0] for r in conn.execute(f"SELECT id FROM patterns WHERE id IN ({marks})", chunk)
            )
        return out


_COLUMNS = "id, text, metadata, embedding, dim, created_at, updated_at"


def _row_to_pattern(row: tuple) -> Pattern:
    pattern_id, text, metadata, blob, dim, created, updated = row
    embedding = None
    if blob is not None:
        embedding = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        if embedding.shape[0] != dim:
            raise StoreError(
                f"pattern {pattern_id!r}: stored embedding is corrupt "
                f"({embedding.shape[0]} != {dim})"
            )
    return Pattern(
        id=pattern_id,
        text=text,
        metadata=json.loads(metadata),
        embedding=embedding,
        created_at=from_micros(created),
        updated_at=from_micros(updated),
    )


def _micros_or_none(pattern: Pattern) -> int | None:
    return None if pattern.created_at is None else to_micros(pattern.created_at)


def _chunks(items: list[str], size: int = _IN_CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _translate(exc: sqlite3.Error, url: str) -> StoreError:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in message:
        return StoreUnavailableError(f"{url} is locked by another writer: {message}")
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in message.replace(" ", ""):
        return ReadOnlyStoreError(f"{url} is not writable: {message}")
    return StoreError(f"SQLite store {url}: {message}")
