"""Client.on_change: callbacks with old and new values when a part of the state changed (like Colyseus'
`listen`), over real sockets and in the simulator."""

from __future__ import annotations

import copy
import logging
import threading

import pytest
from helpers import wait_for

from pygase import Client, GameState
from pygase._watch import StateWatches
from pygase.backend import GameStateStore
from pygase.gamestate import TO_DELETE, GameStateUpdate
from pygase.testing import LinkConditions, SimulatedSession

pytestmark = pytest.mark.timeout(30)


def test_callbacks_hear_what_changed_with_old_and_new_copies(backend_factory, client_factory, caplog):
    def move(player, dx, game_state, **kwargs):
        me = game_state.players[player]
        return {"players": {player: {"x": me["x"] + dx}}}

    def score(player, game_state, **kwargs):
        return {"players": {player: {"score": game_state.players[player]["score"] + 1}}}

    def leave(player, **kwargs):
        return {"players": {player: TO_DELETE}}

    backend = backend_factory(
        GameState(players={1: {"x": 0, "score": 0}, 2: {"x": 5, "score": 0}}, tick=0),
        lambda game_state, dt: {},
        {"MOVE": move, "SCORE": score, "LEAVE": leave},
    )
    client = client_factory(backend.server.port)
    client.wait_until(lambda state: 1 in state.players, timeout=3)
    players, scores, failing = [], [], []
    lock = threading.Lock()

    def on_players(old, new):
        with client.access_game_state() as state:  # the state lock is free in a callback
            assert state.players == new
        with lock:
            players.append(copy.deepcopy((old, new)))
        if new and 1 in new:
            new[1]["x"] = 999  # a copy: changes nothing

    def on_score(old, new):
        with lock:
            scores.append((old, new))

    def broken(old, new):
        failing.append(new)
        raise RuntimeError("boom")

    client.on_change("players", on_players)
    client.on_change(("players", 1, "score"), on_score)
    client.on_change("players", broken)
    with caplog.at_level(logging.ERROR, logger="pygase"):
        client.dispatch_event("MOVE", 1, 2)
        wait_for(lambda: len(players) == 1)
        client.dispatch_event("SCORE", 1)
        wait_for(lambda: len(scores) == 1)
        client.dispatch_event("LEAVE", 2)
        wait_for(lambda: len(players) == 3)
    assert players[0] == (
        {1: {"x": 0, "score": 0}, 2: {"x": 5, "score": 0}},
        {1: {"x": 2, "score": 0}, 2: {"x": 5, "score": 0}},
    )
    assert players[2][1] == {1: {"x": 2, "score": 1}}
    assert scores == [(0, 1)]  # not called for the move or the leave
    assert len(failing) == 3 and any("boom" in str(r.exc_info) for r in caplog.records if r.exc_info)
    with client.access_game_state() as state:
        assert state.players[1]["x"] == 2


def test_on_change_refuses_a_bad_path_or_callback():
    client = Client()
    with pytest.raises(TypeError, match="attribute name"):
        client.on_change(3, lambda old, new: None)
    with pytest.raises(TypeError, match="state keys"):
        client.on_change(("players", 1.5), lambda old, new: None)
    with pytest.raises(TypeError, match=r"two arguments, \(old, new\)"):
        client.on_change("players", lambda new: None)


def test_a_watch_follows_a_lossy_link_to_the_final_value_in_order():
    store = GameStateStore(GameState(counter=0, other=0))
    session = SimulatedSession(store, LinkConditions(latency=0.03, jitter=0.01, loss=0.2), seed=3)
    connection = session.add_client()
    seen = []
    connection._watches = StateWatches()
    connection._watches.add(("counter",), lambda old, new: seen.append((old, new)), None)
    for value in range(1, 40):
        store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, counter=value, other=-value))
        session.run(0.05)
    session.run(2.0)
    assert seen[0][0] is None and seen[-1][1] == 39
    assert all(old == previous_new for (old, _), (_, previous_new) in zip(seen[1:], seen))
    assert all(new > old for old, new in seen[1:])  # never backwards, each change once
