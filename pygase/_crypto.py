"""Session keys and sealed datagrams: a password-authenticated key exchange, then an AEAD per datagram.

Part of the protocol core (no sockets, threads or clocks; randomness is passed in). The primitives are
the `cryptography` package's: X25519, HKDF-SHA256 and ChaCha20-Poly1305. On top of them:

**The key exchange is CPace** (draft-irtf-cfrg-cpace) on X25519. Both sides map the session password
and the handshake's cookie to a point G on Curve25519 (Elligator 2, RFC 9380 section 6.7.1), pick a
secret scalar y and send y·G; each multiplies the other's share by its own scalar and gets the same
point, from which HKDF derives one key per direction. Someone who only watches the handshake learns
nothing to test password guesses against; someone who takes part can test one guess per handshake, and
the server counts its failures. Without a password the same exchange runs on X25519's base point (plain
ephemeral Diffie-Hellman): the session is still encrypted against anyone watching, but the server is not
authenticated.

**Sealed datagrams:** after the handshake every datagram is
`PROTOCOL_ID | connection id (8) | counter (4) | ChaCha20-Poly1305(package, 16-byte tag)` with the
first 16 bytes as associated data and the counter (per direction, never reused with a key) in the
nonce. Only the counter's low 32 bits travel; the receiver takes the 64-bit counter nearest to the
highest it has opened (as QUIC does with packet numbers), and a wrong guess fails authentication. The
package inside starts with the protocol id too: the sealed datagram leaves that copy out, and opening
puts it back. A datagram that fails authentication is dropped before anything in it is decoded; a
counter seen before, or too old for the replay window, is dropped too.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pygase._packages import PROTOCOL_ID
from pygase.errors import DecodeError

__all__ = [
    "SHARE_SIZE",
    "CONNECTION_ID_SIZE",
    "SEALED_OVERHEAD",
    "password_point",
    "share",
    "session_keys",
    "Cipher",
    "AuthenticationError",
]

_P = 2**255 - 19
_A = 486662
#: Bytes of a key exchange share (an X25519 u-coordinate).
SHARE_SIZE = 32
CONNECTION_ID_SIZE = 8
_COUNTER = struct.Struct("!I")  # the counter's low 32 bits, as they travel
_NONCE = struct.Struct("!4xQ")  # a nonce is 4 zero bytes and the whole 64-bit counter
_COUNTER_SPAN = 1 << 32
_COUNTER_INLINE = _COUNTER_SPAN // 4  # below this highest counter, the counter is the one that travelled
_PREFIX_SIZE = len(PROTOCOL_ID) + CONNECTION_ID_SIZE + _COUNTER.size
_COUNTER_AT = _PREFIX_SIZE - _COUNTER.size
_TAG_SIZE = 16
#: Bytes a sealed datagram has more than what it carries (a package carries its protocol id besides:
#: `seal` leaves it out, so a sealed package is `SEALED_OVERHEAD - len(PROTOCOL_ID)` bytes longer).
SEALED_OVERHEAD = _PREFIX_SIZE + _TAG_SIZE
_ID_SIZE = len(PROTOCOL_ID)
#: Counters the replay window remembers below the highest one seen.
REPLAY_WINDOW = 256
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1


class AuthenticationError(DecodeError):
    """A sealed datagram or handshake message that does not authenticate (forged, corrupted, or from
    someone without the keys); also one whose counter was seen before."""


def _is_square(value: int) -> bool:
    return value == 0 or pow(value, (_P - 1) // 2, _P) == 1


#: The generator of an exchange without a password: X25519's base point. Nothing is authenticated then,
#: so a fixed generator loses nothing, and it saves a join the cost of mapping one (a burst of joins
#: costs the server that much less).
_BASE_POINT = (9).to_bytes(32, "little")


def password_point(password: str, session_id: bytes) -> bytes:
    """The generator G of one CPace exchange: the password and the session's id mapped to Curve25519.

    Elligator 2 with Z = 2 (RFC 9380, section 6.7.1): nobody knows G's discrete logarithm, and a wrong
    password gives an unrelated point. Returns G's u-coordinate as 32 bytes (little-endian). Without a
    password (an empty one) G is X25519's base point.
    """
    if not password:
        return _BASE_POINT
    secret = password.encode("utf-8")
    digest = hashlib.sha512(
        b"pygase CPace v2"
        + struct.pack("!I", len(secret))
        + secret
        + struct.pack("!I", len(session_id))
        + session_id
    ).digest()
    r = int.from_bytes(digest, "little") % _P
    denominator = (1 + 2 * r * r) % _P  # never 0: -1/2 is not a square modulo p
    x1 = (-_A * pow(denominator, -1, _P)) % _P
    on_curve = _is_square((x1 * x1 * x1 + _A * x1 * x1 + x1) % _P)
    return (x1 if on_curve else (-x1 - _A) % _P).to_bytes(32, "little")


def _multiply(scalar: bytes, point: bytes) -> bytes:
    """X25519(scalar, point); refuses a result of low order (a share chosen to force a known key)."""
    try:
        return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(point))
    except ValueError:
        raise AuthenticationError("a key exchange share of low order") from None


def share(scalar: bytes, generator: bytes) -> bytes:
    """This side's share y·G for the secret `scalar` (32 random bytes)."""
    if generator == _BASE_POINT:  # (the library's fixed-base multiplication: three times as fast)
        return X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes_raw()
    return _multiply(scalar, generator)


