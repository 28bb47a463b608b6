"""The asyncio layer: one `DatagramProtocol` per socket and one timer drive a protocol core.

Everything here forwards datagrams to the core, sends what it returns, runs the callbacks it asks for and
re-arms a single `loop.call_at` timer. A malformed or unexpected datagram is logged and dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import socket
import threading
from typing import Any, Callable, Optional

from pygase._packages import DuplicateSequenceError, Package
from pygase.connection import ClientConnection, ConnectionStatus

logger = logging.getLogger("pygase")

_DISCONNECTED = ConnectionStatus.get("Disconnected")
_background_tasks: set = set()


#: Bytes read from the socket per datagram. A PyGaSe datagram has at most `Package._max_size` (2048) bytes;
#: a longer one arrives cut to this length and the parsers refuse it. asyncio's own default, 256 KiB,
#: allocates 256 KiB per datagram, which glibc serves with an mmap, an mremap and a munmap each time.
_RECEIVE_SIZE = 2 * Package._max_size


def _read_small_datagrams(transport: asyncio.BaseTransport) -> None:
    """Make an asyncio datagram transport read at most `_RECEIVE_SIZE` bytes per datagram."""
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = _RECEIVE_SIZE  # type: ignore[attr-defined]


#: Receive buffer the server asks for: all clients share its one socket, and a burst of their packages
#: that arrives while the server is busy (or not scheduled) must not overflow it. The kernel may grant
#: less (on Linux at most net.core.rmem_max), which is fine.
SERVER_RECEIVE_BUFFER = 1 << 20


def _enlarge_receive_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as error:
        logger.debug("could not enlarge the server's receive buffer: %s", error)


def _describe(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


async def _await_logged(awaitable: Any, name: str) -> Any:
    try:
        return await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("error in %s", name)
        return None


def call_user_function(function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a handler or callback of the user's: log what it raises, run what it returns if awaitable.

    Must be called in the thread of a running event loop if the function may be a coroutine function.
    """
    try:
        result = function(*args, **kwargs)
    except Exception:
        logger.exception("error in %s", _describe(function))
        return
    if inspect.isawaitable(result):
        task = asyncio.get_running_loop().create_task(_await_logged(result, _describe(function)))
        _background_tasks.add(task)
        task.add_done_callback(_background_tasks.discard)


def _receive_or_drop(receive: Callable[..., list], sender: Any, *args: Any) -> Optional[list]:
    """Hand a datagram to a protocol core; log and drop it (return None) if the core will not take it."""
    try:
        return receive(*args)
    except DuplicateSequenceError as error:
        logger.debug("dropped a package from %s: %s", sender, error)
    except ValueError as error:
        logger.debug("dropped a malformed datagram from %s: %s", sender, error)
    except Exception:
        logger.exception("dropped a datagram from %s that could not be handled", sender)
    return None


class LinkSimulator:
    """Delay, drop and duplicate datagrams on a real socket as `pygase.testing.LinkConditions` say."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conditions: Any, seed: Optional[int] = None) -> None:
        self._loop = loop
        self.conditions = conditions
        self._random = random.Random(seed)

    def pass_on(self, function: Callable[..., None], *args: Any) -> None:
        """Call `function(*args)` after the link's delay, maybe twice, maybe never."""
        for delay in self.conditions.delays(self._random):
            if delay <= 0:
                function(*args)
            else:
                self._loop.call_later(delay, function, *args)


