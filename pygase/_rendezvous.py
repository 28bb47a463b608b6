"""The rendezvous protocol: what hosts, players and a relay (`python -m pygase.relay`) say; bytes in and out.

A host registers its session with a relay from its *game socket* (so the relay sees the public address
and port its router gives the game) and gets a room code; a player looks the code up, and the relay tells
each side the other's public and private (LAN) endpoints. The player punches first with a low IP TTL
(its packets open its own router and die before they reach the host's), tells the relay so (OPENED), and
the relay has the host punch at the player (INTRODUCE): those packets find the player's router open, and
the player's answer finds the host's router open. If no punch gets through within about 2 s, the player
asks the relay for a channel: two ports on the relay, one per side, each latched to the first address that
shows its token (BIND); from then on the relay forwards the game's datagrams between them unchanged.

Every datagram starts with `MAGIC` and one letter for its kind (upper case: sent to the relay; lower case:
sent by it; punches and binds between the ends):

- REGISTER (host):    "G" nonce(8) cookie(16) code(6) secret(16) public(1) count(1) endpoints length(1) info;
                      zero-padded to `REQUEST_SIZE`. Without a good cookie the relay answers CHALLENGE.
- CHALLENGE (relay):  "c" nonce(8) cookie(16)
- REGISTERED (relay): "r" nonce(8) code(6) secret(16) lifetime(2) public endpoint
- REFRESH (host):     "U" code(6) secret(16) players(2): keeps the registration and the router's mapping
- REFRESHED (relay):  "u" code(6) known(1): 0 means the relay forgot the session (restarted): register again
- UNREGISTER (host):  "Z" code(6) secret(16)
- LOOKUP (player):    "L" nonce(8) cookie(16) code(6) count(1) endpoints, zero-padded to `REQUEST_SIZE`
- PEER (relay):       "e" nonce(8) intro(8) count(1) endpoints (the host's public one first)
- NOT_FOUND (relay):  "n" nonce(8) reason(1): to a LOOKUP (or a REGISTER the relay cannot take), and with
                      the introduction as nonce to a CHANNEL it cannot open
- OPENED (player):    "O" intro(8): its router is open toward the host
- INTRODUCE (relay):  "i" intro(8) count(1) endpoints (the player's public one first)
- PUNCH (either end): "p" intro(8) answer(1)
- CHANNEL (player):   "T" intro(8), zero-padded to `CHANNEL_REQUEST_SIZE`: punching failed, relay instead
- OFFER (relay):      "t" intro(8) port(2) token(8): to the player, and to the host (its own port, token)
- BIND (either end):  "B" token(8), sent to the channel's port until BOUND
- BOUND (relay):      "b" token(8)
- LIST (anyone):      "Q" nonce(8) page(1) game(1 + n), zero-padded to `LIST_SIZE`
- LISTING (relay):    "q" nonce(8) page(1) pages(1) msgpack list of public sessions

An endpoint is a family byte (4 or 6), the address (4 or 16 bytes) and the port (2); an IPv4 address
mapped into IPv6 (a dual-stack socket's view of an IPv4 peer) is written as IPv4. The info of a
registration is a msgpack map: game, name, players, max_players, password (bool).

Every reply to a sender the relay has not verified is at most the size of its request, so the relay
cannot be used to amplify traffic toward a forged address; REGISTER and LOOKUP need a cookie (an HMAC of
the sender's address under the relay's secret), so a registration or an introduction is only ever made
for an address that receives what is sent to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional, Union

import msgpack

from pygase._endpoints import (
    MAX_ENDPOINTS,
    Endpoint,
    pack_endpoint,
    pack_endpoints,
    plain_address,
    unpack_endpoint,
    unpack_endpoints,
)
from pygase._handshake import make_cookie as handshake_cookie
from pygase._room_codes import CODE_ALPHABET, CODE_LENGTH, normalize_code

__all__ = [
    "MAGIC",
    "REQUEST_SIZE",
    "LIST_SIZE",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "normalize_code",
    "is_rendezvous",
    "Endpoint",
    "Register",
    "Challenge",
    "Registered",
    "Refresh",
    "Refreshed",
    "Unregister",
    "Lookup",
    "Peer",
    "NotFound",
    "Opened",
    "Introduce",
    "Punch",
    "ChannelRequest",
    "Offer",
    "Bind",
    "Bound",
    "ListRequest",
    "Listing",
    "Message",
    "parse",
    "make_cookie",
]

#: First bytes of every rendezvous datagram (a PyGaSe package starts with ff d0 fa b9, a LAN
#: announcement with "PYGASE").
MAGIC = b"\xff\xd0\xfa\xbb"
#: Size REGISTER and LOOKUP are padded to: every answer to them fits in it.
REQUEST_SIZE = 160
#: Size a CHANNEL request is padded to (its OFFER is smaller).
CHANNEL_REQUEST_SIZE = 32
#: Size a LIST request is padded to, and the most a LISTING may have.
LIST_SIZE = 1200
NONCE_SIZE = 8
COOKIE_SIZE = 16
SECRET_SIZE = 16
INTRO_SIZE = 8
TOKEN_SIZE = 8
#: Most bytes of a registration's packed info.
MAX_INFO = 96
#: NOT_FOUND reasons.
UNKNOWN_CODE, SLOW_DOWN, RELAY_FULL, NO_CHANNEL = 1, 2, 3, 4
NOT_FOUND_REASONS = {
    UNKNOWN_CODE: "no session with that room code",
    SLOW_DOWN: "too many look-ups, slow down",
    RELAY_FULL: "the relay is full",
    NO_CHANNEL: "the relay has no channel to spare for forwarding",
}


def is_rendezvous(datagram: bytes) -> bool:
    """Tell whether a datagram belongs to the rendezvous protocol."""
    return datagram[:4] == MAGIC


def _code_bytes(code: str) -> bytes:
    return code.encode("ascii") if code else bytes(CODE_LENGTH)


def _code_from(data: bytes) -> str:
    if data == bytes(CODE_LENGTH):
        return ""
    try:
        return normalize_code(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("malformed room code") from None


def _pad(message: bytes, size: int) -> bytes:
    return message + bytes(max(0, size - len(message)))


def _head(letter: bytes) -> bytes:
    return MAGIC + letter


@dataclass(frozen=True)
class Register:
    """A host asks for a room code (or to keep `code`, with its `secret`) for the session at its address."""

    nonce: bytes
    cookie: bytes = bytes(COOKIE_SIZE)
    code: str = ""
    secret: bytes = bytes(SECRET_SIZE)
    public: bool = False
    private: tuple = ()
    info: dict = field(default_factory=dict)

    def encode(self) -> bytes:
        info = msgpack.packb(self.info)
        if len(info) > MAX_INFO:
            raise ValueError(f"session info has {len(info)} bytes packed, more than {MAX_INFO}")
        body = self.nonce + self.cookie + _code_bytes(self.code) + self.secret + bytes([int(self.public)])
        endpoints = pack_endpoints(self.private)
        return _pad(_head(b"G") + body + endpoints + bytes([len(info)]) + info, REQUEST_SIZE)


@dataclass(frozen=True)
class Challenge:
    """The relay's answer to a REGISTER or LOOKUP without a good cookie: send it again with this one."""

    nonce: bytes
    cookie: bytes

    def encode(self) -> bytes:
        return _head(b"c") + self.nonce + self.cookie


