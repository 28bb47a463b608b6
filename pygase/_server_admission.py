"""How clients become players: the handshake's outcome, limits on joining, the game's decision, seats.

Part of the protocol core (no sockets, threads or clocks). `Admission` is the part of
`pygase._server_core.ServerCore` that takes a client from its handshake to a connection: the gate
(`pygase._server_gate`) checks cookies and proofs; a client that proved it has the keys is keyed again
(a joined client that shook hands again), seated again (it shows the token of a kept seat, see
`pygase._seats`), or reported as `ClientJoined` and kept waiting until the driver calls `accept_join` or
`refuse_join`. The limits (`max_clients`, `max_clients_per_ip`) apply here.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Optional

from pygase import _codec
from pygase import _crypto as crypto
from pygase import _handshake as handshake
from pygase._endpoints import plain_address
from pygase._outputs import ClientJoined, ClientReturned, Output
from pygase._ratelimit import RateLimitedLog
from pygase._seats import PendingJoin, Seat, Seats
from pygase._server_connection import ServerConnection
from pygase._server_gate import Admitted, Gate, Refused, handshake_cipher
from pygase.errors import DecodeError
from pygase.utils import _address_text

__all__ = ["Admission", "MAX_CLIENTS_PER_IP"]

logger = logging.getLogger("pygase.backend")

#: Default of `ServerCore.max_clients_per_ip`: several players behind one NAT (a household, a LAN party
#: or a carrier's NAT on an internet server) are normal, but one host should not take all 64 places.
MAX_CLIENTS_PER_IP = 16


def _source_of(address: tuple) -> Any:
    """What `max_clients_per_ip` counts `address` toward: its IP, or its /64 network for IPv6 (one
    subscriber's share); None if exempt: loopback and private networks (on a LAN every player has an
    address of their own; behind a container's proxy all have the same). An address that is not an IP
    (the simulator's names) is a source of its own."""
    try:
        ip = ipaddress.ip_address(address[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        return ipaddress.IPv6Network((int(ip) >> 64 << 64, 64))
    return ip


class Admission:
    """The joining half of `ServerCore` (a mixin: the core holds the state named below)."""

    connections: dict[tuple, ServerConnection]
    password: Optional[str]
    max_clients: int
    max_clients_per_ip: Optional[int]
    relay_ips: set[str]
    max_event_size: int
    decide_joins: bool
    host_token: Optional[bytes]
    _host: Optional[ServerConnection]
    _seats: Seats
    _gate: Gate
    _outputs: list[Output]
    _log: RateLimitedLog
    _log_comings: RateLimitedLog

    def _reply(self, address: tuple, datagram: bytes) -> None:
        raise NotImplementedError

    def _connect(self, address: tuple, now: float) -> ServerConnection:
        raise NotImplementedError

    def _remove(self, address: tuple, now: float, left: bool = False, report: bool = True) -> None:
        raise NotImplementedError

    def _handshake(self, message: handshake.HandshakeMessage, address: tuple, now: float) -> None:
        if message.kind == "confirm":
            connection = self.connections.get(address)
            if connection is not None and connection.join_cookie == message.cookie:
                self._reply(address, connection.welcome)  # our WELCOME was lost: the same again
                return
            pending = self._seats.pending.get(address)
            if pending is not None and pending.admitted.cookie == message.cookie:
                if pending.refusal is not None:
                    self._reply(address, pending.refusal)  # our REJECTED was lost: the same again
                return  # (the game has not decided yet)
        outcome = self._gate.receive(message, address, now, self.password)
        if isinstance(outcome, bytes):
            self._reply(address, outcome)
        elif isinstance(outcome, Refused):
            reason = handshake.REFUSED_REASONS[outcome.reason]
            self._log_comings.info(reason, now, "refused client %s: %s", _address_text(address), reason)
            self._reply(address, outcome.reply)
        elif isinstance(outcome, Admitted):
            self._admit(outcome, address, now)
        else:
            self._log.debug("handshake ignored", now, "ignoring a %s message from %s", message.kind, address)

    def _admit(self, admitted: Admitted, address: tuple, now: float) -> None:
        """A client proved it has the session keys (so knew the password): key its connection again (it
        is joined: a client that heard nothing for a while shakes hands again), give it its seat back
        (it shows a seat token) or ask the game whether a new player may join."""
        connection = self.connections.get(address)
        if connection is not None:
            self._welcome(connection, admitted)
            return
        seat = self._seats.with_token(admitted.seat_token)
        if seat is not None:
            self._return(seat, admitted, address, now)
            return
        if len(self.connections) + len(self._seats.pending) + self._seats.held() >= self.max_clients:
            self._log_comings.info(
                "server full",
                now,
                "refused client %s: server full (%d clients)",
                _address_text(address),
                self.max_clients,
            )
            self._reply(address, handshake.refused(admitted.nonce, handshake.SERVER_FULL))
            return
        if self._too_many_from(address, now):
            self._reply(address, handshake.refused(admitted.nonce, handshake.TOO_MANY_FROM_IP))
            return
        join_data = _decoded_join_data(admitted.join_data)
        player_id = self._seats.new_player_id()
        # Forgotten if the game does not decide while the client still tries (its CONFIRMs repeat).
        self._seats.pending[address] = PendingJoin(
            player_id, address, admitted, now + 2 * handshake.COOKIE_WINDOW
        )
        if join_data is None:
            self.refuse_join(player_id, "malformed join data", now)
            return
        self._outputs.append(ClientJoined(address, player_id, join_data))
        if not self.decide_joins:
            self.accept_join(player_id, now)

    def accept_join(self, player_id: int, now: float) -> bool:
        """Let a player in whose `ClientJoined` was reported: its connection is made and the WELCOME
        goes out with the next datagrams. False if it is no longer waiting (it gave up)."""
        pending = self._seats.pending_of(player_id)
        if pending is None:
            return False
        del self._seats.pending[pending.address]
        connection = self._connect(pending.address, now)
        connection.player_id = player_id
        seat = self._seats.take(player_id, pending.address, connection, handshake.SEAT_TOKEN_SIZE)
        connection.seat_token = seat.token
        self._welcome(connection, pending.admitted)
        return True

    def refuse_join(self, player_id: int, reason: str, now: float) -> bool:
        """Turn away a player whose `ClientJoined` was reported: its connect fails with `reason` (sealed,
        so nobody else can make a client believe it was turned away). False if it is no longer waiting."""
        pending = self._seats.pending_of(player_id)
        if pending is None:
            return False
        sealed = handshake_cipher(pending.admitted.keys).seal(handshake.reason_bytes(reason), counter=0)
        pending.refusal = handshake.rejected(pending.admitted.nonce, sealed)
        pending.until = now + 2 * handshake.COOKIE_WINDOW  # answered the same while its CONFIRMs repeat
        self._log_comings.info(
            "rejected", now, "turned away client %s: %s", _address_text(pending.address), reason
        )
        self._reply(pending.address, pending.refusal)
        return True

    def _return(self, seat: Seat, admitted: Admitted, address: tuple, now: float) -> None:
        """A client shows the token of a kept seat: it is that player again, at `address`."""
        old = seat.connection
        dropped = old is None
        if old is not None:  # it started over before its old connection timed out: that one ends quietly
            self._remove(old.remote_address, now, report=False)
        connection = self._connect(address, now)
        connection.player_id = seat.player_id
        connection.seat_token = seat.token
        self._seats.reseat(seat, connection, address)
        self._welcome(connection, admitted)
        logger.info("player %d is back, from %s", seat.player_id, _address_text(address))
        if dropped:
            self._outputs.append(ClientReturned(address, seat.player_id))

    def _welcome(self, connection: ServerConnection, admitted: Admitted) -> None:
        """Key `connection` with the keys its client proved it has and answer with a WELCOME."""
        to_server, to_client = admitted.keys
        connection.key(crypto.Cipher(to_client, to_server, connection.connection_id))
        is_host = connection is self._host
        token = self.host_token if is_host and self.host_token is not None else bytes(16)
        body = handshake.welcome_body(
            connection.connection_id,
            connection.session,
            is_host,
            token,
            self.max_event_size,
            connection.player_id,
            connection.seat_token,
        )
        sealed = handshake_cipher(admitted.keys).seal(body, counter=0)
        connection.join_cookie = admitted.cookie
        connection.welcome = handshake.welcome(admitted.nonce, sealed)
        self._reply(connection.remote_address, connection.welcome)

    def _too_many_from(self, address: tuple, now: float) -> bool:
        """Whether the source of `address` has `max_clients_per_ip` connections already (logged)."""
        limit = self.max_clients_per_ip
        source = _source_of(address)
        if limit is None or source is None or plain_address(str(address[0])) in self.relay_ips:
            return False  # (a relay's channels are players of their own; the relay limits them)
        # Players the game has not decided on yet count too: a burst of joins from one address would
        # otherwise all pass before the first of them is let in.
        joined = sum(_source_of(other) == source for other in self.connections)
        waiting = sum(_source_of(other) == source for other in self._seats.pending)
        if joined + waiting < limit:
            return False
        self._log_comings.info(
            "too many from one IP",
            now,
            "refused client %s: %d clients from its IP address already",
            _address_text(address),
            limit,
        )
        return True


def _decoded_join_data(packed: bytes) -> Optional[dict]:
    """A client's join data: a dict with str keys ({} if it sent none), or None if it is not one."""
    if not packed:
        return {}
    try:
        data = _codec.unpack(packed)
    except (DecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        return None
    return data
