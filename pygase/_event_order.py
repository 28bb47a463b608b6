"""Events exactly once and in order, and events larger than a datagram, for one direction of a connection.

The sender numbers its events 1, 2, 3 ... and tells the receiver in every package the lowest number it may
still send (its floor). The receiver hands events on in number order, holds back those that arrive
early, drops those it has seen, and stops waiting for a number once the floor has passed it (the sender
gave that event up). An event too large for one datagram travels as numbered parts and is put together
again on the other side. No sockets and no clock here.

Events that arrive early are held back until their turn, and a sender can make a receiver hold many: it
need only never send the one they wait for. What they may take is bounded in bytes (decoded, estimated
from the wire size), per stream and for all streams of a server together (`HeldBudget`). A package whose
events do not fit is refused before it is acknowledged: to its sender it is lost, and it resends what it
must. So nothing acknowledged is dropped and the order holds; an honest sender that loses a package only
waits longer (its packages in order always pass, as they hold nothing back).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from pygase import _codec
from pygase._ratelimit import RateLimitedLog
from pygase.event import RESERVED_PREFIX, Event

logger = logging.getLogger("pygase.connection")

#: Event type of one part of a large event: args are [index, count, bytes].
PART_EVENT = RESERVED_PREFIX + "part"
#: Largest piece of a large event (or game state) put in one datagram, in bytes.
PART_SIZE = 1000
#: Events that encode to more bytes than this are split into parts.
INLINE_EVENT_LIMIT = 1100
#: Decoded bytes an event may take per byte it had on the wire, at most: nests of one-entry maps take about
#: 111 (a datagram of 1,800 bytes decodes to some 200 KB); the bytes of a part take one.
DECODED_PER_WIRE_BYTE = 128
#: What an event held back takes besides its data: the event, its type, args and kwargs, its entry.
HELD_OVERHEAD = 512
#: Estimated bytes of events one stream holds back (besides twice `max_event_size` for parts of large ones);
#: a package with the event they wait for may take it to twice that (see `InboundEvents.admit`).
HELD_BYTES = 4 * 1024 * 1024
#: Estimated bytes of events all the clients of a server together make it hold back (a `HeldBudget`).
TOTAL_HELD_BYTES = 32 * 1024 * 1024


def split_event(event: Event, encoded: bytes) -> list:
    """Return the events to send for `event` (whose bytes are `encoded`): itself, or its parts if it is
    too large for a datagram."""
    if len(encoded) <= INLINE_EVENT_LIMIT:
        return [event]
    count = (len(encoded) + PART_SIZE - 1) // PART_SIZE
    return [
        Event(PART_EVENT, index, count, encoded[index * PART_SIZE : (index + 1) * PART_SIZE])
        for index in range(count)
    ]


class HeldBudget:
    """Estimated bytes of held-back events that several streams share (the clients of one server)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = TOTAL_HELD_BYTES) -> None:
        self.limit = limit
        self.used = 0


def held_size(event: Event) -> int:
    """A bound on the memory a decoded event takes: its wire size times `DECODED_PER_WIRE_BYTE`, or for a
    part of a large event the bytes it carries (plus `HELD_OVERHEAD`)."""
    args = event.handler_args
    if event.type == PART_EVENT and not event.handler_kwargs and check_event_args(args, (int, int, bytes)):
        return len(args[2]) + HELD_OVERHEAD
    try:
        wire = len(_codec.pack(event._to_wire()))
    except Exception:  # (whatever decoded packs again; this is only for safety) the most a package has
        wire = 2048
    return wire * DECODED_PER_WIRE_BYTE + HELD_OVERHEAD


