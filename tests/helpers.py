"""Plain helpers shared by several test files (`from helpers import ...`; pytest puts `tests/` on the path
because `tests/conftest.py` lives there). Fixtures that hold a resource are in conftest.py."""

from __future__ import annotations

import inspect
import socket
import time
from typing import Any, Callable, Optional

import pytest

from pygase import GameState
from pygase.backend import GameStateStore
from pygase.gamestate import GameStateUpdate


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 3.0,
    what: Optional[str] = None,
    step: Optional[Callable[[], Any]] = None,
) -> None:
    """Poll `condition` until it is true; fail the test if it is still false after `timeout` seconds.

    `what` names the condition in the failure message (the default quotes the condition's source line);
    `step` runs before each poll (e.g. `window.frame` to keep a GameWindow going while waiting).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout:g} s: {what or _describe(condition)}")
        if step is not None:
            step()
        time.sleep(0.005)


def _describe(condition: Callable[[], Any]) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)


def run_until(window, condition: Callable[[], Any], timeout: float = 3.0, what: Optional[str] = None) -> None:
    """Run a GameWindow's frames until `condition` is true (see `wait_for`)."""
    wait_for(condition, timeout, what, step=window.frame)


def free_udp_port() -> int:
    """A loopback UDP port where nothing listens (it was free a moment ago): a datagram sent there is
    refused (ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def push(store: GameStateStore, **changes) -> None:
    """Push an update with the next time order to `store`."""
    store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, **changes))


def client_state(connection) -> dict:
    """A copy of a client connection's game state as a dict."""
    with connection.game_state_context() as state:
        return dict(state.__dict__)


def server_state(store: GameStateStore) -> dict:
    """A copy of a store's game state as a dict."""
    return dict(store.get_game_state().__dict__)


def players(**by_key: Any) -> GameState:
    """A game state whose `players` collection holds the given entities (keys "p1" -> 1 and so on)."""
    return GameState(players={int(key[1:]): entity for key, entity in by_key.items()})


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind a UDP socket to ::1 (tests over IPv6 skip without it)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


#: Skips a test on a machine without an IPv6 loopback.
needs_ipv6_loopback = pytest.mark.skipif(
    not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)"
)
