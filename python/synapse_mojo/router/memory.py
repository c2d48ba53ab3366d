"""The in-process router: one bounded priority queue per destination, Mojo-accelerated.

    router = MemoryRouter(capacity=10_000)               # or open_router("memory://")
    router.publish_batch(messages)                       # one kernel call per destination
    batch = router.consume(Tract.EXTERNAL, max_n=512)    # one kernel call
    router.ack(batch)

Each destination's queue keeps the messages in a slot table and lets the ``message_router``
Mojo kernel (or its ``heapq`` fallback, as the runtime adapter decides: see
:mod:`.adaptive_queue`) order the slot numbers, so a message object is handed from producer to
consumer without being copied or serialised.

Capacity counts the messages a destination holds: queued plus delivered-but-not-acked, so a
nacked message always has room to go back. When a destination is full, ``publish`` blocks up to
its timeout (``backpressure="block"``, the default) or raises ``QueueFullError`` at once
(``"reject"``). Thread-safe: one lock per router, condition variables per destination.
Messages live only in this process: they are lost with it (use the Redis transport for
durability), and ``close()`` hands back whatever nobody consumed.
"""

from __future__ import annotations

import itertools
import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    PayloadTooLargeError,
    QueueFullError,
    RouterClosedError,
)
from ..runtime.adapter import Runtime, get_runtime
from .adaptive_queue import AdaptiveQueue
from .base import (
    BACKPRESSURE_POLICIES,
    Commit,
    DeadLetter,
    DestinationStats,
    Router,
    RouterStats,
    as_message_list,
    check_max_n,
    check_timeout,
    histogram_percentiles,
)
from .message import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    HARD_MAX_PAYLOAD_BYTES,
    TRACTS,
    Message,
    Tract,
)
from .metrics import COLLECTOR, COUNTERS

log = logging.getLogger("synapse_mojo.router")

_ROUTE = operator.attrgetter("_route")
_UID = operator.attrgetter("uid")
_PRIORITY = operator.attrgetter("priority")
_names = itertools.count(1)
MAX_CAPACITY = (1 << 31) - 1


class _Destination:
    """A destination's queue, conditions and counters (guarded by the router's lock)."""

    __slots__ = (
        "tract",
        "queue",
        "not_empty",
        "not_full",
        "waiting_consumers",
        "waiting_producers",
        "inflight_ids",
        "dead",
        "published",
        "delivered",
        "acked",
        "nacked",
        "redelivered",
        "dead_lettered",
        "duplicates",
        "rejected",
    )

    def __init__(self, tract: Tract, queue: AdaptiveQueue[Message], lock: threading.Lock) -> None:
        self.tract = tract
        self.queue = queue
        self.not_empty = threading.Condition(lock)
        self.not_full = threading.Condition(lock)
        self.waiting_consumers = 0
        self.waiting_producers = 0
        self.inflight_ids: set[int] = set()  # uids delivered and not yet settled
        self.dead: deque[DeadLetter] = deque()
        self.published = self.delivered = self.acked = self.nacked = 0
        self.redelivered = self.dead_lettered = self.duplicates = self.rejected = 0

    @property
    def in_flight(self) -> int:
        return len(self.inflight_ids)

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name, _ in COUNTERS}