class _Timer:
    """One re-armable `loop.call_at` timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: Optional[asyncio.TimerHandle] = None
        self.when: Optional[float] = None

    def arm(self, when: Optional[float]) -> None:
        """Fire at `when` (or never, for None).

        A timer that would fire earlier is kept: it costs one early wake-up, which re-arms, instead of a
        new timer for every datagram (each one moves the connection's timeout a little later).
        """
        if when is None:
            self.cancel()
            return
        if self.when is not None and self.when <= when:
            return
        self.cancel()
        self.when = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self.when = None
        self._callback()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self.when = None


class ClientProtocol(asyncio.DatagramProtocol):
    """Drive a `ClientConnection` on a connected UDP socket."""

    def __init__(self, connection: ClientConnection, closed: asyncio.Future, simulate: Any = None) -> None:
        self.connection = connection
        self.loop = asyncio.get_running_loop()
        self.transport: Optional[asyncio.DatagramTransport] = None
        self._closed = closed
        self._timer = _Timer(self.loop, self._on_timer)
        self._link = LinkSimulator(self.loop, simulate) if simulate is not None else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _read_small_datagrams(transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self._link is not None:
            self._link.pass_on(self._receive, data, addr)
        else:
            self._receive(data, addr)

    def _send(self, datagram: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(datagram)

    def _receive(self, data: bytes, addr: tuple) -> None:
        if self._closed.done():
            return
        events = _receive_or_drop(self.connection.receive_datagram, addr, data, self.loop.time())
        if events is None:
            return
        for event in events:
            call_user_function(self.connection.event_handler.handle, event)
        if events or not self.connection.settled():  # else the timer that is set still holds
            self.flush()

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable while the server is not up yet: keep trying until the timeout
        logger.debug("socket error on connection to %s: %s", self.connection.remote_address, exc)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._timer.cancel()
        if not self._closed.done():
            self._closed.set_result(None)

    def _on_timer(self) -> None:
        self.connection.handle_timer(self.loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what is due, run the callbacks the core asks for and re-arm the timer."""
        connection = self.connection
        if self.transport is not None and not self.transport.is_closing():
            for datagram in connection.datagrams_to_send(self.loop.time()):
                if self._link is not None:
                    self._link.pass_on(self._send, datagram)
                else:
                    self.transport.sendto(datagram)
        for function, args in connection.take_calls():
            call_user_function(function, *args)
        if connection.status == _DISCONNECTED:
            self._timer.cancel()
            if not self._closed.done():
                self._closed.set_result(None)
        else:
            self._timer.arm(connection.get_timer())


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def run_client_connection(
    connection: ClientConnection,
    on_ready: Optional[Callable[[ClientProtocol], None]] = None,
    simulate: Any = None,
) -> None:
    """Operate a client connection on the running loop until it is closed.

    `simulate` (a `pygase.testing.LinkConditions`) puts a simulated bad link in front of the socket.
    """
    loop = asyncio.get_running_loop()
    closed: asyncio.Future = loop.create_future()
    hostname, port = connection.remote_address[:2]
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: ClientProtocol(connection, closed, simulate),
        remote_addr=(hostname, port),
        family=socket.AF_INET,
    )
    if simulate is not None:
        logger.info("simulating a bad link to %s:%s: %s", hostname, port, simulate)
    assert isinstance(protocol, ClientProtocol)
    if on_ready is not None:
        on_ready(protocol)
    logger.info("connecting to %s:%s", hostname, port)
    try:
        protocol.flush()
        await closed
    finally:
        protocol._timer.cancel()
        transport.close()
        if connection.status != _DISCONNECTED:
            connection._close()
        logger.info("connection to %s:%s closed", hostname, port)


