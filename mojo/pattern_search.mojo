"""Exact top-k cosine search over an L2-normalised float32 pattern matrix.

A Python extension module (`PythonModuleBuilder`). The Python layer
(`synapse_mojo.search.mojo_backend`) validates every input, owns every buffer and passes raw
addresses; this module trusts them. The one-call entries (`topk_lists`, `topk_hits`,
`cosine_lists`) take float32 ndarray objects instead of addresses
(`kernel_support/python_arrays.mojo` reads and checks their fields), normalise the raw query
themselves and return Python lists (`topk_hits`: the caller's result objects).

```python
import pattern_search
n = pattern_search.topk((matrix_addr, n, d, query_addr, k, mask_addr, threads,
                         out_rows_addr, out_scores_addr, fault))
rows, scores = pattern_search.topk_lists((matrix_addr, n, d, k, mask_addr, threads, fault,
                                          query_array))   # or -2: left to the Python side
hits = pattern_search.topk_hits((matrix_addr, n, d, k, mask_addr, threads, fault,
                                 query_array, object.__new__, SearchHit,
                                 ("id", "score", "metadata"), ids, metas))   # or -2
```

The compute lives in `kernel_support/scan.mojo` (strategies described there),
`kernel_support/stream.mojo` and `kernel_support/fingerprint.mojo`; this module unpacks
arguments, releases the GIL around the work and implements fault injection
(`kernel_support/abi.mojo`).
"""

from std.os import abort
from std.python import Python, PythonObject
from std.python._cpython import GILReleased, PyObjectPtr
from std.python.bindings import PythonModuleBuilder

from kernel_support.abi import FAULT_WRONG, F32Ptr, I8Ptr, I64Ptr, U8Ptr, U64Ptr, check_fault
from kernel_support.fingerprint import fingerprint
from kernel_support.python_arrays import (
    f32_matrix_address,
    f32_vector_address,
    normalised_query,
    result_lists,
    result_objects,
    scaled_into,
)
from kernel_support.int8_query import F64Ptr
from kernel_support.scan import (
    W,
    topk_f32,
    topk_f32_batch,
    topk_f32_cosine,
    topk_u8_certified,
    topk_u8_rerank,
)
from kernel_support.parallel import set_scan_order
from kernel_support.stream import stream_sum

# Bump when a Python-visible signature or argument layout changes; the loader checks it.
comptime ABI_VERSION = 8

# What `topk_lists` / `cosine_lists` return instead of the result lists (ints, not tuples).
comptime ROW_NOT_FINITE = -1  # a raw row's squared norm is not finite in float32
comptime QUERY_NOT_ACCEPTED = -2  # the query array or its sum of squares is outside the fast path
comptime ROWS_NOT_ACCEPTED = -3  # the rows array is not a contiguous aligned (n, d) array

# Fault injection (`kernel_support.abi`): FAULT_RAISE raises from inside the kernel,
# FAULT_WRONG returns the least similar rows instead of the most similar ones (the query is
# negated).
comptime KERNEL = "pattern_search"


def _ints[count: Int](args: PythonObject) raises -> Array[Int, count]:
    """The first `count` items of the argument tuple as integers, through one handle on the
    CPython API (`Int(py=args[i])` looks the API up again for every item: about 0.15 us each,
    1.5 us of a 2 us call at N = 10)."""
    ref cpy = Python().cpython()
    var out = Array[Int, count](fill=0)
    comptime for i in range(count):
        # PyTuple_GetItem returns NULL with an error set on a short tuple or a non-tuple, and
        # PyLong_AsSsize_t(NULL) returns -1 with an error set: both are caught below.
        out[i] = Int(cpy.PyLong_AsSsize_t(cpy.PyTuple_GetItem(args._obj_ptr, i)))
    if cpy.PyErr_Occurred():
        raise Error("pattern_search: expected a tuple of ", count, " integers")
    return out^


