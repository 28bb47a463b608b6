"""Hidden information: each player receives only its own entry of a private attribute (a card hand)."""

from __future__ import annotations

import pytest

from pygase import CLIENT_JOINED, GameState, GameStateStore, GameStateUpdate
from pygase import _crypto as crypto
from pygase.errors import UnsendableValueError
from pygase.gamestate import TO_DELETE
from pygase.testing import LinkConditions, SimulatedSession

pytestmark = pytest.mark.timeout(60)


def _secret(player_id: int, tick: int) -> str:
    return f"SECRET-{player_id}-{tick:05d}"


def test_nothing_of_another_players_hand_ever_leaves_the_server_toward_a_player(monkeypatch):
    """Every plaintext the server seals is recorded (what goes on the wire, before encryption): a player's
    datagrams never hold another player's secret, over updates, a loss-hit link, deltas for lagging
    clients and a late joiner's whole state sent in parts."""
    sealed: list = []
    original = crypto.Cipher.seal

    def recording_seal(self, plaintext: bytes, *args, **kwargs):
        sealed.append((self, bytes(plaintext)))
        return original(self, plaintext, *args, **kwargs)

    original_rest = crypto.Cipher.seal_rest

    def recording_seal_rest(self, rest: bytes):  # (the packages sent most: see `Cipher.seal_rest`)
        sealed.append((self, bytes(rest)))
        return original_rest(self, rest)

    monkeypatch.setattr(crypto.Cipher, "seal", recording_seal)
    monkeypatch.setattr(crypto.Cipher, "seal_rest", recording_seal_rest)
    store = GameStateStore(GameState(table="shared", hands={}, pile=[]), private_attributes=["hands"])
    session = SimulatedSession(store, LinkConditions(latency=0.02, jitter=0.01, loss=0.15), seed=5)
    early = [session.add_client(f"p{i}") for i in range(3)]
    session.run_until(lambda: all(client.player_id is not None for client in early), limit=10)
    tick = [0]

    def on_tick(now: float) -> None:
        tick[0] += 1
        state = store.get_game_state()
        ids = [client.player_id for client in session.clients.values() if client.player_id is not None]
        # each player's hand grows; every few ticks one hand is replaced whole, one entry deleted
        hands = {pid: {"cards": [_secret(pid, tick[0])] * (20 if tick[0] == 30 else 1)} for pid in ids}
        update = {"hands": hands, "pile": [tick[0]]}
        if tick[0] % 17 == 0 and ids:
            update["hands"][ids[0]] = TO_DELETE
        store.push_update(GameStateUpdate(state.time_order + 1, **update))

    session.run(2.0, on_tick)
    late = session.add_client("late")  # joins while hands are large: a whole state, maybe in parts
    session.run(2.0, on_tick)
    session.run_until(lambda: late.player_id is not None, limit=5)
    session.run(1.0, on_tick)
    clients = early + [late]
    for client in clients:
        with client.game_state_context() as state:
            assert set(state.hands) <= {client.player_id}
            assert state.table == "shared"

    ciphers = {connection.player_id: connection._cipher for connection in session.server.connections.values()}
    assert set(ciphers) == {client.player_id for client in clients}
    checked = 0
    for player_id, cipher in ciphers.items():
        sent = b"".join(plaintext for who, plaintext in sealed if who is cipher)
        assert sent, "nothing was recorded toward a player"
        for other in ciphers:
            marker = f"SECRET-{other}-".encode()
            if other == player_id:
                assert marker in sent  # (the recording sees the hands: a real check)
            else:
                assert marker not in sent, f"player {player_id} was sent a part of player {other}'s hand"
            checked += 1
    assert checked == len(ciphers) ** 2


def test_each_client_sees_only_its_own_hand_over_real_sockets(backend_factory, client_factory):
    def joined(player_id):
        return {"hands": {player_id: [f"card of {player_id}"]}, "seats": {player_id: "here"}}

    backend = backend_factory(
        GameState(hands={}, seats={}),
        lambda game_state, dt: {},
        {CLIENT_JOINED: joined},
        private_attributes=["hands"],
    )
    clients = [client_factory(backend.server.port) for _ in range(3)]
    for client in clients:
        client.wait_until(lambda state: len(state.seats) == 3, timeout=5)
    for client in clients:
        with client.access_game_state() as state:
            assert state.hands == {client.player_id: [f"card of {client.player_id}"]}
    assert len(backend.game_state_store.get_game_state().hands) == 3


def test_a_private_attribute_that_is_not_keyed_by_player_id_is_refused_where_it_is_made():
    with pytest.raises(UnsendableValueError, match="'hands' is a private attribute.*'Ann'"):
        GameStateStore(GameState(hands={"Ann": [1]}), private_attributes=["hands"])
    store = GameStateStore(GameState(hands={}), private_attributes=["hands"])
    with pytest.raises(UnsendableValueError, match="it is a list"):
        store.push_update(GameStateUpdate(1, hands=[1, 2]))
    with pytest.raises(TypeError, match="list of attribute names"):
        GameStateStore(GameState(), private_attributes="hands")
