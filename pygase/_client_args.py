"""Checking what `pygase.Client`'s connect methods are given, before anything starts."""

from __future__ import annotations

from typing import Any, Optional

from pygase import _codec
from pygase._handshake import check_join_data
from pygase._rendezvous_io import parse_relay, relay_from_environment
from pygase._room_codes import normalize_code
from pygase.errors import UnsendableValueError
from pygase.event import INJECTED_NAMES, Event

__all__ = ["connect_options", "packed_join_data", "check_event_names", "checked_event"]


def _check_address(method: str, port: Any, hostname: Any, password: Any) -> None:
    """Refuse at once what cannot be an address: `method(port, hostname)`, in this order."""
    if isinstance(port, str) and isinstance(hostname, int) and not isinstance(hostname, bool):
        raise TypeError(
            f"{method}() takes the port first, then the hostname: "
            f"{method}({hostname!r}, {port!r}), not {method}({port!r}, {hostname!r})"
        )
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(
            f"port must be an int, not {type(port).__name__} ({port!r}); "
            f"the arguments are {method}(port, hostname)"
        )
    if not isinstance(hostname, str):
        raise TypeError(
            f"hostname must be a str, not {type(hostname).__name__} ({hostname!r}); "
            f"the arguments are {method}(port, hostname)"
        )
    if not 0 < port <= 65535:
        raise ValueError(f"port must be 1-65535, got {port}")
    if password is not None and not isinstance(password, str):
        raise TypeError(f"password must be a str or None, not {type(password).__name__}")


def connect_options(
    method: str, port: Any, hostname: Any, password: Any, join_data: Any, room: Any = None, relay: Any = None
) -> dict:
    """Check a connect call's arguments (see `_check_address`); the `ClientConnection` options they give,
    and with a room, `rendezvous`: (relay, room code).

    Raises:
        TypeError, ValueError: for what cannot be an address, a password, join data, a room code or a relay
    """
    rendezvous = _room_and_relay(method, port, room, relay)
    _check_address(method, 1 if rendezvous else port, hostname, password)
    # (packed once here, so a value that cannot be sent fails in the caller's thread)
    packed_join_data(join_data)
    return {"password": password, "join_data": join_data, "rendezvous": rendezvous}


def _room_and_relay(method: str, port: Any, room: Any, relay: Any) -> Optional[tuple[str, str]]:
    if room is None:
        if relay is not None:
            raise TypeError(
                f"{method}(relay=...) needs the room code too: {method}(room='ABC234', relay=...)"
            )
        if port is None:
            raise TypeError(
                f"{method}() needs the server's port (or a room code: {method}(room=..., relay=...))"
            )
        return None
    if port is not None:
        raise TypeError(f"{method}() takes a port and hostname, or a room code and a relay, not both")
    relay = relay if relay is not None else relay_from_environment()
    if relay is None:
        raise ValueError(
            f"room codes are looked up at a relay: {method}(room={room!r}, relay='HOST:PORT'), "
            "or set PYGASE_RELAY=HOST:PORT"
        )
    parse_relay(relay)
    return relay, normalize_code(room)


def packed_join_data(join_data: Optional[dict]) -> bytes:
    """Join data as the handshake carries it; a clear error for what cannot be sent.

    Raises:
        TypeError: if it is not a dict with str keys, or holds a value that cannot be sent
        ValueError: if it is too large
    """
    if join_data is None:
        return b""
    if not isinstance(join_data, dict) or not all(isinstance(key, str) for key in join_data):
        raise TypeError(f"join_data must be a dict with str keys, not {join_data!r:.80}")
    try:
        packed = _codec.pack(join_data)
    except TypeError:
        packed = None
    problem = _codec.describe_problem(join_data, root="join_data")
    if packed is None or problem is not None:
        raise UnsendableValueError(problem or "join_data cannot be sent")
    check_join_data(packed)
    return packed


def check_event_names(event_type: str, kwargs: dict) -> None:
    """Refuse event data under a name the server passes its handlers itself: it would never arrive.

    Raises:
        TypeError: naming the argument
    """
    clash = INJECTED_NAMES.intersection(kwargs)
    if clash:
        name = sorted(clash)[0]
        raise TypeError(
            f"event {event_type!r}: {name!r} is a name the server passes to its handlers itself "
            f"({', '.join(sorted(INJECTED_NAMES))}); give the argument another name"
        )


def checked_event(event_type: str, args: tuple, kwargs: dict, max_event_size: int) -> Event:
    """The event `Client.dispatch_event` sends, checked in the caller's thread (see there).

    Raises:
        TypeError: if its data cannot be sent or uses a name the server passes to handlers itself
        ValueError: if it is larger than `max_event_size`
    """
    check_event_names(event_type, kwargs)
    event = Event(event_type, *args, **kwargs)
    size = len(event.to_bytes())
    if size > max_event_size:
        raise ValueError(
            f"event {event_type!r} has {size} bytes, more than max_event_size ({max_event_size})"
        )
    return event
