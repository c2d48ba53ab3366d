"""The pilot's ReactiveCorpusCallosum over the real router (in-process and Redis Streams),
exercised the way the pilot's tests and its orchestrator use it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import time

import msgpack
import pytest

from synapse_mojo import set_runtime
from synapse_mojo.compat import (
    EVENTS_STREAM,
    BackpressureConfig,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ConsciousnessMetrics,
    EmergenceEvent,
    EventLogEntry,
    MessagePriority,
    MessageStats,
    ReactiveCorpusCallosum,
    TractType,
    get_reactive_message_router,
)
from synapse_mojo.compat.event_store import decode_event
from synapse_mojo.errors import RouterClosedError, TransportError


@pytest.fixture(autouse=True)
def _runtime(make_runtime, search_kernel):
    set_runtime(make_runtime())


@pytest.fixture(params=["memory", "redis"])
def url(request):
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_server").url


async def _take(iterator, n, timeout=10.0):
    out = []

    async def run():
        async for message in iterator:
            out.append(message)
            if len(out) == n:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout)
    return out


def _route(cc, src, dst, payload=None, priority=MessagePriority.NORMAL, size=0):
    return cc.route_message(
        source_tract=src, dest_tract=dst, priority=priority, payload=payload, payload_size=size
    )


def test_pilot_constructor_keywords_ids_and_stats(url):
    async def main():
        cc = ReactiveCorpusCallosum(
            backpressure_config=BackpressureConfig(
                buffer_size=10000, batch_timeout_ms=1.0, min_batch_size=1, max_batch_size=100
            ),
            circuit_config=CircuitBreakerConfig(
                failure_threshold=10, recovery_timeout_s=5.0, success_threshold=3
            ),
            enable_pattern_synthesis=True,
            enable_event_sourcing=False,
            router_url=url,
        )
        await cc.start()
        try:
            ids = [
                await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, f"m{i}", size=12)
                for i in range(3)
            ]
            ids.append(await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, "out"))
            assert ids == [0, 1, 2, 3]  # the pilot's ids start at 0
            assert isinstance(cc.stats, MessageStats) and cc.get_stats() is cc.stats
            assert (
                cc.stats.total_messages,
                cc.stats.messages_to_internal,
                cc.stats.messages_to_external,
            ) == (4, 3, 1)
            assert cc.internal_circuit.state == CircuitState.CLOSED == cc.external_circuit.state
            assert await cc.get_consciousness_metrics() is None  # event sourcing off
            cc.reset_stats()
            assert cc.stats.total_messages == 0
        finally:
            await cc.stop()

    asyncio.run(main())


def test_backlog_is_delivered_in_arrival_order_to_a_new_subscriber(url):
    async def main():
        async with ReactiveCorpusCallosum(enable_event_sourcing=False, router_url=url) as cc:
            plan = [
                MessagePriority.LOW,
                MessagePriority.CRITICAL,
                MessagePriority.NORMAL,
                MessagePriority.URGENT,
            ]
            for i, p in enumerate(plan):
                await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, {"n": i}, priority=p)
            got = await _take(cc.subscribe("test_agent", TractType.INTERNAL), 4)
            assert [m.payload["n"] for m in got] == [0, 1, 2, 3]  # FIFO, as the pilot's stream
            assert [m.priority for m in got] == plan and [m.id for m in got] == [0, 1, 2, 3]
            assert (
                got[0].source_tract == TractType.EXTERNAL
                and got[0].dest_tract == TractType.INTERNAL
            )

    asyncio.run(main())


def test_priority_ordering_is_opt_in():
    async def main():
        async with ReactiveCorpusCallosum(enable_event_sourcing=False, ordering="priority") as cc:
            for i, p in enumerate(
                [MessagePriority.LOW, MessagePriority.CRITICAL, MessagePriority.NORMAL]
            ):
                await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, i, priority=p)
            got = await _take(cc.subscribe("p", TractType.EXTERNAL), 3)
            assert [m.payload for m in got] == [1, 2, 0]

    asyncio.run(main())


def test_every_subscriber_gets_every_message_and_slow_ones_lose_nothing(url):
    async def main():
        async with ReactiveCorpusCallosum(enable_event_sourcing=False, router_url=url) as cc:
            fast = cc.subscribe("fast", TractType.INTERNAL)
            slow = cc.subscribe("slow", TractType.INTERNAL)
            fast_task = asyncio.create_task(_take(fast, 150, timeout=30))

            async def slow_reader():
                out = []
                async for m in slow:
                    out.append(m)
                    await asyncio.sleep(0.001)
                    if len(out) == 150:
                        return out

            slow_task = asyncio.create_task(asyncio.wait_for(slow_reader(), 30))
            await asyncio.sleep(0.2)  # both subscriptions registered
            for i in range(150):  # more than a subscriber's buffer (100)
                assert await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, i) == i
            fast_got, slow_got = await fast_task, await slow_task
            assert [m.payload for m in fast_got] == list(range(150))
            assert [m.payload for m in slow_got] == list(range(150))

    asyncio.run(main())


def test_full_buffer_returns_minus_one_and_counts_a_loss():
    async def main():
        async with ReactiveCorpusCallosum(
            BackpressureConfig(buffer_size=3), enable_event_sourcing=False
        ) as cc:
            ids = [await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, i) for i in range(4)]
            assert (
                ids == [0, 1, 2, -1]
                and cc.stats.message_loss_count == 1
                and cc.stats.total_messages == 3
            )
            assert await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, "other tract") == 4
            for _ in range(
                20
            ):  # a full buffer is not a failure of the tract: the circuit stays closed
                assert await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, "more") == -1
            assert (
                cc.internal_circuit.state == CircuitState.CLOSED
                and cc.stats.message_loss_count == 21
            )
            got = await _take(cc.subscribe("s", TractType.INTERNAL), 3)
            assert [m.payload for m in got] == [0, 1, 2]

    asyncio.run(main())


def test_on_full_wait_loses_nothing():
    async def main():
        async with ReactiveCorpusCallosum(
            BackpressureConfig(buffer_size=2), enable_event_sourcing=False, on_full="wait"
        ) as cc:
            reader = asyncio.create_task(
                _take(cc.subscribe("s", TractType.INTERNAL), 20, timeout=20)
            )
            await asyncio.sleep(0.05)
            ids = [await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, i) for i in range(20)]
            assert ids == list(range(20)) and cc.stats.message_loss_count == 0
            assert [m.payload for m in await reader] == list(range(20))

    asyncio.run(main())


@dataclasses.dataclass
class AgentTask:
    id: str
    action: str


def test_live_python_objects_travel_in_process():
    # lib/orchestration.py routes {'task': AgentTask, 'action': ..., 'orchestrator': self}
    async def main():
        owner = object()
        task = AgentTask("t-1", "design_architecture")
        async with ReactiveCorpusCallosum(enable_event_sourcing=True) as cc:
            mid = await _route(
                cc,
                TractType.EXTERNAL,
                TractType.INTERNAL,
                {"task": task, "action": task.action, "orchestrator": owner},
                MessagePriority.HIGH,
                30,
            )
            assert mid == 0
            [got] = await _take(cc.subscribe("architect", TractType.INTERNAL), 1)
            assert got.payload["task"] is task and got.payload["orchestrator"] is owner
            [entry] = await cc.replay_history()
            assert entry.payload_type == "dict" and entry.message_id == 0

    asyncio.run(main())


def test_circuit_breaker_opens_recovers_and_drops_while_open():
    async def main():
        cc = ReactiveCorpusCallosum(
            circuit_config=CircuitBreakerConfig(
                failure_threshold=2, recovery_timeout_s=0.2, success_threshold=1
            ),
            enable_event_sourcing=False,
        )
        await cc.start()
        try:
            circuit = cc.internal_circuit
            for _ in range(2):  # two transport failures open it
                with pytest.raises(RuntimeError):
                    async with circuit:
                        raise RuntimeError("transport down")
            assert circuit.state == CircuitState.OPEN
            with pytest.raises(CircuitOpenError):
                async with circuit:
                    pass
            assert await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, "x") == -1
            assert cc.stats.message_loss_count == 1
            assert await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, "other tract") >= 0
            await asyncio.sleep(0.25)
            assert (
                await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, "y") >= 0
            )  # half-open, then closed
            assert circuit.state == CircuitState.CLOSED
        finally:
            await cc.stop()

    asyncio.run(main())


def test_balanced_dialogue_is_an_emergence_event_and_a_metric():
    async def main():
        async with ReactiveCorpusCallosum(
            enable_pattern_synthesis=True, enable_event_sourcing=True
        ) as cc:
            for i in range(60):
                await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, f"int_{i}")
                await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, f"ext_{i}")
            events = cc.get_emergence_events()
            assert events and isinstance(events[0], EmergenceEvent)
            assert events[0].pattern_type == "balanced_dialogue" and events[0].confidence >= 0.7
            metrics = await cc.get_consciousness_metrics()
            assert isinstance(metrics, ConsciousnessMetrics)
            assert (
                metrics.total_messages,
                metrics.internal_to_external,
                metrics.external_to_internal,
            ) == (120, 60, 60)
            assert metrics.dialogue_balance_ratio >= 0.9 and metrics.emergence_score > 0.5
        async with ReactiveCorpusCallosum(enable_event_sourcing=False) as one_way:
            for i in range(150):
                await _route(one_way, TractType.INTERNAL, TractType.EXTERNAL, i)
            assert one_way.get_emergence_events() == []

    asyncio.run(main())


def test_replay_history_is_an_async_iterator_over_the_window(url):
    async def main():
        redis_url = url if url.startswith("redis") else None
        async with ReactiveCorpusCallosum(
            enable_event_sourcing=True, redis_url=redis_url, router_url=url
        ) as cc:
            await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, "before")
            await asyncio.sleep(0.01)
            t1 = int(time.time() * 1000)
            await asyncio.sleep(0.002)
            inside = [
                await _route(
                    cc, TractType.INTERNAL, TractType.EXTERNAL, {"k": 1}, MessagePriority.HIGH, 3
                ),
                await _route(
                    cc, TractType.EXTERNAL, TractType.INTERNAL, b"raw-bytes", MessagePriority.LOW
                ),
                await _route(cc, TractType.INTERNAL, TractType.INTERNAL, [1, "two", None]),
            ]
            await asyncio.sleep(0.002)
            t2 = int(time.time() * 1000)
            await asyncio.sleep(0.01)
            await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, "after")
            replay = [
                entry async for entry in cc.replay_history(from_timestamp_ms=t1, to_timestamp_ms=t2)
            ]
            assert all(isinstance(e, EventLogEntry) for e in replay)
            assert [e.message_id for e in replay] == inside
            assert [e.payload for e in replay] == [{"k": 1}, b"raw-bytes", [1, "two", None]]
            assert (
                replay[0].priority == 3
                and replay[0].payload_size == 3
                and replay[0].payload_type == "dict"
            )
            assert (replay[1].source_tract, replay[1].dest_tract) == ("EXTERNAL", "INTERNAL")
            assert all(t1 <= e.timestamp_ms <= t2 for e in replay)
            assert len([e async for e in cc.replay_history(from_timestamp_ms=t1)]) == 4
            assert len(await cc.replay_history()) == 5  # awaiting gives the list

    asyncio.run(main())


def test_we_write_the_pilots_event_format(redis_server):
    """What the pilot's reader does: decode_responses=True, then int()/names on every field."""
    import redis

    async def main():
        async with ReactiveCorpusCallosum(
            enable_event_sourcing=True, redis_url=redis_server.url
        ) as cc:
            await _route(
                cc, TractType.INTERNAL, TractType.EXTERNAL, {"a": 1}, MessagePriority.URGENT, 7
            )
            await _route(
                cc,
                TractType.EXTERNAL,
                TractType.INTERNAL,
                AgentTask("t", "a"),
                MessagePriority.LOW,
                3,
            )

    asyncio.run(main())
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    entries = client.xrange(EVENTS_STREAM)
    assert len(entries) == 2
    first, second = entries[0][1], entries[1][1]
    assert (first["message_id"], first["source_tract"], first["dest_tract"], first["priority"]) == (
        "0",
        "INTERNAL",
        "EXTERNAL",
        "4",
    )
    assert (first["payload_size"], first["payload_type"]) == ("7", "dict") and int(
        first["timestamp_ms"]
    ) > 1_600_000_000_000
    assert msgpack.unpackb(base64.b64decode(first["payload_b64"])) == {"a": 1}
    assert (
        second["payload_type"] == "AgentTask" and "payload_b64" not in second
    )  # logged by type only
    metrics = client.hgetall(f"{EVENTS_STREAM}:metrics")
    assert metrics["total_messages"] == "2" and metrics["internal_to_external"] == "1"


