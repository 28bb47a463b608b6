"""The server side of the protocol core: every client connection behind one socket, without the socket.

`ServerCore` takes datagrams with their sender's address and the time, and hands back datagrams with
their destination, the events to handle and the time of its next timer. `pygase._transport` drives it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any, Callable, Optional

from pygase import _handshake as handshake
from pygase._connection import DISCONNECT_EVENT, DISCONNECTED, SHUTDOWN_EVENT
from pygase._outputs import ClientJoined, ClientLeft, EventReceived, Output, ShutdownRequested
from pygase._packages import ClientPackage
from pygase._ratelimit import RateLimitedLog
from pygase._server_connection import ServerConnection
from pygase.errors import UnknownSenderError
from pygase.event import RESERVED_PREFIX, Event
from pygase.utils import Sqn

logger = logging.getLogger("pygase.backend")

_DISCONNECTED = DISCONNECTED


_DEPARTED_SECONDS = 3.0


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
        self._log = RateLimitedLog(logger)  # lines a client or a stranger can cause, throttled
        # (joins and leaves: enough at once for a full server, then ten a second)
        self._log_comings = RateLimitedLog(logger, interval=0.1, burst=64)

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
                    self._log.warning(
                        "forged shutdown",
                        now,
                        "client %s:%s asked the server to shut down without the host token: ignored",
                        *address[:2],
                    )
            elif event.type.startswith(RESERVED_PREFIX):
                self._log.debug(
                    "unknown control event",
                    now,
                    "ignoring unknown control event %.80r from %s",
                    event.type,
                    address,
                )
            elif self._allow_event(address, now):
                outputs.append(EventReceived(event, address))

    def _allow_event(self, address: tuple, now: float) -> bool:
        """Token bucket: `max_events_per_second`, bursts up to twice that."""
        rate = self.max_events_per_second
        allowance, then = self._allowance.get(address, (2 * rate, now))
        allowance = min(2 * rate, allowance + (now - then) * rate)
        if allowance < 1:
            self._allowance[address] = (allowance, now)
            self._log.warning(
                "over the event rate",
                now,
                "client %s:%s sends more than %g events per second: dropping",
                *address[:2],
                rate,
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
            self._log.debug("handshake ignored", now, "ignoring a %s message from %s", message.kind, address)

    def _respond(self, message: handshake.HandshakeMessage, address: tuple, now: float) -> None:
        window = handshake.window_at(now)
        if message.window not in (window, window - 1) or not hmac.compare_digest(
            message.cookie, handshake.make_cookie(self._secret, address, message.window, message.nonce)
        ):
            logger.debug("ignoring a handshake response with a bad cookie from %s", address)
            return
        if not hmac.compare_digest(message.proof, handshake.password_proof(self.password, message.cookie)):
            self._log_comings.info(
                "wrong password", now, "refused client %s:%s: wrong password", *address[:2]
            )
            self._reply(address, handshake.refused(message.nonce, handshake.WRONG_PASSWORD))
            return
        connection = self.connections.get(address)
        if connection is None:
            self._departed.pop(address, None)
            if len(self.connections) >= self.max_clients:
                self._log_comings.info(
                    "server full",
                    now,
                    "refused client %s:%s: server full (%d clients)",
                    *address[:2],
                    self.max_clients,
                )
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
            self._log_comings.info("disconnected", now, "client %s:%s disconnected", *address[:2])
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
