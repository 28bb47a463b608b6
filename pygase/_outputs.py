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
    "ClientDropped",
    "ClientReturned",
    "ShutdownRequested",
    "Output",
    "OutputSink",
    "deliver",
]


@dataclass(frozen=True)
class EventReceived:
    """A user event arrived, in order, exactly once (`address`: the sender; a client's server;
    `player_id`: the sending player, on a server)."""

    event: Event
    address: Optional[tuple]
    player_id: Optional[int] = None


@dataclass(frozen=True)
class CallbackDue:
    """A user's `ack_callback` or `timeout_callback` is to be run with `args`."""

    function: Callable[..., Any]
    args: tuple


@dataclass(frozen=True)
class ClientJoined:
    """A client completed the handshake and asks to join as `player_id` with `join_data` (server side).

    It waits until the driver decides: `ServerCore.accept_join(player_id)` lets it in,
    `ServerCore.refuse_join(player_id, reason)` turns it away.
    """

    address: tuple
    player_id: int = 0
    join_data: Any = None


@dataclass(frozen=True)
class ClientLeft:
    """A player left, or its seat's grace period ended after it dropped (server side)."""

    address: tuple
    player_id: int = 0


@dataclass(frozen=True)
class ClientDropped:
    """A player's connection timed out; its seat is kept for the grace period (server side)."""

    address: tuple
    player_id: int


@dataclass(frozen=True)
class ClientReturned:
    """A player that dropped (or whose client started over) joined again into its seat (server side)."""

    address: tuple
    player_id: int


@dataclass(frozen=True)
class ShutdownRequested:
    """The host client asked the server to shut down (server side)."""

    address: tuple


Output = Union[
    EventReceived, CallbackDue, ClientJoined, ClientLeft, ClientDropped, ClientReturned, ShutdownRequested
]


class OutputSink:
    """What a driver does with each kind of output; the defaults ignore it."""

    def event_received(self, event: Event, address: Optional[tuple], player_id: Optional[int]) -> None:
        """A user event arrived (from `player_id`, on a server)."""

    def callback_due(self, function: Callable[..., Any], args: tuple) -> None:
        """Run a user callback."""

    def client_joined(self, address: tuple, player_id: int, join_data: Any) -> None:
        """A client asks to join (see `ClientJoined`: the driver must accept or refuse it)."""

    def client_left(self, address: tuple, player_id: int) -> None:
        """A player left."""

    def client_dropped(self, address: tuple, player_id: int) -> None:
        """A player's connection was lost; its seat waits for it."""

    def client_returned(self, address: tuple, player_id: int) -> None:
        """A player came back into its seat."""

    def shutdown_requested(self, address: tuple) -> None:
        """The host asked the server to shut down."""


def deliver(outputs: Iterable[Output], sink: OutputSink) -> None:
    """Hand each output, in order, to the sink's method for its kind."""
    for output in outputs:
        if isinstance(output, EventReceived):
            sink.event_received(output.event, output.address, output.player_id)
        elif isinstance(output, CallbackDue):
            sink.callback_due(output.function, output.args)
        elif isinstance(output, ClientJoined):
            sink.client_joined(output.address, output.player_id, output.join_data)
        elif isinstance(output, ClientLeft):
            sink.client_left(output.address, output.player_id)
        elif isinstance(output, ClientDropped):
            sink.client_dropped(output.address, output.player_id)
        elif isinstance(output, ClientReturned):
            sink.client_returned(output.address, output.player_id)
        elif isinstance(output, ShutdownRequested):
            sink.shutdown_requested(output.address)
        else:
            raise TypeError(f"not a core output: {output!r}")
