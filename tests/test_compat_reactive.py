"""The pilot's ReactiveCorpusCallosum over the real router (in-process and Redis Streams)."""

from __future__ import annotations

import asyncio
import time

import pytest

from synapse_mojo import set_runtime
from synapse_mojo.compat import (
    EVENTS_STREAM,
    MessagePriority,
    ReactiveCorpusCallosum,
    TractType,
    get_reactive_message_router,
    reset_reactive_message_router,
)
from synapse_mojo.errors import RouterClosedError


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
    await asyncio.wait_for(run(), timeout)
    return out


def test_priority_order_and_fifo_within_priority(url):
    async def main():
        async with ReactiveCorpusCallosum(url) as cc:
            plan = [(MessagePriority.LOW, "l1"), (MessagePriority.CRITICAL, "c1"), (MessagePriority.NORMAL, "n1"),
                    (MessagePriority.CRITICAL, "c2"), (MessagePriority.LOW, "l2"), (MessagePriority.HIGH, "h1")]
            ids = [await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, p, {"v": v}, 8) for p, v in plan]
            assert ids == sorted(ids)
            got = await _take(cc.subscribe("planner", TractType.EXTERNAL), len(plan))
            assert [m.payload["v"] for m in got] == ["c1", "c2", "h1", "n1", "l1", "l2"]
            first = got[0]
            assert (first.source_tract, first.dest_tract, first.priority) == (TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.CRITICAL)
            assert first.payload_size == 8 and first.timestamp_ms > 0 and first.id == ids[1]
    asyncio.run(main())


def test_every_subscriber_gets_every_message_and_slow_ones_lose_nothing(url):
    async def main():
        async with ReactiveCorpusCallosum(url, buffer_size=2) as cc:
            fast = cc.subscribe("fast", TractType.INTERNAL)
            slow = cc.subscribe("slow", TractType.INTERNAL)
            fast_task = asyncio.create_task(_take(fast, 40))

            async def slow_reader():
                out = []
                async for m in slow:
                    out.append(m)
                    await asyncio.sleep(0.005)  # a slow consumer with a buffer of 2
                    if len(out) == 40:
                        return out

            slow_task = asyncio.create_task(asyncio.wait_for(slow_reader(), 20))
            await asyncio.sleep(0.2)  # both subscriptions registered
            for i in range(40):
                await cc.route_message(TractType.EXTERNAL, TractType.INTERNAL, MessagePriority.NORMAL, i)
            fast_got, slow_got = await fast_task, await slow_task
            assert [m.payload for m in fast_got] == list(range(40))
            assert [m.payload for m in slow_got] == list(range(40))
            assert cc.get_stats()["delivered"] == 40
    asyncio.run(main())


def test_replay_returns_exactly_the_messages_routed_between_two_timestamps(url):
    async def main():
        async with ReactiveCorpusCallosum(url) as cc:
            await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload="before")
            await asyncio.sleep(0.01)
            t1 = int(time.time() * 1000)
            await asyncio.sleep(0.002)
            inside = [
                await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.HIGH, {"k": 1}, 3),
                await cc.route_message(TractType.EXTERNAL, TractType.INTERNAL, MessagePriority.LOW, b"raw-bytes"),
                await cc.route_message(TractType.INTERNAL, TractType.INTERNAL, MessagePriority.NORMAL, [1, "two", None]),
            ]
            await asyncio.sleep(0.002)
            t2 = int(time.time() * 1000)
            await asyncio.sleep(0.01)
            await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload="after")
            replay = await cc.replay_history(t1, t2)
            assert [m.id for m in replay] == inside
            assert [m.payload for m in replay] == [{"k": 1}, b"raw-bytes", [1, "two", None]]
            assert replay[0].priority == MessagePriority.HIGH and replay[0].payload_size == 3
            assert replay[1].source_tract == TractType.EXTERNAL and replay[1].dest_tract == TractType.INTERNAL
            assert all(t1 <= m.timestamp_ms <= t2 for m in replay)
            assert len(await cc.replay_history(0, int(time.time() * 1000) + 1000)) == 5
    asyncio.run(main())


def test_event_log_uses_the_pilot_stream_and_field_names(redis_server):
    import redis

    async def main():
        async with ReactiveCorpusCallosum(redis_server.url) as cc:
            await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, MessagePriority.URGENT, {"a": 1}, 7)
    asyncio.run(main())
    entries = redis.Redis.from_url(redis_server.url).xrange(EVENTS_STREAM)
    assert len(entries) == 1
    fields = {k.decode() for k in entries[0][1]}
    assert {"message_id", "source_tract", "dest_tract", "priority", "timestamp_ms", "payload_size", "payload_type"} <= fields
    assert "payload" in fields
    assert entries[0][1][b"payload_type"] == b"dict" and entries[0][1][b"priority"] == b"4"


def test_stop_ends_subscriptions_and_keeps_undelivered_messages():
    async def main():
        cc = ReactiveCorpusCallosum("memory://")
        await cc.start()
        await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, payload="nobody listens")
        iterator = cc.subscribe("late", TractType.INTERNAL)
        reader = asyncio.create_task(_take(iterator, 1, timeout=5))
        await asyncio.sleep(0.1)
        await cc.stop()
        assert await reader == []  # the iterator ended cleanly
        assert [m.payload for m in cc.undelivered] == ["nobody listens"]
        with pytest.raises(RouterClosedError):
            await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL)
    asyncio.run(main())


def test_bad_input_and_singleton():
    async def main():
        async with ReactiveCorpusCallosum("memory://") as cc:
            with pytest.raises(ValueError):
                await cc.route_message(TractType.INTERNAL, 7)
            with pytest.raises(ValueError):
                await cc.route_message(TractType.INTERNAL, TractType.EXTERNAL, priority=-1)
            with pytest.raises(ValueError):
                await cc.replay_history(10, 5)
            sub = cc.subscribe("x", TractType.EXTERNAL)
            task = asyncio.create_task(_take(sub, 1, timeout=2))
            await asyncio.sleep(0.05)
            with pytest.raises(ValueError, match="already subscribed"):
                await cc.subscribe("x", TractType.EXTERNAL).__anext__()
            task.cancel()
    asyncio.run(main())
    reset_reactive_message_router()
    a = get_reactive_message_router("memory://")
    assert get_reactive_message_router() is a
    reset_reactive_message_router()
