"""A bounded priority queue over slot numbers, stored in one caller-owned Int64 block.

The message router keeps the messages themselves in a slot table on the Python side; this
structure only orders slot numbers: higher priority first, first-in-first-out within a
priority. That is the order of a heap over `(-priority, sequence, slot)`, realised as one
intrusive FIFO list per priority level (linked through a per-slot `next` array) plus a bitmask
of non-empty levels, so push and pop are O(1) and a batch pop walks memory in order.

Every byte of state lives in a block the caller allocates (a NumPy array on the Python side, a
`List[Int64]` in the standalone benchmark), so the structure needs no destructor, survives being
handed between threads under the caller's lock, and can be read (depths, histogram) without a
call into the kernel.

```mojo
from kernel_support.abi import I64UntrackedPtr
from kernel_support.priority_queue import SlotQueue, state_len, init_state

var block = List[Int64](length=state_len(1024), fill=0)
var bounds = List[Int64](1_000, 1_000_000)                 # latency buckets, ns
var q = SlotQueue(I64UntrackedPtr(unsafe_from_address=Int(block.unsafe_ptr())))
init_state(q.s, 1024, I64UntrackedPtr(unsafe_from_address=Int(bounds.unsafe_ptr())), 2)
_ = q.push(3, 17, now_ns)                                   # priority 3, slot 17
var slot = q.pop(now_ns, False)                             # 17
```

Block layout (Int64 words; `kernel_info()["layout"]` publishes it and the Python side checks it):

    [0] magic  [1] capacity  [2] size  [3] non-empty level mask  [4] number of latency bounds
    [5] pushes (the sequence counter)  [6] pops  [7] sum of recorded latencies (ns)
    [8, 18) head per level  [18, 28) tail per level  [28, 38) count per level
    [38, 70) latency bucket upper bounds (ns, ascending)  [70, 103) histogram (last = +Inf)
    [103, 103 + capacity) next slot per slot: -2 not queued, -1 last in its level, else next
    [103 + capacity, 103 + 2 capacity) enqueue time per slot (ns)
"""

from std.bit import count_leading_zeros, count_trailing_zeros

# The block is owned by the caller (a NumPy array or a List), not by this struct: an untracked
# view (see `kernel_support.abi`).
from kernel_support.abi import I64UntrackedPtr

comptime MAGIC = 0x53594E52545231  # "SYNRTR1"
comptime LEVELS = 10  # priorities 0 .. 9, higher served first
comptime MAX_BOUNDS = 32

comptime H_MAGIC = 0
comptime H_CAPACITY = 1
comptime H_SIZE = 2
comptime H_MASK = 3
comptime H_NBOUNDS = 4
comptime H_PUSHED = 5
comptime H_POPPED = 6
comptime H_LATSUM = 7
comptime OFF_HEAD = 8
comptime OFF_TAIL = OFF_HEAD + LEVELS
comptime OFF_COUNT = OFF_TAIL + LEVELS
comptime OFF_BOUNDS = OFF_COUNT + LEVELS
comptime OFF_HIST = OFF_BOUNDS + MAX_BOUNDS
comptime OFF_NEXT = OFF_HIST + MAX_BOUNDS + 1

comptime NOT_QUEUED = -2
comptime END = -1


def state_len(capacity: Int) -> Int:
    """Words of the block for a queue of `capacity` slots."""
    return OFF_NEXT + 2 * capacity


# ===----------------------------------------------------------------------=== #
# Word access
# ===----------------------------------------------------------------------=== #


@always_inline
def _ld(p: I64UntrackedPtr, i: Int) -> Int:
    return Int(p[unsafe_offset=i])


@always_inline
def _st(p: I64UntrackedPtr, i: Int, v: Int):
    p[unsafe_offset=i] = Int64(v)


def init_state(s: I64UntrackedPtr, capacity: Int, bounds: I64UntrackedPtr, nbounds: Int):
    """Formats a block of `state_len(capacity)` words: empty queue, zero histogram."""
    for i in range(OFF_NEXT):
        _st(s, i, 0)
    _st(s, H_MAGIC, MAGIC)
    _st(s, H_CAPACITY, capacity)
    var nb = min(nbounds, MAX_BOUNDS)
    _st(s, H_NBOUNDS, nb)
    for i in range(nb):
        _st(s, OFF_BOUNDS + i, _ld(bounds, i))
    for p in range(LEVELS):
        _st(s, OFF_HEAD + p, END)
        _st(s, OFF_TAIL + p, END)
    for i in range(capacity):
        _st(s, OFF_NEXT + i, NOT_QUEUED)
        _st(s, OFF_NEXT + capacity + i, 0)


