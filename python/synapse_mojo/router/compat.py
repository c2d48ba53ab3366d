"""Drop-in for the pilot's message-router API (``TractType``, ``MessagePriority``,
``MessageRouter``, ``get_message_router``), as a thin layer over :class:`MemoryRouter`.

    from synapse_mojo.router.compat import MessageRouter, TractType, MessagePriority

    router = MessageRouter(capacity=10000)
    mid = router.route_message(TractType.INTERNAL, TractType.EXTERNAL,
                               MessagePriority.HIGH, payload={"goal": "reply"}, payload_size=64)
    msg = router.get_next_message(TractType.EXTERNAL)     # Message or None
    msg.id, msg.priority, msg.timestamp_ms, msg.payload

Behaviour differences from the pilot, on purpose:

* **No silent loss.** The pilot dropped a message on a full queue and counted it in
  ``message_loss_count``. Here ``route_message`` raises ``QueueFullError`` (a clear error; the
  message is still the caller's) and ``message_loss_count`` stays 0; refusals are counted in
  ``get_stats()["rejected_count"]``.
* **Payloads are data.** Payloads must be bytes or msgpack/JSON-like data (what the Redis
  transport can carry); anything else raises ``UnserializablePayloadError`` at once. In-process
  the very same object is handed over (no copy).
* **Priorities** are validated (1..5 named, any int 0..9 accepted); tracts must be
  ``TractType`` (or 0/1, "internal"/"external").
* Ids are per-router integers 1, 2, 3, ... as before; the underlying message also has a ULID
  (``Message.ulid``).
"""

from __future__ import annotations

import enum
import itertools
import threading
from dataclasses import dataclass, replace
from typing import Any

from ..config import Mode
from ..config import force_python as force_python_env
from ..errors import InvalidInputError, QueueFullError
from ..runtime.adapter import Runtime, get_runtime
from .memory import MemoryRouter
from .message import Message as CoreMessage
from .message import Tract, check_priority

_COMPAT_ID = "x-pilot-id"
_COMPAT_SIZE = "x-pilot-payload-size"


class TractType(enum.IntEnum):
    INTERNAL = 0
    EXTERNAL = 1


class MessagePriority(enum.IntEnum):
    """Higher is served first."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4
    CRITICAL = 5


_TO_TRACT = {TractType.INTERNAL: Tract.INTERNAL, TractType.EXTERNAL: Tract.EXTERNAL}
_FROM_TRACT = {v: k for k, v in _TO_TRACT.items()}


def _tract(value: Any) -> Tract:
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return _TO_TRACT[TractType(value)]
    return Tract.coerce(value)


@dataclass
class Message:
    """The pilot's message record."""

    id: int
    source_tract: TractType
    dest_tract: TractType
    priority: MessagePriority | int
    timestamp_ms: int
    payload_size: int
    payload: Any = None
    ulid: str = ""


def pilot_message(core: CoreMessage) -> Message:
    """The pilot's record of a router message (ids and sizes from the compat headers)."""
    headers = core.headers
    size = int(headers.get(_COMPAT_SIZE, "0"))
    priority: MessagePriority | int = core.priority
    try:
        priority = MessagePriority(core.priority)
    except ValueError:
        pass
    return Message(
        id=int(headers.get(_COMPAT_ID, "0")),
        source_tract=_FROM_TRACT[core.source],
        dest_tract=_FROM_TRACT[core.destination],
        priority=priority,
        timestamp_ms=int(core.created_at * 1000),
        payload_size=size if size or core.payload is None else core.payload_size,
        payload=core.payload,
        ulid=core.id,
    )


def pilot_core_message(
    pilot_id: int, source: Any, destination: Any, priority: Any, payload: Any, payload_size: int
) -> CoreMessage:
    """A router message carrying the pilot's id and payload size (validated)."""
    if isinstance(payload_size, bool) or not isinstance(payload_size, int) or payload_size < 0:
        raise InvalidInputError(f"payload_size must be an int >= 0, got {payload_size!r}")
    check_priority(priority)
    return CoreMessage(
        _tract(source),
        _tract(destination),
        payload,
        priority=int(priority),
        headers={_COMPAT_ID: str(pilot_id), _COMPAT_SIZE: str(payload_size)},
    )


