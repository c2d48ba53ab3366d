"""Drop-in for the pilot's message-router API (``TractType``, ``MessagePriority``,
``Message``, ``MessageStats``, ``MessageRouter``, ``get_message_router``), as a thin layer over
:class:`MemoryRouter`.

    from synapse_mojo.router.compat import MessageRouter, TractType, MessagePriority

    router = MessageRouter(capacity=10000)
    mid = router.route_message(TractType.INTERNAL, TractType.EXTERNAL,
                               MessagePriority.HIGH, payload={"goal": "reply"}, payload_size=64)
    if mid < 0: ...                                       # full queue: dropped, as the pilot did
    msg = router.get_next_message(TractType.EXTERNAL)     # Message or None
    stats = router.get_stats(); stats.total_messages      # MessageStats (attributes)

As in the pilot: ids are per-router integers 0, 1, 2, ...; a full destination makes
``route_message`` return -1 and count the message in ``message_loss_count``; payloads can be
any Python object in process (the very same object is handed over, never serialised);
``payload_size`` is what the caller said. ``using_mojo`` tells whether the Mojo queue kernel
orders the queues.

Opt-in differences: ``MessageRouter(on_full="raise")`` raises ``QueueFullError`` instead of
dropping (the message is still the caller's; ``message_loss_count`` stays 0 and refusals are
counted in ``rejected_count``). Bad arguments (unknown tract, priority outside 0..9, negative
``payload_size``) raise a clear ``InvalidInputError`` where the pilot failed later or not at
all. Each message also has a ULID (``Message.ulid``).
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from ..config import Mode
from ..config import force_python as force_python_env
from ..errors import InvalidInputError, QueueFullError
from ..runtime.adapter import Runtime, get_runtime
from .memory import MemoryRouter
from .message import KIND_MSGPACK, Tract, check_priority
from .message import Message as CoreMessage
from .ulid import ULID, ulid_to_str

log = logging.getLogger("synapse_mojo.router.compat")

_COMPAT_ID = "x-pilot-id"
_COMPAT_SIZE = "x-pilot-payload-size"
#: Header with the caller's priority when the message is queued at another (FIFO delivery).
_COMPAT_PRIORITY = "x-pilot-priority"
ON_FULL = ("drop", "raise")


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
#: Keyed by the members' int values: an int-keyed lookup runs no Python code.
_TO_TRACT_FAST = {0: Tract.INTERNAL, 1: Tract.EXTERNAL}
_FROM_TRACT = {v: k for k, v in _TO_TRACT.items()}


def _tract(value: Any) -> Tract:
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return _TO_TRACT[TractType(value)]
    return Tract.coerce(value)


def pilot_tract(value: Any) -> TractType:
    """The pilot's ``TractType`` of a tract given as ``TractType``, 0/1, a name or a ``Tract``."""
    return _FROM_TRACT[_tract(value)]


def pilot_priority(value: int) -> MessagePriority | int:
    try:
        return MessagePriority(value)
    except ValueError:
        return value


@dataclass
class Message:
    """The pilot's message record, plus ``ulid``: the router message's id (from ``uid``)."""

    id: int
    source_tract: TractType
    dest_tract: TractType
    priority: MessagePriority | int
    timestamp_ms: int
    payload_size: int
    payload: Any = None
    uid: int = field(default=0, repr=False, compare=False)

    @property
    def ulid(self) -> str:
        """The router message's ULID string ("" for a message that has none)."""
        return ulid_to_str(self.uid) if self.uid else ""


@dataclass
class MessageStats:
    """The pilot's router statistics, read as attributes (``stats.total_messages``).

    ``rejected_count`` (refused with ``on_full="raise"``) and ``runtime`` ("mojo" or "python")
    are additions; ``stats["total_messages"]`` also works."""

    total_messages: int = 0
    messages_to_internal: int = 0
    messages_to_external: int = 0
    peak_queue_depth: int = 0
    message_loss_count: int = 0
    rejected_count: int = 0
    runtime: str = "python"

    def __getitem__(self, name: str) -> Any:
        if name not in _STATS_FIELDS:
            raise KeyError(name)
        return getattr(self, name)


_STATS_FIELDS = frozenset(f.name for f in fields(MessageStats))


_PRIORITIES = {int(p): p for p in MessagePriority}
#: Headers of an in-process message whose payload is the pilot's record (see ``route_message``).
_RECORD_HEADERS = MappingProxyType({"x-pilot-record": "1"})


