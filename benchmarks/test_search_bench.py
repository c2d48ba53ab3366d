"""Search backends side by side on one dataset (N from SYNAPSE_BENCH_N, default 100,000, d=384)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from synapse_mojo._dev.bench.search import (
    FaissFlat,
    MojoF32,
    MojoInt8,
    NumpyPlain,
    ground_truth,
    make_dataset,
    recall,
)
from synapse_mojo.config import available_cores
from synapse_mojo.search.index import DEFAULT_RERANK_FACTOR

N = int(os.environ.get("SYNAPSE_BENCH_N", "100000"))
DIM = int(os.environ.get("SYNAPSE_BENCH_DIM", "384"))
K = 10
THREADS = available_cores()


@pytest.fixture(scope="module")
def data():
    matrix, queries = make_dataset(N, DIM, 64, seed=7)
    return matrix, queries, ground_truth(matrix, queries, K)


def _runner(name, kernel):
    if name == "mojo-f32":
        return MojoF32(kernel, THREADS)
    if name == "mojo-int8":
        return MojoInt8(kernel, THREADS, DEFAULT_RERANK_FACTOR)
    if name == "numpy":
        return NumpyPlain(THREADS)
    faiss = pytest.importorskip("faiss", reason="uv sync --extra bench")
    return FaissFlat(faiss, THREADS)


@pytest.mark.parametrize("name", ["mojo-f32", "mojo-int8", "numpy", "faiss-flat"])
def test_single_query(benchmark, search_kernel, data, name):
    matrix, queries, truth = data
    runner = _runner(name, search_kernel)
    runner.k = K
    runner.prepare(matrix)
    benchmark.group = f"single query N={N} d={DIM}"
    benchmark.extra_info.update(backend=name, n=N, dim=DIM, bytes=N * DIM * runner.bytes_per_value)
    it = iter(range(10**9))
    rows = benchmark.pedantic(
        lambda: runner.single(queries[next(it) % len(queries)]), rounds=60, warmup_rounds=3
    )
    assert len(rows) == K
    found = [runner.single(q) for q in queries[:20]]
    assert recall(found, truth[:20]) >= (0.99 if name != "mojo-int8" else 0.95)


@pytest.mark.parametrize("name", ["mojo-f32", "numpy", "faiss-flat"])
def test_batch_of_64(benchmark, search_kernel, data, name):
    matrix, queries, truth = data
    runner = _runner(name, search_kernel)
    runner.k = K
    runner.prepare(matrix)
    benchmark.group = f"batch of 64 N={N} d={DIM}"
    benchmark.extra_info.update(backend=name, n=N, dim=DIM, batch=64)
    rows = benchmark.pedantic(lambda: runner.batch(queries), rounds=5, warmup_rounds=1)
    assert recall(list(np.asarray(rows)), truth) >= 0.99
