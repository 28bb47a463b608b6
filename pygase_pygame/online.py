"""Find public games on a relay: hosts that registered with `public=True` (`Backend.run(..., relay=...,
public={"game": "chase", "name": "Ann's game"})`), listed beside the LAN's sessions.

    browser = RelayBrowser("relay.example.org:8090", game="chase")
    browser.poll()                 # call every frame; never blocks
    for session in browser.sessions():
        window.join(room=session.room, relay=session.relay)

A `pygase.relay.PublicSessions` underneath asks the relay for its list every `interval` seconds; the
sessions come as the LAN browser's `Session`s, with `room` and `relay` set.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from pygase.relay import PublicSessions
from pygase_pygame.lan import Session

__all__ = ["RelayBrowser"]


class RelayBrowser:
    """Collect the public sessions a relay lists; `poll()` never blocks.

    Arguments:
        relay: the relay's "HOST:PORT"
        game: only this game's sessions ("" for all)
        interval: seconds between requests for the list

    Raises:
        ValueError: if `relay` cannot be an address
    """

    def __init__(self, relay: str, game: str = "", interval: float = 3.0) -> None:
        self.relay = relay
        self.listing = PublicSessions(relay, game, interval)

    def poll(self, now: Optional[float] = None) -> None:
        """Ask for the list when it is due, and read the answers that arrived."""
        self.listing.poll(now)

    def sessions(self, now: Optional[float] = None) -> list:
        """The sessions of the relay's last list, as `Session`s (none if it stopped answering)."""
        now = time.monotonic() if now is None else now
        return [
            Session(
                host=self.listing.host,
                port=self.listing.port,
                game=entry["game"],
                name=entry["name"],
                players=entry["players"],
                max_players=entry["max_players"],
                version="",
                password=entry["password"],
                last_seen=self.listing.heard,
                room=entry["code"],
                relay=self.relay,
            )
            for entry in self.listing.sessions(now)
        ]

    def close(self) -> None:
        self.listing.close()

    def __enter__(self) -> RelayBrowser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
