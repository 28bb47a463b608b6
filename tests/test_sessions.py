"""Encrypted, authenticated sessions (issue 11): nothing readable or forgeable on the wire, passwords
that a transcript does not give away, connections that follow their client to a new address only when it
proves it is there, and host rights that die with the host's session."""

from __future__ import annotations

import random

import pytest

from pygase import GameState, GameStateStore, GameStateUpdate
from pygase import _crypto as crypto
from pygase import _handshake as handshake
from pygase._server_core import ServerCore
from pygase.connection import ClientConnection, ConnectionStatus
from pygase.errors import ProtocolError
from pygase.event import Event, UniversalEventHandler
from pygase.testing import LinkConditions, SimulatedSession

pytestmark = pytest.mark.timeout(60)
CONNECTED = ConnectionStatus.get("Connected")
DISCONNECTED = ConnectionStatus.get("Disconnected")


def joined(session: SimulatedSession, *clients: ClientConnection) -> None:
    session.run_until(lambda: all(c.status == CONNECTED and c.updates_received for c in clients))


def recording(session: SimulatedSession) -> list:
    """Every datagram on the simulated network from now on, as (source, destination, bytes)."""
    seen: list = []

    def route(source, destination, datagram):
        seen.append((source, destination, datagram))
        return True

    session.network.route = route
    return seen


def test_nothing_a_game_sends_is_readable_on_the_wire():
    store = GameStateStore(GameState(secret="the treasure is under the oak", n=0))
    session = SimulatedSession(store, LinkConditions(latency=0.01))
    wire = recording(session)
    host = session.add_client()
    joined(session, host)
    host.dispatch_event(Event("WHISPER", "meet me at midnight"), retries=3)
    store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, n=12345))
    session.run(0.5)
    assert host.host_token is not None and [e for e, _ in session.server_events if e.type == "WHISPER"]
    everything = b"".join(datagram for _, _, datagram in wire)
    for secret in (b"treasure", b"midnight", b"WHISPER", host.host_token, b"pygase:"):
        assert secret not in everything


def test_forged_altered_and_replayed_datagrams_from_the_victims_address_change_nothing():
    store = GameStateStore(GameState(n=0))
    session = SimulatedSession(store, LinkConditions(latency=0.01))
    wire = recording(session)
    victim = session.add_client()
    joined(session, victim)
    victim.dispatch_event(Event("HELLO"), retries=3)
    session.run(0.3)
    address, server = session.address_of(victim), session.server
    connection = server.connections[address]
    captured = [d for source, _, d in wire if source == address and not handshake.is_handshake(d)]
    rng = random.Random(5)
    sequence_before = connection.remote_sequence
    for datagram in captured:
        forgeries = [
            datagram,  # a replay
            bytes(b ^ 0xFF if i == len(datagram) - 3 else b for i, b in enumerate(datagram)),  # altered
            datagram[:20] + rng.randbytes(len(datagram) - 20),  # the victim's id, random contents
            datagram[:12] + (2**63).to_bytes(8, "big") + datagram[20:],  # a counter jump
        ]
        for forged in forgeries:
            with pytest.raises(ProtocolError):
                server.receive_datagram(forged, address, session.network.now)
    assert server.connections[address] is connection and connection.remote_sequence == sequence_before
    assert [e.type for e, _ in session.server_events] == ["HELLO"]
    session.run(1.0)
    assert victim.status == CONNECTED and connection.status == CONNECTED


@pytest.mark.parametrize("password", [None, "1234"])
def test_the_right_password_joins_a_wrong_one_is_refused_and_waits(password):
    store = GameStateStore(GameState(n=0))
    session = SimulatedSession(store)
    session.server.password = password
    good = ClientConnection(session.SERVER_ADDRESS, UniversalEventHandler(), password)
    session.clients[("good", 1)] = good
    session.client_events[("good", 1)] = []
    joined(session, good)
    if password is None:
        return
    bad = ClientConnection(session.SERVER_ADDRESS, UniversalEventHandler(), "4321")
    session.clients[("bad", 2)] = bad
    session.client_events[("bad", 2)] = []
    session.run_until(lambda: bad.status == DISCONNECTED)
    assert bad.refused_reason == "wrong password" and bad.host_token is None
    assert list(session.server.connections) == [("good", 1)]
    waited_until = session.server._gate.failures["bad"][1]
    assert waited_until > session.network.now  # the source waits before its next proof is looked at


