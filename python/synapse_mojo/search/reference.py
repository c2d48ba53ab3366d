"""The pure-Python reference: the oracle in tests and the "Python baseline" in benchmarks.

A per-vector loop in double precision, as a Python agent system would write it without NumPy.
Deliberately simple; correctness is the point, speed is what the other backends are for.
"""

from __future__ import annotations

import heapq
import operator

import numpy as np

from .base import BatchTopK, SearchBackend, TopK


class PythonSearchBackend(SearchBackend):
    name = "python"

    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK:
        q = [float(x) for x in query]
        eligible = None if mask is None else [bool(m) for m in mask]
        scored = []
        for row_index, row in enumerate(matrix.tolist()):
            if eligible is not None and not eligible[row_index]:
                continue
            scored.append((sum(map(operator.mul, row, q)), row_index))
        # Best first: highest score, then lowest row.
        best = heapq.nsmallest(k, scored, key=lambda item: (-item[0], item[1]))
        rows = np.array([r for _, r in best], dtype=np.int64)
        scores = np.array([s for s, _ in best], dtype=np.float32)
        return TopK(rows, scores)

    def topk_batch(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> BatchTopK:
        results = [self.topk(matrix, q, k, mask) for q in queries]
        width = len(results[0].rows) if results else 0
        rows = np.array([r.rows for r in results], dtype=np.int64).reshape(len(results), width)
        scores = np.array([r.scores for r in results], dtype=np.float32).reshape(
            len(results), width
        )
        return BatchTopK(rows, scores)

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
        qs = [int(v) for v in query_i8]
        eligible = None if mask is None else [bool(m) for m in mask]
        approx = []
        for row_index, row in enumerate(codes.tolist()):
            if eligible is not None and not eligible[row_index]:
                continue
            approx.append((sum(map(operator.mul, row, qs)), row_index))
        kept = heapq.nsmallest(max(k, candidates), approx, key=lambda item: (-item[0], item[1]))
        q = [float(x) for x in query]
        exact = [(sum(map(operator.mul, vectors[row].tolist(), q)), row) for _, row in kept]
        best = heapq.nsmallest(k, exact, key=lambda item: (-item[0], item[1]))
        return TopK(
            np.array([r for _, r in best], dtype=np.int64),
            np.array([s for s, _ in best], dtype=np.float32),
        )
