"""``bench serve``: what an agent pays per pattern-map query, by path, in one run.

Paths (records' ``path``), all answering ``search_pattern_map``-style queries on one store:

* ``in-process``: ``PatternMap.search`` in this process (query embedding included): the floor;
* ``mcp``: a warm ``synapse-mojo serve`` called with the official MCP client, over streamable
  HTTP (``clients`` sessions at once) and over stdio (``clients`` requests in flight on one
  session, as one agent client does);
* ``cli-via-server``: a fresh ``synapse-mojo search QUERY N --json`` process answered by the
  running server through its Unix socket;
* ``pilot``: the pilot's path, a fresh ``synapse-mojo search QUERY N --json`` process per
  query with no server (model, store and index loaded each time);
* ``startup``: ``python -c pass``, ``synapse-mojo --help`` and ``synapse-mojo search --help``.

Process paths (startup, cli-via-server) run interleaved, round by round, so that machine noise
hits them alike; ``summary`` holds the ratios the targets are stated in.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synapse_mojo.runtime.metrics import percentile

QUERIES = (
    "retry a failed call with exponential backoff",
    "stop hammering a service that is already down",
    "charge a payment exactly once when clients retry",
    "speed up cosine similarity over many embeddings",
    "messages lost when a worker crashes halfway",
    "validate user input at the API boundary",
    "cache expensive computations safely",
    "rate limit requests per tenant",
    "structured logging without leaking secrets",
    "graceful shutdown of a background worker",
    "database migrations without downtime",
    "test code that talks to a real database",
    "handle timeouts in distributed calls",
    "keep configuration out of the code",
    "batch small writes for throughput",
    "detect and evict stale cache entries",
)

CLI = [sys.executable, "-c", "from synapse_mojo.cli import run; run()"]


@dataclass
class ServeBenchConfig:
    store_url: str | None = None  # None: a temporary SQLite store with the sample patterns
    patterns: int = 300  # sample patterns to import into the temporary store
    calls: int = 50  # timed tool calls per client
    clients: tuple[int, ...] = (1, 4, 16)
    transports: tuple[str, ...] = ("http", "stdio")
    max_results: int = 5
    startup_runs: int = 10
    pilot_runs: int = 5


def _stats(
    latencies_s: list[float], wall_s: float | None = None, errors: int = 0
) -> dict[str, Any]:
    ms = sorted(x * 1e3 for x in latencies_s)
    out: dict[str, Any] = {
        "calls": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "errors": errors,
    }
    out["calls_per_s"] = (
        (len(ms) / wall_s) if wall_s else (1e3 / out["p50_ms"] if out["p50_ms"] else None)
    )
    return out


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _env(runtime_dir: Path) -> dict[str, str]:
    keep = (
        "SYNAPSE_KERNEL_CACHE",
        "SYNAPSE_EMBEDDINGS_URL",
        "SYNAPSE_EMBEDDINGS_MODEL",
        "SYNAPSE_FORCE_PYTHON",
        "SYNAPSE_THREADS",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_") or k in keep}
    env["SYNAPSE_RUNTIME_DIR"] = str(runtime_dir)
    return env


def _seed(url: str, patterns: int) -> int:
    from synapse_mojo.data import sample_patterns_path
    from synapse_mojo.patternmap import PatternMap, formats

    doc = formats.read_file(sample_patterns_path(), "auto")
    with PatternMap.open(url) as pmap:
        pmap.upsert(doc.patterns[:patterns])
        return pmap.store.count()


class ServeProcess:
    """``synapse-mojo serve --transport http`` in a subprocess on a free port, until ``stop()``;
    its stderr is kept in ``log``. Used by ``bench serve`` and by the tests."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str],
        host: str = "127.0.0.1",
        port: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [*CLI, *(["-v"] if verbose else []), "serve", "--transport", "http",
             "--host", host, "--port", str(self.port), *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if "ready on" in line:
                self._ready.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    def wait_ready(self, timeout: float = 900) -> ServeProcess:
        """Returns once the server says it is ready; stops it and raises if it exits first."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("synapse-mojo serve did not start:\n" + "".join(self.log[-40:]))
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServeProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _drive(
    sessions: list[Any], calls: int, max_results: int
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0

    async def worker(n: int, session: Any) -> None:
        nonlocal errors
        for i in range(calls):
            query = QUERIES[(n * 7 + i) % len(QUERIES)]
            started = time.perf_counter()
            try:
                result = await session.call_tool(
                    "search_pattern_map", {"query": query, "max_results": max_results}
                )
                ok = not result.isError and json.loads(result.content[0].text).get("results")
            except Exception:  # noqa: BLE001 - counted, the run goes on
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(n, s) for n, s in enumerate(sessions)))
    return latencies, time.perf_counter() - started, errors


async def _mcp_http(url: str, clients: int, calls: int, max_results: int) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with AsyncExitStack() as stack:
        sessions = []
        for _ in range(clients):
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=httpx.Timeout(120, read=300))
            )
            read, write, _ = await stack.enter_async_context(
                streamable_http_client(url, http_client=client)
            )
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            await session.call_tool("search_pattern_map", {"query": "warm-up", "max_results": 1})
            sessions.append(session)
        latencies, wall, errors = await _drive(sessions, calls, max_results)
    return _stats(latencies, wall, errors)


async def _mcp_stdio(store_url: str, env: dict[str, str], clients_list: tuple[int, ...], calls: int,
                     max_results: int) -> dict[int, dict[str, Any]]:  # fmt: skip
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=CLI[0], args=[*CLI[1:], "serve", "--store", store_url, "--no-socket"], env=env
    )
    out = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("search_pattern_map", {"query": "warm-up", "max_results": 1})
        for clients in clients_list:
            latencies, wall, errors = await _drive([session] * clients, calls, max_results)
            out[clients] = _stats(latencies, wall, errors)
    return out


def _time_process(
    argv: list[str], env: dict[str, str], check_json: bool = False
) -> tuple[float, bool]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    ok = proc.returncode == 0
    if ok and check_json:
        try:
            ok = bool(json.loads(proc.stdout).get("results"))
        except ValueError:
            ok = False
    return elapsed, ok


def run_serve_benchmark(
    cfg: ServeBenchConfig, log: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """Runs every path (see the module docstring); returns the ``serve`` benchmark document."""
    from synapse_mojo.patternmap import PatternMap

    from .machine import machine_info
    from .report import new_document

    doc = new_document("serve", command="synapse-mojo bench serve", machine=machine_info())
    doc["parameters"] = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in vars(cfg).items()
        if k != "store_url"
    }
    records: list[dict[str, Any]] = doc["records"]
    with tempfile.TemporaryDirectory(prefix="synapse-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        store_url = cfg.store_url or f"sqlite:///{tmp / 'patterns.db'}"
        if cfg.store_url is None:
            log(f"importing {cfg.patterns} sample patterns")
            doc["parameters"]["store_patterns"] = _seed(store_url, cfg.patterns)
        served_env, bare_env = _env(tmp / "run"), _env(tmp / "no-server")

        log("in-process PatternMap.search")
        with PatternMap.open(store_url) as pmap:
            pmap.search("warm-up", 1)
            latencies = []
            for i in range(cfg.calls):
                started = time.perf_counter()
                pmap.search(QUERIES[i % len(QUERIES)], cfg.max_results)
                latencies.append(time.perf_counter() - started)
        records.append({"path": "in-process", "transport": "-", "clients": 1, **_stats(latencies)})

        server = ServeProcess("--store", store_url, env=served_env)
        try:
            log("starting synapse-mojo serve")
            server.wait_ready()
            if "http" in cfg.transports:
                for clients in cfg.clients:
                    log(f"MCP over HTTP, {clients} clients")
                    stats = asyncio.run(_mcp_http(server.url, clients, cfg.calls, cfg.max_results))
                    records.append(
                        {"path": "mcp", "transport": "http", "clients": clients, **stats}
                    )
            if "stdio" in cfg.transports:
                log("MCP over stdio")
                for clients, stats in asyncio.run(
                    _mcp_stdio(store_url, served_env, cfg.clients, cfg.calls, cfg.max_results)
                ).items():
                    records.append(
                        {"path": "mcp", "transport": "stdio", "clients": clients, **stats}
                    )

            log(f"process start-up, {cfg.startup_runs} interleaved rounds")
            cases = {
                "python -c pass": ([sys.executable, "-c", "pass"], bare_env, False),
                "synapse-mojo --help": ([*CLI, "--help"], bare_env, False),
                "synapse-mojo search --help": ([*CLI, "search", "--help"], bare_env, False),
                "cli-via-server": (
                    [
                        *CLI,
                        "search",
                        QUERIES[0],
                        str(cfg.max_results),
                        "--json",
                        "--store",
                        store_url,
                    ],
                    served_env,
                    True,
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            failures = dict.fromkeys(cases, 0)
            for _ in range(cfg.startup_runs):
                for name, (argv, env, check) in cases.items():
                    elapsed, ok = _time_process(argv, env, check)
                    times[name].append(elapsed)
                    failures[name] += 0 if ok else 1
        finally:
            server.stop()
        for name, values in times.items():
            path = "cli-via-server" if name == "cli-via-server" else "startup"
            transport = name if path == "startup" else "unix"
            records.append(
                {"path": path, "transport": transport, "clients": 1,
                 **_stats(values, errors=failures[name])}
            )  # fmt: skip

        log(f"the pilot's path: {cfg.pilot_runs} fresh CLI processes, no server")
        pilot, pilot_errors = [], 0
        for i in range(cfg.pilot_runs):
            argv = [
                *CLI,
                "search",
                QUERIES[i % len(QUERIES)],
                str(cfg.max_results),
                "--json",
                "--store",
                store_url,
            ]
            elapsed, ok = _time_process(argv, bare_env, True)
            pilot.append(elapsed)
            pilot_errors += 0 if ok else 1
        records.append(
            {
                "path": "pilot",
                "transport": "cli-process",
                "clients": 1,
                **_stats(pilot, errors=pilot_errors),
            }
        )
    doc["summary"] = _summary(records)
    return doc


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    def p50(path: str, transport: str, clients: int = 1) -> float | None:
        for r in records:
            if (r["path"], r["transport"], r["clients"]) == (path, transport, clients):
                return r["p50_ms"]
        return None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    def minus(a: float | None, b: float | None) -> float | None:
        return round(a - b, 1) if a is not None and b is not None else None

    http, inproc, pilot = p50("mcp", "http"), p50("in-process", "-"), p50("pilot", "cli-process")
    bare = p50("startup", "python -c pass")
    return {
        "mcp_http_over_in_process": ratio(http, inproc),  # target <= 2
        "pilot_over_mcp_http": ratio(pilot, http),  # target >= 20
        "help_over_bare_ms": minus(p50("startup", "synapse-mojo --help"), bare),  # target <= 250
        "search_help_over_bare_ms": minus(
            p50("startup", "synapse-mojo search --help"), bare
        ),  # target <= 250
        "cli_via_server_over_bare_ms": minus(p50("cli-via-server", "unix"), bare),  # target <= 350
        "errors": sum(r["errors"] for r in records),
    }
