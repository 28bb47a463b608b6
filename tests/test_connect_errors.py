"""Connecting to nothing, or with the arguments the wrong way round, fails loudly (issue 12, bug 5).

Over real UDP sockets on loopback: a port that is known to be closed (bound, then closed again) refuses
with an ICMP port-unreachable; a bound socket that never reads is a server that does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from helpers import wait_for

from pygase import Backend, Client, GameState, GameStateStore, GameStateUpdate, Server
from pygase.connection import ClientConnection, ConnectionStatus

pytestmark = pytest.mark.timeout(30)

DISCONNECTED = ConnectionStatus.get("Disconnected")
HOST = "127.0.0.1"


@pytest.fixture
def silent_port(silent_port, monkeypatch):
    """conftest.py's silent port (on loopback, HOST); connections time out after 0.5 s instead of 5."""
    monkeypatch.setattr(ClientConnection, "timeout", 0.5)
    return silent_port


@pytest.fixture
def backend(backend_factory):
    return backend_factory(GameState(x=1), lambda game_state, dt: {})


# ---- a refused or unanswered connect raises, naming host and port --------------------------------------


def test_connect_to_a_closed_port_raises_connection_refused_naming_host_and_port(closed_port):
    client = Client()
    started = time.monotonic()
    with pytest.raises(
        ConnectionRefusedError, match=f"cannot connect to {HOST}:{closed_port}: nothing listens"
    ):
        client.connect(closed_port, HOST)
    assert time.monotonic() - started < 3  # refused, not timed out (5 s)
    assert client.connection.status == DISCONNECTED
    assert client.refused_reason is None  # not a refusal by a server
    client.disconnect()  # nothing to do, and no error


def test_connect_that_nobody_answers_raises_timeout_error_naming_host_and_port(silent_port):
    client = Client()
    with pytest.raises(TimeoutError, match=f"cannot connect to {HOST}:{silent_port}: no answer within 0.5 s"):
        client.connect(silent_port, HOST)
    client.disconnect()


def test_connect_async_to_a_closed_port_raises_connection_refused(closed_port):
    async def main() -> None:
        client = Client()
        with pytest.raises(ConnectionRefusedError, match=f"{HOST}:{closed_port}"):
            await asyncio.wait_for(client.connect_async(closed_port, HOST), timeout=5)
        await client.disconnect_async()
        assert client.disconnect() is None

    asyncio.run(main())


def test_hostname_that_does_not_resolve_raises_connection_error():
    client = Client()
    with pytest.raises(ConnectionError, match="cannot connect to no-such-host.invalid:8080"):
        client.connect(8080, "no-such-host.invalid")


def test_refusal_by_the_server_and_by_the_network_have_distinct_messages(closed_port):
    backend = Backend(GameState(), lambda game_state, dt: {}, password="open sesame")
    thread = backend.run_in_thread(HOST, 0)
    port = backend.server.port
    try:
        with pytest.raises(ConnectionRefusedError) as by_server:
            Client().connect(port, HOST, password="wrong")
    finally:
        backend.shutdown()
        thread.join(timeout=5)
    with pytest.raises(ConnectionRefusedError) as by_network:
        Client().connect(closed_port, HOST)
    assert str(by_server.value) == f"the server at {HOST}:{port} refused the connection: wrong password"
    assert str(by_network.value) == (
        f"cannot connect to {HOST}:{closed_port}: nothing listens on that port (connection refused); "
        "is the server running, and is this its port?"
    )


# ---- a refusal after the server answered is transient: the client keeps trying -------------------------


def test_refusals_while_the_server_restarts_do_not_end_a_joined_client():
    store = GameStateStore(GameState(x=0))
    server = Server(store)
    thread = server.run_in_thread(0, HOST)
    port = server.port
    client = Client()
    client.connect_in_thread(port, HOST)
    try:
        client.wait_until(lambda state: state.x == 0, timeout=3)
        server.shutdown()
        thread.join(timeout=5)
        # deliberately longer than refused_patience: the client's handshakes are refused several times
        # meanwhile, and it must not give up
        time.sleep(ClientConnection.refused_patience + 0.5)
        assert client.connection.status != DISCONNECTED
        assert client.connect_error is None
        store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, x=5))
        thread = server.run_in_thread(port, HOST)
        client.wait_until(lambda state: state.x == 5, timeout=3)
    finally:
        client.disconnect()
        server.shutdown()
        thread.join(timeout=5)


def test_client_started_just_before_its_server_joins_it(closed_port):
    client = Client()
    client.connect_in_thread(closed_port, HOST)
    server = Server(GameStateStore(GameState(x=7)))
    thread = None
    try:
        wait_for(  # a refusal first (well within refused_patience, after which the client would give up)
            lambda: isinstance(client.connection._socket_error, ConnectionRefusedError),
            timeout=ClientConnection.refused_patience / 3,
        )
        thread = server.run_in_thread(closed_port, HOST)
        client.wait_until(lambda state: state.x == 7, timeout=3)
    finally:
        client.disconnect()
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)


# ---- connect_in_thread: logged at ERROR, and wait_until / try_to raise the reason ------------------------


