"""The relay's side of the rendezvous protocol (`pygase._rendezvous`), with no socket, thread or clock.

Its driver (`pygase.relay`) hands `RelayCore.receive` each datagram with its sender, the port it arrived
on (None: the main port; (channel, PLAYER or HOST): a channel's) and the time, and does what comes back,
in order: `Send` a datagram from a port; `OpenChannel`: open a player port and a host port, then call
`channel_opened(channel, (player_port, host_port), now)` (or `channel_failed`); `CloseChannel`. It
re-arms one timer for `handle_timer(now)` at `get_timer()` (expiry, idle channels).

What an outsider can make it do is bounded. REGISTER and LOOKUP without a good cookie get a CHALLENGE and
leave nothing behind; a reply to a sender is never larger than its request (checked once more on the way
out); look-ups, new registrations and listings draw on a token bucket per source (an IPv4 address or an
IPv6 /64) that must hold the price of a miss to let any in, so room codes cannot be probed quickly; every
map has a maximum, and the oldest entry goes first where forgetting it is safe.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice
from typing import Callable, NamedTuple, Optional, Union

from pygase import _rendezvous as wire
from pygase._ratelimit import RateLimitedLog

__all__ = ["RelayConfig", "RelayCore", "Send", "OpenChannel", "CloseChannel", "Output", "PLAYER", "HOST"]

logger = logging.getLogger("pygase.relay")

Address = tuple  # (host, port), an IPv4 address written plainly
Port = Optional[tuple]  # None: the main port; (channel, PLAYER or HOST): one of a channel's ports
#: The two sides of a channel (the second item of a channel's `Port`).
PLAYER, HOST = 0, 1
#: Seconds a cookie's time window lasts; a cookie of the current or the previous window is good.
COOKIE_WINDOW = 10
#: How often idle channels are looked for (s).
_SWEEP = 1.0
_BIND = wire.MAGIC + b"B"
_BIND_SIZE = len(_BIND) + wire.TOKEN_SIZE
_NO_SECRET = bytes(wire.SECRET_SIZE)
#: Sessions on a page of a listing. A session's entry has at most 144 bytes packed: 59 for its keys, code,
#: counts and flag, and at most 85 for its game and name (they come from its info, which has at most 96),
#: so 8 entries and the LISTING's 18 other bytes fit in `LIST_SIZE`.
_PER_PAGE = 8


class Send(NamedTuple):
    """Send `datagram` to `address` from the main port (`port` None) or from a channel's port."""

    datagram: bytes
    address: Address
    port: Port = None


class OpenChannel(NamedTuple):
    """Open a player port and a host port for `channel`, then call `RelayCore.channel_opened`."""

    channel: int


class CloseChannel(NamedTuple):
    """Close both ports of `channel`."""

    channel: int


Output = Union[Send, OpenChannel, CloseChannel]
_Asked = Union[wire.Register, wire.Lookup]  # what needs a cookie


@dataclass(frozen=True)
class RelayConfig:
    """A relay's limits. Rates are per second; `channel_rate` in bytes per second, each way."""

    max_sessions: int = 10_000
    sessions_per_source: int = 16
    lifetime: int = 30  # a registration without REGISTER or REFRESH (hosts refresh every 5 s)
    max_introductions: int = 10_000
    introduction_lifetime: float = 15.0
    introduces: int = 10  # INTRODUCEs to the host per introduction (the player repeats OPENED)
    max_channels: int = 200
    channels_per_source: int = 8
    channel_rate: int = 64 * 1024
    channel_idle: float = 30.0
    host_offers: int = 10  # OFFERs to the host per channel (the player repeats CHANNEL)
    query_rate: float = 5.0  # look-ups, new registrations and listings per source
    query_burst: float = 10.0
    miss_cost: float = 4.0  # what a look-up of an unknown code (or a claim of a taken one) costs
    max_sources: int = 16_384
    listing_age: float = 1.0  # a listing page is made at most this often per game

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"RelayConfig.{name} must be positive, not {value!r}")
        if not 1 <= self.lifetime <= 65535:
            raise ValueError(f"RelayConfig.lifetime must be 1-65535 s, not {self.lifetime}")
        if self.query_burst < self.miss_cost:
            raise ValueError("RelayConfig.query_burst must be at least miss_cost, or no look-up could miss")


