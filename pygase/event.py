"""Handle events in PyGaSe clients, servers and state machines.

Contains the basic components of the PyGaSe event framework.

Contents:
- `Event`: class for serializable event objects with event type and data
- `UniversalEventHandler`: class for components that can handle various event types
"""

from __future__ import annotations

import difflib
import inspect
import logging
import sys
from typing import Any, Callable, Generator

from pygase import _codec
from pygase._ratelimit import RateLimitedLog
from pygase.errors import DecodeError, NotSendableBytesError
from pygase.utils import Comparable, Sendable, accepted_keywords

__all__ = [
    "Event",
    "UniversalEventHandler",
    "RESERVED_PREFIX",
    "CLIENT_JOINED",
    "CLIENT_LEFT",
    "CLIENT_DROPPED",
    "CLIENT_RETURNED",
    "INJECTED_NAMES",
]

logger = logging.getLogger(__name__)

#: Event types that start with this prefix are PyGaSe's own control messages.
RESERVED_PREFIX = "pygase:"
#: Event a server hands its handlers (and event wire) when a player joins. It carries no data of its own;
#: the handler may declare `player_id` (the new player's id), `join_data` (the dict the client passed to
#: `connect(..., join_data=...)`, {} if none) and `client_address`, besides `game_state` and `dt`. It may
#: return an update (the new player's first state has it) or turn the player away by raising
#: `pygase.JoinRefused("reason")`. It never comes from the network.
CLIENT_JOINED = RESERVED_PREFIX + "client_joined"
#: Event a server hands its handlers when a player left (disconnected, or did not come back within the
#: rejoin grace period after it dropped); they may declare `player_id` and `client_address`.
CLIENT_LEFT = RESERVED_PREFIX + "client_left"
#: Event a server hands its handlers when a player's connection was lost (it timed out): its seat and
#: player id are kept for the rejoin grace period (`Backend(rejoin_grace=...)`); `player_id`.
CLIENT_DROPPED = RESERVED_PREFIX + "client_dropped"
#: Event a server hands its handlers when a player that dropped joined again, into its seat: `player_id`.
CLIENT_RETURNED = RESERVED_PREFIX + "client_returned"
_NOTIFICATIONS = (CLIENT_JOINED, CLIENT_LEFT, CLIENT_DROPPED, CLIENT_RETURNED)
#: Names the server passes to event handlers itself: an event's own arguments cannot use them.
INJECTED_NAMES = frozenset({"game_state", "dt", "client_address", "sender_id"})
# An event travels as one entry of a package's list of events: [type, args, kwargs, id] two levels down.
_DEPTH_IN_PACKAGE = 2


class Event(Sendable, Comparable):
    """Send PyGaSe events and attached data via UDP packages.

    Arguments:
        event_type: string that identifies the event and links it to a handler
        *args: event data passed as positional arguments to the handler on the other side
        **kwargs: event data passed as keyword arguments to the handler on the other side

    Attributes:
        type (str): the event type
        handler_args (list): positional event data
        handler_kwargs (dict): keyword event data
    """

    def __init__(self, event_type: str, *args: Any, **kwargs: Any) -> None:
        if not isinstance(event_type, str):
            raise TypeError(f"event types are strings, got {type(event_type).__name__}")
        self.type = event_type
        self.handler_args = list(args)
        self.handler_kwargs = kwargs

    def __repr__(self) -> str:
        return f"Event({self.type!r}, args={self.handler_args!r}, kwargs={self.handler_kwargs!r})"

    def _to_wire(self) -> list:
        return [self.type, self.handler_args, self.handler_kwargs]

    @classmethod
    def _from_wire(cls, data: Any) -> Event:
        """Build an event from its decoded wire form, raising `DecodeError` (a `ValueError`) for any other
        shape: what comes from the network only ever gives a `pygase.errors.ProtocolError`."""
        if not isinstance(data, list) or len(data) != 3:
            raise DecodeError("an event is a list of type, args and kwargs")
        event_type, args, kwargs = data
        if not isinstance(event_type, str):
            raise DecodeError("an event type must be a str")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise DecodeError("event data must be a list of args and a map of kwargs")
        if not all(isinstance(key, str) and key.isidentifier() for key in kwargs):
            raise DecodeError("event kwargs must have identifier keys")
        event = cls.__new__(cls)
        event.type = event_type
        event.handler_args = args
        event.handler_kwargs = kwargs
        return event

    def to_bytes(self) -> bytes:
        """Serialize the event to a compact bytestring.

        Raises:
            TypeError: if the event's data cannot be sent intact; the message names the argument and the
                path of the bad value, e.g. ``event 'PAINT' cannot be sent: cells[(1, 2)]: map keys ...``
        """
        try:
            return _codec.pack_checked(self._to_wire(), depth=_DEPTH_IN_PACKAGE)
        except TypeError:
            problem = _codec.describe_problem(
                self.handler_args, _DEPTH_IN_PACKAGE + 1, root="args"
            ) or _codec.describe_problem(self.handler_kwargs, _DEPTH_IN_PACKAGE + 1)
            raise TypeError(f"event {self.type!r} cannot be sent: {problem}") from None

    @classmethod
    def from_bytes(cls, bytepack: bytes) -> Event:
        """Deserialize an event.

        Raises:
            pygase.errors.NotSendableBytesError: if the bytes do not hold an event (a `TypeError` as in
                PyGaSe 0.3.1, and a `ValueError`)
        """
        try:
            return cls._from_wire(_codec.unpack(bytepack))
        except DecodeError as error:
            raise NotSendableBytesError(f"bytes could not be parsed into {cls.__name__}: {error}") from None


