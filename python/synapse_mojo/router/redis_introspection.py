"""What the Streams transport can tell about itself: stats, consumers, metrics, dead letters.

Two sources, kept apart in every report:

* **Redis** (totals over every process): published, acked, dead_lettered and duplicates from
  the counters hash; depth by priority (entries not yet delivered to the group), pending
  entries, dead-letter depth; the group's consumers.
* **This process** (:class:`LocalTally`): delivered, nacked, redelivered, rejected, and the
  publish-to-delivery latency histogram (wall clocks of producer and consumer).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from functools import partial
from typing import Any

import numpy as np

from ..errors import InvalidInputError, TransportError
from ..runtime.metrics import LATENCY_BUCKETS
from .base import DeadLetter, DestinationStats, RouterStats, histogram_percentiles
from .message import PRIORITY_LEVELS, TRACTS, Message, Tract
from .metrics import COUNTERS
from .redis_connection import StreamsConnection, text
from .redis_wire import from_wire


class LocalTally:
    """This process's counters and latency histogram per destination, guarded by ``lock``
    (the router's lock, which also guards its held messages)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.counters = {t: dict.fromkeys((name for name, _ in COUNTERS), 0) for t in TRACTS}
        self.bounds = list(LATENCY_BUCKETS)
        self.bounds_array = np.array(self.bounds)
        self.hist = {t: [0] * (len(self.bounds) + 1) for t in TRACTS}
        self.latency_sum = {t: 0.0 for t in TRACTS}

    def record_latencies(self, dest: Tract, messages: list[Message]) -> None:
        """Publish-to-delivery latency (wall clocks of producer and consumer) into the
        histogram; vectorised for batches. Called with the lock held."""
        if not messages:
            return
        now = time.time()
        hist = self.hist[dest]
        if len(messages) < 16:
            for m in messages:
                latency = max(0.0, now - m.created_at)
                hist[bisect_left(self.bounds, latency)] += 1
                self.latency_sum[dest] += latency
            return
        created = np.fromiter(
            (m.created_at for m in messages), dtype=np.float64, count=len(messages)
        )
        latencies = np.maximum(now - created, 0.0)
        counts = np.bincount(
            np.searchsorted(self.bounds_array, latencies, side="left"), minlength=len(hist)
        )
        for i, c in enumerate(counts.tolist()):
            hist[i] += c
        self.latency_sum[dest] += float(latencies.sum())


class StreamsIntrospection:
    """Reads the transport's state from Redis and this process's tally."""

    def __init__(self, conn: StreamsConnection, tally: LocalTally) -> None:
        self.conn = conn
        self.tally = tally
        self._depth_cache: dict[Tract, tuple[list[int], int]] = {}
        self._depth_cache_at = 0.0

    def server_view(self, retry_timeout: float | None = None) -> dict[Tract, dict[str, Any]]:
        """Per destination: lag (undelivered), pending, depth by band, dead letters, counters.
        ``retry_timeout``: how long to retry an outage (the connection's unless given)."""
        conn = self.conn

        def read() -> list[Any]:
            with conn.client.pipeline(transaction=False) as pipe:
                for dest in TRACTS:
                    for key in conn.keys.bands(dest):
                        pipe.xinfo_groups(key)
                        pipe.xlen(key)
                    pipe.xlen(conn.keys.dead(dest))
                    pipe.hgetall(conn.keys.counters(dest))
                return pipe.execute(raise_on_error=False)

        replies = conn.call(read, "stats", retry_timeout=retry_timeout)
        out: dict[Tract, dict[str, Any]] = {}
        i = 0
        group = conn.group.encode()
        for dest in TRACTS:
            lags, pending = [], 0
            for _ in range(PRIORITY_LEVELS):
                groups, length = replies[i], replies[i + 1]
                i += 2
                length = 0 if isinstance(length, Exception) else int(length)
                info = None
                if not isinstance(groups, Exception):
                    for g in groups:
                        if g.get("name") in (group, conn.group):
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

    def stats(self, transport: str) -> RouterStats:
        """The router's stats: Redis totals and this process's tally (see the module
        docstring)."""
        conn = self.conn
        tally = self.tally
        view = self.server_view()
        out: dict[str, DestinationStats] = {}
        with tally.lock:
            for dest in TRACTS:
                server = view[dest]
                local = tally.counters[dest]
                p50, p95, p99 = histogram_percentiles(tally.bounds, tally.hist[dest])
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
            "group": conn.group,
            "consumer": conn.consumer,
            "prefix": conn.keys.prefix,
            "note": "published/acked/dead_lettered/duplicates and depths are totals in Redis; "
            "delivered/nacked/redelivered/rejected and latency are this process's",
        }
        return RouterStats(transport, conn.url, out, extra)

    def consumers(self, dest: Tract) -> list[dict[str, Any]]:
        """The group's consumers of ``dest``: name, pending entries, idle ms."""
        conn = self.conn
        merged: dict[str, dict[str, Any]] = {}
        for key in conn.keys.bands(dest):
            try:
                consumers: Any = conn.call(
                    partial(conn.client.xinfo_consumers, key, conn.group), "XINFO", None
                )
            except TransportError:
                continue
            for c in consumers:
                name = text(c["name"])
                entry = merged.setdefault(
                    name, {"name": name, "pending": 0, "idle_ms": int(c["idle"])}
                )
                entry["pending"] += int(c["pending"])
                entry["idle_ms"] = min(entry["idle_ms"], int(c["idle"]))
        return sorted(merged.values(), key=lambda c: c["name"])

    def metric_snapshot(self) -> dict[str, dict[str, Any]]:
        """For the Prometheus collector: depths and pending from Redis (read at most once a
        second, without retrying an outage: a scrape never waits for Redis), and this
        process's counters and histogram."""
        now = time.monotonic()
        if now - self._depth_cache_at > 1.0 and not self.conn.closed:
            self._depth_cache_at = now
            try:
                view = self.server_view(retry_timeout=0.0)
                self._depth_cache = {d: (v["depths"], v["pending"]) for d, v in view.items()}
            except Exception:  # a scrape must never fail because Redis is down
                pass
        tally = self.tally
        with tally.lock:
            return {
                dest.value: {
                    "depths": self._depth_cache.get(dest, ([0] * PRIORITY_LEVELS, 0))[0],
                    "in_flight": self._depth_cache.get(dest, ([0] * PRIORITY_LEVELS, 0))[1],
                    "counters": dict(tally.counters[dest]),
                    "histogram": (
                        list(tally.bounds),
                        list(tally.hist[dest]),
                        tally.latency_sum[dest],
                    ),
                }
                for dest in TRACTS
            }

    def dead_letters(self, dest: Tract, limit: int) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters of ``dest``, decoded where they decode."""
        conn = self.conn
        entries: Any = conn.call(
            partial(conn.client.xrange, conn.keys.dead(dest), count=limit), "XRANGE", dest
        )
        out = []
        for ref, fields in entries:
            attempts = int(fields.get(b"attempts", 0))
            try:
                message: Message | None = from_wire(fields, attempts)
            except InvalidInputError:
                message = None
            out.append(
                DeadLetter(
                    message=message,
                    reason=fields.get(b"reason", b"").decode("utf-8", "replace"),
                    attempts=attempts,
                    dead_at=float(fields.get(b"dead_at", 0) or 0),
                    raw={k.decode("utf-8", "replace"): v for k, v in fields.items()},
                    ref=ref.decode(),
                )
            )
        return out
