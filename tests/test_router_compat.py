"""The pilot's router API, exercised the way the pilot's tests and callers use it."""

from __future__ import annotations

import dataclasses

import pytest

from synapse_mojo.errors import InvalidInputError, QueueFullError, UnknownTractError
from synapse_mojo.router.compat import (
    Message,
    MessagePriority,
    MessageRouter,
    MessageStats,
    TractType,
    get_message_router,
    reset_message_router,
)


@pytest.fixture(autouse=True)
def _fresh_singleton():
    reset_message_router()
    yield
    reset_message_router()


@pytest.fixture(params=[False, True], ids=["mojo", "force_python"])
def router(request, router_runtime):
    r = MessageRouter(capacity=100, force_python=request.param)
    yield r
    r.close()


def test_enum_values_match_the_pilot():
    assert (TractType.INTERNAL, TractType.EXTERNAL) == (0, 1)
    assert [p.value for p in MessagePriority] == [1, 2, 3, 4, 5]
    assert MessagePriority.LOW < MessagePriority.NORMAL < MessagePriority.CRITICAL


def test_priority_order_and_fifo_within_a_priority(router):
    ids = []
    for i, prio in enumerate(
        [
            MessagePriority.LOW,
            MessagePriority.CRITICAL,
            MessagePriority.NORMAL,
            MessagePriority.CRITICAL,
            MessagePriority.LOW,
            MessagePriority.HIGH,
        ]
    ):
        ids.append(
            router.route_message(
                TractType.INTERNAL, TractType.EXTERNAL, prio, payload={"n": i}, payload_size=8
            )
        )
    assert ids == list(range(6))  # the pilot's ids start at 0
    got = []
    while (msg := router.get_next_message(TractType.EXTERNAL)) is not None:
        got.append(msg)
    assert [m.id for m in got] == [1, 3, 5, 2, 0, 4]
    assert [m.payload["n"] for m in got] == [1, 3, 5, 2, 0, 4]
    first = got[0]
    assert isinstance(first, Message)
    assert (first.source_tract, first.dest_tract, first.priority) == (
        TractType.INTERNAL,
        TractType.EXTERNAL,
        MessagePriority.CRITICAL,
    )
    assert (
        first.payload_size == 8 and first.timestamp_ms > 1_600_000_000_000 and len(first.ulid) == 26
    )


def test_empty_queue_returns_none(router):
    assert router.get_next_message(TractType.INTERNAL) is None
    assert router.get_next_message(TractType.EXTERNAL) is None


def test_default_priority_and_payload_size(router):
    mid = router.route_message(TractType.EXTERNAL, TractType.INTERNAL)
    msg = router.get_next_message(TractType.INTERNAL)
    assert (
        msg.id == mid
        and msg.priority == MessagePriority.NORMAL
        and msg.payload is None
        and msg.payload_size == 0
    )
    router.route_message(0, 1, payload=b"abcdef")
    assert router.get_next_message(1).payload_size == 0  # what the caller said, as in the pilot


def test_stats_counters_and_reset(router):
    for _ in range(3):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=[1])
    router.route_message(TractType.EXTERNAL, TractType.INTERNAL)
    assert router.get_queue_depth(TractType.EXTERNAL) == 3
    assert router.get_queue_depth(TractType.INTERNAL) == 1
    assert router.get_total_queue_depth() == 4
    router.get_next_message(TractType.EXTERNAL)
    stats = router.get_stats()
    assert isinstance(stats, MessageStats)  # attributes, as the pilot's callers read them
    assert stats.total_messages == 4
    assert stats.messages_to_external == 3 and stats.messages_to_internal == 1
    assert stats.peak_queue_depth == 4
    assert stats.message_loss_count == 0
    assert stats.runtime == ("python" if router.force_python else "mojo")
    assert router.using_mojo == (not router.force_python)
    assert stats["total_messages"] == 4  # dict-style reads still work
    router.reset_stats()
    stats = router.get_stats()
    assert stats.total_messages == stats.peak_queue_depth == stats.message_loss_count == 0
    assert router.get_total_queue_depth() == 3  # resetting counters does not drop messages


