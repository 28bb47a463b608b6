"""The asyncio side of rendezvous: a server's registration with a relay on its game socket, and a
player's search for a route on the socket its connection will then use. The protocol is in
`pygase._rendezvous_host` and `pygase._rendezvous_player`; here datagrams are sent and timers kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from typing import Any, Callable, Optional

from pygase._endpoints import plain_address
from pygase._ratelimit import RateLimitedLog
from pygase._rendezvous_host import HostRendezvous
from pygase._rendezvous_player import PlayerRendezvous, Route
from pygase._room_codes import normalize_code
from pygase._sockets import bound_socket, dual_stack_socket, local_addresses, send_with_ttl, strip_brackets

__all__ = ["DEFAULT_RELAY_PORT", "parse_relay", "HostRelayLink", "find_route", "relay_from_environment"]

logger = logging.getLogger("pygase.relay")
_throttled = RateLimitedLog(logger)

#: The port a relay listens on unless it is told otherwise (`python -m pygase.relay --port`).
DEFAULT_RELAY_PORT = 8090


def relay_from_environment() -> Optional[str]:
    """The relay named by the environment variable PYGASE_RELAY, if set."""
    return os.environ.get("PYGASE_RELAY") or None


def parse_relay(text: str) -> tuple[str, int]:
    """A relay's "HOST:PORT" ("[2001:db8::1]:8090", "relay.example.org", "::1") as (host, port).

    Raises:
        TypeError: if it is not a str
        ValueError: if it cannot be an address
    """
    if not isinstance(text, str):
        raise TypeError(f"relay must be a str 'HOST:PORT', not {type(text).__name__}")
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        if "]" not in text:
            raise ValueError(f"relay {text!r}: write an IPv6 address with a port as [2001:db8::1]:8090")
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"relay {text!r}: write an IPv6 address with a port as [2001:db8::1]:8090")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        try:
            ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            raise ValueError(
                f"relay {text!r}: write an IPv6 address with a port in brackets, as [2001:db8::1]:8090"
            ) from None
    if not host:
        raise ValueError(f"relay {text!r} has no host")
    if not port_text:
        return host, DEFAULT_RELAY_PORT
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"relay {text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def for_socket(sock: socket.socket, address: tuple) -> Optional[tuple]:
    """`address` as `sock` can send to it (IPv4 mapped into IPv6 on a dual-stack socket), or None if the
    socket's family cannot reach it."""
    host = plain_address(str(address[0]))
    try:
        version = ipaddress.ip_address(host.split("%", 1)[0]).version
    except ValueError:
        return None
    if sock.family == socket.AF_INET:
        return (host, address[1]) if version == 4 else None
    if version == 4:
        dual = not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        return (f"::ffff:{host}", address[1], 0, 0) if dual else None
    return (host, address[1], 0, 0)


async def _relay_address(sock: socket.socket, relay: str) -> tuple:
    host, port = parse_relay(relay)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(strip_brackets(host), port, type=socket.SOCK_DGRAM)
    except OSError as error:
        raise ConnectionError(f"cannot resolve the relay {relay!r}: {error}") from None
    usable = first_reachable(sock, infos)
    if usable is None:
        raise ConnectionError(f"the relay {relay!r} has no address this socket can reach (IPv4 or IPv6)")
    return usable


def first_reachable(sock: socket.socket, infos: list) -> Optional[tuple]:
    """The first of `getaddrinfo`'s results, IPv4 first, that `sock` can send to (see `for_socket`)."""
    for *_, address in sorted(infos, key=lambda info: info[0] != socket.AF_INET):
        usable = for_socket(sock, address)
        if usable is not None:
            return usable
    return None


def lan_endpoints(sock: socket.socket) -> tuple:
    """This machine's LAN addresses with `sock`'s port, those `sock` can send from."""
    sockname = sock.getsockname()
    bound = plain_address(str(sockname[0]))
    if bound not in ("0.0.0.0", "::"):
        loopback = ipaddress.ip_address(bound.split("%", 1)[0]).is_loopback
        return () if loopback else ((bound, sockname[1]),)
    return tuple(
        (address, sockname[1]) for address in local_addresses() if for_socket(sock, (address, 1)) is not None
    )