class MemoryRouter(Router):
    """In-process router; see the module docstring.

    ``capacity``: messages per destination (queued + in flight). ``backpressure``: ``block``
    (wait up to ``publish_timeout`` seconds) or ``reject``. ``max_payload_bytes``: payload
    limit (default 1 MiB, at most 64 MiB). ``max_attempts``: deliveries before a nacked
    message is dead-lettered. ``runtime``: the runtime adapter (default: the process's).
    """

    transport = "memory"

    def __init__(
        self,
        *,
        capacity: int = 10_000,
        backpressure: str = "block",
        publish_timeout: float = 5.0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_attempts: int = 5,
        runtime: Runtime | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(max_attempts=max_attempts)
        if type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidInputError(
                f"capacity must be an int in 1..{MAX_CAPACITY}, got {capacity!r}"
            )
        if backpressure not in BACKPRESSURE_POLICIES:
            raise InvalidInputError(
                f"backpressure must be one of {list(BACKPRESSURE_POLICIES)}, got {backpressure!r}"
            )
        timeout = check_timeout(publish_timeout, "publish_timeout")
        if (
            type(max_payload_bytes) is not int
            or not 1 <= max_payload_bytes <= HARD_MAX_PAYLOAD_BYTES
        ):
            raise InvalidInputError(
                f"max_payload_bytes must be an int in 1..{HARD_MAX_PAYLOAD_BYTES}, "
                f"got {max_payload_bytes!r}"
            )
        self.capacity = capacity
        self.backpressure = backpressure
        self.publish_timeout = timeout
        self.max_payload_bytes = max_payload_bytes
        self.name = name or f"memory-{next(_names)}"
        self.url = (
            f"memory://?capacity={capacity}&backpressure={backpressure}"
            f"&max_payload_bytes={max_payload_bytes}&max_attempts={max_attempts}"
        )
        self.runtime = runtime if runtime is not None else get_runtime()
        feature = self.runtime.feature("message_router")
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._dests: dict[Tract, _Destination] = {
            tract: _Destination(
                tract,
                AdaptiveQueue(f"{self.name}:{tract.value}", capacity, feature, _PRIORITY),
                self._lock,
            )
            for tract in TRACTS
        }
        self._by_index = [self._dests[t] for t in TRACTS]
        self._closing = False
        self._closed = False
        self._drain_waiters = 0
        COLLECTOR.add(self)

    # ------------------------------------------------------------------ helpers

    def _dest(self, destination: Any) -> _Destination:
        # Identity tests, not a dict lookup: hashing an Enum member runs Python code.
        if destination is Tract.INTERNAL:
            return self._by_index[0]
        if destination is Tract.EXTERNAL:
            return self._by_index[1]
        return self._by_index[Tract.coerce(destination).ordinal]

    def _too_large(self, message: Message) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"message {message.id}: payload is {message.payload_size:,} bytes serialised; "
            f"this router's limit is {self.max_payload_bytes:,} bytes",
            size=message.payload_size,
            limit=self.max_payload_bytes,
        )

    def _wait_for_room(self, needs: dict[_Destination, int], timeout: float | None) -> None:
        """Blocks (lock held) until every destination has room for its share, or raises."""
        capacity = self.capacity
        for d, n in needs.items():
            if n > capacity:
                raise InvalidInputError(
                    f"a batch of {n} messages for {d.tract.value} exceeds the queue capacity "
                    f"{capacity}; publish it in smaller batches"
                )

        def full() -> _Destination | None:
            for d, n in needs.items():
                if d.queue.size + d.in_flight + n > capacity:
                    return d
            return None

        blocked = full()
        if blocked is None:
            return
        if self.backpressure == "reject":
            blocked.rejected += 1
            raise self._full_error(blocked, needs[blocked], "policy reject")
        wait = self.publish_timeout if timeout is None else check_timeout(timeout)
        deadline = None if wait is None else time.monotonic() + wait
        while blocked is not None:
            if self._closing:
                raise RouterClosedError("the memory router is closed")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                blocked.rejected += 1
                raise self._full_error(blocked, needs[blocked], f"waited {wait:g}s")
            blocked.waiting_producers += 1
            try:
                blocked.not_full.wait(left)
            finally:
                blocked.waiting_producers -= 1
            blocked = full()

    def _full_error(self, d: _Destination, n: int, how: str) -> QueueFullError:
        return QueueFullError(
            f"destination {d.tract.value} is full ({d.queue.size} queued + {d.in_flight} in "
            f"flight of capacity {self.capacity}; {how}); {n} message(s) not published - they "
            "are still yours, nothing was dropped",
            destination=d.tract.value,
            capacity=self.capacity,
        )

    # ------------------------------------------------------------------ publishing

    def publish(self, message: Message, *, timeout: float | None = None) -> Message:
        if message.__class__ is not Message:
            raise InvalidTypeError(f"publish() takes a Message, got {type(message).__name__}")
        route = message._route
        if route >> 8 > self.max_payload_bytes:
            raise self._too_large(message)
        d = self._by_index[(route >> 4) & 1]
        with self._lock:
            if self._closing:
                raise RouterClosedError("the memory router is closed")
            q = d.queue
            if q.size + len(d.inflight_ids) >= self.capacity:
                self._wait_for_room({d: 1}, timeout)
            q.push(message, route & 15)
            d.published += 1
            if d.waiting_consumers:
                d.not_empty.notify()
        return message

    def publish_batch(self, messages: Iterable[Message], *, timeout: float | None = None) -> int:
        msgs = messages if type(messages) is list else list(messages)
        n = len(msgs)
        if n == 0:
            return 0
        try:
            routes = np.fromiter(map(_ROUTE, msgs), dtype=np.int64, count=n)
        except AttributeError:
            bad = next(m for m in msgs if m.__class__ is not Message)
            raise InvalidTypeError(
                f"publish_batch() takes Messages, got {type(bad).__name__}"
            ) from None
        sizes = routes >> 8
        if int(sizes.max()) > self.max_payload_bytes:
            raise self._too_large(msgs[int(np.argmax(sizes > self.max_payload_bytes))])
        priorities = routes & 15
        dest_bits = (routes >> 4) & 1
        first = int(dest_bits[0])
        if bool((dest_bits == first).all()):
            groups: list[tuple[_Destination, Any, np.ndarray]] = [
                (self._by_index[first], msgs, priorities)
            ]
        else:
            objs = np.fromiter(msgs, dtype=object, count=n)
            groups = []
            for index in (0, 1):
                mask = dest_bits == index
                if mask.any():
                    groups.append((self._by_index[index], objs[mask], priorities[mask]))
        with self._lock:
            if self._closing:
                raise RouterClosedError("the memory router is closed")
            capacity = self.capacity
            if any(d.queue.size + d.in_flight + len(items) > capacity for d, items, _ in groups):
                self._wait_for_room({d: len(items) for d, items, _ in groups}, timeout)
            for d, items, prios in groups:
                d.queue.push_batch(items, prios)
                d.published += len(items)
                if d.waiting_consumers:
                    d.not_empty.notify_all()
        return n

    # ------------------------------------------------------------------ pulling

    def consume(
        self,
        destination: Tract | str,
        max_n: int = 1,
        timeout: float | None = 0.0,
        *,
        auto_ack: bool = False,
    ) -> list[Message]:
        """See :meth:`Router.consume`. In-process, ``auto_ack=True`` is a plain "take" (the
        cheapest way to consume: no in-flight bookkeeping)."""
        if destination is Tract.EXTERNAL:
            d = self._by_index[1]
        elif destination is Tract.INTERNAL:
            d = self._by_index[0]
        else:
            d = self._dest(destination)
        if max_n.__class__ is not int or max_n < 1:
            max_n = check_max_n(max_n)
        if timeout != 0:
            timeout = check_timeout(timeout)
        with self._lock:
            q = d.queue
            if q.size == 0:
                if self._closed:
                    raise RouterClosedError("the memory router is closed")
                if timeout == 0:
                    return []
                deadline = None if timeout is None else time.monotonic() + timeout
                d.waiting_consumers += 1
                try:
                    while q.size == 0:
                        if self._closed:
                            raise RouterClosedError("the memory router is closed")
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            return []
                        d.not_empty.wait(left)
                finally:
                    d.waiting_consumers -= 1
            if max_n == 1:
                first = q.pop()  # not None: the queue is not empty (checked under the lock)
                items = [first] if first is not None else []
            else:
                items = q.pop_batch(max_n)
            n = len(items)
            d.delivered += n
            if auto_ack:
                d.acked += n
                if d.waiting_producers:
                    d.not_full.notify_all()
                if self._drain_waiters and q.size == 0 and d.in_flight == 0:
                    self._settled.notify_all()
            elif n == 1:
                d.inflight_ids.add(items[0].uid)
            else:
                d.inflight_ids.update(map(_UID, items))
        return items

    def _settle(self, msgs: list[Message]) -> list[tuple[_Destination, list[Message]]]:
        if len(msgs) == 1:
            return [(self._by_index[(msgs[0]._route >> 4) & 1], msgs)]
        routes = np.fromiter(map(_ROUTE, msgs), dtype=np.int64, count=len(msgs))
        bits = (routes >> 4) & 1
        if bool((bits == bits[0]).all()):
            return [(self._by_index[int(bits[0])], msgs)]
        return [
            (self._by_index[i], [m for m, b in zip(msgs, bits.tolist(), strict=True) if b == i])
            for i in (0, 1)
            if bool((bits == i).any())
        ]

    def ack(self, messages: Message | Iterable[Message], *, commit: Commit | None = None) -> None:
        """See :meth:`Router.ack`. Messages not in flight here (acked or nacked already, or
        taken with ``auto_ack``) are ignored."""
        msgs: list[Message]
        if type(messages) is list and len(messages) == 1:
            msgs = messages
        elif type(messages) is Message:
            msgs = [messages]
        else:
            msgs = as_message_list(messages)
            if not msgs:
                return
        if commit is not None:
            commit(None)
        if len(msgs) == 1:
            m = msgs[0]
            try:
                d = self._by_index[(m._route >> 4) & 1]
            except AttributeError:
                raise InvalidTypeError(f"ack() takes Messages, got {type(m).__name__}") from None
            with self._lock:
                ids = d.inflight_ids
                if m.uid in ids:
                    ids.remove(m.uid)
                    d.acked += 1
                    if d.waiting_producers or self._drain_waiters:
                        self._after_settle(d)
            return
        with self._lock:
            for d, group in self._settle(msgs):
                ids = d.inflight_ids
                before = len(ids)
                ids.difference_update(map(_UID, group))
                d.acked += before - len(ids)
                self._after_settle(d)

    def _release(self, messages: list[Message]) -> None:
        """Nothing to do: an acknowledgement in process cannot fail to be written."""

    def nack(
        self, messages: Message | Iterable[Message], error: BaseException | str | None = None
    ) -> None:
        """See :meth:`Router.nack`. Messages not in flight here are ignored."""
        msgs = as_message_list(messages)
        if not msgs:
            return
        reason = (
            error
            if isinstance(error, str)
            else (f"{type(error).__name__}: {error}" if error is not None else "nacked")
        )
        now = time.time()
        with self._lock:
            for d, group in self._settle(msgs):
                ids = d.inflight_ids
                retry: list[Message] = []
                for m in group:
                    if m.uid not in ids:
                        continue
                    ids.remove(m.uid)
                    d.nacked += 1
                    attempts = m.attempts + 1
                    again = m.replace(attempts=attempts)
                    if attempts >= self.max_attempts:
                        d.dead.append(DeadLetter(again, reason, attempts, now))
                        d.dead_lettered += 1
                        log.warning(
                            "message %s to %s dead-lettered after %d attempts: %s",
                            m.id,
                            d.tract.value,
                            attempts,
                            reason,
                        )
                    else:
                        retry.append(again)
                if retry:
                    if self._closed:
                        # Nobody will consume again: keep them with the dead letters.
                        for m in retry:
                            d.dead.append(
                                DeadLetter(m, f"router closed: {reason}", m.attempts, now)
                            )
                            d.dead_lettered += 1
                    else:
                        # Room is guaranteed: capacity counts in-flight messages.
                        d.queue.push_batch(
                            retry, np.array([m.priority for m in retry], dtype=np.int64)
                        )
                        d.redelivered += len(retry)
                        if d.waiting_consumers:
                            d.not_empty.notify_all()
                self._after_settle(d)

    def _after_settle(self, d: _Destination) -> None:
        if d.waiting_producers:
            d.not_full.notify_all()
        if self._drain_waiters and d.in_flight == 0 and d.queue.size == 0:
            self._settled.notify_all()

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._closing

    def drain(self, timeout: float | None = None) -> bool:
        wait = check_timeout(timeout)
        deadline = None if wait is None else time.monotonic() + wait

        def idle() -> bool:
            return all(d.queue.size == 0 and d.in_flight == 0 for d in self._by_index)

        with self._lock:
            self._drain_waiters += 1
            try:
                while not idle():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._settled.wait(0.1 if left is None else min(left, 0.1))
                return True
            finally:
                self._drain_waiters -= 1

    def close(self, timeout: float | None = 5.0) -> list[Message]:
        with self._lock:
            if self._closed:
                return []
            self._closing = True
            for d in self._by_index:
                d.not_full.notify_all()
        if self.subscriptions():
            self.drain(timeout)
        with self._lock:
            self._closed = True
            for d in self._by_index:
                d.not_empty.notify_all()
        self._stop_subscriptions(timeout)
        with self._lock:
            leftovers: list[Message] = []
            for d in self._by_index:
                leftovers.extend(d.queue.drain_items())
        COLLECTOR.retire(self)
        if leftovers:
            log.warning(
                "memory router %s closed with %d undelivered message(s); close() returned them",
                self.name,
                len(leftovers),
            )
        return leftovers

    # ------------------------------------------------------------------ introspection

    def stats(self) -> RouterStats:
        out: dict[str, DestinationStats] = {}
        with self._lock:
            for d in self._by_index:
                q = d.queue
                bounds, counts, _ = q.block.latency_histogram()
                p50, p95, p99 = histogram_percentiles(bounds, counts)
                out[d.tract.value] = DestinationStats(
                    destination=d.tract.value,
                    depth=q.size,
                    depth_by_priority=q.depths(),
                    in_flight=d.in_flight,
                    dead_letter_depth=len(d.dead),
                    latency_p50_ms=p50,
                    latency_p95_ms=p95,
                    latency_p99_ms=p99,
                    runtime=q.runtime,
                    **d.counters(),
                )
            extra = {
                "capacity": self.capacity,
                "backpressure": self.backpressure,
                "migrations": sum(d.queue.migrations for d in self._by_index),
                "mirror_mismatches": sum(d.queue.mismatches for d in self._by_index),
            }
        return RouterStats(self.transport, self.url, out, extra)

    def runtime_in_use(self) -> str:
        """``mojo`` when the Mojo kernel orders (or would order) every destination's queue."""
        return "mojo" if all(d.queue.runtime == "mojo" for d in self._by_index) else "python"

    def depth(self, destination: Tract | str | None = None) -> int:
        if destination is None:
            return sum(d.queue.size for d in self._by_index)
        return self._dest(destination).queue.size

    def metric_snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                d.tract.value: {
                    "depths": d.queue.depths(),
                    "in_flight": d.in_flight,
                    "counters": d.counters(),
                    "histogram": d.queue.block.latency_histogram(),
                }
                for d in self._by_index
            }

    def dead_letters(self, destination: Tract | str, limit: int = 100) -> list[DeadLetter]:
        d = self._dest(destination)
        limit = check_max_n(limit)
        with self._lock:
            return list(itertools.islice(d.dead, limit))

    def requeue_dead_letters(self, destination: Tract | str, limit: int | None = None) -> int:
        d = self._dest(destination)
        with self._lock:
            take = len(d.dead) if limit is None else min(check_max_n(limit), len(d.dead))
            letters = [d.dead.popleft() for _ in range(take)]
        messages = [dl.message.replace(attempts=0) for dl in letters if dl.message is not None]
        try:
            self.publish_batch(messages)
        except BaseException:
            with self._lock:
                d.dead.extendleft(reversed(letters))
            raise
        return len(messages)

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        return f"<MemoryRouter {self.name} capacity={self.capacity} {state}>"
