"""A large state on its way in parts: which part to send when (server), and which parts arrived (client).

Part of the protocol core: no sockets, threads or clocks (time comes in as `now`).

A state update too large for one package travels as parts: `STATE_PART_EVENT` entries outside the event
order (id 0), [transfer id, index, count, full state flag, up to `PART_SIZE` bytes], one per package.
Which parts arrived the client says in a `PARTS_HELD_EVENT` entry (id 0, never resent: each report is
whole) in the next package it sends after a part arrived:

    [transfer id, first missing index, bitmap, late packages]

Every part below the first missing index arrived; bit k of the bitmap (byte k // 8, bit k % 8) stands for
part `first + 1 + k`, and the bitmap reaches at most `REPORT_REACH` parts. A transfer the client put
together is reported with the first missing index equal to the count. These reports do not depend on the
32-package ack field of the header, so many more parts than 32 packages can be in flight (and the link
may reorder them). Late packages are the sequence numbers of packages (any, not only those with parts)
that arrived behind more than 32 newer ones, which the header's ack field no longer reaches: acks of their
own (`Reliability.acknowledge_late`), so that they do not count as lost (transfer id 0 when that is all a
report says). The server also takes the header's acks of packages that carried parts, so parts reach a
client that does not report (it only gets them more slowly). The header and the package body are
unchanged: a server of this version serves older clients; an older server ignores the reports.

How many parts are in flight (`PartsSender.window`) follows what arrives, never the clock: a few round
trips' worth of the parts that arrive (`_GAIN` times the highest arrival rate of the last round trips times
the shortest round trip), at least `INITIAL_WINDOW`, at most `MAX_WINDOW`. As long as the link takes more,
more arrives, and the window grows by about half each round trip (a little less at 20 % loss). Once parts
queue somewhere (a slow receiver's socket buffer, a full link), which shows as round trips over twice the
shortest, only `_QUEUED_GAIN` round trips' worth stays in flight: a receiver gets little more than it
takes. Random loss does not shrink it (20 % loss is not congestion); a retransmission timeout without any
report (`detect_losses`) starts it over from `INITIAL_WINDOW` and doubles the wait for the next one.

Parts go out paced (those sent again too), at three times the arrival rate, in bursts of `INITIAL_WINDOW`
at most. A part is taken for lost, and sent again before any new one, when a part sent later (by more than
a quarter of the shortest round trip, or than round trips spread: reordering) was reported, or when no
report came for it within the retransmission timeout (at the tail of a transfer, when no later part can
tell, within a little over the round trip). At the tail of a transfer on a lossy link (more than 5 % of
the parts lost), each of the last `_COPIED_TAIL` parts in flight goes out twice.
"""

from __future__ import annotations

import collections
from typing import Optional

from pygase._event_order import check_event_args
from pygase.event import RESERVED_PREFIX, Event

#: Internal event by which a client reports the parts of a transfer it holds: [transfer id, first missing
#: index, bitmap of the parts after it, late packages] (see the module doc).
PARTS_HELD_EVENT = RESERVED_PREFIX + "held"
#: Parts in flight when a transfer starts (and after a round trip without reports): the fixed window
#: of PyGaSe before 0.4, which any receiver takes.
INITIAL_WINDOW = 24
#: Parts after the first missing one that a report covers (and so how far beyond the first missing part
#: the server sends): a bitmap of up to 256 bytes, as long as the parts held after the first missing one
#: reach (a window's worth: some 64 bytes for 512 parts in flight).
REPORT_REACH = 2048
#: The most parts in flight at once.
MAX_WINDOW = 512
_GAIN = 3.0  # the window, in shortest round trips' worth of parts arriving
_PACING_GAIN = 3.0  # parts go out at most this many times the rate at which they arrive
_QUEUED_GAIN = 1.25  # the window while round trips show a queue: twice the shortest and more
_QUEUE_SLACK = 0.002  # seconds a round trip may take beyond twice the shortest without showing a queue
_COPIED_TAIL = 64  # parts in flight at most, at the tail of a lossy transfer, for each to go twice
_PACKAGE_MEMORY = 1024  # packages whose acks are still matched to the parts they carried
#: Late packages a report names at most.
LATE_REPORTED = 64


