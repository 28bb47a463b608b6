"""How a `pygase.Client` reads its game state: under its lock, as a copy, or by waiting for a condition."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, ContextManager, Optional

from pygase import _codec
from pygase.connection import ClientConnection, ConnectionStatus
from pygase.gamestate import GameState
from pygase.utils import Sqn

__all__ = ["GameStateAccess"]

_DISCONNECTED = ConnectionStatus.get("Disconnected")


class GameStateAccess:
    """The game state methods of `pygase.Client` (a base class of it)."""

    connection: Optional[ClientConnection]
    _state_changed: threading.Condition
    _state_version: int
    _state_waiters: int  # threads in `_poll` about to wait or waiting (changed under the condition's lock)

    @property
    def connect_error(self) -> Optional[OSError]:  # (the Client's, documented there)
        raise NotImplementedError

    # ---- game state -----------------------------------------------------------------------------------

    def _notify_state_change(self) -> None:
        # The condition's lock is taken only when a `wait_until` waits: most changes have nobody waiting
        # (a game reads its state every frame instead), and a swarm of bots has thousands a second.
        self._state_version += 1
        if self._state_waiters:
            with self._state_changed:
                self._state_changed.notify_all()

    def access_game_state(self) -> ContextManager[Any]:
        """Return a context manager to access the shared game state.

        Can be used in a with block to lock the synchronized game_state while working with it.

        Example:
            with client.access_game_state() as game_state:
                do_stuff(game_state)

        Raises:
            RuntimeError: if the client never connected
        """
        if self.connection is None:
            raise RuntimeError("the client has no game state yet: call connect() first")
        return self.connection.game_state_context()

    def copy_game_state(self) -> GameState:
        """Return a deep copy of the synchronized game state: a `pygase.GameState` that shares nothing.

        Use it to read a consistent state outside the lock, for example once per frame in a render loop
        (`pygase_pygame.GameWindow` does). It is fast: one msgpack round trip, several times quicker than
        `copy.deepcopy`. The game state lock is held only while the state is serialized, the cheaper
        half; the copy is built after the lock is released, so the network thread is not kept waiting.

        Raises:
            RuntimeError: if the client never connected
        """
        with self.access_game_state() as game_state:
            packed = _codec.pack(game_state.__dict__)
        copied = GameState.__new__(GameState)
        copied.__dict__.update(_codec.unpack_trusted(packed))
        if "time_order" in copied.__dict__:
            copied.time_order = Sqn(copied.time_order)
        return copied

    def _poll(self, function: Callable[[Any], Any], timeout: float, accept: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            version = self._state_version
            self._raise_if_connect_failed()
            with self.access_game_state() as game_state:
                try:
                    # (before the first state arrived there is no game state to ask: not even `lambda
                    # state: True` holds yet, so waiting for it waits until the client joined)
                    arrived = self.connection is not None and self.connection.updates_received > 0
                    result = function(game_state) if arrived else None
                except (KeyError, AttributeError, IndexError):
                    pass  # the state has not arrived yet, or not all of it
                else:
                    if arrived and accept(result):
                        return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"not met within {timeout} s{self._still_connecting()}")
            with self._state_changed:
                self._state_waiters += 1
                try:
                    if self._state_version == version:  # (else it changed meanwhile: look again)
                        self._state_changed.wait(remaining)
                finally:
                    self._state_waiters -= 1

    def _raise_if_connect_failed(self) -> None:
        error = self.connect_error
        if error is None:
            return
        if isinstance(error, ConnectionError):
            raise error
        raise ConnectionError(str(error))  # a TimeoutError here would read as "not met in time"

    def _still_connecting(self) -> str:
        connection = self.connection
        if connection is None or connection.status == _DISCONNECTED or connection._session is not None:
            return ""
        if connection.room is not None and connection.route is None:
            return f" (the client is still looking for room {connection.room} through the relay)"
        return f" (the client is still connecting to {connection.where}: no server has let it join yet)"

    def wait_until(self, game_state_condition: Callable[[Any], bool], timeout: float = 1.0) -> None:
        """Block until a condition on the game state is satisfied.

        Attributes or keys missing from the state (it has not arrived yet) count as "not yet", and so does
        any condition before the first state arrived: `wait_until(lambda state: True)` waits until the
        client joined and has the game state.

        Arguments:
            game_state_condition: function that takes a `pygase.GameState` instance and returns a bool
            timeout: time in seconds after which to raise a `TimeoutError`

        Raises:
            TimeoutError: if the condition is not met after `timeout` seconds
            ConnectionError: if the connection could not be established (`ConnectionRefusedError` if the
                server refused this client or nothing listens at its address; see `connect_error`)
        """
        self._poll(game_state_condition, timeout, bool)

    def try_to(self, function: Callable[[Any], Any], timeout: float = 1.0) -> Any:
        """Execute a function using game state attributes that might not yet exist.

        This method repeatedly tries to execute `function(game_state)`, ignoring `KeyError` and
        `AttributeError` exceptions, until it either works or times out.

        Arguments:
            function: function that takes a `pygase.GameState` instance and returns anything
            timeout: time in seconds after which to raise a `TimeoutError`

        Returns:
            whatever `function(game_state)` returns

        Raises:
            TimeoutError: if the function doesn't run through after `timeout` seconds
            ConnectionError: if the connection could not be established (see `wait_until`)
        """
        return self._poll(function, timeout, lambda _: True)
