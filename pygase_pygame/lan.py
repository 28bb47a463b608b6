"""Find games on the LAN: hosts announce their sessions, players browse them.

    announcer = SessionAnnouncer({"game": "chase", "name": "Ann's game", "players": 1, "port": 8080})
    announcer.start()              # every 1.5 s on each interface's broadcast address
    announcer.update(players=3)

    browser = SessionBrowser()
    browser.poll()                 # call every frame; never blocks
    for session in browser.sessions(): ...

An announcement is one small UDP datagram: a magic prefix and a msgpack map. The browser takes the host's
address from the datagram itself, so it works across interfaces and when host and player are the same
machine. Nothing is sent unless a host starts an announcer; tests announce to 127.0.0.1 on a port of
their own.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

import msgpack

from pygase.utils import get_broadcast_addresses

__all__ = ["DISCOVERY_PORT", "Session", "SessionAnnouncer", "SessionBrowser", "announcement_addresses"]

logger = logging.getLogger(__name__)

#: UDP port announcements are sent to.
DISCOVERY_PORT = 52424
_MAGIC = b"PYGASE-LAN1"
_MAX_ANNOUNCEMENT = 512
#: Seconds after its last announcement that a session is forgotten.
SESSION_TTL = 5.0


@dataclass(frozen=True)
class Session:
    """A game session heard on the LAN."""

    host: str
    port: int
    game: str
    name: str
    players: int
    max_players: int
    version: str
    password: bool
    last_seen: float
    #: For a public session on a relay (`pygase_pygame.online.RelayBrowser`): its room code and relay.
    room: str = ""
    relay: str = ""

    @property
    def address(self) -> tuple:
        return (self.host, self.port)


def announcement_addresses() -> list:
    """The broadcast addresses of this machine's non-loopback interfaces (where hosts announce)."""
    return [address for address in get_broadcast_addresses() if not address.startswith("127.")]


def encode_announcement(info: dict) -> bytes:
    """Build an announcement datagram from a session description."""
    datagram = _MAGIC + msgpack.packb(info, use_bin_type=True)
    if len(datagram) > _MAX_ANNOUNCEMENT:
        raise ValueError("the session description is too long for one announcement")
    return datagram


def decode_announcement(datagram: bytes, host: str, now: float) -> Session:
    """Parse an announcement heard from `host`.

    Raises:
        ValueError: if it is not a well-formed announcement
    """
    if not datagram.startswith(_MAGIC) or len(datagram) > _MAX_ANNOUNCEMENT:
        raise ValueError("not a PyGaSe announcement")
    try:
        info = msgpack.unpackb(datagram[len(_MAGIC) :], raw=False, strict_map_key=True)
    except Exception:
        raise ValueError("malformed announcement") from None
    if not isinstance(info, dict):
        raise ValueError("malformed announcement")

    def field(name: str, kind: type, default: Any) -> Any:
        value = info.get(name, default)
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise ValueError(f"announcement field {name!r} is not a {kind.__name__}")
        return value

    port = field("port", int, 0)
    if not 0 < port < 65536:
        raise ValueError("announcement port out of range")
    return Session(
        host=host,
        port=port,
        game=field("game", str, "")[:40],
        name=field("name", str, "")[:60],
        players=max(0, field("players", int, 0)),
        max_players=max(0, field("max_players", int, 0)),
        version=field("version", str, "")[:20],
        password=field("password", bool, False),
        last_seen=now,
    )


class SessionAnnouncer:
    """Announce a hosted session on the LAN from a background thread.

    Arguments:
        info: the session: game, name, players, max_players, port, version, password (bool)
        addresses: where to send (default: each non-loopback interface's broadcast address)
        announce_port: the port browsers listen on
        interval: seconds between announcements
    """

    def __init__(
        self,
        info: dict,
        addresses: Optional[list] = None,
        announce_port: int = DISCOVERY_PORT,
        interval: float = 1.5,
    ) -> None:
        self._info = dict(info)
        encode_announcement(self._info)  # fail early on a bad description
        self.addresses = list(addresses) if addresses is not None else announcement_addresses()
        self.announce_port = announce_port
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def update(self, **changes: Any) -> None:
        """Change fields of the announcement (e.g. `players=3`)."""
        with self._lock:
            info = {**self._info, **changes}
            encode_announcement(info)
            self._info = info

    def start(self) -> None:
        """Start announcing (nothing happens if there is no address to announce to)."""
        if not self.addresses:
            logger.info("no LAN interface to announce the session on")
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pygase-lan-announcer", daemon=True)
        self._thread.start()
        logger.info("announcing the session on %s, port %d", ", ".join(self.addresses), self.announce_port)

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            while not self._stop.is_set():
                with self._lock:
                    datagram = encode_announcement(self._info)
                for address in self.addresses:
                    try:
                        sock.sendto(datagram, (address, self.announce_port))
                    except OSError as error:
                        logger.debug("cannot announce to %s: %s", address, error)
                self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop announcing and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class SessionBrowser:
    """Collect the sessions announced on the LAN; `poll()` never blocks.

    Arguments:
        announce_port: the port announcements arrive on
        bind: the address to listen on ("" for every interface)
    """

    def __init__(self, announce_port: int = DISCOVERY_PORT, bind: str = "") -> None:
        self._sessions: dict[tuple, Session] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):  # several browsers on one machine
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((bind, announce_port))
        self.sock.setblocking(False)

    def poll(self, now: Optional[float] = None) -> None:
        """Read every announcement that arrived since the last call."""
        now = time.monotonic() if now is None else now
        for _ in range(256):  # a flood cannot keep us here
            try:
                datagram, (host, _) = self.sock.recvfrom(_MAX_ANNOUNCEMENT + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                logger.debug("browser socket error: %s", error)
                break
            try:
                session = decode_announcement(datagram, host, now)
            except ValueError:
                continue
            self._sessions[session.address] = session

    def sessions(self, now: Optional[float] = None) -> list:
        """The sessions heard in the last `SESSION_TTL` seconds, newest game names first."""
        now = time.monotonic() if now is None else now
        fresh = [s for s in self._sessions.values() if now - s.last_seen <= SESSION_TTL]
        self._sessions = {s.address: s for s in fresh}
        return sorted(fresh, key=lambda s: (s.game, s.name, s.host, s.port))

    def wait_for(self, predicate: Any, timeout: float) -> Optional[Session]:
        """Poll until a session satisfies `predicate` (for tests and scripts); None after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            for session in self.sessions():
                if predicate(session):
                    return session
            time.sleep(0.02)
        return None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SessionBrowser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
