"""Provide low-level networking logic.

This module is not supposed to be required by users of this library.

It is the public front of PyGaSe's protocol core, with the names of the PyGaSe 0.3.1 API. The core itself
consumes datagrams and the current time and produces datagrams, typed outputs and the time of its next
timer, without touching a socket, a thread or a clock: `pygase._connection` (one side of a connection),
`pygase._reliability`, `pygase._recovery`, `pygase._client_core`, `pygase._server_connection` and
`pygase._server_core`. What needs a lock or runs user code is here: a client's copy of the game state.
`pygase._transport` drives the core on asyncio; `docs/architecture.md` shows how the pieces fit.

Contents:
- `PROTOCOL_ID`: 4 byte identifier for the PyGaSe package protocol
- `ProtocolIDMismatchError`: exception for receiving non-PyGaSe packages
- `DuplicateSequenceError`: exception for duplicate packages
- `Header`: class for PyGaSe package headers
- `Package`: class for PyGaSe UDP packages
- `ClientPackage`: subclass of `Package` for packages sent by clients
- `ServerPackage`: subclass of `Package` for packages sent by servers
- `ConnectionStatus`: enum for the status of a client-server connection
- `Connection`: class for the core network logic of client-server connections
- `ClientConnection`: subclass of `Connection` for the client side
- `ServerConnection`: subclass of `Connection` for the server side
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from pygase import _codec, _server_connection
from pygase import _transport as transport
from pygase._client_args import packed_join_data
from pygase._client_core import ClientCore, ClientPhase
from pygase._connection import (
    DISCONNECT_EVENT,
    SHUTDOWN_EVENT,
    STATE_PART_EVENT,
    Connection,
    ConnectionStatus,
)
from pygase._packages import (
    PROTOCOL_ID,
    ClientPackage,
    DuplicateSequenceError,
    Header,
    Package,
    ProtocolIDMismatchError,
    ServerPackage,
)
from pygase._watch import StateWatches
from pygase.gamestate import GameState, GameStateUpdate
from pygase.utils import LockedRessource, Sqn

__all__ = [
    "PROTOCOL_ID",
    "ProtocolIDMismatchError",
    "DuplicateSequenceError",
    "Header",
    "Package",
    "ClientPackage",
    "ServerPackage",
    "ConnectionStatus",
    "Connection",
    "ClientConnection",
    "ServerConnection",
    "ClientPhase",
    "DISCONNECT_EVENT",
    "SHUTDOWN_EVENT",
    "STATE_PART_EVENT",
]

logger = logging.getLogger(__name__)


class _RecentUpdates:
    """The state updates the clients of this process decoded last, by their bytes.

    The clients of one process (a swarm of bots, say) receive the same bytes from a server, which
    encodes an update once for every client that lacks the same: each such update is decoded once for
    all of them. Only updates without lists are kept (merging one into a state copies every dict it
    adds, but would share its lists), and never a whole state (it becomes the state itself).
    """

    _size = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._updates: dict[bytes, GameStateUpdate] = {}

    def decoded(self, encoded: bytes) -> GameStateUpdate:
        """The update `encoded` holds (raises `ValueError` if it is not one)."""
        update = self._updates.get(encoded)
        if update is not None:
            return update
        value, holds_list = _codec.unpack_noting_lists(encoded)
        update = GameStateUpdate._from_dict(value)
        if not holds_list:
            with self._lock:
                self._updates[encoded] = update
                if len(self._updates) > self._size:
                    del self._updates[next(iter(self._updates))]
        return update


_recent_updates = _RecentUpdates()


class _FreshGameState(LockedRessource):
    """A client's game state: an update that arrived is applied when the state is accessed."""

    def __init__(self, ressource: GameState, connection: ClientConnection) -> None:
        super().__init__(ressource)
        self._connection = connection

    # A context manager of its own rather than a generator's: a game enters it every frame, and a swarm
    # of bots thousands of times a second. (The lock makes one holder at a time; all share this object.)
    def __call__(self) -> _FreshGameState:  # type: ignore[override]
        return self

    def __enter__(self) -> Any:
        self.lock.acquire()
        try:
            self._connection._apply_pending(self.ressource)
        except BaseException:
            self.lock.release()
            raise
        return self.ressource

    def __exit__(self, *exc_info: Any) -> None:
        self.lock.release()


