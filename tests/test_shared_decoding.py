"""Clients of one process decode a state update once for all of them, and still share nothing.

Issue 14, figure 1: a load test runs many bot clients per process, and the server sends them the same
bytes. Each update is decoded once for all of them (`pygase.connection._RecentUpdates`); what a game
does to one client's state never shows in another's.
"""

from __future__ import annotations

import pytest

from pygase import GameState, GameStateStore, GameStateUpdate, _codec
from pygase.testing import SimulatedSession

pytestmark = pytest.mark.timeout(30)


def _session(**initial) -> tuple:
    store = GameStateStore(GameState(**initial))
    session = SimulatedSession(store)
    return store, session, session.add_client(), session.add_client()


def _push(store: GameStateStore, **changes) -> None:
    store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, **changes))


def _read(client) -> dict:
    with client.game_state_context() as state:
        attributes = state.__dict__.items()
        return {key: value for key, value in attributes if key not in ("time_order", "game_status")}


def test_an_update_the_clients_of_a_process_get_alike_is_decoded_once(monkeypatch):
    store, session, first, second = _session(things={i: {"x": 0.0} for i in range(5)})
    _push(store, things={0: {"x": 0.5}})
    session.run(1.0)
    _read(first), _read(second)  # (both hold the whole state, and the server knows it)
    decoded = []
    original = _codec.unpack_noting_lists
    monkeypatch.setattr(_codec, "unpack_noting_lists", lambda data: decoded.append(data) or original(data))
    for tick in range(1, 11):
        _push(store, things={i: {"x": tick + i / 10} for i in range(5)})
        session.run(0.02)
        assert _read(first) == _read(second) == {"things": {i: {"x": tick + i / 10} for i in range(5)}}
    assert 10 <= len(decoded) < 15  # one per update (and a few that differed), not one per client


def test_a_change_made_in_place_to_one_clients_state_stays_there():
    store, session, first, second = _session(things={1: {"x": 0.0}}, scores={"ann": 1})
    _push(store, scores={"ann": 0})
    session.run(1.0)
    for tick in range(1, 4):
        _push(store, things={1: {"x": float(tick)}, 2: {"x": -float(tick)}}, scores={"ann": tick})
        session.run(0.02)
        _read(second)
        with first.game_state_context() as state:  # game code scribbling on its own copy
            state.things[2]["mine"] = True
            state.things[1]["x"] = 99.0
            state.scores["bob"] = 5
    assert _read(second) == {"things": {1: {"x": 3.0}, 2: {"x": -3.0}}, "scores": {"ann": 3}}
    _push(store, things={1: {"x": 4.0}})
    session.run(0.02)
    assert _read(first)["things"] == {1: {"x": 4.0}, 2: {"x": -3.0, "mine": True}}
    assert _read(second)["things"] == {1: {"x": 4.0}, 2: {"x": -3.0}}


def test_lists_in_an_update_are_never_shared_between_clients():
    store, session, first, second = _session(board={"cells": [0, 0, 0]}, names=[])
    _push(store, board={"cells": [0, 0, 1]})
    session.run(1.0)
    _push(store, board={"cells": [1, 2, 3]}, names=["ann"])
    session.run(0.02)
    with first.game_state_context() as state:
        state.board["cells"].append(4)
        state.names.append("me")
    assert _read(second) == {"board": {"cells": [1, 2, 3]}, "names": ["ann"]}
    assert _read(first) == {"board": {"cells": [1, 2, 3, 4]}, "names": ["ann", "me"]}


def _free_of_lists(value: dict) -> bool:
    decoded, holds_list = _codec.unpack_noting_lists(_codec.pack(value))
    assert decoded == value
    return not holds_list


def test_decoding_notes_lists_at_every_depth():
    assert _free_of_lists({"a": {1: {"x": 1.0, "y": None}}, "b": 2, "c": {"d": {"e": {"f": b""}}}})
    assert not _free_of_lists({"a": {1: {"x": [1.0]}}})
    assert not _free_of_lists({"a": {"b": {"c": {"d": []}}}, "e": 1})
    assert not _free_of_lists({"a": []})
