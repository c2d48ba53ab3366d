"""One destination's bounded priority queue, placed on Mojo or Python by the runtime adapter.

The queue holds items (messages) in a slot table (a NumPy object array) and a free-slot stack;
a :class:`~.queues.QueueBackend` orders the slot numbers. Which backend does that is decided by
``Runtime.feature("message_router").run(...)``, so modes (off/on/auto/shadow/canary),
``SYNAPSE_FORCE_PYTHON``, fault injection, fallback and metrics apply as for every feature.

A queue is state, so falling back is more than calling another function:

* **Single home** (modes off/on/auto): the ordering lives in one backend. When a call is
  answered by the other runtime (a fallback after a Mojo exception, ``SYNAPSE_FORCE_PYTHON``,
  an automatic disable) the ordering is moved there first: exported in pop order from the old
  backend and loaded into the new one, O(depth), order preserved exactly. If the kernel cannot
  even export (it is broken), the order is rebuilt from the slot table: priority from each
  item and publish order from the enqueue stamps, and an error is logged.
* **Mirrored** (shadow/canary): both backends hold the ordering and every operation is applied
  to both. Shadow answers from Python and compares Mojo's answer (the adapter records
  mismatches); canary answers from the drawn runtime and replays the operation on the other.
  A mismatch drops the mirror (it is rebuilt from the answering side on the next call) and is
  recorded as a Mojo error, so the adapter's error-rate alert and automatic disable see it.

The adapter's bookkeeping costs ~6-10 us per call: more than a whole ``queue.PriorityQueue``
put+get, and ~10 ns per message of a 1024-message batch (a tenth of the batch path). So
operations run on a *lease*: one call in :data:`LEASE_OPS` (or the first after
:data:`LEASE_NS`) goes through the adapter, and the others reuse its decision (single items
through the kernel's two-argument entry points). A Mojo exception in between is answered at
once by a call through the adapter (which records it and falls back). Consequences: a change of
mode or ``SYNAPSE_FORCE_PYTHON`` reaches a queue within 256 calls or 20 ms; the adapter's call
counts and fault injection are sampled (one call in 256); shadow and canary modes take no
lease (every call is compared).

Not thread-safe by itself: the owner (the in-process router) calls it under its lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from ..runtime.adapter import FeatureRuntime
from .mojo_queue import MojoQueueBackend
from .queues import HeapQueueBackend, QueueBackend, QueueBlock

log = logging.getLogger("synapse_mojo.router")

T = TypeVar("T")

#: Single-item calls between two calls through the runtime adapter.
LEASE_OPS = 256
#: ... or this many nanoseconds, whichever comes first.
LEASE_NS = 20_000_000

PYTHON, MOJO = "python", "mojo"
_MIRRORED = ("shadow", "canary")

_now_ns = time.monotonic_ns


class _Op:
    """One operation: applied to a backend as ``apply(backend, record)``; ``results`` holds
    each runtime's answer within one adapter call."""

    __slots__ = ("apply", "results")

    def __init__(self, apply: Callable[[QueueBackend, bool], Any]) -> None:
        self.apply = apply
        self.results: dict[str, Any] = {}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return a == b