@always_inline
def _mask_or(addr: Int, fallback: Int) -> U8Ptr:
    """A mask pointer; 0 means "no mask" and a harmless non-null address is used instead."""
    return U8Ptr(unsafe_from_address=addr if addr != 0 else fallback)


def _negated(q: F32Ptr, count: Int) -> List[Float32]:
    var out = List[Float32](length=count, fill=0)
    for i in range(count):
        out[i] = -q.unsafe_load[width=1](i)
    return out^


def topk(args: PythonObject) raises -> PythonObject:
    """`topk((matrix, n, d, query, k, mask, threads, out_rows, out_scores, fault)) -> int`.

    Addresses are integers; `mask` is 0 for no mask, else a uint8 array of n entries where
    non-zero means eligible. Writes up to k results, best first; returns how many.
    """
    var a = _ints[10](args)
    var matrix = F32Ptr(unsafe_from_address=a[0])
    var n = a[1]
    var d = a[2]
    var q = F32Ptr(unsafe_from_address=a[3])
    var k = a[4]
    var has_mask = a[5] != 0
    var mask = _mask_or(a[5], a[0])
    var threads = a[6]
    var out_rows = I64Ptr(unsafe_from_address=a[7])
    var out_scores = F32Ptr(unsafe_from_address=a[8])
    var fault = a[9]
    check_fault(fault, KERNEL)
    var neg = _negated(q, d if fault == FAULT_WRONG else 0)
    if fault == FAULT_WRONG:
        q = F32Ptr(unsafe_from_address=Int(neg.unsafe_ptr()))
    var count: Int
    with GILReleased(Python()):
        count = topk_f32(matrix, n, d, q, k, mask, has_mask, threads, out_rows, out_scores)
    _ = neg^
    return PythonObject(count)


def topk_cosine(args: PythonObject) raises -> PythonObject:
    """`topk_cosine((matrix, n, d, query, k, threads, out_rows, out_scores, fault)) -> int`.

    Cosine top-k over raw rows (not normalised; zero rows score 0) for a normalised query.
    Returns the count written, or -1 when a row's squared norm is not finite.
    """
    var a = _ints[9](args)
    var matrix = F32Ptr(unsafe_from_address=a[0])
    var n = a[1]
    var d = a[2]
    var q = F32Ptr(unsafe_from_address=a[3])
    var k = a[4]
    var threads = a[5]
    var out_rows = I64Ptr(unsafe_from_address=a[6])
    var out_scores = F32Ptr(unsafe_from_address=a[7])
    var fault = a[8]
    check_fault(fault, KERNEL)
    var neg = _negated(q, d if fault == FAULT_WRONG else 0)
    if fault == FAULT_WRONG:
        q = F32Ptr(unsafe_from_address=Int(neg.unsafe_ptr()))
    var count: Int
    with GILReleased(Python()):
        count = topk_f32_cosine(matrix, n, d, q, k, threads, out_rows, out_scores)
    _ = neg^
    return PythonObject(count)


def _object_arg(args: PythonObject, i: Int) raises -> PyObjectPtr:
    """Item `i` of the argument tuple, borrowed (the tuple keeps it alive for the call)."""
    ref cpy = Python().cpython()
    var item = cpy.PyTuple_GetItem(args._obj_ptr, i)
    if not item:
        raise Error("pattern_search: argument ", i, " is missing")
    return item


def _query_arg(
    args: PythonObject, i: Int, d: Int, fault: Int, normalised: Bool, mut q: List[Float32]
) raises -> Bool:
    """Item `i` of the argument tuple, the caller's float32 (d,) query array, into `q`:
    normalised (`normalised_query`), or copied as it is when the caller says it already is;
    negated for the wrong-answer fault. False, writing nothing, when the one-call paths leave
    the query to the Python side (`QUERY_NOT_ACCEPTED`)."""
    var addr = f32_vector_address(_object_arg(args, i), d)
    if addr == 0:
        return False
    var raw = F32Ptr(unsafe_from_address=addr)
    if not normalised:
        return normalised_query(raw, d, fault == FAULT_WRONG, q)
    scaled_into(raw, d, Float32(-1) if fault == FAULT_WRONG else Float32(1), q)
    return True