def test_we_read_what_the_pilot_wrote(redis_server):
    """Entries and metrics written as the pilot's RedisEventStore writes them."""
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    now = int(time.time() * 1000)
    for i, (src, dst) in enumerate([("INTERNAL", "EXTERNAL"), ("EXTERNAL", "INTERNAL")]):
        client.xadd(
            EVENTS_STREAM,
            {
                "message_id": str(i),
                "source_tract": src,
                "dest_tract": dst,
                "priority": "5",
                "timestamp_ms": str(now + i),
                "payload_size": "10",
                "payload_type": "str",
            },
            maxlen=100000,
            approximate=True,
        )
    client.hset(
        f"{EVENTS_STREAM}:metrics",
        mapping={
            "total_messages": 2,
            "internal_to_external": 1,
            "external_to_internal": 1,
            "balanced_dialogue_events": 1,
            "emergence_score": 0.0,
            "last_emergence_timestamp": now,
            "dialogue_balance_ratio": 1.0,
        },
    )

    async def main():
        async with ReactiveCorpusCallosum(
            enable_event_sourcing=True, redis_url=redis_server.url
        ) as cc:
            replay = [e async for e in cc.replay_history(from_timestamp_ms=now)]
            assert [
                (e.message_id, e.source_tract, e.dest_tract, e.priority, e.payload) for e in replay
            ] == [(0, "INTERNAL", "EXTERNAL", 5, None), (1, "EXTERNAL", "INTERNAL", 5, None)]
            metrics = await cc.get_consciousness_metrics()
            assert metrics.total_messages == 2 and metrics.last_emergence_timestamp == now
            await _route(
                cc, TractType.INTERNAL, TractType.EXTERNAL, "ours"
            )  # counts on from the pilot's numbers
            assert (await cc.get_consciousness_metrics()).total_messages == 3
            assert len(await cc.replay_history()) == 3

    asyncio.run(main())
    # and the pilot's parser (int() of every numeric field, tract names) reads our entry
    event_id, data = client.xrange(EVENTS_STREAM)[-1]
    assert {k: data[k] for k in ("source_tract", "dest_tract")} == {
        "source_tract": "INTERNAL",
        "dest_tract": "EXTERNAL",
    }
    assert [int(data[k]) for k in ("message_id", "priority", "timestamp_ms", "payload_size")][
        :2
    ] == [0, 2]
    assert decode_event(event_id, data).payload == "ours"


