"""Router backends side by side (pytest-benchmark). Sizes: SYNAPSE_BENCH_ROUTER_MESSAGES
(default 20,000 per round set), SYNAPSE_BENCH_ROUTER_BATCH (default 1024).

    uv run pytest benchmarks/test_router_bench.py --benchmark-json=router.json

Each benchmark moves the same pre-built messages (internal -> external, priorities 1..5,
64-byte payloads) through one backend and asserts that every message came back in priority
order; times are compared by pytest-benchmark, never asserted. ``synapse-mojo bench router``
is the full benchmark (latency percentiles, paced load, call-cost bounds, targets).
"""

from __future__ import annotations

import os

import pytest

from synapse_mojo._dev.bench.router import PriorityQueueRouter, _runtime_for, make_messages
from synapse_mojo.errors import RouterError
from synapse_mojo.router import MemoryRouter, RedisStreamsRouter, Tract

MESSAGES = int(os.environ.get("SYNAPSE_BENCH_ROUTER_MESSAGES", "20000"))
BATCH = int(os.environ.get("SYNAPSE_BENCH_ROUTER_BATCH", "1024"))
WINDOW = 64
DEST = Tract.EXTERNAL


@pytest.fixture(scope="module")
def messages():
    return make_messages(MESSAGES, 64, seed=11)


@pytest.fixture(scope="module")
def router_kernel():
    kernel = _runtime_for("mojo").feature("message_router").kernel()
    if kernel is None:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("CI=true and the Mojo message_router kernel is unavailable")
        pytest.skip("the Mojo message_router kernel is unavailable")
    return kernel


@pytest.fixture(scope="module")
def redis_url():
    from synapse_mojo.router.local_redis import LocalRedis

    try:
        server = LocalRedis().start()
    except RouterError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"CI=true and no redis-server: {exc}")
        pytest.skip(str(exc))
    yield server.url
    server.stop()


def _check_order(got, want_count):
    assert len(got) == want_count
    prios = [m.priority for m in got]
    assert prios == sorted(prios, reverse=True)


def _memory_router(backend: str) -> MemoryRouter:
    return MemoryRouter(capacity=max(BATCH, WINDOW) * 2, runtime=_runtime_for(backend))


@pytest.mark.parametrize("backend", ["mojo", "heapq"])
def test_memory_batch(benchmark, router_kernel, messages, backend):
    router = _memory_router(backend)
    benchmark.group = f"in-process, batches of {BATCH}"
    benchmark.extra_info.update(backend=backend, mode="batch", batch_size=BATCH, messages=MESSAGES)

    def run():
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            router.publish_batch(chunk)
            got = router.consume(DEST, len(chunk), 0, auto_ack=True)
            _check_order(got, len(chunk))

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert router.runtime_in_use() == ("mojo" if backend == "mojo" else "python")
    assert router.close() == []


@pytest.mark.parametrize("backend", ["mojo", "heapq"])
def test_memory_single(benchmark, router_kernel, messages, backend):
    router = _memory_router(backend)
    benchmark.group = f"in-process, one message per call (window {WINDOW})"
    benchmark.extra_info.update(backend=backend, mode="single", batch_size=1, messages=MESSAGES)

    def run():
        for start in range(0, len(messages), WINDOW):
            chunk = messages[start : start + WINDOW]
            for m in chunk:
                router.publish(m)
            got = [router.consume(DEST, 1, 0, auto_ack=True)[0] for _ in chunk]
            _check_order(got, len(chunk))

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert router.close() == []


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_priorityqueue_baseline(benchmark, messages, mode):
    router = PriorityQueueRouter()
    step = WINDOW if mode == "single" else BATCH
    benchmark.group = (
        f"in-process, one message per call (window {WINDOW})"
        if mode == "single"
        else f"in-process, batches of {BATCH}"
    )
    benchmark.extra_info.update(
        backend="queue.PriorityQueue",
        mode=mode,
        batch_size=1 if mode == "single" else BATCH,
        messages=MESSAGES,
    )

    def run():
        for start in range(0, len(messages), step):
            chunk = messages[start : start + step]
            for m in chunk:
                router.publish(m)
            got = [router.consume(DEST) for _ in chunk]
            _check_order(got, len(chunk))

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)


def test_redis_streams_batch(benchmark, redis_url, messages):
    count = min(len(messages), 10_000)
    rounds = iter(range(1000))
    benchmark.group = f"Redis, batches of {BATCH}"
    benchmark.extra_info.update(
        backend="redis-streams", mode="batch", batch_size=BATCH, messages=count
    )

    def run():
        # A fresh key prefix per round: the same messages again would be dropped as duplicates.
        router = RedisStreamsRouter(
            redis_url, prefix=f"bench:pytest:{next(rounds)}", max_backlog=None
        )
        for start in range(0, count, BATCH):
            chunk = messages[start : min(count, start + BATCH)]
            router.publish_batch(chunk)
            got = []
            while len(got) < len(chunk):
                got += router.consume(DEST, len(chunk) - len(got), 5.0)
            router.ack(got)
            _check_order(got, len(chunk))
        router.close()

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)


def test_redis_raw_pipelines(benchmark, redis_url, messages):
    import redis

    from synapse_mojo._dev.bench.router import raw_pipeline_batch
    from synapse_mojo.router.redis_wire import wire_parts

    count = min(len(messages), 10_000)
    client = redis.Redis.from_url(redis_url)
    wire = [wire_parts(m) for m in messages[:count]]
    rounds = iter(range(1000))
    benchmark.group = f"Redis, batches of {BATCH}"
    benchmark.extra_info.update(
        backend="redis-py-raw", mode="batch", batch_size=BATCH, messages=count
    )

    def run():
        key = f"bench:pytest:raw:{next(rounds)}"
        client.xgroup_create(key, "g", id="0", mkstream=True)
        for start in range(0, count, BATCH):
            raw_pipeline_batch(client, key, wire[start : start + BATCH])
        client.delete(key)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
