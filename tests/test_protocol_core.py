"""The protocol core over a simulated in-memory link with a virtual clock: no sockets, no threads."""

from __future__ import annotations

import random

import pytest
from helpers import client_state, push, server_state

from pygase.backend import GameStateStore
from pygase.connection import ConnectionStatus
from pygase.event import Event
from pygase.gamestate import TO_DELETE, GameState
from pygase.testing import LinkConditions, SimulatedSession
from pygase.utils import Sqn

CONNECTED = ConnectionStatus.get("Connected")
DISCONNECTED = ConnectionStatus.get("Disconnected")


def moving_ticks(store: GameStateStore):
    def tick(now: float) -> None:
        push(store, players={1: {"x": now}})

    return tick


def test_new_client_receives_the_full_state():
    store = GameStateStore(GameState(hp=100, players={1: {"x": 0.0, "name": "ann"}}))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    assert client.status == CONNECTED
    assert client_state(client) == server_state(store)


def test_update_changes_one_field_and_keeps_its_siblings_on_the_client():
    store = GameStateStore(GameState(players={3: {"x": 1.0, "y": 2.0}, 4: {"x": 0.0}}))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.2)
    push(store, players={3: {"x": 5.5}})
    session.run(0.2)
    assert client_state(client)["players"] == {3: {"x": 5.5, "y": 2.0}, 4: {"x": 0.0}}


def test_one_off_change_arrives_although_the_package_carrying_it_was_lost():
    store = GameStateStore(GameState(marker=0))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    dropped = []

    def drop_first_state_package(source, destination, datagram):
        if source == session.SERVER_ADDRESS and not dropped and len(datagram) > 30:
            dropped.append(datagram)
            return False
        return True

    session.network.route = drop_first_state_package
    push(store, marker=1)  # one change, and the game then stays idle
    session.run(0.5)
    assert dropped, "the test meant to drop the package with the change"
    assert client_state(client)["marker"] == 1


def test_client_behind_the_update_cache_gets_the_exact_state_including_deletions():
    store = GameStateStore(GameState(players={1: {"x": 0}, 2: {"x": 0}}, gone=True))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    session.network.route = lambda source, destination, datagram: source != session.SERVER_ADDRESS
    push(store, gone=TO_DELETE, players={2: TO_DELETE})
    for i in range(GameStateStore._update_cache_size + 20):
        push(store, players={1: {"x": i}})
        session.run(0.01)
    assert client_state(client) != server_state(store)
    session.network.route = None
    session.run(0.5)
    assert client_state(client) == server_state(store)
    assert "gone" not in client_state(client)


def test_state_converges_on_a_lossy_reordering_link():
    store = GameStateStore(GameState(players={1: {"x": 0.0}}, score=0))
    conditions = LinkConditions(latency=0.05, jitter=0.03, loss=0.3, duplication=0.2)
    session = SimulatedSession(store, conditions, seed=11)
    client = session.add_client()
    changes = iter(range(1, 31))

    def tick(now: float) -> None:
        change = next(changes, None)
        if change is not None:
            push(store, score=change, players={change: {"x": now}})

    session.run(3.0, tick)
    assert client_state(client) == server_state(store)
    assert client_state(client)["score"] == 30


def test_events_with_retries_are_handled_exactly_once_and_acked_once_on_a_bad_link():
    store = GameStateStore(GameState())
    session = SimulatedSession(
        store, LinkConditions(latency=0.03, jitter=0.02, loss=0.3, duplication=0.3), seed=5
    )
    client = session.add_client()
    acks: list[int] = []
    for i in range(40):
        client.dispatch_event(Event("HIT", i), ack_callback=lambda i=i: acks.append(i), retries=10)
    session.run(6.0, moving_ticks(store))
    handled = sorted(event.handler_args[0] for event, _ in session.server_events)
    assert handled == list(range(40))
    assert sorted(acks) == list(range(40))


def test_server_events_reach_the_client_exactly_once():
    store = GameStateStore(GameState())
    session = SimulatedSession(store, LinkConditions(latency=0.02, loss=0.25, duplication=0.3), seed=2)
    client = session.add_client()
    session.run_until(lambda: client.status == ConnectionStatus.get("Connected"))
    address = session.address_of(client)
    acked = []
    for i in range(20):
        session.server.dispatch_event(Event("NEWS", i), address, retries=10, ack_callback=acked.append)
    session.run(4.0, moving_ticks(store))
    assert sorted(event.handler_args[0] for event in session.client_events[address]) == list(range(20))
    assert len(acked) == 20
    assert all(connection is session.server.connections[address] for connection in acked)


