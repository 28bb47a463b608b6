"""Large states in parts (`pygase._transfer`): fast over a bad link, no flooding of a slow receiver."""

from __future__ import annotations

import collections

import pytest
from helpers import client_state, push

from pygase import GameState
from pygase._reliability import WINDOW, ReceiveWindow, Reliability
from pygase._transfer import INITIAL_WINDOW, PartsReceived, PartsSender
from pygase.backend import GameStateStore
from pygase.errors import DuplicateSequenceError
from pygase.testing import LinkConditions, SimulatedSession
from pygase.utils import Sqn

#: The bad link of `benchmarks/bad_network.py`: 20 % loss, 100 +- 20 ms each way.
BAD_LINK = LinkConditions(latency=0.1, jitter=0.02, loss=0.2)
TILES = 4500  # 4500 tiles of 200 bytes: over 1 MB encoded


def megabyte_session(link: LinkConditions, seed: int = 0) -> tuple:
    world = {i: {"name": f"tile{i}", "data": bytes(200)} for i in range(TILES)}
    store = GameStateStore(GameState(world=world, clock=0.0))
    assert len(store.get_game_state().to_bytes()) > 1_000_000
    session = SimulatedSession(store, link, seed=seed)
    return store, session, session.add_client()


def has_world(client) -> bool:
    return len(getattr(client.game_state_context.ressource, "world", None) or {}) == TILES


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(3))
def test_a_megabyte_state_reaches_a_new_client_in_seconds_over_twenty_percent_loss(seed):
    store, session, client = megabyte_session(BAD_LINK, seed)
    tick = lambda now: push(store, clock=now)  # noqa: E731 (the game changes its state at 50 Hz)
    while not has_world(client):
        # (with the fixed window of 24 packages it took 14 to 16 virtual seconds)
        assert session.network.now < 5.0, "the state did not arrive within 5 virtual seconds"
        session.run(0.02, tick)
    session.run(1.0, tick)
    session.run(1.0)  # the game pauses: the last updates arrive
    assert client_state(client) == dict(store.get_game_state().__dict__)


@pytest.mark.timeout(60)
def test_on_a_clean_link_every_part_goes_once():
    store, session, client = megabyte_session(LinkConditions(latency=0.002))
    session.run_until(lambda: session.server.connections, step=0.001)
    connection = next(iter(session.server.connections.values()))
    session.run_until(lambda: connection._transfer is not None, step=0.001)
    sender = connection._transfer.sender
    session.run_until(lambda: has_world(client), limit=2.0, step=0.005)
    assert sender._sends == sender.count and sender._losses == 0


def run_slow_receiver(count: int, rate: float, buffer: int, delay: float) -> dict:
    """Send `count` parts with a `PartsSender` to a receiver that takes `rate` parts a second from a socket
    buffer of `buffer` parts (what does not fit is dropped), `delay` seconds each way, and reports what it
    holds 4 ms after a part (at once after 16), as a client does; return what happened."""
    sender = PartsSender(count, 0.0)
    received = PartsReceived(1, count)
    step = 0.0001
    timeout = 0.05 + 4 * delay  # (a connection's retransmission timeout: round trips and their spread)
    now, sequence = 0.0, 0
    to_receiver: collections.deque = collections.deque()  # (arrival time, index)
    to_sender: collections.deque = collections.deque()  # (arrival time, first missing, bitmap)
    queue: collections.deque = collections.deque()  # the receiver's socket buffer
    taken_at, report_at, unreported = 0.0, None, 0
    stats = {"dropped": 0, "most_in_flight": 0, "most_queued": 0}
    while received.first_missing < count and now < 60.0:
        now += step
        while to_sender and to_sender[0][0] <= now:
            _, first, bitmap = to_sender.popleft()
            sender.report(first, bitmap, now)
        deadline = sender.deadline(timeout)
        if deadline is not None and deadline <= now:
            sender.detect_losses(now, timeout)
        ready = sender.ready_at()
        while ready is not None and ready <= now:
            index = sender.next_part()
            sequence += 1
            sender.sent(index, sequence, now)
            to_receiver.append((now + delay, index))
            ready = sender.ready_at()
        stats["most_in_flight"] = max(stats["most_in_flight"], sender.in_flight)
        while to_receiver and to_receiver[0][0] <= now:
            _, index = to_receiver.popleft()
            if len(queue) >= buffer:
                stats["dropped"] += 1
            else:
                queue.append(index)
        stats["most_queued"] = max(stats["most_queued"], len(queue))
        while queue and now >= taken_at + 1 / rate:
            taken_at = now
            received.add(queue.popleft(), b"")
            unreported += 1
            if report_at is None:
                report_at = now + 0.004
            if unreported >= 16:
                report_at = now
        if report_at is not None and now >= report_at:
            report = received.report([]).handler_args
            to_sender.append((now + delay, report[1], report[2]))
            report_at, unreported = None, 0
    stats["seconds"] = now
    stats["complete"] = received.first_missing == count
    return stats


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "rate, buffer, delay",
    [
        (5000, 90, 0.0002),  # loopback: room for 90 datagrams (Linux's default 208 KB buffer)
        (2000, 450, 0.05),  # 100 ms away, with the 1 MB a client's socket asks for (CLIENT_RECEIVE_BUFFER)
    ],
)
def test_the_window_does_not_flood_a_slow_receiver_on_a_clean_link(rate, buffer, delay):
    stats = run_slow_receiver(count=1000, rate=rate, buffer=buffer, delay=delay)
    assert stats["complete"]
    assert stats["dropped"] == 0 and stats["most_queued"] < buffer
    assert stats["seconds"] < 1.25 * (1000 / rate + 4 * delay)  # and it keeps the receiver busy


def test_the_window_grows_with_what_arrives_on_a_long_fast_link():
    stats = run_slow_receiver(count=2000, rate=20_000, buffer=10_000, delay=0.05)
    assert stats["complete"] and stats["dropped"] == 0
    assert stats["most_in_flight"] > 8 * INITIAL_WINDOW
    assert stats["seconds"] < 1.0  # a fixed window of 24 takes 2000 / 24 round trips: over 4 s


@pytest.mark.timeout(60)
def test_parts_reach_a_client_that_does_not_report_them():
    """A client without reports (an older one) still gets a large state, by the acks in the header."""
    store = GameStateStore(GameState(blob=bytes(200_000)))
    session = SimulatedSession(store, LinkConditions(latency=0.02, jitter=0.005, loss=0.1), seed=3)
    client = session.add_client()
    client._reports = lambda: []  # type: ignore[method-assign]
    session.run_until(lambda: "blob" in client_state(client), limit=20.0, step=0.02)
    assert client_state(client)["blob"] == bytes(200_000)


def test_a_package_reordered_past_the_ack_field_is_taken_once_and_acknowledged_apart():
    received = ReceiveWindow()
    for sequence in range(1, 101):
        if sequence != 40:
            received.register(Sqn(sequence), 0.0)
            received.sent()  # (an ack field went out after each)
    received.register(Sqn(40), 0.1)  # 60 behind the newest: the ack field does not reach it
    assert received.late == [40]
    with pytest.raises(DuplicateSequenceError):
        received.register(Sqn(40), 0.2)
    outputs: list = []
    reliability = Reliability(("peer", 1), outputs)
    for sequence in range(1, 101):
        reliability.book(sequence, 0.0, [])
    reliability.acknowledge(Sqn(100), (1 << WINDOW) - 1)  # 68 to 100: those before count as lost
    lost = reliability.lost
    reliability.acknowledge_late([40])
    assert reliability.lost == lost - 1 and 40 not in reliability.sent
