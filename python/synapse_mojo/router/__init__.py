"""The cross-tract message router (the "corpus callosum").

Carries :class:`Message` objects between the internal and external tracts of an agent
system, highest priority first, with zero loss, over two transports behind one interface
(:class:`Router`):

* ``memory://``: :class:`MemoryRouter`, in-process, the ordering done by the Mojo
  ``message_router`` kernel (``heapq`` fallback) behind the runtime adapter;
* ``redis://``: :class:`RedisStreamsRouter`, durable and cross-process on Redis Streams.

    from synapse_mojo.router import open_router, Tract, Priority

    with open_router("memory://") as router:
        router.send(Tract.INTERNAL, Tract.EXTERNAL, {"goal": "reply"}, priority=Priority.HIGH)
        for message in router.consume(Tract.EXTERNAL, max_n=10):
            ...
            router.ack(message)

The pilot's API lives in :mod:`synapse_mojo.router.compat`.
"""

from typing import TYPE_CHECKING, Any

from .aio import AsyncRouter
from .base import DeadLetter, DestinationStats, Router, RouterStats, Subscription
from .memory import MemoryRouter
from .message import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    HARD_MAX_PAYLOAD_BYTES,
    MAX_PRIORITY,
    MIN_PRIORITY,
    Message,
    Priority,
    Tract,
)
from .url import open_router, parse_router_url

if TYPE_CHECKING:  # imported on first use (see __getattr__)
    from .redis_streams import RedisStreamsRouter

__all__ = [
    "AsyncRouter",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "HARD_MAX_PAYLOAD_BYTES",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "DeadLetter",
    "DestinationStats",
    "MemoryRouter",
    "Message",
    "Priority",
    "RedisStreamsRouter",
    "Router",
    "RouterStats",
    "Subscription",
    "Tract",
    "open_router",
    "parse_router_url",
]


def __getattr__(name: str) -> Any:  # the Redis transport imports redis-py (an extra) on use
    if name == "RedisStreamsRouter":
        from .redis_streams import RedisStreamsRouter

        return RedisStreamsRouter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
