"""Find games on the LAN: hosts announce their sessions, players browse them.

    announcer = SessionAnnouncer({"game": "chase", "name": "Ann's game", "players": 1, "port": 8080})
    announcer.start()              # every 1.5 s on each interface's broadcast address (and IPv6 all-nodes)
    announcer.update(players=3)

    browser = SessionBrowser()
    browser.poll()                 # call every frame; never blocks
    for session in browser.sessions(): ...

An announcement is one small UDP datagram: a magic prefix and a msgpack map. The browser takes the host's
address from the datagram itself, so it works across interfaces and when host and player are the same
machine. Nothing is sent unless a host starts an announcer; tests announce to 127.0.0.1 on a port of
their own.

On a LAN with IPv6 the announcer also sends to the link's all-nodes group (ff02::1) on each interface, and
the browser listens there too: a session heard over IPv6 has the host's link-local address with its
interface ("fe80::1%eth0"), which `Client.connect` takes; the host must listen on IPv6 ("" or "::"). A host
heard both ways is one session (announcements carry an id), listed by its IPv4 address.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
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


#: The group IPv6 announcements go to: every node on the link.
IPV6_GROUP = "ff02::1"


def ipv6_interfaces() -> list:
    """The names of this machine's non-loopback interfaces that have IPv6 (Linux; [] elsewhere)."""
    names: list[str] = []
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 6 and fields[5] != "lo" and fields[5] not in names:
                names.append(fields[5])
    return names


def _host_of(sender: tuple) -> str:
    """The address a player joins a host at, from the sender of its announcement."""
    host = str(sender[0])
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    if len(sender) >= 4 and sender[3] and host.lower().startswith("fe80") and "%" not in host:
        with contextlib.suppress(OSError):
            return f"{host}%{socket.if_indextoname(sender[3])}"
    return host


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
        interfaces: Optional[list] = None,
    ) -> None:
        self._info = {"id": os.urandom(4).hex(), **info}
        encode_announcement(self._info)  # fail early on a bad description
        self.addresses = list(addresses) if addresses is not None else announcement_addresses()
        #: Interfaces announced on over IPv6 (default: every one with IPv6 when `addresses` is not given).
        self.interfaces = list(interfaces) if interfaces is not None else []
        if interfaces is None and addresses is None:
            self.interfaces = ipv6_interfaces()
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
        if not self.addresses and not self.interfaces:
            logger.info("no LAN interface to announce the session on")
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pygase-lan-announcer", daemon=True)
        self._thread.start()
        where = ", ".join(self.addresses + [f"{IPV6_GROUP}%{name}" for name in self.interfaces])
        logger.info("announcing the session on %s, port %d", where, self.announce_port)

    def _targets(self) -> list:
        """(family, address) for each announcement: the IPv4 broadcasts, then each interface's group."""
        targets: list[tuple[int, tuple]] = [
            (socket.AF_INET6 if ":" in address else socket.AF_INET, (address, self.announce_port))
            for address in self.addresses
        ]
        for name in self.interfaces:
            try:
                targets.append(
                    (socket.AF_INET6, (IPV6_GROUP, self.announce_port, 0, socket.if_nametoindex(name)))
                )
            except OSError as error:
                logger.debug("cannot announce on %s: %s", name, error)
        return targets

    def _run(self) -> None:
        targets = self._targets()
        with contextlib.ExitStack() as stack:
            sockets = {}
            for family in {family for family, _ in targets}:
                try:
                    sockets[family] = stack.enter_context(socket.socket(family, socket.SOCK_DGRAM))
                except OSError as error:
                    logger.debug("no socket to announce with: %s", error)
            if socket.AF_INET in sockets:
                sockets[socket.AF_INET].setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            while not self._stop.is_set():
                with self._lock:
                    datagram = encode_announcement(self._info)
                for family, address in targets:
                    try:
                        sockets[family].sendto(datagram, address)
                    except (OSError, KeyError) as error:
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
        self._sessions: dict[Any, Session] = {}
        self._sockets: list[socket.socket] = []
        if ":" not in bind:
            self._sockets.append(_listening(socket.AF_INET, bind or "0.0.0.0", announce_port))
        if bind == "" or ":" in bind:
            try:  # (where IPv6 is off, the browser hears IPv4 only)
                self._sockets.append(_listening(socket.AF_INET6, bind or "::", announce_port))
            except OSError as error:
                if bind:
                    raise
                logger.debug("not listening for IPv6 announcements: %s", error)
        self.sock = self._sockets[0]

    def poll(self, now: Optional[float] = None) -> None:
        """Read every announcement that arrived since the last call."""
        now = time.monotonic() if now is None else now
        for sock in self._sockets:
            self._read(sock, now)

    def _read(self, sock: socket.socket, now: float) -> None:
        for _ in range(256):  # a flood cannot keep us here
            try:
                datagram, sender = sock.recvfrom(_MAX_ANNOUNCEMENT + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                logger.debug("browser socket error: %s", error)
                break
            try:
                session = decode_announcement(datagram, _host_of(sender), now)
                key = _session_key(datagram, session)
            except ValueError:
                continue
            known = self._sessions.get(key)
            if known is not None and ":" in session.host and ":" not in known.host:  # keep the IPv4 one
                session = dataclasses.replace(session, host=known.host)
            self._sessions[key] = session

    def sessions(self, now: Optional[float] = None) -> list:
        """The sessions heard in the last `SESSION_TTL` seconds, newest game names first."""
        now = time.monotonic() if now is None else now
        self._sessions = {key: s for key, s in self._sessions.items() if now - s.last_seen <= SESSION_TTL}
        return sorted(self._sessions.values(), key=lambda s: (s.game, s.name, s.host, s.port))

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
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> SessionBrowser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _listening(family: int, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):  # several browsers on one machine
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _session_key(datagram: bytes, session: Session) -> Any:
    """What makes announcements the same session: the announcer's id (heard over IPv4 and IPv6 alike), or
    the address for announcers without one."""
    info = msgpack.unpackb(datagram[len(_MAGIC) :], raw=False, strict_map_key=True)
    announced = info.get("id")
    return ("id", announced, session.port) if isinstance(announced, str) else session.address
