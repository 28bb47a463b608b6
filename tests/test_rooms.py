"""Joining by room code through a relay, over real sockets on loopback (issue 13).

The namespace tests (tests/test_online_play.py) put routers between host and player; here host, player
and relay share 127.0.0.1, so punching always works unless a test stops it.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
from helpers import wait_for

from pygase import Backend, Client, GameState
from pygase import _rendezvous_host as host_side
from pygase import _rendezvous_player as player_side
from pygase.relay import Relay

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
def relay():
    started = Relay("127.0.0.1", 0)
    started.run_in_thread()
    yield started
    started.shutdown()


def relay_address(relay: Relay) -> str:
    return f"127.0.0.1:{relay.port}"


@pytest.fixture
def host(relay):
    backends: list = []

    def start(**run_options) -> Backend:
        backend = Backend(
            GameState(ticks=0, said=""),
            lambda game_state, dt: {"ticks": game_state.ticks + 1},
            {"SAY": lambda text, game_state, dt: {"said": text}},
        )
        run_options.setdefault("relay", relay_address(relay))
        backends.append((backend, backend.run_in_thread("127.0.0.1", 0, **run_options)))
        return backend

    yield start
    for backend, thread in backends:
        backend.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def players():
    clients: list = []

    def join(room: str, relay: str, **options) -> Client:
        client = Client()
        clients.append(client)
        client.connect_in_thread(room=room, relay=relay, **options)
        return client

    yield join
    for client in clients:
        client.disconnect()


def test_a_player_joins_by_room_code_and_talks_to_the_host_directly(relay, host, players):
    backend = host()
    assert backend.room_code is not None and len(backend.room_code) == 6
    client = players(backend.room_code.lower(), relay_address(relay))  # codes are typed in any case
    client.wait_until(lambda state: state.ticks > 2, timeout=8)
    client.dispatch_event("SAY", text="hello")
    client.wait_until(lambda state: state.said == "hello", timeout=3)
    assert client.statistics().route == "direct"
    assert client.connection is not None
    assert client.connection.remote_address == ("127.0.0.1", backend.server.port)
    assert relay.counts()["channels"] == 0  # the relay forwarded no game datagram


def test_when_punching_fails_the_relay_forwards_the_game(relay, host, players, monkeypatch):
    # Punches get lost (as between two routers that give every destination a new port).
    monkeypatch.setattr(player_side, "PUNCH_PATIENCE", 0.3)
    real_punch = player_side.PlayerRendezvous._punch

    def punch_lost(self, now):  # the punches are lost, the OPENED to the relay is not
        real_punch(self, now)
        self._outbox[:] = [sent for sent in self._outbox if sent[1] == self.relay]

    monkeypatch.setattr(player_side.PlayerRendezvous, "_punch", punch_lost)
    monkeypatch.setattr(host_side, "PUNCH_DELAYS", ())
    backend = host()
    client = players(backend.room_code, relay_address(relay))
    client.wait_until(lambda state: state.ticks > 2, timeout=8)
    client.dispatch_event("SAY", text="through the relay")
    client.wait_until(lambda state: state.said == "through the relay", timeout=3)
    assert client.statistics().route == "relay"
    assert client.connection.remote_address == ("127.0.0.1", client.connection.remote_address[1])
    assert client.connection.remote_address[1] not in (backend.server.port, relay.port)
    assert relay.counts()["channels"] == 1
    (address,) = backend.server.connections
    assert address[1] != client.connection.remote_address[1]  # the host sees the channel's other port


def test_an_unknown_room_code_is_refused_at_once(relay, host):
    host()
    client = Client()
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError, match="room 22222A.*no session with that room code"):
        client.connect(room="22222A", relay=relay_address(relay))
    assert time.monotonic() - started < 3


def test_a_relay_that_does_not_answer_makes_the_join_time_out(monkeypatch, silent_port):
    monkeypatch.setattr(player_side, "LOOKUP_PATIENCE", 0.5)
    with pytest.raises(TimeoutError, match=f"the relay at 127.0.0.1:{silent_port} does not answer"):
        Client().connect(room="ABC234", relay=f"127.0.0.1:{silent_port}")


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (
            {"room": "ABC", "relay": "127.0.0.1:8090"},
            ValueError,
            "'ABC' is not a room code: it has 3 char",
        ),
        ({"room": "ABCDE0", "relay": "127.0.0.1:8090"}, ValueError, "has '0'"),
        ({"port": 8080, "room": "ABC234", "relay": "127.0.0.1:8090"}, TypeError, "not both"),
        ({"port": 8080, "relay": "127.0.0.1:8090"}, TypeError, "needs the room code too"),
        ({}, TypeError, "needs the server's port"),
        ({"room": "ABC234"}, ValueError, "PYGASE_RELAY"),
        ({"room": "ABC234", "relay": "[::1"}, ValueError, "IPv6"),
        ({"room": "ABC234", "relay": "relay:99999"}, ValueError, "1 to 65535"),
    ],
)
def test_mistakes_in_room_and_relay_get_clear_errors_at_once(monkeypatch, arguments, error, message):
    monkeypatch.delenv("PYGASE_RELAY", raising=False)
    for method in ("connect", "connect_in_thread"):
        with pytest.raises(error, match=message):
            getattr(Client(), method)(**arguments)


def test_pygase_relay_names_the_default_relay(relay, host, players, monkeypatch):
    backend = host()
    monkeypatch.setenv("PYGASE_RELAY", relay_address(relay))
    client = Client()
    client.connect_in_thread(room=backend.room_code)
    try:
        client.wait_until(lambda state: state.ticks > 0, timeout=8)
    finally:
        client.disconnect()


def test_a_backend_with_a_malformed_relay_address_does_not_start():
    backend = Backend(GameState(), lambda game_state, dt: {})
    with pytest.raises(ValueError, match="port"):
        backend.run_in_thread("127.0.0.1", 0, relay="relay.example:port")


def test_a_relay_restart_keeps_the_direct_game_and_the_code(relay, host, players, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="pygase.relay")
    monkeypatch.setattr(host_side, "REFRESH_INTERVAL", 0.2)
    backend = host()
    code = backend.room_code
    client = players(code, relay_address(relay))
    client.wait_until(lambda state: state.ticks > 2, timeout=8)
    port = relay.port
    relay.shutdown()
    ticks = client.copy_game_state().ticks
    client.wait_until(lambda state: state.ticks > ticks + 10, timeout=3)  # the game goes on without it
    again = Relay("127.0.0.1", port)
    again.run_in_thread()
    try:
        wait_for(lambda: again.counts()["sessions"] == 1, timeout=5)
        assert backend.room_code == code
        late = Client()
        late.connect_in_thread(room=code, relay=f"127.0.0.1:{port}")
        try:
            late.wait_until(lambda state: state.ticks > 0, timeout=8)
        finally:
            late.disconnect()
    finally:
        again.shutdown()
    assert "forgot room" in caplog.text


def test_a_host_that_shuts_down_leaves_the_relay(relay, host):
    backend = host()
    code = backend.room_code
    assert relay.counts()["sessions"] == 1
    backend.shutdown()
    wait_for(lambda: relay.counts()["sessions"] == 0, timeout=3)
    with pytest.raises(ConnectionRefusedError, match="no session"):
        Client().connect(room=code, relay=relay_address(relay))


def test_punches_from_strangers_are_never_answered(relay, host):
    """The host answers punches only for players the relay introduced: nobody can use it to reflect."""
    from pygase import _rendezvous as rv

    backend = host()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.settimeout(0.3)
        stranger.sendto(rv.Punch(b"12345678").encode(), ("127.0.0.1", backend.server.port))
        with pytest.raises(socket.timeout):
            stranger.recvfrom(100)


def test_a_game_window_joins_by_room_code_and_says_what_it_is_doing(relay, host, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    from helpers import run_until

    from pygase_pygame import GameWindow

    backend = host()
    window = GameWindow(size=(120, 90), fps=0)
    try:
        window.join(room=backend.room_code, relay=relay_address(relay))
        assert window.status_text() in (f"looking for room {backend.room_code}…", "connecting…")
        run_until(window, lambda: window.status_text() == "", timeout=8)
        window.client.wait_until(lambda state: state.ticks > 0, timeout=3)
    finally:
        window.close()


def test_public_sessions_are_listed_and_private_ones_are_not(relay, host, players, monkeypatch):
    from pygase_pygame.online import RelayBrowser

    monkeypatch.setattr(host_side, "REFRESH_INTERVAL", 0.2)  # (the player count comes with each refresh)
    listed = host(public={"game": "chase", "name": "Ann's game"})
    host(public=True)
    host()  # not public
    client = players(listed.room_code, relay_address(relay))
    client.wait_until(lambda state: state.ticks > 0, timeout=8)
    with RelayBrowser(relay_address(relay), interval=0.1) as browser:

        def chase_game_with_a_player():
            browser.poll()
            return [s for s in browser.sessions() if s.game == "chase" and s.players == 1]

        wait_for(chase_game_with_a_player, timeout=5)
        sessions = browser.sessions()
        assert len(sessions) == 2
        (chase,) = chase_game_with_a_player()
        assert (chase.name, chase.room, chase.relay, chase.password) == (
            "Ann's game",
            listed.room_code,
            relay_address(relay),
            False,
        )
        assert chase.max_players == 64


def test_a_relay_under_a_flood_keeps_serving_honest_sessions(relay, host, players):
    """Garbage, look-ups and registrations without cookies (as from spoofed addresses) from another loopback
    address (127.0.0.2: the relay limits per source) while a player joins."""
    import os

    from pygase import _rendezvous as rv

    backend = host()
    target = ("127.0.0.1", relay.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        flood.bind(("127.0.0.2", 0))
        flood.setblocking(False)
        client = players(backend.room_code, relay_address(relay))
        for n in range(3000):
            datagram = (
                os.urandom(1 + n % 200),
                rv.Register(os.urandom(8), info={"game": "x"}).encode(),
                rv.Lookup(os.urandom(8), "ABC234", cookie=os.urandom(16)).encode(),
                rv.Lookup(os.urandom(8), backend.room_code).encode(),
            )[n % 4]
            try:
                flood.sendto(datagram, target)
            except BlockingIOError:
                time.sleep(0.001)
        client.wait_until(lambda state: state.ticks > 2, timeout=8)
    counts = relay.counts()
    assert counts["sessions"] == 1  # nothing registered without a cookie
    assert counts["introductions"] == 1  # and no look-up without one introduced anybody


def test_rooms_work_over_ipv6(players):
    try:
        six = Relay("::1", 0)
        six.run_in_thread()
    except OSError as error:
        pytest.skip(f"no IPv6 loopback here: {error}")
    backend = Backend(GameState(ticks=0), lambda game_state, dt: {"ticks": game_state.ticks + 1})
    thread = backend.run_in_thread("::", 0, relay=f"[::1]:{six.port}")
    try:
        client = players(backend.room_code, f"[::1]:{six.port}")
        client.wait_until(lambda state: state.ticks > 2, timeout=8)
        assert client.statistics().route == "direct"
        assert client.connection.remote_address == ("::1", backend.server.port)
    finally:
        backend.shutdown()
        thread.join(timeout=5)
        six.shutdown()


def test_with_a_relay_only_a_client_on_this_machine_becomes_the_host(relay, host, players):
    """(From elsewhere, see tests/test_online_play.py: a stranger who joins by code first is no host.)"""
    backend = host()
    client = players(backend.room_code, relay_address(relay))
    client.wait_until(lambda state: state.ticks > 0, timeout=8)
    assert client.connection.host_token is not None  # 127.0.0.1: this machine, as GameWindow.host joins
    assert backend.server._core.host_from_this_machine


def test_public_without_a_relay_is_a_clear_error():
    backend = Backend(GameState(), lambda game_state, dt: {})
    with pytest.raises(ValueError, match="public= lists the session on a relay"):
        backend.run_in_thread("127.0.0.1", 0, public=True)


def test_a_game_window_refuses_mistakes_in_room_and_relay_in_its_own_words(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    monkeypatch.delenv("PYGASE_RELAY", raising=False)
    from pygase_pygame import GameWindow

    window = GameWindow(size=(60, 40), fps=0)
    try:
        with pytest.raises(TypeError, match=r"join\(relay=...\) needs the room code"):
            window.join("ABC234", relay="127.0.0.1:8090")  # the code given as the hostname
        with pytest.raises(TypeError, match="not both"):
            window.join("127.0.0.1", 8080, room="ABC234", relay="127.0.0.1:8090")
        with pytest.raises(ValueError, match=r"join\(room='ABC234', relay='HOST:PORT'\)"):
            window.join(room="ABC234")
        with pytest.raises(ValueError, match="has 'O'"):
            window.join(room="ABCD2O", relay="127.0.0.1:8090")
        assert window.client.connection is None  # nothing started
    finally:
        window.close()


def test_what_public_shows_is_checked_before_the_server_starts(relay):
    backend = Backend(GameState(), lambda game_state, dt: {})
    with pytest.raises(ValueError, match="not gmae"):
        backend.run_in_thread("127.0.0.1", 0, relay=relay_address(relay), public={"gmae": "chase"})
    assert backend.server.port is None


def test_a_relay_argument_of_the_wrong_kind_is_refused_in_the_callers_thread(caplog):
    backend = Backend(GameState(), lambda game_state, dt: {})
    with pytest.raises(TypeError, match="relay must be a str"):
        backend.run_in_thread("127.0.0.1", 0, relay=18090)
    with pytest.raises(ValueError, match=r"in brackets, as \[2001:db8::1\]:8090"):
        backend.run_in_thread("127.0.0.1", 0, relay="::1:18093")
    assert "Traceback" not in caplog.text and backend.server.port is None
