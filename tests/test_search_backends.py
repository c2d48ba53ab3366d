"""Every search backend returns the same answer as the pure-Python reference.

Tolerance: scores may differ by ``score_tolerance(d) = 2 * d * 2**-24 + 1e-7`` (the worst-case
float32 summation error for unit vectors, both ways); ids must be identical except where the
reference itself has near-ties within that tolerance (``results_agree``). Exact ties (identical
rows) must rank in insertion order on every backend, with no tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_mojo.search import (
    MojoSearchBackend,
    NumpySearchBackend,
    PythonSearchBackend,
    TopK,
    results_agree,
)
from synapse_mojo.search.base import batch_results_agree
from synapse_mojo.search.validation import as_matrix, as_queries

REFERENCE = PythonSearchBackend()


def _backends(kernel) -> list:
    # grain=64 and inline_below=0 force several workers even on tiny inputs, so the pooled
    # scan and the parallel merge are exercised; the default backend runs them inline.
    return [
        NumpySearchBackend(),
        MojoSearchBackend(kernel, threads=1),
        MojoSearchBackend(kernel, threads=2),
        MojoSearchBackend(kernel, threads=2, grain=64, inline_below=0),
        MojoSearchBackend(kernel, threads=3, grain=64, inline_below=0),
    ]


def _data(seed: int, n: int, d: int, duplicates: int = 0):
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n, d))
    for _ in range(min(duplicates, n - 1)):
        raw[rng.integers(0, n)] = raw[rng.integers(0, n)]
    return as_matrix(raw, d), rng


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 600),
    d=st.sampled_from([1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 67, 100, 384]),
    k=st.integers(1, 50),
    masked=st.booleans(),
    duplicates=st.integers(0, 5),
)
def test_single_query_matches_reference(search_kernel, seed, n, d, k, masked, duplicates):
    matrix, rng = _data(seed, n, d, duplicates)
    query = as_queries(rng.standard_normal(d), d)[0]
    mask = (rng.random(n) < 0.5).astype(np.uint8) if masked else None
    want = REFERENCE.topk(matrix, query, k, mask)
    for backend in _backends(search_kernel):
        got = backend.topk(matrix, query, k, mask)
        assert results_agree(want, got, d), (backend, want, got)
        if mask is not None:
            assert all(mask[r] for r in got.rows)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 300),
    d=st.sampled_from([1, 3, 15, 16, 17, 33, 67, 384]),
    k=st.integers(1, 40),
    duplicates=st.integers(0, 3),
    zero_row=st.booleans(),
)
def test_cosine_over_raw_rows_matches_reference(search_kernel, seed, n, d, k, duplicates, zero_row):
    """The fused cosine scan (rows not normalised, scaled by up to 100x, a zero row, exact
    duplicates) on every backend, inline and pooled, vs the reference."""
    matrix, rng = _data(seed, n, d, duplicates)
    raw = np.ascontiguousarray(matrix * rng.uniform(0.01, 100.0, (n, 1)).astype(np.float32))
    if zero_row:
        raw[rng.integers(0, n)] = 0.0
    query = as_queries(rng.standard_normal(d), d)[0]
    want = REFERENCE.topk_cosine(raw, query, k)
    assert want is not None
    for backend in _backends(search_kernel):
        got = backend.topk_cosine(raw, query, k)
        assert got is not None and results_agree(want, got, d), (backend, want, got)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 300),
    d=st.sampled_from([3, 16, 17, 67, 128]),
    b=st.integers(1, 9),
    k=st.integers(1, 20),
    masked=st.booleans(),
)
def test_batch_matches_reference(search_kernel, seed, n, d, b, k, masked):
    matrix, rng = _data(seed, n, d)
    queries = as_queries(rng.standard_normal((b, d)), d)
    mask = (rng.random(n) < 0.7).astype(np.uint8) if masked else None
    want = REFERENCE.topk_batch(matrix, queries, k, mask)
    for backend in _backends(search_kernel):
        got = backend.topk_batch(matrix, queries, k, mask)
        assert batch_results_agree(want, got, d), backend


@pytest.mark.parametrize("d", [5, 16, 67, 384])
def test_exact_ties_rank_in_insertion_order(search_kernel, d):
    rng = np.random.default_rng(d)
    raw = rng.standard_normal((257, d))
    for row in (3, 77, 150, 256):
        raw[row] = raw[40]
    matrix = as_matrix(raw, d)
    query = matrix[40] + 0  # the duplicated row itself: five rows tie at the top
    for backend in [REFERENCE, *_backends(search_kernel)]:
        top = backend.topk(matrix, np.ascontiguousarray(query), 5)
        assert top.rows.tolist() == [3, 40, 77, 150, 256], backend
        assert len(set(top.scores.tolist())) == 1, backend


def test_k_larger_than_eligible_returns_all(search_kernel):
    matrix, rng = _data(1, 10, 8)
    query = as_queries(rng.standard_normal(8), 8)[0]
    mask = np.zeros(10, np.uint8)
    mask[[2, 5, 7]] = 1
    for backend in [REFERENCE, *_backends(search_kernel)]:
        assert len(backend.topk(matrix, query, 50).rows) == 10
        top = backend.topk(matrix, query, 50, mask)
        assert sorted(top.rows.tolist()) == [2, 5, 7]


def test_large_case_against_numpy(search_kernel):
    """One realistic size (the reference is too slow here): Mojo vs NumPy, 2 workers."""
    matrix, rng = _data(5, 50_000, 384)
    queries = as_queries(rng.standard_normal((4, 384)), 384)
    mojo = MojoSearchBackend(search_kernel, threads=2)
    numpy_backend = NumpySearchBackend()
    for q in queries:
        assert results_agree(numpy_backend.topk(matrix, q, 100), mojo.topk(matrix, q, 100), 384)
    assert batch_results_agree(
        numpy_backend.topk_batch(matrix, queries, 10), mojo.topk_batch(matrix, queries, 10), 384
    )


def test_results_agree_detects_real_differences():
    a = TopK(np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1], np.float32))
    assert results_agree(a, a, 16)
    assert not results_agree(
        a, TopK(np.array([1, 3, 2]), np.array([0.9, 0.5, 0.1], np.float32)), 16
    )
    assert not results_agree(
        a, TopK(np.array([1, 2, 3]), np.array([0.9, 0.4, 0.1], np.float32)), 16
    )
    near = TopK(np.array([1, 2, 3]), np.array([0.9, 0.5, 0.5], np.float32))
    assert results_agree(near, TopK(np.array([1, 3, 2]), np.array([0.9, 0.5, 0.5], np.float32)), 16)
