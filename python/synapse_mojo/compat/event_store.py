"""The pilot's event log for the corpus callosum: ``EventLogEntry``, ``ConsciousnessMetrics``,
``InMemoryEventStore``, ``RedisEventStore`` and ``create_event_store``.

Wire format (Redis stream ``corpus_callosum:events``), the pilot's, every value a string::

    message_id    "17"                 source_tract  "INTERNAL" | "EXTERNAL"
    priority      "3"                  dest_tract    "INTERNAL" | "EXTERNAL"
    timestamp_ms  "1767225600000"      payload_size  "64"
    payload_type  "dict"

synapse-mojo adds two fields the pilot's reader ignores: ``ulid`` (the router message id) and
``payload_b64`` (base64 of the msgpack payload, written only when msgpack can carry it - text,
so a reader with ``decode_responses=True`` still decodes the entry). Readers here accept the
pilot's entries (no payload: ``payload`` is None), these, and tracts written as 0/1.

The metrics hash ``corpus_callosum:events:metrics`` keeps the pilot's fields and update rule,
so either side's ``get_consciousness_metrics()`` reads the same numbers.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

from ..router.compat import Message, TractType

log = logging.getLogger("synapse_mojo.compat.event_store")

EVENTS_STREAM = "corpus_callosum:events"
#: Replay reads the stream by server time with this margin, then filters on ``timestamp_ms``
#: (producers' clocks and the Redis server's may differ).
_REPLAY_MARGIN_MS = 60_000
_BALANCE_THRESHOLD = 0.7


@dataclass
class ConsciousnessMetrics:
    """The pilot's dialogue metrics (updated on every logged message)."""

    total_messages: int = 0
    internal_to_external: int = 0
    external_to_internal: int = 0
    balanced_dialogue_events: int = 0
    emergence_score: float = 0.0
    last_emergence_timestamp: int | None = None
    dialogue_balance_ratio: float = 0.0

    def update(self, message: Message) -> None:
        """The pilot's rule: count the direction, the balance between the two directions, a
        balanced-dialogue event whenever the balance exceeds 0.7, and after 100 messages
        ``emergence_score = 0.7 * balance + 0.3 * min(1, balanced_events / 100)``."""
        self.total_messages += 1
        if message.source_tract == TractType.INTERNAL and message.dest_tract == TractType.EXTERNAL:
            self.internal_to_external += 1
        elif (
            message.source_tract == TractType.EXTERNAL and message.dest_tract == TractType.INTERNAL
        ):
            self.external_to_internal += 1
        i2e, e2i = self.internal_to_external, self.external_to_internal
        if i2e > 0 and e2i > 0:
            balance = min(i2e, e2i) / max(i2e, e2i)
            self.dialogue_balance_ratio = balance
            if balance > _BALANCE_THRESHOLD:
                self.balanced_dialogue_events += 1
                self.last_emergence_timestamp = int(time.time() * 1000)
        if self.total_messages > 100:
            frequency = min(1.0, self.balanced_dialogue_events / 100)
            self.emergence_score = self.dialogue_balance_ratio * 0.7 + frequency * 0.3

    def to_hash(self) -> dict[str, Any]:
        return {
            "total_messages": self.total_messages,
            "internal_to_external": self.internal_to_external,
            "external_to_internal": self.external_to_internal,
            "balanced_dialogue_events": self.balanced_dialogue_events,
            "emergence_score": self.emergence_score,
            "last_emergence_timestamp": self.last_emergence_timestamp or 0,
            "dialogue_balance_ratio": self.dialogue_balance_ratio,
        }

    def load_hash(self, data: dict[str, Any]) -> None:
        def get(key: str, default: object) -> str:
            return _text(data.get(key, default))

        self.total_messages = int(get("total_messages", 0))
        self.internal_to_external = int(get("internal_to_external", 0))
        self.external_to_internal = int(get("external_to_internal", 0))
        self.balanced_dialogue_events = int(get("balanced_dialogue_events", 0))
        self.emergence_score = float(get("emergence_score", 0.0))
        self.dialogue_balance_ratio = float(get("dialogue_balance_ratio", 0.0))
        last = int(float(get("last_emergence_timestamp", 0)))
        self.last_emergence_timestamp = last if last > 0 else None


@dataclass
class EventLogEntry:
    """One logged message: the pilot's fields (tracts by name), plus ``payload`` (None for
    entries the pilot wrote, or payloads msgpack cannot carry) and ``ulid``."""

    event_id: str
    timestamp_ms: int
    message_id: int
    source_tract: str
    dest_tract: str
    priority: int
    payload_size: int
    payload_type: str
    payload: Any = None
    ulid: str = ""


# ---------------------------------------------------------------------------- wire format


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _tract_name(value: Any) -> str:
    text = _text(value).strip()
    if text.isdigit():
        return TractType(int(text)).name
    name = text.upper()
    name = name.removeprefix("TRACTTYPE.")
    return TractType[name].name


