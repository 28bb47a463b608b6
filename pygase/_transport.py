"""The asyncio layer: one `DatagramProtocol` per socket and one timer drive a protocol core.

Everything here forwards datagrams to the core, sends what it returns, runs the callbacks it asks for and
re-arms a single `loop.call_at` timer. A malformed or unexpected datagram is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import threading
from typing import Any, Callable, Optional

from pygase._client_core import ClientCore as ClientConnection
from pygase._connection import DISCONNECTED
from pygase._link import LinkSimulator
from pygase._outputs import OutputSink, deliver
from pygase._packages import DuplicateSequenceError
from pygase._ratelimit import RateLimitedLog
from pygase._rendezvous import MAGIC as RENDEZVOUS_MAGIC
from pygase._sockets import (
    CLIENT_RECEIVE_BUFFER,
    SERVER_RECEIVE_BUFFER,
    Drain,
    client_socket,
    enlarge_receive_buffer,
    read_small_datagrams,
)
from pygase.event import CLIENT_DROPPED, CLIENT_JOINED, CLIENT_LEFT, CLIENT_RETURNED, Event
from pygase.utils import _address_text

logger = logging.getLogger("pygase")
#: What others can make this process log at wire speed (datagrams dropped, socket errors), throttled.
_throttled = RateLimitedLog(logger)

_DISCONNECTED = DISCONNECTED
_background_tasks: set = set()


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


def _receive_or_drop(receive: Callable[..., None], sender: Any, *args: Any) -> bool:
    """Hand a datagram to a protocol core; log and drop it (return False) if the core will not take it."""
    try:
        receive(*args)
        return True
    except DuplicateSequenceError as error:
        _throttled.debug("duplicate", None, "dropped a package from %s: %s", sender, error)
    except ValueError as error:
        _throttled.debug("malformed", None, "dropped a malformed datagram from %s: %s", sender, error)
    except Exception:
        _throttled.log(
            logging.ERROR,
            "unhandled",
            None,
            "dropped a datagram from %s that could not be handled",
            sender,
            exc_info=True,
        )
    return False


class _ClientSink(OutputSink):
    """What a client does with its core's outputs: handlers and callbacks run in the loop's thread."""

    def __init__(self, connection: ClientConnection) -> None:
        self._handle = connection.event_handler.handle

    def event_received(self, event: Any, address: Optional[tuple], player_id: Optional[int]) -> None:
        call_user_function(self._handle, event)

    def callback_due(self, function: Callable[..., Any], args: tuple) -> None:
        call_user_function(function, *args)


class _ServerSink(OutputSink):
    """What a server does with its core's outputs: events and the players coming and going go to the
    server's `on_event(event, address, context)` (CLIENT_JOINED ... as events; `context`: the names the
    handler may declare, `sender_id` or `player_id` and `join_data`), callbacks run here."""

    def __init__(
        self, on_event: Callable[[Any, tuple, dict], None], on_shutdown_request: Callable[[], None]
    ) -> None:
        self._on_event = on_event
        self._on_shutdown_request = on_shutdown_request

    def event_received(self, event: Any, address: Optional[tuple], player_id: Optional[int]) -> None:
        assert address is not None
        self._on_event(event, address, {"sender_id": player_id})

    def callback_due(self, function: Callable[..., Any], args: tuple) -> None:
        call_user_function(function, *args)

    def client_joined(self, address: tuple, player_id: int, join_data: Any) -> None:
        self._on_event(Event(CLIENT_JOINED), address, {"player_id": player_id, "join_data": join_data})

    def client_left(self, address: tuple, player_id: int) -> None:
        self._on_event(Event(CLIENT_LEFT), address, {"player_id": player_id})

    def client_dropped(self, address: tuple, player_id: int) -> None:
        self._on_event(Event(CLIENT_DROPPED), address, {"player_id": player_id})

    def client_returned(self, address: tuple, player_id: int) -> None:
        self._on_event(Event(CLIENT_RETURNED), address, {"player_id": player_id})

    def shutdown_requested(self, address: tuple) -> None:
        self._on_shutdown_request()


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

    def __init__(
        self,
        connection: ClientConnection,
        closed: asyncio.Future,
        simulate: Any = None,
        sock: Optional[socket.socket] = None,
    ) -> None:
        self.connection = connection
        # (not with a simulated link: its datagrams arrive late on purpose, long after they were read)
        self._drain = Drain(sock if simulate is None else None, self._take, self.error_received)
        self.loop = asyncio.get_running_loop()
        self.transport: Optional[asyncio.DatagramTransport] = None
        self._closed = closed
        self._timer = _Timer(self.loop, self._on_timer)
        self._link = LinkSimulator(self.loop, simulate) if simulate is not None else None
        self._sink = _ClientSink(connection)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        read_small_datagrams(transport)
        enlarge_receive_buffer(transport, CLIENT_RECEIVE_BUFFER)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self._link is not None:
            self._link.pass_on(self._receive, data, addr)
            return
        self._take(data, addr)
        self._drain.after(len(data), self.loop.time())
        if not self._closed.done() and not self.connection.settled():
            # (else the timer that is set still holds and nothing is due)
            self.flush()  # once for all the datagrams read: one ack for the lot

    def _take(self, data: bytes, addr: tuple) -> None:
        if not self._closed.done():
            _receive_or_drop(
                self.connection.receive_datagram, addr, data, self.loop.time(), self._drain.waited
            )

    def _send(self, datagram: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(datagram)

    def _receive(self, data: bytes, addr: tuple) -> None:
        if self._closed.done():
            return
        if not _receive_or_drop(self.connection.receive_datagram, addr, data, self.loop.time()):
            return
        if not self.connection.settled():  # else the timer that is set still holds (and nothing is due)
            self.flush()

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable: the core decides whether the connect has failed (nothing listens
        # there) or the server is restarting (it answered before: keep trying)
        logger.debug("socket error on connection to %s: %s", self.connection.remote_address, exc)
        if self._closed.done() or not isinstance(exc, OSError):
            return
        self.connection.receive_network_error(exc, self.loop.time())
        if self.connection.status == _DISCONNECTED:
            self.flush()  # runs what the close asks for and ends the connection

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._timer.cancel()
        if not self._closed.done():
            self._closed.set_result(None)

    def _on_timer(self) -> None:
        self.connection.handle_timer(self.loop.time())
        self.flush()

    def flush(self) -> None:
        """Hand on what the core reports, send what is due and re-arm the timer."""
        connection = self.connection
        deliver(connection.events(), self._sink)  # events that arrived first, then what they cause
        if self.transport is not None and not self.transport.is_closing():
            for datagram in connection.datagrams_to_send(self.loop.time()):
                if self._link is not None:
                    self._link.pass_on(self._send, datagram)
                else:
                    self.transport.sendto(datagram)
        deliver(connection.events(), self._sink)
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
    sock: Optional[socket.socket] = None,
) -> None:
    """Operate a client connection on the running loop until it is closed.

    `simulate` (a `pygase.testing.LinkConditions`) puts a simulated bad link in front of the socket.
    `sock`: a socket connected to the server to use (one a rendezvous found a route with), else one is
    opened for the connection's `remote_address`.
    """
    loop = asyncio.get_running_loop()
    closed: asyncio.Future = loop.create_future()
    hostname, port = connection.remote_address[:2]
    if sock is None:
        sock, address = await client_socket(hostname, port)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: ClientProtocol(connection, closed, simulate, sock), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    if simulate is not None:
        logger.info("simulating a bad link to %s: %s", _address_text((hostname, port)), simulate)
    assert isinstance(protocol, ClientProtocol)
    if on_ready is not None:
        on_ready(protocol)
    logger.info("connecting to %s", _address_text((hostname, port)))
    try:
        protocol.flush()
        await closed
    finally:
        protocol._timer.cancel()
        transport.close()
        if connection.status != _DISCONNECTED:
            connection._close()
        logger.info("connection to %s closed", _address_text((hostname, port)))


#: Up to this many clients the thread that pushes a new state (the game loop's) sends it itself.
DIRECT_SWEEP_LIMIT = 16


class ServerProtocol(asyncio.DatagramProtocol):
    """Drive a `ServerCore` on one UDP socket for all clients.

    The core is used from the event loop's thread and, for the sweep that sends a new state, from the
    thread that pushed the state (the game loop's): that sweep sends straight on `sock`, so a tick costs
    no wake-up of the network thread. `_core_lock` guards the core; user callbacks run outside it, in the
    loop's thread.
    """

    def __init__(
        self,
        core: Any,
        on_event: Callable[[Any, tuple, dict], None],
        on_shutdown_request: Callable[[], None],
        simulate: Any = None,
        sock: Optional[socket.socket] = None,
    ) -> None:
        self.core = core
        self.loop = asyncio.get_running_loop()
        self.transport: Optional[asyncio.DatagramTransport] = None
        self._sink = _ServerSink(on_event, on_shutdown_request)
        self._timer = _Timer(self.loop, self.sweep)
        self._sweep_scheduled = False
        self._link = LinkSimulator(self.loop, simulate) if simulate is not None else None
        # Sent on directly from other threads; not with a simulated link, whose delays need the loop.
        self._sock = sock if self._link is None else None
        self._drain = Drain(self._sock, self._take, self.error_received)
        self._core_lock = threading.RLock()
        self._closed = False  # no more sends from other threads (guarded by _core_lock)
        #: Takes the rendezvous datagrams (`pygase._rendezvous`) when the server is registered with a relay.
        self.rendezvous: Optional[Callable[[bytes, tuple], None]] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        read_small_datagrams(transport)
        enlarge_receive_buffer(transport, SERVER_RECEIVE_BUFFER)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        with self._core_lock:
            self._closed = True
        self._timer.cancel()

    def error_received(self, exc: Exception) -> None:
        _throttled.debug("socket error", None, "server socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._take(data, addr)
        self._drain.after(len(data), self.loop.time())

    def _take(self, data: bytes, addr: tuple) -> None:
        if data[:4] == RENDEZVOUS_MAGIC:  # the relay, or a player punching through the routers
            if self.rendezvous is not None:
                self.rendezvous(data, addr)
        elif self._link is not None:
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
        with self._core_lock:
            if not _receive_or_drop(core.receive_datagram, addr, data, addr, now, self._drain.waited):
                return
            if core.settled(addr):  # nothing to report or send: the timer that is set still holds
                return
            outputs = core.events()
        deliver(outputs, self._sink)  # the events first: their handlers may queue an answer
        self._send_to(addr, now)

    def _send_to(self, address: tuple, now: float) -> None:
        core = self.core
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        with self._core_lock:
            for datagram in core.datagrams_for(address, now):
                self._send(datagram, address)
            outputs = core.events()
            connection = core.connections.get(address)
            deadline = connection.get_timer() if connection is not None else None
        deliver(outputs, self._sink)
        if deadline is not None:  # (None would cancel the one timer all connections share)
            self._timer.arm(deadline)

    def decide_join(self, player_id: int, refusal: Optional[str]) -> None:
        """Let a joining player in (`refusal` None) or turn it away with that reason; any thread."""

        def decide() -> None:
            with self._core_lock:
                now = self.loop.time()
                if refusal is None:
                    self.core.accept_join(player_id, now)
                else:
                    self.core.refuse_join(player_id, refusal, now)
            self.sweep()

        if _in_loop_thread(self.loop):
            decide()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self.loop.call_soon_threadsafe(decide)

    def dispatch_event(self, event: Any, target_client: Any, retries: int, ack_callback: Any) -> None:
        """Queue an event in the core and send it at once (in the loop's thread)."""
        with self._core_lock:
            self.core.dispatch_event(event, target_client, retries, ack_callback)
        self.sweep()

    def request_sweep(self) -> None:
        """Send a new state to the clients: at once if called from another thread than the loop's (the
        game loop's) while there are few clients, else soon from the loop's thread; callable from any
        thread, cheap to repeat.

        Sending from the game loop's thread saves waking the network thread, which is most of what a
        tick costs with a client or two; with many clients the sends would lengthen the tick instead.
        """
        if (
            self._sock is not None
            and len(self.core.connections) <= DIRECT_SWEEP_LIMIT
            and not _in_loop_thread(self.loop)
        ):
            try:
                self._sweep_elsewhere()
                return
            except Exception:
                logger.exception("could not send the new state from this thread; the server's loop will")
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

    def _sweep_elsewhere(self) -> None:
        """A sweep in a thread other than the loop's: send on the socket directly; leave what the core
        reports and an earlier timer to the loop (rare: a sweep after a tick seldom has any)."""
        assert self._sock is not None
        with self._core_lock:
            if self._closed:
                return
            now = self.loop.time()
            for datagram, address in self.core.datagrams_to_send(now):
                try:
                    self._sock.sendto(datagram, address)
                except (BlockingIOError, InterruptedError):  # the socket's buffer is full: queue it
                    self.loop.call_soon_threadsafe(self._send, datagram, address)
                except OSError as error:
                    _throttled.debug("send error", None, "could not send to %s: %s", address, error)
            outputs = self.core.events()
            deadline = self.core.get_timer()
            armed = self._timer.when
            loop_needed = bool(outputs or (deadline is not None and (armed is None or deadline < armed)))
        if loop_needed:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
                self.loop.call_soon_threadsafe(self._finish_sweep, outputs)

    def _finish_sweep(self, outputs: list) -> None:
        """In the loop's thread, after a sweep: hand on what the core reported, re-arm the timer."""
        deliver(outputs, self._sink)
        with self._core_lock:
            deadline = self.core.get_timer()
        self._timer.arm(deadline)

    def sweep(self) -> None:
        """Run all timers, send everything due (new state first of all) and re-arm the timer."""
        self._sweep_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        now = self.loop.time()
        with self._core_lock:
            for datagram, address in self.core.datagrams_to_send(now):
                self._send(datagram, address)
            outputs = self.core.events()
        self._finish_sweep(outputs)

    def send_shutdown_notices(self) -> None:
        """Tell every client that the server shuts down; nothing is sent from other threads after this."""
        with self._core_lock:
            self._closed = True
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            for datagram, address in self.core.shutdown_datagrams(self.loop.time()):
                transport.sendto(datagram, address)
