"""Metrics per component and runtime, exported as Prometheus text and as JSON.

One ``CollectorRegistry`` per process (``REGISTRY``) holds every synapse-mojo metric, so
``prometheus_text()`` is the whole export. Percentiles in the JSON view come from a bounded
reservoir of recent latencies (the Prometheus histogram keeps the long-run distribution).

Metric names::

    synapse_calls_total{feature, runtime}               calls answered, by runtime
    synapse_fallbacks_total{feature, reason}            Mojo wanted, Python answered
    synapse_errors_total{feature, kind}                 Mojo raised (exception) or disagreed (mismatch)
    synapse_shadow_comparisons_total{feature, outcome}  shadow mode: match | mismatch
    synapse_call_latency_seconds{feature, runtime}      histogram
    synapse_mojo_active{feature}                        1 when the Mojo path is live
    synapse_auto_disabled{feature}                      1 after an automatic disable
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

CALLS = Counter(
    "synapse_calls", "Calls answered, by runtime", ["feature", "runtime"], registry=REGISTRY
)
FALLBACKS = Counter(
    "synapse_fallbacks",
    "Calls where Mojo was wanted but Python answered",
    ["feature", "reason"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "synapse_errors", "Mojo path errors, by kind", ["feature", "kind"], registry=REGISTRY
)
SHADOW = Counter(
    "synapse_shadow_comparisons",
    "Shadow-mode comparisons of the Mojo and Python results",
    ["feature", "outcome"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "synapse_call_latency_seconds",
    "Latency of calls, by runtime",
    ["feature", "runtime"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
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
    """The most recent ``size`` latencies (seconds), for percentiles."""

    def __init__(self, size: int = 4096) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def __len__(self) -> int:
        return len(self._values)

    def summary_ms(self) -> dict[str, float | None]:
        with self._lock:
            values = sorted(self._values)
        out: dict[str, float | None] = {"samples": float(len(values))}
        for q in (50, 95, 99):
            v = percentile(values, q)
            out[f"p{q}_ms"] = None if v is None else round(v * 1e3, 6)
        return out

    def p95(self) -> float | None:
        with self._lock:
            values = sorted(self._values)
        return percentile(values, 95)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class FeatureMetrics:
    """Counters and latencies of one feature, mirrored into the Prometheus registry."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {"mojo": 0, "python": 0}
        self.fallbacks: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.shadow: dict[str, int] = {"match": 0, "mismatch": 0}
        self.latency = {"mojo": LatencyReservoir(), "python": LatencyReservoir()}

    def record_call(self, runtime: str, seconds: float) -> None:
        with self._lock:
            self.calls[runtime] = self.calls.get(runtime, 0) + 1
        self.latency.setdefault(runtime, LatencyReservoir()).add(seconds)
        CALLS.labels(self.feature, runtime).inc()
        LATENCY.labels(self.feature, runtime).observe(seconds)

    def record_latency_only(self, runtime: str, seconds: float) -> None:
        """A timed run whose result was not returned (the Mojo half of a shadow call)."""
        self.latency.setdefault(runtime, LatencyReservoir()).add(seconds)
        LATENCY.labels(self.feature, runtime).observe(seconds)

    def record_fallback(self, reason: str) -> None:
        with self._lock:
            self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1
        FALLBACKS.labels(self.feature, reason).inc()

    def record_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
        ERRORS.labels(self.feature, kind).inc()

    def record_shadow(self, match: bool) -> None:
        outcome = "match" if match else "mismatch"
        with self._lock:
            self.shadow[outcome] += 1
        SHADOW.labels(self.feature, outcome).inc()

    def set_state(self, mojo_active: bool, auto_disabled: bool) -> None:
        MOJO_ACTIVE.labels(self.feature).set(1 if mojo_active else 0)
        AUTO_DISABLED.labels(self.feature).set(1 if auto_disabled else 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data: dict[str, Any] = {
                "calls": dict(self.calls),
                "fallbacks": dict(self.fallbacks),
                "errors": dict(self.errors),
                "shadow": dict(self.shadow),
            }
        data["latency"] = {rt: r.summary_ms() for rt, r in self.latency.items()}
        return data


def prometheus_text() -> str:
    """Every synapse-mojo metric in the Prometheus text exposition format."""
    return generate_latest(REGISTRY).decode("utf-8")
