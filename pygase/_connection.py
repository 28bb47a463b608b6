"""One side of a PyGaSe connection, without the socket: packages in, packages out, timers.

Part of the protocol core: it consumes datagrams and the current time (`now`, seconds of a monotonic
clock) and produces datagrams, received events, callbacks to run and the time of its next timer. It never
touches a socket, a thread or a clock; `pygase._transport` drives it on asyncio, `pygase.testing` over an
in-memory network. The work is split:

- `pygase._reliability`: the ack window, events in flight, resends and give-ups;
- `pygase._recovery`: RTT, retransmission timeout, link quality and pacing;
- this module: sequence numbers, building packages (`_next_datagram`), what is due when (`get_timer`).

`pygase._client_core` and `pygase._server_core` add each side's part; `pygase.connection` is the public
front with the seed API's names.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Optional

from pygase._crypto import Cipher
from pygase._event_order import InboundEvents, split_event
from pygase._header import _header_fields
from pygase._outputs import EventReceived, Output
from pygase._packages import _NO_EVENTS, Header, Package, _body_start, _header_bytes
from pygase._recovery import Recovery
from pygase._reliability import WINDOW, OutgoingEvent, ReceiveWindow, Reliability
from pygase._sockets import not_waited
from pygase.event import RESERVED_PREFIX, Event
from pygase.utils import NamedEnum, Sqn

logger = logging.getLogger("pygase.connection")

#: Control event a client sends when it leaves.
DISCONNECT_EVENT = RESERVED_PREFIX + "disconnect"
#: Control event a host client sends to shut the server down, and the server sends when it shuts down.
SHUTDOWN_EVENT = RESERVED_PREFIX + "shutdown"
#: Internal event carrying one part of a large state update: args [transfer id, index, count, full, bytes].
STATE_PART_EVENT = RESERVED_PREFIX + "state"

_SILENCE = 0.5  # seconds without a package after which the other side counts as having been silent


class ConnectionStatus(NamedEnum):
    """Enum for the state of a connection.

    - `'Disconnected'`
    - `'Connecting'`
    - `'Connected'`
    """


ConnectionStatus.register("Disconnected")
ConnectionStatus.register("Connecting")
ConnectionStatus.register("Connected")

DISCONNECTED = ConnectionStatus.get("Disconnected")
CONNECTING = ConnectionStatus.get("Connecting")
CONNECTED = ConnectionStatus.get("Connected")


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
    heartbeat_interval = 0.1
    #: Shortest time in seconds between two packages while the quality is 'bad'.
    congested_interval = 0.1
    #: Longest time in seconds a received event waits for an outgoing package to carry its ack.
    ack_delay = 0.004
    #: Most packages with events that may be unacknowledged at once (the parts of a large state keep to a
    #: window of their own that follows the link, see `pygase._transfer`).
    max_packages_in_flight = 24
    #: Size in bytes up to which events are packed into one package (parts of large ones are smaller).
    mtu = 1200
    #: Largest event in bytes that may be sent or received; events over about 1 KB travel in parts.
    max_event_size = 1024 * 1024
    #: Largest game state in bytes a client accepts.
    max_state_size = 64 * 1024 * 1024

    _incoming_package: type[Package] = Package
    _outgoing_fields = Package._body_fields

    def __init__(self, remote_address: tuple, event_handler: Any, event_wire: Any = None) -> None:
        self.remote_address = remote_address
        self.event_handler = event_handler
        self.event_wire = event_wire
        self.local_sequence = Sqn(0)
        self._received = ReceiveWindow()
        self._recovery = Recovery(self)
        self._outputs: list[Output] = []  # what happened, for the driver: see `events()`
        self._reliability = Reliability(remote_address, self._outputs, self._ack_callback_args())
        self.status = CONNECTING
        self._started_at: Optional[float] = None
        self._last_received: Optional[float] = None
        #: Seconds the datagram being taken waited in the socket's buffer before it was read (the server
        #: core sets it for each package, from the driver's `waited`)
        self.read_delay = 0.0
        #: How long ago the newest datagram reached the socket, asked when an ack goes out (a client sets
        #: it to its driver's `waited`: one question per ack instead of one per datagram)
        self._ack_waited = not_waited
        self._last_sent: Optional[float] = None
        self._ack_due_at: Optional[float] = None
        self._received_since_sent = 0  # packages received since we last sent one (which acks them)
        self._inbound = InboundEvents(self.max_event_size)
        #: seals what this side sends and opens what it receives, once the handshake agreed on keys
        self._cipher: Optional[Cipher] = None
        # statistics
        self.packages_sent = 0
        self.packages_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    # ---- public API -------------------------------------------------------------------------------

    @property
    def remote_sequence(self) -> Sqn:
        return self._received.newest

    @remote_sequence.setter
    def remote_sequence(self, value: int) -> None:
        self._received.newest = Sqn(value)

    @property
    def ack_bitfield(self) -> str:
        return format(self._received.bits, "032b")[::-1]

    @property
    def latency(self) -> float:
        return self._recovery.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._recovery.latency = value

    @property
    def quality(self) -> str:
        return self._recovery.quality

    @quality.setter
    def quality(self, value: str) -> None:
        self._recovery.quality = value

    @property
    def packages_lost(self) -> int:
        """Packages sent that were never acknowledged."""
        return self._reliability.lost

    @property
    def packages_expected(self) -> int:
        """Packages the other side sent, going by their sequence numbers."""
        return self._received.expected

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
        encoded = event.to_bytes()
        if len(encoded) > self.max_event_size:
            raise ValueError(
                f"event {event.type!r} has {len(encoded)} bytes, "
                f"more than max_event_size ({self.max_event_size})"
            )
        self._reliability.dispatch(split_event(event, encoded), ack_callback, timeout_callback, retries)

    # ---- protocol core: inputs ----------------------------------------------------------------------

    def receive_datagram(self, datagram: bytes, now: float) -> None:
        """Take a datagram from the other side; the new events it carries are reported by `events()`.

        Raises:
            ProtocolIDMismatchError: if the datagram is not a PyGaSe package
            DuplicateSequenceError: if the package was received before or is too old to tell
            ValueError: if the datagram is malformed
        """
        package = self._incoming_package.from_datagram(datagram)
        self.bytes_received += len(datagram)
        self._report_events(self._receive_package(package, now))

    def _report_events(self, events: list) -> None:
        if events:  # (most packages carry none)
            address = self.remote_address
            self._outputs.extend(EventReceived(event, address) for event in events)

    def _receive_package(self, package: Package, now: float) -> list:
        """Take a package; return the new events it carries, in order (control events too)."""
        held = self._inbound.admit(package._entries, package.event_floor, now, self.remote_address)
        if held is None:
            # No room to hold its events back until their turn: not taken, so not acknowledged; to the
            # sender it is lost (its events are resent or given up, as it chose).
            return []
        if self._started_at is None:
            self._start(now)
        header = package.header
        # When it reached this machine: it may have waited in the socket's buffer while this side was
        # busy (`read_delay`, set by the driver), which is no part of the round trip nor of the ack delay.
        arrived = now - self.read_delay
        self.read_delay = 0.0
        self._received.register(header.sequence, arrived)
        self.packages_received += 1
        previous, self._last_received = self._last_received, now
        if self.status == CONNECTING:
            self.status = CONNECTED
        reliability = self._reliability
        newest = reliability.acknowledge(header.ack, header._bits)
        if newest is not None:
            self._recovery.add_sample(max(0.0, arrived - newest.time - package.ack_delay / 10000), now)
        if reliability.in_flight and previous is not None and now - previous >= _SILENCE:
            reliability.resend_after_silence(now, self._recovery.retransmission_timeout())
        self._received_since_sent += 1
        if self._received_since_sent >= WINDOW // 2:
            # Acknowledge before the ack field no longer reaches the oldest of them (fast senders).
            self._ack_due_at = now
        if package._entries and self._ack_due_at is None:
            self._ack_due_at = now + self.ack_delay
        return self._inbound.receive(package._entries, package.event_floor, held)

    def handle_timer(self, now: float) -> None:
        """Detect lost packages and a lost connection; call when `get_timer()` says."""
        if self._started_at is None:
            self._start(now)
        if self.status == DISCONNECTED:
            return
        reliability = self._reliability
        if reliability.in_flight:
            reliability.detect_losses(now, self._recovery.retransmission_timeout())
        else:
            reliability._now = now  # (what detect_losses would do: nothing can be lost)
        self._parts_timer(now)
        silent_since = self._last_received if self._last_received is not None else self._started_at
        if silent_since is not None and now >= silent_since + self.timeout:
            logger.info(
                "connection to %s timed out after %.1f s of silence", self.remote_address, self.timeout
            )
            self._close()

    def datagrams_to_send(self, now: float) -> list:
        """Return the datagrams that are due for sending now (usually none or one)."""
        if self._started_at is None:
            self._start(now)
        datagrams = []
        while self.status != DISCONNECTED and self._send_due(now):
            datagrams.append(self._next_datagram(now))
            if not self._reliability.outbox and not self._parts_due(now):
                break
        return datagrams

    def get_timer(self) -> Optional[float]:
        """Return the time at which `handle_timer` and `datagrams_to_send` should next be called."""
        if self.status == DISCONNECTED:
            return None
        # (the earliest of the deadlines below; it runs for every connection after every sweep)
        reliability = self._reliability
        last_sent = self._last_sent
        earliest_send = self._recovery.earliest_send(last_sent)
        if last_sent is None:
            timer = earliest_send
        else:
            timer = last_sent + self.heartbeat_interval  # the heartbeat
            if timer < earliest_send:
                timer = earliest_send
        ack_due_at = self._ack_due_at
        if ack_due_at is not None and ack_due_at < timer:
            timer = ack_due_at
        if earliest_send < timer and reliability.outbox and self._window_open():
            timer = earliest_send
        if reliability.in_flight:
            for deadline in reliability.resend_deadlines(self._recovery.retransmission_timeout()):
                if deadline < timer:
                    timer = deadline
        parts = self._parts_deadline()
        if parts is not None and parts < timer:
            timer = parts
        silent_since = self._last_received if self._last_received is not None else self._started_at
        if silent_since is not None and silent_since + self.timeout < timer:
            timer = silent_since + self.timeout
        return timer

    def settled(self) -> bool:
        """Whether the connection has nothing to send, no callback to run and no deadline that a received
        package could have brought forward: its driver can wait for the timer it set before."""
        return (
            self.status == CONNECTED
            and self._ack_due_at is None
            and not self._outputs
            and not self._reliability.queued()
        )

    def events(self) -> list[Output]:
        """Return and forget what happened since the last call, in order: `EventReceived` for each new
        event, `CallbackDue` for each callback to run (see `pygase._outputs`)."""
        outputs = self._outputs[:]
        self._outputs.clear()  # (the list itself is shared with the reliability layer)
        return outputs

    # ---- protocol core: internals ------------------------------------------------------------------

    def _start(self, now: float) -> None:
        if self._started_at is None:
            self._started_at = now
            self._recovery.start(now)

    def _close(self) -> None:
        self.status = DISCONNECTED
        self._reliability.close()
        self._inbound.reset()  # (what it held back no longer counts against a shared budget)

    def _ack_callback_args(self) -> tuple:
        """What an ack callback is called with (a server passes the connection)."""
        return ()

    def _window_open(self) -> bool:
        return self._reliability.in_flight < self.max_packages_in_flight

    def _send_due(self, now: float) -> bool:
        # An ack that is due goes out even while sending is throttled: the sender would take the event
        # for lost and send it again, which costs more than the ack.
        if self._ack_due_at is not None and now >= self._ack_due_at:
            return True
        if self._parts_due(now):
            return True
        last_sent = self._last_sent
        if last_sent is None:
            return True
        if now < self._recovery.earliest_send(last_sent):
            return False
        reliability = self._reliability
        if reliability.outbox and self._window_open():
            return True
        return now >= last_sent + self.heartbeat_interval

    # (hooks for the parts of a large state, see `pygase._transfer`: none here)

    def _parts_due(self, now: float) -> bool:
        """Whether parts of a large state may go out now (they keep to their own window and pacing, not to
        `congested_interval`)."""
        return False

    def _parts_deadline(self) -> Optional[float]:
        """When parts may go out next or count as lost, if that is due at some time."""
        return None

    def _parts_timer(self, now: float) -> None:
        """Take parts that waited too long for their report as lost."""

    def _add_parts(self, package: Package, datagram: bytes, now: float) -> bytes:
        """Add parts of a large state to `package` as far as they may go and fit; return the datagram."""
        return datagram

    def _reports(self) -> list:
        """Internal events (outside the event order, never resent) the next package carries."""
        return []

    def _new_header(self, now: float) -> Header:
        self.local_sequence = _next_sequence(self.local_sequence)
        self._received.sent()
        return Header._from_ints(int(self.local_sequence), int(self._received.newest), self._received.bits)

    def _make_package(self, header: Header, now: float) -> Package:
        """Create the package to send; subclasses add their payload."""
        return Package(header)

    def _fill(self, package: Package, queue: collections.deque, records: list, datagram: bytes) -> bytes:
        """Move events from `queue` into `package` while it stays within one MTU; return the datagram."""
        while queue:
            record: OutgoingEvent = queue[0]
            if record.done:  # resolved while it waited (a part of a large event that was given up)
                queue.popleft()
                continue
            package._add_entry(record.event, record.event_id)
            try:
                candidate = package.to_datagram()
            except OverflowError:
                candidate = b""
            if not candidate or (len(candidate) > self.mtu and records):
                package._entries.pop()
                package._datagram = None
                return package.to_datagram()
            records.append(queue.popleft())
            datagram = candidate
            if len(datagram) >= self.mtu:
                break
        return datagram

    def _start_package(self, now: float) -> Package:
        package = self._make_package(self._new_header(now), now)
        package.event_floor = self._reliability.event_floor()
        package.ack_delay = self._ack_delay(now)
        return package

    def _ack_delay(self, now: float) -> int:
        """How long, in 0.1 ms, the newest package from the other side has waited for this package's ack."""
        if self._last_received is None:
            return 0
        return min(int(max(now - self._received.newest_at, self._ack_waited()) * 10000), 2**31)

    def _next_datagram(self, now: float) -> bytes:
        reliability = self._reliability
        reports = self._reports()
        events_due = reliability.outbox and self._window_open()
        if not (reports or events_due or self._parts_due(now)):
            tail = self._plain_tail(now)
            if tail is not None:
                rest = self._cipher is not None  # (then built without the protocol id: sealing leaves it out)
                return self._seal(self._plain_datagram(now, tail, rest), [], now, rest)
        package = self._start_package(now)
        for report in reports:
            package._add_entry(report, 0)
        datagram = package.to_datagram()
        records: list[OutgoingEvent] = []
        if self._window_open():
            datagram = self._fill(package, reliability.outbox, records, datagram)
        datagram = self._add_parts(package, datagram, now)
        return self._seal(datagram, records, now)

    def _plain_tail(self, now: float) -> Optional[bytes]:
        """The bytes after the event floor of a package without events (the fields a subclass adds), or
        None if this package needs the general path after all. Subclasses add their fields."""
        return b""

    def _plain_datagram(self, now: float, tail: bytes, rest: bool = False) -> bytes:
        """A package without events, built straight into bytes: the same bytes `_start_package` and
        `Package.to_datagram` would give, for the packages sent most (heartbeats, acks, state updates);
        with `rest`, without the protocol id they start with (for `Cipher.seal_rest`)."""
        sequence = self.local_sequence = _next_sequence(self.local_sequence)
        received = self._received
        received.sent()
        return (
            (_header_fields if rest else _header_bytes)(sequence, received.newest, received.bits)
            + _body_start(
                self._outgoing_fields, self._ack_delay(now), _NO_EVENTS, self._reliability.event_floor()
            )
            + tail
        )

    def _notice_datagram(self, event: Event, now: float) -> bytes:
        """Return a package that carries `event` at once, outside the event order, flow control and
        congestion avoidance: a notice (such as the server's shutdown) that is sent once, not resent."""
        package = self._start_package(now)
        package._add_entry(event, 0)
        return self._seal(package.to_datagram(), [], now)

    def _seal(self, datagram: bytes, records: list, now: float, rest: bool = False) -> bytes:
        """Book a package as sent; return it sealed with the session key (if the handshake agreed one).

        With `rest`, `datagram` is the package without its protocol id (only when there is a key)."""
        if rest:
            datagram = self._cipher.seal_rest(datagram)  # type: ignore[union-attr]
        elif self._cipher is not None:
            datagram = self._cipher.seal(datagram)
        self._reliability.book(int(self.local_sequence), now, records, self._recovery.latency)
        self._last_sent = now
        self._ack_due_at = None
        self._received_since_sent = 0
        self.packages_sent += 1
        self.bytes_sent += len(datagram)
        return datagram


def _next_sequence(sequence: Sqn) -> Sqn:
    """`sequence + 1` (wrapping past the largest to 1), without `Sqn`'s checks: it runs per datagram."""
    return int.__new__(Sqn, sequence % Sqn._max_sequence + 1)
