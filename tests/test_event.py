"""Unit tests of `pygase.event`: the event wire form and handler dispatch with context arguments."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging

import msgpack
import pytest

from pygase import _codec
from pygase.event import RESERVED_PREFIX, Event, UniversalEventHandler

# Event


def test_event_round_trip_keeps_type_args_and_kwargs():
    event = Event(
        "move",
        1,
        -2.5,
        "north",
        [1, 2],
        {3: "three"},
        b"\x00",
        None,
        True,
        speed=0.1 + 0.2,
        target={"x": 1, 2: [None]},
    )
    copy = Event.from_bytes(event.to_bytes())
    assert copy == event
    assert copy.type == "move"
    assert copy.handler_args == [1, -2.5, "north", [1, 2], {3: "three"}, b"\x00", None, True]
    assert copy.handler_kwargs == {"speed": 0.1 + 0.2, "target": {"x": 1, 2: [None]}}


def test_event_without_data_round_trips():
    copy = Event.from_bytes(Event("ping").to_bytes())
    assert copy.type == "ping"
    assert copy.handler_args == []
    assert copy.handler_kwargs == {}


def test_events_with_different_data_are_unequal():
    assert Event("move", 1) != Event("move", 2)
    assert Event("move", x=1) != Event("move", y=1)
    assert Event("move") != Event("jump")


@pytest.mark.parametrize("event_type", [1, None, b"move", ["move"]])
def test_event_type_must_be_a_str(event_type):
    with pytest.raises(TypeError):
        Event(event_type)


def test_event_with_unsendable_data_cannot_be_serialized():
    with pytest.raises(TypeError):
        Event("move", {1, 2}).to_bytes()


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\xc1",
        b"\x93",
        _codec.pack("move"),
        _codec.pack(["move", [], {}, 1]),
        _codec.pack(["move", []]),
        _codec.pack([1, [], {}]),
        _codec.pack(["move", {}, {}]),
        _codec.pack(["move", [], []]),
        _codec.pack(["move", [], {"not an identifier": 1}]),
        _codec.pack(["move", [], {1: 1}]),
        _codec.pack({"type": "move", "handler_args": [], "handler_kwargs": {}}),
        Event("move", 1).to_bytes() + b"\x00",
        Event("move", 1).to_bytes()[:-1],
    ],
)
def test_event_from_bytes_rejects_garbage_with_value_error(garbage):
    with pytest.raises(ValueError):
        Event.from_bytes(garbage)


def test_event_from_bytes_rejects_msgpack_timestamp_extension():
    garbage = _codec.pack(["move", [], {}])[:-2] + b"\x91\xd6\xff\x00\x00\x00\x00\x80"
    assert msgpack.unpackb(garbage)[1] == [msgpack.Timestamp(0)]  # the datagram holds a timestamp
    with pytest.raises(ValueError):
        Event.from_bytes(garbage)


# UniversalEventHandler


def test_handler_gets_the_event_args_and_kwargs():
    calls = []
    handler = UniversalEventHandler()
    handler.register_event_handler("move", lambda *args, **kwargs: calls.append((args, kwargs)))
    handler.handle(Event("move", 1, "up", speed=2))
    assert calls == [((1, "up"), {"speed": 2})]


def test_handle_returns_what_the_handler_returns():
    handler = UniversalEventHandler()
    handler.register_event_handler("double", lambda x: 2 * x)
    assert handler.handle(Event("double", 21)) == 42


def test_handler_gets_only_the_context_it_declares():
    calls = []

    def on_move(direction, game_state):
        calls.append((direction, game_state))

    handler = UniversalEventHandler()
    handler.register_event_handler("move", on_move)
    handler.handle(Event("move", "up"), game_state="state", dt=0.1, client_address=("127.0.0.1", 1))
    assert calls == [("up", "state")]


def test_handler_without_context_parameters_gets_no_context():
    calls = []
    handler = UniversalEventHandler()
    handler.register_event_handler("move", lambda direction: calls.append(direction))
    handler.handle(Event("move", "up"), game_state="state", dt=0.1, client_address=("127.0.0.1", 1))
    assert calls == ["up"]


def test_handler_with_keyword_only_context_parameter_gets_it():
    calls = []

    def on_move(direction, *, dt):
        calls.append((direction, dt))

    handler = UniversalEventHandler()
    handler.register_event_handler("move", on_move)
    handler.handle(Event("move", "up"), game_state="state", dt=0.1)
    assert calls == [("up", 0.1)]


def test_handler_with_var_kwargs_gets_all_context():
    calls = []

    def on_move(direction, **kwargs):
        calls.append((direction, kwargs))

    handler = UniversalEventHandler()
    handler.register_event_handler("move", on_move)
    handler.handle(Event("move", "up", speed=3), game_state="state", dt=0.1, client_address=("h", 1))
    assert calls == [("up", {"speed": 3, "game_state": "state", "dt": 0.1, "client_address": ("h", 1)})]


def test_handler_that_is_a_bound_method_gets_declared_context():
    class Player:
        def __init__(self):
            self.calls = []

        def on_move(self, direction, dt):
            self.calls.append((direction, dt))

    player = Player()
    handler = UniversalEventHandler()
    handler.register_event_handler("move", player.on_move)
    handler.handle(Event("move", "up"), dt=0.5, game_state="state")
    assert player.calls == [("up", 0.5)]


def test_handler_that_is_a_partial_gets_declared_context():
    calls = []

    def on_move(log, direction, client_address):
        log.append((direction, client_address))

    handler = UniversalEventHandler()
    handler.register_event_handler("move", functools.partial(on_move, calls))
    handler.handle(Event("move", "up"), client_address=("h", 1), dt=0.5)
    assert calls == [("up", ("h", 1))]


def test_context_replaces_event_kwargs_of_the_same_name():
    calls = []

    def on_move(direction, client_address):
        calls.append((direction, client_address))

    handler = UniversalEventHandler()
    handler.register_event_handler("move", on_move)
    forged = Event("move", "up", client_address=("evil", 666))
    handler.handle(Event.from_bytes(forged.to_bytes()), client_address=("127.0.0.1", 5000))
    assert calls == [("up", ("127.0.0.1", 5000))]


def test_forged_context_kwarg_is_dropped_when_the_handler_takes_var_kwargs():
    calls = []
    handler = UniversalEventHandler()
    handler.register_event_handler("move", lambda **kwargs: calls.append(kwargs))
    handler.handle(Event("move", client_address=("evil", 666), speed=1), client_address=("127.0.0.1", 5000))
    assert calls == [{"speed": 1, "client_address": ("127.0.0.1", 5000)}]


def test_forged_context_kwarg_is_dropped_even_when_the_handler_does_not_declare_it():
    calls = []
    handler = UniversalEventHandler()
    handler.register_event_handler("move", lambda direction: calls.append(direction))
    handler.handle(Event("move", "up", client_address=("evil", 666)), client_address=("127.0.0.1", 5000))
    assert calls == ["up"]


def test_event_kwargs_pass_through_when_no_context_is_given():
    calls = []

    def on_move(direction, client_address=None):
        calls.append((direction, client_address))

    handler = UniversalEventHandler()
    handler.register_event_handler("move", on_move)
    handler.handle(Event("move", "up", client_address="sent"))
    assert calls == [("up", "sent")]


def test_registering_again_replaces_the_handler():
    calls = []
    handler = UniversalEventHandler()
    handler.register_event_handler("move", lambda: calls.append("old"))
    handler.register_event_handler("move", lambda dt: calls.append(("new", dt)))
    handler.handle(Event("move"), dt=1.0)
    assert calls == [("new", 1.0)]


def test_unknown_event_type_returns_none_and_warns_once_per_type(caplog):
    handler = UniversalEventHandler()
    handler.register_event_handler("known", lambda: "handled")
    with caplog.at_level(logging.WARNING, logger="pygase.event"):
        assert handler.handle(Event("mystery")) is None
        assert handler.handle(Event("mystery", 1)) is None
        assert handler.handle(Event("enigma")) is None
        assert handler.handle(Event("known")) == "handled"
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "mystery" in warnings[0].getMessage()
    assert "enigma" in warnings[1].getMessage()


def test_unknown_event_warnings_are_per_handler(caplog):
    with caplog.at_level(logging.WARNING, logger="pygase.event"):
        UniversalEventHandler().handle(Event("mystery"))
        UniversalEventHandler().handle(Event("mystery"))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


@pytest.mark.parametrize("event_type", [RESERVED_PREFIX + "shutdown", "pygase:anything", "pygase:"])
def test_reserved_event_types_cannot_be_registered(event_type):
    handler = UniversalEventHandler()
    with pytest.raises(ValueError):
        handler.register_event_handler(event_type, lambda: None)
    assert not handler.has_event_type(event_type)


def test_reserved_prefix_is_pygase_colon():
    assert RESERVED_PREFIX == "pygase:"


def test_event_types_that_only_resemble_the_reserved_prefix_can_be_registered():
    handler = UniversalEventHandler()
    handler.register_event_handler("pygase", lambda: None)
    handler.register_event_handler("my pygase:event", lambda: None)
    assert handler.has_event_type("pygase")
    assert handler.has_event_type("my pygase:event")


def test_register_rejects_non_callable_handlers_and_non_str_types():
    handler = UniversalEventHandler()
    with pytest.raises(TypeError):
        handler.register_event_handler("move", "not callable")
    with pytest.raises(TypeError):
        handler.register_event_handler(1, lambda: None)
    assert not handler.has_event_type("move")


def test_has_event_type_reports_registered_types_only():
    handler = UniversalEventHandler()
    assert not handler.has_event_type("move")
    handler.register_event_handler("move", lambda: None)
    assert handler.has_event_type("move")
    assert not handler.has_event_type("jump")


def test_coroutine_function_handler_returns_an_awaitable():
    calls = []

    async def on_move(direction, dt):
        calls.append((direction, dt))
        return "moved"

    handler = UniversalEventHandler()
    handler.register_event_handler("move", on_move)
    result = handler.handle(Event("move", "up"), dt=0.25, game_state="state")
    assert inspect.isawaitable(result)
    assert calls == []
    assert asyncio.run(result) == "moved"
    assert calls == [("up", 0.25)]