def test_event_without_retries_that_is_lost_calls_its_timeout_callback():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    session.network.route = lambda source, destination, datagram: source == session.SERVER_ADDRESS
    timeouts, acks = [], []
    client.dispatch_event(
        Event("LOST"), ack_callback=lambda: acks.append(1), timeout_callback=lambda: timeouts.append(1)
    )
    session.run(1.0)
    assert timeouts == [1]
    assert acks == []
    assert session.server_events == []


def test_round_trip_time_is_measured_without_the_time_acks_wait():
    store = GameStateStore(GameState())
    session = SimulatedSession(store, LinkConditions(latency=0.04))
    client = session.add_client()
    session.run(2.0, moving_ticks(store))
    server_side = session.server.connections[session.address_of(client)]
    assert client.latency == pytest.approx(0.08, abs=0.005)
    assert server_side.latency == pytest.approx(0.08, abs=0.005)


def test_high_latency_throttles_sending_and_recovery_restores_it():
    store = GameStateStore(GameState())
    session = SimulatedSession(store, LinkConditions(latency=0.2))
    client = session.add_client()
    session.run(4.0, moving_ticks(store))  # (quality is judged from 2 s after joining)
    server_side = session.server.connections[session.address_of(client)]
    assert server_side.quality == "bad"
    assert client.quality == "bad"
    sent_before = server_side.packages_sent
    session.run(2.0, moving_ticks(store))
    assert server_side.packages_sent - sent_before <= 2.0 / server_side.congested_interval + 1
    session.network.conditions = LinkConditions(latency=0.01)
    session.run(8.0, moving_ticks(store))
    assert server_side.quality == "good"
    assert client.quality == "good"
    sent_before = server_side.packages_sent
    session.run(1.0, moving_ticks(store))
    assert server_side.packages_sent - sent_before >= 45  # one package per 50 Hz tick again


def test_silent_server_makes_the_client_report_disconnected_after_the_timeout():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.5)
    session.network.route = lambda source, destination, datagram: False
    session.run(client.timeout - 0.5)
    assert client.status == CONNECTED
    session.run(1.0)
    assert client.status == DISCONNECTED
    assert session.server.connections == {}


def test_client_that_never_reaches_a_server_gives_up_after_the_timeout():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    session.network.route = lambda source, destination, datagram: False
    client = session.add_client()
    session.run(client.timeout + 0.5)
    assert client.status == DISCONNECTED


def test_first_client_is_host_and_only_the_host_can_shut_the_server_down():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    host = session.add_client()
    session.run(0.2)
    guest = session.add_client()
    session.run(0.2)
    assert session.server.host_client == session.address_of(host)
    guest.shutdown(shutdown_server=True)
    session.run(0.5)
    assert not session.server.shutdown_requested
    host.shutdown(shutdown_server=True)
    session.run(0.5)
    assert session.server.shutdown_requested
    assert host.status == DISCONNECTED


def test_disconnecting_client_is_forgotten_by_the_server_at_once():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    assert session.address_of(client) in session.server.connections
    client.shutdown()
    session.run(0.1)
    assert client.status == DISCONNECTED
    assert session.server.connections == {}


def test_many_clients_at_the_same_time_order_share_one_encoded_update():
    store = GameStateStore(GameState(x=0))  # at time order 0
    push(store, x=1)
    push(store, x=2)
    first = store._encoded_update_since(Sqn(1))
    second = store._encoded_update_since(Sqn(1))
    assert first[1] is second[1]
    assert store._encoded_update_since(Sqn(2)) == (Sqn(2), None, False)


@pytest.fixture
def one_byte_sequences():
    Sqn.set_bytesize(1)
    try:
        yield
    finally:
        Sqn.set_bytesize(2)


def test_long_session_past_sequence_wrap_around_keeps_state_and_events_exact(one_byte_sequences):
    store = GameStateStore(GameState(players={1: {"x": 0.0}}, counter=0))
    session = SimulatedSession(store, LinkConditions(latency=0.01, jitter=0.005, loss=0.1), seed=9)
    client = session.add_client()
    handled_before = 0
    for round_number in range(4):  # 4 x 300 ticks: time orders and sequences wrap past 255 several times
        for i in range(10):
            client.dispatch_event(Event("E", round_number * 10 + i), retries=10)
        session.run(
            6.0, lambda now: push(store, counter=store.get_game_state().counter + 1, players={1: {"x": now}})
        )
        handled = sorted(e.handler_args[0] for e, _ in session.server_events)
        assert handled == list(range(round_number * 10 + 10))
        assert len(handled) > handled_before
        handled_before = len(handled)
    assert int(client.local_sequence) < 255
    session.run(0.5)
    assert client_state(client) == server_state(store)
    assert client_state(client)["counter"] > 1000


