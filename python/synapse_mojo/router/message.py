"""Messages: what the router carries between the tracts.

    msg = Message.create(Tract.INTERNAL, Tract.EXTERNAL, {"task": "summarise"},
                         priority=Priority.HIGH, correlation_id="req-17")
    msg.id             # "01JD2Y7X1V8M4R3T5W6Z9A0B1C": 26-char ULID, sortable by creation time
    msg.priority       # 3; higher is served first (0 .. 9)
    msg.payload        # the same object (in-process) or an equal one (Redis)

Fields

* ``id``: a ULID (48-bit Unix time in ms + 80 random bits, Crockford base32, 26 chars).
  Sortable by creation time, unique across processes and machines; monotonic within a process
  (ids created in the same millisecond increment the random part, per the ULID spec). The
  generator is implemented here (~60 lines) rather than taken from ``python-ulid`` because the
  string is computed lazily: a message whose id is never read costs one integer, and the
  in-process fast path never reads it. ``Message.uid`` is the 128-bit integer.
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
compare equal when their ids are equal.
"""

from __future__ import annotations

import enum
import operator
import os
import threading
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import msgpack
import numpy as np

from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    PayloadTooLargeError,
    UnknownTractError,
    UnserializablePayloadError,
)

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

_EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})


class Tract(enum.StrEnum):
    """The two tracts of an agent system; the router carries messages between them."""

    INTERNAL = "internal"
    EXTERNAL = "external"

    @property
    def index(self) -> int:
        """0 for INTERNAL, 1 for EXTERNAL (the pilot's ``TractType`` values)."""
        return _TRACT_INDEX[self]

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


_TRACT_INDEX = {Tract.INTERNAL: 0, Tract.EXTERNAL: 1}
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
# ULIDs
# --------------------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024)]
_SHIFTS = tuple(120 - 10 * i for i in range(13))  # 13 ten-bit chunks = 26 chars = 130 bits
_RANDOM_MASK = (1 << 80) - 1


def ulid_to_str(value: int) -> str:
    """The 26-character Crockford base32 form of a 128-bit ULID."""
    return "".join([_PAIRS[(value >> s) & 0x3FF] for s in _SHIFTS])


_CROCKFORD_BYTES = np.frombuffer(_CROCKFORD.encode("ascii"), dtype=np.uint8)
_MASK64 = (1 << 64) - 1


def ulids_to_str(values: Sequence[int]) -> list[str]:
    """:func:`ulid_to_str` of many ids at once (vectorised, about twice as fast per id)."""
    n = len(values)
    if n < 8:
        return [ulid_to_str(v) for v in values]
    hi = np.fromiter((v >> 64 for v in values), dtype=np.uint64, count=n)
    lo = np.fromiter((v & _MASK64 for v in values), dtype=np.uint64, count=n)
    digits = np.empty((n, 26), dtype=np.uint8)
    five = np.uint64(31)
    for i in range(26):
        shift = 125 - 5 * i  # bit position of digit i's lowest bit in the 130-bit number
        if shift >= 64:
            d = hi >> np.uint64(shift - 64)
        elif shift + 5 <= 64:
            d = lo >> np.uint64(shift)
        else:  # straddles the two words
            d = (hi << np.uint64(64 - shift)) | (lo >> np.uint64(shift))
        digits[:, i] = d & five
    text = _CROCKFORD_BYTES[digits].tobytes().decode("ascii")
    return [text[i : i + 26] for i in range(0, 26 * n, 26)]


# Crockford digits -> Python's base-32 digits (0-9a-v), so that int(text, 32) decodes a ULID;
# every other character becomes "!", which int() refuses (I, L, O and U are not Crockford).
_TO_INT32 = {c: "!" for c in range(128)}
_TO_INT32.update(
    str.maketrans(_CROCKFORD + _CROCKFORD.lower(), "0123456789abcdefghijklmnopqrstuv" * 2)
)


def ulid_from_str(text: str) -> int:
    """The 128-bit integer of a ULID string (case-insensitive); raises InvalidInputError."""
    try:
        if len(text) != 26 or not text.isascii():
            raise ValueError
        value = int(text.translate(_TO_INT32), 32)
    except (ValueError, TypeError):
        raise InvalidInputError(f"not a ULID (26 Crockford base32 characters): {text!r}") from None
    if value >> 128:
        raise InvalidInputError(f"not a ULID (over 128 bits): {text!r}")
    return value


def ulid_time(value: int) -> float:
    """Unix time in seconds encoded in a ULID."""
    return (value >> 80) / 1000.0


