"""The search seam: one adaptive backend, size-aware dispatch, modes keep their meaning."""

from __future__ import annotations

import numpy as np
import pytest

from synapse_mojo.bench.latency import latency_markdown, run_latency_grid
from synapse_mojo.bench.report import validate_document
from synapse_mojo.runtime.adapter import registered_self_check
from synapse_mojo.search import PatternIndex, PythonSearchBackend, results_agree
from synapse_mojo.search.adaptive import AdaptiveSearchBackend
from synapse_mojo.search.dispatch import Crossovers, calibrate, shipped_crossovers
from synapse_mojo.search.mojo_backend import MojoSearchBackend
from synapse_mojo.search.numpy_backend import NumpySearchBackend

NUMPY_EVERYWHERE = Crossovers(
    inline_below=0, numpy_below=1 << 40, cosine_numpy_below=1 << 40, source="test"
)


def _data(n=300, d=32, seed=3):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, d)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m, m[5].copy()


def test_self_checks_are_registered_by_the_backends():
    for feature in ("pattern_search", "vector_engine", "message_router"):
        if feature == "message_router":
            import synapse_mojo.router.mojo_queue  # noqa: F401
        assert registered_self_check(feature) is not None


def test_auto_follows_the_crossovers_and_on_ignores_them(make_runtime, search_kernel):
    matrix, q = _data()
    auto = AdaptiveSearchBackend(make_runtime(), calibrate_on_start=False)
    assert auto.topk_outcome(matrix, q, 5).runtime == "mojo"
    auto.set_crossovers(NUMPY_EVERYWHERE)
    outcome = auto.topk_outcome(matrix, q, 5)
    assert (
        outcome.runtime == "python" and outcome.fallback_reason is None
    )  # a choice, not a fallback
    forced = AdaptiveSearchBackend(
        make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on"), calibrate_on_start=False
    )
    forced.set_crossovers(NUMPY_EVERYWHERE)
    assert forced.topk_outcome(matrix, q, 5).runtime == "mojo"
    assert forced.topk_cosine_outcome(matrix * 3, q, 5).runtime == "mojo"


def test_every_path_of_the_seam_agrees_with_the_reference(make_runtime, search_kernel):
    matrix, q = _data(n=1000, d=67)
    reference = PythonSearchBackend()
    backend = AdaptiveSearchBackend(
        make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on"), calibrate_on_start=False
    )
    for inline_below in (0, 1 << 40):  # worker pool and calling thread alone
        backend.set_crossovers(Crossovers(inline_below, 0, 0, "test"))
        for k in (1, 10, 64):
            assert results_agree(reference.topk(matrix, q, k), backend.topk(matrix, q, k), 67)
            raw = matrix * np.linspace(0.1, 9, matrix.shape[0], dtype=np.float32)[:, None]
            got = backend.topk_cosine(raw, q, k)
            assert got is not None and results_agree(reference.topk_cosine(raw, q, k), got, 67)


def test_a_non_finite_row_in_the_cosine_scan_is_reported_not_ranked(search_kernel):
    matrix, q = _data()
    matrix[17, 3] = np.inf
    for backend in (
        MojoSearchBackend(search_kernel, 2, inline_below=0),
        NumpySearchBackend(),
        PythonSearchBackend(),
    ):
        assert backend.topk_cosine(matrix, q, 5) is None


def test_calibration_measures_every_crossover(search_kernel):
    measured = calibrate(MojoSearchBackend(search_kernel, 2), NumpySearchBackend())
    assert measured.source == "measured at start-up"
    for value in (measured.inline_below, measured.numpy_below, measured.cosine_numpy_below):
        assert 0 <= value <= 16384 * 256
    assert shipped_crossovers().source.startswith("shipped")


def test_index_search_reuses_its_storage_view_and_sees_updates(make_runtime, search_kernel):
    index = PatternIndex(8, runtime=make_runtime())
    index.upsert(["a", "b"], np.eye(8, dtype=np.float32)[:2])
    assert index.search(np.eye(8)[1], 1)[0].id == "b"
    view = index._view
    assert index.search(np.eye(8)[0], 1)[0].id == "a" and index._view is view
    index.upsert(["c"], np.eye(8, dtype=np.float32)[2:3])  # more rows: a new view
    assert index.search(np.eye(8)[2], 1)[0].id == "c" and index._view is not view
    assert index._vectors.ctypes.data % 64 == 0  # rows start on a cache line


def test_latency_grid_writes_a_valid_document(search_kernel):
    doc = run_latency_grid((10, 200), (16,), 3, rounds=1, budget_s=0.2)
    validate_document(doc)
    names = {r["backend"] for r in doc["records"]}
    assert {
        "api-auto",
        "api-mojo",
        "api-python",
        "compat-array",
        "compat-list",
        "numpy-raw",
        "numpy-compat-array",
        "numpy-compat-list",
        "kernel-f32",
        "api-auto+numpy",
        "numpy-matvec+api",
    } <= names
    for record in doc["records"]:
        assert record["p50_ms"] > 0 and record["recall_at_k"] == pytest.approx(1.0)
    assert any(r["overhead_us"] is not None for r in doc["records"])
    assert "| 200 x 16 |" in latency_markdown(doc)


def test_fast_built_results_equal_the_dataclasses(make_runtime, search_kernel):
    import dataclasses

    from synapse_mojo.search import SearchHit, SearchResult

    index = PatternIndex(4, runtime=make_runtime())
    index.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2], [{"x": 1}, None])
    result = index.search_detailed(np.eye(4)[0], 2)
    assert {f.name for f in dataclasses.fields(SearchResult)} == set(vars(result))
    assert {f.name for f in dataclasses.fields(SearchHit)} == set(vars(result.hits[0]))
    assert result.hits[0] == SearchHit("a", result.hits[0].score, {"x": 1})
    assert result == SearchResult(result.hits, result.runtime, result.elapsed_ms, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.hits[0].id = "z"  # type: ignore[misc]
