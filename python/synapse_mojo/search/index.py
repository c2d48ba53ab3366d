"""``PatternIndex``: exact top-k cosine search over (id, embedding, metadata) patterns.

    index = PatternIndex(dim=384)
    index.upsert(["p_001", "p_002"], vectors, [{"lang": "py"}, {"lang": "go"}])
    hits = index.search(query, top_k=5, filter={"lang": "py"})
    hits[0].id, hits[0].score, hits[0].metadata

Behaviour worth knowing:

* Vectors are L2-normalised on the way in (cosine similarity); ``get`` returns the normalised
  vector. float64, integer and non-contiguous input is converted; NaN/inf and zero vectors are
  rejected.
* Results are best first; equal scores rank the pattern inserted first. ``upsert`` of an
  existing id replaces its vector and metadata in place (it keeps its insertion position).
* ``top_k`` larger than the number of eligible patterns returns all of them (no padding).
* An empty index raises ``EmptyIndexError``; a filter that matches nothing returns ``[]``.
* ``filter`` is a mapping (``{"lang": "py"}``: equality; ``{"lang": ["py", "go"]}``: any of)
  answered from an inverted index, or a callable ``metadata -> bool`` evaluated in Python on
  every live pattern (flexible but O(N) per query).
* Thread-safe: searches share a lock, updates take it exclusively, so a kernel never reads a
  buffer that an update is replacing.
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import EmptyIndexError, InvalidInputError, InvalidTypeError, UnknownIdError
from ..runtime.adapter import Outcome, Runtime, get_runtime
from .base import BatchTopK, TopK, batch_results_agree, results_agree
from .mojo_backend import MojoSearchBackend
from .numpy_backend import NumpySearchBackend
from .validation import as_ids, as_matrix, as_metadata, as_queries, as_query, as_top_k

Filter = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool] | None


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SearchResult:
    """Hits plus which runtime produced them and how long it took."""

    hits: list[SearchHit]
    runtime: str
    elapsed_ms: float
    fallback_reason: str | None = None
    #: The Mojo path's error, if any: an exception it raised, or "shadow mismatch".
    error: str | None = None


@dataclass(frozen=True)
class BatchResult:
    """``ids``: object array (b, k'); ``scores``: float32 (b, k')."""

    ids: np.ndarray
    scores: np.ndarray
    runtime: str
    elapsed_ms: float


class _SharedLock:
    """Many readers or one writer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


_HASHABLE_SCALARS = (str, int, float, bool, type(None))