def pilot_message(core: CoreMessage) -> Message:
    """The pilot's record of a router message (id, size and priority from the compat headers)."""
    headers = core.headers
    size = headers.get(_COMPAT_SIZE)
    real = headers.get(_COMPAT_PRIORITY)
    prio = int(real) if real is not None else core.priority
    return Message(
        id=int(headers.get(_COMPAT_ID, "0")),
        source_tract=TractType.INTERNAL if core.source is Tract.INTERNAL else TractType.EXTERNAL,
        dest_tract=TractType.INTERNAL if core.destination is Tract.INTERNAL else TractType.EXTERNAL,
        priority=_PRIORITIES.get(prio, prio),
        timestamp_ms=int(core.created_at * 1000),
        payload_size=int(size) if size is not None else core.payload_size,
        payload=core.payload,
        uid=core.uid,
    )


def check_payload_size(payload_size: Any) -> int:
    if type(payload_size) is not int or payload_size < 0:
        if (
            isinstance(payload_size, int)
            and not isinstance(payload_size, bool)
            and payload_size >= 0
        ):
            return int(payload_size)
        raise InvalidInputError(f"payload_size must be an int >= 0, got {payload_size!r}")
    return payload_size


def pilot_core_message(
    pilot_id: int,
    source: Any,
    destination: Any,
    priority: Any,
    payload: Any,
    payload_size: int,
    *,
    in_process: bool = False,
    wire_priority: int | None = None,
) -> CoreMessage:
    """A router message carrying the pilot's id and payload size (validated). ``in_process``:
    the payload is handed over as the very object (any Python object, never serialised: the
    message must not leave the process); otherwise it must be msgpack data
    (``UnserializablePayloadError``). ``wire_priority``: queue it at this priority, keeping the
    caller's in a header."""
    check_payload_size(payload_size)
    prio = check_priority(priority)
    src = _TO_TRACT_FAST.get(source) if type(source) is TractType else None
    src = src if src is not None else _tract(source)
    dst = _TO_TRACT_FAST.get(destination) if type(destination) is TractType else None
    dst = dst if dst is not None else _tract(destination)
    headers = {_COMPAT_ID: str(pilot_id), _COMPAT_SIZE: str(payload_size)}
    if wire_priority is not None and wire_priority != prio:
        headers[_COMPAT_PRIORITY] = str(prio)
        prio = wire_priority
    if not in_process:
        return CoreMessage(src, dst, payload, priority=prio, headers=headers)
    # Trusted parts (validated above); the in-process router never reads the packed payload.
    return CoreMessage._restore(
        ULID.new(),
        src,
        dst,
        prio,
        payload,
        MappingProxyType(headers),
        time.time(),
        0,
        KIND_MSGPACK,
        None,
        0,
    )