def _index_search(
    args: PythonObject, mut rows: List[Int64], mut scores: List[Float32]
) raises -> Int:
    """The search of `topk_lists` and `topk_hits` (their first eight arguments): the rows and
    scores found, best first, into `rows` and `scores`; returns their count, or
    `QUERY_NOT_ACCEPTED` with nothing scanned."""
    var a = _ints[7](args)
    var matrix = F32Ptr(unsafe_from_address=a[0])
    var n = a[1]
    var d = a[2]
    var k = a[3]
    var has_mask = a[4] != 0
    var mask = _mask_or(a[4], a[0])
    var threads = a[5]
    var fault = a[6]
    check_fault(fault, KERNEL)
    var q = List[Float32](length=d, fill=0)
    if not _query_arg(args, 7, d, fault, False, q):
        return QUERY_NOT_ACCEPTED
    var width = max(0, min(k, n))
    rows = List[Int64](length=width, fill=0)
    scores = List[Float32](length=width, fill=0)
    var count: Int
    with GILReleased(Python()):
        count = topk_f32(
            matrix,
            n,
            d,
            F32Ptr(unsafe_from_address=Int(q.unsafe_ptr())),
            width,
            mask,
            has_mask,
            threads,
            I64Ptr(unsafe_from_address=Int(rows.unsafe_ptr())),
            F32Ptr(unsafe_from_address=Int(scores.unsafe_ptr())),
        )
    _ = q^
    return count


def topk_lists(args: PythonObject) raises -> PythonObject:
    """`topk_lists((matrix, n, d, k, mask, threads, fault, query_array))` ->
    `(rows, scores)` lists, best first, or `QUERY_NOT_ACCEPTED`.

    The one-call search of an index: `matrix` (an address) holds L2-normalised rows;
    `query_array` is the caller's raw float32 ndarray of shape (d,) (exact type and dtype
    checked by the caller), normalised here in the same call. A query that is not a
    contiguous aligned (d,) array, or whose sum of squares is outside (1e-30, 1e30) (zero,
    NaN, inf, extreme magnitudes), is left to the Python side: nothing is scanned.
    """
    var rows = List[Int64]()
    var scores = List[Float32]()
    var count = _index_search(args, rows, scores)
    if count < 0:
        return PythonObject(count)
    var result = result_lists(
        I64Ptr(unsafe_from_address=Int(rows.unsafe_ptr())),
        F32Ptr(unsafe_from_address=Int(scores.unsafe_ptr())),
        count,
    )
    _ = rows^  # alive until the lists are built from their addresses
    _ = scores^
    return result^


def topk_hits(args: PythonObject) raises -> PythonObject:
    """`topk_hits((matrix, n, d, k, mask, threads, fault, query_array, new, cls, names, ids,
    metas))` -> a list of result objects, best first, or `QUERY_NOT_ACCEPTED`.

    The search of `topk_lists`, answered as the index's own result objects
    (`result_objects`: `new(cls)` with the attributes `names`, from the lists `ids` and
    `metas`), which Python would spend about twice as long building from the lists.
    """
    var rows = List[Int64]()
    var scores = List[Float32]()
    var count = _index_search(args, rows, scores)
    if count < 0:
        return PythonObject(count)
    var result = result_objects(
        I64Ptr(unsafe_from_address=Int(rows.unsafe_ptr())),
        F32Ptr(unsafe_from_address=Int(scores.unsafe_ptr())),
        count,
        _object_arg(args, 8),
        _object_arg(args, 9),
        _object_arg(args, 10),
        _object_arg(args, 11),
        _object_arg(args, 12),
    )
    _ = rows^
    _ = scores^
    return result^


