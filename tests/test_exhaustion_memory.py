"""Resource exhaustion by a joined client (issue 11): memory it makes the server hold, log lines it makes
the server write. Driven through the protocol core and the simulator: deterministic and fast."""

from __future__ import annotations

import logging

from pygase._ratelimit import RateLimitedLog
from pygase.backend import GameStateStore
from pygase.event import Event
from pygase.gamestate import GameState
from pygase.testing import SimulatedSession

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
