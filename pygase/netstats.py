"""Network statistics of a client: round trip time, update rate, loss and bandwidth.

`Client.statistics()` returns a `ConnectionStatistics`, computed from the connection's counters over the
last couple of seconds.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Any, Optional

from pygase.connection import ConnectionStatus

__all__ = ["ConnectionStatistics", "StatisticsMeter"]

_COUNTERS = (
    "bytes_received",
    "bytes_sent",
    "packages_received",
    "packages_expected",
    "packages_sent",
    "packages_lost",
    "updates_received",
)


@dataclass(frozen=True)
class ConnectionStatistics:
    """A snapshot of how a connection performs.

    Attributes:
        status: 'Disconnected', 'Connecting' or 'Connected'
        quality: 'good' or 'bad' (sending is throttled while it is bad)
        rtt: round trip time in seconds
        update_rate: game state updates applied per second
        loss_in: share of the other side's packages that did not arrive (0 to 1)
        loss_out: share of our packages that were not acknowledged (0 to 1)
        kbps_in: kilobits per second received
        kbps_out: kilobits per second sent
        packages_in: packages received per second
        packages_out: packages sent per second
        route: 'direct', or 'relay' when a relay forwards the datagrams (a room joined through a relay
            whose routers could not be punched through)
    """

    status: str
    quality: str
    rtt: float
    update_rate: float
    loss_in: float
    loss_out: float
    kbps_in: float
    kbps_out: float
    packages_in: float
    packages_out: float
    route: str = "direct"


class StatisticsMeter:
    """Turn a connection's cumulative counters into rates over a sliding window.

    Arguments:
        window: length of the window in seconds
    """

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._samples: collections.deque = collections.deque()
        self._connection: Any = None

    def sample(self, connection: Any, now: Optional[float] = None) -> ConnectionStatistics:
        """Record the counters of `connection` at `now` and return the statistics over the window."""
        now = time.monotonic() if now is None else now
        if connection is not self._connection:
            self._connection = connection
            self._samples.clear()
        counters = tuple(getattr(connection, name, 0) for name in _COUNTERS)
        samples = self._samples
        if not samples or now - samples[-1][0] >= 0.1:
            samples.append((now, counters))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        then, old = samples[0]
        span = now - then
        delta = dict(zip(_COUNTERS, (new - before for new, before in zip(counters, old))))

        def rate(name: str) -> float:
            return delta[name] / span if span > 0 else 0.0

        expected, sent = delta["packages_expected"], delta["packages_sent"]
        return ConnectionStatistics(
            status=ConnectionStatus.get(connection.status),
            quality=connection.quality,
            rtt=connection.latency,
            update_rate=rate("updates_received"),
            loss_in=max(0.0, 1 - delta["packages_received"] / expected) if expected > 0 else 0.0,
            loss_out=min(1.0, delta["packages_lost"] / sent) if sent > 0 else 0.0,
            kbps_in=rate("bytes_received") * 8 / 1000,
            kbps_out=rate("bytes_sent") * 8 / 1000,
            packages_in=rate("packages_received"),
            packages_out=rate("packages_sent"),
            route=getattr(connection, "route", None) or "direct",
        )
