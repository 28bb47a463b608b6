"""Test PyGaSe protocol code deterministically, without sockets, threads or a real clock.

- `LinkConditions`: latency, jitter, loss and duplication of a simulated link (validated).
- `SimulatedNetwork`: an in-memory network with a virtual clock that delivers datagrams between
  addresses under those conditions, seeded so every run is the same.
- `SimulatedSession`: one `ServerCore` and any number of `ClientConnection`s on a `SimulatedNetwork`,
  driven exactly as the asyncio layer drives them: `session.run(seconds)` advances the clock.

The same conditions work on real sockets: `Client(simulate=LinkConditions(latency=0.075, loss=0.1))`,
`Server(store, simulate=...)`, or the environment variable `PYGASE_SIMULATE="loss=10%,latency=75ms"`
for every client of a process. The simulated link then delays, drops and duplicates the datagrams that
side sends and receives, so switch it on for one side only.

Link conditions as text (`PYGASE_SIMULATE`, `LinkConditions.from_string`, the demos' `--simulate`) are
name=value items separated by commas, any subset in any order:

    loss=10%,latency=75ms,jitter=10ms,duplication=1%

- `latency` and `jitter` are times with a unit, `ms` or `s` (`75ms`, `0.075s`). Latency is one way:
  the round trip is twice that, so `latency=75ms` feels like a 150 ms ping.
- `loss` and `duplication` are probabilities, as a percentage or a fraction (`10%` or `0.1`).
- A number without a unit is read as seconds or as a fraction, and only below 1 (so the older
  `latency=0.075,loss=0.1` still works); `latency=150` or `loss=10` are refused with a request for a
  unit rather than read as 150 seconds or a probability of 10.

In Python, `LinkConditions(...)` takes plain numbers: seconds and fractions (at most 10 s of latency).

Example:
    session = SimulatedSession(GameStateStore(GameState(hp=100)), LinkConditions(latency=0.05, loss=0.1))
    client = session.add_client()
    session.run(1.0)
    assert client.game_state_context.ressource.hp == 100
"""

from __future__ import annotations

import heapq
import math
import numbers
import os
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from pygase._packages import DuplicateSequenceError
from pygase._server_core import ServerCore
from pygase.connection import ClientConnection, ConnectionStatus
from pygase.event import Event, UniversalEventHandler

__all__ = ["LinkConditions", "SimulatedNetwork", "SimulatedSession"]

_DISCONNECTED = ConnectionStatus.get("Disconnected")

#: Environment variable that switches the network simulator on for every `Client` of a process,
#: e.g. `PYGASE_SIMULATE="loss=10%,latency=75ms"` (latency is one way: the round trip gets twice that).
SIMULATE_VARIABLE = "PYGASE_SIMULATE"

#: The syntax of link conditions as text, for error and help messages.
LINK_SYNTAX = (
    'name=value items separated by commas, e.g. "loss=10%,latency=75ms,jitter=10ms,duplication=1%": '
    "latency and jitter take ms or s (latency is one way; the round trip is twice that), "
    "loss and duplication take % or a fraction"
)

#: The most latency `LinkConditions` accepts, in seconds: more is surely a value in milliseconds.
MAX_LATENCY = 10.0

_TIMES = ("latency", "jitter")
_PROBABILITIES = ("loss", "duplication")
_VALUE = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)(ms|s|%)?", re.IGNORECASE)


