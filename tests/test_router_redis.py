"""The Redis Streams transport against a real redis-server: dedupe, crash recovery, takeover,
dead letters, trimming, backpressure, restarts, exactly-once commits."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import redis

from synapse_mojo.errors import ConfigError, QueueFullError, TransportError
from synapse_mojo.router import Message, RedisStreamsRouter, Tract, open_router
from synapse_mojo.router.redis_wire import to_wire

from .servers import RedisServer, free_port

IN, EX = Tract.INTERNAL, Tract.EXTERNAL


def make(server, **options) -> RedisStreamsRouter:
    options.setdefault("retry_delay", 0.02)
    options.setdefault("retry_timeout", 10.0)
    return RedisStreamsRouter(server.url, **options)


def test_key_schema_and_band_streams(redis_server):
    r = make(redis_server)
    r.publish_batch([Message(IN, EX, i, priority=p) for i, p in enumerate([0, 5, 9, 5])])
    client = redis.Redis.from_url(redis_server.url)
    keys = sorted(k.decode() for k in client.keys("synapse:router:*"))
    assert keys == [
        "synapse:router:{external}:counters",
        "synapse:router:{external}:p0",
        "synapse:router:{external}:p5",
        "synapse:router:{external}:p9",
    ]
    assert client.xlen("synapse:router:{external}:p5") == 2
    assert r.stats().destinations["external"].depth_by_priority == [1, 0, 0, 0, 0, 2, 0, 0, 0, 1]
    r.close()


def test_a_duplicate_publish_is_delivered_once(redis_server):
    r = make(redis_server)
    m = Message(IN, EX, "once")
    r.publish(m)
    r.publish(m)  # e.g. a producer retry after a lost reply
    got = r.consume(EX, 10, 1.0)
    assert [x.id for x in got] == [m.id]
    r.ack(got)
    r.publish(m)  # a late duplicate of a finished message
    assert r.consume(EX, 10, 0.3) == []
    assert r.stats().destinations["external"].duplicates == 2
    assert r.drain(2.0)
    r.close()


def test_a_dead_consumers_messages_are_taken_over_after_claim_idle(redis_server):
    a = make(redis_server, consumer="a", claim_idle=0.3)
    b = make(redis_server, consumer="b", claim_idle=0.3)
    sent = [Message(IN, EX, i) for i in range(5)]
    a.publish_batch(sent)
    taken = a.consume(EX, 5, 1.0)
    assert len(taken) == 5  # "a" dies now: never acks
    assert b.consume(EX, 5, 0.1) == []
    time.sleep(0.4)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < deadline:
        got += b.consume(EX, 5, 0.5)
    assert sorted(m.payload for m in got) == list(range(5))
    assert all(m.attempts == 1 for m in got)
    b.ack(got)
    a.ack(taken)  # too late: "b" holds them now, so this is skipped, not a double ack
    stats = b.stats().destinations["external"]
    assert stats.acked == 5 and stats.in_flight == 0 and stats.redelivered == 5
    a.close()
    b.close()


def test_a_restarted_consumer_with_the_same_name_handles_its_own_pending_first_in_order(
    redis_server,
):
    first = make(redis_server, consumer="worker-1", claim_idle=60)
    sent = [Message(IN, EX, i, priority=3) for i in range(10)]
    first.publish_batch(sent)
    assert len(first.consume(EX, 4, 1.0)) == 4  # crashes holding 0..3
    first.close()
    again = make(redis_server, consumer="worker-1", claim_idle=60)
    got = []
    while len(got) < 10:
        batch = again.consume(EX, 3, 1.0)
        again.ack(batch)
        got += batch
    assert [m.payload for m in got] == list(range(10))
    assert [m.attempts for m in got[:4]] == [1, 1, 1, 1]
    again.close()


def test_crashing_consumers_push_a_message_to_the_dead_letters(redis_server):
    r = make(redis_server, consumer="c1", claim_idle=0.1, max_attempts=2)
    m = r.send(IN, EX, "poison")
    assert r.consume(EX, 1, 1.0)[0].id == m.id  # delivery 1: crash
    r.close()
    time.sleep(0.15)
    r2 = make(redis_server, consumer="c2", claim_idle=0.1, max_attempts=2)
    got = r2.consume(EX, 1, 1.0)  # delivery 2 (attempts=1): crash again
    assert got[0].attempts == 1
    r2.close()
    time.sleep(0.15)
    r3 = make(redis_server, consumer="c3", claim_idle=0.1, max_attempts=2)
    assert r3.consume(EX, 1, 0.5) == []  # attempts=2 reached: dead-lettered, not delivered
    dead = r3.dead_letters(EX)
    assert (
        len(dead) == 1
        and dead[0].message.id == m.id
        and "without being acknowledged" in dead[0].reason
    )
    assert r3.drain(2.0)
    r3.close()


def test_trimming_never_drops_unacknowledged_entries(redis_server):
    r = make(redis_server, trim_interval=3600)
    client = redis.Redis.from_url(redis_server.url)
    key = r.keys.stream(EX, 2)
    r.publish_batch([Message(IN, EX, i) for i in range(100)])
    got = r.consume(EX, 50, 1.0)
    r.ack(got[10:])  # 0..9 pending, 50..99 not delivered yet
    r.trim(EX)
    assert client.xlen(key) == 100  # entry 0 is still pending: nothing at or after it goes
    r.ack(got[:10])
    r.trim(EX)
    assert client.xlen(key) == 51  # up to the last delivered (kept as the group's marker)
    rest = []
    while len(rest) < 50:
        batch = r.consume(EX, 50, 1.0)
        r.ack(batch)
        rest += batch
    assert [m.payload for m in rest] == list(range(50, 100))
    r.trim(EX)
    assert client.xlen(key) <= 1
    r.close()


def test_backpressure_reject_and_block(redis_server):
    r = make(redis_server, max_backlog=10, backpressure="reject")
    r.publish_batch([Message(IN, EX, i) for i in range(10)])
    with pytest.raises(QueueFullError, match="nothing was dropped") as info:
        r.send(IN, EX, "one too many")
    assert info.value.destination == "external"
    b = make(redis_server, max_backlog=10, backpressure="block", publish_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(QueueFullError):
        b.send(IN, EX, "blocked")
    assert time.monotonic() - started >= 0.25
    got = r.consume(EX, 10, 1.0)
    r.ack(got)
    r.trim(EX)
    b.send(IN, EX, "now there is room")
    assert [m.payload for m in r.consume(EX, 10, 1.0)] == ["now there is room"]
    assert r.stats().destinations["external"].published == 11
    r.close()
    b.close()


def test_survives_a_restart_without_persistence(redis_binary):
    with RedisServer(redis_binary) as server:
        r = make(server, retry_timeout=20)
        r.send(IN, EX, "before")
        r.ack(r.consume(EX, 1, 1.0))
        server.restart()  # empty: streams and the consumer group are gone
        r.send(IN, EX, "after")
        got = r.consume(EX, 1, 5.0)
        assert [m.payload for m in got] == ["after"]
        r.ack(got)
        r.close()


def test_messages_survive_a_restart_with_aof(redis_binary):
    with RedisServer(redis_binary, appendonly=True, appendfsync="always") as server:
        r = make(server, retry_timeout=20)
        r.publish_batch([Message(IN, EX, i) for i in range(20)])
        held = r.consume(EX, 5, 1.0)  # pending across the restart
        server.restart(kill=True)
        r.ack(held)  # reconnects
        rest = []
        while len(rest) < 15:
            batch = r.consume(EX, 15, 2.0)
            r.ack(batch)
            rest += batch
        assert sorted(m.payload for m in held + rest) == list(range(20))
        assert r.drain(5.0)
        r.close()


def test_a_commit_is_applied_exactly_once_with_the_ack(redis_server):
    a = make(redis_server, consumer="a", claim_idle=0.2)
    b = make(redis_server, consumer="b", claim_idle=0.2)
    client = redis.Redis.from_url(redis_server.url)
    m = a.send(IN, EX, "pay 10")
    got_a = a.consume(EX, 1, 1.0)  # "a" stalls past claim_idle
    time.sleep(0.3)
    got_b = b.consume(EX, 1, 1.0)
    assert got_b[0].id == m.id and got_b[0].attempts == 1
    b.ack(got_b, commit=lambda tx: tx.incrby("balance", 10))
    a.ack(got_a, commit=lambda tx: tx.incrby("balance", 10))  # stale: skipped, not applied
    assert int(client.get("balance")) == 10
    # A redelivered copy after the commit is acked as a duplicate, never handled.
    client.xadd(a.keys.stream(EX, 2), to_wire(m))
    assert b.consume(EX, 1, 0.3) == []
    assert int(client.get("balance")) == 10
    a.close()
    b.close()


def test_a_subscription_handler_can_return_a_commit(redis_server):
    r = make(redis_server)
    client = redis.Redis.from_url(redis_server.url)
    r.subscribe(
        EX, lambda m: lambda tx: tx.rpush("handled", m.payload), batch_size=8, poll_interval=0.05
    )
    r.publish_batch([Message(IN, EX, b"%d" % i) for i in range(40)])
    assert r.drain(10.0)
    assert sorted(int(x) for x in client.lrange("handled", 0, -1)) == list(range(40))
    r.close()


class ReplyDroppingProxy:
    """A TCP relay between the router and a real Redis that can lose one reply: once armed,
    the first EXEC the client sends is passed on, the server's reply is read and thrown away,
    and the connection is closed, as when Redis dies (or the network breaks) after executing
    a transaction but before its reply arrives. Not a mock: every command runs on Redis."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            cut = threading.Event()
            threading.Thread(
                target=self._pump, args=(client, server, cut, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, cut, False), daemon=True
            ).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, cut: threading.Event, upstream: bool
    ) -> None:
        try:
            while chunk := src.recv(65536):
                if not upstream and cut.is_set():
                    self.dropped.set()  # the reply to EXEC: executed by Redis, never delivered
                    break
                if upstream and self.armed.is_set() and b"EXEC" in chunk:
                    self.armed.clear()
                    cut.set()  # before the EXEC reaches Redis, so its reply is caught
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closing = True
        self._listener.close()


