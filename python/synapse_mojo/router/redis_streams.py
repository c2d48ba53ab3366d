"""The durable transport: Redis Streams, across processes and machines.

    router = RedisStreamsRouter("redis://127.0.0.1:6379/0")   # or open_router("redis://...")
    router.send(Tract.INTERNAL, Tract.EXTERNAL, {"task": "plan"}, priority=Priority.HIGH)
    router.subscribe(Tract.EXTERNAL, handle)                    # in the consuming process

Layout and names: :mod:`.redis_keys` (one stream per destination and priority band, one
consumer group, dedupe records, dead letters, counters). Server-side logic: :mod:`.redis_scripts`.

Guarantees

* **Nothing is lost**: a message is acknowledged (XACK) only after its handler succeeded (or by
  an explicit ``ack``); until then it stays in the group's pending list. A consumer that dies
  leaves its entries pending: a restarted consumer with the same name re-handles its own first
  (in order), and any consumer takes over entries idle for ``claim_idle`` seconds (XAUTOCLAIM).
  Trimming (``XTRIM MINID``) never passes the oldest pending or undelivered entry.
* **Processed once**: each message id has a dedupe record (TTL ``dedupe_ttl``). Redelivered or
  duplicated copies of an acked message are acked without running the handler. Writes a
  handler queues on the commit transaction (``subscribe`` handlers return ``commit(pipe)``;
  ``ack(..., commit=...)``) commit atomically with the ack and the dedupe record, so they happen
  exactly once even across crashes, restarts and lost replies (the record is marked committed
  in the same transaction; a batch being acknowledged is never handed to another thread of
  this router meanwhile); other side effects are at-least-once, with a window of one
  round trip (between the handler returning and the ack committing).
* **Priority**: every read takes the highest non-empty band first (9 .. 0); within a band,
  entries are delivered in stream order, so one producer's messages of one priority reach a
  consumer in publish order. Parallel consumers of one destination overlap in time, and an
  entry taken over from a dead consumer is handled after younger ones.
* **Failures**: a failed handler (``nack``) is retried after ``retry_delay * 2**attempts``
  seconds (at most 60 s) and moved to the dead-letter stream after ``max_attempts``
  deliveries, as is an entry whose consumers crash ``max_attempts`` times, or one that does not
  decode.
* **Redis restarts**: every call retries connection errors and ``LOADING`` replies with
  backoff for up to ``retry_timeout`` seconds (subscriptions retry forever) and recreates
  consumer groups that vanished; scripts are reloaded automatically. Use AOF
  (``appendonly yes``; ``appendfsync always`` to lose nothing on a power cut) for durability.
  A publish retried after a lost reply may write a duplicate: the dedupe drops it.
* **Backpressure**: a destination holds at most ``max_backlog`` entries (XLEN over its bands,
  so acked entries count until the next trim, at most ``trim_interval`` later).
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import numpy as np

try:  # the `redis` extra: without it, opening a redis:// router names what to install
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError:
    from .._extras import require

    require("redis", "the Redis Streams router (redis://)")
    raise

from .._urls import check_options, parse_url, redact, redis_driver_options, scrub
from ..errors import (
    ConfigError,
    InvalidInputError,
    InvalidTypeError,
    PayloadTooLargeError,
    QueueFullError,
    RouterClosedError,
    TransportError,
)
from ..runtime.metrics import _LATENCY_BUCKETS
from . import redis_scripts
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
    MAX_PRIORITY,
    PRIORITY_LEVELS,
    TRACTS,
    Message,
    Tract,
    fill_ids,
)
from .metrics import COLLECTOR, COUNTERS
from .redis_keys import DEFAULT_GROUP, DEFAULT_PREFIX, Keys, check_name
from .redis_wire import FIELD_ID, from_wire, wire_parts

log = logging.getLogger("synapse_mojo.router")

T = TypeVar("T")

#: Messages per PUBLISH script call (keeps each script's time in Redis short).
PUBLISH_CHUNK = 512
#: Longest single blocking read; consume() loops, so closing is noticed within this.
MAX_BLOCK_MS = 500
#: Retry delay cap after repeated handler failures.
MAX_RETRY_DELAY = 60.0

_RETRYABLE_REPLIES = ("LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY ", "READONLY")


def _band(priority: int) -> int:
    """1-based index of a priority's stream in ``Keys.bands()`` (the scripts' KEYS)."""
    return MAX_PRIORITY - priority + 1


def _eid_key(eid: bytes) -> tuple[int, int]:
    ms, _, seq = eid.partition(b"-")
    return int(ms), int(seq or 0)


def _fields(flat: Any) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


class _Reread(Exception):
    """A read failed and may have left entries pending here: start over from them."""

    def __init__(self, deadline: float) -> None:
        super().__init__("re-read")
        self.deadline = deadline


class _Delivery(NamedTuple):
    """Where a message in flight came from (built with tuple.__new__: several times cheaper
    than a dataclass per delivered message)."""

    destination: Tract
    band: int  # 1-based, see _band
    eid: bytes
    mid: str
    attempts: int


@dataclass(order=True)
class _Retry:
    due: float
    band: int = field(compare=False)
    eid: bytes = field(compare=False)
    attempts: int = field(compare=False)
    nacked_at: float = field(compare=False)


class _DestinationState:
    """A destination's consumer-side state in this router."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups_ready = False
        self.recovered = False
        self.retries: list[_Retry] = []
        self.next_claim = 0.0
        self.next_trim = 0.0
        self.next_cleanup = 0.0
        self.claim_cursor: dict[int, bytes] = {}


