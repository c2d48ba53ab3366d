"""Router metrics in the shared Prometheus registry (``runtime.metrics.REGISTRY``).

Counting happens on plain integers inside each router (a ``prometheus_client`` counter costs
about a microsecond per increment, as much as a whole in-process publish); this collector
reads them when the registry is scraped, summing over live routers plus the totals of closed
ones, so counters never go backwards. Metric names::

    synapse_router_queue_depth{transport, destination, priority}   messages waiting (gauge)
    synapse_router_in_flight{transport, destination}               delivered, not yet acked
    synapse_router_published_total{transport, destination}
    synapse_router_delivered_total{transport, destination}
    synapse_router_acked_total{transport, destination}
    synapse_router_nacked_total{transport, destination}
    synapse_router_redeliveries_total{transport, destination}
    synapse_router_dead_letters_total{transport, destination}
    synapse_router_duplicates_total{transport, destination}        redeliveries skipped by dedupe
    synapse_router_rejected_total{transport, destination}          backpressure (QueueFullError)
    synapse_router_latency_seconds{transport, destination}         publish-to-delivery histogram

Rates (publish/consume per second) are ``rate()`` of the counters in Prometheus; ``synapse-mojo
router stats`` shows them from two readings.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..runtime.metrics import REGISTRY
from .message import PRIORITY_LEVELS

COUNTERS: tuple[tuple[str, str], ...] = (
    ("published", "Messages published"),
    ("delivered", "Messages delivered to consumers (redeliveries included)"),
    ("acked", "Messages acknowledged"),
    ("nacked", "Messages negatively acknowledged (handler failures)"),
    ("redelivered", "Deliveries of a message that was delivered before"),
    ("dead_lettered", "Messages moved to the dead letters"),
    ("duplicates", "Redelivered copies skipped by the dedupe record"),
    ("rejected", "Publishes refused by backpressure"),
)
_NAMES = {"dead_lettered": "dead_letters", "redelivered": "redeliveries"}


class MetricSource(Protocol):
    transport: str

    def metric_snapshot(self) -> dict[str, dict[str, Any]]:
        """destination -> {"depths": [10 ints], "in_flight": int, "counters": {...},
        "histogram": (bounds_s, counts, sum_s)}"""


class RouterCollector:
    """Reads every live router at scrape time."""

    def __init__(self) -> None:
        self._routers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._retired: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(self, router: MetricSource) -> None:
        with self._lock:
            self._routers.add(router)

    def retire(self, router: MetricSource) -> None:
        """Keeps a closing router's counters and histogram (not its depths)."""
        try:
            snapshot = router.metric_snapshot()
        except Exception:  # never let metrics break close()
            snapshot = {}
        with self._lock:
            self._routers.discard(router)
            for dest, data in snapshot.items():
                self._fold(self._retired, (router.transport, dest), data, depths=False)

    @staticmethod
    def _fold(
        into: dict[tuple[str, str], dict[str, Any]],
        key: tuple[str, str],
        data: dict[str, Any],
        depths: bool,
    ) -> None:
        acc = into.setdefault(
            key,
            {
                "depths": [0] * PRIORITY_LEVELS,
                "in_flight": 0,
                "counters": {name: 0 for name, _ in COUNTERS},
                "histogram": None,
            },
        )
        if depths:
            acc["depths"] = [
                a + b for a, b in zip(acc["depths"], data.get("depths", []), strict=False)
            ]
            acc["in_flight"] += int(data.get("in_flight", 0))
        for name, _ in COUNTERS:
            acc["counters"][name] += int(data.get("counters", {}).get(name, 0))
        hist = data.get("histogram")
        if hist is not None:
            bounds, counts, total = hist
            if acc["histogram"] is None:
                acc["histogram"] = (list(bounds), list(counts), float(total))
            else:
                b0, c0, t0 = acc["histogram"]
                if list(b0) == list(bounds):
                    acc["histogram"] = (
                        b0,
                        [x + y for x, y in zip(c0, counts, strict=False)],
                        t0 + total,
                    )

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._lock:
            routers = list(self._routers)
            merged: dict[tuple[str, str], dict[str, Any]] = {}
            for key, data in self._retired.items():
                self._fold(merged, key, data, depths=False)
        for router in routers:
            try:
                snap = router.metric_snapshot()
            except Exception:
                continue
            for dest, data in snap.items():
                self._fold(merged, (router.transport, dest), data, depths=True)
        return merged

    def describe(self) -> Iterator[Any]:
        return iter(())  # families are produced by collect(); nothing to pre-describe

    def collect(self) -> Iterator[Any]:
        merged = self.snapshot()
        depth = GaugeMetricFamily(
            "synapse_router_queue_depth",
            "Messages waiting for delivery",
            labels=["transport", "destination", "priority"],
        )
        in_flight = GaugeMetricFamily(
            "synapse_router_in_flight",
            "Messages delivered and not yet acknowledged",
            labels=["transport", "destination"],
        )
        counters = {
            name: CounterMetricFamily(
                f"synapse_router_{_NAMES.get(name, name)}",
                help_text,
                labels=["transport", "destination"],
            )
            for name, help_text in COUNTERS
        }
        latency = HistogramMetricFamily(
            "synapse_router_latency_seconds",
            "Publish-to-delivery latency of messages",
            labels=["transport", "destination"],
        )
        for (transport, dest), data in sorted(merged.items()):
            for prio, value in enumerate(data["depths"]):
                depth.add_metric([transport, dest, str(prio)], value)
            in_flight.add_metric([transport, dest], data["in_flight"])
            for name, _ in COUNTERS:
                counters[name].add_metric([transport, dest], data["counters"][name])
            hist = data["histogram"]
            if hist is not None:
                bounds, counts, total = hist
                cumulative, running = [], 0
                for bound, count in zip([*map(repr, bounds), "+Inf"], counts, strict=False):
                    running += count
                    cumulative.append((bound, running))
                latency.add_metric([transport, dest], cumulative, total)
        yield depth
        yield in_flight
        yield from counters.values()
        yield latency


COLLECTOR = RouterCollector()
REGISTRY.register(COLLECTOR)
