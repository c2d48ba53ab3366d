"""Metrics per component and runtime, exported as Prometheus text and as JSON.

One ``CollectorRegistry`` per process (``REGISTRY``) holds every synapse-mojo metric, so
``prometheus_text()`` is the whole export. Percentiles in the JSON view come from a bounded
reservoir of recent latencies (the Prometheus histogram keeps the long-run distribution).

Recording a call costs one uncontended lock and a few integer increments: counts and
histogram buckets are plain integers per feature, read by a collector when the registry is
scraped (a ``prometheus_client`` child costs about a microsecond per update, as much as a
whole small search). Counters are shared by every ``FeatureMetrics`` of one feature name, so
they never go backwards when a runtime is replaced.

Metric names::

    synapse_calls_total{feature, runtime}               calls answered, by runtime
    synapse_fallbacks_total{feature, reason}            Mojo wanted, Python answered
    synapse_errors_total{feature, kind}                 exception (Mojo raised) | mismatch
    synapse_shadow_comparisons_total{feature, outcome}  shadow mode: match | mismatch
    synapse_call_latency_seconds{feature, runtime}      histogram
    synapse_mojo_active{feature}                        1 when the Mojo path is live
    synapse_auto_disabled{feature}                      1 after an automatic disable
"""

from __future__ import annotations

import math
import threading
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

#: Upper bounds (seconds) of the call-latency histograms; the router's queueing-latency
#: histograms use the same bounds (in nanoseconds), so the two read side by side.
LATENCY_BUCKETS: tuple[float, ...] = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

