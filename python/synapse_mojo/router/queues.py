"""Priority-queue backends of the in-process router, behind one interface.

A backend orders *slot numbers*: the messages themselves stay in the caller's slot table (see
:mod:`.adaptive_queue`), so no backend copies or even touches a message. Order: higher priority
first, first-in-first-out within a priority, i.e. the order of a heap over
``(-priority, sequence, slot)``. Two implementations give exactly that order:

* :class:`HeapQueueBackend`: the reference, ``heapq`` over ``(-priority, sequence, slot)``
  tuples, pure Python.
* ``MojoQueueBackend`` (:mod:`.mojo_queue`): the ``message_router`` kernel, one FIFO list per
  priority level in a caller-owned block, O(1) push and pop, batches in one call.

Both keep the enqueue stamp of each slot and a queueing-latency histogram in the same
:class:`QueueBlock`, so switching backends (the runtime adapter may move a queue between Mojo
and Python at any call) keeps the stamps and the histogram.

Layout of the block: see ``mojo/kernel_support/priority_queue.mojo``; the constants below must
match it, and the Mojo backend's self-check compares them with ``kernel_info()["layout"]``.
"""

from __future__ import annotations

import bisect
import heapq
from abc import ABC, abstractmethod

import numpy as np

from ..errors import InvalidInputError
from ..runtime.metrics import LATENCY_BUCKETS
from .message import PRIORITY_LEVELS

# --------------------------------------------------------------------------------------------
# The state block
# --------------------------------------------------------------------------------------------

MAGIC = 0x53594E52545231
MAX_BOUNDS = 32
H_MAGIC, H_CAPACITY, H_SIZE, H_MASK, H_NBOUNDS, H_PUSHED, H_POPPED, H_LATSUM = range(8)
OFF_HEAD = 8
OFF_TAIL = OFF_HEAD + PRIORITY_LEVELS
OFF_COUNT = OFF_TAIL + PRIORITY_LEVELS
OFF_BOUNDS = OFF_COUNT + PRIORITY_LEVELS
OFF_HIST = OFF_BOUNDS + MAX_BOUNDS
OFF_NEXT = OFF_HIST + MAX_BOUNDS + 1
NOT_QUEUED = -2
END = -1

#: The layout as the kernel reports it (``kernel_info()["layout"]``).
LAYOUT = {
    "magic": MAGIC,
    "max_bounds": MAX_BOUNDS,
    "capacity": H_CAPACITY,
    "size": H_SIZE,
    "mask": H_MASK,
    "nbounds": H_NBOUNDS,
    "pushed": H_PUSHED,
    "popped": H_POPPED,
    "latency_sum": H_LATSUM,
    "head": OFF_HEAD,
    "tail": OFF_TAIL,
    "count": OFF_COUNT,
    "bounds": OFF_BOUNDS,
    "hist": OFF_HIST,
    "next": OFF_NEXT,
}

#: Queueing-latency histogram bounds (the shared metrics buckets, in ns).
LATENCY_BOUNDS_NS: tuple[int, ...] = tuple(round(b * 1e9) for b in LATENCY_BUCKETS)