class MessageRouter:
    """The pilot's router API over :class:`MemoryRouter` (see the module docstring).

    ``capacity``: messages per destination. ``force_python=True`` runs this router's queues on
    the ``heapq`` fallback whatever the feature mode (``SYNAPSE_FORCE_PYTHON=1`` does the same
    for every router).
    """

    def __init__(self, capacity: int = 10000, force_python: bool = False, *, runtime: Runtime | None = None) -> None:
        if runtime is None:
            runtime = get_runtime()
            if force_python:
                settings = runtime.settings
                modes = dict(settings.modes)
                modes["message_router"] = Mode("off")
                runtime = Runtime(replace(settings, modes=modes))
        self.force_python = force_python
        self._router = MemoryRouter(capacity=capacity, backpressure="reject", runtime=runtime)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._total = 0
        self._to = {Tract.INTERNAL: 0, Tract.EXTERNAL: 0}
        self._peak = 0
        self._rejected = 0

    @property
    def capacity(self) -> int:
        return self._router.capacity

    @property
    def router(self) -> MemoryRouter:
        """The underlying router (new-API access to the same queues)."""
        return self._router

    def route_message(
        self,
        source_tract: TractType | int,
        dest_tract: TractType | int,
        priority: MessagePriority | int = MessagePriority.NORMAL,
        payload: Any = None,
        payload_size: int = 0,
    ) -> int:
        """Queues a message; returns its id. Raises ``QueueFullError`` when the destination is
        full (never drops), ``UnknownTractError``/``InvalidInputError`` for bad arguments."""
        with self._lock:
            mid = next(self._ids)
        message = pilot_core_message(mid, source_tract, dest_tract, priority, payload, payload_size)
        dst = message.destination
        try:
            self._router.publish(message)
        except QueueFullError:
            with self._lock:
                self._rejected += 1
            raise
        depth = self._router.depth()
        with self._lock:
            self._total += 1
            self._to[dst] += 1
            self._peak = max(self._peak, depth)
        return mid

    def get_next_message(self, tract: TractType | int) -> Message | None:
        """The highest-priority message for ``tract`` (FIFO within a priority), or None."""
        got = self._router.consume(_tract(tract), 1, 0)
        if not got:
            return None
        core = got[0]
        self._router.ack(got)
        return pilot_message(core)

    def get_queue_depth(self, tract: TractType | int) -> int:
        return self._router.depth(_tract(tract))

    def get_total_queue_depth(self) -> int:
        return self._router.depth()

    def get_stats(self) -> dict[str, Any]:
        """The pilot's counters (``message_loss_count`` is always 0), plus ``rejected_count``
        (refused on a full queue) and ``runtime`` (mojo or python)."""
        runtime = self._router.runtime_in_use()
        with self._lock:
            return {
                "total_messages": self._total,
                "messages_to_internal": self._to[Tract.INTERNAL],
                "messages_to_external": self._to[Tract.EXTERNAL],
                "peak_queue_depth": self._peak,
                "message_loss_count": 0,
                "rejected_count": self._rejected,
                "runtime": runtime,
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_counters()

    def close(self) -> list[CoreMessage]:
        return self._router.close()


_singleton: MessageRouter | None = None
_singleton_lock = threading.Lock()


def get_message_router(capacity: int = 10000) -> MessageRouter:
    """The process-wide router (created on first use). ``SYNAPSE_FORCE_PYTHON=1`` at creation
    makes it Python-only; set later, it still takes effect (the runtime reads it per call)."""
    global _singleton
    with _singleton_lock:
        if _singleton is None or _singleton._router.closed:
            _singleton = MessageRouter(capacity=capacity, force_python=force_python_env())
        return _singleton


def reset_message_router() -> None:
    """Closes and forgets the singleton (tests)."""
    global _singleton
    with _singleton_lock:
        if _singleton is not None:
            _singleton.close()
        _singleton = None


__all__ = [
    "Message",
    "pilot_core_message",
    "pilot_message",
    "MessagePriority",
    "MessageRouter",
    "TractType",
    "get_message_router",
    "reset_message_router",
]

