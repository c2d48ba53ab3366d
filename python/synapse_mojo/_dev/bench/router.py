"""Router benchmark: the in-process router on Mojo and on ``heapq``, a plain
``queue.PriorityQueue`` router (the Python baseline), the Redis Streams transport and raw
redis-py stream pipelines (the anchor), side by side in one run.

    doc = run_router_benchmark(RouterBenchConfig(messages=100_000), redis_url=None)

Cases (``mode``):

* ``single``: rounds of ``window`` messages, each published with one call, then each consumed
  with one call (in-process: ``consume(auto_ack=True)``, the equivalent of a queue ``get``;
  Redis: ``consume`` then ``ack``, which is an XACK). Latency of a message: from its publish
  call to the return of the consume call that delivered it.
* ``batch``: rounds of ``batch_size`` messages: one publish call, consume calls until all are
  back, one ack. Every message of a round gets the round's time as its latency.
* ``paced``: a producer thread publishes single messages at ``paced_rate`` per second while a
  consumer thread waits in a blocking consume: publish-to-delivery latency at a moderate,
  documented load (``load`` field), measured from each message's creation time.

Every case counts ``lost`` = published - delivered (distinct ids). The document also carries
``bounds``: the cost of an empty Python -> Mojo call, of a bare kernel push+pop, of a
``queue.PriorityQueue`` put+get, of a Python method call taking a lock, and the Redis round
trip, which bound what the single-message APIs can reach (the committed run's reading:
benchmarks/results/x86_64/README.md), and ``targets``: the issue's ratios as measured in this
run.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from synapse_mojo.config import Mode, load_settings
from synapse_mojo.router.memory import MemoryRouter
from synapse_mojo.router.message import Message, Tract
from synapse_mojo.router.redis_wire import wire_parts
from synapse_mojo.runtime.adapter import Runtime
from synapse_mojo.runtime.metrics import percentile

from .machine import machine_info
from .report import new_document

ALL_BACKENDS = ("mojo", "heapq", "queue.PriorityQueue", "redis-streams", "redis-py-raw")
MEMORY_BACKENDS = ("mojo", "heapq", "queue.PriorityQueue")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RouterBenchConfig:
    messages: int = 100_000  # per in-process case
    batch_size: int = 1024
    window: int = 64  # single mode: messages published before they are consumed
    redis_messages: int = 50_000  # per Redis batch case
    redis_single_messages: int = 5_000
    payload_bytes: int = 64
    paced_rate: int = 1_000  # messages per second in the paced (latency) cases
    paced_seconds: float = 3.0
    seed: int = 20261125


# --------------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------------


def make_messages(n: int, payload_bytes: int, seed: int) -> list[Message]:
    """``n`` messages internal -> external, priorities spread over 1..5, bytes payloads."""
    rng = np.random.default_rng(seed)
    priorities = rng.integers(1, 6, n).tolist()
    payload = bytes(payload_bytes)
    return [Message(Tract.INTERNAL, Tract.EXTERNAL, payload, priority=p) for p in priorities]


def _summary(latencies_s: list[float]) -> dict[str, float | None]:
    values = sorted(latencies_s)
    out: dict[str, float | None] = {}
    for q in (50, 95, 99):
        v = percentile(values, q)
        out[f"p{q}_ms"] = None if v is None else round(v * 1e3, 6)
    return out


class PriorityQueueRouter:
    """The Python baseline: one ``queue.PriorityQueue`` per destination, (-priority, seq)."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self._queues: dict[Tract, queue.PriorityQueue[tuple[int, int, Message]]] = {
            t: queue.PriorityQueue(maxsize=capacity) for t in Tract
        }
        self._seq = itertools.count()

    def publish(self, message: Message) -> None:
        self._queues[message.destination].put((-message.priority, next(self._seq), message))

    def consume(self, destination: Tract, timeout: float = 0.0) -> Message | None:
        try:
            if timeout:
                return self._queues[destination].get(timeout=timeout)[2]
            return self._queues[destination].get_nowait()[2]
        except queue.Empty:
            return None