class PatternIndex:
    """In-memory exact cosine index with Mojo, NumPy and pure-Python backends."""

    def __init__(self, dim: int, *, runtime: Runtime | None = None, capacity: int = 1024) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self._runtime = runtime
        self._lock = _SharedLock()
        self._reset_storage(capacity)
        self._numpy = NumpySearchBackend()

    def _reset_storage(self, capacity: int) -> None:
        self._vectors = np.zeros((max(capacity, 16), self.dim), dtype=np.float32)
        self._alive = np.zeros(max(capacity, 16), dtype=np.uint8)
        self._n = 0  # rows used, live or dead
        self._dead = 0
        self._ids: list[str | None] = []
        self._meta: list[dict[str, Any] | None] = []
        self._row_of: dict[str, int] = {}
        # Inverted index for mapping filters: key -> value -> rows; unhashable values apart.
        self._postings: dict[str, dict[Any, set[int]]] = {}
        self._unhashable: dict[str, set[int]] = {}

    # ------------------------------------------------------------------ properties

    @property
    def runtime(self) -> Runtime:
        return self._runtime if self._runtime is not None else get_runtime()

    def __len__(self) -> int:
        return self._n - self._dead

    def __contains__(self, pattern_id: object) -> bool:
        return pattern_id in self._row_of

    def ids(self) -> list[str]:
        """Live ids in insertion order."""
        with self._lock.read():
            return [i for i in self._ids if i is not None]

    @property
    def nbytes(self) -> int:
        """Bytes of vector storage in use (capacity included)."""
        return int(self._vectors.nbytes + self._alive.nbytes)

    # ------------------------------------------------------------------ updates

    def upsert(
        self,
        ids: str | Iterable[str],
        embeddings: Any,
        metadata: Mapping[str, Any] | Iterable[Mapping[str, Any] | None] | None = None,
    ) -> tuple[int, int]:
        """Inserts new ids and replaces existing ones; returns ``(added, updated)``.

        The batch is validated completely before anything changes.
        """
        vectors = as_matrix(embeddings, self.dim)
        id_list = as_ids(ids, vectors.shape[0])
        metas = as_metadata(metadata, len(id_list))
        added = updated = 0
        with self._lock.write():
            new = sum(1 for i in id_list if i not in self._row_of)
            self._reserve(self._n + new)
            for pattern_id, vector, meta in zip(id_list, vectors, metas):
                row = self._row_of.get(pattern_id)
                if row is None:
                    row = self._n
                    self._n += 1
                    self._ids.append(pattern_id)
                    self._meta.append(meta)
                    self._row_of[pattern_id] = row
                    self._alive[row] = 1
                    added += 1
                else:
                    self._unindex(row)
                    self._meta[row] = meta
                    updated += 1
                self._vectors[row] = vector
                self._index_meta(row, meta)
        return added, updated

    def add(
        self,
        ids: str | Iterable[str],
        embeddings: Any,
        metadata: Mapping[str, Any] | Iterable[Mapping[str, Any] | None] | None = None,
    ) -> int:
        """Like ``upsert`` but every id must be new; returns the number added."""
        id_list = as_ids(ids)
        existing = [i for i in id_list if i in self._row_of]
        if existing:
            raise InvalidInputError(
                f"id {existing[0]!r} is already in the index; use upsert() to replace it"
            )
        return self.upsert(id_list, embeddings, metadata)[0]

    def remove(self, ids: str | Iterable[str], *, missing_ok: bool = False) -> int:
        """Removes patterns; unknown ids raise ``UnknownIdError`` unless ``missing_ok``."""
        id_list = as_ids(ids)
        with self._lock.write():
            unknown = [i for i in id_list if i not in self._row_of]
            if unknown and not missing_ok:
                raise UnknownIdError(f"unknown pattern id {unknown[0]!r}")
            removed = 0
            for pattern_id in id_list:
                row = self._row_of.pop(pattern_id, None)
                if row is None:
                    continue
                self._unindex(row)
                self._alive[row] = 0
                self._ids[row] = None
                self._meta[row] = None
                self._dead += 1
                removed += 1
            if self._dead > 1024 and self._dead * 4 > self._n:
                self._compact()
        return removed

    def get(self, pattern_id: str) -> tuple[np.ndarray, dict[str, Any]]:
        """The stored (normalised) vector and a copy of the metadata."""
        with self._lock.read():
            row = self._row_of.get(pattern_id)
            if row is None:
                raise UnknownIdError(f"unknown pattern id {pattern_id!r}")
            return self._vectors[row].copy(), dict(self._meta[row] or {})

    def clear(self) -> None:
        with self._lock.write():
            self._reset_storage(1024)

    # ------------------------------------------------------------------ search

    def search(self, query: Any, top_k: int = 10, filter: Filter = None) -> list[SearchHit]:
        """The ``top_k`` patterns most similar to ``query`` (cosine), best first."""
        return self.search_detailed(query, top_k, filter).hits

    def search_detailed(self, query: Any, top_k: int = 10, filter: Filter = None) -> SearchResult:
        q = as_query(query, self.dim)
        k = as_top_k(top_k)
        with self._lock.read():
            matrix, mask = self._prepare(filter)
            if mask is not None and not mask.any():
                return SearchResult([], "python", 0.0)
            feature = self.runtime.feature("pattern_search")
            threads = self.runtime.settings.threads
            outcome: Outcome[TopK] = feature.run(
                "topk",
                mojo=lambda kernel, fault: MojoSearchBackend(kernel, threads, fault).topk(
                    matrix, q, k, mask
                ),
                python=lambda: self._numpy.topk(matrix, q, k, mask),
                same=lambda a, b: results_agree(a, b, self.dim),
            )
            hits = [
                SearchHit(self._ids[r], float(s), dict(self._meta[r] or {}))  # type: ignore[arg-type]
                for r, s in zip(outcome.value.rows.tolist(), outcome.value.scores.tolist())
            ]
        return SearchResult(
            hits, outcome.runtime, outcome.elapsed_ms, outcome.fallback_reason, outcome.error
        )

    def search_batch(self, queries: Any, top_k: int = 10, filter: Filter = None) -> BatchResult:
        """Top-k for each row of ``queries`` (b, d); arrays of ids and scores, best first."""
        qs = as_queries(queries, self.dim)
        k = as_top_k(top_k)
        with self._lock.read():
            matrix, mask = self._prepare(filter)
            if mask is not None and not mask.any():
                empty = np.empty((qs.shape[0], 0))
                return BatchResult(empty.astype(object), empty.astype(np.float32), "python", 0.0)
            feature = self.runtime.feature("vector_engine")
            threads = self.runtime.settings.threads
            outcome: Outcome[BatchTopK] = feature.run(
                "topk_batch",
                mojo=lambda kernel, fault: MojoSearchBackend(kernel, threads, fault).topk_batch(
                    matrix, qs, k, mask
                ),
                python=lambda: self._numpy.topk_batch(matrix, qs, k, mask),
                same=lambda a, b: batch_results_agree(a, b, self.dim),
            )
            rows = outcome.value.rows
            ids = np.empty(rows.shape, dtype=object)
            for i, row_list in enumerate(rows.tolist()):
                ids[i, :] = [self._ids[r] for r in row_list]
        return BatchResult(ids, outcome.value.scores, outcome.runtime, outcome.elapsed_ms)

    # ------------------------------------------------------------------ internals

    def _prepare(self, filter: Filter) -> tuple[np.ndarray, np.ndarray | None]:
        if len(self) == 0:
            raise EmptyIndexError("the index is empty: add patterns before searching")
        n = self._n
        matrix = self._vectors[:n]
        mask = self._alive[:n] if self._dead else None
        if filter is None:
            return matrix, mask
        selected = self._filter_mask(filter, n)
        if mask is not None:
            selected &= mask
        return matrix, selected

    def _filter_mask(self, filter: Filter, n: int) -> np.ndarray:
        if callable(filter):
            out = np.zeros(n, dtype=np.uint8)
            for row, meta in enumerate(self._meta[:n]):
                if meta is not None and filter(meta):
                    out[row] = 1
            return out
        if not isinstance(filter, Mapping):
            raise InvalidTypeError(
                f"filter must be a mapping or a callable, got {type(filter).__name__}"
            )
        out = np.ones(n, dtype=np.uint8)
        for key, wanted in filter.items():
            choices = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            rows: set[int] = set()
            postings = self._postings.get(key, {})
            for choice in choices:
                try:
                    rows |= postings.get(choice, set())
                except TypeError:  # an unhashable filter value can only match unhashables
                    pass
            for row in self._unhashable.get(key, ()):
                meta = self._meta[row]
                if meta is not None and meta.get(key) in choices:
                    rows.add(row)
            key_mask = np.zeros(n, dtype=np.uint8)
            if rows:
                key_mask[np.fromiter(rows, dtype=np.int64, count=len(rows))] = 1
            out &= key_mask
        return out

    def _index_meta(self, row: int, meta: Mapping[str, Any]) -> None:
        for key, value in meta.items():
            if isinstance(value, _HASHABLE_SCALARS):
                self._postings.setdefault(key, {}).setdefault(value, set()).add(row)
            else:
                self._unhashable.setdefault(key, set()).add(row)

    def _unindex(self, row: int) -> None:
        meta = self._meta[row] or {}
        for key, value in meta.items():
            if isinstance(value, _HASHABLE_SCALARS):
                bucket = self._postings.get(key, {}).get(value)
                if bucket is not None:
                    bucket.discard(row)
                    if not bucket:
                        del self._postings[key][value]
            else:
                self._unhashable.get(key, set()).discard(row)

    def _reserve(self, rows: int) -> None:
        capacity = self._vectors.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(rows, capacity * 2)
        vectors = np.zeros((new_capacity, self.dim), dtype=np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        alive = np.zeros(new_capacity, dtype=np.uint8)
        alive[: self._n] = self._alive[: self._n]
        self._vectors, self._alive = vectors, alive

    def _compact(self) -> None:
        """Drops dead rows, keeping the insertion order of the live ones."""
        live = np.flatnonzero(self._alive[: self._n])
        capacity = max(16, len(live) * 2)
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[: len(live)] = self._vectors[live]
        alive = np.zeros(capacity, dtype=np.uint8)
        alive[: len(live)] = 1
        ids = [self._ids[r] for r in live]
        metas = [self._meta[r] for r in live]
        self._vectors, self._alive = vectors, alive
        self._ids, self._meta = ids, metas
        self._n, self._dead = len(live), 0
        self._row_of = {pattern_id: row for row, pattern_id in enumerate(ids)}  # type: ignore[misc]
        self._postings, self._unhashable = {}, {}
        for row, meta in enumerate(metas):
            self._index_meta(row, meta or {})
