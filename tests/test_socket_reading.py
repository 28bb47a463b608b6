"""Reading datagrams: in bursts (`pygase._sockets.Drain`, on real loopback sockets), and how long each
waited in the socket, which a round trip leaves out."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from pygase import GameState, GameStateStore, GameStateUpdate
from pygase._sockets import _BURST_GAP, _DRAIN_LIMIT, _PART_LIKE, _TIMESTAMPS, Drain
from pygase.event import Event
from pygase.testing import SimulatedSession

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    yield receiver, sender
    receiver.close()
    sender.close()


def _wait_readable(sock: socket.socket) -> None:
    """Until a datagram waits (loopback delivers a datagram as it is sent; this only makes sure)."""
    for _ in range(1000):
        try:
            sock.recv(1, socket.MSG_PEEK)
            return
        except BlockingIOError:
            continue
    raise AssertionError("nothing arrived")


def test_after_a_part_of_a_large_state_the_waiting_datagrams_are_read_in_order(pair):
    receiver, sender = pair
    for index in range(5):
        sender.send(bytes([index]) * 1000)
    _wait_readable(receiver)
    first = receiver.recv(4096)  # what asyncio handed over
    taken: list[bytes] = []
    drain = Drain(receiver, lambda data, address: taken.append(data), pytest.fail)
    drain.after(len(first), now=10.0)
    assert [data[0] for data in taken] == [1, 2, 3, 4]


def test_a_lone_small_datagram_costs_no_further_read(pair):
    receiver, sender = pair
    sender.send(b"state update")
    sender.send(b"a second one, already waiting")
    _wait_readable(receiver)
    taken: list[bytes] = []
    drain = Drain(receiver, lambda data, address: taken.append(data), pytest.fail)
    drain.after(100, now=10.0)
    assert taken == []  # left for asyncio's next read
    drain.after(100, now=10.0 + _BURST_GAP / 2)  # a second datagram so soon: a burst
    assert taken == [b"state update", b"a second one, already waiting"]


def test_reading_on_stops_at_its_limit_so_the_loop_can_serve_others(pair):
    receiver, sender = pair
    for _ in range(_DRAIN_LIMIT + 10):
        sender.send(b"x" * _PART_LIKE)
    _wait_readable(receiver)
    taken: list[bytes] = []
    Drain(receiver, lambda data, address: taken.append(data), pytest.fail).after(_PART_LIKE, now=1.0)
    assert len(taken) == _DRAIN_LIMIT


def test_a_socket_error_is_reported_like_error_received():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    nobody = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nobody.bind(("127.0.0.1", 0))
    port = nobody.getsockname()[1]
    nobody.close()
    receiver.connect(("127.0.0.1", port))
    receiver.setblocking(False)
    try:
        receiver.send(b"to nobody")  # ICMP port unreachable comes back as ECONNREFUSED on the next read
        errors: list[OSError] = []
        for _ in range(1000):
            Drain(receiver, lambda data, address: pytest.fail("no datagram"), errors.append).after(
                _PART_LIKE, now=1.0
            )
            if errors:
                break
        assert errors and isinstance(errors[0], ConnectionRefusedError)
    finally:
        receiver.close()


# ---- the time a datagram waited in the socket is no part of a round trip ---------------------------------


@pytest.mark.skipif(not _TIMESTAMPS, reason="the kernel's receive timestamps are read on Linux only")
def test_waited_says_how_long_the_datagram_read_last_sat_in_the_socket(pair):
    receiver, sender = pair
    drain = Drain(receiver, lambda data, address: None, pytest.fail)  # (switches the timestamps on)
    assert drain.waited() == 0.0  # nothing read yet
    time.sleep(0.1)  # (the kernel switches them on a moment later, for all sockets, the first time)
    sender.send(b"late")
    time.sleep(0.2)  # a busy program reads it late
    _wait_readable(receiver)
    receiver.recv(100)
    assert 0.15 < drain.waited() < 2.0
    sender.send(b"at once")
    _wait_readable(receiver)
    receiver.recv(100)
    assert drain.waited() < 0.1


def _joined_session() -> tuple:
    store = GameStateStore(GameState(x=0))
    session = SimulatedSession(store)
    client = session.add_client()
    store.push_update(GameStateUpdate(1, x=1))
    session.run(1.0)
    return store, session, client, session.address_of(client)


@pytest.mark.parametrize("read_delay", [0.0, 0.5])
def test_a_package_that_waited_in_the_servers_socket_does_not_lengthen_the_round_trip(read_delay):
    store, session, client, address = _joined_session()
    now = session.network.now
    store.push_update(GameStateUpdate(2, x=2))
    sent = [datagram for datagram, to in session.server.datagrams_to_send(now) if to == address]
    for datagram in sent:
        client.receive_datagram(datagram, now + 0.001)
    client.dispatch_event(Event("PING"))  # (so that the client answers at once, with its acks)
    answers = client.datagrams_to_send(now + 0.002)
    connection = session.server.connections[address]
    for datagram in answers:  # they reach the server's socket at once; the server reads them late
        session.server.receive_datagram(datagram, address, now + 0.002 + read_delay, lambda: read_delay)
    assert connection._recovery._recent[-1][1] == pytest.approx(0.001, abs=0.002)


def test_a_package_that_waited_in_the_clients_socket_counts_toward_its_ack_delay():
    store, session, client, address = _joined_session()
    now = session.network.now
    store.push_update(GameStateUpdate(2, x=2))
    for datagram, to in session.server.datagrams_to_send(now):
        if to == address:
            client.receive_datagram(datagram, now + 0.3, waited=lambda: 0.3)  # it arrived at `now`
    assert client._ack_delay(now + 0.3) == pytest.approx(3000, abs=10)  # in 0.1 ms