def test_floats_keep_full_precision_unless_the_game_opts_into_single_precision():
    value = 0.1 + 1e-12
    for single, expected_bytes in ((False, 9), (True, 5)):
        store = GameStateStore(GameState(x=0.0), single_precision_floats=single)
        session = SimulatedSession(store)
        client = session.add_client()
        session.run(0.2)
        before = store.get_game_state().time_order  # 0: the initial state
        push(store, x=value)
        size = len(store._encoded_update_since(before, initial_state_held=True)[1])  # the update alone
        session.run(0.2)
        received = client_state(client)["x"]
        if single:
            assert received == pytest.approx(value, rel=1e-7) and received != value
        else:
            assert received == value
        # a map of two: the time order (under the key 0 on the wire, see `_store._wire`) and x
        assert size == len(b"\x82" + b"\x00\x02" + b"\xa1x") + expected_bytes


def test_updates_that_arrive_between_looks_are_applied_when_the_state_is_read():
    store = GameStateStore(GameState(x=0))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    received_before = client.updates_received
    for i in range(1, 6):
        push(store, x=i)
        session.step(session.network.now + 0.001)  # deliver, without a heartbeat in between
    assert client.updates_received >= received_before + 1
    assert client_state(client)["x"] == 5  # reading the state applies the newest update that arrived


def test_packages_without_events_are_the_same_bytes_as_the_general_encoding(monkeypatch):
    """State updates and heartbeats take a shortcut to bytes; it must write exactly what a Package would."""
    from pygase._packages import ClientPackage, ServerPackage

    store = GameStateStore(GameState(players={1: {"x": 0.0}}))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    server = next(iter(session.server.connections.values()))
    push(store, players={1: {"x": 2.5}})
    now = session.network.now
    for connection, package_class in ((server, ServerPackage), (client, ClientPackage)):
        cipher, connection._cipher = connection._cipher, None  # compare the packages, before sealing
        assert not connection._reliability.queued()
        sequence, sent_time_order = connection.local_sequence, getattr(connection, "_sent_time_order", None)
        shortcut = connection._next_datagram(now)
        # the same package again, the general way: through a Package object and its to_datagram
        connection.local_sequence = sequence
        if connection is server:
            connection._sent_time_order = sent_time_order
        with monkeypatch.context() as patch:
            patch.setattr(type(connection), "_plain_tail", lambda self, now: None)
            assert connection._next_datagram(now) == shortcut
        connection._cipher = cipher
        package = package_class.from_datagram(shortcut)
        assert int(package.header.sequence) == int(connection.local_sequence)
        assert package.events == []
        if connection is server:
            assert package.game_state_update.players == {1: {"x": 2.5}}
            client.receive_datagram(cipher.seal(shortcut), now)
            client_state(client)  # reading the state applies the update: the client reports it
        else:
            assert package.time_order == store.get_game_state().time_order


def test_client_that_never_reads_its_state_still_reports_progress_and_gets_small_updates():
    """A headless client applies what arrived only to report it, every `report_interval` seconds at most;
    its updates stay deltas from a recent state, never the whole state again (the cache holds 2 s)."""
    store = GameStateStore(GameState(players={i: {"x": 0.0} for i in range(20)}, big="x" * 200))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.3)
    server_side = next(iter(session.server.connections.values()))
    reported = []

    def tick(now: float) -> None:
        push(store, players={1: {"x": now}})
        reported.append(int(server_side.last_client_time_order))

    session.run(5.0, tick)
    current = int(store.get_game_state().time_order)
    lags = [t - r for t, r in zip(range(current - len(reported) + 1, current + 1), reported)][50:]
    assert max(lags) <= 40  # report_interval 0.5 s = 25 ticks, plus the heartbeat interval and transit
    assert client_state(client) == server_state(store)


