"""Serve PyGaSe clients.

Provides the `Server` class and all PyGaSe components that deal with progression and syncing of game
states.

Contents:
- `GameStateStore`: main API class for game state repositories
- `Server`: main API class for PyGaSe servers
- `GameStateMachine`: main API class for game logic components
- `Backend`: main API class for a fully integrated PyGaSe backend

Every blocking method has a coroutine twin for asyncio programs that run without threads:
`Server.run_async` / `Server.shutdown_async`, `GameStateMachine.run_game_loop_async` /
`GameStateMachine.stop_async` and `Backend.run_async` / `Backend.shutdown_async`::

    async def main():
        backend = Backend(GameState(foo=0), time_step)
        task = asyncio.create_task(backend.run_async("localhost", 8080))
        ...
        await backend.shutdown_async()
        await task

As in PyGaSe 0.3.1 the blocking methods "can also be spawned as a coroutine": called where an asyncio
event loop runs, `run()` and `run_game_loop()` return their coroutine (`asyncio.create_task(server.run(
8080))`, `await backend.run("localhost", 8080)`), and `shutdown()` and `stop()` an awaitable future.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Coroutine, Iterable, Optional

from pygase._event_router import event_router
from pygase._game_loop import GameStateMachine
from pygase._server_core import MAX_CLIENTS_PER_IP, ServerCore
from pygase._sockets import bind_server_socket
from pygase._store import GameStateStore
from pygase._thread_bridge import AwaitableEvent, in_thread_of, loop_running_here
from pygase._transport import ServerProtocol
from pygase.connection import ServerConnection
from pygase.event import Event, UniversalEventHandler
from pygase.gamestate import GameState
from pygase.utils import _listening_on

__all__ = ["GameStateStore", "Server", "GameStateMachine", "Backend"]

logger = logging.getLogger(__name__)


class Server:
    """Listen to clients and orchestrate the flow of events and state updates.

    The Server instance does not contain game logic or state, it is only responsible for connections to
    clients. The state is provided by a `GameStateStore` and game logic by a `GameStateMachine`.

    Arguments:
        game_state_store: part of the backend that provides an interface to the `pygase.GameState`
        password: session password clients must know to join (`Client.connect(..., password=...)`)
        max_clients: clients beyond this many are refused ("server full")
        max_events_per_second: events one client may send per second (bursts of twice that); more are
            dropped and logged
        max_event_size: largest event in bytes a client may send
        simulate: put a simulated bad link (`pygase.testing.LinkConditions`) between the server and
            all its clients, for testing
        max_clients_per_ip: clients from one public IP address (one /64 network for IPv6) beyond this
            many are refused ("too many clients from this IP address"), so one host cannot take every
            place; 16 by default. Loopback and private (LAN) addresses are exempt. Players behind one
            NAT share an address: raise it for a large group that plays on an internet server together.
            None: no limit.
        rejoin_grace: seconds a player whose connection was lost keeps its seat and player id
            (`CLIENT_DROPPED`); its client connecting again within them gets both back
            (`CLIENT_RETURNED`), else `CLIENT_LEFT` comes when they are over. 0: leave at once.

    Every player that joins gets a player id (1, 2, 3 ... in the order they joined, never reused while
    the server runs): `CLIENT_JOINED` and `CLIENT_LEFT` handlers may declare `player_id` (and the former
    `join_data`, the dict the client joined with), and every event handler `sender_id`, the id of the
    player who sent the event. A `CLIENT_JOINED` handler may turn a player away by raising
    `pygase.JoinRefused("reason")`; the player is let in only after that handler has run.

    A client joins with a handshake (a stateless cookie) before the server keeps any state for it; the
    first client to join becomes the host and receives a secret token that host-only requests (shutting
    the server down) must carry.

    Attributes:
        connections (dict): contains each client's address as a key leading to the corresponding
            `pygase.connection.ServerConnection` instance
        host_client (tuple): address of the host client (who has permission to shutdown the server), if
            there is any
        game_state_store (GameStateStore): game state repository

    Received events go to the handler registered here for their type if there is one, and otherwise to
    the event wire (usually a `GameStateMachine`).
    """

    def __init__(
        self,
        game_state_store: GameStateStore,
        password: Optional[str] = None,
        max_clients: int = 64,
        max_events_per_second: float = 200.0,
        max_event_size: int = 1024 * 1024,
        simulate: Any = None,
        max_clients_per_ip: Optional[int] = MAX_CLIENTS_PER_IP,
        rejoin_grace: float = 30.0,
    ) -> None:
        self.game_state_store = game_state_store
        self.simulate = simulate
        self._event_handler = UniversalEventHandler()
        self._core = ServerCore(
            game_state_store,
            self._event_handler,
            password,
            max_clients,
            max_events_per_second,
            max_event_size,
            connection_class=ServerConnection,
            max_clients_per_ip=max_clients_per_ip,
            rejoin_grace=rejoin_grace,
            decide_joins=True,  # (a player waits until its CLIENT_JOINED handler ran)
        )
        self._hostname: Optional[str] = None
        self._port: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._protocol: Optional[ServerProtocol] = None
        self._stop: Optional[asyncio.Event] = None
        self._bound = threading.Event()
        self._finished = AwaitableEvent()
        self._finished.set()

    @property
    def connections(self) -> dict:
        # A copy: the server's threads add and remove connections while a caller may be iterating.
        return dict(self._core.connections)

    @property
    def host_client(self) -> Optional[tuple]:
        return self._core.host_client

    @host_client.setter
    def host_client(self, address: Optional[tuple]) -> None:
        self._core.host_client = address

    @property
    def password(self) -> Optional[str]:
        """The session password clients must know to join (None: anyone may join); read-only."""
        return self._core.password

    @property
    def hostname(self) -> Optional[str]:
        """Get the hostname or IP address on which the server listens.

        Returns None when the server is not running.
        """
        return self._hostname

    @property
    def port(self) -> Optional[int]:
        """Get the port number on which the server listens.

        Returns None when the server is not running.
        """
        return self._port

    def run(
        self, port: int = 0, hostname: str = "localhost", event_wire: Any = None
    ) -> Optional[Coroutine[Any, Any, None]]:
        """Start the server under a specified address.

        This is a blocking function; use `Server.run_in_thread()` to run it in a thread, or await
        `Server.run_async()` in an asyncio program. Called where an asyncio event loop runs, it does not
        block but returns that coroutine, to await or spawn: `asyncio.create_task(server.run(8080))`.

        Arguments:
            port: port number the server will be bound to, default will be an available port chosen by
                the computer's network controller
            hostname: hostname or IP address the server will be bound to. Defaults to `'localhost'`.
            event_wire: object to which events are to be repeated (has to implement a `_push_event(event)`
                method and is typically a `GameStateMachine`)

        Raises:
            OSError: if the address cannot be bound (for example, the port is in use)
        """
        if loop_running_here():
            return self.run_async(port, hostname, event_wire)
        asyncio.run(self.run_async(port, hostname, event_wire))
        return None

    def run_in_thread(
        self, port: int = 0, hostname: str = "localhost", event_wire: Any = None, daemon: bool = True
    ) -> threading.Thread:
        """Start the server in a separate thread.

        See `Server.run()`. Returns once the server listens, so `Server.port` is set.

        Returns:
            the thread the server loop runs in

        Raises:
            OSError: if the address cannot be bound
        """
        errors: list[BaseException] = []
        self._bound.clear()

        def run() -> None:
            try:
                self.run(port, hostname, event_wire)
            except BaseException as error:
                errors.append(error)
                self._bound.set()
                if not isinstance(error, OSError):
                    logger.exception("the server stopped with an error")

        thread = threading.Thread(target=run, name="pygase-server", daemon=daemon)
        thread.start()
        self._bound.wait()
        if errors:
            thread.join()
            raise errors[0]
        return thread

    async def run_async(self, port: int = 0, hostname: str = "localhost", event_wire: Any = None) -> None:
        """Run the server on the running event loop until it is shut down (see `Server.run()`)."""
        if not self._finished.is_set():
            raise RuntimeError("the server is already running")
        self._finished.clear()
        loop = asyncio.get_running_loop()
        core = self._core
        core.event_wire = event_wire
        core.shutdown_requested = False
        for connection in core.connections.values():
            connection.event_wire = event_wire
        stop = asyncio.Event()
        on_event = event_router(self._event_handler, event_wire, lambda: protocol)

        try:
            sock = await bind_server_socket(hostname, port)
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: ServerProtocol(core, on_event, stop.set, self.simulate, sock), sock=sock
                )
            except BaseException:
                sock.close()
                raise
        except BaseException:
            self._finished.set()
            raise
        assert isinstance(protocol, ServerProtocol)

        def on_state_update() -> None:
            if core.connections:
                protocol.request_sweep()

        self._loop, self._stop, self._protocol = loop, stop, protocol
        self._hostname = hostname
        self._port = transport.get_extra_info("sockname")[1]
        self.game_state_store._add_listener(on_state_update)
        self._bound.set()
        logger.info("PyGaSe server listening on %s", _listening_on(hostname, self._port))
        try:
            await stop.wait()
        finally:
            protocol.send_shutdown_notices()
            self.game_state_store._remove_listener(on_state_update)
            transport.close()
            self._hostname = self._port = None
            self._loop = self._stop = self._protocol = None
            self._finished.set()
            logger.info("server shut down")

    def shutdown(self) -> Optional[asyncio.Future]:
        """Shut down the server.

        The server can be restarted via `Server.run()` in which case it will remember previous
        connections. Blocks until the server has stopped. Called in the server's own event loop (an event
        handler, or a coroutine of a program that used `run_async`), it returns at once with a future that
        an asyncio program can await: `await server.shutdown()`. `shutdown_async()` is the coroutine
        version.
        """
        if not self._request_stop():
            return None
        if in_thread_of(self._loop):
            return asyncio.ensure_future(self._finished.wait_async(5.0))
        self._finished.wait(timeout=5.0)
        return None

    async def shutdown_async(self) -> None:
        """Shut down the server and wait until it has stopped, without blocking the event loop."""
        if self._request_stop():
            await self._finished.wait_async(5.0)

    def _request_stop(self) -> bool:
        """Tell the server's event loop to stop; return whether it runs (False: nothing to wait for)."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return False
        if in_thread_of(loop):
            stop.set()
            return True
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:
            return False  # the loop already closed
        return True

    def dispatch_event(
        self,
        event_type: str,
        *args: Any,
        target_client: Any = "all",
        retries: int = 0,
        ack_callback: Optional[Callable[..., Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Send an event to one or all clients.

        Callable from any thread.

        Arguments:
            event_type: identifies the event and links it to a handler
            target_client: either `'all'` for an event broadcast, or a client's address as a tuple
            retries: number of times the event is to be resent in case it is lost
            ack_callback: will be executed after the event was received and be passed a reference to the
                corresponding `pygase.connection.ServerConnection` instance
            *args, **kwargs: event data passed to the client's handler function

        Raises:
            TypeError: if the event data cannot be sent
        """
        event = Event(event_type, *args, **kwargs)
        event.to_bytes()  # fail here, in the caller, if the data cannot be sent
        loop, protocol = self._loop, self._protocol
        if loop is None or protocol is None:
            logger.warning("the server is not running: event %r not sent", event_type)
            return

        def send() -> None:
            protocol.dispatch_event(event, target_client, retries, ack_callback)

        if in_thread_of(loop):
            send()
        else:
            loop.call_soon_threadsafe(send)

    def register_event_handler(self, event_type: str, event_handler_function: Callable[..., Any]) -> None:
        """Register an event handler for a specific event type.

        Arguments:
            event_type: event type to link the handler function to
            event_handler_function: function or coroutine function called for received events of the
                given type with the event's data (and `client_address`, if it takes that argument)
        """
        self._event_handler.register_event_handler(event_type, event_handler_function)


class Backend:
    """Easily create a fully integrated PyGaSe backend.

    Arguments:
        initial_game_state: state of the game before the simulation begins (`initial_gamestate` is
            accepted too)
        time_step_function: function that takes a game state and a time difference and returns a dict of
            updated game state attributes (see `GameStateMachine.time_step()`)
        event_handlers: a dict with event types as keys and event handler functions as values
        password: session password clients must know to join
        max_clients: clients beyond this many are refused ("server full")
        single_precision_floats: send floats with 32 bits instead of 64 (see `GameStateStore`)
        max_clients_per_ip: clients from one public IP address beyond this are refused (see `Server`)
        rejoin_grace: seconds a player whose connection was lost keeps its seat and player id (see
            `Server`; 30 by default)
        private_attributes: names of state attributes keyed by player id of which each player receives
            only its own entry, e.g. `["hands"]` (see `GameStateStore`)

    Attributes:
        game_state_store (GameStateStore): the backend's game state repository
        game_state_machine (GameStateMachine): logic component that runs the game loop
        server (Server): handles connections to PyGaSe clients

    Example:
        # Run a game loop that continuously increments `foo` with velocity `bar`.
        Backend(
            initial_game_state=GameState(foo=0.0, bar=0.5),
            time_step_function=lambda game_state, dt: {"foo": game_state.foo + game_state.bar * dt},
            # Handle client events to reset `foo` and set a new `bar` value.
            event_handlers={
                "RESET_FOO": lambda game_state, dt: {"foo": 0.0},
                "SET_BAR": lambda new_bar, game_state, dt: {"bar": new_bar},
            },
        ).run(hostname="localhost", port=8080)
    """

    def __init__(
        self,
        initial_game_state: Optional[GameState] = None,
        time_step_function: Optional[Callable[..., Any]] = None,
        event_handlers: Optional[dict] = None,
        password: Optional[str] = None,
        max_clients: int = 64,
        single_precision_floats: bool = False,
        max_clients_per_ip: Optional[int] = MAX_CLIENTS_PER_IP,
        rejoin_grace: float = 30.0,
        private_attributes: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        if "initial_gamestate" in kwargs:
            if initial_game_state is not None:
                raise TypeError("pass initial_game_state or initial_gamestate, not both")
            initial_game_state = kwargs.pop("initial_gamestate")
        if kwargs:
            raise TypeError(f"Backend() got unexpected keyword arguments: {', '.join(kwargs)}")
        if time_step_function is None:
            raise TypeError("Backend() needs a time_step_function")
        self.game_state_store = GameStateStore(
            initial_game_state, single_precision_floats, private_attributes
        )
        self.game_state_machine = GameStateMachine(self.game_state_store)
        self.game_state_machine.time_step = time_step_function  # type: ignore[method-assign]
        for event_type, handler in (event_handlers or {}).items():
            self.game_state_machine.register_event_handler(event_type, handler)
        self.server = Server(
            self.game_state_store,
            password=password,
            max_clients=max_clients,
            max_clients_per_ip=max_clients_per_ip,
            rejoin_grace=rejoin_grace,
        )

    def run(self, hostname: str, port: int, interval: float = 0.02) -> Optional[Coroutine[Any, Any, None]]:
        """Run state machine and server and bind the server to a given address.

        Blocks until the backend is shut down (by `shutdown()` or the host client). Called where an
        asyncio event loop runs, it does not block but returns the coroutine `run_async(...)`, to await or
        spawn: `await backend.run("localhost", 8080)`.

        Arguments:
            hostname: hostname or IPv4 address the server will be bound to
            port: port number the server will be bound to (0 picks a free one)
            interval: duration in seconds between consecutive time steps of the game loop
        """
        if loop_running_here():
            return self.run_async(hostname, port, interval)
        # The game loop has a thread of its own: user code never delays the network, and between ticks it
        # waits on a threading.Event, which costs less than an asyncio loop's wake-ups.
        game_loop = self.game_state_machine.run_game_loop_in_thread(interval)
        try:
            self.server.run(port, hostname, event_wire=self.game_state_machine)
        finally:
            self.game_state_machine.stop()
            game_loop.join(timeout=2.0)
        return None

    def run_in_thread(
        self, hostname: str = "localhost", port: int = 0, interval: float = 0.02, daemon: bool = True
    ) -> threading.Thread:
        """Run the backend in a separate thread; return the thread once the server listens.

        `server.port` then tells the port (useful with `port=0`).

        Raises:
            OSError: if the address cannot be bound
        """
        errors: list[BaseException] = []
        self.server._bound.clear()

        def run() -> None:
            try:
                self.run(hostname, port, interval)
            except BaseException as error:
                errors.append(error)
                self.server._bound.set()
                if not isinstance(error, OSError):
                    logger.exception("the backend stopped with an error")

        thread = threading.Thread(target=run, name="pygase-backend", daemon=daemon)
        thread.start()
        self.server._bound.wait()
        if errors:
            thread.join()
            raise errors[0]
        return thread

    async def run_async(self, hostname: str, port: int, interval: float = 0.02) -> None:
        """Run state machine and server on the running event loop until shut down (see `run()`)."""
        game_loop = asyncio.ensure_future(self.game_state_machine.run_game_loop_async(interval))
        try:
            await self.server.run_async(port, hostname, event_wire=self.game_state_machine)
        finally:
            self.game_state_machine._stop_requested = True
            self.game_state_machine._wake_up()
            await game_loop

    def shutdown(self) -> Optional[asyncio.Future]:
        """Shut down server and stop the game loop.

        Called in the backend's own event loop (a program that used `run_async`), it returns at once with
        a future that an asyncio program can await: `await backend.shutdown()`, as `Server.shutdown()`.
        """
        if in_thread_of(self.server._loop):
            return asyncio.ensure_future(self.shutdown_async())
        self.server.shutdown()
        self.game_state_machine.stop()
        return None

    async def shutdown_async(self) -> None:
        """Shut down server and stop the game loop without blocking the event loop."""
        await self.server.shutdown_async()
        await self.game_state_machine.stop_async()