def test_a_commit_whose_reply_is_lost_is_not_applied_again(redis_server):
    proxy = ReplyDroppingProxy(redis_server.port)
    r = make(redis_server, consumer="a")
    via_proxy = RedisStreamsRouter(proxy.url, consumer="a", retry_timeout=10.0)
    client = redis.Redis.from_url(redis_server.url)
    r.publish_batch([Message(IN, EX, i) for i in range(3)])
    got = via_proxy.consume(EX, 10, 1.0)
    assert len(got) == 3
    proxy.armed.set()
    via_proxy.ack(got, commit=lambda tx: tx.incrby("balance", 10))  # EXEC runs, its reply is lost
    assert proxy.dropped.is_set()
    assert int(client.get("balance")) == 10, "the retried transaction applied the commit again"
    assert via_proxy.stats().destinations["external"].acked == 3
    assert via_proxy.consume(EX, 10, 0.2) == []
    via_proxy.close()
    r.close()
    proxy.close()


def test_recovery_after_an_outage_leaves_a_batch_being_acknowledged_alone(redis_binary):
    """One thread is committing a batch when Redis goes away; another thread's read after the
    restart recovers this consumer's pending entries. The batch in the middle of its
    acknowledgement is not one of them: handing it out again ran its handler and its commit
    twice (issue 14, item 5)."""
    with RedisServer(redis_binary, appendonly=True, appendfsync="always") as server:
        r = make(server, consumer="c", retry_timeout=30)
        client = redis.Redis.from_url(server.url, socket_timeout=10)
        r.publish_batch([Message(IN, EX, i) for i in range(3)])
        batch = r.consume(EX, 10, 1.0)
        in_commit, release = threading.Event(), threading.Event()

        def commit(tx):
            in_commit.set()
            release.wait(30)
            tx.rpush("effects", *(m.payload for m in batch))

        acker = threading.Thread(target=r.ack, args=(batch,), kwargs={"commit": commit})
        acker.start()
        assert in_commit.wait(10)
        server.stop(kill=True)
        threading.Timer(0.5, server.start).start()
        again = r.consume(EX, 10, 0)  # fails until the restart, then recovers pending entries
        release.set()
        acker.join(30)
        assert [m.payload for m in again] == []
        r.ack(again, commit=lambda tx: tx.rpush("effects", *(m.payload for m in again)))
        assert sorted(int(x) for x in client.lrange("effects", 0, -1)) == [0, 1, 2]
        assert r.drain(5.0)
        r.close()