def cosine_lists(args: PythonObject) raises -> PythonObject:
    """`cosine_lists((n, d, k, threads, fault, rows_array, query_array))` -> `(rows, scores)`
    lists, best first, or `ROW_NOT_FINITE` / `QUERY_NOT_ACCEPTED` / `ROWS_NOT_ACCEPTED`.

    Cosine top-k over the caller's raw rows (`topk_cosine`) with both arrays passed as
    objects (float32 ndarrays, exact type and dtype checked by the caller) and the raw query
    normalised here, as `topk_lists` does.
    """
    var a = _ints[5](args)
    var n = a[0]
    var d = a[1]
    var k = a[2]
    var threads = a[3]
    var fault = a[4]
    check_fault(fault, KERNEL)
    var rows_addr = f32_matrix_address(_object_arg(args, 5), n, d)
    if rows_addr == 0:
        return PythonObject(ROWS_NOT_ACCEPTED)
    var q = List[Float32](length=d, fill=0)
    if not _query_arg(args, 6, d, fault, False, q):
        return PythonObject(QUERY_NOT_ACCEPTED)
    var width = max(0, min(k, n))
    var out_rows = List[Int64](length=width, fill=0)
    var out_scores = List[Float32](length=width, fill=0)
    var count: Int
    with GILReleased(Python()):
        count = topk_f32_cosine(
            F32Ptr(unsafe_from_address=rows_addr),
            n,
            d,
            F32Ptr(unsafe_from_address=Int(q.unsafe_ptr())),
            width,
            threads,
            I64Ptr(unsafe_from_address=Int(out_rows.unsafe_ptr())),
            F32Ptr(unsafe_from_address=Int(out_scores.unsafe_ptr())),
        )
    if count < 0:
        return PythonObject(ROW_NOT_FINITE)
    var result = result_lists(
        I64Ptr(unsafe_from_address=Int(out_rows.unsafe_ptr())),
        F32Ptr(unsafe_from_address=Int(out_scores.unsafe_ptr())),
        count,
    )
    _ = q^
    _ = out_rows^
    _ = out_scores^
    return result^


def array_address(args: PythonObject) raises -> PythonObject:
    """`array_address((n, d, array))`: the data address `topk_lists` / `cosine_lists` read
    from a float32 array of shape (n, d) (n = 0: a (d,) vector), or 0 if they would refuse it.
    For the self-check, which compares it with `ndarray.ctypes.data`."""
    var a = _ints[2](args)
    var obj = _object_arg(args, 2)
    if a[0] == 0:
        return PythonObject(f32_vector_address(obj, a[1]))
    return PythonObject(f32_matrix_address(obj, a[0], a[1]))


def topk_batch(args: PythonObject) raises -> PythonObject:
    """`topk_batch((matrix, n, d, queries, b, k, mask, threads, out_rows, out_scores, fault))`.

    Row-major outputs of shape (b, k); returns the number of results per query (the same for
    every query: min(k, eligible rows)).
    """
    var a = _ints[11](args)
    var matrix = F32Ptr(unsafe_from_address=a[0])
    var n = a[1]
    var d = a[2]
    var queries = F32Ptr(unsafe_from_address=a[3])
    var b = a[4]
    var k = a[5]
    var has_mask = a[6] != 0
    var mask = _mask_or(a[6], a[0])
    var threads = a[7]
    var out_rows = I64Ptr(unsafe_from_address=a[8])
    var out_scores = F32Ptr(unsafe_from_address=a[9])
    var fault = a[10]
    check_fault(fault, KERNEL)
    var neg = _negated(queries, b * d if fault == FAULT_WRONG else 0)
    if fault == FAULT_WRONG:
        queries = F32Ptr(unsafe_from_address=Int(neg.unsafe_ptr()))
    var count: Int
    with GILReleased(Python()):
        count = topk_f32_batch(
            matrix, n, d, queries, b, k, mask, has_mask, threads, out_rows, out_scores
        )
    _ = neg^
    return PythonObject(count)


