"""Every Redis key and name the Streams transport uses, in one place.

With the default prefix ``synapse:router`` and destination ``internal``::

    synapse:router:{internal}:p0 .. :p9   stream per (destination, priority band); p9 is served
                                          first. Entry fields: id (ULID), h (msgpack head),
                                          p (payload bytes). See ``redis_wire.py``.
    synapse:router:{internal}:dead        dead letters: the original fields plus reason,
                                          attempts, stream, entry, dead_at (capped, ~100k)
    synapse:router:{internal}:done:<ULID> dedupe record of one message (TTL, default 24 h):
                                          "<stream>|<entry id>|<consumer>", the entry that
                                          carries the message and the consumer holding it
                                          (kept after the ack: other copies are duplicates);
                                          "...|done" appended by an ack that committed
                                          writes; "dead" once dead-lettered
    synapse:router:{internal}:counters    hash: published, acked, dead_lettered, duplicates
                                          (totals over every process)

    consumer group   synapse-router       one per stream (all bands of a destination)
    consumer name    <host>:<pid>:<rand>  unique per router instance unless given; a stable
                                          name lets a restarted consumer re-handle its own
                                          pending entries first, in order

The ``{destination}`` hash tag keeps a destination's keys in one Redis Cluster slot, so the
server-side scripts, which touch several of them, stay valid there.
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from .message import MAX_PRIORITY, MIN_PRIORITY, Tract

DEFAULT_PREFIX = "synapse:router"
DEFAULT_GROUP = "synapse-router"

_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


def check_name(value: str, what: str) -> str:
    """Prefixes, group and consumer names: letters, digits and ``_ . : -`` (no ``|``, which
    the dedupe record uses as a separator, no braces, which are hash tags)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            f"{what} {value!r}: use 1-200 characters from letters, digits and _ . : -"
        )
    return value


class Keys:
    """Key names for one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = check_name(prefix, "key prefix")

    def base(self, destination: Tract) -> str:
        return f"{self.prefix}:{{{destination.value}}}"

    def stream(self, destination: Tract, priority: int) -> str:
        return f"{self.base(destination)}:p{priority}"

    def bands(self, destination: Tract) -> list[str]:
        """Band streams, highest priority first (the order they are read in)."""
        return [self.stream(destination, p) for p in range(MAX_PRIORITY, MIN_PRIORITY - 1, -1)]

    def dead(self, destination: Tract) -> str:
        return f"{self.base(destination)}:dead"

    def done_prefix(self, destination: Tract) -> str:
        return f"{self.base(destination)}:done:"

    def done(self, destination: Tract, message_id: str) -> str:
        return f"{self.done_prefix(destination)}{message_id}"

    def counters(self, destination: Tract) -> str:
        return f"{self.base(destination)}:counters"
