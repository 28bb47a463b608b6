"""The server side of the protocol core: every client connection behind one socket, without the socket.

`ServerCore` takes datagrams with their sender's address and the time, and hands back datagrams with
their destination, the events to handle and the time of its next timer. `pygase._transport` drives it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any, Callable, Optional

from pygase import _codec
from pygase import _handshake as handshake
from pygase._connection import DISCONNECT_EVENT, DISCONNECTED, SHUTDOWN_EVENT, STATE_PART_EVENT, Connection
from pygase._event_order import PART_SIZE
from pygase._outputs import ClientJoined, ClientLeft, EventReceived, Output, ShutdownRequested
from pygase._packages import ClientPackage, Header, Package, ServerPackage, _server_tail
from pygase.errors import UnknownSenderError
from pygase.event import RESERVED_PREFIX, Event
from pygase.gamestate import GameState
from pygase.utils import Sqn

logger = logging.getLogger("pygase.backend")
_connection_logger = logging.getLogger("pygase.connection")

_DISCONNECTED = DISCONNECTED


_DEPARTED_SECONDS = 3.0


class ServerConnection(Connection):
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
    waits until it has.
    """

    _incoming_package = ClientPackage
    _outgoing_fields = ServerPackage._body_fields
    heartbeat_interval = 0.1
    #: Updates that encode to more bytes than this travel in parts.
    inline_state_limit = 900

    def __init__(
        self,
        remote_address: tuple,
        event_handler: Any,
        game_state_store: Any,
        last_client_time_order: Sqn,
        event_wire: Any = None,
        session: Optional[int] = None,
    ) -> None:
        super().__init__(remote_address, event_handler, event_wire)
        self.game_state_store = game_state_store
        self.last_client_time_order = Sqn(last_client_time_order)
        #: a random number that tells this server session's packages from an earlier one's
        self.session = secrets.randbits(32) if session is None else session
        #: time order of the newest state sent to this client
        self._sent_time_order: Optional[Sqn] = None
        self._transfer_id = 0
        self._transfer: Optional[_Transfer] = None  # a large update on its way in parts
        self._pin: Optional[tuple[Sqn, object]] = None  # (time order, token) held in the store's cache

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ClientPackage)
        events = super()._receive_package(package, now)
        if package.header.sequence == self.remote_sequence:  # the newest package says what the client has
            self.last_client_time_order = package.time_order
            if self._pin is not None and package.time_order > self._pin[0]:
                self._release_pin()
        return events

    def _release_pin(self) -> None:
        if self._pin is not None:
            unpin = getattr(self.game_state_store, "_unpin", None)
            if unpin is not None:
                unpin(self._pin[1])
            self._pin = None

    def _close(self) -> None:
        super()._close()
        self._release_pin()

    def _ack_callback_args(self) -> tuple:
        return (self,)

    # ---- what the server core asks of a connection ---------------------------------------------------

    def accept(self, now: float, max_event_size: int) -> None:
        """The client completed the handshake at `now`; it may send events up to `max_event_size`."""
        self._inbound.max_event_size = max_event_size
        self._start(now)
        self._last_received = now

    def receive_package(self, package: ClientPackage, now: float) -> list:
        """Take a package from the client; return its new events, control events included."""
        return self._receive_package(package, now)

    def acknowledge_at_once(self, now: float) -> None:
        """Send the next package (and the acks it carries) at once: the client is leaving."""
        self._ack_due_at = now

    def close(self) -> None:
        """End the connection: what is still in flight is given up, its callbacks reported."""
        self._close()

    def bare_ack(self, package: ClientPackage) -> bytes:
        """A package that only acknowledges `package` (for a client that already left)."""
        self.local_sequence = self.local_sequence + 1
        header = Header._from_ints(int(self.local_sequence), int(package.header.sequence), 0)
        reply = ServerPackage(header, None)
        reply.session = self.session
        return reply.to_datagram()

    def notice(self, event: Event, now: float) -> bytes:
        """A package that carries `event` once, at once (see `Connection._notice_datagram`)."""
        return self._notice_datagram(event, now)

    def has_outputs(self) -> bool:
        return bool(self._outputs)

    def settled(self) -> bool:
        return super().settled() and self._sent_time_order == _store_time_order(self.game_state_store)

    def _send_due(self, now: float) -> bool:
        if super()._send_due(now):
            return True
        # A newer state than this client was sent goes out at once (as far as congestion allows).
        return (
            self._transfer is None
            and self._sent_time_order != _store_time_order(self.game_state_store)
            and now >= self._recovery.earliest_send(self._last_sent)
        )

    def _make_package(self, header: Header, now: float) -> Package:
        package = ServerPackage(header, None)
        package.session = self.session
        if self._transfer is None:
            inline = self._inline_update()
            if inline is not None:
                package._update_bytes, package.full_state = inline
        return package

    def _plain_tail(self, now: float) -> Optional[bytes]:
        if self._transfer is None:
            inline = self._inline_update()
            if self._transfer is not None:
                return None  # the update starts a transfer: this package carries its first parts
            if inline is not None:
                return _server_tail(inline[0], inline[1], self.session)
        return _server_tail(b"\xc0", False, self.session)  # no update

    def _inline_update(self) -> Optional[tuple[bytes, bool]]:
        """What the client lacks, as (encoded update, full state flag) if it fits in this package.

        Every package carries what the client lacks, measured from what it says it has, so a lost package
        costs nothing but the wait for the next one. An update too large for a package starts a transfer
        in parts instead (and None is returned), as does nothing to send.
        """
        time_order, update_bytes, full_state = _store_update_since(
            self.game_state_store, self.last_client_time_order
        )
        self._sent_time_order = time_order
        if update_bytes is None:
            return None
        if len(update_bytes) > self.inline_state_limit:
            self._start_transfer(time_order, update_bytes, full_state)
            return None
        return update_bytes, full_state

    def _start_transfer(self, time_order: Sqn, update_bytes: bytes, full_state: bool) -> None:
        self._transfer_id += 1
        count = (len(update_bytes) + PART_SIZE - 1) // PART_SIZE
        pin = getattr(self.game_state_store, "_pin", None)
        if pin is not None:
            # The next delta builds on this state, however long the transfer takes: keep it cached.
            self._release_pin()
            self._pin = (time_order, pin(time_order))
        transfer = self._transfer = _Transfer(time_order, count)
        _connection_logger.debug(
            "sending a state of %d bytes to %s in %d parts", len(update_bytes), self.remote_address, count
        )

        def part_arrived() -> None:
            transfer.remaining -= 1
            if transfer.remaining == 0 and self._transfer is transfer:
                self._transfer = None
                if time_order > self.last_client_time_order:
                    self.last_client_time_order = time_order

        for index in range(count):
            chunk = update_bytes[index * PART_SIZE : (index + 1) * PART_SIZE]
            self._send_bulk(
                Event(STATE_PART_EVENT, self._transfer_id, index, count, full_state, chunk), part_arrived
            )