@dataclass(frozen=True)
class Registered:
    """The host's room code, its secret for REFRESH, how long a registration lives without one (s) and
    the host's public endpoint as the relay sees it."""

    nonce: bytes
    code: str
    secret: bytes
    lifetime: int
    public: Endpoint

    def encode(self) -> bytes:
        body = self.nonce + _code_bytes(self.code) + self.secret + struct.pack("!H", self.lifetime)
        return _head(b"r") + body + pack_endpoint(self.public)


@dataclass(frozen=True)
class Refresh:
    """The host is still there, with `players` players (also keeps its router's mapping open)."""

    code: str
    secret: bytes
    players: int = 0

    def encode(self) -> bytes:
        players = struct.pack("!H", min(self.players, 65535))
        return _head(b"U") + _code_bytes(self.code) + self.secret + players


@dataclass(frozen=True)
class Refreshed:
    """The relay's answer to REFRESH: `known` False if it does not know the session (it restarted)."""

    code: str
    known: bool

    def encode(self) -> bytes:
        return _head(b"u") + _code_bytes(self.code) + bytes([int(self.known)])


@dataclass(frozen=True)
class Unregister:
    """The host's session ended."""

    code: str
    secret: bytes

    def encode(self) -> bytes:
        return _head(b"Z") + _code_bytes(self.code) + self.secret


