"""The client side of the protocol core: the handshake, the server session and state transfers.

No sockets, threads, locks or clocks: time comes in as `now`, randomness from an injectable source.
What arrives of the game state is handed to `_state_arrived` (an update in one package) or
`_state_assembled` (one put together from parts); `pygase.connection.ClientConnection` keeps the state
copy behind a lock and answers `_reported_time_order`.

A client is in one of the `ClientPhase`s; `_TRANSITIONS` lists the moves between them:

    JOINING --welcome--> JOINED --silence (rejoin_after)--> REJOINING --welcome--> JOINED
    JOINED or REJOINING --server shut down--> JOINING (waits for the server to come back)
    JOINED or REJOINING --shutdown()--> LEAVING --acked or given up--> CLOSED
    any phase --refused, timed out, nothing listening--> CLOSED
"""

from __future__ import annotations

import enum
import logging
import secrets
from typing import Any, Callable, Optional

from pygase import _codec
from pygase import _crypto as crypto
from pygase import _handshake as handshake
from pygase._connection import (
    CONNECTED,
    CONNECTING,
    DISCONNECT_EVENT,
    DISCONNECTED,
    SHUTDOWN_EVENT,
    STATE_PART_EVENT,
    Connection,
)
from pygase._event_order import PART_SIZE, check_event_args
from pygase._packages import ClientPackage, Package, ServerPackage, _server_tail
from pygase._sockets import not_waited, strip_brackets
from pygase._transfer import PartsReceived, completed_report
from pygase.errors import HandshakeError, ProtocolError
from pygase.event import RESERVED_PREFIX, Event
from pygase.gamestate import GameStateUpdate
from pygase.utils import Sqn, _address_text

logger = logging.getLogger("pygase.connection")


class ClientPhase(enum.Enum):
    """Where a client is in its life with a server."""

    JOINING = "joining"  # handshake: hello, challenge, response, welcome
    JOINED = "joined"  # packages flow
    REJOINING = "rejoining"  # joined, but silent too long: handshake again while packages still flow
    LEAVING = "leaving"  # shutdown() was called: the goodbye is on its way
    CLOSED = "closed"  # done: refused, failed, timed out or left


_TRANSITIONS: dict[ClientPhase, frozenset] = {
    ClientPhase.JOINING: frozenset({ClientPhase.JOINED, ClientPhase.CLOSED}),
    ClientPhase.JOINED: frozenset(
        {ClientPhase.REJOINING, ClientPhase.JOINING, ClientPhase.LEAVING, ClientPhase.CLOSED}
    ),
    ClientPhase.REJOINING: frozenset(
        {ClientPhase.JOINED, ClientPhase.JOINING, ClientPhase.LEAVING, ClientPhase.CLOSED}
    ),
    ClientPhase.LEAVING: frozenset({ClientPhase.CLOSED}),
    ClientPhase.CLOSED: frozenset(),
}


