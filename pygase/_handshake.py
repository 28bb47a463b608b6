"""The handshake a client completes before the server keeps any state for it. Bytes in, bytes out.

A handshake datagram starts with the protocol id and a zero sequence number (a package's sequence is
never 0), then one letter for its kind:

- HELLO (client):     "H" version nonce(8), zero-padded to `REQUEST_SIZE`
- CHALLENGE (server): "C" nonce(8) window(8) cookie(16)
- RESPONSE (client):  "R" nonce(8) window(8) cookie(16) share(32), zero-padded to `REQUEST_SIZE`
- KEY (server):       "K" nonce(8) share(32)
- CONFIRM (client):   "F" nonce(8) window(8) cookie(16) share(32) has_password(1) length(2)
                      sealed [proof(11) seat token(16) join data], padded to at least `REQUEST_SIZE`
- WELCOME (server):   "W" nonce(8) sealed [connection id(8) session(4) host(1) token(16) max_event_size(4)
                      player id(4) seat token(16)]
- REFUSED (server):   "X" nonce(8) reason(1)
- REJECTED (server):  "Y" nonce(8) sealed [reason, UTF-8, at most 64 bytes]: the game turned the player away

The cookie is an HMAC of the client's address, a time window and its nonce under a secret of the
server's, so the server answers a HELLO without remembering anything, and a RESPONSE proves that the
client receives what is sent to its address. Every reply is smaller than the request it answers, so the
server cannot be used to amplify traffic toward a forged address.

RESPONSE and KEY carry the two shares of a password-authenticated key exchange (CPace, see
`pygase._crypto`); the server derives its secret from the cookie, so it still keeps nothing. CONFIRM
proves the client got the same keys (it holds a message sealed with the client's key), which only knowing
the password allows; the server then makes the connection and answers with a WELCOME sealed with its own
key, which proves the same of the server. The password never travels, and nothing that does lets anyone
test guesses of it offline.

CONFIRM also carries, sealed, the player's join data (a small msgpack dict for the game) and the seat token
of an earlier connection, if the client had one: with it, a client that dropped gets its seat (its player
id) back. The game decides whether a new player may join; the server then answers WELCOME, or REJECTED
with the game's reason.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Optional

from pygase._crypto import SEALED_OVERHEAD, SHARE_SIZE
from pygase._packages import PROTOCOL_ID
from pygase.errors import HandshakeError

__all__ = [
    "HANDSHAKE_PREFIX",
    "REQUEST_SIZE",
    "VERSION",
    "REFUSED_REASONS",
    "HandshakeMessage",
    "is_handshake",
    "hello",
    "challenge",
    "response",
    "key",
    "confirm",
    "welcome",
    "refused",
    "rejected",
    "parse",
    "check_join_data",
    "confirm_payload",
    "parse_confirm_payload",
    "MAX_JOIN_DATA",
    "make_cookie",
    "welcome_body",
    "parse_welcome_body",
    "CONFIRM_PROOF",
]

HANDSHAKE_PREFIX = PROTOCOL_ID + b"\x00\x00"
VERSION = 3
#: Size of the client's requests; the server's replies are smaller.
REQUEST_SIZE = 128
#: Seconds a cookie's time window lasts (a cookie is good in its window and the next).
COOKIE_WINDOW = 10.0
#: Why a server refuses a client, as sent in a "refused" message.
WRONG_PASSWORD, SERVER_FULL, VERSION_MISMATCH, TOO_MANY_FROM_IP = 1, 2, 3, 4
PASSWORD_REQUIRED, NO_PASSWORD, TRY_LATER = 5, 6, 7
REFUSED_REASONS = {
    WRONG_PASSWORD: "wrong password",
    SERVER_FULL: "server full",
    VERSION_MISMATCH: "protocol version mismatch",
    TOO_MANY_FROM_IP: "too many clients from this IP address",
    PASSWORD_REQUIRED: "password required",
    NO_PASSWORD: "this server has no password: join without one",
    TRY_LATER: "too many wrong passwords from this address: try again in a few seconds",
}
#: What a CONFIRM's sealed part starts with.
CONFIRM_PROOF = b"pygase join"
#: Most bytes of packed join data (one datagram carries the CONFIRM).
MAX_JOIN_DATA = 1024
#: Most bytes of a REJECTED's reason (UTF-8).
MAX_REASON = 64
SEAT_TOKEN_SIZE = 16

_NONCE = 8
_COOKIE = 16
_TOKEN = 16
# connection id, session, host, token, max_event_size, player id, seat token
_WELCOME_BODY = struct.Struct("!8sIB16sII16s")
_SEALED_WELCOME = SEALED_OVERHEAD + _WELCOME_BODY.size
_SEALED_LENGTH = struct.Struct("!H")


@dataclass(frozen=True)
class HandshakeMessage:
    """A parsed handshake datagram; fields that its kind does not have are empty."""

    kind: str
    nonce: bytes
    version: int = 0
    window: int = 0
    cookie: bytes = b""
    share: bytes = b""
    has_password: bool = False
    sealed: bytes = b""
    reason: int = 0


def is_handshake(datagram: bytes) -> bool:
    """Tell whether a datagram is a handshake message (as opposed to a package)."""
    return datagram[: len(HANDSHAKE_PREFIX)] == HANDSHAKE_PREFIX


def _pad(message: bytes) -> bytes:
    return message + bytes(max(0, REQUEST_SIZE - len(message)))


def hello(nonce: bytes) -> bytes:
    """Build a HELLO."""
    return _pad(HANDSHAKE_PREFIX + b"H" + bytes([VERSION]) + nonce)


def challenge(nonce: bytes, window: int, cookie: bytes) -> bytes:
    """Build a CHALLENGE."""
    return HANDSHAKE_PREFIX + b"C" + nonce + struct.pack("!Q", window) + cookie


def response(nonce: bytes, window: int, cookie: bytes, share: bytes) -> bytes:
    """Build a RESPONSE: the client's share of the key exchange."""
    return _pad(HANDSHAKE_PREFIX + b"R" + nonce + struct.pack("!Q", window) + cookie + share)


