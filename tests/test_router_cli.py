"""open_router configuration, the router CLI, the benchmark command and the demo hook."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from synapse_mojo.errors import ConfigError
from synapse_mojo.router import (
    MemoryRouter,
    Message,
    RedisStreamsRouter,
    Tract,
    open_router,
    parse_router_url,
)
from synapse_mojo.router.metrics import COLLECTOR

from .conftest import run_cli


def test_memory_urls_and_options(router_runtime, monkeypatch):
    r = open_router("memory://?capacity=7&backpressure=reject&max_attempts=2")
    assert isinstance(r, MemoryRouter)
    assert (r.capacity, r.backpressure, r.max_attempts) == (7, "reject", 2)
    r.close()
    monkeypatch.setenv("SYNAPSE_ROUTER_URL", "memory://?capacity=3")
    r = open_router()
    assert r.capacity == 3
    r.close()
    r = open_router("memory://", capacity=11)
    assert r.capacity == 11
    r.close()


@pytest.mark.parametrize(
    "url",
    [
        "amqp://host",
        "memory://?capacity=lots",
        "memory://somewhere",
        "memory://?nope=1",
        "just-text",
        "redis://h/0?claim_idle=x",
    ],
)
def test_bad_urls_are_config_errors(url):
    with pytest.raises(ConfigError):
        open_router(url)


def test_redis_url_passes_driver_options_through():
    transport, driver, options = parse_router_url(
        "redis://:pw@h:6380/2?group=g&socket_keepalive=true&claim_idle=3"
    )
    assert transport == "redis" and options == {"group": "g", "claim_idle": 3.0}
    assert driver == "redis://:pw@h:6380/2?socket_keepalive=true"
    with pytest.raises(ConfigError):
        open_router("redis://h:1/0", not_an_option=1)


def test_bad_router_options(router_runtime):
    with pytest.raises(ValueError):
        MemoryRouter(capacity=0)
    with pytest.raises(ValueError):
        MemoryRouter(backpressure="drop")
    with pytest.raises(ValueError):
        MemoryRouter(max_payload_bytes=1 << 30)
    with pytest.raises(ValueError):
        MemoryRouter(max_attempts=0)


def test_closed_routers_keep_their_counters_in_the_export(router_runtime):
    r = MemoryRouter()
    r.publish_batch([Message(Tract.INTERNAL, Tract.EXTERNAL, i) for i in range(5)])
    r.ack(r.consume(Tract.EXTERNAL, 5))
    before = COLLECTOR.snapshot()[("memory", "external")]["counters"]["acked"]
    r.close()
    after = COLLECTOR.snapshot()[("memory", "external")]["counters"]["acked"]
    assert after == before  # counters never go backwards when a router closes


def test_close_returns_what_nobody_consumed(router_runtime):
    r = MemoryRouter()
    sent = [Message(Tract.INTERNAL, Tract.EXTERNAL, i, priority=i % 3) for i in range(6)]
    r.publish_batch(sent)
    left = r.close()
    assert sorted(m.payload for m in left) == list(range(6))
    assert [m.priority for m in left] == sorted((m.priority for m in left), reverse=True)


def test_router_stats_command(redis_server):
    r = RedisStreamsRouter(redis_server.url, consumer="cli-test")
    r.publish_batch([Message(Tract.INTERNAL, Tract.EXTERNAL, i, priority=i % 4) for i in range(9)])
    held = r.consume(Tract.EXTERNAL, 2, 1.0)
    out = run_cli("router", "stats", "--url", redis_server.url, "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    ext = data["destinations"]["external"]
    assert (ext["depth"], ext["in_flight"], ext["published"]) == (7, 2, 9)
    assert data["consumers"]["external"][0]["name"] == "cli-test"
    table = run_cli("router", "stats", "--url", redis_server.url, timeout=120)
    assert table.returncode == 0 and "external" in table.stdout and "cli-test" in table.stdout
    r.nack(held, "bad")
    r.close()


def test_dead_letters_command(redis_server):
    r = RedisStreamsRouter(redis_server.url, max_attempts=1)
    r.send(Tract.INTERNAL, Tract.EXTERNAL, "poison")
    r.nack(r.consume(Tract.EXTERNAL, 1, 1.0), "handler exploded")
    out = run_cli("router", "dead-letters", "external", "--url", redis_server.url, timeout=120)
    assert out.returncode == 0 and "handler exploded" in out.stdout
    out = run_cli(
        "router", "dead-letters", "external", "--url", redis_server.url, "--requeue", timeout=120
    )
    assert out.returncode == 0 and "requeued 1" in out.stdout
    assert [m.payload for m in r.consume(Tract.EXTERNAL, 1, 1.0)] == ["poison"]
    r.close()


def test_router_stats_refuses_memory_urls():
    out = run_cli("router", "stats", "--url", "memory://", timeout=120)
    assert out.returncode != 0 and "lives inside the process" in (out.stdout + out.stderr)


def test_bench_router_command_writes_a_valid_document(router_kernel, redis_binary, tmp_path):
    out = run_cli(
        "bench",
        "router",
        "--messages",
        "2000",
        "--redis-messages",
        "1000",
        "--batch-size",
        "256",
        "--paced-rate",
        "200",
        "--paced-seconds",
        "0.25",
        "--out",
        str(tmp_path),
        "--no-plots",
        env={
            "SYNAPSE_REDIS_SERVER": redis_binary,
            "SYNAPSE_KERNEL_CACHE": str(router_kernel.__file__).rsplit("/", 2)[0],
        },
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "router.json").read_text())
    assert doc["suite"] == "router"
    backends = {(r["backend"], r["mode"]) for r in doc["records"]}
    for backend in ("mojo", "heapq", "queue.PriorityQueue", "redis-streams", "redis-py-raw"):
        assert {(backend, "single"), (backend, "batch"), (backend, "paced")} <= backends
    assert all(r["lost"] == 0 for r in doc["records"])
    assert all(r["p99_ms"] is not None for r in doc["records"])
    assert next(r for r in doc["records"] if r["backend"] == "mojo")["runtime"] == "mojo"
    assert doc["bounds"]["mojo_empty_call_ns"] and doc["bounds"]["pq_put_get_ns"]
    assert {t["target"] for t in doc["targets"]} >= {"Mojo batch vs PriorityQueue (msgs/s)"}
    assert "Targets" in (tmp_path / "router.md").read_text()


def test_demo_hook_routes_over_both_transports(router_runtime, redis_binary, monkeypatch):
    monkeypatch.setenv("SYNAPSE_REDIS_SERVER", redis_binary)
    from synapse_mojo._dev.router_demo import run_router_demo

    console = Console(record=True, width=120)
    run_router_demo(console, messages=2000, batch=128)
    text = console.export_text()
    assert "memory://" in text and "redis://" in text
    assert "mojo (in-process)" in text and "violated" not in text
    lines = [line for line in text.splitlines() if "memory://" in line or "redis://" in line]
    assert all(line.rstrip(" │").endswith("0") for line in lines)  # lost = 0
