"""Messages: ULIDs, validation, immutability, the wire format."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synapse_mojo.errors import (
    InvalidInputError,
    InvalidTypeError,
    PayloadTooLargeError,
    UnknownTractError,
    UnserializablePayloadError,
)
from synapse_mojo.router.message import HARD_MAX_PAYLOAD_BYTES, Message, Priority, Tract
from synapse_mojo.router.redis_wire import from_wire, to_wire
from synapse_mojo.router.ulid import ULID, ulid_from_str, ulid_time, ulid_to_str, ulids_to_str

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_ulids_are_26_crockford_chars_sortable_and_monotonic():
    ids = [ULID.new() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    texts = [ulid_to_str(i) for i in ids]
    assert texts == sorted(texts)
    assert all(len(t) == 26 and set(t) <= CROCKFORD for t in texts)
    assert abs(ulid_time(ids[-1]) - time.time()) < 5
    assert [ulid_from_str(t) for t in texts[:100]] == ids[:100]
    assert ulid_from_str(texts[0].lower()) == ids[0]


@given(st.integers(0, (1 << 128) - 1))
def test_ulid_text_round_trip(value):
    assert ulid_from_str(ulid_to_str(value)) == value


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",
        "01ARZ3NDEKTSV4RRFFQ69G5FAVU",
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        42,
    ],
)
def test_bad_ulid_strings_are_rejected(bad):
    with pytest.raises(InvalidInputError):
        ulid_from_str(bad)


def _child_ids(q):
    q.put([ULID.new() for _ in range(1000)])


def test_forked_children_do_not_repeat_the_parents_ids():
    ULID.new()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child_ids, args=(q,)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    mine = [ULID.new() for _ in range(1000)]
    everything = mine + got[0] + got[1]
    assert len(set(everything)) == len(everything)


def test_message_fields_and_defaults():
    m = Message(
        Tract.INTERNAL, "EXTERNAL", {"a": [1, 2]}, correlation_id="c-1", reply_to="internal"
    )
    assert m.source is Tract.INTERNAL and m.destination is Tract.EXTERNAL
    assert m.priority == Priority.NORMAL == 2
    assert m.correlation_id == "c-1" and m.reply_to == "internal"
    assert m.attempts == 0 and m.payload == {"a": [1, 2]}
    assert len(m.id) == 26 and abs(m.created_at - time.time()) < 5
    assert m.payload_size == len(m.packed_payload[1]) > 0
    assert Message.create(Tract.INTERNAL, Tract.EXTERNAL, b"xyz").payload_size == 3


@pytest.mark.parametrize("priority", [0, 9, Priority.CRITICAL, 5])
def test_valid_priorities(priority):
    assert Message(Tract.INTERNAL, Tract.EXTERNAL, priority=priority).priority == int(priority)


@pytest.mark.parametrize(
    "priority,error",
    [
        (-1, InvalidInputError),
        (10, InvalidInputError),
        (2.0, InvalidTypeError),
        ("2", InvalidTypeError),
        (True, InvalidTypeError),
        (None, InvalidTypeError),
    ],
)
def test_bad_priorities(priority, error):
    with pytest.raises(error, match="priority"):
        Message(Tract.INTERNAL, Tract.EXTERNAL, priority=priority)


@pytest.mark.parametrize("tract", ["frontal", "", 3, None])
def test_unknown_tracts(tract):
    with pytest.raises(UnknownTractError, match="unknown tract"):
        Message(tract, Tract.EXTERNAL)


@pytest.mark.parametrize("payload", [{1, 2}, object(), {"f": lambda: 0}, 2**70])
def test_unserialisable_payloads_are_refused_never_pickled(payload):
    with pytest.raises(UnserializablePayloadError, match="never pickled"):
        Message(Tract.INTERNAL, Tract.EXTERNAL, payload)


def test_headers_must_be_strings():
    with pytest.raises(InvalidTypeError):
        Message(Tract.INTERNAL, Tract.EXTERNAL, headers={"a": 1})
    with pytest.raises(InvalidTypeError):
        Message(Tract.INTERNAL, Tract.EXTERNAL, headers=["a"])


def test_hard_payload_limit():
    with pytest.raises(PayloadTooLargeError) as info:
        Message(Tract.INTERNAL, Tract.EXTERNAL, b"x" * (HARD_MAX_PAYLOAD_BYTES + 1))
    assert info.value.limit == HARD_MAX_PAYLOAD_BYTES


def test_messages_are_immutable_and_not_picklable():
    m = Message(Tract.INTERNAL, Tract.EXTERNAL, b"x")
    with pytest.raises(AttributeError):
        m.priority = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del m.payload
    with pytest.raises(TypeError):
        pickle.dumps(m)
    again = m.replace(attempts=2, priority=7)
    assert again == m and again.id == m.id and again.attempts == 2 and again.priority == 7
    with pytest.raises(InvalidInputError):
        m.replace(payload=b"y")


payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@given(payload=payloads, priority=st.integers(0, 9))
def test_wire_round_trip(payload, priority):
    m = Message(
        Tract.EXTERNAL, Tract.INTERNAL, payload, priority=priority, headers={"k": "v"}, reply_to="r"
    )
    back = from_wire(to_wire(m), attempts=3)
    assert back.id == m.id and back.uid == m.uid
    assert back.payload == m.payload and type(back.payload) is type(m.payload)
    assert (back.source, back.destination, back.priority) == (m.source, m.destination, m.priority)
    assert dict(back.headers) == dict(m.headers) and back.created_at == m.created_at
    assert back.attempts == 3 and back.payload_size == m.payload_size
    flat = []
    for k, v in to_wire(m).items():
        flat += [k, v]
    assert from_wire(flat).payload == m.payload


def test_tuples_come_back_as_lists_and_bytearrays_as_bytes():
    m = Message(Tract.INTERNAL, Tract.EXTERNAL, {"t": (1, 2)})
    assert from_wire(to_wire(m)).payload == {"t": [1, 2]}
    b = Message(Tract.INTERNAL, Tract.EXTERNAL, bytearray(b"ab"))
    assert b.payload == b"ab" and type(b.payload) is bytes


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {b"id": b"x", b"h": b"\xc1", b"p": b""},
        {b"id": b"01ARZ3NDEKTSV4RRFFQ69G5FAV", b"h": b"\x91\x07", b"p": b""},
    ],
)
def test_undecodable_entries_raise_a_clear_error(fields):
    with pytest.raises(InvalidInputError, match="undecodable|wire version|ULID"):
        from_wire(fields)


@given(st.lists(st.integers(0, (1 << 128) - 1), max_size=40))
def test_vectorised_ulid_text_matches_the_scalar_one(values):
    assert ulids_to_str(values) == [ulid_to_str(v) for v in values]


def test_tract_ordinal_leaves_str_methods_alone():
    assert (Tract.INTERNAL.ordinal, Tract.EXTERNAL.ordinal) == (0, 1)
    assert Tract.INTERNAL.index("n") == 1  # a Tract is a str: index is str.index


def test_a_message_built_for_in_process_delivery_only_has_no_wire_form():
    from synapse_mojo.router.compat import pilot_core_message

    m = pilot_core_message(7, "internal", "external", 2, object(), 10, in_process=True)
    with pytest.raises(InvalidInputError, match="in-process delivery only"):
        to_wire(m)