class HostRelayLink:
    """Keep a server registered with a relay, on the server's own socket.

    Arguments:
        transport: the server's datagram transport
        agent: the protocol side
        players: tells how many players the server has (for public listings)
    """

    def __init__(self, transport: Any, agent: HostRendezvous, players: Callable[[], int]) -> None:
        self.agent = agent
        self._transport = transport
        self._players = players
        self._loop = asyncio.get_running_loop()
        self._timer: Optional[asyncio.TimerHandle] = None
        #: Called with each room code the relay gives (in the loop's thread).
        self.on_code: Callable[[str], None] = lambda code: None

    @classmethod
    async def start(
        cls, transport: Any, relay: str, info: dict, public: bool, players: Callable[[], int]
    ) -> Any:
        """Register the session of the server on `transport` with the relay at `relay` ("HOST:PORT").

        Raises:
            TypeError, ValueError: for what cannot be a relay address
            ConnectionError: if the relay's name does not resolve to an address the socket can reach
        """
        sock = transport.get_extra_info("socket")
        agent = HostRendezvous(await _relay_address(sock, relay), lan_endpoints(sock), info, public)
        link = cls(transport, agent, players)
        agent.start(link._loop.time())
        link.flush()
        return link

    @property
    def room_code(self) -> Optional[str]:
        return self.agent.code

    def receive(self, datagram: bytes, address: tuple) -> None:
        """A rendezvous datagram arrived on the server's socket."""
        try:
            self.agent.receive(datagram, address, self._loop.time())
        except ValueError as error:
            _throttled.debug("malformed", None, "dropped a rendezvous datagram from %s: %s", address, error)
            return
        self.flush()

    def flush(self) -> None:
        """Send what is due and re-arm the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.agent.players = self._players()
        if not self._transport.is_closing():
            for datagram, address in self.agent.datagrams_to_send(self._loop.time()):
                target = for_socket(self._transport.get_extra_info("socket"), address)
                if target is not None:
                    self._transport.sendto(datagram, target)
        for code in self.agent.new_codes():
            self.on_code(code)
        when = self.agent.get_timer()
        if when is not None:
            self._timer = self._loop.call_at(when, self.flush)

    def stop(self) -> None:
        """Unregister (sent at once) and stop."""
        self.agent.stop()
        self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def open_player_socket() -> socket.socket:
    """A non-blocking UDP socket on a free port for every interface: dual-stack where IPv6 works."""
    if socket.has_ipv6:
        with contextlib.suppress(OSError):
            return dual_stack_socket(0)
    return bound_socket(socket.AF_INET, ("0.0.0.0", 0))


class _SearchProtocol(asyncio.DatagramProtocol):
    def __init__(self, agent: PlayerRendezvous, wake: asyncio.Event) -> None:
        self.agent = agent
        self.wake = wake
        self.loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            self.agent.receive(data, addr, self.loop.time())
        except ValueError as error:
            _throttled.debug("malformed", None, "dropped a datagram from %s while joining: %s", addr, error)
            return
        self.wake.set()

    def error_received(self, exc: Exception) -> None:
        logger.debug("socket error while looking for a route: %s", exc)


async def find_route(relay: str, room: str) -> tuple[socket.socket, Route]:
    """A socket connected to the host of room `room` (directly, or through the relay at `relay`), and the
    route it takes.

    Raises:
        ValueError: for what cannot be a room code or a relay address
        ConnectionRefusedError: if the relay knows no such room (or refuses the look-up)
        TimeoutError: if the relay does not answer, or neither punching nor its channel found the host
        ConnectionError: if the relay's name does not resolve
    """
    code = normalize_code(room)
    loop = asyncio.get_running_loop()
    sock = open_player_socket()
    try:
        agent = PlayerRendezvous(await _relay_address(sock, relay), code, lan_endpoints(sock), loop.time())
        wake = asyncio.Event()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SearchProtocol(agent, wake), sock=sock.dup()
        )
        try:
            while not agent.done:
                for datagram, address, ttl in agent.datagrams_to_send(loop.time()):
                    target = for_socket(sock, address)
                    if target is None:
                        continue
                    with contextlib.suppress(OSError):  # e.g. a LAN endpoint this machine has no route to
                        if ttl is None:
                            sock.sendto(datagram, target)
                        else:
                            send_with_ttl(sock, datagram, target, ttl)
                when = agent.get_timer()
                wake.clear()
                if when is not None and not agent.done:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(wake.wait(), max(0.0, when - loop.time()))
            for datagram, address, _ in agent.datagrams_to_send(loop.time()):  # a last answer to a punch
                target = for_socket(sock, address)
                if target is not None:
                    with contextlib.suppress(OSError):
                        sock.sendto(datagram, target)
        finally:
            transport.close()
        if agent.failure is not None:
            raise agent.failure
        assert agent.route is not None
        target = for_socket(sock, agent.route.address)
        assert target is not None
        sock.connect(target)
        return sock, agent.route
    except BaseException:
        sock.close()
        raise