class _Session:
    __slots__ = ("code", "secret", "address", "private", "source", "public", "game", "name", "players",
                 "max_players", "password", "expires")  # fmt: skip

    def __init__(self, code: str, secret: bytes, source: str) -> None:
        self.code, self.secret, self.source = code, secret, source
        self.address: Address = ("", 0)
        self.private: tuple = ()
        self.public = self.password = False
        self.game = self.name = ""
        self.players = self.max_players = 0
        self.expires = 0.0

    def entry(self) -> dict:
        """What a listing says about this session."""
        return {"code": self.code, "game": self.game, "name": self.name, "players": self.players,
                "max_players": self.max_players, "password": self.password}  # fmt: skip


class _Intro:
    __slots__ = ("code", "player", "endpoints", "expires", "introduced")

    def __init__(self, code: str, player: Address, endpoints: tuple, expires: float) -> None:
        self.code, self.player, self.endpoints, self.expires = code, player, endpoints, expires
        self.introduced = 0


class _Channel:
    __slots__ = ("intro", "code", "player", "source", "tokens", "ports", "peers", "allowance", "stamp",
                 "last", "offers")  # fmt: skip

    def __init__(self, intro: bytes, code: str, player: Address, source: str, tokens: list, now: float):
        self.intro, self.code, self.player, self.source, self.tokens = intro, code, player, source, tokens
        self.ports: Optional[tuple] = None
        self.peers: list = [None, None]  # the address each side is latched to
        self.allowance = [float("inf")] * 2  # bytes each side may still send (token buckets, full)
        self.stamp, self.last, self.offers = [now, now], now, 0


def _count(counts: dict, key: str, step: int) -> None:
    """Add `step` to `counts[key]`; a count that reaches 0 is forgotten."""
    counts[key] = counts.get(key, 0) + step
    if not counts[key]:
        del counts[key]


def _int(value: object) -> int:
    return min(max(value, 0), 65535) if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def source_of(host: str) -> str:
    """Whom rate limits count `host` as: an IPv4 address itself, an IPv6 address its /64."""
    if ":" not in host:
        return host
    try:
        return ipaddress.IPv6Address(host.split("%", 1)[0]).exploded[:19]
    except ValueError:
        return host


