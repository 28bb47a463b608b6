"""Correct on a bad link: events exactly once and in order, converging state, large payloads, drops."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import client_state, push, wait_for

from pygase import Backend, Client, GameState
from pygase.backend import GameStateStore
from pygase.connection import ConnectionStatus
from pygase.event import Event
from pygase.testing import LinkConditions, SimulatedSession

CONNECTED = ConnectionStatus.get("Connected")
DISCONNECTED = ConnectionStatus.get("Disconnected")
BAD_LINK = LinkConditions(latency=0.04, jitter=0.03, loss=0.3, duplication=0.2)


def ticking(store: GameStateStore):
    return lambda now: push(store, clock=now)


# ---- simulated link ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_events_are_handled_in_the_order_they_were_sent(seed):
    store = GameStateStore(GameState())
    session = SimulatedSession(store, BAD_LINK, seed=seed)
    client = session.add_client()
    for i in range(60):
        client.dispatch_event(Event("STEP", i), retries=20)
    session.run(8.0, ticking(store))
    assert [event.handler_args[0] for event, _ in session.server_events] == list(range(60))


def test_a_lost_event_without_retries_does_not_hold_back_the_ones_after_it():
    store = GameStateStore(GameState())
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.2)
    dropped = []

    def drop_first_event_package(source, destination, datagram):
        # (sealed: what a package holds cannot be seen; the client's next package carries FIRST)
        if source != session.SERVER_ADDRESS and not dropped:
            dropped.append(datagram)
            return False
        return True

    session.network.route = drop_first_event_package
    client.dispatch_event(Event("FIRST"))
    session.run(0.001)
    client.dispatch_event(Event("SECOND"), retries=5)
    session.run(1.5)
    assert dropped
    assert [event.type for event, _ in session.server_events] == ["SECOND"]


def test_large_event_arrives_whole_and_once_over_a_bad_link():
    store = GameStateStore(GameState())
    session = SimulatedSession(store, BAD_LINK, seed=4)
    client = session.add_client()
    blob = bytes(range(256)) * 400  # 100 KiB: about a hundred datagrams
    acks = []
    client.dispatch_event(Event("UPLOAD", blob, name="map"), retries=30, ack_callback=lambda: acks.append(1))
    client.dispatch_event(Event("AFTER"), retries=30)
    session.run(20.0, ticking(store))
    received = [(event.type, event.handler_args, event.handler_kwargs) for event, _ in session.server_events]
    assert received == [("UPLOAD", [blob], {"name": "map"}), ("AFTER", [], {})]
    assert acks == [1]


def test_megabyte_state_reaches_a_new_client_over_a_bad_link():
    big = {i: {"name": f"tile{i}", "data": bytes(200)} for i in range(4000)}  # about 1 MB encoded
    store = GameStateStore(GameState(world=big, clock=0.0))
    session = SimulatedSession(store, LinkConditions(latency=0.02, jitter=0.01, loss=0.2), seed=1)
    client = session.add_client()
    session.run(30.0, ticking(store))
    session.run(1.0)  # the game pauses: the last updates arrive
    state = client_state(client)
    assert state["world"] == big
    assert state == dict(store.get_game_state().__dict__)


def test_short_silence_is_survived_without_effect_on_the_game():
    store = GameStateStore(GameState(score=0))
    session = SimulatedSession(store, LinkConditions(latency=0.01))
    client = session.add_client()
    session.run(0.5, ticking(store))
    session.network.route = lambda source, destination, datagram: False
    client.dispatch_event(Event("DURING_SILENCE"), retries=50)
    session.run(client.timeout - 1.0, ticking(store))
    push(store, score=7)
    session.network.route = None
    session.run(1.0, ticking(store))
    session.run(0.2)
    assert client.status == CONNECTED
    assert [event.type for event, _ in session.server_events] == ["DURING_SILENCE"]
    assert client_state(client) == dict(store.get_game_state().__dict__)


def test_lost_state_updates_of_any_number_converge():
    store = GameStateStore(GameState(log={}))
    session = SimulatedSession(
        store, LinkConditions(latency=0.03, jitter=0.02, loss=0.5, duplication=0.3), seed=8
    )
    client = session.add_client()
    changes = iter(range(200))

    def tick(now):
        change = next(changes, None)
        if change is not None:
            push(store, log={change: now})

    session.run(6.0, tick)
    assert client_state(client) == dict(store.get_game_state().__dict__)
    assert len(client_state(client)["log"]) == 200


# ---- real sockets on loopback with a simulated lossy link --------------------------------------------


@pytest.fixture
def backend(backend_factory):
    handled: list = []
    lock = threading.Lock()

    def count(i, **kwargs):
        with lock:
            handled.append(i)
        return {"last": i}

    backend = backend_factory(GameState(last=-1, value=0), lambda game_state, dt: {}, {"COUNT": count})
    backend.handled = handled
    return backend


@pytest.mark.timeout(40)
def test_forty_events_with_retries_over_thirty_percent_loss_are_handled_and_acked_exactly_once(backend):
    client = Client(simulate=LinkConditions(latency=0.005, jitter=0.004, loss=0.3, duplication=0.2))
    client.connect_in_thread(backend.server.port, "127.0.0.1")
    acks: list[int] = []
    try:
        client.wait_until(lambda state: state.last == -1, timeout=5)
        for i in range(40):
            client.dispatch_event("COUNT", i, retries=20, ack_callback=lambda i=i: acks.append(i))
        client.wait_until(lambda state: state.last == 39, timeout=15)
        wait_for(lambda: len(acks) >= 40, timeout=10)
        time.sleep(0.3)  # deliberately: room for a late duplicate to show up (none may)
    finally:
        client.disconnect()
    assert backend.handled == list(range(40))
    assert sorted(acks) == list(range(40))


@pytest.mark.timeout(40)
def test_thirty_state_changes_converge_on_a_lossy_client(backend):
    client = Client(simulate=LinkConditions(latency=0.005, jitter=0.004, loss=0.3, duplication=0.2))
    client.connect_in_thread(backend.server.port, "127.0.0.1")
    store = backend.game_state_store
    try:
        client.wait_until(lambda state: state.value == 0, timeout=5)
        for i in range(1, 31):
            push(store, value=i, **{f"key{i}": i})
            time.sleep(0.01)  # deliberately: one change at a time, so each is an update of its own
        client.wait_until(lambda state: state.value == 30, timeout=10)
        with client.access_game_state() as state:
            assert all(getattr(state, f"key{i}") == i for i in range(1, 31))
    finally:
        client.disconnect()


@pytest.mark.timeout(40)
def test_megabyte_state_reaches_a_new_client_on_loopback():
    world = {i: {"name": f"tile{i}", "data": bytes(200)} for i in range(4500)}
    backend = Backend(GameState(world=world), lambda game_state, dt: {})
    thread = backend.run_in_thread("127.0.0.1", 0)
    assert len(GameState(world=world).to_bytes()) > 1_000_000
    client = Client()
    client.connect_in_thread(backend.server.port, "127.0.0.1")
    try:
        client.wait_until(lambda state: len(state.world) == 4500, timeout=20)
        with client.access_game_state() as state:
            assert state.world == world
    finally:
        client.disconnect()
        backend.shutdown()
        thread.join(timeout=5)


def test_event_larger_than_the_limit_is_refused_at_dispatch(backend):
    client = Client()
    client.connect_in_thread(backend.server.port, "127.0.0.1")
    try:
        with pytest.raises(ValueError, match="max_event_size"):
            client.dispatch_event("COUNT", bytes(client.connection.max_event_size + 1))
    finally:
        client.disconnect()


def test_cut_off_client_reports_disconnected_and_calls_its_disconnect_handler(silent_port):
    client = Client()
    ended = threading.Event()
    client.register_disconnect_handler(ended.set)
    client.connect_in_thread(silent_port, "127.0.0.1")  # a port where nobody answers
    client.connection.timeout = 0.5
    assert ended.wait(3)
    assert client.connection.status == DISCONNECTED


@pytest.mark.parametrize("latency", [0.01, 0.1])
def test_leaving_is_prompt_when_the_servers_goodbye_ack_is_lost(latency):
    store = GameStateStore(GameState(clock=0.0))
    session = SimulatedSession(store, LinkConditions(latency=latency))
    client = session.add_client()
    session.run(1.0)
    start = session.network.now

    def drop_the_ack(source, destination, datagram):
        # the server's reply to the goodbye is lost
        return not (
            source == session.SERVER_ADDRESS
            and start + latency <= session.network.now < start + latency + 0.05
        )

    session.network.route = drop_the_ack
    client.shutdown()
    session.run(1.5)
    assert client.status == DISCONNECTED  # the repeated goodbye was acknowledged
    session.run(3.0)
    assert session.server.connections == {}
    joins = [event for event, _ in session.server_notifications if event.type == "pygase:client_joined"]
    assert len(joins) == 1  # no second join of a client on its way out
