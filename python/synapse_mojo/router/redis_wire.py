"""The wire format: how a :class:`Message` is written to a Redis stream entry and read back.

    fields = to_wire(message)          # {b"id": ULID, b"h": msgpack head, b"p": payload bytes}
    back = from_wire(fields, attempts=2)
    back == message and back.attempts == 2

An entry has three fields:

* ``id``: the ULID string (ASCII); the server-side scripts (:mod:`.redis_scripts`) read it to
  find the message's dedupe record;
* ``h``: msgpack ``[version, source, destination, priority, created_at, headers, kind]``;
* ``p``: the payload bytes, raw for a bytes payload (kind 0), msgpack otherwise (kind 1).

``version`` is :data:`WIRE_VERSION`; an entry of another version, or one that is not a message
of ours, raises ``InvalidInputError`` (the transport dead-letters it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import msgpack

from ..errors import InvalidInputError
from .message import EMPTY_HEADERS, KIND_BYTES, Message, Tract, unpack_payload
from .ulid import ulid_from_str

WIRE_VERSION = 1

#: Stream entry field names.
FIELD_ID = b"id"
FIELD_HEAD = b"h"
FIELD_PAYLOAD = b"p"

_TRACT_BY_VALUE = {t.value: t for t in Tract}


def wire_parts(message: Message) -> tuple[bytes, bytes, bytes]:
    """(id, head, payload) of a message: the values of the ``id``, ``h`` and ``p`` fields."""
    kind, packed = message.packed_payload
    head = msgpack.packb(
        (
            WIRE_VERSION,
            message.source.value,
            message.destination.value,
            message.priority,
            message.created_at,
            dict(message.headers) if message.headers else None,
            kind,
        ),
        use_bin_type=True,
    )
    return message.id.encode("ascii"), head, packed


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
            MappingProxyType(headers) if headers else EMPTY_HEADERS,
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


__all__ = [
    "FIELD_HEAD",
    "FIELD_ID",
    "FIELD_PAYLOAD",
    "WIRE_VERSION",
    "from_wire",
    "to_wire",
    "wire_parts",
]
