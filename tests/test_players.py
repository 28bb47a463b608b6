"""Players, not addresses: player ids, join data, turning a player away, and coming back into a seat."""

from __future__ import annotations

import asyncio
import time

import pytest

from pygase import (
    CLIENT_DROPPED,
    CLIENT_JOINED,
    CLIENT_LEFT,
    CLIENT_RETURNED,
    Client,
    GameState,
    GameStateStore,
    JoinRefused,
)
from pygase.testing import LinkConditions, SimulatedSession

pytestmark = pytest.mark.timeout(60)


def _names(backend_factory, **settings):
    """A backend whose CLIENT_JOINED handler seats players by the name in their join data."""

    def joined(join_data, player_id, game_state):
        name = join_data.get("name", "")
        if not name:
            raise JoinRefused("a name is required")
        if name in game_state.names.values():
            raise JoinRefused(f"the name {name} is taken")
        return {"names": {player_id: name}}

    def left(player_id):
        return {"left": {player_id: True}}

    def say(text, sender_id, game_state):
        return {"said": {sender_id: f"{game_state.names[sender_id]}: {text}"}}

    return backend_factory(
        GameState(names={}, said={}, left={}),
        lambda game_state, dt: {},
        {CLIENT_JOINED: joined, CLIENT_LEFT: left, "SAY": say},
        **settings,
    )


def test_players_get_ids_join_data_reaches_the_game_and_sender_id_names_the_sender(
    backend_factory, client_factory
):
    backend = _names(backend_factory)
    ann = client_factory(backend.server.port, join_data={"name": "Ann"})
    ann.wait_until(lambda state: state.names, timeout=5)
    bob = client_factory(backend.server.port, join_data={"name": "Bob"})
    bob.wait_until(lambda state: len(state.names) == 2, timeout=5)
    assert (ann.player_id, bob.player_id) == (1, 2)
    bob.dispatch_event("SAY", "hi", retries=3)
    ann.dispatch_event("SAY", text="hello", retries=3)
    ann.wait_until(lambda state: len(state.said) == 2, timeout=5)
    with ann.access_game_state() as state:
        assert state.said == {1: "Ann: hello", 2: "Bob: hi"}


def test_a_join_handler_turns_a_player_away_with_its_reason(backend_factory, client_factory):
    backend = _names(backend_factory)
    ann = client_factory(backend.server.port, join_data={"name": "Ann"})
    ann.wait_until(lambda state: state.names, timeout=5)
    impostor = Client()
    with pytest.raises(ConnectionRefusedError, match="the name Ann is taken"):
        impostor.connect(backend.server.port, "127.0.0.1", join_data={"name": "Ann"})
    assert impostor.refused_reason == "the name Ann is taken"
    with pytest.raises(ConnectionRefusedError, match="a name is required"):
        Client().connect(backend.server.port, "127.0.0.1")
    time.sleep(0.1)
    assert len(backend.server.connections) == 1  # nobody turned away holds a place
    with ann.access_game_state() as state:
        assert state.names == {1: "Ann"}


def test_a_coroutine_join_handler_on_the_server_itself_can_turn_players_away():
    """A Server without a game loop runs its own CLIENT_JOINED handler, a coroutine here."""
    from pygase import Server

    async def main() -> tuple:
        server = Server(GameStateStore(GameState()))

        async def joined(player_id, join_data):
            await asyncio.sleep(0.01)
            if join_data.get("team") == "red":
                raise JoinRefused("the red team is full")

        server.register_event_handler(CLIENT_JOINED, joined)
        serving = asyncio.ensure_future(server.run_async(0, "127.0.0.1"))
        while server.port is None:
            await asyncio.sleep(0.01)
        refused = Client()
        try:
            await refused.connect_async(server.port, "127.0.0.1", join_data={"team": "red"})
        except ConnectionRefusedError as error:
            reason = str(error)
        welcome = Client()
        joining = asyncio.ensure_future(
            welcome.connect_async(server.port, "127.0.0.1", join_data={"team": "blue"})
        )
        for _ in range(300):
            await asyncio.sleep(0.01)
            if welcome.player_id is not None:
                break
        player_id = welcome.player_id
        await welcome.disconnect()
        await joining
        await server.shutdown_async()
        await serving
        return reason, player_id

    reason, player_id = asyncio.run(asyncio.wait_for(main(), 20))
    assert "the red team is full" in reason
    assert player_id == 2  # (ids are never reused: the player turned away had 1)


