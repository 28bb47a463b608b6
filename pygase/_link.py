"""The simulated bad link: `LinkConditions` and the one place that decides each datagram's fate.

`LinkConditions` (public as `pygase.testing.LinkConditions`, where the text syntax is described) holds
latency, jitter, loss and duplication and reads them from `PYGASE_SIMULATE`. `LinkConditions.delays`
draws what happens to one datagram; both simulators use it: `LinkSimulator` on a real socket
(`Client(simulate=...)`, `Server(simulate=...)`) and `pygase.testing.SimulatedNetwork` in memory.

This module imports nothing from pygase, so `pygase.client` and `pygase._transport` can use it without
pulling in the test harness.
"""

from __future__ import annotations

import math
import numbers
import os
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    import asyncio

__all__ = ["LINK_SYNTAX", "MAX_LATENCY", "SIMULATE_VARIABLE", "LinkConditions", "LinkSimulator"]

#: Environment variable that switches the network simulator on for every `Client` of a process,
#: e.g. `PYGASE_SIMULATE="loss=10%,latency=75ms"` (latency is one way: the round trip gets twice that).
SIMULATE_VARIABLE = "PYGASE_SIMULATE"

#: The syntax of link conditions as text, for error and help messages.
LINK_SYNTAX = (
    'name=value items separated by commas, e.g. "loss=10%,latency=75ms,jitter=10ms,duplication=1%": '
    "latency and jitter take ms or s (latency is one way; the round trip is twice that), "
    "loss and duplication take % or a fraction"
)

#: The most latency `LinkConditions` accepts, in seconds: more is surely a value in milliseconds.
MAX_LATENCY = 10.0

_TIMES = ("latency", "jitter")
_PROBABILITIES = ("loss", "duplication")
_VALUE = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)(ms|s|%)?", re.IGNORECASE)


@dataclass(frozen=True)
class LinkConditions:
    """How a simulated link treats each datagram.

    Attributes:
        latency: one-way delay in seconds
        jitter: each datagram's delay varies uniformly by up to this many seconds either way, which also
            reorders datagrams
        loss: probability that a datagram is dropped (0 to 1)
        duplication: probability that a datagram arrives twice (0 to 1)
    """

    latency: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    duplication: float = 0.0

    def __post_init__(self) -> None:
        for name in _TIMES + _PROBABILITIES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                unit = "seconds" if name in _TIMES else "a fraction between 0 and 1"
                raise ValueError(
                    f"{name} must be a number ({unit}), got {value!r}; "
                    f'LinkConditions.from_string reads text such as "loss=10%,latency=75ms"'
                )
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in _TIMES:
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")
            if value > MAX_LATENCY:
                raise ValueError(
                    f"{name}={value!r} is over {MAX_LATENCY:g} seconds: LinkConditions takes seconds, "
                    f"so 75 ms is {name}=0.075"
                )
        if self.jitter > self.latency:
            raise ValueError("jitter must not exceed latency (a datagram cannot arrive before it is sent)")
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"{name}={value!r} is not a probability between 0 and 1 (10 % is {name}=0.1)"
                )

    def __str__(self) -> str:
        """The conditions in the syntax `from_string` reads, e.g. "latency=75ms,loss=10%"."""
        items = [f"{name}={getattr(self, name) * 1000:g}ms" for name in _TIMES if getattr(self, name)]
        items += [f"{name}={getattr(self, name) * 100:g}%" for name in _PROBABILITIES if getattr(self, name)]
        return ",".join(items) or "latency=0ms"

    def delays(self, rng: random.Random) -> list:
        """Draw what happens to one datagram: the delay of each copy that arrives (none if it is lost)."""
        if rng.random() < self.loss:
            return []
        copies = 2 if rng.random() < self.duplication else 1
        return [self.latency + rng.uniform(-self.jitter, self.jitter) for _ in range(copies)]

    @classmethod
    def from_string(cls, text: str) -> LinkConditions:
        """Parse link conditions such as `"loss=10%,latency=75ms,jitter=10ms,duplication=1%"`.

        Any subset of the four names, in any order (see `pygase.testing`). `latency` and `jitter`
        take `ms` or `s`; latency is one way, the round trip is twice that. `loss` and `duplication`
        take `%` or a fraction. A number without a unit is read as seconds or a fraction, and only
        accepted below 1: `latency=150` is refused rather than read as 150 seconds.

        Raises:
            ValueError: for anything else, with a message that shows the accepted syntax
        """
        values: dict[str, float] = {}
        for item in str(text).replace(" ", "").split(","):
            if not item:
                continue
            name, equals, value = item.partition("=")
            name = name.lower()
            if not equals or name not in _TIMES + _PROBABILITIES:
                raise ValueError(
                    f"{item!r} is not one of latency=, jitter=, loss=, duplication=. Expected {LINK_SYNTAX}"
                )
            if name in values:
                raise ValueError(f"{name} is given twice in {text!r}. Expected {LINK_SYNTAX}")
            values[name] = _parse_value(name, value)
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{error}. Expected {LINK_SYNTAX}") from None

    @classmethod
    def from_environment(cls) -> Optional[LinkConditions]:
        """Read `PYGASE_SIMULATE` (see `from_string`); None if it is not set or empty.

        Raises:
            ValueError: naming the variable and the accepted syntax, if it cannot be read
        """
        text = os.environ.get(SIMULATE_VARIABLE, "").strip()
        if not text:
            return None
        try:
            return cls.from_string(text)
        except ValueError as error:
            raise ValueError(f"environment variable {SIMULATE_VARIABLE}={text!r}: {error}") from None