class MessageRouter:
    """The pilot's router API over :class:`MemoryRouter` (see the module docstring).

    ``capacity``: messages per destination. ``force_python=True`` runs this router's queues on
    the ``heapq`` fallback whatever the feature mode (``SYNAPSE_FORCE_PYTHON=1`` does the same
    for every router). ``on_full``: ``"drop"`` (the pilot's: return -1, count a loss) or
    ``"raise"`` (``QueueFullError``; nothing is lost).
    """

    def __init__(
        self,
        capacity: int = 10000,
        force_python: bool = False,
        *,
        on_full: str = "drop",
        runtime: Runtime | None = None,
    ) -> None:
        if on_full not in ON_FULL:
            raise InvalidInputError(f"on_full must be one of {list(ON_FULL)}, got {on_full!r}")
        force_python = bool(force_python) or force_python_env()
        if runtime is None:
            runtime = get_runtime()
        if force_python:
            settings = runtime.settings
            modes = dict(settings.modes)
            modes["message_router"] = Mode("off")
            runtime = Runtime(replace(settings, modes=modes))
        self.force_python = force_python
        self.on_full = on_full
        self._router = MemoryRouter(capacity=capacity, backpressure="reject", runtime=runtime)
        self._ids = itertools.count(0)
        self._lock = threading.Lock()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._total = 0
        self._to_internal = 0
        self._to_external = 0
        self._peak = 0
        self._rejected = 0
        self._lost = 0

    @property
    def capacity(self) -> int:
        return self._router.capacity

    @property
    def using_mojo(self) -> bool:
        """True when the Mojo queue kernel orders this router's queues."""
        return self._router.runtime_in_use() == "mojo"

    @property
    def backend(self) -> MemoryRouter:
        """The pilot's name for the engine underneath (the same object as ``router``)."""
        return self._router

    @property
    def router(self) -> MemoryRouter:
        """The underlying router (new-API access to the same queues; a queued message's payload
        is the pilot's :class:`Message` record, whose ``payload`` is the caller's)."""
        return self._router

    def route_message(
        self,
        source_tract: TractType | int,
        dest_tract: TractType | int,
        priority: MessagePriority | int = MessagePriority.NORMAL,
        payload: Any = None,
        payload_size: int = 0,
    ) -> int:
        """Queues a message; returns its id (0, 1, 2, ...), or -1 when the destination is full
        (``on_full="raise"``: raises ``QueueFullError`` instead). Bad arguments raise
        ``UnknownTractError``/``InvalidInputError``."""
        mid = next(self._ids)  # atomic in CPython
        check_payload_size(payload_size)
        prio = check_priority(priority)
        src = _TO_TRACT_FAST.get(source_tract) if type(source_tract) is TractType else None
        src = src if src is not None else _tract(source_tract)
        dst = _TO_TRACT_FAST.get(dest_tract) if type(dest_tract) is TractType else None
        dst = dst if dst is not None else _tract(dest_tract)
        now = time.time()
        # In process the queued message carries the pilot's record itself (as the pilot's Mojo
        # router kept its records beside the kernel's queue): nothing to convert on the way out.
        record = Message(
            mid,
            TractType.INTERNAL if src is Tract.INTERNAL else TractType.EXTERNAL,
            TractType.INTERNAL if dst is Tract.INTERNAL else TractType.EXTERNAL,
            _PRIORITIES.get(prio, prio),
            int(now * 1000),
            payload_size,
            payload,
        )
        uid = ULID.new()
        record.uid = uid
        message = CoreMessage._restore(
            uid, src, dst, prio, record, _RECORD_HEADERS, now, 0, KIND_MSGPACK, None, 0
        )
        router = self._router
        try:
            router.publish(message)
        except QueueFullError:
            with self._lock:
                if self.on_full == "raise":
                    self._rejected += 1
                else:
                    self._lost += 1
            if self.on_full == "raise":
                raise
            log.warning(
                "message queue %s full, dropping message %d (the pilot's behaviour)", dst.value, mid
            )
            return -1
        depth = router.depth(Tract.INTERNAL) + router.depth(Tract.EXTERNAL)
        with self._lock:
            self._total += 1
            if dst is Tract.INTERNAL:
                self._to_internal += 1
            else:
                self._to_external += 1
            if depth > self._peak:
                self._peak = depth
        return mid

    def get_next_message(self, tract: TractType | int) -> Message | None:
        """The highest-priority message for ``tract`` (FIFO within a priority), or None."""
        target = _TO_TRACT_FAST.get(tract) if type(tract) is TractType else None
        got = self._router.consume(target if target is not None else _tract(tract), 1, 0)
        if not got:
            return None
        self._router.ack(got)
        core = got[0]
        record = core.payload
        if type(record) is Message and core.headers is _RECORD_HEADERS:
            return record
        return pilot_message(core)

    def get_queue_depth(self, tract: TractType | int) -> int:
        return self._router.depth(_tract(tract))

    def get_total_queue_depth(self) -> int:
        return self._router.depth()

    def get_stats(self) -> MessageStats:
        """The pilot's counters as a :class:`MessageStats`."""
        runtime = self._router.runtime_in_use()
        with self._lock:
            return MessageStats(
                total_messages=self._total,
                messages_to_internal=self._to_internal,
                messages_to_external=self._to_external,
                peak_queue_depth=self._peak,
                message_loss_count=self._lost,
                rejected_count=self._rejected,
                runtime=runtime,
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_counters()

    def close(self) -> list[CoreMessage]:
        return self._router.close()


class MessageRouterPython(MessageRouter):
    """The pilot's Python backend: a :class:`MessageRouter` on the ``heapq`` queues."""

    def __init__(self, capacity: int = 10000, *, on_full: str = "drop") -> None:
        super().__init__(capacity, force_python=True, on_full=on_full)


class MessageRouterMojo(MessageRouter):
    """The pilot's Mojo backend: a :class:`MessageRouter` on the Mojo queue kernel when it is
    available (``using_mojo`` tells; the pilot's FFI handles ``lib``/``router_ptr`` do not
    exist)."""

    def __init__(self, capacity: int = 10000, *, on_full: str = "drop") -> None:
        super().__init__(capacity, force_python=False, on_full=on_full)


_singleton: MessageRouter | None = None
_singleton_lock = threading.Lock()


def get_message_router(capacity: int = 10000, force_python: bool = False) -> MessageRouter:
    """The process-wide router, created on first use with these arguments (later calls return
    it whatever they pass, as in the pilot). ``SYNAPSE_FORCE_PYTHON=1`` at creation makes it
    Python-only; set later, it still takes effect (the runtime reads it per call)."""
    global _singleton
    with _singleton_lock:
        if _singleton is None or _singleton._router.closed:
            _singleton = MessageRouter(capacity=capacity, force_python=force_python)
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
    "MessagePriority",
    "MessageRouter",
    "MessageRouterMojo",
    "MessageRouterPython",
    "MessageStats",
    "TractType",
    "get_message_router",
    "pilot_core_message",
    "pilot_message",
    "pilot_tract",
    "reset_message_router",
]
