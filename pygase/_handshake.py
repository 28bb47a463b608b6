"""The handshake a client completes before the server keeps any state for it. Bytes in, bytes out.

A handshake datagram starts with the protocol id and a zero sequence number (a package's sequence is
never 0), then one letter for its kind:

- HELLO (client):     "H" version nonce(8), zero-padded to `REQUEST_SIZE`
- CHALLENGE (server): "C" nonce(8) window(8) cookie(16)
- RESPONSE (client):  "R" nonce(8) window(8) cookie(16) proof(32), zero-padded to `REQUEST_SIZE`
- WELCOME (server):   "W" nonce(8) session(4) host(1) token(16) max_event_size(4)
- REFUSED (server):   "X" nonce(8) reason(1)

The cookie is an HMAC of the client's address, a time window and its nonce under a secret of the
server's, so the server answers a HELLO without remembering anything, and a RESPONSE proves that the
client receives what is sent to its address. Every reply is smaller than the request it answers, so the
server cannot be used to amplify traffic toward a forged address. The proof is an HMAC of the cookie
under the session password (zeros without one): the password never travels in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Optional

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
    "welcome",
    "refused",
    "parse",
    "make_cookie",
    "password_proof",
]

HANDSHAKE_PREFIX = PROTOCOL_ID + b"\x00\x00"
VERSION = 1
#: Size of the client's requests; the server's replies are smaller.
REQUEST_SIZE = 96
#: Seconds a cookie's time window lasts (a cookie is good in its window and the next).
COOKIE_WINDOW = 10.0
#: Why a server refuses a client, by code.
#: Why a server refuses a client, as sent in a "refused" message.
WRONG_PASSWORD, SERVER_FULL, VERSION_MISMATCH = 1, 2, 3
REFUSED_REASONS = {
    WRONG_PASSWORD: "wrong password",
    SERVER_FULL: "server full",
    VERSION_MISMATCH: "protocol version mismatch",
}

_NONCE = 8
_COOKIE = 16
_PROOF = 32
_TOKEN = 16


@dataclass(frozen=True)
class HandshakeMessage:
    """A parsed handshake datagram; fields that its kind does not have are empty."""

    kind: str
    nonce: bytes
    version: int = 0
    window: int = 0
    cookie: bytes = b""
    proof: bytes = b""
    session: int = 0
    host: bool = False
    token: bytes = b""
    max_event_size: int = 0
    reason: int = 0


def is_handshake(datagram: bytes) -> bool:
    """Tell whether a datagram is a handshake message (as opposed to a package)."""
    return datagram[: len(HANDSHAKE_PREFIX)] == HANDSHAKE_PREFIX


def _pad(message: bytes) -> bytes:
    return message + bytes(REQUEST_SIZE - len(message))


def hello(nonce: bytes) -> bytes:
    """Build a HELLO."""
    return _pad(HANDSHAKE_PREFIX + b"H" + bytes([VERSION]) + nonce)


def challenge(nonce: bytes, window: int, cookie: bytes) -> bytes:
    """Build a CHALLENGE."""
    return HANDSHAKE_PREFIX + b"C" + nonce + struct.pack("!Q", window) + cookie


def response(nonce: bytes, window: int, cookie: bytes, proof: bytes) -> bytes:
    """Build a RESPONSE."""
    return _pad(HANDSHAKE_PREFIX + b"R" + nonce + struct.pack("!Q", window) + cookie + proof)


def welcome(nonce: bytes, session: int, host: bool, token: bytes, max_event_size: int) -> bytes:
    """Build a WELCOME; `token` is the host token (zeros for other clients)."""
    limits = struct.pack("!I", max_event_size)
    return HANDSHAKE_PREFIX + b"W" + nonce + struct.pack("!IB", session, int(host)) + token + limits


def refused(nonce: bytes, reason: int) -> bytes:
    """Build a REFUSED."""
    return HANDSHAKE_PREFIX + b"X" + nonce + bytes([reason])


_SIZES = {
    b"H": REQUEST_SIZE,
    b"C": len(HANDSHAKE_PREFIX) + 1 + _NONCE + 8 + _COOKIE,
    b"R": REQUEST_SIZE,
    b"W": len(HANDSHAKE_PREFIX) + 1 + _NONCE + 5 + _TOKEN + 4,
    b"X": len(HANDSHAKE_PREFIX) + 1 + _NONCE + 1,
}


def parse(datagram: bytes) -> HandshakeMessage:
    """Parse a handshake datagram.

    Raises:
        HandshakeError: (a `ValueError`) if it is not a well-formed handshake message
    """
    if not is_handshake(datagram):
        raise HandshakeError("not a handshake message")
    start = len(HANDSHAKE_PREFIX)
    kind = datagram[start : start + 1]
    if kind not in _SIZES or len(datagram) != _SIZES[kind]:
        raise HandshakeError("malformed handshake message")
    body = datagram[start + 1 :]
    nonce = bytes(body[:_NONCE])
    rest = body[_NONCE:]
    if kind == b"H":
        return HandshakeMessage("hello", bytes(body[1 : 1 + _NONCE]), version=body[0])
    if kind == b"C":
        (window,) = struct.unpack("!Q", rest[:8])
        return HandshakeMessage("challenge", nonce, window=window, cookie=bytes(rest[8 : 8 + _COOKIE]))
    if kind == b"R":
        (window,) = struct.unpack("!Q", rest[:8])
        cookie = bytes(rest[8 : 8 + _COOKIE])
        proof = bytes(rest[8 + _COOKIE : 8 + _COOKIE + _PROOF])
        return HandshakeMessage("response", nonce, window=window, cookie=cookie, proof=proof)
    if kind == b"W":
        session, host = struct.unpack("!IB", rest[:5])
        if host > 1:
            raise HandshakeError("malformed welcome message")
        (max_event_size,) = struct.unpack("!I", rest[5 + _TOKEN : 9 + _TOKEN])
        token = bytes(rest[5 : 5 + _TOKEN])
        return HandshakeMessage(
            "welcome", nonce, session=session, host=bool(host), token=token, max_event_size=max_event_size
        )
    reason = rest[0]
    return HandshakeMessage("refused", nonce, reason=reason)


def make_cookie(secret: bytes, address: tuple, window: int, nonce: bytes) -> bytes:
    """The cookie for a client address, time window and nonce under the server's secret."""
    material = f"{address[0]}|{address[1]}".encode() + struct.pack("!Q", window) + nonce
    return hmac.new(secret, material, hashlib.sha256).digest()[:_COOKIE]


def password_proof(password: Optional[str], cookie: bytes) -> bytes:
    """Prove knowledge of the password for this cookie without sending it (zeros without a password)."""
    if not password:
        return bytes(_PROOF)
    return hmac.new(password.encode(), cookie, hashlib.sha256).digest()


def window_at(now: float) -> int:
    """The cookie time window `now` falls in."""
    return int(now // COOKIE_WINDOW)