def _parse_value(name: str, text: str) -> float:
    """One value of `LinkConditions.from_string`: in seconds for times, as a fraction for probabilities."""
    item = f"{name}={text}"
    match = _VALUE.fullmatch(text)
    if match is None:
        wanted = "a time such as 75ms or 0.075s" if name in _TIMES else "a probability such as 10% or 0.1"
        raise ValueError(f"{item!r}: {name} takes {wanted}. Expected {LINK_SYNTAX}")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    if name in _TIMES:
        if unit == "%":
            raise ValueError(f"{item!r}: {name} is a time, in ms or s. Expected {LINK_SYNTAX}")
        if not unit and abs(number) >= 1:
            hint = f"{name}={match.group(1)}ms"
            if abs(number) <= MAX_LATENCY:
                hint += f" or {name}={match.group(1)}s"
            raise ValueError(
                f"{item!r} has no unit: write {hint} (a bare number is read as seconds only below 1). "
                f"Expected {LINK_SYNTAX}"
            )
        seconds = number / 1000 if unit == "ms" else number
        if seconds > MAX_LATENCY:
            raise ValueError(
                f"{item!r} is over {MAX_LATENCY:g} s, more than a simulated link delays. "
                f"Expected {LINK_SYNTAX}"
            )
        return seconds
    if unit in ("ms", "s"):
        raise ValueError(f"{item!r}: {name} is a probability, in % or as a fraction. Expected {LINK_SYNTAX}")
    if unit == "%":
        return number / 100
    if abs(number) >= 1:
        hint = f"{name}=1% or {name}=100%" if number == 1 else f"{name}={match.group(1)}%"
        raise ValueError(
            f"{item!r} has no unit: write {hint} (a bare number is a fraction, accepted below 1). "
            f"Expected {LINK_SYNTAX}"
        )
    return number


class LinkSimulator:
    """Delay, drop and duplicate datagrams on a real socket as `LinkConditions` say."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conditions: Any, seed: Optional[int] = None) -> None:
        self._loop = loop
        self.conditions = conditions
        self._random = random.Random(seed)

    def pass_on(self, function: Callable[..., None], *args: Any) -> None:
        """Call `function(*args)` after the link's delay, maybe twice, maybe never."""
        for delay in self.conditions.delays(self._random):
            if delay <= 0:
                function(*args)
            else:
                self._loop.call_later(delay, function, *args)