def key(nonce: bytes, share: bytes) -> bytes:
    """Build a KEY: the server's share of the key exchange."""
    return HANDSHAKE_PREFIX + b"K" + nonce + share


def confirm(
    nonce: bytes, window: int, cookie: bytes, share: bytes, has_password: bool, sealed_payload: bytes
) -> bytes:
    """Build a CONFIRM around a `confirm_payload` sealed with the client's new key (which proves the
    client has the key); whether the client has a password at all is said in the clear, so that
    "password required" and "wrong password" differ."""
    head = HANDSHAKE_PREFIX + b"F" + nonce + struct.pack("!Q", window) + cookie + share
    return _pad(head + bytes([int(has_password)]) + _SEALED_LENGTH.pack(len(sealed_payload)) + sealed_payload)


def check_join_data(packed: bytes) -> None:
    """Refuse join data a CONFIRM cannot carry.

    Raises:
        ValueError: if it is larger than `MAX_JOIN_DATA` bytes packed
    """
    if len(packed) > MAX_JOIN_DATA:
        raise ValueError(f"join_data is {len(packed)} bytes packed: at most {MAX_JOIN_DATA} fit in a join")


def confirm_payload(seat_token: bytes, join_data: bytes) -> bytes:
    """What a CONFIRM carries sealed: the proof, the seat token (zeros for none) and the packed join data."""
    check_join_data(join_data)
    return CONFIRM_PROOF + seat_token + join_data


def parse_confirm_payload(payload: bytes) -> tuple[bytes, bytes]:
    """(seat token, packed join data) of an opened CONFIRM payload.

    Raises:
        HandshakeError: if it is not one
    """
    if not payload.startswith(CONFIRM_PROOF) or len(payload) < len(CONFIRM_PROOF) + SEAT_TOKEN_SIZE:
        raise HandshakeError("malformed confirm message")
    start = len(CONFIRM_PROOF)
    return payload[start : start + SEAT_TOKEN_SIZE], payload[start + SEAT_TOKEN_SIZE :]


def welcome(nonce: bytes, sealed_body: bytes) -> bytes:
    """Build a WELCOME around a `welcome_body` sealed with the server's new key."""
    return HANDSHAKE_PREFIX + b"W" + nonce + sealed_body


def welcome_body(
    connection_id: bytes,
    session: int,
    host: bool,
    token: bytes,
    max_event_size: int,
    player_id: int,
    seat_token: bytes,
) -> bytes:
    """What a WELCOME says, before it is sealed; `token` is the host token (zeros for other clients),
    `seat_token` what the client shows to get its seat back if it drops."""
    return _WELCOME_BODY.pack(connection_id, session, int(host), token, max_event_size, player_id, seat_token)


def parse_welcome_body(body: bytes) -> tuple[bytes, int, bool, bytes, int, int, bytes]:
    """(connection id, session, host, token, max_event_size, player id, seat token) of an opened WELCOME.

    Raises:
        HandshakeError: if it is malformed
    """
    if len(body) != _WELCOME_BODY.size:
        raise HandshakeError("malformed welcome message")
    connection_id, session, host, token, max_event_size, player_id, seat_token = _WELCOME_BODY.unpack(body)
    if host > 1:
        raise HandshakeError("malformed welcome message")
    return connection_id, session, bool(host), token, max_event_size, player_id, seat_token


def refused(nonce: bytes, reason: int) -> bytes:
    """Build a REFUSED."""
    return HANDSHAKE_PREFIX + b"X" + nonce + bytes([reason])


def rejected(nonce: bytes, sealed_reason: bytes) -> bytes:
    """Build a REJECTED around a reason (`reason_bytes`) sealed with the server's new key."""
    return HANDSHAKE_PREFIX + b"Y" + nonce + sealed_reason