class UlidGenerator:
    """Monotonic ULIDs: increasing within a process, random across processes.

    Thread-safe; after ``fork`` the child starts a fresh random sequence, so parent and child
    never produce the same id.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def new(self) -> int:
        ms = time.time_ns() // 1_000_000
        with self._lock:
            last = self._last
            if (last >> 80) >= ms:
                # Same (or an earlier, if the clock stepped back) millisecond: increment. On
                # the practically impossible overflow of the 80 random bits this carries into
                # the time part, which keeps ids increasing and unique.
                value = last + 1
            else:
                value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
            self._last = value
            return value


ULID = UlidGenerator()


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
        return _EMPTY_HEADERS
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
    return MappingProxyType(clean) if clean else _EMPTY_HEADERS


# --------------------------------------------------------------------------------------------
# Message
# --------------------------------------------------------------------------------------------

_setattr = object.__setattr__


def _route(destination: Tract, priority: int, payload_size: int) -> int:
    """Routing word read by the in-process router in one attribute access per message:
    bits 0-3 priority, bit 4 destination index, bits 8+ serialised payload size."""
    # An identity test, not _TRACT_INDEX[...]: hashing an Enum member runs Python code.
    return (payload_size << 8) | ((destination is Tract.EXTERNAL) << 4) | priority


class _MessageFields:
    """The storage of a message (see :class:`Message`)."""

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


class Message(_MessageFields):
    """One message between the tracts. Immutable; build with :meth:`create`."""

    __slots__ = ()

    uid: int
    source: Tract
    destination: Tract
    priority: int
    payload: Any
    headers: Mapping[str, str]
    created_at: float
    attempts: int
    payload_size: int

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
        self = _MessageBuilder(
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
        self.__class__ = Message
        return self  # type: ignore[return-value]

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
        return self._kind, self._packed

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
        return self.uid == other.uid  # type: ignore[attr-defined]

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
        uid,
        id_str,
        source,
        destination,
        priority,
        payload,
        headers,
        created_at,  # noqa: ANN001
        attempts,
        payload_size,
        route,
        kind,
        packed,
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


# --------------------------------------------------------------------------------------------
# Wire format (Redis stream entries)
# --------------------------------------------------------------------------------------------

WIRE_VERSION = 1

#: Stream entry fields: ``id`` (the ULID string, also read by the server-side scripts),
#: ``h`` (msgpack [version, source, destination, priority, created_at, headers, kind]) and
#: ``p`` (the payload bytes: raw for bytes payloads, msgpack otherwise).
FIELD_ID = b"id"
FIELD_HEAD = b"h"
FIELD_PAYLOAD = b"p"


_TRACT_BY_VALUE = {t.value: t for t in Tract}


def fill_ids(messages: Sequence[Message]) -> None:
    """Computes the id strings of messages that do not have theirs yet, in one vectorised
    pass (used before a batch is serialised)."""
    missing = [m for m in messages if m._id is None]
    if missing:
        for m, text in zip(missing, ulids_to_str([m.uid for m in missing])):
            _setattr(m, "_id", text)


def wire_parts(message: Message) -> tuple[bytes, bytes, bytes]:
    """(id, head, payload) of a message: the values of the ``id``, ``h`` and ``p`` fields."""
    head = msgpack.packb(
        (
            WIRE_VERSION,
            message.source.value,
            message.destination.value,
            message.priority,
            message.created_at,
            dict(message.headers) if message.headers else None,
            message._kind,
        ),
        use_bin_type=True,
    )
    return message.id.encode("ascii"), head, message._packed


def to_wire(message: Message) -> dict[bytes, bytes]:
    """The stream entry fields of a message."""
    mid, head, payload = wire_parts(message)
    return {FIELD_ID: mid, FIELD_HEAD: head, FIELD_PAYLOAD: payload}


def from_wire(fields: Mapping[bytes, bytes] | Sequence[bytes], attempts: int = 0) -> Message:
    """Decodes a stream entry (a field mapping, or the flat [name, value, ...] list a script
    returns); raises InvalidInputError when it is not a message of ours."""
    try:
        if (
            type(fields) is list
            and len(fields) == 6
            and fields[0] == FIELD_ID
            and fields[2] == FIELD_HEAD
            and fields[4] == FIELD_PAYLOAD
        ):
            id_raw, head_raw, packed = fields[1], fields[3], fields[5]
        elif isinstance(fields, Mapping):
            id_raw, head_raw, packed = fields[FIELD_ID], fields[FIELD_HEAD], fields[FIELD_PAYLOAD]
        elif (
            len(fields) == 6
            and fields[0] == FIELD_ID
            and fields[2] == FIELD_HEAD
            and fields[4] == FIELD_PAYLOAD
        ):
            id_raw, head_raw, packed = fields[1], fields[3], fields[5]
        else:
            flat = {fields[i]: fields[i + 1] for i in range(0, len(fields) - 1, 2)}
            id_raw, head_raw, packed = flat[FIELD_ID], flat[FIELD_HEAD], flat[FIELD_PAYLOAD]
        id_str = id_raw.decode("ascii")
        version, source, destination, priority, created_at, headers, kind = msgpack.unpackb(
            head_raw, raw=False, strict_map_key=False
        )
        if version != WIRE_VERSION:
            raise InvalidInputError(f"wire version {version}, this library reads {WIRE_VERSION}")
        payload = packed if kind == KIND_BYTES else unpack_payload(kind, packed)
        return Message._restore(
            ulid_from_str(id_str),
            _TRACT_BY_VALUE[source],
            _TRACT_BY_VALUE[destination],
            priority,
            payload,
            MappingProxyType(headers) if headers else _EMPTY_HEADERS,
            created_at,
            attempts,
            kind,
            packed,
            len(packed),
            id_str,
        )
    except InvalidInputError:
        raise
    except Exception as exc:  # malformed entry: KeyError, ValueError, msgpack errors
        raise InvalidInputError(f"undecodable stream entry ({type(exc).__name__}: {exc})") from exc
