"""The Python-visible surface of the two Mojo kernel modules, as typed protocols.

The kernels are extension modules built at run time and imported from a file
(:func:`.kernels.load_kernel`), never by a static ``import``, so a ``.pyi`` beside them would
reach no type checker. These protocols are their stubs instead: every function each module
exports (``PyInit_<name>`` in ``mojo/<name>.mojo``), with the argument and return types the
Python side passes and reads. Code that holds a kernel module annotates it with one of them;
``tests/test_kernel_types.py`` checks that a built kernel exports exactly these names.

Addresses are integers (``ndarray.ctypes.data``), except in ``topk_lists``, ``topk_hits`` and
``cosine_lists``, which take the float32 arrays themselves (``Any`` below); ``fault`` is the
runtime's fault code (0 none, 1 raise, 2 wrong results: ``mojo/kernel_support/abi.mojo``).
The search functions take one tuple of arguments (one Python object to unpack in the kernel);
the router functions take positional arguments.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias


class KernelModule(Protocol):
    """What every kernel module exports: its ABI version and compile-time facts."""

    def kernel_info(self) -> dict[str, Any]:
        """``{"abi_version": int, ...}``: checked against ``kernels.KERNEL_ABI`` on load."""
        ...


# --------------------------------------------------------------------------------------------
# pattern_search (mojo/pattern_search.mojo)
# --------------------------------------------------------------------------------------------

#: (matrix, n, d, query, k, mask (0: none), threads, out_rows, out_scores, fault)
TopkArgs: TypeAlias = tuple[int, int, int, int, int, int, int, int, int, int]
#: (matrix, n, d, query, k, threads, out_rows, out_scores, fault)
TopkCosineArgs: TypeAlias = tuple[int, int, int, int, int, int, int, int, int]
#: (matrix, n, d, queries, b, k, mask (0: none), threads, out_rows, out_scores, fault)
TopkBatchArgs: TypeAlias = tuple[int, int, int, int, int, int, int, int, int, int, int]
#: (codes, vectors, n, d, query, query_i8, k, candidates, mask (0: none), threads, out_rows,
#: out_scores, fault)
TopkInt8Args: TypeAlias = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int]
#: (matrix, n, d, k, mask (0: none), threads, fault, query): ``query`` is the caller's raw
#: float32 ndarray itself (the kernel reads its data pointer and normalises it).
TopkListsArgs: TypeAlias = tuple[int, int, int, int, int, int, int, Any]
#: ``TopkListsArgs`` + (new, cls, names, ids, metas): each result is ``new(cls)`` with the
#: attributes ``names`` (three str) set to ``ids[row]``, the score and ``dict(metas[row])``
#: (``{}`` for a falsy entry); ``ids`` and ``metas`` are lists (``search.base.HitBuilder``).
TopkHitsArgs: TypeAlias = tuple[
    int, int, int, int, int, int, int, Any, Any, type, tuple[str, str, str], list[Any], list[Any]
]
#: (n, d, k, threads, fault, rows, query): both arrays as float32 ndarray objects.
CosineListsArgs: TypeAlias = tuple[int, int, int, int, int, Any, Any]
#: (codes, vectors, n, d, k, candidates, mask (0: none), threads_u8, threads_f32, fault, parts,
#: normalised (0/1), query): ``parts`` the address of ``ScalarQuantizer.kernel_parts``
#: (float64, (5, d)); ``query`` the float32 ndarray itself.
TopkInt8ListsArgs: TypeAlias = tuple[
    int, int, int, int, int, int, int, int, int, int, int, int, Any
]
#: ``(rows, scores, where the next query's candidates start)``, or -2 (``query_not_accepted``).
Int8ListsOrCode: TypeAlias = tuple[list[int], list[float], int] | int
#: ``(rows, scores)`` Python lists, best first, or a refusal code (``kernel_info()``:
#: ``row_not_finite`` -1, ``query_not_accepted`` -2, ``rows_not_accepted`` -3).
ListsOrCode: TypeAlias = tuple[list[int], list[float]] | int


class PatternSearchKernel(KernelModule, Protocol):
    """``pattern_search``: exact top-k over float32 rows, a uint8 scan with exact rerank, the
    bandwidth yardstick and the content fingerprint. Results are written to the caller's
    ``out_rows`` (int64) and ``out_scores`` (float32), best first."""

    def topk(self, args: TopkArgs, /) -> int:
        """Best ``k`` rows for one query; returns how many were written."""
        ...

    def topk_cosine(self, args: TopkCosineArgs, /) -> int:
        """Cosine top-k over raw rows; -1 when a row's squared norm is not finite."""
        ...

    def topk_lists(self, args: TopkListsArgs, /) -> ListsOrCode:
        """One call for an index search: the raw query normalised in the kernel, the result
        as lists; -2 (nothing scanned) when the query is not a contiguous aligned (d,) array
        whose sum of squares lies in (1e-30, 1e30)."""
        ...

    def topk_hits(self, args: TopkHitsArgs, /) -> list[Any] | int:
        """``topk_lists`` answered as the caller's result objects, built in the kernel
        (``search.base.HitBuilder.build`` is the same in Python); -2 as ``topk_lists``."""
        ...

    def cosine_lists(self, args: CosineListsArgs, /) -> ListsOrCode:
        """``topk_cosine`` with both arrays passed as objects and the result as lists; -1 a
        row's squared norm is not finite, -2 as ``topk_lists``, -3 the rows array is not a
        C-contiguous aligned (n, d) array."""
        ...

    def array_address(self, args: tuple[int, int, Any], /) -> int:
        """``(n, d, array)``: the data address the two calls above read from ``array`` (n = 0:
        a (d,) vector), 0 where they would refuse it (the self-check compares it with
        ``ndarray.ctypes.data``)."""
        ...

    def topk_batch(self, args: TopkBatchArgs, /) -> int:
        """Best ``k`` rows for each of ``b`` queries (outputs (b, k)); the count per query."""
        ...

    def topk_int8(self, args: TopkInt8Args, /) -> int:
        """uint8 scan with an int8 query, exact float32 rerank of the candidates."""
        ...

    def topk_int8_lists(self, args: TopkInt8ListsArgs, /) -> Int8ListsOrCode:
        """The certified int8 search in one call (``quantization.certified_topk_int8``):
        query normalised (unless flagged normalised), quantised and bounded in the kernel,
        codes scanned, candidates re-scored exactly and grown until the top-k is proven;
        -2 (nothing scanned) for a query ``topk_lists`` would refuse."""
        ...

    def stream_read(self, args: tuple[int, int, int], /) -> float:
        """``(addr, n_floats, threads)``: the sum of the floats, read at memory bandwidth."""
        ...

    def content_fingerprint(self, args: tuple[int, int, int], /) -> int:
        """``(addr, n_words, threads)``: the 64-bit fingerprint of ``n_words`` uint64 words."""
        ...

    def scan_order(self, args: tuple[int], /) -> int:
        """``(order,)``: the process-wide direction of single-query scans, 0 alternating from
        call to call (the default: each scan starts on what the previous one left in cache),
        1 always forward, 2 always reversed (tests and benchmarks); the previous order."""
        ...