def test_a_client_with_the_wrong_password_does_not_take_a_server_without_it_for_real():
    """The WELCOME is sealed with a key only the right password gives: a stand-in server that does not
    know the password cannot make one the client accepts."""
    store = GameStateStore(GameState())
    impostor = ServerCore(store, UniversalEventHandler(), password="not it")
    client = ClientConnection(("server", 1), UniversalEventHandler(), "the real one")
    now = 0.0
    for _ in range(4):
        for datagram in client.datagrams_to_send(now):
            impostor.receive_datagram(datagram, ("client", 1), now)
        for reply in impostor.datagrams_for(("client", 1), now):
            client.receive_datagram(reply, now)
    assert client.status != CONNECTED and client._cipher is None


def test_one_proof_per_cookie():
    core = ServerCore(GameStateStore(GameState()), UniversalEventHandler(), password="pin")
    client = ClientConnection(("server", 1), UniversalEventHandler(), "nip")  # the wrong PIN
    address, now, confirms = ("client", 1), 0.0, []
    for _ in range(3):
        for datagram in client.datagrams_to_send(now):
            if handshake.parse(datagram).kind == "confirm":
                confirms.append(datagram)
            core.receive_datagram(datagram, address, now)
        for reply in core.datagrams_for(address, now):
            client.receive_datagram(reply, now)
    assert len(confirms) == 1 and client.refused_reason == "wrong password"
    core._gate.failures.clear()  # even without the back-off, the same cookie is not looked at twice
    core.receive_datagram(confirms[0], address, now + 1.0)
    assert core.datagrams_for(address, now + 1.0) == []


def test_a_session_follows_its_client_to_a_new_address_after_it_proves_it_is_there():
    store = GameStateStore(GameState(n=0))
    session = SimulatedSession(store, LinkConditions(latency=0.01))
    client = session.add_client()
    joined(session, client)
    connection = session.server.connections[session.address_of(client)]
    session_id = client._session
    session.move_client(client, ("roamed", 99))  # a NAT rebinding: same client, new address
    client.dispatch_event(Event("AFTER"), retries=5)
    session.run_until(lambda: ("roamed", 99) in session.server.connections)
    store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, n=7))
    session.run(0.5)
    assert session.server.connections == {("roamed", 99): connection}
    assert client._session == session_id and client.status == CONNECTED
    assert [e.type for e, a in session.server_events] == ["AFTER"]
    with client.game_state_context() as state:
        assert state.n == 7


def test_a_copy_of_a_lost_datagram_sent_from_elsewhere_does_not_move_the_session():
    store = GameStateStore(GameState(n=0))
    session = SimulatedSession(store)
    client = session.add_client()
    joined(session, client)
    address = session.address_of(client)
    lost: list = []

    def lose_next(source, destination, datagram):
        if source == address and not lost:
            lost.append(datagram)
            return False
        return True

    session.network.route = lose_next
    client.dispatch_event(Event("SECRET"), retries=3)
    session.run_until(lambda: lost)
    session.network.route = None
    session.server.receive_datagram(lost[0], ("thief", 1), session.network.now)  # authentic, from elsewhere
    session.run(1.0)
    assert list(session.server.connections) == [address]
    assert [(e.type, a) for e, a in session.server_events] == [("SECRET", address)]  # the resend


def test_host_rights_die_with_the_host_session():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    host = session.add_client()
    joined(session, host)
    host_address = session.address_of(host)
    host.shutdown()
    session.run_until(lambda: host.status == DISCONNECTED and not session.server.connections)
    newcomer = ClientConnection(session.SERVER_ADDRESS, UniversalEventHandler())
    session.clients[host_address] = newcomer  # the same address (port) as the host had
    session.client_events[host_address] = []
    joined(session, newcomer)
    assert newcomer.host_token is None and session.server.host_client is None
    newcomer.dispatch_event(Event("pygase:shutdown", host.host_token))  # even with the old token
    session.run(0.5)
    assert not session.shutdown_requested