def reason_bytes(reason: str) -> bytes:
    """A game's reason for turning a player away, as a REJECTED carries it (cut to `MAX_REASON` bytes)."""
    encoded = reason.encode("utf-8")[:MAX_REASON]
    return encoded.decode("utf-8", "ignore").encode("utf-8")  # (not cut inside a character)


_HEAD = len(HANDSHAKE_PREFIX) + 1
_CONFIRM_HEAD = _HEAD + _NONCE + 8 + _COOKIE + SHARE_SIZE + 1 + _SEALED_LENGTH.size
_SEALED_CONFIRM = SEALED_OVERHEAD + len(CONFIRM_PROOF) + SEAT_TOKEN_SIZE
#: Size limits (smallest, largest) of each kind of handshake message.
_SIZES = {
    b"H": (REQUEST_SIZE, REQUEST_SIZE),
    b"C": (_HEAD + _NONCE + 8 + _COOKIE,) * 2,
    b"R": (REQUEST_SIZE, REQUEST_SIZE),
    b"K": (_HEAD + _NONCE + SHARE_SIZE,) * 2,
    b"F": (
        max(REQUEST_SIZE, _CONFIRM_HEAD + _SEALED_CONFIRM),
        _CONFIRM_HEAD + _SEALED_CONFIRM + MAX_JOIN_DATA,
    ),
    b"W": (_HEAD + _NONCE + _SEALED_WELCOME,) * 2,
    b"X": (_HEAD + _NONCE + 1,) * 2,
    b"Y": (_HEAD + _NONCE + SEALED_OVERHEAD, _HEAD + _NONCE + SEALED_OVERHEAD + MAX_REASON),
}
# Every reply is at most the size of the smallest request it can answer.
assert max(_SIZES[bytes([kind])][1] for kind in b"CKWXY") <= REQUEST_SIZE


def parse(datagram: bytes) -> HandshakeMessage:
    """Parse a handshake datagram.

    Raises:
        HandshakeError: (a `ValueError`) if it is not a well-formed handshake message
    """
    if not is_handshake(datagram):
        raise HandshakeError("not a handshake message")
    kind = datagram[_HEAD - 1 : _HEAD]
    if kind not in _SIZES or not _SIZES[kind][0] <= len(datagram) <= _SIZES[kind][1]:
        raise HandshakeError("malformed handshake message")
    body = bytes(datagram[_HEAD:])
    nonce, rest = body[:_NONCE], body[_NONCE:]
    if kind == b"H":
        return HandshakeMessage("hello", bytes(body[1 : 1 + _NONCE]), version=body[0])
    if kind in (b"C", b"R", b"F"):
        (window,) = struct.unpack("!Q", rest[:8])
        cookie = rest[8 : 8 + _COOKIE]
        if kind == b"C":
            return HandshakeMessage("challenge", nonce, window=window, cookie=cookie)
        share = rest[8 + _COOKIE : 8 + _COOKIE + SHARE_SIZE]
        if kind == b"R":
            return HandshakeMessage("response", nonce, window=window, cookie=cookie, share=share)
        start = 8 + _COOKIE + SHARE_SIZE
        (length,) = _SEALED_LENGTH.unpack(rest[start + 1 : start + 3])
        if rest[start] > 1 or not _SEALED_CONFIRM <= length <= len(rest) - start - 3:
            raise HandshakeError("malformed confirm message")
        sealed = rest[start + 3 : start + 3 + length]
        return HandshakeMessage(
            "confirm",
            nonce,
            window=window,
            cookie=cookie,
            share=share,
            has_password=bool(rest[start]),
            sealed=sealed,
        )
    if kind == b"K":
        return HandshakeMessage("key", nonce, share=rest)
    if kind == b"W":
        return HandshakeMessage("welcome", nonce, sealed=rest)
    if kind == b"Y":
        return HandshakeMessage("rejected", nonce, sealed=rest)
    return HandshakeMessage("refused", nonce, reason=rest[0])


#: Sealed control messages (inside a sealed datagram, so they carry no package sequence number):
#: the server asks an address a client's packages came from to answer a token; the client answers.
PATH_CHALLENGE, PATH_RESPONSE = HANDSHAKE_PREFIX + b"P", HANDSHAKE_PREFIX + b"Q"
PATH_TOKEN_SIZE = 8


def path_token(plaintext: bytes, kind: bytes) -> Optional[bytes]:
    """The token of a sealed path challenge or response (`kind`), or None if `plaintext` is not one."""
    if len(plaintext) == len(kind) + PATH_TOKEN_SIZE and plaintext.startswith(kind):
        return plaintext[len(kind) :]
    return None


def make_cookie(secret: bytes, address: tuple, window: int, nonce: bytes) -> bytes:
    """The cookie for a client address, time window and nonce under the server's secret."""
    material = f"{address[0]}|{address[1]}".encode() + struct.pack("!Q", window) + nonce
    return hmac.new(secret, material, hashlib.sha256).digest()[:_COOKIE]


def window_at(now: float) -> int:
    """The cookie time window `now` falls in."""
    return int(now // COOKIE_WINDOW)
