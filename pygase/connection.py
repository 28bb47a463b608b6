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

import collections
import contextlib
import logging
import secrets
import threading
from typing import Any, Callable, Iterator, Optional

from pygase import _codec
from pygase import _handshake as handshake
from pygase._event_order import PART_EVENT, PART_SIZE, InboundEvents, check_event_args, split_event
from pygase._packages import (
    _NO_EVENTS,
    PROTOCOL_ID,
    ClientPackage,
    DuplicateSequenceError,
    Header,
    Package,
    ProtocolIDMismatchError,
    ServerPackage,
    _body_start,
    _header_bytes,
    _server_tail,
)
from pygase.event import RESERVED_PREFIX, Event
from pygase.gamestate import GameState, GameStateUpdate
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
#: Internal event carrying one part of a large state update: args [transfer id, index, count, full, bytes].
STATE_PART_EVENT = RESERVED_PREFIX + "state"

_WINDOW = 32  # packages the ack bitfield covers
_MAX_BACKOFF = 2.0  # longest wait in seconds before an unacknowledged event is resent
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

_DISCONNECTED = ConnectionStatus.get("Disconnected")
_CONNECTING = ConnectionStatus.get("Connecting")
_CONNECTED = ConnectionStatus.get("Connected")


class _OutgoingEvent:
    """An event on its way to the other side, with what to do when it arrives or is lost."""

    __slots__ = ("event", "event_id", "group", "retries", "attempts", "done")

    def __init__(self, event: Event, event_id: int, group: _Dispatch, retries: int) -> None:
        self.event = event
        self.event_id = event_id
        self.group = group
        self.retries = retries
        self.attempts = 0
        self.done = False


class _Dispatch:
    """One dispatched event: its callbacks fire once, when all its parts arrived or one was given up."""

    __slots__ = ("ack_callback", "timeout_callback", "internal", "remaining", "finished", "records")

    def __init__(
        self,
        ack_callback: Optional[Callable[..., Any]],
        timeout_callback: Optional[Callable[..., Any]],
        internal: bool = False,
    ) -> None:
        self.ack_callback = ack_callback
        self.timeout_callback = timeout_callback
        self.internal = internal  # PyGaSe's own callbacks run at once, not through the driver
        self.remaining = 0
        self.finished = False
        self.records: list[_OutgoingEvent] = []


