"""The router interface shared by the in-process and the Redis Streams transports.

    with open_router("memory://") as router:          # or "redis://localhost:6379/0"
        router.send(Tract.INTERNAL, Tract.EXTERNAL, {"task": "plan"}, priority=Priority.HIGH)
        with router.receive(Tract.EXTERNAL, max_n=10, timeout=1.0) as messages:
            for message in messages:
                handle(message)                       # acked when the block exits cleanly

Delivery model (the same on every transport, so code moves between them unchanged):

* **Priority**: higher first (0..9), first-in-first-out within a priority per destination.
* **Pull**: :meth:`Router.consume` returns up to ``max_n`` messages as soon as one is there;
  each must then be :meth:`~Router.ack`-ed (done) or :meth:`~Router.nack`-ed (failed: retried
  with ``attempts + 1``, dead-lettered after ``max_attempts`` deliveries). On Redis an
  unacknowledged message is redelivered when its consumer dies; in-process, messages leave the
  queue on ``consume`` and ``ack`` only settles the books (``drain`` waits for it).
* **Push**: :meth:`Router.subscribe` runs a handler in worker threads; a handler that returns
  normally acks, one that raises nacks. A handler may return a *commit* callable: it is called
  inside the acknowledgement with the transport's transaction (Redis: a redis-py pipeline in
  MULTI/EXEC, so writes queued on it commit atomically with the ack: exactly-once effects;
  in-process: ``None``).
* **Backpressure**: a destination holds at most ``capacity`` (in-process) or ``max_backlog``
  (Redis) messages; a publish that finds it full blocks up to its timeout (policy ``block``) or
  fails at once (policy ``reject``) with ``QueueFullError``. A message is never dropped.
* **Lifecycle**: :meth:`Router.drain` waits until everything published has been acked;
  :meth:`Router.close` refuses new publishes, lets subscriptions finish, and returns the
  in-process messages nobody consumed (Redis keeps them). Routers are context managers.

Errors: bad messages raise ``InvalidInputError``/``InvalidTypeError`` subclasses before
anything is queued; a closed router raises ``RouterClosedError``; a transport that stays down
past its retry window raises ``TransportError``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError, RouterClosedError, TransportError
from .message import TRACTS, Message, Priority, Tract

log = logging.getLogger("synapse_mojo.router")

#: What a handler may return: None, or a callable run inside the acknowledgement.
Commit = Callable[[Any], None]
Handler = Callable[[Message], "Commit | None"]
BatchHandler = Callable[[list[Message]], "Commit | None"]

BACKPRESSURE_POLICIES = ("block", "reject")


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DestinationStats:
    """Counters of one destination. ``depth`` counts messages waiting for delivery,
    ``in_flight`` those delivered and not yet acked (Redis: pending in the group)."""

    destination: str
    depth: int = 0
    depth_by_priority: list[int] = field(default_factory=lambda: [0] * 10)
    in_flight: int = 0
    published: int = 0
    delivered: int = 0
    acked: int = 0
    nacked: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    dead_letter_depth: int = 0
    duplicates: int = 0
    rejected: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    runtime: str = ""


@dataclass(frozen=True)
class RouterStats:
    transport: str
    url: str
    destinations: dict[str, DestinationStats]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def total_depth(self) -> int:
        return sum(d.depth for d in self.destinations.values())


@dataclass(frozen=True)
class DeadLetter:
    """A message that exhausted its attempts (or could not be decoded)."""

    message: Message | None
    reason: str
    attempts: int
    dead_at: float
    raw: Mapping[str, Any] = field(default_factory=dict)
    ref: str = ""  # transport reference (Redis: the dead-letter stream entry id)


def histogram_percentiles(
    bounds_s: Sequence[float], counts: Sequence[int], quantiles: Sequence[float] = (50, 95, 99)
) -> list[float | None]:
    """Upper-bound estimates (ms) of percentiles from a non-cumulative histogram whose last
    bucket is +Inf (reported as the largest finite bound)."""
    total = sum(counts)
    if total == 0:
        return [None for _ in quantiles]
    out: list[float | None] = []
    for q in quantiles:
        rank = max(1, math.ceil(q / 100.0 * total))
        running = 0
        value = bounds_s[-1]
        for i, c in enumerate(counts):
            running += c
            if running >= rank:
                value = bounds_s[min(i, len(bounds_s) - 1)]
                break
        out.append(round(value * 1e3, 6))
    return out


# --------------------------------------------------------------------------------------------
# Argument checks shared by the transports
# --------------------------------------------------------------------------------------------


def check_max_n(max_n: Any) -> int:
    if type(max_n) is not int:
        if isinstance(max_n, bool) or not hasattr(max_n, "__index__"):
            raise InvalidTypeError(f"max_n must be an int >= 1, got {type(max_n).__name__}")
        max_n = int(max_n)
    if max_n < 1:
        raise InvalidInputError(f"max_n must be >= 1, got {max_n}")
    return max_n


def check_timeout(timeout: Any, name: str = "timeout") -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidTypeError(f"{name} must be a number of seconds or None, got {timeout!r}")
    if timeout < 0 or timeout != timeout:
        raise InvalidInputError(f"{name} must be >= 0, got {timeout}")
    return float(timeout)


def as_message_list(messages: Message | Iterable[Message]) -> list[Message]:
    if isinstance(messages, Message):
        return [messages]
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise InvalidTypeError(
            f"expected a Message or an iterable of Messages, got {type(messages).__name__}"
        )
    out = messages if type(messages) is list else list(messages)
    for m in out:
        if m.__class__ is not Message:
            raise InvalidTypeError(f"expected Message objects, got {type(m).__name__}")
    return out


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class Router(ABC):
    """Carries messages between the tracts by priority; see the module docstring."""

    #: "memory" or "redis".
    transport: str = "?"

    def __init__(self, *, max_attempts: int = 5) -> None:
        if type(max_attempts) is not int or max_attempts < 1:
            raise InvalidInputError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        self.max_attempts = max_attempts
        self._subscriptions: list[Subscription] = []
        self._sub_lock = threading.Lock()

    # ------------------------------------------------------------------ publishing

    @abstractmethod
    def publish(self, message: Message, *, timeout: float | None = None) -> Message:
        """Queues one message for ``message.destination`` and returns it.

        Raises ``PayloadTooLargeError`` over the router's payload limit, ``QueueFullError``
        when the destination stays full for ``timeout`` seconds (None: the router's
        ``publish_timeout``; policy ``reject``: at once), ``RouterClosedError`` after
        :meth:`close`, ``TransportError`` when the transport stays down.
        """

    @abstractmethod
    def publish_batch(self, messages: Iterable[Message], *, timeout: float | None = None) -> int:
        """Queues many messages (any destinations) in one call; returns how many.

        Validation covers the whole batch before anything is queued. In-process the batch is
        all-or-nothing; on Redis it is one pipeline (a connection failure part-way is retried,
        and the duplicates this may create are dropped by the consumers' dedupe).
        """

    def send(
        self,
        source: Tract | str,
        destination: Tract | str,
        payload: Any = None,
        *,
        priority: int = Priority.NORMAL,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        timeout: float | None = None,
    ) -> Message:
        """Builds a :class:`Message` and publishes it; returns it (``.id`` is its id)."""
        message = Message(
            source,
            destination,
            payload,
            priority=priority,
            headers=headers,
            correlation_id=correlation_id,
            reply_to=reply_to,
        )
        return self.publish(message, timeout=timeout)

    # ------------------------------------------------------------------ pulling

    @abstractmethod
    def consume(
        self,
        destination: Tract | str,
        max_n: int = 1,
        timeout: float | None = 0.0,
        *,
        auto_ack: bool = False,
    ) -> list[Message]:
        """Up to ``max_n`` messages for ``destination``, highest priority first.

        Returns as soon as at least one message is available. ``timeout``: 0 does not wait,
        None waits until a message arrives or the router closes, else waits at most that many
        seconds and returns ``[]``. Every returned message must be acked or nacked, unless
        ``auto_ack=True``: then they are acknowledged as they are handed over (at-most-once
        for the caller: a message whose processing then fails or crashes is not redelivered).
        Raises ``UnknownTractError`` for an unknown destination and ``RouterClosedError``
        once the router is closed.
        """

    def consume_one(
        self, destination: Tract | str, timeout: float | None = 0.0, *, auto_ack: bool = False
    ) -> Message | None:
        """The next message for ``destination``, or None (see :meth:`consume`)."""
        got = self.consume(destination, 1, timeout, auto_ack=auto_ack)
        return got[0] if got else None

    @abstractmethod
    def ack(self, messages: Message | Iterable[Message], *, commit: Commit | None = None) -> None:
        """Marks consumed messages as done: never delivered again (the dedupe record makes a
        redelivered copy a no-op). ``commit`` runs inside the acknowledgement (see the module
        docstring). Acking a message twice is harmless."""

    @abstractmethod
    def nack(
        self, messages: Message | Iterable[Message], error: BaseException | str | None = None
    ) -> None:
        """Marks consumed messages as failed: each is delivered again (``attempts + 1``) or,
        after ``max_attempts`` deliveries, moved to the destination's dead letters."""

    @abstractmethod
    def _release(self, messages: list[Message]) -> None:
        """Forgets consumed messages whose acknowledgement could not be written, so that they
        are delivered again (by this router or another). Transports whose acknowledgements
        cannot fail do nothing here."""

    @contextmanager
    def receive(
        self, destination: Tract | str, max_n: int = 1, timeout: float | None = 0.0
    ) -> Iterator[list[Message]]:
        """``consume`` as a context: acks on a clean exit, nacks (and re-raises) on error."""
        messages = self.consume(destination, max_n, timeout)
        try:
            yield messages
        except BaseException as exc:
            if messages:
                self.nack(messages, exc)
            raise
        else:
            if messages:
                self.ack(messages)

    # ------------------------------------------------------------------ pushing

    def subscribe(
        self,
        destination: Tract | str,
        handler: Handler | BatchHandler,
        *,
        batch_size: int = 1,
        batch: bool = False,
        threads: int = 1,
        poll_interval: float = 0.25,
        name: str | None = None,
    ) -> Subscription:
        """Runs ``handler`` on every message for ``destination`` in ``threads`` worker threads.

        ``batch_size`` messages are taken per consume; with ``batch=True`` the handler gets
        the list at once (and its outcome applies to all of them), else one message per call.
        Returns a :class:`Subscription`; :meth:`close` stops every subscription.
        """
        dest = Tract.coerce(destination)
        if not callable(handler):
            raise InvalidTypeError(f"handler must be callable, got {type(handler).__name__}")
        batch_size = check_max_n(batch_size)
        if type(threads) is not int or threads < 1:
            raise InvalidInputError(f"threads must be an int >= 1, got {threads!r}")
        poll = check_timeout(poll_interval, "poll_interval")
        if not poll:
            raise InvalidInputError("poll_interval must be > 0")
        self._check_open()
        sub = Subscription(self, dest, handler, batch_size, batch, threads, poll, name)
        with self._sub_lock:
            self._subscriptions.append(sub)
        sub.start()
        return sub

    def subscriptions(self) -> list[Subscription]:
        with self._sub_lock:
            return [s for s in self._subscriptions if s.running]

    def _stop_subscriptions(self, timeout: float | None) -> None:
        with self._sub_lock:
            subs = list(self._subscriptions)
        for sub in subs:
            sub.request_stop()
        deadline = None if timeout is None else time.monotonic() + timeout
        for sub in subs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            sub.join(left)

    # ------------------------------------------------------------------ lifecycle

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    def _check_open(self) -> None:
        if self.closed:
            raise RouterClosedError(f"the {self.transport} router is closed")

    @abstractmethod
    def drain(self, timeout: float | None = None) -> bool:
        """Waits until every message published (to destinations this router serves) has been
        acked or dead-lettered; True when that happened within ``timeout``."""

    @abstractmethod
    def close(self, timeout: float | None = 5.0) -> list[Message]:
        """Refuses new publishes, stops the subscriptions (each finishes the message in its
        hands; with subscriptions running, queued in-process messages are first drained for
        up to ``timeout`` seconds) and releases the transport. Returns the in-process messages
        nobody consumed (always ``[]`` on Redis, where they stay queued). Idempotent."""

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ introspection

    @abstractmethod
    def stats(self) -> RouterStats:
        """Depths, counters and latency percentiles per destination."""

    def depth(self, destination: Tract | str | None = None) -> int:
        """Messages waiting for delivery to ``destination`` (None: all destinations)."""
        stats = self.stats()
        if destination is None:
            return stats.total_depth
        return stats.destinations[Tract.coerce(destination).value].depth

    @abstractmethod
    def dead_letters(self, destination: Tract | str, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters of ``destination`` (left in place)."""

    @abstractmethod
    def requeue_dead_letters(self, destination: Tract | str, limit: int | None = None) -> int:
        """Publishes dead letters again with ``attempts`` reset; returns how many."""


# --------------------------------------------------------------------------------------------
# Subscriptions
# --------------------------------------------------------------------------------------------


def _combine(commits: list[Commit]) -> Commit | None:
    if not commits:
        return None
    if len(commits) == 1:
        return commits[0]

    def combined(tx: Any) -> None:
        for commit in commits:
            commit(tx)

    return combined


class Subscription:
    """Worker threads delivering one destination's messages to a handler."""

    def __init__(
        self,
        router: Router,
        destination: Tract,
        handler: Callable[..., Any],
        batch_size: int,
        batch: bool,
        threads: int,
        poll_interval: float,
        name: str | None,
    ) -> None:
        self.router = router
        self.destination = destination
        self.handler = handler
        self.batch_size = batch_size
        self.batch = batch
        self.poll_interval = poll_interval
        self.name = name or f"{router.transport}-{destination.value}-{id(self):x}"
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"{self.name}-{i}", daemon=True)
            for i in range(threads)
        ]
        self._lock = threading.Lock()
        self.handled = 0
        self.failed = 0
        self.last_error: str | None = None

    def start(self) -> None:
        for t in self._threads:
            t.start()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stops the workers after the message in hand; True when all stopped in time."""
        self.request_stop()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            if t is threading.current_thread():
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.running

    def _loop(self) -> None:
        router = self.router
        backoff = 0.05
        while not self._stop.is_set():
            try:
                messages = router.consume(self.destination, self.batch_size, self.poll_interval)
                backoff = 0.05
            except RouterClosedError:
                return
            except TransportError as exc:
                self.last_error = str(exc)
                log.warning(
                    "subscription %s: transport error, retrying in %.2fs: %s",
                    self.name,
                    backoff,
                    exc,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if not messages:
                continue
            try:
                self._handle(messages)
            except RouterClosedError:
                return
            except TransportError as exc:
                # The acknowledgement could not be written: the messages stay pending and
                # are redelivered (and deduplicated); nothing is lost. Released here, so that
                # this router delivers them again once the transport is back.
                router._release(messages)
                self.last_error = str(exc)
                log.warning("subscription %s: could not acknowledge: %s", self.name, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _handle(self, messages: list[Message]) -> None:
        router = self.router
        if self.batch:
            try:
                result = self.handler(messages)
            except Exception as exc:
                self._failed(exc, len(messages))
                router.nack(messages, exc)
                return
            router.ack(messages, commit=result if callable(result) else None)
            with self._lock:
                self.handled += len(messages)
            return
        done: list[Message] = []
        commits: list[Commit] = []
        for message in messages:
            try:
                result = self.handler(message)
            except Exception as exc:
                self._failed(exc, 1)
                router.nack([message], exc)
                continue
            done.append(message)
            if callable(result):
                commits.append(result)
        if done:
            router.ack(done, commit=_combine(commits))
            with self._lock:
                self.handled += len(done)

    def _failed(self, exc: BaseException, n: int) -> None:
        with self._lock:
            self.failed += n
            self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "subscription %s: handler failed on %d message(s): %s", self.name, n, self.last_error
        )


__all__ = [
    "BACKPRESSURE_POLICIES",
    "DeadLetter",
    "DestinationStats",
    "Router",
    "RouterStats",
    "Subscription",
    "TRACTS",
    "histogram_percentiles",
]