def session_keys(
    scalar: bytes, their_share: bytes, client_share: bytes, server_share: bytes, session_id: bytes
) -> tuple[bytes, bytes]:
    """(client-to-server key, server-to-client key) of an exchange, from this side's secret `scalar`
    and the other side's share.

    Raises:
        AuthenticationError: if the other side's share is of low order
    """
    return derive_keys(_multiply(scalar, their_share), client_share, server_share, session_id)


def derive_keys(
    point: bytes, client_share: bytes, server_share: bytes, session_id: bytes
) -> tuple[bytes, bytes]:
    """(client-to-server key, server-to-client key) from the exchange's shared point (HKDF-SHA256)."""
    keys = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=session_id,
        info=b"pygase v2 session keys" + client_share + server_share,
    ).derive(point)
    return keys[:32], keys[32:]


def derive_scalar(secret: bytes, context: bytes) -> bytes:
    """A secret scalar the server can compute again from its secret and the cookie (it keeps no state
    per client until the client proved it knows the key)."""
    return hmac.new(secret, b"pygase v2 server scalar" + context, hashlib.sha256).digest()


class Cipher:
    """Seals what one side sends and opens what it receives, for one connection.

    Arguments:
        send_key: key of the direction this side sends in
        receive_key: key of the other direction
        connection_id: the connection's id, in the clear in every datagram (the server finds the
            connection by it, whatever address the datagram comes from)
    """

    __slots__ = ("_head", "_send", "_receive", "_sent", "_highest", "_seen", "newest", "_opened")

    def __init__(self, send_key: bytes, receive_key: bytes, connection_id: bytes) -> None:
        self._head = PROTOCOL_ID + connection_id  # what every datagram starts with, before its counter
        # (the bound methods: sealing and opening run for every datagram)
        self._send = ChaCha20Poly1305(send_key).encrypt
        self._receive = ChaCha20Poly1305(receive_key).decrypt
        self._sent = 0  # counter of the last datagram sealed (0: the handshake's)
        self._highest = 0  # highest counter opened
        self._seen = 0  # bit i: counter `_highest - i` was opened
        #: whether the datagram opened last was the newest so far (only such a one may move a connection)
        self.newest = False
        self._opened = 0  # counter of the datagram opened last

    @property
    def connection_id(self) -> bytes:
        return self._head[len(PROTOCOL_ID) :]

    def seal(self, plaintext: bytes, counter: int = -1) -> bytes:
        """A sealed datagram of `plaintext`, with the next counter (or `counter`, for the handshake's 0).

        After the handshake what is sealed starts with `PROTOCOL_ID` (a package or a control message):
        that copy is left out, and `open` puts it back.
        """
        if counter < 0:
            if not plaintext.startswith(PROTOCOL_ID):
                raise ValueError("only packages and control messages (starting with PROTOCOL_ID) are sealed")
            return self.seal_rest(plaintext[_ID_SIZE:])
        prefix = self._head + _COUNTER.pack(counter)
        return prefix + self._send(_NONCE.pack(counter), plaintext, prefix)

    def seal_rest(self, rest: bytes) -> bytes:
        """`seal(PROTOCOL_ID + rest)`, for a package built without its protocol id (it saves a copy)."""
        counter = self._sent = self._sent + 1
        prefix = self._head + _COUNTER.pack(counter & 0xFFFFFFFF)
        return prefix + self._send(_NONCE.pack(counter), rest, prefix)

    def open(self, datagram: bytes, counter_zero: bool = False, remember: bool = True) -> bytes:
        """The plaintext of a sealed datagram from the other side.

        With `remember=False` its counter is not yet marked as seen: call `remember()` once the datagram
        is accepted (a server does not accept an authentic copy from an unproven address, and the copy
        must not make the original look like a replay).

        Raises:
            AuthenticationError: if it does not authenticate or was opened before (a replay)
        """
        if len(datagram) < SEALED_OVERHEAD:
            raise AuthenticationError("too short for a sealed datagram")
        (low,) = _COUNTER.unpack_from(datagram, _COUNTER_AT)
        highest = self._highest
        # (inline for the usual case, the first 2**30 datagrams: the counter is what travelled)
        counter = low if highest < _COUNTER_INLINE else _nearest_counter(low, highest)
        if (counter == 0) is not counter_zero:
            raise AuthenticationError("a counter out of place")
        if not counter_zero:
            if counter <= highest - REPLAY_WINDOW:
                raise AuthenticationError("a counter older than the replay window")
            if counter <= highest and self._seen >> (highest - counter) & 1:
                raise AuthenticationError("a counter seen before (a replay)")
        try:
            plaintext = self._receive(_NONCE.pack(counter), datagram[_PREFIX_SIZE:], datagram[:_PREFIX_SIZE])
        except InvalidTag:
            raise AuthenticationError("a datagram that does not authenticate") from None
        self.newest = counter > highest
        self._opened = counter
        if counter_zero:
            return plaintext
        if remember:
            self.remember()
        return PROTOCOL_ID + plaintext

    def remember(self) -> None:
        """Mark the counter of the datagram opened last as seen (see `open`)."""
        counter = self._opened
        highest = self._highest
        if counter > highest:
            shift = counter - highest
            self._seen = ((self._seen << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW else 1
            self._highest = counter
        elif counter > highest - REPLAY_WINDOW:
            self._seen |= 1 << (highest - counter)


def _nearest_counter(low: int, highest: int) -> int:
    """The 64-bit counter whose low 32 bits are `low` nearest to the one after `highest`."""
    expected = highest + 1
    counter = (expected & ~(_COUNTER_SPAN - 1)) | low
    if counter <= expected - _COUNTER_SPAN // 2 and counter < (1 << 64) - _COUNTER_SPAN:
        return counter + _COUNTER_SPAN
    if counter > expected + _COUNTER_SPAN // 2 and counter >= _COUNTER_SPAN:
        return counter - _COUNTER_SPAN
    return counter


def connection_id_of(datagram: bytes) -> bytes:
    """The connection id of a sealed datagram (not authenticated yet)."""
    return datagram[len(PROTOCOL_ID) : len(PROTOCOL_ID) + CONNECTION_ID_SIZE]


RandomBytes = Callable[[int], bytes]