class RedisStreamsRouter(Router):
    """Durable router over Redis Streams; see the module docstring.

    ``url``: a redis://, rediss:// or unix:// URL (or pass ``client``). ``consumer``: this
    instance's name in the group (default unique per instance). ``claim_idle``: seconds after
    which another consumer takes over a silent consumer's entries. ``retry_delay``: base delay
    before a nacked message is delivered again. ``dedupe_ttl``: seconds a dedupe record lives.
    ``max_backlog``: entries per destination before backpressure (None: unbounded).
    ``retry_timeout``: how long calls retry a Redis that is down before ``TransportError``.
    """

    transport = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = DEFAULT_PREFIX,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        max_attempts: int = 5,
        claim_idle: float = 30.0,
        retry_delay: float = 1.0,
        dedupe_ttl: int = 86_400,
        max_backlog: int | None = 1_000_000,
        backpressure: str = "block",
        publish_timeout: float = 5.0,
        retry_timeout: float = 30.0,
        dead_letter_cap: int = 100_000,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        trim_interval: float = 1.0,
        socket_timeout: float = 10.0,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(max_attempts=max_attempts)
        self.keys = Keys(prefix)
        self.group = check_name(group, "consumer group")
        self.consumer = check_name(
            consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            "consumer name",
        )
        for name, value in (
            ("claim_idle", claim_idle),
            ("retry_delay", retry_delay),
            ("publish_timeout", publish_timeout),
            ("retry_timeout", retry_timeout),
            ("trim_interval", trim_interval),
            ("socket_timeout", socket_timeout),
        ):
            check_timeout(value, name)
        if claim_idle <= 0 or socket_timeout <= 0:
            raise InvalidInputError("claim_idle and socket_timeout must be > 0")
        if type(dedupe_ttl) is not int or dedupe_ttl < 1:
            raise InvalidInputError(f"dedupe_ttl must be an int >= 1 (seconds), got {dedupe_ttl!r}")
        if max_backlog is not None and (type(max_backlog) is not int or max_backlog < 1):
            raise InvalidInputError(f"max_backlog must be an int >= 1 or None, got {max_backlog!r}")
        if backpressure not in BACKPRESSURE_POLICIES:
            raise InvalidInputError(
                f"backpressure must be one of {list(BACKPRESSURE_POLICIES)}, got {backpressure!r}"
            )
        if type(dead_letter_cap) is not int or dead_letter_cap < 1:
            raise InvalidInputError(f"dead_letter_cap must be an int >= 1, got {dead_letter_cap!r}")
        if (
            type(max_payload_bytes) is not int
            or not 1 <= max_payload_bytes <= HARD_MAX_PAYLOAD_BYTES
        ):
            raise InvalidInputError(
                f"max_payload_bytes must be an int in 1..{HARD_MAX_PAYLOAD_BYTES}, got {max_payload_bytes!r}"
            )
        self.claim_idle = float(claim_idle)
        self.retry_delay = float(retry_delay)
        self.dedupe_ttl = dedupe_ttl
        self.max_backlog = max_backlog
        self.backpressure = backpressure
        self.publish_timeout = float(publish_timeout)
        self.retry_timeout = float(retry_timeout)
        self.dead_letter_cap = dead_letter_cap
        self.max_payload_bytes = max_payload_bytes
        self.trim_interval = float(trim_interval)
        if client is not None:
            self._client = client
            self.url = redact(url)  # safe to show: the password is ***
        else:
            parsed = parse_url(url, what="Redis URL", schemes=("redis", "rediss", "unix"))
            check_options(
                parsed,
                redis_driver_options(parsed.scheme),
                what="Redis URL",
                hint="router options go in keyword arguments, or use open_router(url)",
            )
            try:
                self._client = redis.Redis.from_url(
                    url,
                    socket_timeout=socket_timeout,
                    socket_connect_timeout=min(5.0, socket_timeout),
                    health_check_interval=30,
                    # No silent retries inside redis-py: a read, a publish or a transaction
                    # whose reply was lost must not simply be sent again. Every failure
                    # reaches _call, which knows how to retry each operation safely.
                    retry=Retry(NoBackoff(), 0),
                )
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"invalid Redis URL {parsed.redacted()!r}: {scrub(str(exc), parsed)}"
                ) from exc
            self.url = parsed.redacted()  # safe to show: the password is ***
        self._owns_client = client is None
        self._scripts = {
            name: self._client.register_script(getattr(redis_scripts, name))
            for name in ("READ", "CLAIM_CHECK", "DEAD_LETTER", "PUBLISH", "TRIM")
        }
        self._lock = threading.Lock()
        self._states = {t: _DestinationState() for t in TRACTS}
        self._inflight: dict[int, _Delivery] = {}
        self._inflight_entries: set[tuple[Tract, int, bytes]] = set()
        self._counters = {t: dict.fromkeys((name for name, _ in COUNTERS), 0) for t in TRACTS}
        self._bounds = list(_LATENCY_BUCKETS)
        self._bounds_array = np.array(self._bounds)
        self._hist = {t: [0] * (len(self._bounds) + 1) for t in TRACTS}
        self._latency_sum = {t: 0.0 for t in TRACTS}
        self._depth_cache: dict[Tract, tuple[list[int], int]] = {}
        self._depth_cache_at = 0.0
        self._closed = False
        COLLECTOR.add(self)

    # ------------------------------------------------------------------ plumbing

    def _call(
        self,
        fn: Callable[[], T],
        what: str,
        destination: Tract | None = None,
        *,
        reads: bool = False,
    ) -> T:
        """Runs ``fn`` against Redis, retrying outages for ``retry_timeout`` seconds.

        ``reads``: ``fn`` takes new entries from the group (XREADGROUP ``>``). Such a call is
        not simply repeated after a failure, because a lost reply leaves the entries it read
        pending on this consumer: repeating it would deliver younger entries before them.
        After the backoff it raises :class:`_Reread` instead, and the caller starts over with
        its own pending entries.
        """
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        while True:
            try:
                return fn()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                problem: Exception = exc
            except redis.ResponseError as exc:
                text = str(exc)
                if "NOGROUP" in text and destination is not None:
                    log.warning(
                        "consumer group missing on %s (Redis restarted empty?); recreating",
                        destination.value,
                    )
                    self._ensure_groups(destination, force=True)
                    continue
                if not text.startswith(_RETRYABLE_REPLIES):
                    raise TransportError(f"Redis refused {what}: {text}") from exc
                problem = exc
            except redis.RedisError as exc:
                raise TransportError(f"Redis error during {what}: {exc}") from exc
            if destination is not None:
                self._states[destination].recovered = False  # a lost reply may have left entries
            if self._closed and what != "close":
                raise RouterClosedError("the redis router is closed") from problem
            if time.monotonic() + delay > deadline:
                raise TransportError(
                    f"Redis unavailable for {what} at {self.url} after retrying for "
                    f"{self.retry_timeout:g}s: {problem}"
                ) from problem
            log.info("Redis %s failed (%s); retrying in %.2fs", what, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            if reads:
                raise _Reread(deadline) from problem

    def _script(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        what: str,
        destination: Tract | None = None,
        *,
        reads: bool = False,
    ) -> Any:
        script = self._scripts[name]
        return self._call(lambda: script(keys=keys, args=args), what, destination, reads=reads)

    def _bands_and_counters(self, destination: Tract) -> list[str]:
        return [*self.keys.bands(destination), self.keys.counters(destination)]

    def _ensure_groups(self, destination: Tract, force: bool = False) -> None:
        state = self._states[destination]
        if state.groups_ready and not force:
            return

        def create() -> None:
            for key in self.keys.bands(destination):
                try:
                    self._client.xgroup_create(key, self.group, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

        self._call(create, "XGROUP CREATE")
        state.groups_ready = True

    def _check_open(self) -> None:
        if self._closed:
            raise RouterClosedError("the redis router is closed")

    # ------------------------------------------------------------------ publishing

    def publish(self, message: Message, *, timeout: float | None = None) -> Message:
        if message.__class__ is not Message:
            raise InvalidTypeError(f"publish() takes a Message, got {type(message).__name__}")
        self.publish_batch([message], timeout=timeout)
        return message

    def publish_batch(self, messages: Iterable[Message], *, timeout: float | None = None) -> int:
        msgs = as_message_list(messages)
        self._check_open()
        for m in msgs:
            if m.payload_size > self.max_payload_bytes:
                raise PayloadTooLargeError(
                    f"message {m.id}: payload is {m.payload_size:,} bytes serialised; this "
                    f"router's limit is {self.max_payload_bytes:,} bytes",
                    size=m.payload_size,
                    limit=self.max_payload_bytes,
                )
        wait = self.publish_timeout if timeout is None else check_timeout(timeout)
        fill_ids(msgs)
        by_dest: dict[Tract, list[Message]] = {}
        for m in msgs:
            by_dest.setdefault(m.destination, []).append(m)
        published = 0
        for dest, group in by_dest.items():
            keys = self._bands_and_counters(dest)
            for start in range(0, len(group), PUBLISH_CHUNK):
                chunk = group[start : start + PUBLISH_CHUNK]
                args: list[Any] = [self.max_backlog if self.max_backlog is not None else -1]
                for m in chunk:
                    args += (_band(m.priority), *wire_parts(m))
                self._publish_chunk(dest, keys, args, len(chunk), wait, published)
                published += len(chunk)
                with self._lock:
                    self._counters[dest]["published"] += len(chunk)
        return published

    def _publish_chunk(
        self,
        dest: Tract,
        keys: list[str],
        args: list[Any],
        n: int,
        wait: float | None,
        published: int,
    ) -> None:
        deadline = None if wait is None else time.monotonic() + wait
        delay = 0.005
        while True:
            result = self._script("PUBLISH", keys, args, "publish", None)
            if int(result[0]) >= 0:
                return
            backlog = int(result[1])
            if self.backpressure == "reject" or (
                deadline is not None and time.monotonic() >= deadline
            ):
                with self._lock:
                    self._counters[dest]["rejected"] += 1
                raise QueueFullError(
                    f"destination {dest.value} on {self.url} holds {backlog} entries (max_backlog "
                    f"{self.max_backlog}); {n} message(s) not published - they are still yours, "
                    "nothing was dropped",
                    destination=dest.value,
                    capacity=self.max_backlog or 0,
                    published=published,
                )
            self._check_open()
            time.sleep(
                delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            )
            delay = min(delay * 2, 0.25)

    # ------------------------------------------------------------------ consuming

    def consume(
        self,
        destination: Tract | str,
        max_n: int = 1,
        timeout: float | None = 0.0,
        *,
        auto_ack: bool = False,
    ) -> list[Message]:
        messages = self._consume(destination, max_n, timeout)
        if auto_ack and messages:
            self.ack(messages)
        return messages

    def _consume(
        self, destination: Tract | str, max_n: int, timeout: float | None
    ) -> list[Message]:
        dest = Tract.coerce(destination)
        max_n = check_max_n(max_n)
        wait = check_timeout(timeout)
        self._check_open()
        self._ensure_groups(dest)
        deadline = None if wait is None else time.monotonic() + wait
        outage_deadline: float | None = None
        while True:
            try:
                messages = self._fetch(dest, max_n)
            except _Reread as exc:
                outage_deadline = outage_deadline or exc.deadline
                if time.monotonic() > outage_deadline:
                    raise TransportError(
                        f"Redis unavailable for reads at {self.url} after retrying for "
                        f"{self.retry_timeout:g}s"
                    ) from exc.__cause__
                continue
            outage_deadline = None
            if messages:
                return messages
            if wait == 0:
                return []
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            block_ms = MAX_BLOCK_MS if left is None else max(1, min(MAX_BLOCK_MS, int(left * 1000)))
            next_retry = self._next_retry_in(dest)
            if next_retry is not None:
                block_ms = max(1, min(block_ms, int(next_retry * 1000) + 1))
            try:
                messages = self._blocking_read(dest, max_n, block_ms)
            except _Reread:
                continue  # the next _fetch recovers this consumer's pending entries first
            if messages:
                return messages
            self._check_open()

    def _next_retry_in(self, dest: Tract) -> float | None:
        retries = self._states[dest].retries
        if not retries:
            return None
        return max(0.0, retries[0].due - time.monotonic())

    def _fetch(self, dest: Tract, max_n: int) -> list[Message]:
        state = self._states[dest]
        now = time.monotonic()
        if now >= state.next_trim:
            self._maintain(dest, state, now)
        claimed: list[tuple[int, bytes, Any, int]] = []
        with state.lock:
            if not state.recovered:
                claimed += self._recover(dest, state, max_n)
            if len(claimed) < max_n and state.retries:
                claimed += self._due_retries(dest, state, max_n - len(claimed))
            if len(claimed) < max_n and now >= state.next_claim:
                claimed += self._autoclaim(dest, state, max_n - len(claimed))
                state.next_claim = now + min(self.claim_idle / 2, 5.0)
        entries = self._check_claimed(dest, claimed) if claimed else []
        budget = max_n - len(entries)
        if budget <= 0:
            return self._deliver(dest, entries)
        ordered = not entries
        entries += self._read_script(dest, budget)
        return self._deliver(dest, entries, ordered=ordered)

    def _read_script(self, dest: Tract, budget: int) -> list[tuple[int, bytes, Any, int]]:
        """New entries, highest band first, claims and duplicates in one round trip (READ)."""
        fresh = self._script(
            "READ",
            self._bands_and_counters(dest),
            [self.group, self.consumer, self.keys.done_prefix(dest), self.dedupe_ttl, budget],
            "read",
            dest,
            reads=True,
        )
        entries: list[tuple[int, bytes, Any, int]] = []
        for j in range(0, len(fresh), 3):
            band, got, skipped = int(fresh[j]), fresh[j + 1], fresh[j + 2]
            if skipped:
                drop = {int(k) - 1 for k in skipped}
                got = [e for k, e in enumerate(got) if k not in drop]
            entries += [(band, e[0], e[1], 0) for e in got]
        return entries

    def _blocking_read(self, dest: Tract, max_n: int, block_ms: int) -> list[Message]:
        bands = self.keys.bands(dest)
        reply = self._call(
            lambda: self._client.xreadgroup(
                self.group, self.consumer, {k: ">" for k in bands}, count=max_n, block=block_ms
            ),
            "blocking read",
            dest,
            reads=True,
        )
        if not reply:
            return []
        index = {k.encode(): i + 1 for i, k in enumerate(bands)}
        got = [
            (index[stream if isinstance(stream, bytes) else stream.encode()], eid, fields, 0)
            for stream, entries in reply
            for eid, fields in entries
        ]
        return self._deliver(dest, self._check_claimed(dest, got))

    def _recover(
        self, dest: Tract, state: _DestinationState, budget: int
    ) -> list[tuple[int, bytes, Any, int]]:
        """This consumer's own pending entries not being handled now: left by a previous run
        under the same name, or by a read whose reply was lost."""
        bands = self.keys.bands(dest)
        out: list[tuple[int, bytes, Any, int]] = []
        for i, key in enumerate(bands, start=1):
            if len(out) >= budget:
                return out
            pending = self._call(
                lambda key=key: self._client.xpending_range(
                    key,
                    self.group,
                    "-",
                    "+",
                    budget - len(out) + len(self._inflight_entries) + len(state.retries),
                    consumername=self.consumer,
                ),
                "XPENDING",
                dest,
            )
            retrying = {r.eid for r in state.retries}
            for p in pending:
                eid = p["message_id"]
                if (dest, i, eid) in self._inflight_entries or eid in retrying:
                    continue
                entries = self._call(
                    lambda key=key, eid=eid: self._client.xclaim(
                        key, self.group, self.consumer, 0, [eid]
                    ),
                    "XCLAIM",
                    dest,
                )
                for entry_id, fields in entries:
                    if fields is None:  # trimmed or deleted: nothing left to deliver
                        self._client.xack(key, self.group, entry_id)
                        continue
                    out.append((i, entry_id, fields, int(p["times_delivered"])))
                if len(out) >= budget:
                    return out
        state.recovered = True
        return out

    def _due_retries(
        self, dest: Tract, state: _DestinationState, budget: int
    ) -> list[tuple[int, bytes, Any, int]]:
        now = time.monotonic()
        out: list[tuple[int, bytes, Any, int]] = []
        bands = self.keys.bands(dest)
        while state.retries and state.retries[0].due <= now and len(out) < budget:
            retry = heapq.heappop(state.retries)
            key = bands[retry.band - 1]
            # min-idle: if another consumer took the entry over since the nack, it is theirs.
            min_idle = max(0, int((now - retry.nacked_at) * 1000) - 50)
            entries = self._call(
                lambda key=key, min_idle=min_idle, eid=retry.eid: self._client.xclaim(
                    key, self.group, self.consumer, min_idle, [eid]
                ),
                "XCLAIM",
                dest,
            )
            for entry_id, fields in entries:
                if fields is not None:
                    out.append((retry.band, entry_id, fields, retry.attempts))
        return out

    def _autoclaim(
        self, dest: Tract, state: _DestinationState, budget: int
    ) -> list[tuple[int, bytes, Any, int]]:
        """Entries a silent consumer left pending for over ``claim_idle`` seconds."""
        out: list[tuple[int, bytes, Any, int]] = []
        idle_ms = int(self.claim_idle * 1000)
        for i, key in enumerate(self.keys.bands(dest), start=1):
            if len(out) >= budget:
                break
            start = state.claim_cursor.get(i, b"0-0")
            reply = self._call(
                lambda key=key, start=start: self._client.xautoclaim(
                    key, self.group, self.consumer, idle_ms, start, count=budget - len(out)
                ),
                "XAUTOCLAIM",
                dest,
            )
            cursor, entries = reply[0], reply[1]
            state.claim_cursor[i] = cursor if cursor not in (b"0-0", "0-0") else b"0-0"
            mine = [(eid, f) for eid, f in entries if (dest, i, eid) not in self._inflight_entries]
            if not mine:
                continue
            with self._client.pipeline(transaction=False) as pipe:
                for eid, _ in mine:
                    pipe.xpending_range(key, self.group, eid, eid, 1)
                counts = self._call(pipe.execute, "XPENDING", dest)
            for (eid, fields), info in zip(mine, counts):
                delivered = int(info[0]["times_delivered"]) if info else 1
                out.append((i, eid, fields, max(0, delivered - 1)))
            log.info(
                "took over %d entries of %s left pending by silent consumers", len(mine), dest.value
            )
        return out

    def _check_claimed(
        self, dest: Tract, claimed: list[tuple[int, bytes, Any, int]]
    ) -> list[tuple[int, bytes, Any, int]]:
        """Dedupe decisions for entries not read by READ; dead-letters exhausted ones."""
        if not claimed:
            return []
        args: list[Any] = [self.group, self.consumer, self.keys.done_prefix(dest), self.dedupe_ttl]
        for band, eid, fields, _ in claimed:
            mid = _fields(fields).get(FIELD_ID, b"")
            args += (band, eid, mid)
        verdicts = self._script(
            "CLAIM_CHECK", self._bands_and_counters(dest), args, "claim check", dest
        )
        keep, exhausted = [], []
        for entry, verdict in zip(claimed, verdicts):
            if int(verdict) != 1:
                with self._lock:
                    self._counters[dest]["duplicates"] += 1
                continue
            if entry[3] >= self.max_attempts:
                exhausted.append(entry)
            else:
                keep.append(entry)
        if exhausted:
            self._dead_letter(
                dest,
                [
                    (
                        band,
                        eid,
                        _fields(f).get(FIELD_ID, b"").decode("ascii", "replace"),
                        attempts,
                        f"delivered {attempts} times without being acknowledged (consumer crashes?)",
                    )
                    for band, eid, f, attempts in exhausted
                ],
            )
        return keep

    def _deliver(
        self, dest: Tract, entries: list[tuple[int, bytes, Any, int]], ordered: bool = False
    ) -> list[Message]:
        """Decodes entries into messages and puts them in flight. ``ordered``: the entries are
        already in delivery order (one READ: bands highest first, stream order within)."""
        if not entries:
            return []
        if not ordered:
            entries.sort(key=lambda e: (e[0], _eid_key(e[1])))
        out: list[Message] = []
        bad: list[tuple[int, bytes, str, int, str]] = []
        dup_in_process: list[tuple[int, bytes]] = []
        redelivered = 0
        new_delivery = tuple.__new__
        with self._lock:
            inflight = self._inflight
            inflight_entries = self._inflight_entries
            for entry in entries:
                band, eid, fields, attempts = entry
                try:
                    message = from_wire(fields, attempts)
                except InvalidInputError as exc:
                    mid = _fields(fields).get(FIELD_ID, b"").decode("ascii", "replace")
                    bad.append((band, eid, mid, attempts + 1, f"undecodable: {exc}"))
                    continue
                uid = message.uid
                if uid in inflight:
                    if (dest, band, eid) not in inflight_entries:
                        dup_in_process.append((band, eid))
                    # else: this very entry, read by a call whose reply was lost and
                    # recovered meanwhile by another thread, which is handling it.
                    continue
                inflight[uid] = new_delivery(_Delivery, (dest, band, eid, message._id, attempts))
                inflight_entries.add((dest, band, eid))
                if attempts:
                    redelivered += 1
                out.append(message)
            counters = self._counters[dest]
            counters["delivered"] += len(out)
            counters["redelivered"] += redelivered
            self._record_latencies(dest, out)
        if bad:
            self._dead_letter(dest, bad)
        for band, eid in dup_in_process:
            # A second entry of a message this router is handling right now.
            key = self.keys.bands(dest)[band - 1]
            self._call(
                lambda key=key, eid=eid: self._client.xack(key, self.group, eid), "XACK", dest
            )
            with self._lock:
                self._counters[dest]["duplicates"] += 1
        return out

    def _record_latencies(self, dest: Tract, messages: list[Message]) -> None:
        """Publish-to-delivery latency (wall clocks of producer and consumer) into the
        histogram; vectorised for batches. Called with the lock held."""
        if not messages:
            return
        now = time.time()
        hist = self._hist[dest]
        if len(messages) < 16:
            for m in messages:
                latency = max(0.0, now - m.created_at)
                hist[bisect_left(self._bounds, latency)] += 1
                self._latency_sum[dest] += latency
            return
        created = np.fromiter(
            (m.created_at for m in messages), dtype=np.float64, count=len(messages)
        )
        latencies = np.maximum(now - created, 0.0)
        counts = np.bincount(
            np.searchsorted(self._bounds_array, latencies, side="left"), minlength=len(hist)
        )
        for i, c in enumerate(counts.tolist()):
            hist[i] += c
        self._latency_sum[dest] += float(latencies.sum())

    # ------------------------------------------------------------------ settling

    def _take_deliveries(
        self, messages: Message | Iterable[Message]
    ) -> dict[Tract, list[tuple[int, _Delivery]]]:
        """Takes messages out of flight for an ack or a nack. Their entries stay marked as
        held (``_inflight_entries``) until :meth:`_settle` is called: until the ack commits,
        an entry is still pending in Redis, and a recovery of this consumer's pending
        entries (after an outage, in another thread) must not hand it out a second time."""
        msgs = as_message_list(messages)
        by_dest: dict[Tract, list[tuple[int, _Delivery]]] = {}
        with self._lock:
            for m in msgs:
                d = self._inflight.pop(m.uid, None)
                if d is None:
                    continue  # acked already, or not delivered by this router
                by_dest.setdefault(d.destination, []).append((m.uid, d))
        return by_dest

    def _settle(self, by_dest: dict[Tract, list[tuple[int, _Delivery]]]) -> None:
        """The entries taken are acknowledged, scheduled for a retry or dead-lettered."""
        with self._lock:
            for deliveries in by_dest.values():
                for _, d in deliveries:
                    self._inflight_entries.discard((d.destination, d.band, d.eid))

    def _restore_deliveries(self, by_dest: dict[Tract, list[tuple[int, _Delivery]]]) -> None:
        """Puts deliveries back in flight after an acknowledgement failed to reach Redis."""
        with self._lock:
            for deliveries in by_dest.values():
                for uid, d in deliveries:
                    self._inflight[uid] = d

    def _release(self, messages: list[Message]) -> None:
        """After an ack or nack that could not reach Redis: the entries stay pending there;
        this router stops holding them and recovers its pending entries at the next read (a
        commit that was applied after all has marked its records, so it is not applied again)."""
        self._settle(self._take_deliveries(messages))
        for dest in {m.destination for m in messages}:
            self._states[dest].recovered = False

    def ack(self, messages: Message | Iterable[Message], *, commit: Commit | None = None) -> None:
        taken = self._take_deliveries(messages)
        if not taken:
            if commit is not None:
                log.warning(
                    "ack(commit=...) for messages this router does not hold: commit skipped"
                )
            return
        by_dest = {dest: [d for _, d in items] for dest, items in taken.items()}
        try:
            if commit is None:
                for dest, deliveries in by_dest.items():
                    self._commit(dest, deliveries)
            else:
                self._commit_with_effects(by_dest, commit)
        except TransportError:
            self._restore_deliveries(taken)
            raise
        except BaseException:
            self._settle(taken)  # e.g. the commit callable failed: redelivered after claim_idle
            raise
        self._settle(taken)

    def _commit(self, dest: Tract, deliveries: list[_Delivery]) -> None:
        """One pipeline: an XACK per band with all its entry ids, then the counter. The dedupe
        records need no update (they name the entries that carry the messages)."""
        bands = self.keys.bands(dest)
        by_band: dict[int, list[bytes]] = {}
        for d in deliveries:
            by_band.setdefault(d.band, []).append(d.eid)

        counters = self.keys.counters(dest)

        def run() -> int:
            with self._client.pipeline(transaction=False) as pipe:
                for band, ids in by_band.items():
                    for k in range(0, len(ids), 1000):
                        pipe.xack(bands[band - 1], self.group, *ids[k : k + 1000])
                pipe.hincrby(counters, "acked", len(deliveries))
                replies = pipe.execute()
            acked = sum(int(n) for n in replies[:-1])
            if acked < len(deliveries):  # some were acked already: correct the counter
                self._client.hincrby(counters, "acked", acked - len(deliveries))
            return acked

        acked = self._call(run, "ack", dest)
        with self._lock:
            self._counters[dest]["acked"] += acked
        if acked < len(deliveries):
            # Acked before: by this consumer's retried call, or by another consumer that took
            # the entries over while this one was silent for over claim_idle (the handler ran
            # twice then; the message is done either way).
            log.info(
                "%d of %d acks on %s were acked already",
                len(deliveries) - acked,
                len(deliveries),
                dest.value,
            )

    def _commit_with_effects(self, by_dest: dict[Tract, list[_Delivery]], commit: Commit) -> None:
        """WATCH the dedupe records, check they still name this consumer, then MULTI: the
        caller's writes + XACK + counters + the records marked committed, EXEC. A concurrent
        change (a takeover) aborts EXEC and the check runs again; entries taken over are left
        to their new holder, and then the caller's writes are not applied at all.

        The committed mark (``<stream>|<entry>|<consumer>|done``) makes the transaction
        idempotent: when Redis executed it but its reply was lost (Redis killed after the AOF
        write, a broken connection), the retry finds every record marked and stops there
        instead of applying the caller's writes a second time. Any copy delivered later is a
        duplicate (``claim()`` matches no carrier in a marked record)."""
        mine = {
            self.keys.done(
                dest, d.mid
            ): f"{self.keys.bands(dest)[d.band - 1]}|{d.eid.decode()}|{self.consumer}".encode()
            for dest, deliveries in by_dest.items()
            for d in deliveries
        }
        committed = {key: value + b"|done" for key, value in mine.items()}

        def transaction() -> str:
            with self._client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(*mine)
                        current = pipe.mget(list(mine))
                        if all(cur == done for cur, done in zip(current, committed.values())):
                            pipe.unwatch()
                            return "committed before"
                        if any(
                            cur not in (want, None) for cur, want in zip(current, mine.values())
                        ):
                            pipe.unwatch()
                            return "taken over"
                        pipe.multi()
                        commit(pipe)
                        for key, done in committed.items():
                            pipe.set(key, done, ex=self.dedupe_ttl)
                        for dest, deliveries in by_dest.items():
                            bands = self.keys.bands(dest)
                            for d in deliveries:
                                pipe.xack(bands[d.band - 1], self.group, d.eid)
                            pipe.hincrby(self.keys.counters(dest), "acked", len(deliveries))
                        pipe.execute()
                        return "committed"
                    except redis.WatchError:
                        continue

        outcome = self._call(transaction, "ack transaction")
        if outcome == "committed before":
            log.info(
                "ack transaction of %d entries had been applied already (its reply was lost); "
                "not applied again",
                len(mine),
            )
        if outcome != "taken over":
            with self._lock:
                for dest, deliveries in by_dest.items():
                    self._counters[dest]["acked"] += len(deliveries)
        else:
            log.warning(
                "ack with commit skipped: another consumer took over some of these %d entries "
                "(silent for over claim_idle=%gs); they are redelivered there, and the commit "
                "writes were not applied",
                len(mine),
                self.claim_idle,
            )

    def nack(
        self, messages: Message | Iterable[Message], error: BaseException | str | None = None
    ) -> None:
        reason = (
            error
            if isinstance(error, str)
            else (f"{type(error).__name__}: {error}" if error is not None else "nacked")
        )
        taken = self._take_deliveries(messages)
        now = time.monotonic()
        for dest, items in taken.items():
            deliveries = [d for _, d in items]
            dead = []
            state = self._states[dest]
            with self._lock:
                self._counters[dest]["nacked"] += len(deliveries)
            for d in deliveries:
                attempts = d.attempts + 1
                if attempts >= self.max_attempts:
                    dead.append((d.band, d.eid, d.mid, attempts, reason))
                else:
                    delay = min(self.retry_delay * (2**d.attempts), MAX_RETRY_DELAY)
                    with state.lock:
                        heapq.heappush(
                            state.retries, _Retry(now + delay, d.band, d.eid, attempts, now)
                        )
            if dead:
                try:
                    self._dead_letter(dest, dead)
                finally:
                    self._settle({dest: items})
            else:
                self._settle({dest: items})

    def _dead_letter(self, dest: Tract, items: list[tuple[int, bytes, str, int, str]]) -> None:
        args: list[Any] = [
            self.group,
            self.consumer,
            self.keys.done_prefix(dest),
            self.dedupe_ttl,
            self.dead_letter_cap,
            f"{time.time():.6f}",
        ]
        for band, eid, mid, attempts, reason in items:
            args += (band, eid, mid, attempts, reason[:2000])
        keys = [*self.keys.bands(dest), self.keys.dead(dest), self.keys.counters(dest)]
        verdicts = self._script("DEAD_LETTER", keys, args, "dead-letter", dest)
        moved = sum(1 for v in verdicts if int(v) == 1)  # 2: moved by an earlier (retried) call
        with self._lock:
            self._counters[dest]["dead_lettered"] += moved
        for (_, _, mid, attempts, reason), v in zip(items, verdicts):
            if int(v) == 1:
                log.warning(
                    "message %s to %s dead-lettered after %d attempts: %s",
                    mid,
                    dest.value,
                    attempts,
                    reason,
                )

    # ------------------------------------------------------------------ maintenance

    def _maintain(self, dest: Tract, state: _DestinationState, now: float) -> None:
        """Trims acknowledged entries; forgets consumers that are long gone."""
        state.next_trim = now + self.trim_interval
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key in self.keys.bands(dest):
                    self._scripts["TRIM"](keys=[key], client=pipe)
                self._call(pipe.execute, "trim", dest)
            if now >= state.next_cleanup:
                state.next_cleanup = now + 60.0
                self._forget_gone_consumers(dest)
        except (TransportError, RouterClosedError) as exc:
            log.debug("maintenance of %s skipped: %s", dest.value, exc)

    def _forget_gone_consumers(self, dest: Tract, idle_hours: float = 24.0) -> None:
        limit = idle_hours * 3600 * 1000
        for key in self.keys.bands(dest):
            try:
                consumers = self._client.xinfo_consumers(key, self.group)
            except redis.RedisError:
                continue
            for c in consumers:
                name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
                if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) > limit:
                    self._client.xgroup_delconsumer(key, self.group, name)

    def trim(self, destination: Tract | str) -> int:
        """Removes acknowledged entries of ``destination`` now; returns how many."""
        dest = Tract.coerce(destination)
        total = 0
        for key in self.keys.bands(dest):
            total += int(self._script("TRIM", [key], [], "trim", dest))
        return total

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self, timeout: float | None = None) -> bool:
        wait = check_timeout(timeout)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            stats = self._server_view()
            if all(s["lag"] == 0 and s["pending"] == 0 for s in stats.values()):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def close(self, timeout: float | None = 5.0) -> list[Message]:
        if self._closed:
            return []
        self._closed = True
        self._stop_subscriptions(timeout)
        COLLECTOR.retire(self)
        if self._owns_client:
            try:
                self._client.close()
            except redis.RedisError:
                pass
        return []

    # ------------------------------------------------------------------ introspection

    def _server_view(self) -> dict[Tract, dict[str, Any]]:
        """Per destination: lag (undelivered), pending, depth by band, dead letters, counters."""

        def read() -> list[Any]:
            with self._client.pipeline(transaction=False) as pipe:
                for dest in TRACTS:
                    for key in self.keys.bands(dest):
                        pipe.xinfo_groups(key)
                        pipe.xlen(key)
                    pipe.xlen(self.keys.dead(dest))
                    pipe.hgetall(self.keys.counters(dest))
                return pipe.execute(raise_on_error=False)

        replies = self._call(read, "stats")
        out: dict[Tract, dict[str, Any]] = {}
        i = 0
        group = self.group.encode()
        for dest in TRACTS:
            lags, pending = [], 0
            for _ in range(PRIORITY_LEVELS):
                groups, length = replies[i], replies[i + 1]
                i += 2
                length = 0 if isinstance(length, Exception) else int(length)
                info = None
                if not isinstance(groups, Exception):
                    for g in groups:
                        if g.get("name") in (group, self.group):
                            info = g
                if info is None:
                    lags.append(length)  # no group yet: everything waits
                    continue
                lag = info.get("lag")
                lags.append(
                    int(lag) if lag is not None else max(0, length - int(info.get("pending", 0)))
                )
                pending += int(info.get("pending", 0))
            dead = replies[i]
            counters = replies[i + 1]
            i += 2
            out[dest] = {
                # bands are highest first; report per priority 0..9
                "depths": list(reversed(lags)),
                "lag": sum(lags),
                "pending": pending,
                "dead": 0 if isinstance(dead, Exception) else int(dead),
                "counters": {}
                if isinstance(counters, Exception)
                else {k.decode(): int(v) for k, v in counters.items()},
            }
        return out

    def stats(self) -> RouterStats:
        view = self._server_view()
        out: dict[str, DestinationStats] = {}
        with self._lock:
            for dest in TRACTS:
                server = view[dest]
                local = self._counters[dest]
                p50, p95, p99 = histogram_percentiles(self._bounds, self._hist[dest])
                out[dest.value] = DestinationStats(
                    destination=dest.value,
                    depth=server["lag"],
                    depth_by_priority=server["depths"],
                    in_flight=server["pending"],
                    published=server["counters"].get("published", 0),
                    delivered=local["delivered"],
                    acked=server["counters"].get("acked", 0),
                    nacked=local["nacked"],
                    redelivered=local["redelivered"],
                    dead_lettered=server["counters"].get("dead_lettered", 0),
                    dead_letter_depth=server["dead"],
                    duplicates=server["counters"].get("duplicates", 0),
                    rejected=local["rejected"],
                    latency_p50_ms=p50,
                    latency_p95_ms=p95,
                    latency_p99_ms=p99,
                    runtime="redis",
                )
        extra = {
            "group": self.group,
            "consumer": self.consumer,
            "prefix": self.keys.prefix,
            "note": "published/acked/dead_lettered/duplicates and depths are totals in Redis; "
            "delivered/nacked/redelivered/rejected and latency are this process's",
        }
        return RouterStats(self.transport, self.url, out, extra)

    def consumers(self, destination: Tract | str) -> list[dict[str, Any]]:
        """The group's consumers of ``destination``: name, pending entries, idle ms."""
        dest = Tract.coerce(destination)
        merged: dict[str, dict[str, Any]] = {}
        for key in self.keys.bands(dest):
            try:
                consumers = self._call(
                    lambda key=key: self._client.xinfo_consumers(key, self.group), "XINFO", None
                )
            except TransportError:
                continue
            for c in consumers:
                name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
                entry = merged.setdefault(
                    name, {"name": name, "pending": 0, "idle_ms": int(c["idle"])}
                )
                entry["pending"] += int(c["pending"])
                entry["idle_ms"] = min(entry["idle_ms"], int(c["idle"]))
        return sorted(merged.values(), key=lambda c: c["name"])

    def metric_snapshot(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        if now - self._depth_cache_at > 1.0 and not self._closed:
            self._depth_cache_at = now
            try:
                view = self._server_view_quick()
                self._depth_cache = {d: (v["depths"], v["pending"]) for d, v in view.items()}
            except Exception:  # a scrape must never fail because Redis is down
                pass
        with self._lock:
            return {
                dest.value: {
                    "depths": self._depth_cache.get(dest, ([0] * PRIORITY_LEVELS, 0))[0],
                    "in_flight": self._depth_cache.get(dest, ([0] * PRIORITY_LEVELS, 0))[1],
                    "counters": dict(self._counters[dest]),
                    "histogram": (
                        list(self._bounds),
                        list(self._hist[dest]),
                        self._latency_sum[dest],
                    ),
                }
                for dest in TRACTS
            }

    def _server_view_quick(self) -> dict[Tract, dict[str, Any]]:
        saved = self.retry_timeout
        self.retry_timeout = 0.0
        try:
            return self._server_view()
        finally:
            self.retry_timeout = saved

    def dead_letters(self, destination: Tract | str, limit: int = 100) -> list[DeadLetter]:
        dest = Tract.coerce(destination)
        limit = check_max_n(limit)
        entries = self._call(
            lambda: self._client.xrange(self.keys.dead(dest), count=limit), "XRANGE", dest
        )
        out = []
        for ref, fields in entries:
            try:
                message: Message | None = from_wire(fields, int(fields.get(b"attempts", 0)))
            except InvalidInputError:
                message = None
            out.append(
                DeadLetter(
                    message=message,
                    reason=fields.get(b"reason", b"").decode("utf-8", "replace"),
                    attempts=int(fields.get(b"attempts", 0)),
                    dead_at=float(fields.get(b"dead_at", 0) or 0),
                    raw={k.decode("utf-8", "replace"): v for k, v in fields.items()},
                    ref=ref.decode(),
                )
            )
        return out

    def requeue_dead_letters(self, destination: Tract | str, limit: int | None = None) -> int:
        """Publishes dead letters again (attempts reset, dedupe record cleared) and removes
        them from the dead-letter stream; returns how many."""
        dest = Tract.coerce(destination)
        letters = self.dead_letters(dest, limit or 1_000_000)
        count = 0
        for letter in letters:
            if letter.message is None:
                continue
            message = letter.message.replace(attempts=0)
            done_key = self.keys.done(dest, message.id)
            self._call(lambda key=done_key: self._client.delete(key), "DEL", dest)
            self.publish(message)
            self._call(
                lambda letter=letter: self._client.xdel(self.keys.dead(dest), letter.ref),
                "XDEL",
                dest,
            )
            count += 1
        return count

    def __repr__(self) -> str:
        return f"<RedisStreamsRouter {self.url} group={self.group} consumer={self.consumer}>"


__all__ = ["RedisStreamsRouter"]