class InboundEvents:
    """The receiving end of one event stream.

    Arguments:
        max_event_size: largest event in bytes accepted as parts; larger ones are dropped and logged
        shared: the budget for held-back events this stream shares with others, if any (see `share`)
    """

    def __init__(self, max_event_size: int, shared: Optional[HeldBudget] = None) -> None:
        self.max_event_size = max_event_size
        self.shared = shared
        self.held_bytes = 0  # estimated bytes of the events held back
        self._log = RateLimitedLog(logger)
        self._now = 0.0  # the time of the latest package, for the throttled log lines
        self.reset()

    @property
    def held_limit(self) -> int:
        """Estimated bytes of events this stream may hold back."""
        return HELD_BYTES + 2 * self.max_event_size

    def share(self, budget: Optional[HeldBudget]) -> None:
        """Count the events held back against `budget` (shared with other streams) from now on."""
        if self.shared is not None:
            self.shared.used -= self.held_bytes
        self.shared = budget
        if budget is not None:
            budget.used += self.held_bytes

    def reset(self) -> None:
        """Forget everything (the other side started afresh, or the connection ended)."""
        if self.shared is not None:
            self.shared.used -= self.held_bytes
        self.held_bytes = 0
        self._next: Optional[int] = None
        self._held: dict[int, Event] = {}
        self._cost: dict[int, int] = {}  # estimated bytes of each event held back, by id
        self._parts: Optional[list[bytes]] = None
        self._part_count = 0
        self._part_bytes = 0  # bytes of the parts of the large event put together so far

    def admit(self, entries: list, floor: int, now: float, peer: Any = None) -> Optional[dict]:
        """Whether the (event, id) entries of a package fit before it is acknowledged: the estimated bytes
        of those it would leave held back, by id, or None if they do not fit in this stream's limit or
        the shared budget. A package refused must not be acknowledged (it is lost, to the sender)."""
        self._now = now
        costs, growth, progress = self._plan(entries, floor)
        # Over the limits, a package with the event the others wait for is still taken while what is held
        # stays under twice the limits: refusing it could leave an honest sender, whose resends mix old
        # and new events, unable to close the gap.
        slack = 2 if progress else 1
        shared = self.shared
        if not costs or (
            self.held_bytes + growth <= slack * self.held_limit
            and (shared is None or shared.used + growth <= slack * shared.limit)
        ):
            return costs
        self._log.info(
            "held back",
            now,
            "%s makes us hold back %d KB of events waiting for a missing one: refusing more until it comes",
            peer,
            self.held_bytes // 1024,
        )
        return None

    def _plan(self, entries: list, floor: int) -> tuple[dict, int, bool]:
        """The estimated bytes of the events a package would leave held back, by id; by how much the bytes
        held back would grow (those it lets through may free some); whether it lets any through."""
        start = floor if self._next is None else max(self._next, floor)
        held = self._held
        new: dict[int, Event] = {}
        for event, event_id in entries:
            if event_id >= start and event_id not in held and event_id not in new:
                new[event_id] = event  # (the first of an id is the one kept)
        if not new:
            return {}, 0, False
        after = start  # the first id still missing once this package is taken
        while after in new or after in held:
            after += 1
        costs = {event_id: held_size(event) for event_id, event in new.items() if event_id > after}
        if not costs:
            return costs, 0, True
        progress = after > start or (self._next is not None and floor > self._next)
        return costs, sum(costs.values()) - self._freed_below(after), progress

    def _freed_below(self, after: int) -> int:
        """Estimated bytes of the held events with an id below `after` (handed on when it is next)."""
        cost = self._cost
        if not cost or self._next is None:
            return 0
        if after - self._next <= len(cost):
            return sum(cost.get(event_id, 0) for event_id in range(self._next, after))
        return sum(size for event_id, size in cost.items() if event_id < after)

    def receive(self, entries: list, floor: int, held: Optional[dict] = None) -> list:
        """Take the (event, id) entries of one package and its floor; return events ready for handling.

        Entries with id 0 are outside the order and returned at once. `held` is what `admit` said of the
        package (the estimated bytes of the events it leaves held back).
        """
        if held is None:
            held = self._plan(entries, floor)[0]
        ready: list[Event] = []
        if self._next is None:
            self._next = floor
        for event, event_id in entries:
            if event_id == 0:
                ready.append(event)
            elif event_id >= self._next and event_id not in self._held:
                self._held[event_id] = event
                size = held.get(event_id)
                if size:
                    self._cost[event_id] = size
                    self._charge(size)
        if floor > self._next:
            # Everything below the floor was delivered or given up: stop waiting for the gaps.
            for event_id in sorted(i for i in self._held if i < floor):
                self._release(self._pop(event_id), ready)
            self._next = floor
        while self._next in self._held:
            self._release(self._pop(self._next), ready)
            self._next += 1
        return ready

    def _charge(self, size: int) -> None:
        self.held_bytes += size
        if self.shared is not None:
            self.shared.used += size

    def _pop(self, event_id: int) -> Event:
        size = self._cost.pop(event_id, 0)
        if size:
            self._charge(-size)
        return self._held.pop(event_id)

    def _release(self, event: Event, ready: list) -> None:
        if event.type != PART_EVENT:
            self._parts = None  # a part went missing (given up): that large event is lost
            ready.append(event)
            return
        whole = self._take_part(event.handler_args)
        if whole is not None:
            ready.append(whole)

    def _take_part(self, args: list) -> Optional[Event]:
        if not check_event_args(args, (int, int, bytes)):
            self._log.debug("malformed part", self._now, "dropping a malformed event part")
            return None
        index, count, data = args
        if count < 1 or count * PART_SIZE > self.max_event_size + PART_SIZE or not 0 <= index < count:
            self._log.warning(
                "too many parts",
                self._now,
                "dropping a large event of %d parts: larger than max_event_size",
                count,
            )
            self._parts = None
            return None
        if index == 0:
            self._parts, self._part_count, self._part_bytes = [], count, 0
        if self._parts is None or index != len(self._parts) or count != self._part_count:
            self._parts = None
            return None
        # The parts are counted, and so are their bytes: parts larger than the sender's make it larger too.
        self._part_bytes += len(data)
        if self._part_bytes > self.max_event_size:
            self._log.warning(
                "too large",
                self._now,
                "dropping a large event: more than max_event_size (%d bytes) in its first %d parts",
                self.max_event_size,
                index + 1,
            )
            self._parts = None
            return None
        self._parts.append(data)
        if len(self._parts) < count:
            return None
        encoded, self._parts = b"".join(self._parts), None
        try:
            return Event._from_wire(_codec.unpack(encoded))
        except ValueError as error:
            self._log.debug(
                "undecodable", self._now, "dropping a large event that does not decode: %s", error
            )
            return None


def check_event_args(args: Any, shapes: tuple) -> bool:
    """Check that `args` is a list whose items have the given types (bool is not an int here)."""
    if not isinstance(args, list) or len(args) != len(shapes):
        return False
    for value, shape in zip(args, shapes):
        if shape is int and isinstance(value, bool):
            return False
        if not isinstance(value, shape):
            return False
    return True