@dataclass(frozen=True)
class LinkConditions:
    """How a simulated link treats each datagram.

    Attributes:
        latency: one-way delay in seconds
        jitter: each datagram's delay varies uniformly by up to this many seconds either way, which also
            reorders datagrams
        loss: probability that a datagram is dropped (0 to 1)
        duplication: probability that a datagram arrives twice (0 to 1)
    """

    latency: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    duplication: float = 0.0

    def __post_init__(self) -> None:
        for name in _TIMES + _PROBABILITIES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                unit = "seconds" if name in _TIMES else "a fraction between 0 and 1"
                raise ValueError(
                    f"{name} must be a number ({unit}), got {value!r}; "
                    f'LinkConditions.from_string reads text such as "loss=10%,latency=75ms"'
                )
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in _TIMES:
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")
            if value > MAX_LATENCY:
                raise ValueError(
                    f"{name}={value!r} is over {MAX_LATENCY:g} seconds: LinkConditions takes seconds, "
                    f"so 75 ms is {name}=0.075"
                )
        if self.jitter > self.latency:
            raise ValueError("jitter must not exceed latency (a datagram cannot arrive before it is sent)")
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"{name}={value!r} is not a probability between 0 and 1 (10 % is {name}=0.1)"
                )

    def __str__(self) -> str:
        """The conditions in the syntax `from_string` reads, e.g. "latency=75ms,loss=10%"."""
        items = [f"{name}={getattr(self, name) * 1000:g}ms" for name in _TIMES if getattr(self, name)]
        items += [f"{name}={getattr(self, name) * 100:g}%" for name in _PROBABILITIES if getattr(self, name)]
        return ",".join(items) or "latency=0ms"

    def delays(self, rng: random.Random) -> list:
        """Draw what happens to one datagram: the delay of each copy that arrives (none if it is lost)."""
        if rng.random() < self.loss:
            return []
        copies = 2 if rng.random() < self.duplication else 1
        return [self.latency + rng.uniform(-self.jitter, self.jitter) for _ in range(copies)]

    @classmethod
    def from_string(cls, text: str) -> LinkConditions:
        """Parse link conditions such as `"loss=10%,latency=75ms,jitter=10ms,duplication=1%"`.

        Any subset of the four names, in any order (see the module docstring). `latency` and `jitter`
        take `ms` or `s`; latency is one way, the round trip is twice that. `loss` and `duplication`
        take `%` or a fraction. A number without a unit is read as seconds or a fraction, and only
        accepted below 1: `latency=150` is refused rather than read as 150 seconds.

        Raises:
            ValueError: for anything else, with a message that shows the accepted syntax
        """
        values: dict[str, float] = {}
        for item in str(text).replace(" ", "").split(","):
            if not item:
                continue
            name, equals, value = item.partition("=")
            name = name.lower()
            if not equals or name not in _TIMES + _PROBABILITIES:
                raise ValueError(
                    f"{item!r} is not one of latency=, jitter=, loss=, duplication=. Expected {LINK_SYNTAX}"
                )
            if name in values:
                raise ValueError(f"{name} is given twice in {text!r}. Expected {LINK_SYNTAX}")
            values[name] = _parse_value(name, value)
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{error}. Expected {LINK_SYNTAX}") from None

    @classmethod
    def from_environment(cls) -> Optional[LinkConditions]:
        """Read `PYGASE_SIMULATE` (see `from_string`); None if it is not set or empty.

        Raises:
            ValueError: naming the variable and the accepted syntax, if it cannot be read
        """
        text = os.environ.get(SIMULATE_VARIABLE, "").strip()
        if not text:
            return None
        try:
            return cls.from_string(text)
        except ValueError as error:
            raise ValueError(f"environment variable {SIMULATE_VARIABLE}={text!r}: {error}") from None


