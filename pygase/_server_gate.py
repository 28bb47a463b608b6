"""The server's side of the handshake, up to the moment a client has proved it has the session keys.

Part of the protocol core (no sockets, threads or clocks). Until then the server keeps nothing per
client: a HELLO gets a cookie (an HMAC of the address, a time window and the client's nonce under a
secret), a RESPONSE with a good cookie gets the server's share of the key exchange (its secret scalar
derived from the cookie), and a CONFIRM with a good cookie is checked: one proof per cookie, and a source
whose proof was wrong waits before its next one is looked at. See `pygase._handshake` for the messages
and `pygase._crypto` for the exchange; `pygase._server_core.ServerCore` makes the connection of a client
the gate admits.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Optional, Union

from pygase import _crypto as crypto
from pygase import _handshake as handshake

__all__ = ["Gate", "Admitted", "Refused", "handshake_cipher"]

#: A back-off longer than this is refused with TRY_LATER; a shorter one is waited out (the client tries
#: its CONFIRM again within its handshake's patience).
SAY_TRY_LATER = 2.0
_REMEMBERED = 4096  # most spent cookies and failing sources remembered
_RECENT_EXCHANGES = 512  # key exchanges kept from a RESPONSE for its CONFIRM


@dataclass(frozen=True)
class Admitted:
    """A client proved it has the keys (client-to-server, server-to-client); it shows `seat_token` (zeros:
    none) and asks to join with `join_data` (packed)."""

    keys: tuple[bytes, bytes]
    cookie: bytes
    nonce: bytes
    seat_token: bytes = bytes(handshake.SEAT_TOKEN_SIZE)
    join_data: bytes = b""


@dataclass(frozen=True)
class Refused:
    """A CONFIRM refused for `reason` (a `pygase._handshake` refusal code; the reply is made)."""

    reason: int
    reply: bytes


def handshake_cipher(keys: tuple[bytes, bytes]) -> crypto.Cipher:
    """The server's cipher for the handshake messages sealed with a client's new keys (client-to-server,
    server-to-client): it opens the client's CONFIRM and seals our WELCOME or REJECTED."""
    to_server, to_client = keys
    return crypto.Cipher(to_client, to_server, bytes(crypto.CONNECTION_ID_SIZE))


class _Exchange:
    """The server's half of the key exchange for one cookie."""

    __slots__ = ("_cookie", "_scalar", "share")

    def __init__(self, password: str, cookie: bytes, scalar: bytes) -> None:
        self._cookie = cookie
        self._scalar = scalar
        self.share = crypto.share(scalar, crypto.password_point(password, cookie))

    def agree(self, client_share: bytes) -> tuple[bytes, bytes]:
        """(client-to-server, server-to-client) keys; `AuthenticationError` for a bad share."""
        return crypto.session_keys(self._scalar, client_share, client_share, self.share, self._cookie)


