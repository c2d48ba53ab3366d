"""The Mojo queue backend: a thin shell over the ``message_router`` kernel module.

Every operation is one call into the kernel with the address of the queue's
:class:`~.queues.QueueBlock`; batches pass int64 arrays, so one Python -> Mojo call moves a
whole batch. Depths are read straight from the block, without a call.

:func:`self_check` compares the kernel with the ``heapq`` reference at start-up (the runtime
adapter runs it before the first Mojo call of the ``message_router`` feature).
"""

from __future__ import annotations

import random

import numpy as np

from ..runtime.adapter import register_self_check
from ..runtime.kernel_types import MessageRouterKernel
from .message import PRIORITY_LEVELS
from .queues import (
    H_SIZE,
    LAYOUT,
    OFF_COUNT,
    HeapQueueBackend,
    QueueBackend,
    QueueBlock,
)


class MojoQueueBackend(QueueBackend):
    """Slots ordered by the kernel. ``fault`` is the runtime's fault code for the next calls."""

    name = "mojo"

    def __init__(self, kernel: MessageRouterKernel, block: QueueBlock) -> None:
        super().__init__(block)
        self.kernel = kernel
        self.fault = 0
        self._addr = block.addr
        self._words = block.words
        self._export_levels = np.empty(block.capacity, dtype=np.int64)
        self._export_slots = np.empty(block.capacity, dtype=np.int64)

    def push(self, priority: int, slot: int, now_ns: int) -> None:
        self.kernel.push(self._addr, priority, slot, now_ns, self.fault)

    def push_batch(self, priorities: np.ndarray, slots: np.ndarray, now_ns: int) -> None:
        n = len(slots)
        if n == 0:
            return
        p = np.ascontiguousarray(priorities, dtype=np.int64)
        s = np.ascontiguousarray(slots, dtype=np.int64)
        self.kernel.push_batch(self._addr, p.ctypes.data, s.ctypes.data, n, now_ns, self.fault)

    def pop(self, now_ns: int) -> int:
        return self.kernel.pop(self._addr, now_ns, self.fault)

    def pop_batch(self, out: np.ndarray, max_n: int, now_ns: int) -> int:
        if max_n > len(out) or out.dtype != np.int64 or not out.flags.c_contiguous:
            raise ValueError("pop_batch needs a contiguous int64 output of at least max_n entries")
        return self.kernel.pop_batch(self._addr, out.ctypes.data, max_n, now_ns, self.fault)

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.kernel.export(
            self._addr, self._export_levels.ctypes.data, self._export_slots.ctypes.data
        )
        return self._export_levels[:n].copy(), self._export_slots[:n].copy()

    def clear(self) -> None:
        self.kernel.clear(self._addr)

    def __len__(self) -> int:
        return int(self._words[H_SIZE])

    def depths(self) -> list[int]:
        return self._words[OFF_COUNT : OFF_COUNT + PRIORITY_LEVELS].tolist()


# --------------------------------------------------------------------------------------------
# Start-up self-check
# --------------------------------------------------------------------------------------------


class SelfCheckError(AssertionError):
    """The kernel disagreed with the reference implementation."""


def self_check(kernel: MessageRouterKernel, seed: int = 20261125, steps: int = 3000) -> None:
    """Drives the kernel and the ``heapq`` reference through the same random interleaving of
    single and batch pushes and pops (full and empty queues included) and requires identical
    pops, depths and exports; also checks the ABI layout and all-or-nothing batch rejection."""
    info = kernel.kernel_info()
    layout = dict(info.get("layout", {}))
    if layout != LAYOUT or info.get("levels") != PRIORITY_LEVELS:
        raise SelfCheckError(
            f"kernel block layout {layout} differs from the Python side's {LAYOUT}"
        )
    rng = random.Random(seed)
    capacity = 97
    blocks = (QueueBlock(capacity), QueueBlock(capacity))
    mojo = MojoQueueBackend(kernel, blocks[0])
    ref = HeapQueueBackend(blocks[1])
    free = list(range(capacity))
    rng.shuffle(free)
    out_m = np.empty(capacity, dtype=np.int64)
    out_r = np.empty(capacity, dtype=np.int64)
    clock = 1_000
    for step in range(steps):
        clock += rng.randrange(1, 5_000)
        action = rng.random()
        if action < 0.35 and free:
            slot, prio = free.pop(), rng.randrange(PRIORITY_LEVELS)
            mojo.push(prio, slot, clock)
            ref.push(prio, slot, clock)
        elif action < 0.55 and free:
            n = rng.randrange(1, min(len(free), 40) + 1)
            slots = np.array([free.pop() for _ in range(n)], dtype=np.int64)
            prios = np.array([rng.randrange(PRIORITY_LEVELS) for _ in range(n)], dtype=np.int64)
            mojo.push_batch(prios, slots, clock)
            ref.push_batch(prios, slots, clock)
        elif action < 0.8:
            got, want = mojo.pop(clock), ref.pop(clock)
            if got != want:
                raise SelfCheckError(f"step {step}: pop gave slot {got}, reference {want}")
            if got >= 0:
                free.append(got)
        else:
            max_n = rng.randrange(1, 50)
            n_m = mojo.pop_batch(out_m, max_n, clock)
            n_r = ref.pop_batch(out_r, max_n, clock)
            if n_m != n_r or out_m[:n_m].tolist() != out_r[:n_r].tolist():
                raise SelfCheckError(
                    f"step {step}: pop_batch gave {out_m[:n_m].tolist()}, "
                    f"reference {out_r[:n_r].tolist()}"
                )
            free.extend(out_m[:n_m].tolist())
        if mojo.depths() != ref.depths() or len(mojo) != len(ref):
            raise SelfCheckError(f"step {step}: depths {mojo.depths()} vs {ref.depths()}")
    em, er = mojo.export(), ref.export()
    if em[0].tolist() != er[0].tolist() or em[1].tolist() != er[1].tolist():
        raise SelfCheckError("export order differs from the reference")
    if blocks[0].hist.tolist() != blocks[1].hist.tolist():
        raise SelfCheckError(
            f"latency histogram {blocks[0].hist.tolist()} vs reference {blocks[1].hist.tolist()}"
        )
    # A bad batch (a slot repeated) must be rejected without changing anything.
    before = mojo.export()
    if free:
        slot = free[0]
        try:
            mojo.push_batch(
                np.array([1, 2], dtype=np.int64), np.array([slot, slot], dtype=np.int64), clock
            )
        except Exception:
            pass
        else:
            raise SelfCheckError("a batch repeating a slot was accepted")
        after = mojo.export()
        if before[1].tolist() != after[1].tolist():
            raise SelfCheckError("a rejected batch changed the queue")


register_self_check("message_router", self_check)
