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
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import math
import threading
import time
from typing import Any, Callable, Optional

from pygase._server_core import ServerCore
from pygase._store import GameStateStore
from pygase._transport import ServerProtocol, bind_server_socket, call_user_function
from pygase.connection import ServerConnection
from pygase.event import Event, UniversalEventHandler
from pygase.gamestate import GameState, GameStateUpdate, GameStatus
from pygase.utils import get_available_ip_addresses

__all__ = ["GameStateStore", "Server", "GameStateMachine", "Backend"]

logger = logging.getLogger(__name__)

_ACTIVE = GameStatus.get("Active")
_PAUSED = GameStatus.get("Paused")


_FAILED = object()  # what a game loop driver sends back for an awaited handler that raised


def _wire_accepts_context(event_wire: Any) -> bool:
    try:
        parameters = inspect.signature(event_wire._push_event).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == "client_address" for p in parameters)


def _in_thread_of(loop: Optional[asyncio.AbstractEventLoop]) -> bool:
    try:
        return loop is not None and asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


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
        )
        self._hostname: Optional[str] = None
        self._port: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._protocol: Optional[ServerProtocol] = None
        self._stop: Optional[asyncio.Event] = None
        self._bound = threading.Event()
        self._finished = threading.Event()
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

    def run(self, port: int = 0, hostname: str = "localhost", event_wire: Any = None) -> None:
        """Start the server under a specified address.

        This is a blocking function; use `Server.run_in_thread()` to run it in a thread, or await
        `Server.run_async()` in an asyncio program.

        Arguments:
            port: port number the server will be bound to, default will be an available port chosen by
                the computer's network controller
            hostname: hostname or IP address the server will be bound to. Defaults to `'localhost'`.
            event_wire: object to which events are to be repeated (has to implement a `_push_event(event)`
                method and is typically a `GameStateMachine`)

        Raises:
            OSError: if the address cannot be bound (for example, the port is in use)
        """
        asyncio.run(self.run_async(port, hostname, event_wire))

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
        wire_context = event_wire is not None and _wire_accepts_context(event_wire)
        for connection in core.connections.values():
            connection.event_wire = event_wire
        stop = asyncio.Event()

        def on_event(event: Event, address: tuple) -> None:
            if event_wire is None or self._event_handler.has_event_type(event.type):
                call_user_function(self._event_handler.handle, event, client_address=address)
            elif wire_context:
                event_wire._push_event(event, client_address=address)
            else:
                event_wire._push_event(event)

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
        _log_start(hostname, self._port)
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
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return None
        if _in_thread_of(loop):
            stop.set()
            return asyncio.ensure_future(_wait_for_event(self._finished, 5.0))
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:
            return None  # the loop already closed
        self._finished.wait(timeout=5.0)
        return None

    async def shutdown_async(self) -> None:
        """Shut down the server and wait until it has stopped, without blocking the event loop."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return
        if _in_thread_of(loop):
            stop.set()
            await _wait_for_event(self._finished, 5.0)
            return
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)

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

        if _in_thread_of(loop):
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


async def _wait_for_event(event: threading.Event, timeout: float) -> bool:
    """Wait for a threading.Event without blocking the running event loop; return whether it is set."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return event.is_set()


def _log_start(hostname: str, port: int) -> None:
    if hostname in ("localhost", "127.0.0.1"):
        logger.info("PyGaSe server listening on %s:%d (this machine only)", hostname, port)
        return
    addresses = [a for a in get_available_ip_addresses() if not a.startswith("127.")]
    if hostname in ("", "0.0.0.0"):
        joins = ", ".join(f"{a}:{port}" for a in addresses) or f"this machine's address, port {port}"
        logger.info("PyGaSe server listening on all interfaces, port %d; join at %s", port, joins)
    else:
        logger.info(
            "PyGaSe server listening on %s:%d (LAN addresses of this machine: %s)",
            hostname,
            port,
            ", ".join(addresses) or "none",
        )


def _handler_label(handler: UniversalEventHandler, event_type: str) -> str:
    function = handler._event_handlers.get(event_type)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"the handler {name} for event {event_type!r}"


