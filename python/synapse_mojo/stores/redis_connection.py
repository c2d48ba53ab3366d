"""One Redis connection as the stores use it: client, key schema, errors, encoding, vector set.

    connection = RedisConnection.from_url("redis://127.0.0.1:6379/0?prefix=app", options, own=())
    with connection.errors("reading patterns"):
        found = connection.read_patterns(["p_001"])
    connection.search_vectors(query, top_k=5, dim=384)   # VSIM on the vector set (Redis 8)

Shared by ``RedisStore`` (Redis as the store of record) and ``RedisPatternCache`` (Redis as
the cache of a ``ReadThroughStore``): both keep pattern entries and a vector set under the
same key schema (``redis_keys``). Redis errors become ``StoreUnavailableError`` (down,
timeout), ``StoreAuthError`` (wrong password), ``ReadOnlyStoreError`` (a replica) or
``StoreError``; the URL shown in them and in ``url`` has no password.

URL options read here: ``prefix`` (key namespace), ``vector_set=auto|0|1``,
``quantization=noquant|q8|bin``, ``timeout`` (seconds) and the redis-py options of
``synapse_mojo._urls.redis_driver_options``, which are passed on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

try:  # the `redis` extra: without it, opening a redis:// store names what to install
    import redis
    import redis.exceptions as redis_errors
    from redis.typing import EncodableT
except ModuleNotFoundError:
    from .._extras import require

    require("redis", "a redis:// store")
    raise

from .._urls import parse_url, redact, redis_driver_options, scrub
from ..errors import (
    ConfigError,
    ReadOnlyStoreError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
    SynapseError,
)
from ..vectors import as_query, as_top_k
from .base import Pattern, from_micros
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
from .url_options import reject_unknown, take_flag, take_number

QUANTIZATION = {"noquant": "NOQUANT", "q8": "Q8", "bin": "BIN"}
#: The URL options ``RedisConnection.from_url`` reads (the redis-py ones besides).
CONNECTION_OPTIONS = ("prefix", "vector_set", "quantization", "timeout")
#: Commands per pipeline round trip when reading or writing many entries.
PIPELINE_CHUNK = 500


class RedisConnection:
    """A redis-py client with the key schema, the vector-set settings and error translation."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        vector_set: bool | None = None,
        quantization: str = "noquant",
        display_url: str | None = None,
    ) -> None:
        if quantization not in QUANTIZATION:
            raise ConfigError(
                f"quantization {quantization!r}: expected one of {sorted(QUANTIZATION)}"
            )
        self.client = client
        self.keys = RedisKeys(prefix)
        self.quantization = quantization
        self.url = display_url or "redis://"
        with self.errors("connecting"):
            client.ping()
            version = str(client.info("server").get("redis_version", "0"))
        self.server_version = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        has_vector_sets = self.server_version >= (8, 0)
        if vector_set and not has_vector_sets:
            raise ConfigError(
                f"{self.url}: vector_set=1 needs Redis 8 (vector sets); the server is {version}"
            )
        self.vector_set: bool = has_vector_sets if vector_set is None else vector_set

    @classmethod
    def from_url(cls, url: str, options: dict[str, str], own: tuple[str, ...]) -> RedisConnection:
        """Connects to a ``redis://`` / ``rediss://`` / ``unix://`` URL.

        ``options``: what is left of the URL's options after the caller took ``own`` (named
        in the error for an unknown option). Anything but the connection options and the
        redis-py ones is a ``ConfigError``."""
        opts = dict(options)
        prefix = opts.pop("prefix", DEFAULT_PREFIX)
        vector_text = opts.pop("vector_set", "auto").strip().lower()
        if vector_text == "auto":
            vector_set: bool | None = None
        else:
            opts["vector_set"] = vector_text
            vector_set = take_flag(opts, "vector_set", True, url)
        quantization = opts.pop("quantization", "noquant").strip().lower()
        timeout = take_number(opts, "timeout", 10.0, url, minimum=0.1)
        parsed = parse_url(url, what="store URL")
        reject_unknown(opts, url, own + CONNECTION_OPTIONS + redis_driver_options(parsed.scheme))
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
        try:
            return cls(
                client,
                prefix=prefix,
                vector_set=vector_set,
                quantization=quantization,
                display_url=redact(base_url),
            )
        except BaseException:
            client.close()
            raise

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translates Redis errors raised inside into the library's ``StoreError`` tree."""
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

    # ------------------------------------------------------------------ pattern entries

    def read_patterns(self, ids: list[str]) -> dict[str, Pattern]:
        """The ``pattern:<id>`` entries that exist, keyed by id (call inside ``errors``)."""
        found: dict[str, Pattern] = {}
        for start in range(0, len(ids), PIPELINE_CHUNK):
            chunk = ids[start : start + PIPELINE_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for i in chunk:
                pipe.hgetall(self.keys.pattern(i))
            for i, fields in zip(chunk, pipe.execute(), strict=True):
                if fields:
                    found[i] = fields_to_pattern(i, fields)
        return found

    # ------------------------------------------------------------------ vector set

    def queue_vector(self, pipe: Any, pattern: Pattern) -> None:
        """Queues the vector-set update for ``pattern`` (VADD, or VREM without an embedding)."""
        if not self.vector_set:
            return
        if pattern.embedding is None:
            pipe.execute_command("VREM", self.keys.vectors, pattern.id)
        else:
            pipe.execute_command(
                "VADD", self.keys.vectors, "FP32", pattern.embedding.astype("<f4").tobytes(),
                pattern.id, QUANTIZATION[self.quantization],
            )  # fmt: skip

    def vector_count(self) -> int:
        """Elements in the vector set (0 when it does not exist or vector sets are off)."""
        if not self.vector_set:
            return 0
        with self.errors("counting vectors"):
            return int(self.client.execute_command("VCARD", self.keys.vectors) or 0)

    def rebuild_vectors(
        self, batches: Iterable[list[Pattern]], progress: Callable[[int], None] | None = None
    ) -> int:
        """Replaces the vector set with the embeddings of ``batches``; returns how many."""
        if not self.vector_set:
            raise ConfigError(f"{self.url}: vector sets are off or unsupported (Redis < 8)")
        added = 0
        with self.errors("rebuilding the vector set"):
            self.client.unlink(self.keys.vectors)
            for batch in batches:
                pipe = self.client.pipeline(transaction=False)
                for pattern in batch:
                    if pattern.embedding is not None:
                        self.queue_vector(pipe, pattern)
                        added += 1
                pipe.execute()
                if progress is not None:
                    progress(len(batch))
        return added

    def search_vectors(self, query: Any, top_k: int, dim: int | None) -> list[tuple[str, float]]:
        """(id, cosine) of the ``top_k`` nearest elements of the vector set (VSIM, HNSW).

        VSIM reports ``(1 + cos) / 2``; this gives back the cosine. ``dim``: the store's
        embedding dimension (None: nothing embedded yet, no hits)."""
        if dim is None:
            return []
        vector = as_query(query, int(dim))
        k = as_top_k(top_k)
        with self.errors("searching the vector set"):
            if not self.client.exists(self.keys.vectors):
                return []
            answer = self.client.execute_command(
                "VSIM", self.keys.vectors, "FP32", vector.astype("<f4").tobytes(),
                "WITHSCORES", "COUNT", k,
            )  # fmt: skip
        if isinstance(answer, dict):  # RESP3
            pairs = list(answer.items())
        else:
            pairs = list(zip(answer[::2], answer[1::2], strict=True))
        hits = [(_text(element), 2.0 * float(score) - 1.0) for element, score in pairs]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def pattern_fields(
    pattern: Pattern, metadata: str, created_at: int, updated_at: int
) -> dict[EncodableT, EncodableT]:
    """The hash fields of a ``pattern:<id>`` entry (times in UTC microseconds)."""
    fields: dict[EncodableT, EncodableT] = {
        FIELD_TEXT: pattern.text.encode("utf-8"),
        FIELD_METADATA: metadata.encode("utf-8"),
        FIELD_CREATED: str(created_at),
        FIELD_UPDATED: str(updated_at),
    }
    if pattern.embedding is not None:
        fields[FIELD_EMBEDDING] = pattern.embedding.astype("<f4").tobytes()
        fields[FIELD_DIM] = str(pattern.embedding.shape[0])
    return fields


def fields_to_pattern(pattern_id: str, fields: Mapping[bytes, bytes]) -> Pattern:
    """A ``Pattern`` from the hash fields of its entry; ``StoreError`` when malformed."""
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


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
