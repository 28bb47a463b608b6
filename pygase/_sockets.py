"""Opening UDP sockets for servers and clients, IPv4 and IPv6 alike.

A server given no address ("") or "::" listens dual-stack: one IPv6 socket that takes IPv4 too (its peers
then appear as "::ffff:a.b.c.d"), or an IPv4 one where the machine has no IPv6. A client connects to IPv4
and IPv6 literals (brackets allowed, "[2001:db8::1]") and to names, preferring a name's IPv4 address: a
server bound to "localhost" listens on 127.0.0.1, and a client that tried ::1 first would find nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import sys
import time
from typing import Any, Callable, Optional

try:
    import fcntl
except ImportError:  # (Windows)
    fcntl = None  # type: ignore[assignment]

from pygase._packages import Package
from pygase.utils import get_available_ip_addresses

__all__ = [
    "CLIENT_RECEIVE_BUFFER",
    "SERVER_RECEIVE_BUFFER",
    "Drain",
    "not_waited",
    "enlarge_receive_buffer",
    "read_small_datagrams",
    "DUAL_STACK_HOSTS",
    "bind_server_socket",
    "dual_stack_socket",
    "bound_socket",
    "client_socket",
    "strip_brackets",
    "local_addresses",
    "send_with_ttl",
]

logger = logging.getLogger("pygase")

#: Server hostnames that mean "every interface, IPv4 and IPv6".
DUAL_STACK_HOSTS = ("", "::")


def strip_brackets(hostname: str) -> str:
    """A hostname without the brackets of a bracketed IPv6 literal ("[::1]" is "::1")."""
    if hostname.startswith("[") and hostname.endswith("]"):
        return hostname[1:-1]
    return hostname


def _ip_version(hostname: str) -> Optional[int]:
    try:
        return ipaddress.ip_address(hostname.split("%", 1)[0]).version
    except ValueError:
        return None


def dual_stack_socket(port: int) -> socket.socket:
    """A non-blocking UDP socket on every IPv6 and IPv4 address, port `port`.

    Raises:
        OSError: where the machine has no IPv6 (or the port is taken)
    """
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setblocking(False)
        sock.bind(("::", port))
    except BaseException:
        sock.close()
        raise
    return sock


def bound_socket(family: int, address: tuple) -> socket.socket:
    """A non-blocking UDP socket of `family` bound to just `address` (an IPv4 address mapped into IPv6
    takes IPv4 on it; any other IPv6 address IPv6 only).

    Raises:
        OSError: if it cannot be bound
    """
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            mapped = str(address[0]).startswith("::ffff:")
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if mapped else 1)
        sock.setblocking(False)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def bind_server_socket(hostname: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to `hostname`:`port` (0 for a free port).

    "" and "::" listen dual-stack (IPv4 only where IPv6 is unavailable); an IPv6 literal listens on that
    address; a name listens on its first address that can be bound, IPv4 first.

    Raises:
        OverflowError: for a port outside 0-65535
        OSError: if the address cannot be resolved or bound
    """
    if not 0 <= port <= 65535:
        raise OverflowError(f"port must be 0-65535, got {port}")
    hostname = strip_brackets(hostname)
    if hostname in DUAL_STACK_HOSTS:
        if socket.has_ipv6:
            try:
                return dual_stack_socket(port)
            except OSError as exc:
                if hostname == "::":
                    raise
                logger.debug("no dual-stack socket (%s); listening on IPv4 only", exc)
        return bound_socket(socket.AF_INET, ("0.0.0.0", port))
    infos = await _resolve(hostname, port)
    failures: list[OSError] = []
    for family, address in infos:  # the first address that can be bound, as asyncio does
        try:
            return bound_socket(family, address)
        except OSError as exc:
            failures.append(exc)
    raise failures[0]


