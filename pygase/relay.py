"""A rendezvous and relay server for playing over the internet: `python -m pygase.relay`.

    python -m pygase.relay [--host ADDR] [--port 8090] [--max-sessions N] [--max-channels N]
                           [--channel-ports LOW-HIGH] [--channel-rate KIB_PER_S] [--verbose]

Hosts register their sessions here and get room codes; players look codes up and are introduced to the
host, so that both can punch through their routers; when that fails, the relay forwards their datagrams
through a channel (two UDP ports of its own). It needs nothing but this package; docs/relay.md says how to
run one on a small public server and what it can and cannot see.

This module is the asyncio layer around `pygase._relay_core.RelayCore`: one `DatagramProtocol` per socket
(the main port and each channel's two), one timer. `Relay` runs it in a program, a thread or a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any, Optional

from pygase._listing import PublicSessions
from pygase._ratelimit import RateLimitedLog
from pygase._relay_core import (
    HOST,
    PLAYER,
    CloseChannel,
    OpenChannel,
    Output,
    Port,
    RelayConfig,
    RelayCore,
    Send,
)
from pygase._rendezvous_io import DEFAULT_RELAY_PORT
from pygase._sockets import bound_socket, dual_stack_socket, read_small_datagrams

__all__ = ["Relay", "RelayConfig", "PublicSessions", "DEFAULT_PORT", "main"]

logger = logging.getLogger("pygase.relay")
_throttled = RateLimitedLog(logger)

#: The port a relay listens on unless told otherwise (and the one a relay address without a port names).
DEFAULT_PORT = DEFAULT_RELAY_PORT
#: Bytes asyncio may hold for a socket the kernel will not take more from; beyond it datagrams are dropped.
_MAX_BUFFERED = 1 << 20
#: How often a running relay logs its counts (s).
_STATUS_INTERVAL = 600.0


def _open_socket(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket on `host`:`port`; "" or "::": dual-stack (IPv4 only without IPv6)."""
    if host in ("", "::") and socket.has_ipv6:
        try:
            return dual_stack_socket(port)
        except OSError:
            if host == "::":
                raise
    if host in ("", "::"):
        host = "0.0.0.0"
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    return bound_socket(family, address)