# --------------------------------------------------------------------------------------------
# In-process cases
# --------------------------------------------------------------------------------------------


def _runtime_for(backend: str) -> Runtime:
    settings = load_settings()
    modes = dict(settings.modes)
    modes["message_router"] = Mode("on" if backend == "mojo" else "off")
    return Runtime(replace(settings, modes=modes))


def _memory_single(
    router: Any, msgs: Sequence[Message], window: int, pq: bool
) -> tuple[float, list[float], int]:
    dest = Tract.EXTERNAL
    clock = time.perf_counter
    latencies: list[float] = []
    received: set[int] = set()
    started = clock()
    for start in range(0, len(msgs), window):
        chunk = msgs[start : start + window]
        sent_at = {}
        for m in chunk:
            sent_at[m.uid] = clock()
            router.publish(m)
        for _ in chunk:
            m = router.consume(dest) if pq else router.consume(dest, 1, 0, auto_ack=True)[0]
            latencies.append(clock() - sent_at[m.uid])
            received.add(m.uid)
    elapsed = clock() - started
    return elapsed, latencies, len(msgs) - len(received)


def _memory_batch(
    router: Any, msgs: Sequence[Message], batch: int, pq: bool
) -> tuple[float, list[float], int]:
    dest = Tract.EXTERNAL
    clock = time.perf_counter
    latencies: list[float] = []
    received = 0
    started = clock()
    for start in range(0, len(msgs), batch):
        chunk = msgs[start : start + batch]
        t0 = clock()
        if pq:
            for m in chunk:
                router.publish(m)
            got = [router.consume(dest) for _ in chunk]
        else:
            router.publish_batch(chunk)
            got = router.consume(dest, len(chunk), 0, auto_ack=True)
            while len(got) < len(chunk):
                got += router.consume(dest, len(chunk) - len(got), 1.0, auto_ack=True)
        dt = clock() - t0
        latencies.extend([dt] * len(got))
        received += len(got)
    elapsed = clock() - started
    return elapsed, latencies, len(msgs) - received


def _paced(
    publish: Callable[[Message], object],
    consume: Callable[[float], list[Message]],
    msgs: Sequence[Message],
    rate: int,
) -> tuple[list[float], int]:
    """Publishes at ``rate``/s from this thread; a consumer thread blocks in ``consume``."""
    latencies: list[float] = []
    received: set[int] = set()
    done = threading.Event()

    def consumer() -> None:
        while not done.is_set() or len(received) < len(msgs):
            for m in consume(0.05):
                latencies.append(time.time() - m.created_at)
                received.add(m.uid)
            if done.is_set() and len(received) >= len(msgs):
                return

    thread = threading.Thread(target=consumer, daemon=True)
    thread.start()
    interval = 1.0 / rate
    next_at = time.perf_counter()
    fresh = []
    for m in msgs:
        now = time.perf_counter()
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        # Re-create so that created_at is the moment of publishing, not of setup.
        msg = Message(m.source, m.destination, m.payload, priority=m.priority)
        fresh.append(msg)
        publish(msg)
    done.set()
    thread.join(timeout=30)
    return latencies, len(fresh) - len(received)


def _record(
    backend: str,
    mode: str,
    batch_size: int,
    messages: int,
    elapsed: float | None,
    latencies: list[float],
    lost: int,
    **extra: Any,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "backend": backend,
        "mode": mode,
        "batch_size": batch_size,
        "messages": messages,
        "msgs_per_s": None if not elapsed else round(messages / elapsed, 1),
        **_summary(latencies),
        "lost": lost,
        "load": extra.pop("load", "unpaced: as fast as the calls go"),
    }
    rec.update(extra)
    return rec


