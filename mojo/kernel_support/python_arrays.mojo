"""NumPy arrays and Python result lists at the kernel boundary, without a Python round trip.

A kernel entry that receives an `ndarray` object (rather than its address, which costs the
Python side about 0.8 us per `ndarray.ctypes.data`) reads the array's data pointer, shape and
strides from NumPy's `PyArrayObject` fields: the same fixed layout every compiled NumPy
extension reads through `PyArray_DATA`, `PyArray_NDIM`, `PyArray_DIMS`, `PyArray_STRIDES`
and `PyArray_FLAGS` (part of NumPy's ABI in 1.x and 2.x). The Python caller guarantees the
object is an exact `numpy.ndarray` of dtype float32 (`type(a) is np.ndarray and a.dtype is
float32`); these functions check everything else (rank, shape, contiguity, alignment) and
answer 0 for an array they will not read. The kernel's start-up self-check compares the
addresses read here with `ndarray.ctypes.data`, so a layout mismatch disables the kernel
instead of reading the wrong memory.

Results go back as Python lists built through the CPython API (`PyList_New`,
`PyLong_FromSsize_t`, `PyFloat_FromDouble`), the shape the callers hand to their users, or as
the caller's own result objects (`result_objects`). The functions Mojo's CPython binding does
not wrap (`PyObject_CallOneArg`, `PyObject_GenericSetAttr`, `PySequence_GetItem`,
`PyDict_New`, `PyDict_Merge`, `PyObject_IsTrue`, `Py_DecRef`: all in the stable ABI) are
called by name from the interpreter that loaded the module.
"""

from std.ffi import external_call
from std.math import sqrt
from std.python import Python, PythonObject
from std.python._cpython import PyObjectPtr

from kernel_support.abi import F32Ptr, I64Ptr

# Offsets in NumPy's PyArrayObject_fields on 64-bit targets (ndarraytypes.h):
# PyObject_HEAD (16), char *data, int nd, npy_intp *dimensions, npy_intp *strides,
# PyObject *base, PyArray_Descr *descr, int flags.
comptime _DATA = 16
comptime _ND = 24
comptime _DIMS = 32
comptime _STRIDES = 40
comptime _FLAGS = 64
comptime _NPY_ARRAY_ALIGNED = 0x0100

comptime _IntPtr = Pointer[Int, MutAnyOrigin]
comptime _I32Ptr = Pointer[Int32, MutAnyOrigin]


@always_inline
def _word(base: Int, offset: Int) -> Int:
    return _IntPtr(unsafe_from_address=base + offset).unsafe_load[width=1](0)


@always_inline
def _int32(base: Int, offset: Int) -> Int:
    return Int(_I32Ptr(unsafe_from_address=base + offset).unsafe_load[width=1](0))


@always_inline
def _aligned(base: Int) -> Bool:
    return (_int32(base, _FLAGS) & _NPY_ARRAY_ALIGNED) != 0


def f32_vector_address(array: PyObjectPtr, d: Int) -> Int:
    """The data address of a contiguous, aligned float32 array of shape (d,), else 0."""
    var base = Int(array)
    if base == 0 or _int32(base, _ND) != 1 or not _aligned(base):
        return 0
    if _word(_word(base, _DIMS), 0) != d or (d > 1 and _word(_word(base, _STRIDES), 0) != 4):
        return 0
    return _word(base, _DATA)


def f32_matrix_address(array: PyObjectPtr, n: Int, d: Int) -> Int:
    """The data address of a C-contiguous, aligned float32 array of shape (n, d), else 0."""
    var base = Int(array)
    if base == 0 or _int32(base, _ND) != 2 or not _aligned(base):
        return 0
    var dims = _word(base, _DIMS)
    if _word(dims, 0) != n or _word(dims, 8) != d:
        return 0
    var strides = _word(base, _STRIDES)
    if (d > 1 and _word(strides, 8) != 4) or (n > 1 and _word(strides, 0) != 4 * d):
        return 0
    return _word(base, _DATA)


def normalised_query(q: F32Ptr, d: Int, negate: Bool, mut out: List[Float32]) -> Bool:
    """Writes `q / |q|` (negated for the wrong-answer fault) into `out`; False, writing
    nothing, unless the sum of squares lies in (1e-30, 1e30): that one range proves the
    vector finite and non-zero (NaN or inf make the sum non-finite), the same rule as the
    Python side's `vectors.as_query`, which handles everything else."""
    comptime V = 16
    var acc = SIMD[DType.float32, V](0)
    var j = 0
    while j + V <= d:
        var v = q.unsafe_load[width=V](j)
        acc += v * v
        j += V
    var squares = Float64(acc.reduce_add())
    while j < d:
        var x = Float64(q.unsafe_load[width=1](j))
        squares += x * x
        j += 1
    if not (squares > 1e-30 and squares < 1e30):
        return False
    var scale = Float32(1.0 / sqrt(squares))
    if negate:
        scale = -scale
    scaled_into(q, d, scale, out)
    return True


