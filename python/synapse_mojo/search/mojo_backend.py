"""The Mojo backend: a thin shell over the ``pattern_search`` kernel module.

It allocates the output buffers, passes addresses of already-validated arrays and slices the
result. ``self_check`` / ``self_check_batch`` compare the kernel with the pure-Python reference
at start-up (the runtime adapter calls them before the first Mojo call).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ..config import available_cores
from .base import (
    BatchTopK,
    SearchBackend,
    TopK,
    batch_results_agree,
    eligible_count,
    results_agree,
    threads_for,
)
from .quantization import ScalarQuantizer, quantize_query
from .reference import PythonSearchBackend


class MojoSearchBackend(SearchBackend):
    name = "mojo"

    def __init__(
        self, kernel: ModuleType, threads: int = 0, fault: int = 0, grain: int = 1 << 17
    ) -> None:
        self._kernel = kernel
        self._threads = threads if threads > 0 else available_cores()
        self._fault = fault
        self._grain = grain  # multiply-adds per worker below which fewer workers start

    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK:
        n, d = matrix.shape
        width = min(k, eligible_count(n, mask))
        rows = np.empty(max(width, 1), dtype=np.int64)
        scores = np.empty(max(width, 1), dtype=np.float32)
        if width == 0:
            return TopK(rows[:0], scores[:0])
        count = self._kernel.topk(
            (
                matrix.ctypes.data,
                n,
                d,
                query.ctypes.data,
                width,
                0 if mask is None else mask.ctypes.data,
                threads_for(n * d, self._threads, self._grain),
                rows.ctypes.data,
                scores.ctypes.data,
                self._fault,
            )
        )
        return TopK(rows[:count], scores[:count])

    def topk_batch(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> BatchTopK:
        n, d = matrix.shape
        b = queries.shape[0]
        width = min(k, eligible_count(n, mask))
        rows = np.empty((b, max(width, 1)), dtype=np.int64)
        scores = np.empty((b, max(width, 1)), dtype=np.float32)
        if width == 0 or b == 0:
            return BatchTopK(rows[:, :0], scores[:, :0])
        count = self._kernel.topk_batch(
            (
                matrix.ctypes.data,
                n,
                d,
                queries.ctypes.data,
                b,
                width,
                0 if mask is None else mask.ctypes.data,
                threads_for(n * d, self._threads, self._grain),
                rows.ctypes.data,
                scores.ctypes.data,
                self._fault,
            )
        )
        return BatchTopK(rows[:, :count], scores[:, :count])


    def topk_int8(
        self,
        codes: np.ndarray,
        vectors: np.ndarray,
        query_i8: np.ndarray,
        query: np.ndarray,
        k: int,
        candidates: int,
        mask: np.ndarray | None = None,
    ) -> TopK:
        n, d = codes.shape
        width = min(k, eligible_count(n, mask))
        rows = np.empty(max(width, 1), dtype=np.int64)
        scores = np.empty(max(width, 1), dtype=np.float32)
        if width == 0:
            return TopK(rows[:0], scores[:0])
        count = self._kernel.topk_int8(
            (
                codes.ctypes.data,
                vectors.ctypes.data,
                n,
                d,
                query.ctypes.data,
                query_i8.ctypes.data,
                width,
                max(width, candidates),
                0 if mask is None else mask.ctypes.data,
                # uint8 codes: a quarter of the bytes per row, so a quarter of the grain.
                threads_for(n * d // 4, self._threads, self._grain),
                rows.ctypes.data,
                scores.ctypes.data,
                self._fault,
            )
        )
        return TopK(rows[:count], scores[:count])


class SelfCheckError(AssertionError):
    """The kernel disagreed with the reference implementation."""


def _check_data(seed: int = 20261125) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Awkward shapes on purpose: d not a multiple of any SIMD width, n not of the row block,
    duplicate rows (exact ties) and a mask."""
    rng = np.random.default_rng(seed)
    n, d = 1037, 67
    matrix = rng.standard_normal((n, d)).astype(np.float32)
    matrix[500] = matrix[17]  # exact duplicates: must rank 17 before 500
    matrix[900] = matrix[17]
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    queries = rng.standard_normal((3, d)).astype(np.float32)
    queries[0] = matrix[17] + 0.01 * queries[0]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    mask = (rng.random(n) < 0.6).astype(np.uint8)
    mask[17] = mask[500] = mask[900] = 1
    return matrix, np.ascontiguousarray(queries), mask


def self_check(kernel: ModuleType) -> None:
    """Single-query kernel vs the reference, with and without a mask, 1 and 2 workers."""
    matrix, queries, mask = _check_data()
    reference = PythonSearchBackend()
    d = matrix.shape[1]
    for threads in (1, 2):
        backend = MojoSearchBackend(kernel, threads=threads, grain=1 << 12)
        for q in queries:
            for m in (None, mask):
                for k in (1, 7, 40):
                    want = reference.topk(matrix, q, k, m)
                    got = backend.topk(matrix, q, k, m)
                    if not results_agree(want, got, d):
                        raise SelfCheckError(
                            f"topk k={k} mask={m is not None} threads={threads}: "
                            f"kernel rows {got.rows[:5].tolist()} vs reference "
                            f"{want.rows[:5].tolist()}"
                        )
    top = MojoSearchBackend(kernel, threads=2, grain=1 << 12).topk(matrix, queries[0], 3)
    if top.rows[:3].tolist() != [17, 500, 900]:
        raise SelfCheckError(f"exact ties out of insertion order: {top.rows[:3].tolist()}")
    # Quantised scan with a rerank wide enough to be exact on this data.
    quantizer = ScalarQuantizer.fit(matrix)
    codes = quantizer.encode(matrix)
    backend = MojoSearchBackend(kernel, threads=2, grain=1 << 12)
    for q in queries:
        qi = quantize_query(q, quantizer.scale)
        for m in (None, mask):
            want = reference.topk_int8(codes, matrix, qi, q, 5, 30, m)
            got = backend.topk_int8(codes, matrix, qi, q, 5, 30, m)
            if not results_agree(want, got, d):
                raise SelfCheckError(
                    f"topk_int8 mask={m is not None}: kernel rows {got.rows.tolist()} vs "
                    f"reference {want.rows.tolist()}"
                )


def self_check_batch(kernel: ModuleType) -> None:
    """Batch kernel vs the reference."""
    matrix, queries, mask = _check_data(seed=7)
    reference = PythonSearchBackend()
    backend = MojoSearchBackend(kernel, threads=2, grain=1 << 12)
    for m in (None, mask):
        want = reference.topk_batch(matrix, queries, 9, m)
        got = backend.topk_batch(matrix, queries, 9, m)
        if not batch_results_agree(want, got, matrix.shape[1]):
            raise SelfCheckError(f"topk_batch mask={m is not None} disagrees with the reference")