def bench_memory(
    backend: str, cfg: RouterBenchConfig, msgs: list[Message], progress: Progress
) -> list[dict[str, Any]]:
    records = []
    pq = backend == "queue.PriorityQueue"
    capacity = max(cfg.batch_size, cfg.window) * 2 + 16
    note = ""
    runtime_used = "python"

    def make() -> Any:
        if pq:
            return PriorityQueueRouter()
        return MemoryRouter(capacity=capacity, runtime=_runtime_for(backend))

    for mode in ("single", "batch"):
        progress(f"{backend}: {mode} ({len(msgs):,} messages) ...")
        router = make()
        warm = msgs[: min(2000, len(msgs))]
        if mode == "single":
            _memory_single(router, warm, cfg.window, pq)
            elapsed, lat, lost = _memory_single(router, msgs, cfg.window, pq)
            size = 1
        else:
            _memory_batch(router, warm, cfg.batch_size, pq)
            elapsed, lat, lost = _memory_batch(router, msgs, cfg.batch_size, pq)
            size = cfg.batch_size
        if not pq:
            runtime_used = router.runtime_in_use()
            if backend == "mojo" and runtime_used != "mojo":
                note = "Mojo kernel unavailable: ran on the heapq fallback"
            router.close()
        records.append(
            _record(
                backend,
                mode,
                size,
                len(msgs),
                elapsed,
                lat,
                lost,
                runtime=runtime_used if not pq else "python",
                note=note or None,
            )
        )
    # Paced latency at a moderate load.
    n = int(cfg.paced_rate * cfg.paced_seconds)
    progress(f"{backend}: paced {cfg.paced_rate} msg/s for {cfg.paced_seconds:g}s ...")
    router = make()
    dest = Tract.EXTERNAL
    if pq:
        lat, lost = _paced(
            router.publish,
            lambda t: [m] if (m := router.consume(dest, t)) else [],
            msgs[:n],
            cfg.paced_rate,
        )
    else:

        def consume(timeout: float) -> list[Message]:
            return router.consume(dest, 64, timeout, auto_ack=True)

        lat, lost = _paced(router.publish, consume, msgs[:n], cfg.paced_rate)
        router.close()
    records.append(
        _record(
            backend,
            "paced",
            1,
            n,
            None,
            lat,
            lost,
            load=(
                f"{cfg.paced_rate} msg/s, {cfg.payload_bytes} B payloads, "
                "consumer blocked in consume()"
            ),
            runtime=runtime_used,
        )
    )
    return records


# --------------------------------------------------------------------------------------------
# Redis cases
# --------------------------------------------------------------------------------------------


def bench_redis_streams(
    url: str, cfg: RouterBenchConfig, msgs: list[Message], progress: Progress
) -> list[dict[str, Any]]:
    from synapse_mojo.router.redis_streams import RedisStreamsRouter

    records = []
    dest = Tract.EXTERNAL
    for mode, count in (("single", cfg.redis_single_messages), ("batch", cfg.redis_messages)):
        count = min(count, len(msgs))
        progress(f"redis-streams: {mode} ({count:,} messages) ...")
        router = RedisStreamsRouter(url, prefix=f"bench:{mode}:{time.time_ns()}", max_backlog=None)
        try:
            # Warm-up with other messages: the router would drop a republished id as a duplicate.
            warm = make_messages(200, cfg.payload_bytes, cfg.seed + 1)
            _redis_router_round(router, warm, 1 if mode == "single" else cfg.batch_size, dest)
            clock = time.perf_counter
            latencies: list[float] = []
            received: set[int] = set()
            started = clock()
            if mode == "single":
                for start in range(0, count, cfg.window):
                    chunk = msgs[start : start + min(cfg.window, count - start)]
                    sent = {}
                    for m in chunk:
                        sent[m.uid] = clock()
                        router.publish(m)
                    for _ in chunk:
                        got = router.consume(dest, 1, 5.0)
                        router.ack(got)
                        for m in got:
                            latencies.append(clock() - sent[m.uid])
                            received.add(m.uid)
            else:
                for start in range(0, count, cfg.batch_size):
                    chunk = msgs[start : start + min(cfg.batch_size, count - start)]
                    t0 = clock()
                    router.publish_batch(chunk)
                    got = []
                    while len(got) < len(chunk):
                        got += router.consume(dest, len(chunk) - len(got), 5.0)
                    router.ack(got)
                    latencies.extend([clock() - t0] * len(got))
                    received.update(m.uid for m in got)
            elapsed = clock() - started
            records.append(
                _record(
                    "redis-streams",
                    mode,
                    1 if mode == "single" else cfg.batch_size,
                    count,
                    elapsed,
                    latencies,
                    count - len(received),
                )
            )
        finally:
            _cleanup(router)
    n = int(cfg.paced_rate * cfg.paced_seconds)
    progress(f"redis-streams: paced {cfg.paced_rate} msg/s for {cfg.paced_seconds:g}s ...")
    producer = RedisStreamsRouter(url, prefix=f"bench:paced:{time.time_ns()}", max_backlog=None)
    consumer = RedisStreamsRouter(url, prefix=producer.keys.prefix, max_backlog=None)
    try:
        consumer.consume(dest, 1, 0)  # create the group before the clock starts

        def consume(timeout: float) -> list[Message]:
            got = consumer.consume(dest, 64, timeout)
            if got:
                consumer.ack(got)
            return got

        lat, lost = _paced(producer.publish, consume, msgs[:n], cfg.paced_rate)
        records.append(
            _record(
                "redis-streams",
                "paced",
                1,
                n,
                None,
                lat,
                lost,
                load=(
                    f"{cfg.paced_rate} msg/s, {cfg.payload_bytes} B payloads, "
                    "separate producer and consumer connections"
                ),
            )
        )
    finally:
        consumer.close()
        _cleanup(producer)
    return records


