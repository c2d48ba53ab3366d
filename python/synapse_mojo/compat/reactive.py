"""The pilot's reactive corpus callosum (asyncio), over the real router.

    cc = get_reactive_message_router("redis://127.0.0.1:6379/0")   # or "memory://"
    await cc.start()
    await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.HIGH, {"goal": "x"})
    async for message in cc.subscribe("planner", TractType.EXTERNAL):
        ...                                   # pilot Message records, highest priority first
    history = await cc.replay_history(from_ms, to_ms)
    await cc.stop()

Delivery: messages wait in the router (in-process or Redis Streams) until a tract has at least
one subscriber; a dispatcher then takes them highest priority first and gives every subscriber
of that tract its own copy, through its own bounded buffer (``buffer_size``). A slow subscriber
gets backpressure: the dispatcher waits for room in its buffer, so nothing is dropped (other
subscribers of the tract wait with it; use separate tracts or a larger buffer to decouple
them). Router messages are acknowledged only once every subscriber's buffer holds them.

Event log: every routed message is appended to the Redis stream ``corpus_callosum:events`` with
the pilot's fields (``message_id, source_tract, dest_tract, priority, timestamp_ms,
payload_size, payload_type``) plus ``ulid`` and the msgpack-encoded ``payload``, so
``replay_history`` returns whole messages, not metadata. Without Redis the log is kept in
memory (the last ``max_events``). ``stop()`` ends every subscription; messages still queued in
an in-process router are kept in ``undelivered`` (and logged), never silently discarded.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ..errors import InvalidInputError, RouterClosedError
from ..router.aio import AsyncRouter
from ..router.compat import (
    Message,
    MessagePriority,
    TractType,
    _tract,
    pilot_core_message,
    pilot_message,
)
from ..router.message import Message as CoreMessage
from ..router.message import Tract
from ..router.url import open_router

log = logging.getLogger("synapse_mojo.compat.reactive")

EVENTS_STREAM = "corpus_callosum:events"
#: Replay reads the stream by server time with this margin, then filters on ``timestamp_ms``
#: (producers' clocks and the Redis server's may differ).
_REPLAY_MARGIN_MS = 60_000
_END = object()


@dataclass
class _Subscriber:
    subscriber_id: str
    tract: Tract
    queue: asyncio.Queue
    delivered: int = 0


@dataclass
class _TractState:
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class ReactiveCorpusCallosum:
    """Asyncio router between the internal and external tracts (see the module docstring)."""

    def __init__(
        self,
        router_url: str | None = None,
        *,
        event_log_url: str | None = None,
        buffer_size: int = 1000,
        capacity: int = 10000,
        max_events: int = 100_000,
        batch_size: int = 64,
    ) -> None:
        if buffer_size < 1 or capacity < 1 or batch_size < 1 or max_events < 0:
            raise InvalidInputError("buffer_size, capacity and batch_size must be >= 1; max_events >= 0")
        self.router_url = router_url or os.environ.get("SYNAPSE_ROUTER_URL") or "memory://"
        if event_log_url is None and self.router_url.startswith(("redis://", "rediss://", "unix://")):
            event_log_url = self.router_url.split("?", 1)[0]
        self.event_log_url = event_log_url
        self.buffer_size = buffer_size
        self.capacity = capacity
        self.max_events = max_events
        self.batch_size = batch_size
        self.undelivered: list[Message] = []
        self._router: AsyncRouter | None = None
        self._redis: Any = None
        self._memory_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_events or None)
        self._tracts: dict[Tract, _TractState] = {}
        self._ids = 0
        self._id_lock = threading.Lock()
        self._running = False
        self._counts = {"routed": 0, "delivered": 0}

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if self._running:
            return
        kwargs: dict[str, Any] = {}
        if self.router_url.startswith("memory://") and "capacity=" not in self.router_url:
            kwargs["capacity"] = self.capacity
        self._router = AsyncRouter(await asyncio.to_thread(open_router, self.router_url, **kwargs))
        if self.event_log_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(self.event_log_url)
            await self._redis.ping()
        self._tracts = {t: _TractState() for t in (Tract.INTERNAL, Tract.EXTERNAL)}
        self._running = True
        for tract, state in self._tracts.items():
            state.task = asyncio.create_task(self._dispatch(tract), name=f"corpus-callosum-{tract.value}")

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        for state in self._tracts.values():
            state.wake.set()
            if state.task is not None:
                state.task.cancel()
        for state in self._tracts.values():
            if state.task is not None:
                try:
                    await state.task
                except asyncio.CancelledError:
                    pass
            for sub in state.subscribers.values():
                # End the iterator after what is already buffered (waits for room if full).
                asyncio.get_running_loop().create_task(sub.queue.put(_END))
        if self._router is not None:
            left = await self._router.close()
            if left:
                self.undelivered.extend(pilot_message(m) for m in left)
                log.warning(
                    "corpus callosum stopped with %d undelivered in-process messages; they are in .undelivered",
                    len(left),
                )
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def __aenter__(self) -> ReactiveCorpusCallosum:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ routing

    async def route_message(
        self,
        source_tract: TractType | int,
        dest_tract: TractType | int,
        priority: MessagePriority | int = MessagePriority.NORMAL,
        payload: Any = None,
        payload_size: int = 0,
    ) -> int:
        """Routes a message (backpressure when the destination is full); returns its id."""
        if not self._running or self._router is None:
            raise RouterClosedError("the corpus callosum is not running: await start() first")
        with self._id_lock:
            self._ids += 1
            pilot_id = self._ids
        core = pilot_core_message(pilot_id, source_tract, dest_tract, priority, payload, payload_size)
        await self._router.publish(core)
        await self._log_event(core, pilot_id, payload_size)
        self._counts["routed"] += 1
        return pilot_id

    async def _log_event(self, core: CoreMessage, pilot_id: int, payload_size: int) -> None:
        fields = {
            "message_id": pilot_id,
            "ulid": core.id,
            "source_tract": int(_to_pilot_tract(core.source)),
            "dest_tract": int(_to_pilot_tract(core.destination)),
            "priority": core.priority,
            "timestamp_ms": int(core.created_at * 1000),
            "payload_size": payload_size,
            "payload_type": type(core.payload).__name__,
            "payload": msgpack.packb(core.payload, use_bin_type=True),
        }
        if self._redis is not None:
            trim = {"maxlen": self.max_events, "approximate": True} if self.max_events else {}
            await self._redis.xadd(EVENTS_STREAM, fields, **trim)
        else:
            self._memory_log.append(fields)

    # ------------------------------------------------------------------ delivery

    async def subscribe(self, subscriber_id: str, tract: TractType | int) -> AsyncIterator[Message]:
        """Every message routed to ``tract`` from now on (and any still waiting), as an async
        iterator; leaving the ``async for`` unsubscribes."""
        if not self._running:
            raise RouterClosedError("the corpus callosum is not running: await start() first")
        target = _tract(tract)
        state = self._tracts[target]
        if subscriber_id in state.subscribers:
            raise InvalidInputError(f"subscriber {subscriber_id!r} is already subscribed to {target.value}")
        sub = _Subscriber(subscriber_id, target, asyncio.Queue(maxsize=self.buffer_size))
        state.subscribers[subscriber_id] = sub
        state.wake.set()
        try:
            while True:
                item = await sub.queue.get()
                if item is _END:
                    return
                sub.delivered += 1
                yield item
        finally:
            state.subscribers.pop(subscriber_id, None)

    async def _dispatch(self, tract: Tract) -> None:
        state = self._tracts[tract]
        assert self._router is not None
        while self._running:
            if not state.subscribers:
                state.wake.clear()
                await state.wake.wait()
                continue
            batch = await self._router.consume(tract, self.batch_size, 0.05)
            if not batch:
                continue
            done = 0
            try:
                for core in batch:
                    message = pilot_message(core)
                    for sub in list(state.subscribers.values()):
                        await sub.queue.put(message)  # backpressure: waits for room, never drops
                    done += 1
            except asyncio.CancelledError:
                # stop() while delivering: in process, keep what is not delivered (it has left
                # the queue); on Redis leave it unacknowledged, so it is delivered again later.
                if self.router_url.startswith("memory://"):
                    self.undelivered.extend(pilot_message(m) for m in batch[done:])
                    await asyncio.shield(self._router.ack(batch))
                else:
                    await asyncio.shield(self._router.ack(batch[:done]))
                raise
            await self._router.ack(batch)
            self._counts["delivered"] += len(batch)

    # ------------------------------------------------------------------ history

    async def replay_history(self, from_ms: int, to_ms: int) -> list[Message]:
        """Messages routed with ``from_ms <= timestamp_ms <= to_ms``, oldest first, payloads
        included."""
        if to_ms < from_ms:
            raise InvalidInputError(f"to_ms ({to_ms}) is before from_ms ({from_ms})")
        if self._redis is not None:
            start = max(0, int(from_ms) - _REPLAY_MARGIN_MS)
            entries = await self._redis.xrange(EVENTS_STREAM, min=f"{start}-0", max=f"{int(to_ms) + _REPLAY_MARGIN_MS}-18446744073709551615")
            events = [{k.decode(): v for k, v in fields.items()} for _, fields in entries]
        else:
            events = list(self._memory_log)
        out = []
        for event in events:
            ts = int(event["timestamp_ms"])
            if from_ms <= ts <= to_ms:
                out.append(_event_message(event))
        out.sort(key=lambda m: (m.timestamp_ms, m.ulid))
        return out

    def get_stats(self) -> dict[str, Any]:
        return {
            "running": self._running,
            "router_url": self.router_url,
            "event_log": EVENTS_STREAM if self._redis is not None else "memory",
            "routed": self._counts["routed"],
            "delivered": self._counts["delivered"],
            "subscribers": {
                t.value: {sid: s.queue.qsize() for sid, s in st.subscribers.items()} for t, st in self._tracts.items()
            },
            "undelivered": len(self.undelivered),
        }


def _to_pilot_tract(tract: Tract) -> TractType:
    return TractType.INTERNAL if tract == Tract.INTERNAL else TractType.EXTERNAL


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _event_message(event: dict[str, Any]) -> Message:
    priority: MessagePriority | int = int(event["priority"])
    try:
        priority = MessagePriority(priority)
    except ValueError:
        pass
    raw = event["payload"]
    return Message(
        id=int(event["message_id"]),
        source_tract=TractType(int(event["source_tract"])),
        dest_tract=TractType(int(event["dest_tract"])),
        priority=priority,
        timestamp_ms=int(event["timestamp_ms"]),
        payload_size=int(event["payload_size"]),
        payload=msgpack.unpackb(raw, raw=False) if raw is not None else None,
        ulid=_text(event.get("ulid", "")),
    )


_singleton: ReactiveCorpusCallosum | None = None
_singleton_lock = threading.Lock()


def get_reactive_message_router(router_url: str | None = None, **kwargs: Any) -> ReactiveCorpusCallosum:
    """The process-wide reactive router (``SYNAPSE_ROUTER_URL`` or in-process by default).
    Arguments apply when it is created; call ``start()`` on it before use."""
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            _singleton = ReactiveCorpusCallosum(router_url, **kwargs)
        return _singleton


def reset_reactive_message_router() -> None:
    """Forgets the singleton (stop it first); for tests."""
    global _singleton
    with _singleton_lock:
        _singleton = None
