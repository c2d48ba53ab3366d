"""Redis as a store of record: patterns, relations and info in Redis, plus a vector set.

    from synapse_mojo.stores import open_store
    open_store("redis://127.0.0.1:6379/0")              # Redis holds the data
    open_store("redis://127.0.0.1:6379/0?read_only=1")  # read, never write

Writes are ``MULTI``/``EXEC`` transactions guarded by ``WATCH`` (retried on conflict). With
``read_only=1`` no command that writes is ever sent to Redis and every write method raises
``ReadOnlyStoreError``. Redis as a read-through cache over another store (``?backing=``) is
``ReadThroughStore`` with a ``RedisPatternCache`` (``read_through.py``, ``redis_cache.py``).

Search push-down: on Redis 8 the store also keeps a vector set (``VADD`` on upsert, ``VREM``
on delete) and ``search`` answers with ``VSIM`` (HNSW, approximate), so many processes can
share one index without each building its own. Vectors are stored unquantised by default
(``quantization=noquant|q8|bin``); ``vector_set=0`` turns this off, ``auto`` (default) uses
it when the server has vector sets. ``sync_vectors()`` rebuilds the set from the patterns.

The key schema is documented in ``synapse_mojo.stores.redis_keys``; connection, errors and
encoding in ``synapse_mojo.stores.redis_connection``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

try:  # the `redis` extra: without it, opening a redis:// store names what to install
    import redis
    import redis.exceptions as redis_errors
except ModuleNotFoundError:
    from .._extras import require

    require("redis", "a redis:// store")
    raise

from ..errors import ConfigError, ReadOnlyStoreError, StoreError
from .base import (
    INFO_EMBEDDING_DIM,
    ChangeFeed,
    Pattern,
    PatternStore,
    Relation,
    WriteResult,
    check_batch_size,
    endpoint_error,
    id_list,
    info_json,
    missing_endpoints,
    now_micros,
    prepare_batch,
    to_micros,
)
from .redis_connection import RedisConnection, fields_to_pattern, pattern_fields
from .redis_keys import FIELD_CREATED, RedisKeys
from .url_options import take_flag, take_number

#: Optimistic transactions: attempts, and the cap of the jittered back-off between them (s).
_WATCH_RETRIES = 64
_WATCH_BACKOFF_CAP_S = 0.05
#: Entries kept (approximately) in the change feed stream.
_CHANGES_KEEP = 10_000


class RedisStore(PatternStore):
    """Patterns, relations and info in Redis (the store of record), with a vector set."""

    backend = "redis"

    def __init__(self, connection: RedisConnection, *, read_only: bool = False) -> None:
        self._connection = connection
        self._client: redis.Redis = connection.client
        self.keys: RedisKeys = connection.keys
        self.read_only = read_only

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, str]) -> RedisStore:
        """Builds a store from a ``redis://`` / ``rediss://`` / ``unix://`` URL's options."""
        opts = dict(options)
        read_only = take_flag(opts, "read_only", False, url)
        if take_number(opts, "ttl", 0, url, integer=True) > 0:
            raise ConfigError("ttl applies to cache entries: it needs a backing store")
        return cls(
            RedisConnection.from_url(url, opts, own=("read_only", "ttl")), read_only=read_only
        )

    @property
    def url(self) -> str:
        return self._connection.url

    @property
    def vector_set(self) -> bool:
        """True when the store keeps a vector set (Redis 8, ``vector_set`` not 0)."""
        return self._connection.vector_set

    @property
    def quantization(self) -> str:
        return self._connection.quantization

    @property
    def server_version(self) -> tuple[int, ...]:
        return self._connection.server_version

    # ------------------------------------------------------------------ plumbing

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.url} was opened read-only")

    def _transaction(self, action: str, watch: list[str], build: Callable[[Any], None]) -> None:
        """WATCH ``watch``, let ``build(pipe)`` read and queue commands, EXEC; retry on conflict.

        ``build`` is called with the pipeline in immediate mode (reads answer at once) and must
        call ``pipe.multi()`` before queueing writes.
        """
        with self._connection.errors(action):
            for attempt in range(_WATCH_RETRIES):
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(*watch)
                        build(pipe)
                        pipe.execute()
                        return
                    except redis_errors.WatchError:
                        pass
                # Writers that collided would collide again if they retried at once (on a busy
                # machine 16 immediate retries ran out): full-jitter exponential back-off.
                time.sleep(random.uniform(0.0, min(_WATCH_BACKOFF_CAP_S, 0.0005 * 2**attempt)))
            raise StoreError(f"{self.url}: {action} kept conflicting with other writers; try again")

    # ------------------------------------------------------------------ writes

    def upsert(
        self, patterns: Iterable[Pattern], relations: Iterable[Relation] = ()
    ) -> WriteResult:
        self._check_writable()
        pattern_list, relation_list = list(patterns), list(relations)
        # Validated once up front for a quick error, then again under WATCH (the store's
        # dimension may have been fixed by another writer in between).
        prepare_batch(pattern_list, relation_list, self.info().get(INFO_EMBEDDING_DIM))
        outcome: dict[str, Any] = {}

        def build(pipe: Any) -> None:
            # Reads under WATCH: the dimension, which ids exist (and their creation times),
            # relation endpoints.
            store_dim = _json_or_none(pipe.hget(self.keys.info, INFO_EMBEDDING_DIM))
            batch = prepare_batch(pattern_list, relation_list, store_dim)
            ids = [p.id for p in batch.patterns]
            scores = pipe.zmscore(self.keys.ids, ids) if ids else []
            existing = {i for i, s in zip(ids, scores, strict=True) if s is not None}
            created = {}
            for i in existing:
                created[i] = pipe.hget(self.keys.pattern(i), FIELD_CREATED)
            if batch.relations:
                ends = sorted({e for r in batch.relations for e in (r.source, r.target)} - set(ids))
                end_scores = pipe.zmscore(self.keys.ids, ends) if ends else []
                known = set(ids) | {
                    e for e, s in zip(ends, end_scores, strict=True) if s is not None
                }
                if missing := missing_endpoints(batch.relations, known):
                    raise endpoint_error(missing)
            new_ids = [i for i in ids if i not in existing]
            first = int(pipe.get(self.keys.seq) or 0) + 1
            now = now_micros()
            pipe.multi()
            if new_ids:
                pipe.incrby(self.keys.seq, len(new_ids))
                pipe.zadd(self.keys.ids, {i: first + n for n, i in enumerate(new_ids)})
            for pattern, meta in zip(batch.patterns, batch.metadata, strict=True):
                key = self.keys.pattern(pattern.id)
                given = None if pattern.created_at is None else to_micros(pattern.created_at)
                old = created.get(pattern.id)
                created_at = given if given is not None else (int(old) if old is not None else now)
                pipe.delete(key)
                pipe.hset(key, mapping=pattern_fields(pattern, meta, created_at, now))
                self._connection.queue_vector(pipe, pattern)
            for relation in batch.relations:
                pipe.hset(
                    self.keys.relations_out(relation.source),
                    _rel_field(relation.target, relation.type),
                    repr(relation.weight),
                )
                pipe.sadd(
                    self.keys.relations_in(relation.target),
                    _rel_field(relation.source, relation.type),
                )
            if batch.dim is not None and store_dim is None:
                pipe.hset(self.keys.info, INFO_EMBEDDING_DIM, json.dumps(batch.dim))
            self._queue_change(pipe, ids)
            outcome["result"] = WriteResult(
                len(new_ids), len(ids) - len(new_ids), len(batch.relations)
            )

        self._transaction("writing patterns", [self.keys.ids, self.keys.info], build)
        return outcome["result"]

    def _queue_change(self, pipe: Any, ids: list[str]) -> None:
        """Appends the written ids to the change feed, inside the write transaction."""
        if ids:
            pipe.xadd(
                self.keys.changes, {"ids": json.dumps(ids)}, maxlen=_CHANGES_KEEP, approximate=True
            )

    def changes(self, since: Any = None) -> ChangeFeed:
        """Token: (entries ever added to the feed stream, last entry id). A stream that was
        trimmed past the token, or deleted by ``clear``, shows as a count that does not add up."""
        with self._connection.errors("reading the change feed"):
            try:
                info = self._client.xinfo_stream(self.keys.changes)
            except redis_errors.ResponseError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                return ChangeFeed(
                    (0, "0-0"), [] if since is None or tuple(since) == (0, "0-0") else None
                )
            last = info["last-generated-id"]
            token = (
                int(info["entries-added"]),
                last.decode() if isinstance(last, bytes) else str(last),
            )
            if since is None or tuple(since) == token:
                return ChangeFeed(token, [])
            added, after = since
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self._client.xrange(self.keys.changes, min=f"({after}", max=token[1]),
            )
        if len(entries) != token[0] - added:
            return ChangeFeed(token, None)
        ids: dict[str, None] = {}
        for _entry_id, fields in entries:
            if b"ids" not in fields:  # a clear
                return ChangeFeed(token, None)
            for pattern_id in json.loads(fields[b"ids"]):
                ids.pop(pattern_id, None)
                ids[pattern_id] = None
        return ChangeFeed(token, list(ids))

    def delete(self, ids: Iterable[str]) -> int:
        self._check_writable()
        wanted = id_list(ids)
        outcome: dict[str, int] = {}
        watch = (
            [self.keys.ids]
            + [self.keys.relations_out(i) for i in wanted]
            + [self.keys.relations_in(i) for i in wanted]
        )

        def build(pipe: Any) -> None:
            scores = pipe.zmscore(self.keys.ids, wanted) if wanted else []
            present = [i for i, s in zip(wanted, scores, strict=True) if s is not None]
            outgoing = {i: pipe.hkeys(self.keys.relations_out(i)) for i in present}
            incoming = {i: pipe.smembers(self.keys.relations_in(i)) for i in present}
            pipe.multi()
            for i in present:
                pipe.delete(self.keys.pattern(i))
                pipe.zrem(self.keys.ids, i)
                if self.vector_set:
                    pipe.execute_command("VREM", self.keys.vectors, i)
                for field in outgoing[i]:
                    target, rel_type = json.loads(field)
                    pipe.srem(self.keys.relations_in(target), _rel_field(i, rel_type))
                for member in incoming[i]:
                    source, rel_type = json.loads(member)
                    pipe.hdel(self.keys.relations_out(source), _rel_field(i, rel_type))
                pipe.delete(self.keys.relations_out(i), self.keys.relations_in(i))
            self._queue_change(pipe, present)
            outcome["removed"] = len(present)

        self._transaction("deleting patterns", watch, build)
        return outcome["removed"]

    def set_info(self, values: Mapping[str, Any]) -> None:
        self._check_writable()
        encoded = {k: (None if v is None else info_json(k, v)) for k, v in dict(values).items()}
        with self._connection.errors("writing store info"):
            pipe = self._client.pipeline(transaction=True)
            for key, value in encoded.items():
                if value is None:
                    pipe.hdel(self.keys.info, key)
                else:
                    pipe.hset(self.keys.info, key, value)
            pipe.execute()

    def clear(self) -> None:
        self._check_writable()
        with self._connection.errors("clearing the store"):
            # The change feed stays (a new stream could reuse the old entry ids); a ``clear``
            # entry tells followers to rebuild.
            feed = self.keys.changes.encode()
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=self.keys.all_keys_glob, count=1000):
                if key == feed:
                    continue
                batch.append(key)
                if len(batch) >= 1000:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
            self._client.xadd(
                self.keys.changes, {"clear": "1"}, maxlen=_CHANGES_KEEP, approximate=True
            )

    # ------------------------------------------------------------------ vector set

    def vectors_out_of_step(self) -> bool:
        return self.vector_set and self.vector_count() != self.count()

    def sync_vectors(
        self, progress: Callable[[int], None] | None = None, batch_size: int = 1000
    ) -> int:
        self._check_writable()
        return self._connection.rebuild_vectors(self.iter_batches(batch_size), progress)

    def vector_count(self) -> int:
        """Elements in the vector set (0 when it does not exist)."""
        return self._connection.vector_count()

    @property
    def supports_search(self) -> bool:
        return self.vector_set

    def search(self, query: Any, top_k: int = 10) -> list[tuple[str, float]]:
        if not self.vector_set:
            return super().search(query, top_k)
        return self._connection.search_vectors(query, top_k, self.info().get(INFO_EMBEDDING_DIM))

    # ------------------------------------------------------------------ reads

    def get_many(self, ids: Iterable[str]) -> dict[str, Pattern]:
        wanted = id_list(ids)
        with self._connection.errors("reading patterns"):
            found = self._connection.read_patterns(wanted)
        return {i: found[i] for i in wanted if i in found}

    def iter_batches(self, batch_size: int = 1000) -> Iterator[list[Pattern]]:
        size = check_batch_size(batch_size)
        after = "-inf"
        while True:
            with self._connection.errors("reading patterns"):
                members = cast(
                    "list[tuple[bytes, float]]",
                    self._client.zrangebyscore(
                        self.keys.ids, after, "+inf", start=0, num=size, withscores=True
                    ),
                )
                if not members:
                    return
                ids = [m.decode("utf-8") for m, _ in members]
                pipe = self._client.pipeline(transaction=False)
                for i in ids:
                    pipe.hgetall(self.keys.pattern(i))
                rows = pipe.execute()
            after = f"({members[-1][1]:.0f}"
            yield [fields_to_pattern(i, f) for i, f in zip(ids, rows, strict=True) if f]
            if len(members) < size:
                return

    def count(self) -> int:
        with self._connection.errors("counting patterns"):
            return int(self._client.zcard(self.keys.ids))

    def relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        out: list[Relation] = []
        seen: set[tuple[str, str, str]] = set()
        with self._connection.errors("reading relations"):
            if ids is None:
                members = cast("list[bytes]", self._client.zrange(self.keys.ids, 0, -1))
                sources = [m.decode("utf-8") for m in members]
                incoming_of: list[str] = []
            else:
                sources = id_list(ids)
                incoming_of = sources
            pipe = self._client.pipeline(transaction=False)
            for i in sources:
                pipe.hgetall(self.keys.relations_out(i))
            for i in incoming_of:
                pipe.smembers(self.keys.relations_in(i))
            answers = pipe.execute()
            extra_sources: list[tuple[str, str, str]] = []
            for source, fields in zip(sources, answers[: len(sources)], strict=True):
                for field, weight in sorted(fields.items()):
                    target, rel_type = json.loads(field)
                    key = (source, target, rel_type)
                    if key not in seen:
                        seen.add(key)
                        out.append(Relation(source, target, rel_type, float(weight)))
            for target, members in zip(incoming_of, answers[len(sources) :], strict=True):
                for member in sorted(members):
                    source, rel_type = json.loads(member)
                    if (source, target, rel_type) not in seen:
                        extra_sources.append((source, target, rel_type))
            if extra_sources:
                pipe = self._client.pipeline(transaction=False)
                for source, target, rel_type in extra_sources:
                    pipe.hget(self.keys.relations_out(source), _rel_field(target, rel_type))
                for (source, target, rel_type), weight in zip(
                    extra_sources, pipe.execute(), strict=True
                ):
                    if weight is not None and (source, target, rel_type) not in seen:
                        seen.add((source, target, rel_type))
                        out.append(Relation(source, target, rel_type, float(weight)))
        return out

    def info(self) -> dict[str, Any]:
        with self._connection.errors("reading store info"):
            fields = cast("dict[bytes, bytes]", self._client.hgetall(self.keys.info))
        return {k.decode("utf-8"): json.loads(v) for k, v in sorted(fields.items())}

    def close(self) -> None:
        self._connection.close()


def _rel_field(other: str, rel_type: str) -> str:
    return json.dumps([other, rel_type], ensure_ascii=False, separators=(",", ":"))


def _json_or_none(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)
