"""``synapse-mojo serve`` driven by the official MCP SDK client, over HTTP and stdio.

Real everything: the server is the console command in a subprocess on a random 127.0.0.1 port,
the store a SQLite file (and a real Redis), the embedder the local MiniLM, the client the
``mcp`` package's own. No timing is asserted; "live within a second" is checked as "the answer
changes", with a generous deadline for a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from .serve_helpers import CLI, SAMPLE, ServeProcess, clean_env, free_port, seed_store

PILOT_SEARCH_KEYS = {"query", "max_results", "latency_ms", "results"}
PILOT_RESULT_KEYS = {"id", "name", "description", "language", "type", "similarity"}
PILOT_HEALTH_KEYS = {"status", "timestamp", "checks", "ready_for_mcp"}
TOOLS = {
    "search_pattern_map",
    "check_system_health",
    "search_patterns",
    "get_pattern",
    "add_pattern",
    "pattern_stats",
}


@asynccontextmanager
async def http_session(url: str, token: str | None = None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(120, read=300)) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def run(coro):
    return asyncio.run(coro)


async def call(session: ClientSession, tool: str, **arguments):
    result = await session.call_tool(tool, arguments)
    return result


def text_of(result) -> str:
    return result.content[0].text


@pytest.fixture(scope="module")
def served(tmp_path_factory, search_kernel, kernel_cache):
    """A server over a 4-pattern SQLite store, with an in-process router."""
    tmp = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{tmp / 'patterns.db'}"
    seed_store(url, SAMPLE)
    env = clean_env(SYNAPSE_KERNEL_CACHE=str(kernel_cache), SYNAPSE_RUNTIME_DIR=str(tmp / "run"))
    with ServeProcess("--store", url, "--router-url", "memory://", env=env, verbose=True) as server:
        server.store_url, server.env, server.tmp = url, env, tmp
        yield server


# --------------------------------------------------------------------------- HTTP


def test_http_lists_and_calls_every_tool(served):
    async def scenario():
        async with http_session(served.url) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert TOOLS | {"send_message", "receive_messages"} <= names

            pilot = json.loads(
                text_of(
                    await call(s, "search_pattern_map", query="retry with backoff", max_results=2)
                )
            )
            assert set(pilot) == PILOT_SEARCH_KEYS and pilot["max_results"] == 2
            assert [set(r) for r in pilot["results"]] == [PILOT_RESULT_KEYS] * 2
            assert pilot["results"][0]["name"] == "retry"

            health = json.loads(text_of(await call(s, "check_system_health")))
            assert set(health) == PILOT_HEALTH_KEYS and health["ready_for_mcp"]
            assert health["checks"]["neo4j"]["status"] == "up" and health["checks"]["neo4j"][
                "patterns"
            ] == len(SAMPLE)
            assert health["checks"]["bge_m3"]["status"] == "available"
            assert health["status"] == "degraded"  # no Redis: the router is in-process here

            found = (
                await call(s, "search_patterns", query="database connection reuse", top_k=3)
            ).structuredContent
            assert found["hits"][0]["name"] == "pool" and len(found["hits"]) == 3
            assert (
                found["runtime"] in ("mojo", "python") and found["latency_ms"] >= found["search_ms"]
            )
            only = (
                await call(
                    s, "search_patterns", query="anything", top_k=4, filter={"name": "cache"}
                )
            ).structuredContent
            assert [h["name"] for h in only["hits"]] == ["cache"]

            first = found["hits"][0]["id"]
            got = (await call(s, "get_pattern", id=first)).structuredContent
            assert got["text"] == SAMPLE["pool"] and got["metadata"]["name"] == "pool"

            text = "Validate input at the boundary and fail with a clear error"
            added = (
                await call(s, "add_pattern", text=text, metadata={"name": "validate"})
            ).structuredContent
            assert added["indexed"] and not added["updated"]
            again = (
                await call(s, "search_patterns", query="check inputs at the API edge", top_k=1)
            ).structuredContent
            assert again["hits"][0]["id"] == added["id"]

            stats = (await call(s, "pattern_stats")).structuredContent
            assert stats["indexed"] == len(SAMPLE) + 1 and stats["live_index"]["following"]

            sent = (
                await call(
                    s,
                    "send_message",
                    destination="internal",
                    payload={"task": "review"},
                    priority=7,
                )
            ).structuredContent
            assert sent["destination"] == "internal"
            got_msgs = (
                await call(s, "receive_messages", tract="internal", max_n=5)
            ).structuredContent
            assert [m["payload"] for m in got_msgs["messages"]] == [{"task": "review"}]

    run(scenario())


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("search_pattern_map", {"query": "x", "max_results": 101}, "max_results"),
        ("search_pattern_map", {"query": "x" * 2001}, "query"),
        ("search_patterns", {"query": "  "}, "empty"),
        ("search_patterns", {"query": "x", "top_k": 101}, "top_k"),
        ("get_pattern", {"id": "no-such-pattern"}, "no-such-pattern"),
        ("add_pattern", {"text": "x", "metadata": {"blob": "y" * 20000}}, "metadata"),
        ("send_message", {"destination": "sideways", "payload": 1}, "tract"),
        ("send_message", {"destination": "internal", "payload": "z" * 70000}, "payload"),
        ("receive_messages", {"tract": "internal", "max_n": 1000}, "max_n"),
        ("search_patterns", {"query": 3}, "query"),
    ],
)
def test_bad_arguments_are_tool_errors(served, tool, arguments, message):
    async def scenario():
        async with http_session(served.url) as s:
            result = await call(s, tool, **arguments)
            assert result.isError, result
            assert message in text_of(result)

    run(scenario())


def test_pilot_empty_query_gives_no_results(served):
    async def scenario():
        async with http_session(served.url) as s:
            doc = json.loads(text_of(await call(s, "search_pattern_map", query="")))
            assert doc == {"query": "", "max_results": 10, "latency_ms": 0, "results": []}

    run(scenario())


def test_live_index_follows_another_process(served):
    """A write by a second process reaches the server's answer without a restart."""
    text = "Shard the message queue by tenant so that one noisy tenant cannot starve the others"

    async def best() -> str:
        async with http_session(served.url) as s:
            hits = (
                await call(
                    s, "search_patterns", query="noisy tenant starving a shared queue", top_k=1
                )
            ).structuredContent
            return hits["hits"][0]["metadata"].get("name")

    assert run(best()) != "shard"
    proc = subprocess.run(
        [*CLI, "patterns", "add", "--store", served.store_url, "--text", text,
         "--meta", "name=shard"],
        env=served.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 60
    while run(best()) != "shard":
        assert time.monotonic() < deadline, "the server never saw the other process's write"
        time.sleep(0.2)


def test_cli_search_goes_through_the_server(served):
    """`synapse-mojo search` asks the running server (socket, then SYNAPSE_SERVER_URL) and
    prints the same pilot document."""
    for extra in ({}, {"SYNAPSE_SERVER_URL": f"http://127.0.0.1:{served.port}"}):
        proc = subprocess.run(
            [*CLI, "-v", "search", "retry with backoff", "2", "--json",
             "--store", served.store_url],
            env={**served.env, **extra}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert set(doc) == PILOT_SEARCH_KEYS and doc["results"][0]["name"] == "retry"
        assert "answered by the server" in proc.stderr


@pytest.mark.parametrize(
    "command", [("search", "retry", "2", "--json"), ("patterns", "search", "retry", "--json")]
)
def test_search_through_the_server_imports_nothing_heavy(served, command):
    """The client path is a small JSON request: no NumPy, model, store driver or MCP client."""
    import sys

    from .test_cli_fast import _PROBE, HEAVY

    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([*command, "--store", served.store_url])],
        env=served.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    loaded = sorted(
        m for m in report["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)
    )
    assert not loaded, f"{command} through the server imported {loaded}"
    assert json.loads(proc.stdout)  # and it answered


def test_patterns_search_goes_through_the_server(served):
    proc = subprocess.run(
        [*CLI, "-v", "patterns", "search", "connection pooling", "--top-k", "2",
         "--filter", "language=python", "--json", "--store", served.store_url],
        env=served.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["hits"][0]["metadata"]["name"] == "pool" and doc["hits"][0]["text"] == SAMPLE["pool"]
    assert {"query", "runtime", "search_ms", "embed_ms", "fallback_reason", "hits"} == set(doc)
    assert "answered by the server" in proc.stderr


# --------------------------------------------------------------------------- stdio


def test_stdio_lists_and_searches(served):
    params = StdioServerParameters(
        command=CLI[0],
        args=[*CLI[1:], "serve", "--store", served.store_url, "--no-socket"],
        env=served.env,
    )

    async def scenario():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            assert {t.name for t in (await s.list_tools()).tools} >= TOOLS
            assert not {"send_message", "receive_messages"} & {
                t.name for t in (await s.list_tools()).tools
            }
            doc = json.loads(
                text_of(await call(s, "search_pattern_map", query="circuit breaker", max_results=1))
            )
            assert doc["results"][0]["name"] == "breaker"
            bad = await call(s, "search_pattern_map", query="x", max_results=-1)
            assert bad.isError

    run(scenario())


# --------------------------------------------------------------------------- access


def test_refuses_a_non_loopback_bind_without_a_token(served):
    proc = subprocess.run(
        [*CLI, "serve", "--transport", "http", "--host", "127.0.0.2", "--port", str(free_port()),
         "--store", served.store_url],
        env=served.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "SYNAPSE_SERVE_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


def test_token_required_off_loopback(served):
    """127.0.0.2 counts as "not loopback" for the rule (only 127.0.0.1, ::1, localhost do)."""
    token = "s3cret-token-for-the-test-0123456789"
    env = {
        **served.env,
        "SYNAPSE_SERVE_TOKEN": token,
        "SYNAPSE_RUNTIME_DIR": str(served.tmp / "run2"),
    }
    with ServeProcess(
        "--store", served.store_url, env=env, host="127.0.0.2", verbose=True
    ) as server:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": token}):
            response = httpx.post(server.url, json={}, headers=headers, timeout=60)
            assert response.status_code == 401
            assert token not in response.text

        async def scenario():
            async with http_session(server.url, token) as s:
                doc = json.loads(
                    text_of(
                        await call(s, "search_pattern_map", query="connection pool", max_results=1)
                    )
                )
                return doc["results"][0]["name"]

        assert run(scenario()) == "pool"
    assert token not in "".join(server.log)


# --------------------------------------------------------------------------- Redis


def test_live_index_on_redis(redis_server, search_kernel, kernel_cache, tmp_path):
    url = redis_server.url
    seed_store(url, SAMPLE)
    env = clean_env(
        SYNAPSE_KERNEL_CACHE=str(kernel_cache), SYNAPSE_RUNTIME_DIR=str(tmp_path / "run")
    )
    with ServeProcess("--store", url, env=env, verbose=True) as server:

        async def names(query: str) -> list[str]:
            async with http_session(server.url) as s:
                hits = (await call(s, "search_patterns", query=query, top_k=5)).structuredContent[
                    "hits"
                ]
                return [h["name"] for h in hits]

        assert "pool" in run(names("connection pooling"))
        from synapse_mojo.stores import open_store

        with open_store(url) as store:  # another process's view: delete one, add one
            store.delete([p.id for p in store.iter_patterns() if p.metadata["name"] == "pool"])
        seed_store(
            url, {"lock": "Take a distributed lock with a lease before touching shared state"}
        )
        deadline = time.monotonic() + 60
        while True:
            got = run(names("distributed lock with a lease"))
            if got[0] == "lock" and "pool" not in got:
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.2)


# --------------------------------------------------------------------------- benchmark


@pytest.mark.slow
def test_bench_serve_runs_small(search_kernel, kernel_cache, tmp_path):
    """`synapse-mojo bench serve` at tiny counts: every path runs, no errors, a valid document."""
    from synapse_mojo._dev.bench.report import load_document

    out = tmp_path / "serve.json"
    proc = subprocess.run(
        [*CLI, "bench", "serve", "--patterns", "12", "--calls", "2", "--clients", "1,2",
         "--startup-runs", "1", "--pilot-runs", "1", "--json", str(out)],
        env=clean_env(SYNAPSE_KERNEL_CACHE=str(kernel_cache)),
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = load_document(out)
    paths = {(r["path"], r["transport"], r["clients"]) for r in doc["records"]}
    assert {
        ("mcp", "http", 2), ("mcp", "stdio", 2), ("in-process", "-", 1),
        ("pilot", "cli-process", 1), ("cli-via-server", "unix", 1),
        ("startup", "synapse-mojo --help", 1),
    } <= paths  # fmt: skip
    assert doc["summary"]["errors"] == 0 and doc["summary"]["pilot_over_mcp_http"] is not None
    assert out.with_suffix(".md").exists()
