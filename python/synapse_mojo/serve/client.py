"""The CLI's way to a running server: ``POST /call`` over a Unix socket or HTTP, stdlib only.

    result = call("search_pattern_map", {"query": "retry", "max_results": 5})
    if result is None: ...   # no server (or it serves another store): answer in process

Where: ``SYNAPSE_SERVER_URL`` (``http://host:port`` or ``unix:/path/serve.sock``), else the
default socket in the runtime directory if a server of this user listens there. The token
in ``SYNAPSE_SERVE_TOKEN`` is sent when set. Importing this module loads nothing beyond the
standard library (``http.client``, ``json``), so a search through the server starts fast.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from .._urls import redact
from ..errors import ConfigError, InvalidInputError, SynapseError
from .paths import default_socket, trusted_socket

SERVER_ENV = "SYNAPSE_SERVER_URL"
TOKEN_ENV = "SYNAPSE_SERVE_TOKEN"


def store_fingerprint(url: str) -> str:
    """Identifies a store URL without sending it: a hash of its redacted form, so that nothing
    derived from a password leaves the process (the password does not name the store)."""
    return hashlib.sha256(redact(url.strip()).encode("utf-8")).hexdigest()[:32]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _connection(timeout: float) -> tuple[http.client.HTTPConnection, str] | None:
    configured = os.environ.get(SERVER_ENV, "").strip()
    if configured:
        if configured.startswith("unix:"):
            return _UnixConnection(configured[5:].removeprefix("//"), timeout), "/call"
        parts = urlsplit(configured)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{SERVER_ENV}: expected http://host:port or unix:/path, got {redact(configured)!r}"
            )
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        base = parts.path.rstrip("/").removesuffix("/mcp")
        return cls(parts.hostname, parts.port, timeout=timeout), f"{base}/call"
    path = default_socket()
    if trusted_socket(path):
        return _UnixConnection(str(path), timeout), "/call"
    return None


def call(
    tool: str, arguments: dict[str, Any], *, store_url: str | None = None, timeout: float = 60.0
) -> Any:
    """The tool's result from a running server, or None when there is none to ask (or it
    serves another store). A refused argument raises ``InvalidInputError``, a refused token
    ``ConfigError``."""
    target = _connection(timeout)
    if target is None:
        return None
    conn, path = target
    body = json.dumps({
        "tool": tool, "arguments": arguments,
        "store": store_fingerprint(store_url) if store_url else None,
    }).encode("utf-8")  # fmt: skip
    headers = {"content-type": "application/json"}
    if token := os.environ.get(TOKEN_ENV):
        headers["authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        status, raw = response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None  # not running (a stale socket, a stopped server): answer in process
    finally:
        conn.close()
    if status == 200:
        return json.loads(raw)["result"]
    if status == 409:
        return None
    try:
        message = json.loads(raw).get("error", "")
    except ValueError:
        message = raw[:200].decode("utf-8", "replace")
    if status == 401:
        raise ConfigError(f"the server refused the request: {message} (set {TOKEN_ENV})")
    if status == 400:
        raise InvalidInputError(message)
    raise SynapseError(f"the server answered {status}: {message}")


__all__ = ["call", "store_fingerprint"]
