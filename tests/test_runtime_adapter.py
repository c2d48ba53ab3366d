"""The runtime adapter, driven through real kernels with the documented fault injection.

``SYNAPSE_FAULT_<FEATURE>=raise|wrong[:rate]`` makes the compiled Mojo kernel itself raise or
return wrong rows (``mojo/pattern_search.mojo``), so fallback, shadow mismatch counting and
auto-disable are exercised on the real call path, not on a stand-in.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from synapse_mojo import ConfigError, PatternIndex


def _index(runtime, n=400, d=24, seed=0):
    vectors = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    index = PatternIndex(d, runtime=runtime)
    index.upsert([f"p{i}" for i in range(n)], vectors)
    return index, vectors


def test_auto_mode_uses_mojo_when_healthy(make_runtime, search_kernel):
    from synapse_mojo.search.dispatch import UNBOUNDED, Crossovers

    runtime = make_runtime()
    index, vectors = _index(runtime)
    # Where the crossovers say the kernel is faster, auto runs it; where they say NumPy is,
    # NumPy answers (a choice, not a fallback).
    index._backend.set_crossovers(Crossovers(1 << 22, source="test"))
    result = index.search_detailed(vectors[7], top_k=3)
    assert result.runtime == "mojo" and result.hits[0].id == "p7"
    index._backend.set_crossovers(Crossovers(1 << 22, ((0, UNBOUNDED),), source="test"))
    result = index.search_detailed(vectors[7], top_k=3)
    assert result.runtime == "python" and result.fallback_reason is None
    assert result.hits[0].id == "p7"
    status = runtime.feature("pattern_search").status()
    assert status["self_check"].startswith("passed")
    assert status["active_runtime"] == "mojo"


def test_injected_raise_falls_back_in_the_same_call(make_runtime, search_kernel, caplog):
    runtime = make_runtime(
        SYNAPSE_FEATURE_PATTERN_SEARCH="on",
        SYNAPSE_FAULT_PATTERN_SEARCH="raise",
        SYNAPSE_ALERT_MIN_CALLS="1000",
    )
    index, vectors = _index(runtime)
    with caplog.at_level(logging.WARNING, logger="synapse_mojo.runtime"):
        result = index.search_detailed(vectors[9], top_k=3)
    assert result.hits[0].id == "p9"  # answered correctly ...
    assert result.runtime == "python"  # ... by Python
    assert result.fallback_reason and result.fallback_reason.startswith("exception:")
    assert "injected fault" in caplog.text
    metrics = runtime.feature("pattern_search").metrics.snapshot()
    assert metrics["errors"] == {"exception": 1}
    assert sum(metrics["fallbacks"].values()) == 1


def test_error_rate_over_threshold_disables_mojo_until_reset(make_runtime, search_kernel, caplog):
    runtime = make_runtime(
        SYNAPSE_FEATURE_PATTERN_SEARCH="on",
        SYNAPSE_FAULT_PATTERN_SEARCH="raise",
        SYNAPSE_ALERT_MIN_CALLS="20",
        SYNAPSE_ALERT_WINDOW="100",
    )
    feature = runtime.feature("pattern_search")
    index, vectors = _index(runtime)
    with caplog.at_level(logging.ERROR, logger="synapse_mojo.runtime"):
        for _ in range(19):
            index.search(vectors[0])
        assert feature.disabled_reason is None  # below the minimum number of calls
        index.search(vectors[0])
    assert feature.disabled_reason and "error rate 20/20" in feature.disabled_reason
    assert "AUTO-DISABLED" in caplog.text
    result = index.search_detailed(vectors[3], top_k=1)
    assert result.runtime == "python" and result.fallback_reason == "auto_disabled"
    assert result.hits[0].id == "p3"
    assert feature.status()["auto_disabled"]
    # The disable persists for the process; reset() clears it.
    runtime.settings.faults.clear()  # type: ignore[attr-defined]
    feature.reset()
    assert index.search_detailed(vectors[3], top_k=1).runtime == "mojo"


def test_error_rate_threshold_is_one_percent(make_runtime, search_kernel):
    """Drives the adapter with real kernel calls that fail on chosen call numbers."""
    runtime = make_runtime(
        SYNAPSE_FEATURE_PATTERN_SEARCH="on",
        SYNAPSE_ALERT_MIN_CALLS="100",
        SYNAPSE_ALERT_WINDOW="400",
    )
    feature = runtime.feature("pattern_search")
    calls = {"n": 0}

    def mojo(kernel, fault):
        calls["n"] += 1
        if calls["n"] in failing:
            raise RuntimeError("boom")
        return kernel.kernel_info()

    failing = {50, 250}  # 2 of 400 = 0.5 %: stays enabled
    for _ in range(400):
        feature.run("probe", mojo, lambda: {})
    assert feature.disabled_reason is None
    failing = set(range(401, 406))  # 5 more errors: 7 in the last 400 = 1.75 %
    for _ in range(10):
        feature.run("probe", mojo, lambda: {})
    assert feature.disabled_reason is not None


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_canary_sends_a_share_of_calls_to_mojo(make_runtime, search_kernel, fraction):
    runtime = make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH=f"canary:{fraction}")
    index, vectors = _index(runtime, n=64)
    runtimes = [index.search_detailed(vectors[1], top_k=1).runtime for _ in range(1500)]
    share = runtimes.count("mojo") / len(runtimes)
    assert abs(share - fraction) < 0.06  # binomial sd at 0.3 is 0.012
    metrics = runtime.feature("pattern_search").metrics.snapshot()
    assert metrics["fallbacks"] == {}  # canary draws for Python are not fallbacks


def test_shadow_returns_python_and_counts_mismatches(make_runtime, search_kernel):
    runtime = make_runtime(
        SYNAPSE_FEATURE_PATTERN_SEARCH="shadow",
        SYNAPSE_FAULT_PATTERN_SEARCH="wrong",
        SYNAPSE_ALERT_MIN_CALLS="30",
    )
    feature = runtime.feature("pattern_search")
    index, vectors = _index(runtime)
    for i in range(29):
        result = index.search_detailed(vectors[i], top_k=5)
        assert result.runtime == "python" and result.hits[0].id == f"p{i}"
        assert result.error == "shadow mismatch"
    snap = feature.metrics.snapshot()
    assert snap["shadow"] == {"match": 0, "mismatch": 29}
    assert snap["errors"] == {"mismatch": 29}
    assert snap["latency"]["mojo"]["samples"] == 29  # the Mojo half was timed too
    index.search(vectors[0])
    assert feature.disabled_reason is not None  # wrong results count as errors


def test_shadow_without_fault_matches(make_runtime, search_kernel):
    runtime = make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="shadow")
    index, vectors = _index(runtime)
    for i in range(40):
        index.search(vectors[i] + 0.1, top_k=10)
    snap = runtime.feature("pattern_search").metrics.snapshot()
    assert snap["shadow"] == {"match": 40, "mismatch": 0}
    assert snap["errors"] == {}


def test_shadow_warns_on_p95_latency_regression(make_runtime, search_kernel, caplog):
    runtime = make_runtime(
        SYNAPSE_FEATURE_PATTERN_SEARCH="shadow", SYNAPSE_ALERT_MIN_LATENCY_SAMPLES="20"
    )
    feature = runtime.feature("pattern_search")

    def slow_mojo(kernel, fault):
        time.sleep(0.002)  # a Mojo path 2 ms slower than the Python one
        return kernel.kernel_info()["abi_version"]

    with caplog.at_level(logging.WARNING, logger="synapse_mojo.runtime"):
        for _ in range(64):
            feature.run("probe", slow_mojo, lambda: 1)
    assert "p95_regression" in feature.alerts
    assert "p95" in caplog.text


def test_fallback_rate_warning(make_runtime, search_kernel, caplog):
    runtime = make_runtime(
        SYNAPSE_FEATURE_PATTERN_SEARCH="on",
        SYNAPSE_FAULT_PATTERN_SEARCH="raise:0.5",
        SYNAPSE_ALERT_ERROR_RATE="1.0",  # never disable: only the warning is under test
        SYNAPSE_ALERT_MIN_CALLS="50",
    )
    index, vectors = _index(runtime)
    with caplog.at_level(logging.WARNING, logger="synapse_mojo.runtime"):
        for _ in range(120):
            index.search(vectors[0])
    feature = runtime.feature("pattern_search")
    assert feature.disabled_reason is None
    assert "fallback_rate" in feature.alerts
    assert "fallback rate" in caplog.text


def test_force_python_acts_at_once_in_a_running_process(make_runtime, search_kernel, monkeypatch):
    runtime = make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on")
    index, vectors = _index(runtime)
    assert index.search_detailed(vectors[0]).runtime == "mojo"
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    result = index.search_detailed(vectors[0])
    assert result.runtime == "python" and result.fallback_reason is None
    assert runtime.feature("pattern_search").status()["active_runtime"] == "python"
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "0")
    assert index.search_detailed(vectors[0]).runtime == "mojo"
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "maybe")
    with pytest.raises(ConfigError, match="SYNAPSE_FORCE_PYTHON"):
        index.search(vectors[0])


def test_mode_off_and_runtime_mode_changes(make_runtime, search_kernel):
    runtime = make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="off")
    index, vectors = _index(runtime)
    assert index.search_detailed(vectors[0]).runtime == "python"
    runtime.set_mode("pattern_search", "on")
    assert index.search_detailed(vectors[0]).runtime == "mojo"
    with pytest.raises(ConfigError):
        runtime.set_mode("pattern_search", "sometimes")
    with pytest.raises(ConfigError):
        runtime.feature("warp_drive")


def test_batch_search_goes_through_vector_engine(make_runtime, search_kernel):
    runtime = make_runtime(SYNAPSE_FAULT_VECTOR_ENGINE="raise", SYNAPSE_FEATURE_VECTOR_ENGINE="on")
    index, vectors = _index(runtime)
    result = index.search_batch(vectors[:3], top_k=2)
    assert result.runtime == "python"
    assert list(result.ids[:, 0]) == ["p0", "p1", "p2"]
    assert runtime.feature("vector_engine").metrics.snapshot()["errors"] == {"exception": 1}


def test_metrics_export_prometheus_and_json(make_runtime, search_kernel):
    runtime = make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on")  # the Mojo series must exist
    index, vectors = _index(runtime)
    for i in range(5):
        index.search(vectors[i])
    text = runtime.metrics_prometheus()
    assert 'synapse_calls_total{feature="pattern_search",runtime="mojo"}' in text
    assert "synapse_call_latency_seconds_bucket" in text
    assert 'synapse_mojo_active{feature="pattern_search"} 1.0' in text
    snap = runtime.metrics_json()["pattern_search"]
    assert snap["calls"]["mojo"] == 5
    lat = snap["latency"]["mojo"]
    assert lat["samples"] == 5 and lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]


def test_fast_lane_records_every_call_in_bulk(make_runtime, search_kernel):
    """Successful kernel calls in ``auto``/``on`` take the fast lane: queued and recorded in
    bulk, complete whenever anything reads the metrics (JSON, Prometheus, status)."""
    import re

    from synapse_mojo.runtime.adapter import FAST_LANE_FLUSH

    def scraped() -> tuple[float, float]:
        """Calls and latency samples in the Prometheus text: process-wide series, shared by
        every runtime of the test session, so the test compares before and after."""
        text = runtime.metrics_prometheus()
        labels = r'\{feature="pattern_search",runtime="mojo"\} (\S+)'
        found = [
            re.search(name + labels, text)
            for name in ("synapse_calls_total", "synapse_call_latency_seconds_count")
        ]
        return tuple(float(m.group(1)) if m else 0.0 for m in found)  # type: ignore[return-value]

    runtime = make_runtime()
    index, vectors = _index(runtime)
    feature = runtime.feature("pattern_search")
    index.search(vectors[0])  # kernel load, self-check, calibration
    before = runtime.metrics_json()["pattern_search"]["calls"]["mojo"]
    scraped_before = scraped()
    calls = 2 * FAST_LANE_FLUSH + 22  # not a multiple of the flush size
    for i in range(calls):
        assert index.search_detailed(vectors[i % 50], top_k=3).runtime == "mojo"
    assert feature.lane is not None
    total, count = scraped()
    assert (total - scraped_before[0], count - scraped_before[1]) == (calls, calls)
    snap = runtime.metrics_json()["pattern_search"]
    assert snap["calls"]["mojo"] == before + calls
    assert snap["latency"]["mojo"]["samples"] == before + calls
    assert feature.status()["metrics"]["calls"]["mojo"] == before + calls


def test_search_calls_the_kernel_directly_on_the_fast_lane(make_runtime, search_kernel):
    """``PatternIndex.search`` (no outcome to report) calls the kernel itself while the lane
    is open: the same hits as ``search_detailed``, every call counted for Mojo."""
    runtime = make_runtime()
    index, vectors = _index(runtime)
    index.search(vectors[0])  # kernel load, self-check, calibration
    feature = runtime.feature("pattern_search")
    assert feature.lane is not None
    before = runtime.metrics_json()["pattern_search"]["calls"]
    for i in range(70):
        q = vectors[i % 50]
        assert index.search(q, top_k=4) == index.search_detailed(q, top_k=4).hits
    after = runtime.metrics_json()["pattern_search"]["calls"]
    assert after["mojo"] == before["mojo"] + 140
    assert after.get("python", 0) == before.get("python", 0)


def test_search_on_the_fast_lane_follows_the_crossovers(make_runtime, search_kernel):
    """``search``'s direct call keeps its kernel arguments per matrix: a change of the
    crossovers (NumPy's range, the inline threshold) or of the matrix is seen at once."""
    from synapse_mojo.search.dispatch import UNBOUNDED, Crossovers

    runtime = make_runtime()
    index, vectors = _index(runtime)
    backend = index._backend
    index.search(vectors[0])

    def calls() -> dict:
        return runtime.metrics_json()["pattern_search"]["calls"]

    before = calls()
    index.search(vectors[1])
    assert calls()["mojo"] == before["mojo"] + 1
    backend.set_crossovers(Crossovers(1 << 22, ((0, UNBOUNDED),), source="test"))
    assert index.search(vectors[2], top_k=1)[0].id == "p2"
    assert calls()["python"] == before.get("python", 0) + 1
    backend.set_crossovers(Crossovers(0, source="test"))  # the kernel again, on the pool
    assert index.search(vectors[3], top_k=1)[0].id == "p3"
    assert calls()["mojo"] == before["mojo"] + 2
    plan = backend._hits_plan
    assert plan[4] == 0 and plan[5][4] == backend._mojo.workers(400 * 24)  # inline_below, workers
    index.upsert(["new"], vectors[4:5] * 2)  # a new view of the rows
    assert {h.id for h in index.search(vectors[4], top_k=2)} == {"p4", "new"}
    assert calls()["mojo"] == before["mojo"] + 3


def test_search_hits_from_the_kernel_are_the_index_hits(make_runtime, search_kernel):
    """The hits the kernel builds: ``SearchHit`` objects equal to the ones Python builds,
    each metadata a copy (``{}`` for none); ``top_k`` above the row count gives every row."""
    from synapse_mojo.search.index import SearchHit

    runtime = make_runtime()
    vectors = np.random.default_rng(3).standard_normal((6, 8)).astype(np.float32)
    index = PatternIndex(8, runtime=runtime)
    metas = [None, {}, {"a": 1}, {"b": [1, 2]}, None, {"c": "x"}]
    index.upsert([f"p{i}" for i in range(6)], vectors, metas)
    index.search(vectors[0])
    assert runtime.feature("pattern_search").lane is not None
    hits = index.search(vectors[2], top_k=10)
    assert len(hits) == 6 and all(type(h) is SearchHit for h in hits)
    assert hits == index.search_detailed(vectors[2], top_k=10).hits
    by_id = {h.id: h for h in hits}
    assert by_id["p0"].metadata == {} and by_id["p2"].metadata == {"a": 1}
    by_id["p2"].metadata["a"] = 99  # a copy: the index keeps its own
    assert index.search(vectors[2], top_k=1)[0].metadata == {"a": 1}
    assert hash(type(hits[0])) and hits[0] == SearchHit(hits[0].id, hits[0].score, hits[0].metadata)


def test_search_on_the_fast_lane_answers_a_raising_kernel_with_python(make_runtime, search_kernel):
    """A kernel that raises on ``search``'s direct call: Python answers, the error is
    counted and the call is a fallback, as through ``FeatureRuntime.call``. The raising
    kernel is the real one behind a proxy whose ``topk_hits`` raises: fault injection, the
    only way to make the real kernel raise, closes the lane this test is about."""
    runtime = make_runtime()
    index, vectors = _index(runtime)
    expected = index.search(vectors[3], top_k=5)
    feature = runtime.feature("pattern_search")
    real = feature.lane
    assert real is not None

    class RaisingKernel:
        def __getattr__(self, name):
            return getattr(real, name)

        def topk_hits(self, args):
            raise RuntimeError("injected by the test")

    proxy = RaisingKernel()
    feature.lane = proxy
    index._backend._mojo.kernel = proxy
    before = runtime.metrics_json()["pattern_search"]
    hits = index.search(vectors[3], top_k=5)
    assert [h.id for h in hits] == [h.id for h in expected]
    np.testing.assert_allclose(
        [h.score for h in hits], [h.score for h in expected], rtol=1e-5, atol=1e-6
    )
    after = runtime.metrics_json()["pattern_search"]
    assert after["errors"].get("exception", 0) == before["errors"].get("exception", 0) + 1
    assert after["calls"]["python"] == before["calls"].get("python", 0) + 1
    assert after["fallbacks"].get("exception:RuntimeError", 0) == 1 + before["fallbacks"].get(
        "exception:RuntimeError", 0
    )


def test_fast_lane_is_closed_outside_auto_and_on(make_runtime, search_kernel):
    runtime = make_runtime()
    index, vectors = _index(runtime)
    index.search(vectors[0])
    feature = runtime.feature("pattern_search")
    assert feature.lane is not None
    for mode in ("shadow", "canary:0.5", "off"):
        runtime.set_mode("pattern_search", mode)
        assert feature.lane is None, mode
    runtime.set_mode("pattern_search", "on")
    assert feature.lane is not None
    feature.disable("test")
    assert feature.lane is None and index.search_detailed(vectors[0]).runtime == "python"
    feature.reset()
    assert feature.lane is not None and index.search_detailed(vectors[0]).runtime == "mojo"
    # Fault injection is configured: every call goes the checked way.
    faulty = make_runtime(SYNAPSE_FAULT_PATTERN_SEARCH="raise:0.0")
    index, vectors = _index(faulty)
    assert index.search_detailed(vectors[0]).runtime == "mojo"
    assert faulty.feature("pattern_search").lane is None


def test_errors_after_fast_calls_count_against_the_whole_window(make_runtime, search_kernel):
    """The error rate that disables Mojo counts the fast lane's queued successes too: 4
    errors after 96 successes are 4% of a 100-call window, 6 are 6%."""
    runtime = make_runtime(
        SYNAPSE_ALERT_WINDOW="100", SYNAPSE_ALERT_MIN_CALLS="50", SYNAPSE_ALERT_ERROR_RATE="0.05"
    )
    index, vectors = _index(runtime)
    feature = runtime.feature("pattern_search")
    for i in range(96):
        index.search(vectors[i % 50])

    def failing(kernel, fault):
        raise RuntimeError("injected by the test")

    for _ in range(4):
        outcome = feature.call("topk", failing, lambda: "python answer", ())
        assert outcome.runtime == "python" and outcome.value == "python answer"
        assert outcome.error == "RuntimeError: injected by the test"
    assert feature.disabled_reason is None
    for _ in range(2):
        feature.call("topk", failing, lambda: "python answer", ())
    assert feature.disabled_reason is not None and "6/100" in feature.disabled_reason
    assert feature.lane is None


def test_fast_lane_counts_every_call_from_many_threads(make_runtime, search_kernel):
    import threading

    runtime = make_runtime()
    index, vectors = _index(runtime)
    index.search(vectors[0])
    before = runtime.metrics_json()["pattern_search"]["calls"]["mojo"]
    per_thread, threads = 300, 4
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(per_thread):
                row = (seed * 7 + i) % 50
                assert index.search(vectors[row], top_k=1)[0].id == f"p{row}"
                if i % 50 == 0:
                    runtime.metrics_json()  # readers flush while others queue
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    snap = runtime.metrics_json()["pattern_search"]
    assert snap["calls"]["mojo"] == before + per_thread * threads
