"""The pilot's PatternSearch().search(query_vector, pattern_vectors, top_k)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_mojo import DimensionMismatchError, InvalidInputError, set_runtime
from synapse_mojo.compat import PatternSearch, Runtime, RuntimeResult, create_pattern_search
from synapse_mojo.search.fingerprint import fingerprint


@pytest.fixture
def search(make_runtime, search_kernel):
    # Mode "on": these tests are about the kernel's answers; in "auto" small scans may be
    # answered by NumPy where the shipped crossovers say it is faster (test_search_dispatch).
    rt = make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on")
    set_runtime(rt)
    return PatternSearch(rt)


def _brute_force(q, patterns, k):
    p = np.asarray(patterns, dtype=np.float64)
    norms = np.linalg.norm(p, axis=1)
    norms[norms == 0] = 1
    scores = (p / norms[:, None]) @ (np.asarray(q, np.float64) / np.linalg.norm(q))
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return order, scores[order]


def test_lists_and_unnormalised_vectors(search):
    rng = np.random.default_rng(0)
    patterns = (rng.standard_normal((300, 16)) * rng.uniform(0.1, 50, (300, 1))).tolist()
    q = (np.array(patterns[42]) * 3).tolist()
    indices, scores, result = search.search(q, patterns, top_k=5)
    want_idx, want_scores = _brute_force(q, patterns, 5)
    assert isinstance(indices, list) and isinstance(scores, list)  # the pilot returns lists
    assert indices == want_idx.tolist()
    assert np.allclose(scores, want_scores, atol=1e-5)
    assert (
        isinstance(result, RuntimeResult) and result.success and result.runtime_used is Runtime.MOJO
    )


def test_k_larger_than_n_returns_n_without_padding(search):
    indices, scores, _ = search.search([1, 0], [[1, 0], [0, 1], [1, 1]], top_k=10)
    assert indices == [0, 2, 1] and len(scores) == 3


def test_the_callers_rows_are_scanned_in_place_each_call(search):
    rng = np.random.default_rng(1)
    patterns = rng.standard_normal((500, 24)).astype(np.float32)
    assert search.search(patterns[0], patterns, 3)[0][0] == 0
    assert not hasattr(search, "_matrix")  # nothing prepared, copied or cached between calls
    patterns[7] = -patterns[7]  # edited in place: the next call sees it
    idx, _, _ = search.search(patterns[7], patterns, 1)
    assert idx[0] == 7
    idx, _, _ = search.search(
        patterns[7], list(patterns), 1, version=1
    )  # list input; version unused
    assert idx[0] == 7


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(1, 200),
    cols=st.integers(1, 70),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**31),
    as_list=st.booleans(),
)
def test_fused_cosine_scan_matches_the_reference(search, rows, cols, k, seed, as_list):
    """Raw rows at mixed scales, zero rows and exact duplicates, on both input shapes."""
    rng = np.random.default_rng(seed)
    patterns = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 100, (rows, 1))).astype(
        np.float32
    )
    patterns[rng.random(rows) < 0.1] = 0.0
    if rows > 3:
        patterns[rows - 1] = patterns[1]
    q = rng.standard_normal(cols).astype(np.float32)
    idx, scores, _ = search.search(q, list(patterns) if as_list else patterns, k)
    want_idx, want_scores = _brute_force(q, patterns, min(k, rows))
    from synapse_mojo.search import TopK, results_agree

    got = TopK(np.array(idx, np.int64), np.array(scores, np.float32))
    want = TopK(want_idx.astype(np.int64), want_scores.astype(np.float32))
    assert results_agree(got, want, cols), f"seed={seed}"


def test_zero_patterns_score_zero_and_bad_input_is_clear(search):
    idx, scores, _ = search.search([1, 0], [[0, 0], [1, 0]], top_k=2)
    assert idx == [1, 0] and scores[1] == 0
    with pytest.raises(DimensionMismatchError):
        search.search([1, 0, 0], [[1, 0]], 1)
    with pytest.raises(InvalidInputError, match="NaN"):
        search.search([1, 0], [[np.nan, 0]], 1)
    with pytest.raises(InvalidInputError, match="equal-length"):
        search.search([1, 0], [[1, 0], [1]], 1)
    idx, scores, result = search.search([1, 0], [], 3)
    assert idx == [] and scores == [] and result.success


def test_falls_back_to_python_on_kernel_fault(make_runtime, search_kernel):
    rt = make_runtime(SYNAPSE_FAULT_PATTERN_SEARCH="raise", SYNAPSE_FEATURE_PATTERN_SEARCH="on")
    idx, _, result = PatternSearch(rt).search([0, 1], [[1, 0], [0, 1]], 1)
    assert idx == [1] and result.runtime_used is Runtime.PYTHON and "injected fault" in result.error


def test_a_zero_query_scores_zero_as_in_the_pilot(search):
    idx, scores, result = search.search(
        np.zeros(8, np.float32), np.eye(8, dtype=np.float32)[::-1], top_k=3
    )
    assert idx == [0, 1, 2] and scores == [0.0, 0.0, 0.0] and result.success


def test_factory_and_status_as_the_pilot_reports_them(make_runtime, search_kernel, monkeypatch):
    set_runtime(make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="auto"))
    searcher = create_pattern_search()
    assert (
        isinstance(searcher, PatternSearch)
        and searcher.adapter is not None
        and searcher.mojo_enabled is True
    )
    assert searcher.adapter.mojo_available and searcher.adapter.runtime is Runtime.MOJO
    assert searcher.get_runtime_status() == {
        "mojo_available": True,
        "mojo_enabled": True,
        "current_runtime": "mojo",
        "force_python": False,
        "mojo_module_exists": True,
    }
    query = np.arange(1, 9, dtype=np.float32)
    _, _, result = searcher.search(query, [np.roll(query, i) for i in range(8)], top_k=2)
    # auto: the kernel, unless the shipped crossovers say NumPy answers an 8 x 8 scan faster
    expected = (
        Runtime.PYTHON if searcher._backend.crossovers.cosine_numpy_faster(64) else Runtime.MOJO
    )
    assert (
        result.runtime_used is expected
        and result.runtime_used.value == expected.value
        and result.execution_time_ms > 0
    )
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    assert searcher.get_runtime_status()["current_runtime"] == "python"
    assert create_pattern_search().mojo_enabled is False


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.integers(1, 300), cols=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_fingerprint_kernel_equals_numpy_and_detects_edits(search_kernel, rows, cols, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, cols)).astype(np.float32)
    assert fingerprint(a, search_kernel) == fingerprint(a)
    b = a.copy()
    b.flat[rng.integers(0, b.size)] += 1.0
    assert fingerprint(b, search_kernel) != fingerprint(a, search_kernel)


def test_float32_arrays_take_one_call_and_keep_every_rule(search, make_runtime, search_kernel):
    """The pilot's usual call (float32 arrays) goes to the runtime in one call; whatever it
    refuses takes the checked path, so the rules are the same as for lists."""
    rng = np.random.default_rng(11)
    patterns = (rng.standard_normal((64, 12)) * rng.uniform(0.5, 9, (64, 1))).astype(np.float32)
    q = (rng.standard_normal(12) * 40).astype(np.float32)
    fast = search.search(q, patterns, 6)
    checked = search.search(q.astype(np.float64), patterns, 6)  # float64: the checked path
    assert fast[0] == checked[0] and fast[1] == pytest.approx(checked[1], abs=1e-5)
    assert type(fast[0][0]) is int and type(fast[1][0]) is float
    assert fast[2].runtime_used is Runtime.MOJO and fast[2].result == (fast[0], fast[1])
    with pytest.raises(DimensionMismatchError):
        search.search(q[:-1].copy(), patterns, 3)
    nan_rows = patterns.copy()
    nan_rows[5, 5] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        search.search(q, nan_rows, 3)
    with pytest.raises(InvalidInputError, match="NaN"):
        search.search(np.full(12, np.nan, np.float32), patterns, 3)
    huge = patterns * np.float32(1e30)  # squares overflow float32: normalised in float64
    assert search.search(q, huge, 6)[0] == checked[0]
    for fault, runtime in (("raise", Runtime.PYTHON), ("wrong", Runtime.MOJO)):
        rt = make_runtime(SYNAPSE_FAULT_PATTERN_SEARCH=fault, SYNAPSE_FEATURE_PATTERN_SEARCH="on")
        idx, _, result = PatternSearch(rt).search(q, patterns, 6)
        assert result.runtime_used is runtime, fault
        if fault == "raise":
            assert idx == checked[0] and "injected fault" in result.error
        else:  # the kernel's wrong-answer fault: the least similar rows
            assert idx == search.search(-q, patterns, 6)[0]
