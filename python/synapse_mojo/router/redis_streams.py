"""The durable transport: Redis Streams, across processes and machines.

    router = RedisStreamsRouter("redis://127.0.0.1:6379/0")   # or open_router("redis://...")
    router.send(Tract.INTERNAL, Tract.EXTERNAL, {"task": "plan"}, priority=Priority.HIGH)
    router.subscribe(Tract.EXTERNAL, handle)                    # in the consuming process

This module publishes, reads and acknowledges; the rest of the transport lives beside it:

* :mod:`.redis_connection`: the client, its scripts and names, and the call that retries outages;
* :mod:`.redis_recovery`: pending entries (held marks, recovery after an outage, takeover from
  silent consumers, retries, dead letters) and the exactly-once commit;
* :mod:`.redis_introspection`: stats, consumers, metrics, dead-letter listing;
* :mod:`.redis_keys`: key layout (one stream per destination and priority band, one consumer
  group, dedupe records, dead letters, counters); :mod:`.redis_scripts`: server-side logic;
  :mod:`.redis_wire`: how a message is written to a stream entry.

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

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any

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
from .base import (
    BACKPRESSURE_POLICIES,
    Commit,
    DeadLetter,
    Router,
    RouterStats,
    as_message_list,
    check_max_n,
    check_timeout,
)
from .message import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    HARD_MAX_PAYLOAD_BYTES,
    Message,
    Tract,
    fill_ids,
)
from .metrics import COLLECTOR
from .redis_connection import (
    DestinationState,
    Entry,
    Reread,
    StreamsConnection,
    band_index,
    entry_fields,
    text,
)
from .redis_introspection import LocalTally, StreamsIntrospection
from .redis_keys import DEFAULT_GROUP, DEFAULT_PREFIX, Keys, check_name
from .redis_recovery import Delivery, PendingRecovery
from .redis_wire import FIELD_ID, from_wire, wire_parts

log = logging.getLogger("synapse_mojo.router")

#: Messages per PUBLISH script call (keeps each script's time in Redis short).
PUBLISH_CHUNK = 512
#: Longest single blocking read; consume() loops, so closing is noticed within this.
MAX_BLOCK_MS = 500


def _eid_key(eid: bytes) -> tuple[int, int]:
    ms, _, seq = eid.partition(b"-")
    return int(ms), int(seq or 0)


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
                f"max_payload_bytes must be an int in 1..{HARD_MAX_PAYLOAD_BYTES}, "
                f"got {max_payload_bytes!r}"
            )
        self.claim_idle = float(claim_idle)
        self.retry_delay = float(retry_delay)
        self.dedupe_ttl = dedupe_ttl
        self.max_backlog = max_backlog
        self.backpressure = backpressure
        self.publish_timeout = float(publish_timeout)
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
                    # reaches StreamsConnection.call, which retries each operation safely.
                    retry=Retry(NoBackoff(), 0),
                )
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"invalid Redis URL {parsed.redacted()!r}: {scrub(str(exc), parsed)}"
                ) from exc
            self.url = parsed.redacted()  # safe to show: the password is ***
        self._conn = StreamsConnection(
            self._client,
            owns_client=client is None,
            url=self.url,
            keys=self.keys,
            group=self.group,
            consumer=self.consumer,
            retry_timeout=float(retry_timeout),
        )
        self._states = self._conn.states
        #: Guards the held messages (``_recovery.held``) and the tally together.
        self._lock = threading.Lock()
        self._tally = LocalTally(self._lock)
        self._recovery = PendingRecovery(
            self._conn,
            self._tally,
            max_attempts=self.max_attempts,
            claim_idle=self.claim_idle,
            retry_delay=self.retry_delay,
            dedupe_ttl=self.dedupe_ttl,
            dead_letter_cap=self.dead_letter_cap,
        )
        self._introspection = StreamsIntrospection(self._conn, self._tally)
        COLLECTOR.add(self)

    @property
    def retry_timeout(self) -> float:
        """How long calls retry a Redis that is down before ``TransportError`` (seconds)."""
        return self._conn.retry_timeout

    @retry_timeout.setter
    def retry_timeout(self, value: float) -> None:
        self._conn.retry_timeout = float(value)

    def _check_open(self) -> None:
        self._conn.check_open()

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
            keys = self._conn.bands_and_counters(dest)
            for start in range(0, len(group), PUBLISH_CHUNK):
                chunk = group[start : start + PUBLISH_CHUNK]
                args: list[Any] = [self.max_backlog if self.max_backlog is not None else -1]
                for m in chunk:
                    args += (band_index(m.priority), *wire_parts(m))
                self._publish_chunk(dest, keys, args, len(chunk), wait, published)
                published += len(chunk)
                with self._lock:
                    self._tally.counters[dest]["published"] += len(chunk)
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
            result = self._conn.script("PUBLISH", keys, args, "publish", None)
            if int(result[0]) >= 0:
                return
            backlog = int(result[1])
            if self.backpressure == "reject" or (
                deadline is not None and time.monotonic() >= deadline
            ):
                with self._lock:
                    self._tally.counters[dest]["rejected"] += 1
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
        self._conn.ensure_groups(dest)
        deadline = None if wait is None else time.monotonic() + wait
        outage_deadline: float | None = None
        while True:
            try:
                messages = self._fetch(dest, max_n)
            except Reread as exc:
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
            except Reread:
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
        claimed = self._recovery.reclaim(dest, state, max_n, now)
        entries = self._recovery.check_claimed(dest, claimed) if claimed else []
        budget = max_n - len(entries)
        if budget <= 0:
            return self._deliver(dest, entries)
        ordered = not entries
        entries += self._read_script(dest, budget)
        return self._deliver(dest, entries, ordered=ordered)

    def _read_script(self, dest: Tract, budget: int) -> list[Entry]:
        """New entries, highest band first, claims and duplicates in one round trip (READ)."""
        fresh = self._conn.script(
            "READ",
            self._conn.bands_and_counters(dest),
            [self.group, self.consumer, self.keys.done_prefix(dest), self.dedupe_ttl, budget],
            "read",
            dest,
            reads=True,
        )
        entries: list[Entry] = []
        for j in range(0, len(fresh), 3):
            index, got, skipped = int(fresh[j]), fresh[j + 1], fresh[j + 2]
            if skipped:
                drop = {int(k) - 1 for k in skipped}
                got = [e for k, e in enumerate(got) if k not in drop]
            entries += [(index, e[0], e[1], 0) for e in got]
        return entries

    def _blocking_read(self, dest: Tract, max_n: int, block_ms: int) -> list[Message]:
        bands = self.keys.bands(dest)
        streams: dict[Any, Any] = {k: ">" for k in bands}
        reply: Any = self._conn.call(
            partial(
                self._client.xreadgroup,
                self.group,
                self.consumer,
                streams,
                count=max_n,
                block=block_ms,
            ),
            "blocking read",
            dest,
            reads=True,
        )
        if not reply:
            return []
        index = {k: i + 1 for i, k in enumerate(bands)}
        got: list[Entry] = [
            (index[text(stream)], eid, fields, 0)
            for stream, entries in reply
            for eid, fields in entries
        ]
        return self._deliver(dest, self._recovery.check_claimed(dest, got))

    def _deliver(self, dest: Tract, entries: list[Entry], ordered: bool = False) -> list[Message]:
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
            inflight = self._recovery.held
            inflight_entries = self._recovery.held_entries
            for entry in entries:
                band, eid, fields, attempts = entry
                try:
                    message = from_wire(fields, attempts)
                except InvalidInputError as exc:
                    mid = entry_fields(fields).get(FIELD_ID, b"").decode("ascii", "replace")
                    bad.append((band, eid, mid, attempts + 1, f"undecodable: {exc}"))
                    continue
                uid = message.uid
                if uid in inflight:
                    if (dest, band, eid) not in inflight_entries:
                        dup_in_process.append((band, eid))
                    # else: this very entry, read by a call whose reply was lost and
                    # recovered meanwhile by another thread, which is handling it.
                    continue
                inflight[uid] = new_delivery(Delivery, (dest, band, eid, message._id, attempts))
                inflight_entries.add((dest, band, eid))
                if attempts:
                    redelivered += 1
                out.append(message)
            counters = self._tally.counters[dest]
            counters["delivered"] += len(out)
            counters["redelivered"] += redelivered
            self._tally.record_latencies(dest, out)
        if bad:
            self._recovery.dead_letter(dest, bad)
        for band, eid in dup_in_process:
            # A second entry of a message this router is handling right now.
            key = self.keys.bands(dest)[band - 1]
            self._conn.call(partial(self._client.xack, key, self.group, eid), "XACK", dest)
            with self._lock:
                self._tally.counters[dest]["duplicates"] += 1
        return out

    # ------------------------------------------------------------------ settling

    def _release(self, messages: list[Message]) -> None:
        self._recovery.release(messages)

    def ack(self, messages: Message | Iterable[Message], *, commit: Commit | None = None) -> None:
        recovery = self._recovery
        taken = recovery.take(messages)
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
                recovery.commit_with_effects(by_dest, commit)
        except TransportError:
            recovery.restore(taken)
            raise
        except BaseException:
            recovery.settle(taken)  # e.g. the commit callable failed: redelivered after claim_idle
            raise
        recovery.settle(taken)

    def _commit(self, dest: Tract, deliveries: list[Delivery]) -> None:
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

        acked = self._conn.call(run, "ack", dest)
        with self._lock:
            self._tally.counters[dest]["acked"] += acked
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

    def nack(
        self, messages: Message | Iterable[Message], error: BaseException | str | None = None
    ) -> None:
        reason = (
            error
            if isinstance(error, str)
            else (f"{type(error).__name__}: {error}" if error is not None else "nacked")
        )
        recovery = self._recovery
        for dest, items in recovery.take(messages).items():
            deliveries = [d for _, d in items]
            with self._lock:
                self._tally.counters[dest]["nacked"] += len(deliveries)
            try:
                recovery.schedule_retries(dest, deliveries, reason)
            finally:
                recovery.settle({dest: items})

    # ------------------------------------------------------------------ maintenance

    def _maintain(self, dest: Tract, state: DestinationState, now: float) -> None:
        """Trims acknowledged entries; forgets consumers that are long gone."""
        state.next_trim = now + self.trim_interval
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key in self.keys.bands(dest):
                    self._conn.scripts["TRIM"](keys=[key], client=pipe)
                self._conn.call(pipe.execute, "trim", dest)
            if now >= state.next_cleanup:
                state.next_cleanup = now + 60.0
                self._forget_gone_consumers(dest)
        except (TransportError, RouterClosedError) as exc:
            log.debug("maintenance of %s skipped: %s", dest.value, exc)

    def _forget_gone_consumers(self, dest: Tract, idle_hours: float = 24.0) -> None:
        limit = idle_hours * 3600 * 1000
        for key in self.keys.bands(dest):
            try:
                consumers: Any = self._client.xinfo_consumers(key, self.group)
            except redis.RedisError:
                continue
            for c in consumers:
                name = text(c["name"])
                if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) > limit:
                    self._client.xgroup_delconsumer(key, self.group, name)

    def trim(self, destination: Tract | str) -> int:
        """Removes acknowledged entries of ``destination`` now; returns how many."""
        dest = Tract.coerce(destination)
        total = 0
        for key in self.keys.bands(dest):
            total += int(self._conn.script("TRIM", [key], [], "trim", dest))
        return total

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def drain(self, timeout: float | None = None) -> bool:
        wait = check_timeout(timeout)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            stats = self._introspection.server_view()
            if all(s["lag"] == 0 and s["pending"] == 0 for s in stats.values()):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def close(self, timeout: float | None = 5.0) -> list[Message]:
        if self._conn.closed:
            return []
        self._conn.closed = True
        self._stop_subscriptions(timeout)
        COLLECTOR.retire(self)
        if self._conn.owns_client:
            with contextlib.suppress(redis.RedisError):
                self._client.close()
        return []

    # ------------------------------------------------------------------ introspection

    def stats(self) -> RouterStats:
        return self._introspection.stats(self.transport)

    def consumers(self, destination: Tract | str) -> list[dict[str, Any]]:
        """The group's consumers of ``destination``: name, pending entries, idle ms."""
        return self._introspection.consumers(Tract.coerce(destination))

    def metric_snapshot(self) -> dict[str, dict[str, Any]]:
        return self._introspection.metric_snapshot()

    def dead_letters(self, destination: Tract | str, limit: int = 100) -> list[DeadLetter]:
        return self._introspection.dead_letters(Tract.coerce(destination), check_max_n(limit))

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
            self._conn.call(partial(self._client.delete, done_key), "DEL", dest)
            self.publish(message)
            self._conn.call(
                partial(self._client.xdel, self.keys.dead(dest), letter.ref), "XDEL", dest
            )
            count += 1
        return count

    def __repr__(self) -> str:
        return f"<RedisStreamsRouter {self.url} group={self.group} consumer={self.consumer}>"


__all__ = ["RedisStreamsRouter"]