def encode_event(message: Message) -> dict[str, str]:
    """The stream fields for ``message``, in the pilot's encoding (see the module docstring)."""
    fields = {
        "message_id": str(message.id),
        "source_tract": TractType(message.source_tract).name,
        "dest_tract": TractType(message.dest_tract).name,
        "priority": str(int(message.priority)),
        "timestamp_ms": str(message.timestamp_ms),
        "payload_size": str(message.payload_size),
        "payload_type": type(message.payload).__name__,
    }
    if message.ulid:
        fields["ulid"] = message.ulid
    try:
        packed = msgpack.packb(message.payload, use_bin_type=True, datetime=False)
    except (TypeError, ValueError, OverflowError):
        pass  # an in-process object: logged by type only, as the pilot did
    else:
        fields["payload_b64"] = base64.b64encode(packed).decode("ascii")
    return fields


def decode_event(event_id: Any, data: dict[Any, Any]) -> EventLogEntry:
    """An entry written by the pilot or by synapse-mojo (either encoding)."""
    fields = {_text(k): v for k, v in data.items()}
    payload = None
    if "payload_b64" in fields:
        payload = msgpack.unpackb(base64.b64decode(_text(fields["payload_b64"])), raw=False)
    elif isinstance(fields.get("payload"), bytes):  # synapse-mojo before the pilot encoding
        try:
            payload = msgpack.unpackb(fields["payload"], raw=False)
        except Exception:  # not ours: leave it out rather than fail the replay
            payload = None
    return EventLogEntry(
        event_id=_text(event_id),
        timestamp_ms=int(_text(fields["timestamp_ms"])),
        message_id=int(_text(fields["message_id"])),
        source_tract=_tract_name(fields["source_tract"]),
        dest_tract=_tract_name(fields["dest_tract"]),
        priority=int(_text(fields["priority"])),
        payload_size=int(_text(fields.get("payload_size", "0"))),
        payload_type=_text(fields.get("payload_type", type(payload).__name__)),
        payload=payload,
        ulid=_text(fields.get("ulid", "")),
    )


class Replay:
    """What ``replay_history`` returns: ``async for entry in ...`` (the pilot's use) or
    ``await ...`` for the whole list."""

    def __init__(self, source: AsyncIterator[EventLogEntry]) -> None:
        self._source = source

    def __aiter__(self) -> AsyncIterator[EventLogEntry]:
        return self._source

    def __await__(self) -> Generator[Any, None, list[EventLogEntry]]:
        return self._collect().__await__()

    async def _collect(self) -> list[EventLogEntry]:
        return [entry async for entry in self._source]


def _in_window(ts: int, from_ms: int | None, to_ms: int | None) -> bool:
    return (from_ms is None or ts >= from_ms) and (to_ms is None or ts <= to_ms)


# ---------------------------------------------------------------------------- stores


class InMemoryEventStore:
    """The last ``max_events`` entries in process (not persistent)."""

    def __init__(self, max_events: int = 10000) -> None:
        self.events: list[EventLogEntry] = []
        self.max_events = max_events
        self.metrics = ConsciousnessMetrics()
        self._next_event_id = 0

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def append_event(self, message: Message) -> str:
        event_id = f"{int(time.time() * 1000)}-{self._next_event_id}"
        self._next_event_id += 1
        self.events.append(_entry(event_id, message))
        if len(self.events) > self.max_events:
            del self.events[: len(self.events) - self.max_events]
        self.metrics.update(message)
        return event_id

    async def get_events(
        self, start_id: str = "0", count: int = 100, block_ms: int | None = None
    ) -> list[EventLogEntry]:
        start = 0
        if start_id != "0":
            for i, event in enumerate(self.events):
                if event.event_id == start_id:
                    start = i + 1
                    break
        return self.events[start : start + count]

    async def replay_events(
        self, from_timestamp_ms: int | None = None, to_timestamp_ms: int | None = None
    ) -> AsyncIterator[EventLogEntry]:
        for event in list(self.events):
            if _in_window(event.timestamp_ms, from_timestamp_ms, to_timestamp_ms):
                yield event

    async def get_metrics(self) -> ConsciousnessMetrics:
        return self.metrics


def _entry(event_id: str, message: Message) -> EventLogEntry:
    return EventLogEntry(
        event_id=event_id,
        timestamp_ms=message.timestamp_ms,
        message_id=message.id,
        source_tract=TractType(message.source_tract).name,
        dest_tract=TractType(message.dest_tract).name,
        priority=int(message.priority),
        payload_size=message.payload_size,
        payload_type=type(message.payload).__name__,
        payload=message.payload,
        ulid=message.ulid,
    )  # (EventLogEntry keeps the string: entries read back from Redis have no uid)


