"""What the protocol core reports: one typed output, for every driver.

A core (`pygase._connection.Connection` and its subclasses, `pygase._server_core.ServerCore`) takes
datagrams, time and calls, and reports everything that follows from them as these small frozen objects,
in order, through one method: `events()`, which returns and forgets them. Datagrams to send are the
other output (`datagrams_to_send`, `datagrams_for`); nothing else leaves the core.

`deliver` hands a batch of outputs to an `OutputSink`: the asyncio transport and the simulator in
`pygase.testing` each implement one, so both drive the core the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union

from pygase.event import Event

__all__ = [
    "EventReceived",
    "CallbackDue",
    "ClientJoined",
    "ClientLeft",
    "ShutdownRequested",
    "Output",
    "OutputSink",
    "deliver",
]


@dataclass(frozen=True)
class EventReceived:
    """A user event arrived, in order, exactly once (`address`: the sender; a client's server)."""

    event: Event
    address: Optional[tuple]


@dataclass(frozen=True)
class CallbackDue:
    """A user's `ack_callback` or `timeout_callback` is to be run with `args`."""

    function: Callable[..., Any]
    args: tuple


@dataclass(frozen=True)
class ClientJoined:
    """A client completed the handshake (server side)."""

    address: tuple


@dataclass(frozen=True)
class ClientLeft:
    """A client left, timed out or was cut off (server side)."""

    address: tuple


@dataclass(frozen=True)
class ShutdownRequested:
    """The host client asked the server to shut down (server side)."""

    address: tuple


Output = Union[EventReceived, CallbackDue, ClientJoined, ClientLeft, ShutdownRequested]


class OutputSink:
    """What a driver does with each kind of output; the defaults ignore it."""

    def event_received(self, event: Event, address: Optional[tuple]) -> None:
        """A user event arrived."""

    def callback_due(self, function: Callable[..., Any], args: tuple) -> None:
        """Run a user callback."""

    def client_joined(self, address: tuple) -> None:
        """A client joined."""

    def client_left(self, address: tuple) -> None:
        """A client left."""

    def shutdown_requested(self, address: tuple) -> None:
        """The host asked the server to shut down."""


def deliver(outputs: Iterable[Output], sink: OutputSink) -> None:
    """Hand each output, in order, to the sink's method for its kind."""
    for output in outputs:
        if isinstance(output, EventReceived):
            sink.event_received(output.event, output.address)
        elif isinstance(output, CallbackDue):
            sink.callback_due(output.function, output.args)
        elif isinstance(output, ClientJoined):
            sink.client_joined(output.address)
        elif isinstance(output, ClientLeft):
            sink.client_left(output.address)
        elif isinstance(output, ShutdownRequested):
            sink.shutdown_requested(output.address)
        else:
            raise TypeError(f"not a core output: {output!r}")
