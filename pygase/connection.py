"""Provide low-level networking logic.

This module is not supposed to be required by users of this library.

The connection classes are a protocol core: they consume datagrams and the current time (`now`, in
seconds of a monotonic clock) and produce datagrams, received events, callbacks to run and the time of
their next timer. They never touch a socket, a thread or a clock; `pygase._transport` drives them on
asyncio.

Contents:
- `PROTOCOL_ID`: 4 byte identifier for the PyGaSe package protocol
- `ProtocolIDMismatchError`: exception for receiving non-PyGaSe packages
- `DuplicateSequenceError`: exception for duplicate packages
- `Header`: class for PyGaSe package headers
- `Package`: class for PyGaSe UDP packages
- `ClientPackage`: subclass of `Package` for packages sent by clients
- `ServerPackage`: subclass of `Package` for packages sent by servers
- `ConnectionStatus`: enum for the status of a client-server connection
- `Connection`: class for the core network logic of client-server connections
- `ClientConnection`: subclass of `Connection` for the client side
- `ServerConnection`: subclass of `Connection` for the server side
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from pygase._packages import (
    PROTOCOL_ID,
    ClientPackage,
    DuplicateSequenceError,
    Header,
    Package,
    ProtocolIDMismatchError,
    ServerPackage,
)
from pygase.event import RESERVED_PREFIX, Event
from pygase.gamestate import GameState
from pygase.utils import LockedRessource, NamedEnum, Sqn

__all__ = [
    "PROTOCOL_ID",
    "ProtocolIDMismatchError",
    "DuplicateSequenceError",
    "Header",
    "Package",
    "ClientPackage",
    "ServerPackage",
    "ConnectionStatus",
    "Connection",
    "ClientConnection",
    "ServerConnection",
]

logger = logging.getLogger(__name__)

#: Control event a client sends when it leaves.
DISCONNECT_EVENT = RESERVED_PREFIX + "disconnect"
#: Control event a host client sends to shut the server down, and the server sends when it shuts down.
SHUTDOWN_EVENT = RESERVED_PREFIX + "shutdown"

_WINDOW = 32  # packages the ack bitfield covers
_EVENT_ID_WINDOW = 4096  # how far back event ids are remembered for deduplication
_MAX_EVENT_ID = 2**31


class ConnectionStatus(NamedEnum):
    """Enum for the state of a connection.

    - `'Disconnected'`
    - `'Connecting'`
    - `'Connected'`
    """


ConnectionStatus.register("Disconnected")
ConnectionStatus.register("Connecting")
ConnectionStatus.register("Connected")

_DISCONNECTED = ConnectionStatus.get("Disconnected")
_CONNECTING = ConnectionStatus.get("Connecting")
_CONNECTED = ConnectionStatus.get("Connected")


class _OutgoingEvent:
    """An event on its way to the other side, with what to do when it arrives or is lost."""

    __slots__ = ("event", "event_id", "ack_callback", "timeout_callback", "retries", "done")

    def __init__(
        self,
        event: Event,
        event_id: int,
        ack_callback: Optional[Callable[..., Any]],
        timeout_callback: Optional[Callable[..., Any]],
        retries: int,
    ) -> None:
        self.event = event
        self.event_id = event_id
        self.ack_callback = ack_callback
        self.timeout_callback = timeout_callback
        self.retries = retries
        self.done = False


class _SentPackage:
    __slots__ = ("time", "records")

    def __init__(self, time: float, records: list) -> None:
        self.time = time
        self.records = records


class Connection:
    """Exchange packages between PyGaSe clients and servers.

    PyGaSe connections exchange events with their other side which are handled using custom handler
    functions. They also keep each other informed about which packages have been sent and received and
    automatically avoid network congestion.

    Arguments:
        remote_address: `('hostname', port)` for the connection partner's address
        event_handler: object that has a callable `handle` attribute that takes a `pygase.event.Event`
        event_wire: object to which events are to be repeated (has to implement a `_push_event` method)

    Attributes:
        remote_address (tuple): see corresponding constructor argument
        event_handler (pygase.event.UniversalEventHandler): see corresponding constructor argument
        event_wire (pygase.GameStateMachine): see corresponding constructor argument
        local_sequence (pygase.utils.Sqn): sequence number of the last sent package
        remote_sequence (pygase.utils.Sqn): sequence number of the last received package
        ack_bitfield (str): acks for the 32 packages prior to `self.remote_sequence`
        latency (float): the round trip time in seconds, smoothed over the last samples
        status (int): a `ConnectionStatus` value that informs about the state of the connection
        quality (str): either `'good'` or `'bad'` depending on latency, used for congestion avoidance:
            while it is `'bad'` at most `1 / congested_interval` packages per second are sent

    PyGaSe servers and clients use the subclasses `ServerConnection` and `ClientConnection` respectively.
    The Connection class would also work on its own (it's not an 'abstract' class), in which case you
    would have all features of PyGaSe except for a synchronized game state.
    """

    #: Seconds of silence from the other side after which the connection counts as lost.
    timeout = 5.0
    #: Round trip time in seconds above which the connection quality is 'bad'.
    latency_threshold = 0.25
    #: Longest time in seconds between two packages, so the other side knows we are alive.
    heartbeat_interval = 0.05
    #: Shortest time in seconds between two packages while the quality is 'bad'.
    congested_interval = 0.1
    #: Longest time in seconds a received event waits for an outgoing package to carry its ack.
    ack_delay = 0.004

    _incoming_package: type[Package] = Package

    def __init__(self, remote_address: tuple, event_handler: Any, event_wire: Any = None) -> None:
        self.remote_address = remote_address
        self.event_handler = event_handler
        self.event_wire = event_wire
        self.local_sequence = Sqn(0)
        self.remote_sequence = Sqn(0)
        self._ack_bits = 0
        self.latency = 0.0
        self._rtt_variance = 0.0
        self._has_rtt_sample = False
        self.status = _CONNECTING
        self.quality = "good"
        self._recovery_time = 2.0
        self._good_since: Optional[float] = None
        self._below_threshold_since: Optional[float] = None
        self._started_at: Optional[float] = None
        self._last_received: Optional[float] = None
        self._remote_received_at = 0.0
        self._last_sent: Optional[float] = None
        self._ack_due_at: Optional[float] = None
        self._sent: dict[int, _SentPackage] = {}
        self._outbox: list[_OutgoingEvent] = []
        self._next_event_id = 1
        self._received_event_ids: set[int] = set()
        self._max_received_event_id = 0
        self._calls: list[tuple[Callable[..., Any], tuple]] = []
        # statistics
        self.packages_sent = 0
        self.packages_received = 0
        self.packages_lost = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    # ---- public API -------------------------------------------------------------------------------

    @property
    def ack_bitfield(self) -> str:
        return format(self._ack_bits, "032b")[::-1]

    def dispatch_event(
        self,
        event: Event,
        ack_callback: Optional[Callable[..., Any]] = None,
        timeout_callback: Optional[Callable[..., Any]] = None,
        retries: int = 0,
    ) -> None:
        """Send an event to the connection partner.

        Arguments:
            event: the event to dispatch
            ack_callback: will be executed after the event was received
            timeout_callback: will be executed if the event was not received (after all retries)
            retries: number of times the event is resent if it is lost

        Using long-running blocking operations in any of the callback functions can disturb the
        connection.
        """
        if retries < 0:
            raise ValueError("retries must not be negative")
        event_id = self._next_event_id
        self._next_event_id = event_id % _MAX_EVENT_ID + 1
        self._outbox.append(_OutgoingEvent(event, event_id, ack_callback, timeout_callback, retries))

    # ---- protocol core: inputs ----------------------------------------------------------------------

    def receive_datagram(self, datagram: bytes, now: float) -> list:
        """Take a datagram from the other side and return the new events it carries.

        Raises:
            ProtocolIDMismatchError: if the datagram is not a PyGaSe package
            DuplicateSequenceError: if the package was received before or is too old to tell
            ValueError: if the datagram is malformed
        """
        package = self._incoming_package.from_datagram(datagram)
        self.bytes_received += len(datagram)
        return self._receive_package(package, now)

    def _receive_package(self, package: Package, now: float) -> list:
        self._start(now)
        header = package.header
        self._register_sequence(header.sequence, now)
        self.packages_received += 1
        self._last_received = now
        if self.status == _CONNECTING:
            self.status = _CONNECTED
        self._process_acks(header.ack, header._bits, package.ack_delay, now)
        events = []
        for event, event_id in package._entries:
            if event_id and not self._first_time_seen(event_id):
                continue
            events.append(event)
        if package._entries and self._ack_due_at is None:
            self._ack_due_at = now + self.ack_delay
        return events

    def handle_timer(self, now: float) -> None:
        """Detect lost packages and a lost connection; call when `get_timer()` says."""
        self._start(now)
        if self.status == _DISCONNECTED:
            return
        loss_deadline = self._retransmission_timeout()
        for sequence in [
            s for s, sent in self._sent.items() if sent.records and now >= sent.time + loss_deadline
        ]:
            self._lose(sequence)
        silent_since = self._last_received if self._last_received is not None else self._started_at
        if silent_since is not None and now >= silent_since + self.timeout:
            logger.info(
                "connection to %s timed out after %.1f s of silence", self.remote_address, self.timeout
            )
            self._close()

    def datagrams_to_send(self, now: float) -> list:
        """Return the datagrams that are due for sending now (usually none or one)."""
        self._start(now)
        datagrams = []
        while self.status != _DISCONNECTED and self._send_due(now):
            datagrams.append(self._next_datagram(now))
            if not self._outbox:
                break
        return datagrams

    def get_timer(self) -> Optional[float]:
        """Return the time at which `handle_timer` and `datagrams_to_send` should next be called."""
        if self.status == _DISCONNECTED:
            return None
        deadlines = []
        earliest_send = self._earliest_send()
        if self._outbox or self._ack_due_at is not None:
            deadlines.append(max(earliest_send, self._ack_due_at or earliest_send))
        if self._last_sent is not None:
            deadlines.append(max(earliest_send, self._last_sent + self.heartbeat_interval))
        else:
            deadlines.append(earliest_send)
        rto = self._retransmission_timeout()
        deadlines.extend(sent.time + rto for sent in self._sent.values() if sent.records)
        silent_since = self._last_received if self._last_received is not None else self._started_at
        if silent_since is not None:
            deadlines.append(silent_since + self.timeout)
        return min(deadlines)

    def take_calls(self) -> list:
        """Return and forget the callbacks (function, args) the core wants run, in order."""
        calls, self._calls = self._calls, []
        return calls

    # ---- protocol core: internals ------------------------------------------------------------------

    def _start(self, now: float) -> None:
        if self._started_at is None:
            self._started_at = now
            self._good_since = now

    def _close(self) -> None:
        self.status = _DISCONNECTED
        for sent in self._sent.values():
            for record in sent.records:
                self._give_up(record)
        for record in self._outbox:
            self._give_up(record)
        self._sent.clear()
        self._outbox.clear()

    def _register_sequence(self, sequence: Sqn, now: float) -> None:
        if int(sequence) == 0:
            raise ValueError("a package's sequence number is never 0")
        if int(self.remote_sequence) == 0 or sequence > self.remote_sequence:
            if int(self.remote_sequence) != 0:
                shift = sequence - self.remote_sequence
                bits = (self._ack_bits << shift) | (1 << (shift - 1)) if shift <= _WINDOW else 0
                self._ack_bits = bits & 0xFFFFFFFF
            self.remote_sequence = Sqn(sequence)
            self._remote_received_at = now
            return
        distance = self.remote_sequence - sequence
        if distance == 0:
            raise DuplicateSequenceError(f"package {int(sequence)} was received before")
        if distance > _WINDOW:
            raise DuplicateSequenceError(f"package {int(sequence)} is too old to tell if it is new")
        bit = 1 << (distance - 1)
        if self._ack_bits & bit:
            raise DuplicateSequenceError(f"package {int(sequence)} was received before")
        self._ack_bits |= bit

    def _process_acks(self, ack: Sqn, bits: int, ack_delay: int, now: float) -> None:
        if int(ack) == 0 or not self._sent:
            return
        newest = self._sent.pop(int(ack), None)
        if newest is not None:
            self._on_delivered(newest)
            self._add_rtt_sample(max(0.0, now - newest.time - ack_delay / 10000), now)
        for distance in range(1, _WINDOW + 1):
            if bits >> (distance - 1) & 1:
                sent = self._sent.pop(int(ack + -distance), None)
                if sent is not None:
                    self._on_delivered(sent)

    def _on_delivered(self, sent: _SentPackage) -> None:
        for record in sent.records:
            if not record.done:
                record.done = True
                if record.ack_callback is not None:
                    self._calls.append((record.ack_callback, self._ack_callback_args()))

    def _ack_callback_args(self) -> tuple:
        return ()

    def _lose(self, sequence: int) -> None:
        sent = self._sent.pop(sequence)
        self.packages_lost += 1
        for record in sent.records:
            if record.done:
                continue
            if record.retries > 0:
                record.retries -= 1
                self._outbox.append(record)
                logger.debug("resending event %r to %s", record.event.type, self.remote_address)
            else:
                self._give_up(record)

    def _give_up(self, record: _OutgoingEvent) -> None:
        if record.done:
            return
        record.done = True
        if record.timeout_callback is not None:
            self._calls.append((record.timeout_callback, ()))
        elif not record.event.type.startswith(RESERVED_PREFIX):
            logger.debug("event %r to %s was lost", record.event.type, self.remote_address)

    def _first_time_seen(self, event_id: int) -> bool:
        if event_id in self._received_event_ids:
            return False
        newest = self._max_received_event_id
        if newest and 0 < newest - event_id < _MAX_EVENT_ID // 2 and newest - event_id > _EVENT_ID_WINDOW:
            return False  # too old to tell whether it was handled: drop it rather than risk twice
        self._received_event_ids.add(event_id)
        if not newest or 0 < event_id - newest < _MAX_EVENT_ID // 2 or newest - event_id > _MAX_EVENT_ID // 2:
            self._max_received_event_id = event_id
        if len(self._received_event_ids) > 2 * _EVENT_ID_WINDOW:
            top = self._max_received_event_id
            self._received_event_ids = {
                i for i in self._received_event_ids if (top - i) % _MAX_EVENT_ID <= _EVENT_ID_WINDOW
            }
        return True

    def _add_rtt_sample(self, sample: float, now: float) -> None:
        if not self._has_rtt_sample:
            self.latency = sample
            self._rtt_variance = sample / 2
            self._has_rtt_sample = True
        else:
            self._rtt_variance = 0.75 * self._rtt_variance + 0.25 * abs(self.latency - sample)
            self.latency = 0.875 * self.latency + 0.125 * sample
        self._update_quality(now)

    def _update_quality(self, now: float) -> None:
        """Switch between 'good' and 'bad' quality with a recovery time that adapts to flapping."""
        high = self.latency > self.latency_threshold
        if self.quality == "good":
            good_since = self._good_since if self._good_since is not None else now
            if high:
                self.quality = "bad"
                self._below_threshold_since = None
                if now - good_since < 10.0:
                    self._recovery_time = min(2 * self._recovery_time, 60.0)
                logger.info(
                    "connection to %s: latency %.0f ms, throttling sends",
                    self.remote_address,
                    1000 * self.latency,
                )
            elif now - good_since >= 10.0:
                self._recovery_time = max(self._recovery_time / 2, 1.0)
                self._good_since = now
        elif high:
            self._below_threshold_since = None
        elif self._below_threshold_since is None:
            self._below_threshold_since = now
        elif now - self._below_threshold_since >= self._recovery_time:
            self.quality = "good"
            self._good_since = now
            logger.info("connection to %s: latency back to normal", self.remote_address)

    def _retransmission_timeout(self) -> float:
        if not self._has_rtt_sample:
            return 0.5
        return min(max(self.latency + 4 * self._rtt_variance + 2 * self.ack_delay, 0.05), 2.0)

    def _earliest_send(self) -> float:
        """The earliest time the next package may go out (congestion avoidance)."""
        if self.quality == "good" or self._last_sent is None:
            return float("-inf")
        return self._last_sent + self.congested_interval

    def _send_due(self, now: float) -> bool:
        if now < self._earliest_send():
            return False
        if self._outbox:
            return True
        if self._ack_due_at is not None and now >= self._ack_due_at:
            return True
        return self._last_sent is None or now >= self._last_sent + self.heartbeat_interval

    def _new_header(self, now: float) -> Header:
        self.local_sequence = self.local_sequence + 1
        return Header._from_ints(int(self.local_sequence), int(self.remote_sequence), self._ack_bits)

    def _make_package(self, header: Header, now: float) -> Package:
        """Create the package to send; subclasses add their payload."""
        return Package(header)

    def _next_datagram(self, now: float) -> bytes:
        package = self._make_package(self._new_header(now), now)
        package.ack_delay = (
            min(int((now - self._remote_received_at) * 10000), 2**31) if self._last_received else 0
        )
        datagram = package.to_datagram()
        records: list[_OutgoingEvent] = []
        while self._outbox:
            record = self._outbox[0]
            try:
                package._add_entry(record.event, record.event_id)
                datagram = package.to_datagram()
            except OverflowError:
                package._entries.pop()
                if records:
                    break  # the rest goes in the next package
                self._outbox.pop(0)
                logger.error(
                    "event %r is too large for one package of %d bytes and was dropped",
                    record.event.type,
                    package._max_size,
                )
                self._give_up(record)
                datagram = package.to_datagram()
                continue
            records.append(self._outbox.pop(0))
        # A package that falls out of the ack window can no longer be acknowledged: it is lost.
        oldest = int(self.local_sequence + -(_WINDOW + 1))
        if oldest in self._sent:
            self._lose(oldest)
        self._sent[int(self.local_sequence)] = _SentPackage(now, records)
        self._last_sent = now
        self._ack_due_at = None
        self.packages_sent += 1
        self.bytes_sent += len(datagram)
        return datagram


class ClientConnection(Connection):
    """Subclass of `Connection` to describe the client side of a PyGaSe connection.

    Client connections hold a copy of the game state which is continuously being updated according to
    state updates received from the server.

    Attributes:
        game_state_context (pygase.utils.LockedRessource): provides thread-safe access to a
            `pygase.GameState`
    """

    _incoming_package = ServerPackage

    def __init__(self, remote_address: tuple, event_handler: Any) -> None:
        super().__init__(remote_address, event_handler)
        self.game_state_context = LockedRessource(GameState())
        self._time_order = Sqn(0)
        #: called (without arguments) after each change of the game state
        self._on_state_change: Optional[Callable[[], None]] = None
        self.updates_received = 0

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ServerPackage)
        events = super()._receive_package(package, now)
        update = package.game_state_update
        if update is not None:
            self._apply_update(package)
        user_events = []
        for event in events:
            if event.type == SHUTDOWN_EVENT:
                logger.info("the server at %s shut down", self.remote_address)
                self._close()
            elif not event.type.startswith(RESERVED_PREFIX):
                user_events.append(event)
        return user_events

    def _apply_update(self, package: ServerPackage) -> None:
        update = package.game_state_update
        assert update is not None
        with self.game_state_context() as game_state:
            if package.full_state:
                # The server sends the whole state when it cannot build a delta from what we have.
                game_state.__dict__.clear()
                game_state.__dict__.update(update.__dict__)
            elif update.time_order > game_state.time_order:
                update._apply_to(game_state)
            else:
                return
            self._time_order = game_state.time_order
        self.updates_received += 1
        if self._on_state_change is not None:
            self._on_state_change()

    def _make_package(self, header: Header, now: float) -> Package:
        return ClientPackage(header, self._time_order)

    def shutdown(self, shutdown_server: bool = False) -> None:
        """Shut down the client connection.

        Queues a last message to the server (leaving, or a request to shut the server down, which only
        has an effect if this client has host permissions); the connection closes once the server
        confirmed it or after a few tries. Drive the connection (`Client.disconnect` does) to send it.

        Arguments:
            shutdown_server: whether or not the server should be shut down too
        """
        if self.status == _DISCONNECTED:
            return
        self.dispatch_event(
            Event(SHUTDOWN_EVENT if shutdown_server else DISCONNECT_EVENT),
            ack_callback=self._close,
            timeout_callback=self._close,
            retries=3,
        )

    async def loop(self) -> None:
        """Continuously operate the connection.

        This coroutine keeps sending and receiving packages and handling events until the connection is
        closed (by `shutdown`, a server shutdown or a timeout).
        """
        from pygase import _transport

        await _transport.run_client_connection(self)


class ServerConnection(Connection):
    """Subclass of `Connection` that describes the server side of a PyGaSe connection.

    Arguments:
        game_state_store: object that serves as an interface to the game state repository (has to provide
            the methods `get_game_state`, `get_update_cache` and `push_update`)
        last_client_time_order: the last time order number known to the client

    Attributes:
        game_state_store (pygase.GameStateStore): see corresponding constructor argument
        last_client_time_order (pygase.utils.Sqn): see corresponding constructor argument
    """

    _incoming_package = ClientPackage
    heartbeat_interval = 0.1

    def __init__(
        self,
        remote_address: tuple,
        event_handler: Any,
        game_state_store: Any,
        last_client_time_order: Sqn,
        event_wire: Any = None,
    ) -> None:
        super().__init__(remote_address, event_handler, event_wire)
        self.game_state_store = game_state_store
        self.last_client_time_order = Sqn(last_client_time_order)
        #: time order of the newest state sent to this client
        self._sent_time_order: Optional[Sqn] = None

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ClientPackage)
        events = super()._receive_package(package, now)
        if package.header.sequence == self.remote_sequence:  # the newest package says what the client has
            self.last_client_time_order = package.time_order
        return events

    def _ack_callback_args(self) -> tuple:
        return (self,)

    def _send_due(self, now: float) -> bool:
        if super()._send_due(now):
            return True
        # A newer state than this client was sent goes out at once (as far as congestion allows).
        return self._sent_time_order != self.game_state_store._time_order() and now >= self._earliest_send()

    def _make_package(self, header: Header, now: float) -> Package:
        package = ServerPackage(header, None)
        # Every package carries what the client lacks, measured from what it says it has, so a lost
        # package costs nothing but the wait for the next one.
        time_order, update_bytes, full_state = self.game_state_store._encoded_update_since(
            self.last_client_time_order
        )
        if update_bytes is not None:
            package._update_bytes = update_bytes
            package.full_state = full_state
        self._sent_time_order = time_order
        return package

    @staticmethod
    async def loop(hostname: str, port: int, server: Any, event_wire: Any) -> None:
        """Continuously orchestrate and operate connections to clients.

        This coroutine will keep listening for client packages, create new `ServerConnection` objects
        when necessary and make sure all packages are handled by and sent via the right connection.
        It will return as soon as the server is shut down.

        Arguments:
            hostname: the hostname or IPv4 address to which to bind the server socket
            port: the port number to which to bind the server socket
            server: the server for which this loop is run
            event_wire: object to which events are to be repeated (has to implement `_push_event`)
        """
        await server.run_async(port, hostname, event_wire)
