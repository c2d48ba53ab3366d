"""Every search backend returns the same answer as the pure-Python reference.

Tolerance: scores may differ by ``score_tolerance(d) = 2 * d * 2**-24 + 1e-7`` (the worst-case
float32 summation error for unit vectors, both ways); ids must be identical except where the
reference itself has near-ties within that tolerance (``results_agree``). Exact ties (identical
rows) must rank in insertion order on every backend, with no tolerance.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings

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
from synapse_mojo.search.base import batch_results_agree, lists_topk
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


def _mask(rng: np.random.Generator, n: int) -> np.ndarray:
    """A liveness mask: half the rows, or all but a few (an index's removed rows, where the
    scans take whole blocks of eligible rows the fast way and the rest one by one)."""
    live = 0.5 if rng.random() < 0.5 else 0.97
    return (rng.random(n) < live).astype(np.uint8)


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
    mask = _mask(rng, n) if masked else None
    want = REFERENCE.topk(matrix, query, k, mask)
    for backend in _backends(search_kernel):
        for _ in range(2):  # the kernel's scan direction alternates from call to call
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
        for _ in range(2):  # both scan directions
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
    mask = _mask(rng, n) if masked else None
    want = REFERENCE.topk_batch(matrix, queries, k, mask)
    for backend in _backends(search_kernel):
        got = backend.topk_batch(matrix, queries, k, mask)
        assert batch_results_agree(want, got, d), backend


@pytest.mark.parametrize("d", [5, 16, 67, 384])
def test_exact_ties_rank_in_insertion_order(search_kernel, d):
    """Five equal rows in different chunks (the kernel's scans alternate direction from call
    to call, so a participant meets them in either order): the lowest rows win, every call,
    for the float32 scan and the fused cosine scan (scaled copies tie there)."""
    rng = np.random.default_rng(d)
    raw = rng.standard_normal((1100, d))
    for row in (3, 77, 150, 700, 1099):
        raw[row] = raw[40]
    matrix = as_matrix(raw, d)
    query = np.ascontiguousarray(matrix[40] + 0)  # the duplicated row: six rows tie at the top
    scaled = np.ascontiguousarray(matrix * np.float32(2.0))  # cosine unchanged, exactly
    tied = [3, 40, 77, 150, 700, 1099]
    for backend in [REFERENCE, *_backends(search_kernel)]:
        for k in (3, 6):
            for _ in range(2):  # two calls in a row: one in each direction
                top = backend.topk(matrix, query, k)
                assert top.rows.tolist() == tied[:k], backend
                assert len(set(top.scores.tolist())) == 1, backend
            for _ in range(2):
                cos = backend.topk_cosine(scaled, query, k)
                assert cos is not None and cos.rows.tolist() == tied[:k], backend


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


# ------------------------------------------------------------------ the pair helper (2 workers)


def _pooled(kernel) -> MojoSearchBackend:
    return MojoSearchBackend(kernel, threads=2, grain=64, inline_below=0)


def test_pooled_scans_from_many_threads_agree(search_kernel):
    """Concurrent callers share one pair helper: one owns it, the others run alone; every
    answer equals the reference."""
    matrix, rng = _data(3, 3000, 67)
    queries = as_queries(rng.standard_normal((8, 67)), 67)
    want = [REFERENCE.topk(matrix, q, 7) for q in queries]
    backend = _pooled(search_kernel)
    failures: list[int] = []

    def worker(i: int) -> None:
        for _ in range(300):
            q = queries[i % len(queries)]
            if not results_agree(want[i % len(queries)], backend.topk(matrix, q, 7), 67):
                failures.append(i)
            got = backend.topk_cosine(np.ascontiguousarray(matrix * 2.5), q, 7)
            if got is None or not results_agree(want[i % len(queries)], got, 67):
                failures.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_pooled_scans_after_the_helper_parked_agree(search_kernel):
    """Calls that find the helper parked wake it (it may land on the caller's CPU, and then
    leaves the job to the caller) and calls right after find it awake or waking; every
    answer, float32 and cosine, small and over 4 MB, equals the reference."""
    backend = _pooled(search_kernel)
    for n, d in ((500, 64), (1100, 1024)):  # 128 KB and 4.5 MB of float32
        matrix, rng = _data(5, n, d)
        queries = as_queries(rng.standard_normal((3, d)), d)
        for i in range(12):
            q = queries[i % 3]
            want = REFERENCE.topk(matrix, q, 6)
            if i % 2 == 0:
                time.sleep(0.005)  # the helper parks 20 us after a call
            assert results_agree(want, backend.topk(matrix, q, 6), d)
            got = backend.topk_cosine(np.ascontiguousarray(matrix * 0.5), q, 6)
            assert got is not None and results_agree(want, got, d)


def _thread_cpus() -> dict[str, str]:
    """Each thread of this process: the CPUs it may run on (Linux's /proc)."""
    out = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/status") as status:
                for line in status:
                    if line.startswith("Cpus_allowed_list:"):
                        out[task] = line.split(":", 1)[1].strip()
        except OSError:  # the thread ended meanwhile
            continue
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU affinity: Linux only")
def test_waking_the_parked_helper_leaves_every_thread_on_its_cpus(search_kernel):
    """A caller that wakes the parked helper keeps it off its own CPU for the wake-up only
    (the helper restores its mask when it runs): afterwards every thread of the process may
    run on the CPUs it started with, and a forked child's calls leave the parent's helper
    alone."""
    matrix, rng = _data(6, 3000, 256)  # 3 MB: pooled
    query = as_queries(rng.standard_normal(256), 256)[0]
    want = REFERENCE.topk(matrix, query, 5)
    backend = _pooled(search_kernel)
    before = _thread_cpus()
    for _ in range(8):
        time.sleep(0.005)  # the helper parks 20 us after a call
        assert results_agree(want, backend.topk(matrix, query, 5), 256)
    time.sleep(0.05)
    after = _thread_cpus()
    assert {task: after[task] for task in before if task in after} == {
        task: before[task] for task in before if task in after
    }
    allowed = before[str(threading.get_native_id())]
    assert set(after.values()) == {allowed}, after  # the helper too
    if not hasattr(os, "fork"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: intended
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        ok = True
        for _ in range(6):
            time.sleep(0.005)
            ok = ok and results_agree(want, backend.topk(matrix, query, 5), 256)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert set(_thread_cpus().values()) == {allowed}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_pooled_scan_in_a_forked_child(search_kernel):
    """After fork() the child has no helper thread: its pooled scans run alone and agree."""
    matrix, rng = _data(4, 2000, 33)
    query = as_queries(rng.standard_normal(33), 33)[0]
    want = REFERENCE.topk(matrix, query, 5)
    backend = _pooled(search_kernel)
    assert results_agree(want, backend.topk(matrix, query, 5), 33)  # the helper is running
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: intended
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        ok = all(results_agree(want, backend.topk(matrix, query, 5), 33) for _ in range(20))
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_process_exits_while_the_helper_is_parked(search_kernel):
    """The helper thread never holds up interpreter exit (it is detached and parked)."""
    script = (
        "import importlib.machinery, importlib.util, sys, time\n"
        "import numpy as np\n"
        "loader = importlib.machinery.ExtensionFileLoader('pattern_search', sys.argv[1])\n"
        "spec = importlib.util.spec_from_file_location('pattern_search', sys.argv[1], "
        "loader=loader)\n"
        "m = importlib.util.module_from_spec(spec); loader.exec_module(m)\n"
        "a = np.random.default_rng(0).standard_normal((4000, 64), dtype=np.float32)\n"
        "rows, scores = np.empty(5, np.int64), np.empty(5, np.float32)\n"
        "for _ in range(3):\n"
        "    m.topk((a.ctypes.data, 4000, 64, a[7].ctypes.data, 5, 0, 2, rows.ctypes.data, "
        "scores.ctypes.data, 0))\n"
        "assert rows[0] == 7\n"
        "time.sleep(0.05)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, search_kernel.__file__],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("n", [5, 20, 300])
@pytest.mark.parametrize("finite", [True, False])
def test_numpy_selection_never_ranks_nan_scores(n, finite):
    """select_topk's fast paths (no finite pass) fall back to the careful one on NaN."""
    from synapse_mojo.search.numpy_backend import select_topk

    scores = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    scores[[2, 4]] = np.nan
    for k in (1, 3, n - 2, n):
        top = select_topk(scores, k, finite=finite)
        assert len(top.rows) == min(k, n - 2) and not np.isnan(top.scores).any()
        assert top.scores.tolist() == sorted(top.scores.tolist(), reverse=True)


def test_kernel_rejects_a_malformed_argument_tuple(search_kernel):
    """The extension converts its argument tuple in one pass; a wrong tuple raises, never
    crashes (the Python layer always passes integers)."""
    for bad in ((1.5,) * 10, (0, 1, 2), [0] * 10, None):
        with pytest.raises(Exception, match="expected a tuple of 10 integers"):
            search_kernel.topk(bad)


# ---------------------------------------------------------------- one call: raw query, lists out


def _mojo_backends(kernel) -> list:
    return _backends(kernel)[1:]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 400),
    d=st.sampled_from([1, 2, 3, 15, 16, 17, 33, 67, 384]),
    k=st.integers(1, 40),
    masked=st.booleans(),
    scale=st.sampled_from([1e-12, 0.01, 1.0, 37.5, 1e12]),
)
def test_topk_lists_matches_reference(search_kernel, seed, n, d, k, masked, scale):
    """The index's one-call path: the kernel normalises the caller's raw float32 query
    (magnitudes from 1e-12 to 1e12) and answers as lists; inline and pooled, vs the reference
    over the query normalised in Python."""
    matrix, rng = _data(seed, n, d)
    raw_query = (rng.standard_normal(d) * scale).astype(np.float32)
    query = as_queries(raw_query.astype(np.float64), d)[0]
    mask = _mask(rng, n) if masked else None
    want = REFERENCE.topk(matrix, query, k, mask)
    for backend in _mojo_backends(search_kernel):
        got = backend.topk_lists_with(0, matrix, raw_query, k, mask, 0)
        if len(want.rows) == 0:
            assert got == ([], [])  # nothing eligible (the query was checked: it is good)
            continue
        assert got is not None and results_agree(want, lists_topk(got), d), (backend, got)
        assert type(got[0][0]) is int and type(got[1][0]) is float


class _Hit:
    """A plain result class for the ``topk_hits`` tests."""


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 300),
    d=st.sampled_from([1, 3, 16, 17, 67, 384]),
    k=st.integers(1, 40),
    scale=st.sampled_from([1e-12, 1.0, 1e12]),
    masked=st.booleans(),
)
def test_topk_hits_matches_reference(search_kernel, seed, n, d, k, scale, masked):
    """``topk_hits``: the reference's rows and scores, as ``HitBuilder.build`` makes them
    (the row's id, the score, a new dict of its metadata, ``{}`` for a falsy entry); with
    a liveness mask (an index with removed rows), over the live rows only."""
    from synapse_mojo.search.base import HitBuilder

    matrix, rng = _data(seed, n, d)
    raw_query = (rng.standard_normal(d) * scale).astype(np.float32)
    query = as_queries(raw_query.astype(np.float64), d)[0]
    builder = HitBuilder(_Hit, ("id", "score", "metadata"))
    ids = [f"id-{row}" for row in range(n)]
    kinds = rng.integers(0, 3, n)
    metas = [
        None if kind == 0 else {} if kind == 1 else {"row": row} for row, kind in enumerate(kinds)
    ]
    mask = _mask(rng, n) if masked else None
    want = REFERENCE.topk(matrix, query, k, mask)
    for backend in _mojo_backends(search_kernel):
        got = backend.topk_hits_with(0, matrix, raw_query, k, 0, builder, ids, metas, mask)
        assert got is not None and len(got) == len(want.rows)
        got_lists = ([int(h.id[3:]) for h in got], [h.score for h in got])
        assert results_agree(want, lists_topk(got_lists), d), (backend, got_lists)
        for hit in got:
            row = int(hit.id[3:])
            assert type(hit) is _Hit and list(vars(hit)) == ["id", "score", "metadata"]
            assert type(hit.score) is float
            assert hit.metadata == (metas[row] or {}) and hit.metadata is not metas[row]


