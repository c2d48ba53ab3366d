"""Redis as the shared read path: a pattern store, or a read-through cache over another one.

    from synapse_mojo.stores import open_store
    open_store("redis://127.0.0.1:6379/0")                              # Redis holds the data
    open_store("redis://cache:6379/0?backing=neo4j://graph:7687&ttl=3600")  # cache over Neo4j
    open_store("redis://cache:6379/0?read_only=1")                      # read, never write

Three ways to use it:

* **Store of record** (no ``backing``): patterns, relations and info live in Redis; writes
  are ``MULTI``/``EXEC`` transactions guarded by ``WATCH`` (retried on conflict).
* **Read-through cache** (``backing=<url>``): reads look in Redis first, fetch misses from
  the backing store and cache them (``ttl`` seconds, default 3600; 0 = no expiry). Writes go
  to the backing store first (its transaction), then the touched entries are invalidated
  (deleted) in Redis. Counting, iteration, relations and info come from the backing store.
* **Read-only** (``read_only=1``, with or without ``backing``): reads only; no command that
  writes is ever sent to Redis (no cache fills either) and every write method raises
  ``ReadOnlyStoreError``. This is the first Redis step of the seed system: read pattern data,
  never write.

Search push-down: on Redis 8 the store also keeps a vector set (``VADD`` on upsert, ``VREM``
on delete) and ``search`` answers with ``VSIM`` (HNSW, approximate), so many processes can
share one index without each building its own. Vectors are stored unquantised by default
(``quantization=noquant|q8|bin``); ``vector_set=0`` turns this off, ``auto`` (default) uses
it when the server has vector sets. ``sync_vectors()`` (re)builds the set from the store of
record, e.g. when a cache is put in front of an existing Neo4j map. VSIM reports
``(1 + cos) / 2``; ``search`` returns the cosine.

The key schema is documented in ``synapse_mojo.stores.redis_keys``. Redis errors become
``StoreUnavailableError`` (down, timeout), ``StoreAuthError`` (wrong password) or
``StoreError``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

try:  # the `redis` extra: without it, opening a redis:// store names what to install
    import redis
    import redis.exceptions as redis_errors
except ModuleNotFoundError:
    from .._extras import require

    require("redis", "a redis:// store")
    raise

from .._urls import parse_url, redis_driver_options, scrub
from ..errors import (
    ConfigError,
    ReadOnlyStoreError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
    SynapseError,
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
from .redis_keys import (
    DEFAULT_PREFIX,
    FIELD_CREATED,
    FIELD_DIM,
    FIELD_EMBEDDING,
    FIELD_METADATA,
    FIELD_TEXT,
    FIELD_UPDATED,
    RedisKeys,
)
from .url import redact, reject_unknown, take_flag, take_number

log = logging.getLogger("synapse_mojo.stores.redis")

_QUANTIZATION = {"noquant": "NOQUANT", "q8": "Q8", "bin": "BIN"}
_URL_OPTIONS = ("read_only", "prefix", "backing", "ttl", "vector_set", "quantization", "timeout")
#: Optimistic transactions: attempts, and the cap of the jittered back-off between them (s).
_WATCH_RETRIES = 64
_WATCH_BACKOFF_CAP_S = 0.05
_PIPELINE_CHUNK = 500
#: Entries kept (approximately) in the change feed stream.
_CHANGES_KEEP = 10_000


class RedisStore(PatternStore):
    """Patterns in Redis (store of record), or a read-through cache over ``backing``."""

    backend = "redis"

    def __init__(
        self,
        client: redis.Redis,
        *,
        backing: PatternStore | None = None,
        prefix: str = DEFAULT_PREFIX,
        read_only: bool = False,
        ttl: int | None = None,
        vector_set: bool | None = None,
        quantization: str = "noquant",
        display_url: str | None = None,
    ) -> None:
        if quantization not in _QUANTIZATION:
            raise ConfigError(
                f"quantization {quantization!r}: expected one of {sorted(_QUANTIZATION)}"
            )
        if ttl is not None and backing is None and ttl > 0:
            raise ConfigError("ttl applies to cache entries: it needs a backing store")
        self._client = client
        self.backing = backing
        self.keys = RedisKeys(prefix)
        self.read_only = read_only
        self.ttl = int(ttl if ttl is not None else (3600 if backing is not None else 0))
        self.quantization = quantization
        self._display_url = display_url or "redis://"
        with self._errors("connecting"):
            self._client.ping()
            version = str(self._client.info("server").get("redis_version", "0"))
        self.server_version = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        has_vector_sets = self.server_version >= (8, 0)
        if vector_set and not has_vector_sets:
            raise ConfigError(
                f"{self.url}: vector_set=1 needs Redis 8 (vector sets); the server is {version}"
            )
        self.vector_set = has_vector_sets if vector_set is None else vector_set

    @classmethod
    def from_url(cls, url: str, options: dict[str, str], environ: Mapping[str, str]) -> RedisStore:
        """Builds a store from a ``redis://`` / ``rediss://`` / ``unix://`` URL."""
        opts = dict(options)
        read_only = take_flag(opts, "read_only", False, url)
        prefix = opts.pop("prefix", DEFAULT_PREFIX)
        backing_url = opts.pop("backing", "").strip() or None
        ttl = opts.get("ttl")
        ttl_value = int(take_number(opts, "ttl", 0, url, integer=True)) if ttl is not None else None
        vector_text = opts.pop("vector_set", "auto").strip().lower()
        if vector_text == "auto":
            vector_set: bool | None = None
        else:
            opts["vector_set"] = vector_text
            vector_set = take_flag(opts, "vector_set", True, url)
        quantization = opts.pop("quantization", "noquant").strip().lower()
        timeout = take_number(opts, "timeout", 10.0, url, minimum=0.1)
        parsed = parse_url(url, what="store URL")
        reject_unknown(opts, url, _URL_OPTIONS + redis_driver_options(parsed.scheme))
        base_url = parsed.driver_url(keep=opts)  # only the redis-py options are left in opts
        try:
            client = redis.Redis.from_url(
                base_url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                decode_responses=False,
            )
        except ValueError as exc:
            raise ConfigError(f"Redis URL {redact(base_url)!r}: {scrub(str(exc), parsed)}") from exc
        backing = None
        if backing_url is not None:
            from .url import open_store

            if backing_url.split(":", 1)[0].lower() in ("redis", "rediss", "unix"):
                raise ConfigError("a Redis store cannot be the backing store of a Redis cache")
            if read_only and "read_only" not in dict(parse_qsl(urlsplit(backing_url).query)):
                backing_url += ("&" if "?" in backing_url else "?") + "read_only=1"
            backing = open_store(backing_url, environ=environ)
        try:
            return cls(
                client,
                backing=backing,
                prefix=prefix,
                read_only=read_only,
                ttl=ttl_value,
                vector_set=vector_set,
                quantization=quantization,
                display_url=redact(base_url),
            )
        except BaseException:
            client.close()
            if backing is not None:
                backing.close()
            raise

    @property
    def url(self) -> str:
        if self.backing is not None:
            return f"{self._display_url} (cache over {self.backing.url})"
        return self._display_url

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except SynapseError:
            raise
        except redis_errors.AuthenticationError as exc:
            raise StoreAuthError(
                f"{self.url}: the server rejected the credentials while {action}"
            ) from exc
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise StoreUnavailableError(f"{self.url} is unavailable while {action}: {exc}") from exc
        except redis_errors.ResponseError as exc:
            message = str(exc)
            if message.startswith(("NOAUTH", "WRONGPASS")):
                raise StoreAuthError(f"{self.url}: {message} while {action}") from exc
            if message.startswith("READONLY"):
                raise ReadOnlyStoreError(f"{self.url} is a read-only replica: {message}") from exc
            raise StoreError(f"{self.url}: {action} failed: {message}") from exc
        except redis_errors.RedisError as exc:
            raise StoreError(f"{self.url}: {action} failed: {type(exc).__name__}: {exc}") from exc

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.url} was opened read-only")

    def _transaction(self, action: str, watch: list[str], build: Callable[[Any], None]) -> None:
        """WATCH ``watch``, let ``build(pipe)`` read and queue commands, EXEC; retry on conflict.

        ``build`` is called with the pipeline in immediate mode (reads answer at once) and must
        call ``pipe.multi()`` before queueing writes.
        """
        with self._errors(action):
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
        if self.backing is not None:
            pattern_list = list(patterns)
            result = self.backing.upsert(pattern_list, relations)
            self._after_backing_write([p.id for p in pattern_list], [p for p in pattern_list])
            return result
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
            existing = {i for i, s in zip(ids, scores) if s is not None}
            created = {}
            for i in existing:
                created[i] = pipe.hget(self.keys.pattern(i), FIELD_CREATED)
            if batch.relations:
                ends = sorted({e for r in batch.relations for e in (r.source, r.target)} - set(ids))
                end_scores = pipe.zmscore(self.keys.ids, ends) if ends else []
                known = set(ids) | {e for e, s in zip(ends, end_scores) if s is not None}
                if missing := missing_endpoints(batch.relations, known):
                    raise endpoint_error(missing)
            new_ids = [i for i in ids if i not in existing]
            first = int(pipe.get(self.keys.seq) or 0) + 1
            now = now_micros()
            pipe.multi()
            if new_ids:
                pipe.incrby(self.keys.seq, len(new_ids))
                pipe.zadd(self.keys.ids, {i: first + n for n, i in enumerate(new_ids)})
            for pattern, meta in zip(batch.patterns, batch.metadata):
                key = self.keys.pattern(pattern.id)
                given = None if pattern.created_at is None else to_micros(pattern.created_at)
                old = created.get(pattern.id)
                created_at = given if given is not None else (int(old) if old is not None else now)
                pipe.delete(key)
                pipe.hset(key, mapping=_pattern_fields(pattern, meta, created_at, now))
                self._queue_vector(pipe, pattern)
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
        if self.backing is not None:
            return self.backing.changes(since)
        with self._errors("reading the change feed"):
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
            entries = self._client.xrange(self.keys.changes, min=f"({after}", max=token[1])
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

    def _queue_vector(self, pipe: Any, pattern: Pattern) -> None:
        if not self.vector_set:
            return
        if pattern.embedding is None:
            pipe.execute_command("VREM", self.keys.vectors, pattern.id)
        else:
            pipe.execute_command(
                "VADD", self.keys.vectors, "FP32", pattern.embedding.astype("<f4").tobytes(),
                pattern.id, _QUANTIZATION[self.quantization],
            )  # fmt: skip

    def _after_backing_write(self, ids: list[str], written: list[Pattern] | None) -> None:
        """Cache mode: drop the cached entries of ``ids``; keep the vector set in step."""
        try:
            with self._errors("invalidating cached patterns"):
                for start in range(0, len(ids), _PIPELINE_CHUNK):
                    chunk = ids[start : start + _PIPELINE_CHUNK]
                    pipe = self._client.pipeline(transaction=True)
                    pipe.delete(*[self.keys.pattern(i) for i in chunk])
                    if self.vector_set:
                        if written is None:
                            for i in chunk:
                                pipe.execute_command("VREM", self.keys.vectors, i)
                        else:
                            for pattern in written[start : start + _PIPELINE_CHUNK]:
                                self._queue_vector(pipe, pattern)
                    pipe.execute()
        except StoreError as exc:
            raise type(exc)(
                f"{exc} -- the backing store {self.backing.url} was written, but the cache may "  # type: ignore[union-attr]
                f"serve stale entries for these ids (up to ttl={self.ttl}s)"
            ) from exc.__cause__

    def delete(self, ids: Iterable[str]) -> int:
        self._check_writable()
        wanted = id_list(ids)
        if self.backing is not None:
            removed = self.backing.delete(wanted)
            self._after_backing_write(wanted, None)
            return removed
        outcome: dict[str, int] = {}
        watch = (
            [self.keys.ids]
            + [self.keys.relations_out(i) for i in wanted]
            + [self.keys.relations_in(i) for i in wanted]
        )

        def build(pipe: Any) -> None:
            scores = pipe.zmscore(self.keys.ids, wanted) if wanted else []
            present = [i for i, s in zip(wanted, scores) if s is not None]
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
        if self.backing is not None:
            self.backing.set_info(values)
            return
        encoded = {k: (None if v is None else info_json(k, v)) for k, v in dict(values).items()}
        with self._errors("writing store info"):
            pipe = self._client.pipeline(transaction=True)
            for key, value in encoded.items():
                if value is None:
                    pipe.hdel(self.keys.info, key)
                else:
                    pipe.hset(self.keys.info, key, value)
            pipe.execute()

    def clear(self) -> None:
        self._check_writable()
        if self.backing is not None:
            self.backing.clear()
        with self._errors("clearing the store"):
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
            if self.backing is None:
                self._client.xadd(
                    self.keys.changes, {"clear": "1"}, maxlen=_CHANGES_KEEP, approximate=True
                )

    def sync_vectors(
        self, progress: Callable[[int], None] | None = None, batch_size: int = 1000
    ) -> int:
        """Rebuilds the vector set from the store of record; returns the vectors added.

        ``progress(n)`` is called after each batch. Patterns without an embedding are left out.
        """
        self._check_writable()
        if not self.vector_set:
            raise ConfigError(f"{self.url}: vector sets are off or unsupported (Redis < 8)")
        source: PatternStore = self.backing if self.backing is not None else self
        added = 0
        with self._errors("rebuilding the vector set"):
            self._client.unlink(self.keys.vectors)
            for batch in source.iter_batches(batch_size):
                pipe = self._client.pipeline(transaction=False)
                for pattern in batch:
                    if pattern.embedding is not None:
                        self._queue_vector(pipe, pattern)
                        added += 1
                pipe.execute()
                if progress is not None:
                    progress(len(batch))
        return added

    # ------------------------------------------------------------------ reads

    def get_many(self, ids: Iterable[str]) -> dict[str, Pattern]:
        wanted = id_list(ids)
        found: dict[str, Pattern] = {}
        with self._errors("reading patterns"):
            for start in range(0, len(wanted), _PIPELINE_CHUNK):
                chunk = wanted[start : start + _PIPELINE_CHUNK]
                pipe = self._client.pipeline(transaction=False)
                for i in chunk:
                    pipe.hgetall(self.keys.pattern(i))
                for i, fields in zip(chunk, pipe.execute()):
                    if fields:
                        found[i] = _fields_to_pattern(i, fields)
        if self.backing is not None:
            misses = [i for i in wanted if i not in found]
            if misses:
                fetched = self.backing.get_many(misses)
                found.update(fetched)
                if fetched and not self.read_only:
                    self._fill(list(fetched.values()))
        return {i: found[i] for i in wanted if i in found}

    def _fill(self, patterns: list[Pattern]) -> None:
        """Caches patterns read from the backing store (best effort: a failure is logged)."""
        try:
            with self._errors("filling the cache"):
                pipe = self._client.pipeline(transaction=False)
                for p in patterns:
                    key = self.keys.pattern(p.id)
                    created = to_micros(p.created_at) if p.created_at else now_micros()
                    updated = to_micros(p.updated_at) if p.updated_at else created
                    pipe.delete(key)
                    pipe.hset(
                        key,
                        mapping=_pattern_fields(
                            p, json.dumps(p.metadata, ensure_ascii=False), created, updated
                        ),
                    )
                    if self.ttl > 0:
                        pipe.expire(key, self.ttl)
                pipe.execute()
        except StoreError as exc:
            log.warning("could not fill the Redis cache: %s", exc)

    def iter_batches(self, batch_size: int = 1000) -> Iterator[list[Pattern]]:
        size = check_batch_size(batch_size)
        if self.backing is not None:
            yield from self.backing.iter_batches(size)
            return
        after = "-inf"
        while True:
            with self._errors("reading patterns"):
                members = self._client.zrangebyscore(
                    self.keys.ids, after, "+inf", start=0, num=size, withscores=True
                )
                if not members:
                    return
                ids = [m.decode("utf-8") for m, _ in members]
                pipe = self._client.pipeline(transaction=False)
                for i in ids:
                    pipe.hgetall(self.keys.pattern(i))
                rows = pipe.execute()
            after = f"({members[-1][1]:.0f}"
            yield [_fields_to_pattern(i, f) for i, f in zip(ids, rows) if f]
            if len(members) < size:
                return

    def count(self) -> int:
        if self.backing is not None:
            return self.backing.count()
        with self._errors("counting patterns"):
            return int(self._client.zcard(self.keys.ids))

    def relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        if self.backing is not None:
            return self.backing.relations(ids)
        out: list[Relation] = []
        seen: set[tuple[str, str, str]] = set()
        with self._errors("reading relations"):
            if ids is None:
                sources = [m.decode("utf-8") for m in self._client.zrange(self.keys.ids, 0, -1)]
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
            for source, fields in zip(sources, answers[: len(sources)]):
                for field, weight in sorted(fields.items()):
                    target, rel_type = json.loads(field)
                    key = (source, target, rel_type)
                    if key not in seen:
                        seen.add(key)
                        out.append(Relation(source, target, rel_type, float(weight)))
            for target, members in zip(incoming_of, answers[len(sources) :]):
                for member in sorted(members):
                    source, rel_type = json.loads(member)
                    if (source, target, rel_type) not in seen:
                        extra_sources.append((source, target, rel_type))
            if extra_sources:
                pipe = self._client.pipeline(transaction=False)
                for source, target, rel_type in extra_sources:
                    pipe.hget(self.keys.relations_out(source), _rel_field(target, rel_type))
                for (source, target, rel_type), weight in zip(extra_sources, pipe.execute()):
                    if weight is not None and (source, target, rel_type) not in seen:
                        seen.add((source, target, rel_type))
                        out.append(Relation(source, target, rel_type, float(weight)))
        return out

    def info(self) -> dict[str, Any]:
        if self.backing is not None:
            return self.backing.info()
        with self._errors("reading store info"):
            fields = self._client.hgetall(self.keys.info)
        return {k.decode("utf-8"): json.loads(v) for k, v in sorted(fields.items())}

    # ------------------------------------------------------------------ search push-down

    @property
    def supports_search(self) -> bool:
        return self.vector_set

    def vector_count(self) -> int:
        """Elements in the vector set (0 when it does not exist)."""
        if not self.vector_set:
            return 0
        with self._errors("counting vectors"):
            return int(self._client.execute_command("VCARD", self.keys.vectors) or 0)

    def search(self, query: Any, top_k: int = 10) -> list[tuple[str, float]]:
        if not self.vector_set:
            return super().search(query, top_k)
        dim = self.info().get(INFO_EMBEDDING_DIM)
        if dim is None:
            return []
        vector = as_query(query, int(dim))
        k = as_top_k(top_k)
        with self._errors("searching the vector set"):
            if not self._client.exists(self.keys.vectors):
                return []
            answer = self._client.execute_command(
                "VSIM", self.keys.vectors, "FP32", vector.astype("<f4").tobytes(),
                "WITHSCORES", "COUNT", k,
            )  # fmt: skip
        pairs = answer.items() if isinstance(answer, dict) else zip(answer[::2], answer[1::2])
        hits = [(_text(element), 2.0 * float(score) - 1.0) for element, score in pairs]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits

    def close(self) -> None:
        try:
            self._client.close()
        finally:
            if self.backing is not None:
                self.backing.close()


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _pattern_fields(
    pattern: Pattern, metadata: str, created_at: int, updated_at: int
) -> dict[bytes, Any]:
    fields: dict[bytes, Any] = {
        FIELD_TEXT: pattern.text.encode("utf-8"),
        FIELD_METADATA: metadata.encode("utf-8"),
        FIELD_CREATED: str(created_at),
        FIELD_UPDATED: str(updated_at),
    }
    if pattern.embedding is not None:
        fields[FIELD_EMBEDDING] = pattern.embedding.astype("<f4").tobytes()
        fields[FIELD_DIM] = str(pattern.embedding.shape[0])
    return fields


def _fields_to_pattern(pattern_id: str, fields: Mapping[bytes, bytes]) -> Pattern:
    try:
        blob = fields.get(FIELD_EMBEDDING)
        embedding = None
        if blob is not None:
            embedding = np.frombuffer(blob, dtype="<f4").astype(np.float32)
            if embedding.shape[0] != int(fields.get(FIELD_DIM, b"-1")):
                raise ValueError("embedding length differs from dim")
        return Pattern(
            id=pattern_id,
            text=fields.get(FIELD_TEXT, b"").decode("utf-8"),
            metadata=json.loads(fields.get(FIELD_METADATA, b"{}")),
            embedding=embedding,
            created_at=from_micros(int(fields[FIELD_CREATED])) if FIELD_CREATED in fields else None,
            updated_at=from_micros(int(fields[FIELD_UPDATED])) if FIELD_UPDATED in fields else None,
        )
    except (ValueError, UnicodeDecodeError, KeyError) as exc:
        raise StoreError(f"pattern {pattern_id!r}: the Redis entry is malformed ({exc})") from exc


def _rel_field(other: str, rel_type: str) -> str:
    return json.dumps([other, rel_type], ensure_ascii=False, separators=(",", ":"))


def _json_or_none(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