@dataclass(frozen=True)
class Lookup:
    """A player asks for the session with room code `code`; `private`: the player's LAN endpoints."""

    nonce: bytes
    code: str
    cookie: bytes = bytes(COOKIE_SIZE)
    private: tuple = ()

    def encode(self) -> bytes:
        body = self.nonce + self.cookie + _code_bytes(self.code) + pack_endpoints(self.private)
        return _pad(_head(b"L") + body, REQUEST_SIZE)


@dataclass(frozen=True)
class Peer:
    """The relay's answer to a LOOKUP: the introduction's id and the host's endpoints, public first."""

    nonce: bytes
    intro: bytes
    endpoints: tuple

    def encode(self) -> bytes:
        return _head(b"e") + self.nonce + self.intro + pack_endpoints(self.endpoints)


@dataclass(frozen=True)
class NotFound:
    """The relay's answer to a LOOKUP it cannot introduce: `reason` one of `NOT_FOUND_REASONS`."""

    nonce: bytes
    reason: int = UNKNOWN_CODE

    def encode(self) -> bytes:
        return _head(b"n") + self.nonce + bytes([self.reason])

    @property
    def text(self) -> str:
        return NOT_FOUND_REASONS.get(self.reason, "the relay refused the look-up")


@dataclass(frozen=True)
class Opened:
    """The player's router is open toward the host: the relay may have the host punch."""

    intro: bytes

    def encode(self) -> bytes:
        return _head(b"O") + self.intro


@dataclass(frozen=True)
class Introduce:
    """The relay tells the host a player wants in: the player's endpoints, public first."""

    intro: bytes
    endpoints: tuple

    def encode(self) -> bytes:
        return _head(b"i") + self.intro + pack_endpoints(self.endpoints)


@dataclass(frozen=True)
class Punch:
    """A punch between the host and a player (`answer`: a reply to one that arrived)."""

    intro: bytes
    answer: bool = False

    def encode(self) -> bytes:
        return _head(b"p") + self.intro + bytes([int(self.answer)])


@dataclass(frozen=True)
class ChannelRequest:
    """The player's punches did not get through: it asks the relay to forward its datagrams."""

    intro: bytes

    def encode(self) -> bytes:
        return _pad(_head(b"T") + self.intro, CHANNEL_REQUEST_SIZE)


@dataclass(frozen=True)
class Offer:
    """A relay channel's port for this side and the token that latches it to this side's address."""

    intro: bytes
    port: int
    token: bytes

    def encode(self) -> bytes:
        return _head(b"t") + self.intro + struct.pack("!H", self.port) + self.token


@dataclass(frozen=True)
class Bind:
    """Sent to a relay channel's port: latch this side of the channel to my address."""

    token: bytes

    def encode(self) -> bytes:
        return _head(b"B") + self.token


@dataclass(frozen=True)
class Bound:
    """The relay latched this side of the channel."""

    token: bytes

    def encode(self) -> bytes:
        return _head(b"b") + self.token


@dataclass(frozen=True)
class ListRequest:
    """Ask for a page of the relay's public sessions (of one game, or all for `game` "")."""

    nonce: bytes
    page: int = 0
    game: str = ""

    def encode(self) -> bytes:
        game = self.game.encode("utf-8")[:64]
        return _pad(_head(b"Q") + self.nonce + bytes([self.page, len(game)]) + game, LIST_SIZE)


