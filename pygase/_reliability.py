"""Reliable events and the ack window: what is in flight, what arrived, what to resend, what to give up.

Part of the protocol core: no sockets, threads or clocks. Events the user dispatches go out in order and
are resent (with back-off) until acknowledged or out of retries. The parts of a large state are resent
until they arrive, outside the event order and this window: `pygase._transfer` sends them. State updates
are never resent: every package carries what the other side lacks.

- `ReceiveWindow`: the sequence numbers received, as the newest and a bit field of the 32 before it (and,
  to tell a package that arrives late from a copy, of the `HISTORY` before it).
- `Reliability`: the outgoing side: queues, packages awaiting an ack, resends, callbacks.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Iterator, Optional

from pygase._event_order import PART_EVENT
from pygase._outputs import CallbackDue
from pygase._ratelimit import RateLimitedLog
from pygase.errors import DuplicateSequenceError, ProtocolError
from pygase.event import RESERVED_PREFIX, Event
from pygase.utils import Sqn

logger = logging.getLogger("pygase.connection")

#: Packages the ack bit field covers.
WINDOW = 32
#: Packages before the newest whose arrival the receiver remembers: one that arrives later than this (behind
#: as many newer ones) is refused, as it cannot be told from a copy. More than `WINDOW`, for parts of a
#: large state (`pygase._transfer`), which the link may reorder further than that and which are
#: acknowledged by reports of their own.
HISTORY = 256
_HISTORY_MASK = (1 << HISTORY) - 1
#: Packages sent after one that is still awaited at which it counts as lost whatever acks may come (acks
#: that reach no further than `WINDOW` back take it for lost as soon as one comes from past it).
MEMORY = 1024
_LATE_KEPT = 64  # late packages kept to be acknowledged apart, at most (`_transfer.LATE_REPORTED`)
#: Longest wait in seconds before an unacknowledged event is resent.
MAX_BACKOFF = 2.0
_PERIOD = Sqn._max_sequence


def sequences_named(newest: int, bits: int) -> list:
    """The sequence numbers an ack bit field names: bit d - 1 of `bits` stands for the package d before
    `newest` (wrapping past 1), lowest bit first."""
    named = []
    while bits:
        distance = (bits & -bits).bit_length()  # lowest set bit
        bits &= bits - 1
        named.append((newest - distance - 1) % _PERIOD + 1)
    return named


class ReceiveWindow:
    """Which packages arrived: the newest sequence number and a bit for each of the `WINDOW` before it.

    Bit d - 1 of `bits` stands for the package d before `newest` (the header's ack field); `seen` holds
    the same for the `HISTORY` before it.
    """

    __slots__ = ("newest", "bits", "seen", "unsent", "newest_at", "expected", "late")

    def __init__(self) -> None:
        self.newest = Sqn(0)
        self.bits = 0
        self.seen = 0
        #: packages that arrived behind more than `WINDOW` newer ones (the ack field does not reach them),
        #: to be acknowledged apart; the owner takes them
        self.late: list[int] = []
        self.unsent = 0  # like `bits`, for the packages no ack field sent so far named (see `sent`)
        self.newest_at = 0.0  # when the newest package arrived (for the ack delay we report)
        self.expected = 0  # packages the other side sent, going by their sequence numbers

    def register(self, sequence: Sqn, now: float) -> None:
        """Note the arrival of package `sequence`.

        Raises:
            ProtocolError: for sequence number 0, which is never sent
            DuplicateSequenceError: if it arrived before or is too old to tell
        """
        value = int(sequence)
        if value == 0:
            raise ProtocolError("a package's sequence number is never 0")
        # (every package received comes this way: plain ints instead of Sqn's wrap-aware operators)
        period = Sqn._max_sequence
        if not 0 < value <= period:
            Sqn(value)  # raises ValueError
        newest = int(self.newest)
        if newest == 0:
            self.expected += 1
            self.newest = int.__new__(Sqn, value)
            self.newest_at = now
            return
        ahead = (value - newest) % period  # how far `sequence` is ahead of `newest`, wrap-aware
        if ahead > period // 2:
            ahead -= period
        if ahead > 0:
            seen = ((self.seen << ahead) | (1 << (ahead - 1))) & _HISTORY_MASK if ahead <= HISTORY else 0
            self.seen = seen
            self.bits = seen & 0xFFFFFFFF
            unsent = self.unsent
            if unsent:
                # Packages the ack field leaves before any package named them: acknowledged apart.
                escaped = sequences_named(value - WINDOW, unsent << ahead >> WINDOW)
                self.late += escaped[: max(0, _LATE_KEPT - len(self.late))]
                unsent = (unsent << ahead) & 0xFFFFFFFF
            self.unsent = unsent | 1 << (ahead - 1)
            self.expected += ahead
            self.newest = int.__new__(Sqn, value)
            self.newest_at = now
            return
        distance = -ahead
        if distance == 0:
            raise DuplicateSequenceError(f"package {value} was received before")
        if distance > HISTORY:
            raise DuplicateSequenceError(f"package {value} is too old to tell if it is new")
        bit = 1 << (distance - 1)
        if self.seen & bit:
            raise DuplicateSequenceError(f"package {value} was received before")
        self.seen |= bit
        if distance <= WINDOW:
            self.bits |= bit
            self.unsent |= bit
        elif len(self.late) < _LATE_KEPT:
            self.late.append(value)

    def sent(self) -> None:
        """An ack field went out: it named the packages received so far."""
        self.unsent = 0

    def reset(self) -> None:
        """Start counting afresh (the other side restarted)."""
        self.newest = Sqn(0)
        self.bits = 0
        self.seen = 0
        self.late = []


class OutgoingEvent:
    """An event on its way to the other side, with what to do when it arrives or is lost."""

    __slots__ = ("event", "event_id", "group", "retries", "attempts", "done")

    def __init__(self, event: Event, event_id: int, group: Dispatch, retries: int) -> None:
        self.event = event
        self.event_id = event_id
        self.group = group
        self.retries = retries
        self.attempts = 0
        self.done = False


class Dispatch:
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
        self.records: list[OutgoingEvent] = []


class SentPackage:
    """A package sent and not yet acknowledged or lost, with the events it carries."""

    __slots__ = ("time", "records", "backoff")

    def __init__(self, time: float, records: list) -> None:
        self.time = time
        self.records = records
        # Each resend of the same event waits twice as long, so a silent link does not use up retries.
        self.backoff = 2 ** min(max(r.attempts for r in records), 6) if records else 1


class Reliability:
    """The outgoing side of a connection: events queued, packages in flight, resends and give-ups.

    User callbacks (`ack_callback`, `timeout_callback`) are not run here: they are reported as
    `CallbackDue` in `outputs` (the owner's list) for the driver. `callback_args` are passed to ack
    callbacks.
    """

    def __init__(self, peer: Any, outputs: list, callback_args: tuple = ()) -> None:
        self._peer = peer  # who is on the other side, for log lines
        self._outputs = outputs
        self._callback_args = callback_args
        self.outbox: collections.deque[OutgoingEvent] = collections.deque()
        self.sent: dict[int, SentPackage] = {}
        self.in_flight = 0  # packages in `sent` that carry events
        # Packages with events taken for lost whose ack may still come: a late ack still proves that their
        # events arrived (events that may be queued or in flight again, or out of retries and waiting).
        self._presumed_lost: dict[int, SentPackage] = {}
        self.next_event_id = 1
        self._unresolved: dict[int, OutgoingEvent] = {}  # by id, oldest first
        self.lost = 0  # packages with or without events that were never acknowledged
        self._now = 0.0  # the latest time the owner told (for the throttled log lines)
        self._log = RateLimitedLog(logger)

    # ---- queueing --------------------------------------------------------------------------------

    def dispatch(
        self,
        pieces: list,
        ack_callback: Optional[Callable[..., Any]],
        timeout_callback: Optional[Callable[..., Any]],
        retries: int,
    ) -> None:
        """Queue an event (as the parts `pieces`) in the event order."""
        group = Dispatch(ack_callback, timeout_callback)
        for piece in pieces:
            record = OutgoingEvent(piece, self.next_event_id, group, retries)
            self._unresolved[self.next_event_id] = record
            self.next_event_id += 1
            group.records.append(record)
            self.outbox.append(record)
        group.remaining = len(group.records)

    def queued(self) -> bool:
        return bool(self.outbox)

    def event_floor(self) -> int:
        """The lowest event id still unresolved: the other side need not wait for any event below it."""
        for event_id in self._unresolved:
            return event_id  # ids were added in increasing order: the first is the lowest
        return self.next_event_id

    # ---- sending ---------------------------------------------------------------------------------

    def book(self, sequence: int, now: float, records: list, round_trip: float = 0.0) -> None:
        """Note package `sequence` as sent at `now` with the events `records` (`round_trip`: the current
        estimate, in seconds)."""
        self._now = now
        sent = self.sent
        # A package with events that `WINDOW` packages sent after it overtook, and whose ack is overdue by
        # the round trip, is lost (the other side acknowledges each package it takes with the next ones).
        # Many packages in flight at once (a large state in parts) may overtake it sooner than its ack can
        # come back: then it waits for the ack that passes it (see `acknowledge`) or for its timeout.
        behind = (sequence - WINDOW - 2) % _PERIOD + 1
        package = sent.get(behind)
        if package is not None and package.records and now - package.time >= round_trip:
            self.lose(behind)
        # A package `MEMORY` packages old is lost (acks that reach past it took it for lost long before;
        # this bounds what is kept while no acks come at all).
        oldest = (sequence - MEMORY - 2) % _PERIOD + 1
        if oldest in sent:
            self.lose(oldest)
        if self._presumed_lost:
            # An ack of a package taken for lost may still be on its way, sent before the other side had
            # the newer packages; for one twice as old it is no longer waited.
            self._presumed_lost.pop((oldest - MEMORY - 1) % _PERIOD + 1, None)
        sent[sequence] = SentPackage(now, records)
        if records:
            self.in_flight += 1

    # ---- acknowledgements and losses -------------------------------------------------------------

    def acknowledge(self, ack: Sqn, bits: int) -> Optional[SentPackage]:
        """Take the acks of a package from the other side; return the newest acknowledged package if it
        was still awaited or taken for lost (its send time gives an RTT sample)."""
        sent_packages, presumed_lost = self.sent, self._presumed_lost
        if int(ack) == 0 or not (sent_packages or presumed_lost):
            return None
        newest_sequence = int(ack)
        newest = self._pop_acknowledged(newest_sequence)
        if newest is not None and newest.records:
            self._delivered(newest)
        self._lose_unreachable(newest_sequence)
        if not bits or not (sent_packages or presumed_lost):
            return newest
        # Look at whichever is fewer: the packages still waiting for an ack (a handful, or as many as
        # were sent since the other side last sent a package) or the set bits (up to 32). This runs for
        # every package received.
        delivered: list = []
        if len(sent_packages) + len(presumed_lost) < bin(bits).count("1"):
            for sequence in (*sent_packages, *presumed_lost):
                distance = (newest_sequence - sequence) % _PERIOD
                if 0 < distance <= WINDOW and bits >> (distance - 1) & 1:
                    delivered.append(sequence)
        else:
            delivered = sequences_named(newest_sequence, bits)
        for sequence in delivered:
            sent = sent_packages.pop(sequence, None)
            if sent is None:
                sent = presumed_lost.pop(sequence, None)
                if sent is None:
                    continue
                self.lost -= 1
            elif sent.records:
                self.in_flight -= 1
            if sent.records:
                self._delivered(sent)
        return newest

    def _lose_unreachable(self, newest: int) -> None:
        """Packages more than `WINDOW` before the newest acknowledged one that this ack did not name can
        no longer be acknowledged (the other side acks the newest and the `WINDOW` before it): lost."""
        unreachable = []
        for sequence in self.sent:  # (in the order sent)
            distance = (newest - sequence) % _PERIOD
            if distance <= WINDOW or distance > _PERIOD // 2:
                break
            unreachable.append(sequence)
        for sequence in unreachable:
            self.lose(sequence)

    def _pop_acknowledged(self, sequence: int) -> Optional[SentPackage]:
        """The package `sequence` an ack answers: one awaited, or one taken for lost whose ack came late.

        A late ack still proves that the package's events arrived. Without it, a round trip longer than
        the resend wait (which is at most `MAX_BACKOFF`: a flooded server that answers late, a slow link)
        takes every package with events for lost: the events are resent until out of retries and then
        given up although they arrived, and a large event is given up whole, its unsent parts never sent.
        """
        sent = self._pop(sequence)
        if sent is None:
            sent = self._presumed_lost.pop(sequence, None)
            if sent is not None:
                self.lost -= 1
        return sent

    def acknowledge_late(self, sequences: list) -> None:
        """Take acks of packages that arrived too late for the ack field (behind more than `WINDOW` newer
        ones), which the other side reports apart (see `pygase._transfer`)."""
        for sequence in sequences:
            sent = self._pop_acknowledged(sequence)
            if sent is not None and sent.records:
                self._delivered(sent)

    def resend_deadlines(self, timeout: float) -> Iterator[float]:
        """When each package with events in flight counts as lost, with `timeout` the base wait."""
        for sent in self.sent.values():
            if sent.records:
                yield sent.time + min(timeout * sent.backoff, MAX_BACKOFF)

    def detect_losses(self, now: float, timeout: float) -> None:
        """Count packages with events that waited too long for an ack as lost (their events resent)."""
        self._now = now
        if not self.in_flight:
            return
        for sequence in [
            s
            for s, sent in self.sent.items()
            if sent.records and now >= sent.time + min(timeout * sent.backoff, MAX_BACKOFF)
        ]:
            self.lose(sequence)

    def resend_after_silence(self, now: float, timeout: float) -> None:
        """The other side is heard again after a silence: events whose resend waits out a backoff that
        grew during the silence (up to seconds) go out at once instead."""
        self._now = now
        for sequence in [
            s
            for s, sent in self.sent.items()
            if sent.records
            and now - sent.time >= timeout
            and all(record.retries > 0 or record.done for record in sent.records)
        ]:
            self.lose(sequence)  # (a last attempt is left to its own deadline: it may still arrive)

    def lose(self, sequence: int) -> None:
        """Package `sequence` is lost: resend its events that have retries left, give up the others."""
        sent = self._pop(sequence)
        if sent is None:
            return
        self.lost += 1
        self._presumed_lost[sequence] = sent  # its ack may still come (then it counts as lost no more)
        for record in sent.records:
            if record.done:
                continue
            if record.retries > 0:
                record.retries -= 1
                record.attempts += 1
                # Resent events go first, so the receiver's wait for a gap is short.
                self.outbox.appendleft(record)
                self._log.debug(
                    "resend", self._now, "resending event %.80r to %s", record.event.type, self._peer
                )
            else:
                self._give_up(record)

    def close(self) -> None:
        """The connection ends: give up everything still queued or in flight."""
        for sent in self.sent.values():
            for record in sent.records:
                self._give_up(record)
        for record in self.outbox:
            self._give_up(record)
        self.sent.clear()
        self._presumed_lost.clear()
        self.in_flight = 0
        self.outbox.clear()

    def _pop(self, sequence: int) -> Optional[SentPackage]:
        sent = self.sent.pop(sequence, None)
        if sent is not None and sent.records:
            self.in_flight -= 1
        return sent

    def _resolve(self, record: OutgoingEvent) -> None:
        record.done = True
        if record.event_id:
            self._unresolved.pop(record.event_id, None)

    def _delivered(self, sent: SentPackage) -> None:
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
                        self._outputs.append(CallbackDue(group.ack_callback, self._callback_args))

    def _give_up(self, record: OutgoingEvent) -> None:
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
                self._outputs.append(CallbackDue(group.timeout_callback, ()))
        elif not record.event.type.startswith(RESERVED_PREFIX) or record.event.type == PART_EVENT:
            # An event sent without retries may be lost: that was the sender's choice, not news.
            level = logging.WARNING if record.attempts else logging.DEBUG
            self._log.log(
                level, "lost", self._now, "event %.80r to %s was lost", record.event.type, self._peer
            )