class UniversalEventHandler:
    """Handle PyGaSe events with callback functions."""

    def __init__(self) -> None:
        self._event_handlers: dict[str, Callable[..., Any]] = {}
        self._accepted: dict[str, Any] = {}
        self._unknown_logged: set[str] = set()  # the first unknown types (cut short): warned of once
        self._unknown_log = RateLimitedLog(logger)  # the others: at most one warning in 10 s

    def register_event_handler(self, event_type: str, event_handler_function: Callable[..., Any]) -> None:
        """Register an event handler for a specific event type.

        Arguments:
            event_type: string that identifies the events to be handled by this function
            event_handler_function: callback function or coroutine function that will be invoked with the
                handler args and kwargs with which the incoming event has been dispatched
        """
        if not isinstance(event_type, str):
            raise TypeError("event types are strings")
        if event_type.startswith(RESERVED_PREFIX) and event_type not in _NOTIFICATIONS:
            raise ValueError(
                f"event types starting with {RESERVED_PREFIX!r} are reserved for PyGaSe "
                f"(you may handle {', '.join(map(repr, _NOTIFICATIONS))})"
            )
        if not callable(event_handler_function):
            raise TypeError("an event handler must be callable")
        if event_type in _NOTIFICATIONS:
            _check_notification_handler(event_type, event_handler_function)
        self._event_handlers[event_type] = event_handler_function
        self._accepted[event_type] = accepted_keywords(event_handler_function)

    def handle(self, event: Event, **kwargs: Any) -> Any:
        """Invoke the appropriate handler function.

        Arguments:
            event: the event to be handled
            **kwargs: context passed to the handler in addition to the event's own data (for example
                `game_state`, `dt` and `client_address`); only the names the handler declares are passed,
                unless it takes `**kwargs`

        Returns:
            whatever the handler returns (an awaitable if the handler is a coroutine function), or None if
            no handler is registered for the event type (which is logged once per type).

            Called from a coroutine (`async def`, where `await` can be written), it returns an awaitable
            in any case, as PyGaSe 0.3.1's coroutine `handle` did: `await handler.handle(event)` gives the
            result of a plain handler (which has already run) or of a coroutine handler alike.
        """
        result = self._invoke(event, kwargs)
        if not inspect.isawaitable(result) and _called_from_coroutine():
            return _Ready(result)
        return result

    def _invoke(self, event: Event, kwargs: dict) -> Any:
        """Call the handler for `event` with the context `kwargs` (see `handle`)."""
        handler = self._event_handlers.get(event.type)
        if handler is None:
            shown = event.type[:100]  # (a sender may make up types without end, and long ones)
            if shown not in self._unknown_logged and event.type not in _NOTIFICATIONS:
                if len(self._unknown_logged) < 100:
                    self._unknown_logged.add(shown)
                    logger.warning("no handler for event type %r: such events are ignored", shown)
                else:
                    self._unknown_log.warning(
                        "unknown type", None, "no handler for event type %r: such events are ignored", shown
                    )
            return None
        data = event.handler_kwargs
        if kwargs:
            # Context replaces event data of the same name, so a sender cannot forge `client_address`.
            data = {name: value for name, value in data.items() if name not in kwargs}
            accepted = self._accepted[event.type]
            if accepted is not None:
                kwargs = {name: value for name, value in kwargs.items() if name in accepted}
        return handler(*event.handler_args, **data, **kwargs)

    def has_event_type(self, event_type: str) -> bool:
        """Check if a handler was registered for `event_type`."""
        return event_type in self._event_handlers


#: What a handler of each of the server's notifications may declare (they carry no data of their own).
_NOTIFICATION_ARGUMENTS = {
    CLIENT_JOINED: ("player_id", "join_data", "game_state", "dt", "client_address"),
    CLIENT_LEFT: ("player_id", "game_state", "dt", "client_address"),
    CLIENT_DROPPED: ("player_id", "game_state", "dt", "client_address"),
    CLIENT_RETURNED: ("player_id", "game_state", "dt", "client_address"),
}


def _check_notification_handler(event_type: str, function: Callable[..., Any]) -> None:
    """Refuse a notification handler with a parameter it would never get (`playerid`), when it is
    registered rather than at the first join.

    Raises:
        TypeError: naming the parameter and what the handler may declare
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a callable whose signature cannot be read: let it through
        return
    allowed = _NOTIFICATION_ARGUMENTS[event_type]
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty or parameter.name in allowed:
            continue
        close = difflib.get_close_matches(parameter.name, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        name = event_type[len(RESERVED_PREFIX) :].upper()
        raise TypeError(
            f"a {name} handler gets its arguments by name, and {parameter.name!r}{hint} is not one of "
            f"them: it may declare {', '.join(allowed)}"
        )


_ASYNC_CODE = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _called_from_coroutine() -> bool:
    """Whether the function that called our caller is a coroutine (or async generator) function: code
    where `await` can stand, such as `await handler.handle(event)`."""
    try:
        caller = sys._getframe(2)
    except (AttributeError, ValueError):  # an interpreter without frames
        return False
    return bool(caller.f_code.co_flags & _ASYNC_CODE)


class _Ready:
    """A plain handler's result, for `await`: awaiting it gives the result (the handler already ran)."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result
        yield  # (unreachable: makes this a generator, which awaiting runs to its return value)

    def __repr__(self) -> str:
        return f"<handled: {self.result!r}>"