class GameStateMachine:
    """Run a simulation that propagates the game state.

    A GameStateMachine progresses a game state through time, applying all game simulation logic. This
    class is meant either as a base class from which you inherit and implement the
    `GameStateMachine.time_step()` method, or you assign an implementation after instantiation.

    Events from clients are handled as soon as they arrive, between time steps, in the order they
    arrive; their handlers get `dt`, the time since the last time step.

    Arguments:
        game_state_store: part of the PyGaSe backend that provides the state

    Attributes:
        game_time (float): duration the game has been running in seconds
        game_status (int): `GameStatus.get('Active')` while the game loop runs, else `'Paused'`
    """

    def __init__(self, game_state_store: GameStateStore) -> None:
        self._game_state_store = game_state_store
        self._universal_event_handler = UniversalEventHandler()
        self.game_time = 0.0
        self.game_status = _PAUSED
        self._event_queue: collections.deque = collections.deque()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._thread_wake: Optional[threading.Lock] = None  # released to wake the threaded game loop
        self._thread: Optional[threading.Thread] = None
        self._stop_requested = False
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._error_logs: dict[str, tuple[float, int]] = {}  # source -> (last logged, not logged since)

    def register_event_handler(self, event_type: str, event_handler_function: Callable[..., Any]) -> None:
        """Register an event handler for a specific event type.

        For event handlers to have any effect, the events have to be wired from a `Server` to the
        `GameStateMachine` via the `event_wire` argument of the `Server.run()` method.

        Arguments:
            event_type: which type of event to link the handler function to
            event_handler_function: function or coroutine function to be invoked for events of the given
                type; gets the event's data and, if it declares them (or takes `**kwargs`), the keyword
                arguments `game_state`, `dt` and `client_address`; returns an update dict (or None)
        """
        self._universal_event_handler.register_event_handler(event_type, event_handler_function)

    def _push_event(self, event: Event, client_address: Optional[tuple] = None) -> None:
        """Queue an event for handling; callable from any thread."""
        self._event_queue.append((event, client_address))
        self._wake_up()

    def _wake_up(self) -> None:
        thread_wake = self._thread_wake
        if thread_wake is not None:
            with contextlib.suppress(RuntimeError):  # already released: a wake-up is pending anyway
                thread_wake.release()
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if _in_thread_of(loop):
            wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop just closed
            loop.call_soon_threadsafe(wake.set)

    def time_step(self, game_state: GameState, dt: float) -> dict:
        """Calculate a game state update.

        This method should be implemented to return a dict with all the updated state attributes.

        Arguments:
            game_state: the state of the game prior to the time step
            dt: time in seconds since the last time step, use it to simulate at a consistent speed

        Returns:
            updated game state attributes
        """
        raise NotImplementedError("implement GameStateMachine.time_step or assign a function to it")

    def run_game_loop(self, interval: float = 0.02) -> None:
        """Simulate the game world.

        This function blocks as it continuously progresses the game state through time; use
        `run_game_loop_in_thread()` for a thread or await `run_game_loop_async()` in an asyncio program.
        As long as the simulation is running, the game state's `game_status` is
        `GameStatus.get('Active')`. Between time steps the loop sleeps (it is not a busy loop).

        Arguments:
            interval: (minimum) duration in seconds between consecutive time steps
        """
        self._begin(interval)
        # A lock used as a binary semaphore: waiting on it with a timeout costs a third of what an
        # Event.wait costs, which matters at 50 wake-ups a second on an idle server.
        wake = threading.Lock()
        wake.acquire()
        self._thread_wake = wake
        private_loop: Optional[asyncio.AbstractEventLoop] = None  # for coroutine handlers, made if needed
        steps = self._steps(interval, time.monotonic)
        reply: Any = None
        try:
            while True:
                try:
                    kind, argument, label = steps.send(reply)
                except StopIteration:
                    break
                reply = None
                if kind == "sleep":
                    # A wake-up that came in the meantime makes this return at once (one extra look).
                    if not self._event_queue and not self._stop_requested:
                        wake.acquire(timeout=max(0.0, argument - time.monotonic()))
                else:
                    if private_loop is None:
                        private_loop = asyncio.new_event_loop()
                    try:
                        reply = private_loop.run_until_complete(argument)
                    except Exception:
                        logger.exception("error in %s", label)
                        reply = _FAILED
        finally:
            self._thread_wake = None
            if private_loop is not None:
                private_loop.close()
            self._end()

    def run_game_loop_in_thread(self, interval: float = 0.02) -> threading.Thread:
        """Simulate the game in a separate thread.

        See `GameStateMachine.run_game_loop()`. Returns once the loop runs.

        Returns:
            the thread the game loop runs in
        """
        if interval <= 0:
            raise ValueError("the interval must be positive")
        if not self._stopped.is_set():
            raise RuntimeError("the game loop is already running")
        self._started.clear()
        thread = threading.Thread(
            target=self.run_game_loop, args=(interval,), name="pygase-game-loop", daemon=True
        )
        thread.start()
        self._started.wait(timeout=5.0)
        return thread

    async def run_game_loop_async(self, interval: float = 0.02) -> None:
        """Run the game loop on the running event loop until stopped (see `run_game_loop()`)."""
        self._begin(interval)
        loop = asyncio.get_running_loop()
        self._loop, self._wake = loop, asyncio.Event()
        wake = self._wake
        steps = self._steps(interval, loop.time)
        reply: Any = None
        try:
            while True:
                try:
                    kind, argument, label = steps.send(reply)
                except StopIteration:
                    break
                reply = None
                if kind == "sleep":
                    wake.clear()
                    if not self._event_queue and not self._stop_requested:
                        timer = loop.call_at(argument, wake.set)
                        await wake.wait()
                        timer.cancel()
                else:
                    try:
                        reply = await argument
                    except Exception:
                        logger.exception("error in %s", label)
                        reply = _FAILED
        finally:
            self._loop = self._wake = None
            self._end()

    def _begin(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("the interval must be positive")
        if not self._stopped.is_set():
            raise RuntimeError("the game loop is already running")
        self._stopped.clear()
        self._thread = threading.current_thread()
        self.game_status = _ACTIVE
        self._push({"game_status": _ACTIVE})

    def _end(self) -> None:
        self.game_status = _PAUSED
        self._push({"game_status": _PAUSED})
        self._thread = None
        self._stop_requested = False
        self._started.set()
        self._stopped.set()

    def _steps(self, interval: float, clock: Callable[[], float]) -> Any:
        """The game loop itself, for both drivers: handle events as they come, step every `interval`.

        A generator: it yields ("sleep", until, None) when there is nothing to do before `until`, and
        ("await", awaitable, label) for a coroutine handler's result, which the driver sends back
        (`_FAILED` if it raised).
        """
        self._started.set()
        last_step = clock()
        next_step = last_step + interval
        handler = self._universal_event_handler
        store = self._game_state_store
        while not self._stop_requested:
            if self._event_queue:
                event, client_address = self._event_queue.popleft()
                label = _handler_label(handler, event.type)
                try:
                    result = handler.handle(
                        event,
                        game_state=store.get_game_state(),
                        dt=clock() - last_step,
                        client_address=client_address,
                    )
                except Exception:
                    self._log_error(label, "error in %s (the game goes on)", label, exc_info=True)
                    continue
                if inspect.isawaitable(result):
                    result = yield ("await", result, label)
                if result is not _FAILED:
                    self._push(result, label)
                continue
            now = clock()
            if now < next_step:
                yield ("sleep", next_step, None)
                continue
            dt = now - last_step
            last_step = now
            self.game_time += dt
            try:
                result = self.time_step(store.get_game_state(), dt)
            except Exception:
                self._log_error("time_step", "error in time_step (the game loop goes on)", exc_info=True)
                result = None
            if inspect.isawaitable(result):
                result = yield ("await", result, "time_step")
            if result is not _FAILED:
                self._push(result, "time_step")
            next_step += interval
            if next_step <= now:  # fell behind: skip the missed steps instead of bursting
                next_step = now + interval

    def _log_error(self, source: str, message: str, *args: Any, exc_info: bool = False) -> None:
        """Log at ERROR, at most once a second for each `source`: a time step that fails does so 50 times
        a second, and a handler that fails does so for every event a client sends."""
        now = time.monotonic()
        last, skipped = self._error_logs.get(source, (-math.inf, 0))
        if now - last < 1.0:
            self._error_logs[source] = (last, skipped + 1)
            return
        self._error_logs[source] = (now, 0)
        if skipped:
            message += f" [{skipped} more from the same source in the last second were not logged]"
        logger.error(message, *args, exc_info=exc_info)

    def _push(self, changes: Any, source: str = "the game loop") -> None:
        if not changes:
            return
        if not isinstance(changes, dict):
            self._log_error(
                source, "%s returned %s instead of an update dict: ignored", source, type(changes).__name__
            )
            return
        if "time_order" in changes:
            self._log_error(source, "%s returned an update that sets time_order: ignored", source)
            return
        store = self._game_state_store
        try:
            update = GameStateUpdate(store.get_game_state().time_order + 1, **changes)
            store.push_update(update)  # checks the names and values
        except (TypeError, ValueError) as error:
            # The game goes on syncing without this update.
            self._log_error(source, "%s returned an update that was dropped: %s", source, error)

    def stop(self, timeout: float = 1.0) -> bool:
        """Pause the game simulation.

        This sets `game_status` to `GameStatus.get('Paused')`. A subsequent call of `run_game_loop()`
        resumes the simulation at the point where it was stopped. `stop_async()` is the coroutine version.

        Arguments:
            timeout: time in seconds to wait for the simulation to stop

        Returns:
            whether or not the simulation was successfully stopped; called in the game loop's own event
            loop (a handler, or a coroutine of a program that used `run_game_loop_async`), a future of
            that bool, which an asyncio program can await: `await machine.stop()`
        """
        if self._stopped.is_set():
            return True
        self._stop_requested = True
        self._wake_up()
        if _in_thread_of(self._loop):
            return asyncio.ensure_future(_wait_for_event(self._stopped, timeout))  # type: ignore[return-value]
        if threading.current_thread() is self._thread:
            return False
        return self._stopped.wait(timeout)

    async def stop_async(self, timeout: float = 1.0) -> bool:
        """Pause the game simulation without blocking the event loop (see `stop()`)."""
        if self._stopped.is_set():
            return True
        self._stop_requested = True
        self._wake_up()
        return await _wait_for_event(self._stopped, timeout)


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
        self.game_state_store = GameStateStore(initial_game_state, single_precision_floats)
        self.game_state_machine = GameStateMachine(self.game_state_store)
        self.game_state_machine.time_step = time_step_function  # type: ignore[method-assign]
        for event_type, handler in (event_handlers or {}).items():
            self.game_state_machine.register_event_handler(event_type, handler)
        self.server = Server(self.game_state_store, password=password, max_clients=max_clients)

    def run(self, hostname: str, port: int, interval: float = 0.02) -> None:
        """Run state machine and server and bind the server to a given address.

        Blocks until the backend is shut down (by `shutdown()` or the host client).

        Arguments:
            hostname: hostname or IPv4 address the server will be bound to
            port: port number the server will be bound to (0 picks a free one)
            interval: duration in seconds between consecutive time steps of the game loop
        """
        # The game loop has a thread of its own: user code never delays the network, and between ticks it
        # waits on a threading.Event, which costs less than an asyncio loop's wake-ups.
        game_loop = self.game_state_machine.run_game_loop_in_thread(interval)
        try:
            self.server.run(port, hostname, event_wire=self.game_state_machine)
        finally:
            self.game_state_machine.stop()
            game_loop.join(timeout=2.0)

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

    def shutdown(self) -> None:
        """Shut down server and stop the game loop."""
        self.server.shutdown()
        self.game_state_machine.stop()

    async def shutdown_async(self) -> None:
        """Shut down server and stop the game loop without blocking the event loop."""
        await self.server.shutdown_async()
        await self.game_state_machine.stop_async()
