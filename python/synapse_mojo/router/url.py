"""``open_router(url)``: the transport chosen by configuration.

    open_router("memory://")                                     in-process, defaults
    open_router("memory://?capacity=50000&backpressure=reject")
    open_router("redis://127.0.0.1:6379/0")                      Redis Streams
    open_router("redis://:secret@host:6379/0?group=workers&consumer=w1&claim_idle=10")
    open_router("unix:///run/redis.sock?db=0")

Query parameters set router options (see :class:`~.memory.MemoryRouter` and
:class:`~.redis_streams.RedisStreamsRouter`); a Redis URL may also carry the redis-py options
listed by ``synapse_mojo._urls.redis_driver_options`` (``client_name``, ``max_connections``,
TLS files for ``rediss``, ...), which are passed on. Keyword arguments override the URL. An
unknown scheme or option is a ``ConfigError`` (the one rule of :mod:`synapse_mojo._urls`);
passwords are shown as ``***`` everywhere. ``SYNAPSE_ROUTER_URL`` is the default URL (else
``memory://``).
"""

from __future__ import annotations

import os
from typing import Any

from .._urls import check_options, parse_url, redact, redis_driver_options
from ..errors import ConfigError
from .base import Router

_INT = int
_FLOAT = float

MEMORY_OPTIONS: dict[str, type] = {
    "capacity": _INT,
    "backpressure": str,
    "publish_timeout": _FLOAT,
    "max_payload_bytes": _INT,
    "max_attempts": _INT,
    "name": str,
}
REDIS_OPTIONS: dict[str, type] = {
    "prefix": str,
    "group": str,
    "consumer": str,
    "max_attempts": _INT,
    "claim_idle": _FLOAT,
    "retry_delay": _FLOAT,
    "dedupe_ttl": _INT,
    "max_backlog": _INT,
    "backpressure": str,
    "publish_timeout": _FLOAT,
    "retry_timeout": _FLOAT,
    "dead_letter_cap": _INT,
    "max_payload_bytes": _INT,
    "trim_interval": _FLOAT,
    "socket_timeout": _FLOAT,
}
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def default_url() -> str:
    return os.environ.get("SYNAPSE_ROUTER_URL", "").strip() or "memory://"


def _coerce(name: str, value: str, kind: type) -> Any:
    if kind is str:
        return value
    if name == "max_backlog" and value.lower() in ("none", "unlimited", "0"):
        return None
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"router URL option {name}={value!r}: expected {kind.__name__}") from None


def parse_router_url(url: str) -> tuple[str, str, dict[str, Any]]:
    """(transport, url for the driver, router options) of a router URL.

    The driver URL keeps the credentials: hand it to the router, never show it.
    """
    if not isinstance(url, str) or "://" not in url:
        shown = redact(url) if isinstance(url, str) else repr(url)
        raise ConfigError(f"router URL {shown!r}: expected memory:// or redis://host:port/db")
    parsed = parse_url(url, what="router URL", schemes=("memory", *_REDIS_SCHEMES))
    if parsed.scheme == "memory":
        if parsed.host or parsed.port or parsed.username or parsed.path not in ("", "/"):
            raise ConfigError(
                f"router URL {parsed.redacted()!r}: memory:// takes no host or path, only ?options"
            )
        check_options(parsed, MEMORY_OPTIONS, what="router URL")
        options = {
            name: _coerce(name, value, MEMORY_OPTIONS[name])
            for name, value in parsed.options.items()
        }
        return "memory", url, options
    driver_options = redis_driver_options(parsed.scheme)
    check_options(parsed, (*REDIS_OPTIONS, *driver_options), what="router URL")
    options = {
        name: _coerce(name, value, REDIS_OPTIONS[name])
        for name, value in parsed.options.items()
        if name in REDIS_OPTIONS
    }
    return "redis", parsed.driver_url(keep=driver_options), options


def open_router(url: str | None = None, **overrides: Any) -> Router:
    """A router for ``url`` (default ``SYNAPSE_ROUTER_URL`` or ``memory://``)."""
    target = url if url is not None else default_url()
    transport, driver_url, options = parse_router_url(target)
    options.update(overrides)
    if transport == "memory":
        from .memory import MemoryRouter

        return MemoryRouter(**options)
    from .redis_streams import RedisStreamsRouter

    try:
        return RedisStreamsRouter(driver_url, **options)
    except TypeError as exc:
        raise ConfigError(f"router URL {redact(target)!r}: {exc}") from exc