def test_event_arguments_cannot_use_the_names_handlers_get_from_the_server(backend_factory, client_factory):
    backend = _names(backend_factory)
    client = client_factory(backend.server.port, join_data={"name": "Ann"})
    for name in ("sender_id", "game_state", "dt", "client_address"):
        with pytest.raises(TypeError, match=f"'{name}' is a name the server passes"):
            client.dispatch_event("SAY", text="x", **{name: 1})


def test_code_written_for_031_passes_its_own_player_id_as_an_event_argument(backend_factory, client_factory):
    """The 0.3.1 chase example: `on_move(player_id, new_position, **kwargs)`, sent positionally."""

    def on_move(player_id, new_position, **kwargs):
        return {"players": {player_id: {"position": new_position}}}

    backend = backend_factory(GameState(players={}), lambda game_state, dt: {}, {"MOVE": on_move})
    client = client_factory(backend.server.port)
    client.dispatch_event("MOVE", 7, (1, 2), retries=3)
    client.wait_until(lambda state: state.players, timeout=5)
    with client.access_game_state() as state:
        assert state.players == {7: {"position": [1, 2]}}


def test_join_data_that_cannot_be_sent_fails_at_connect():
    client = Client()
    with pytest.raises(TypeError, match="join_data"):
        client.connect_in_thread(8080, "127.0.0.1", join_data={"when": object()})
    with pytest.raises(TypeError, match="dict with str keys"):
        client.connect_in_thread(8080, "127.0.0.1", join_data=["Ann"])
    with pytest.raises(ValueError, match="at most 1024"):
        client.connect_in_thread(8080, "127.0.0.1", join_data={"name": "x" * 2000})


# ---- coming back into the same seat ----------------------------------------------------------------------


def _session(grace: float, loss: float = 0.0) -> SimulatedSession:
    session = SimulatedSession(
        GameStateStore(GameState(n=0)), LinkConditions(latency=0.02, loss=loss), seed=3
    )
    session.server.rejoin_grace = grace
    return session


def _kinds(session: SimulatedSession) -> list:
    return [
        (event.type.split(":")[1], event.handler_kwargs["player_id"])
        for event, _ in session.server_notifications
    ]


def test_a_player_that_drops_and_comes_back_within_the_grace_period_keeps_its_id_under_loss():
    session = _session(grace=10.0, loss=0.2)
    first = session.add_client("a", join_data={"name": "Ann"})
    other = session.add_client("b")
    session.run_until(lambda: first.player_id is not None and other.player_id is not None, limit=10)
    ann = first.player_id
    session.cut_off(first)  # its network goes away
    session.run(8.0)  # past the server's timeout (5 s)
    assert ("client_dropped", ann) in _kinds(session)
    assert ("client_left", ann) not in _kinds(session)
    # the same game starts a new connection (its client object keeps the seat token)
    again = session.add_client("a2")
    again._seat_token = first._seat_token
    session.run_until(lambda: again.player_id is not None, limit=10)
    assert again.player_id == ann
    assert ("client_returned", ann) in _kinds(session)
    session.run(12.0)  # past the grace period: it is back, so it never left
    assert ("client_left", ann) not in _kinds(session)
    assert _kinds(session).count(("client_joined", ann)) == 1


def test_a_player_that_does_not_come_back_leaves_when_the_grace_period_ends():
    session = _session(grace=3.0)
    client = session.add_client("a")
    session.run_until(lambda: client.player_id is not None, limit=10)
    session.cut_off(client)
    session.run(7.0)
    kinds = _kinds(session)
    assert ("client_dropped", 1) in kinds and ("client_left", 1) not in kinds
    session.run(3.5)
    assert _kinds(session)[-1] == ("client_left", 1)
    assert session.server.player_address(1) is None


