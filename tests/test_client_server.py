"""Client, Server, GameStateMachine and Backend over real UDP sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import statistics
import threading
import time

import pytest
from helpers import wait_for

from pygase import (
    Backend,
    Client,
    GameState,
    GameStateMachine,
    GameStateStore,
    GameStateUpdate,
    GameStatus,
    Server,
)
from pygase.connection import PROTOCOL_ID, ConnectionStatus

pytestmark = pytest.mark.timeout(30)

DISCONNECTED = ConnectionStatus.get("Disconnected")


def test_seed_backend_example_sets_bar_and_resets_foo(backend_factory, client_factory):
    backend = backend_factory(
        GameState(foo=0.0, bar=0.5),
        lambda game_state, dt: {"foo": game_state.foo + game_state.bar * dt},
        {
            "RESET_FOO": lambda game_state, dt: {"foo": 0.0},
            "SET_BAR": lambda new_bar, game_state, dt: {"bar": new_bar},
        },
    )
    client = client_factory(backend.server.port)
    client.wait_until(lambda state: state.foo > 0.01, timeout=3)
    client.dispatch_event("SET_BAR", new_bar=4.0)
    client.wait_until(lambda state: state.bar == 4.0)
    client.wait_until(lambda state: state.foo > 0.1)
    client.dispatch_event("RESET_FOO")
    client.wait_until(lambda state: state.foo < 0.1)


def test_tutorial_attack_events_get_feedback_and_change_hp(backend_factory, client_factory):
    backend = backend_factory(GameState(position=0.0, hp=100), lambda game_state, dt: {})

    def on_attack(attack_position, client_address, game_state, **kwargs):
        if abs(attack_position - game_state.position) < 0.1:
            backend.server.dispatch_event("ATTACK_FEEDBACK", "Hit!", target_client=client_address)
            return {"hp": game_state.hp - 10}
        backend.server.dispatch_event("ATTACK_FEEDBACK", "Missed.", target_client=client_address)
        return {}

    backend.game_state_machine.register_event_handler("ATTACK", on_attack)
    client = client_factory(backend.server.port)
    feedback: list[str] = []
    client.register_event_handler("ATTACK_FEEDBACK", feedback.append)
    client.wait_until(lambda state: state.hp == 100, timeout=3)
    client.dispatch_event("ATTACK", attack_position=0.5)
    client.dispatch_event("ATTACK", attack_position=0.05)
    client.wait_until(lambda state: state.hp == 90)
    wait_for(lambda: len(feedback) >= 2, timeout=2)
    assert feedback == ["Missed.", "Hit!"]


def test_host_can_shut_the_server_down_and_a_guest_cannot(backend_factory):
    backend = backend_factory(GameState(x=0), lambda game_state, dt: {"x": game_state.x + 1})
    port = backend.server.port
    host, guest = Client(), Client()
    host.connect_in_thread(port, "127.0.0.1")
    host.wait_until(lambda state: state.x > 0, timeout=3)
    guest.connect_in_thread(port, "127.0.0.1")
    guest.wait_until(lambda state: state.x > 0, timeout=3)
    guest.disconnect(shutdown_server=True)
    time.sleep(0.2)  # deliberately: time for the guest's shutdown request to be refused, not to work
    assert backend.server.port == port
    host.wait_until(lambda state: state.x > 0)
    host.disconnect(shutdown_server=True)
    paused = GameStatus.get("Paused")
    wait_for(
        lambda: backend.server.port is None and backend.game_state_machine.game_status == paused, timeout=3
    )
    assert backend.server.port is None
    assert backend.game_state_machine.game_status == paused


def test_a_dedicated_server_has_no_host_so_no_client_can_shut_it_down(backend_factory):
    backend = backend_factory(GameState(x=0), lambda game_state, dt: {"x": game_state.x + 1}, dedicated=True)
    port = backend.server.port
    first = Client()
    first.connect_in_thread(port, "127.0.0.1")
    first.wait_until(lambda state: state.x > 0, timeout=3)
    assert backend.server.host_client is None and first.connection.host_token is None
    first.disconnect(shutdown_server=True)
    time.sleep(0.2)  # deliberately: time for the request to be refused, not to work
    assert backend.server.port == port


def test_clients_learn_at_once_that_the_server_shut_down_and_give_up_after_the_timeout(
    backend_factory, client_factory
):
    backend = backend_factory(GameState(x=0), lambda game_state, dt: {})
    client = client_factory(backend.server.port)
    client.wait_until(lambda state: state.x == 0, timeout=3)
    client.connection.timeout = 1.0
    backend.shutdown()
    wait_for(lambda: client.connection.server_closed, timeout=0.5)
    assert client.connection.status == ConnectionStatus.get("Connecting")
    wait_for(lambda: client.connection.status == DISCONNECTED, timeout=2.0)


def test_client_reconnects_by_itself_when_its_server_runs_again():
    store = GameStateStore(GameState(x=0))
    server = Server(store)
    thread = server.run_in_thread(0, "127.0.0.1")
    port = server.port
    client = Client()
    client.connect_in_thread(port, "127.0.0.1")
    try:
        client.wait_until(lambda state: state.x == 0, timeout=3)
        server.shutdown()
        thread.join(timeout=5)
        wait_for(lambda: client.connection.server_closed)
        store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, x=5))
        thread = server.run_in_thread(port, "127.0.0.1")
        client.wait_until(lambda state: state.x == 5, timeout=3)
        assert client.connection.status == ConnectionStatus.get("Connected")
        assert not client.connection.server_closed
    finally:
        client.disconnect()
        server.shutdown()
        thread.join(timeout=5)


def test_client_resynchronizes_with_a_new_server_on_the_same_port():
    first = Server(GameStateStore(GameState(generation=1)))
    thread = first.run_in_thread(0, "127.0.0.1")
    port = first.port
    client = Client()
    client.connect_in_thread(port, "127.0.0.1")
    try:
        client.wait_until(lambda state: state.generation == 1, timeout=3)
        first.shutdown()
        thread.join(timeout=5)
        second = Server(GameStateStore(GameState(generation=2, extra="yes")))
        thread = second.run_in_thread(port, "127.0.0.1")
        client.wait_until(lambda state: state.generation == 2 and state.extra == "yes", timeout=3)
        assert len(second.connections) == 1
    finally:
        client.disconnect()
        second.shutdown()
        thread.join(timeout=5)


def test_server_address_is_none_while_not_running_and_it_can_run_again_with_its_connections():
    store = GameStateStore(GameState(x=1))
    server = Server(store)
    assert server.hostname is None and server.port is None
    thread = server.run_in_thread(0, "127.0.0.1")
    port = server.port
    assert port and server.hostname == "127.0.0.1"
    client = Client()
    client.connect_in_thread(port, "127.0.0.1")
    try:
        client.wait_until(lambda state: state.x == 1, timeout=3)
        assert len(server.connections) == 1
        server.shutdown()
        thread.join(timeout=5)
        assert server.hostname is None and server.port is None
        assert len(server.connections) == 1  # remembered
        thread = server.run_in_thread(port, "127.0.0.1")
        assert server.port == port
    finally:
        client.disconnect()
        server.shutdown()
        thread.join(timeout=5)


def test_run_in_thread_raises_when_the_port_is_taken():
    store = GameStateStore(GameState())
    first, second = Server(store), Server(store)
    thread = first.run_in_thread(0, "127.0.0.1")
    try:
        with pytest.raises(OSError):
            second.run_in_thread(first.port, "127.0.0.1")
    finally:
        first.shutdown()
        thread.join(timeout=5)


def test_game_loop_waits_between_steps_passes_real_dt_and_pauses_and_resumes():
    store = GameStateStore(GameState(steps=0))
    machine = GameStateMachine(store)
    dts: list[float] = []

    def time_step(game_state, dt):
        dts.append(dt)
        return {"steps": game_state.steps + 1}

    machine.time_step = time_step
    started = time.perf_counter()
    thread = machine.run_game_loop_in_thread(interval=0.02)
    assert machine.game_status == GameStatus.get("Active")
    time.sleep(0.5)  # deliberately: the loop runs half a second, then its steps are counted
    assert machine.stop(timeout=1.0) is True
    thread.join(timeout=2)
    elapsed = time.perf_counter() - started
    assert store.get_game_state().is_paused()
    assert 20 <= len(dts) <= 27  # 50 Hz for half a second, no busy stepping
    assert sum(dts) == pytest.approx(machine.game_time)
    assert machine.game_time == pytest.approx(elapsed, abs=0.05)
    # Steps keep to a fixed schedule: a step that came late (the process was busy: a garbage collection
    # after the tests before) is followed by one that comes early, so steps do not drift.
    assert all(dt < 0.04 for dt in dts[1:]) and statistics.median(dts[1:]) == pytest.approx(0.02, abs=0.002)
    assert all(dts[i - 1] > 0.025 for i in range(2, len(dts)) if dts[i] < 0.015), dts
    game_time = machine.game_time
    steps = store.get_game_state().steps
    thread = machine.run_game_loop_in_thread(interval=0.02)
    time.sleep(0.1)  # deliberately: a few steps after resuming
    machine.stop()
    thread.join(timeout=2)
    assert store.get_game_state().steps > steps
    assert machine.game_time > game_time


def test_idle_game_loop_uses_almost_no_cpu():
    store = GameStateStore(GameState())
    machine = GameStateMachine(store)
    machine.time_step = lambda game_state, dt: {}
    thread = machine.run_game_loop_in_thread(interval=0.02)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    time.sleep(1.0)  # deliberately: a second of idling, to measure its CPU time
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    machine.stop()
    thread.join(timeout=2)
    assert cpu / wall < 0.2  # a busy loop would use a whole core


def test_coroutine_handlers_and_ack_callbacks_work(backend_factory, client_factory):
    async def set_value(value, game_state, dt):
        await asyncio.sleep(0)
        return {"value": value}

    backend = backend_factory(GameState(value=0), lambda game_state, dt: {}, {"SET": set_value})
    client = client_factory(backend.server.port)
    acked = threading.Event()

    async def on_ack():
        await asyncio.sleep(0)
        acked.set()

    client.wait_until(lambda state: state.value == 0, timeout=3)
    client.dispatch_event("SET", 7, ack_callback=on_ack)
    client.wait_until(lambda state: state.value == 7)
    assert acked.wait(2)


def test_wait_until_and_try_to_tolerate_state_that_has_not_arrived(backend_factory, client_factory):
    backend = backend_factory(GameState(players={}), lambda game_state, dt: {})
    backend.game_state_machine.register_event_handler(
        "JOIN", lambda name, game_state, **kwargs: {"players": {1: {"name": name}}}
    )
    client = client_factory(backend.server.port)
    client.dispatch_event("JOIN", "ann")
    client.wait_until(lambda state: state.players[1]["name"] == "ann", timeout=3)
    assert client.try_to(lambda state: state.players[1]["name"].upper()) == "ANN"
    with pytest.raises(TimeoutError):
        client.try_to(lambda state: state.players[2], timeout=0.2)
    with pytest.raises(TimeoutError):
        client.wait_until(lambda state: state.missing_attribute, timeout=0.2)


def test_stray_and_malformed_datagrams_do_not_disturb_the_server(backend_factory, client_factory, caplog):
    backend = backend_factory(GameState(x=0), lambda game_state, dt: {"x": game_state.x + 1})
    port = backend.server.port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
        for payload in (
            b"",
            b"hello",
            b"shutdown",
            PROTOCOL_ID,
            PROTOCOL_ID + b"\x00" * 8,
            PROTOCOL_ID + b"\xff" * 40,
        ):
            stray.sendto(payload, ("127.0.0.1", port))
    client = client_factory(port)
    client.wait_until(lambda state: state.x > 5, timeout=3)
    assert backend.server.port == port
    assert ("127.0.0.1", port) != backend.server.host_client


def test_handler_that_raises_is_logged_with_its_traceback_and_the_session_goes_on(
    backend_factory, client_factory, caplog
):
    def broken(game_state, dt):
        raise ZeroDivisionError("boom")

    backend = backend_factory(
        GameState(v=0), lambda game_state, dt: {}, {"BROKEN": broken, "SET": lambda v, **kwargs: {"v": v}}
    )
    client = client_factory(backend.server.port)
    with caplog.at_level(logging.ERROR, logger="pygase"):
        client.dispatch_event("BROKEN")
        client.dispatch_event("SET", 3)
        client.wait_until(lambda state: state.v == 3, timeout=3)
    records = [r for r in caplog.records if "BROKEN" in r.getMessage()]
    assert records and records[0].exc_info and records[0].exc_info[0] is ZeroDivisionError


def test_twenty_clients_in_one_process_all_follow_the_state(backend_factory):
    backend = backend_factory(GameState(t=0), lambda game_state, dt: {"t": game_state.t + 1})
    clients = [Client() for _ in range(20)]
    for client in clients:
        client.connect_in_thread(backend.server.port, "127.0.0.1")
    try:
        for client in clients:
            client.wait_until(lambda state: state.t > 10, timeout=5)
        assert len({client._network_thread for client in clients}) == 1
    finally:
        for client in clients:
            client.disconnect()


def test_dispatch_event_errors_are_clear():
    client = Client()
    with pytest.raises(RuntimeError, match="connect"):
        client.dispatch_event("X")
    with pytest.raises(RuntimeError, match="connect"):
        client.access_game_state()


def test_unsendable_event_data_raises_type_error_in_the_caller(backend_factory, client_factory):
    backend = backend_factory(GameState(), lambda game_state, dt: {})
    client = client_factory(backend.server.port)
    with pytest.raises(TypeError):
        client.dispatch_event("X", object())


def test_asyncio_program_runs_backend_and_client_without_threads():
    async def main() -> int:
        backend = Backend(GameState(n=0), lambda game_state, dt: {"n": game_state.n + 1})
        backend_task = asyncio.ensure_future(backend.run_async("127.0.0.1", 0))
        while backend.server.port is None:
            await asyncio.sleep(0.01)
        client = Client()
        client_task = asyncio.ensure_future(client.connect_async(backend.server.port, "127.0.0.1"))
        for _ in range(300):
            await asyncio.sleep(0.01)
            with client.access_game_state() as state:
                if getattr(state, "n", 0) > 5:
                    break
        with client.access_game_state() as state:
            seen = state.n
        await client.disconnect_async(shutdown_server=True)
        await asyncio.wait_for(client_task, 2)
        await asyncio.wait_for(backend_task, 2)
        return seen

    threads_before = threading.active_count()
    assert asyncio.run(main()) > 5
    assert threading.active_count() == threads_before


def test_game_logic_hears_when_clients_join_and_leave(backend_factory):
    from pygase import CLIENT_JOINED, CLIENT_LEFT

    def joined(game_state, client_address):
        return {"players": {f"{client_address[1]}": "here"}}

    def left(game_state, client_address):
        return {"players": {f"{client_address[1]}": "gone"}}

    backend = backend_factory(GameState(players={}), lambda game_state, dt: {})
    backend.game_state_machine.register_event_handler(CLIENT_JOINED, joined)
    backend.game_state_machine.register_event_handler(CLIENT_LEFT, left)
    watcher, visitor = Client(), Client()
    watcher.connect_in_thread(backend.server.port, "127.0.0.1")
    try:
        watcher.wait_until(lambda state: len(state.players) == 1, timeout=3)
        visitor.connect_in_thread(backend.server.port, "127.0.0.1")
        watcher.wait_until(lambda state: len(state.players) == 2, timeout=3)
        visitor.wait_until(lambda state: len(state.players) == 2, timeout=3)  # (it joined)
        visitor.disconnect()
        watcher.wait_until(lambda state: sorted(state.players.values()) == ["gone", "here"], timeout=3)
    finally:
        watcher.disconnect()


def test_blocking_methods_can_be_awaited_inside_their_own_event_loop():
    async def main() -> tuple:
        store = GameStateStore(GameState(n=0))
        machine = GameStateMachine(store)
        machine.time_step = lambda game_state, dt: {"n": game_state.n + 1}
        server = Server(store)
        game_loop = asyncio.ensure_future(machine.run_game_loop_async(0.02))
        serving = asyncio.ensure_future(server.run_async(0, "127.0.0.1", machine))
        while server.port is None:
            await asyncio.sleep(0.01)
        client = Client()
        connection = asyncio.ensure_future(client.connect_async(server.port, "127.0.0.1"))
        for _ in range(300):
            await asyncio.sleep(0.01)
            with client.access_game_state() as state:
                if getattr(state, "n", 0) > 3:
                    break
        await client.disconnect()
        stopped = await machine.stop()
        await server.shutdown()
        await asyncio.wait_for(asyncio.gather(connection, serving, game_loop), 2)
        return stopped, client.connection.status, server.port

    stopped, status, port = asyncio.run(main())
    assert stopped is True and status == DISCONNECTED and port is None


def test_client_that_falls_silent_is_dropped_and_the_game_logic_hears_it(backend_factory, monkeypatch):
    """With one client the game loop's thread sends each new state itself; a timeout it finds on the way
    still reaches the game logic, through the server's own thread."""
    from pygase import CLIENT_LEFT
    from pygase.connection import ClientConnection, ServerConnection
    from pygase.event import UniversalEventHandler

    monkeypatch.setattr(ServerConnection, "timeout", 0.5)
    left = threading.Event()
    backend = backend_factory(
        GameState(n=0),
        lambda game_state, dt: {"n": game_state.n + 1},
        rejoin_grace=0,  # (left at once)
    )
    backend.game_state_machine.register_event_handler(
        CLIENT_LEFT, lambda game_state, client_address: left.set()
    )
    server_address = ("127.0.0.1", backend.server.port)
    connection = ClientConnection(server_address, UniversalEventHandler())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)
        deadline = time.monotonic() + 3.0
        while connection.status != ConnectionStatus.get("Connected") or not backend.server.connections:
            assert time.monotonic() < deadline, "the hand-driven client did not join"
            for datagram in connection.datagrams_to_send(time.monotonic()):
                sock.sendto(datagram, server_address)
            with contextlib.suppress(TimeoutError, ValueError):
                connection.receive_datagram(sock.recv(4096), time.monotonic())
        # from now on the client says nothing
        assert left.wait(timeout=3.0)
    assert backend.server.connections == {}
    assert backend.game_state_store.get_game_state().n > 0  # the game went on


def test_waiting_for_any_condition_waits_until_the_client_joined_and_has_the_state(backend_factory):
    """`wait_until(lambda state: True)` is how people wait for "connected": it must not pass on the empty
    state a client has before the server let it in (a second client could then take the last seat)."""
    backend = backend_factory(GameState(x=1), lambda game_state, dt: {})
    client = Client()
    client.connect_in_thread(backend.server.port, "127.0.0.1")
    try:
        client.wait_until(lambda state: True, timeout=3)
        assert client.player_id is not None and client.connection.updates_received > 0
        assert client.try_to(lambda state: state.x, timeout=1) == 1
    finally:
        client.disconnect()