class PartsSender:
    """The server's side of one transfer: parts to send, in flight, arrived, lost; window and pacing.

    Arguments:
        count: how many parts the transfer has
        now: when it starts
    """

    def __init__(self, count: int, now: float) -> None:
        self.count = count
        self.remaining = count  # parts not yet known to have arrived
        self.window = float(INITIAL_WINDOW)
        self._arrived = bytearray(count)
        self._missing = (1 << count) - 1  # bit i: part i not known to have arrived
        self._next_new = 0  # the first part never sent
        self._first_missing = 0  # as the client last reported
        self._lost: collections.deque[int] = collections.deque()  # to send again, before new parts
        self._copied: set[int] = set()  # parts in flight sent twice (see `_copy`)
        self._sends = 0
        self._losses = 0  # parts taken for lost
        # in flight: index -> (send time, parts arrived when it was sent, sent before)
        self._in_flight: dict[int, tuple[float, int, bool]] = {}
        self._by_package: dict[int, list[int]] = {}  # package sequence -> parts it carried
        self._delivered = 0
        self._min_rtt = float("inf")
        self._srtt = 0.0  # smoothed round trip of parts (0: no sample yet), and its variation
        self._rttvar = 0.0
        self._rates: collections.deque[tuple[float, float]] = collections.deque()  # (time, parts/s)
        self._best_rate = 0.0  # the highest arrival rate measured (parts a second)
        self._next_send = float("-inf")  # pacing: the earliest time the next new part may go
        self._newest_reported_send = float("-inf")  # the latest send time of a part reported (RACK)
        self._backoff = 1  # the retransmission timeout's multiple (doubles with each silent timeout)
        self._last_progress = now

    @property
    def in_flight(self) -> int:
        """Parts sent and neither reported nor taken for lost."""
        return len(self._in_flight)

    @property
    def delivered(self) -> int:
        """Parts known to have arrived."""
        return self._delivered

    # ---- sending ---------------------------------------------------------------------------------

    def _pending(self) -> bool:
        """Whether a part waits to be sent (window and pacing aside)."""
        lost = self._lost
        while lost and (self._arrived[lost[0]] or lost[0] in self._in_flight):
            lost.popleft()  # (it arrived, or went again, meanwhile)
        if lost:
            return True
        if self._next_new < self.count:
            return self._next_new < self._first_missing + REPORT_REACH
        return self._copy() is not None

    def _copy(self) -> Optional[int]:
        """At the tail of a transfer on a lossy link, a part in flight to send a second copy of."""
        lossy = self._losses * 20 > self._sends  # (over 5 % of the parts sent were lost)
        if not lossy or len(self._in_flight) > _COPIED_TAIL:
            return None
        copied = self._copied
        for index in self._in_flight:  # (a handful)
            if index not in copied:
                return index
        return None

    def ready_at(self) -> Optional[float]:
        """When the next part may go out (None: nothing to send, or the window is full)."""
        if len(self._in_flight) >= self.window or not self._pending():
            return None
        return self._next_send

    def next_part(self) -> int:
        """The index of the part to send next (call only when `ready_at` allows)."""
        if self._lost:
            return self._lost[0]
        if self._next_new < self.count:
            return self._next_new
        copy = self._copy()
        assert copy is not None
        return copy

    def sent(self, index: int, sequence: int, now: float) -> None:
        """Part `index` went out at `now` in package `sequence`."""
        rate = self._pacing_rate()
        if rate:  # (bursts of up to `INITIAL_WINDOW` parts)
            self._next_send = max(self._next_send, now - INITIAL_WINDOW / rate) + 1.0 / rate
        self._sends += 1
        by_package = self._by_package
        by_package.setdefault(sequence, []).append(index)
        if len(by_package) > _PACKAGE_MEMORY:
            del by_package[next(iter(by_package))]
        if self._lost and self._lost[0] == index:
            self._lost.popleft()
            again = True
        elif index == self._next_new:
            self._next_new = index + 1
            again = False
        else:
            self._copied.add(index)  # a second copy: the part in flight keeps the time of the first
            return
        self._in_flight[index] = (now, self._delivered, again)

    def _pacing_rate(self) -> float:
        if self._best_rate <= 0.0:
            return 0.0
        return _PACING_GAIN * self._best_rate

    # ---- what arrived ----------------------------------------------------------------------------

    def report(self, first_missing: int, bitmap: bytes, now: float) -> None:
        """Take a client's report of the parts it holds (see the module doc)."""
        first_missing = min(first_missing, self.count)
        self._first_missing = max(self._first_missing, first_missing)
        # (the parts this report is news of, as bits of an int: reports repeat what earlier ones said)
        new = self._missing & (
            (int.from_bytes(bitmap, "little") << (first_missing + 1)) | ((1 << first_missing) - 1)
        )
        arrived = []
        while new:
            lowest = new & -new
            arrived.append(lowest.bit_length() - 1)
            new ^= lowest
        if arrived:
            self._take(arrived, now)

    def package_acked(self, sequences: list, now: float) -> None:
        """The header acknowledged these packages: the parts they carried arrived."""
        arrived: list[int] = []
        for sequence in sequences:
            arrived.extend(i for i in self._by_package.pop(sequence, ()) if not self._arrived[i])
        if arrived:
            self._take(arrived, now)

    def _take(self, indices: list, now: float) -> None:
        newest: Optional[tuple[float, int, bool]] = None
        for index in indices:
            if self._arrived[index]:
                continue
            self._arrived[index] = 1
            self._missing ^= 1 << index
            self.remaining -= 1
            self._delivered += 1
            record = self._in_flight.pop(index, None)
            self._copied.discard(index)
            if record is not None and (newest is None or record[0] > newest[0]):
                newest = record
        if newest is None:
            return
        self._backoff = 1
        self._last_progress = now
        send_time, delivered_then, again = newest
        if not again:
            self._rtt_sample(max(now - send_time, 1e-4))
        if now - send_time >= 0.8 * self._min_rtt:  # (a part sent again may have arrived the first time)
            self._newest_reported_send = max(self._newest_reported_send, send_time)
            self._sample_rate((self._delivered - delivered_then) / max(now - send_time, 1e-4), now)
        # Parts that wait in a queue (a slow receiver's socket buffer, a full link) make the round trip
        # longer than the shortest: then only a little more than a round trip's worth is in flight.
        # (a queue grows the round trip steadily, jitter spreads it: more than 3 variations over the shortest)
        over = self._srtt - self._min_rtt - _QUEUE_SLACK
        queued = over > self._min_rtt or over > 3 * self._rttvar
        if self._best_rate and self._min_rtt < float("inf"):
            target = (_QUEUED_GAIN if queued else _GAIN) * self._best_rate * self._min_rtt
            self.window = min(max(target, INITIAL_WINDOW), MAX_WINDOW)
        self._find_reordered_losses()

    def _rtt_sample(self, rtt: float) -> None:
        self._min_rtt = min(self._min_rtt, rtt)
        if not self._srtt:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt

    def _sample_rate(self, rate: float, now: float) -> None:
        rates = self._rates
        horizon = now - max(4 * self._min_rtt, 0.2)
        while rates and rates[0][0] < horizon:
            rates.popleft()
        while rates and rates[-1][1] <= rate:
            rates.pop()  # (a sliding maximum: older, smaller samples can never be the maximum)
        rates.append((now, rate))
        self._best_rate = rates[0][1]

    def _find_reordered_losses(self) -> None:
        """Parts sent well before one that was reported are lost (as in RACK): by more than a quarter of the
        shortest round trip, or than round trips spread (jitter reorders parts by that much)."""
        spread = self._srtt + 2 * self._rttvar - self._min_rtt
        limit = self._newest_reported_send - max(self._min_rtt / 4, spread)
        lost = []
        for index, record in self._in_flight.items():  # (in the order they were sent)
            if record[0] >= limit:
                break
            lost.append(index)
        self._lose(lost)

    def _lose(self, indices: list) -> None:
        for index in indices:
            del self._in_flight[index]
            self._copied.discard(index)
            self._lost.append(index)
        self._losses += len(indices)

    # ---- timeouts --------------------------------------------------------------------------------

    def _wait(self, timeout: float) -> float:
        """How long a part waits for its report before it counts as lost: the retransmission timeout, or
        at the tail of a transfer (nothing new left to send, so no later part can tell of a loss) a little
        over the shortest round trip: a part sent again for nothing costs less than the wait."""
        wait = timeout * self._backoff
        if self._next_new >= self.count and self._backoff == 1:
            min_rtt = self._min_rtt
            wait = min(wait, max(1.5 * min_rtt, min_rtt + 0.01, self._srtt + 2 * self._rttvar))
        return min(wait, 2.0)

    def deadline(self, timeout: float) -> Optional[float]:
        """When the oldest part in flight counts as lost, with `timeout` the retransmission timeout."""
        if not self._in_flight:
            return None
        oldest = next(iter(self._in_flight.values()))[0]  # (in the order they were sent)
        return oldest + self._wait(timeout)

    def detect_losses(self, now: float, timeout: float) -> None:
        """Take parts that waited a retransmission timeout for a report as lost; if no part arrived in that
        time, start the window over and wait twice as long next time (the link may be down)."""
        wait = self._wait(timeout)
        expired = []
        for index, record in self._in_flight.items():  # (in the order they were sent)
            if now < record[0] + wait:
                break
            expired.append(index)
        if not expired:
            return
        self._lose(expired)
        if now - self._last_progress >= wait:
            self.window = float(INITIAL_WINDOW)
            self._rates.clear()
            self._best_rate = 0.0
            self._backoff = min(2 * self._backoff, 64)


