"""One test body per behaviour, run on every transport (in-process and Redis Streams)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from synapse_mojo.errors import (
    InvalidInputError,
    InvalidTypeError,
    PayloadTooLargeError,
    RouterClosedError,
    UnknownTractError,
)
from synapse_mojo.router import MemoryRouter, Message, Priority, RedisStreamsRouter, Tract
from synapse_mojo.runtime.metrics import prometheus_text

IN, EX = Tract.INTERNAL, Tract.EXTERNAL


@pytest.fixture(params=["memory", "redis"])
def make_router(request):
    """A factory of routers of one transport (Redis: a fresh server per test)."""
    made = []
    if request.param == "memory":
        request.getfixturevalue("router_runtime")

        def factory(**options):
            router = MemoryRouter(**options)
            made.append(router)
            return router
    else:
        server = request.getfixturevalue("redis_server")

        def factory(**options):
            options.setdefault("retry_delay", 0.02)
            options.setdefault("claim_idle", 5.0)
            options.setdefault("retry_timeout", 5.0)
            options.pop("capacity", None)
            router = RedisStreamsRouter(server.url, **options)
            made.append(router)
            return router

    yield factory
    for router in made:
        router.close()


def drain_all(router, destination, n, timeout=5.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        batch = router.consume(destination, n - len(got), 0.2)
        router.ack(batch)
        got += batch
    return got


def test_priority_order_and_fifo_within_a_priority(make_router):
    router = make_router()
    rng = random.Random(1)
    sent = [Message(IN, EX, {"i": i}, priority=rng.randrange(0, 10)) for i in range(200)]
    for m in sent[:50]:
        router.publish(m)
    router.publish_batch(sent[50:])
    got = drain_all(router, EX, 200)
    assert [m.id for m in got] == [m.id for m in sorted(sent, key=lambda m: -m.priority)]
    assert [m.payload for m in got] == [m.payload for m in sorted(sent, key=lambda m: -m.priority)]


def test_batches_for_both_tracts_and_the_send_shortcut(make_router):
    router = make_router()
    msgs = [Message(IN if i % 2 else EX, EX if i % 2 else IN, b"%d" % i) for i in range(20)]
    assert router.publish_batch(msgs) == 20
    reply = router.send(
        EX, IN, {"reply": True}, priority=Priority.CRITICAL, correlation_id="c", reply_to="external"
    )
    to_in = drain_all(router, IN, 11)
    assert (
        to_in[0].id == reply.id
        and to_in[0].correlation_id == "c"
        and to_in[0].reply_to == "external"
    )
    assert len(drain_all(router, EX, 10)) == 10
    assert router.consume(IN, 5, 0) == [] and router.consume(EX, 5, 0) == []


def test_blocking_consume_wakes_up_on_publish(make_router):
    router = make_router()
    started = time.monotonic()
    assert router.consume(EX, 1, 0.2) == []
    assert time.monotonic() - started >= 0.15
    timer = threading.Timer(0.2, lambda: router.send(IN, EX, "late"))
    timer.start()
    got = router.consume(EX, 1, 10)
    timer.join()
    assert [m.payload for m in got] == ["late"]
    router.ack(got)


def test_nack_retries_then_dead_letters_then_requeue(make_router):
    router = make_router(max_attempts=3)
    m = router.send(IN, EX, {"job": 1})
    attempts = []
    for _ in range(3):
        got = router.consume(EX, 1, 2.0)
        assert [x.id for x in got] == [m.id]
        attempts.append(got[0].attempts)
        router.nack(got, RuntimeError("boom"))
    assert attempts == [0, 1, 2]
    assert router.consume(EX, 1, 0.3) == []
    dead = router.dead_letters(EX)
    assert len(dead) == 1 and dead[0].message.id == m.id and dead[0].attempts == 3
    assert "boom" in dead[0].reason
    stats = router.stats().destinations["external"]
    assert stats.dead_lettered == 1 and stats.dead_letter_depth == 1
    assert router.requeue_dead_letters(EX) == 1
    again = router.consume(EX, 1, 2.0)
    assert [x.id for x in again] == [m.id] and again[0].attempts == 0
    router.ack(again)
    assert router.dead_letters(EX) == []


def test_receive_acks_on_success_and_nacks_on_error(make_router):
    router = make_router(max_attempts=5)
    router.send(IN, EX, "a")
    with pytest.raises(ValueError), router.receive(EX, 1, 2.0) as msgs:
        assert msgs[0].payload == "a"
        raise ValueError("handler bug")
    with router.receive(EX, 1, 2.0) as msgs:
        assert msgs[0].payload == "a" and msgs[0].attempts == 1
    assert router.drain(5.0)


def test_subscriptions_deliver_everything_and_retry_failures(make_router):
    router = make_router(max_attempts=3)
    seen, lock = [], threading.Lock()
    failed_once = set()

    def handler(message):
        with lock:
            if message.payload % 7 == 0 and message.id not in failed_once:
                failed_once.add(message.id)
                raise RuntimeError("transient")
            seen.append(message.payload)

    sub = router.subscribe(EX, handler, batch_size=16, threads=2, poll_interval=0.05)
    router.publish_batch([Message(IN, EX, i) for i in range(300)])
    assert router.drain(20.0)
    assert sorted(seen) == list(range(300))
    assert sub.failed == len(failed_once) == len([i for i in range(300) if i % 7 == 0])
    assert sub.stop(5.0)


def test_batch_handler(make_router):
    router = make_router()
    batches = []
    router.subscribe(
        EX,
        lambda msgs: batches.append([m.payload for m in msgs]),
        batch=True,
        batch_size=50,
        poll_interval=0.05,
    )
    router.publish_batch([Message(IN, EX, i) for i in range(120)])
    assert router.drain(10.0)
    assert sorted(p for b in batches for p in b) == list(range(120))
    assert all(len(b) <= 50 for b in batches)


def test_concurrent_producers_and_consumers_deliver_each_message_once(make_router):
    router = make_router(capacity=5000)
    n_producers, per_producer = 4, 500
    received, lock = [], threading.Lock()

    def produce(p):
        for i in range(0, per_producer, 25):
            router.publish_batch(
                [Message(IN, EX, [p, i + k], priority=(i + k) % 10) for k in range(25)]
            )

    def consume():
        while True:
            got = router.consume(EX, 64, 0.5)
            if not got:
                with lock:
                    if len(received) >= n_producers * per_producer:
                        return
                continue
            router.ack(got)
            with lock:
                received.extend(tuple(m.payload) for m in got)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(n_producers)]
    threads += [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(received) == sorted(
        (p, i) for p in range(n_producers) for i in range(per_producer)
    )


def test_bad_input_is_refused_and_nothing_is_lost(make_router):
    router = make_router(max_payload_bytes=100)
    ok = router.send(IN, EX, b"fine")
    with pytest.raises(PayloadTooLargeError, match="limit is 100 bytes"):
        router.send(IN, EX, b"x" * 101)
    with pytest.raises(PayloadTooLargeError):
        router.publish_batch([Message(IN, EX, b"ok"), Message(IN, EX, b"x" * 200)])
    with pytest.raises(InvalidTypeError):
        router.publish({"not": "a message"})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        router.publish_batch([Message(IN, EX, b"ok"), "nope"])  # type: ignore[list-item]
    with pytest.raises(UnknownTractError):
        router.consume("cortex", 1)
    with pytest.raises(InvalidInputError):
        router.consume(EX, 0)
    with pytest.raises(InvalidTypeError):
        router.consume(EX, 1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        router.consume(EX, 1, -1)
    got = drain_all(router, EX, 1)
    assert [m.id for m in got] == [
        ok.id
    ]  # only the valid message; the rejected batch queued nothing
    assert router.consume(EX, 10, 0.2) == []


def test_settling_twice_or_settling_unknown_messages_is_harmless(make_router):
    router = make_router()
    router.publish_batch([Message(IN, EX, i) for i in range(3)])
    got = router.consume(EX, 3, 1.0)
    router.ack(got[:2])
    router.ack(got[:2])
    router.nack(got[:2], "late")  # already acked: ignored, not requeued
    router.nack(got[2:], "retry")
    router.nack(got[2:], "twice")  # already nacked: ignored
    router.ack([Message(IN, EX, "never delivered")])
    again = router.consume(EX, 10, 1.0)
    assert [m.payload for m in again] == [2] and again[0].attempts == 1
    router.ack(again)
    stats = router.stats().destinations["external"]
    assert (stats.acked, stats.nacked, stats.in_flight) == (3, 1, 0)


def test_closed_router_raises_clear_errors(make_router):
    router = make_router()
    router.close()
    with pytest.raises(RouterClosedError):
        router.send(IN, EX, 1)
    with pytest.raises(RouterClosedError):
        router.consume(EX, 1)
    with pytest.raises(RouterClosedError):
        router.subscribe(EX, print)
    assert router.close() == []  # idempotent


def test_stats_and_prometheus_export(make_router):
    router = make_router()
    router.publish_batch([Message(IN, EX, i, priority=i % 3) for i in range(30)])
    stats = router.stats().destinations["external"]
    assert stats.depth == 30 and stats.depth_by_priority[:3] == [10, 10, 10]
    got = router.consume(EX, 10, 1.0)
    router.ack(got[:6])
    router.nack(got[6:], "x")
    stats = router.stats().destinations["external"]
    assert stats.acked == 6 and stats.nacked == 4 and stats.delivered == 10
    assert stats.latency_p99_ms is not None
    text = prometheus_text()
    for name in (
        "synapse_router_queue_depth",
        "synapse_router_published_total",
        "synapse_router_latency_seconds_bucket",
        "synapse_router_dead_letters_total",
        "synapse_router_redeliveries_total",
    ):
        assert name in text
    assert f'transport="{router.transport}"' in text


def test_asyncio_wrapper(make_router):
    import asyncio
    import contextlib

    from synapse_mojo.router import AsyncRouter

    async def main():
        async with AsyncRouter(make_router()) as router:
            await router.publish_batch([Message(IN, EX, i, priority=i % 3) for i in range(10)])
            await router.send(IN, EX, "last", priority=0)
            seen = []
            async for message in router.messages(EX, poll_interval=0.1):
                seen.append(message.payload)
                if len(seen) == 11:
                    await router.ack(message)  # done with it: leaving the loop does not retry it
                    break
            assert seen[-1] == "last" and sorted(seen[:-1]) == list(range(10))
            assert await router.drain(5.0)
            await router.send(IN, EX, "again")
            async with contextlib.aclosing(router.messages(EX, poll_interval=0.1)) as stream:
                async for _message in stream:
                    break  # not acked: delivered again
            [back] = await router.consume(EX, 1, 2.0)
            assert back.payload == "again" and back.attempts == 1
            await router.ack(back)

    asyncio.run(main())


def test_auto_ack_takes_messages_for_good(make_router):
    router = make_router()
    router.publish_batch([Message(IN, EX, i) for i in range(5)])
    got = router.consume(EX, 5, 1.0, auto_ack=True)
    assert [m.payload for m in got] == list(range(5))
    assert router.drain(2.0)
    router.nack(got, "too late")  # nothing in flight: ignored
    assert router.consume(EX, 5, 0.2) == []
    assert router.consume_one(EX, 0.1, auto_ack=True) is None