def _parse_value(name: str, text: str) -> float:
    """One value of `LinkConditions.from_string`: in seconds for times, as a fraction for probabilities."""
    item = f"{name}={text}"
    match = _VALUE.fullmatch(text)
    if match is None:
        wanted = "a time such as 75ms or 0.075s" if name in _TIMES else "a probability such as 10% or 0.1"
        raise ValueError(f"{item!r}: {name} takes {wanted}. Expected {LINK_SYNTAX}")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    if name in _TIMES:
        if unit == "%":
            raise ValueError(f"{item!r}: {name} is a time, in ms or s. Expected {LINK_SYNTAX}")
        if not unit and abs(number) >= 1:
            hint = f"{name}={match.group(1)}ms"
            if abs(number) <= MAX_LATENCY:
                hint += f" or {name}={match.group(1)}s"
            raise ValueError(
                f"{item!r} has no unit: write {hint} (a bare number is read as seconds only below 1). "
                f"Expected {LINK_SYNTAX}"
            )
        seconds = number / 1000 if unit == "ms" else number
        if seconds > MAX_LATENCY:
            raise ValueError(
                f"{item!r} is over {MAX_LATENCY:g} s, more than a simulated link delays. "
                f"Expected {LINK_SYNTAX}"
            )
        return seconds
    if unit in ("ms", "s"):
        raise ValueError(f"{item!r}: {name} is a probability, in % or as a fraction. Expected {LINK_SYNTAX}")
    if unit == "%":
        return number / 100
    if abs(number) >= 1:
        hint = f"{name}=1% or {name}=100%" if number == 1 else f"{name}={match.group(1)}%"
        raise ValueError(
            f"{item!r} has no unit: write {hint} (a bare number is a fraction, accepted below 1). "
            f"Expected {LINK_SYNTAX}"
        )
    return number


class SimulatedNetwork:
    """An in-memory datagram network with a virtual clock.

    Arguments:
        conditions: how the links treat datagrams (the same in both directions)
        seed: seed of the random choices, so a run can be repeated exactly

    Attributes:
        now (float): the virtual time in seconds
        sent (int): datagrams handed to the network
        delivered (int): datagrams delivered (duplicates count twice)
    """

    def __init__(self, conditions: Optional[LinkConditions] = None, seed: int = 0) -> None:
        self.conditions = conditions or LinkConditions()
        self.now = 0.0
        self.sent = 0
        self.delivered = 0
        self._random = random.Random(seed)
        self._queue: list[tuple[float, int, Any, Any, bytes]] = []
        self._counter = 0
        #: optional hook deciding per datagram: return False to drop it (source, destination, data)
        self.route: Optional[Callable[[Any, Any, bytes], bool]] = None

    def send(self, datagram: bytes, source: Any, destination: Any) -> None:
        """Hand a datagram to the network."""
        self.sent += 1
        if self.route is not None and not self.route(source, destination, datagram):
            return
        for delay in self.conditions.delays(self._random):
            self._counter += 1
            heapq.heappush(self._queue, (self.now + delay, self._counter, source, destination, datagram))

    def next_delivery(self) -> Optional[float]:
        """Return the time of the next delivery, or None."""
        return self._queue[0][0] if self._queue else None

    def pop_due(self) -> list:
        """Remove and return the (source, destination, datagram) deliveries due at `now`."""
        due = []
        while self._queue and self._queue[0][0] <= self.now:
            _, _, source, destination, datagram = heapq.heappop(self._queue)
            due.append((source, destination, datagram))
        self.delivered += len(due)
        return due


