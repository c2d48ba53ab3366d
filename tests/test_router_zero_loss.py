"""Proof of zero loss: real producer and consumer processes, a real Redis (AOF, fsync always),
consumers killed with SIGKILL at random points and restarted, Redis itself killed and restarted
once. Every message must be handled exactly once (its effect committed once), each producer's
messages of one priority in publish order, and nothing may be left pending.

``internal`` is consumed by one process at a time under a stable name (a restarted consumer
re-handles its own pending entries first, so order is checked); ``external`` gets a new
consumer name at every restart, so a dead consumer's entries are recovered by XAUTOCLAIM
(exactly-once is checked; order is not promised there).

Size: SYNAPSE_ZERO_LOSS_MESSAGES (default 100,000).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from synapse_mojo.router import Message, RedisStreamsRouter, Tract

from .servers import RedisServer

WORKER = Path(__file__).with_name("router_chaos_worker.py")
REPO = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("SYNAPSE_ZERO_LOSS_MESSAGES", "100000"))
PRODUCERS = 4
TIME_LIMIT = 240.0


def _spawn(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _retrying(fn, tries: int = 300):
    for _ in range(tries):
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            time.sleep(0.1)
    return fn()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zero_loss_under_consumer_kills_and_a_redis_restart(redis_binary, tmp_path, capsys):
    per_producer = MESSAGES // PRODUCERS
    total = per_producer * PRODUCERS
    rng = random.Random(20261125)
    server = RedisServer(redis_binary, appendonly=True, appendfsync="always").start()
    client = redis.Redis.from_url(server.url, socket_timeout=10)
    consumers: dict[str, subprocess.Popen] = {}
    producers: list[subprocess.Popen] = []
    kills = {"internal": 0, "external": 0}
    restarted_redis_at = None
    started = time.monotonic()

    starts = {"internal": 0, "external": 0}

    def start_consumer(dest: str) -> None:
        name = "internal-worker" if dest == "internal" else f"external-{kills['external']}"
        claim_idle = "30" if dest == "internal" else "1.0"
        consumers[dest] = _spawn("consume", server.url, dest, name, claim_idle)
        starts[dest] += 1

    def wait_ready(dest: str) -> float:
        # A consumer counts itself in once it has imported and connected; on a loaded machine
        # that takes seconds, and a kill before it would only test process start-up.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = _retrying(lambda: int(client.get(f"chaos:ready:{dest}") or 0))
            if ready >= starts[dest]:
                break
            assert consumers[dest].poll() is None, consumers[dest].stderr.read().decode()[-3000:]
            time.sleep(0.05)
        return time.monotonic()

    def handled() -> int:
        return _retrying(
            lambda: client.llen("chaos:handled:internal") + client.llen("chaos:handled:external")
        )

    try:
        for dest in ("internal", "external"):
            start_consumer(dest)
        producers = [
            _spawn("produce", server.url, str(p), str(per_producer)) for p in range(PRODUCERS)
        ]
        done = 0
        # Each consumer is killed at a random moment 0.8-2.0 s after it reported itself ready
        # (interpreter loaded, connected), while it is working.
        kill_at = {dest: wait_ready(dest) + rng.uniform(0.8, 2.0) for dest in consumers}
        # The chaos phase lasts TIME_LIMIT, and longer on a loaded machine until Redis has been
        # restarted once (progress decides, not the clock), bounded by 2 x TIME_LIMIT.
        while done < total and (
            time.monotonic() - started < TIME_LIMIT
            or (restarted_redis_at is None and time.monotonic() - started < 2 * TIME_LIMIT)
        ):
            dest = min(kill_at, key=kill_at.get)
            time.sleep(max(0.0, kill_at[dest] - time.monotonic()))
            consumers[dest].send_signal(signal.SIGKILL)
            consumers[dest].wait()
            kills[dest] += 1
            start_consumer(dest)
            kill_at[dest] = wait_ready(dest) + rng.uniform(0.8, 2.0)
            done = handled()
            if restarted_redis_at is None and done > total * 0.4:
                server.restart(kill=True)  # SIGKILL: only what AOF fsynced survives
                restarted_redis_at = done
            for p in producers:
                assert p.poll() in (None, 0), p.stderr.read().decode()[-3000:]
        while done < total and time.monotonic() - started < 2 * TIME_LIMIT + 60:
            time.sleep(0.2)  # no more kills: let the consumers finish
            done = handled()
        for p in producers:
            assert p.wait(60) == 0, p.stderr.read().decode()[-3000:]
        elapsed = time.monotonic() - started
        assert restarted_redis_at is not None, "the run ended before Redis could be restarted"

        # ---- exactly once, per producer order within a priority
        seen: dict[str, list[tuple[int, int, int]]] = {}
        for dest in ("internal", "external"):
            raw = _retrying(lambda key=f"chaos:handled:{dest}": client.lrange(key, 0, -1))
            seen[dest] = [tuple(int(x) for x in item.decode().split(":")) for item in raw]
        all_handled = [(p, s) for dest in seen for p, s, _ in seen[dest]]
        expected = {(p, s) for p in range(PRODUCERS) for s in range(per_producer)}
        duplicates = len(all_handled) - len(set(all_handled))
        missing = expected - set(all_handled)
        assert duplicates == 0, f"{duplicates} messages handled more than once"
        assert not missing, f"{len(missing)} messages lost, e.g. {sorted(missing)[:5]}"
        assert len(all_handled) == total
        wrong_dest = [(p, s) for p, s, _ in seen["internal"] if s % 2] + [
            (p, s) for p, s, _ in seen["external"] if s % 2 == 0
        ]
        assert not wrong_dest
        last: dict[tuple[int, int], int] = defaultdict(lambda: -1)
        out_of_order = 0
        for p, s, prio in seen["internal"]:
            if s < last[(p, prio)]:
                out_of_order += 1
            last[(p, prio)] = s
        assert out_of_order == 0, (
            f"{out_of_order} messages out of per-producer order within a priority"
        )

        # ---- nothing pending, nothing waiting
        for proc in consumers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        view = RedisStreamsRouter(server.url, retry_timeout=30)
        stats = view.stats()
        for dest in ("internal", "external"):
            d = stats.destinations[dest]
            assert (d.depth, d.in_flight) == (0, 0), (
                f"{dest}: {d.depth} waiting, {d.in_flight} pending"
            )
        pending = sum(
            _retrying(lambda key=key: client.xpending(key, view.group)["pending"])
            for dest in Tract
            for key in view.keys.bands(dest)
            if _retrying(lambda key=key: client.exists(key))
        )
        assert pending == 0
        dead = [len(view.dead_letters(d, 1000)) for d in Tract]
        assert dead == [0, 0], f"dead letters: {dead}"
        invocations = int(_retrying(lambda: client.get("chaos:invocations")))
        report = {
            "messages": total,
            "producers": PRODUCERS,
            "handled_exactly_once": len(set(all_handled)),
            "lost": len(missing),
            "duplicates_handled": duplicates,
            "out_of_order_within_priority_internal": out_of_order,
            "consumer_kills": kills,
            "redis_restarts": 1,
            "redis_restarted_after_handled": restarted_redis_at,
            "handler_invocations_incl_killed_before_commit": invocations,
            "reruns_of_uncommitted_handlers": invocations - total,
            "published_total_incl_retry_duplicates": sum(
                stats.destinations[d].published for d in ("internal", "external")
            ),
            "duplicate_copies_skipped_by_dedupe": sum(
                stats.destinations[d].duplicates for d in ("internal", "external")
            ),
            "pending_at_end": pending,
            "seconds": round(elapsed, 1),
        }
        view.close()
        (tmp_path / "zero-loss-report.json").write_text(json.dumps(report, indent=2))
        with capsys.disabled():
            print("\nrouter zero-loss report: " + json.dumps(report))
    finally:
        for proc in [*consumers.values(), *producers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.cleanup()


# --------------------------------------------------------------------------------------------
# Exactly-once commit effects across Redis restarts, per subscription shape
# --------------------------------------------------------------------------------------------

RESTART_MESSAGES = 1200
RESTARTS = 3
RESTART_TIME_LIMIT = 90.0


@pytest.mark.parametrize("threads,batch_size", [(1, 1), (1, 64), (2, 1), (2, 64), (4, 1), (4, 64)])
@pytest.mark.timeout(240)
def test_commit_effects_exactly_once_across_redis_restarts(redis_binary, threads, batch_size):
    """A subscription whose handler (3 ms of "work") returns a commit: Redis (AOF, fsync
    always) is killed with SIGKILL and restarted several times while batches are in hand. Every
    message's effect must be committed exactly once and the ``acked`` counter must match.

    This once failed with 2+ threads: a thread recovering this consumer's pending entries
    after the outage re-delivered the batch another thread was still acknowledging, and both
    commits applied (issue 14, item 5)."""
    rng = random.Random(1400 + 10 * threads + batch_size)
    server = RedisServer(redis_binary, appendonly=True, appendfsync="always").start()
    client = redis.Redis.from_url(server.url, socket_timeout=10)
    router = RedisStreamsRouter(
        server.url, consumer="effects", retry_timeout=60, claim_idle=60, trim_interval=0.2
    )

    def handler(message):
        time.sleep(0.003)
        return lambda tx, s=message.payload: tx.rpush("effects", s)

    def effects() -> int:
        return int(_retrying(lambda: client.llen("effects")))

    try:
        router.publish_batch(
            [Message(Tract.INTERNAL, Tract.EXTERNAL, i) for i in range(RESTART_MESSAGES)]
        )
        sub = router.subscribe(
            Tract.EXTERNAL, handler, batch_size=batch_size, threads=threads, poll_interval=0.05
        )
        started = time.monotonic()
        restarts = 0
        # Kills land at random points while work remains (a batch of 64 takes ~0.2 s).
        while restarts < RESTARTS and time.monotonic() - started < RESTART_TIME_LIMIT:
            time.sleep(rng.uniform(0.3, 0.9))
            if effects() >= RESTART_MESSAGES * (restarts + 1) / (RESTARTS + 2):
                server.stop(kill=True)  # SIGKILL: only what AOF fsynced survives
                time.sleep(rng.uniform(0.05, 1.0))  # down for a while: every thread hits it
                server.start()
                restarts += 1
        while effects() < RESTART_MESSAGES and time.monotonic() - started < RESTART_TIME_LIMIT:
            time.sleep(0.1)
        assert router.drain(30.0), "entries still pending or waiting"
        sub.stop(10.0)
        handled = [int(x) for x in _retrying(lambda: client.lrange("effects", 0, -1))]
        duplicates = len(handled) - len(set(handled))
        missing = set(range(RESTART_MESSAGES)) - set(handled)
        assert restarts == RESTARTS, f"only {restarts} restarts happened"
        assert duplicates == 0, (
            f"{duplicates} effects committed twice (threads={threads}, batch={batch_size})"
        )
        assert not missing, f"{len(missing)} messages never handled, e.g. {sorted(missing)[:5]}"
        assert router.stats().destinations["external"].acked == RESTART_MESSAGES
    finally:
        router.close()
        server.cleanup()