def test_the_cores_report_everything_through_one_ordered_output():
    """Both cores, driven by hand without a socket or clock: what happens comes out of `events()` as
    typed outputs, in the order it happened, and nothing is left behind after a call."""
    from pygase._outputs import CallbackDue, ClientJoined, ClientLeft, EventReceived, ShutdownRequested
    from pygase._server_core import ServerCore
    from pygase.connection import ClientConnection
    from pygase.event import UniversalEventHandler

    store = GameStateStore(GameState(n=0))
    core = ServerCore(
        store, UniversalEventHandler(), random_bytes=random.Random(7).randbytes, decide_joins=True
    )
    outputs: list = []
    clients = {("a", 1): ClientConnection(("server", 1), UniversalEventHandler())}
    clients[("b", 2)] = ClientConnection(("server", 1), UniversalEventHandler())
    now = 0.0

    def pump(steps: int = 20) -> None:
        nonlocal now
        for _ in range(steps):
            now += 0.01
            for address, client in clients.items():
                for datagram in client.datagrams_to_send(now):
                    core.receive_datagram(datagram, address, now)
                    for reply in core.datagrams_for(address, now):
                        client.receive_datagram(reply, now)
                client.handle_timer(now)
                outputs.extend((address, output) for output in client.events())
            for output in core.events():
                outputs.append(("server", output))
                if isinstance(output, ClientJoined):  # the driver lets each player in
                    core.accept_join(output.player_id, now)
            for datagram, address in core.datagrams_to_send(now):
                clients[address].receive_datagram(datagram, now)
            outputs.extend(("server", output) for output in core.events())

    pump()
    assert [output for side, output in outputs if side == "server"] == [
        ClientJoined(("a", 1), 1, {}),
        ClientJoined(("b", 2), 2, {}),
    ]
    assert [client.player_id for client in clients.values()] == [1, 2]
    acked: list = []
    clients[("a", 1)].dispatch_event(Event("HELLO", 1), ack_callback=lambda: acked.append(1))
    core.dispatch_event(Event("WELCOME"), target_client=("b", 2))
    outputs.clear()
    pump()
    kinds = [(side, type(output).__name__) for side, output in outputs]
    assert ("server", "EventReceived") in kinds and (("a", 1), "CallbackDue") in kinds
    assert (("b", 2), "EventReceived") in kinds
    received = [output for side, output in outputs if isinstance(output, EventReceived)]
    assert [(r.event.type, r.address) for r in received] == [("HELLO", ("a", 1)), ("WELCOME", ("server", 1))]
    callback = next(output for _, output in outputs if isinstance(output, CallbackDue))
    callback.function(*callback.args)
    assert acked == [1]
    outputs.clear()
    clients[("a", 1)].shutdown(shutdown_server=True)  # "a" joined first: the host
    clients[("b", 2)].shutdown()
    pump()
    server_side = [output for side, output in outputs if side == "server"]
    assert ShutdownRequested(("a", 1)) in server_side
    assert server_side.index(ShutdownRequested(("a", 1))) < server_side.index(ClientLeft(("a", 1), 1))
    assert ClientLeft(("b", 2), 2) in server_side
    assert core.events() == [] and all(client.events() == [] for client in clients.values())


def test_one_slow_first_round_trip_does_not_throttle_a_connection_but_lasting_ones_do():
    """When many clients join at once their first acks wait behind each other's handshakes: the first
    RTT sample alone does not make the connection count as congested (which throttles its updates to 10
    a second, for seconds); samples that stay high do."""
    from types import SimpleNamespace

    from pygase._recovery import Recovery

    owner = SimpleNamespace(
        latency_threshold=0.25, remote_address=("a", 1), ack_delay=0.004, congested_interval=0.1
    )
    recovery = Recovery(owner)
    recovery.start(0.0)
    recovery.add_sample(0.35, 0.1)  # the join burst
    for step in range(1, 20):
        recovery.add_sample(0.02, 0.1 + 0.2 * step)
        assert recovery.quality == "good"
    for step in range(20, 40):
        recovery.add_sample(0.6, 0.1 + 0.2 * step)
    assert recovery.quality == "bad"


def test_a_moment_in_which_one_side_stalls_does_not_throttle_but_a_slow_link_does():
    """Issue 14: with 200 clients, a garbage collection or a busy moment in one process delayed a few acks
    by a second; the smoothed RTT jumped over the threshold and throttled the connections for seconds."""
    from types import SimpleNamespace

    from pygase._recovery import Recovery

    owner = SimpleNamespace(
        latency_threshold=0.25, remote_address=("a", 1), ack_delay=0.004, congested_interval=0.1
    )
    recovery = Recovery(owner)
    recovery.start(0.0)
    now = 0.0
    for _ in range(10):
        now += 0.2
        recovery.add_sample(0.03, now)
    for late in (1.6, 1.4, 1.2):  # acks that waited out a 1.5 s stall, arriving together
        now += 0.01
        recovery.add_sample(late, now)
    assert recovery.latency > owner.latency_threshold  # (the smoothed RTT shows it)
    for _ in range(20):
        now += 0.2
        recovery.add_sample(0.03, now)
        assert recovery.quality == "good"
    for _ in range(6):  # a link that turned slow
        now += 0.2
        recovery.add_sample(0.4, now)
    assert recovery.quality == "bad"


def test_the_round_trips_of_a_burst_of_joins_do_not_throttle_a_connection():
    """200 clients joining at once keep the server busy with handshakes for about a second: the round trips
    then say nothing about the link, and throttling for seconds after them cost figure 5 its updates."""
    from types import SimpleNamespace

    from pygase._recovery import Recovery

    owner = SimpleNamespace(
        latency_threshold=0.25, remote_address=("a", 1), ack_delay=0.004, congested_interval=0.1
    )
    recovery = Recovery(owner)
    recovery.start(0.0)
    now = 0.0
    for _ in range(8):  # 1.6 s of round trips far over the threshold
        now += 0.2
        recovery.add_sample(0.8, now)
    for _ in range(20):
        now += 0.2
        recovery.add_sample(0.03, now)
        assert recovery.quality == "good"