class _Transfer:
    """A large update on its way to one client in parts (resent until they arrive)."""

    __slots__ = ("time_order", "remaining")

    def __init__(self, time_order: Sqn, parts: int) -> None:
        self.time_order = time_order
        self.remaining = parts  # parts not yet acknowledged


class ServerCore:
    """All client connections of one server and the rules between them: handshake, host, limits.

    Arguments:
        game_state_store: the store whose state the clients get
        event_handler: the server's `UniversalEventHandler` (passed to each connection)
        password: clients must prove they know it to join (None: anyone may join)
        max_clients: connections beyond this are refused ("server full")
        max_events_per_second: events a client may send per second (bursts of twice that); the excess
            is dropped and logged
        max_event_size: largest event in bytes a client may send (as parts, if large)
        connection_class: what each client's connection is (`pygase.connection.ServerConnection`, for
            the public API; its core by default)
        random_bytes: source of secrets, host tokens and session numbers (`secrets.token_bytes` by
            default; tests inject a seeded one)
    """

    def __init__(
        self,
        game_state_store: Any,
        event_handler: Any,
        password: Optional[str] = None,
        max_clients: int = 64,
        max_events_per_second: float = 200.0,
        max_event_size: int = 1024 * 1024,
        connection_class: type[ServerConnection] = ServerConnection,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.game_state_store = game_state_store
        self.connection_class = connection_class
        self._random_bytes = random_bytes
        self.event_handler = event_handler
        self.event_wire: Any = None
        self.password = password
        self.max_clients = max_clients
        self.max_events_per_second = max_events_per_second
        self.max_event_size = max_event_size
        self.connections: dict[tuple, ServerConnection] = {}
        self.host_client: Optional[tuple] = None
        self.host_token: Optional[bytes] = None
        #: whether the host client asked the server to shut down (reported as `ShutdownRequested`)
        self.shutdown_requested = False
        self._leaving: set[tuple] = set()
        self._departed: dict[tuple, tuple[ServerConnection, float]] = {}  # address -> (connection, until)
        self._outputs: list[Output] = []  # what happened, for the driver: see `events()`
        self._replies: dict[tuple, list[bytes]] = {}
        self._secret = random_bytes(32)
        self._allowance: dict[tuple, tuple[float, float]] = {}  # address -> (events allowed, at time)
        self._last_limit_log = float("-inf")

    def receive_datagram(self, datagram: bytes, address: tuple, now: float) -> None:
        """Take a datagram from `address`; what follows is reported by `events()`.

        Only an address that completed the handshake gets a connection; packages from any other
        address are refused with `UnknownSenderError`.

        Raises:
            ValueError: for a malformed datagram (`ProtocolIDMismatchError` for a foreign one,
                `UnknownSenderError` for a package from an address without a connection)
            DuplicateSequenceError: for a package received before
        """
        if handshake.is_handshake(datagram):
            self._handshake(handshake.parse(datagram), address, now)
            return
        connection = self.connections.get(address)
        if connection is None:
            departed = self._departed.get(address)
            if departed is not None and now < departed[1]:
                self._acknowledge_departed(departed[0], datagram)
                return
            raise UnknownSenderError(f"{address} has not completed the handshake")
        package = ClientPackage.from_datagram(datagram)
        connection.bytes_received += len(datagram)
        events = connection.receive_package(package, now)
        outputs = self._outputs
        for event in events:
            if event.type == DISCONNECT_EVENT:
                self._leave(connection, now)
            elif event.type == SHUTDOWN_EVENT:
                token = event.handler_args[0] if event.handler_args else None
                if (
                    self.host_token is not None
                    and isinstance(token, bytes)
                    and hmac.compare_digest(token, self.host_token)
                ):
                    logger.info("the host client %s:%s asked the server to shut down", *address[:2])
                    self.shutdown_requested = True
                    outputs.append(ShutdownRequested(address))
                    self._leave(connection, now)
                else:
                    logger.warning(
                        "client %s:%s asked the server to shut down without the host token: ignored",
                        *address[:2],
                    )
            elif event.type.startswith(RESERVED_PREFIX):
                logger.debug("ignoring unknown control event %r from %s", event.type, address)
            elif self._allow_event(address, now):
                outputs.append(EventReceived(event, address))

    def _allow_event(self, address: tuple, now: float) -> bool:
        """Token bucket: `max_events_per_second`, bursts up to twice that."""
        rate = self.max_events_per_second
        allowance, then = self._allowance.get(address, (2 * rate, now))
        allowance = min(2 * rate, allowance + (now - then) * rate)
        if allowance < 1:
            self._allowance[address] = (allowance, now)
            if now - self._last_limit_log > 5.0:
                self._last_limit_log = now
                logger.warning(
                    "client %s:%s sends more than %g events per second: dropping", *address[:2], rate
                )
            return False
        self._allowance[address] = (allowance - 1, now)
        return True

    def _reply(self, address: tuple, datagram: bytes) -> None:
        replies = self._replies.setdefault(address, [])
        if len(replies) < 4:  # a flood of requests gets a few replies, not a queue
            replies.append(datagram)

    def _handshake(self, message: handshake.HandshakeMessage, address: tuple, now: float) -> None:
        if message.kind == "hello":
            if message.version != handshake.VERSION:
                self._reply(address, handshake.refused(message.nonce, handshake.VERSION_MISMATCH))
                return
            window = handshake.window_at(now)
            cookie = handshake.make_cookie(self._secret, address, window, message.nonce)
            self._reply(address, handshake.challenge(message.nonce, window, cookie))
        elif message.kind == "response":
            self._respond(message, address, now)
        else:
            logger.debug("ignoring a %s message from %s", message.kind, address)

    def _respond(self, message: handshake.HandshakeMessage, address: tuple, now: float) -> None:
        window = handshake.window_at(now)
        if message.window not in (window, window - 1) or not hmac.compare_digest(
            message.cookie, handshake.make_cookie(self._secret, address, message.window, message.nonce)
        ):
            logger.debug("ignoring a handshake response with a bad cookie from %s", address)
            return
        if not hmac.compare_digest(message.proof, handshake.password_proof(self.password, message.cookie)):
            logger.info("refused client %s:%s: wrong password", *address[:2])
            self._reply(address, handshake.refused(message.nonce, handshake.WRONG_PASSWORD))
            return
        connection = self.connections.get(address)
        if connection is None:
            self._departed.pop(address, None)
            if len(self.connections) >= self.max_clients:
                logger.info("refused client %s:%s: server full (%d clients)", *address[:2], self.max_clients)
                self._reply(address, handshake.refused(message.nonce, handshake.SERVER_FULL))
                return
            connection = self.connection_class(
                address,
                self.event_handler,
                self.game_state_store,
                Sqn(0),
                self.event_wire,
                session=int.from_bytes(self._random_bytes(4), "big"),
            )
            connection.accept(now, self.max_event_size)
            self.connections[address] = connection
            if self.host_token is None:
                self.host_token = self._random_bytes(16)
                self.host_client = address
            logger.info(
                "client %s:%s connected%s",
                address[0],
                address[1],
                " (host)" if address == self.host_client else "",
            )
            self._outputs.append(ClientJoined(address))
        is_host = address == self.host_client and self.host_token is not None
        token = self.host_token if is_host and self.host_token is not None else bytes(16)
        welcome = handshake.welcome(message.nonce, connection.session, is_host, token, self.max_event_size)
        self._reply(address, welcome)

    def _leave(self, connection: ServerConnection, now: float) -> None:
        # Acknowledge at once so the client can close, then forget the connection.
        connection.acknowledge_at_once(now)
        self._leaving.add(connection.remote_address)

    def settled(self, address: tuple) -> bool:
        """Whether nothing is due for `address` after what it sent (see `Connection.settled`)."""
        connection = self.connections.get(address)
        return (
            connection is not None
            and not self._outputs
            and address not in self._replies
            and address not in self._leaving
            and connection.settled()
        )

    def datagrams_for(self, address: tuple, now: float) -> list:
        """Return what is due for one address right now (after it sent something): replies first."""
        datagrams = self._replies.pop(address, [])
        connection = self.connections.get(address)
        if connection is None:
            return datagrams
        datagrams.extend(connection.datagrams_to_send(now))
        self._outputs.extend(connection.events())
        if address in self._leaving:
            self._leaving.discard(address)
            self._remove(address)
            logger.info("client %s:%s disconnected", *address[:2])
            # For a few seconds its goodbye is acknowledged again if it repeats it (our ack was lost).
            self._departed[address] = (connection, now + _DEPARTED_SECONDS)
        return datagrams

    def datagrams_to_send(self, now: float) -> list:
        """Run every connection's timers and return all due datagrams as (datagram, address) pairs."""
        outgoing: list[tuple[bytes, tuple]] = []
        if self._departed:
            self._departed = {a: entry for a, entry in self._departed.items() if now < entry[1]}
        for address, connection in list(self.connections.items()):
            if address in self._replies:
                continue  # its handshake reply goes first, from `datagrams_for`
            connection.handle_timer(now)
            if connection.status == _DISCONNECTED:
                self._remove(address)
                continue
            for datagram in connection.datagrams_to_send(now):
                outgoing.append((datagram, address))
            if connection.has_outputs():
                self._outputs.extend(connection.events())
        return outgoing

    def _remove(self, address: tuple) -> None:
        """Forget a connection: close it (giving up what it still sends) and keep its callbacks."""
        connection = self.connections.pop(address)
        connection.close()
        self._outputs.extend(connection.events())  # its callbacks still run
        self._allowance.pop(address, None)
        self._replies.pop(address, None)
        self._outputs.append(ClientLeft(address))

    def _acknowledge_departed(self, connection: ServerConnection, datagram: bytes) -> None:
        """Answer a package from a client that left with a bare acknowledgement of it, nothing more."""
        self._reply(connection.remote_address, connection.bare_ack(ClientPackage.from_datagram(datagram)))

    def get_timer(self) -> Optional[float]:
        """Return the earliest time any connection needs attention."""
        timers = [t for t in (c.get_timer() for c in self.connections.values()) if t is not None]
        return min(timers) if timers else None

    def events(self) -> list[Output]:
        """Return and forget what happened since the last call, in order: `EventReceived`,
        `CallbackDue`, `ClientJoined`, `ClientLeft` and `ShutdownRequested` (see `pygase._outputs`)."""
        outputs, self._outputs = self._outputs, []
        return outputs

    def dispatch_event(
        self,
        event: Event,
        target_client: Any = "all",
        retries: int = 0,
        ack_callback: Optional[Callable[..., Any]] = None,
    ) -> None:
        """Queue an event for one client (by address) or for `'all'`."""
        if target_client == "all":
            targets = list(self.connections.values())
        else:
            connection = self.connections.get(tuple(target_client))
            if connection is None:
                logger.warning("cannot send event %r: no client at %s", event.type, target_client)
                return
            targets = [connection]
        for connection in targets:
            connection.dispatch_event(event, ack_callback=ack_callback, retries=retries)

    def shutdown_datagrams(self, now: float) -> list:
        """Tell every client that the server shuts down; return the datagrams to send."""
        return [
            (connection.notice(Event(SHUTDOWN_EVENT), now), address)
            for address, connection in self.connections.items()
        ]


def _store_state(store: Any) -> GameState:
    getter = getattr(store, "get_game_state", None) or store.get_gamestate
    return getter()


def _store_time_order(store: Any) -> Sqn:
    fast = getattr(store, "_time_order", None)
    return fast() if fast is not None else _store_state(store).time_order


def _store_update_since(store: Any, time_order: Sqn) -> tuple:
    """(current time order, bytes of what a client at `time_order` lacks or None, full state flag).

    A `GameStateStore` answers this itself, with caching; any other store that has the documented
    methods (`get_game_state` or `get_gamestate`, `get_update_cache`) is asked through those.
    """
    fast = getattr(store, "_encoded_update_since", None)
    if fast is not None:
        return fast(time_order)
    state = _store_state(store)
    current = state.time_order
    if time_order == current:
        return current, None, False
    cache = list(store.get_update_cache())
    for index in range(len(cache) - 1, -1, -1):
        if int(time_order) != 0 and cache[index].time_order == time_order and cache[index + 1 :]:
            combined = cache[index + 1]
            for update in cache[index + 2 :]:
                combined = combined + update
            return combined.time_order, combined.to_bytes(), False
    public = {key: value for key, value in state.__dict__.items() if not key.startswith("_")}
    return current, _codec.pack(public), True