class QueueBlock:
    """One queue's state: the Mojo backend's ordering words, the per-slot enqueue stamps
    (monotonic ns) and the latency histogram shared by every backend."""

    def __init__(self, capacity: int, bounds_ns: tuple[int, ...] = LATENCY_BOUNDS_NS) -> None:
        if capacity < 1:
            raise InvalidInputError(f"capacity must be >= 1, got {capacity}")
        if len(bounds_ns) > MAX_BOUNDS or list(bounds_ns) != sorted(bounds_ns):
            raise InvalidInputError(f"at most {MAX_BOUNDS} ascending latency bounds")
        self.capacity = capacity
        self.words = np.zeros(OFF_NEXT + 2 * capacity, dtype=np.int64)
        self.addr: int = self.words.ctypes.data
        self.words[H_MAGIC] = MAGIC
        self.words[H_CAPACITY] = capacity
        self.words[H_NBOUNDS] = len(bounds_ns)
        self.words[OFF_BOUNDS : OFF_BOUNDS + len(bounds_ns)] = bounds_ns
        self.bounds_ns: list[int] = list(bounds_ns)
        self.enq = self.words[OFF_NEXT + capacity :]
        self.hist = self.words[OFF_HIST : OFF_HIST + len(bounds_ns) + 1]
        self.reset_ordering()

    def reset_ordering(self) -> None:
        """Empties the ordering words (the Mojo backend's queue); stamps and histogram stay."""
        w = self.words
        w[OFF_HEAD:OFF_COUNT] = END
        w[OFF_COUNT : OFF_COUNT + PRIORITY_LEVELS] = 0
        w[H_MASK] = 0
        w[H_SIZE] = 0
        w[OFF_NEXT : OFF_NEXT + self.capacity] = NOT_QUEUED

    def record_latency(self, slot: int, now_ns: int) -> None:
        """Python-side twin of the kernel's histogram update."""
        latency = max(0, now_ns - int(self.enq[slot]))
        bucket = bisect.bisect_left(self.bounds_ns, latency)
        self.words[OFF_HIST + bucket] += 1
        self.words[H_LATSUM] += latency

    def latency_histogram(self) -> tuple[list[float], list[int], float]:
        """(upper bounds in seconds, non-cumulative counts with +Inf last, sum in seconds)."""
        return (
            [b / 1e9 for b in self.bounds_ns],
            [int(c) for c in self.hist],
            int(self.words[H_LATSUM]) / 1e9,
        )


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class QueueBackend(ABC):
    """Orders slot numbers of one bounded queue.

    Every method is called with the owner's lock held. ``now_ns`` is a monotonic clock reading:
    pushes stamp it per slot, pops record ``now - stamp`` in the block's histogram; a negative
    ``now_ns`` does neither (a mirror replaying an operation). Pushes are all-or-nothing and
    raise before changing anything when a priority or slot is out of range, a slot is already
    queued (or repeated in the batch), or the queue lacks room.
    """

    name: str = "?"

    def __init__(self, block: QueueBlock) -> None:
        self.block = block
        self.capacity = block.capacity

    @abstractmethod
    def push(self, priority: int, slot: int, now_ns: int) -> None:
        """Appends ``slot`` at ``priority``."""

    @abstractmethod
    def push_batch(self, priorities: np.ndarray, slots: np.ndarray, now_ns: int) -> None:
        """Appends int64 ``slots`` at int64 ``priorities``, in order."""

    @abstractmethod
    def pop(self, now_ns: int) -> int:
        """The next slot, or -1 when empty."""

    @abstractmethod
    def pop_batch(self, out: np.ndarray, max_n: int, now_ns: int) -> int:
        """Writes up to ``max_n`` next slots into int64 ``out``; returns how many."""

    @abstractmethod
    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """(priorities, slots) of everything queued, in pop order; the queue is unchanged."""

    @abstractmethod
    def clear(self) -> None:
        """Empties the queue (stamps and histogram stay)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def depths(self) -> list[int]:
        """Queued slots per priority level 0..9."""

    def load(self, priorities: np.ndarray, slots: np.ndarray) -> None:
        """Replaces the content with ``export()`` output of another backend."""
        self.clear()
        if len(slots):
            self.push_batch(priorities, slots, -1)


# --------------------------------------------------------------------------------------------
# heapq reference
# --------------------------------------------------------------------------------------------


class HeapQueueBackend(QueueBackend):
    """The reference: ``heapq`` over ``(-priority, sequence, slot)``."""

    name = "heapq"

    def __init__(self, block: QueueBlock) -> None:
        super().__init__(block)
        self._heap: list[tuple[int, int, int]] = []
        self._seq = 0
        self._queued = bytearray(block.capacity)
        self._counts = [0] * PRIORITY_LEVELS

    def _check(self, priority: int, slot: int) -> None:
        if not 0 <= priority < PRIORITY_LEVELS:
            raise InvalidInputError(f"priority {priority} outside 0..{PRIORITY_LEVELS - 1}")
        if not 0 <= slot < self.capacity:
            raise InvalidInputError(f"slot {slot} outside 0..{self.capacity - 1}")
        if self._queued[slot]:
            raise InvalidInputError(f"slot {slot} is already queued")

    def push(self, priority: int, slot: int, now_ns: int) -> None:
        self._check(priority, slot)
        if len(self._heap) >= self.capacity:
            raise InvalidInputError("queue is full")
        self._push(priority, slot, now_ns)

    def _push(self, priority: int, slot: int, now_ns: int) -> None:
        heapq.heappush(self._heap, (-priority, self._seq, slot))
        self._seq += 1
        self._queued[slot] = 1
        self._counts[priority] += 1
        if now_ns >= 0:
            self.block.enq[slot] = now_ns

    def push_batch(self, priorities: np.ndarray, slots: np.ndarray, now_ns: int) -> None:
        prios = [int(p) for p in priorities]
        slot_list = [int(s) for s in slots]
        if len(prios) != len(slot_list):
            raise InvalidInputError(
                f"batch of {len(prios)} priorities and {len(slot_list)} slots: lengths differ"
            )
        if len(self._heap) + len(slot_list) > self.capacity:
            raise InvalidInputError(
                f"batch of {len(slot_list)} does not fit: size {len(self._heap)}, "
                f"capacity {self.capacity}"
            )
        seen: set[int] = set()
        for i, (p, s) in enumerate(zip(prios, slot_list, strict=True)):
            try:
                self._check(p, s)
            except InvalidInputError as exc:
                raise InvalidInputError(f"batch item {i}: {exc}") from None
            if s in seen:
                raise InvalidInputError(f"batch item {i}: slot {s} is repeated in the batch")
            seen.add(s)
        for p, s in zip(prios, slot_list, strict=True):
            self._push(p, s, now_ns)

    def pop(self, now_ns: int) -> int:
        if not self._heap:
            return END
        neg_priority, _, slot = heapq.heappop(self._heap)
        self._queued[slot] = 0
        self._counts[-neg_priority] -= 1
        if now_ns >= 0:
            self.block.record_latency(slot, now_ns)
        return slot

    def pop_batch(self, out: np.ndarray, max_n: int, now_ns: int) -> int:
        n = 0
        while n < max_n:
            slot = self.pop(now_ns)
            if slot == END:
                break
            out[n] = slot
            n += 1
        return n

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        ordered = sorted(self._heap)
        return (
            np.array([-p for p, _, _ in ordered], dtype=np.int64),
            np.array([s for _, _, s in ordered], dtype=np.int64),
        )

    def clear(self) -> None:
        self._heap.clear()
        self._queued = bytearray(self.capacity)
        self._counts = [0] * PRIORITY_LEVELS

    def __len__(self) -> int:
        return len(self._heap)

    def depths(self) -> list[int]:
        return list(self._counts)
