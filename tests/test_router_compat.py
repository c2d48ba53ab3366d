"""The pilot's router API, exercised the way the pilot's callers use it."""

from __future__ import annotations

import pytest

from synapse_mojo.errors import InvalidInputError, QueueFullError, UnknownTractError, UnserializablePayloadError
from synapse_mojo.router.compat import (
    Message,
    MessagePriority,
    MessageRouter,
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
    for i, prio in enumerate([MessagePriority.LOW, MessagePriority.CRITICAL, MessagePriority.NORMAL,
                              MessagePriority.CRITICAL, MessagePriority.LOW, MessagePriority.HIGH]):
        ids.append(router.route_message(TractType.INTERNAL, TractType.EXTERNAL, prio, payload={"n": i}, payload_size=8))
    assert ids == list(range(1, 7))
    got = []
    while (msg := router.get_next_message(TractType.EXTERNAL)) is not None:
        got.append(msg)
    assert [m.id for m in got] == [2, 4, 6, 3, 1, 5]
    assert [m.payload["n"] for m in got] == [1, 3, 5, 2, 0, 4]
    first = got[0]
    assert isinstance(first, Message)
    assert (first.source_tract, first.dest_tract, first.priority) == (TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.CRITICAL)
    assert first.payload_size == 8 and first.timestamp_ms > 1_600_000_000_000 and len(first.ulid) == 26


def test_empty_queue_returns_none(router):
    assert router.get_next_message(TractType.INTERNAL) is None
    assert router.get_next_message(TractType.EXTERNAL) is None


def test_default_priority_and_payload_size(router):
    mid = router.route_message(TractType.EXTERNAL, TractType.INTERNAL)
    msg = router.get_next_message(TractType.INTERNAL)
    assert msg.id == mid and msg.priority == MessagePriority.NORMAL and msg.payload is None and msg.payload_size == 0
    router.route_message(0, 1, payload=b"abcdef")
    assert router.get_next_message(1).payload_size == 6  # 0 given: the real size


def test_stats_counters_and_reset(router):
    for _ in range(3):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=[1])
    router.route_message(TractType.EXTERNAL, TractType.INTERNAL)
    assert router.get_queue_depth(TractType.EXTERNAL) == 3
    assert router.get_queue_depth(TractType.INTERNAL) == 1
    assert router.get_total_queue_depth() == 4
    router.get_next_message(TractType.EXTERNAL)
    stats = router.get_stats()
    assert stats["total_messages"] == 4
    assert stats["messages_to_external"] == 3 and stats["messages_to_internal"] == 1
    assert stats["peak_queue_depth"] == 4
    assert stats["message_loss_count"] == 0
    assert stats["runtime"] == ("python" if router.force_python else "mojo")
    router.reset_stats()
    stats = router.get_stats()
    assert stats["total_messages"] == stats["peak_queue_depth"] == stats["message_loss_count"] == 0
    assert router.get_total_queue_depth() == 3  # resetting counters does not drop messages


def test_a_full_queue_never_counts_a_loss(router_runtime):
    router = MessageRouter(capacity=5)
    for i in range(5):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=i)
    with pytest.raises(QueueFullError, match="nothing was dropped"):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=5)
    stats = router.get_stats()
    assert stats["message_loss_count"] == 0 and stats["rejected_count"] == 1
    assert [router.get_next_message(TractType.EXTERNAL).payload for _ in range(5)] == [0, 1, 2, 3, 4]
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
    with pytest.raises(UnserializablePayloadError):
        router.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload=object())
    assert router.get_total_queue_depth() == 0


def test_singleton_honours_force_python(router_runtime, monkeypatch):
    first = get_message_router()
    assert get_message_router() is first
    first.route_message(TractType.INTERNAL, TractType.EXTERNAL)
    assert first.get_stats()["runtime"] == "mojo"
    reset_message_router()
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    forced = get_message_router()
    assert forced is not first and forced.force_python
    forced.route_message(TractType.INTERNAL, TractType.EXTERNAL)
    assert forced.get_stats()["runtime"] == "python"


def test_the_underlying_router_is_the_new_api(router):
    router.route_message(TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.URGENT, payload="x")
    [core] = router.router.consume("external", 1)
    assert core.priority == 4 and core.payload == "x"
    router.router.ack(core)
