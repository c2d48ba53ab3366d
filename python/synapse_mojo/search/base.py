"""The search backend interface and the result order every backend follows.

A backend ranks the rows of an L2-normalised float32 matrix by dot product with a normalised
query (cosine similarity) and returns the best ``k``::

    rows, scores = backend.topk(matrix, query, k, mask)

Order: higher score first; equal scores by lower row index first. Rows are in insertion order,
so ties fall to the pattern added first, on every backend.

Backends receive validated input only (``synapse_mojo.search.validation``): ``matrix`` is a
C-contiguous float32 ``(n, d)`` array, ``query`` a contiguous float32 ``(d,)`` array (or
``queries`` ``(b, d)``), ``mask`` None or a uint8 ``(n,)`` array where non-zero marks an
eligible row, ``k >= 1``. When fewer than ``k`` rows are eligible, all of them are returned.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeAlias

import numpy as np


class TopK(NamedTuple):
    """Row indices (int64) and scores (float32), best first."""

    rows: np.ndarray
    scores: np.ndarray


#: ``(rows, scores)`` as Python lists, best first: what the one-call paths return (the shape
#: their callers hand on, with no arrays in between).
TopLists: TypeAlias = tuple[list[int], list[float]]
#: A certified int8 search's answer: ``(rows, scores, where the next query's candidate set
#: starts)``.
Int8Lists: TypeAlias = tuple[list[int], list[float], int]


class HitBuilder(NamedTuple):
    """How a search's ``(row, score)`` answers become its caller's result objects: a ``cls``
    made by ``object.__new__`` (no ``__init__``: a frozen dataclass's costs one
    ``object.__setattr__`` per field) with three attributes, ``names``: the row's id, the
    score, and a new dict of the row's metadata (``{}`` when it has none). ``build`` does it
    in Python; the kernel's ``topk_hits`` builds the same objects from the same lists."""

    cls: type
    names: tuple[str, str, str]

    def build(
        self, rows: list[int], scores: list[float], ids: Sequence[Any], metas: Sequence[Any]
    ) -> list[Any]:
        """The objects, the fields stored straight into each ``__dict__`` (what
        ``object.__setattr__`` does for a plain class; measured: 10 objects in 2.7 us, 6
        through ``__init__``)."""
        cls = self.cls
        id_name, score_name, meta_name = self.names
        out: list[Any] = []
        append = out.append
        for row, score in zip(rows, scores, strict=True):
            obj: Any = _new_object(cls)
            meta = metas[row]
            fields = obj.__dict__
            fields[id_name] = ids[row]
            fields[score_name] = score
            fields[meta_name] = dict(meta) if meta else {}
            append(obj)
        return out


_new_object = object.__new__


def lists_topk(lists: TopLists | Int8Lists) -> TopK:
    """A one-call answer as arrays (for comparisons with ``results_agree``)."""
    return TopK(np.asarray(lists[0], np.int64), np.asarray(lists[1], np.float32))


class BatchTopK(NamedTuple):
    """Per query row: row indices (int64, shape (b, k')) and scores (float32, (b, k'))."""

    rows: np.ndarray
    scores: np.ndarray


class SearchBackend(ABC):
    """One way of computing exact top-k cosine similarity."""

    #: Short name used in metrics, benchmarks and ``doctor`` (``mojo``, ``numpy``, ``python``).
    name: str

    @abstractmethod
    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK:
        """Returns the ``min(k, eligible)`` rows of ``matrix`` most similar to ``query``.

        ``matrix`` (n, d) float32 C-contiguous with L2-normalised rows; ``query`` (d,) float32
        normalised; ``mask`` None or uint8 (n,), non-zero = eligible. Ties rank the lower row
        first. Inputs are trusted: validation happens before a backend is called.
        """

    @abstractmethod
    def topk_batch(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> BatchTopK:
        """``topk`` for every row of ``queries`` (b, d); outputs have shape
        (b, min(k, eligible))."""

    @abstractmethod
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
        """Quantised search: rank rows by the exact integer ``codes @ query_i8`` (uint8 codes and
        the int8 query of ``search.quantization.quantize_query``; ties to the lower row), keep
        the best ``max(k, candidates)``, re-score those exactly from ``vectors`` (float32) with
        ``query`` and return the best ``k`` with exact scores."""

    def topk_cosine(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopK | None:
        """``topk`` over raw rows: ``rows`` (n, d) float32 C-contiguous, NOT normalised (the
        caller's own data, used in place); a zero row scores 0. Returns None, without a
        result, when a row's squared norm is not finite in float32 (NaN/inf in the row, or a
        norm beyond float32's range): the caller validates that input the slow way.

        This default normalises a float64 copy of the rows; backends override it with a scan
        that needs no copy.
        """
        wide = rows.astype(np.float64)
        squares = np.einsum("ij,ij->i", wide, wide)
        if not np.all(squares <= np.finfo(np.float32).max):
            return None
        norms = np.sqrt(squares)
        norms[norms == 0] = 1.0
        return self.topk(np.ascontiguousarray(wide / norms[:, None], dtype=np.float32), query, k)


def score_tolerance(dim: int) -> float:
    """Largest difference allowed between two backends' float32 scores for unit vectors.

    Recursive float32 summation of ``dim`` products bounded by Cauchy-Schwarz has an error
    below ``dim * 2**-24``; two backends may each be off by that much in opposite directions.
    """
    return 2.0 * dim * 2.0**-24 + 1e-7


def results_agree(a: TopK, b: TopK, dim: int) -> bool:
    """True when two top-k answers are the same up to float32 rounding.

    Scores must match within ``score_tolerance(dim)``; rows may differ only where the scores
    involved are within that tolerance of each other (a near-tie, which rounding may order
    either way) or at the last position (the boundary of the top-k).
    """
    if len(a.rows) != len(b.rows):
        return False
    if len(a.rows) == 0:
        return True
    tol = score_tolerance(dim)
    sa = np.asarray(a.scores, dtype=np.float64)
    sb = np.asarray(b.scores, dtype=np.float64)
    if not np.all(np.abs(sa - sb) <= tol):
        return False
    if np.array_equal(a.rows, b.rows):
        return True
    last = len(sa) - 1
    for i in np.flatnonzero(np.asarray(a.rows) != np.asarray(b.rows)):
        if i == last:
            continue
        neighbours = np.abs(sa - sa[i]) <= 2 * tol
        if neighbours.sum() < 2:  # no other score close enough to swap with
            return False
    return True


def batch_results_agree(a: BatchTopK, b: BatchTopK, dim: int) -> bool:
    if a.rows.shape != b.rows.shape:
        return False
    return all(
        results_agree(TopK(a.rows[i], a.scores[i]), TopK(b.rows[i], b.scores[i]), dim)
        for i in range(a.rows.shape[0])
    )


def eligible_count(n: int, mask: np.ndarray | None) -> int:
    return n if mask is None else int(np.count_nonzero(mask))


def threads_for(work: int, threads: int, grain: int = 1 << 17) -> int:
    """Workers worth starting for ``work`` multiply-adds: at least ``grain`` each."""
    return max(1, min(threads, math.ceil(work / grain)))
