"""Messages: what the router carries between the tracts.

    msg = Message.create(Tract.INTERNAL, Tract.EXTERNAL, {"task": "summarise"},
                         priority=Priority.HIGH, correlation_id="req-17")
    msg.id             # "01JD2Y7X1V8M4R3T5W6Z9A0B1C": 26-char ULID, sortable by creation time
    msg.priority       # 3; higher is served first (0 .. 9)
    msg.payload        # the same object (in-process) or an equal one (Redis)

Fields

* ``id``: a ULID (48-bit Unix time in ms + 80 random bits, Crockford base32, 26 chars;
  see :mod:`.ulid`). Sortable by creation time, unique across processes and machines;
  monotonic within a process. The string is computed on first use: a message whose id is never
  read costs one integer, and the in-process fast path never reads it. ``Message.uid`` is the
  128-bit integer.
* ``source`` / ``destination``: a :class:`Tract`. Unknown tracts raise ``UnknownTractError``.
* ``priority``: an integer in ``0 .. 9``, **higher served first**; FIFO within a priority.
  :class:`Priority` names the pilot's levels: LOW=1, NORMAL=2 (default), HIGH=3, URGENT=4,
  CRITICAL=5; 0 and 6..9 are valid too. ``bool``, floats and strings are rejected.
* ``payload``: ``bytes`` (kept as is) or msgpack-native data: None, bool, int (-2**63 ..
  2**64-1), float, str, bytes, list/tuple (tuples come back as lists from Redis), dict.
  Serialised with msgpack, **never pickle**; anything else raises
  ``UnserializablePayloadError`` at creation. In-process delivery hands over the very same
  object, so do not mutate a payload after publishing it.
* ``headers``: str -> str; ``correlation_id`` and ``reply_to`` are read from them.
* ``created_at``: Unix time in seconds (float) when the message was created.
* ``attempts``: how many times the message was delivered *before* this delivery (0 = first).
* ``payload_size``: bytes of the serialised payload (``len`` for bytes payloads).

Size limit: routers reject payloads over ``max_payload_bytes`` (default
:data:`DEFAULT_MAX_PAYLOAD_BYTES` = 1 MiB, at most :data:`HARD_MAX_PAYLOAD_BYTES` = 64 MiB)
with ``PayloadTooLargeError``; ``Message.create`` enforces the hard limit.

Messages are immutable (assignment raises ``AttributeError``; use :meth:`Message.replace`) and
compare equal when their ids are equal. How a message is written to a Redis stream entry:
:mod:`.redis_wire`.
"""

from __future__ import annotations

import enum
import operator
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

import msgpack

from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    PayloadTooLargeError,
    UnknownTractError,
    UnserializablePayloadError,
)
from .ulid import ULID, ulid_to_str, ulids_to_str

#: Priorities are integers in [MIN_PRIORITY, MAX_PRIORITY]; higher is served first.
MIN_PRIORITY = 0
MAX_PRIORITY = 9
PRIORITY_LEVELS = MAX_PRIORITY - MIN_PRIORITY + 1

#: Default per-router payload limit, and the largest limit a router may be configured with.
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
HARD_MAX_PAYLOAD_BYTES = 64 << 20

#: Header names with a meaning to the router.
CORRELATION_ID = "correlation_id"
REPLY_TO = "reply_to"

#: The headers of a message without any (one shared read-only mapping).
EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})


class Tract(enum.StrEnum):
    """The two tracts of an agent system; the router carries messages between them."""

    INTERNAL = "internal"
    EXTERNAL = "external"

    @property
    def ordinal(self) -> int:
        """0 for INTERNAL, 1 for EXTERNAL (the pilot's ``TractType`` values).

        Not ``index``: a ``StrEnum`` member is a ``str``, whose ``index`` method it would hide.
        """
        return _TRACT_ORDINAL[self]

    @classmethod
    def coerce(cls, value: Any) -> Tract:
        """A Tract from a Tract, its name or value (any case), or an enum with such a name."""
        if type(value) is cls:
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        elif isinstance(value, enum.Enum) and isinstance(value.name, str):
            try:
                return cls(value.name.lower())
            except ValueError:
                pass
        raise UnknownTractError(
            f"unknown tract {value!r}; expected one of {[t.value for t in cls]}"
        )


_TRACT_ORDINAL = {Tract.INTERNAL: 0, Tract.EXTERNAL: 1}
TRACTS: tuple[Tract, ...] = (Tract.INTERNAL, Tract.EXTERNAL)


