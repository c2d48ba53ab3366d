"""``PatternIndex``: exact top-k cosine search over (id, embedding, metadata) patterns.

    index = PatternIndex(dim=384)
    index.upsert(["p_001", "p_002"], vectors, [{"lang": "py"}, {"lang": "go"}])
    hits = index.search(query, top_k=5, filter={"lang": "py"})
    hits[0].id, hits[0].score, hits[0].metadata

    index.save("patterns.idx")                     # a directory
    shared = PatternIndex.load("patterns.idx")     # memory-mapped: opens at once, pages shared

Behaviour worth knowing:

* Vectors are L2-normalised on the way in (cosine similarity); ``get`` returns the normalised
  vector. float64, integer and non-contiguous input is converted; NaN/inf and zero vectors are
  rejected.
* Results are best first; equal scores rank the pattern inserted first. ``upsert`` of an
  existing id replaces its vector and metadata in place (it keeps its insertion position).
* ``top_k`` larger than the number of eligible patterns returns all of them (no padding).
* An empty index raises ``EmptyIndexError``; a filter that matches nothing returns ``[]``.
* ``filter`` is a mapping (``{"lang": "py"}``: equality, booleans apart from numbers;
  ``{"lang": ["py", "go"]}``: any of) answered from an inverted index, or a callable
  ``metadata -> bool`` evaluated in Python on every live pattern (flexible but O(N) per query).
* ``quantization="auto"`` (the default) keeps float32 rows only until they take more than
  ``FLOAT32_FIRST_MAX_BYTES`` (2 MB: about 1,400 patterns at d = 384, 512 at d = 1,024), then
  adds a uint8 copy of every row (a quarter more memory) and searches as ``"int8"`` below:
  the same exact answers, 1.7-6x NumPy from ten thousand patterns (docs/search-latency.md).
  ``quantization=None`` keeps float32 only.
* ``quantization="int8"`` keeps a uint8 copy of every row (a quarter of the float32 bytes)
  and, while the Mojo kernel answers, searches it first: it re-scores the best of
  ``max(top_k * rerank_factor, recent need)`` candidates exactly and grows the candidate set
  until the quantisation error bound (``search.quantization.RankBound``) proves no other
  row can enter the top k: scores and ranking are exact on any data; near-duplicates cost
  more candidates. On Mojo the whole search is one kernel call. In the default mode the index
  times both exact searches and runs the faster (``dispatch.PathRace``: on data full of
  near-duplicates the float32 scan wins). ``exact=True`` scans
  float32, and so does a search that NumPy answers (``SYNAPSE_FORCE_PYTHON=1``, mode
  ``off``, no healthy kernel), where the certified search is 6-17x slower than NumPy's
  float32 scan; ``exact=False`` asks for the certified search on any runtime. Worth it from
  about a thousand rows (docs/search-latency.md).
* Metadata must be JSON values (validated at ``upsert``), so it round-trips exactly through
  ``save``/``load`` and the stores.
* A loaded index is memory-mapped read-only; its first update copies the arrays into memory.
* Thread-safe: searches share a lock, updates take it exclusively, so a kernel never reads a
  buffer that an update is replacing. A waiting update goes before searches that arrive after
  it (writer preference: a stream of searches cannot starve it). Structures built lazily by
  searches (the filter postings) are published only once complete.
"""

from __future__ import annotations

import mmap
import numbers
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    DamagedIndexError,
    EmptyIndexError,
    InvalidInputError,
    InvalidTypeError,
    UnknownIdError,
)
from ..runtime.adapter import Outcome, Runtime, get_runtime
from .adaptive import AdaptiveSearchBackend
from .base import BatchTopK, HitBuilder
from .dispatch import PathRace
from .quantization import ScalarQuantizer
from .storage import LazyJsonLines, read_index, write_index
from .validation import as_ids, as_matrix, as_metadata, as_queries, as_query, as_top_k

Filter = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool] | None

#: Rerank factor of int8 search: candidates = top_k * factor. Chosen from the benchmark:
#: recall@10 >= 0.99 at N = 1M, d = 384 (see benchmarks/results).
DEFAULT_RERANK_FACTOR = 4

#: ``None``: float32 rows only; ``"int8"``: codes from the first row; ``"auto"``: codes once
#: the float32 rows outgrow ``FLOAT32_FIRST_MAX_BYTES`` (where, in the default mode, they
#: would start to be searched).
QUANTIZATIONS = (None, "int8", "auto")