class _SentPackage:
    __slots__ = ("time", "records", "backoff")

    def __init__(self, time: float, records: list) -> None:
        self.time = time
        self.records = records
        # Each resend of the same event waits twice as long, so a silent link does not use up retries.
        self.backoff = 2 ** min(max(r.attempts for r in records), 6) if records else 1


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
    #: Most packages with events that may be unacknowledged at once (flow control for large transfers).
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
        self._received_since_sent = 0  # packages received since we last sent one (which acks them)
        self._sent: dict[int, _SentPackage] = {}
        self._in_flight = 0  # packages in `_sent` that carry events
        self._outbox: collections.deque[_OutgoingEvent] = collections.deque()
        self._bulk: collections.deque[_OutgoingEvent] = collections.deque()  # parts of large states
        self._next_event_id = 1
        self._unresolved: dict[int, _OutgoingEvent] = {}  # by id, oldest first
        self._inbound = InboundEvents(self.max_event_size)
        self._calls: list[tuple[Callable[..., Any], tuple]] = []
        # statistics
        self.packages_sent = 0
        self.packages_received = 0
        self.packages_lost = 0
        self.packages_expected = 0  # packages the other side sent, going by their sequence numbers
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
        encoded = event.to_bytes()
        if len(encoded) > self.max_event_size:
            raise ValueError(
                f"event {event.type!r} has {len(encoded)} bytes, "
                f"more than max_event_size ({self.max_event_size})"
            )
        group = _Dispatch(ack_callback, timeout_callback)
        for piece in split_event(event, encoded):
            record = _OutgoingEvent(piece, self._next_event_id, group, retries)
            self._unresolved[self._next_event_id] = record
            self._next_event_id += 1
            group.records.append(record)
            self._outbox.append(record)
        group.remaining = len(group.records)

    def _send_bulk(
        self, event: Event, on_ack: Callable[[], None], on_give_up: Optional[Callable[[], None]] = None
    ) -> None:
        """Queue an internal event outside the event order, resent until it arrives (parts of a state)."""
        group = _Dispatch(on_ack, on_give_up, internal=True)
        record = _OutgoingEvent(event, 0, group, retries=2**31)
        group.records.append(record)
        group.remaining = 1
        self._bulk.append(record)

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
        previous, self._last_received = self._last_received, now
        if self.status == _CONNECTING:
            self.status = _CONNECTED
        self._process_acks(header.ack, header._bits, package.ack_delay, now)
        if self._in_flight and previous is not None and now - previous >= _SILENCE:
            self._resend_after_silence(now)
        self._received_since_sent += 1
        if self._received_since_sent >= _WINDOW // 2:
            # Acknowledge before the ack field no longer reaches the oldest of them (fast senders).
            self._ack_due_at = now
        if package._entries and self._ack_due_at is None:
            self._ack_due_at = now + self.ack_delay
        return self._inbound.receive(package._entries, package.event_floor)

    def handle_timer(self, now: float) -> None:
        """Detect lost packages and a lost connection; call when `get_timer()` says."""
        self._start(now)
        if self.status == _DISCONNECTED:
            return
        if self._in_flight:  # only packages with events are ever resent
            loss_deadline = self._retransmission_timeout()
            for sequence in [
                s
                for s, sent in self._sent.items()
                if sent.records and now >= sent.time + min(loss_deadline * sent.backoff, _MAX_BACKOFF)
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
        if self._ack_due_at is not None:
            deadlines.append(self._ack_due_at)
        if self._window_open() and (self._outbox or self._bulk):
            deadlines.append(earliest_send)
        if self._last_sent is not None:
            deadlines.append(max(earliest_send, self._last_sent + self.heartbeat_interval))
        else:
            deadlines.append(earliest_send)
        if self._in_flight:
            rto = self._retransmission_timeout()
            deadlines.extend(
                sent.time + min(rto * sent.backoff, _MAX_BACKOFF)
                for sent in self._sent.values()
                if sent.records
            )
        silent_since = self._last_received if self._last_received is not None else self._started_at
        if silent_since is not None:
            deadlines.append(silent_since + self.timeout)
        return min(deadlines)

    def settled(self) -> bool:
        """Whether the connection has nothing to send, no callback to run and no deadline that a received
        package could have brought forward: its driver can wait for the timer it set before."""
        return (
            self.status == _CONNECTED
            and self._ack_due_at is None
            and not self._calls
            and not self._outbox
            and not self._bulk
        )

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
        for record in [*self._outbox, *self._bulk]:
            self._give_up(record)
        self._sent.clear()
        self._in_flight = 0
        self._outbox.clear()
        self._bulk.clear()

    def _register_sequence(self, sequence: Sqn, now: float) -> None:
        if int(sequence) == 0:
            raise ValueError("a package's sequence number is never 0")
        if int(self.remote_sequence) == 0 or sequence > self.remote_sequence:
            if int(self.remote_sequence) != 0:
                shift = sequence - self.remote_sequence
                bits = (self._ack_bits << shift) | (1 << (shift - 1)) if shift <= _WINDOW else 0
                self._ack_bits = bits & 0xFFFFFFFF
                self.packages_expected += shift
            else:
                self.packages_expected += 1
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
        newest_sequence = int(ack)
        newest = self._pop_sent(newest_sequence)
        if newest is not None:
            self._on_delivered(newest)
            self._add_rtt_sample(max(0.0, now - newest.time - ack_delay / 10000), now)
        if not bits or not self._sent:
            return
        period = Sqn._max_sequence
        # Bit d - 1 stands for the package d before `ack`. Look at whichever is fewer: the packages still
        # waiting for an ack (usually a handful) or the set bits (up to 32).
        delivered = []
        if len(self._sent) < 8:
            for sequence in self._sent:
                distance = (newest_sequence - sequence) % period
                if 0 < distance <= _WINDOW and bits >> (distance - 1) & 1:
                    delivered.append(sequence)
        else:
            while bits:
                distance = (bits & -bits).bit_length()  # lowest set bit
                bits &= bits - 1
                delivered.append((newest_sequence - distance - 1) % period + 1)  # wraps past 1
        for sequence in delivered:
            sent = self._pop_sent(sequence)
            if sent is not None:
                self._on_delivered(sent)

    def _resend_after_silence(self, now: float) -> None:
        """The other side is heard again after a silence: events whose resend waits out a backoff that
        grew during the silence (up to seconds) go out at once instead."""
        rto = self._retransmission_timeout()
        for sequence in [
            s
            for s, sent in self._sent.items()
            if sent.records
            and now - sent.time >= rto
            and all(record.retries > 0 or record.done for record in sent.records)
        ]:
            self._lose(sequence)  # (a last attempt is left to its own deadline: it may still arrive)

    def _pop_sent(self, sequence: int) -> Optional[_SentPackage]:
        sent = self._sent.pop(sequence, None)
        if sent is not None and sent.records:
            self._in_flight -= 1
        return sent

    def _resolve(self, record: _OutgoingEvent) -> None:
        record.done = True
        if record.event_id:
            self._unresolved.pop(record.event_id, None)

    def _on_delivered(self, sent: _SentPackage) -> None:
        for record in sent.records:
            if record.done:
                continue
            self._resolve(record)
            group = record.group
            group.remaining -= 1
            if group.remaining == 0 and not group.finished:
                group.finished = True
                if group.ack_callback is not None:
                    if group.internal:
                        group.ack_callback()
                    else:
                        self._calls.append((group.ack_callback, self._ack_callback_args()))

    def _ack_callback_args(self) -> tuple:
        return ()

    def _lose(self, sequence: int) -> None:
        sent = self._pop_sent(sequence)
        if sent is None:
            return
        self.packages_lost += 1
        for record in sent.records:
            if record.done:
                continue
            if record.retries > 0:
                record.retries -= 1
                record.attempts += 1
                # Resent events go first, so the receiver's wait for a gap is short.
                (self._outbox if record.event_id else self._bulk).appendleft(record)
                logger.debug("resending event %r to %s", record.event.type, self.remote_address)
            else:
                self._give_up(record)

    def _give_up(self, record: _OutgoingEvent) -> None:
        if record.done:
            return
        self._resolve(record)
        group = record.group
        if group.finished:
            return
        group.finished = True
        for other in group.records:  # the other parts of a large event are useless now
            if not other.done:
                self._resolve(other)
        if group.timeout_callback is not None:
            if group.internal:
                group.timeout_callback()
            else:
                self._calls.append((group.timeout_callback, ()))
        elif not record.event.type.startswith(RESERVED_PREFIX) or record.event.type == PART_EVENT:
            # An event sent without retries may be lost: that was the sender's choice, not news.
            log = logger.warning if record.attempts else logger.debug
            log("event %r to %s was lost", record.event.type, self.remote_address)

    def _event_floor(self) -> int:
        for event_id in self._unresolved:
            return event_id  # ids were added in increasing order: the first is the lowest
        return self._next_event_id

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
        slack = 2 * self.ack_delay + (self.congested_interval if self.quality == "bad" else 0.0)
        return min(max(self.latency + 4 * self._rtt_variance + slack, 0.05), 2.0)

    def _earliest_send(self) -> float:
        """The earliest time the next package may go out (congestion avoidance)."""
        if self.quality == "good" or self._last_sent is None:
            return float("-inf")
        return self._last_sent + self.congested_interval

    def _window_open(self) -> bool:
        return self._in_flight < self.max_packages_in_flight

    def _send_due(self, now: float) -> bool:
        # An ack that is due goes out even while sending is throttled: the sender would take the event
        # for lost and send it again, which costs more than the ack.
        if self._ack_due_at is not None and now >= self._ack_due_at:
            return True
        if now < self._earliest_send():
            return False
        if (self._outbox or self._bulk) and self._window_open():
            return True
        return self._last_sent is None or now >= self._last_sent + self.heartbeat_interval

    def _new_header(self, now: float) -> Header:
        self.local_sequence = self.local_sequence + 1
        return Header._from_ints(int(self.local_sequence), int(self.remote_sequence), self._ack_bits)

    def _make_package(self, header: Header, now: float) -> Package:
        """Create the package to send; subclasses add their payload."""
        return Package(header)

    def _fill(self, package: Package, queue: collections.deque, records: list, datagram: bytes) -> bytes:
        """Move events from `queue` into `package` while it stays within one MTU; return the datagram."""
        while queue:
            record = queue[0]
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
        package.event_floor = self._event_floor()
        package.ack_delay = self._ack_delay(now)
        return package

    def _ack_delay(self, now: float) -> int:
        """How long, in 0.1 ms, the newest package from the other side has waited for this package's ack."""
        if self._last_received is None:
            return 0
        return min(int((now - self._remote_received_at) * 10000), 2**31)

    def _next_datagram(self, now: float) -> bytes:
        if not ((self._outbox or self._bulk) and self._window_open()):
            tail = self._plain_tail(now)
            if tail is not None:
                return self._seal(self._plain_datagram(now, tail), [], now)
        package = self._start_package(now)
        datagram = package.to_datagram()
        records: list[_OutgoingEvent] = []
        if self._window_open():
            for queue in (self._outbox, self._bulk):
                datagram = self._fill(package, queue, records, datagram)
        return self._seal(datagram, records, now)

    def _plain_tail(self, now: float) -> Optional[bytes]:
        """The bytes after the event floor of a package without events (the fields a subclass adds), or
        None if this package needs the general path after all. Subclasses add their fields."""
        return b""

    def _plain_datagram(self, now: float, tail: bytes) -> bytes:
        """A package without events, built straight into bytes: the same bytes `_start_package` and
        `Package.to_datagram` would give, for the packages sent most (heartbeats, acks, state updates)."""
        self.local_sequence = self.local_sequence + 1
        return (
            _header_bytes(int(self.local_sequence), int(self.remote_sequence), self._ack_bits)
            + _body_start(self._outgoing_fields, self._ack_delay(now), _NO_EVENTS, self._event_floor())
            + tail
        )

    def _notice_datagram(self, event: Event, now: float) -> bytes:
        """Return a package that carries `event` at once, outside the event order, flow control and
        congestion avoidance: a notice (such as the server's shutdown) that is sent once, not resent."""
        package = self._start_package(now)
        package._add_entry(event, 0)
        return self._seal(package.to_datagram(), [], now)

    def _seal(self, datagram: bytes, records: list, now: float) -> bytes:
        """Book a package as sent."""
        # A package that falls out of the ack window can no longer be acknowledged: it is lost.
        oldest = (int(self.local_sequence) - _WINDOW - 2) % Sqn._max_sequence + 1
        if oldest in self._sent:
            self._lose(oldest)
        self._sent[int(self.local_sequence)] = _SentPackage(now, records)
        if records:
            self._in_flight += 1
        self._last_sent = now
        self._ack_due_at = None
        self._received_since_sent = 0
        self.packages_sent += 1
        self.bytes_sent += len(datagram)
        return datagram


class _FreshGameState(LockedRessource):
    """A client's game state: an update that arrived is applied when the state is accessed."""

    def __init__(self, ressource: GameState, connection: ClientConnection) -> None:
        super().__init__(ressource)
        self._connection = connection

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Any]:
        with self.lock:
            self._connection._apply_pending(self.ressource)
            yield self.ressource


