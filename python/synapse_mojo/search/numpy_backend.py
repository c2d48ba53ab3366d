"""The NumPy backend: the fast Python fallback of every Mojo search path."""

from __future__ import annotations

import numpy as np

from .base import BatchTopK, SearchBackend, TopK
from .quantization import approximate_scores

#: Upper bound for the (queries x rows) score block of a batch, in float32 elements (128 MB).
_BATCH_BLOCK_ELEMENTS = 32 * 1024 * 1024


_INF = np.float32(np.inf)
_TINY = np.finfo(np.float32).tiny

#: Up to this many scores, one stable sort of all of them is cheaper than a partition.
_SORT_ALL_BELOW = 128


def select_topk(scores: np.ndarray, k: int, *, finite: bool = False) -> TopK:
    """Best ``k`` of a score vector (``-inf`` = ineligible), ties to the lower index.

    ``finite``: the caller knows every score is finite (no mask), which saves a pass.
    ``argpartition`` alone picks arbitrarily among scores equal to the k-th largest; taking
    every candidate at or above that threshold and sorting them stably by score makes it exact.
    """
    n = scores.shape[0]
    if not finite:
        eligible = np.isfinite(scores)
        n_eligible = int(np.count_nonzero(eligible))
        if n_eligible < n:
            k = min(k, n_eligible)
            if k <= 0:
                return TopK(np.empty(0, np.int64), np.empty(0, np.float32))
            if k == n_eligible:
                candidates = np.flatnonzero(eligible)
                order = np.argsort(-scores[candidates], kind="stable")
                rows = candidates[order].astype(np.int64, copy=False)
                return TopK(rows, scores[rows].astype(np.float32, copy=False))
    if n <= _SORT_ALL_BELOW or k >= n:
        rows = np.argsort(-scores, kind="stable")[:k].astype(np.int64, copy=False)
        if finite and rows.size and scores[rows[-1]] != scores[rows[-1]]:
            return select_topk(scores, k)  # NaN after all (sorted last): the careful path
    else:
        part = np.argpartition(scores, n - k)[n - k :]
        threshold = scores[part].min()
        if threshold != threshold:  # NaN (partitioned as largest): the careful path
            return select_topk(scores, k) if finite else _nan_topk(scores, k)
        candidates = np.flatnonzero(scores >= threshold)
        rows = candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
        rows = rows.astype(np.int64, copy=False)
    return TopK(rows, scores[rows].astype(np.float32, copy=False))


def _nan_topk(scores: np.ndarray, k: int) -> TopK:
    """NaN scores are ineligible (as -inf)."""
    return select_topk(np.where(np.isnan(scores), np.float32(-np.inf), scores), k)


class NumpySearchBackend(SearchBackend):
    name = "numpy"

    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK:
        scores = matrix @ query
        if mask is None:
            return select_topk(scores, k, finite=True)  # finite rows, finite query
        scores = np.where(mask != 0, scores, np.float32(-np.inf))
        return select_topk(scores, k)

    def topk_batch(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> BatchTopK:
        n = matrix.shape[0]
        b = queries.shape[0]
        width = min(k, n if mask is None else int(np.count_nonzero(mask)))
        rows = np.empty((b, width), dtype=np.int64)
        scores = np.empty((b, width), dtype=np.float32)
        step = max(1, _BATCH_BLOCK_ELEMENTS // max(1, n))
        for start in range(0, b, step):
            block = queries[start : start + step] @ matrix.T
            if mask is not None:
                block[:, mask == 0] = -np.inf
            for i, row_scores in enumerate(block):
                top = select_topk(row_scores, k)
                rows[start + i] = top.rows
                scores[start + i] = top.scores
        return BatchTopK(rows, scores)

    def topk_cosine(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopK | None:
        if rows.shape[0] == 0:
            return TopK(np.empty(0, np.int64), np.empty(0, np.float32))
        squares = np.einsum("ij,ij->i", rows, rows)
        if not squares.max() < _INF:  # one pass: max is NaN or inf when any square is
            return None
        scores = rows @ query
        # A zero row's dot product is exactly 0, and 0 / sqrt(tiny) stays 0: no mask needed.
        scores /= np.sqrt(np.maximum(squares, _TINY))
        return select_topk(scores, k, finite=True)

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
        approx = approximate_scores(codes, query_i8)
        if mask is not None:
            approx[mask == 0] = -np.inf
        cand = select_topk(approx, max(k, candidates)).rows
        return rerank(vectors, query, cand, k)


def rerank(vectors: np.ndarray, query: np.ndarray, rows: np.ndarray, k: int) -> TopK:
    """Exact float32 scores for ``rows``; the best ``k``, ties to the lower row."""
    if rows.size == 0:
        return TopK(np.empty(0, np.int64), np.empty(0, np.float32))
    exact = (vectors[np.sort(rows)] @ query).astype(np.float32)
    ordered_rows = np.sort(rows)
    order = np.lexsort((ordered_rows, -exact))[:k]
    return TopK(ordered_rows[order].astype(np.int64), exact[order])
