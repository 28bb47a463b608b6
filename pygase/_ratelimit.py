"""Log lines that someone on the network can cause, at most a few per kind and interval.

A client (or a stranger) can make a server log at wire speed: 53 forged shutdown events in one datagram
are 53 warnings, and a flood of such datagrams fills the disk and takes the CPU. `RateLimitedLog` lets a
burst of lines of one kind (its key) through, then one every `interval` seconds; the next line that
gets through says how many were left out. Keys are kinds of line (the call site), not senders, so a
flood from many addresses is held back as well; at most `max_keys` keys are remembered (the oldest is
forgotten first), so the limiter's own memory is bounded too.

The protocol core has no clock: it passes the `now` it was given. Drivers and game-side code may leave
`now` out, and the monotonic clock is read.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Log through `logger`, at most `burst` lines of each key at once and one more every `interval` s.

    Arguments:
        logger: where the lines go
        interval: seconds it takes to earn one more line of a key
        burst: lines of a key that may come at once (after a quiet spell)
        max_keys: keys remembered; the oldest is forgotten when a new one comes
    """

    __slots__ = ("_logger", "_interval", "_burst", "_max_keys", "_keys")

    def __init__(
        self, logger: logging.Logger, interval: float = 10.0, burst: int = 1, max_keys: int = 256
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._burst = burst
        self._max_keys = max_keys
        # key -> [lines it may log now, when that was counted, lines left out since the last one]
        self._keys: dict[Any, list] = {}

    def log(
        self, level: int, key: Any, now: Optional[float], message: str, *args: Any, exc_info: bool = False
    ) -> bool:
        """Log `message % args` at `level` unless lines of `key` came too often; return whether it was.

        A line that gets through after some were left out ends with how many; `exc_info` as in `logging`.
        """
        if not self._logger.isEnabledFor(level):
            return False
        if now is None:
            now = time.monotonic()
        entry = self._keys.get(key)
        if entry is None:
            if len(self._keys) >= self._max_keys:
                del self._keys[next(iter(self._keys))]
            entry = self._keys[key] = [float(self._burst), now, 0]
        else:
            # (A clock that went back, such as a new simulated session's, earns nothing.)
            earned = max(now - entry[1], 0.0) / self._interval
            entry[0] = min(float(self._burst), entry[0] + earned)
            entry[1] = now
        if entry[0] < 1.0:
            entry[2] += 1
            return False
        entry[0] -= 1.0
        if entry[2]:
            message += " [%d more like this were not logged]"
            args = (*args, entry[2])
            entry[2] = 0
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key: Any, now: Optional[float], message: str, *args: Any) -> bool:
        return self.log(logging.WARNING, key, now, message, *args)

    def info(self, key: Any, now: Optional[float], message: str, *args: Any) -> bool:
        return self.log(logging.INFO, key, now, message, *args)

    def debug(self, key: Any, now: Optional[float], message: str, *args: Any) -> bool:
        return self.log(logging.DEBUG, key, now, message, *args)
