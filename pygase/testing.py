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
import random
from typing import Any, Callable, Optional

# The link simulator lives in pygase._link, which pygase.client and the asyncio layer import without this
# module; its names stay available here.
from pygase._link import LINK_SYNTAX as LINK_SYNTAX
from pygase._link import MAX_LATENCY as MAX_LATENCY
from pygase._link import SIMULATE_VARIABLE as SIMULATE_VARIABLE
from pygase._link import LinkConditions as LinkConditions
from pygase._link import LinkSimulator as LinkSimulator
from pygase._outputs import OutputSink, deliver
from pygase._packages import DuplicateSequenceError
from pygase._server_core import ServerCore
from pygase.connection import ClientConnection, ConnectionStatus, ServerConnection
from pygase.event import (
    CLIENT_DROPPED,
    CLIENT_JOINED,
    CLIENT_LEFT,
    CLIENT_RETURNED,
    Event,
    UniversalEventHandler,
)

__all__ = ["LinkConditions", "SimulatedNetwork", "SimulatedSession"]

_DISCONNECTED = ConnectionStatus.get("Disconnected")


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


class _ClientRecorder(OutputSink):
    """A simulated client's outputs: events recorded, callbacks run at once."""

    def __init__(self, events: list) -> None:
        self._events = events

    def event_received(self, event: Event, address: Optional[tuple], player_id: Optional[int]) -> None:
        self._events.append(event)

    def callback_due(self, function: Callable[..., Any], args: tuple) -> None:
        function(*args)


class _ServerRecorder(OutputSink):
    """The simulated server's outputs, recorded in the session (callbacks run at once)."""

    def __init__(self, session: SimulatedSession) -> None:
        self._session = session

    def event_received(self, event: Event, address: Optional[tuple], player_id: Optional[int]) -> None:
        assert address is not None
        self._session.server_events.append((event, address))

    def callback_due(self, function: Callable[..., Any], args: tuple) -> None:
        function(*args)

    def client_joined(self, address: tuple, player_id: int, join_data: Any) -> None:
        session = self._session
        session.server_notifications.append((Event(CLIENT_JOINED, player_id=player_id), address))
        refusal = session.decide_join(player_id, join_data) if session.decide_join is not None else None
        if refusal is None:
            session.server.accept_join(player_id, session.network.now)
        else:
            session.server.refuse_join(player_id, refusal, session.network.now)

    def client_left(self, address: tuple, player_id: int) -> None:
        self._session.server_notifications.append((Event(CLIENT_LEFT, player_id=player_id), address))

    def client_dropped(self, address: tuple, player_id: int) -> None:
        self._session.server_notifications.append((Event(CLIENT_DROPPED, player_id=player_id), address))

    def client_returned(self, address: tuple, player_id: int) -> None:
        self._session.server_notifications.append((Event(CLIENT_RETURNED, player_id=player_id), address))

    def shutdown_requested(self, address: tuple) -> None:
        self._session.shutdown_requested = True


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
        self.server = ServerCore(
            game_state_store,
            server_handler or UniversalEventHandler(),
            connection_class=ServerConnection,
            decide_joins=True,  # (see `decide_join`)
        )
        self.clients: dict[tuple, ClientConnection] = {}
        self.server_events: list[tuple[Event, tuple]] = []
        #: (CLIENT_JOINED, CLIENT_LEFT, CLIENT_DROPPED or CLIENT_RETURNED event with the `player_id` as
        #: its keyword argument, client address) in the order they happened
        self.server_notifications: list[tuple[Event, tuple]] = []
        #: decides on each player that joins: `decide_join(player_id, join_data)` returns None to let it
        #: in or a reason to turn it away (None: everyone is let in)
        self.decide_join: Optional[Callable[[int, Any], Optional[str]]] = None
        self.client_events: dict[tuple, list[Event]] = {}
        #: whether a host client asked the server to shut down
        self.shutdown_requested = False
        self._server_recorder = _ServerRecorder(self)
        self._state_changed = False
        game_state_store._add_listener(self._on_state_update)

    def _on_state_update(self) -> None:
        self._state_changed = True

    def add_client(
        self, name: Optional[str] = None, join_data: Optional[dict] = None, password: Optional[str] = None
    ) -> ClientConnection:
        """Create a client connection to the server; it starts talking on the next `run`."""
        address = ("client", len(self.clients) + 1) if name is None else (name, len(self.clients) + 1)
        connection = ClientConnection(
            self.SERVER_ADDRESS, UniversalEventHandler(), password=password, join_data=join_data
        )
        self.clients[address] = connection
        self.client_events[address] = []
        return connection

    def move_client(self, connection: ClientConnection, address: tuple) -> None:
        """Give a client a new address, as a NAT rebinding or Wi-Fi roaming would: what it sends comes
        from there, and datagrams to its old address are lost."""
        old = self.address_of(connection)
        self.clients[address] = self.clients.pop(old)
        self.client_events[address] = self.client_events.pop(old)

    def cut_off(self, connection: ClientConnection) -> None:
        """Take a client off the network for good, as a crash or a lost Wi-Fi would: nothing it would
        send arrives, and nothing reaches it (its events so far stay in `client_events`)."""
        del self.clients[self.address_of(connection)]

    def address_of(self, connection: ClientConnection) -> tuple:
        """Return the simulated address of a client connection."""
        for address, candidate in self.clients.items():
            if candidate is connection:
                return address
        raise KeyError("not a client of this session")

    def _flush_client(self, address: tuple, connection: ClientConnection) -> None:
        deliver(connection.events(), _ClientRecorder(self.client_events[address]))
        for datagram in connection.datagrams_to_send(self.network.now):
            self.network.send(datagram, address, self.SERVER_ADDRESS)
        deliver(connection.events(), _ClientRecorder(self.client_events[address]))

    def _sweep_server(self) -> None:
        for datagram, address in self.server.datagrams_to_send(self.network.now):
            self.network.send(datagram, self.SERVER_ADDRESS, address)
        deliver(self.server.events(), self._server_recorder)

    def _deliver(self, source: tuple, destination: tuple, datagram: bytes) -> None:
        now = self.network.now
        if destination == self.SERVER_ADDRESS:
            try:
                self.server.receive_datagram(datagram, source, now)
            except (ValueError, DuplicateSequenceError):
                return
            for outgoing in self.server.datagrams_for(source, now):
                self.network.send(outgoing, self.SERVER_ADDRESS, source)
            deliver(self.server.events(), self._server_recorder)
            return
        connection = self.clients.get(destination)
        if connection is None or connection.status == _DISCONNECTED:
            return
        try:
            connection.receive_datagram(datagram, now)
        except (ValueError, DuplicateSequenceError):
            return
        self._flush_client(destination, connection)

    def _next_timer(self) -> Optional[float]:
        timers = [self.network.next_delivery(), self.server.get_timer()]
        timers.extend(c.get_timer() for c in self.clients.values())
        pending = [t for t in timers if t is not None]
        return min(pending) if pending else None

    def run_until(self, condition: Callable[[], bool], limit: float = 10.0, step: float = 0.01) -> None:
        """Run in steps of `step` virtual seconds until `condition()` holds, at most `limit` seconds.

        Raises:
            TimeoutError: if it does not hold within `limit` virtual seconds
        """
        end = self.network.now + limit
        while not condition():
            if self.network.now >= end:
                raise TimeoutError(f"not met within {limit:g} virtual seconds")
            self.run(step)

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
