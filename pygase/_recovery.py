"""Round-trip time, retransmission timeout, link quality and pacing of one connection.

Part of the protocol core: no sockets, threads or clocks (time comes in as `now`). A connection owns one
`Recovery` and feeds it RTT samples from acknowledgements; the connection's settings (`latency_threshold`,
`congested_interval`, `ack_delay`, see `pygase.connection.Connection`) are read from the owner when used,
so changing them on a connection takes effect at once.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Optional

logger = logging.getLogger("pygase.connection")

#: Seconds a quality that just turned 'good' must hold before a flap doubles the recovery time.
_STABLE = 10.0
_FIRST_RECOVERY, _MIN_RECOVERY, _MAX_RECOVERY = 2.0, 1.0, 60.0
_FIRST_TIMEOUT, _MIN_TIMEOUT, _MAX_TIMEOUT = 0.5, 0.05, 2.0
#: RTT samples a connection takes before its quality is judged: the first one alone says little (when many
#: clients join at once, their first acks wait behind each other's handshakes) and starts the estimate.
_WARM_UP_SAMPLES = 4
#: Seconds after the start before quality is judged at all: the round trips of a burst of joins (every
#: client's handshake keeping the server busy) say nothing about the link.
_JUDGE_AFTER = 2.0
#: Quality follows the smallest RTT sample of this many seconds (and at least `_QUALITY_SAMPLES` samples,
#: at most `_QUALITY_MAX_SAMPLES`): only a latency that lasts is a slow link.
_QUALITY_WINDOW, _QUALITY_SAMPLES, _QUALITY_MAX_SAMPLES = 1.0, 3, 64


class Recovery:
    """The RTT estimate (smoothed, with its variance) and what follows from it for one connection.

    Quality is 'good' or 'bad' (judged from the fourth RTT sample on, and from `_JUDGE_AFTER` seconds after
    the start): 'bad' while every RTT sample of the last `_QUALITY_WINDOW` seconds (and at least the last
    `_QUALITY_SAMPLES`) is above the owner's `latency_threshold`, and until the RTT has stayed below for a
    recovery time that doubles when the quality flaps (up to 60 s) and halves after 10 s of good quality.
    While it is 'bad', packages go out at most every `congested_interval` seconds. A link that is slow stays
    above the threshold; a moment in which one side stalls (a busy server, a garbage collection in a client
    process) gives a few late samples, which would lift the smoothed RTT over the threshold on their own but
    not the smallest.
    """

    __slots__ = (
        "_owner",
        "latency",
        "quality",
        "_variance",
        "_has_sample",
        "_samples",
        "_recovery_time",
        "_good_since",
        "_below_since",
        "_recent",
        "_started_at",
        "_recovered",
    )

    def __init__(self, owner: Any) -> None:
        self._owner = owner  # the connection, for its settings and its address in log lines
        self.latency = 0.0
        self.quality = "good"
        self._variance = 0.0
        self._has_sample = False
        self._samples = 0
        self._recovery_time = _FIRST_RECOVERY
        self._good_since: Optional[float] = None
        self._below_since: Optional[float] = None
        self._recent: collections.deque = collections.deque()  # (time, RTT sample) of the quality window
        self._started_at: Optional[float] = None
        self._recovered = False  # whether the quality was 'bad' and came back (a flap doubles the wait)

    def start(self, now: float) -> None:
        """The connection starts: quality counts as good from now."""
        self._started_at = now
        self._good_since = now

    def add_sample(self, sample: float, now: float) -> None:
        """Take one round-trip time measured at `now` (seconds, the other side's ack delay taken off)."""
        if not self._has_sample:
            self.latency = sample
            self._variance = sample / 2
            self._has_sample = True
        else:
            self._variance = 0.75 * self._variance + 0.25 * abs(self.latency - sample)
            self.latency = 0.875 * self.latency + 0.125 * sample
        self._samples += 1
        recent = self._recent
        recent.append((now, sample))
        while len(recent) > _QUALITY_SAMPLES and (
            now - recent[0][0] > _QUALITY_WINDOW or len(recent) > _QUALITY_MAX_SAMPLES
        ):
            recent.popleft()
        if self._samples >= _WARM_UP_SAMPLES and (
            self._started_at is None or now - self._started_at >= _JUDGE_AFTER
        ):
            self._update_quality(now)

    def _update_quality(self, now: float) -> None:
        high = min(sample for _, sample in self._recent) > self._owner.latency_threshold
        if self.quality == "good":
            good_since = self._good_since if self._good_since is not None else now
            if high:
                self.quality = "bad"
                self._below_since = None
                if self._recovered and now - good_since < _STABLE:  # (it flaps)
                    self._recovery_time = min(2 * self._recovery_time, _MAX_RECOVERY)
                logger.info(
                    "connection to %s: latency %.0f ms, throttling sends",
                    self._owner.remote_address,
                    1000 * self.latency,
                )
            elif now - good_since >= _STABLE:
                self._recovery_time = max(self._recovery_time / 2, _MIN_RECOVERY)
                self._good_since = now
        elif high:
            self._below_since = None
        elif self._below_since is None:
            self._below_since = now
        elif now - self._below_since >= self._recovery_time:
            self.quality = "good"
            self._good_since = now
            self._recovered = True
            logger.info("connection to %s: latency back to normal", self._owner.remote_address)

    def retransmission_timeout(self) -> float:
        """Seconds after which a package that carries events and was not acknowledged counts as lost."""
        if not self._has_sample:
            return _FIRST_TIMEOUT
        owner = self._owner
        slack = 2 * owner.ack_delay + (owner.congested_interval if self.quality == "bad" else 0.0)
        return min(max(self.latency + 4 * self._variance + slack, _MIN_TIMEOUT), _MAX_TIMEOUT)

    def earliest_send(self, last_sent: Optional[float]) -> float:
        """The earliest time the next package may go out after one sent at `last_sent`."""
        if self.quality == "good" or last_sent is None:
            return float("-inf")
        return last_sent + self._owner.congested_interval