def test_undecodable_entries_go_to_the_dead_letters(redis_server):
    r = make(redis_server)
    client = redis.Redis.from_url(redis_server.url)
    r.consume(EX, 1, 0)  # creates the group
    client.xadd(r.keys.stream(EX, 4), {"something": "else"})
    r.send(IN, EX, "good", priority=1)
    got = r.consume(EX, 10, 1.0)
    assert [m.payload for m in got] == ["good"]
    r.ack(got)
    dead = r.dead_letters(EX)
    assert len(dead) == 1 and dead[0].message is None and "undecodable" in dead[0].reason
    r.close()


def test_transport_error_when_redis_stays_down(redis_binary):
    server = RedisServer(redis_binary).start()
    r = make(server, retry_timeout=0.5)
    r.send(IN, EX, "x")
    server.cleanup()
    started = time.monotonic()
    with pytest.raises(TransportError, match="unavailable"):
        r.send(IN, EX, "y")
    assert time.monotonic() - started < 10
    r.close()


def test_open_router_options_and_bad_urls(redis_server):
    r = open_router(
        f"{redis_server.url}?group=g1&consumer=c1&claim_idle=2.5&max_backlog=none&prefix=app:router"
    )
    assert (r.group, r.consumer, r.claim_idle, r.max_backlog, r.keys.prefix) == (
        "g1",
        "c1",
        2.5,
        None,
        "app:router",
    )
    r.send(IN, EX, 1)
    assert r.consumers(EX) == [] or all(c["name"] for c in r.consumers(EX))
    r.close()
    for bad in (
        "kafka://x",
        "redis://h/0?claim_idle=soon",
        "memory://?capacity=many",
        "memory://host",
        "nonsense",
        "memory://?colour=red",
    ):
        with pytest.raises(ConfigError):
            open_router(bad)
    with pytest.raises(ConfigError):
        RedisStreamsRouter(redis_server.url, consumer="bad|name")


