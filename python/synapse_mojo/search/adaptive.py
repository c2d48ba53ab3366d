"""The Mojo/Python seam of search as one object.

``AdaptiveSearchBackend`` implements ``SearchBackend`` once over the feature runtime: it holds
the Mojo backend (built once per kernel), the NumPy backend and the dispatch crossovers, and
answers every call through ``FeatureRuntime.call`` with methods bound once, so a call builds
no backend and no closure. ``topk_hits``, which reports no ``Outcome``, calls the kernel
itself while the runtime's fast lane is open, with the same records::

    backend = AdaptiveSearchBackend()                 # the process runtime, resolved per call
                                                      # (resolve=... for another resolver)
    outcome = backend.topk_outcome(matrix, query, 10)  # Outcome: value, runtime, elapsed_ms, ...
    rows, scores = backend.topk(matrix, query, 10)     # the SearchBackend interface
    hits = backend.topk_hits(matrix, raw_query, 10, builder, ids, metas)  # result objects

``PatternIndex`` and ``compat.PatternSearch`` both call it. Modes keep their meaning (see
``runtime.adapter``); in ``auto`` a call goes to NumPy where the crossovers say NumPy is
faster for its size (``search.dispatch``). The crossovers used are the ones shipped for the
architecture; after the kernel's self-check they are re-measured on this machine (reported by
``doctor``, logged when they differ). The measured inline/pool threshold applies at once (it
changes how fast the kernel answers, never who answers); the measured Mojo/NumPy crossovers
apply only with ``apply_measured=True``: a start-up measurement on a busy machine is too
noisy to decide which runtime answers every call of the process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .. import config as config_module
from ..runtime.adapter import FeatureRuntime, Outcome, Runtime, get_runtime
from ..runtime.kernel_types import PatternSearchKernel
from ..vectors import normalised_common
from .base import (
    BatchTopK,
    HitBuilder,
    Int8Lists,
    SearchBackend,
    TopK,
    TopLists,
    batch_results_agree,
    lists_topk,
    results_agree,
    score_tolerance,
)
from .dispatch import BUSY_NOTE, Crossovers, calibrate, shipped_crossovers
from .mojo_backend import QUERY_NOT_ACCEPTED, ROW_NOT_FINITE, MojoSearchBackend
from .numpy_backend import NumpySearchBackend
from .quantization import (
    ScalarQuantizer,
    certified_topk_int8,
    quantize_query,
    rank_bound,
)

log = logging.getLogger("synapse_mojo.search")

_clock = time.perf_counter
_new_object = object.__new__


def _same_answer(dim: int) -> Any:
    """Shadow-mode comparison of two single-query answers for vectors of dimension ``dim``:
    ``TopK`` arrays or one-call ``(rows, scores)`` lists, compared with ``results_agree``
    (an int8 answer's candidate count is how the runtime got there, not part of the answer);
    anything else (None, a refusal code) must be the same on both sides."""

    Answer = TopK | TopLists | Int8Lists | int | None

    def same(a: Answer, b: Answer) -> bool:
        if not isinstance(a, tuple) or not isinstance(b, tuple):
            return a == b
        top_a = a if isinstance(a, TopK) else lists_topk(a)
        top_b = b if isinstance(b, TopK) else lists_topk(b)
        return results_agree(top_a, top_b, dim)

    return same


class _QueryScratch(threading.local):
    """Per thread: a float32 query buffer whose address is looked up once."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, np.float32)
        self.address = 0


class _Calibration:
    """Crossovers of one kernel module on this machine, measured once after its self-check
    (``measured_crossovers()`` reports them)."""

    measured: dict[int, Crossovers] = {}

    @classmethod
    def get(cls, kernel: PatternSearchKernel) -> Crossovers | None:
        return cls.measured.get(id(kernel))


def measured_crossovers() -> Crossovers | None:
    """The crossovers measured in this process after the kernel's self-check, if any."""
    values = list(_Calibration.measured.values())
    return values[-1] if values else None


class AdaptiveSearchBackend(SearchBackend):
    """Every search operation on Mojo or NumPy, chosen per call by mode, health and size."""

    name = "adaptive"

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        resolve: Callable[[], Runtime] = get_runtime,
        feature: str = "pattern_search",
        batch_feature: str = "vector_engine",
        calibrate_on_start: bool = True,
        apply_measured: bool = False,
    ) -> None:
        self._runtime = runtime
        self._resolve = resolve
        self._feature_name = feature
        self._batch_feature_name = batch_feature
        self._calibrate = calibrate_on_start
        self._apply_measured = apply_measured
        self.numpy = NumpySearchBackend()
        self._bound: tuple[Runtime | None, FeatureRuntime | None, FeatureRuntime | None] = (
            None,
            None,
            None,
        )
        self._mojo: MojoSearchBackend | None = None
        self._crossovers = shipped_crossovers()
        self._numpy_faster = self._crossovers.numpy_faster
        self._cosine_numpy_faster = self._crossovers.cosine_numpy_faster
        self._same: dict[int, Any] = {}
        self._query_scratch = _QueryScratch()
        # ``topk_hits``' kernel arguments for the last matrix it searched, with what they
        # were derived from: (matrix, Mojo backend, crossovers, its inline threshold,
        # (address, n, d, workers), whether the kernel answers at this size). Replaced as one
        # tuple (readers race here); any change of what it was derived from makes a new one.
        self._hits_plan: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def runtime(self) -> Runtime:
        return self._runtime if self._runtime is not None else self._resolve()

    def _features(self) -> tuple[FeatureRuntime, FeatureRuntime]:
        runtime = self._runtime if self._runtime is not None else self._resolve()
        bound = self._bound
        if bound[0] is not runtime:
            feature = runtime.feature(self._feature_name)
            batch = runtime.feature(self._batch_feature_name)
            self._bound = bound = (runtime, feature, batch)
            self._mojo = None
            feature.add_ready_hook(self._on_kernel_ready)
        return bound[1], bound[2]  # type: ignore[return-value]

    @property
    def feature(self) -> FeatureRuntime:
        return self._features()[0]

    def _on_kernel_ready(self, kernel: PatternSearchKernel) -> None:
        """After the self-check: the Mojo backend for this kernel, and the re-check of the
        shipped crossovers on this machine (once per kernel; applied only when asked)."""
        mojo = self._mojo_for(kernel)
        if not self._calibrate:
            return
        measured = _Calibration.get(kernel)
        if measured is None:
            measured = calibrate(mojo, self.numpy)
            _Calibration.measured[id(kernel)] = measured
            shipped = shipped_crossovers()
            if (measured.numpy_ranges, measured.cosine_numpy_ranges) != (
                shipped.numpy_ranges,
                shipped.cosine_numpy_ranges,
            ):
                log.info(
                    "search crossovers measured here %s differ from the shipped %s",
                    measured,
                    shipped,
                )
        if self._apply_measured:
            self._apply(measured)
        elif self._crossovers.source.startswith("shipped"):
            # Inline vs pool only changes how fast the kernel answers, never who answers:
            # this machine's measurement applies. The Mojo/NumPy choice stays as shipped.
            inline_note = BUSY_NOTE if BUSY_NOTE in measured.source else "inline measured here"
            self._apply(
                replace(
                    self._crossovers,
                    inline_below=measured.inline_below,
                    source=f"{self._crossovers.source}; {inline_note}",
                )
            )

    def _apply(self, crossovers: Crossovers) -> None:
        # The threshold first: a ``topk_hits`` plan made for the new crossovers must see it.
        if self._mojo is not None:
            self._mojo.inline_below = crossovers.inline_below
        self._crossovers = crossovers
        self._numpy_faster = crossovers.numpy_faster
        self._cosine_numpy_faster = crossovers.cosine_numpy_faster

    @property
    def crossovers(self) -> Crossovers:
        return self._crossovers

    def set_crossovers(self, crossovers: Crossovers) -> None:
        """Overrides the crossovers (benchmarks and tests that pin a dispatch)."""
        self._apply(crossovers)

    def _mojo_for(self, kernel: PatternSearchKernel) -> MojoSearchBackend:
        mojo = self._mojo
        if mojo is None or mojo.kernel is not kernel:
            runtime = self._bound[0] or self.runtime
            mojo = MojoSearchBackend(
                kernel, runtime.settings.threads, inline_below=self._crossovers.inline_below
            )
            self._mojo = mojo
        return mojo

    def query_buffer(self, dim: int) -> np.ndarray:
        """This thread's float32 (dim,) buffer for a normalised query: a query written into it
        reaches the kernel without an address lookup. Valid until this thread's next call."""
        scratch = self._query_scratch
        if scratch.buffer.shape[0] != dim:
            scratch.buffer = np.empty(dim, np.float32)
            scratch.address = scratch.buffer.ctypes.data
        return scratch.buffer

    def _same_for(self, dim: int) -> Any:
        same = self._same.get(dim)
        if same is None:
            same = self._same[dim] = _same_answer(dim)
        return same

    # Bound once: the runtime calls these with (kernel, fault, *args).

    def _mojo_topk_lists(
        self,
        kernel: PatternSearchKernel,
        fault: int,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        addr: int,
    ) -> TopLists | None:
        return self._mojo_for(kernel).topk_lists_with(fault, matrix, query, k, mask, addr)

    def _numpy_topk_lists(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None, addr: int
    ) -> TopLists | None:
        q = normalised_common(query, matrix.shape[1], self.query_buffer(matrix.shape[1]))
        if q is None:
            return None
        top = self.numpy.topk(matrix, q, k, mask)
        return top.rows.tolist(), top.scores.tolist()

    def _mojo_cosine_lists(
        self, kernel: PatternSearchKernel, fault: int, rows: np.ndarray, query: np.ndarray, k: int
    ) -> TopLists | int:
        return self._mojo_for(kernel).cosine_lists_with(fault, rows, query, k)

    def _numpy_cosine_lists(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopLists | int:
        q = normalised_common(query, rows.shape[1], self.query_buffer(rows.shape[1]))
        if q is None:
            return QUERY_NOT_ACCEPTED
        top = self.numpy.topk_cosine(rows, q, min(k, rows.shape[0]))
        if top is None:
            return ROW_NOT_FINITE
        return top.rows.tolist(), top.scores.tolist()

    def _mojo_topk(
        self,
        kernel: PatternSearchKernel,
        fault: int,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        addr: int,
        qaddr: int,
    ) -> TopK:
        return self._mojo_for(kernel).topk_with(fault, matrix, query, k, mask, addr, qaddr)

    def _numpy_topk(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        addr: int,
        qaddr: int,
    ) -> TopK:
        return self.numpy.topk(matrix, query, k, mask)

    def _mojo_cosine(
        self,
        kernel: PatternSearchKernel,
        fault: int,
        rows: np.ndarray,
        query: np.ndarray,
        k: int,
    ) -> TopK | None:
        return self._mojo_for(kernel).topk_cosine_with(fault, rows, query, k)

    def _mojo_batch(
        self,
        kernel: PatternSearchKernel,
        fault: int,
        matrix: np.ndarray,
        queries: np.ndarray,
        k: int,
        mask: np.ndarray | None,
    ) -> BatchTopK:
        return self._mojo_for(kernel).topk_batch_with(fault, matrix, queries, k, mask)

    def _mojo_int8(self, kernel: PatternSearchKernel, fault: int, *args: Any) -> TopK:
        return self._mojo_for(kernel).topk_int8_with(fault, *args)

    def _mojo_int8_lists(
        self,
        kernel: PatternSearchKernel,
        fault: int,
        codes: np.ndarray,
        vectors: np.ndarray,
        query: np.ndarray,
        k: int,
        candidates: int,
        mask: np.ndarray | None,
        quantizer: ScalarQuantizer,
        normalised: bool,
        pinned: bool,
    ) -> Int8Lists | None:
        mojo = self._mojo_for(kernel)
        return mojo.topk_int8_lists_with(
            fault,
            codes,
            vectors,
            query,
            k,
            candidates,
            mask,
            quantizer.kernel_parts[1],
            normalised,
            mojo.pinned_address(codes) if pinned else 0,
            mojo.pinned_address(vectors) if pinned else 0,
        )

    def _numpy_int8_lists(
        self,
        codes: np.ndarray,
        vectors: np.ndarray,
        query: np.ndarray,
        k: int,
        candidates: int,
        mask: np.ndarray | None,
        quantizer: ScalarQuantizer,
        normalised: bool,
        pinned: bool,
    ) -> Int8Lists | None:
        d = vectors.shape[1]
        q = query if normalised else normalised_common(query, d, self.query_buffer(d))
        if q is None:
            return None
        qi = quantize_query(q, quantizer.scale)
        top, used = certified_topk_int8(
            self.numpy,
            codes,
            vectors,
            qi,
            q,
            k,
            candidates,
            mask,
            rank_bound(q, quantizer, qi),
            score_tolerance(d),
        )
        # As the kernel: the candidates the proof took, or, when the float32 scan answered
        # (``used`` is then every eligible row), where that scan became the cheaper one.
        eligible = codes.shape[0] if mask is None else int(np.count_nonzero(mask))
        if used >= eligible:
            used = max(candidates, (eligible + 3) // 4)
        return top.rows.tolist(), top.scores.tolist(), used

    # ------------------------------------------------------------------ outcomes

    def topk_outcome(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None = None,
        *,
        pinned: bool = False,
    ) -> Outcome[TopK]:
        """``topk`` and who answered. ``pinned``: ``matrix`` is a view its owner never
        reallocates while the view object lives (an index's storage), so its address is
        looked up once."""
        feature = self._features()[0]
        mojo = self._mojo
        addr = mojo.pinned_address(matrix) if pinned and mojo is not None else 0
        scratch = self._query_scratch
        qaddr = scratch.address if query is scratch.buffer else 0
        return feature.call(
            "topk",
            self._mojo_topk,
            self._numpy_topk,
            (matrix, query, k, mask, addr, qaddr),
            self._same_for(query.shape[0]),
            python_faster=self._numpy_faster(matrix.size),
        )

    def topk_lists_outcome(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None = None,
        *,
        pinned: bool = False,
    ) -> Outcome[TopLists | None]:
        """An index search in one call: ``query`` is the caller's raw vector, an exact
        ``numpy.ndarray`` of dtype float32 (the caller checks type and dtype); it is
        normalised by whichever runtime answers, and the result is ``(rows, scores)`` lists.
        The value is None, with nothing scanned, when the query is not a (d,) vector whose
        sum of squares lies in (1e-30, 1e30): the caller then runs ``vectors.as_query``
        (which raises the right error or normalises in float64) and ``topk_outcome``.
        ``pinned`` as in ``topk_outcome``."""
        feature = self._features()[0]
        mojo = self._mojo
        addr = mojo.pinned_address(matrix) if pinned and mojo is not None else 0
        return feature.call(
            "topk",
            self._mojo_topk_lists,
            self._numpy_topk_lists,
            (matrix, query, k, mask, addr),
            self._same_for(matrix.shape[1]),
            python_faster=self._numpy_faster(matrix.size),
        )

    def kernel_answers(self) -> bool:
        """Whether a call now goes to the kernel by the fast lane (mode ``auto`` or ``on``, the
        kernel loaded, self-checked and healthy, no fault injection, no
        ``SYNAPSE_FORCE_PYTHON``). An index searches its int8 codes first only then: on NumPy
        its float32 scan is the faster exact answer."""
        return self._features()[0].lane is not None and not config_module.force_python()

    def topk_hits(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        builder: HitBuilder,
        ids: Sequence[Any],
        metas: Sequence[Any],
        mask: np.ndarray | None = None,
    ) -> list[Any] | None:
        """An index search answered as ``builder``'s objects (``HitBuilder``: id, score and
        metadata from ``ids`` and ``metas``), for a caller that wants only the answer
        (``PatternIndex.search``); None as ``topk_lists_outcome``. ``mask``: None (every row),
        or one uint8 per row (1 = eligible: an index's live rows), best passed as the same
        view object from call to call (its address is looked up once).

        While the feature's fast lane is open (``FeatureRuntime.lane``), the crossovers give
        this size to the kernel and ``ids`` and ``metas`` are lists, the kernel's
        ``topk_hits`` is called here and builds the objects itself (10 hits: 1.6 us against
        3.3 in Python); its success is queued with ``record_fast`` and a raise answered
        through ``answer_after_failure``, the same records as ``FeatureRuntime.call``, with
        three Python frames and an ``Outcome`` fewer. Every other call goes through
        ``topk_lists_outcome`` and ``HitBuilder.build``."""
        feature = self._features()[0]
        lane = feature.lane
        mojo = self._mojo
        if (
            lane is not None
            and mojo is not None
            and mojo.kernel is lane
            and type(ids) is list
            and type(metas) is list
        ):
            plan = self._hits_plan
            if (
                plan is None
                or plan[0] is not matrix
                or plan[1] is not mask
                or plan[2] is not mojo
                or plan[3] is not self._crossovers
                or plan[4] != mojo.inline_below
            ):
                plan = self._plan_hits(matrix, mask, mojo)
            addr, n, d, mask_addr, workers = plan[5]
            if plan[6] and not config_module.force_python():
                args = (
                    addr,
                    n,
                    d,
                    k if k <= n else n,
                    mask_addr,
                    workers,
                    0,
                    query,
                    _new_object,
                    builder.cls,
                    builder.names,
                    ids,
                    metas,
                )
                started = _clock()
                try:
                    found = lane.topk_hits(args)
                except Exception as exc:
                    return feature.answer_after_failure(
                        "topk",
                        exc,
                        self._numpy_topk_hits,
                        (matrix, query, k, builder, ids, metas, mask),
                    ).value
                feature.record_fast(_clock() - started)
                return found if type(found) is list else None
        lists = self.topk_lists_outcome(matrix, query, k, mask, pinned=True).value
        return None if lists is None else builder.build(lists[0], lists[1], ids, metas)

    def _plan_hits(
        self, matrix: np.ndarray, mask: np.ndarray | None, mojo: MojoSearchBackend
    ) -> tuple[Any, ...]:
        n, d = matrix.shape
        work = n * d
        crossovers = self._crossovers
        plan = (
            matrix,
            mask,
            mojo,
            crossovers,
            mojo.inline_below,
            (
                mojo.pinned_address(matrix),
                n,
                d,
                0 if mask is None else mojo.mask_address(mask),
                mojo.workers(work),
            ),
            not crossovers.numpy_faster(work),
        )
        self._hits_plan = plan
        return plan

    def _numpy_topk_hits(
        self,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        builder: HitBuilder,
        ids: Sequence[Any],
        metas: Sequence[Any],
        mask: np.ndarray | None,
    ) -> list[Any] | None:
        lists = self._numpy_topk_lists(matrix, query, k, mask, 0)
        return None if lists is None else builder.build(lists[0], lists[1], ids, metas)

    def cosine_lists_outcome(
        self, rows: np.ndarray, query: np.ndarray, k: int
    ) -> Outcome[TopLists | int]:
        """``topk_cosine_outcome`` in one call for a caller's raw rows and raw query, both
        exact float32 ndarrays (type and dtype checked by the caller): ``(rows, scores)``
        lists, or a refusal code with nothing decided (``mojo_backend.ROW_NOT_FINITE``,
        ``QUERY_NOT_ACCEPTED``, ``ROWS_NOT_ACCEPTED``), after which the caller takes the
        checked path (``vectors.as_query``, ``topk_cosine_outcome``)."""
        feature = self._features()[0]
        return feature.call(
            "topk_cosine",
            self._mojo_cosine_lists,
            self._numpy_cosine_lists,
            (rows, query, k),
            self._same_for(rows.shape[1]),
            python_faster=self._cosine_numpy_faster(rows.size),
        )

    def topk_cosine_outcome(
        self, rows: np.ndarray, query: np.ndarray, k: int
    ) -> Outcome[TopK | None]:
        """``topk_cosine`` (raw rows, value None when a row's norm is not finite)."""
        feature = self._features()[0]
        return feature.call(
            "topk_cosine",
            self._mojo_cosine,
            self.numpy.topk_cosine,
            (rows, query, k),
            self._same_for(query.shape[0]),
            python_faster=self._cosine_numpy_faster(rows.size),
        )

    def topk_batch_outcome(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> Outcome[BatchTopK]:
        batch = self._features()[1]
        dim = matrix.shape[1]
        return batch.call(
            "topk_batch",
            self._mojo_batch,
            self.numpy.topk_batch,
            (matrix, queries, k, mask),
            lambda a, b: batch_results_agree(a, b, dim),
        )

    def topk_int8_outcome(
        self,
        codes: np.ndarray,
        vectors: np.ndarray,
        query_i8: np.ndarray,
        query: np.ndarray,
        k: int,
        candidates: int,
        mask: np.ndarray | None = None,
    ) -> Outcome[TopK]:
        """``topk_int8`` (one scan, ``candidates`` re-scored: not certified) and who answered.
        An index's certified search is ``topk_int8_lists_outcome``."""
        feature = self._features()[0]
        return feature.call(
            "topk_int8",
            self._mojo_int8,
            self.numpy.topk_int8,
            (codes, vectors, query_i8, query, k, candidates, mask),
            self._same_for(query.shape[0]),
        )

    def topk_int8_lists_outcome(
        self,
        codes: np.ndarray,
        vectors: np.ndarray,
        query: np.ndarray,
        k: int,
        candidates: int,
        mask: np.ndarray | None,
        quantizer: ScalarQuantizer,
        *,
        normalised: bool = False,
        pinned: bool = False,
    ) -> Outcome[Int8Lists | None]:
        """The certified int8 search of an index in one call: the exact top-k as ``(rows,
        scores, next)`` lists, ``candidates`` being where the candidate set starts
        (``quantization.certified_topk_int8``) and ``next`` where the next query's should.

        ``query`` is an exact float32 ndarray: the caller's raw query, normalised by
        whichever runtime answers, or (``normalised``) what ``vectors.as_query`` returned.
        The value is None, with nothing scanned, for a raw query ``topk_lists_outcome`` would
        refuse (the caller then runs ``as_query`` and calls again with ``normalised=True``),
        or when the index has no rows. ``pinned``: both arrays are index views whose addresses
        are looked up once (``topk_outcome``)."""
        feature = self._features()[0]
        return feature.call(
            "topk_int8",
            self._mojo_int8_lists,
            self._numpy_int8_lists,
            (codes, vectors, query, k, candidates, mask, quantizer, normalised, pinned),
            self._same_for(vectors.shape[1]),
        )

    # ------------------------------------------------------------------ SearchBackend

    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK:
        return self.topk_outcome(matrix, query, k, mask).value

    def topk_batch(
        self, matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> BatchTopK:
        return self.topk_batch_outcome(matrix, queries, k, mask).value

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
        return self.topk_int8_outcome(codes, vectors, query_i8, query, k, candidates, mask).value

    def topk_cosine(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopK | None:
        return self.topk_cosine_outcome(rows, query, k).value
