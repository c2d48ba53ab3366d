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
    rt = make_runtime()
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
    assert isinstance(result, RuntimeResult) and result.success and result.runtime_used is Runtime.MOJO


def test_k_larger_than_n_returns_n_without_padding(search):
    indices, scores, _ = search.search([1, 0], [[1, 0], [0, 1], [1, 1]], top_k=10)
    assert indices == [0, 2, 1] and len(scores) == 3


def test_prepared_matrix_is_reused_and_changes_are_detected_by_content(search):
    rng = np.random.default_rng(1)
    patterns = rng.standard_normal((500, 24)).astype(np.float32)
    search.search(patterns[0], patterns, 3)
    prepared = search._matrix
    search.search(patterns[1], patterns.copy(), 3)  # equal content, different object
    assert search._matrix is prepared
    patterns[7] = -patterns[7]  # in place: same id(), new content
    idx, _, _ = search.search(patterns[7], patterns, 1)
    assert search._matrix is not prepared and idx[0] == 7
    swapped = patterns[[1, 0, *range(2, 500)]]  # a row swap changes the fingerprint too
    assert fingerprint(swapped) != fingerprint(patterns)


def test_version_skips_the_content_check(search):
    patterns = np.eye(4, dtype=np.float32)
    search.search([1, 0, 0, 0], patterns, 1, version=1)
    prepared = search._matrix
    search.search([1, 0, 0, 0], patterns, 1, version=1)
    assert search._matrix is prepared
    search.search([1, 0, 0, 0], patterns, 1, version=2)
    assert search._matrix is not prepared


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
    rt = make_runtime(SYNAPSE_FAULT_PATTERN_SEARCH="raise")
    idx, _, result = PatternSearch(rt).search([0, 1], [[1, 0], [0, 1]], 1)
    assert idx == [1] and result.runtime_used is Runtime.PYTHON and "injected fault" in result.error


def test_a_zero_query_scores_zero_as_in_the_pilot(search):
    idx, scores, result = search.search(np.zeros(8, np.float32), np.eye(8, dtype=np.float32)[::-1], top_k=3)
    assert idx == [0, 1, 2] and scores == [0.0, 0.0, 0.0] and result.success


def test_factory_and_status_as_the_pilot_reports_them(make_runtime, search_kernel, monkeypatch):
    set_runtime(make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="auto"))
    searcher = create_pattern_search()
    assert isinstance(searcher, PatternSearch) and searcher.adapter is not None and searcher.mojo_enabled is True
    assert searcher.adapter.mojo_available and searcher.adapter.runtime is Runtime.MOJO
    assert searcher.get_runtime_status() == {
        "mojo_available": True, "mojo_enabled": True, "current_runtime": "mojo",
        "force_python": False, "mojo_module_exists": True,
    }
    query = np.arange(1, 9, dtype=np.float32)
    _, _, result = searcher.search(query, [np.roll(query, i) for i in range(8)], top_k=2)
    assert result.runtime_used is Runtime.MOJO and result.runtime_used.value == "mojo" and result.execution_time_ms > 0
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    assert searcher.get_runtime_status()["current_runtime"] == "python"
    assert create_pattern_search().mojo_enabled is False


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 300), cols=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_fingerprint_kernel_equals_numpy_and_detects_edits(search_kernel, rows, cols, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, cols)).astype(np.float32)
    assert fingerprint(a, search_kernel) == fingerprint(a)
    b = a.copy()
    b.flat[rng.integers(0, b.size)] += 1.0
    assert fingerprint(b, search_kernel) != fingerprint(a, search_kernel)