@dataclass(frozen=True)
class Listing:
    """A page of public sessions: dicts with code, game, name, players, max_players and password."""

    nonce: bytes
    page: int
    pages: int
    sessions: list

    def encode(self) -> bytes:
        message = _head(b"q") + self.nonce + bytes([self.page, self.pages]) + msgpack.packb(self.sessions)
        if len(message) > LIST_SIZE:
            raise ValueError(f"a listing of {len(message)} bytes is larger than {LIST_SIZE}")
        return message


Message = Union[
    Register, Challenge, Registered, Refresh, Refreshed, Unregister, Lookup, Peer, NotFound, Opened,
    Introduce, Punch, ChannelRequest, Offer, Bind, Bound, ListRequest, Listing,
]  # fmt: skip

_N, _C, _S, _I, _T, _K = NONCE_SIZE, COOKIE_SIZE, SECRET_SIZE, INTRO_SIZE, TOKEN_SIZE, CODE_LENGTH


def _exactly(data: bytes, size: int) -> bytes:
    if len(data) != size:
        raise ValueError("malformed rendezvous message")
    return data


def _unpack_info(data: bytes) -> dict:
    if not data or data[0] > MAX_INFO or len(data) < 1 + data[0]:
        raise ValueError("malformed session info")
    data = data[1 : 1 + data[0]]
    try:
        info = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:
        raise ValueError("malformed session info") from None
    if not isinstance(info, dict):
        raise ValueError("malformed session info")
    return info


def parse(datagram: bytes) -> Message:
    """Parse a rendezvous datagram.

    Raises:
        ValueError: if it is not a well-formed rendezvous message
    """
    if not is_rendezvous(datagram) or len(datagram) < 5:
        raise ValueError("not a rendezvous message")
    kind, body = datagram[4:5], bytes(datagram[5:])
    if kind == b"G":
        if len(datagram) < REQUEST_SIZE:
            raise ValueError("REGISTER not padded")
        fixed = _N + _C + _K + _S + 1
        if len(body) < fixed + 1 or body[fixed - 1] > 1:
            raise ValueError("malformed REGISTER")
        private, end = unpack_endpoints(body, fixed)
        return Register(
            nonce=body[:_N],
            cookie=body[_N : _N + _C],
            code=_code_from(body[_N + _C : _N + _C + _K]),
            secret=body[_N + _C + _K : fixed - 1],
            public=bool(body[fixed - 1]),
            private=private,
            info=_unpack_info(body[end:]),
        )
    if kind == b"c":
        body = _exactly(body, _N + _C)
        return Challenge(body[:_N], body[_N:])
    if kind == b"r":
        fixed = _N + _K + _S + 2
        if len(body) < fixed:
            raise ValueError("malformed REGISTERED")
        public, end = unpack_endpoint(body, fixed)
        _exactly(body[end:], 0)
        (lifetime,) = struct.unpack("!H", body[fixed - 2 : fixed])
        secret = body[_N + _K : _N + _K + _S]
        return Registered(body[:_N], _code_from(body[_N : _N + _K]), secret, lifetime, public)
    if kind == b"U":
        body = _exactly(body, _K + _S + 2)
        (players,) = struct.unpack("!H", body[-2:])
        return Refresh(_code_from(body[:_K]), body[_K : _K + _S], players)
    if kind == b"u":
        body = _exactly(body, _K + 1)
        return Refreshed(_code_from(body[:_K]), bool(body[_K]))
    if kind == b"Z":
        body = _exactly(body, _K + _S)
        return Unregister(_code_from(body[:_K]), body[_K:])
    if kind == b"L":
        if len(datagram) < REQUEST_SIZE:
            raise ValueError("LOOKUP not padded")
        code = _code_from(body[_N + _C : _N + _C + _K])
        if not code:
            raise ValueError("LOOKUP without a room code")
        private, _ = unpack_endpoints(body, _N + _C + _K)
        return Lookup(body[:_N], code, body[_N : _N + _C], private)
    if kind == b"e":
        endpoints, end = unpack_endpoints(body, _N + _I)
        _exactly(body[end:], 0)
        if not endpoints:
            raise ValueError("PEER without endpoints")
        return Peer(body[:_N], body[_N : _N + _I], endpoints)
    if kind == b"n":
        body = _exactly(body, _N + 1)
        return NotFound(body[:_N], body[_N])
    if kind == b"O":
        return Opened(_exactly(body, _I))
    if kind == b"i":
        endpoints, end = unpack_endpoints(body, _I)
        _exactly(body[end:], 0)
        if not endpoints:
            raise ValueError("INTRODUCE without endpoints")
        return Introduce(body[:_I], endpoints)
    if kind == b"p":
        body = _exactly(body, _I + 1)
        return Punch(body[:_I], bool(body[_I]))
    if kind == b"T":
        if len(datagram) != CHANNEL_REQUEST_SIZE:
            raise ValueError("malformed CHANNEL request")
        return ChannelRequest(body[:_I])
    if kind == b"t":
        body = _exactly(body, _I + 2 + _T)
        (port,) = struct.unpack("!H", body[_I : _I + 2])
        return Offer(body[:_I], port, body[_I + 2 :])
    if kind == b"B":
        return Bind(_exactly(body, _T))
    if kind == b"b":
        return Bound(_exactly(body, _T))
    if kind == b"Q":
        if len(datagram) != LIST_SIZE or len(body) < _N + 2 or body[_N + 1] > 64:
            raise ValueError("malformed LIST request")
        try:
            game = body[_N + 2 : _N + 2 + body[_N + 1]].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("malformed LIST request") from None
        return ListRequest(body[:_N], body[_N], game)
    if kind == b"q":
        if len(datagram) > LIST_SIZE or len(body) < _N + 2:
            raise ValueError("malformed LISTING")
        try:
            sessions = msgpack.unpackb(body[_N + 2 :], raw=False, strict_map_key=True)
        except Exception:
            raise ValueError("malformed LISTING") from None
        if not isinstance(sessions, list) or not all(isinstance(entry, dict) for entry in sessions):
            raise ValueError("malformed LISTING")
        return Listing(body[:_N], body[_N], body[_N + 1], sessions)
    raise ValueError("unknown rendezvous message")


