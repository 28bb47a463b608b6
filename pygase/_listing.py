"""Reading a relay's list of public sessions, a page at a time, without blocking (`pygase.relay`)."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Optional

from pygase import _rendezvous as rv
from pygase._rendezvous_io import first_reachable, for_socket, open_player_socket, parse_relay

__all__ = ["PublicSessions"]

logger = logging.getLogger("pygase.relay")

#: Most pages of a listing asked for.
MAX_PAGES = 8


class PublicSessions:
    """The sessions a relay lists publicly (hosts that ran with `relay=..., public=...`).

    `poll()` never blocks: call it every frame, or now and then. It asks the relay for its list every
    `interval` seconds (one datagram per page, padded as the relay wants) and reads the answers that
    arrived; `sessions()` is what the last list said: dicts with `code` (the room code), `game`, `name`,
    `players`, `max_players` and `password` (whether the session needs one).

    Arguments:
        relay: the relay's "HOST:PORT"
        game: only this game's sessions ("" for all)
        interval: seconds between requests for the list

    Raises:
        TypeError, ValueError: if `relay` cannot be an address
    """

    def __init__(self, relay: str, game: str = "", interval: float = 3.0) -> None:
        self.relay = relay
        self.game = game
        self.interval = interval
        #: The relay's host and port, as given.
        self.host, self.port = parse_relay(relay)
        self._address: Optional[tuple] = None
        self._sessions: dict[str, dict] = {}
        self._nonce = os.urandom(rv.NONCE_SIZE)
        self._next_request = 0.0
        #: When the relay last answered (`time.monotonic()`; 0 if never).
        self.heard = 0.0
        self.sock = open_player_socket()

    def _relay_address(self) -> Optional[tuple]:
        if self._address is None:
            try:  # (a name is resolved once; a resolver that blocks does so here, on the first poll)
                infos = socket.getaddrinfo(self.host.strip("[]"), self.port, type=socket.SOCK_DGRAM)
            except OSError as error:
                logger.debug("cannot resolve the relay %s: %s", self.relay, error)
                return None
            self._address = first_reachable(self.sock, infos)
        return self._address

    def _ask(self, page: int) -> None:
        address = self._relay_address()
        if address is None:
            return
        try:
            self.sock.sendto(rv.ListRequest(self._nonce, page, self.game).encode(), address)
        except OSError as error:
            logger.debug("cannot ask the relay %s for its list: %s", self.relay, error)

    def poll(self, now: Optional[float] = None) -> None:
        """Ask for the list when it is due, and read the answers that arrived."""
        now = time.monotonic() if now is None else now
        if now >= self._next_request:
            self._next_request = now + self.interval
            self._nonce = os.urandom(rv.NONCE_SIZE)
            self._ask(0)
        for _ in range(2 * MAX_PAGES):
            try:
                datagram, sender = self.sock.recvfrom(rv.LIST_SIZE + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                logger.debug("relay list socket error: %s", error)
                break
            if self._address is None or for_socket(self.sock, sender) != self._address:
                continue
            try:
                message = rv.parse(datagram)
            except ValueError:
                continue
            if isinstance(message, rv.Listing) and message.nonce == self._nonce:
                self._take(message, now)

    def _take(self, listing: Any, now: float) -> None:
        if listing.page == 0:
            self._sessions = {}
            self.heard = now
        for entry in listing.sessions:
            session = _checked(entry)
            if session is not None:
                self._sessions[session["code"]] = session
        if listing.page + 1 < min(listing.pages, MAX_PAGES):
            self._ask(listing.page + 1)

    def sessions(self, now: Optional[float] = None) -> list:
        """The sessions of the last list (none if the relay has not answered for 3 intervals)."""
        now = time.monotonic() if now is None else now
        if now - self.heard > 3 * self.interval:
            return []
        return sorted(self._sessions.values(), key=lambda s: (s["game"], s["name"], s["code"]))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> PublicSessions:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _checked(entry: dict) -> Optional[dict]:
    """A listed session with fields of the right types (and lengths), or None if its code is malformed."""
    try:
        code = rv.normalize_code(str(entry.get("code", "")))
    except ValueError:
        return None

    def field(name: str, kind: type, default: Any) -> Any:
        value = entry.get(name, default)
        return value if isinstance(value, kind) and isinstance(value, bool) is (kind is bool) else default

    return {
        "code": code,
        "game": field("game", str, "")[:40],
        "name": field("name", str, "")[:60],
        "players": max(0, field("players", int, 0)),
        "max_players": max(0, field("max_players", int, 0)),
        "password": field("password", bool, False),
    }