class Priority(enum.IntEnum):
    """Named priority levels (the pilot's). Any integer 0..9 is a valid priority."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4
    CRITICAL = 5


def check_priority(value: Any) -> int:
    """The priority as an int in 0..9, or a clear error (bool/float/str are not priorities)."""
    if type(value) is int or isinstance(value, Priority):
        p = int(value)
    elif isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InvalidTypeError(
            f"priority must be an integer {MIN_PRIORITY}..{MAX_PRIORITY}, "
            f"got {type(value).__name__} {value!r}"
        )
    else:
        p = operator.index(value)  # numpy integers and other integral types
    if not MIN_PRIORITY <= p <= MAX_PRIORITY:
        raise InvalidInputError(
            f"priority {p} is out of range; expected {MIN_PRIORITY}..{MAX_PRIORITY} "
            "(higher is served first)"
        )
    return p


# --------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------

#: Payload kinds on the wire.
KIND_BYTES = 0  # raw bytes, carried as is
KIND_MSGPACK = 1  # msgpack-encoded data


def pack_payload(payload: Any) -> tuple[int, bytes]:
    """(kind, bytes) of a payload; raises UnserializablePayloadError for what msgpack refuses."""
    if type(payload) is bytes:
        return KIND_BYTES, payload
    if isinstance(payload, (bytearray, memoryview)):
        return KIND_BYTES, bytes(payload)
    try:
        return KIND_MSGPACK, msgpack.packb(payload, use_bin_type=True, datetime=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnserializablePayloadError(
            f"payload of type {type(payload).__name__} cannot be serialised with msgpack "
            f"({exc}); use bytes or JSON-like data (None, bool, int, float, str, bytes, "
            "list, tuple, dict) - payloads are never pickled"
        ) from exc


def unpack_payload(kind: int, data: bytes) -> Any:
    if kind == KIND_BYTES:
        return data
    return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)


def _check_headers(headers: Any) -> Mapping[str, str]:
    if headers is None:
        return EMPTY_HEADERS
    if not isinstance(headers, Mapping):
        raise InvalidTypeError(
            f"headers must be a mapping of str to str, got {type(headers).__name__}"
        )
    clean: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidTypeError(
                f"headers must map str to str; got {key!r}: {value!r} "
                f"({type(key).__name__}: {type(value).__name__})"
            )
        clean[key] = value
    return MappingProxyType(clean) if clean else EMPTY_HEADERS


# --------------------------------------------------------------------------------------------
# Message
# --------------------------------------------------------------------------------------------

_setattr = object.__setattr__


def _route(destination: Tract, priority: int, payload_size: int) -> int:
    """Routing word read by the in-process router in one attribute access per message:
    bits 0-3 priority, bit 4 destination index, bits 8+ serialised payload size."""
    # An identity test, not _TRACT_ORDINAL[...]: hashing an Enum member runs Python code.
    return (payload_size << 8) | ((destination is Tract.EXTERNAL) << 4) | priority


class _MessageFields:
    """The storage of a message (see :class:`Message`). The private fields: ``_id`` the ULID
    string once computed, ``_route`` the routing word (:func:`_route`), ``_kind`` and ``_packed``
    the serialised payload (``_packed`` is None for a message the compat layer built for
    in-process delivery only)."""

    __slots__ = (
        "uid",
        "_id",
        "source",
        "destination",
        "priority",
        "payload",
        "headers",
        "created_at",
        "attempts",
        "payload_size",
        "_route",
        "_kind",
        "_packed",
    )

    uid: int
    _id: str | None
    source: Tract
    destination: Tract
    priority: int
    payload: Any
    headers: Mapping[str, str]
    created_at: float
    attempts: int
    payload_size: int
    _route: int
    _kind: int
    _packed: bytes | None


class Message(_MessageFields):
    """One message between the tracts. Immutable; build with :meth:`create`."""

    __slots__ = ()

    def __init__(
        self,
        source: Tract | str,
        destination: Tract | str,
        payload: Any = None,
        *,
        priority: int = Priority.NORMAL,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
    ) -> None:
        src = Tract.coerce(source)
        dst = Tract.coerce(destination)
        prio = check_priority(priority)
        hdrs = _check_headers(headers)
        if correlation_id is not None or reply_to is not None:
            extra = dict(hdrs)
            for name, value in ((CORRELATION_ID, correlation_id), (REPLY_TO, reply_to)):
                if value is not None:
                    if not isinstance(value, str):
                        raise InvalidTypeError(f"{name} must be a str, got {type(value).__name__}")
                    extra[name] = value
            hdrs = MappingProxyType(extra)
        kind, packed = pack_payload(payload)
        if len(packed) > HARD_MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError(
                f"payload is {len(packed):,} bytes serialised; the hard limit is "
                f"{HARD_MAX_PAYLOAD_BYTES:,} bytes",
                size=len(packed),
                limit=HARD_MAX_PAYLOAD_BYTES,
            )
        _setattr(self, "uid", ULID.new())
        _setattr(self, "_id", None)
        _setattr(self, "source", src)
        _setattr(self, "destination", dst)
        _setattr(self, "priority", prio)
        _setattr(
            self,
            "payload",
            bytes(payload) if kind == KIND_BYTES and type(payload) is not bytes else payload,
        )
        _setattr(self, "headers", hdrs)
        _setattr(self, "created_at", time.time())
        _setattr(self, "attempts", 0)
        _setattr(self, "payload_size", len(packed))
        _setattr(self, "_route", _route(dst, prio, len(packed)))
        _setattr(self, "_kind", kind)
        _setattr(self, "_packed", packed)

    @classmethod
    def create(
        cls,
        source: Tract | str,
        destination: Tract | str,
        payload: Any = None,
        *,
        priority: int = Priority.NORMAL,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
    ) -> Message:
        """Builds and validates a message (the same as calling the class)."""
        return cls(
            source,
            destination,
            payload,
            priority=priority,
            headers=headers,
            correlation_id=correlation_id,
            reply_to=reply_to,
        )

    @classmethod
    def _restore(
        cls,
        uid: int,
        source: Tract,
        destination: Tract,
        priority: int,
        payload: Any,
        headers: Mapping[str, str],
        created_at: float,
        attempts: int,
        kind: int,
        packed: bytes | None,
        payload_size: int,
        id_str: str | None = None,
    ) -> Message:
        """A message from trusted parts (a decoded wire entry or ``replace``): no validation."""
        # Built as a _MessageBuilder (same storage, plain attribute stores) and then given its
        # real class: several times cheaper than object.__setattr__ per field, which matters
        # when a consumer decodes thousands of messages per call.
        built: _MessageFields = _MessageBuilder(
            uid,
            id_str,
            source,
            destination,
            priority,
            payload,
            headers,
            created_at,
            attempts,
            payload_size,
            (payload_size << 8) | ((destination is Tract.EXTERNAL) << 4) | priority,
            kind,
            packed,
        )
        built.__class__ = Message
        return cast(Message, built)

    # ------------------------------------------------------------------ derived fields

    @property
    def id(self) -> str:
        """The ULID string (computed on first use)."""
        text = self._id
        if text is None:
            text = ulid_to_str(self.uid)
            _setattr(self, "_id", text)
        return text

    @property
    def correlation_id(self) -> str | None:
        return self.headers.get(CORRELATION_ID)

    @property
    def reply_to(self) -> str | None:
        return self.headers.get(REPLY_TO)

    @property
    def packed_payload(self) -> tuple[int, bytes]:
        """(kind, bytes) as sent over a transport."""
        packed = self._packed
        if packed is None:
            raise InvalidInputError(
                f"message {self.id} was built for in-process delivery only (by the compat "
                "layer); its payload was never serialised"
            )
        return self._kind, packed

    # ------------------------------------------------------------------ copies

    def replace(self, **changes: Any) -> Message:
        """A copy with some fields changed (``attempts``, ``priority``, ``headers``,
        ``destination``, ``source``); the id stays the same."""
        allowed = {"attempts", "priority", "headers", "destination", "source"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInputError(
                f"replace(): cannot change {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        attempts = changes.get("attempts", self.attempts)
        if type(attempts) is not int or attempts < 0:
            raise InvalidInputError(f"attempts must be an int >= 0, got {attempts!r}")
        return Message._restore(
            self.uid,
            Tract.coerce(changes.get("source", self.source)),
            Tract.coerce(changes.get("destination", self.destination)),
            check_priority(changes.get("priority", self.priority)),
            self.payload,
            _check_headers(changes["headers"]) if "headers" in changes else self.headers,
            self.created_at,
            attempts,
            self._kind,
            self._packed,
            self.payload_size,
            self._id,
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (for logs and JSON; bytes payloads stay bytes)."""
        return {
            "id": self.id,
            "source": self.source.value,
            "destination": self.destination.value,
            "priority": self.priority,
            "payload": self.payload,
            "headers": dict(self.headers),
            "created_at": self.created_at,
            "attempts": self.attempts,
            "payload_size": self.payload_size,
        }

    # ------------------------------------------------------------------ protocol

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Message is immutable; use message.replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Message is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Message:
            return NotImplemented
        return self.uid == other.uid

    def __hash__(self) -> int:
        return hash(self.uid)

    def __repr__(self) -> str:
        payload = repr(self.payload)
        if len(payload) > 60:
            payload = payload[:57] + "..."
        return (
            f"Message(id={self.id!r}, {self.source.value}->{self.destination.value}, "
            f"priority={self.priority}, attempts={self.attempts}, payload={payload})"
        )

    def __reduce__(self) -> Any:
        raise TypeError("Message objects are not pickled; send them through a router")


class _MessageBuilder(_MessageFields):
    """Same storage as :class:`Message` without its immutability guard (see ``_restore``)."""

    __slots__ = ()

    def __init__(
        self,
        uid: int,
        id_str: str | None,
        source: Tract,
        destination: Tract,
        priority: int,
        payload: Any,
        headers: Mapping[str, str],
        created_at: float,
        attempts: int,
        payload_size: int,
        route: int,
        kind: int,
        packed: bytes | None,
    ) -> None:
        self.uid = uid
        self._id = id_str
        self.source = source
        self.destination = destination
        self.priority = priority
        self.payload = payload
        self.headers = headers
        self.created_at = created_at
        self.attempts = attempts
        self.payload_size = payload_size
        self._route = route
        self._kind = kind
        self._packed = packed


def fill_ids(messages: Sequence[Message]) -> None:
    """Computes the id strings of messages that do not have theirs yet, in one vectorised
    pass (a transport calls it before it serialises a batch)."""
    missing = [m for m in messages if m._id is None]
    if missing:
        for m, text in zip(missing, ulids_to_str([m.uid for m in missing]), strict=True):
            _setattr(m, "_id", text)