class AdaptiveQueue(Generic[T]):
    """A bounded priority queue of items; see the module docstring.

    ``priority_of`` returns an item's priority (used only to rebuild the order after a broken
    kernel). The caller guarantees room (``free_slots``) before pushing.
    """

    def __init__(
        self,
        name: str,
        capacity: int,
        feature: FeatureRuntime,
        priority_of: Callable[[T], int],
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.feature = feature
        self._priority_of = priority_of
        self.block = QueueBlock(capacity)
        self.items = np.empty(capacity, dtype=object)
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # stack; top = end
        self._top = capacity
        self._cache: list[int] = []
        self._addr = self.block.addr
        self._fast_push: Callable[..., Any] | None = None
        self._fast_pop: Callable[..., Any] | None = None
        self._out = np.empty(capacity, dtype=np.int64)
        self.size = 0
        self._backends: dict[str, QueueBackend] = {PYTHON: HeapQueueBackend(self.block)}
        self._valid = {PYTHON: True, MOJO: False}
        self._home = PYTHON  # the runtime that answered last
        self._used = False
        self._lease_left = 0
        self._lease_until = 0
        self._clock = 0  # last monotonic_ns reading seen (the lease's clock)
        self.migrations = 0
        self.mismatches = 0

    # ------------------------------------------------------------------ free slots

    # Free slots live in a NumPy stack (batches take and return runs of it in one operation)
    # fronted by a small Python list for single-item calls (an int from a list costs ~20 ns,
    # one from a NumPy array ~110 ns).
    _CACHE_LOW = 64
    _CACHE_HIGH = 256

    def _take_one(self) -> int:
        cache = self._cache
        if not cache:
            if self._top == 0:
                raise AssertionError(
                    f"queue {self.name}: no free slot (the caller checks room first)"
                )
            take = min(self._CACHE_LOW, self._top)
            self._top -= take
            cache.extend(self._free[self._top : self._top + take].tolist())
        return cache.pop()

    def _give_one(self, slot: int) -> None:
        self._cache.append(slot)
        if len(self._cache) > self._CACHE_HIGH:
            self._spill()

    def _spill(self) -> None:
        cache = self._cache
        spill = cache[-self._CACHE_LOW :]
        del cache[-self._CACHE_LOW :]
        self._free[self._top : self._top + len(spill)] = spill
        self._top += len(spill)

    def _take_many(self, n: int) -> np.ndarray:
        if self._top + len(self._cache) < n:
            raise AssertionError(f"queue {self.name}: {n} slots wanted, {self.free_slots} free")
        if self._top < n:
            self._free[self._top : self._top + len(self._cache)] = self._cache
            self._top += len(self._cache)
            self._cache.clear()
        self._top -= n
        return self._free[self._top : self._top + n].copy()

    def _give_many(self, slots: np.ndarray) -> None:
        n = len(slots)
        self._free[self._top : self._top + n] = slots
        self._top += n

    # ------------------------------------------------------------------ public operations

    @property
    def runtime(self) -> str:
        """``mojo`` or ``python``: the runtime that answered the last operation, or before
        any, the one the adapter would choose now."""
        if not self._used:
            return MOJO if self.feature.mojo_active() else PYTHON
        return self._home

    @property
    def free_slots(self) -> int:
        return self._top + len(self._cache)

    def push(self, item: T, priority: int) -> None:
        cache = self._cache
        slot = cache.pop() if cache else self._take_one()
        self.items[slot] = item
        try:
            if self._lease_left > 0 and self._clock < self._lease_until:
                self._lease_left -= 1
                fast = self._fast_push
                if fast is not None:
                    try:
                        # The kernel stamps the slot and returns its clock reading.
                        self._clock = fast(self._addr, (slot << 4) | priority)
                    except Exception as exc:
                        self._lease_failed(exc)
                        self._run_push(priority, slot, _now_ns())
                else:
                    now = self._clock = _now_ns()
                    self._backends[PYTHON].push(priority, slot, now)
            else:
                self._run_push(priority, slot, _now_ns())
        except BaseException:
            self.items[slot] = None
            self._give_one(slot)
            raise
        self.size += 1

    def _run_push(self, priority: int, slot: int, now: int) -> None:
        self._run(
            _Op(lambda backend, record: backend.push(priority, slot, now if record else -1)),
            now,
            True,
        )

    def push_batch(self, items: Sequence[T] | np.ndarray, priorities: np.ndarray) -> None:
        n = len(items)
        if n == 0:
            return
        now = _now_ns()
        slots = self._take_many(n)
        objs = items if isinstance(items, np.ndarray) else np.fromiter(items, dtype=object, count=n)
        self.items[slots] = objs
        prios = np.ascontiguousarray(priorities, dtype=np.int64)
        op = _Op(lambda backend, record: backend.push_batch(prios, slots, now if record else -1))
        try:
            self._leased(op, now)
        except BaseException:
            self.items[slots] = None
            self._give_many(slots)
            raise
        self.size += n

    def pop(self) -> T | None:
        if self.size == 0:
            return None
        if self._lease_left > 0 and self._clock < self._lease_until:
            self._lease_left -= 1
            fast = self._fast_pop
            if fast is not None:
                try:
                    slot = fast(self._addr)  # records the latency with the kernel's clock
                except Exception as exc:
                    self._lease_failed(exc)
                    slot = self._run_pop(_now_ns())
            else:
                slot = self._backends[PYTHON].pop(_now_ns())
        else:
            slot = self._run_pop(_now_ns())
        if slot < 0:  # pragma: no cover - size and backend disagree: a kernel bug
            raise AssertionError(f"queue {self.name}: backend empty while size is {self.size}")
        items = self.items
        item = items[slot]
        items[slot] = None
        cache = self._cache
        cache.append(slot)
        if len(cache) > self._CACHE_HIGH:
            self._spill()
        self.size -= 1
        return item

    def _run_pop(self, now: int) -> int:
        return self._run(_Op(lambda backend, record: backend.pop(now if record else -1)), now, True)

    def pop_batch(self, max_n: int) -> list[T]:
        n = min(max_n, self.size)
        if n <= 0:
            return []
        now = _now_ns()
        out = self._out

        def apply(backend: QueueBackend, record: bool) -> np.ndarray:
            got = backend.pop_batch(out, n, now if record else -1)
            return out[:got].copy()

        slots = self._leased(_Op(apply), now)
        items = self.items[slots]
        self.items[slots] = None
        self._give_many(slots)
        self.size -= len(slots)
        return items.tolist()

    def _leased(self, op: _Op, now: int) -> Any:
        """A batch operation: on the leased backend directly while the lease holds, else
        through the adapter (which renews the lease)."""
        self._clock = now
        if self._lease_left > 0 and now < self._lease_until:
            self._lease_left -= 1
            if self._home == PYTHON:
                return op.apply(self._backends[PYTHON], True)
            try:
                return op.apply(self._backends[MOJO], True)
            except Exception as exc:
                self._lease_failed(exc)
        return self._run(op, now, True)

    def _lease_failed(self, exc: Exception) -> None:
        # A kernel failure between two adapter calls: answer it through the adapter, which
        # records it and falls back.
        log.warning(
            "queue %s: Mojo call failed (%s); answering through the adapter", self.name, exc
        )
        self._lease_left = 0
        self._fast_push = self._fast_pop = None

    def depths(self) -> list[int]:
        """Queued items per priority level 0..9 (from the answering backend)."""
        return self._backends[self._home].depths()

    def drain_items(self) -> list[T]:
        """Removes and returns everything, in pop order, without the adapter (used on close)."""
        backend = self._backends[self._home]
        _, slots = backend.export()
        backend.clear()
        for side in self._valid:
            if side != self._home:
                self._valid[side] = False
        items = self.items[slots].tolist()
        self.items[slots] = None
        self._free = np.arange(self.capacity - 1, -1, -1, dtype=np.int64)
        self._top = self.capacity
        self._cache = []
        self.size = 0
        return items

    # ------------------------------------------------------------------ the adapter

    def _run(self, op: _Op, now: int, single: bool) -> Any:
        feature = self.feature
        mirrored = feature.mode.kind in _MIRRORED
        if mirrored:
            self._prepare_mirror()
        outcome = feature.run(
            "queue",
            mojo=lambda kernel, fault: self._apply(MOJO, op, kernel, fault),
            python=lambda: self._apply(PYTHON, op, None, 0),
            same=_same,
        )
        answered = outcome.runtime
        if outcome.error == "shadow mismatch":
            self._drop(MOJO, "shadow mismatch")
        for side in (PYTHON, MOJO):
            if side in op.results or not self._valid[side]:
                continue
            if mirrored:
                self._replay(side, op, answered)
            else:
                self._valid[side] = False
        self._home = answered
        self._used = True
        self._clock = now
        if single and not mirrored:
            self._lease_left = LEASE_OPS
            self._lease_until = now + LEASE_NS
            mojo = self._backends.get(MOJO) if answered == MOJO else None
            if isinstance(mojo, MojoQueueBackend):
                kernel = mojo.kernel
                self._fast_push, self._fast_pop = kernel.push_fast, kernel.pop_fast
            else:
                self._fast_push = self._fast_pop = None
        else:
            self._lease_left = 0
        return outcome.value

    def _apply(self, side: str, op: _Op, kernel: Any, fault: int) -> Any:
        if side in op.results:
            return op.results[side]
        backend = self._backend(side, kernel)
        if not self._valid[side]:
            other = MOJO if side == PYTHON else PYTHON
            self._rebuild(side, other)
            if other in op.results:  # the rebuilt state already includes this operation
                op.results[side] = op.results[other]
                return op.results[side]
        mojo = backend if isinstance(backend, MojoQueueBackend) else None  # the MOJO side
        if mojo is not None:
            mojo.fault = fault
        try:
            result = op.apply(backend, not op.results)
        finally:
            if mojo is not None:
                mojo.fault = 0
        op.results[side] = result
        return result

    def _backend(self, side: str, kernel: Any = None) -> QueueBackend:
        backend = self._backends.get(side)
        if backend is None:
            if kernel is None:
                kernel = self.feature.kernel()
                if kernel is None:
                    raise RuntimeError("the message_router kernel is not available")
            backend = MojoQueueBackend(kernel, self.block)
            self._backends[MOJO] = backend
        return backend

    def _rebuild(self, side: str, source: str) -> None:
        """Makes ``side`` hold the same order as ``source`` (export + load)."""
        target = self._backends[side]
        try:
            if not self._valid[source]:
                raise RuntimeError(f"no valid {source} state")
            priorities, slots = self._backends[source].export()
        except Exception as exc:
            log.error(
                "queue %s: could not export the %s backend (%s); rebuilding the order from the "
                "slot table (priority of each item, publish order from enqueue stamps)",
                self.name,
                source,
                exc,
            )
            priorities, slots = self._order_from_slot_table()
        if side == MOJO:
            self.block.reset_ordering()  # also repairs a block a broken kernel may have left
        target.load(priorities, slots)
        self._valid[side] = True
        self.migrations += 1

    def _order_from_slot_table(self) -> tuple[np.ndarray, np.ndarray]:
        free = np.zeros(self.capacity, dtype=bool)
        free[self._free[: self._top]] = True
        slots = np.flatnonzero(~free)
        prios = np.array([self._priority_of(self.items[s]) for s in slots], dtype=np.int64)
        order = np.lexsort((self.block.enq[slots], -prios))
        return prios[order], slots[order].astype(np.int64)

    def _prepare_mirror(self) -> None:
        """In shadow/canary both backends hold the order; build the missing one."""
        for side, other in ((MOJO, PYTHON), (PYTHON, MOJO)):
            if self._valid[side] or not self._valid[other]:
                continue
            try:
                self._backend(side)
                self._rebuild(side, other)
            except Exception as exc:
                log.warning("queue %s: cannot mirror on %s: %s", self.name, side, exc)

    def _replay(self, side: str, op: _Op, answered: str) -> None:
        try:
            result = op.apply(self._backends[side], False)
        except Exception as exc:
            self._drop(side, f"replay failed: {exc}")
            return
        if answered in op.results and not _same(result, op.results[answered]):
            self._drop(side, "canary mirror disagreed")

    def _drop(self, side: str, reason: str) -> None:
        if self._valid[side]:
            self.mismatches += 1
            log.warning(
                "queue %s: %s backend dropped (%s); it is rebuilt when next needed",
                self.name,
                side,
                reason,
            )
            if side == MOJO:
                self.feature.metrics.record_error("mismatch")
        self._valid[side] = False