def test_topk_hits_refuses_what_topk_lists_refuses(search_kernel):
    """A query the kernel will not take scans nothing and builds nothing; a malformed
    names tuple raises (never a crash)."""
    from synapse_mojo.search.base import HitBuilder

    rng = np.random.default_rng(5)
    matrix = as_matrix(rng.standard_normal((20, 9)).astype(np.float32), 9)
    backend = MojoSearchBackend(search_kernel, threads=1)
    ids, metas = [f"p{i}" for i in range(20)], [None] * 20
    builder = HitBuilder(_Hit, ("id", "score", "metadata"))
    for bad in (np.zeros(9, np.float32), np.full(9, np.nan, np.float32)):
        assert backend.topk_hits_with(0, matrix, bad, 3, 0, builder, ids, metas) is None
    q = rng.standard_normal(9).astype(np.float32)
    with pytest.raises(Exception, match="three attribute names"):
        backend.topk_hits_with(0, matrix, q, 3, 0, HitBuilder(_Hit, ("id",)), ids, metas)  # type: ignore[arg-type]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 300),
    d=st.sampled_from([1, 3, 16, 17, 67, 384]),
    k=st.integers(1, 40),
    zero_row=st.booleans(),
)
def test_cosine_lists_matches_reference(search_kernel, seed, n, d, k, zero_row):
    """compat's one-call path: raw rows and raw query as array objects, lists out."""
    matrix, rng = _data(seed, n, d)
    raw = np.ascontiguousarray(matrix * rng.uniform(0.01, 100.0, (n, 1)).astype(np.float32))
    if zero_row:
        raw[rng.integers(0, n)] = 0.0
    raw_query = (rng.standard_normal(d) * 3.0).astype(np.float32)
    query = as_queries(raw_query.astype(np.float64), d)[0]
    want = REFERENCE.topk_cosine(raw, query, k)
    assert want is not None
    for backend in _mojo_backends(search_kernel):
        got = backend.cosine_lists_with(0, raw, raw_query, k)
        assert type(got) is tuple and results_agree(want, lists_topk(got), d), (backend, got)


