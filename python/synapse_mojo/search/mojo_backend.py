"""The Mojo backend: a thin shell over the ``pattern_search`` kernel module.

It allocates the output buffers, passes addresses of already-validated arrays and slices the
result. ``self_check`` / ``self_check_batch`` compare the kernel with the pure-Python reference
at start-up (the runtime adapter calls them before the first Mojo call).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from ..config import available_cores
from ..runtime.adapter import register_self_check
from ..runtime.kernel_types import PatternSearchKernel
from .base import (
    BatchTopK,
    HitBuilder,
    Int8Lists,
    SearchBackend,
    TopK,
    TopLists,
    batch_results_agree,
    eligible_count,
    lists_topk,
    results_agree,
    threads_for,
)
from .dispatch import shipped_crossovers
from .quantization import ScalarQuantizer, quantize_query
from .reference import PythonSearchBackend

#: What the one-call kernel paths return instead of lists (``cosine_lists_with``).
ROW_NOT_FINITE = -1
QUERY_NOT_ACCEPTED = -2
ROWS_NOT_ACCEPTED = -3

_new_object = object.__new__


class _Scratch(threading.local):
    """Per-thread output buffers with their addresses looked up once (``ndarray.ctypes``
    costs about a microsecond per call, as much as a small scan)."""

    def __init__(self) -> None:
        self.size = 0
        self.rows = np.empty(0, np.int64)
        self.scores = np.empty(0, np.float32)
        self.rows_addr = self.scores_addr = 0

    def reserve(self, width: int) -> None:
        if width > self.size:
            self.size = max(width, 64)
            self.rows = np.empty(self.size, np.int64)
            self.scores = np.empty(self.size, np.float32)
            self.rows_addr, self.scores_addr = self.rows.ctypes.data, self.scores.ctypes.data


class MojoSearchBackend(SearchBackend):
    """``threads``: the most workers a call uses (0 = all cores). A call whose work (rows x
    dimensions multiply-adds) is below ``inline_below`` runs on the calling thread alone (no
    task group: see ``search.dispatch``); above it, one worker per ``grain`` multiply-adds,
    the calling thread being one of them."""

    name = "mojo"

    def __init__(
        self,
        kernel: PatternSearchKernel,
        threads: int = 0,
        fault: int = 0,
        grain: int = 1 << 17,
        inline_below: int | None = None,
    ) -> None:
        self.kernel = kernel
        self._threads = threads if threads > 0 else available_cores()
        self._fault = fault
        self._grain = grain
        self.inline_below = (
            shipped_crossovers().inline_below if inline_below is None else inline_below
        )
        self._scratch = _Scratch()
        self._last_mask: tuple[Any, int] = (None, 0)  # mask_address
        # (weak reference, address) of the last few pinned arrays: an index's float32 view
        # and its codes view, a second index's, ...
        self._pinned: list[tuple[Any, int]] = []

    def workers(self, work: int) -> int:
        """Workers for a scan of ``work`` multiply-adds."""
        if work < self.inline_below:
            return 1
        return threads_for(work, self._threads, self._grain)

    def mask_address(self, mask: np.ndarray) -> int:
        """The data address of a uint8 mask, remembered for the last mask object (held, so
        that its identity cannot be reused): an index passes its liveness view, the same
        object from call to call. ``ndarray.ctypes.data`` costs about 0.8 us, and any Python
        work just before a call slows the scan of a pair of workers (measured 2026-11-29,
        10,000 x 384, two workers: 267 us; 285 with ``count_nonzero`` of the mask before each
        call, 289 with ``mask.ctypes.data``, 301 with both)."""
        last = self._last_mask
        if last[0] is mask:
            return last[1]
        addr = mask.ctypes.data
        self._last_mask = (mask, addr)
        return addr

    def pinned_address(self, array: np.ndarray) -> int:
        """The data address of an array whose owner never reallocates it in place (an
        index's own storage views): looked up once per array object."""
        pinned = self._pinned
        for ref, addr in pinned:
            if ref() is array:
                return addr
        addr = array.ctypes.data
        # A new list, not an update in place: other threads may be iterating the old one.
        self._pinned = [(weakref.ref(array), addr), *pinned[:3]]
        return addr

    # ------------------------------------------------------------------ single query

    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK:
        return self.topk_with(self._fault, matrix, query, k, mask)

    def topk_with(
        self,
        fault: int,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None = None,
        matrix_addr: int = 0,
        query_addr: int = 0,
    ) -> TopK:
        """``topk`` with a per-call fault code; addresses when the caller knows them."""
        n, d = matrix.shape
        width = k if mask is None and k <= n else min(k, eligible_count(n, mask))
        if width == 0:
            return TopK(np.empty(0, np.int64), np.empty(0, np.float32))
        scratch = self._scratch
        if width > scratch.size:
            scratch.reserve(width)
        count = self.kernel.topk(
            (
                matrix_addr or matrix.ctypes.data,
                n,
                d,
                query_addr or query.ctypes.data,
                width,
                0 if mask is None else self.mask_address(mask),
                self.workers(n * d),
                scratch.rows_addr,
                scratch.scores_addr,
                fault,
            )
        )
        return TopK(scratch.rows[:count].copy(), scratch.scores[:count].copy())

    def topk_cosine(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopK | None:
        return self.topk_cosine_with(self._fault, rows, query, k)

    def topk_cosine_with(
        self, fault: int, rows: np.ndarray, query: np.ndarray, k: int
    ) -> TopK | None:
        n, d = rows.shape
        width = min(k, n)
        if width == 0:
            return TopK(np.empty(0, np.int64), np.empty(0, np.float32))
        scratch = self._scratch
        if width > scratch.size:
            scratch.reserve(width)
        count = self.kernel.topk_cosine(
            (
                rows.ctypes.data,
                n,
                d,
                query.ctypes.data,
                width,
                self.workers(n * d),
                scratch.rows_addr,
                scratch.scores_addr,
                fault,
            )
        )
        if count < 0:
            return None
        return TopK(scratch.rows[:count].copy(), scratch.scores[:count].copy())

    # ------------------------------------------------------------------ one call, lists out

    def topk_lists_with(
        self,
        fault: int,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        matrix_addr: int,
    ) -> TopLists | None:
        """An index's search in one kernel call: ``query`` is the caller's raw float32 ndarray
        (exact type and dtype checked by the caller), normalised in the kernel; the result is
        ``(rows, scores)`` lists (fewer than ``k`` when fewer rows are eligible). None when
        the kernel leaves the query to the Python side (not a contiguous (d,) array, or zero,
        non-finite or of extreme magnitude), or when the matrix has no rows. The kernel
        checks the query before it scans: a query it refuses is refused with any mask."""
        n, d = matrix.shape
        width = k if k <= n else n
        if width == 0:
            return None  # nothing to scan: the checked path validates the query and answers
        found = self.kernel.topk_lists(
            (
                matrix_addr or matrix.ctypes.data,
                n,
                d,
                width,
                0 if mask is None else self.mask_address(mask),
                self.workers(n * d),
                fault,
                query,
            )
        )
        return found if type(found) is tuple else None

    def topk_hits_with(
        self,
        fault: int,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        matrix_addr: int,
        builder: HitBuilder,
        ids: list[Any],
        metas: list[Any],
        mask: np.ndarray | None = None,
    ) -> list[Any] | None:
        """``topk_lists_with``, answered as ``builder``'s objects made in the kernel
        (``HitBuilder.build`` from ``ids`` and ``metas``, which must be lists). None as
        ``topk_lists_with``."""
        n, d = matrix.shape
        width = k if k <= n else n
        if width == 0:
            return None
        found = self.kernel.topk_hits(
            (
                matrix_addr or matrix.ctypes.data,
                n,
                d,
                width,
                0 if mask is None else self.mask_address(mask),
                self.workers(n * d),
                fault,
                query,
                _new_object,
                builder.cls,
                builder.names,
                ids,
                metas,
            )
        )
        return found if type(found) is list else None

    def cosine_lists_with(
        self, fault: int, rows: np.ndarray, query: np.ndarray, k: int
    ) -> TopLists | int:
        """``topk_cosine`` over the caller's raw rows with the raw query, in one kernel call
        (both float32 ndarrays, exact type and dtype checked by the caller): ``(rows,
        scores)`` lists, or the kernel's refusal code (``ROW_NOT_FINITE``,
        ``QUERY_NOT_ACCEPTED``, ``ROWS_NOT_ACCEPTED``) for the Python side to sort out."""
        n, d = rows.shape
        width = min(k, n)
        if width == 0:
            return [], []
        return self.kernel.cosine_lists((n, d, width, self.workers(n * d), fault, rows, query))

    def topk_int8_lists_with(
        self,
        fault: int,
        codes: np.ndarray,
        vectors: np.ndarray,
        query: np.ndarray,
        k: int,
        candidates: int,
        mask: np.ndarray | None,
        parts_addr: int,
        normalised: bool,
        codes_addr: int = 0,
        vectors_addr: int = 0,
    ) -> Int8Lists | None:
        """An int8 index's certified search in one kernel call (see
        ``quantization.certified_topk_int8``): ``query`` a float32 ndarray, the caller's raw
        one or (``normalised``) one ``vectors.as_query`` returned; ``parts_addr`` the address
        of ``ScalarQuantizer.kernel_parts``. None when the kernel leaves the query to the
        Python side (as ``topk_lists_with``) or the index has no rows."""
        n, d = codes.shape
        width = k if k <= n else n
        if width == 0:
            return None
        work = n * d
        found = self.kernel.topk_int8_lists(
            (
                codes_addr or codes.ctypes.data,
                vectors_addr or vectors.ctypes.data,
                n,
                d,
                width,
                max(width, candidates),
                0 if mask is None else self.mask_address(mask),
                # uint8 codes: a quarter of the bytes per row, so a quarter of the work.
                self.workers(work // 4),
                self.workers(work),
                fault,
                parts_addr,
                1 if normalised else 0,
                query,
            )
        )
        return found if type(found) is tuple else None

    # ------------------------------------------------------------------ batch

    def topk_batch(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> BatchTopK:
        return self.topk_batch_with(self._fault, matrix, queries, k, mask)

    def topk_batch_with(
        self,
        fault: int,
        matrix: np.ndarray,
        queries: np.ndarray,
        k: int,
        mask: np.ndarray | None = None,
    ) -> BatchTopK:
        n, d = matrix.shape
        b = queries.shape[0]
        width = min(k, eligible_count(n, mask))
        rows = np.empty((b, max(width, 1)), dtype=np.int64)
        scores = np.empty((b, max(width, 1)), dtype=np.float32)
        if width == 0 or b == 0:
            return BatchTopK(rows[:, :0], scores[:, :0])
        count = self.kernel.topk_batch(
            (
                matrix.ctypes.data,
                n,
                d,
                queries.ctypes.data,
                b,
                width,
                0 if mask is None else self.mask_address(mask),
                threads_for(n * d, self._threads, self._grain),
                rows.ctypes.data,
                scores.ctypes.data,
                fault,
            )
        )
        return BatchTopK(rows[:, :count], scores[:, :count])

    # ------------------------------------------------------------------ quantised

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
        return self.topk_int8_with(
            self._fault, codes, vectors, query_i8, query, k, candidates, mask
        )

    def topk_int8_with(
        self,
        fault: int,
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
        if width == 0:
            return TopK(np.empty(0, np.int64), np.empty(0, np.float32))
        scratch = self._scratch
        if width > scratch.size:
            scratch.reserve(width)
        count = self.kernel.topk_int8(
            (
                codes.ctypes.data,
                vectors.ctypes.data,
                n,
                d,
                query.ctypes.data,
                query_i8.ctypes.data,
                width,
                max(width, candidates),
                0 if mask is None else self.mask_address(mask),
                # uint8 codes: a quarter of the bytes per row, so a quarter of the work.
                self.workers(n * d // 4),
                scratch.rows_addr,
                scratch.scores_addr,
                fault,
            )
        )
        return TopK(scratch.rows[:count].copy(), scratch.scores[:count].copy())


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


def self_check(kernel: PatternSearchKernel) -> None:
    """Single-query kernel vs the reference, with and without a mask, 1 and 2 workers."""
    matrix, queries, mask = _check_data()
    reference = PythonSearchBackend()
    d = matrix.shape[1]
    for threads in (1, 2):
        backend = MojoSearchBackend(kernel, threads=threads, grain=1 << 12, inline_below=0)
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
    top = MojoSearchBackend(kernel, threads=2, grain=1 << 12, inline_below=0).topk(
        matrix, queries[0], 3
    )
    if top.rows[:3].tolist() != [17, 500, 900]:
        raise SelfCheckError(f"exact ties out of insertion order: {top.rows[:3].tolist()}")
    # Cosine over raw rows: scaled copies of the data, a zero row, exact duplicates.
    rng = np.random.default_rng(5)
    raw = (matrix * rng.uniform(0.1, 10.0, (matrix.shape[0], 1))).astype(np.float32)
    raw[300] = 0.0
    raw[500] = raw[17]
    raw[900] = raw[17]
    wanted = {
        (i, k): reference.topk_cosine(raw, q, k) for i, q in enumerate(queries) for k in (1, 40)
    }
    for threads in (1, 2):
        backend = MojoSearchBackend(kernel, threads=threads, grain=1 << 12, inline_below=0)
        for i, q in enumerate(queries):
            for k in (1, 40):
                want_c = wanted[(i, k)]
                got_c = backend.topk_cosine(raw, q, k)
                if want_c is None or got_c is None or not results_agree(want_c, got_c, d):
                    raise SelfCheckError(
                        f"topk_cosine k={k} threads={threads} disagrees with the reference"
                    )
        tied = backend.topk_cosine(raw, raw[17] / np.linalg.norm(raw[17]), 3)
        if tied is None or tied.rows.tolist() != [17, 500, 900]:
            raise SelfCheckError(f"topk_cosine: exact ties out of insertion order: {tied}")
        bad = raw.copy()
        bad[1030, 5] = np.nan
        if backend.topk_cosine(bad, queries[0], 5) is not None:
            raise SelfCheckError("topk_cosine accepted a row with NaN")
    _check_lists(kernel, matrix, queries, mask, raw, reference)
    # Quantised scan with a rerank wide enough to be exact on this data.
    quantizer = ScalarQuantizer.fit(matrix)
    codes = quantizer.encode(matrix)
    backend = MojoSearchBackend(kernel, threads=2, grain=1 << 12, inline_below=0)
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
    # The certified search in one call: one scan (many candidates), growth and a second scan
    # (too few for the near-duplicates of row 17), and the float32 fallback (a quarter of
    # the rows or more).
    parts = quantizer.kernel_parts[1]
    for threads in (1, 2):
        backend = MojoSearchBackend(kernel, threads=threads, grain=1 << 12, inline_below=0)
        for q in queries:
            for m in (None, mask):
                want = reference.topk(matrix, q, 7, m)
                for start in (7, 60, 400):
                    found = backend.topk_int8_lists_with(
                        0, codes, matrix, q, 7, start, m, parts, True
                    )
                    if found is None or not results_agree(want, lists_topk(found), d):
                        raise SelfCheckError(
                            f"topk_int8_lists start={start} mask={m is not None} "
                            f"threads={threads} disagrees with the reference"
                        )
    zero = np.zeros(d, np.float32)
    if backend.topk_int8_lists_with(0, codes, matrix, zero, 3, 30, None, parts, False) is not None:
        raise SelfCheckError("topk_int8_lists accepted a zero query")


def _check_lists(
    kernel: PatternSearchKernel,
    matrix: np.ndarray,
    queries: np.ndarray,
    mask: np.ndarray,
    raw: np.ndarray,
    reference: PythonSearchBackend,
) -> None:
    """The object-taking calls: the array fields they read (against ``ndarray.ctypes``),
    their refusals, and their lists against the reference."""
    n, d = matrix.shape
    if kernel.array_address((n, d, matrix)) != matrix.ctypes.data:
        raise SelfCheckError("array_address: the kernel reads a different data pointer")
    if kernel.array_address((0, d, queries[1])) != queries[1].ctypes.data:
        raise SelfCheckError("array_address: the kernel reads a different vector pointer")
    refused = (
        kernel.array_address((n, d, matrix[:, ::-1])),  # not C-contiguous
        kernel.array_address((n - 1, d, matrix[1:])),  # contiguous, and only n - 1 rows
        kernel.array_address((0, d, matrix[:, 0].copy()[:d])),  # (n,) sliced to d: (d,) ok
        kernel.array_address((0, d, matrix[:d, 0])),  # strided (d,) view
        kernel.array_address((n, d, queries[0])),  # wrong rank
    )
    if refused[0] or refused[1] != matrix[1:].ctypes.data or not refused[2] or any(refused[3:]):
        raise SelfCheckError(f"array_address: shape, stride or rank checks wrong: {refused}")
    scaled = (queries * np.float32(3.5)).astype(np.float32)  # raw, not normalised
    for threads in (1, 2):
        backend = MojoSearchBackend(kernel, threads=threads, grain=1 << 12, inline_below=0)
        for q, q_raw in zip(queries, scaled, strict=True):
            for m in (None, mask):
                want = reference.topk(matrix, q, 7, m)
                got = backend.topk_lists_with(0, matrix, q_raw, 7, m, 0)
                if got is None or not results_agree(want, lists_topk(got), d):
                    raise SelfCheckError(f"topk_lists mask={m is not None} threads={threads}")
            want_c = reference.topk_cosine(raw, q, 9)
            got_c = backend.cosine_lists_with(0, raw, q_raw, 9)
            if want_c is None or type(got_c) is not tuple:
                raise SelfCheckError(f"cosine_lists threads={threads}: refused ({got_c})")
            if not results_agree(want_c, lists_topk(got_c), d):
                raise SelfCheckError(f"cosine_lists threads={threads} disagrees")
    backend = MojoSearchBackend(kernel, threads=1)
    zero = np.zeros(d, np.float32)
    bad = raw.copy()
    bad[3, 3] = np.inf
    codes = (
        backend.topk_lists_with(0, matrix, zero, 3, None, 0),
        backend.cosine_lists_with(0, raw, zero, 3),
        backend.cosine_lists_with(0, bad, scaled[0], 3),
        backend.cosine_lists_with(0, raw[:, :-1].copy(), scaled[0][:-1].copy(), 3),  # odd d
    )
    if codes[0] is not None or codes[1] != -2 or codes[2] != -1 or type(codes[3]) is not tuple:
        raise SelfCheckError(f"lists calls: wrong refusals {codes}")
    _check_hits(kernel, matrix, scaled)


class _CheckHit:
    """A plain class for ``_check_hits`` (the index's ``SearchHit`` lives above this layer)."""

    id: str
    score: float
    metadata: dict[str, Any]


def _check_hits(kernel: PatternSearchKernel, matrix: np.ndarray, scaled: np.ndarray) -> None:
    """``topk_hits``: the objects ``HitBuilder.build`` makes from ``topk_lists``' answer, each
    metadata a new dict (an entry's copy, or empty for None and for an empty dict)."""
    n, d = matrix.shape
    builder = HitBuilder(_CheckHit, ("id", "score", "metadata"))
    ids = [f"row-{row}" for row in range(n)]
    metas: list[Any] = [
        None if row % 3 == 0 else {} if row % 3 == 1 else {"row": row} for row in range(n)
    ]
    for threads in (1, 2):
        backend = MojoSearchBackend(kernel, threads=threads, grain=1 << 12, inline_below=0)
        for q_raw in scaled:
            lists = backend.topk_lists_with(0, matrix, q_raw, 9, None, 0)
            got = backend.topk_hits_with(0, matrix, q_raw, 9, 0, builder, ids, metas)
            if lists is None or got is None:
                raise SelfCheckError(f"topk_hits threads={threads}: refused a good query")
            want = builder.build(lists[0], lists[1], ids, metas)
            if len(got) != len(want) or not all(
                type(h) is _CheckHit and vars(h) == vars(w) and h.metadata is not metas[row]
                for h, w, row in zip(got, want, lists[0], strict=True)
            ):
                raise SelfCheckError(f"topk_hits threads={threads} disagrees with topk_lists")
        alive = (np.arange(n) % 4 != 1).astype(np.uint8)
        q_raw = scaled[0]
        lists = backend.topk_lists_with(0, matrix, q_raw, 9, alive, 0)
        got = backend.topk_hits_with(0, matrix, q_raw, 9, 0, builder, ids, metas, alive)
        if (
            lists is None
            or got is None
            or [vars(h) for h in got]
            != [vars(w) for w in builder.build(lists[0], lists[1], ids, metas)]
        ):
            raise SelfCheckError(f"topk_hits threads={threads} with a mask disagrees")
    zero = np.zeros(d, np.float32)
    if backend.topk_hits_with(0, matrix, zero, 3, 0, builder, ids, metas) is not None:
        raise SelfCheckError("topk_hits accepted a zero query")


def self_check_batch(kernel: PatternSearchKernel) -> None:
    """Batch kernel vs the reference."""
    matrix, queries, mask = _check_data(seed=7)
    reference = PythonSearchBackend()
    backend = MojoSearchBackend(kernel, threads=2, grain=1 << 12, inline_below=0)
    for m in (None, mask):
        want = reference.topk_batch(matrix, queries, 9, m)
        got = backend.topk_batch(matrix, queries, 9, m)
        if not batch_results_agree(want, got, matrix.shape[1]):
            raise SelfCheckError(f"topk_batch mask={m is not None} disagrees with the reference")


register_self_check("pattern_search", self_check)
register_self_check("vector_engine", self_check_batch)