class ClientCore(Connection):
    """The client side of a connection: handshake, session and state transfers (see the module doc).

    Arguments:
        remote_address: the server's (hostname, port)
        event_handler: handles the events the server sends (the driver calls it)
        password: the session password, if the server has one
        random_bytes: source of the handshake nonces (`secrets.token_bytes` by default; tests inject
            a seeded one)
        join_data: what the game's `CLIENT_JOINED` handler gets, packed (`pygase._codec.pack`)

    Attributes:
        phase (ClientPhase): where the client is
        host_token (bytes): the token that proves host rights, if the server made this client its host
        player_id (int): this client's player id on the server, once joined (None before)
        refused_reason (str): why the server refused this client ('wrong password', 'server full' ...)
        server_closed (bool): True after the server said it shuts down; the connection then waits
            `timeout` seconds for the server to come back before it counts as disconnected
        updates_received (int): number of state updates received so far
    """

    _incoming_package = ServerPackage
    _outgoing_fields = ClientPackage._body_fields
    heartbeat_interval = 0.2
    #: Seconds between handshake messages while joining.
    handshake_interval = 0.25
    #: Seconds of silence after which a joined client also tries the handshake again (the server may
    #: have been replaced by a new one that does not know it).
    rejoin_after = 1.5
    #: Seconds a client that never heard from the server keeps trying while the network says that nothing
    #: listens at the server's address (it may be starting); after that, connecting fails. Once the
    #: server answered, such errors are ignored: a server that restarts refuses for a moment.
    refused_patience = 1.0

    def __init__(
        self,
        remote_address: tuple,
        event_handler: Any,
        password: Optional[str] = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        join_data: bytes = b"",
    ) -> None:
        super().__init__((strip_brackets(remote_address[0]), *remote_address[1:]), event_handler)
        self._password = password
        handshake.check_join_data(join_data)  # (here, not when the CONFIRM is made)
        self._join_data = join_data
        self.player_id: Optional[int] = None
        #: The room code this connection joined by (through a relay), and its route once found:
        #: 'direct' or 'relay' (None while a room's host is still being looked for).
        self.room: Optional[str] = None
        self.route: Optional[str] = "direct"
        self._rendezvous: Optional[tuple[str, str]] = None  # (relay, room code)
        self._seat_token = bytes(handshake.SEAT_TOKEN_SIZE)  # shown when joining again: the same seat
        self._random_bytes = random_bytes
        self.phase = ClientPhase.JOINING
        self._nonce = random_bytes(8)
        self._cookie: Optional[tuple[int, bytes]] = None
        self._exchange: Optional[_KeyExchange] = None  # this handshake's key exchange, once challenged
        self._handshake_sent: Optional[float] = None
        self.host_token: Optional[bytes] = None
        self.refused_reason: Optional[str] = None
        self._answered = False  # a handshake reply from the server came at least once
        self._failure: Optional[tuple[type[OSError], str]] = None  # why connecting failed, if it did
        self._socket_error: Optional[OSError] = None  # the last error the socket reported
        self.updates_received = 0
        self.server_closed = False
        self._session: Optional[int] = None
        self._session_tails: tuple = (None, b"", b"")  # (session, what a package ends with ...)
        self._state_parts: Optional[PartsReceived] = None
        self._completed_transfer = 0  # id of the last state transfer put together
        self._completed_count = 0  # and its number of parts
        self._report_due = False  # a part arrived since the last report of them went out
        self._handshake_changed = False  # a handshake message came since the last look at what is due
        self._control_out: list[bytes] = []  # sealed control messages to send at once

    # ---- phases -------------------------------------------------------------------------------------

    def _enter(self, phase: ClientPhase) -> None:
        if phase is self.phase:
            return
        if phase not in _TRANSITIONS[self.phase]:
            raise AssertionError(f"a client cannot go from {self.phase.value} to {phase.value}")
        self.phase = phase

    @property
    def _joined(self) -> bool:
        return self.phase in (ClientPhase.JOINED, ClientPhase.REJOINING, ClientPhase.LEAVING)

    @property
    def _leaving(self) -> bool:
        return self.phase is ClientPhase.LEAVING

    def _close(self) -> None:
        super()._close()
        self._enter(ClientPhase.CLOSED)

    # ---- state: what the public layer does with it --------------------------------------------------

    def _state_arrived(self, sequence: Sqn, encoded: bytes, full_state: bool) -> None:
        """An encoded update (or whole state) came in package `sequence`; newer ones may follow."""
        raise NotImplementedError

    def _state_assembled(self, update: GameStateUpdate, full_state: bool) -> None:
        """An update (or whole state) put together from parts arrived."""
        raise NotImplementedError

    def _reported_time_order(self, now: float) -> Sqn:
        """The time order of the state this client has, which every package reports to the server."""
        raise NotImplementedError

    def _session_restarted(self) -> None:
        """The server restarted: what the client has of the state is from an older session."""

    # ---- handshake ----------------------------------------------------------------------------------

    def receive_datagram(self, datagram: bytes, now: float, waited: Callable[[], float] = not_waited) -> None:
        """Take a datagram from the server (a handshake message or a sealed package); its new events are
        reported by `events()`. `waited()`: seconds since the datagram read last reached the socket.

        Raises:
            ProtocolError: for anything that is not a well-formed, authentic message of this session
                (`AuthenticationError` for a package that fails to open)
            DuplicateSequenceError: for a package received before
        """
        if handshake.is_handshake(datagram):
            self._receive_handshake(handshake.parse(datagram), now)
            self._handshake_changed = True  # something may be due at once (the first package, say)
            return
        cipher = self._cipher
        if not self._joined or cipher is None:
            raise ProtocolError("a package before the handshake completed")
        plaintext = cipher.open(datagram)
        token = handshake.path_token(plaintext, handshake.PATH_CHALLENGE)
        if token is not None:  # our address changed, or someone replays our packages from elsewhere
            self._control_out.append(cipher.seal(handshake.PATH_RESPONSE + token))
            self._handshake_changed = True  # (send it at once)
            return
        package = None
        if self._session is not None:
            tails = self._session_tails
            if tails[0] != self._session:
                tails = self._session_tails = (
                    self._session,
                    _server_tail(b"", False, self._session),
                    _server_tail(b"", True, self._session),
                )
            package = ServerPackage._from_datagram_usual(plaintext, self._session, tails[1:])
        if package is None:
            package = ServerPackage._from_datagram_deferred(plaintext)
        self.bytes_received += len(datagram)
        self._ack_waited = waited
        self._report_events(self._receive_package(package, now))

    def _receive_handshake(self, message: handshake.HandshakeMessage, now: float) -> None:
        if message.nonce != self._nonce:
            raise HandshakeError("a handshake reply to no request of ours")
        if self.phase is ClientPhase.CLOSED:
            return
        self._answered = True
        if not self._joined:
            self._last_received = now  # the server is there: its silence counts from now
        if message.kind == "challenge":
            if self._exchange is None:
                self._cookie = (message.window, message.cookie)
                self._exchange = _KeyExchange(self._password or "", message.cookie, self._random_bytes(32))
                self._handshake_sent = None  # answer at once
        elif message.kind == "key":
            if self._exchange is not None and self._exchange.keys is None:
                self._exchange.agree(message.share)  # (a share of low order raises: dropped)
                self._handshake_sent = None
        elif message.kind == "welcome":
            exchange = self._exchange
            if self.phase is ClientPhase.LEAVING or exchange is None or exchange.keys is None:
                return
            # Sealed with the server's key: only a server that knows the password could make it.
            connection_id, session, host, token, max_event_size, player_id, seat_token = (
                handshake.parse_welcome_body(exchange.cipher().open(message.sealed, counter_zero=True))
            )
            self.player_id, self._seat_token = player_id, seat_token
            if self._session is not None and session != self._session:
                self._restart_session()
            self._session = session
            self._cipher = exchange.cipher(connection_id)
            self._exchange = None
            self._start(now)
            self._enter(ClientPhase.JOINED)
            self._last_received = now
            self.server_closed = False
            self.status = CONNECTED
            if host:
                self.host_token = token
            # Refuse at dispatch what the server would drop: its limit, if lower than ours.
            self.max_event_size = min(type(self).max_event_size, max_event_size)
            logger.info(
                "joined the server at %s as player %d%s",
                self.where,
                player_id,
                " (its host)" if host else "",
            )
        elif message.kind == "rejected":
            exchange = self._exchange
            if exchange is None or exchange.keys is None:
                return
            # Sealed with the server's key: nobody else can make us believe the game turned us away.
            reason = exchange.cipher().open(message.sealed, counter_zero=True).decode("utf-8", "replace")
            self.refused_reason = reason or "refused by the game"
            logger.info("the game at %s turned us away: %s", self.where, self.refused_reason)
            self._close()
        elif message.kind == "refused":
            self.refused_reason = handshake.REFUSED_REASONS.get(message.reason, "refused by the server")
            logger.info(
                "the server at %s refused to let us join: %s", self.remote_address, self.refused_reason
            )
            self._close()

    def _begin_handshake(self) -> None:
        self._nonce = self._random_bytes(8)
        self._cookie = None
        self._exchange = None
        self._handshake_sent = None

    def _handshake_datagram(self) -> bytes:
        exchange = self._exchange
        if self._cookie is None or exchange is None:
            return handshake.hello(self._nonce)
        window, cookie = self._cookie
        if exchange.keys is None:
            return handshake.response(self._nonce, window, cookie, exchange.share)
        payload = handshake.confirm_payload(self._seat_token, self._join_data)
        sealed = exchange.cipher().seal(payload, counter=0)
        return handshake.confirm(self._nonce, window, cookie, exchange.share, bool(self._password), sealed)

    def _handshake_deadline(self) -> Optional[float]:
        if self.phase not in (ClientPhase.JOINING, ClientPhase.REJOINING):
            return None
        if self._handshake_sent is None:
            return float("-inf")
        rejoining = self.phase is ClientPhase.REJOINING
        return self._handshake_sent + self.handshake_interval * (2 if rejoining else 1)

    # ---- failing to connect -------------------------------------------------------------------------

    def receive_network_error(self, error: OSError, now: float) -> None:
        """Take an error the socket reported (an ICMP 'port unreachable' arrives as ConnectionRefusedError).

        A refusal ends a connection that never heard from the server once it lasts `refused_patience`
        seconds: nothing listens at that address. After the server answered, errors are only noted: a
        server that restarts refuses for a moment, and the client rejoins by itself.
        """
        self._start(now)
        self._socket_error = error
        if (
            self.status == DISCONNECTED
            or self._answered
            or not isinstance(error, ConnectionRefusedError)
            or self._started_at is None
            or now < self._started_at + self.refused_patience
        ):
            return
        self._fail(
            ConnectionRefusedError,
            "nothing listens on that port (connection refused); is the server running, and is this its port?",
        )

    def handle_timer(self, now: float) -> None:
        """Detect lost packages and a lost connection (or a server that never let us join)."""
        was_open = self.status != DISCONNECTED
        super().handle_timer(now)
        if was_open and self.status == DISCONNECTED and self._session is None:
            if self._answered:
                detail = f"the server answered but did not let this client join within {self.timeout:g} s"
            else:
                detail = f"no answer within {self.timeout:g} s"
                if self._socket_error is not None:
                    detail += f" (last socket error: {self._socket_error})"
                detail += (
                    "; is the server running at that address and port, and does a firewall let UDP through?"
                )
            self._fail(TimeoutError, detail)

    def _fail(self, kind: type[OSError], detail: str) -> None:
        """End a connection that could not be established, keeping why (see `connect_error`)."""
        if self._failure is None and self.refused_reason is None and self._session is None:
            self._failure = (kind, detail)
            logger.info("cannot connect to %s: %s", self.where, detail)
        if self.status != DISCONNECTED:
            self._close()

    def connect_error(self) -> Optional[OSError]:
        """Return a new exception that says why this connection ended before it joined, or None.

        `ConnectionRefusedError` if the server refused this client (see `refused_reason`) or nothing
        listens at its address, `TimeoutError` if nothing answered, `ConnectionError` if the socket could
        not be opened (a hostname that does not resolve, say). None while connecting, after joining
        (unless the server refuses a rejoin), and after `shutdown()`.
        """
        if self.refused_reason is not None:
            return ConnectionRefusedError(
                f"the server at {self.where} refused the connection: {self.refused_reason}"
            )
        if self._failure is not None:
            kind, detail = self._failure
            return kind(f"cannot connect to {self.where}: {detail}")
        return None

    @property
    def where(self) -> str:
        """The server, for messages: its address, or the room code it was joined by."""
        if self.room is None:
            return _address_text(self.remote_address)
        if self.route is None:
            return f"room {self.room}"
        how = "through the relay at" if self.route == "relay" else "at"
        return f"room {self.room} ({how} {_address_text(self.remote_address)})"

    # ---- what is due --------------------------------------------------------------------------------

    def settled(self) -> bool:
        return self.phase is ClientPhase.JOINED and not self._handshake_changed and super().settled()

    def datagrams_to_send(self, now: float) -> list:
        """Return the handshake message or the packages that are due now."""
        self._start(now)
        self._handshake_changed = False
        if self.status == DISCONNECTED:
            return []
        last = self._last_received
        if self.phase is ClientPhase.JOINED and last is not None and now >= last + self.rejoin_after:
            self._enter(ClientPhase.REJOINING)
            self._begin_handshake()
        datagrams, self._control_out = self._control_out, []
        deadline = self._handshake_deadline()
        if deadline is not None and now >= deadline:
            datagrams.append(self._handshake_datagram())
            self._handshake_sent = now
        if self._joined:
            datagrams.extend(super().datagrams_to_send(now))
        return datagrams

    def get_timer(self) -> Optional[float]:
        """Return when the connection next needs attention."""
        if self.status == DISCONNECTED:
            return None
        silent_since = self._last_received if self._last_received is not None else self._started_at
        timers = [self._handshake_deadline()]
        if self._joined:
            timers.append(super().get_timer())
            if self.phase is ClientPhase.JOINED and self._last_received is not None:
                timers.append(self._last_received + self.rejoin_after)
        elif silent_since is not None:
            timers.append(silent_since + self.timeout)
        pending = [t for t in timers if t is not None]
        return min(pending) if pending else None

    # ---- packages -----------------------------------------------------------------------------------

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ServerPackage)
        if package.session != self._session:
            raise ProtocolError("a package from another server session")  # a late one from a previous server
        events = super()._receive_package(package, now)
        self.server_closed = False
        if package._update_bytes is not None:
            self.updates_received += 1
            self._state_arrived(package.header.sequence, package._update_bytes, package.full_state)
        elif package.game_state_update is not None:
            self._state_assembled(package.game_state_update, package.full_state)
        user_events = []
        for event in events:
            if event.type == STATE_PART_EVENT:
                self._take_state_part(event.handler_args)
            elif event.type == SHUTDOWN_EVENT and self.phase is ClientPhase.LEAVING:
                self._close()  # the server is gone: nobody is left to say goodbye to
            elif event.type == SHUTDOWN_EVENT:
                logger.info("the server at %s shut down; waiting for it to come back", self.where)
                self.server_closed = True
                self.status = CONNECTING
                self._enter(ClientPhase.JOINING)
                self._begin_handshake()
            elif not event.type.startswith(RESERVED_PREFIX):
                user_events.append(event)
        return user_events

    def _restart_session(self) -> None:
        """The server restarted: start counting afresh and ask for the whole state."""
        logger.info("the server at %s restarted; synchronizing again", self.where)
        self._received.reset()
        self._inbound.reset()
        self._state_parts = None
        self._completed_transfer = 0
        self._session_restarted()

    def _take_state_part(self, args: list) -> None:
        if not check_event_args(args, (int, int, int, bool, bytes)):
            logger.debug("dropping a malformed state part")
            return
        transfer_id, index, count, full_state, data = args
        if not 0 <= index < count or count * PART_SIZE > self.max_state_size + PART_SIZE:
            logger.warning("dropping a state part: the state is larger than max_state_size")
            return
        self._report_due = True
        if transfer_id <= self._completed_transfer:
            return  # a resent part of a state we already have
        current = self._state_parts
        if current is None or transfer_id > current.transfer_id:
            current = self._state_parts = PartsReceived(transfer_id, count)
        elif transfer_id < current.transfer_id or count != current.count:
            return  # part of an older transfer
        if not current.add(index, data):
            return
        self._state_parts = None
        self._completed_transfer, self._completed_count = transfer_id, count
        try:
            update = GameStateUpdate._from_dict(_codec.unpack(current.joined()))
        except ValueError as error:
            logger.warning("dropping a game state that does not decode: %s", error)
            return
        self._state_assembled(update, full_state)

    def _reports(self) -> list:
        """The report of the parts that arrived, if one arrived since the last, and of packages that came
        too late for the ack field (see `pygase._transfer`)."""
        late = self._received.late
        if not (self._report_due or late):
            return []
        self._report_due, self._received.late = False, []
        if self._state_parts is not None:
            return [self._state_parts.report(late)]
        return [completed_report(self._completed_transfer, self._completed_count, late)]

    def _make_package(self, header: Any, now: float) -> Package:
        return ClientPackage(header, self._reported_time_order(now))

    def _plain_tail(self, now: float) -> Optional[bytes]:
        return _codec.pack(int(self._reported_time_order(now)))

    def shutdown(self, shutdown_server: bool = False) -> None:
        """Shut down the client connection.

        Queues a last message to the server (leaving, or a request to shut the server down, which only
        has an effect if this client has host permissions); the connection closes once the server
        confirmed it or after a few tries. Drive the connection (`Client.disconnect` does) to send it.

        Arguments:
            shutdown_server: whether or not the server should be shut down too
        """
        if self.status == DISCONNECTED:
            return
        if not self._joined:
            self._close()  # nobody there to tell
            return
        self._enter(ClientPhase.LEAVING)
        if shutdown_server and self.host_token is None:
            logger.warning("only the host may shut the server down: leaving without doing so")
            shutdown_server = False
        self.dispatch_event(
            Event(SHUTDOWN_EVENT, self.host_token) if shutdown_server else Event(DISCONNECT_EVENT),
            ack_callback=self._close,
            timeout_callback=self._close,
            retries=3,
        )


class _KeyExchange:
    """The client's half of one handshake's key exchange (see `pygase._crypto`)."""

    __slots__ = ("session_id", "_scalar", "share", "keys")

    def __init__(self, password: str, session_id: bytes, scalar: bytes) -> None:
        self.session_id = session_id
        self._scalar = scalar
        self.share = crypto.share(scalar, crypto.password_point(password, session_id))
        self.keys: Optional[tuple[bytes, bytes]] = None  # (client to server, server to client)

    def agree(self, server_share: bytes) -> None:
        self.keys = crypto.session_keys(self._scalar, server_share, self.share, server_share, self.session_id)

    def cipher(self, connection_id: bytes = bytes(crypto.CONNECTION_ID_SIZE)) -> crypto.Cipher:
        assert self.keys is not None
        to_server, to_client = self.keys
        return crypto.Cipher(to_server, to_client, connection_id)