class SimulatedSession:
    """A server core and client connections talking over a `SimulatedNetwork`.

    Arguments:
        game_state_store: the server's `pygase.GameStateStore`
        conditions: link conditions between the server and every client
        seed: seed for the network's random choices

    Attributes:
        network (SimulatedNetwork): the network, with its virtual clock `network.now`
        server (ServerCore): the server side protocol core
        server_events (list): (event, client address) of every user event the server received
        client_events (dict): for each client address, the list of user events it received
    """

    SERVER_ADDRESS = ("server", 1)

    def __init__(
        self,
        game_state_store: Any,
        conditions: Optional[LinkConditions] = None,
        seed: int = 0,
        server_handler: Optional[UniversalEventHandler] = None,
    ) -> None:
        self.network = SimulatedNetwork(conditions, seed)
        self.server = ServerCore(game_state_store, server_handler or UniversalEventHandler())
        self.clients: dict[tuple, ClientConnection] = {}
        self.server_events: list[tuple[Event, tuple]] = []
        #: (CLIENT_JOINED or CLIENT_LEFT event, client address) in the order they happened
        self.server_notifications: list[tuple[Event, tuple]] = []
        self.client_events: dict[tuple, list[Event]] = {}
        self._state_changed = False
        game_state_store._add_listener(self._on_state_update)

    def _on_state_update(self) -> None:
        self._state_changed = True

    def add_client(self, name: Optional[str] = None) -> ClientConnection:
        """Create a client connection to the server; it starts talking on the next `run`."""
        address = ("client", len(self.clients) + 1) if name is None else (name, len(self.clients) + 1)
        connection = ClientConnection(self.SERVER_ADDRESS, UniversalEventHandler())
        self.clients[address] = connection
        self.client_events[address] = []
        return connection

    def address_of(self, connection: ClientConnection) -> tuple:
        """Return the simulated address of a client connection."""
        for address, candidate in self.clients.items():
            if candidate is connection:
                return address
        raise KeyError("not a client of this session")

    def _run_calls(self, calls: list) -> None:
        for function, args in calls:
            function(*args)

    def _flush_client(self, address: tuple, connection: ClientConnection) -> None:
        for datagram in connection.datagrams_to_send(self.network.now):
            self.network.send(datagram, address, self.SERVER_ADDRESS)
        self._run_calls(connection.take_calls())

    def _sweep_server(self) -> None:
        for datagram, address in self.server.datagrams_to_send(self.network.now):
            self.network.send(datagram, self.SERVER_ADDRESS, address)
        self._run_calls(self.server.take_calls())
        self._collect_notifications()

    def _collect_notifications(self) -> None:
        self.server_notifications.extend(self.server.notifications)
        self.server.notifications.clear()

    def _deliver(self, source: tuple, destination: tuple, datagram: bytes) -> None:
        now = self.network.now
        if destination == self.SERVER_ADDRESS:
            try:
                events = self.server.receive_datagram(datagram, source, now)
            except (ValueError, DuplicateSequenceError):
                return
            self.server_events.extend((event, source) for event in events)
            for outgoing in self.server.datagrams_for(source, now):
                self.network.send(outgoing, self.SERVER_ADDRESS, source)
            self._run_calls(self.server.take_calls(source))
            self._collect_notifications()
            return
        connection = self.clients.get(destination)
        if connection is None or connection.status == _DISCONNECTED:
            return
        try:
            events = connection.receive_datagram(datagram, now)
        except (ValueError, DuplicateSequenceError):
            return
        self.client_events[destination].extend(events)
        self._flush_client(destination, connection)

    def _next_timer(self) -> Optional[float]:
        timers = [self.network.next_delivery(), self.server.get_timer()]
        timers.extend(c.get_timer() for c in self.clients.values())
        pending = [t for t in timers if t is not None]
        return min(pending) if pending else None

    def step(self, until: float) -> None:
        """Process everything that happens up to the virtual time `until` (or the next event before it)."""
        network = self.network
        if self._state_changed:
            self._state_changed = False
            self._sweep_server()
        next_time = self._next_timer()
        network.now = until if next_time is None else max(network.now, min(next_time, until))
        for source, destination, datagram in network.pop_due():
            self._deliver(source, destination, datagram)
        for address, connection in self.clients.items():
            if connection.status == _DISCONNECTED:
                continue
            timer = connection.get_timer()
            if timer is not None and timer <= network.now:
                connection.handle_timer(network.now)
            self._flush_client(address, connection)
        timer = self.server.get_timer()
        if timer is not None and timer <= network.now:
            self._sweep_server()

    def run(
        self, seconds: float, on_tick: Optional[Callable[[float], None]] = None, tick: float = 0.02
    ) -> None:
        """Advance the virtual clock by `seconds`, calling `on_tick(now)` every `tick` seconds if given.

        `on_tick` plays the game loop: it may push state updates to the store.
        """
        end = self.network.now + seconds
        next_tick = self.network.now
        stalled = 0
        while self.network.now < end:
            if on_tick is not None and self.network.now >= next_tick:
                on_tick(self.network.now)
                next_tick += tick
            target = min(end, next_tick) if on_tick is not None else end
            before = self.network.now
            self.step(target)
            stalled = stalled + 1 if self.network.now == before else 0
            if stalled > 10000:
                raise RuntimeError(f"the protocol cores make no progress at t={before}: a timer never clears")