async def _resolve(hostname: str, port: int) -> list[tuple[int, tuple]]:
    """`hostname`'s addresses for UDP as (family, sockaddr), IPv4 first."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(hostname, port, family=socket.AF_UNSPEC, type=socket.SOCK_DGRAM)
    found: list[tuple[int, tuple]] = [
        (family, address) for family, _, _, _, address in infos if family in _FAMILIES
    ]
    if not found:
        raise OSError(f"cannot resolve {hostname!r}")
    found.sort(key=lambda info: info[0] != socket.AF_INET)  # stable: the resolver's order within a family
    return found


_FAMILIES = (socket.AF_INET, socket.AF_INET6)


async def client_socket(hostname: str, port: int) -> tuple[socket.socket, tuple]:
    """An unconnected non-blocking UDP socket for talking to `hostname`:`port`, and that address resolved.

    Raises:
        OSError: if the name does not resolve
    """
    hostname = strip_brackets(hostname)
    infos = await _resolve(hostname, port)
    family, address = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock, address


def local_addresses() -> list[str]:
    """This machine's addresses other players on its LANs could reach: IPv4 (no loopback), then IPv6
    global and unique-local ones (Linux; no link-local, no loopback)."""
    addresses = [a for a in get_available_ip_addresses() if not a.startswith("127.")]
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, ValueError), open("/proc/net/if_inet6") as table:
            for line in table:
                fields = line.split()
                address = ipaddress.IPv6Address(int(fields[0], 16))
                if not (address.is_link_local or address.is_loopback or address.is_multicast):
                    addresses.append(str(address))
    return addresses


def send_with_ttl(sock: socket.socket, datagram: bytes, address: tuple, ttl: int) -> None:
    """Send one datagram with IP TTL (IPv6: hop limit) `ttl`, then restore the socket's default.

    Raises:
        OSError: from the send
    """
    if sock.family == socket.AF_INET6:
        level, option = socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS
        mapped = _ip_version(str(address[0])) == 4 or str(address[0]).startswith("::ffff:")
    else:
        level, option, mapped = socket.IPPROTO_IP, socket.IP_TTL, False
    options = [(level, option)] + ([(socket.IPPROTO_IP, socket.IP_TTL)] if mapped else [])
    saved = [sock.getsockopt(lvl, opt) for lvl, opt in options]
    for lvl, opt in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(lvl, opt, ttl)
    try:
        sock.sendto(datagram, address)
    finally:
        for (lvl, opt), value in zip(options, saved):
            with contextlib.suppress(OSError):
                sock.setsockopt(lvl, opt, value)


# ---- reading from the sockets ----

#: Bytes read from the socket per datagram. A PyGaSe datagram has at most `Package._max_size` (2048) bytes;
#: a longer one arrives cut to this length and the parsers refuse it. asyncio's own default, 256 KiB,
#: allocates 256 KiB per datagram, which glibc serves with an mmap, an mremap and a munmap each time.
_RECEIVE_SIZE = 2 * Package._max_size


#: Datagrams read per wake-up of the loop at most (see `Drain`): enough to empty the socket of a burst,
#: few enough that timers and the other sockets of the loop are not kept waiting.
_DRAIN_LIMIT = 64
#: A datagram at least this long is a part of a large state, most likely with more parts behind it.
_PART_LIKE = 900
#: A datagram that follows the last one within this many seconds is part of a burst.
_BURST_GAP = 0.002


#: Linux's ioctl for the time the kernel received the datagram read last from a socket (a struct timeval).
_SIOCGSTAMP = 0x8906
_TIMESTAMPS = fcntl is not None and sys.platform.startswith("linux")
_TIMEVAL = struct.Struct("@ll")
_TIMEVAL_BUFFER = bytes(_TIMEVAL.size)
_MOST_WAITED = 10.0


def not_waited() -> float:
    """How long a datagram waited to be read, where nobody knows (the default of the protocol cores'
    `waited`, for drivers without a socket such as the network simulator): not at all."""
    return 0.0


class Drain:
    """Read on from a socket while datagrams wait, after asyncio handed over one of a burst.

    asyncio reads one datagram per wake-up of its loop: a select call and a trip through the loop for
    each. The parts of a large state, and the packages of many clients on a server's socket, come in
    bursts; reading on while the socket has more saves those trips. After a lone datagram (a client's
    usual state update) there is nothing more to read, and trying would cost a system call for nothing,
    so it reads on only after a datagram that looks like a burst: a part of a large state, or one that
    came within `_BURST_GAP` of the one before.

    Arguments:
        sock: the transport's socket (non-blocking; None: never read on)
        take: called with each datagram and its sender's address
        error: called with an `OSError` the socket reports (as `error_received` is)
    """

    __slots__ = ("_sock", "_take", "_error", "_last", "_fd")

    def __init__(
        self,
        sock: Optional[socket.socket],
        take: Callable[[bytes, Any], None],
        error: Callable[[OSError], None],
    ) -> None:
        self._sock, self._take, self._error = sock, take, error
        self._last = -1.0
        self._fd = sock.fileno() if sock is not None and _TIMESTAMPS else -1
        # The first question switches the kernel's receive timestamps on (a little later: datagrams that
        # arrive before have none), so ask it now, ahead of the game's datagrams.
        self.waited()

    def waited(self) -> float:
        """Seconds since the datagram read last reached the socket: asked right after reading it, how long
        it waited in the socket's receive buffer (0.0 where the system does not say: Linux only).

        A round trip measured from when the program read the datagram would count the time a busy
        program (a burst of joins, a garbage collection) left it there, as if the network were slow.
        """
        if self._fd < 0:
            return 0.0
        try:
            seconds, micros = _TIMEVAL.unpack(fcntl.ioctl(self._fd, _SIOCGSTAMP, _TIMEVAL_BUFFER))
        except (OSError, ValueError):  # (none yet: the first call switches the timestamps on)
            return 0.0
        waited = time.time() - seconds - micros * 1e-6
        return waited if 0.0 < waited < _MOST_WAITED else 0.0  # (the clock was set meanwhile)

    def after(self, size: int, now: float) -> None:
        """Asyncio just handed over a datagram of `size` bytes at `now`: read on if it looks like a burst."""
        burst = size >= _PART_LIKE or now - self._last < _BURST_GAP
        self._last = now
        if not burst or self._sock is None:
            return
        recvfrom, take = self._sock.recvfrom, self._take
        for _ in range(_DRAIN_LIMIT):
            try:
                data, address = recvfrom(_RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._error(exc)
                return
            take(data, address)


def read_small_datagrams(transport: asyncio.BaseTransport) -> None:
    """Make an asyncio datagram transport read at most `_RECEIVE_SIZE` bytes per datagram."""
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = _RECEIVE_SIZE  # type: ignore[attr-defined]


#: Receive buffer the server asks for: all clients share its one socket, and a burst of their packages
#: that arrives while the server is busy (or not scheduled) must not overflow it. The kernel may grant
#: less (on Linux at most net.core.rmem_max), which is fine.
SERVER_RECEIVE_BUFFER = 1 << 20
#: Receive buffer a client asks for: room for the parts of a large state in flight (up to
#: `pygase._transfer.MAX_WINDOW`, about 550 KB) while the client is busy, over the 208 KB Linux gives by
#: default (the sender keeps only a little over a round trip's worth in flight once parts queue here).
CLIENT_RECEIVE_BUFFER = 1 << 20


def enlarge_receive_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as error:
        logger.debug("could not enlarge a socket's receive buffer: %s", error)
