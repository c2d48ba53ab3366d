"""``open_router(url)``: the transport chosen by configuration.

    open_router("memory://")                                     in-process, defaults
    open_router("memory://?capacity=50000&backpressure=reject")
    open_router("redis://127.0.0.1:6379/0")                      Redis Streams
    open_router("redis://:secret@host:6379/0?group=workers&consumer=w1&claim_idle=10")
    open_router("unix:///run/redis.sock?db=0")

Query parameters set router options (see :class:`~.memory.MemoryRouter` and
:class:`~.redis_streams.RedisStreamsRouter`); other query parameters of a Redis URL are passed
to redis-py. Keyword arguments override the URL. An unknown scheme or option is a
``ConfigError``. ``SYNAPSE_ROUTER_URL`` is the default URL (else ``memory://``).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    """(transport, url for the driver, router options) of a router URL."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"router URL {url!r}: expected memory:// or redis://host:port/db")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qsl(parts.query, keep_blank_values=True)
    if scheme == "memory":
        if parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"router URL {url!r}: memory:// takes no host or path, only ?options")
        options = {}
        for name, value in query:
            if name not in MEMORY_OPTIONS:
                raise ConfigError(
                    f"router URL {url!r}: unknown option {name!r} for memory://; "
                    f"expected {sorted(MEMORY_OPTIONS)}"
                )
            options[name] = _coerce(name, value, MEMORY_OPTIONS[name])
        return "memory", url, options
    if scheme in _REDIS_SCHEMES:
        options, passthrough = {}, []
        for name, value in query:
            if name in REDIS_OPTIONS:
                options[name] = _coerce(name, value, REDIS_OPTIONS[name])
            else:
                passthrough.append((name, value))
        driver_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(passthrough), ""))
        return "redis", driver_url, options
    raise ConfigError(
        f"router URL {url!r}: unknown scheme {parts.scheme!r}; expected memory://, redis://, "
        "rediss:// or unix://"
    )


def open_router(url: str | None = None, **overrides: Any) -> Router:
    """A router for ``url`` (default ``SYNAPSE_ROUTER_URL`` or ``memory://``)."""
    transport, driver_url, options = parse_router_url(url if url is not None else default_url())
    options.update(overrides)
    if transport == "memory":
        from .memory import MemoryRouter

        return MemoryRouter(**options)
    from .redis_streams import RedisStreamsRouter

    try:
        return RedisStreamsRouter(driver_url, **options)
    except TypeError as exc:
        raise ConfigError(f"router URL {url!r}: {exc}") from exc
