"""Producer and consumer processes for tests/test_router_zero_loss.py (run as scripts).

    python tests/router_chaos_worker.py produce URL PRODUCER_ID COUNT
    python tests/router_chaos_worker.py consume URL DESTINATION CONSUMER_NAME CLAIM_IDLE

A consumer records what it handled with ``RPUSH chaos:handled:<destination> "p:s:priority"``
inside the acknowledgement's transaction (exactly-once effects), and counts raw handler
invocations (also those killed before their ack committed) in ``chaos:invocations``.
"""

from __future__ import annotations

import random
import sys
import time

import redis

from synapse_mojo.router import Message, RedisStreamsRouter, Tract

BATCH = 100


def destination_of(seq: int) -> Tract:
    return Tract.INTERNAL if seq % 2 == 0 else Tract.EXTERNAL


def produce(url: str, producer: int, count: int) -> None:
    router = RedisStreamsRouter(url, retry_timeout=120, max_backlog=None)
    rng = random.Random(producer)
    for start in range(0, count, BATCH):
        batch = [
            Message(
                Tract.INTERNAL if s % 2 else Tract.EXTERNAL,
                destination_of(s),
                {"p": producer, "s": s},
                priority=rng.randint(1, 5),
            )
            for s in range(start, min(count, start + BATCH))
        ]
        router.publish_batch(batch)
    router.close()


def consume(url: str, destination: str, name: str, claim_idle: float) -> None:
    router = RedisStreamsRouter(
        url, consumer=name, claim_idle=claim_idle, retry_timeout=120, trim_interval=0.5
    )
    client = redis.Redis.from_url(url, socket_timeout=10)
    dest = Tract(destination)
    rng = random.Random()
    # Tell the test this consumer has loaded and connected: its kill is timed from here.
    for _ in range(600):
        try:
            client.incr(f"chaos:ready:{destination}")
            break
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            time.sleep(0.2)
    while True:
        messages = router.consume(dest, 64, 1.0)
        if not messages:
            continue
        for _ in range(600):
            try:
                client.incrby("chaos:invocations", len(messages))
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                time.sleep(0.2)
        time.sleep(rng.random() * 0.004)  # the "work": kills land in the middle of it
        entries = [f"{m.payload['p']}:{m.payload['s']}:{m.priority}" for m in messages]
        router.ack(
            messages,
            commit=lambda tx, entries=entries: tx.rpush(f"chaos:handled:{destination}", *entries),
        )


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "produce":
        produce(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "consume":
        consume(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