def test_failed_connect_in_thread_is_logged_and_wait_until_and_try_to_raise_at_once(closed_port, caplog):
    client = Client()
    with caplog.at_level(logging.ERROR, logger="pygase"):
        thread = client.connect_in_thread(closed_port, HOST)
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError, match=f"{HOST}:{closed_port}: nothing listens"):
            client.wait_until(lambda state: state.x == 1, timeout=3)
        assert time.monotonic() - started < 2.5  # not "not met within 3 s"
        with pytest.raises(ConnectionRefusedError, match=f"{HOST}:{closed_port}"):
            client.try_to(lambda state: state.x, timeout=3)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"{HOST}:{closed_port}" in errors[0].getMessage()
    assert isinstance(client.connect_error, ConnectionRefusedError)
    started = time.monotonic()
    client.disconnect()
    client.disconnect(shutdown_server=True)
    assert time.monotonic() - started < 0.5
    with caplog.at_level(logging.WARNING, logger="pygase"):
        client.dispatch_event("ANYTHING")  # dropped with a warning that says why, as when disconnected
    assert f"{HOST}:{closed_port}: nothing listens" in caplog.records[-1].getMessage()
    assert "'ANYTHING' not sent" in caplog.records[-1].getMessage()
    thread.join(timeout=3)
    assert not thread.is_alive()


def test_unanswered_connect_in_thread_makes_wait_until_raise_a_connection_error(silent_port, caplog):
    client = Client()
    with caplog.at_level(logging.ERROR, logger="pygase"):
        client.connect_in_thread(silent_port, HOST)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"{HOST}:{silent_port}: no answer within 0.5 s"):
            client.wait_until(lambda state: state.x == 1, timeout=3)
        assert time.monotonic() - started < 2.5
    assert any(r.levelno == logging.ERROR and "no answer" in r.getMessage() for r in caplog.records)
    client.disconnect()


def test_wrong_password_in_thread_makes_wait_until_raise_the_servers_reason():
    backend = Backend(GameState(x=1), lambda game_state, dt: {}, password="open sesame")
    thread = backend.run_in_thread(HOST, 0)
    client = Client()
    try:
        client.connect_in_thread(backend.server.port, HOST, "wrong")
        with pytest.raises(ConnectionRefusedError, match="refused the connection: wrong password"):
            client.wait_until(lambda state: state.x == 1, timeout=3)
        assert client.refused_reason == "wrong password"
    finally:
        client.disconnect()
        backend.shutdown()
        thread.join(timeout=5)


def test_wait_until_that_times_out_while_connecting_says_so(silent_port, monkeypatch):
    monkeypatch.setattr(ClientConnection, "timeout", 5.0)
    client = Client()
    client.connect_in_thread(silent_port, HOST)
    try:
        with pytest.raises(TimeoutError, match=f"still connecting to {HOST}:{silent_port}"):
            client.wait_until(lambda state: state.x == 1, timeout=0.3)
    finally:
        client.disconnect()


def test_a_client_whose_connect_failed_can_connect_again(closed_port, backend):
    client = Client()
    with pytest.raises(ConnectionRefusedError):
        client.connect(closed_port, HOST)
    client.connect_in_thread(backend.server.port, HOST)
    try:
        client.wait_until(lambda state: state.x == 1, timeout=3)
        assert client.connect_error is None
    finally:
        client.disconnect()


# ---- arguments: TypeError at once, with a hint at the order; keywords work -------------------------------


def _call(method: str, *args, **kwargs) -> None:
    client = Client()
    if method == "connect_async":
        asyncio.run(asyncio.wait_for(client.connect_async(*args, **kwargs), timeout=5))
    else:
        getattr(client, method)(*args, **kwargs)


@pytest.mark.parametrize("method", ["connect", "connect_in_thread", "connect_async"])
def test_swapped_port_and_hostname_are_a_type_error_at_once_that_shows_the_order(method):
    started = time.monotonic()
    threads = threading.active_count()
    with pytest.raises(TypeError, match=rf"takes the port first.*{method}\(8081, 'localhost'\)"):
        _call(method, "localhost", 8081)
    with pytest.raises(TypeError, match=rf"takes the port first.*{method}\(8081, 'localhost'\)"):
        _call(method, hostname=8081, port="localhost")
    assert time.monotonic() - started < 0.5
    assert threading.active_count() == threads  # no network thread was started


@pytest.mark.parametrize("method", ["connect", "connect_in_thread", "connect_async"])
@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("8080", "localhost"), TypeError, r"port must be an int, not str \('8080'\); the arguments are"),
        ((8080.0, "localhost"), TypeError, "port must be an int, not float"),
        ((True, "localhost"), TypeError, "port must be an int, not bool"),
        ((8080, ("localhost",)), TypeError, "hostname must be a str, not tuple"),
        ((8080, None), TypeError, "hostname must be a str, not NoneType"),
        ((8080, "localhost", b"secret"), TypeError, "password must be a str or None"),
        ((0, "localhost"), ValueError, "port must be 1-65535, got 0"),
        ((70000, "localhost"), ValueError, "port must be 1-65535, got 70000"),
    ],
)
def test_arguments_that_cannot_be_an_address_are_refused_at_once(method, args, error, message):
    with pytest.raises(error, match=message):
        _call(method, *args)


def test_keywords_work_in_every_connect_method(backend, closed_port):
    port = backend.server.port
    client = Client()
    client.connect_in_thread(hostname=HOST, port=port)
    try:
        client.wait_until(lambda state: state.x == 1, timeout=3)
    finally:
        client.disconnect()
    with pytest.raises(ConnectionRefusedError, match=f"{HOST}:{closed_port}"):
        Client().connect(hostname=HOST, port=closed_port)

    async def main() -> None:
        client = Client()
        task = asyncio.ensure_future(client.connect_async(hostname=HOST, port=port))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            with client.access_game_state() as state:
                if getattr(state, "x", None) == 1:
                    break
        await client.disconnect_async()
        await asyncio.wait_for(task, timeout=5)
        with client.access_game_state() as state:
            assert state.x == 1

    asyncio.run(main())
