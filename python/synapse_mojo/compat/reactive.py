"""The pilot's reactive corpus callosum (asyncio), over the real router.

    cc = ReactiveCorpusCallosum(enable_event_sourcing=True, redis_url="redis://127.0.0.1:6379/0")
    await cc.start()
    msg_id = await cc.route_message(
        TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.HIGH, {"goal": "x"}
    )
    if msg_id < 0: ...                        # circuit open or buffer full, as in the pilot
    async for message in cc.subscribe("planner", TractType.EXTERNAL):
        ...                                   # pilot Message records
    async for entry in cc.replay_history(from_timestamp_ms=start):
        ...                                   # EventLogEntry (pilot fields + payload)
    cc.stats.total_messages; cc.get_emergence_events(); await cc.get_consciousness_metrics()
    await cc.stop()

As in the pilot: constructor keywords ``backpressure_config``, ``circuit_config``,
``enable_pattern_synthesis``, ``enable_event_sourcing``, ``redis_url``; ids 0, 1, 2, ...;
messages wait in their tract (up to ``BackpressureConfig.buffer_size``) until it has a
subscriber and are then delivered **in arrival order** (``ordering="priority"`` serves the
highest priority first instead); every subscriber of a tract gets every message (broadcast);
a full tract buffer or an open circuit makes ``route_message`` return -1 and count the message
in ``stats.message_loss_count``; one circuit breaker per destination tract
(``internal_circuit``/``external_circuit``) opens after ``failure_threshold`` transport
failures; balanced dialogue between the tracts is reported as ``EmergenceEvent``s and in the
event store's ``ConsciousnessMetrics``; the event log ``corpus_callosum:events`` is written and
read in the pilot's format (:mod:`synapse_mojo.compat.event_store`).

Differences (see docs/migrating-from-the-pilot.md): ``on_full="wait"`` makes a full buffer wait
for room instead of dropping; a slow subscriber is never skipped (the pilot skipped a
subscriber whose buffer was full once another had taken the message): the dispatcher waits for
room in its buffer; ``stop()`` ends every subscription and keeps messages still queued in
process in ``undelivered``; ``router_url`` (or ``SYNAPSE_ROUTER_URL``) can put the tracts on
Redis Streams, so producers and subscribers may be separate processes; ``redis_url=None``
keeps the event log in memory (the pilot tried ``redis://localhost:6379/0``); an event-log Redis
that cannot be reached is logged and the log kept in memory, as the pilot carried on
(``require_event_log=True`` makes it an error). Payloads that
msgpack cannot carry (the pilot's callers route dataclasses and live objects) are handed over
as the same object in process; over Redis they raise ``UnserializablePayloadError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import InvalidInputError, QueueFullError, RouterClosedError
from ..router.aio import AsyncRouter
from ..router.compat import (
    _PRIORITIES,
    Message,
    MessagePriority,
    MessageStats,
    TractType,
    _tract,
    pilot_core_message,
    pilot_message,
)
from ..router.message import Message as CoreMessage
from ..router.message import Tract
from ..router.url import open_router
from .event_store import (
    EVENTS_STREAM,
    ConsciousnessMetrics,
    EventLogEntry,
    InMemoryEventStore,
    RedisEventStore,
    Replay,
    create_event_store,
)

log = logging.getLogger("synapse_mojo.compat.reactive")

_END = object()
_LOCAL_HEADER = "x-pilot-local-payload"
ORDERINGS = ("fifo", "priority")
ON_FULL = ("drop", "wait")
_NORMAL = int(MessagePriority.NORMAL)
#: The pilot's per-subscriber buffer (``ReactiveMessageStream.subscribe(buffer_size=100)``).
SUBSCRIBER_BUFFER = 100


# ---------------------------------------------------------------------------- pilot config


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    """Raised inside the router when a tract's circuit is open (``route_message`` returns -1)."""


@dataclass
class BackpressureConfig:
    """``buffer_size``: messages a tract holds before ``route_message`` returns -1. The batch
    fields are accepted for compatibility (the pilot did not use them either)."""

    buffer_size: int = 1000
    batch_timeout_ms: float = 1.0
    min_batch_size: int = 1
    max_batch_size: int = 100
    adaptive: bool = True


