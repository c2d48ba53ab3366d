"""Runs the server: one warm ``PatternService``, MCP over stdio or streamable HTTP, a Unix socket
for the CLI, and the live-index poll, all on one event loop.

Access rule: a bind address other than 127.0.0.1, ::1 or localhost needs a bearer token
(``SYNAPSE_SERVE_TOKEN``, at least 16 characters); without one the server refuses to start.
When a token is set, every HTTP request (MCP and ``/call``, also on loopback and on the Unix
socket) must carry ``Authorization: Bearer <token>``; it is compared in constant time
(``hmac.compare_digest``) and a missing or wrong one gets 401. The token never appears in logs.

``POST /call`` is a plain JSON way to call the read tools (``CALLABLE``), used by the CLI so that
a search through the server needs no MCP client: ``{"tool", "arguments", "store"}`` ->
``{"result"}`` (200), ``{"error"}`` (400: bad arguments; 409: this server serves another store,
``store`` being the client's ``store_fingerprint``; 404: unknown tool).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._urls import redact, redact_text
from ..errors import ConfigError, SynapseError
from .client import store_fingerprint
from .paths import default_socket, private_dir, trusted_socket
from .service import PatternService

log = logging.getLogger("synapse_mojo.serve")

LOOPBACK = ("127.0.0.1", "::1", "localhost")
TOKEN_ENV = "SYNAPSE_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16
MAX_CALL_BYTES = 262_144


@dataclass
class ServeOptions:
    store_url: str | None = None
    router_url: str | None = None
    transport: str = "stdio"  # or "http"
    host: str = "127.0.0.1"
    port: int = 8765
    socket_path: Path | None = None  # None: the default socket; see ``use_socket``
    use_socket: bool = True
    poll_interval: float = 0.2
    token: str | None = None


def check_access(host: str, token: str | None) -> None:
    """Refuses a non-loopback bind without a token, and a token too short to be one."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters")
    if host not in LOOPBACK and not token:
        raise ConfigError(
            f"binding {host} (not loopback) needs a bearer token: set {TOKEN_ENV} "
            f"(at least {MIN_TOKEN_CHARS} random characters) and give it to the clients"
        )


class BearerAuth:
    """ASGI middleware: 401 unless ``Authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.expected is not None and scope["type"] == "http":
            given = b""
            for name, value in scope.get("headers", ()):
                if name == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "missing or wrong bearer token"}'
                headers = [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def call_route(service: PatternService) -> Any:
    """The ``POST /call`` route (see the module docstring)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ..stores import default_store_url
    from .mcp_server import CALLABLE

    async def call(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_CALL_BYTES:
            return JSONResponse({"error": f"request over {MAX_CALL_BYTES} bytes"}, status_code=413)
        try:
            doc = json.loads(body)
            tool, arguments = doc["tool"], doc.get("arguments") or {}
            if not isinstance(arguments, dict):
                raise TypeError("arguments must be an object")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        wanted = str(doc.get("store") or store_fingerprint(default_store_url()))
        if wanted not in service.fingerprints:
            return JSONResponse({"error": "this server serves another store"}, status_code=409)
        if tool not in CALLABLE:
            return JSONResponse(
                {"error": f"unknown tool {tool!r}; callable: {list(CALLABLE)}"}, status_code=404
            )
        try:
            result = getattr(service, tool)(**arguments)
        except TypeError as exc:
            return JSONResponse({"error": f"bad arguments for {tool}: {exc}"}, status_code=400)
        except SynapseError as exc:
            return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=400)
        return JSONResponse({"result": result})

    return Route("/call", call, methods=["POST"])


class _Server:
    """uvicorn's Server without its own signal handling (several run on one loop; we stop them)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Quiet(config)


def _claim_socket(path: Path) -> bool:
    """True if ``path`` is free for us (a stale socket of ours is removed); False if a live
    server already listens there."""
    private_dir(path.parent)
    if not path.exists() and not path.is_symlink():
        return True
    if not trusted_socket(path):
        raise ConfigError(
            f"{path} exists and is not a socket of this user: remove it or pass --socket PATH"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return False
    except OSError:
        path.unlink()
        return True
    finally:
        probe.close()


async def _follow(service: PatternService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            service.follow()
        except SynapseError as exc:  # the store may be away for a while: keep serving
            log.warning("live index: %s", redact_text(str(exc)))


async def serve(options: ServeOptions, *, ready: Any = None) -> None:
    """Opens the service and serves until stdin closes (stdio) or SIGINT/SIGTERM."""
    import uvicorn
    from starlette.applications import Starlette

    from .mcp_server import build_server

    token = options.token if options.token is not None else (os.environ.get(TOKEN_ENV) or None)
    if options.transport == "http":
        check_access(options.host, token)
    elif token is not None:
        check_access("127.0.0.1", token)
    service = PatternService.open(options.store_url, router_url=options.router_url)
    servers: list[Any] = []
    socket_path: Path | None = None
    try:
        mcp = build_server(service, host=options.host, port=options.port)
        if options.use_socket:
            candidate = options.socket_path or default_socket()
            if _claim_socket(candidate):
                socket_path = candidate
                app = BearerAuth(Starlette(routes=[call_route(service)]), token)
                servers.append(
                    _Server(
                        uvicorn.Config(app, uds=str(candidate), lifespan="off", log_level="warning")
                    )
                )
            else:
                log.warning("another server listens on %s: not serving the CLI socket", candidate)
        if options.transport == "http":
            http_app = mcp.streamable_http_app()
            http_app.router.routes.append(call_route(service))
            config = uvicorn.Config(
                BearerAuth(http_app, token),
                host=options.host,
                port=options.port,
                log_level="warning",
                timeout_graceful_shutdown=2,
            )
            servers.append(_Server(config))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        tasks.append(asyncio.create_task(_follow(service, options.poll_interval)))
        if options.transport == "stdio":
            stdio = asyncio.create_task(mcp.run_stdio_async())
            stdio.add_done_callback(lambda _t: stop.set())
            tasks.append(stdio)
        while servers and not all(s.started for s in servers) and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        for task in tasks:
            if task.done() and (failure := task.exception()) is not None:
                raise failure
        where = (
            [f"http://{options.host}:{options.port}/mcp"]
            if options.transport == "http"
            else ["stdio"]
        )
        if socket_path is not None:
            where.append(f"unix:{socket_path}")
        log.info("serving %s on %s", redact(service.pmap.store.url), ", ".join(where))
        if ready is not None:
            ready(where)
        await stop.wait()
        for s in servers:
            s.should_exit = True
        for task in tasks[len(servers) :]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        try:
            service.close()
        finally:
            if socket_path is not None:
                with contextlib.suppress(OSError):
                    socket_path.unlink()