def test_an_unreachable_event_log_is_kept_in_memory_unless_required(caplog):
    # lib/orchestration.py passes redis_url="redis://localhost:6379/0" whether or not one runs
    async def main():
        async with ReactiveCorpusCallosum(
            enable_event_sourcing=True, redis_url="redis://127.0.0.1:1/0"
        ) as cc:
            assert await _route(cc, TractType.EXTERNAL, TractType.INTERNAL, "x") == 0
            assert "event log at redis://127.0.0.1:1/0" in cc.event_store.fallback_reason
            assert [e.payload for e in await cc.replay_history()] == ["x"]
            assert (await cc.get_consciousness_metrics()).total_messages == 1
        strict = ReactiveCorpusCallosum(redis_url="redis://127.0.0.1:1/0", require_event_log=True)
        with pytest.raises(TransportError, match="event log"):
            await strict.start()
        assert "RedisEventStore" in repr(strict.event_store)

    asyncio.run(main())
    assert "keeping the event log in memory" in caplog.text


def test_stop_ends_subscriptions_and_keeps_undelivered_messages():
    async def main():
        cc = ReactiveCorpusCallosum(enable_event_sourcing=False)
        await cc.start()
        await _route(cc, TractType.INTERNAL, TractType.EXTERNAL, "nobody listens")
        iterator = cc.subscribe("late", TractType.INTERNAL)
        reader = asyncio.create_task(_take(iterator, 1, timeout=5))
        await asyncio.sleep(0.1)
        await cc.stop()
        assert await reader == []  # the iterator ended cleanly
        assert [m.payload for m in cc.undelivered] == ["nobody listens"]
        with pytest.raises(RouterClosedError):
            await _route(cc, TractType.INTERNAL, TractType.EXTERNAL)

    asyncio.run(main())