def test_a_full_queue_returns_minus_one_and_counts_a_loss(router_runtime):
    router = MessageRouter(capacity=2)
    assert [
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=i) for i in range(3)
    ] == [0, 1, -1]
    stats = router.get_stats()
    assert stats.message_loss_count == 1 and stats.total_messages == 2 and stats.rejected_count == 0
    assert [router.get_next_message(TractType.EXTERNAL).payload for _ in range(2)] == [0, 1]
    assert (
        router.get_next_message(TractType.EXTERNAL) is None
    )  # the dropped one is gone, as in the pilot
    router.close()


def test_on_full_raise_never_counts_a_loss(router_runtime):
    router = MessageRouter(capacity=5, on_full="raise")
    for i in range(5):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=i)
    with pytest.raises(QueueFullError, match="nothing was dropped"):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=5)
    stats = router.get_stats()
    assert stats.message_loss_count == 0 and stats.rejected_count == 1
    assert [router.get_next_message(TractType.EXTERNAL).payload for _ in range(5)] == [
        0,
        1,
        2,
        3,
        4,
    ]
    router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=5)  # room again
    assert router.get_next_message(TractType.EXTERNAL).payload == 5
    router.close()


def test_bad_arguments(router):
    with pytest.raises(UnknownTractError):
        router.route_message(2, TractType.EXTERNAL)
    with pytest.raises(InvalidInputError):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, priority=-1)
    with pytest.raises(InvalidInputError):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload_size=-5)
    with pytest.raises(InvalidInputError):
        MessageRouter(on_full="block")
    assert router.get_total_queue_depth() == 0


@dataclasses.dataclass
class Task:  # the pilot's orchestrator routes dataclasses and live objects in process
    name: str
    owner: object


def test_any_python_object_is_handed_over_in_process(router):
    owner = object()
    task = Task("design", owner)
    mid = router.route_message(
        TractType.EXTERNAL,
        TractType.INTERNAL,
        MessagePriority.HIGH,
        payload={"task": task, "orchestrator": owner},
        payload_size=len(str(task)),
    )
    plain = router.route_message(
        TractType.EXTERNAL, TractType.INTERNAL, MessagePriority.LOW, payload={"n": 1}
    )
    got = router.get_next_message(TractType.INTERNAL)
    assert got.id == mid and got.payload["task"] is task and got.payload["orchestrator"] is owner
    assert router.get_next_message(TractType.INTERNAL).id == plain


def test_the_pilots_callers_branch_on_the_id(router_runtime):
    # lib/orchestration.py: `if msg_id >= 0: ... else: fall back`;
    # get_message_router(capacity=..., force_python=...)
    reset_message_router()
    r = get_message_router(capacity=1, force_python=True)
    assert r.force_python and not r.using_mojo and r.capacity == 1
    assert (
        get_message_router(capacity=99) is r
    )  # a singleton: later arguments are ignored, as in the pilot
    assert (
        r.route_message(TractType.EXTERNAL, TractType.INTERNAL, MessagePriority.NORMAL, {"a": 1})
        == 0
    )
    assert (
        r.route_message(TractType.EXTERNAL, TractType.INTERNAL, MessagePriority.NORMAL, {"a": 2})
        < 0
    )


def test_singleton_honours_force_python(router_runtime, monkeypatch):
    first = get_message_router()
    assert get_message_router() is first
    first.route_message(TractType.INTERNAL, TractType.EXTERNAL)
    assert first.get_stats().runtime == "mojo" and first.using_mojo
    reset_message_router()
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    forced = get_message_router()
    assert forced is not first and forced.force_python
    forced.route_message(TractType.INTERNAL, TractType.EXTERNAL)
    assert forced.get_stats().runtime == "python" and not forced.using_mojo


def test_the_underlying_router_is_the_new_api(router):
    router.route_message(
        TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.URGENT, payload="x"
    )
    [core] = router.router.consume("external", 1)
    assert core.priority == 4 and isinstance(core.payload, Message) and core.payload.payload == "x"
    router.router.ack(core)
