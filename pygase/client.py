"""Connect to PyGaSe servers.

Contents:
- `Client`: main API class for PyGaSe clients

All clients of a process share one background network thread, so a process can run many clients
(bots, tests, benchmarks) cheaply. In an asyncio program, `await client.connect_async(port, hostname)`
runs the client on your own event loop instead, and `await client.disconnect_async()` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from typing import Any, Callable, Optional

from pygase._client_args import checked_event, connect_options
from pygase._client_state import GameStateAccess
from pygase._link import LinkConditions
from pygase._network_thread import NetworkThread
from pygase._rendezvous_io import find_route
from pygase._thread_bridge import loop_running_here
from pygase._transport import ClientProtocol, run_client_connection
from pygase._watch import StateWatches, parse_path
from pygase.connection import ClientConnection, ConnectionStatus
from pygase.event import UniversalEventHandler
from pygase.netstats import ConnectionStatistics, StatisticsMeter

__all__ = ["Client"]

logger = logging.getLogger(__name__)

_DISCONNECTED = ConnectionStatus.get("Disconnected")


class Client(GameStateAccess):
    """Exchange events with a PyGaSe server and access a synchronized game state.

    Arguments:
        simulate: put a simulated bad link (`pygase.testing.LinkConditions`: latency, jitter, loss,
            duplication) between this client and the network, to feel how the game plays on one; by
            default taken from the environment variable `PYGASE_SIMULATE` (e.g. "latency=0.075,loss=0.1")

    Attributes:
        connection (pygase.connection.ClientConnection): object that contains all networking
            information (None before the first `connect`)
        connect_error (OSError): why the last connect failed (what `connect()` raises), or None

    Example:
        from time import sleep
        # Connect a client to the server from the Backend code example
        client = Client()
        client.connect_in_thread(hostname="localhost", port=8080)
        # Increase `bar` five times, then reset `foo`
        for i in range(5):
            client.dispatch_event("SET_BAR", new_bar=i)
            sleep(1)
        client.dispatch_event("RESET_FOO")
    """

    def __init__(self, simulate: Optional[LinkConditions] = None) -> None:
        self.simulate = simulate if simulate is not None else LinkConditions.from_environment()
        self.connection: Optional[ClientConnection] = None
        self._event_handler = UniversalEventHandler()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._protocol: Optional[ClientProtocol] = None
        self._network_thread: Optional[threading.Thread] = None
        self._done = threading.Event()
        self._done.set()
        self._state_changed = threading.Condition()
        self._state_version = 0
        self._state_waiters = 0
        self._disconnect_handlers: list[Callable[[], Any]] = []
        self._state_listeners: list[Callable[[Any], Any]] = []
        self._watches = StateWatches()
        self._meter = StatisticsMeter()
        self._meter_lock = threading.Lock()

    # ---- connecting ---------------------------------------------------------------------------------

    def _new_connection(
        self, port: Optional[int], hostname: str, options: dict, loop: Any, thread: Optional[threading.Thread]
    ) -> ClientConnection:
        if not self._done.is_set():
            raise RuntimeError("the client is already connected; disconnect it first")
        previous, options = self.connection, dict(options)
        rendezvous = options.pop("rendezvous", None)
        connection = ClientConnection((hostname, port or 0), self._event_handler, **options)
        if rendezvous is not None:
            connection.room, connection.route, connection._rendezvous = rendezvous[1], None, rendezvous
        if previous is not None and _target(previous) == _target(connection):
            connection._seat_token = previous._seat_token  # the same player again, if its seat is kept
        self._loop, self._network_thread = loop, thread  # before anything can ask to disconnect
        connection._on_state_change = self._notify_state_change
        connection._state_listeners = self._state_listeners
        connection._watches = self._watches
        self.connection = connection
        with self._meter_lock:
            self._meter.sample(connection)  # the baseline the first rates are measured from
        self._done.clear()
        return connection

    async def _operate(self, connection: ClientConnection, log_failure: bool = False) -> None:
        def ready(protocol: ClientProtocol) -> None:
            self._protocol = protocol

        try:
            sock = None
            if connection._rendezvous is not None:  # first a route to the room's host, through the relay
                sock, route = await find_route(*connection._rendezvous)
                connection.remote_address = route.address
                connection.route = "relay" if route.relayed else "direct"
            await run_client_connection(connection, ready, self.simulate, sock)
        except OSError as error:  # the socket could not be opened (a hostname that does not resolve ...)
            kind = (
                type(error) if isinstance(error, (ConnectionRefusedError, TimeoutError)) else ConnectionError
            )
            connection._fail(kind, str(error))
        except ValueError as error:  # (a room code or relay checked when connect was called: not expected)
            connection._fail(ConnectionError, str(error))
        finally:
            self._protocol = None
            failure = connection.connect_error()
            if failure is not None and log_failure:
                logger.error("%s", failure)  # connect_in_thread: nobody else would hear of it
            for handler in self._disconnect_handlers:
                try:
                    result = handler()
                    if inspect.isawaitable(result):
                        await result  # to the end, before the shared loop may stop
                except Exception:
                    logger.exception("error in disconnect handler %r", handler)
            self._done.set()
            self._notify_state_change()

    def connect(
        self,
        port: Optional[int] = None,
        hostname: str = "localhost",
        password: Optional[str] = None,
        join_data: Optional[dict] = None,
        room: Optional[str] = None,
        relay: Optional[str] = None,
    ) -> Any:
        """Open a connection to a PyGaSe server.

        This is a blocking function: it returns when the connection ends (`disconnect()`, a server shutdown,
        a timeout) or raises if it could not be established; `connect_in_thread()` connects in the background.
        Where an asyncio loop runs it returns the coroutine `connect_async()` to await or spawn, as 0.3.1 did.

        Arguments:
            port: port number of the server to which to connect
            hostname: hostname or IP address (IPv4 or IPv6) of the server to which to connect
            password: the session password, if the server has one
            join_data: a small dict for the game (e.g. `{"name": "Ann"}`), which its `CLIENT_JOINED`
                handler gets; at most 1 KiB packed
            room: instead of port and hostname, the room code of a server registered with a relay
                (`Backend.run(..., relay=...)`): the client learns the host's address there and
                reaches it through both routers, or, where that fails, through the relay
                (`statistics().route` says which)
            relay: the relay's "HOST:PORT" (default: the environment variable PYGASE_RELAY)

        Raises:
            TypeError: if `port` is not an int or `hostname` not a str (it is `connect(port, hostname)`),
                or `join_data` not a dict that can be sent
            ValueError: if `port` is not in 1-65535, or `join_data` is too large
            ConnectionRefusedError: if the server refused this client (wrong password, server full, or
                the game turned the player away: its reason), or nothing listens at that address (after
                `connection.refused_patience`, 1 s), or the relay knows no such room
            TimeoutError: if nothing answered within `connection.timeout` (5 s), or the relay did not
                answer, or no route to the room's host worked
            ConnectionError: if no socket could be opened for the address (a hostname that does not resolve)
        """
        options = connect_options("connect", port, hostname, password, join_data, room, relay)
        if loop_running_here():
            return self.connect_async(port, hostname, password, join_data, room, relay)
        self._start_in_thread(port, hostname, options, log_failure=False)
        self._done.wait()
        self._leave_network_thread()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self.connect_error is not None:
            raise self.connect_error

    @property
    def player_id(self) -> Optional[int]:
        """This client's player id on the server (1, 2, 3 ..., never reused); None until joined: wait with
        `wait_until(lambda state: client.player_id in state.players)`, say. Connecting again within the
        server's grace period gives the same one."""
        return self.connection.player_id if self.connection is not None else None

    @property
    def refused_reason(self) -> Optional[str]:
        """Why the server refused this client ('wrong password', 'server full' ...), or None."""
        return self.connection.refused_reason if self.connection is not None else None

    @property
    def connect_error(self) -> Optional[OSError]:
        """Why the last connect failed, as a new instance of the exception `connect()` raises; or None.

        None while connecting, once the client joined the server, and if `disconnect()` ended the attempt.
        `connect_in_thread()` users can look here (or at the ERROR it logs) after the connection ended.
        """
        return self.connection.connect_error() if self.connection is not None else None

    def connect_in_thread(
        self,
        port: Optional[int] = None,
        hostname: str = "localhost",
        password: Optional[str] = None,
        join_data: Optional[dict] = None,
        room: Optional[str] = None,
        relay: Optional[str] = None,
    ) -> threading.Thread:
        """Open a connection in a separate thread.

        See `Client.connect()`. The thread is the network thread all clients of this process share; it
        ends when the last of them disconnects. If the connection cannot be established (the server
        refuses the client, nothing listens at the address, nothing answers) it ends, the reason is logged
        at ERROR, `connect_error` (and `refused_reason`) say why, and `wait_until()` and `try_to()` raise
        a `ConnectionError` with the reason.

        Returns:
            the thread the client loop runs in

        Raises:
            TypeError: if `port` is not an int or `hostname` not a str (the order is
                `connect_in_thread(port, hostname)`)
            ValueError: if `port` is not in 1-65535
        """
        options = connect_options("connect_in_thread", port, hostname, password, join_data, room, relay)
        return self._start_in_thread(port, hostname, options, log_failure=True)

    def _start_in_thread(
        self, port: Optional[int], hostname: str, options: dict, log_failure: bool
    ) -> threading.Thread:
        loop, thread = NetworkThread.acquire()
        try:
            connection = self._new_connection(port, hostname, options, loop, thread)
        except BaseException:
            NetworkThread.release()
            raise
        future = asyncio.run_coroutine_threadsafe(self._operate(connection, log_failure), loop)
        future.add_done_callback(lambda _: NetworkThread.release())
        return thread

    async def connect_async(
        self,
        port: Optional[int] = None,
        hostname: str = "localhost",
        password: Optional[str] = None,
        join_data: Optional[dict] = None,
        room: Optional[str] = None,
        relay: Optional[str] = None,
    ) -> None:
        """Run a connection on the running event loop until it ends (see `Client.connect()`: `join_data`).

        Raises:
            TypeError: if `port` is not an int or `hostname` not a str (the order is
                `connect_async(port, hostname)`), or `join_data` cannot be sent
            ValueError: if `port` is not in 1-65535, or `join_data` is too large
            ConnectionRefusedError: if the server refused this client (wrong password, server full, the
                game's reason), or nothing listens at that address
            TimeoutError: if nothing answered within `connection.timeout` (5 s)
            ConnectionError: if no socket could be opened for the address
        """
        options = connect_options("connect_async", port, hostname, password, join_data, room, relay)
        connection = self._new_connection(port, hostname, options, asyncio.get_running_loop(), None)
        await self._operate(connection)
        self._raise_if_failed()

    def _leave_network_thread(self) -> None:
        # If this client was the last user of the shared network thread, wait for it to finish.
        thread = self._network_thread
        if thread is None or thread is threading.current_thread():
            return
        if NetworkThread._thread is not thread:
            thread.join(timeout=5.0)

    def disconnect(self, shutdown_server: bool = False) -> Optional[asyncio.Future]:
        """Close the client connection.

        Blocks until the server confirmed it (or a short timeout passed). Called in the client's own
        event loop (an event handler, or a coroutine of a program that used `connect_async`), it returns
        at once with a future that an asyncio program can await: `await client.disconnect()`.
        `disconnect_async()` is the coroutine version.

        Arguments:
            shutdown_server: whether or not the server should be shut down (only has an effect if the
                client has host permissions)
        """
        if not self._request_disconnect(shutdown_server):
            return None
        if self._in_loop_thread():
            return asyncio.ensure_future(self._wait_done())
        self._done.wait(timeout=3.0)
        self._leave_network_thread()
        return None

    async def _wait_done(self, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def disconnect_async(self, shutdown_server: bool = False) -> None:
        """Close the client connection without blocking the event loop (see `disconnect()`)."""
        if self._request_disconnect(shutdown_server):
            await self._wait_done()

    def _request_disconnect(self, shutdown_server: bool) -> bool:
        connection = self.connection
        if connection is None or self._done.is_set():
            return False
        self._run_in_loop(lambda: connection.shutdown(shutdown_server))
        return True

    # ---- running code in the network loop -------------------------------------------------------------

    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _run_in_loop(self, function: Callable[[], None]) -> None:
        def run() -> None:
            function()
            if self._protocol is not None:
                self._protocol.flush()

        loop = self._loop
        if loop is None:
            return
        if self._in_loop_thread():
            run()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: the connection is over anyway
                loop.call_soon_threadsafe(run)

    # ---- events ---------------------------------------------------------------------------------------

    def dispatch_event(
        self,
        event_type: str,
        *args: Any,
        retries: int = 0,
        ack_callback: Optional[Callable[..., Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Send an event to the server.

        Callable from any thread; the event goes out at once.

        Arguments:
            event_type: event type identifier that links to a handler
            retries: number of times the event is to be resent in case it is lost
            ack_callback: function or coroutine function invoked (without arguments) after the event was
                received; it should not block, as it runs in the network thread
            *args, **kwargs: event data passed to the handler function

        Events of any size up to `connection.max_event_size` (1 MiB, or the server's lower limit) can be
        sent: large ones travel in parts. Events are handled on the server exactly once and in the order
        they were sent (one that is lost for good is skipped).

        Raises:
            RuntimeError: if the client never connected
            TypeError: if the event data cannot be sent, or a keyword argument has a name the server
                passes to handlers itself (`game_state`, `dt`, `client_address`, `sender_id`)
            ValueError: if the event is larger than `connection.max_event_size`
        """
        connection = self.connection
        if connection is None:
            raise RuntimeError("the client is not connected: call connect() or connect_in_thread() first")
        event = checked_event(event_type, args, kwargs, connection.max_event_size)
        if self._done.is_set():
            failure = connection.connect_error()
            reason = f" ({failure})" if failure is not None else ""
            logger.warning("the client is disconnected%s: event %r not sent", reason, event_type)
            return
        self._run_in_loop(lambda: connection.dispatch_event(event, ack_callback, None, retries))

    def statistics(self) -> ConnectionStatistics:
        """Return how the connection performs: RTT, update rate, loss and bandwidth over the last seconds.

        Raises:
            RuntimeError: if the client never connected
        """
        if self.connection is None:
            raise RuntimeError("the client has no statistics yet: call connect() first")
        with self._meter_lock:
            return self._meter.sample(self.connection)

    def register_state_listener(self, listener: Callable[[Any], Any]) -> None:
        """Register a function called with the game state right after each state update arrives.

        It runs in the network thread while the state is locked, so it must be quick: copy what you
        need (positions for interpolation, say) and return. What it raises is logged.
        """
        self._state_listeners.append(listener)
        if self.connection is not None:
            self.connection._state_listeners = self._state_listeners

    def on_change(self, path: Any, callback: Callable[[Any, Any], Any]) -> None:
        """Call `callback(old, new)` when the part of the game state at `path` changed.

        Like Colyseus' `listen`: `client.on_change("players", f)` calls `f` whenever an update changed
        `players` (a player joined, left or moved); `client.on_change(("players", 3, "score"), f)` only
        when player 3's score changed. `old` and `new` are copies of the values before and after (None
        where there was, or is, nothing). The callback runs in the network thread, after the state lock
        is released, once per update that changed the value; what it raises is logged. What is there
        when you register counts as seen: the first call comes with the first change after it.

        Arguments:
            path: an attribute name, or a tuple of the attribute name and the keys below it
            callback: a function of two arguments (old, new)

        Raises:
            TypeError: for a path that is not a name or a tuple of a name and keys, or a callback that
                cannot be called with two arguments
        """
        path = parse_path(path)
        if not callable(callback):
            raise TypeError(f"on_change needs a callable callback, got {callback!r}")
        try:
            inspect.signature(callback).bind(None, None)
        except TypeError:
            raise TypeError(
                f"the change callback {getattr(callback, '__qualname__', callback)!r} must take two "
                "arguments, (old, new)"
            ) from None
        except ValueError:
            pass  # a builtin without a signature: let it be
        connection = self.connection
        if connection is None or connection.updates_received == 0:
            self._watches.add(path, callback, None)
            return
        with connection.game_state_context() as game_state:  # registered in between two updates
            self._watches.add(path, callback, game_state.__dict__)

    def register_disconnect_handler(self, handler: Callable[[], Any]) -> None:
        """Register a function (or coroutine function) called without arguments when the connection ends.

        It ends after `disconnect()`, or when the server stayed silent for `connection.timeout` seconds
        (after a server shutdown, a server that never answered, or a link that broke). The handler runs in
        the network thread.
        """
        self._disconnect_handlers.append(handler)

    def register_event_handler(self, event_type: str, event_handler_function: Callable[..., Any]) -> None:
        """Register an event handler for a specific event type.

        Arguments:
            event_type: event type to link the handler function to
            event_handler_function: function or coroutine function called with the event's data for
                received events of the given type (it runs in the network thread)
        """
        self._event_handler.register_event_handler(event_type, event_handler_function)


def _target(connection: ClientConnection) -> Any:
    """What a connection was asked to join: a room code, or the server's address."""
    return ("room", connection.room) if connection.room is not None else connection.remote_address
