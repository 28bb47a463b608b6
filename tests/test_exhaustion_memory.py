"""Resource exhaustion by a joined client (issue 11): memory it makes the server hold, log lines it makes
the server write. Driven through the protocol core and the simulator: deterministic and fast."""

from __future__ import annotations

import logging
import tracemalloc

from pygase import _codec
from pygase._event_order import PART_EVENT, PART_SIZE, HeldBudget, split_event
from pygase._packages import ClientPackage, Header, _body_start, _header_bytes
from pygase._ratelimit import RateLimitedLog
from pygase._server_connection import ServerConnection
from pygase.backend import GameStateStore
from pygase.event import Event, UniversalEventHandler
from pygase.gamestate import GameState
from pygase.testing import LinkConditions, SimulatedSession
from pygase.utils import Sqn

# ---- log lines: throttled ----------------------------------------------------------------------------


def _records(caplog, level: int = logging.DEBUG, text: str = "") -> list:
    return [r for r in caplog.records if r.levelno >= level and text in r.getMessage()]


def test_rate_limited_log_lets_a_burst_through_then_one_per_interval_and_counts_the_rest(caplog):
    log = RateLimitedLog(logging.getLogger("pygase.test"), interval=10.0, burst=2)
    with caplog.at_level(logging.INFO, logger="pygase.test"):
        passed = [log.info("kind", 0.001 * i, "line %d", i) for i in range(1000)]  # within one second
        assert passed.count(True) == 2
        assert log.info("kind", 11.0, "later")
        assert log.info("other kind", 11.0, "another kind has its own allowance")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["line 0", "line 1", "later [998 more like this were not logged]", messages[-1]]


def test_rate_limited_log_survives_a_clock_that_goes_back_and_bounds_its_keys(caplog):
    log = RateLimitedLog(logging.getLogger("pygase.test"), interval=10.0, max_keys=8)
    with caplog.at_level(logging.INFO, logger="pygase.test"):
        assert log.info("kind", 100.0, "first")
        assert not log.info("kind", 0.0, "a new simulated session starts at 0")
        assert log.info("kind", 10.0, "ten seconds after that")
        for key in range(1000):
            log.info(key, 20.0, "unique keys")
    assert len(log._keys) <= 8


def test_rate_limited_log_costs_nothing_for_a_level_that_is_off():
    log = RateLimitedLog(logging.getLogger("pygase.test.quiet"))
    logging.getLogger("pygase.test.quiet").setLevel(logging.WARNING)
    assert not log.debug("kind", 0.0, "not logged")
    assert log._keys == {}  # nothing remembered, nothing counted


def test_a_flood_of_forged_shutdowns_logs_a_few_lines(caplog):
    """53 forged shutdown events per datagram each logged a WARNING: +30 MB of log in 6 s."""
    session = SimulatedSession(GameStateStore(GameState()))
    host = session.add_client()
    attacker = session.add_client()
    session.run(0.3)
    with caplog.at_level(logging.DEBUG, logger="pygase"):
        for _ in range(200):
            for _ in range(53):
                attacker.dispatch_event(Event("pygase:shutdown", b"not the token!!!"))
            attacker.dispatch_event(Event("pygase:no such control event", 1))
            session.run(0.05)
    assert session.network.delivered > 200  # many datagrams, most of them full of forged shutdowns
    assert not session.server.shutdown_requested
    assert len(_records(caplog, text="without the host token")) <= 2
    assert len(_records(caplog, text="unknown control event")) <= 2
    assert len(_records(caplog, logging.INFO)) <= 4
    host.shutdown(shutdown_server=True)  # the real host still can
    session.run(0.3)
    assert session.server.shutdown_requested


def test_a_client_over_its_event_rate_is_logged_once_per_interval(caplog):
    session = SimulatedSession(GameStateStore(GameState()))
    session.server.max_events_per_second = 50
    flooder = session.add_client()
    session.run(0.3)
    with caplog.at_level(logging.WARNING, logger="pygase"):
        for _ in range(100):
            for i in range(20):
                flooder.dispatch_event(Event("SPAM", i))
            session.run(0.2)
    over = _records(caplog, logging.WARNING, "events per second")
    assert 1 <= len(over) <= 2  # 20 virtual seconds: the first line, and one 10 s later
    assert len(_records(caplog, logging.WARNING)) == len(over)


# ---- events held back waiting for a missing one: bounded in bytes ------------------------------------


