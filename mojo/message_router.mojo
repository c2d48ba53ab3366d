"""The message router's priority structure as a Python extension module.

The Python layer (`synapse_mojo.router.mojo_queue`) owns every queue's state block (one int64
NumPy array, formatted by Python with the layout in `kernel_support.priority_queue`) and the
slot table holding the messages; this module orders slot numbers inside that block and never
allocates. A message object is never copied or even seen here: only its slot number is.

```python
import message_router as k
k.push(state_addr, priority, slot, now_ns, fault)          # -> new size
k.push_batch(state_addr, prio_addr, slot_addr, n, now_ns, fault)
slot = k.pop(state_addr, now_ns, fault)                    # -> slot, -1 when empty
n = k.pop_batch(state_addr, out_addr, max_n, now_ns, fault)
```

`now_ns` is a `time.monotonic_ns()` reading used for the queueing-latency histogram kept in the
block; a negative value skips the stamp/record (used when a mirror replays an operation).
`push_fast`/`pop_fast` read the same clock themselves (`perf_counter_ns`).

Fault injection (the runtime's convention, `kernel_support.abi`): fault 1 raises from
inside the kernel before anything changes; fault 2 returns wrong results: pops serve the
*lowest* priority first. Neither loses or duplicates a slot.
"""

from std.os import abort
from std.python import Python, PythonObject
from std.python.bindings import PythonModuleBuilder
from std.time import perf_counter_ns

from kernel_support.abi import FAULT_WRONG, I64UntrackedPtr, check_fault
from kernel_support.priority_queue import (
    LEVELS,
    MAGIC,
    MAX_BOUNDS,
    H_CAPACITY,
    H_LATSUM,
    H_MASK,
    H_NBOUNDS,
    H_POPPED,
    H_PUSHED,
    H_SIZE,
    OFF_BOUNDS,
    OFF_COUNT,
    OFF_HEAD,
    OFF_HIST,
    OFF_NEXT,
    OFF_TAIL,
    SlotQueue,
)

# Bump when a Python-visible signature or the block layout changes; the loader checks it.
comptime ABI_VERSION = 1

comptime KERNEL = "message_router"


# ===----------------------------------------------------------------------=== #
# Argument helpers
# ===----------------------------------------------------------------------=== #


@always_inline
def _queue(state: PythonObject) raises -> SlotQueue:
    var q = SlotQueue(I64UntrackedPtr(unsafe_from_address=Int(py=state)))
    if not q.valid():
        raise Error("message_router: not a formatted queue block (bad magic)")
    return q


# ===----------------------------------------------------------------------=== #
# Python-visible functions
# ===----------------------------------------------------------------------=== #


def push(
    state: PythonObject,
    priority: PythonObject,
    slot: PythonObject,
    now_ns: PythonObject,
    fault: PythonObject,
) raises -> PythonObject:
    """`push(state, priority, slot, now_ns, fault) -> size`."""
    check_fault(Int(py=fault), KERNEL)
    var q = _queue(state)
    return PythonObject(q.push(Int(py=priority), Int(py=slot), Int(py=now_ns)))


def push_batch(
    state: PythonObject,
    priorities: PythonObject,
    slots: PythonObject,
    n: PythonObject,
    now_ns: PythonObject,
    fault: PythonObject,
) raises -> PythonObject:
    """`push_batch(state, prio_addr, slot_addr, n, now_ns, fault) -> size`: int64 arrays of
    `n` priorities and slots, pushed in order, all or nothing."""
    check_fault(Int(py=fault), KERNEL)
    var q = _queue(state)
    return PythonObject(
        q.push_batch(
            I64UntrackedPtr(unsafe_from_address=Int(py=priorities)),
            I64UntrackedPtr(unsafe_from_address=Int(py=slots)),
            Int(py=n),
            Int(py=now_ns),
        )
    )


def push_fast(state: PythonObject, key: PythonObject) raises -> PythonObject:
    """`push_fast(state, slot * 16 + priority) -> now_ns`: `push` for the single-message path
    between two runtime-adapter calls. It stamps the slot with its own clock reading
    (`perf_counter_ns`, the clock of Python's `time.monotonic_ns`) and returns it; no fault
    code (faults are injected on adapter calls)."""
    var q = _queue(state)
    var k = Int(py=key)
    var now = Int(perf_counter_ns())
    _ = q.push(k & 15, k >> 4, now)
    return PythonObject(now)