def test_one_call_paths_refuse_what_they_cannot_read(search_kernel):
    """What the kernel will not read it refuses, scanning nothing: the Python side then
    validates (errors) or normalises in float64. Never a crash, never a wrong read."""
    from synapse_mojo.search.mojo_backend import (
        QUERY_NOT_ACCEPTED,
        ROW_NOT_FINITE,
        ROWS_NOT_ACCEPTED,
    )

    rng = np.random.default_rng(3)
    n, d = 50, 17
    raw = rng.standard_normal((n, d)).astype(np.float32)
    matrix = as_matrix(raw, d)
    q = rng.standard_normal(d).astype(np.float32)
    backend = MojoSearchBackend(search_kernel, threads=1)
    bad_queries = {
        "zero": np.zeros(d, np.float32),
        "nan": np.where(np.arange(d) == 3, np.nan, q).astype(np.float32),
        "inf": np.where(np.arange(d) == 3, np.inf, q).astype(np.float32),
        "tiny": np.full(d, 1e-20, np.float32),  # sum of squares below 1e-30
        "huge": np.full(d, 1e18, np.float32),  # above 1e30
        "short": q[:-1].copy(),
        "long": np.append(q, np.float32(1.0)),
        "strided": np.repeat(q, 2)[::2],
        "2-d": q.reshape(1, d),
        "unaligned": np.frombuffer(b"\0" + q.tobytes(), dtype=np.float32, offset=1, count=d),
    }
    assert not bad_queries["unaligned"].flags.aligned
    for name, bad in bad_queries.items():
        assert backend.topk_lists_with(0, matrix, bad, 5, None, 0) is None, name
        assert backend.cosine_lists_with(0, raw, bad, 5) == QUERY_NOT_ACCEPTED, name
    nan_rows = raw.copy()
    nan_rows[7, 2] = np.nan
    assert backend.cosine_lists_with(0, nan_rows, q, 5) == ROW_NOT_FINITE
    for name, rows in {
        "fortran": np.asfortranarray(raw),
        "reversed": raw[::-1],
        "column slice": np.ascontiguousarray(np.hstack([raw, raw]))[:, :d],
    }.items():
        assert backend.cosine_lists_with(0, rows, q, 5) == ROWS_NOT_ACCEPTED, name
    # The addresses the kernel reads are NumPy's own.
    assert search_kernel.array_address((n, d, raw)) == raw.ctypes.data
    assert search_kernel.array_address((0, d, q)) == q.ctypes.data
    assert search_kernel.array_address((n, d, raw[::-1])) == 0