@dataclass
class CircuitBreakerConfig:
    failure_threshold: int = 10
    recovery_timeout_s: float = 5.0
    success_threshold: int = 3


@dataclass
class EmergenceEvent:
    timestamp_ms: int
    pattern_type: str
    source_tract: TractType
    dest_tract: TractType
    confidence: float
    description: str


class CircuitBreaker:
    """The pilot's breaker: ``async with breaker:`` around a call; ``failure_threshold``
    failures open it, after ``recovery_timeout_s`` it lets calls through half-open, and
    ``success_threshold`` successes close it again (a failure while half-open reopens it)."""

    def __init__(self, config: CircuitBreakerConfig) -> None:
        self.config = config
        self.state = CircuitState.CLOSED
        self.failure_count = 0
        self.success_count = 0
        self.last_failure_time = 0.0

    async def __aenter__(self) -> CircuitBreaker:
        if self.state == CircuitState.OPEN:
            if time.time() - self.last_failure_time >= self.config.recovery_timeout_s:
                self.state = CircuitState.HALF_OPEN
                self.success_count = 0
                log.info("circuit breaker half-open")
            else:
                raise CircuitOpenError("Circuit breaker is OPEN")
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            if self.state == CircuitState.HALF_OPEN:
                self.success_count += 1
                if self.success_count >= self.config.success_threshold:
                    self.state = CircuitState.CLOSED
                    self.failure_count = 0
                    log.info("circuit breaker closed (recovered)")
            elif self.state == CircuitState.CLOSED:
                self.failure_count = max(0, self.failure_count - 1)
        else:
            self.failure_count += 1
            self.last_failure_time = time.time()
            if self.failure_count >= self.config.failure_threshold:
                if self.state != CircuitState.OPEN:
                    log.warning("circuit breaker open (failures: %d)", self.failure_count)
                self.state = CircuitState.OPEN
            elif self.state == CircuitState.HALF_OPEN:
                self.state = CircuitState.OPEN
                log.warning("circuit breaker reopened during recovery")
        return False


class PatternSynthesizer:
    """Balanced cross-tract dialogue over the last ``window_size`` messages, in O(1) per
    message. An event is recorded when both directions have more than 10 messages in the
    window and their balance exceeds 0.7, at most once per ``window_size`` messages (the
    pilot detected the same condition but never recorded it)."""

    def __init__(self, window_size: int = 100, max_events: int = 1000) -> None:
        self.window_size = window_size
        self.max_history_size = window_size
        self._window: collections.deque[int] = collections.deque(maxlen=window_size)
        self._counts = [0, 0, 0]  # other, internal->external, external->internal
        self._since_event = window_size
        self.emergence_events: collections.deque[EmergenceEvent] = collections.deque(
            maxlen=max_events
        )

    def add_event(self, message: Message) -> None:
        self.add(message.source_tract, message.dest_tract)

    def add(self, source: int, dest: int) -> None:
        """``add_event`` for a message going from tract ``source`` to tract ``dest``."""
        kind = 1 if source == 0 and dest == 1 else 2 if source == 1 and dest == 0 else 0
        if len(self._window) == self.window_size:
            self._counts[self._window[0]] -= 1
        self._window.append(kind)
        self._counts[kind] += 1
        self._since_event += 1

    def detect_emergence(self, window_size: int | None = None) -> EmergenceEvent | None:
        if len(self._window) < self.window_size:
            return None
        i2e, e2i = self._counts[1], self._counts[2]
        if i2e > 10 and e2i > 10:
            balance = min(i2e, e2i) / max(i2e, e2i)
            if balance > 0.7:
                event = EmergenceEvent(
                    timestamp_ms=int(time.time() * 1000),
                    pattern_type="balanced_dialogue",
                    source_tract=TractType.INTERNAL,
                    dest_tract=TractType.EXTERNAL,
                    confidence=balance,
                    description=f"Balanced cross-tract dialogue detected: {i2e}→{e2i}",
                )
                if self._since_event >= self.window_size:
                    self._since_event = 0
                    self.emergence_events.append(event)
                return event
        return None


# ---------------------------------------------------------------------------- the router


@dataclass
class _Subscriber:
    subscriber_id: str
    tract: Tract
    queue: asyncio.Queue
    delivered: int = 0
    readers: int = 0