def test_sealing_costs_little_and_the_exchange_agrees_only_on_the_same_password():
    cookie = bytes(range(16))
    a, b = bytes(32), bytes(range(32))
    generator = crypto.password_point("1234", cookie)
    share_a, share_b = crypto.share(a, generator), crypto.share(b, generator)
    keys = crypto.session_keys(a, share_b, share_a, share_b, cookie)
    assert keys == crypto.session_keys(b, share_a, share_a, share_b, cookie)
    wrong = crypto.share(b, crypto.password_point("1235", cookie))
    assert crypto.session_keys(a, wrong, share_a, wrong, cookie) != crypto.session_keys(
        b, share_a, share_a, wrong, cookie
    )
    with pytest.raises(crypto.AuthenticationError):
        crypto.session_keys(a, bytes(32), share_a, bytes(32), cookie)  # a share of low order


def test_a_sealed_package_carries_32_bits_of_its_counter_and_opens_past_the_wrap():
    key_a, key_b, connection_id = bytes(range(32)), bytes(range(1, 33)), bytes(range(8))
    sender, receiver = crypto.Cipher(key_a, key_b, connection_id), crypto.Cipher(key_b, key_a, connection_id)
    package = crypto.PROTOCOL_ID + b"\x00\x01 a package"
    sealed = sender.seal(package)
    assert len(sealed) == len(package) - len(crypto.PROTOCOL_ID) + crypto.SEALED_OVERHEAD
    assert receiver.open(sealed) == package
    # Far into a session: the counter's low 32 bits wrap to 0, and late datagrams from before still open.
    sender._sent = receiver._highest = (1 << 32) - 3
    before_wrap = [sender.seal(package) for _ in range(2)]
    after_wrap = [sender.seal(package) for _ in range(3)]
    assert sender._sent == (1 << 32) + 2
    for sealed in after_wrap + before_wrap:  # (the late ones arrive last, within the replay window)
        assert receiver.open(sealed) == package
    for sealed in after_wrap + before_wrap:
        with pytest.raises(crypto.AuthenticationError):
            receiver.open(sealed)  # replays, however the counter wrapped
    with pytest.raises(ValueError):
        sender.seal(b"not a package")  # only packages and control messages are sealed after the handshake


def _join_with(session: SimulatedSession, password, name: str) -> ClientConnection:
    client = ClientConnection(session.SERVER_ADDRESS, UniversalEventHandler(), password)
    address = (name, len(session.clients) + 1)
    session.clients[address] = client
    session.client_events[address] = []
    session.run_until(lambda: client.status in (CONNECTED, DISCONNECTED))
    return client


@pytest.mark.parametrize(
    ("server_password", "client_password", "reason"),
    [
        ("1234", None, "password required"),
        (None, "1234", "this server has no password: join without one"),
        ("1234", "4321", "wrong password"),
    ],
)
def test_a_refusal_says_what_is_wrong_with_the_password(server_password, client_password, reason):
    session = SimulatedSession(GameStateStore(GameState()))
    session.server.password = server_password
    client = _join_with(session, client_password, "newcomer")
    assert client.status == DISCONNECTED and client.refused_reason == reason
    assert str(client.connect_error()).endswith(reason)


def test_a_source_that_guesses_wrong_again_and_again_is_told_to_wait_not_left_to_time_out():
    session = SimulatedSession(GameStateStore(GameState()))
    session.server.password = "1234"
    reasons = [_join_with(session, f"{guess:04}", "guesser").refused_reason for guess in range(8)]
    assert reasons[0] == "wrong password"  # a short wait is waited out: the next guess is looked at
    assert reasons[-1].startswith("too many wrong passwords")  # then the client is told to wait
    assert reasons.count("wrong password") <= 6
    session.run(31.0)  # the longest back-off has passed
    assert _join_with(session, "1234", "guesser").status == CONNECTED
