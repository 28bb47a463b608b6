"""The `pygase.backend.Server`: listens to clients on one UDP socket and keeps their connections (the
protocol core, `pygase._server_core`, on the asyncio layer, `pygase._transport`)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Callable, Coroutine, Optional, Union

from pygase._endpoints import plain_address
from pygase._event_router import event_router
from pygase._rendezvous_io import HostRelayLink, parse_relay
from pygase._server_core import MAX_CLIENTS_PER_IP, ServerCore
from pygase._sockets import bind_server_socket
from pygase._store import GameStateStore
from pygase._thread_bridge import AwaitableEvent, in_thread_of, loop_running_here
from pygase._transport import ServerProtocol
from pygase.connection import ServerConnection
from pygase.event import Event, UniversalEventHandler
from pygase.utils import _listening_on

__all__ = ["Server", "ROOM_CODE_WAIT"]

logger = logging.getLogger("pygase.backend")

#: Seconds `run_in_thread(..., relay=...)` waits for the room code before it returns without one.
ROOM_CODE_WAIT = 5.0


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
        dedicated: no client becomes the host, so no client can shut the server down (for a server
            that runs on its own, such as the demos' `serve` mode); stop it with `shutdown()`

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
        dedicated: bool = False,
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
        if dedicated:  # the first client becomes the host only while there is no host token yet
            self._core.host_token = os.urandom(16)
        self._hostname: Optional[str] = None
        self._port: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._protocol: Optional[ServerProtocol] = None
        self._stop: Optional[asyncio.Event] = None
        self._bound = threading.Event()
        self._relay_link: Optional[HostRelayLink] = None
        self._room_code_given = threading.Event()
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
    def room_code(self) -> Optional[str]:
        """The code players join with through the relay (`run(..., relay=...)`); None without one."""
        link = self._relay_link
        return link.room_code if link is not None else None

    def _check_relay(self, relay: Optional[str], public: Union[bool, dict]) -> None:
        """Refuse a relay that cannot be an address, or what `public` cannot show, before anything starts.

        Raises:
            TypeError, ValueError: saying what is wrong
        """
        if relay is not None:
            parse_relay(relay)
            self._listing(public)
        elif public:
            raise ValueError("public= lists the session on a relay: give relay='HOST:PORT' too")

    def _listing(self, public: Union[bool, dict]) -> dict:
        """What a relay shows of the session in its public list."""
        shown = public if isinstance(public, dict) else {}
        unknown = set(shown) - {"game", "name", "max_players"}
        if unknown:
            raise ValueError(f"public= takes game, name and max_players, not {', '.join(sorted(unknown))}")
        game, name = str(shown.get("game", "pygase"))[:24], str(shown.get("name", "a PyGaSe game"))[:32]
        most = shown.get("max_players", self._core.max_clients)
        return {
            "game": game,
            "name": name,
            "max_players": most if type(most) is int and 0 <= most < 65536 else self._core.max_clients,
            "password": bool(self.password),
        }

    @property
    def port(self) -> Optional[int]:
        """Get the port number on which the server listens.

        Returns None when the server is not running.
        """
        return self._port

    def run(
        self,
        port: int = 0,
        hostname: str = "localhost",
        event_wire: Any = None,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> Optional[Coroutine[Any, Any, None]]:
        """Start the server under a specified address.

        This is a blocking function; use `Server.run_in_thread()` to run it in a thread, or await
        `Server.run_async()` in an asyncio program. Called where an asyncio event loop runs, it does not
        block but returns that coroutine, to await or spawn: `asyncio.create_task(server.run(8080))`.

        Arguments:
            port: port number the server will be bound to, default will be an available port chosen by
                the computer's network controller
            hostname: hostname or IP address the server will be bound to. Defaults to `'localhost'`;
                `''` or `'::'` listen on every interface, IPv4 and IPv6 (`'0.0.0.0'`: IPv4 only).
            event_wire: object to which events are to be repeated (has to implement a `_push_event(event)`
                method and is typically a `GameStateMachine`)
            relay: a relay's "HOST:PORT" (`python -m pygase.relay`): the server registers there from its
                own socket, gets a room code (logged, and in `room_code`) that players join with from
                anywhere (`Client.connect(room=..., relay=...)`), and stays registered while it runs
            public: with a relay, list the session there for everyone: True, or a dict with the `game`,
                `name` and `max_players` to show

        Raises:
            OSError: if the address cannot be bound (for example, the port is in use)
            ValueError: if `relay` cannot be an address; ConnectionError if it does not resolve
        """
        if loop_running_here():
            return self.run_async(port, hostname, event_wire, relay, public)
        asyncio.run(self.run_async(port, hostname, event_wire, relay, public))
        return None

    def run_in_thread(
        self,
        port: int = 0,
        hostname: str = "localhost",
        event_wire: Any = None,
        daemon: bool = True,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> threading.Thread:
        """Start the server in a separate thread.

        See `Server.run()`. Returns once the server listens, so `Server.port` is set (and, with a relay,
        once it has its `room_code`, or after `ROOM_CODE_WAIT` seconds: it keeps trying, and logs it).

        Returns:
            the thread the server loop runs in

        Raises:
            OSError: if the address cannot be bound
        """
        self._check_relay(relay, public)  # (here: in the caller's thread, not logged from the server's)
        errors: list[BaseException] = []
        self._bound.clear()

        def run() -> None:
            try:
                self.run(port, hostname, event_wire, relay, public)
            except BaseException as error:
                errors.append(error)
                self._bound.set()
                if not isinstance(error, (OSError, ValueError)):
                    logger.exception("the server stopped with an error")

        thread = threading.Thread(target=run, name="pygase-server", daemon=daemon)
        thread.start()
        self._bound.wait()
        if errors:
            thread.join()
            raise errors[0]
        self._wait_for_room_code(relay)
        return thread

    def _wait_for_room_code(self, relay: Optional[str]) -> None:
        if relay is not None and not self._room_code_given.wait(ROOM_CODE_WAIT):
            logger.warning("no room code from the relay %s yet; the server keeps asking", relay)

    async def run_async(
        self,
        port: int = 0,
        hostname: str = "localhost",
        event_wire: Any = None,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> None:
        """Run the server on the running event loop until it is shut down (see `Server.run()`)."""
        if not self._finished.is_set():
            raise RuntimeError("the server is already running")
        self._check_relay(relay, public)
        self._finished.clear()
        loop = asyncio.get_running_loop()
        core = self._core
        core.event_wire = event_wire
        core.shutdown_requested = False
        for connection in core.connections.values():
            connection.event_wire = event_wire
        stop = asyncio.Event()
        on_event = event_router(self._event_handler, event_wire, lambda: protocol)

        self._room_code_given.clear()
        try:
            sock = await bind_server_socket(hostname, port)
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: ServerProtocol(core, on_event, stop.set, self.simulate, sock), sock=sock
                )
            except BaseException:
                sock.close()
                raise
            try:
                if relay is not None:
                    self._relay_link = await HostRelayLink.start(
                        transport, relay, self._listing(public), bool(public), lambda: len(core.connections)
                    )
                    self._relay_link.on_code = lambda code: self._room_code_given.set()
                    protocol.rendezvous = self._relay_link.receive
                    core.relay_ips.add(plain_address(str(self._relay_link.agent.relay[0])))
                    core.host_from_this_machine = True
            except BaseException:
                transport.close()
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
            if self._relay_link is not None:
                self._relay_link.stop()
                self._relay_link = None
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
