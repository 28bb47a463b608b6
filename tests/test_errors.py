"""One error hierarchy: every PyGaSe error is a PygaseError and the built-in a caller expects; garbage
from the network gives a ProtocolError (or DuplicateSequenceError), nothing else."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygase import GameState, GameStateStore, GameStateUpdate, errors
from pygase._packages import _body_start, _header_bytes, _server_tail
from pygase.connection import (
    PROTOCOL_ID,
    ClientConnection,
    ConnectionStatus,
    DuplicateSequenceError,
    ProtocolIDMismatchError,
)
from pygase.event import UniversalEventHandler

pytestmark = pytest.mark.timeout(60)


def test_the_seed_exceptions_keep_their_names_and_bases():
    assert issubclass(ProtocolIDMismatchError, ValueError)
    assert issubclass(DuplicateSequenceError, ConnectionError)
    for error in (ProtocolIDMismatchError, DuplicateSequenceError):
        assert issubclass(error, errors.PygaseError)
    assert ProtocolIDMismatchError is errors.ProtocolIDMismatchError
    for error in (errors.DecodeError, errors.HandshakeError, errors.UnknownSenderError):
        assert issubclass(error, errors.ProtocolError) and issubclass(error, ValueError)


def test_mistakes_of_game_code_raise_errors_that_are_type_errors_too():
    with pytest.raises(errors.UnsendableValueError) as unsendable:
        GameState(grid={(1, 2): 3})
    assert isinstance(unsendable.value, TypeError)
    store = GameStateStore(GameState(players={1: {"x": 0}}))
    with pytest.raises(errors.UnsendableValueError):
        store.push_update(GameStateUpdate(2, players={1.5: 0}))
    with pytest.raises(errors.ReadOnlyStateError) as read_only:
        store.get_game_state().players[1]["x"] = 5
    assert isinstance(read_only.value, TypeError)


def _server_with_a_joined_client():
    from pygase._server_core import ServerCore

    core = ServerCore(GameStateStore(GameState(n=0)), UniversalEventHandler())
    client = ClientConnection(("server", 1), UniversalEventHandler())
    now = 0.0
    while client.status != ConnectionStatus.get("Connected"):
        now += 0.01
        for datagram in client.datagrams_to_send(now):
            core.receive_datagram(datagram, ("client", 1), now)
            for reply in core.datagrams_for(("client", 1), now):
                client.receive_datagram(reply, now)
    return core, client, now


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.binary(max_size=200).map(lambda tail: PROTOCOL_ID + tail)))
def test_garbage_gives_a_protocol_error_or_is_taken_never_anything_else(garbage):
    core, client, now = _server_with_a_joined_client()
    for receive in (
        lambda: core.receive_datagram(garbage, ("client", 1), now),
        lambda: core.receive_datagram(garbage, ("stranger", 2), now),
        lambda: client.receive_datagram(garbage, now),
    ):
        with contextlib.suppress(errors.ProtocolError, errors.DuplicateSequenceError):
            receive()


# Well-formed msgpack, malformed events: each entry of a package's event list is [type, args, kwargs, id].
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(-(2**63), 2**63 - 1), inner, max_size=4)
    ),
    max_leaves=12,
)
_EVENT_TYPES = st.sampled_from(
    ["MOVE", "pygase:state", "pygase:part", "pygase:shutdown", "pygase:disconnect", "pygase:anything"]
)
_ENTRIES = st.one_of(
    _VALUES,
    st.lists(_VALUES, max_size=5),
    st.tuples(_EVENT_TYPES | _VALUES, _VALUES, _VALUES, st.integers(0, 50) | _VALUES).map(list),
    st.tuples(_EVENT_TYPES, st.lists(_VALUES, max_size=5), st.just({}), st.integers(0, 50)).map(list),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ENTRIES, max_size=4), st.integers(1, 60), st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_malformed_events_in_a_well_formed_package_give_a_protocol_error_or_are_taken(
    entries, sequence, event_floor, session
):
    core, client, now = _server_with_a_joined_client()
    server_side = core.connections[("client", 1)]
    events = msgpack.packb(entries)
    to_server = _header_bytes(sequence, 0, 0) + _body_start(4, 0, events, event_floor) + msgpack.packb(0)
    to_client = _header_bytes(sequence, 0, 0) + _body_start(6, 0, events, event_floor)
    to_client += _server_tail(b"\xc0", False, server_side.session if session % 2 else session)
    for receive in (
        lambda: core.receive_datagram(client._cipher.seal(to_server), ("client", 1), now),
        lambda: client.receive_datagram(server_side._cipher.seal(to_client), now),
    ):
        with contextlib.suppress(errors.ProtocolError, errors.DuplicateSequenceError):
            receive()
