"""Events exactly once and in order, and events larger than a datagram, for one direction of a connection.

The sender numbers its events 1, 2, 3 ... and tells the receiver in every package the lowest number it may
still send (its floor). The receiver hands events on in number order, holds back those that arrive
early, drops those it has seen, and stops waiting for a number once the floor has passed it (the sender
gave that event up). An event too large for one datagram travels as numbered parts and is put together
again on the other side. No sockets and no clock here.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from pygase import _codec
from pygase.event import RESERVED_PREFIX, Event

logger = logging.getLogger("pygase.connection")

#: Event type of one part of a large event: args are [index, count, bytes].
PART_EVENT = RESERVED_PREFIX + "part"
#: Largest piece of a large event (or game state) put in one datagram, in bytes.
PART_SIZE = 1000
#: Events that encode to more bytes than this are split into parts.
INLINE_EVENT_LIMIT = 1100
#: Most events held back waiting for a gap before order is given up for the sake of memory.
MAX_HELD = 4096


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


class InboundEvents:
    """The receiving end of one event stream.

    Arguments:
        max_event_size: largest event in bytes accepted as parts; larger ones are dropped and logged
    """

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self.reset()

    def reset(self) -> None:
        """Forget everything (the other side started afresh)."""
        self._next: Optional[int] = None
        self._held: dict[int, Event] = {}
        self._parts: Optional[list[bytes]] = None
        self._part_count = 0

    def receive(self, entries: list, floor: int) -> list:
        """Take the (event, id) entries of one package and its floor; return events ready for handling.

        Entries with id 0 are outside the order and returned at once.
        """
        ready: list[Event] = []
        if self._next is None:
            self._next = floor
        for event, event_id in entries:
            if event_id == 0:
                ready.append(event)
            elif event_id >= self._next and event_id not in self._held:
                self._held[event_id] = event
        if floor > self._next:
            # Everything below the floor was delivered or given up: stop waiting for the gaps.
            for event_id in sorted(i for i in self._held if i < floor):
                self._release(self._held.pop(event_id), ready)
            self._next = floor
        while self._next in self._held:
            self._release(self._held.pop(self._next), ready)
            self._next += 1
        if len(self._held) > MAX_HELD:
            logger.warning(
                "more than %d events wait for a missing one: handing them on out of order", MAX_HELD
            )
            for event_id in sorted(self._held):
                self._release(self._held.pop(event_id), ready)
            self._next = event_id + 1
        return ready

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
            logger.debug("dropping a malformed event part")
            return None
        index, count, data = args
        if count < 1 or count * PART_SIZE > self.max_event_size + PART_SIZE or not 0 <= index < count:
            logger.warning("dropping a large event of %d parts: larger than max_event_size", count)
            self._parts = None
            return None
        if index == 0:
            self._parts, self._part_count = [], count
        if self._parts is None or index != len(self._parts) or count != self._part_count:
            self._parts = None
            return None
        self._parts.append(data)
        if len(self._parts) < count:
            return None
        encoded, self._parts = b"".join(self._parts), None
        try:
            return Event._from_wire(_codec.unpack(encoded))
        except ValueError as error:
            logger.debug("dropping a large event that does not decode: %s", error)
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