def topk_int8(args: PythonObject) raises -> PythonObject:
    """`topk_int8((codes, vectors, n, d, query, query_i8, k, candidates, mask, threads,
    out_rows, out_scores, fault)) -> int`.

    `codes` uint8 (n, d); `query_i8` the int8 query (query * scale, rounded; see
    `synapse_mojo.search.quantization`); `vectors` the exact float32 rows (may be memory-mapped:
    only the candidates are read). Scores returned are the exact float32 ones of the reranked
    candidates.
    """
    var a = _ints[13](args)
    var codes = U8Ptr(unsafe_from_address=a[0])
    var vectors = F32Ptr(unsafe_from_address=a[1])
    var n = a[2]
    var d = a[3]
    var q = F32Ptr(unsafe_from_address=a[4])
    var qi = I8Ptr(unsafe_from_address=a[5])
    var k = a[6]
    var candidates = a[7]
    var has_mask = a[8] != 0
    var mask = _mask_or(a[8], a[0])
    var threads = a[9]
    var out_rows = I64Ptr(unsafe_from_address=a[10])
    var out_scores = F32Ptr(unsafe_from_address=a[11])
    var fault = a[12]
    check_fault(fault, KERNEL)
    var neg = _negated(q, d if fault == FAULT_WRONG else 0)
    var neg_i8 = List[Int8](length=d if fault == FAULT_WRONG else 0, fill=0)
    if fault == FAULT_WRONG:
        q = F32Ptr(unsafe_from_address=Int(neg.unsafe_ptr()))
        for j in range(d):
            neg_i8[j] = -qi.unsafe_load[width=1](j)
        qi = I8Ptr(unsafe_from_address=Int(neg_i8.unsafe_ptr()))
    var count: Int
    with GILReleased(Python()):
        count = topk_u8_rerank(
            codes, vectors, n, d, q, qi, k, candidates, mask, has_mask, threads, out_rows, out_scores
        )
    _ = neg_i8^
    _ = neg^
    return PythonObject(count)


def topk_int8_lists(args: PythonObject) raises -> PythonObject:
    """`topk_int8_lists((codes, vectors, n, d, k, candidates, mask, threads_u8, threads_f32,
    fault, parts, normalised, query_array))` -> `(rows, scores, used)`, best first, or
    `QUERY_NOT_ACCEPTED`.

    The certified int8 search of an index in one call (`scan.topk_u8_certified`): `codes`
    (uint8, n x d) and `vectors` (the exact float32 rows: only candidates are read unless the
    float32 scan answers) are addresses; `parts` the address of the quantizer's
    `ScalarQuantizer.kernel_parts` (float64, (5, d)); `query_array` the caller's float32
    ndarray, normalised here unless `normalised` is 1 (then it is used as it is). `used` is
    where the next query's candidate set should start (`scan.topk_u8_certified`). The query
    is refused, with nothing scanned, as in `topk_lists`.
    """
    var a = _ints[12](args)
    var codes = U8Ptr(unsafe_from_address=a[0])
    var vectors = F32Ptr(unsafe_from_address=a[1])
    var n = a[2]
    var d = a[3]
    var k = a[4]
    var candidates = a[5]
    var has_mask = a[6] != 0
    var mask = _mask_or(a[6], a[0])
    var threads_u8 = a[7]
    var threads_f32 = a[8]
    var fault = a[9]
    var parts = F64Ptr(unsafe_from_address=a[10])
    var normalised = a[11] != 0
    check_fault(fault, KERNEL)
    var q = List[Float32](length=d, fill=0)
    if not _query_arg(args, 12, d, fault, normalised, q):
        return PythonObject(QUERY_NOT_ACCEPTED)
    var width = max(0, min(k, n))
    var out_rows = List[Int64](length=width, fill=0)
    var out_scores = List[Float32](length=width, fill=0)
    var count: Int
    var used = 0
    with GILReleased(Python()):
        count = topk_u8_certified(
            codes,
            vectors,
            n,
            d,
            F32Ptr(unsafe_from_address=Int(q.unsafe_ptr())),
            parts,
            width,
            candidates,
            mask,
            has_mask,
            threads_u8,
            threads_f32,
            I64Ptr(unsafe_from_address=Int(out_rows.unsafe_ptr())),
            F32Ptr(unsafe_from_address=Int(out_scores.unsafe_ptr())),
            used,
        )
    var result = result_lists(
        I64Ptr(unsafe_from_address=Int(out_rows.unsafe_ptr())),
        F32Ptr(unsafe_from_address=Int(out_scores.unsafe_ptr())),
        count,
        used,
    )
    _ = q^
    _ = out_rows^
    _ = out_scores^
    return result^