class Gate:
    """Answers handshake messages statelessly and checks proofs (see the module doc).

    Arguments:
        secret: the server's secret for cookies and its key exchange scalars
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._spent: dict[bytes, float] = {}  # cookies a CONFIRM was checked with -> until when
        self.failures: dict[str, tuple[int, float]] = {}  # source IP -> (wrong proofs, back-off until)
        self._recent: dict[tuple[bytes, str], _Exchange] = {}  # (cookie, password) -> its exchange

    def receive(
        self, message: handshake.HandshakeMessage, address: tuple, now: float, password: Optional[str]
    ) -> Union[bytes, Admitted, Refused, None]:
        """What to do about a handshake message: a reply to send, a client admitted, a CONFIRM refused
        (with its reply), or None to ignore it."""
        if message.kind == "hello":
            if message.version != handshake.VERSION:
                return handshake.refused(message.nonce, handshake.VERSION_MISMATCH)
            window = handshake.window_at(now)
            return handshake.challenge(
                message.nonce, window, handshake.make_cookie(self._secret, address, window, message.nonce)
            )
        if message.kind not in ("response", "confirm") or not self._cookie_is_good(message, address, now):
            return None
        if message.kind == "response":
            return handshake.key(message.nonce, self._exchange(message.cookie, password).share)
        return self._check(message, address, now, password)

    def spent(self, cookie: bytes) -> bool:
        return cookie in self._spent

    def _cookie_is_good(self, message: handshake.HandshakeMessage, address: tuple, now: float) -> bool:
        """Whether a RESPONSE or CONFIRM carries a cookie of ours for its address, of this or the last
        time window (it proves the client receives what is sent to that address)."""
        window = handshake.window_at(now)
        return message.window in (window, window - 1) and hmac.compare_digest(
            message.cookie, handshake.make_cookie(self._secret, address, message.window, message.nonce)
        )

    def _exchange(self, cookie: bytes, password: Optional[str]) -> _Exchange:
        """The server's half of the key exchange for a cookie. It can always be derived again (so the
        server needs to keep nothing), but the last few are kept: a CONFIRM then costs no second
        derivation, which matters when many clients join at once."""
        key = (cookie, password or "")
        exchange = self._recent.get(key)
        if exchange is None:
            exchange = _Exchange(password or "", cookie, crypto.derive_scalar(self._secret, cookie))
            if len(self._recent) >= _RECENT_EXCHANGES:
                del self._recent[next(iter(self._recent))]  # the oldest
            self._recent[key] = exchange
        return exchange

    def _check(
        self, message: handshake.HandshakeMessage, address: tuple, now: float, password: Optional[str]
    ) -> Union[Admitted, Refused, None]:
        if message.cookie in self._spent:
            return None  # one proof per cookie
        wait = self.failures.get(address[0], (0, 0.0))[1] - now
        if wait > 0:  # a source that guessed wrong waits: its client tries again, or is told to wait
            if wait > SAY_TRY_LATER:  # (longer than its handshake would wait for an answer)
                return Refused(handshake.TRY_LATER, handshake.refused(message.nonce, handshake.TRY_LATER))
            return None
        if message.has_password != bool(password):  # nothing to guess: say what is wrong
            reason = handshake.PASSWORD_REQUIRED if password else handshake.NO_PASSWORD
            return Refused(reason, handshake.refused(message.nonce, reason))
        self._forget_old(now)
        self._spent[message.cookie] = now + 2 * handshake.COOKIE_WINDOW
        exchange = self._exchange(message.cookie, password)
        self._recent.pop((message.cookie, password or ""), None)  # (one proof per cookie: done with it)
        try:
            keys = exchange.agree(message.share)
            payload = handshake_cipher(keys).open(message.sealed, counter_zero=True)
        except crypto.AuthenticationError:
            failures = self.failures.get(address[0], (0, 0.0))[0] + 1
            self.failures[address[0]] = (failures, now + min(0.1 * 2**failures, 30.0))
            reason = handshake.WRONG_PASSWORD
            return Refused(reason, handshake.refused(message.nonce, reason))
        self.failures.pop(address[0], None)
        try:
            seat_token, join_data = handshake.parse_confirm_payload(payload)
        except handshake.HandshakeError:
            return None
        return Admitted(keys, message.cookie, message.nonce, seat_token, join_data)

    def _forget_old(self, now: float) -> None:
        """Drop spent cookies and failure counts that no longer matter (bounded memory)."""
        if len(self._spent) > _REMEMBERED:
            self._spent = {cookie: until for cookie, until in self._spent.items() if until > now}
        if len(self.failures) > _REMEMBERED:
            self.failures = {ip: entry for ip, entry in self.failures.items() if entry[1] > now}
        while len(self._spent) > _REMEMBERED:
            del self._spent[next(iter(self._spent))]  # the oldest
        while len(self.failures) > _REMEMBERED:
            del self.failures[next(iter(self.failures))]
