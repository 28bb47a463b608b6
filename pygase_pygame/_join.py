"""What `GameWindow.join` is given, checked in its own words before anything starts."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["connect_arguments"]


def connect_arguments(
    hostname: Any, port: Any, password: Optional[str], join_data: Any, room: Any, relay: Any
) -> tuple:
    """The arguments of `Client.connect_in_thread` for `join(hostname, port, password, join_data, room,
    relay)`.

    Raises:
        TypeError: for a hostname and port the wrong way round or of the wrong types, a relay without a
            room, or a room with a hostname and port
    """
    if room is not None or relay is not None:
        if room is None:
            raise TypeError("join(relay=...) needs the room code too: join(room='ABC234', relay=...)")
        if (hostname, port) != ("localhost", 8080):
            raise TypeError("join() takes a hostname and port, or a room code and a relay, not both")
        return (None, "localhost", password, join_data, room, relay)
    if not isinstance(hostname, str) or isinstance(port, bool) or not isinstance(port, int):
        if isinstance(port, str) and isinstance(hostname, int) and not isinstance(hostname, bool):
            raise TypeError(
                f"join() takes the hostname first, then the port: join({port!r}, {hostname!r}), "
                f"not join({hostname!r}, {port!r})"
            )
        raise TypeError(f"join(hostname, port) takes a str and an int, got join({hostname!r}, {port!r})")
    return (port, hostname, password, join_data)