def test_consumers_and_stats_view(redis_server):
    r = make(redis_server, consumer="viewer")
    r.publish_batch([Message(IN, EX, i) for i in range(7)])
    held = r.consume(EX, 3, 1.0)
    stats = r.stats().destinations["external"]
    assert (stats.depth, stats.in_flight, stats.published) == (4, 3, 7)
    consumers = r.consumers(EX)
    assert [c["name"] for c in consumers] == ["viewer"] and consumers[0]["pending"] == 3
    r.ack(held)
    r.close()


def test_a_subscription_outlives_an_outage_longer_than_retry_timeout(redis_binary):
    """Redis stays down longer than ``retry_timeout``: the acknowledgement in hand fails with
    TransportError. The batch must not stay marked as in flight in this router for ever (it
    was: nothing handled it again until another consumer's claim_idle); it is recovered after
    the restart, and its commit still happens exactly once."""
    with RedisServer(redis_binary, appendonly=True, appendfsync="always") as server:
        r = make(server, consumer="c", retry_timeout=0.5, claim_idle=600)
        client = redis.Redis.from_url(server.url, socket_timeout=10)
        r.publish_batch([Message(IN, EX, i) for i in range(40)])
        in_handler = threading.Event()

        def handler(m):
            in_handler.set()
            time.sleep(0.05)
            return lambda tx: tx.rpush("effects", m.payload)

        sub = r.subscribe(EX, handler, batch_size=8, poll_interval=0.05)
        assert in_handler.wait(10)
        server.stop(kill=True)
        time.sleep(2.0)  # the ack in hand gives up after 0.5 s
        server.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and int(client.llen("effects")) < 40:
            time.sleep(0.1)
        sub.stop(5.0)
        effects = sorted(int(x) for x in client.lrange("effects", 0, -1))
        assert effects == list(range(40)), f"{len(effects)} effects, {len(set(effects))} distinct"
        r.close()