def test_bad_input_and_factory():
    async def main():
        async with ReactiveCorpusCallosum(enable_event_sourcing=False) as cc:
            with pytest.raises(ValueError):
                await cc.route_message(TractType.INTERNAL, 7, MessagePriority.NORMAL, None)
            with pytest.raises(ValueError):
                await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, -1, None)
            with pytest.raises(ValueError):
                cc.replay_history(10, 5)

    asyncio.run(main())
    with pytest.raises(ValueError):
        ReactiveCorpusCallosum(ordering="random")
    a = get_reactive_message_router(
        BackpressureConfig(buffer_size=5),
        CircuitBreakerConfig(),
        enable_event_sourcing=False,
        redis_url=None,
    )
    b = get_reactive_message_router()
    assert a is not b  # a factory, as in the pilot
    assert (
        a.backpressure_config.buffer_size == 5
        and a.event_store is None
        and b.event_store is not None
    )


@pytest.mark.asyncio
async def test_the_pilots_own_style_with_pytest_asyncio():
    """As the pilot's tests are written: an async test, start/stop around the body."""
    router = ReactiveCorpusCallosum(enable_event_sourcing=True, redis_url=None)
    await router.start()
    try:
        for i in range(5):
            assert (
                await router.route_message(
                    source_tract=TractType.EXTERNAL,
                    dest_tract=TractType.INTERNAL,
                    priority=MessagePriority.NORMAL,
                    payload=f"msg_{i}",
                    payload_size=10,
                )
                == i
            )
        received = []
        async for message in router.subscribe("test_agent", TractType.INTERNAL):
            received.append(message)
            if len(received) >= 5:
                break
        assert [m.payload for m in received] == [f"msg_{i}" for i in range(5)]
        assert router.stats.total_messages == 5 and router.stats.messages_to_internal == 5
        assert len([e async for e in router.replay_history(from_timestamp_ms=0)]) == 5
        assert (await router.get_consciousness_metrics()).external_to_internal == 5
    finally:
        await router.stop()