class RedisEventStore:
    """The stream ``stream_key`` (trimmed to about ``max_stream_length``) and its metrics hash
    ``<stream_key>:metrics``.

    A Redis that cannot be reached at ``connect()`` is logged as an error and the log is kept
    in memory instead (``fallback_reason`` says why), as the pilot carried on without
    persistence (its replay then returned nothing; here it returns this process's events).
    ``required=True`` makes it an error (``TransportError``) instead."""

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        stream_key: str = EVENTS_STREAM,
        max_stream_length: int = 100000,
        enable_metrics: bool = True,
        *,
        required: bool = False,
    ) -> None:
        self.redis_url = redis_url
        self.stream_key = stream_key
        self.max_stream_length = max_stream_length
        self.enable_metrics = enable_metrics
        self.required = required
        self.metrics = ConsciousnessMetrics()
        self._metrics_key = f"{stream_key}:metrics"
        self.redis_client: Any = None
        self.fallback_reason: str | None = None
        self._memory: InMemoryEventStore | None = None

    def __repr__(self) -> str:
        from ..stores.url import redact

        return f"RedisEventStore({redact(self.redis_url)!r}, stream_key={self.stream_key!r})"

    async def connect(self) -> None:
        from .._extras import require

        require("redis", "the Redis event log")
        import redis.asyncio as aioredis

        from ..errors import TransportError
        from ..stores.url import redact

        client = aioredis.Redis.from_url(self.redis_url)
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            reason = f"event log at {redact(self.redis_url)}: {type(exc).__name__}: {exc}"
            if self.required:
                raise TransportError(reason) from exc
            log.error("%s; keeping the event log in memory (not persistent)", reason)
            self.fallback_reason = reason
            self._memory = InMemoryEventStore(self.max_stream_length or 10000)
            self._memory.metrics = self.metrics
            return
        self.redis_client = client
        self.fallback_reason = None
        self._memory = None
        if self.enable_metrics:
            await self._load_metrics()

    async def disconnect(self) -> None:
        if self.redis_client is not None:
            await self.redis_client.aclose()
            self.redis_client = None

    async def append_event(self, message: Message) -> str:
        if self._memory is not None:
            return await self._memory.append_event(message)
        trim = (
            {"maxlen": self.max_stream_length, "approximate": True}
            if self.max_stream_length
            else {}
        )
        event_id = await self.redis_client.xadd(self.stream_key, encode_event(message), **trim)
        if self.enable_metrics:
            self.metrics.update(message)
            await self.redis_client.hset(self._metrics_key, mapping=self.metrics.to_hash())
        return _text(event_id)

    async def append_events(self, messages: Iterable[Message]) -> None:
        for message in messages:
            await self.append_event(message)

    async def get_events(
        self, start_id: str = "0", count: int = 100, block_ms: int | None = None
    ) -> list[EventLogEntry]:
        if self._memory is not None:
            return await self._memory.get_events(start_id, count, block_ms)
        if block_ms:
            got = await self.redis_client.xread(
                {self.stream_key: start_id}, count=count, block=block_ms
            )
            rows = [row for _, entries in got for row in entries]
        else:
            rows = await self.redis_client.xrange(
                self.stream_key, min=start_id, max="+", count=count
            )
        return [decode_event(event_id, data) for event_id, data in rows]

    async def replay_events(
        self, from_timestamp_ms: int | None = None, to_timestamp_ms: int | None = None
    ) -> AsyncIterator[EventLogEntry]:
        if self._memory is not None:
            async for entry in self._memory.replay_events(from_timestamp_ms, to_timestamp_ms):
                yield entry
            return
        start = (
            "-"
            if from_timestamp_ms is None
            else f"{max(0, int(from_timestamp_ms) - _REPLAY_MARGIN_MS)}-0"
        )
        end = (
            "+"
            if to_timestamp_ms is None
            else f"{int(to_timestamp_ms) + _REPLAY_MARGIN_MS}-18446744073709551615"
        )
        while True:
            rows = await self.redis_client.xrange(self.stream_key, min=start, max=end, count=1000)
            for event_id, data in rows:
                entry = decode_event(event_id, data)
                if _in_window(entry.timestamp_ms, from_timestamp_ms, to_timestamp_ms):
                    yield entry
            if len(rows) < 1000:
                return
            start = "(" + _text(rows[-1][0])

    async def get_metrics(self) -> ConsciousnessMetrics:
        if self.enable_metrics and self.redis_client is not None:
            await self._load_metrics()
        return self.metrics

    async def _load_metrics(self) -> None:
        data = await self.redis_client.hgetall(self._metrics_key)
        if data:
            self.metrics.load_hash({_text(k): v for k, v in data.items()})


def create_event_store(
    redis_url: str | None = None, use_redis: bool = True, **kwargs: Any
) -> RedisEventStore | InMemoryEventStore:
    """A Redis event store at ``redis_url``, or in memory when ``redis_url`` is None or
    ``use_redis`` is False (the pilot tried ``redis://localhost:6379/0`` when given None)."""
    max_events = kwargs.pop("max_events", None)
    required = kwargs.pop("required", False)
    if use_redis and redis_url:
        kwargs["required"] = required
        if max_events is not None:
            kwargs.setdefault("max_stream_length", max_events)
        return RedisEventStore(redis_url=redis_url, **kwargs)
    return InMemoryEventStore(max_events) if max_events is not None else InMemoryEventStore()
