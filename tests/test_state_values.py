"""Game code's mistakes with the state fail where they are made, and never stop a game's syncing.

Issue 12, bugs 2 and 3: a value that cannot arrive (a tuple or float key, a set, an object) used to be
merged into the server's state and stop every client's updates; a change made to `game_state` in place
was never sent. Now bad values raise (or, from a handler, are logged with the handler's name and the
value's path and dropped), and the state handed to game code refuses writes.
"""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
from helpers import wait_for

from pygase import Backend, GameState, GameStateStore, GameStateUpdate
from pygase.event import Event

pytestmark = pytest.mark.timeout(30)


def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"k": value}
    return value


# (value of `grid`, a piece of the path and reason the error must name)
BAD_VALUES = [
    pytest.param({(1, 2): 3}, "grid[(1, 2)]: map keys must be str, int or bytes, not tuple", id="tuple-key"),
    pytest.param({1.5: 3}, "grid[1.5]: map keys", id="float-key"),
    pytest.param({"a": {None: 1}}, "grid['a'][None]: map keys", id="none-key"),
    pytest.param({True: 1}, "grid[True]: map keys", id="bool-key"),
    pytest.param({1: {2, 3}}, "grid[1]: set cannot be sent", id="set"),
    pytest.param([0, object()], "grid[1]: object cannot be sent", id="object"),
    pytest.param({"n": 2**70}, "grid['n']: ints must fit in 64 bits", id="huge-int"),
    pytest.param(_nested(40), "nested deeper than 32 levels", id="too-deep"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_VALUES)
def test_game_state_with_a_value_that_cannot_be_sent_raises_naming_its_path(bad, message):
    with pytest.raises(TypeError, match="GameState attribute cannot be sent") as error:
        GameState(grid=bad)
    assert message in str(error.value)


@pytest.mark.parametrize(("bad", "message"), BAD_VALUES)
def test_backend_refuses_an_initial_state_that_cannot_be_sent(bad, message):
    state = GameState(n=0)
    state.grid = bad  # attributes may be set after construction: the backend checks them too
    with pytest.raises(TypeError, match="initial game state cannot be sent") as error:
        Backend(state, lambda game_state, dt: {})
    assert message in str(error.value)


@pytest.mark.parametrize(("bad", "message"), BAD_VALUES)
def test_push_update_refuses_a_bad_value_and_leaves_the_state_as_it_was(bad, message):
    store = GameStateStore(GameState(grid={}, n=0))
    before = copy.deepcopy(store.get_game_state())
    with pytest.raises(TypeError, match="update cannot be sent") as error:
        store.push_update(GameStateUpdate(2, grid=bad, n=1))
    assert message in str(error.value)
    assert store.get_game_state() == before
    assert store.get_update_cache() == [GameStateUpdate(0)]  # as it was (0.3.1's empty first entry)
    store.push_update(GameStateUpdate(2, n=1))  # and the store goes on
    assert store.get_game_state().n == 1


def test_event_data_that_cannot_arrive_raises_naming_the_argument():
    with pytest.raises(TypeError, match=r"event 'PAINT' cannot be sent: cells\[\(1, 2\)\]: map keys"):
        Event("PAINT", cells={(1, 2): 3}).to_bytes()
    with pytest.raises(TypeError, match=r"event 'PAINT' cannot be sent: args\[0\]\[1\.5\]: map keys"):
        Event("PAINT", {1.5: 3}).to_bytes()


def test_both_sides_refuse_to_dispatch_event_data_that_cannot_arrive(backend_factory, client_factory):
    backend = backend_factory(GameState(), lambda game_state, dt: {})
    client = client_factory(backend.server.port)
    client.wait_until(lambda state: True, timeout=3)
    with pytest.raises(TypeError, match=r"cells\[\(1, 2\)\]"):
        client.dispatch_event("PAINT", cells={(1, 2): 3})
    with pytest.raises(TypeError, match=r"args\[0\]\[None\]"):
        backend.server.dispatch_event("PAINT", {None: 3})


def test_a_handler_update_that_cannot_be_sent_is_logged_and_dropped_and_syncing_goes_on(
    backend_factory, client_factory, caplog
):
    def paint(x, y, game_state, **kwargs):
        return {"grid": {(x, y): 3}}  # the mistake: a tuple key

    def set_n(n, **kwargs):
        return {"n": n}

    backend = backend_factory(
        GameState(grid={}, n=0), lambda game_state, dt: {}, {"PAINT": paint, "SET": set_n}
    )
    client = client_factory(backend.server.port)
    client.wait_until(lambda state: state.n == 0, timeout=3)
    with caplog.at_level(logging.ERROR, logger="pygase"):
        client.dispatch_event("PAINT", 1, 2)
        client.dispatch_event("SET", 7)
        client.wait_until(lambda state: state.n == 7, timeout=3)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("paint" in m and "'PAINT'" in m and "grid[(1, 2)]" in m and "dropped" in m for m in errors)
    late = client_factory(backend.server.port)  # a client that joins now still gets the whole state
    late.wait_until(lambda state: state.n == 7 and state.grid == {}, timeout=3)


def test_a_time_step_update_that_cannot_be_sent_is_logged_and_the_loop_goes_on(
    backend_factory, client_factory, caplog
):
    def time_step(game_state, dt):
        if game_state.t < 3:
            return {"t": game_state.t + 1}
        return {"t": 4, "bad": {1, 2}}  # from t == 3 on, every tick returns this mistake

    def logged() -> bool:
        return any(
            "time_step" in r.getMessage() and "bad: set cannot be sent" in r.getMessage()
            for r in caplog.records
        )

    with caplog.at_level(logging.ERROR, logger="pygase"):
        backend = backend_factory(GameState(t=0, n=0), time_step, {"SET": lambda n, **kwargs: {"n": n}})
        client = client_factory(backend.server.port)
        client.wait_until(lambda state: state.t == 3, timeout=3)
        wait_for(logged, timeout=3)
        assert logged()
        client.dispatch_event("SET", 5)
        client.wait_until(lambda state: state.n == 5, timeout=3)
    assert backend.game_state_store.get_game_state().t == 3
    ticks = [r for r in caplog.records if "time_step" in r.getMessage()]
    assert len(ticks) <= 2  # 50 bad ticks a second, logged at most once a second


def test_the_state_handed_to_game_code_refuses_writes_and_says_what_to_do(
    backend_factory, client_factory, caplog
):
    attempts: list = []

    def write_in_place(kind, game_state, **kwargs):
        try:
            if kind == "field":
                game_state.players[1]["x"] = 5
            elif kind == "attribute":
                game_state.score = 1
            elif kind == "append":
                game_state.players[1]["items"].append("sword")
            elif kind == "add":
                game_state.players[2] = {"x": 0}
        except TypeError as error:
            attempts.append(str(error))
            raise
        return {}

    def move(game_state, **kwargs):
        players = dict(game_state.players)  # copies are ordinary dicts: build the update from one
        me = copy.deepcopy(players[1])
        me["x"] += 1
        me["items"].append("shield")
        return {"players": {1: me}}

    backend = backend_factory(
        GameState(players={1: {"x": 0, "items": []}}, score=0),
        lambda game_state, dt: {},
        {"WRITE": write_in_place, "MOVE": move},
    )
    client = client_factory(backend.server.port)
    with caplog.at_level(logging.ERROR, logger="pygase"):
        for kind in ("field", "attribute", "append", "add"):
            client.dispatch_event("WRITE", kind)
        client.dispatch_event("MOVE")
        client.wait_until(lambda state: state.players[1]["x"] == 1, timeout=3)
    assert len(attempts) == 4
    assert all(
        "read-only" in message and "return an update dict instead" in message.lower() for message in attempts
    )
    logged = [r for r in caplog.records if "WRITE" in r.getMessage()]
    assert logged and logged[0].exc_info and issubclass(logged[0].exc_info[0], TypeError)
    with client.access_game_state() as state:
        assert state.players == {1: {"x": 1, "items": ["shield"]}} and state.score == 0


def test_the_stores_state_reads_and_copies_like_plain_values():
    store = GameStateStore(GameState(players={1: {"x": 0, "path": [[0, 0]]}}))
    store.push_update(GameStateUpdate(2, players={2: {"x": 3, "path": [[1, 1], {"a": 1}]}}))
    state = store.get_game_state()
    assert isinstance(state.players, dict) and isinstance(state.players[2]["path"], list)
    assert state == GameState(
        players={1: {"x": 0, "path": [[0, 0]]}, 2: {"x": 3, "path": [[1, 1], {"a": 1}]}}, time_order=2
    )
    with pytest.raises(TypeError, match="read-only"):
        state.players[2]["path"][1]["a"] = 2
    for mutable in (state.players.copy(), dict(state.players), copy.copy(state.players), state.players | {}):
        mutable[3] = {}
    copied = copy.deepcopy(state)
    copied.players[2]["path"][1]["a"] = 2
    copied.extra = 1
    assert type(copied) is GameState and state.players[2]["path"][1] == {"a": 1}
    assert pickle.loads(pickle.dumps(state)) == state
    assert (state + GameStateUpdate(3, n=1)).n == 1


def test_errors_from_one_handler_are_logged_at_most_once_a_second(backend_factory, client_factory, caplog):
    def broken(**kwargs):
        raise ZeroDivisionError("boom")

    backend = backend_factory(
        GameState(n=0), lambda game_state, dt: {}, {"BROKEN": broken, "SET": lambda n, **kw: {"n": n}}
    )
    client = client_factory(backend.server.port)
    with caplog.at_level(logging.ERROR, logger="pygase"):
        for _ in range(30):
            client.dispatch_event("BROKEN")
        client.dispatch_event("SET", 1)
        client.wait_until(lambda state: state.n == 1, timeout=3)
    logged = [r for r in caplog.records if "BROKEN" in r.getMessage()]
    assert 1 <= len(logged) <= 2  # 30 events within well under 2 s


def test_a_program_that_configures_no_logging_still_sees_a_handlers_error(tmp_path):
    """Errors in game code are logged, not raised: without a logging set-up they must still show."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "game.py"
    script.write_text(
        "from pygase import Backend, Client, GameState\n"
        "def boom(**kwargs):\n"
        "    raise ZeroDivisionError('BOOM in the handler')\n"
        "backend = Backend(GameState(n=0), lambda game_state, dt: {}, {'BOOM': boom})\n"
        "backend.run_in_thread('127.0.0.1', 0)\n"
        "client = Client()\n"
        "client.connect_in_thread(backend.server.port, '127.0.0.1')\n"
        "client.wait_until(lambda state: state.n == 0, timeout=5)\n"
        "client.dispatch_event('BOOM', retries=3)\n"
        "import time; time.sleep(0.5)\n"
        "client.disconnect(shutdown_server=True)\n"
    )
    root = str(Path(__file__).resolve().parent.parent)  # the pygase under test, whatever is installed
    environment = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, env=environment
    )
    assert result.returncode == 0, result.stderr
    assert "BOOM in the handler" in result.stderr and "Traceback" in result.stderr