class ClientConnection(Connection):
    """Subclass of `Connection` to describe the client side of a PyGaSe connection.

    Client connections hold a copy of the game state which is continuously being updated according to
    state updates received from the server.

    Attributes:
        game_state_context (pygase.utils.LockedRessource): provides thread-safe access to a
            `pygase.GameState`
        server_closed (bool): True after the server said it shuts down; the connection then waits
            `timeout` seconds for the server to come back before it counts as disconnected
        updates_received (int): number of state updates received so far (the newest is applied when the
            state is next accessed)
    """

    _incoming_package = ServerPackage
    _outgoing_fields = ClientPackage._body_fields
    heartbeat_interval = 0.2
    #: Seconds between handshake messages while joining.
    handshake_interval = 0.25
    #: Seconds of silence after which a joined client also tries the handshake again (the server may
    #: have been replaced by a new one that does not know it).
    rejoin_after = 1.5
    #: Seconds a client that never heard from the server keeps trying while the network says that nothing
    #: listens at the server's address (it may be starting); after that, connecting fails. Once the
    #: server answered, such errors are ignored: a server that restarts refuses for a moment.
    refused_patience = 1.0
    #: Longest time in seconds a state update that arrived waits to be applied when nothing reads the
    #: state, so that the time order the client reports (and so the size of its updates) keeps up.
    report_interval = 0.5

    def __init__(self, remote_address: tuple, event_handler: Any, password: Optional[str] = None) -> None:
        super().__init__(remote_address, event_handler)
        self._password = password
        self._nonce = secrets.token_bytes(8)
        self._cookie: Optional[tuple[int, bytes]] = None
        self._joined = False
        self._rejoining = False
        self._leaving = False  # shutdown() was called: no new handshake, just the goodbye
        self._handshake_sent: Optional[float] = None
        #: the token that proves host rights, if the server made this client its host
        self.host_token: Optional[bytes] = None
        #: why the server refused this client ('wrong password', 'server full' ...), if it did
        self.refused_reason: Optional[str] = None
        self._answered = False  # a handshake reply from the server came at least once
        self._failure: Optional[tuple[type[OSError], str]] = None  # why connecting failed, if it did
        self._socket_error: Optional[OSError] = None  # the last error the socket reported
        self._pending: Optional[tuple[Sqn, bytes, bool]] = None  # newest update not yet applied
        self._pending_lock = threading.Lock()
        self.game_state_context: LockedRessource = _FreshGameState(GameState(), self)
        self._time_order = Sqn(0)
        self._reported_at = float("-inf")  # when an update was last applied just to report it
        #: called (without arguments) after each change of the game state
        self._on_state_change: Optional[Callable[[], None]] = None
        #: called with the game state, lock held, right after each change
        self._state_listeners: list[Callable[[GameState], Any]] = []
        self.updates_received = 0
        self.server_closed = False
        self._session: Optional[int] = None
        self._state_transfer: Optional[tuple[int, int, dict]] = None  # (id, parts, received parts)
        self._completed_transfer = 0  # id of the last state transfer put together
        self._handshake_changed = False  # a handshake message came since the last look at what is due

    # ---- handshake ----------------------------------------------------------------------------------

    def receive_datagram(self, datagram: bytes, now: float) -> list:
        """Take a datagram from the server (a handshake message or a package); return its new events."""
        if handshake.is_handshake(datagram):
            self._receive_handshake(handshake.parse(datagram), now)
            self._handshake_changed = True  # something may be due at once (the first package, say)
            return []
        if not self._joined:
            raise ValueError("a package before the handshake completed")
        package = ServerPackage._from_datagram_deferred(datagram)
        self.bytes_received += len(datagram)
        return self._receive_package(package, now)

    def _receive_handshake(self, message: handshake.HandshakeMessage, now: float) -> None:
        if message.nonce != self._nonce:
            raise ValueError("a handshake reply to no request of ours")
        self._answered = True
        if message.kind == "challenge":
            self._cookie = (message.window, message.cookie)
            self._handshake_sent = None  # answer at once
        elif message.kind == "welcome":
            if self._session is not None and message.session != self._session:
                self._restart_session()
            self._session = message.session
            self._start(now)
            self._joined, self._rejoining = True, False
            self._last_received = now
            self.server_closed = False
            self.status = _CONNECTED
            if message.host:
                self.host_token = message.token
            # Refuse at dispatch what the server would drop: its limit, if lower than ours.
            self.max_event_size = min(type(self).max_event_size, message.max_event_size)
            logger.info(
                "joined the server at %s%s", self.remote_address, " as its host" if message.host else ""
            )
        elif message.kind == "refused":
            self.refused_reason = handshake.REFUSED_REASONS.get(message.reason, "refused by the server")
            logger.info(
                "the server at %s refused to let us join: %s", self.remote_address, self.refused_reason
            )
            self._close()

    # ---- failing to connect -------------------------------------------------------------------------

    def receive_network_error(self, error: OSError, now: float) -> None:
        """Take an error the socket reported (an ICMP 'port unreachable' arrives as ConnectionRefusedError).

        A refusal ends a connection that never heard from the server once it lasts `refused_patience`
        seconds: nothing listens at that address. After the server answered, errors are only noted: a
        server that restarts refuses for a moment, and the client rejoins by itself.
        """
        self._start(now)
        self._socket_error = error
        if (
            self.status == _DISCONNECTED
            or self._answered
            or not isinstance(error, ConnectionRefusedError)
            or self._started_at is None
            or now < self._started_at + self.refused_patience
        ):
            return
        self._fail(
            ConnectionRefusedError,
            "nothing listens on that port (connection refused); is the server running, and is this its port?",
        )

    def handle_timer(self, now: float) -> None:
        """Detect lost packages and a lost connection (or a server that never let us join)."""
        was_open = self.status != _DISCONNECTED
        super().handle_timer(now)
        if was_open and self.status == _DISCONNECTED and self._session is None:
            if self._answered:
                detail = f"the server answered but did not let this client join within {self.timeout:g} s"
            else:
                detail = f"no answer within {self.timeout:g} s"
                if self._socket_error is not None:
                    detail += f" (last socket error: {self._socket_error})"
                detail += (
                    "; is the server running at that address and port, and does a firewall let UDP through?"
                )
            self._fail(TimeoutError, detail)

    def _fail(self, kind: type[OSError], detail: str) -> None:
        """End a connection that could not be established, keeping why (see `connect_error`)."""
        if self._failure is None and self.refused_reason is None and self._session is None:
            self._failure = (kind, detail)
            logger.info("cannot connect to %s:%s: %s", *self.remote_address[:2], detail)
        if self.status != _DISCONNECTED:
            self._close()

    def connect_error(self) -> Optional[OSError]:
        """Return a new exception that says why this connection ended before it joined, or None.

        `ConnectionRefusedError` if the server refused this client (see `refused_reason`) or nothing
        listens at its address, `TimeoutError` if nothing answered, `ConnectionError` if the socket could
        not be opened (a hostname that does not resolve, say). None while connecting, after joining
        (unless the server refuses a rejoin), and after `shutdown()`.
        """
        hostname, port = self.remote_address[:2]
        if self.refused_reason is not None:
            return ConnectionRefusedError(
                f"the server at {hostname}:{port} refused the connection: {self.refused_reason}"
            )
        if self._failure is not None:
            kind, detail = self._failure
            return kind(f"cannot connect to {hostname}:{port}: {detail}")
        return None

    def _begin_handshake(self) -> None:
        self._nonce = secrets.token_bytes(8)
        self._cookie = None
        self._handshake_sent = None

    def _handshake_datagram(self) -> bytes:
        if self._cookie is None:
            return handshake.hello(self._nonce)
        window, cookie = self._cookie
        return handshake.response(
            self._nonce, window, cookie, handshake.password_proof(self._password, cookie)
        )

    def _handshake_deadline(self) -> Optional[float]:
        if self._joined and not self._rejoining:
            return None
        if self._handshake_sent is None:
            return float("-inf")
        return self._handshake_sent + self.handshake_interval * (2 if self._rejoining else 1)

    def settled(self) -> bool:
        return (
            self._joined
            and not self._rejoining
            and not self._leaving
            and not self._handshake_changed
            and super().settled()
        )

    def datagrams_to_send(self, now: float) -> list:
        """Return the handshake message or the packages that are due now."""
        self._start(now)
        self._handshake_changed = False
        if self.status == _DISCONNECTED:
            return []
        last = self._last_received
        if (
            self._joined
            and not self._rejoining
            and not self._leaving
            and last is not None
            and now >= last + self.rejoin_after
        ):
            self._rejoining = True
            self._begin_handshake()
        datagrams = []
        deadline = self._handshake_deadline()
        if deadline is not None and now >= deadline:
            datagrams.append(self._handshake_datagram())
            self._handshake_sent = now
        if self._joined:
            datagrams.extend(super().datagrams_to_send(now))
        return datagrams

    def get_timer(self) -> Optional[float]:
        """Return when the connection next needs attention."""
        if self.status == _DISCONNECTED:
            return None
        silent_since = self._last_received if self._last_received is not None else self._started_at
        timers = [self._handshake_deadline()]
        if self._joined:
            timers.append(super().get_timer())
            if not self._rejoining and not self._leaving and self._last_received is not None:
                timers.append(self._last_received + self.rejoin_after)
        elif silent_since is not None:
            timers.append(silent_since + self.timeout)
        pending = [t for t in timers if t is not None]
        return min(pending) if pending else None

    # ---- packages -----------------------------------------------------------------------------------

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ServerPackage)
        if package.session != self._session:
            raise ValueError("a package from another server session")  # a late one from a previous server
        events = super()._receive_package(package, now)
        self.server_closed = False
        if package._update_bytes is not None:
            self._take_update(package.header.sequence, package._update_bytes, package.full_state)
        elif package.game_state_update is not None:
            self._apply_update(package.game_state_update, package.full_state)
        user_events = []
        for event in events:
            if event.type == STATE_PART_EVENT:
                self._take_state_part(event.handler_args)
            elif event.type == SHUTDOWN_EVENT:
                logger.info("the server at %s shut down; waiting for it to come back", self.remote_address)
                self.server_closed = True
                self.status = _CONNECTING
                self._joined = False
                self._begin_handshake()
            elif not event.type.startswith(RESERVED_PREFIX):
                user_events.append(event)
        return user_events

    def _restart_session(self) -> None:
        """The server restarted: start counting afresh and ask for the whole state."""
        logger.info("the server at %s restarted; synchronizing again", self.remote_address)
        self.remote_sequence = Sqn(0)
        self._ack_bits = 0
        self._inbound.reset()
        self._state_transfer = None
        self._completed_transfer = 0
        with self._pending_lock:
            self._pending = None
        self._time_order = Sqn(0)

    def _take_state_part(self, args: list) -> None:
        if not check_event_args(args, (int, int, int, bool, bytes)):
            logger.debug("dropping a malformed state part")
            return
        transfer_id, index, count, full_state, data = args
        if not 0 <= index < count or count * PART_SIZE > self.max_state_size + PART_SIZE:
            logger.warning("dropping a state part: the state is larger than max_state_size")
            return
        if transfer_id <= self._completed_transfer:
            return  # a resent part of a state we already have
        current = self._state_transfer
        if current is None or transfer_id > current[0]:
            current = self._state_transfer = (transfer_id, count, {})
        elif transfer_id < current[0] or count != current[1]:
            return  # part of an older transfer
        current[2][index] = data
        if len(current[2]) < count:
            return
        self._state_transfer = None
        self._completed_transfer = transfer_id
        try:
            update = GameStateUpdate._from_dict(_codec.unpack(b"".join(current[2][i] for i in range(count))))
        except ValueError as error:
            logger.warning("dropping a game state that does not decode: %s", error)
            return
        self._apply_update(update, full_state)

    def _take_update(self, sequence: Sqn, encoded: bytes, full_state: bool) -> None:
        """Keep the newest state update that arrived; it is decoded and applied when the state is next
        used (or at once, for state listeners), so a client nobody looks at decodes only the newest."""
        with self._pending_lock:
            pending = self._pending
            if pending is None or sequence > pending[0]:
                self._pending = (sequence, encoded, full_state)
        self.updates_received += 1
        if self._state_listeners:
            with self.game_state_context():
                pass  # applies it, and the listeners run
        if self._on_state_change is not None:
            self._on_state_change()

    def _apply_pending(self, game_state: GameState) -> None:
        """Apply the newest update that arrived, if any (the state lock is held)."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        _, encoded, full_state = pending
        try:
            update = GameStateUpdate._from_dict(_codec.unpack(encoded))
        except ValueError as error:
            logger.debug("dropping a state update that does not decode: %s", error)
            return
        self._apply_locked(game_state, update, full_state)

    def _apply_update(self, update: GameStateUpdate, full_state: bool) -> None:
        with self.game_state_context() as game_state:
            applied = self._apply_locked(game_state, update, full_state)
        if applied:
            self.updates_received += 1
            if self._on_state_change is not None:
                self._on_state_change()

    def _apply_locked(self, game_state: GameState, update: GameStateUpdate, full_state: bool) -> bool:
        if full_state and (int(self._time_order) == 0 or update.time_order > game_state.time_order):
            # The server sends the whole state when it cannot build a delta from what we have (or we have
            # nothing yet); a late copy of an older one is ignored like any stale update.
            game_state.__dict__.clear()
            game_state.__dict__.update(update.__dict__)
        elif not full_state and update.time_order > game_state.time_order:
            update._apply_to(game_state)
        else:
            return False
        self._time_order = game_state.time_order
        for listener in self._state_listeners:
            try:
                listener(game_state)
            except Exception:
                logger.exception("error in state listener %r", listener)
        return True

    def _make_package(self, header: Header, now: float) -> Package:
        self._apply_before_report(now)
        return ClientPackage(header, self._time_order)

    def _plain_tail(self, now: float) -> Optional[bytes]:
        self._apply_before_report(now)
        return _codec.pack(int(self._time_order))

    def _apply_before_report(self, now: float) -> None:
        """Every package reports the time order of the state we have; the server sends what we lack
        since then. A program that reads its state (every frame, say) has applied what arrived; for one
        that does not (a bot, a headless client) it is applied here, at most every `report_interval`
        seconds instead of once per package: every update builds on what was reported, so reporting an
        older time order costs only somewhat larger updates."""
        if self._pending is not None and now >= self._reported_at + self.report_interval:
            self._reported_at = now
            with self.game_state_context():
                pass  # applies it

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
        if not self._joined:
            self._close()  # nobody there to tell
            return
        self._leaving = True
        if shutdown_server and self.host_token is None:
            logger.warning("only the host may shut the server down: leaving without doing so")
            shutdown_server = False
        self.dispatch_event(
            Event(SHUTDOWN_EVENT, self.host_token) if shutdown_server else Event(DISCONNECT_EVENT),
            ack_callback=self._close,
            timeout_callback=self._close,
            retries=3,
        )

    async def loop(self) -> None:
        """Continuously operate the connection.

        This coroutine keeps sending and receiving packages and handling events until the connection is
        closed (by `shutdown`, or a server that stays silent for `timeout` seconds).
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

    A state update that fits in a datagram goes along with every package; a larger one (the whole state
    for a new client, say) travels in parts that are resent until they arrive, and the next update
    waits until it has.
    """

    _incoming_package = ClientPackage
    _outgoing_fields = ServerPackage._body_fields
    heartbeat_interval = 0.1
    #: Updates that encode to more bytes than this travel in parts.
    inline_state_limit = 900

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
        self.session = secrets.randbits(32)
        #: time order of the newest state sent to this client
        self._sent_time_order: Optional[Sqn] = None
        self._transfer_id = 0
        self._transfer: Optional[list] = None  # [time order, parts not yet acknowledged]
        self._pin: Optional[tuple[Sqn, object]] = None  # (time order, token) held in the store's cache

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ClientPackage)
        events = super()._receive_package(package, now)
        if package.header.sequence == self.remote_sequence:  # the newest package says what the client has
            self.last_client_time_order = package.time_order
            if self._pin is not None and package.time_order > self._pin[0]:
                self._release_pin()
        return events

    def _release_pin(self) -> None:
        if self._pin is not None:
            unpin = getattr(self.game_state_store, "_unpin", None)
            if unpin is not None:
                unpin(self._pin[1])
            self._pin = None

    def _close(self) -> None:
        super()._close()
        self._release_pin()

    def _ack_callback_args(self) -> tuple:
        return (self,)

    def settled(self) -> bool:
        return super().settled() and self._sent_time_order == _store_time_order(self.game_state_store)

    def _send_due(self, now: float) -> bool:
        if super()._send_due(now):
            return True
        # A newer state than this client was sent goes out at once (as far as congestion allows).
        return (
            self._transfer is None
            and self._sent_time_order != _store_time_order(self.game_state_store)
            and now >= self._earliest_send()
        )

    def _make_package(self, header: Header, now: float) -> Package:
        package = ServerPackage(header, None)
        package.session = self.session
        if self._transfer is None:
            inline = self._inline_update()
            if inline is not None:
                package._update_bytes, package.full_state = inline
        return package

    def _plain_tail(self, now: float) -> Optional[bytes]:
        if self._transfer is None:
            inline = self._inline_update()
            if self._transfer is not None:
                return None  # the update starts a transfer: this package carries its first parts
            if inline is not None:
                return _server_tail(inline[0], inline[1], self.session)
        return _server_tail(b"\xc0", False, self.session)  # no update

    def _inline_update(self) -> Optional[tuple[bytes, bool]]:
        """What the client lacks, as (encoded update, full state flag) if it fits in this package.

        Every package carries what the client lacks, measured from what it says it has, so a lost package
        costs nothing but the wait for the next one. An update too large for a package starts a transfer
        in parts instead (and None is returned), as does nothing to send.
        """
        time_order, update_bytes, full_state = _store_update_since(
            self.game_state_store, self.last_client_time_order
        )
        self._sent_time_order = time_order
        if update_bytes is None:
            return None
        if len(update_bytes) > self.inline_state_limit:
            self._start_transfer(time_order, update_bytes, full_state)
            return None
        return update_bytes, full_state

    def _start_transfer(self, time_order: Sqn, update_bytes: bytes, full_state: bool) -> None:
        self._transfer_id += 1
        count = (len(update_bytes) + PART_SIZE - 1) // PART_SIZE
        pin = getattr(self.game_state_store, "_pin", None)
        if pin is not None:
            # The next delta builds on this state, however long the transfer takes: keep it cached.
            self._release_pin()
            self._pin = (time_order, pin(time_order))
        transfer = self._transfer = [time_order, count]
        logger.debug(
            "sending a state of %d bytes to %s in %d parts", len(update_bytes), self.remote_address, count
        )

        def part_arrived() -> None:
            transfer[1] -= 1
            if transfer[1] == 0 and self._transfer is transfer:
                self._transfer = None
                if time_order > self.last_client_time_order:
                    self.last_client_time_order = time_order

        for index in range(count):
            chunk = update_bytes[index * PART_SIZE : (index + 1) * PART_SIZE]
            self._send_bulk(
                Event(STATE_PART_EVENT, self._transfer_id, index, count, full_state, chunk), part_arrived
            )

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


def _store_state(store: Any) -> GameState:
    getter = getattr(store, "get_game_state", None) or store.get_gamestate
    return getter()


def _store_time_order(store: Any) -> Sqn:
    fast = getattr(store, "_time_order", None)
    return fast() if fast is not None else _store_state(store).time_order


def _store_update_since(store: Any, time_order: Sqn) -> tuple:
    """(current time order, bytes of what a client at `time_order` lacks or None, full state flag).

    A `GameStateStore` answers this itself, with caching; any other store that has the documented
    methods (`get_game_state` or `get_gamestate`, `get_update_cache`) is asked through those.
    """
    fast = getattr(store, "_encoded_update_since", None)
    if fast is not None:
        return fast(time_order)
    state = _store_state(store)
    current = state.time_order
    if time_order == current:
        return current, None, False
    cache = list(store.get_update_cache())
    for index in range(len(cache) - 1, -1, -1):
        if int(time_order) != 0 and cache[index].time_order == time_order and cache[index + 1 :]:
            combined = cache[index + 1]
            for update in cache[index + 2 :]:
                combined = combined + update
            return combined.time_order, combined.to_bytes(), False
    public = {key: value for key, value in state.__dict__.items() if not key.startswith("_")}
    return current, _codec.pack(public), True