class ServerProtocol(asyncio.DatagramProtocol):
    """Drive a `ServerCore` on one UDP socket for all clients."""

    def __init__(
        self,
        core: Any,
        on_event: Callable[[Any, tuple], None],
        on_shutdown_request: Callable[[], None],
        simulate: Any = None,
    ) -> None:
        self.core = core
        self.loop = asyncio.get_running_loop()
        self.transport: Optional[asyncio.DatagramTransport] = None
        self._on_event = on_event
        self._on_shutdown_request = on_shutdown_request
        self._timer = _Timer(self.loop, self.sweep)
        self._sweep_scheduled = False
        self._link = LinkSimulator(self.loop, simulate) if simulate is not None else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _read_small_datagrams(transport)
        _enlarge_receive_buffer(transport, SERVER_RECEIVE_BUFFER)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._timer.cancel()

    def error_received(self, exc: Exception) -> None:
        logger.debug("server socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self._link is not None:
            self._link.pass_on(self._receive, data, addr)
        else:
            self._receive(data, addr)

    def _send(self, datagram: bytes, address: tuple) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._link is not None:
            self._link.pass_on(self._send_now, datagram, address)
        else:
            transport.sendto(datagram, address)

    def _send_now(self, datagram: bytes, address: tuple) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(datagram, address)

    def _receive(self, data: bytes, addr: tuple) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        now = self.loop.time()
        core = self.core
        events = _receive_or_drop(core.receive_datagram, addr, data, addr, now)
        if events is None:
            return
        for event in events:
            self._on_event(event, addr)
        if events or not core.settled(addr):  # else the timer that is set still holds
            self._send_to(addr, now)
        self._hand_on_notifications()
        if core.shutdown_requested:
            self._on_shutdown_request()

    def _send_to(self, address: tuple, now: float) -> None:
        core = self.core
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for datagram in core.datagrams_for(address, now):
            self._send(datagram, address)
        for function, args in core.take_calls(address):
            call_user_function(function, *args)
        connection = core.connections.get(address)
        deadline = connection.get_timer() if connection is not None else None
        if deadline is not None:  # (None would cancel the one timer all connections share)
            self._timer.arm(deadline)

    def request_sweep(self) -> None:
        """Ask for a sweep over all connections soon; callable from any thread, cheap to repeat."""
        if self._sweep_scheduled:
            return
        self._sweep_scheduled = True
        if _in_loop_thread(self.loop):  # the game loop runs on the server's loop: no need to wake it
            self.loop.call_soon(self.sweep)
            return
        try:
            self.loop.call_soon_threadsafe(self.sweep)
        except RuntimeError:  # the loop is closed: the server is gone
            self._sweep_scheduled = False

    def sweep(self) -> None:
        """Run all timers, send everything due (new state first of all) and re-arm the timer."""
        self._sweep_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        now = self.loop.time()
        for datagram, address in self.core.datagrams_to_send(now):
            self._send(datagram, address)
        for function, args in self.core.take_calls():
            call_user_function(function, *args)
        self._hand_on_notifications()
        self._timer.arm(self.core.get_timer())

    def _hand_on_notifications(self) -> None:
        notifications = self.core.notifications
        while notifications:
            event, address = notifications.pop(0)
            self._on_event(event, address)

    def send_shutdown_notices(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for datagram, address in self.core.shutdown_datagrams(self.loop.time()):
            transport.sendto(datagram, address)


class NetworkThread:
    """The one background thread and event loop that all `Client`s of a process share.

    It starts when the first client needs it and stops when the last one is done, so no thread is left
    behind.
    """

    _lock = threading.Lock()
    _users = 0
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _thread: Optional[threading.Thread] = None

    @classmethod
    def acquire(cls) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        """Register one more user; start the thread if needed; return its loop and thread."""
        with cls._lock:
            if cls._loop is None or cls._thread is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    try:
                        loop.run_forever()
                    finally:
                        _cancel_remaining(loop)
                        loop.close()

                thread = threading.Thread(target=run, name="pygase-network", daemon=True)
                thread.start()
                ready.wait()
                cls._loop, cls._thread = loop, thread
            cls._users += 1
            return cls._loop, cls._thread

    @classmethod
    def release(cls) -> None:
        """Unregister a user; the last one stops the loop (and joins the thread unless it is the caller)."""
        with cls._lock:
            cls._users -= 1
            if cls._users > 0 or cls._loop is None:
                return
            loop, thread = cls._loop, cls._thread
            cls._loop = cls._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