#: An int8 index in its default mode scans its float32 rows, not its codes, while they take
#: at most this many bytes (one core's L2 cache): read from cache by one thread they answer
#: before the certified search's two passes. Measured 2026-11-29 (Intel Xeon, 2 vCPUs, p50
#: us, float32 / int8): 500 x 384 11.5 / 21.7, 1,000 x 384 20.3 / 27.1, 500 x 1,024 33.9 /
#: 35.8; above it the codes win or tie (2,000 x 384 26 / 34 on two warm cores, but 4,000 x
#: 384 82 / 58 and 1,000 x 1,024 41-104 / 50-53: the float32 scan of a few megabytes depends
#: on the second core and the cache, the int8 search does not).
FLOAT32_FIRST_MAX_BYTES = 2 << 20


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    metadata: dict[str, Any]


def _aligned_zeros(shape: tuple[int, int], dtype: Any) -> np.ndarray:
    """Zeros whose data starts on a 64-byte boundary (a cache line): NumPy's allocator gives
    16, which splits every SIMD load of a row across two lines (~20% of a cached scan)."""
    dtype = np.dtype(dtype)
    nbytes = shape[0] * shape[1] * dtype.itemsize
    raw = np.zeros(nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _rows_view(
    cached: tuple[np.ndarray, int, np.ndarray] | None, storage: np.ndarray, n: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """``(storage, n, storage[:n])``: ``cached`` itself while it views the same storage and
    size, so that the view is the same object from search to search. Kept as one tuple,
    replaced as one object (readers race on it)."""
    if cached is not None and cached[0] is storage and cached[1] == n:
        return cached
    return (storage, n, storage[:n])


_new_object = object.__new__
_NO_SNAPSHOT: tuple[int, Any, Any, Any, Any] = (-1, None, None, None, None)  # never valid
_F32 = np.dtype(np.float32)
_clock = time.perf_counter


#: ``PatternIndex``'s hits from a search's rows and scores (in Python, or in the kernel's
#: ``topk_hits``): ``SearchHit`` objects made without the frozen dataclass ``__init__``.
HITS = HitBuilder(SearchHit, ("id", "score", "metadata"))
_hits = HITS.build


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
    """Many readers or one writer, with writer preference.

    A writer that is waiting stops new readers from entering, so a continuous stream of
    searches cannot starve an update: it waits only for the searches already running. Not
    re-entrant: a thread holding the read side must not take it again.

    ``version`` counts writes, a sequence lock's counter: odd while a writer holds the lock,
    even otherwise, changed by every write. A reader that takes no lock (``PatternIndex``'s
    snapshot search) reads it before and after, and its answer stands only if both are the
    same even value.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self.version = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    # The search path calls these two directly: a generator-based context manager costs
    # about a microsecond, a tenth of a small search.

    def acquire_read(self) -> None:
        # The condition's plain mutex as the context manager: C-level enter/exit, where the
        # Condition's own __enter__/__exit__ are two Python frames per call.
        with self._mutex:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._mutex:
            self._readers -= 1
            # Only writers wait for readers to leave (and count themselves first): without
            # one there is nobody to wake, and notify_all's Python-level work is skipped.
            if self._readers == 0 and self._writers_waiting:
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
            self.version += 1
        try:
            yield
        finally:
            with self._cond:
                self.version += 1
                self._writer = False
                self._cond.notify_all()


_HASHABLE_SCALARS = (str, int, float, bool, type(None))


def _posting_key(value: Any) -> Any:
    """The postings key of a scalar: booleans apart from numbers (``True == 1`` in Python,
    but ``{"a": True}`` must not match ``a == 1``)."""
    return (bool, value) if isinstance(value, bool) else value


def _add_postings(
    postings: dict[str, dict[Any, set[int]]],
    unhashable: dict[str, set[int]],
    row: int,
    meta: Mapping[str, Any],
) -> None:
    for key, value in meta.items():
        if isinstance(value, _HASHABLE_SCALARS):
            postings.setdefault(key, {}).setdefault(_posting_key(value), set()).add(row)
        else:
            unhashable.setdefault(key, set()).add(row)


def _advise(array: np.ndarray, advice: str) -> None:
    """``madvise`` on the mapping behind a ``numpy.memmap`` (no-op where unsupported)."""
    mapping = getattr(array, "_mmap", None)
    flag = getattr(mmap, advice, None)
    if mapping is not None and flag is not None:
        with suppress(OSError, ValueError):
            mapping.madvise(flag)


class PatternIndex:
    """In-memory exact cosine index with Mojo, NumPy and pure-Python backends."""

    def __init__(
        self,
        dim: int,
        *,
        runtime: Runtime | None = None,
        capacity: int = 1024,
        quantization: str | None = "auto",
        rerank_factor: int = DEFAULT_RERANK_FACTOR,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        if quantization not in QUANTIZATIONS:
            raise InvalidInputError(
                f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}"
            )
        if (
            isinstance(rerank_factor, bool)
            or not isinstance(rerank_factor, numbers.Integral)
            or rerank_factor < 1
        ):
            raise InvalidInputError(f"rerank_factor must be an integer >= 1, got {rerank_factor!r}")
        self.dim: int = int(dim)
        self.quantization: str | None = quantization
        self.rerank_factor: int = int(rerank_factor)
        self._runtime: Runtime | None = runtime
        self._lock: _SharedLock = _SharedLock()
        self._postings_lock: threading.Lock = threading.Lock()
        #: The Mojo/NumPy seam: one object for the index's life, nothing built per call.
        self._backend: AdaptiveSearchBackend = AdaptiveSearchBackend(runtime)
        self._view: tuple[np.ndarray, int, np.ndarray] | None = None  # see _prepare
        self._alive_view: tuple[np.ndarray, int, np.ndarray] | None = None  # see _prepare
        #: What a search reads without the lock (``search``): (the lock's version when it was
        #: taken, the float32 rows, the id and metadata lists, the liveness mask or None).
        #: Taken under the read lock by a search of an index without codes, not memory
        #: mapped; valid while the version is.
        self._snapshot: tuple[int, Any, Any, Any, Any] = _NO_SNAPSHOT
        self._codes_cached: tuple[np.ndarray, int, np.ndarray] | None = None  # _codes_view
        self._reset_storage(capacity)
        #: Codes: candidates the last query needed (a start, not a limit).
        self._candidates_hint: int = 0
        #: Codes, default mode: certified search (True) or float32 scan (False), whichever
        #: measures faster on this index's data.
        self._race: PathRace = PathRace()

    def _reset_storage(self, capacity: int) -> None:
        capacity = max(capacity, 16)
        self._vectors: np.ndarray = _aligned_zeros((capacity, self.dim), np.float32)
        self._codes: np.ndarray | None = (
            _aligned_zeros((capacity, self.dim), np.uint8) if self.quantization == "int8" else None
        )
        self._quantizer: ScalarQuantizer | None = None
        self._alive = np.zeros(capacity, dtype=np.uint8)
        self._n = 0  # rows used, live or dead
        self._dead = 0
        # Per row: the id (None once removed) and the metadata (None when empty or removed).
        # A loaded index keeps both as lazy views of its files until its first update.
        self._ids: list[str | None] | LazyJsonLines = []
        self._meta: list[dict[str, Any] | None] | LazyJsonLines = []
        self._row_of_map: dict[str, int] | None = {}
        self._mapped = False  # arrays are read-only memory maps of a saved index
        # Inverted index for mapping filters (key -> value -> rows), built on first use.
        self._postings: dict[str, dict[Any, set[int]]] | None = None
        self._unhashable: dict[str, set[int]] = {}

    # ------------------------------------------------------------------ properties

    @property
    def runtime(self) -> Runtime:
        return self._runtime if self._runtime is not None else get_runtime()

    def __len__(self) -> int:
        return self._n - self._dead

    def __contains__(self, pattern_id: object) -> bool:
        return pattern_id in self._row_of

    @property
    def _row_of(self) -> dict[str, int]:
        """id -> row, built on first use for a loaded index (a search needs no id lookup)."""
        if self._row_of_map is None:
            row_of = {pattern_id: row for row, pattern_id in enumerate(self._ids)}
            if len(row_of) != self._n:
                source = getattr(self._ids, "_path", "ids.jsonl")
                raise DamagedIndexError(f"{source}: damaged index: duplicate ids")
            self._row_of_map = row_of
        return self._row_of_map

    def ids(self) -> list[str]:
        """Live ids in insertion order."""
        with self._lock.read():
            return [i for i in self._ids if i is not None]

    @property
    def nbytes(self) -> int:
        """Bytes of vector storage (float32 rows, codes, liveness), capacity included."""
        total = self._vectors.nbytes + self._alive.nbytes
        return int(total + (self._codes.nbytes if self._codes is not None else 0))

    def info(self) -> dict[str, Any]:
        race = self._race.state()
        return {
            "patterns": len(self),
            "dim": self.dim,
            "rows_used": self._n,
            "removed_rows": self._dead,
            "quantization": self.quantization,
            "rerank_factor": self.rerank_factor,
            "vector_bytes": int(self._n * self.dim * 4),
            "code_bytes": int(self._n * self.dim) if self._codes is not None else 0,
            # With codes, default mode: the recent median latency of each exact search
            # (``dispatch.PathRace``); the faster one answers.
            "certified_int8_us": race["true_us"],
            "float32_scan_us": race["false_us"],
            "memory_mapped": self._mapped,
        }

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
        with self._lock.write():
            self._make_writable()
            new = sum(1 for i in id_list if i not in self._row_of)
            self._reserve(self._n + new)
            rows = np.empty(len(id_list), dtype=np.int64)
            added = updated = 0
            for i, (pattern_id, meta) in enumerate(zip(id_list, metas, strict=True)):
                row = self._row_of.get(pattern_id)
                if row is None:
                    row = self._n
                    self._n += 1
                    self._ids.append(pattern_id)  # type: ignore[union-attr]
                    self._meta.append(meta or None)  # type: ignore[union-attr]
                    self._row_of[pattern_id] = row
                    added += 1
                else:
                    self._unindex(row)
                    self._meta[row] = meta or None  # type: ignore[index]
                    updated += 1
                self._index_meta(row, meta)
                rows[i] = row
            self._alive[rows] = 1
            self._vectors[rows] = vectors
            if self._codes is not None:
                self._encode(rows, vectors)
            elif self.quantization == "auto" and self._n * self.dim * 4 > FLOAT32_FIRST_MAX_BYTES:
                self._start_codes()
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
            self._make_writable()
            removed = 0
            for pattern_id in id_list:
                row = self._row_of.pop(pattern_id, None)
                if row is None:
                    continue
                self._unindex(row)
                self._alive[row] = 0
                self._ids[row] = None  # type: ignore[index]
                self._meta[row] = None  # type: ignore[index]
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
            return np.array(self._vectors[row]), dict(self._meta[row] or {})

    def clear(self) -> None:
        with self._lock.write():
            self._reset_storage(1024)
            self._race.reset()

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the live patterns to a directory (see ``search.storage``), atomically.

        ``path`` must not exist, or be an empty directory, or a saved index (which is then
        replaced); anything else is refused with ``InvalidInputError`` and left untouched."""
        with self._lock.read():
            live = np.flatnonzero(self._alive[: self._n]) if self._dead else None
            pick = (lambda a: a[live]) if live is not None else (lambda a: a[: self._n])
            ids = [i for i in self._ids if i is not None]
            metas = [m or None for m, i in zip(self._meta, self._ids, strict=True) if i is not None]
            write_index(
                path,
                dim=self.dim,
                ids=ids,
                vectors=pick(self._vectors),
                metadata=metas,
                quantization=self.quantization,
                codes=pick(self._codes) if self._codes is not None else None,
                quantizer=(self._quantizer.offset, self._quantizer.scale)
                if self._quantizer
                else None,
                rerank_factor=self.rerank_factor,
            )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        runtime: Runtime | None = None,
        mmap: bool = True,
        verify: bool = True,
    ) -> PatternIndex:
        """Opens a saved index. With ``mmap`` (default) nothing is copied: vectors and codes are
        memory-mapped read-only and shared with every process that maps them.

        ``verify`` (default) reads every file once to compare its checksum with the manifest and
        to check that the vectors are finite unit vectors; ``verify=False`` opens trusted files
        without that pass (structure, dtypes and shapes are still checked). A damaged or
        foreign directory raises ``DamagedIndexError`` naming the file."""
        data = read_index(path, mmap_mode="r" if mmap else None, verify=verify)
        manifest = data["manifest"]
        index = cls(
            manifest["dim"],
            runtime=runtime,
            capacity=16,
            quantization=manifest.get("quantization"),
            rerank_factor=int(manifest.get("rerank_factor") or DEFAULT_RERANK_FACTOR),
        )
        n = len(data["ids"])
        index._vectors = data["vectors"]
        index._codes = data["codes"]
        if index._codes is not None:
            # Reranks read a few scattered float32 rows per query: without this advice every
            # such read faults in (and keeps resident) the surrounding read-ahead window.
            _advise(index._vectors, "MADV_RANDOM")
        if data["quantizer"] is not None:
            index._quantizer = ScalarQuantizer(data["quantizer"][0], data["quantizer"][1])
        index._alive = np.ones(n, dtype=np.uint8)
        index._n = n
        index._ids = data["ids"]
        index._meta = data["metadata"]
        index._row_of_map = None
        index._mapped = True
        if not mmap:
            index._make_writable()
        return index

    # ------------------------------------------------------------------ search

    def search(
        self, query: Any, top_k: int = 10, filter: Filter = None, *, exact: bool | None = None
    ) -> list[SearchHit]:
        """The ``top_k`` patterns most similar to ``query`` (cosine), best first."""
        if (
            filter is None
            and exact is None
            and type(query) is np.ndarray
            and query.dtype is _F32
            and type(top_k) is int
            and top_k > 0
        ):
            # Without the lock, from the snapshot the last locked search took, while no write
            # has begun since (the lock's ``version``, a sequence lock's counter). A write
            # that begins during the kernel call (which releases the GIL for the scan) may
            # tear what it reads: then the version has moved and the answer is dropped for
            # the locked way below. Nothing the kernel reads can be freed meanwhile: the
            # snapshot holds the row storage and the lists, which writes only append to,
            # change in place or replace, never shorten.
            snapshot = self._snapshot
            lock = self._lock
            version = lock.version
            if snapshot[0] == version:
                hits = self._backend.topk_hits(
                    snapshot[1],
                    query,
                    top_k,
                    HITS,
                    snapshot[2],
                    snapshot[3],
                    snapshot[4],
                )
                if hits is not None and lock.version == version:
                    return hits
            race = None
            if self._codes is not None and self._codes_first(top_k, None):
                # Codes or float32: whichever exact search is faster on this index's data
                # (``dispatch.PathRace``), the float32 scan by the short way below, timed.
                race = self._race
                if race.choose():
                    return self._search(query, top_k, None, None, True)[0]
                started = _clock()
            # The common call, by the shortest way (``_search`` answers the same, plus the
            # outcome ``search_detailed`` reports): a float32 query that the seam normalises
            # and searches in one kernel call, which also builds the hits
            # (``AdaptiveSearchBackend.topk_hits``), under the read lock, which is when the
            # snapshot above is taken. Removed rows are passed as a mask (the live rows). A
            # query the kernel will not take goes the long way.
            lock.acquire_read()
            try:
                matrix, mask = self._prepare(None)
                if self._codes is None and not self._mapped:
                    # (A memory-mapped index's id and metadata tables are views of its files,
                    # closed by its first update: searched under the lock until then.)
                    self._snapshot = (lock.version, matrix, self._ids, self._meta, mask)
                hits = self._backend.topk_hits(
                    matrix, query, top_k, HITS, self._ids, self._meta, mask
                )
                if hits is not None:
                    if race is not None:
                        race.record(False, _clock() - started)
                    return hits
            finally:
                lock.release_read()
            if race is not None:
                return self._search(query, top_k, None, None, False)[0]
        return self._search(query, top_k, filter, exact)[0]

    def search_detailed(
        self, query: Any, top_k: int = 10, filter: Filter = None, *, exact: bool | None = None
    ) -> SearchResult:
        """``search`` plus the runtime that answered, its latency and any fallback reason.

        ``exact``: None = the index's mode (an index with codes searches them first while the
        kernel answers), True = scan float32, False = the certified int8 search (an ``"auto"``
        index without codes yet scans float32; an index created with ``quantization=None``
        raises ``InvalidInputError``). Every mode gives the exact top k.
        """
        hits, outcome = self._search(query, top_k, filter, exact)
        if outcome is None:  # the filter matched nothing: no search ran
            return SearchResult(hits, "python", 0.0)
        result = _new_object(SearchResult)  # as _hits: no frozen-dataclass __init__
        fields = result.__dict__
        fields["hits"] = hits
        fields["runtime"] = outcome.runtime
        fields["elapsed_ms"] = outcome.elapsed_ms
        fields["fallback_reason"] = outcome.fallback_reason
        fields["error"] = outcome.error
        return result

    def _search(
        self,
        query: Any,
        top_k: Any,
        filter: Filter,
        exact: bool | None,
        codes: bool | None = None,
    ) -> tuple[list[SearchHit], Outcome[Any] | None]:
        """The hits and the outcome of the call that found them (None: no search ran).
        ``codes``: the race's choice when the caller drew it (``search``)."""
        backend = self._backend
        k = top_k if type(top_k) is int and top_k > 0 else as_top_k(top_k)
        use_codes = self._codes is not None if exact is None else self._use_codes(exact)
        lock = self._lock
        # The common call (a float32 ndarray) goes to whichever runtime answers with the raw
        # query, which it normalises and searches in one step (the kernel in one call: the
        # float32 scan, or the whole certified int8 search) and answers as lists. A query it
        # leaves alone (wrong shape, zero, NaN/inf, extreme magnitudes) gets ``as_query``: the
        # right error, or float64 normalisation.
        one_call = type(query) is np.ndarray and query.dtype is _F32
        q: np.ndarray | None = None
        if not one_call:
            # Into the calling thread's scratch buffer (its address is known to the kernel
            # seam), except when a callable filter (user code, which might search this thread
            # again before the kernel reads the buffer) runs in between.
            scratch = None if callable(filter) else backend.query_buffer(self.dim)
            q = as_query(query, self.dim, out=scratch)
        lock.acquire_read()
        try:
            matrix, mask = self._prepare(filter)
            # Only a filter can leave no row (``_prepare`` refuses an empty index): the
            # liveness mask alone is not read here, a pass over it before every search.
            if filter is not None and mask is not None and not mask.any():
                if q is None:
                    as_query(query, self.dim)  # a bad query is an error even with no rows
                return [], None
            if use_codes and self._codes_first(k, exact):
                if exact is not None:  # exact=False: the certified search was asked for
                    return self._search_codes(matrix, mask, query, q, k)
                # The index's own mode: the faster of the two exact searches on this data
                # (``dispatch.PathRace``); unfiltered calls keep the race's times.
                race = self._race
                if codes is None:
                    codes = race.choose()
                started = _clock()
                found = (
                    self._search_codes(matrix, mask, query, q, k)
                    if codes
                    else self._search_float32(matrix, mask, query, q, k)
                )
                if filter is None:
                    race.record(codes, _clock() - started)
                return found
            return self._search_float32(matrix, mask, query, q, k)
        finally:
            lock.release_read()

    def _search_float32(
        self,
        matrix: np.ndarray,
        mask: np.ndarray | None,
        query: np.ndarray,
        q: np.ndarray | None,
        k: int,
    ) -> tuple[list[SearchHit], Outcome[Any]]:
        """The exact float32 scan (caller holds the read lock): ``query`` the caller's
        float32 ndarray, or ``q`` its ``as_query`` normalisation when already made."""
        backend = self._backend
        if q is None:
            lists = backend.topk_lists_outcome(matrix, query, k, mask, pinned=True)
            found = lists.value
            if found is not None:
                return _hits(found[0], found[1], self._ids, self._meta), lists
            q = as_query(query, self.dim)
        outcome = backend.topk_outcome(matrix, q, k, mask, pinned=True)
        top = outcome.value
        return _hits(top.rows.tolist(), top.scores.tolist(), self._ids, self._meta), outcome

    def _search_codes(
        self,
        matrix: np.ndarray,
        mask: np.ndarray | None,
        query: np.ndarray,
        q: np.ndarray | None,
        k: int,
    ) -> tuple[list[SearchHit], Outcome[Any]]:
        """The certified int8 search (caller holds the read lock): ``query`` the caller's
        float32 ndarray, or ``q`` its ``as_query`` normalisation when already made."""
        codes, quantizer = self._codes_view(), self._quantizer
        assert quantizer is not None
        backend = self._backend
        candidates = max(k * self.rerank_factor, self._candidates_hint)
        outcome = None
        if q is None:
            outcome = backend.topk_int8_lists_outcome(
                codes, matrix, query, k, candidates, mask, quantizer, pinned=True
            )
        if outcome is None or outcome.value is None:
            if q is None:
                q = as_query(query, self.dim)
            outcome = backend.topk_int8_lists_outcome(
                codes, matrix, q, k, candidates, mask, quantizer, normalised=True, pinned=True
            )
        found = outcome.value
        if found is None:  # not expected (rows are eligible, q is normalised): scan float32
            assert q is not None
            exact = backend.topk_outcome(matrix, q, k, mask, pinned=True)
            top = exact.value
            return _hits(top.rows.tolist(), top.scores.tolist(), self._ids, self._meta), exact
        rows, scores, start = found
        # Where the next query starts: what this one suggests when that is higher; else at
        # most an eighth lower than this one's start (a start that follows one easy query down
        # would make the next, harder one scan twice), and an eighth lower when the suggestion
        # is this start itself (after the float32 scan answered: all the rows), so that a run
        # of float32 answers ends by itself.
        if start > candidates:
            self._candidates_hint = start
        else:
            self._candidates_hint = max(start if start < candidates else 0, candidates * 7 // 8)
        return _hits(rows, scores, self._ids, self._meta), outcome

    def _codes_view(self) -> np.ndarray:
        """``codes[:n]``, the same view object while storage and size are unchanged (its
        address is looked up once, as for ``_prepare``'s views)."""
        assert self._codes is not None
        self._codes_cached = cached = _rows_view(self._codes_cached, self._codes, self._n)
        return cached[2]

    def search_batch(self, queries: Any, top_k: int = 10, filter: Filter = None) -> BatchResult:
        """Exact top-k for each row of ``queries`` (b, d); arrays of ids and scores, best first."""
        qs = as_queries(queries, self.dim)
        k = as_top_k(top_k)
        with self._lock.read():
            matrix, mask = self._prepare(filter)
            if filter is not None and mask is not None and not mask.any():  # as in _search
                empty = np.empty((qs.shape[0], 0))
                return BatchResult(empty.astype(object), empty.astype(np.float32), "python", 0.0)
            outcome: Outcome[BatchTopK] = self._backend.topk_batch_outcome(matrix, qs, k, mask)
            rows = outcome.value.rows
            ids = np.empty(rows.shape, dtype=object)
            for i, row_list in enumerate(rows.tolist()):
                ids[i, :] = [self._ids[r] for r in row_list]
        return BatchResult(ids, outcome.value.scores, outcome.runtime, outcome.elapsed_ms)

    # ------------------------------------------------------------------ internals

    def _codes_first(self, k: int, exact: bool | None) -> bool:
        """Whether a search of an index with codes runs the certified int8 search: not when
        its first candidates would be a quarter of the rows or more (the float32 path answers
        at once for an index that small), nor, in the index's default mode (``exact`` None),
        while the float32 rows fit ``FLOAT32_FIRST_MAX_BYTES`` or when the kernel would not
        answer (NumPy's certified search is 6-17x slower than its float32 scan: 1,000 x
        1,024 to 100,000 x 384, 2026-11-29). Both paths are exact."""
        if 4 * k * self.rerank_factor >= len(self):
            return False
        if exact is not None:
            return True
        return self._n * self.dim * 4 > FLOAT32_FIRST_MAX_BYTES and self._backend.kernel_answers()

    def _use_codes(self, exact: bool | None) -> bool:
        if exact is None:
            return self._codes is not None
        if not exact and self._codes is None and self.quantization != "auto":
            raise InvalidInputError(
                "exact=False needs an index created with quantization='int8' or 'auto'"
            )
        return not exact and self._codes is not None

    def _prepare(self, filter: Filter) -> tuple[np.ndarray, np.ndarray | None]:
        if len(self) == 0:
            raise EmptyIndexError("the index is empty: add patterns before searching")
        n = self._n
        # The same view objects while storage and size are unchanged: the kernel seam looks
        # their addresses up once per view (``AdaptiveSearchBackend.topk_outcome(pinned=True)``,
        # ``MojoSearchBackend.mask_address``).
        self._view = cached = _rows_view(self._view, self._vectors, n)
        matrix = cached[2]
        mask = None
        if self._dead:
            self._alive_view = alive = _rows_view(self._alive_view, self._alive, n)
            mask = alive[2]
        if filter is None:
            return matrix, mask
        selected = self._filter_mask(filter, n)
        if mask is not None:
            selected &= mask
        return matrix, selected

    def _filter_mask(self, filter: Filter, n: int) -> np.ndarray:
        if callable(filter):
            out = np.zeros(n, dtype=np.uint8)
            for row in range(n):
                if self._ids[row] is None:
                    continue
                meta = self._meta[row]
                if meta is not None and filter(meta):
                    out[row] = 1
            return out
        if not isinstance(filter, Mapping):
            raise InvalidTypeError(
                f"filter must be a mapping or a callable, got {type(filter).__name__}"
            )
        postings = self._ensure_postings()
        out = np.ones(n, dtype=np.uint8)
        for key, wanted in filter.items():
            choices = (
                list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            )
            rows: set[int] = set()
            key_postings = postings.get(key, {})
            for choice in choices:
                # An unhashable filter value can only match unhashables (below).
                with suppress(TypeError):
                    rows |= key_postings.get(_posting_key(choice), set())
            for row in self._unhashable.get(key, ()):
                meta = self._meta[row]
                if meta is not None and meta.get(key) in choices:
                    rows.add(row)
            key_mask = np.zeros(n, dtype=np.uint8)
            if rows:
                key_mask[np.fromiter(rows, dtype=np.int64, count=len(rows))] = 1
            out &= key_mask
        return out

    def _ensure_postings(self) -> dict[str, dict[Any, set[int]]]:
        """Builds the inverted index on first use (a loaded index parses its metadata here).

        Searches hold only the shared lock, so several may arrive here together: the tables
        are built complete in locals and published once, under ``_postings_lock`` (updates
        hold the exclusive lock and never run concurrently with this).
        """
        postings = self._postings
        if postings is not None:
            return postings
        with self._postings_lock:
            if self._postings is None:
                built: dict[str, dict[Any, set[int]]] = {}
                unhashable: dict[str, set[int]] = {}
                for row in range(self._n):
                    if self._ids[row] is not None:
                        _add_postings(built, unhashable, row, self._meta[row] or {})
                self._unhashable = unhashable
                self._postings = built  # published last: readers test this one
            return self._postings

    def _add_postings(self, row: int, meta: Mapping[str, Any]) -> None:
        assert self._postings is not None
        _add_postings(self._postings, self._unhashable, row, meta)

    def _index_meta(self, row: int, meta: Mapping[str, Any]) -> None:
        if self._postings is not None:
            self._add_postings(row, meta)

    def _unindex(self, row: int) -> None:
        if self._postings is None:
            return
        meta = self._meta[row] or {}
        for key, value in meta.items():
            if isinstance(value, _HASHABLE_SCALARS):
                bucket = self._postings.get(key, {}).get(_posting_key(value))
                if bucket is not None:
                    bucket.discard(row)
                    if not bucket:
                        del self._postings[key][_posting_key(value)]
            else:
                self._unhashable.get(key, set()).discard(row)

    def _start_codes(self) -> None:
        """An ``"auto"`` index outgrew float32 alone: codes for every row from now on, with
        ranges fitted on the live rows (a quarter more memory, encoded once here)."""
        n = self._n
        live = self._vectors[:n][self._alive[:n].astype(bool)] if self._dead else self._vectors[:n]
        self._quantizer = quantizer = ScalarQuantizer.fit(live)
        codes = _aligned_zeros(self._vectors.shape, np.uint8)
        quantizer.encode(self._vectors[:n], out=codes[:n])
        self._codes = codes
        self._candidates_hint = 0
        self._race.reset()

    def _encode(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Keeps the uint8 codes in step; refits and re-encodes everything if out of range."""
        assert self._codes is not None
        if self._quantizer is None:
            self._quantizer = ScalarQuantizer.fit(vectors)
        elif not self._quantizer.covers(vectors):
            self._quantizer = self._quantizer.merged_with(vectors)
            self._quantizer.encode(self._vectors[: self._n], out=self._codes[: self._n])
            return
        self._codes[rows] = self._quantizer.encode(vectors)

    def _make_writable(self) -> None:
        """The first update of a loaded index copies its memory-mapped arrays into memory."""
        if not self._mapped:
            return
        n = self._n
        capacity = max(16, n)
        vectors = _aligned_zeros((capacity, self.dim), np.float32)
        vectors[:n] = self._vectors[:n]
        if self._codes is not None:
            codes = _aligned_zeros((capacity, self.dim), np.uint8)
            codes[:n] = self._codes[:n]
            self._codes = codes
        alive = np.zeros(capacity, dtype=np.uint8)
        alive[:n] = self._alive[:n]
        self._vectors, self._alive = vectors, alive
        for name in ("_ids", "_meta"):
            lazy = getattr(self, name)
            if isinstance(lazy, LazyJsonLines):
                setattr(self, name, list(lazy))
                lazy.close()
        self._row_of  # noqa: B018 - build the id map now that ids are a list
        self._mapped = False

    def _reserve(self, rows: int) -> None:
        capacity = self._vectors.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(rows, capacity * 2)
        vectors = _aligned_zeros((new_capacity, self.dim), np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        alive = np.zeros(new_capacity, dtype=np.uint8)
        alive[: self._n] = self._alive[: self._n]
        if self._codes is not None:
            codes = _aligned_zeros((new_capacity, self.dim), np.uint8)
            codes[: self._n] = self._codes[: self._n]
            self._codes = codes
        self._vectors, self._alive = vectors, alive

    def _compact(self) -> None:
        """Drops dead rows, keeping the insertion order of the live ones."""
        live = np.flatnonzero(self._alive[: self._n])
        capacity = max(16, len(live) * 2)
        vectors = _aligned_zeros((capacity, self.dim), np.float32)
        vectors[: len(live)] = self._vectors[live]
        if self._codes is not None:
            codes = _aligned_zeros((capacity, self.dim), np.uint8)
            codes[: len(live)] = self._codes[live]
            self._codes = codes
        alive = np.zeros(capacity, dtype=np.uint8)
        alive[: len(live)] = 1
        ids = [self._ids[r] for r in live.tolist()]
        metas = [self._meta[r] for r in live.tolist()]
        self._vectors, self._alive = vectors, alive
        self._ids, self._meta = ids, metas
        self._n, self._dead = len(live), 0
        self._row_of_map = {pattern_id: row for row, pattern_id in enumerate(ids)}  # type: ignore[misc]
        self._postings, self._unhashable = None, {}
