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
from typing import Any, Callable, Coroutine, Iterable, Optional, Union

from pygase._game_loop import GameStateMachine
from pygase._server import Server
from pygase._server_core import MAX_CLIENTS_PER_IP
from pygase._store import GameStateStore
from pygase._thread_bridge import in_thread_of, loop_running_here
from pygase.gamestate import GameState

__all__ = ["GameStateStore", "Server", "GameStateMachine", "Backend"]

logger = logging.getLogger(__name__)


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
        dedicated: no client becomes the host (who may shut the server down): a server of its own
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
        dedicated: bool = False,
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
            dedicated=dedicated,
        )

    def run(
        self,
        hostname: str,
        port: int,
        interval: float = 0.02,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> Optional[Coroutine[Any, Any, None]]:
        """Run state machine and server and bind the server to a given address.

        Blocks until the backend is shut down (by `shutdown()` or the host client). Called where an
        asyncio event loop runs, it does not block but returns the coroutine `run_async(...)`, to await or
        spawn: `await backend.run("localhost", 8080)`.

        Arguments:
            hostname: hostname or IP address the server will be bound to (`''` or `'::'`: every
                interface, IPv4 and IPv6)
            port: port number the server will be bound to (0 picks a free one)
            interval: duration in seconds between consecutive time steps of the game loop
            relay: a relay's "HOST:PORT": register there and get a room code that players anywhere join
                with (`room_code`; see `Server.run()`)
            public: with a relay, list the session there: True, or a dict with `game` and `name`
        """
        if loop_running_here():
            return self.run_async(hostname, port, interval, relay, public)
        # The game loop has a thread of its own: user code never delays the network, and between ticks it
        # waits on a threading.Event, which costs less than an asyncio loop's wake-ups.
        game_loop = self.game_state_machine.run_game_loop_in_thread(interval)
        try:
            self.server.run(port, hostname, self.game_state_machine, relay, public)
        finally:
            self.game_state_machine.stop()
            game_loop.join(timeout=2.0)
        return None

    @property
    def room_code(self) -> Optional[str]:
        """The room code players join with through the relay (`run(..., relay=...)`), or None."""
        return self.server.room_code

    def run_in_thread(
        self,
        hostname: str = "localhost",
        port: int = 0,
        interval: float = 0.02,
        daemon: bool = True,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> threading.Thread:
        """Run the backend in a separate thread; return the thread once the server listens.

        `server.port` then tells the port (useful with `port=0`). With a relay it returns once the room
        code arrived (`room_code`), or after `ROOM_CODE_WAIT` seconds without one (it keeps asking).

        Raises:
            OSError: if the address cannot be bound
            ValueError: if `relay` cannot be an address
        """
        self.server._check_relay(relay, public)  # (in the caller's thread, not logged from the backend's)
        errors: list[BaseException] = []
        self.server._bound.clear()

        def run() -> None:
            try:
                self.run(hostname, port, interval, relay, public)
            except BaseException as error:
                errors.append(error)
                self.server._bound.set()
                if not isinstance(error, (OSError, ValueError)):
                    logger.exception("the backend stopped with an error")

        thread = threading.Thread(target=run, name="pygase-backend", daemon=daemon)
        thread.start()
        self.server._bound.wait()
        if errors:
            thread.join()
            raise errors[0]
        self.server._wait_for_room_code(relay)
        return thread

    async def run_async(
        self,
        hostname: str,
        port: int,
        interval: float = 0.02,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> None:
        """Run state machine and server on the running event loop until shut down (see `run()`)."""
        game_loop = asyncio.ensure_future(self.game_state_machine.run_game_loop_async(interval))
        try:
            await self.server.run_async(port, hostname, self.game_state_machine, relay, public)
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