def make_cookie(secret: bytes, address: Endpoint, window: int, nonce: bytes) -> bytes:
    """The cookie for an address, a time window and a nonce under the relay's secret: the handshake's
    cookie, of the address as IPv4 where a dual-stack socket reports it mapped into IPv6."""
    return handshake_cookie(secret, (plain_address(str(address[0])), address[1]), window, nonce)


def sizes_check() -> Optional[str]:
    """What breaks the rule that a reply is at most its request's size, or None (for a unit test)."""
    nonce, intro, token = bytes(_N), bytes(_I), bytes(_T)
    six = ("2001:db8::1", 65535)
    largest: dict[str, tuple[Message, Message]] = {
        "REGISTERED vs REGISTER": (Registered(nonce, "A" * _K, bytes(_S), 60, six), Register(nonce)),
        "CHALLENGE vs LOOKUP": (Challenge(nonce, bytes(_C)), Lookup(nonce, "A" * _K)),
        "PEER vs LOOKUP": (Peer(nonce, intro, (six,) * MAX_ENDPOINTS), Lookup(nonce, "A" * _K)),
        "NOT_FOUND vs LOOKUP": (NotFound(nonce), Lookup(nonce, "A" * _K)),
        "NOT_FOUND vs CHANNEL": (NotFound(intro), ChannelRequest(intro)),
        "REFRESHED vs REFRESH": (Refreshed("A" * _K, True), Refresh("A" * _K, bytes(_S))),
        "OFFER vs CHANNEL": (Offer(intro, 1, token), ChannelRequest(intro)),
        "BOUND vs BIND": (Bound(token), Bind(token)),
    }
    for name, (reply, request) in largest.items():
        if len(reply.encode()) > len(request.encode()):
            return f"{name}: {len(reply.encode())} > {len(request.encode())} bytes"
    return None