class RelayCore:
    """The relay's state: registrations, introductions and channels (see the module docstring).

    Arguments:
        secret: the key of the relay's cookies (random, kept by the relay)
        config: its limits
        random_bytes: where codes, secrets, introductions and tokens come from (`os.urandom`)
    """

    def __init__(
        self,
        secret: bytes,
        config: Optional[RelayConfig] = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("a relay's secret needs at least 16 bytes")
        self.config = config or RelayConfig()
        self._secret = secret
        self._random = random_bytes
        self._log = RateLimitedLog(logger)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # in the order they expire
        self._by_address: dict[Address, str] = {}
        self._per_source: dict[str, int] = {}
        self._public: dict[str, dict[str, None]] = {}  # game -> codes of its public sessions
        self._listings: dict[str, tuple[float, list]] = {}  # game -> (when made, pages)
        self._intros: dict[bytes, _Intro] = {}  # in the order they expire
        self._channels: dict[int, _Channel] = {}
        self._channel_of: dict[bytes, int] = {}  # introduction -> its channel
        self._channels_of: dict[str, int] = {}  # source -> channels it asked for
        self._next_channel = 1
        self._sweep_at: Optional[float] = None
        self._buckets: dict[str, list] = {}  # source -> [tokens, when counted], least recently used first
        self._handlers: dict[type, Callable[..., list[Output]]] = {
            wire.Register: self._register, wire.Refresh: self._refresh, wire.Unregister: self._unregister,
            wire.Lookup: self._lookup, wire.Opened: self._opened, wire.ChannelRequest: self._channel_request,
            wire.ListRequest: self._list,
        }  # fmt: skip

    # -- inputs --------------------------------------------------------------------------------------

    def receive(self, datagram: bytes, address: tuple, now: float, port: Port = None) -> list[Output]:
        """What follows from `datagram` arriving from `address` on `port` (None: the main port)."""
        address = (wire.plain_address(address[0]), address[1])
        if port is not None:
            return self._on_channel(port, datagram, address, now)
        try:
            message = wire.parse(datagram)
        except ValueError as error:
            self._log.debug("malformed", now, "dropped a datagram from %s: %s", address, error)
            return []
        handler = self._handlers.get(type(message))
        if handler is None:
            self._log.debug("unexpected", now, "dropped a %s from %s", type(message).__name__, address)
            return []
        outputs = handler(message, address, now)
        for output in outputs:  # the rule the protocol is made to keep, kept here once more
            if type(output) is Send and output.address == address and len(output.datagram) > len(datagram):
                self._log.log(logging.ERROR, "amplify", now, "a reply larger than its request: %s", output)
                return []
        return outputs

    def channel_opened(self, channel: int, ports: tuple, now: float) -> list[Output]:
        """The driver opened `channel`'s ports: (the player's, the host's). Returns the OFFERs."""
        found = self._channels.get(channel)
        if found is None or found.ports is not None:
            return []
        found.ports = (int(ports[PLAYER]), int(ports[HOST]))
        found.last = now
        return self._offers(found)

    def channel_failed(self, channel: int) -> None:
        """The driver could not open `channel`'s ports: forget it (the player may ask again)."""
        found = self._channels.get(channel)
        if found is not None and found.ports is None:
            self._forget_channel(channel)

    def handle_timer(self, now: float) -> list[Output]:
        """Expire registrations and introductions; close idle channels."""
        while self._sessions and next(iter(self._sessions.values())).expires <= now:
            self._remove(next(iter(self._sessions.values())))
        while self._intros and next(iter(self._intros.values())).expires <= now:
            del self._intros[next(iter(self._intros))]
        outputs: list[Output] = []
        if self._sweep_at is not None and now >= self._sweep_at:
            idle = self.config.channel_idle
            for channel, found in list(self._channels.items()):
                if now - found.last >= idle:
                    self._log.debug("closed", now, "channel %d closed after %.0f s idle", channel, idle)
                    self._forget_channel(channel)
                    outputs.append(CloseChannel(channel))
            self._sweep_at = now + _SWEEP if self._channels else None
        return outputs

    def get_timer(self) -> Optional[float]:
        """When `handle_timer` is due next (None: nothing to do)."""
        due = [] if self._sweep_at is None else [self._sweep_at]
        due += [next(iter(self._sessions.values())).expires] if self._sessions else []
        due += [next(iter(self._intros.values())).expires] if self._intros else []
        return min(due, default=None)

    def counts(self) -> dict:
        """How many sessions, introductions, channels and remembered sources there are."""
        return {"sessions": len(self._sessions), "introductions": len(self._intros),
                "channels": len(self._channels), "sources": len(self._buckets)}  # fmt: skip

    # -- the main port -------------------------------------------------------------------------------

    def _cookie_ok(self, message: _Asked, address: Address, now: float) -> bool:
        window = int(now // COOKIE_WINDOW)
        return any(
            hmac.compare_digest(message.cookie, wire.make_cookie(self._secret, address, w, message.nonce))
            for w in (window, max(window - 1, 0))
        )

    def _challenge(self, message: _Asked, address: Address, now: float) -> list[Output]:
        cookie = wire.make_cookie(self._secret, address, int(now // COOKIE_WINDOW), message.nonce)
        return [Send(wire.Challenge(message.nonce, cookie).encode(), address)]

    def _register(self, message: wire.Register, address: Address, now: float) -> list[Output]:
        if not self._cookie_ok(message, address, now):
            return self._challenge(message, address, now)
        session = None
        if message.code:
            claimed = self._sessions.get(message.code)
            if claimed is not None and hmac.compare_digest(claimed.secret, message.secret):
                session = claimed  # its own code: a repeated REGISTER, or the host moved
        if session is None and address in self._by_address:
            held = self._sessions[self._by_address[address]]
            if not message.code or hmac.compare_digest(held.secret, message.secret):
                session = held  # the host repeats a REGISTER whose answer was lost
        if session is None:
            taken = bool(message.code) and message.code in self._sessions
            reason = self._new_session(message, address, now, taken)
            if isinstance(reason, int):
                return [Send(wire.NotFound(message.nonce, reason).encode(), address)]
            session = reason
        self._update(session, message, address, now)
        reply = wire.Registered(message.nonce, session.code, session.secret, self.config.lifetime, address)
        return [Send(reply.encode(), address)]

    def _new_session(
        self, message: wire.Register, address: Address, now: float, taken: bool
    ) -> Union[int, _Session]:
        """A new registration for `message`, or why there is none (a NOT_FOUND reason)."""
        source = source_of(address[0])
        if not self._charge(source, self.config.miss_cost if taken else 1.0, now):
            return wire.SLOW_DOWN
        full = len(self._sessions) >= self.config.max_sessions
        if full or self._per_source.get(source, 0) >= self.config.sessions_per_source:
            self._log.info(
                "full", now, "refused a registration from %s: %s", address, "full" if full else "its limit"
            )
            return wire.RELAY_FULL
        code = message.code if message.code and not taken else self._new_code()
        if code is None:
            return wire.RELAY_FULL
        keep = code == message.code and message.secret != _NO_SECRET
        session = _Session(code, message.secret if keep else self._random(wire.SECRET_SIZE), source)
        self._sessions[code] = session
        _count(self._per_source, source, 1)
        self._log.debug("registered", now, "session %s registered by %s", code, address)
        return session

    def _new_code(self) -> Optional[str]:
        for _ in range(64):  # bytes below 248 (8 * 31) map evenly onto the 31 letters; others are skipped
            letters = [wire.CODE_ALPHABET[b % 31] for b in self._random(2 * wire.CODE_LENGTH) if b < 248]
            code = "".join(letters[: wire.CODE_LENGTH])
            if len(code) == wire.CODE_LENGTH and code not in self._sessions:
                return code
        return None

    def _update(self, session: _Session, message: wire.Register, address: Address, now: float) -> None:
        self._move(session, address)
        self._unlist(session)
        info = message.info
        session.private = tuple(message.private)[: wire.MAX_ENDPOINTS - 1]
        session.public, session.password = message.public, info.get("password") is True
        session.game, session.name = _text(info.get("game")), _text(info.get("name"))
        session.players, session.max_players = _int(info.get("players")), _int(info.get("max_players"))
        if session.public:
            self._public.setdefault(session.game, {})[session.code] = None
        self._renew(session, now)

    def _move(self, session: _Session, address: Address) -> None:
        if session.address == address:
            return
        if self._by_address.get(session.address) == session.code:
            del self._by_address[session.address]
        other = self._by_address.get(address)
        if other is not None and other != session.code:
            self._remove(self._sessions[other])
        self._by_address[address] = session.code
        session.address = address

    def _renew(self, session: _Session, now: float) -> None:
        session.expires = now + self.config.lifetime
        self._sessions.move_to_end(session.code)

    def _unlist(self, session: _Session) -> None:
        codes = self._public.get(session.game)
        if codes is not None and session.code in codes:
            del codes[session.code]
            if not codes:
                del self._public[session.game]

    def _remove(self, session: _Session) -> None:
        del self._sessions[session.code]
        if self._by_address.get(session.address) == session.code:
            del self._by_address[session.address]
        self._unlist(session)
        _count(self._per_source, session.source, -1)

    def _known(self, code: str, secret: bytes) -> Optional[_Session]:
        session = self._sessions.get(code)
        return session if session is not None and hmac.compare_digest(session.secret, secret) else None

    def _refresh(self, message: wire.Refresh, address: Address, now: float) -> list[Output]:
        session = self._known(message.code, message.secret)
        if session is not None and session.address != address:
            # A host whose address changed proves the new one with a cookie: REFRESH has none, so it is
            # told the session is unknown and registers again (keeping its code with its secret).
            session = None
        if session is not None:
            session.players = _int(message.players)
            self._renew(session, now)
        return [Send(wire.Refreshed(message.code, session is not None).encode(), address)]

    def _unregister(self, message: wire.Unregister, address: Address, now: float) -> list[Output]:
        session = self._known(message.code, message.secret)
        if session is not None:
            self._log.debug("unregistered", now, "session %s unregistered", session.code)
            self._remove(session)
        return []

    def _lookup(self, message: wire.Lookup, address: Address, now: float) -> list[Output]:
        if not self._cookie_ok(message, address, now):
            return self._challenge(message, address, now)
        session = self._sessions.get(message.code)
        if not self._charge(source_of(address[0]), 1.0 if session else self.config.miss_cost, now):
            return [Send(wire.NotFound(message.nonce, wire.SLOW_DOWN).encode(), address)]
        if session is None:
            return [Send(wire.NotFound(message.nonce, wire.UNKNOWN_CODE).encode(), address)]
        if len(self._intros) >= self.config.max_introductions:
            del self._intros[next(iter(self._intros))]
        intro_id = self._random(8)
        endpoints = (address, *tuple(message.private)[: wire.MAX_ENDPOINTS - 1])
        self._intros[intro_id] = _Intro(
            session.code, address, endpoints, now + self.config.introduction_lifetime
        )
        peer = wire.Peer(message.nonce, intro_id, (session.address, *session.private))
        return [Send(peer.encode(), address)]

    def _opened(self, message: wire.Opened, address: Address, now: float) -> list[Output]:
        intro = self._intros.get(message.intro)
        if intro is None or intro.player != address or intro.introduced >= self.config.introduces:
            return []
        session = self._sessions.get(intro.code)
        if session is None:
            return []
        intro.introduced += 1
        return [Send(wire.Introduce(message.intro, intro.endpoints).encode(), session.address)]

    def _list(self, message: wire.ListRequest, address: Address, now: float) -> list[Output]:
        if not self._charge(source_of(address[0]), 1.0, now):
            return []
        pages = self._pages(message.game, now)
        sessions = pages[message.page] if message.page < len(pages) else []
        return [Send(wire.Listing(message.nonce, message.page, len(pages), sessions).encode(), address)]

    def _pages(self, game: str, now: float) -> list:
        made = self._listings.get(game)
        if made is None or now - made[0] >= self.config.listing_age:
            codes = (
                self._public.get(game, {}) if game else [c for codes in self._public.values() for c in codes]
            )
            entries = [self._sessions[code].entry() for code in islice(codes, 255 * _PER_PAGE)]
            pages = [entries[i : i + _PER_PAGE] for i in range(0, max(len(entries), 1), _PER_PAGE)]
            if len(self._listings) >= 256:  # a flood of games: make them again
                self._listings.clear()
            made = self._listings[game] = (now, pages)
        return made[1]

    def _charge(self, source: str, cost: float, now: float) -> bool:
        """Take `cost` from `source`'s bucket if it holds the price of a miss; tell whether it did."""
        config = self.config
        bucket = self._buckets.pop(source, None)
        if bucket is None:
            if len(self._buckets) >= config.max_sources:
                del self._buckets[next(iter(self._buckets))]
            bucket = [config.query_burst, now]
        else:
            earned = max(now - bucket[1], 0.0) * config.query_rate
            bucket[0], bucket[1] = min(config.query_burst, bucket[0] + earned), now
        self._buckets[source] = bucket
        if bucket[0] < config.miss_cost:
            self._log.info("slow", now, "source %s is over its rate of requests", source)
            return False
        bucket[0] -= cost
        return True

    # -- channels ------------------------------------------------------------------------------------

    def _channel_request(self, message: wire.ChannelRequest, address: Address, now: float) -> list[Output]:
        channel = self._channel_of.get(message.intro)
        if channel is not None:
            found = self._channels[channel]
            return self._offers(found) if found.player == address and found.ports else []
        intro = self._intros.get(message.intro)
        if intro is None or intro.player != address or intro.code not in self._sessions:
            return []
        source = source_of(address[0])
        if len(self._channels) >= self.config.max_channels or (
            self._channels_of.get(source, 0) >= self.config.channels_per_source
        ):
            self._log.info("channels", now, "refused a channel to %s: no channel left", address)
            return [Send(wire.NotFound(message.intro, wire.NO_CHANNEL).encode(), address)]
        channel, self._next_channel = self._next_channel, self._next_channel + 1
        tokens = [self._random(wire.TOKEN_SIZE), self._random(wire.TOKEN_SIZE)]
        self._channels[channel] = _Channel(message.intro, intro.code, address, source, tokens, now)
        self._channel_of[message.intro] = channel
        _count(self._channels_of, source, 1)
        if self._sweep_at is None:
            self._sweep_at = now + _SWEEP
        return [OpenChannel(channel)]

    def _offers(self, found: _Channel) -> list[Output]:
        assert found.ports is not None
        intro, ports, tokens = found.intro, found.ports, found.tokens
        outputs: list[Output] = [Send(wire.Offer(intro, ports[0], tokens[0]).encode(), found.player)]
        session = self._sessions.get(found.code)
        if session is not None and found.peers[HOST] is None and found.offers < self.config.host_offers:
            found.offers += 1
            outputs.append(Send(wire.Offer(intro, ports[HOST], tokens[HOST]).encode(), session.address))
        return outputs

    def _forget_channel(self, channel: int) -> None:
        found = self._channels.pop(channel)
        del self._channel_of[found.intro]
        _count(self._channels_of, found.source, -1)

    def _on_channel(self, port: tuple, datagram: bytes, address: Address, now: float) -> list[Output]:
        channel, side = port
        found = self._channels.get(channel)
        if found is None:
            return []
        peer = found.peers[side]
        if len(datagram) == _BIND_SIZE and datagram[:5] == _BIND:
            if not hmac.compare_digest(datagram[5:], found.tokens[side]) or peer not in (None, address):
                return []
            found.peers[side], found.last = address, now
            bound = self._spend(found, side, 0, now)
            return [Send(wire.Bound(datagram[5:]).encode(), address, port)] if bound else []
        other = found.peers[1 - side]
        if peer != address or other is None:
            return []
        if not self._spend(found, side, len(datagram), now):
            self._log.debug("capped", now, "channel %d over its rate: dropped a datagram", channel)
            return []
        found.last = now
        return [Send(datagram, other, (channel, 1 - side))]

    def _spend(self, found: _Channel, side: int, size: int, now: float) -> bool:
        """Take `size` bytes (at least one datagram's worth of header) from `side`'s bucket if it can."""
        rate = self.config.channel_rate
        allowance = min(float(rate), found.allowance[side] + max(now - found.stamp[side], 0.0) * rate)
        found.stamp[side] = now
        size = max(size, 28)
        if allowance < size:
            found.allowance[side] = allowance
            return False
        found.allowance[side] = allowance - size
        return True