def pop_fast(state: PythonObject) raises -> PythonObject:
    """`pop_fast(state) -> slot`: `pop` recording the latency with the kernel's own clock
    (see `push_fast`)."""
    var q = _queue(state)
    return PythonObject(q.pop(Int(perf_counter_ns()), False))


def pop(state: PythonObject, now_ns: PythonObject, fault: PythonObject) raises -> PythonObject:
    """`pop(state, now_ns, fault) -> slot` (-1 when empty)."""
    var f = Int(py=fault)
    check_fault(f, KERNEL)
    var q = _queue(state)
    return PythonObject(q.pop(Int(py=now_ns), f == FAULT_WRONG))


def pop_batch(
    state: PythonObject,
    out_slots: PythonObject,
    max_n: PythonObject,
    now_ns: PythonObject,
    fault: PythonObject,
) raises -> PythonObject:
    """`pop_batch(state, out_addr, max_n, now_ns, fault) -> n`: slots in order into an int64
    array of at least `max_n` entries."""
    var f = Int(py=fault)
    check_fault(f, KERNEL)
    var q = _queue(state)
    return PythonObject(
        q.pop_batch(
            I64UntrackedPtr(unsafe_from_address=Int(py=out_slots)), Int(py=max_n), Int(py=now_ns), f == FAULT_WRONG
        )
    )


def export(state: PythonObject, levels: PythonObject, slots: PythonObject) raises -> PythonObject:
    """`export(state, prio_addr, slot_addr) -> n`: every queued (priority, slot) in pop order,
    without changing the queue (arrays of at least `size` entries)."""
    var q = _queue(state)
    return PythonObject(
        q.export(
            I64UntrackedPtr(unsafe_from_address=Int(py=levels)),
            I64UntrackedPtr(unsafe_from_address=Int(py=slots)),
        )
    )


def clear(state: PythonObject) raises -> PythonObject:
    """`clear(state)`: empties the queue, keeping the histogram."""
    var q = _queue(state)
    q.clear()
    return PythonObject(None)


def noop() raises -> PythonObject:
    """Does nothing: measures the cost of one Python -> Mojo call through the binding."""
    return PythonObject(None)


def kernel_info() raises -> PythonObject:
    """ABI version and the block layout, checked by the Python side at start-up."""
    var info = Python.dict()
    info["abi_version"] = ABI_VERSION
    info["levels"] = LEVELS
    var layout = Python.dict()
    layout["magic"] = MAGIC
    layout["max_bounds"] = MAX_BOUNDS
    layout["capacity"] = H_CAPACITY
    layout["size"] = H_SIZE
    layout["mask"] = H_MASK
    layout["nbounds"] = H_NBOUNDS
    layout["pushed"] = H_PUSHED
    layout["popped"] = H_POPPED
    layout["latency_sum"] = H_LATSUM
    layout["head"] = OFF_HEAD
    layout["tail"] = OFF_TAIL
    layout["count"] = OFF_COUNT
    layout["bounds"] = OFF_BOUNDS
    layout["hist"] = OFF_HIST
    layout["next"] = OFF_NEXT
    info["layout"] = layout
    return info


@export
def PyInit_message_router() abi("C") -> PythonObject:
    try:
        var m = PythonModuleBuilder("message_router")
        m.def_function[push]("push", docstring="Push one slot.")
        m.def_function[push_batch]("push_batch", docstring="Push a batch of slots, all or nothing.")
        m.def_function[pop]("pop", docstring="Pop the next slot (-1 when empty).")
        m.def_function[push_fast]("push_fast", docstring="push with a packed key, no fault code.")
        m.def_function[pop_fast]("pop_fast", docstring="pop without a fault code.")
        m.def_function[pop_batch]("pop_batch", docstring="Pop up to max_n slots.")
        m.def_function[export]("export", docstring="Every queued (priority, slot) in pop order.")
        m.def_function[clear]("clear", docstring="Empty the queue.")
        m.def_function[noop]("noop", docstring="An empty call (binding overhead).")
        m.def_function[kernel_info]("kernel_info", docstring="ABI version and block layout.")
        return m.finalize()
    except e:
        abort(String("failed to create module message_router: ", e))