class _Port(asyncio.DatagramProtocol):
    """One of the relay's sockets: what arrives goes to the relay with the port's id."""

    def __init__(self, relay: Relay, port: Port) -> None:
        self._receive = relay._receive
        self._port = port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        read_small_datagrams(transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receive(data, addr, self._port)

    def error_received(self, exc: Exception) -> None:
        _throttled.debug("socket error", None, "socket error on the relay's port %s: %s", self._port, exc)


class Relay:
    """A rendezvous and relay server.

    Arguments:
        host: the address to listen on; "" or "::" (the default) listens on IPv6 and IPv4 alike
        port: the main port (0: any free one; `port` says which once it listens)
        max_sessions: most registrations at once
        max_channels: most relay channels at once (each has two ports)
        channel_ports: (low, high): the ports channels may use; None lets the system choose
        channel_rate: bytes per second a channel forwards each way
        config: all limits (`max_sessions`, `max_channels` and `channel_rate` are ignored when it is given)

    Raises:
        ValueError: for a channel port range that is not one
    """

    def __init__(
        self,
        host: str = "",
        port: int = DEFAULT_PORT,
        *,
        max_sessions: int = 10_000,
        max_channels: int = 200,
        channel_ports: Optional[tuple[int, int]] = None,
        channel_rate: int = 64 * 1024,
        config: Optional[RelayConfig] = None,
    ) -> None:
        if channel_ports is not None and not 1 <= channel_ports[0] < channel_ports[1] <= 65535:
            raise ValueError(f"a channel port range is two ports low < high in 1-65535, not {channel_ports}")
        self.config = config or RelayConfig(
            max_sessions=max_sessions, max_channels=max_channels, channel_rate=channel_rate
        )
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        #: The main port (the one asked for, or the one the system chose once listening).
        self.port = port
        self._channel_ports = channel_ports
        self._next_port = channel_ports[0] if channel_ports else 0
        self._core = RelayCore(os.urandom(32), self.config)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._stopping = False
        self._family = socket.AF_INET
        self._transports: dict[Port, Any] = {}
        self._pending: dict[int, list[socket.socket]] = {}  # channels whose ports are being set up
        self._tasks: set[asyncio.Task] = set()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self._status_timer: Optional[asyncio.TimerHandle] = None
        self._listening = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def counts(self) -> dict:
        """How many sessions, introductions, channels and remembered sources the relay has."""
        return self._core.counts()

    async def run_async(self) -> None:
        """Listen and serve until `shutdown()`.

        Raises:
            OSError: if the port cannot be opened
        """
        loop = self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sock = _open_socket(self.host, self.port)
        self._family = sock.family
        self.port = sock.getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(lambda: _Port(self, None), sock=sock)
        self._transports[None] = transport
        self._status_timer = loop.call_later(_STATUS_INTERVAL, self._status)
        if sock.family == socket.AF_INET:
            stacks = "IPv4"
        else:
            stacks = "IPv6" if sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) else "IPv4 and IPv6"
        logger.info("relay listening on %s port %d (UDP, %s)", sock.getsockname()[0], self.port, stacks)
        self._listening.set()
        try:
            if not self._stopping:
                await self._stop.wait()
        finally:
            await self._close_all()
            logger.info("relay stopped")

    async def _close_all(self) -> None:
        for timer in (self._timer, self._status_timer):
            if timer is not None:
                timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sockets in self._pending.values():
            for sock in sockets:
                sock.close()
        self._pending.clear()
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        await asyncio.sleep(0)  # transports close their sockets on the loop's next turn
        await asyncio.sleep(0)

    def run_in_thread(self) -> threading.Thread:
        """Run the relay in a new thread; return once it listens (`port` then says where).

        Raises:
            OSError: if it cannot listen
        """
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.run_async())
            except BaseException as error:  # handed to the caller below, or logged if it came later
                if self._listening.is_set():
                    logger.exception("the relay failed")
                failure.append(error)
                self._listening.set()

        self._thread = threading.Thread(target=run, name="pygase-relay", daemon=True)
        self._thread.start()
        self._listening.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self._thread

    def shutdown(self) -> None:
        """Stop the relay and close its sockets (from any thread; waits for `run_in_thread`'s thread)."""
        self._stopping = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                stop.set()
            else:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(stop.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # -- driving the core ----------------------------------------------------------------------------

    def _receive(self, data: bytes, addr: Any, port: Port) -> None:
        assert self._loop is not None
        now = self._loop.time()
        try:
            outputs = self._core.receive(data, addr, now, port)
        except Exception:
            _throttled.log(logging.ERROR, "unhandled", now, "dropped a datagram from %s", addr, exc_info=True)
            return
        if outputs:
            self._do(outputs)
        if port is None:  # (what arrives on a channel's port never moves the timer)
            self._arm()

    def _do(self, outputs: list[Output]) -> None:
        for output in outputs:
            if type(output) is Send:
                transport = self._transports.get(output.port)
                if transport is None or transport.get_write_buffer_size() > _MAX_BUFFERED:
                    continue  # (the kernel takes no more: drop, as a router would)
                host, port = output.address
                if self._family == socket.AF_INET6 and ":" not in host:
                    host = "::ffff:" + host
                transport.sendto(output.datagram, (host, port))
            elif type(output) is OpenChannel:
                self._open(output.channel)
            elif type(output) is CloseChannel:
                self._close(output.channel)

    def _arm(self) -> None:
        when = self._core.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = when
        self._timer = None if when is None else self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = self._timer_at = None
        self._do(self._core.handle_timer(self._loop.time()))
        self._arm()

    def _status(self) -> None:
        assert self._loop is not None
        logger.info("relay: %s", ", ".join(f"{count} {name}" for name, count in self.counts().items()))
        self._status_timer = self._loop.call_later(_STATUS_INTERVAL, self._status)

    # -- channels ------------------------------------------------------------------------------------

    def _channel_sockets(self) -> list[socket.socket]:
        """Two sockets for a channel: on ports the system chooses, or the next free ones of the range."""
        host = self.host
        sockets: list[socket.socket] = []
        try:
            if self._channel_ports is None:
                sockets = [_open_socket(host, 0), _open_socket(host, 0)]
                return sockets
            low, high = self._channel_ports
            for _ in range(high - low + 1):
                port, self._next_port = self._next_port, low + (self._next_port - low + 1) % (high - low + 1)
                with contextlib.suppress(OSError):
                    sockets.append(_open_socket(host, port))
                if len(sockets) == 2:
                    return sockets
            raise OSError(f"no two free ports left in {low}-{high}")
        except BaseException:
            for sock in sockets:
                sock.close()
            raise

    def _open(self, channel: int) -> None:
        assert self._loop is not None
        try:
            sockets = self._channel_sockets()
        except OSError as error:
            _throttled.warning("channel ports", None, "could not open a channel's ports: %s", error)
            self._core.channel_failed(channel)
            return
        self._pending[channel] = sockets
        task = self._loop.create_task(self._start_channel(channel, sockets))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_channel(self, channel: int, sockets: list[socket.socket]) -> None:
        assert self._loop is not None
        ports = tuple(sock.getsockname()[1] for sock in sockets)
        for side, sock in zip((PLAYER, HOST), sockets):
            made = functools.partial(_Port, self, (channel, side))
            transport, _ = await self._loop.create_datagram_endpoint(made, sock=sock)
            if channel not in self._pending:  # closed meanwhile
                transport.close()
                return
            self._transports[(channel, side)] = transport
        del self._pending[channel]
        self._do(self._core.channel_opened(channel, ports, self._loop.time()))

    def _close(self, channel: int) -> None:
        for sock in self._pending.pop(channel, ()):
            sock.close()
        for side in (PLAYER, HOST):
            transport = self._transports.pop((channel, side), None)
            if transport is not None:
                transport.close()


def _port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        return int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port range such as 40000-40999") from None


_DESCRIPTION = "A rendezvous and relay server for PyGaSe games played over the internet."


def main(argv: Optional[list[str]] = None) -> int:
    """Run a relay until SIGINT or SIGTERM; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pygase.relay", description=_DESCRIPTION)
    parser.add_argument(
        "--host", default="", metavar="ADDR", help="address to listen on (default: all, IPv4 and IPv6)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--max-sessions", type=int, metavar="N", default=10_000, help="most sessions (default 10000)"
    )
    parser.add_argument(
        "--max-channels", type=int, metavar="N", default=200, help="most relay channels (default 200)"
    )
    parser.add_argument(
        "--channel-ports", type=_port_range, metavar="LOW-HIGH", help="UDP ports for relay channels, LOW-HIGH"
    )
    parser.add_argument(
        "--channel-rate", type=int, metavar="KIB_PER_S", default=64, help="KiB/s a channel forwards each way"
    )
    parser.add_argument("--verbose", action="store_true", help="log what happens in detail")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        relay = Relay(
            args.host,
            args.port,
            max_sessions=args.max_sessions,
            max_channels=args.max_channels,
            channel_ports=args.channel_ports,
            channel_rate=args.channel_rate * 1024,
        )
    except ValueError as error:
        parser.error(str(error))
    try:
        asyncio.run(_serve(relay))
    except OSError as error:
        logger.error("the relay cannot listen on %s port %d: %s", args.host or "::", args.port, error)
        return 1
    except KeyboardInterrupt:  # where signal handlers cannot be installed
        pass
    return 0


async def _serve(relay: Relay) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, relay.shutdown)
    await relay.run_async()


if __name__ == "__main__":
    sys.exit(main())