class PartsReceived:
    """The client's side of one transfer: the parts that arrived so far, and the report of them."""

    __slots__ = ("transfer_id", "count", "parts", "_held", "first_missing")

    def __init__(self, transfer_id: int, count: int) -> None:
        self.transfer_id = transfer_id
        self.count = count
        self.parts: dict[int, bytes] = {}
        self._held = 0  # bit i: part i arrived
        self.first_missing = 0

    def add(self, index: int, data: bytes) -> bool:
        """Keep part `index`; return whether all parts are there."""
        if index not in self.parts:
            self.parts[index] = data
            self._held |= 1 << index
            while self.first_missing in self.parts:
                self.first_missing += 1
        return len(self.parts) == self.count

    def joined(self) -> bytes:
        return b"".join(self.parts[index] for index in range(self.count))

    def report(self, late: list) -> Event:
        """The `PARTS_HELD_EVENT` that tells the server which parts arrived (and the `late` packages)."""
        first = self.first_missing
        after = self._held >> (first + 1) & ((1 << REPORT_REACH) - 1)
        bitmap = after.to_bytes((after.bit_length() + 7) // 8, "little")
        return Event(PARTS_HELD_EVENT, self.transfer_id, first, bitmap, late)


def completed_report(transfer_id: int, count: int, late: list) -> Event:
    """The report of a transfer put together whole (or of none, id 0: only `late` packages)."""
    return Event(PARTS_HELD_EVENT, transfer_id, count, b"", late)


def parse_report(args: list, max_sequence: int) -> Optional[tuple[int, int, bytes, list]]:
    """(transfer id, first missing index, bitmap, late packages) of a report's args, or None if they are
    malformed."""
    if not check_event_args(args, (int, int, bytes, list)):
        return None
    transfer_id, first, bitmap, late = args
    if first < 0 or len(bitmap) > REPORT_REACH // 8 or len(late) > LATE_REPORTED:
        return None
    for sequence in late:
        if type(sequence) is not int or not 0 < sequence <= max_sequence:
            return None
    return transfer_id, first, bitmap, late