def stream_read(args: PythonObject) raises -> PythonObject:
    """`stream_read((addr, n_floats, threads)) -> float`: the bandwidth yardstick."""
    var a = _ints[3](args)
    var p = F32Ptr(unsafe_from_address=a[0])
    var n = a[1]
    var threads = a[2]
    var total: Float32
    with GILReleased(Python()):
        total = stream_sum(p, n, threads)
    return PythonObject(Float64(total))


def content_fingerprint(args: PythonObject) raises -> PythonObject:
    """`content_fingerprint((addr, n_words, threads)) -> int`: a position-sensitive 64-bit hash
    of n_words uint64 words (the Python fallback computes the same value)."""
    var a = _ints[3](args)
    var p = U64Ptr(unsafe_from_address=a[0])
    var n = a[1]
    var threads = a[2]
    var h: UInt64
    with GILReleased(Python()):
        h = fingerprint(p, n, threads)
    return PythonObject(Int(h))


def scan_order(args: PythonObject) raises -> PythonObject:
    """`scan_order((order,)) -> int`: the process-wide direction of single-query scans (0:
    alternate from call to call, the default; 1: always forward; 2: always reversed), for
    tests and benchmarks; returns the previous one."""
    var a = _ints[1](args)
    if a[0] < 0 or a[0] > 2:
        raise Error("scan order must be 0 (alternate), 1 (forward) or 2 (reversed)")
    return PythonObject(set_scan_order(a[0]))


def kernel_info() raises -> PythonObject:
    """ABI version and compile-time facts, for `synapse-mojo doctor`."""
    var info = Python.dict()
    info["abi_version"] = ABI_VERSION
    info["simd_width_f32"] = W
    info["row_not_finite"] = ROW_NOT_FINITE
    info["query_not_accepted"] = QUERY_NOT_ACCEPTED
    info["rows_not_accepted"] = ROWS_NOT_ACCEPTED
    return info


@export
def PyInit_pattern_search() abi("C") -> PythonObject:
    try:
        var m = PythonModuleBuilder("pattern_search")
        m.def_function[topk]("topk", docstring="Exact top-k over one query.")
        m.def_function[topk_cosine]("topk_cosine", docstring="Cosine top-k over raw rows.")
        m.def_function[topk_lists]("topk_lists", docstring="One-call top-k: raw query in, lists out.")
        m.def_function[topk_hits]("topk_hits", docstring="One-call top-k: raw query in, hits out.")
        m.def_function[cosine_lists]("cosine_lists", docstring="Cosine top-k over raw rows, lists out.")
        m.def_function[array_address]("array_address", docstring="The data address read from an array.")
        m.def_function[topk_batch]("topk_batch", docstring="Exact top-k over a batch of queries.")
        m.def_function[topk_int8]("topk_int8", docstring="uint8 scan + exact float32 rerank.")
        m.def_function[topk_int8_lists](
            "topk_int8_lists", docstring="Certified int8 search in one call: lists out."
        )
        m.def_function[stream_read]("stream_read", docstring="Streaming read-sum (bandwidth).")
        m.def_function[content_fingerprint]("content_fingerprint", docstring="Content hash of a buffer.")
        m.def_function[scan_order]("scan_order", docstring="Scan direction (tests, benchmarks).")
        m.def_function[kernel_info]("kernel_info", docstring="ABI version and SIMD width.")
        return m.finalize()
    except e:
        abort(String("failed to create module pattern_search: ", e))