def _nest(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {0: value}
    return value


#: An event entry's start (type, args, kwargs) whose args take some 1,700 bytes on the wire and about 110
#: times that once decoded (nests of one-entry maps: the worst ratio).
FAT = b"\x94" + _codec.pack("FAT") + _codec.pack([_nest(26)] * 31) + _codec.pack({})


def _datagram(sequence: int, event_id: int, floor: int = 1) -> bytes:
    """A client package with one fat event: built straight into bytes, which is quicker."""
    events = b"\x91" + FAT + _codec.pack(event_id)
    return _header_bytes(sequence, 0, 0) + _body_start(4, 0, events, floor) + _codec.pack(0)


def _fat(sequence: int, event_id: int, floor: int = 1) -> ClientPackage:
    """A package with one fat event, as the server decodes it (fresh objects)."""
    return ClientPackage.from_datagram(_datagram(sequence, event_id, floor))


def _package(sequence: int, entries: list, floor: int = 1, decode: bool = True) -> ClientPackage:
    """A client package with the (event, id) entries, as the server decodes it (or as it is: quicker)."""
    package = ClientPackage(Header._from_ints(sequence, 0, 0), 0)
    for event, event_id in entries:
        package._add_entry(event, event_id)
    package.event_floor = floor
    return ClientPackage.from_datagram(package.to_datagram()) if decode else package


def _connection(budget=None, name: str = "client") -> ServerConnection:
    connection = ServerConnection((name, 1), UniversalEventHandler(), GameStateStore(GameState()), Sqn(0))
    connection.accept(0.0, 1024 * 1024, budget)
    return connection


def test_events_sent_without_the_first_are_held_within_a_bound_in_bytes():
    """Event ids 2..4097 and never 1 made the server hold 4,096 decoded events: 27 -> 566 MB of RSS."""
    connection = _connection()
    inbound = connection._inbound
    limit = inbound.held_limit
    assert limit <= 8 * 1024 * 1024
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for event_id in range(2, 102):
            assert connection.receive_package(_fat(event_id - 1, event_id), 0.01) == []
            if event_id % 8 == 0:
                assert tracemalloc.get_traced_memory()[0] - start <= limit, f"after event {event_id}"
        held_memory = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert 0 < inbound.held_bytes <= limit
    assert held_memory <= inbound.held_bytes  # the estimate bounds what they really take
    admitted = len(inbound._held)
    assert 10 < admitted < 100
    assert connection.remote_sequence == admitted  # the packages refused were not acknowledged
    fat = _fat(1, 2)._entries[0][0]  # (the rest of the ids with one decoded event: quicker)
    for event_id in range(102, 4098):
        assert connection.receive_package(_package(event_id - 1, [(fat, event_id)], decode=False), 0.02) == []
    assert len(inbound._held) == admitted and connection.remote_sequence == admitted
    # The one they wait for comes: the events held go on in order, and there is room again.
    events = connection.receive_package(_package(4097, [(Event("FIRST"), 1)]), 0.03)
    assert [e.type for e in events] == ["FIRST"] + ["FAT"] * admitted
    assert inbound.held_bytes == 0
    assert connection.receive_package(_fat(4098, admitted + 3, floor=admitted + 2), 0.04) == []
    assert inbound.held_bytes > 0 and connection.remote_sequence == 4098


def test_connections_share_a_budget_for_what_they_hold_back_and_give_it_back_when_they_close():
    """Three connections made 1.2 GB: together they hold what one budget allows."""
    budget = HeldBudget(2 * 1024 * 1024)
    connections = [_connection(budget, f"client {i}") for i in range(3)]
    for sequence in range(1, 40):
        for connection in connections:
            connection.receive_package(_fat(sequence, sequence + 1), 0.01)
    assert sum(c._inbound.held_bytes for c in connections) == budget.used <= budget.limit
    assert all(c.remote_sequence < 39 for c in connections)
    # An honest client whose events come in order holds nothing back: the full budget does not touch it.
    honest = _connection(budget, "honest")
    for sequence in range(1, 50):
        events = honest.receive_package(_package(sequence, [(Event("MOVE", sequence), sequence)]), 0.02)
        assert [e.handler_args for e in events] == [[sequence]]
    for connection in connections:
        connection.close()
    assert budget.used == 0


def test_at_the_bound_only_packages_with_the_missing_event_pass_and_within_twice_the_bound():
    limit = 1024 * 1024
    connection = _connection(HeldBudget(limit))
    inbound = connection._inbound
    sequence = 0
    while connection.remote_sequence == sequence:  # events 1000, 1001 ... held until the budget is full
        sequence += 1
        connection.receive_package(_fat(sequence, 999 + sequence), 0.01)
    full = len(inbound._held)
    assert full == sequence - 1 and inbound.shared.used <= limit
    # A package with the event they wait for (1) passes, although another in it must wait as well...
    connection.receive_package(_package(sequence, [(Event("FIRST"), 1)] + _fat(0, 2000)._entries), 0.02)
    assert connection.remote_sequence == sequence and 2000 in inbound._held and inbound.shared.used > limit
    # ... one without it does not ...
    connection.receive_package(_fat(sequence + 1, 2001), 0.03)
    assert connection.remote_sequence == sequence and 2001 not in inbound._held
    # ... and those with it pass only while what is held stays under twice the budget.
    for event_id in range(2, 100):
        sequence += 1
        package = _package(sequence, [(Event("NEXT"), event_id)] + _fat(0, 2000 + event_id)._entries)
        connection.receive_package(package, 0.04)
        assert inbound.shared.used <= 2 * limit
    assert connection.remote_sequence < sequence
    # The sender gives up what it waits for: a package without events raises the floor, and all goes on.
    events = connection.receive_package(_package(sequence + 1, [], floor=5000), 0.05)
    assert [e.type for e in events][:full] == ["FAT"] * full
    assert inbound.held_bytes == inbound.shared.used == 0


def test_the_server_core_gives_its_clients_one_budget():
    session = SimulatedSession(GameStateStore(GameState()))
    for _ in range(3):
        session.add_client()
    session.run(0.3)
    budgets = {id(connection._inbound.shared) for connection in session.server.connections.values()}
    assert len(session.server.connections) == 3 and len(budgets) == 1
    assert next(iter(session.server.connections.values()))._inbound.shared is not None


def test_honest_clients_on_a_lossy_link_get_every_event_in_order_at_the_bound(caplog):
    """At the bound packages are refused unacknowledged: the sender resends, order and delivery hold."""
    session = SimulatedSession(GameStateStore(GameState()), LinkConditions(latency=0.03, loss=0.2), seed=4)
    clients = [session.add_client() for _ in range(2)]
    session.run(0.5)
    session.server._held_budget.limit = 400_000  # room for some 50 small events (a few packages)
    with caplog.at_level(logging.INFO, logger="pygase"):
        for i in range(300):
            for client in clients:
                client.dispatch_event(Event("MOVE", i, "x" * 40), retries=50)
            session.run(0.01)
        session.run(20.0)
    assert _records(caplog, logging.INFO, "refusing more")  # the bound was reached
    for client in clients:
        address = session.address_of(client)
        moves = [e.handler_args[0] for e, a in session.server_events if a == address and e.type == "MOVE"]
        assert moves == list(range(300))
    assert session.server._held_budget.used == 0


# ---- events larger than max_event_size -----------------------------------------------------------------


def _send_in_parts(connection, encoded: bytes, part_size: int, first_id: int, sequence: int) -> list:
    """Feed `encoded` to `connection` in parts of `part_size` bytes, one a package; return what comes out."""
    count = (len(encoded) + part_size - 1) // part_size
    events = []
    for index in range(count):
        part = Event(PART_EVENT, index, count, encoded[index * part_size : (index + 1) * part_size])
        events += connection.receive_package(_package(sequence + index, [(part, first_id + index)]), 0.01)
        put_together = sum(map(len, connection._inbound._parts or []))
        assert put_together <= connection._inbound.max_event_size
    return events


def test_an_event_larger_than_max_event_size_in_fewer_fatter_parts_is_refused(caplog):
    """Parts were checked by their count only: 1,026 parts of 1,950 bytes passed the 1 MiB limit."""
    connection = _connection()
    max_event_size = connection._inbound.max_event_size
    encoded = Event("BIG", bytes(2_000_000)).to_bytes()
    assert len(encoded) > max_event_size
    with caplog.at_level(logging.WARNING, logger="pygase"):
        assert _send_in_parts(connection, encoded, 1950, 1, 1) == []
    assert len(_records(caplog, logging.WARNING, "max_event_size")) == 1
    # An honest large event, up to the limit, in the sender's parts, still comes through whole.
    event = Event("LARGE", bytes(max_event_size - 100))
    encoded = event.to_bytes()
    assert len(encoded) <= max_event_size
    parts = split_event(event, encoded)
    events = _send_in_parts(connection, encoded, PART_SIZE, 1027, 1027)
    assert len(parts) > 1000 and [e.type for e in events] == ["LARGE"]
    assert events[0].handler_args == event.handler_args


# ---- unknown event types ----------------------------------------------------------------------------------


def test_unique_unknown_event_types_take_bounded_memory_and_log(caplog):
    """Each unknown type was remembered for a one-time warning: 1,000-character unique types grew the
    memory and the log without end."""
    handler = UniversalEventHandler()
    with caplog.at_level(logging.WARNING, logger="pygase"):
        for i in range(5000):
            assert handler.handle(Event(f"{i:04d}" + "x" * 996)) is None
        handler.handle(Event("mystery"))
    assert len(handler._unknown_logged) <= 100
    assert sum(map(len, handler._unknown_logged)) <= 100 * 100
    warnings = _records(caplog, logging.WARNING, "no handler")
    assert len(warnings) <= 102
    assert all(len(record.getMessage()) < 300 for record in warnings)