def test_scan_order_forward_reversed_and_alternating_agree(search_kernel):
    """The kernel's scan direction (alternating by default, fixed for tests and benchmarks
    through ``scan_order``): every order gives the same answer, inline and on two workers."""
    matrix, rng = _data(11, 3000, 64, duplicates=20)
    queries = as_queries(rng.standard_normal((3, 64)), 64)
    backends = [
        MojoSearchBackend(search_kernel, threads=1),
        MojoSearchBackend(search_kernel, threads=2, grain=64, inline_below=0),
    ]
    try:
        assert search_kernel.scan_order((1,)) == 0  # the default: alternate
        answers = {}
        for order in (1, 2, 0):
            assert search_kernel.scan_order((order,)) in (0, 1, 2)
            for backend in backends:
                for q_number, q in enumerate(queries):
                    for _ in range(2):
                        top = backend.topk(matrix, q, 25)
                        cos = backend.topk_cosine(matrix * np.float32(3.0), q, 25)
                        assert cos is not None
                        key = (backend.workers(matrix.size), q_number)
                        got = (top.rows.tolist(), cos.rows.tolist())
                        assert answers.setdefault(key, got) == got, (order, key)
        with pytest.raises(Exception, match="scan order"):
            search_kernel.scan_order((3,))
    finally:
        search_kernel.scan_order((0,))