def scaled_into(q: F32Ptr, d: Int, scale: Float32, mut out: List[Float32]):
    """`out[:d] = q[:d] * scale`, vectorised (a scalar loop with bounds checks was half of a
    10 x 384 search's kernel call: 0.5 of 1.4 us)."""
    comptime V = 16
    var dst = F32Ptr(unsafe_from_address=Int(out.unsafe_ptr()))
    var i = 0
    while i + V <= d:
        dst.unsafe_store[width=V](i, q.unsafe_load[width=V](i) * scale)
        i += V
    while i < d:
        dst.unsafe_store[width=1](i, q.unsafe_load[width=1](i) * scale)
        i += 1


def result_lists(rows: I64Ptr, scores: F32Ptr, count: Int, extra: Int = -1) raises -> PythonObject:
    """`(rows, scores)` as a tuple of two Python lists (ints, floats) of `count` items;
    `(rows, scores, extra)` when `extra` (an int) is not negative."""
    ref cpy = Python().cpython()
    var out = PythonObject(from_owned=cpy.PyTuple_New(2 if extra < 0 else 3))
    if not out._obj_ptr:
        raise Error("out of memory building the result lists")
    var row_list = cpy.PyList_New(count)
    var score_list = cpy.PyList_New(count)
    # PyTuple_SetItem and PyList_SetItem steal the new references (fresh slots are empty), so
    # everything built so far belongs to `out` and is released with it on any error below.
    _ = cpy.PyTuple_SetItem(out._obj_ptr, 0, row_list)
    _ = cpy.PyTuple_SetItem(out._obj_ptr, 1, score_list)
    if not row_list or not score_list:
        raise Error("out of memory building the result lists")
    if extra >= 0:
        var value = cpy.PyLong_FromSsize_t(extra)
        if not value:
            raise Error("out of memory building the result lists")
        _ = cpy.PyTuple_SetItem(out._obj_ptr, 2, value)
    for i in range(count):
        var row = cpy.PyLong_FromSsize_t(Int(rows.unsafe_load[width=1](i)))
        var score = cpy.PyFloat_FromDouble(Float64(scores.unsafe_load[width=1](i)))
        if row:
            _ = cpy.PyList_SetItem(row_list, i, row)
        if score:
            _ = cpy.PyList_SetItem(score_list, i, score)
        if not row or not score:
            raise Error("out of memory building the result lists")
    return out^


@always_inline
def _decref(obj: PyObjectPtr):
    if obj:
        external_call["Py_DecRef", NoneType](obj)


@always_inline
def _store(obj: PyObjectPtr, name: PyObjectPtr, value: PyObjectPtr) -> Bool:
    """`object.__setattr__(obj, name, value)`: the generic attribute store, past a frozen
    dataclass's `__setattr__` (what its own `__init__` does)."""
    return external_call["PyObject_GenericSetAttr", Int32](obj, name, value) == 0


def result_objects(
    rows: I64Ptr,
    scores: F32Ptr,
    count: Int,
    new: PyObjectPtr,
    cls: PyObjectPtr,
    names: PyObjectPtr,
    ids: PyObjectPtr,
    metas: PyObjectPtr,
) raises -> PythonObject:
    """A list of `count` new objects, best first, each made as Python's `new(cls)` with three
    attributes stored in its `__dict__` (`names`, a tuple of three str): `ids[row]`, the score
    as a float, and a new dict of `metas[row]`'s items (an empty dict for a falsy entry), the
    same as `dict(meta) if meta else {}`. For `PatternIndex.search`'s hits."""
    ref cpy = Python().cpython()
    var id_key = cpy.PyTuple_GetItem(names, 0)
    var score_key = cpy.PyTuple_GetItem(names, 1)
    var meta_key = cpy.PyTuple_GetItem(names, 2)
    if not id_key or not score_key or not meta_key:
        raise Error("result_objects: expected three attribute names")
    var out = PythonObject(from_owned=cpy.PyList_New(count))
    if not out._obj_ptr:
        raise Error("out of memory building the results")
    for i in range(count):
        var row = Int(rows.unsafe_load[width=1](i))
        var obj = external_call["PyObject_CallOneArg", PyObjectPtr](new, cls)
        if not obj:
            raise Error("result_objects: creating a result failed")
        _ = cpy.PyList_SetItem(out._obj_ptr, i, obj)  # steals: released with `out` on error
        var ok = True
        var value = external_call["PySequence_GetItem", PyObjectPtr](ids, row)
        ok = ok and value and _store(obj, id_key, value)
        _decref(value)
        value = cpy.PyFloat_FromDouble(Float64(scores.unsafe_load[width=1](i)))
        ok = ok and value and _store(obj, score_key, value)
        _decref(value)
        var meta = external_call["PySequence_GetItem", PyObjectPtr](metas, row)
        var copy = external_call["PyDict_New", PyObjectPtr]()
        if meta and copy:
            var truth = external_call["PyObject_IsTrue", Int32](meta)
            if truth < 0 or (
                truth == 1 and external_call["PyDict_Merge", Int32](copy, meta, Int32(1)) != 0
            ):
                ok = False
        else:
            ok = False
        ok = ok and _store(obj, meta_key, copy)
        _decref(copy)
        _decref(meta)
        if not ok:
            raise Error("result_objects: building a result failed")
    return out^