def _recording_backend(backend_factory, events: list):
    """A backend whose handlers note players coming and going in `events` as (kind, player id)."""
    handlers = {
        kind: (lambda player_id, kind=name: events.append((kind, player_id)))
        for kind, name in (
            (CLIENT_JOINED, "joined"),
            (CLIENT_DROPPED, "dropped"),
            (CLIENT_RETURNED, "returned"),
            (CLIENT_LEFT, "left"),
        )
    }
    return backend_factory(GameState(), lambda game_state, dt: {}, handlers)


def test_a_client_object_that_connects_again_gets_its_seat_back(backend_factory):
    events: list = []
    backend = _recording_backend(backend_factory, events)
    client = Client()
    thread = client.connect_in_thread(backend.server.port, "127.0.0.1")
    client.wait_until(lambda state: client.player_id is not None, timeout=5)
    first_id = client.player_id
    # the game crashes out of its connection without a goodbye: the server only sees silence
    client.connection._close()
    thread.join(timeout=5)
    client.connect_in_thread(backend.server.port, "127.0.0.1")
    try:
        client.wait_until(lambda state: client.connection.phase.value == "joined", timeout=5)
        assert client.player_id == first_id
        deadline = time.monotonic() + 5
        while ("returned", first_id) not in events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert events[0] == ("joined", first_id) and ("left", first_id) not in events
    finally:
        client.disconnect()
    deadline = time.monotonic() + 5
    while ("left", first_id) not in events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("left", first_id) in events  # a goodbye: it left at once, no grace period


def test_joins_the_game_has_not_decided_on_hold_no_place_and_get_no_state():
    """Until its CLIENT_JOINED handler let it in, a player gets nothing of the state."""
    session = SimulatedSession(GameStateStore(GameState(secret="hidden")), LinkConditions(latency=0.01))
    waiting: list = []
    session.decide_join = lambda player_id, join_data: waiting.append(player_id) or "later"
    client = session.add_client("a")
    session.run(1.0)
    assert waiting == [1] and client.player_id is None
    assert not session.server.connections
    assert client.refused_reason == "later"
    with client.game_state_context() as state:
        assert not hasattr(state, "secret") or state.secret != "hidden"


def test_a_game_window_whose_connection_is_lost_joins_again_into_its_seat(backend_factory):
    from pygase_pygame import GameWindow

    events: list = []
    backend = _recording_backend(backend_factory, events)
    window = GameWindow(size=(200, 150))
    try:
        window.join("127.0.0.1", backend.server.port, join_data={"name": "Ann"})
        window.run(seconds=0.5, close=False)
        first_id = window.client.player_id
        assert first_id is not None
        window.client.connection._close()  # the network goes away: no goodbye reaches the server
        window.run(seconds=0.3, close=False)
        assert window.status_text() in ("connection lost, joining again…", "")
        deadline = time.monotonic() + 5
        while window.status_text() != "" and time.monotonic() < deadline:
            window.run(seconds=0.2, close=False)
        assert window.status_text() == ""
        assert window.client.player_id == first_id
        assert events == [("joined", first_id)]  # the same player: no join, no leave, not even a drop
    finally:
        window.close()


def test_newcomer_mistakes_with_players_fail_where_they_are_made():
    from pygase import Backend
    from pygase.errors import UnsendableValueError

    with pytest.raises(
        TypeError, match=r"'playerid' \(did you mean 'player_id'\?\).*may declare player_id, join_data"
    ):
        Backend(GameState(), lambda game_state, dt: {}, {CLIENT_JOINED: lambda playerid, game_state: None})
    with pytest.raises(TypeError, match="a CLIENT_DROPPED handler"):
        Backend(GameState(), lambda game_state, dt: {}, {CLIENT_DROPPED: lambda player, game_state: None})
    with pytest.raises(
        ValueError, match=r"private attribute 'hand' is not in the initial.*did you mean 'hands'"
    ):
        Backend(GameState(hands={}), lambda game_state, dt: {}, private_attributes=["hand"])
    with pytest.raises(UnsendableValueError, match=r"join_data\['when'\]"):
        Client().connect_in_thread(8080, "127.0.0.1", join_data={"when": object()})
    with pytest.raises(ValueError, match="rejoin_grace"):
        Backend(GameState(), lambda game_state, dt: {}, rejoin_grace=-1)