# ===----------------------------------------------------------------------=== #
# The queue
# ===----------------------------------------------------------------------=== #


struct SlotQueue(ImplicitlyCopyable, Movable):
    """A view of a formatted block. Copies share the block."""

    var s: I64UntrackedPtr

    def __init__(out self, s: I64UntrackedPtr):
        self.s = s

    # ------------------------------------------------------------------ header

    @always_inline
    def valid(self) -> Bool:
        return _ld(self.s, H_MAGIC) == MAGIC

    @always_inline
    def capacity(self) -> Int:
        return _ld(self.s, H_CAPACITY)

    @always_inline
    def size(self) -> Int:
        return _ld(self.s, H_SIZE)

    @always_inline
    def count(self, level: Int) -> Int:
        return _ld(self.s, OFF_COUNT + level)

    @always_inline
    def is_queued(self, slot: Int) -> Bool:
        return _ld(self.s, OFF_NEXT + slot) != NOT_QUEUED

    @always_inline
    def _enq_off(self) -> Int:
        return OFF_NEXT + self.capacity()

    # ------------------------------------------------------------------ push

    @always_inline
    def push_unchecked(mut self, level: Int, slot: Int, now_ns: Int):
        """Appends `slot` to its level. The caller has checked level, slot and room."""
        var s = self.s
        _st(s, OFF_NEXT + slot, END)
        if now_ns >= 0:
            _st(s, self._enq_off() + slot, now_ns)
        var tail = _ld(s, OFF_TAIL + level)
        if tail == END:
            _st(s, OFF_HEAD + level, slot)
        else:
            _st(s, OFF_NEXT + tail, slot)
        _st(s, OFF_TAIL + level, slot)
        _st(s, OFF_COUNT + level, _ld(s, OFF_COUNT + level) + 1)
        _st(s, H_MASK, _ld(s, H_MASK) | (1 << level))
        _st(s, H_SIZE, _ld(s, H_SIZE) + 1)
        _st(s, H_PUSHED, _ld(s, H_PUSHED) + 1)

    def check_push(self, level: Int, slot: Int) raises:
        if level < 0 or level >= LEVELS:
            raise Error(String("priority ", level, " outside 0..", LEVELS - 1))
        if slot < 0 or slot >= self.capacity():
            raise Error(String("slot ", slot, " outside 0..", self.capacity() - 1))
        if self.is_queued(slot):
            raise Error(String("slot ", slot, " is already queued"))

    def push(mut self, level: Int, slot: Int, now_ns: Int) raises -> Int:
        """Checked push; returns the new size."""
        self.check_push(level, slot)
        if self.size() >= self.capacity():
            raise Error("queue is full")
        self.push_unchecked(level, slot, now_ns)
        return self.size()

    def push_batch(
        mut self, levels: I64UntrackedPtr, slots: I64UntrackedPtr, n: Int, now_ns: Int
    ) raises -> Int:
        """Pushes `n` (level, slot) pairs in order, all or nothing; returns the new size.

        Validation runs over the whole batch first (ranges, room, slots not queued and not
        repeated within the batch, which is detected by marking each slot as it is seen), so a
        bad batch leaves the queue exactly as it was.
        """
        if self.size() + n > self.capacity():
            raise Error(
                String("batch of ", n, " does not fit: size ", self.size(), ", capacity ", self.capacity())
            )
        var s = self.s
        comptime SEEN = -3
        var bad = -1
        var reason = String("")
        for i in range(n):
            var level = _ld(levels, i)
            var slot = _ld(slots, i)
            if level < 0 or level >= LEVELS:
                bad = i
                reason = String("priority ", level, " outside 0..", LEVELS - 1)
                break
            if slot < 0 or slot >= self.capacity():
                bad = i
                reason = String("slot ", slot, " outside 0..", self.capacity() - 1)
                break
            if _ld(s, OFF_NEXT + slot) != NOT_QUEUED:
                bad = i
                reason = String("slot ", slot, " is already queued or repeated in the batch")
                break
            _st(s, OFF_NEXT + slot, SEEN)
        if bad >= 0:
            for i in range(bad):  # undo the marks
                _st(s, OFF_NEXT + _ld(slots, i), NOT_QUEUED)
            raise Error(String("batch item ", bad, ": ", reason))
        for i in range(n):
            self.push_unchecked(_ld(levels, i), _ld(slots, i), now_ns)
        return self.size()

    # ------------------------------------------------------------------ pop

    @always_inline
    def _top_level(self, lowest_first: Bool) -> Int:
        var mask = UInt64(_ld(self.s, H_MASK))
        if lowest_first:
            return Int(count_trailing_zeros(mask))
        return 63 - Int(count_leading_zeros(mask))

    @always_inline
    def _record(mut self, slot: Int, now_ns: Int):
        """Adds the slot's queueing latency to the histogram (first bucket with bound >= it)."""
        var s = self.s
        var latency = now_ns - _ld(s, self._enq_off() + slot)
        if latency < 0:
            latency = 0
        var nb = _ld(s, H_NBOUNDS)
        var b = 0
        while b < nb and latency > _ld(s, OFF_BOUNDS + b):
            b += 1
        _st(s, OFF_HIST + b, _ld(s, OFF_HIST + b) + 1)
        _st(s, H_LATSUM, _ld(s, H_LATSUM) + latency)

    def pop(mut self, now_ns: Int, lowest_first: Bool) -> Int:
        """The next slot (-1 when empty). `lowest_first` inverts the order (fault injection).
        A negative `now_ns` pops without recording latency."""
        var s = self.s
        if _ld(s, H_SIZE) == 0:
            return END
        var level = self._top_level(lowest_first)
        var slot = _ld(s, OFF_HEAD + level)
        var after = _ld(s, OFF_NEXT + slot)
        _st(s, OFF_HEAD + level, after)
        var left = _ld(s, OFF_COUNT + level) - 1
        _st(s, OFF_COUNT + level, left)
        if left == 0:
            _st(s, OFF_TAIL + level, END)
            _st(s, H_MASK, _ld(s, H_MASK) & ~(1 << level))
        _st(s, OFF_NEXT + slot, NOT_QUEUED)
        _st(s, H_SIZE, _ld(s, H_SIZE) - 1)
        _st(s, H_POPPED, _ld(s, H_POPPED) + 1)
        if now_ns >= 0:
            self._record(slot, now_ns)
        return slot

    def pop_batch(
        mut self, dest: I64UntrackedPtr, max_n: Int, now_ns: Int, lowest_first: Bool
    ) -> Int:
        """Pops up to `max_n` slots into `out` in order; returns how many."""
        var n = 0
        while n < max_n:
            var slot = self.pop(now_ns, lowest_first)
            if slot == END:
                break
            _st(dest, n, slot)
            n += 1
        return n

    # ------------------------------------------------------------------ whole-queue

    def export(self, out_levels: I64UntrackedPtr, out_slots: I64UntrackedPtr) -> Int:
        """Writes every queued (level, slot) in pop order without changing the queue."""
        var s = self.s
        var n = 0
        var level = LEVELS - 1
        while level >= 0:
            var slot = _ld(s, OFF_HEAD + level)
            var left = _ld(s, OFF_COUNT + level)
            while left > 0 and slot >= 0:
                _st(out_levels, n, level)
                _st(out_slots, n, slot)
                n += 1
                left -= 1
                slot = _ld(s, OFF_NEXT + slot)
            level -= 1
        return n

    def clear(mut self):
        """Empties the queue; the histogram and enqueue stamps are kept."""
        var s = self.s
        var cap = self.capacity()
        for p in range(LEVELS):
            _st(s, OFF_HEAD + p, END)
            _st(s, OFF_TAIL + p, END)
            _st(s, OFF_COUNT + p, 0)
        _st(s, H_MASK, 0)
        _st(s, H_SIZE, 0)
        for i in range(cap):
            _st(s, OFF_NEXT + i, NOT_QUEUED)
