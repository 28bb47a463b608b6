"""What a state datagram carries: only what changed, however much of the state the game returns.

Issue 14, figure 5: game code naturally returns every field of an entity each tick (x, y, vx and vy,
although only x and y moved), and those unchanged values used to be sent to every client every tick.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygase import GameState, GameStateStore, GameStateUpdate
from pygase.gamestate import TO_DELETE
from pygase.testing import SimulatedSession

ENTITIES = 20


def _bytes_per_state_datagram(returns_every_field: bool) -> tuple:
    """(bytes per datagram a client received over 2 virtual seconds, the client's state, the server's)."""
    entities = {i: {"x": 10.0 * i, "y": 0.5, "vx": 30.0 + i, "vy": -12.5} for i in range(ENTITIES)}
    store = GameStateStore(GameState(entities={i: dict(entity) for i, entity in entities.items()}))
    session = SimulatedSession(store)
    client = session.add_client()

    def on_tick(now: float) -> None:
        for entity in entities.values():
            entity["x"] += entity["vx"] * 0.02
            entity["y"] += entity["vy"] * 0.02
        fields = ("x", "y", "vx", "vy") if returns_every_field else ("x", "y")
        changes = {i: {name: entity[name] for name in fields} for i, entity in entities.items()}
        store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, entities=changes))

    session.run(1.0, on_tick)
    received, packages = client.bytes_received, client.packages_received
    session.run(2.0, on_tick)
    per_datagram = (client.bytes_received - received) / (client.packages_received - packages)
    session.run(0.2)  # (no more ticks: the client catches up)
    with client.game_state_context() as state:
        seen = {i: dict(entity) for i, entity in state.entities.items()}
    return per_datagram, seen, {i: dict(e) for i, e in store.get_game_state().entities.items()}


def test_values_the_clients_already_have_are_not_sent_again():
    every_field, seen, server = _bytes_per_state_datagram(returns_every_field=True)
    moved_only, _, _ = _bytes_per_state_datagram(returns_every_field=False)
    assert seen == server  # vx and vy are there all the same
    assert seen[3]["vx"] == 33.0 and seen[3]["vy"] == -12.5
    # Unchanged vx and vy cost nothing: 40 floats would be 440 bytes more (9 bytes and a 2-byte key each).
    assert abs(every_field - moved_only) < 8, (every_field, moved_only)
    assert every_field < 560


def test_a_change_of_type_alone_is_sent_and_equal_values_of_the_same_type_are_not():
    store = GameStateStore(GameState(flag=1, count=1, entities={1: {"v": 0, "on": True, "n": None}}))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.5)
    pushes = [
        dict(flag=True, count=1.0, entities={1: {"v": 0.0, "on": 1, "n": None}}),  # equal, of other types
        dict(flag=True, count=1.0, entities={1: {"v": 0.0, "on": 1, "n": None, "new": 0}}),
    ]
    for changes in pushes:
        store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, **changes))
        session.run(0.3)
    with client.game_state_context() as state:
        assert state.flag is True and type(state.count) is float
        entity = state.entities[1]
        assert type(entity["v"]) is float and type(entity["on"]) is int and entity["n"] is None
        assert entity["new"] == 0
    cached = store.get_update_cache()[-1]  # the last update changed only the new field
    assert {name: value for name, value in cached.__dict__.items() if name != "time_order"} == {
        "entities": {1: {"new": 0}}
    }


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, -0.5, 2.5]),
    st.sampled_from(["a", "b"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["p", "q", 1, 2]), inner, max_size=3)
    ),
    max_leaves=6,
)
_entity = st.dictionaries(st.sampled_from(["x", "y", "vx", "flag"]), _scalars, max_size=4)
_update = st.fixed_dictionaries(
    {},
    optional={
        "entities": st.dictionaries(st.integers(0, 3), st.one_of(_entity, st.just(TO_DELETE)), max_size=4),
        "score": _scalars,
        "misc": st.one_of(_values, st.just(TO_DELETE)),
    },
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_update, min_size=1, max_size=6))
def test_whatever_the_game_returns_the_client_ends_with_the_servers_state_value_for_value(updates):
    initial = GameState(entities={0: {"x": 0, "y": 0.0, "flag": True}}, score=1, misc={})
    expected = initial  # the updates applied as PyGaSe 0.3.1 did (`state + update`): nothing left out
    store = GameStateStore(initial)
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.1)
    for changes in updates:
        update = GameStateUpdate(store.get_game_state().time_order + 1, **changes)
        expected = expected + update
        store.push_update(update)
        session.run(0.05)
    session.run(0.2)

    def typed(value):  # equal values of other types (1, 1.0, True) must not pass for each other
        if isinstance(value, dict):
            return {key: typed(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [typed(item) for item in value]
        return (type(value).__name__, value)

    with client.game_state_context() as state:
        seen = typed(dict(state.__dict__))
    server = typed(dict(store.get_game_state().__dict__))
    assert server == typed(dict(expected.__dict__))
    assert seen == server


def test_quantized_positions_and_angles_cost_a_third_and_stop_being_sent_when_they_stay():
    import math

    from pygase.quantize import dequantize, dequantize_angle, quantize, quantize_angle

    assert quantize(123.456, 0.1) == 1235 and abs(dequantize(1235, 0.1) - 123.456) <= 0.05
    assert quantize_angle(-math.pi / 2) == 3 * 2**14 and quantize_angle(2 * math.pi) == 0
    assert abs(dequantize_angle(quantize_angle(1.0)) - 1.0) < math.pi / 2**16
    for bad in (lambda: quantize(1.0, 0), lambda: quantize(float("nan")), lambda: quantize_angle(1.0, 0)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError, match="only numbers can be quantized, got '3'"):
        quantize("3")

    store = GameStateStore(GameState(ships={i: {"x": 0, "y": 0} for i in range(ENTITIES)}))
    session = SimulatedSession(store)
    client = session.add_client()
    wobble = [0.0]

    def on_tick(now: float) -> None:  # the ships rest, up to float noise
        wobble[0] = 1e-9 - wobble[0]
        ships = {i: {"x": quantize(100.0 + i + wobble[0], 0.1), "y": quantize(50.0, 0.1)} for i in range(20)}
        store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, ships=ships))

    session.run(1.0, on_tick)
    received, packages = client.bytes_received, client.packages_received
    session.run(1.0, on_tick)
    per_datagram = (client.bytes_received - received) / (client.packages_received - packages)
    assert per_datagram < 60  # no ship is sent again: a datagram is little more than its header
    with client.game_state_context() as state:
        assert dequantize(state.ships[3]["x"], 0.1) == pytest.approx(103.0)