# --------------------------------------------------------------------------------------------
# message_router (mojo/message_router.mojo)
# --------------------------------------------------------------------------------------------


class MessageRouterKernel(KernelModule, Protocol):
    """``message_router``: slot numbers ordered inside a caller-owned int64 state block
    (``state`` is its address). ``now_ns`` < 0 skips the latency stamp."""

    def push(self, state: int, priority: int, slot: int, now_ns: int, fault: int, /) -> int:
        """Pushes one slot; returns the new size."""
        ...

    def push_batch(
        self, state: int, priorities: int, slots: int, n: int, now_ns: int, fault: int, /
    ) -> int:
        """Pushes ``n`` slots from two int64 arrays, all or nothing; returns the new size."""
        ...

    def push_fast(self, state: int, key: int, /) -> int:
        """Pushes ``key = slot * 16 + priority`` stamped with the kernel's clock; returns it."""
        ...

    def pop(self, state: int, now_ns: int, fault: int, /) -> int:
        """The next slot, -1 when empty."""
        ...

    def pop_fast(self, state: int, /) -> int:
        """``pop`` with the kernel's own clock and no fault code."""
        ...

    def pop_batch(self, state: int, out_slots: int, max_n: int, now_ns: int, fault: int, /) -> int:
        """Pops up to ``max_n`` slots into an int64 array; returns how many."""
        ...

    def export(self, state: int, levels: int, slots: int, /) -> int:
        """Every queued (priority, slot) in pop order into two int64 arrays; returns how many."""
        ...

    def clear(self, state: int, /) -> None:
        """Empties the queue, keeping the histogram."""
        ...

    def noop(self) -> None:
        """Does nothing: the cost of one call through the binding."""
        ...


#: kernel module name -> its protocol (the exports test walks this).
KERNEL_TYPES: dict[str, type] = {
    "pattern_search": PatternSearchKernel,
    "message_router": MessageRouterKernel,
}
