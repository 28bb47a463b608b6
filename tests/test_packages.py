"""Unit tests of the PyGaSe wire format in `pygase.connection`: headers, packages and hostile datagrams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygase import _codec
from pygase.connection import (
    PROTOCOL_ID,
    ClientPackage,
    Header,
    Package,
    ProtocolIDMismatchError,
    ServerPackage,
)
from pygase.event import Event
from pygase.gamestate import TO_DELETE, GameState, GameStateUpdate
from pygase.utils import Sqn

MAX_SIZE = 2048
NO_ACKS = "0" * 32
SOME_ACKS = "1" + "0" * 15 + "1" * 8 + "01" * 4
PACKAGE_CLASSES = (Package, ClientPackage, ServerPackage)


def make_package(cls, header=None, events=None):
    header = header if header is not None else Header(7, 5, SOME_ACKS)
    if cls is ClientPackage:
        return ClientPackage(header, 42, events)
    if cls is ServerPackage:
        return ServerPackage(header, GameStateUpdate(42, hp=100), events)
    return Package(header, events)


# Header


def test_protocol_id_is_ffd0fab9():
    assert bytes.fromhex("ffd0fab9") == PROTOCOL_ID


def test_header_is_12_bytes_starting_with_the_protocol_id():
    encoded = Header(258, 772, SOME_ACKS).to_bytearray()
    assert isinstance(encoded, bytearray)
    assert len(encoded) == 12
    assert encoded[:4] == PROTOCOL_ID
    assert encoded[4:6] == b"\x01\x02"  # sequence, big-endian
    assert encoded[6:8] == b"\x03\x04"  # ack, big-endian


def test_header_bytes_depend_on_the_ack_bitfield():
    assert Header(1, 1, NO_ACKS).to_bytearray()[8:] == b"\x00\x00\x00\x00"
    assert Header(1, 1, "1" * 32).to_bytearray()[8:] == b"\xff\xff\xff\xff"
    assert Header(1, 1, SOME_ACKS).to_bytearray() != Header(1, 1, SOME_ACKS[::-1]).to_bytearray()


def test_header_destructure_returns_sequence_ack_and_bitfield():
    sequence, ack, ack_bitfield = Header(65535, 1, SOME_ACKS).destructure()
    assert (sequence, ack, ack_bitfield) == (65535, 1, SOME_ACKS)
    assert isinstance(sequence, Sqn)
    assert isinstance(ack, Sqn)
    assert isinstance(ack_bitfield, str)


@pytest.mark.parametrize(
    "sequence, ack, ack_bitfield",
    [(0, 0, NO_ACKS), (1, 0, NO_ACKS), (65535, 65534, "1" * 32), (300, 299, SOME_ACKS)],
)
def test_deconstruct_datagram_round_trips_header_and_payload(sequence, ack, ack_bitfield):
    header = Header(sequence, ack, ack_bitfield)
    payload = b"\x00anything\xff"
    parsed, rest = Header.deconstruct_datagram(bytes(header.to_bytearray()) + payload)
    assert parsed.destructure() == (sequence, ack, ack_bitfield)
    assert parsed == header
    assert rest == payload


def test_deconstruct_datagram_of_a_bare_header_has_an_empty_payload():
    parsed, rest = Header.deconstruct_datagram(bytes(Header(3, 2, SOME_ACKS).to_bytearray()))
    assert parsed == Header(3, 2, SOME_ACKS)
    assert rest == b""


@pytest.mark.parametrize("datagram", [b"", b"\x00" * 12, b"\xff\xd0\xfa\xb8" + b"\x00" * 8, b"hello world!!"])
def test_deconstruct_datagram_rejects_a_wrong_protocol_id(datagram):
    with pytest.raises(ProtocolIDMismatchError):
        Header.deconstruct_datagram(datagram)


def test_protocol_id_mismatch_error_is_a_value_error():
    assert issubclass(ProtocolIDMismatchError, ValueError)


@pytest.mark.parametrize("length", [4, 5, 8, 11])
def test_deconstruct_datagram_rejects_a_datagram_too_short_for_a_header(length):
    with pytest.raises(ValueError):
        Header.deconstruct_datagram(bytes(Header(1, 1, SOME_ACKS).to_bytearray())[:length])


@pytest.mark.parametrize("ack_bitfield", ["0" * 31, "0" * 33, "2" + "0" * 31, "", 0, None])
def test_header_rejects_an_invalid_ack_bitfield(ack_bitfield):
    with pytest.raises(ValueError):
        Header(1, 1, ack_bitfield)


@pytest.mark.parametrize("sequence, ack", [(-1, 0), (65536, 0), (0, 65536)])
def test_header_rejects_sequence_numbers_out_of_range(sequence, ack):
    with pytest.raises(ValueError):
        Header(sequence, ack, NO_ACKS)


def test_header_ack_bitfield_can_be_set():
    header = Header(1, 1, NO_ACKS)
    header.ack_bitfield = SOME_ACKS
    assert header.ack_bitfield == SOME_ACKS
    assert Header.deconstruct_datagram(bytes(header.to_bytearray()))[0].ack_bitfield == SOME_ACKS


def test_headers_with_different_fields_are_unequal():
    assert Header(1, 1, NO_ACKS) != Header(2, 1, NO_ACKS)
    assert Header(1, 1, NO_ACKS) != Header(1, 2, NO_ACKS)
    assert Header(1, 1, NO_ACKS) != Header(1, 1, SOME_ACKS)


# Packages


EVENTS = [
    Event("move", "up", 0.1 + 0.2, speed=3, target={1: [None, True]}),
    Event("chat", "hello", b"\x00\xff"),
    Event("ping"),
]


def test_package_round_trip_keeps_header_and_events():
    package = Package(Header(7, 5, SOME_ACKS), list(EVENTS))
    received = Package.from_datagram(package.to_datagram())
    assert type(received) is Package
    assert received.header == Header(7, 5, SOME_ACKS)
    assert received.events == EVENTS


def test_package_without_events_round_trips():
    received = Package.from_datagram(Package(Header(1, 0, NO_ACKS)).to_datagram())
    assert received.events == []
    assert received.header == Header(1, 0, NO_ACKS)


def test_package_datagram_starts_with_the_header():
    header = Header(7, 5, SOME_ACKS)
    assert Package(header, list(EVENTS)).to_datagram()[:12] == bytes(header.to_bytearray())


def test_package_round_trip_keeps_the_ack_delay():
    package = Package(Header(7, 5, SOME_ACKS))
    package.ack_delay = 1234
    assert Package.from_datagram(package.to_datagram()).ack_delay == 1234


def test_add_event_appends_to_the_events():
    package = Package(Header(1, 0, NO_ACKS), [EVENTS[0]])
    package.add_event(EVENTS[1])
    assert package.events == EVENTS[:2]
    assert Package.from_datagram(package.to_datagram()).events == EVENTS[:2]


def test_client_package_round_trip_keeps_time_order_and_events():
    package = ClientPackage(Header(7, 5, SOME_ACKS), 65535, list(EVENTS))
    received = ClientPackage.from_datagram(package.to_datagram())
    assert type(received) is ClientPackage
    assert received.header == Header(7, 5, SOME_ACKS)
    assert received.time_order == 65535
    assert isinstance(received.time_order, Sqn)
    assert received.events == EVENTS


def test_server_package_round_trip_keeps_update_and_events():
    update = GameStateUpdate(9, players={3: {"x": 0.1 + 0.2}, 4: TO_DELETE}, hp=TO_DELETE, items=[1, 2])
    package = ServerPackage(Header(7, 5, SOME_ACKS), update, list(EVENTS))
    received = ServerPackage.from_datagram(package.to_datagram())
    assert type(received) is ServerPackage
    assert received.header == Header(7, 5, SOME_ACKS)
    assert received.events == EVENTS
    assert received.game_state_update == update
    assert isinstance(received.game_state_update.time_order, Sqn)
    assert received.full_state is False
    state = GameState(hp=1, players={3: {"x": 0, "y": 1}, 4: {"x": 4}}) + received.game_state_update
    assert state.players == {3: {"x": 0.1 + 0.2, "y": 1}}


def test_server_package_round_trip_with_no_update():
    package = ServerPackage(Header(7, 5, SOME_ACKS), None, [EVENTS[0]])
    received = ServerPackage.from_datagram(package.to_datagram())
    assert received.game_state_update is None
    assert received.events == [EVENTS[0]]


def test_server_package_round_trip_keeps_the_full_state_flag():
    package = ServerPackage(Header(1, 0, NO_ACKS), GameStateUpdate(3, hp=1), full_state=True)
    assert ServerPackage.from_datagram(package.to_datagram()).full_state is True


def test_server_package_round_trip_keeps_a_combined_update():
    combined = GameStateUpdate(1, player=TO_DELETE) + GameStateUpdate(2, player={"z": 3})
    package = ServerPackage(Header(1, 0, NO_ACKS), combined)
    received = ServerPackage.from_datagram(package.to_datagram())
    state = GameState(player={"x": 1})
    assert state + received.game_state_update == state + combined


@pytest.mark.parametrize("sender", PACKAGE_CLASSES)
@pytest.mark.parametrize("receiver", PACKAGE_CLASSES)
def test_from_datagram_rejects_another_package_class(sender, receiver):
    if sender is receiver:
        return
    with pytest.raises(ValueError):
        receiver.from_datagram(make_package(sender).to_datagram())


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_get_bytesize_is_the_datagram_length(cls):
    package = make_package(cls, events=list(EVENTS))
    assert package.get_bytesize() == len(package.to_datagram())
    assert package.get_bytesize() > 12


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_get_bytesize_grows_with_added_events(cls):
    package = make_package(cls)
    before = package.get_bytesize()
    package.add_event(Event("chat", "x" * 100))
    assert package.get_bytesize() > before + 100


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_to_datagram_raises_overflow_error_above_2048_bytes(cls):
    package = make_package(cls, events=[Event("chat", "x" * MAX_SIZE)])
    with pytest.raises(OverflowError):
        package.to_datagram()


def test_to_datagram_raises_overflow_error_for_many_small_events():
    package = Package(Header(1, 0, NO_ACKS), [Event("chat", "x" * 100) for _ in range(30)])
    with pytest.raises(OverflowError):
        package.to_datagram()


def test_server_package_with_a_huge_update_overflows():
    package = ServerPackage(Header(1, 0, NO_ACKS), GameStateUpdate(1, blob=b"\x00" * MAX_SIZE))
    with pytest.raises(OverflowError):
        package.to_datagram()


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_add_event_after_to_datagram_raises_overflow_error_beyond_2048_bytes(cls):
    package = make_package(cls, events=[EVENTS[0]])
    package.to_datagram()
    with pytest.raises(OverflowError):
        package.add_event(Event("chat", "x" * MAX_SIZE))
    assert package.events == [EVENTS[0]]  # the event was not added
    assert len(package.to_datagram()) <= MAX_SIZE


def test_add_event_before_to_datagram_does_not_check_the_size():
    package = Package(Header(1, 0, NO_ACKS))
    package.add_event(Event("chat", "x" * MAX_SIZE))
    assert len(package.events) == 1
    with pytest.raises(OverflowError):
        package.to_datagram()


def test_add_event_after_to_datagram_accepts_an_event_that_fits():
    package = Package(Header(1, 0, NO_ACKS))
    package.to_datagram()
    package.add_event(Event("chat", "x" * 1000))
    assert 1000 < package.get_bytesize() <= MAX_SIZE


def test_every_add_event_after_to_datagram_raises_overflow_error_beyond_2048_bytes():
    package = Package(Header(1, 0, NO_ACKS))
    package.to_datagram()
    package.add_event(Event("small"))
    with pytest.raises(OverflowError):
        package.add_event(Event("chat", "x" * MAX_SIZE))


def test_add_event_accepts_an_event_that_makes_the_package_exactly_2048_bytes():
    empty = len(Package(Header(1, 0, NO_ACKS)).to_datagram())
    one_char = len(Package(Header(1, 0, NO_ACKS), [Event("e", "x")]).to_datagram())
    # str8/str16 headers: a payload of n >= 256 characters costs n + 3 bytes instead of 1 + 1
    event = Event("e", "x" * (MAX_SIZE - one_char + 1 - 2))
    assert len(Package(Header(1, 0, NO_ACKS), [event]).to_datagram()) == MAX_SIZE
    package = Package(Header(1, 0, NO_ACKS))
    assert len(package.to_datagram()) == empty
    package.add_event(event)
    assert package.get_bytesize() == MAX_SIZE


# Hostile datagrams


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_from_datagram_rejects_a_wrong_protocol_id(cls):
    datagram = bytearray(make_package(cls, events=list(EVENTS)).to_datagram())
    datagram[0] ^= 0x01
    with pytest.raises(ProtocolIDMismatchError):
        cls.from_datagram(bytes(datagram))


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_from_datagram_rejects_every_truncation_with_value_error(cls):
    datagram = make_package(cls, events=list(EVENTS)).to_datagram()
    for length in range(len(datagram)):
        with pytest.raises(ValueError):
            cls.from_datagram(datagram[:length])


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_from_datagram_rejects_trailing_bytes(cls):
    datagram = make_package(cls, events=list(EVENTS)).to_datagram()
    with pytest.raises(ValueError):
        cls.from_datagram(datagram + b"\x00")


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_from_datagram_rejects_datagrams_over_2048_bytes(cls):
    with pytest.raises(ValueError):
        cls.from_datagram(bytes(Header(1, 0, NO_ACKS).to_bytearray()) + b"\x00" * MAX_SIZE)


HEADER = bytes(Header(1, 0, NO_ACKS).to_bytearray())

# Fields are found in a decoded reference body by their distinctive values, so these tests follow the
# documented layout without hard-coding the position of each field.
FIELDS = {
    "ack_delay": lambda value: type(value) is int and value == 777001,
    "events": lambda value: isinstance(value, list) and value[:1] == [["move", ["up"], {"speed": 1}, 0]],
    "time_order": lambda value: type(value) is int and value == 4242,
    "update": lambda value: isinstance(value, dict) and value.get("time_order") == 4243,
    "full_state": lambda value: value is True,
}


def reference_package(cls):
    events = [Event("move", "up", speed=1)]
    if cls is ClientPackage:
        package = ClientPackage(Header(1, 0, NO_ACKS), 4242, events)
    elif cls is ServerPackage:
        package = ServerPackage(Header(1, 0, NO_ACKS), GameStateUpdate(4243, hp=1), events, full_state=True)
    else:
        package = Package(Header(1, 0, NO_ACKS), events)
    package.ack_delay = 777001
    return package


def reference_body(cls):
    datagram = reference_package(cls).to_datagram()
    assert datagram[:12] == HEADER
    return _codec.unpack(datagram[12:])


def field_index(body, field):
    indexes = [index for index, value in enumerate(body) if FIELDS[field](value)]
    assert len(indexes) == 1, f"{field} not found exactly once in {body!r}"
    return indexes[0]


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_a_re_encoded_reference_body_parses(cls):
    received = cls.from_datagram(HEADER + _codec.pack(reference_body(cls)))
    assert received.ack_delay == 777001
    assert received.events == [Event("move", "up", speed=1)]


@pytest.mark.parametrize("cls", PACKAGE_CLASSES)
def test_from_datagram_rejects_a_body_with_a_missing_or_extra_field(cls):
    body = reference_body(cls)
    with pytest.raises(ValueError):
        cls.from_datagram(HEADER + _codec.pack(body[:-1]))
    with pytest.raises(ValueError):
        cls.from_datagram(HEADER + _codec.pack([*body, 0]))
    with pytest.raises(ValueError):
        cls.from_datagram(HEADER + _codec.pack({"ack_delay": 0}))


@pytest.mark.parametrize(
    "cls, field, bad_value",
    [
        (Package, "ack_delay", -1),
        (Package, "ack_delay", True),
        (Package, "ack_delay", "1"),
        (Package, "ack_delay", None),
        (Package, "ack_delay", 0.5),
        (Package, "events", {}),
        (Package, "events", None),
        (Package, "events", ["move"]),
        (Package, "events", [["move", [], {}]]),  # event without id
        (Package, "events", [["move", [], {}, -1]]),  # negative event id
        (Package, "events", [["move", [], {}, "1"]]),  # event id not an int
        (Package, "events", [["move", [], {}, True]]),  # event id a bool
        (Package, "events", [[1, [], {}, 0]]),  # event type not a str
        (Package, "events", [["move", {}, {}, 0]]),  # args not a list
        (Package, "events", [["move", [], [], 0]]),  # kwargs not a map
        (Package, "events", [["move", [], {"not an identifier": 1}, 0]]),
        (Package, "events", [["move", [], {1: 1}, 0]]),
        (ServerPackage, "events", [["move", [], {}, 0], "junk"]),
        (ClientPackage, "time_order", "5"),
        (ClientPackage, "time_order", 65536),
        (ClientPackage, "time_order", -1),
        (ClientPackage, "time_order", None),
        (ClientPackage, "time_order", True),
        (ServerPackage, "full_state", 0),
        (ServerPackage, "full_state", None),
        (ServerPackage, "update", [1]),
        (ServerPackage, "update", "update"),
        (ServerPackage, "update", {"hp": 1}),  # no time order
        (ServerPackage, "update", {"time_order": "1"}),
        (ServerPackage, "update", {"time_order": 70000}),
        (ServerPackage, "update", {"time_order": 1, "_private": 1}),
        (ServerPackage, "update", {"time_order": 1, 2: 1}),
    ],
)
def test_from_datagram_rejects_an_invalid_field_with_value_error(cls, field, bad_value):
    body = reference_body(cls)
    body[field_index(body, field)] = bad_value
    with pytest.raises(ValueError):
        cls.from_datagram(HEADER + _codec.pack(body))


def test_from_datagram_rejects_too_deeply_nested_data_with_value_error():
    deep = []
    for _ in range(100):
        deep = [deep]
    body = reference_body(Package)
    events = field_index(body, "events")
    body[events] = [["move", [deep], {}, 0]]
    with pytest.raises(ValueError):
        Package.from_datagram(HEADER + _codec.pack(body))
    body[events] = [["move", [[[]]], {}, 0]]
    assert Package.from_datagram(HEADER + _codec.pack(body)).events == [Event("move", [[]])]


def _parses_or_raises_value_error(datagram):
    for cls in PACKAGE_CLASSES:
        try:
            package = cls.from_datagram(datagram)
        except ValueError:
            continue
        assert type(package) is cls
        assert all(isinstance(event, Event) and isinstance(event.type, str) for event in package.events)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=MAX_SIZE))
def test_arbitrary_bytes_after_the_protocol_id_parse_or_raise_value_error(data):
    _parses_or_raises_value_error(PROTOCOL_ID + data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_a_valid_header_parse_or_raise_value_error(data):
    _parses_or_raises_value_error(HEADER + data)


_KEYS = st.sampled_from(["", "hp", "time_order", "_x", "not id", 0, -1, 2])
_LEAVES = st.one_of(
    st.sampled_from([None, True, False, 0.5, float("nan"), "", "move", b"", b"\xd2\x81\xe5\xba", 2**64 - 1]),
    st.integers(-2, 70000),
)


def _nested(depth):
    """Leaves, lists and maps nested up to `depth` levels (cheaper to draw than st.recursive)."""
    values = _LEAVES
    for _ in range(depth):
        values = st.one_of(_LEAVES, st.lists(values, max_size=3), st.dictionaries(_KEYS, values, max_size=3))
    return values


_VALUES = _nested(2)
_EVENT_LIKE = st.tuples(
    st.sampled_from(["move", "", 1]),
    st.one_of(st.lists(_LEAVES, max_size=2), _LEAVES),
    st.one_of(st.dictionaries(_KEYS, _LEAVES, max_size=2), _LEAVES),
    _LEAVES,
).map(list)
_FIELD_VALUES = st.one_of(
    _VALUES,
    st.lists(st.one_of(_EVENT_LIKE, _VALUES), max_size=3),
    st.dictionaries(st.sampled_from(["time_order", "hp", "_x"]), _VALUES, max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PACKAGE_CLASSES), st.data())
def test_near_valid_bodies_parse_or_raise_value_error(cls, data):
    body = reference_body(cls)
    for _ in range(data.draw(st.integers(1, 2))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(_FIELD_VALUES)
    _parses_or_raises_value_error(HEADER + _codec.pack(body))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PACKAGE_CLASSES), st.data())
def test_corrupted_valid_datagrams_parse_or_raise_value_error(cls, data):
    datagram = bytearray(make_package(cls, events=list(EVENTS)).to_datagram())
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(4, len(datagram) - 1))
        datagram[position] = data.draw(st.integers(0, 255))
    _parses_or_raises_value_error(bytes(datagram))


@settings(max_examples=200, deadline=None)
@given(
    ack_delay=st.sampled_from([0, 5, 127, 128, 255, 256, 65535, 65536, 2**31]),
    floor=st.sampled_from([0, 1, 127, 128, 70000]),
    session=st.sampled_from([0, 7, 200, 70000, 2**32 - 1]),
    expected_session=st.sampled_from([0, 7, 200, 70000, 2**32 - 1]),
    full_state=st.booleans(),
    with_update=st.booleans(),
    with_event=st.booleans(),
)
def test_the_clients_fast_parse_reads_what_the_general_one_does_or_leaves_it_to_it(
    ack_delay, floor, session, expected_session, full_state, with_update, with_event
):
    from pygase._packages import _server_tail

    update = GameStateUpdate(9, entities={1: {"x": 1.5}}) if with_update else None
    package = ServerPackage(Header(3, 2, "1" * 32), update, full_state=full_state)
    package.session, package.ack_delay, package.event_floor = session, ack_delay, floor
    if with_event:
        package.add_event(Event("HELLO", 1))
    datagram = package.to_datagram()
    tails = (_server_tail(b"", False, expected_session), _server_tail(b"", True, expected_session))
    fast = ServerPackage._from_datagram_usual(datagram, expected_session, tails)
    general = ServerPackage._from_datagram_deferred(datagram)
    if fast is None:  # (anything unusual takes the general path)
        assert with_event or ack_delay > 65535 or floor > 127 or session != expected_session
        return
    assert session == expected_session and not with_event
    for field in ("ack_delay", "event_floor", "session", "full_state", "_update_bytes", "events"):
        assert getattr(fast, field) == getattr(general, field), field
    assert fast.header == general.header
