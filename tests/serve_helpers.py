"""Starting ``synapse-mojo serve`` for tests and benchmarks: a subprocess on a random port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

CLI = [sys.executable, "-c", "from synapse_mojo.cli import run; run()"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SYNAPSE_") or k == "SYNAPSE_TEST_KERNEL_CACHE"
    }
    env.update(extra)
    return env


class ServeProcess:
    """``synapse-mojo serve --transport http`` until ``stop()``; stderr is kept in ``log``."""

    def __init__(
        self, *args: str, env: dict[str, str], host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [*CLI, "-v", "serve", "--transport", "http", "--host", host, "--port", str(self.port), *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
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

    def wait_ready(self, timeout: float = 600) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("serve did not start:\n" + "".join(self.log))
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


def seed_store(url: str, texts: dict[str, str]) -> None:
    """Writes ``name -> text`` patterns (embedded with the local MiniLM) into ``url``."""
    from synapse_mojo.patternmap import PatternMap

    with PatternMap.open(url) as pmap:
        for name, text in texts.items():
            pmap.add_text(text, {"name": name, "language": "python", "type": "pattern"})


SAMPLE = {
    "retry": "Retry idempotent calls with jittered exponential backoff",
    "breaker": "Wrap a flaky dependency in a circuit breaker that opens after repeated failures",
    "cache": "Cache the embeddings of repeated queries so that they are computed once",
    "pool": "Reuse database connections from a bounded pool instead of opening one per request",
}

__all__ = ["CLI", "SAMPLE", "Path", "ServeProcess", "clean_env", "free_port", "seed_store"]
