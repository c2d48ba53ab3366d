"""Pending entries of the Streams transport: what this consumer holds, what it takes back, and
how a holding ends exactly once.

An entry read from a band stream stays in the group's pending list until it is acknowledged.
:class:`PendingRecovery` keeps the rules around that list, which are what makes the transport
lose nothing and process each message once:

* **Held marks.** A delivered message is *held* (``held``: uid -> :class:`Delivery`; and its
  entry in ``held_entries``) until its ack or nack has reached Redis. :meth:`take` ends the
  holding of a message, but its entry stays marked until :meth:`settle`: until the ack commits,
  the entry is still pending in Redis, and a recovery of this consumer's pending entries (after
  an outage, in another thread) must not hand it out a second time.
* **Recovery.** Pending entries of this consumer that nobody here is handling (left by a
  previous run under the same name, or by a read whose reply was lost) are delivered again
  first, in order (:meth:`recover`); nacked entries come back when their retry is due
  (:meth:`due_retries`); entries a silent consumer left pending for over ``claim_idle``
  seconds are taken over (:meth:`autoclaim`).
* **Dedupe.** Every entry that was not read by the READ script passes the CLAIM_CHECK script
  (:meth:`check_claimed`): a copy of a message whose dedupe record names another entry is a
  duplicate and is acked without being delivered; an entry delivered ``max_attempts`` times
  goes to the dead letters (:meth:`dead_letter`).
* **Exactly-once commit.** :meth:`commit_with_effects` applies the caller's writes, the acks and
  the dedupe records in one transaction that is safe to retry after a lost reply.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterable
from functools import partial
from typing import Any, NamedTuple

import redis

from .base import Commit, as_message_list
from .message import Message, Tract
from .redis_connection import DestinationState, Entry, Retry, StreamsConnection, entry_fields
from .redis_introspection import LocalTally
from .redis_wire import FIELD_ID

log = logging.getLogger("synapse_mojo.router")

#: Retry delay cap after repeated handler failures.
MAX_RETRY_DELAY = 60.0

#: Items for the DEAD_LETTER script: (band, entry id, message id, attempts, reason).
DeadItem = tuple[int, bytes, str, int, str]


class Delivery(NamedTuple):
    """Where a message in flight came from (built with tuple.__new__: several times cheaper
    than a dataclass per delivered message)."""

    destination: Tract
    band: int  # 1-based, see redis_connection.band_index_index
    eid: bytes
    mid: str
    attempts: int


#: Held deliveries taken for an ack or a nack, by destination: (message uid, delivery).
Taken = dict[Tract, list[tuple[int, Delivery]]]


class PendingRecovery:
    """This consumer's pending entries (see the module docstring). ``lock`` is the router's
    lock: it guards the held marks and the tally together."""

    def __init__(
        self,
        conn: StreamsConnection,
        tally: LocalTally,
        *,
        max_attempts: int,
        claim_idle: float,
        retry_delay: float,
        dedupe_ttl: int,
        dead_letter_cap: int,
    ) -> None:
        self.conn = conn
        self.tally = tally
        self.lock: threading.Lock = tally.lock
        self.max_attempts = max_attempts
        self.claim_idle = claim_idle
        self.retry_delay = retry_delay
        self.dedupe_ttl = dedupe_ttl
        self.dead_letter_cap = dead_letter_cap
        #: Messages delivered by this router and not yet acked or nacked, by uid.
        self.held: dict[int, Delivery] = {}
        #: Entries of held messages, and of messages whose ack or nack is under way.
        self.held_entries: set[tuple[Tract, int, bytes]] = set()

    # ------------------------------------------------------------------ taking entries back

    def reclaim(self, dest: Tract, state: DestinationState, max_n: int, now: float) -> list[Entry]:
        """Up to ``max_n`` entries to deliver again before new ones: this consumer's own
        pending entries after an outage, due retries, then entries taken over from silent
        consumers (at most every ``min(claim_idle / 2, 5)`` seconds). Not yet checked: pass
        them through :meth:`check_claimed`."""
        claimed: list[Entry] = []
        with state.lock:
            if not state.recovered:
                claimed += self.recover(dest, state, max_n)
            if len(claimed) < max_n and state.retries:
                claimed += self.due_retries(dest, state, max_n - len(claimed))
            if len(claimed) < max_n and now >= state.next_claim:
                claimed += self.autoclaim(dest, state, max_n - len(claimed))
                state.next_claim = now + min(self.claim_idle / 2, 5.0)
        return claimed

    def recover(self, dest: Tract, state: DestinationState, budget: int) -> list[Entry]:
        """This consumer's own pending entries not being handled now: left by a previous run
        under the same name, or by a read whose reply was lost."""
        conn = self.conn
        client = conn.client
        out: list[Entry] = []
        for i, key in enumerate(conn.keys.bands(dest), start=1):
            if len(out) >= budget:
                return out
            count = budget - len(out) + len(self.held_entries) + len(state.retries)
            pending: Any = conn.call(
                partial(
                    client.xpending_range,
                    key,
                    conn.group,
                    "-",
                    "+",
                    count,
                    consumername=conn.consumer,
                ),
                "XPENDING",
                dest,
            )
            retrying = {r.eid for r in state.retries}
            for p in pending:
                eid = p["message_id"]
                if (dest, i, eid) in self.held_entries or eid in retrying:
                    continue
                entries = self._xclaim(key, 0, eid, dest)
                for entry_id, fields in entries:
                    if fields is None:  # trimmed or deleted: nothing left to deliver
                        client.xack(key, conn.group, entry_id)
                        continue
                    out.append((i, entry_id, fields, int(p["times_delivered"])))
                if len(out) >= budget:
                    return out
        state.recovered = True
        return out

    def due_retries(self, dest: Tract, state: DestinationState, budget: int) -> list[Entry]:
        """Nacked entries whose retry delay has passed (still pending on this consumer)."""
        now = time.monotonic()
        out: list[Entry] = []
        bands = self.conn.keys.bands(dest)
        while state.retries and state.retries[0].due <= now and len(out) < budget:
            retry = heapq.heappop(state.retries)
            key = bands[retry.band - 1]
            # min-idle: if another consumer took the entry over since the nack, it is theirs.
            min_idle = max(0, int((now - retry.nacked_at) * 1000) - 50)
            for entry_id, fields in self._xclaim(key, min_idle, retry.eid, dest):
                if fields is not None:
                    out.append((retry.band, entry_id, fields, retry.attempts))
        return out

    def _xclaim(
        self, key: str, min_idle: int, eid: bytes, dest: Tract
    ) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """XCLAIM of one entry for this consumer: [(entry id, fields or None if deleted)]."""
        conn = self.conn
        reply: Any = conn.call(
            partial(conn.client.xclaim, key, conn.group, conn.consumer, min_idle, [eid]),
            "XCLAIM",
            dest,
        )
        return list(reply)

    def autoclaim(self, dest: Tract, state: DestinationState, budget: int) -> list[Entry]:
        """Entries a silent consumer left pending for over ``claim_idle`` seconds."""
        conn = self.conn
        out: list[Entry] = []
        idle_ms = int(self.claim_idle * 1000)
        for i, key in enumerate(conn.keys.bands(dest), start=1):
            if len(out) >= budget:
                break
            start = state.claim_cursor.get(i, b"0-0")
            count = budget - len(out)
            reply: Any = conn.call(
                partial(
                    conn.client.xautoclaim,
                    key,
                    conn.group,
                    conn.consumer,
                    idle_ms,
                    start,
                    count=count,
                ),
                "XAUTOCLAIM",
                dest,
            )
            cursor, entries = reply[0], reply[1]
            state.claim_cursor[i] = cursor if cursor not in (b"0-0", "0-0") else b"0-0"
            mine = [(eid, f) for eid, f in entries if (dest, i, eid) not in self.held_entries]
            if not mine:
                continue
            with conn.client.pipeline(transaction=False) as pipe:
                for eid, _ in mine:
                    pipe.xpending_range(key, conn.group, eid, eid, 1)
                counts = conn.call(pipe.execute, "XPENDING", dest)
            for (eid, fields), info in zip(mine, counts, strict=True):
                delivered = int(info[0]["times_delivered"]) if info else 1
                out.append((i, eid, fields, max(0, delivered - 1)))
            log.info(
                "took over %d entries of %s left pending by silent consumers", len(mine), dest.value
            )
        return out

    def check_claimed(self, dest: Tract, claimed: list[Entry]) -> list[Entry]:
        """Dedupe decisions for entries not read by READ; dead-letters exhausted ones."""
        if not claimed:
            return []
        conn = self.conn
        args: list[Any] = [conn.group, conn.consumer, conn.keys.done_prefix(dest), self.dedupe_ttl]
        for band, eid, fields, _ in claimed:
            mid = entry_fields(fields).get(FIELD_ID, b"")
            args += (band, eid, mid)
        verdicts = conn.script(
            "CLAIM_CHECK", conn.bands_and_counters(dest), args, "claim check", dest
        )
        keep, exhausted = [], []
        for entry, verdict in zip(claimed, verdicts, strict=True):
            if int(verdict) != 1:
                with self.lock:
                    self.tally.counters[dest]["duplicates"] += 1
                continue
            if entry[3] >= self.max_attempts:
                exhausted.append(entry)
            else:
                keep.append(entry)
        if exhausted:
            self.dead_letter(
                dest,
                [
                    (
                        band,
                        eid,
                        entry_fields(f).get(FIELD_ID, b"").decode("ascii", "replace"),
                        attempts,
                        f"delivered {attempts} times without being acknowledged "
                        "(consumer crashes?)",
                    )
                    for band, eid, f, attempts in exhausted
                ],
            )
        return keep

    # ------------------------------------------------------------------ failures

    def schedule_retries(self, dest: Tract, deliveries: list[Delivery], reason: str) -> None:
        """After a nack: each delivery comes back after ``retry_delay * 2**attempts`` seconds
        (at most :data:`MAX_RETRY_DELAY`), or goes to the dead letters after ``max_attempts``
        deliveries."""
        state = self.conn.states[dest]
        now = time.monotonic()
        dead: list[DeadItem] = []
        for d in deliveries:
            attempts = d.attempts + 1
            if attempts >= self.max_attempts:
                dead.append((d.band, d.eid, d.mid, attempts, reason))
            else:
                delay = min(self.retry_delay * (2**d.attempts), MAX_RETRY_DELAY)
                with state.lock:
                    heapq.heappush(state.retries, Retry(now + delay, d.band, d.eid, attempts, now))
        if dead:
            self.dead_letter(dest, dead)

    def dead_letter(self, dest: Tract, items: list[DeadItem]) -> None:
        """Moves entries to the dead-letter stream (DEAD_LETTER script: copy, ack, mark the
        dedupe record "dead", in one step)."""
        conn = self.conn
        args: list[Any] = [
            conn.group,
            conn.consumer,
            conn.keys.done_prefix(dest),
            self.dedupe_ttl,
            self.dead_letter_cap,
            f"{time.time():.6f}",
        ]
        for band, eid, mid, attempts, reason in items:
            args += (band, eid, mid, attempts, reason[:2000])
        keys = [*conn.keys.bands(dest), conn.keys.dead(dest), conn.keys.counters(dest)]
        verdicts = conn.script("DEAD_LETTER", keys, args, "dead-letter", dest)
        moved = sum(1 for v in verdicts if int(v) == 1)  # 2: moved by an earlier (retried) call
        with self.lock:
            self.tally.counters[dest]["dead_lettered"] += moved
        for (_, _, mid, attempts, reason), v in zip(items, verdicts, strict=True):
            if int(v) == 1:
                log.warning(
                    "message %s to %s dead-lettered after %d attempts: %s",
                    mid,
                    dest.value,
                    attempts,
                    reason,
                )

    # ------------------------------------------------------------------ held marks

    def take(self, messages: Message | Iterable[Message]) -> Taken:
        """Takes messages out of flight for an ack or a nack. Their entries stay marked as
        held (``held_entries``) until :meth:`settle` is called: until the ack commits, an
        entry is still pending in Redis, and a recovery of this consumer's pending entries
        (after an outage, in another thread) must not hand it out a second time."""
        msgs = as_message_list(messages)
        by_dest: Taken = {}
        with self.lock:
            for m in msgs:
                d = self.held.pop(m.uid, None)
                if d is None:
                    continue  # acked already, or not delivered by this router
                by_dest.setdefault(d.destination, []).append((m.uid, d))
        return by_dest

    def settle(self, by_dest: Taken) -> None:
        """The entries taken are acknowledged, scheduled for a retry or dead-lettered."""
        with self.lock:
            for deliveries in by_dest.values():
                for _, d in deliveries:
                    self.held_entries.discard((d.destination, d.band, d.eid))

    def restore(self, by_dest: Taken) -> None:
        """Puts deliveries back in flight after an acknowledgement failed to reach Redis."""
        with self.lock:
            for deliveries in by_dest.values():
                for uid, d in deliveries:
                    self.held[uid] = d

    def release(self, messages: list[Message]) -> None:
        """After an ack or nack that could not reach Redis: the entries stay pending there;
        this router stops holding them and recovers its pending entries at the next read (a
        commit that was applied after all has marked its records, so it is not applied again)."""
        self.settle(self.take(messages))
        for dest in {m.destination for m in messages}:
            self.conn.states[dest].recovered = False

    # ------------------------------------------------------------------ exactly-once commit

    def commit_with_effects(self, by_dest: dict[Tract, list[Delivery]], commit: Commit) -> None:
        """WATCH the dedupe records, check they still name this consumer, then MULTI: the
        caller's writes + XACK + counters + the records marked committed, EXEC. A concurrent
        change (a takeover) aborts EXEC and the check runs again; entries taken over are left
        to their new holder, and then the caller's writes are not applied at all.

        The committed mark (``<stream>|<entry>|<consumer>|done``) makes the transaction
        idempotent: when Redis executed it but its reply was lost (Redis killed after the AOF
        write, a broken connection), the retry finds every record marked and stops there
        instead of applying the caller's writes a second time. Any copy delivered later is a
        duplicate (``claim()`` matches no carrier in a marked record)."""
        conn = self.conn
        keys = conn.keys
        mine = {
            keys.done(
                dest, d.mid
            ): f"{keys.bands(dest)[d.band - 1]}|{d.eid.decode()}|{conn.consumer}".encode()
            for dest, deliveries in by_dest.items()
            for d in deliveries
        }
        committed = {key: value + b"|done" for key, value in mine.items()}

        def transaction() -> str:
            with conn.client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(*mine)
                        current = pipe.mget(list(mine))
                        if all(
                            cur == done
                            for cur, done in zip(current, committed.values(), strict=True)
                        ):
                            pipe.unwatch()
                            return "committed before"
                        if any(
                            cur not in (want, None)
                            for cur, want in zip(current, mine.values(), strict=True)
                        ):
                            pipe.unwatch()
                            return "taken over"
                        pipe.multi()
                        commit(pipe)
                        for key, done in committed.items():
                            pipe.set(key, done, ex=self.dedupe_ttl)
                        for dest, deliveries in by_dest.items():
                            bands = keys.bands(dest)
                            for d in deliveries:
                                pipe.xack(bands[d.band - 1], conn.group, d.eid)
                            pipe.hincrby(keys.counters(dest), "acked", len(deliveries))
                        pipe.execute()
                        return "committed"
                    except redis.WatchError:
                        continue

        outcome = conn.call(transaction, "ack transaction")
        if outcome == "committed before":
            log.info(
                "ack transaction of %d entries had been applied already (its reply was lost); "
                "not applied again",
                len(mine),
            )
        if outcome != "taken over":
            with self.lock:
                for dest, deliveries in by_dest.items():
                    self.tally.counters[dest]["acked"] += len(deliveries)
        else:
            log.warning(
                "ack with commit skipped: another consumer took over some of these %d entries "
                "(silent for over claim_idle=%gs); they are redelivered there, and the commit "
                "writes were not applied",
                len(mine),
                self.claim_idle,
            )
