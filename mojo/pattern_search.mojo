"""Exact top-k cosine search over an L2-normalised float32 pattern matrix.

A Python extension module (`PythonModuleBuilder`). The Python layer
(`synapse_mojo.search.mojo_backend`) validates every input, owns every buffer and passes raw
addresses; this module trusts them and never allocates what it returns.

```python
import pattern_search
n = pattern_search.topk((matrix_addr, n, d, query_addr, k, mask_addr, threads,
                         out_rows_addr, out_scores_addr, fault))
```

Strategy: rows are split into one contiguous range per worker; each worker streams its rows,
computes dot products four rows at a time (four independent accumulator chains over the SIMD
width of the target) and keeps a bounded heap, so the score vector is never materialised.
The per-worker heaps are merged at the end. Every row is reduced in the same operation order,
whichever path handles it, so identical rows get bit-identical scores and ties fall to the
lower row index on every backend.
"""

from std.os import abort
from std.python import Python, PythonObject
from std.python._cpython import GILReleased
from std.python.bindings import PythonModuleBuilder
from std.sys import simd_width_of

from kernel_support.parallel import parallel_for
from kernel_support.topk import TopK

# Bump when a Python-visible signature or argument layout changes; the loader checks it.
comptime ABI_VERSION = 1
comptime W = simd_width_of[DType.float32]()
comptime F32Ptr = Pointer[Float32, MutAnyOrigin]
comptime I64Ptr = Pointer[Int64, MutAnyOrigin]
comptime U8Ptr = Pointer[UInt8, MutAnyOrigin]

# Fault injection (documented in the README): 1 raises from inside the kernel, 2 returns the
# least similar rows instead of the most similar ones.
comptime FAULT_NONE = 0
comptime FAULT_RAISE = 1
comptime FAULT_WRONG = 2


# ===----------------------------------------------------------------------=== #
# Dot products
# ===----------------------------------------------------------------------=== #


@always_inline
def _dot(row: F32Ptr, q: F32Ptr, d: Int) -> Float32:
    """Dot product with the canonical reduction order shared by every scan path."""
    var acc = SIMD[DType.float32, W](0)
    var i = 0
    while i + W <= d:
        acc += row.unsafe_load[width=W](i) * q.unsafe_load[width=W](i)
        i += W
    var s = acc.reduce_add()
    while i < d:
        s += row.unsafe_load[width=1](i) * q.unsafe_load[width=1](i)
        i += 1
    return s


@always_inline
def _dot4(
    r0: F32Ptr, r1: F32Ptr, r2: F32Ptr, r3: F32Ptr, q: F32Ptr, d: Int
) -> SIMD[DType.float32, 4]:
    """Four rows at once: the same per-row operation order as `_dot`, four chains in flight."""
    var a0 = SIMD[DType.float32, W](0)
    var a1 = SIMD[DType.float32, W](0)
    var a2 = SIMD[DType.float32, W](0)
    var a3 = SIMD[DType.float32, W](0)
    var i = 0
    while i + W <= d:
        var qv = q.unsafe_load[width=W](i)
        a0 += r0.unsafe_load[width=W](i) * qv
        a1 += r1.unsafe_load[width=W](i) * qv
        a2 += r2.unsafe_load[width=W](i) * qv
        a3 += r3.unsafe_load[width=W](i) * qv
        i += W
    var s0 = a0.reduce_add()
    var s1 = a1.reduce_add()
    var s2 = a2.reduce_add()
    var s3 = a3.reduce_add()
    while i < d:
        var qs = q.unsafe_load[width=1](i)
        s0 += r0.unsafe_load[width=1](i) * qs
        s1 += r1.unsafe_load[width=1](i) * qs
        s2 += r2.unsafe_load[width=1](i) * qs
        s3 += r3.unsafe_load[width=1](i) * qs
        i += 1
    return SIMD[DType.float32, 4](s0, s1, s2, s3)


# ===----------------------------------------------------------------------=== #
# Scan of one row range
# ===----------------------------------------------------------------------=== #


def _scan_range(
    matrix: F32Ptr,
    d: Int,
    q: F32Ptr,
    mask: U8Ptr,
    has_mask: Bool,
    start: Int,
    end: Int,
    mut top: TopK,
):
    var r = start
    if not has_mask:
        while r + 4 <= end:
            var s = _dot4(
                matrix.unsafe_offset(r * d),
                matrix.unsafe_offset((r + 1) * d),
                matrix.unsafe_offset((r + 2) * d),
                matrix.unsafe_offset((r + 3) * d),
                q,
                d,
            )
            comptime for j in range(4):
                if top.accepts_in_order(s[j]):
                    top.push(s[j], r + j)
            r += 4
        while r < end:
            var s = _dot(matrix.unsafe_offset(r * d), q, d)
            if top.accepts_in_order(s):
                top.push(s, r)
            r += 1
        return
    # Filtered scan: masked-out rows are skipped without being read.
    while r < end:
        if mask.unsafe_load[width=1](r) != 0:
            var s = _dot(matrix.unsafe_offset(r * d), q, d)
            if top.accepts_in_order(s):
                top.push(s, r)
        r += 1