def _redis_router_round(router: Any, msgs: Sequence[Message], batch: int, dest: Tract) -> None:
    for start in range(0, len(msgs), batch):
        chunk = msgs[start : start + batch]
        router.publish_batch(chunk)
        got: list[Message] = []
        while len(got) < len(chunk):
            got += router.consume(dest, len(chunk) - len(got), 5.0)
        router.ack(got)


def _cleanup(router: Any) -> None:
    try:
        client = router._client
        keys = list(client.scan_iter(match=f"{router.keys.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    except Exception:
        pass
    router.close()


def raw_pipeline_batch(client: Any, key: str, chunk: list[tuple[Any, Any, Any]]) -> int:
    """The anchor's unit of work: XADD a chunk in one pipeline, then XREADGROUP and XACK until
    all of it is back; returns how many entries came back."""
    with client.pipeline(transaction=False) as pipe:
        for mid, head, payload in chunk:
            pipe.xadd(key, {"id": mid, "h": head, "p": payload})
        pipe.execute()
    got = 0
    while got < len(chunk):
        reply = client.xreadgroup("g", "c", {key: ">"}, count=len(chunk) - got, block=5000)
        ids = [eid for _, entries in reply for eid, _ in entries]
        client.xack(key, "g", *ids)
        got += len(ids)
    return got


def bench_redis_raw(
    url: str, cfg: RouterBenchConfig, msgs: list[Message], progress: Progress
) -> list[dict[str, Any]]:
    """The anchor: plain redis-py XADD pipelines, XREADGROUP and XACK on one stream, with the
    same entry fields and sizes as the router writes (id, head, payload)."""
    import redis

    client = redis.Redis.from_url(url)
    records = []
    wire = [wire_parts(m) for m in msgs[: max(cfg.redis_messages, cfg.redis_single_messages)]]
    for mode, count in (("single", cfg.redis_single_messages), ("batch", cfg.redis_messages)):
        count = min(count, len(wire))
        progress(f"redis-py-raw: {mode} ({count:,} messages) ...")
        key = f"bench:raw:{mode}:{time.time_ns()}"
        client.xgroup_create(key, "g", id="0", mkstream=True)
        batch = 1 if mode == "single" else cfg.batch_size
        clock = time.perf_counter
        latencies: list[float] = []
        received = 0
        try:
            started = clock()
            if mode == "single":
                # The router's single-message pattern: a window of single XADDs, then one
                # XREADGROUP COUNT 1 and one XACK per message.
                for start in range(0, count, cfg.window):
                    chunk = wire[start : start + min(cfg.window, count - start)]
                    sent = []
                    for mid, head, payload in chunk:
                        sent.append(clock())
                        client.xadd(key, {"id": mid, "h": head, "p": payload})
                    for i in range(len(chunk)):
                        # redis-py types replies as a loose union; this one is a list of streams.
                        reply: Any = client.xreadgroup("g", "c", {key: ">"}, count=1, block=5000)
                        ids = [eid for _, entries in reply for eid, _ in entries]
                        client.xack(key, "g", *ids)
                        latencies.append(clock() - sent[i])
                        received += len(ids)
            else:
                for start in range(0, count, batch):
                    chunk = wire[start : start + min(batch, count - start)]
                    t0 = clock()
                    got = raw_pipeline_batch(client, key, chunk)
                    latencies.extend([clock() - t0] * got)
                    received += got
            elapsed = clock() - started
            records.append(
                _record("redis-py-raw", mode, batch, count, elapsed, latencies, count - received)
            )
        finally:
            client.delete(key)
    # Paced anchor: XADD from this thread, a blocking XREADGROUP consumer thread.
    n = int(cfg.paced_rate * cfg.paced_seconds)
    progress(f"redis-py-raw: paced {cfg.paced_rate} msg/s for {cfg.paced_seconds:g}s ...")
    key = f"bench:raw:paced:{time.time_ns()}"
    client.xgroup_create(key, "g", id="0", mkstream=True)
    reader = redis.Redis.from_url(url)
    latencies = []
    done = threading.Event()
    got_count = [0]

    def consumer() -> None:
        while not (done.is_set() and got_count[0] >= n):
            reply: Any = reader.xreadgroup("g", "c", {key: ">"}, count=64, block=50)
            now = time.time()
            for _, entries in reply or []:
                ids = []
                for eid, fields in entries:
                    latencies.append(now - float(fields[b"t"]))
                    ids.append(eid)
                reader.xack(key, "g", *ids)
                got_count[0] += len(ids)
            if done.is_set() and not reply and got_count[0] >= n:
                return

    thread = threading.Thread(target=consumer, daemon=True)
    thread.start()
    interval = 1.0 / cfg.paced_rate
    next_at = time.perf_counter()
    for i in range(n):
        now = time.perf_counter()
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        mid, head, payload = wire[i % len(wire)]
        client.xadd(key, {"id": mid, "h": head, "p": payload, "t": repr(time.time())})
    done.set()
    thread.join(timeout=30)
    client.delete(key)
    records.append(
        _record(
            "redis-py-raw",
            "paced",
            1,
            n,
            None,
            latencies,
            n - got_count[0],
            load=(
                f"{cfg.paced_rate} msg/s, {cfg.payload_bytes} B payloads, "
                "separate producer and consumer connections"
            ),
        )
    )
    return records


# --------------------------------------------------------------------------------------------
# Bounds: what one call costs
# --------------------------------------------------------------------------------------------


def _per_call_ns(fn: Callable[[], Any], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - started) / n)
    return round(best, 1)


def measure_bounds(redis_url: str | None) -> dict[str, Any]:
    """Costs that bound the single-message APIs (nanoseconds unless named otherwise)."""
    out: dict[str, Any] = {}
    q: queue.PriorityQueue = queue.PriorityQueue()
    seq = itertools.count()

    def pq_put_get() -> None:
        q.put((1, next(seq), None))
        q.get_nowait()

    out["pq_put_get_ns"] = _per_call_ns(pq_put_get, 50_000)
    lock = threading.Lock()

    class Obj:
        def method(self, x: Any) -> Any:
            with lock:
                return x

    obj = Obj()
    out["python_method_with_lock_ns"] = _per_call_ns(lambda: obj.method(1), 200_000)
    kernel = _runtime_for("mojo").feature("message_router").kernel()
    if kernel is not None:
        from synapse_mojo.router.queues import QueueBlock

        out["mojo_empty_call_ns"] = _per_call_ns(kernel.noop, 200_000)
        block = QueueBlock(1024)
        addr = block.addr
        push, pop = kernel.push, kernel.pop

        def push_pop() -> None:
            push(addr, 3, 7, 0, 0)
            pop(addr, 1, 0)

        out["mojo_kernel_push_pop_ns"] = _per_call_ns(push_pop, 100_000)
        n = 1024
        prios = np.arange(n, dtype=np.int64) % 5
        slots = np.arange(n, dtype=np.int64)
        out_slots = np.empty(n, dtype=np.int64)

        def batch() -> None:
            kernel.push_batch(addr, prios.ctypes.data, slots.ctypes.data, n, 0, 0)
            kernel.pop_batch(addr, out_slots.ctypes.data, n, 1, 0)

        out["mojo_kernel_batch_ns_per_msg"] = round(_per_call_ns(batch, 500) / n, 2)
    else:
        out["mojo_empty_call_ns"] = None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        client.ping()
        out["redis_ping_rtt_us"] = round(_per_call_ns(client.ping, 2000) / 1000, 2)
    return out


def targets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets as measured: ratios within this run."""

    def get(backend: str, mode: str) -> dict[str, Any] | None:
        return next((r for r in records if r["backend"] == backend and r["mode"] == mode), None)

    out = []

    def ratio(name: str, a: dict | None, b: dict | None, want: float) -> None:
        if a and b and a.get("msgs_per_s") and b.get("msgs_per_s"):
            value = a["msgs_per_s"] / b["msgs_per_s"]
            out.append(
                {
                    "target": name,
                    "want": f">= {want:g}x",
                    "measured": f"{value:.2f}x",
                    "met": value >= want,
                }
            )

    def p99(name: str, rec: dict | None, limit_ms: float) -> None:
        if rec and rec.get("p99_ms") is not None:
            out.append(
                {
                    "target": name,
                    "want": f"< {limit_ms:g} ms",
                    "measured": f"{rec['p99_ms']:.3f} ms",
                    "met": rec["p99_ms"] < limit_ms,
                }
            )

    pq_single, pq_batch = get("queue.PriorityQueue", "single"), get("queue.PriorityQueue", "batch")
    ratio("Mojo batch vs PriorityQueue (msgs/s)", get("mojo", "batch"), pq_batch, 100)
    ratio("Mojo single vs PriorityQueue (msgs/s)", get("mojo", "single"), pq_single, 20)
    p99("in-process p99, Mojo single", get("mojo", "single"), 1.0)
    p99("in-process p99, Mojo batch", get("mojo", "batch"), 1.0)
    p99("in-process p99, Mojo paced", get("mojo", "paced"), 1.0)
    ratio(
        "Redis transport vs raw redis-py pipelines, batch (msgs/s)",
        get("redis-streams", "batch"),
        get("redis-py-raw", "batch"),
        0.8,
    )
    p99("Redis transport p99 at moderate load (paced)", get("redis-streams", "paced"), 1.0)
    return out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def run_router_benchmark(
    cfg: RouterBenchConfig,
    backends: Sequence[str] = ALL_BACKENDS,
    redis_url: str | None = None,
    command: str = "synapse-mojo bench router",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Runs the selected backends; returns a ``synapse-mojo-bench/1`` document (suite router)."""
    say = progress or (lambda _msg: None)
    doc = new_document("router", command=command, machine=machine_info())
    doc["config"] = {
        "messages": cfg.messages,
        "batch_size": cfg.batch_size,
        "window": cfg.window,
        "redis_messages": cfg.redis_messages,
        "redis_single_messages": cfg.redis_single_messages,
        "payload_bytes": cfg.payload_bytes,
        "paced_rate": cfg.paced_rate,
        "paced_seconds": cfg.paced_seconds,
    }
    notes: list[str] = []
    say("preparing messages ...")
    total = max(
        cfg.messages,
        cfg.redis_messages,
        cfg.redis_single_messages,
        int(cfg.paced_rate * cfg.paced_seconds),
    )
    msgs = make_messages(total, cfg.payload_bytes, cfg.seed)
    for backend in backends:
        if backend in MEMORY_BACKENDS:
            doc["records"].extend(bench_memory(backend, cfg, msgs[: cfg.messages], say))
    wants_redis = [b for b in backends if b in ("redis-streams", "redis-py-raw")]
    if wants_redis:
        if redis_url is None:
            notes.append("Redis cases skipped: no --redis-url and no redis-server to start")
        else:
            if "redis-streams" in wants_redis:
                doc["records"].extend(bench_redis_streams(redis_url, cfg, msgs, say))
            if "redis-py-raw" in wants_redis:
                doc["records"].extend(bench_redis_raw(redis_url, cfg, msgs, say))
    say("measuring call costs ...")
    doc["bounds"] = measure_bounds(redis_url if wants_redis else None)
    doc["targets"] = targets(doc["records"])
    doc["notes"] = notes
    return doc


def targets_markdown(doc: dict[str, Any]) -> str:
    lines = ["| target | wanted | measured | met |", "| --- | ---: | ---: | :---: |"]
    for t in doc.get("targets", []):
        lines.append(
            f"| {t['target']} | {t['want']} | {t['measured']} | {'yes' if t['met'] else 'no'} |"
        )
    return "\n".join(lines)


def bounds_markdown(doc: dict[str, Any]) -> str:
    b = doc.get("bounds", {})
    rows = [
        ("queue.PriorityQueue put + get", b.get("pq_put_get_ns"), "ns"),
        ("Python method call taking a lock", b.get("python_method_with_lock_ns"), "ns"),
        ("empty Python -> Mojo call (binding)", b.get("mojo_empty_call_ns"), "ns"),
        ("bare kernel push + pop (two calls)", b.get("mojo_kernel_push_pop_ns"), "ns"),
        ("kernel batch push + pop, per message", b.get("mojo_kernel_batch_ns_per_msg"), "ns"),
        ("Redis PING round trip", b.get("redis_ping_rtt_us"), "us"),
    ]
    lines = ["| cost | value |", "| --- | ---: |"]
    for name, value, unit in rows:
        if value is not None:
            lines.append(f"| {name} | {value:,} {unit} |")
    return "\n".join(lines)


def plot_router(doc: dict[str, Any], path: str) -> str:
    """Throughput (log scale) and p99 latency per backend and mode, one PNG."""
    from .plots import _pyplot

    plt = _pyplot()
    records = [r for r in doc["records"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    tput = [r for r in records if r.get("msgs_per_s")]
    labels = [f"{r['backend']}\n{r['mode']}" for r in tput]
    colours = {
        "mojo": "#e8590c",
        "heapq": "#1c7ed6",
        "queue.PriorityQueue": "#868e96",
        "redis-streams": "#2f9e44",
        "redis-py-raw": "#7048e8",
    }
    ax1.bar(
        range(len(tput)),
        [r["msgs_per_s"] for r in tput],
        color=[colours.get(r["backend"], "#555") for r in tput],
    )
    ax1.set_xticks(range(len(tput)), labels, fontsize=7)
    ax1.set_yscale("log")
    ax1.set_ylabel("messages / s (log)")
    ax1.set_title("throughput")
    lat = [r for r in records if r.get("p99_ms") is not None]
    ax2.bar(
        range(len(lat)),
        [r["p99_ms"] for r in lat],
        color=[colours.get(r["backend"], "#555") for r in lat],
    )
    ax2.set_xticks(range(len(lat)), [f"{r['backend']}\n{r['mode']}" for r in lat], fontsize=7)
    ax2.axhline(1.0, color="black", linestyle=":", linewidth=1, label="1 ms target")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 latency, ms (log)")
    ax2.set_title("publish-to-consume p99")
    ax2.legend()
    machine = doc["machine"]
    fig.suptitle(
        f"router · {machine.get('arch')} · {machine.get('cpu_model')} · "
        f"{machine.get('cores')} cores",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
