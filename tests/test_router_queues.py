"""The Mojo queue kernel against the heapq reference, and the adaptive queue behind the runtime
adapter (modes, fallback, migration, fault injection), all with the real compiled kernel."""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_mojo.errors import InvalidInputError
from synapse_mojo.router.adaptive_queue import LEASE_OPS, AdaptiveQueue
from synapse_mojo.router.mojo_queue import MojoQueueBackend, SelfCheckError, self_check
from synapse_mojo.router.queues import HeapQueueBackend, QueueBlock

LEVELS = 10


class Model:
    """The order the router promises: (-priority, publish sequence)."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, object]] = []
        self.seq = itertools.count()

    def push(self, priority: int, item: object) -> None:
        heapq.heappush(self.heap, (-priority, next(self.seq), item))

    def pop(self) -> object | None:
        return heapq.heappop(self.heap)[2] if self.heap else None

    def __len__(self) -> int:
        return len(self.heap)


# Operations: ("push", priority) | ("push_batch", [priorities]) | ("pop",) | ("pop_batch", n)
op_strategy = st.one_of(
    st.tuples(st.just("push"), st.integers(0, LEVELS - 1)),
    st.tuples(st.just("push_batch"), st.lists(st.integers(0, LEVELS - 1), min_size=0, max_size=40)),
    st.tuples(st.just("pop")),
    st.tuples(st.just("pop_batch"), st.integers(1, 50)),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op_strategy, max_size=120), capacity=st.integers(1, 64))
def test_kernel_and_heapq_give_the_same_order(router_kernel, ops, capacity):
    """Any interleaving of single/batch pushes and pops: same slots in the same order."""
    mojo = MojoQueueBackend(router_kernel, QueueBlock(capacity))
    ref = HeapQueueBackend(QueueBlock(capacity))
    free = list(range(capacity))
    out_m = np.empty(capacity, dtype=np.int64)
    out_r = np.empty(capacity, dtype=np.int64)
    clock = 0
    for op in ops:
        clock += 1000
        if op[0] == "push":
            if not free:
                continue
            slot = free.pop()
            mojo.push(op[1], slot, clock)
            ref.push(op[1], slot, clock)
        elif op[0] == "push_batch":
            prios = op[1][: len(free)]
            slots = np.array([free.pop() for _ in prios], dtype=np.int64)
            p = np.array(prios, dtype=np.int64)
            mojo.push_batch(p, slots, clock)
            ref.push_batch(p, slots, clock)
        elif op[0] == "pop":
            got, want = mojo.pop(clock), ref.pop(clock)
            assert got == want
            if got >= 0:
                free.append(got)
        else:
            max_n = min(op[1], capacity)
            n_m = mojo.pop_batch(out_m, max_n, clock)
            n_r = ref.pop_batch(out_r, max_n, clock)
            assert out_m[:n_m].tolist() == out_r[:n_r].tolist()
            free.extend(out_m[:n_m].tolist())
        assert mojo.depths() == ref.depths()
        assert len(mojo) == len(ref) == capacity - len(free)
    assert mojo.export()[1].tolist() == ref.export()[1].tolist()
    assert mojo.block.hist.tolist() == ref.block.hist.tolist()


def test_self_check_passes_and_catches_a_wrong_layout(router_kernel):
    self_check(router_kernel)

    class WrongLayout:
        def __getattr__(self, name):
            return getattr(router_kernel, name)

        def kernel_info(self):
            info = router_kernel.kernel_info()
            info["layout"] = dict(info["layout"], next=999)
            return info

    with pytest.raises(SelfCheckError, match="layout"):
        self_check(WrongLayout())


def test_kernel_rejects_bad_arguments_without_crashing(router_kernel):
    block = QueueBlock(8)
    q = MojoQueueBackend(router_kernel, block)
    with pytest.raises(Exception, match="slot 8 outside"):
        q.push(1, 8, 0)
    with pytest.raises(Exception, match="priority 10 outside"):
        q.push(10, 0, 0)
    q.push(1, 3, 0)
    with pytest.raises(Exception, match="already queued"):
        q.push(2, 3, 0)
    with pytest.raises(Exception, match="repeated"):
        q.push_batch(np.array([1, 1]), np.array([4, 4]), 0)
    assert q.export()[1].tolist() == [3]  # the bad batch changed nothing
    with pytest.raises(Exception, match="does not fit"):
        q.push_batch(np.zeros(8, dtype=np.int64), np.arange(8, dtype=np.int64), 0)
    garbage = np.zeros(64, dtype=np.int64)
    with pytest.raises(Exception, match="bad magic"):
        router_kernel.pop(garbage.ctypes.data, 0, 0)
    with pytest.raises(Exception, match="injected fault"):
        router_kernel.pop(block.addr, 0, 1)
    assert len(q) == 1  # the injected fault raised before changing anything


def test_heap_backend_rejects_a_batch_of_mismatched_lengths():
    q = HeapQueueBackend(QueueBlock(8))
    with pytest.raises(InvalidInputError, match="lengths differ"):
        q.push_batch(np.array([1, 2]), np.array([4]), 0)
    assert len(q) == 0


def test_fault_wrong_serves_lowest_priority_first_without_losing_anything(router_kernel):
    q = MojoQueueBackend(router_kernel, QueueBlock(8))
    for slot, prio in enumerate([5, 1, 3]):
        q.push(prio, slot, 0)
    q.fault = 2
    assert [q.pop(0), q.pop(0), q.pop(0)] == [1, 2, 0]  # priorities 1, 3, 5
    assert q.pop(0) == -1


# --------------------------------------------------------------------------------------------
# AdaptiveQueue through the runtime adapter
# --------------------------------------------------------------------------------------------


def _drive(
    queue: AdaptiveQueue, model: Model, rng: np.random.Generator, steps: int, between=None
) -> None:
    """Random single and batch operations, checked against the model after every step."""
    counter = itertools.count(len(model) * 1000 + 10_000_000)
    for step in range(steps):
        if between is not None:
            between(step)
        room = queue.free_slots
        action = rng.random()
        if action < 0.3 and room:
            item, prio = next(counter), int(rng.integers(0, LEVELS))
            queue.push(item, prio)
            model.push(prio, item)
        elif action < 0.5 and room:
            n = int(rng.integers(1, min(room, 30) + 1))
            items = [next(counter) for _ in range(n)]
            prios = rng.integers(0, LEVELS, n)
            queue.push_batch(items, prios)
            for it, p in zip(items, prios.tolist(), strict=True):
                model.push(p, it)
        elif action < 0.8:
            assert queue.pop() == model.pop()
        else:
            n = int(rng.integers(1, 40))
            got = queue.pop_batch(n)
            want = [model.pop() for _ in range(min(n, len(model) + len(got)))]
            want = [w for w in want if w is not None]
            assert got == want
        assert queue.size == len(model)


@pytest.mark.parametrize("mode", ["auto", "on", "off", "shadow", "canary:0.5"])
def test_adaptive_queue_keeps_the_order_in_every_mode(make_runtime, router_kernel, mode):
    rt = make_runtime(SYNAPSE_FEATURE_MESSAGE_ROUTER=mode)
    feature = rt.feature("message_router")
    q = AdaptiveQueue("t", 200, feature, priority_of=lambda item: 0)
    _drive(q, Model(), np.random.default_rng(7), 3000)
    expected = {"auto": "mojo", "on": "mojo", "off": "python", "shadow": "python"}
    if mode in expected:
        assert q.runtime == expected[mode]
    if mode == "shadow":
        assert feature.metrics.shadow["mismatch"] == 0 and feature.metrics.shadow["match"] > 0
    assert q.mismatches == 0


def test_force_python_mid_stream_moves_the_queue_and_keeps_the_order(
    make_runtime, router_kernel, monkeypatch
):
    rt = make_runtime()
    q = AdaptiveQueue("t", 300, rt.feature("message_router"), priority_of=lambda item: 0)
    model = Model()
    rng = np.random.default_rng(11)
    _drive(q, model, rng, 500)
    assert q.runtime == "mojo"
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    _drive(q, model, rng, LEASE_OPS * 3)
    assert q.runtime == "python"
    monkeypatch.delenv("SYNAPSE_FORCE_PYTHON")
    _drive(q, model, rng, LEASE_OPS * 3)
    assert q.runtime == "mojo"
    assert q.migrations >= 2


def test_injected_kernel_failures_fall_back_without_loss_or_reordering(make_runtime, router_kernel):
    rt = make_runtime(SYNAPSE_FAULT_MESSAGE_ROUTER="raise:0.3", SYNAPSE_ALERT_MIN_CALLS="1000000")
    feature = rt.feature("message_router")
    q = AdaptiveQueue("t", 300, feature, priority_of=lambda item: 0)
    _drive(q, Model(), np.random.default_rng(3), 3000)
    assert feature.metrics.errors.get("exception", 0) > 0
    assert feature.metrics.fallbacks


def test_broken_kernel_auto_disables_and_everything_keeps_flowing(make_runtime, router_kernel):
    # The adapter sees one queue call per lease (see adaptive_queue): a small min_calls.
    rt = make_runtime(SYNAPSE_FAULT_MESSAGE_ROUTER="raise", SYNAPSE_ALERT_MIN_CALLS="4")
    feature = rt.feature("message_router")
    q = AdaptiveQueue("t", 300, feature, priority_of=lambda item: 0)
    _drive(q, Model(), np.random.default_rng(5), 2000)
    assert feature.disabled_reason is not None
    assert q.runtime == "python"


def test_wrong_results_are_caught_in_shadow_mode(make_runtime, router_kernel):
    rt = make_runtime(SYNAPSE_FEATURE_MESSAGE_ROUTER="shadow", SYNAPSE_FAULT_MESSAGE_ROUTER="wrong")
    feature = rt.feature("message_router")
    q = AdaptiveQueue("t", 100, feature, priority_of=lambda item: 0)
    model = Model()
    for i, p in enumerate([1, 5, 3, 2, 4]):
        q.push(i, p)
        model.push(p, i)
    got = q.pop_batch(5)
    assert got == [model.pop() for _ in range(5)]  # shadow answers from Python
    assert feature.metrics.shadow["mismatch"] >= 1


def test_rebuild_from_the_slot_table_when_the_kernel_cannot_export(make_runtime, router_kernel):
    rt = make_runtime()
    items = {}

    def priority_of(item):
        return items[item]

    q = AdaptiveQueue("t", 50, rt.feature("message_router"), priority_of=priority_of)
    model = Model()
    for i, p in enumerate([2, 7, 2, 9, 0, 7]):
        items[i] = p
        q.push_batch([i], np.array([p]))
        model.push(p, i)
    assert q.runtime == "mojo"
    q._backends["mojo"].export = lambda: (_ for _ in ()).throw(RuntimeError("broken kernel"))
    rt.set_mode("message_router", "off")
    assert q.pop_batch(10) == [model.pop() for _ in range(6)]
