"""Reading datagrams in bursts (`pygase._sockets.Drain`) on real loopback sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pygase._sockets import _BURST_GAP, _DRAIN_LIMIT, _PART_LIKE, Drain

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