class ClientConnection(ClientCore):
    """Subclass of `Connection` to describe the client side of a PyGaSe connection.

    Client connections hold a copy of the game state which is continuously being updated according to
    state updates received from the server. The protocol (handshake, session, state transfers) is
    `pygase._client_core.ClientCore`; this class keeps the state copy, which other threads read.

    Attributes:
        game_state_context (pygase.utils.LockedRessource): provides thread-safe access to a
            `pygase.GameState`
        server_closed (bool): True after the server said it shuts down; the connection then waits
            `timeout` seconds for the server to come back before it counts as disconnected
        updates_received (int): number of state updates received so far (the newest is applied when the
            state is next accessed)
    """

    #: Longest time in seconds a state update that arrived waits to be applied when nothing reads the
    #: state, so that the time order the client reports (and so the size of its updates) keeps up.
    report_interval = 0.5

    def __init__(
        self,
        remote_address: tuple,
        event_handler: Any,
        password: Optional[str] = None,
        join_data: Optional[dict] = None,
    ) -> None:
        super().__init__(remote_address, event_handler, password, join_data=packed_join_data(join_data))
        self._pending: Optional[tuple[Sqn, bytes, bool]] = None  # newest update not yet applied
        self._pending_lock = threading.Lock()  # guards _pending and _time_order
        self.game_state_context: LockedRessource = _FreshGameState(GameState(), self)
        self._time_order = Sqn(0)  # of the state copy (written under the state lock and _pending_lock)
        self._reported_at = float("-inf")  # when an update was last applied just to report it
        #: called (without arguments) after each change of the game state
        self._on_state_change: Optional[Callable[[], None]] = None
        #: called with the game state, lock held, right after each change
        self._state_listeners: list[Callable[[GameState], Any]] = []
        #: change callbacks on parts of the state (`Client.on_change`)
        self._watches: Optional[StateWatches] = None

    # ---- what the core hands over -------------------------------------------------------------------

    def _state_arrived(self, sequence: Sqn, encoded: bytes, full_state: bool) -> None:
        """Keep the newest state update that arrived; it is decoded and applied when the state is next
        used (or at once, for state listeners), so a client nobody looks at decodes only the newest."""
        with self._pending_lock:
            pending = self._pending
            if pending is None or sequence > pending[0]:
                self._pending = (sequence, encoded, full_state)
        if self._state_listeners or self._watches:
            with self.game_state_context():
                pass  # applies it, and the listeners run
            if self._watches:
                self._watches.run_due()  # (queued by whichever thread applied it, under the lock)
        if self._on_state_change is not None:
            self._on_state_change()

    def _state_assembled(self, update: GameStateUpdate, full_state: bool) -> None:
        with self.game_state_context() as game_state:
            applied = self._apply_locked(game_state, update, full_state)
        if self._watches:
            self._watches.run_due()
        if applied:
            self.updates_received += 1
            if self._on_state_change is not None:
                self._on_state_change()

    def _reported_time_order(self, now: float) -> Sqn:
        """Every package reports the time order of the state we have; the server sends what we lack
        since then. A program that reads its state (every frame, say) has applied what arrived; for one
        that does not (a bot, a headless client) it is applied here, at most every `report_interval`
        seconds instead of once per package: every update builds on what was reported, so reporting an
        older time order costs only somewhat larger updates."""
        if self._pending is not None and now >= self._reported_at + self.report_interval:
            self._reported_at = now
            with self.game_state_context():
                pass  # applies it
        with self._pending_lock:  # written by whichever thread applied the last update
            return self._time_order

    def _session_restarted(self) -> None:
        with self._pending_lock:
            self._pending = None
            self._time_order = Sqn(0)

    # ---- the state copy -----------------------------------------------------------------------------

    def _apply_pending(self, game_state: GameState) -> None:
        """Apply the newest update that arrived, if any (the state lock is held)."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        _, encoded, full_state = pending
        try:
            if full_state:
                update = GameStateUpdate._from_dict(_codec.unpack(encoded))
            else:
                update = _recent_updates.decoded(encoded)
        except ValueError as error:
            logger.debug("dropping a state update that does not decode: %s", error)
            return
        self._apply_locked(game_state, update, full_state)

    def _apply_locked(self, game_state: GameState, update: GameStateUpdate, full_state: bool) -> bool:
        if full_state and (int(self._time_order) == 0 or update.time_order > game_state.time_order):
            # The server sends the whole state when it cannot build a delta from what we have (or we have
            # nothing yet); a late copy of an older one is ignored like any stale update.
            if int(update.time_order) == 0 and update.__dict__ == game_state.__dict__:
                # A store still at time order 0 sends its state with every package (time order 0 means
                # "no state yet", so we keep reporting 0): nothing changed, no listeners to call.
                return False
            game_state.__dict__.clear()
            game_state.__dict__.update(update.__dict__)
        elif not full_state and update.time_order > game_state.time_order:
            update._apply_to(game_state)
        else:
            return False
        if self._watches:
            self._watches.check(game_state.__dict__, None if full_state else update.__dict__)
        with self._pending_lock:
            self._time_order = game_state.time_order
        for listener in self._state_listeners:
            try:
                listener(game_state)
            except Exception:
                logger.exception("error in state listener %r", listener)
        return True

    async def loop(self) -> None:
        """Continuously operate the connection.

        This coroutine keeps sending and receiving packages and handling events until the connection is
        closed (by `shutdown`, or a server that stays silent for `timeout` seconds).
        """
        await transport.run_client_connection(self)


class ServerConnection(_server_connection.ServerConnection):
    """Subclass of `Connection` that describes the server side of a PyGaSe connection.

    Arguments:
        game_state_store: object that serves as an interface to the game state repository (has to provide
            the methods `get_game_state`, `get_update_cache` and `push_update`)
        last_client_time_order: the last time order number known to the client

    Attributes:
        game_state_store (pygase.GameStateStore): see corresponding constructor argument
        last_client_time_order (pygase.utils.Sqn): see corresponding constructor argument

    A state update that fits in a datagram goes along with every package; a larger one (the whole state
    for a new client, say) travels in parts that are resent until they arrive, and the next update
    waits until it has. The protocol is `pygase._server_connection.ServerConnection`.
    """

    @staticmethod
    async def loop(hostname: str, port: int, server: Any, event_wire: Any) -> None:
        """Continuously orchestrate and operate connections to clients.

        This coroutine will keep listening for client packages, create new `ServerConnection` objects
        when necessary and make sure all packages are handled by and sent via the right connection.
        It will return as soon as the server is shut down.

        Arguments:
            hostname: the hostname or IPv4 address to which to bind the server socket
            port: the port number to which to bind the server socket
            server: the server for which this loop is run
            event_wire: object to which events are to be repeated (has to implement `_push_event`)
        """
        await server.run_async(port, hostname, event_wire)