MOJO_ACTIVE = Gauge(
    "synapse_mojo_active", "1 when the feature's Mojo path is live", ["feature"], registry=REGISTRY
)
AUTO_DISABLED = Gauge(
    "synapse_auto_disabled",
    "1 after the feature's Mojo path was disabled automatically",
    ["feature"],
    registry=REGISTRY,
)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class LatencyReservoir:
    """The most recent ``size`` latencies (seconds), for percentiles.

    ``add`` is a bare ``deque.append`` (atomic under the GIL); readers copy under a lock.
    """

    def __init__(self, size: int = 4096) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.add = self._values.append
        self.extend = self._values.extend

    def __len__(self) -> int:
        return len(self._values)

    def _sorted(self) -> list[float]:
        with self._lock:
            while True:
                try:
                    return sorted(self._values)
                except RuntimeError:  # appended to while copying
                    continue

    def summary_ms(self) -> dict[str, float | None]:
        values = self._sorted()
        out: dict[str, float | None] = {"samples": float(len(values))}
        for q in (50, 95, 99):
            v = percentile(values, q)
            out[f"p{q}_ms"] = None if v is None else round(v * 1e3, 6)
        return out

    def p95(self) -> float | None:
        return percentile(self._sorted(), 95)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class _Series:
    """The Prometheus side of one feature name: plain integers read at scrape time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.shadow: dict[str, int] = {}
        #: runtime -> [bucket counts (len(LATENCY_BUCKETS) + 1), sum of seconds]
        self.histograms: dict[str, list[Any]] = {}
        #: The views of this feature: each records its pending calls before a scrape.
        self.views: weakref.WeakSet[FeatureMetrics] = weakref.WeakSet()

    def histogram(self, runtime: str) -> list[Any]:
        hist = self.histograms.get(runtime)
        if hist is None:
            hist = self.histograms[runtime] = [[0] * (len(LATENCY_BUCKETS) + 1), 0.0]
        return hist


def _nothing() -> None:
    return None


_SERIES: dict[str, _Series] = {}
_SERIES_LOCK = threading.Lock()


def _series(feature: str) -> _Series:
    with _SERIES_LOCK:
        series = _SERIES.get(feature)
        if series is None:
            series = _SERIES[feature] = _Series()
        return series


class FeatureMetrics:
    """Counters and latencies of one feature (this runtime's view), mirrored into the
    process-wide Prometheus series of the feature."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        self._series = _series(feature)
        # One lock for this view and the shared series: one acquisition per recorded call.
        self._lock = self._series.lock
        self.calls: dict[str, int] = {"mojo": 0, "python": 0}
        self.fallbacks: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.shadow: dict[str, int] = {"match": 0, "mismatch": 0}
        self.latency = {"mojo": LatencyReservoir(), "python": LatencyReservoir()}
        self._hist = {
            "mojo": self._series.histogram("mojo"),
            "python": self._series.histogram("python"),
        }
        #: Run before anything reads these numbers: the owner records the calls it has
        #: only queued (``FeatureRuntime`` queues the successful calls of its fast lane).
        self.before_read: Callable[[], None] = _nothing
        self._series.views.add(self)

    def record_call(self, runtime: str, seconds: float) -> None:
        reservoir = self.latency.get(runtime)
        if reservoir is None:
            reservoir = self.latency.setdefault(runtime, LatencyReservoir())
        reservoir.add(seconds)
        series = self._series
        with self._lock:
            self.calls[runtime] = self.calls.get(runtime, 0) + 1
            series.calls[runtime] = series.calls.get(runtime, 0) + 1
            hist = self._hist.get(runtime) or self._hist.setdefault(
                runtime, series.histogram(runtime)
            )
            hist[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1
            hist[1] += seconds

    @property
    def lock(self) -> threading.Lock:
        """The lock ``record_calls_locked`` expects its caller to hold (the feature's series
        lock, shared by every view of the feature)."""
        return self._lock

    def record_calls_locked(self, runtime: str, seconds: Iterable[float]) -> None:
        """Records calls of ``runtime`` taking ``seconds`` each (a queue of them), for a
        caller that already holds ``lock`` (the runtime adapter updates its health windows
        under the same lock: one acquisition per queue)."""
        values = list(seconds)
        if not values:
            return
        reservoir = self.latency.get(runtime)
        if reservoir is None:
            reservoir = self.latency.setdefault(runtime, LatencyReservoir())
        reservoir.extend(values)
        calls = self.calls
        calls[runtime] = calls.get(runtime, 0) + len(values)
        shared = self._series.calls
        shared[runtime] = shared.get(runtime, 0) + len(values)
        hist = self._hist.get(runtime) or self._hist.setdefault(
            runtime, self._series.histogram(runtime)
        )
        buckets = hist[0]
        for value in values:
            buckets[bisect_left(LATENCY_BUCKETS, value)] += 1
        hist[1] += math.fsum(values)

    def record_latency_only(self, runtime: str, seconds: float) -> None:
        """A timed run whose result was not returned (the Mojo half of a shadow call)."""
        self.latency.setdefault(runtime, LatencyReservoir()).add(seconds)
        with self._lock:
            hist = self._hist.get(runtime) or self._hist.setdefault(
                runtime, self._series.histogram(runtime)
            )
            hist[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1
            hist[1] += seconds

    def _bump(self, name: str, key: str) -> None:
        with self._lock:
            own = getattr(self, name)
            own[key] = own.get(key, 0) + 1
            shared = getattr(self._series, name)
            shared[key] = shared.get(key, 0) + 1

    def record_fallback(self, reason: str) -> None:
        self._bump("fallbacks", reason)

    def record_error(self, kind: str) -> None:
        self._bump("errors", kind)

    def record_shadow(self, match: bool) -> None:
        self._bump("shadow", "match" if match else "mismatch")

    def set_state(self, mojo_active: bool, auto_disabled: bool) -> None:
        MOJO_ACTIVE.labels(self.feature).set(1 if mojo_active else 0)
        AUTO_DISABLED.labels(self.feature).set(1 if auto_disabled else 0)

    def snapshot(self) -> dict[str, Any]:
        self.before_read()
        with self._lock:
            data: dict[str, Any] = {
                "calls": dict(self.calls),
                "fallbacks": dict(self.fallbacks),
                "errors": dict(self.errors),
                "shadow": dict(self.shadow),
            }
        data["latency"] = {rt: r.summary_ms() for rt, r in self.latency.items()}
        return data


class _FeatureCollector:
    """Turns the per-feature integers into metric families when the registry is scraped."""

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        families = {
            "calls": CounterMetricFamily(
                "synapse_calls", "Calls answered, by runtime", labels=["feature", "runtime"]
            ),
            "fallbacks": CounterMetricFamily(
                "synapse_fallbacks",
                "Calls where Mojo was wanted but Python answered",
                labels=["feature", "reason"],
            ),
            "errors": CounterMetricFamily(
                "synapse_errors", "Mojo path errors, by kind", labels=["feature", "kind"]
            ),
            "shadow": CounterMetricFamily(
                "synapse_shadow_comparisons",
                "Shadow-mode comparisons of the Mojo and Python results",
                labels=["feature", "outcome"],
            ),
        }
        latency = HistogramMetricFamily(
            "synapse_call_latency_seconds",
            "Latency of calls, by runtime",
            labels=["feature", "runtime"],
        )
        with _SERIES_LOCK:
            items = sorted(_SERIES.items())
        for feature, series in items:
            for view in list(series.views):
                view.before_read()
            with series.lock:
                counts = {name: dict(getattr(series, name)) for name in families}
                hists = {rt: (list(h[0]), h[1]) for rt, h in series.histograms.items()}
            for name, family in families.items():
                for key, value in sorted(counts[name].items()):
                    family.add_metric([feature, key], value)
            for runtime, (buckets, total) in sorted(hists.items()):
                if not any(buckets):
                    continue
                cumulative, running = [], 0
                for bound, count in zip(
                    [*map(repr, LATENCY_BUCKETS), "+Inf"], buckets, strict=True
                ):
                    running += count
                    cumulative.append((bound, running))
                latency.add_metric([feature, runtime], cumulative, total)
        yield from families.values()
        yield latency


REGISTRY.register(_FeatureCollector())


def prometheus_text() -> str:
    """Every synapse-mojo metric in the Prometheus text exposition format."""
    return generate_latest(REGISTRY).decode("utf-8")