def _topk_into(
    matrix: F32Ptr,
    n: Int,
    d: Int,
    q: F32Ptr,
    k: Int,
    mask: U8Ptr,
    has_mask: Bool,
    threads: Int,
    out_rows: I64Ptr,
    out_scores: F32Ptr,
) -> Int:
    var workers = max(1, min(threads, n))
    var chunk = (n + workers - 1) // workers
    var tops = List[TopK]()
    for _ in range(workers):
        tops.append(TopK(k))
    var tops_ptr = tops.unsafe_ptr()

    @__parameter
    def work(w: Int):
        var start = w * chunk
        var end = min(n, start + chunk)
        if start < end:
            _scan_range(matrix, d, q, mask, has_mask, start, end, tops_ptr[unsafe_offset=w])

    parallel_for[work](workers)

    if workers == 1:
        return tops[0].write_sorted(out_scores, out_rows)
    var merged = TopK(k)
    for w in range(workers):
        merged.merge_from(tops[w])
    return merged.write_sorted(out_scores, out_rows)


# ===----------------------------------------------------------------------=== #
# Python-visible functions
# ===----------------------------------------------------------------------=== #


def _addr_f32(obj: PythonObject) raises -> F32Ptr:
    return F32Ptr(unsafe_from_address=Int(py=obj))


def _check_fault(fault: Int) raises:
    if fault == FAULT_RAISE:
        raise Error("injected fault: pattern_search kernel raised on purpose")


def topk(args: PythonObject) raises -> PythonObject:
    """`topk((matrix, n, d, query, k, mask, threads, out_rows, out_scores, fault)) -> int`.

    Addresses are integers; `mask` is 0 for no mask, else a uint8 array of n entries where
    non-zero means eligible. Writes up to k results, best first; returns how many.
    """
    var matrix = _addr_f32(args[0])
    var n = Int(py=args[1])
    var d = Int(py=args[2])
    var q = _addr_f32(args[3])
    var k = Int(py=args[4])
    var mask_addr = Int(py=args[5])
    var threads = Int(py=args[6])
    var out_rows = I64Ptr(unsafe_from_address=Int(py=args[7]))
    var out_scores = _addr_f32(args[8])
    var fault = Int(py=args[9])
    _check_fault(fault)
    if n <= 0 or k <= 0:
        return PythonObject(0)
    var has_mask = mask_addr != 0
    var mask = U8Ptr(unsafe_from_address=mask_addr if has_mask else Int(py=args[0]))

    # FAULT_WRONG: search with the negated query, which ranks the least similar rows first.
    var neg = List[Float32](length=d, fill=0)
    var query = q
    if fault == FAULT_WRONG:
        for i in range(d):
            neg[i] = -q.unsafe_load[width=1](i)
        query = F32Ptr(unsafe_from_address=Int(neg.unsafe_ptr()))

    var count: Int
    with GILReleased(Python()):
        count = _topk_into(
            matrix, n, d, query, k, mask, has_mask, threads, out_rows, out_scores
        )
    _ = neg^
    return PythonObject(count)


def topk_batch(args: PythonObject) raises -> PythonObject:
    """`topk_batch((matrix, n, d, queries, b, k, mask, threads, out_rows, out_scores, fault))`.

    Row-major outputs of shape (b, k); returns the number of results per query (the same for
    every query: min(k, eligible rows)).
    """
    var matrix = _addr_f32(args[0])
    var n = Int(py=args[1])
    var d = Int(py=args[2])
    var queries = _addr_f32(args[3])
    var b = Int(py=args[4])
    var k = Int(py=args[5])
    var mask_addr = Int(py=args[6])
    var threads = Int(py=args[7])
    var out_rows = I64Ptr(unsafe_from_address=Int(py=args[8]))
    var out_scores = _addr_f32(args[9])
    var fault = Int(py=args[10])
    _check_fault(fault)
    if n <= 0 or k <= 0 or b <= 0:
        return PythonObject(0)
    var has_mask = mask_addr != 0
    var mask = U8Ptr(unsafe_from_address=mask_addr if has_mask else Int(py=args[0]))

    var count = 0
    with GILReleased(Python()):
        for qi in range(b):
            var qptr = queries.unsafe_offset(qi * d)
            var neg = List[Float32](length=0, fill=0)
            if fault == FAULT_WRONG:
                for i in range(d):
                    neg.append(-qptr.unsafe_load[width=1](i))
                qptr = F32Ptr(unsafe_from_address=Int(neg.unsafe_ptr()))
            count = _topk_into(
                matrix,
                n,
                d,
                qptr,
                k,
                mask,
                has_mask,
                threads,
                out_rows.unsafe_offset(qi * k),
                out_scores.unsafe_offset(qi * k),
            )
            _ = neg^
    return PythonObject(count)


def kernel_info() raises -> PythonObject:
    """ABI version and compile-time facts, for `synapse-mojo doctor`."""
    var info = Python.dict()
    info["abi_version"] = ABI_VERSION
    info["simd_width_f32"] = W
    return info


@export
def PyInit_pattern_search() abi("C") -> PythonObject:
    try:
        var m = PythonModuleBuilder("pattern_search")
        m.def_function[topk]("topk", docstring="Exact top-k over one query.")
        m.def_function[topk_batch]("topk_batch", docstring="Exact top-k over a batch of queries.")
        m.def_function[kernel_info]("kernel_info", docstring="ABI version and SIMD width.")
        return m.finalize()
    except e:
        abort(String("failed to create module pattern_search: ", e))