@dataclass
class _TractState:
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class ReactiveCorpusCallosum:
    """Asyncio router between the internal and external tracts (see the module docstring)."""

    def __init__(
        self,
        backpressure_config: BackpressureConfig | None = None,
        circuit_config: CircuitBreakerConfig | None = None,
        enable_pattern_synthesis: bool = True,
        enable_event_sourcing: bool = True,
        redis_url: str | None = None,
        *,
        router_url: str | None = None,
        ordering: str = "fifo",
        on_full: str = "drop",
        max_events: int = 100_000,
        batch_size: int = 64,
        require_event_log: bool = False,
    ) -> None:
        self.backpressure_config = backpressure_config or BackpressureConfig()
        self.circuit_config = circuit_config or CircuitBreakerConfig()
        buffer_size = self.backpressure_config.buffer_size
        if type(buffer_size) is not int or buffer_size < 1 or batch_size < 1 or max_events < 0:
            raise InvalidInputError("buffer_size and batch_size must be ints >= 1; max_events >= 0")
        if ordering not in ORDERINGS:
            raise InvalidInputError(f"ordering must be one of {list(ORDERINGS)}, got {ordering!r}")
        if on_full not in ON_FULL:
            raise InvalidInputError(f"on_full must be one of {list(ON_FULL)}, got {on_full!r}")
        self.router_url = router_url or os.environ.get("SYNAPSE_ROUTER_URL") or "memory://"
        self._in_process = self.router_url.startswith("memory://")
        if (
            redis_url is None
            and not self._in_process
            and self.router_url.startswith(("redis://", "rediss://", "unix://"))
        ):
            redis_url = self.router_url.split("?", 1)[0]
        self.redis_url = redis_url
        self.ordering = ordering
        self.on_full = on_full
        self.batch_size = batch_size
        self.internal_circuit = CircuitBreaker(self.circuit_config)
        self.external_circuit = CircuitBreaker(self.circuit_config)
        self.pattern_synthesizer = PatternSynthesizer() if enable_pattern_synthesis else None
        self.event_store: RedisEventStore | InMemoryEventStore | None = (
            create_event_store(
                redis_url=redis_url, max_events=max_events, required=require_event_log
            )
            if enable_event_sourcing
            else None
        )
        self.stats = MessageStats()
        self.undelivered: list[Message] = []
        self._router: AsyncRouter | None = None
        self._tracts: dict[Tract, _TractState] = {}
        self._capacity = buffer_size
        self._ids = 0
        self._id_lock = threading.Lock()
        self._running = False
        self._delivered = 0

    def __repr__(self) -> str:
        from ..stores.url import redact

        return (
            f"ReactiveCorpusCallosum(router_url={redact(self.router_url)!r},"
            f" running={self._running})"
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if self._running:
            return
        kwargs: dict[str, Any] = {}
        if self._in_process and "capacity=" not in self.router_url:
            kwargs["capacity"] = self.backpressure_config.buffer_size
            kwargs["backpressure"] = "reject" if self.on_full == "drop" else "block"
        self._router = AsyncRouter(await asyncio.to_thread(open_router, self.router_url, **kwargs))
        if self.event_store is not None:
            await self.event_store.connect()
        self._tracts = {t: _TractState() for t in (Tract.INTERNAL, Tract.EXTERNAL)}
        self._running = True
        for tract, state in self._tracts.items():
            state.task = asyncio.create_task(
                self._dispatch(tract), name=f"corpus-callosum-{tract.value}"
            )

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
                with contextlib.suppress(asyncio.CancelledError):
                    await state.task
            for sub in state.subscribers.values():
                # End the iterator after what is already buffered (waits for room if full).
                asyncio.get_running_loop().create_task(sub.queue.put(_END))
        if self._router is not None:
            left = await self._router.close()
            if left:
                self.undelivered.extend(self._pilot(m) for m in left)
                log.warning(
                    "corpus callosum stopped with %d undelivered in-process messages;"
                    " they are in .undelivered",
                    len(left),
                )
        if self.event_store is not None:
            await self.event_store.disconnect()

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
        """Routes a message; returns its id (0, 1, 2, ...), or -1 when the tract's buffer is
        full or its circuit is open (counted in ``stats.message_loss_count``). Bad arguments
        raise ``InvalidInputError``."""
        router = self._router
        if not self._running or router is None:
            raise RouterClosedError("the corpus callosum is not running: await start() first")
        with self._id_lock:
            pilot_id = self._ids
            self._ids += 1
        core = pilot_core_message(
            pilot_id,
            source_tract,
            dest_tract,
            priority,
            payload,
            payload_size,
            in_process=self._in_process,
            # FIFO: one priority on the wire (arrival order); the caller's travels in a header
            wire_priority=_NORMAL if self.ordering == "fifo" else None,
        )
        dst = core.destination
        internal = dst is Tract.INTERNAL
        circuit = self.internal_circuit if internal else self.external_circuit
        stats = self.stats
        full = False
        try:
            async with circuit:
                # A full buffer is not a failure of the tract (as in the pilot): caught inside.
                if self._in_process and self.on_full == "drop":
                    memory = router.router
                    if memory.depth(dst) >= self._capacity:  # full: no exception to build
                        full = True
                    else:
                        try:
                            memory.publish(core)  # never blocks: rejects when full
                        except QueueFullError:
                            full = True
                else:
                    try:
                        await router.publish(core)
                    except QueueFullError:
                        full = True
        except CircuitOpenError:
            stats.message_loss_count += 1
            log.warning(
                "circuit open for %s: message %d dropped (the pilot's behaviour)",
                dst.value,
                pilot_id,
            )
            return -1
        except Exception:
            stats.message_loss_count += 1
            log.exception("routing message %d for %s failed", pilot_id, dst.value)
            return -1
        if full:
            stats.message_loss_count += 1
            log.warning(
                "buffer of %s full: message %d dropped (the pilot's behaviour)", dst.value, pilot_id
            )
            return -1
        stats.total_messages += 1
        if internal:
            stats.messages_to_internal += 1
        else:
            stats.messages_to_external += 1
        state = self._tracts[dst]
        if state.subscribers:
            state.wake.set()
        if self._in_process:
            depth = router.router.depth(dst)
            if depth > stats.peak_queue_depth:
                stats.peak_queue_depth = depth
        src = TractType.INTERNAL if core.source is Tract.INTERNAL else TractType.EXTERNAL
        dest = TractType.INTERNAL if internal else TractType.EXTERNAL
        if self.pattern_synthesizer is not None:
            self.pattern_synthesizer.add(src, dest)
            emergence = self.pattern_synthesizer.detect_emergence()
            if emergence is not None:
                log.debug("emergence detected: %s", emergence.description)
        if self.event_store is not None:
            prio = int(priority)
            message = Message(
                pilot_id,
                src,
                dest,
                _PRIORITIES.get(prio, prio),
                int(core.created_at * 1000),
                payload_size,
                payload,
                core.uid,
            )
            try:
                await self.event_store.append_event(message)
            except Exception:
                log.exception("failed to persist event %d to %s", pilot_id, EVENTS_STREAM)
        return pilot_id

    def _pilot(self, core: CoreMessage) -> Message:
        return pilot_message(core)

    # ------------------------------------------------------------------ delivery

    async def subscribe(self, subscriber_id: str, tract: TractType | int) -> AsyncIterator[Message]:
        """Every message routed to ``tract`` (those waiting first, in order), as an async
        iterator; leaving the ``async for`` unsubscribes. Subscribing again with the same id
        shares that subscription (as in the pilot)."""
        if not self._running:
            raise RouterClosedError("the corpus callosum is not running: await start() first")
        target = _tract(tract)
        state = self._tracts[target]
        sub = state.subscribers.get(subscriber_id)
        if sub is None:
            sub = _Subscriber(subscriber_id, target, asyncio.Queue(maxsize=SUBSCRIBER_BUFFER))
            state.subscribers[subscriber_id] = sub
            state.wake.set()
        sub.readers += 1
        try:
            while True:
                item = await sub.queue.get()
                if item is _END:
                    return
                sub.delivered += 1
                yield item
        finally:
            sub.readers -= 1
            if sub.readers == 0 and state.subscribers.get(subscriber_id) is sub:
                del state.subscribers[subscriber_id]

    async def _dispatch(self, tract: Tract) -> None:
        state = self._tracts[tract]
        assert self._router is not None
        core_router = self._router.router
        while self._running:
            if not state.subscribers:
                state.wake.clear()
                await state.wake.wait()
                continue
            if self._in_process:
                state.wake.clear()
                batch = core_router.consume(tract, self.batch_size, 0)
                if not batch:
                    await state.wake.wait()
                    continue
            else:
                batch = await self._router.consume(tract, self.batch_size, 0.05)
                if not batch:
                    continue
            done = 0
            try:
                for core in batch:
                    message = self._pilot(core)
                    for sub in list(state.subscribers.values()):
                        await sub.queue.put(message)  # backpressure: waits for room, never skips
                    done += 1
            except asyncio.CancelledError:
                # stop() while delivering: in process, keep what is not delivered (it has left
                # the queue); on Redis leave it unacknowledged, so it is delivered again later.
                if self._in_process:
                    self.undelivered.extend(self._pilot(m) for m in batch[done:])
                    core_router.ack(batch)
                else:
                    await asyncio.shield(self._router.ack(batch[:done]))
                raise
            if self._in_process:
                core_router.ack(batch)
            else:
                await self._router.ack(batch)
            self._delivered += len(batch)

    # ------------------------------------------------------------------ history and metrics

    def replay_history(
        self, from_timestamp_ms: int | None = None, to_timestamp_ms: int | None = None
    ) -> Replay:
        """Logged messages with ``from_timestamp_ms <= timestamp_ms <= to_timestamp_ms`` (None:
        unbounded), oldest first, as :class:`EventLogEntry`: ``async for entry in ...`` as in
        the pilot, or ``await`` for a list. Empty when event sourcing is off."""
        if (
            from_timestamp_ms is not None
            and to_timestamp_ms is not None
            and to_timestamp_ms < from_timestamp_ms
        ):
            raise InvalidInputError(
                f"to_timestamp_ms ({to_timestamp_ms}) is before"
                f" from_timestamp_ms ({from_timestamp_ms})"
            )
        return Replay(self._replay(from_timestamp_ms, to_timestamp_ms))

    async def _replay(self, from_ms: int | None, to_ms: int | None) -> AsyncIterator[EventLogEntry]:
        if self.event_store is None:
            log.warning("event sourcing is off: nothing to replay")
            return
        if (
            isinstance(self.event_store, RedisEventStore)
            and not self._running
            and self.event_store.redis_client is None
        ):
            raise RouterClosedError("the event log is not connected: await start() first")
        async for entry in self.event_store.replay_events(from_ms, to_ms):
            yield entry

    def get_stats(self) -> MessageStats:
        return self.stats

    def reset_stats(self) -> None:
        self.stats = MessageStats()

    def get_emergence_events(self) -> list[EmergenceEvent]:
        return list(self.pattern_synthesizer.emergence_events) if self.pattern_synthesizer else []

    async def get_consciousness_metrics(self) -> ConsciousnessMetrics | None:
        return await self.event_store.get_metrics() if self.event_store is not None else None

    def get_subscriber_stats(self) -> dict[str, Any]:
        """Buffered messages per subscriber, delivered and undelivered counts (an addition)."""
        return {
            "running": self._running,
            "event_log": EVENTS_STREAM
            if isinstance(self.event_store, RedisEventStore)
            else "memory",
            "delivered": self._delivered,
            "subscribers": {
                t.value: {sid: s.queue.qsize() for sid, s in st.subscribers.items()}
                for t, st in self._tracts.items()
            },
            "undelivered": len(self.undelivered),
        }


def get_reactive_message_router(
    backpressure_config: BackpressureConfig | None = None,
    circuit_config: CircuitBreakerConfig | None = None,
    enable_event_sourcing: bool = True,
    redis_url: str | None = None,
    **kwargs: Any,
) -> ReactiveCorpusCallosum:
    """A new reactive router (a factory, as in the pilot: every call returns a new one)."""
    return ReactiveCorpusCallosum(
        backpressure_config=backpressure_config,
        circuit_config=circuit_config,
        enable_event_sourcing=enable_event_sourcing,
        redis_url=redis_url,
        **kwargs,
    )
