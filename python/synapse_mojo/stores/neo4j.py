"""The pattern graph in Neo4j (official ``neo4j`` driver), with vector search push-down.

    from synapse_mojo.stores import open_store
    # credentials from NEO4J_USER / NEO4J_PASSWORD; address from the URL or NEO4J_URI
    with open_store("neo4j://db.internal:7687?database=patterns") as store:
        store.upsert(patterns, relations)
        store.search(query_vector, top_k=5)          # Neo4j's HNSW vector index

Graph model::

    (:Pattern {id, text, metadata: <JSON string>, embedding: [float], dim,
               created_at, updated_at})                 -- times: UTC microseconds (int)
    (:Pattern)-[:RELATED_TO {type, weight}]->(:Pattern)
    (:SynapseInfo {key, value: <JSON string>})          -- store-wide values
    (:SynapseChangeCounter {name: 'patterns', seq})     -- change feed (``changes``): one
    (:SynapseChange {seq, ids: [id] | null})            -- entry per write, null = cleared

Every query is parameterised; values never enter the query text. The only text built at run
time is the vector index DDL, whose one variable part is the embedding dimension, an ``int``
checked here (Cypher cannot take parameters in index options on all supported versions).
Upserts are batched ``UNWIND`` statements (``batch_size`` rows and at most ``batch_bytes`` of
parameters each) run in one managed write transaction: on Neo4j all or nothing.

Search push-down, chosen by server version: Neo4j 2026.01+ uses the Cypher 25 ``SEARCH``
clause, Neo4j 5.11+ ``db.index.vector.queryNodes``; both over the vector index
``synapse_pattern_embedding`` (cosine), asked for ``candidates`` (100) neighbours of which the
best ``top_k`` are kept, created when the store first knows its dimension
(``vector_index=0`` in the URL turns this off), with full-precision vectors (Neo4j 5.23+
would otherwise quantize them and report approximate scores). Neo4j reports cosine scores as
``(1 + cos) / 2``; ``search`` converts them back to cosine similarity. The index is
approximate (HNSW); the in-memory ``PatternIndex`` is exact.

Servers: Neo4j 5.7 or later (Community or Enterprise; the store asks ``dbms.components()``
and refuses a Bolt server that is not Neo4j). The tests run Neo4j 5.26 LTS and a 2026 calendar
release, started from Maven Central's artifacts (see ``docs/stores.md``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

try:  # the `neo4j` extra: without it, opening a neo4j:// store names what to install
    import neo4j
    import neo4j.exceptions as neo4j_errors
except ModuleNotFoundError:
    from .._extras import require

    require("neo4j", "a neo4j:// or bolt:// store")
    raise

from .._urls import parse_url, redact, redact_text
from ..errors import (
    ConfigError,
    InvalidInputError,
    ReadOnlyStoreError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
)
from ..vectors import as_query, as_top_k
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
from .url_options import NEO4J_SCHEMES, reject_unknown, take_flag, take_number

log = logging.getLogger("synapse_mojo.stores.neo4j")

#: Name of the vector index over ``Pattern.embedding``.
VECTOR_INDEX = "synapse_pattern_embedding"
#: Name of the uniqueness constraint on ``Pattern.id``.
ID_CONSTRAINT = "synapse_pattern_id"

#: Server versions with each vector search flavour.
QUERY_NODES_SINCE = (5, 11)
SEARCH_CLAUSE_SINCE = (2026, 1)

#: Vector index options for full-precision vectors (earlier releases have no quantization).
QUANTIZATION_OPTION_SINCE = (5, 23)
#: The oldest server the store talks to (notification filtering needs Bolt 5.2).
OLDEST_SERVER = (5, 7)

_URL_OPTIONS = (
    "read_only",
    "database",
    "batch_size",
    "batch_bytes",
    "timeout",
    "vector_index",
    "candidates",
)

#: Neighbours the vector index is asked for per search (at least top_k). Its HNSW search
#: explores only as many candidates as it is asked for: on 5,000 random 384-dim vectors,
#: asking Neo4j 5.26 for 10 found 33% of the exact top 10, asking for 100 found 93%, in about
#: the same time (the Bolt round trip dominates).
DEFAULT_CANDIDATES = 100

#: Default cap on one statement's parameters (PackStream bytes): large enough for a few
#: thousand 1024-dimensional embeddings, small enough to keep the server's transaction memory
#: and a retried statement modest.
DEFAULT_BATCH_BYTES = 16 << 20
#: Change-feed entries kept (``changes``); a follower further behind rebuilds its index.
CHANGE_LOG_KEEP = 10_000


class Neo4jStore(PatternStore):
    """Patterns as ``:Pattern`` nodes and ``:RELATED_TO`` relationships over Bolt."""

    backend = "neo4j"

    def __init__(
        self,
        uri: str,
        *,
        auth: tuple[str, str] | None = None,
        database: str | None = None,
        read_only: bool = False,
        batch_size: int = 500,
        batch_bytes: int | None = None,
        timeout: float = 30.0,
        vector_index: bool = True,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> None:
        self._uri = uri
        self.database = database or None
        self.read_only = read_only
        self.batch_size = check_batch_size(batch_size)
        self.vector_index = vector_index
        self._user = auth[0] if auth else None
        self._search_clause_refused = False
        self.timeout = timeout
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ConfigError(f"candidates must be a positive integer, got {candidates!r}")
        self.candidates = candidates
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                connection_timeout=min(timeout, 15.0),
                connection_acquisition_timeout=timeout,
                max_transaction_retry_time=timeout,
                user_agent="synapse-mojo",
                # The store reads no notifications; without this the driver logs each one
                # (e.g. "property key does not exist" on an empty database) as a warning.
                notifications_min_severity="OFF",
            )
        except (neo4j_errors.ConfigurationError, ValueError) as exc:
            raise ConfigError(f"Neo4j URL {redact(uri)!r}: {redact_text(str(exc))}") from exc
        try:
            self._connect()
            self.version = self._server_version()
            self.batch_bytes = int(batch_bytes) if batch_bytes else DEFAULT_BATCH_BYTES
            if not read_only:
                self._ensure_schema()
        except BaseException:
            self._driver.close()
            raise

    @classmethod
    def from_url(cls, url: str, options: dict[str, str], environ: Mapping[str, str]) -> Neo4jStore:
        """Builds a store from a ``neo4j://``/``bolt://`` URL plus ``NEO4J_*`` variables."""
        parts = parse_url(url, what="store URL")
        if not parts.host:
            env_uri = environ.get("NEO4J_URI", "").strip()
            if not env_uri:
                raise ConfigError(
                    f"store URL {redact(url)!r} names no host and NEO4J_URI is not set"
                )
            parts = parse_url(env_uri, what="NEO4J_URI", schemes=NEO4J_SCHEMES)
        if parts.username is not None:
            auth: tuple[str, str] | None = (parts.username, parts.password or "")
        else:
            auth = env_credentials(environ)
        host = parts.host or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        uri = f"{parts.scheme}://{netloc}"
        opts = dict(options)
        read_only = take_flag(opts, "read_only", False, url)
        database = opts.pop("database", None) or environ.get("NEO4J_DATABASE") or None
        batch_size = int(take_number(opts, "batch_size", 500, url, integer=True, minimum=1))
        batch_bytes = int(take_number(opts, "batch_bytes", 0, url, integer=True, minimum=0)) or None
        timeout = take_number(opts, "timeout", 30.0, url, minimum=0.1)
        vector_index = take_flag(opts, "vector_index", True, url)
        candidates = int(
            take_number(opts, "candidates", DEFAULT_CANDIDATES, url, integer=True, minimum=1)
        )
        reject_unknown(opts, url, _URL_OPTIONS)
        return cls(
            uri,
            auth=auth,
            database=database,
            read_only=read_only,
            batch_size=batch_size,
            batch_bytes=batch_bytes,
            timeout=timeout,
            vector_index=vector_index,
            candidates=candidates,
        )

    @property
    def url(self) -> str:
        db = f"?database={self.database}" if self.database else ""
        user = f"{self._user}@" if self._user else ""
        scheme, rest = self._uri.split("://", 1)
        return f"{scheme}://{user}{rest}{db}"

    # ------------------------------------------------------------------ connection

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translates driver errors into the library's, naming the action and the server."""
        try:
            yield
        except neo4j_errors.AuthError as exc:
            raise StoreAuthError(
                f"{self.url}: the server rejected the credentials while {action} "
                "(check NEO4J_USER / NEO4J_PASSWORD)"
            ) from exc
        except (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired) as exc:
            raise StoreUnavailableError(f"{self.url} is unavailable while {action}: {exc}") from exc
        except neo4j_errors.ConnectionAcquisitionTimeoutError as exc:
            raise StoreUnavailableError(
                f"{self.url}: timed out waiting for a connection while {action}"
            ) from exc
        except neo4j_errors.Neo4jError as exc:
            raise StoreError(f"{self.url}: {action} failed: {exc.code}: {exc.message}") from exc
        except neo4j_errors.DriverError as exc:
            raise StoreError(f"{self.url}: {action} failed: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreUnavailableError(f"{self.url} is unavailable while {action}: {exc}") from exc

    def _connect(self) -> None:
        with self._errors("connecting"):
            self._driver.verify_connectivity()

    def _session(self, write: bool = False) -> neo4j.Session:
        access = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        return self._driver.session(database=self.database, default_access_mode=access)

    def _read(self, action: str, query: str, **params: Any) -> list[dict[str, Any]]:
        with self._errors(action), self._session() as session:
            return session.execute_read(lambda tx: tx.run(query, **params).data())

    def _server_version(self) -> tuple[int, ...]:
        """The Neo4j version from ``dbms.components()``; anything else is refused."""
        try:
            rows = self._read(
                "reading the server version",
                "CALL dbms.components() YIELD name, versions RETURN name, versions",
            )
        except StoreError as exc:
            if isinstance(exc, (StoreAuthError, StoreUnavailableError)):
                raise
            raise StoreError(
                f"{self.url} does not answer dbms.components(): not a Neo4j server "
                f"(the store needs Neo4j {'.'.join(map(str, OLDEST_SERVER))}+)"
            ) from exc
        for row in rows:
            if str(row.get("name", "")).lower().startswith("neo4j"):
                version = parse_version(str((row.get("versions") or [""])[0]))
                if version is not None:
                    return version
        raise StoreError(f"{self.url}: dbms.components() names no Neo4j version: {rows!r}")

    def _ensure_schema(self) -> None:
        with self._errors("creating the schema"), self._session(write=True) as session:
            session.run(
                f"CREATE CONSTRAINT {ID_CONSTRAINT} IF NOT EXISTS "
                "FOR (p:Pattern) REQUIRE p.id IS UNIQUE"
            ).consume()
            session.run(
                "CREATE INDEX synapse_info_key IF NOT EXISTS FOR (i:SynapseInfo) ON (i.key)"
            ).consume()
        dim = self.info().get(INFO_EMBEDDING_DIM)
        if dim is not None:
            self._ensure_vector_index(int(dim))

    def _ensure_vector_index(self, dim: int) -> None:
        if not (self.vector_index and self._vector_search_flavour() and not self.read_only):
            return
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65536:
            raise InvalidInputError(f"embedding dimension {dim!r} is not a valid vector index size")
        # Index options take literals; dim is an int checked just above (no user text here).
        ddl = (
            f"CREATE VECTOR INDEX {VECTOR_INDEX} IF NOT EXISTS FOR (p:Pattern) ON (p.embedding) "
            f"OPTIONS {{indexConfig: {{`vector.dimensions`: {dim}, "
            "`vector.similarity_function`: 'cosine'"
            + (
                ", `vector.quantization.enabled`: false"
                if self.version >= QUANTIZATION_OPTION_SINCE
                else ""
            )
            + "}}"
        )
        with self._errors("creating the vector index"), self._session(write=True) as session:
            session.run(ddl).consume()
            # Building over many patterns takes a while: wait at least 5 minutes.
            wait = int(max(300, self.timeout))
            session.run("CALL db.awaitIndex($name, $wait)", name=VECTOR_INDEX, wait=wait).consume()

    def _vector_search_flavour(self) -> str | None:
        if self.version >= SEARCH_CLAUSE_SINCE and not self._search_clause_refused:
            return "search_clause"
        if self.version >= QUERY_NODES_SINCE:
            return "query_nodes"
        return None

    # ------------------------------------------------------------------ parameters

    def _batches(self, rows: list[dict[str, Any]], what: str) -> list[list[dict[str, Any]]]:
        """Rows cut into statements of at most batch_size rows and batch_bytes of parameters
        (a single row larger than batch_bytes goes alone)."""
        batches: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = 0
        budget = self.batch_bytes - 48  # the statement's other parameters (now, rows=[...])
        for row in rows:
            row_size = packed_size(row) + 2
            if current and (len(current) >= self.batch_size or size + row_size > budget):
                batches.append(current)
                current, size = [], 0
            current.append(row)
            size += row_size
        if current:
            batches.append(current)
        return batches

    # ------------------------------------------------------------------ writes

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.url} was opened read-only")

    def upsert(
        self, patterns: Iterable[Pattern], relations: Iterable[Relation] = ()
    ) -> WriteResult:
        self._check_writable()
        store_dim = self.info().get(INFO_EMBEDDING_DIM)
        batch = prepare_batch(patterns, relations, store_dim)
        ids = [p.id for p in batch.patterns]
        existing = self._existing(ids)
        if batch.relations:
            ends = {e for r in batch.relations for e in (r.source, r.target)}
            known = set(ids) | self._existing(sorted(ends - set(ids)))
            if missing := missing_endpoints(batch.relations, known):
                raise endpoint_error(missing)
        now = now_micros()
        node_rows = [
            {
                "id": p.id,
                "text": p.text,
                "metadata": meta,
                "dim": None if p.embedding is None else int(p.embedding.shape[0]),
                "created_at": None if p.created_at is None else to_micros(p.created_at),
                # None removes an old embedding (SET to null).
                "embedding": None
                if p.embedding is None
                else p.embedding.astype(np.float64).tolist(),
            }
            for p, meta in zip(batch.patterns, batch.metadata, strict=True)
        ]
        relation_rows = [
            {"source": r.source, "target": r.target, "type": r.type, "weight": r.weight}
            for r in batch.relations
        ]
        # Cut every statement before the first write, so a size error writes nothing.
        statements: list[tuple[str, list[dict[str, Any]]]] = []
        statements += [(_UPSERT_NODES, b) for b in self._batches(node_rows, "pattern")]
        statements += [
            (_UPSERT_RELATIONS, b) for b in self._batches(relation_rows, "relation from")
        ]
        new_dim = batch.dim if (batch.dim is not None and store_dim is None) else None

        def work(tx: neo4j.ManagedTransaction) -> None:
            # Another writer may have fixed the dimension since it was read: check again in
            # the transaction.
            record = tx.run(_GET_INFO, key=INFO_EMBEDDING_DIM).single()
            current = (
                json.loads(record["value"]) if record and record["value"] is not None else None
            )
            if current != store_dim:
                prepare_batch(
                    batch.patterns, batch.relations, current
                )  # raises DimensionMismatchError
            for query, rows in statements:
                tx.run(query, rows=rows, now=now).consume()
            _log_change(tx, ids)
            if new_dim is not None:
                tx.run(_SET_INFO, key=INFO_EMBEDDING_DIM, value=json.dumps(new_dim)).consume()

        with self._errors("writing patterns"), self._session(write=True) as session:
            session.execute_write(work)
        if new_dim is not None:
            self._ensure_vector_index(new_dim)
        added = sum(1 for i in ids if i not in existing)
        return WriteResult(added, len(ids) - added, len(batch.relations))

    def delete(self, ids: Iterable[str]) -> int:
        self._check_writable()
        wanted = [{"id": i} for i in id_list(ids)]
        batches = self._batches(wanted, "id")

        def work(tx: neo4j.ManagedTransaction) -> int:
            removed = 0
            for rows in batches:
                record = tx.run(_DELETE_NODES, rows=rows).single()
                removed += int(record["n"]) if record else 0
            if removed:
                _log_change(tx, [row["id"] for row in wanted])
            return removed

        with self._errors("deleting patterns"), self._session(write=True) as session:
            return session.execute_write(work)

    def set_info(self, values: Mapping[str, Any]) -> None:
        self._check_writable()
        encoded = [(k, None if v is None else info_json(k, v)) for k, v in dict(values).items()]
        rows = [{"key": k, "value": v} for k, v in encoded]
        batches = self._batches(rows, "info")

        def work(tx: neo4j.ManagedTransaction) -> None:
            for rows in batches:
                tx.run(_SET_INFO_ROWS, rows=rows).consume()

        with self._errors("writing store info"), self._session(write=True) as session:
            session.execute_write(work)
        dim = dict(values).get(INFO_EMBEDDING_DIM)
        if isinstance(dim, int):
            self._ensure_vector_index(dim)

    def clear(self) -> None:
        self._check_writable()

        def work(tx: neo4j.ManagedTransaction) -> None:
            tx.run("MATCH (p:Pattern) DETACH DELETE p").consume()
            tx.run("MATCH (i:SynapseInfo) DELETE i").consume()
            _log_change(tx, None)  # followers rebuild

        with self._errors("clearing the store"), self._session(write=True) as session:
            session.execute_write(work)
            # The vector index is sized for the old dimension; the next write makes a new one.
            session.run(f"DROP INDEX {VECTOR_INDEX} IF EXISTS").consume()

    # ------------------------------------------------------------------ reads

    def _existing(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for rows in self._batches([{"id": i} for i in ids], "id"):
            for row in self._read(
                "reading pattern ids",
                "UNWIND $rows AS row MATCH (p:Pattern {id: row.id}) RETURN p.id AS id",
                rows=rows,
            ):
                found.add(row["id"])
        return found

    def get_many(self, ids: Iterable[str]) -> dict[str, Pattern]:
        wanted = id_list(ids)
        found: dict[str, Pattern] = {}
        for rows in self._batches([{"id": i} for i in wanted], "id"):
            for row in self._read(
                "reading patterns",
                f"UNWIND $rows AS row MATCH (p:Pattern {{id: row.id}}) RETURN {_RETURN_PATTERN}",
                rows=rows,
            ):
                pattern = _to_pattern(row)
                found[pattern.id] = pattern
        return {i: found[i] for i in wanted if i in found}

    def iter_batches(self, batch_size: int = 1000) -> Iterator[list[Pattern]]:
        size = check_batch_size(batch_size)
        after = ""
        while True:
            rows = self._read(
                "reading patterns",
                f"MATCH (p:Pattern) WHERE p.id > $after RETURN {_RETURN_PATTERN} "
                "ORDER BY p.id LIMIT $limit",
                after=after,
                limit=size,
            )
            if not rows:
                return
            batch = [_to_pattern(row) for row in rows]
            after = batch[-1].id
            yield batch
            if len(rows) < size:
                return

    def count(self) -> int:
        rows = self._read("counting patterns", "MATCH (p:Pattern) RETURN count(p) AS n")
        return int(rows[0]["n"]) if rows else 0

    def relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        if ids is None:
            rows = self._read("reading relations", _RELATIONS + " ORDER BY a.id, b.id, e.type")
        else:
            wanted = id_list(ids)
            rows, seen = [], set()
            for chunk in self._batches([{"id": i} for i in wanted], "id"):
                for row in self._read(
                    "reading relations",
                    _RELATIONS_TOUCHING + " ORDER BY a.id, b.id, e.type",
                    ids=[r["id"] for r in chunk],
                ):
                    key = (row["source"], row["target"], row["type"])
                    if key not in seen:
                        seen.add(key)
                        rows.append(row)
        return [Relation(r["source"], r["target"], r["type"], float(r["weight"])) for r in rows]

    def info(self) -> dict[str, Any]:
        rows = self._read(
            "reading store info",
            "MATCH (i:SynapseInfo) RETURN i.key AS key, i.value AS value ORDER BY i.key",
        )
        return {row["key"]: json.loads(row["value"]) for row in rows}

    # ------------------------------------------------------------------ search push-down

    @property
    def supports_search(self) -> bool:
        return self.vector_index and self._vector_search_flavour() is not None

    def search(self, query: Any, top_k: int = 10) -> list[tuple[str, float]]:
        flavour = self._vector_search_flavour() if self.vector_index else None
        if flavour is None:
            return super().search(query, top_k)
        dim = self.info().get(INFO_EMBEDDING_DIM)
        if dim is None:
            return []
        vector = as_query(query, int(dim)).astype(np.float64).tolist()
        k = as_top_k(top_k)
        # Ask the index for more neighbours than wanted (see DEFAULT_CANDIDATES), keep the best k.
        n = max(k, self.candidates)
        if flavour == "search_clause":
            cypher = (
                "CYPHER 25 MATCH (p:Pattern) SEARCH p IN (VECTOR INDEX "
                f"{VECTOR_INDEX} FOR $vector LIMIT $n) SCORE AS score "
                "RETURN p.id AS id, score ORDER BY score DESC, id LIMIT $k"
            )
        else:
            cypher = (
                "CALL db.index.vector.queryNodes($index, $n, $vector) YIELD node, score "
                "RETURN node.id AS id, score ORDER BY score DESC, id LIMIT $k"
            )
        try:
            rows = self._read(
                "searching the vector index", cypher, index=VECTOR_INDEX, n=n, k=k, vector=vector
            )
        except StoreError as exc:
            cause = exc.__cause__
            if flavour != "search_clause" or not isinstance(cause, neo4j_errors.ClientError):
                raise
            # A server that reports 2026.01+ but rejects the SEARCH clause: use the procedure,
            # which Neo4j keeps for compatibility, from now on.
            log.warning(
                "%s: SEARCH clause refused (%s); using db.index.vector.queryNodes",
                self.url,
                cause.code,
            )
            self._search_clause_refused = True
            return self.search(query, top_k)
        # Neo4j's cosine score is (1 + cos) / 2; give back the cosine itself.
        return [(row["id"], 2.0 * float(row["score"]) - 1.0) for row in rows]

    def changes(self, since: Any = None) -> ChangeFeed:
        """Token: the ``SynapseChangeCounter`` node's ``seq``; ids from the ``SynapseChange``
        nodes after it (written in each write transaction; the last ``CHANGE_LOG_KEEP`` kept)."""
        rows = self._read("reading the change feed", _CHANGE_SEQ)
        token = int(rows[0]["seq"]) if rows and rows[0]["seq"] is not None else 0
        if since is None or since == token:
            return ChangeFeed(token, [])
        if token < since:
            return ChangeFeed(token, None)
        entries = self._read("reading the change feed", _CHANGES_SINCE, since=since, upto=token)
        if len(entries) != token - since or any(e["ids"] is None for e in entries):
            return ChangeFeed(token, None)  # pruned past the token, or a clear
        ids: dict[str, None] = {}
        for entry in entries:
            for pattern_id in entry["ids"]:
                ids.pop(pattern_id, None)
                ids[pattern_id] = None
        return ChangeFeed(token, list(ids))

    def close(self) -> None:
        self._driver.close()


def _log_change(tx: neo4j.ManagedTransaction, ids: list[str] | None) -> None:
    """Appends one change-feed entry (``ids`` None: the store was cleared) in the write
    transaction; the counter node's write lock orders entries as their transactions commit."""
    record = tx.run(_LOG_CHANGE, ids=ids).single()
    seq = int(record["seq"]) if record else 0
    if seq % 1000 == 0:
        tx.run(_PRUNE_CHANGES, below=seq - CHANGE_LOG_KEEP).consume()


# --------------------------------------------------------------------------------------------
# Cypher (all parameterised)
# --------------------------------------------------------------------------------------------

# One MERGE per pattern sets everything, the embedding included (null removes it).
_UPSERT_NODES = """
UNWIND $rows AS row
MERGE (p:Pattern {id: row.id})
SET p.text = row.text,
    p.metadata = row.metadata,
    p.dim = row.dim,
    p.embedding = row.embedding,
    p.created_at = coalesce(row.created_at, p.created_at, $now),
    p.updated_at = $now
"""
_UPSERT_RELATIONS = """
UNWIND $rows AS row
MATCH (a:Pattern {id: row.source})
MATCH (b:Pattern {id: row.target})
MERGE (a)-[e:RELATED_TO {type: row.type}]->(b)
SET e.weight = row.weight
"""
_DELETE_NODES = """
UNWIND $rows AS row
MATCH (p:Pattern {id: row.id})
DETACH DELETE p
RETURN count(p) AS n
"""
_LOG_CHANGE = """
MERGE (c:SynapseChangeCounter {name: 'patterns'})
ON CREATE SET c.seq = 0
SET c.seq = c.seq + 1
CREATE (:SynapseChange {seq: c.seq, ids: $ids})
RETURN c.seq AS seq
"""
_PRUNE_CHANGES = "MATCH (x:SynapseChange) WHERE x.seq <= $below DELETE x"
_CHANGE_SEQ = "MATCH (c:SynapseChangeCounter {name: 'patterns'}) RETURN c.seq AS seq"
_CHANGES_SINCE = """
MATCH (x:SynapseChange) WHERE x.seq > $since AND x.seq <= $upto
RETURN x.seq AS seq, x.ids AS ids ORDER BY x.seq
"""
_SET_INFO = "MERGE (i:SynapseInfo {key: $key}) SET i.value = $value"
_GET_INFO = "MATCH (i:SynapseInfo {key: $key}) RETURN i.value AS value"
_SET_INFO_ROWS = """
UNWIND $rows AS row
MERGE (i:SynapseInfo {key: row.key})
SET i.value = row.value
WITH i, row WHERE row.value IS NULL
DELETE i
"""
_RETURN_PATTERN = (
    "p.id AS id, p.text AS text, p.metadata AS metadata, p.embedding AS embedding, "
    "p.dim AS dim, p.created_at AS created_at, p.updated_at AS updated_at"
)
_RELATIONS = (
    "MATCH (a:Pattern)-[e:RELATED_TO]->(b:Pattern) "
    "RETURN a.id AS source, b.id AS target, e.type AS type, e.weight AS weight"
)
_RELATIONS_TOUCHING = (
    "MATCH (a:Pattern)-[e:RELATED_TO]->(b:Pattern) WHERE a.id IN $ids OR b.id IN $ids "
    "RETURN a.id AS source, b.id AS target, e.type AS type, e.weight AS weight"
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _to_pattern(row: Mapping[str, Any]) -> Pattern:
    embedding = row.get("embedding")
    try:
        metadata = json.loads(row["metadata"]) if row.get("metadata") else {}
    except (TypeError, ValueError) as exc:
        raise StoreError(f"pattern {row.get('id')!r}: stored metadata is not JSON ({exc})") from exc
    return Pattern(
        id=row["id"],
        text=row.get("text") or "",
        metadata=metadata,
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        created_at=from_micros(row.get("created_at")),
        updated_at=from_micros(row.get("updated_at")),
    )


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"5.26.1"`` -> (5, 26, 1); ``"2026.01.0"`` -> (2026, 1, 0); junk -> None."""
    numbers = re.findall(r"\d+", text)
    return tuple(int(n) for n in numbers[:3]) if numbers else None


def packed_size(value: Any) -> int:
    """An upper bound of a value's PackStream (Bolt) encoding size in bytes."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 9
    if isinstance(value, str):
        return 5 + len(value.encode("utf-8"))
    if isinstance(value, (list, tuple)):
        return 5 + sum(packed_size(v) for v in value)
    if isinstance(value, dict):
        return 5 + sum(packed_size(str(k)) + packed_size(v) for k, v in value.items())
    return 9


def env_credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) from NEO4J_USER/NEO4J_PASSWORD, or None."""
    env = environ if environ is not None else os.environ
    user = env.get("NEO4J_USER") or env.get("NEO4J_USERNAME")
    return (user, env.get("NEO4J_PASSWORD", "")) if user else None


__all__ = ["Neo4jStore", "env_credentials", "packed_size", "parse_version"]
