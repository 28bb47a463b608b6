"""IPv6: servers listen dual-stack when given no address or "::", clients join IPv6 literals (issue 13).

Over real sockets on loopback (::1 and 127.0.0.1); skipped where the machine has no IPv6 loopback.
"""

from __future__ import annotations

import logging
import socket

import pytest
from helpers import needs_ipv6_loopback

from pygase import Backend, Client, GameState
from pygase.utils import _address_text, _listening_on

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def serve():
    started: list = []

    def start(hostname: str) -> Backend:
        backend = Backend(
            GameState(ticks=0, seen={}),
            lambda game_state, dt: {"ticks": game_state.ticks + 1},
            {"HELLO": lambda name, game_state, dt: {"seen": {**game_state.seen, name: True}}},
        )
        started.append((backend, backend.run_in_thread(hostname, 0)))
        return backend

    yield start
    for backend, thread in started:
        backend.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def join():
    clients: list = []

    def connect(port: int, hostname: str) -> Client:
        client = Client()
        client.connect_in_thread(port, hostname)
        clients.append(client)
        client.wait_until(lambda state: state.ticks > 2, timeout=3)
        return client

    yield connect
    for client in clients:
        client.disconnect()


@needs_ipv6_loopback
@pytest.mark.parametrize("hostname", ["::1", "[::1]"])
def test_a_server_on_an_ipv6_address_serves_a_client_that_joins_it(serve, join, hostname):
    backend = serve("::1")
    client = join(backend.server.port, hostname)
    client.dispatch_event("HELLO", name="six")
    client.wait_until(lambda state: "six" in state.seen, timeout=3)
    assert client.connection.remote_address == ("::1", backend.server.port)


@needs_ipv6_loopback
@pytest.mark.parametrize("hostname", ["", "::"])
def test_a_server_given_no_address_or_double_colon_takes_ipv4_and_ipv6_players_at_once(serve, join, hostname):
    backend = serve(hostname)
    four = join(backend.server.port, "127.0.0.1")
    six = join(backend.server.port, "::1")
    four.dispatch_event("HELLO", name="four")
    six.dispatch_event("HELLO", name="six")
    for client in (four, six):
        client.wait_until(lambda state: {"four", "six"} <= set(state.seen), timeout=3)


def test_localhost_still_means_ipv4_for_server_and_client(serve, join):
    backend = serve("localhost")
    client = join(backend.server.port, "localhost")
    assert client.connection is not None
    assert client.connection.remote_address == ("localhost", backend.server.port)


@needs_ipv6_loopback
def test_logs_write_ipv6_addresses_in_brackets_and_ipv4_mapped_ones_as_ipv4(serve, join, caplog):
    caplog.set_level(logging.INFO, logger="pygase")
    backend = serve("")
    join(backend.server.port, "::1")
    join(backend.server.port, "127.0.0.1")
    text = caplog.text
    assert "client [::1]:" in text
    assert "client 127.0.0.1:" in text and "::ffff:" not in text
    assert "all interfaces (IPv4 and IPv6)" in text


def test_address_text_is_how_people_write_addresses():
    assert _address_text(("1.2.3.4", 80)) == "1.2.3.4:80"
    assert _address_text(("2001:db8::1", 80, 0, 0)) == "[2001:db8::1]:80"
    assert _address_text(("::ffff:10.0.0.1", 80, 0, 0)) == "10.0.0.1:80"
    assert _address_text(("[::1]", 80)) == "[::1]:80"
    assert _listening_on("::1", 5).startswith("[::1]:5 (this machine only)")
    assert "IPv4)" in _listening_on("0.0.0.0", 5) and "IPv6" in _listening_on("::", 5)


@needs_ipv6_loopback
def test_a_client_gets_a_clear_error_when_nothing_listens_at_an_ipv6_address():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    client = Client()
    with pytest.raises(ConnectionRefusedError, match=rf"\[::1\]:{port}"):
        client.connect(port, "::1")
