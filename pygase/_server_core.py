"""The server side of the protocol core: every client connection behind one socket, without the socket.

`ServerCore` takes datagrams with their sender's address and the time, and hands back datagrams with
their destination, the events to handle and the time of its next timer. `pygase._transport` drives it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from typing import Any, Callable, Optional

from pygase import _crypto as crypto
from pygase import _handshake as handshake
from pygase._connection import DISCONNECT_EVENT, DISCONNECTED, SHUTDOWN_EVENT
from pygase._endpoints import plain_address
from pygase._event_order import TOTAL_HELD_BYTES, HeldBudget
from pygase._outputs import (
    ClientDropped,
    ClientLeft,
    EventReceived,
    Output,
    ShutdownRequested,
)
from pygase._packages import PROTOCOL_ID, ClientPackage, check_event_data
from pygase._ratelimit import RateLimitedLog
from pygase._seats import Seats
from pygase._server_admission import MAX_CLIENTS_PER_IP, Admission
from pygase._server_connection import ServerConnection
from pygase._server_gate import Gate
from pygase._sockets import not_waited
from pygase.errors import DecodeError, UnknownSenderError
from pygase.event import RESERVED_PREFIX, Event
from pygase.utils import Sqn, _address_text

logger = logging.getLogger("pygase.backend")

_DISCONNECTED = DISCONNECTED


_DEPARTED_SECONDS = 3.0


class ServerCore(Admission):
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
        max_clients_per_ip: connections from one public IP address (one /64 network for IPv6) beyond
            this are refused, so one host cannot take every place (16 by default: players behind one NAT
            are normal); loopback and private addresses are exempt, None means no limit
        rejoin_grace: seconds a player whose connection timed out keeps its seat (its player id): a
            client that joins again within it gets the seat back (`ClientDropped`, then `ClientReturned`
            or, when the time is up, `ClientLeft`); 0 frees the seat at once

        decide_joins: whether the driver decides on each player that joins: it is reported as
            `ClientJoined` (with its player id and join data) and waits until the driver lets it in with
            `accept_join` or turns it away with `refuse_join`. False (the default): it is let in at once,
            and `ClientJoined` only tells.

    What one client can make the server decode and send is bounded by its connection
    (`ServerConnection.max_receive_rate`, `max_send_rate`), and one that joins but sends nothing is
    dropped after `ServerConnection.join_timeout`.
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
        max_clients_per_ip: Optional[int] = MAX_CLIENTS_PER_IP,
        rejoin_grace: float = 30.0,
        decide_joins: bool = False,
    ) -> None:
        self.game_state_store = game_state_store
        if not rejoin_grace >= 0:
            raise ValueError(f"rejoin_grace is seconds, 0 or more, not {rejoin_grace!r}")
        self.rejoin_grace = rejoin_grace
        self.decide_joins = decide_joins
        self._seats = Seats(random_bytes)
        self.connection_class = connection_class
        self._random_bytes = random_bytes
        self.event_handler = event_handler
        self.event_wire: Any = None
        self.password = password
        self.max_clients = max_clients
        self.max_events_per_second = max_events_per_second
        self.max_event_size = max_event_size
        self.max_clients_per_ip = max_clients_per_ip
        #: IP addresses of relays that forward players to this server: `max_clients_per_ip` spares them.
        self.relay_ips: set[str] = set()
        #: Only a client on this machine (loopback) becomes the host: set while a relay lists the server,
        #: so that a stranger who joins by room code first cannot shut it down.
        self.host_from_this_machine = False
        self.connections: dict[tuple, ServerConnection] = {}  # by the client's current address
        self._by_id: dict[bytes, ServerConnection] = {}  # by connection id: what a datagram names
        self._host: Optional[ServerConnection] = None
        self.host_token: Optional[bytes] = None
        #: whether the host client asked the server to shut down (reported as `ShutdownRequested`)
        self.shutdown_requested = False
        self._leaving: set[tuple] = set()
        self._departed: dict[bytes, tuple[ServerConnection, float]] = {}  # connection id -> (it, until)
        self._outputs: list[Output] = []  # what happened, for the driver: see `events()`
        self._replies: dict[tuple, list[bytes]] = {}
        self._gate = Gate(random_bytes(32))  # the handshake, until a client proved it has the keys
        self._allowance: dict[tuple, tuple[float, float]] = {}  # address -> (events allowed, at time)
        # what all clients together may make us hold back (events that wait for a missing one)
        self._held_budget = HeldBudget(TOTAL_HELD_BYTES + 2 * max_event_size)
        self._log = RateLimitedLog(logger)  # lines a client or a stranger can cause, throttled
        # (joins and leaves: enough at once for a full server, then ten a second)
        self._log_comings = RateLimitedLog(logger, interval=0.1, burst=64)

    @property
    def host_client(self) -> Optional[tuple]:
        """The address of the host client (who may shut the server down), if it is connected."""
        return self._host.remote_address if self._host is not None else None

    @host_client.setter
    def host_client(self, address: Optional[tuple]) -> None:
        """Pass host rights to the client at `address` (None: to nobody)."""
        self._host = self.connections.get(tuple(address)) if address is not None else None

    def receive_datagram(
        self, datagram: bytes, address: tuple, now: float, waited: Callable[[], float] = not_waited
    ) -> None:
        """Take a datagram from `address`; what follows is reported by `events()`. `waited()` says how many
        seconds it waited in the socket's buffer before it was read; it is asked for a connection's
        package only (its round trips leave that out: a busy server is not a slow link).

        A handshake message is answered; any other datagram must be sealed with the key of a connection
        (it names the connection by id): it is opened before anything in it is decoded, and a connection
        whose client's address changed (a NAT rebinding, Wi-Fi roaming) follows it.

        Raises:
            ProtocolError: for anything else (`AuthenticationError` for a datagram that does not open
                with its connection's key or was received before, `UnknownSenderError` for one naming
                no connection, `DecodeError` for a malformed package inside)
            DuplicateSequenceError: for a package received before
        """
        if handshake.is_handshake(datagram):
            self._handshake(handshake.parse(datagram), address, now)
            return
        connection_id = crypto.connection_id_of(datagram)
        connection = self._by_id.get(connection_id)
        if connection is None:
            departed = self._departed.get(connection_id)
            if departed is not None and now < departed[1]:
                self._acknowledge_departed(departed[0], datagram)
                return
            raise UnknownSenderError(f"{address} sent a package for no connection")
        plaintext = connection.open(datagram)  # before anything is decoded: forged ones stop here
        if address != connection.remote_address and not self._path_proven(
            connection, plaintext, address, now
        ):
            return  # (not remembered: the original, if it comes, is no replay)
        connection.remember()
        if handshake.is_handshake(plaintext):
            return  # a sealed control message (a late path response)
        if not connection.admit(len(plaintext), now):
            return  # over its budget: dropped before anything in it is decoded, as if it were lost
        package = ClientPackage._from_datagram_unchecked(plaintext)
        connection.bytes_received += len(datagram)
        connection.read_delay = waited()
        events = connection.receive_package(package, now)
        outputs = self._outputs
        for event in events:
            allowed = self._allow_event(address, now)  # every event counts, before its data is looked at
            if event.type == DISCONNECT_EVENT:
                self._leave(connection, now)
            elif not allowed:
                continue
            elif event.type == SHUTDOWN_EVENT:
                token = event.handler_args[0] if event.handler_args else None
                if (
                    connection is self._host
                    and self.host_token is not None
                    and isinstance(token, bytes)
                    and hmac.compare_digest(token, self.host_token)
                ):
                    logger.info("the host client %s asked the server to shut down", _address_text(address))
                    self.shutdown_requested = True
                    outputs.append(ShutdownRequested(address))
                    self._leave(connection, now)
                else:
                    self._log.warning(
                        "forged shutdown",
                        now,
                        "client %s asked the server to shut down without the host token: ignored",
                        _address_text(address),
                    )
            elif event.type.startswith(RESERVED_PREFIX):
                self._log.debug(
                    "unknown control event",
                    now,
                    "ignoring unknown control event %.80r from %s",
                    event.type,
                    address,
                )
            elif self._data_is_good(event, address, now):
                outputs.append(EventReceived(event, address, connection.player_id))

    def _data_is_good(self, event: Event, address: tuple, now: float) -> bool:
        """Check the data of an event the server is about to hand on (see `check_event_data`)."""
        try:
            check_event_data(event)
        except DecodeError as error:
            self._log.debug(
                "bad event data", now, "dropping an event %.80r from %s: %s", event.type, address, error
            )
            return False
        return True

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
                "client %s sends more than %g events per second: dropping",
                _address_text(address),
                rate,
            )
            return False
        self._allowance[address] = (allowance - 1, now)
        return True

    def _reply(self, address: tuple, datagram: bytes) -> None:
        replies = self._replies.setdefault(address, [])
        if len(replies) < 4:  # a flood of requests gets a few replies, not a queue
            replies.append(datagram)

    def _connect(self, address: tuple, now: float) -> ServerConnection:
        """A new client's connection, with an id of its own."""
        for _ in range(100):
            connection_id = self._random_bytes(crypto.CONNECTION_ID_SIZE)
            if connection_id not in self._by_id and not handshake.is_handshake(PROTOCOL_ID + connection_id):
                break
        else:
            raise RuntimeError("the random source gives no usable connection id")
        connection = self.connection_class(
            address,
            self.event_handler,
            self.game_state_store,
            Sqn(0),
            self.event_wire,
            session=int.from_bytes(self._random_bytes(4), "big"),
        )
        connection.connection_id = connection_id
        connection.accept(now, self.max_event_size, self._held_budget)
        self.connections[address] = connection
        self._by_id[connection_id] = connection
        # The first client is the host (with a relay: the first from this machine); host rights die with
        # its session.
        if self.host_token is None and (not self.host_from_this_machine or _on_this_machine(address)):
            self.host_token = self._random_bytes(16)
            self._host = connection
        self._log_comings.info(
            "connected",
            now,
            "client %s connected%s",
            _address_text(address),
            " (host)" if connection is self._host else "",
        )
        return connection

    def _path_proven(
        self, connection: ServerConnection, plaintext: bytes, address: tuple, now: float
    ) -> bool:
        """An authentic datagram of a client's came from another address. Its key does not prove the
        client is there: someone may replay a datagram of the client's that got lost. So the server asks
        that address to answer a random token (sealed: only the client can), and moves the connection
        when the answer comes from there; until then datagrams from there are dropped, as if lost. The
        challenge and answer are sealed control messages: no package sequence number changes."""
        token = handshake.path_token(plaintext, handshake.PATH_RESPONSE)
        if token is not None and token == connection.path_token(address):
            self._move(connection, address)
            return True
        if connection.newest_opened() and connection.may_probe(now):
            token = self._random_bytes(handshake.PATH_TOKEN_SIZE)
            connection.start_probe(address, token, now)
            self._reply(address, connection.seal(handshake.PATH_CHALLENGE + token))
        return False

    def _move(self, connection: ServerConnection, address: tuple) -> None:
        """The client's packages come from a new address (its key proves it is the same client)."""
        old = connection.remote_address
        if address in self.connections:
            raise UnknownSenderError(f"{address} already has a connection: not moving {old} there")
        logger.info("client %s moved to %s", _address_text(old), _address_text(address))
        del self.connections[old]
        self.connections[address] = connection
        connection.remote_address = address
        for table in (self._allowance, self._replies):
            if old in table:
                table[address] = table.pop(old)  # type: ignore[assignment]
        if old in self._leaving:
            self._leaving.discard(old)
            self._leaving.add(address)

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
            self._remove(address, now, left=True)
            self._log_comings.info("disconnected", now, "client %s disconnected", _address_text(address))
            # For a few seconds its goodbye is acknowledged again if it repeats it (our ack was lost).
            self._departed[connection.connection_id] = (connection, now + _DEPARTED_SECONDS)
        return datagrams

    def datagrams_to_send(self, now: float) -> list:
        """Run every connection's timers and return all due datagrams as (datagram, address) pairs."""
        outgoing: list[tuple[bytes, tuple]] = []
        if self._departed:
            self._departed = {a: entry for a, entry in self._departed.items() if now < entry[1]}
        self._end_waits(now)
        if self._replies:  # handshake replies first (a WELCOME before the state that follows it)
            for address, replies in self._replies.items():
                outgoing.extend((datagram, address) for datagram in replies)
            self._replies = {}
        for address, connection in list(self.connections.items()):
            connection.handle_timer(now)
            if connection.status == _DISCONNECTED:
                self._remove(address, now)
                continue
            for datagram in connection.datagrams_to_send(now):
                outgoing.append((datagram, address))
            if connection.has_outputs():
                self._outputs.extend(connection.events())
        return outgoing

    def _remove(self, address: tuple, now: float, left: bool = False, report: bool = True) -> None:
        """Forget a connection: close it (giving up what it still sends) and keep its callbacks. A player
        who `left` frees its seat; one whose connection was lost keeps it for `rejoin_grace` seconds.
        `report=False`: its client is already back on a new connection (nothing to tell the game)."""
        connection = self.connections.pop(address)
        self._by_id.pop(connection.connection_id, None)
        if connection is self._host:
            self._host = None  # host rights die with the host's session
        connection.close()
        self._outputs.extend(connection.events())  # its callbacks still run
        self._allowance.pop(address, None)
        self._replies.pop(address, None)
        seat = self._seats.by_player.get(connection.player_id)
        if not report or seat is None or seat.connection is not connection:
            return
        # (a client that never sent a package may not have its seat token: it could not come back)
        if left or self.rejoin_grace <= 0 or connection.never_heard:
            self._seats.free(seat)
            self._outputs.append(ClientLeft(address, seat.player_id))
        else:
            self._seats.hold(seat, now + self.rejoin_grace)
            logger.info(
                "player %d (%s) dropped: its seat is kept for %g s",
                seat.player_id,
                _address_text(address),
                self.rejoin_grace,
            )
            self._outputs.append(ClientDropped(address, seat.player_id))

    def _end_waits(self, now: float) -> None:
        """Free the seats whose grace period is over and forget joins the game never decided on."""
        for seat in self._seats.expired(now):
            logger.info("player %d did not come back within %g s", seat.player_id, self.rejoin_grace)
            self._outputs.append(ClientLeft(seat.address, seat.player_id))
        for join in self._seats.pending_expired(now):
            if join.refusal is None:
                self._log_comings.info(
                    "undecided",
                    now,
                    "gave up on client %s: the game did not let it in",
                    _address_text(join.address),
                )

    def _acknowledge_departed(self, connection: ServerConnection, datagram: bytes) -> None:
        """Answer a package from a client that left with a bare acknowledgement of it, nothing more.

        Only if the acknowledgement is no larger than the package (a goodbye, which carries an event, is
        larger): nobody can make the server send more bytes anywhere than they sent it.
        """
        package = ClientPackage.from_datagram(connection.open(datagram))
        reply = connection.bare_ack(package)
        if len(reply) <= len(datagram):
            self._reply(connection.remote_address, reply)

    def get_timer(self) -> Optional[float]:
        """Return the earliest time any connection (or a kept seat, or a join waiting) needs attention."""
        timers = [t for t in (c.get_timer() for c in self.connections.values()) if t is not None]
        seats = self._seats.next_deadline()
        if seats is not None:
            timers.append(seats)
        return min(timers) if timers else None

    def player_address(self, player_id: int) -> Optional[tuple]:
        """The address of a player's client, if it is connected."""
        seat = self._seats.by_player.get(player_id)
        return seat.connection.remote_address if seat is not None and seat.connection is not None else None

    def events(self) -> list[Output]:
        """Return and forget what happened since the last call, in order: `EventReceived`,
        `CallbackDue`, `ClientJoined`, `ClientDropped`, `ClientReturned`, `ClientLeft` and
        `ShutdownRequested` (see `pygase._outputs`)."""
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


def _on_this_machine(address: tuple) -> bool:
    try:
        return ipaddress.ip_address(plain_address(str(address[0])).split("%", 1)[0]).is_loopback
    except ValueError:
        return False
