"""A host's side of the rendezvous protocol (see `pygase._rendezvous`): a room code from a relay, and
players let through the host's router. Bytes, addresses and time in; datagrams and a room code out.

The host registers from its game socket and refreshes the registration every `REFRESH_INTERVAL`, which
also keeps its router's mapping toward the relay open, so that the relay can reach it. When a player has
opened its own router, the relay introduces it and the host punches at every endpoint of the player's;
punches from a player it was introduced to are answered. When punching failed, the relay offers a channel
and the host binds its side of it (the relay then forwards the player's datagrams from the channel's port).
A relay that forgets the session (it restarted) is asked for the same code again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Optional

from pygase import _rendezvous as rv
from pygase._endpoints import same_endpoint
from pygase._ratelimit import RateLimitedLog
from pygase.utils import _address_text

__all__ = ["HostRendezvous", "REFRESH_INTERVAL"]

logger = logging.getLogger("pygase.relay")
_throttled = RateLimitedLog(logger)

#: Seconds between REFRESHes of a registration (and so the longest a router's mapping must live).
REFRESH_INTERVAL = 5.0
#: Seconds between REGISTERs while the relay does not answer, at first; it doubles up to `RETRY_MAX`.
RETRY_FIRST, RETRY_MAX = 0.5, 8.0
#: Seconds without an answer from the relay before the host registers again from scratch.
SILENCE_LIMIT = 3 * REFRESH_INTERVAL
#: Delays after an introduction at which the host punches (again) at the player's endpoints.
PUNCH_DELAYS = (0.0, 0.1, 0.25, 0.5, 1.0)
#: Seconds an introduction is remembered (punches from its player answered), and most remembered.
INTRO_LIFETIME, MAX_INTROS = 30.0, 256
#: Seconds between BINDs on a channel until BOUND, and for how long.
BIND_INTERVAL, BIND_PATIENCE = 0.2, 5.0


@dataclass
class _Intro:
    endpoints: tuple
    until: float
    punches_due: list


@dataclass
class _Channel:
    address: tuple
    token: bytes
    next_bind: float
    until: float


class HostRendezvous:
    """Keep a session registered with the relay at `relay` (an address of the game socket's family).

    Arguments:
        relay: the relay's address
        private: the host's LAN endpoints (its game port on each LAN address)
        info: game, name, max_players and password (bool), for public listings
        public: whether the relay lists the session
        random: source of random bytes (tests pass their own)
    """

    def __init__(
        self,
        relay: tuple,
        private: tuple = (),
        info: Optional[dict] = None,
        public: bool = False,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.relay = relay
        self.private = tuple(private)[: rv.MAX_ENDPOINTS - 1]
        self.info = dict(info or {})
        self.public = public
        self.players = 0
        #: The room code, once the relay gave one (kept while re-registering).
        self.code: Optional[str] = None
        #: The host's public endpoint as the relay sees it.
        self.public_endpoint: Optional[tuple] = None
        self._random = random
        self._secret = bytes(rv.SECRET_SIZE)
        self._nonce = random(rv.NONCE_SIZE)
        self._cookie = bytes(rv.COOKIE_SIZE)
        self._registered = False
        self._next_register: Optional[float] = None
        self._retry = RETRY_FIRST
        self._next_refresh: Optional[float] = None
        self._heard_at = 0.0
        self._intros: dict[bytes, _Intro] = {}
        self._channels: dict[bytes, _Channel] = {}  # token -> our side of a relay channel
        self._outbox: list[tuple[bytes, tuple]] = []
        self._new_codes: list[str] = []
        self._stopped = False

    @property
    def registered(self) -> bool:
        """Whether the relay knows the session now."""
        return self._registered

    def start(self, now: float) -> None:
        """Register (the first REGISTER goes out with the next `datagrams_to_send`)."""
        self._heard_at = now
        self._next_register = now

    def stop(self) -> None:
        """Tell the relay the session ended; nothing is sent after that UNREGISTER."""
        if self._registered and self.code is not None:
            self._outbox.append((rv.Unregister(self.code, self._secret).encode(), self.relay))
        self._registered = False
        self._stopped = True

    def new_codes(self) -> list[str]:
        """The room codes the relay gave since the last call (a new one only if the relay lost the old)."""
        codes, self._new_codes = self._new_codes, []
        return codes

    # ---- input -----------------------------------------------------------------------------------------

    def receive(self, datagram: bytes, address: tuple, now: float) -> None:
        """Take a rendezvous datagram that arrived on the game socket.

        Raises:
            ValueError: if it is malformed (the caller drops it)
        """
        if self._stopped:
            return
        message = rv.parse(datagram)
        if isinstance(message, rv.Punch):
            self._punched(message, address)
        elif isinstance(message, rv.Bound):
            channel = self._channels.get(message.token)
            if channel is not None and same_endpoint(address, channel.address):
                channel.next_bind = channel.until = float("inf")  # bound: nothing more to send
        elif not same_endpoint(address, self.relay):
            _throttled.debug("stray", now, "dropped a rendezvous %s from %s", type(message).__name__, address)
        else:
            self._from_relay(message, now)

    def _punched(self, message: rv.Punch, address: tuple) -> None:
        if message.intro not in self._intros:
            return  # not a player the relay introduced: never answered, so nobody can use us to reflect
        if not message.answer:
            self._outbox.append((rv.Punch(message.intro, answer=True).encode(), address))

    def _from_relay(self, message: rv.Message, now: float) -> None:
        self._heard_at = now
        if isinstance(message, rv.Challenge):
            if message.nonce == self._nonce and not self._registered:
                self._cookie = message.cookie
                self._next_register = now
        elif isinstance(message, rv.Registered):
            if message.nonce == self._nonce:
                self._registered_as(message, now)
        elif isinstance(message, rv.NotFound):
            if message.nonce == self._nonce and not self._registered:  # a full or busy relay: try later
                _throttled.warning(
                    "refused", now, "the relay at %s refused the registration: %s", *self._where_why(message)
                )
        elif isinstance(message, rv.Refreshed):
            if not message.known and message.code == self.code and self._registered:
                logger.info("the relay at %s forgot room %s (restarted?); registering again", *self._where())
                self._register_again(now)
        elif isinstance(message, rv.Introduce):
            self._introduced(message, now)
        elif isinstance(message, rv.Offer) and message.token not in self._channels:
            if len(self._channels) >= MAX_INTROS:  # (the relay's word is taken even without INTRODUCE)
                del self._channels[min(self._channels, key=lambda token: self._channels[token].until)]
            address = _with_port(self.relay, message.port)
            self._channels[message.token] = _Channel(address, message.token, now, now + BIND_PATIENCE)

    def _where_why(self, message: rv.NotFound) -> tuple[str, str]:
        return _address_text(self.relay), message.text

    def _where(self) -> tuple[str, Optional[str]]:
        return _address_text(self.relay), self.code

    def _registered_as(self, message: rv.Registered, now: float) -> None:
        fresh = message.code != self.code
        self.code, self._secret, self.public_endpoint = message.code, message.secret, message.public
        self._registered = True
        self._next_register = None
        self._retry = RETRY_FIRST
        self._next_refresh = now + min(REFRESH_INTERVAL, max(1.0, message.lifetime / 3))
        self._nonce = self._random(rv.NONCE_SIZE)
        if fresh:
            self._new_codes.append(message.code)
        logger.info(
            "room code %s at the relay %s (public address %s)",
            message.code,
            _address_text(self.relay),
            _address_text(message.public),
        )

    def _register_again(self, now: float) -> None:
        self._registered = False
        self._cookie = bytes(rv.COOKIE_SIZE)
        self._nonce = self._random(rv.NONCE_SIZE)
        self._next_refresh = None
        self._next_register = now
        self._retry = RETRY_FIRST

    def _introduced(self, message: rv.Introduce, now: float) -> None:
        intro = self._intros.get(message.intro)
        if intro is None:
            if len(self._intros) >= MAX_INTROS:
                del self._intros[min(self._intros, key=lambda key: self._intros[key].until)]
            intro = self._intros[message.intro] = _Intro(message.endpoints, 0.0, [])
            logger.info(
                "a player asks to join room %s from %s", self.code, _address_text(message.endpoints[0])
            )
        intro.endpoints = message.endpoints
        intro.until = now + INTRO_LIFETIME
        intro.punches_due = [now + delay for delay in PUNCH_DELAYS]

    # ---- output ----------------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple]]:
        """What to send now from the game socket, as (datagram, address)."""
        self.handle_timer(now)
        out, self._outbox = self._outbox, []
        return out

    def handle_timer(self, now: float) -> None:
        """Do what is due: (re-)register, refresh, punch, bind; forget old introductions."""
        if self._stopped:
            return
        if self._registered and now - self._heard_at > SILENCE_LIMIT:
            _throttled.warning(
                "silent relay", now, "the relay at %s stopped answering", _address_text(self.relay)
            )
            self._register_again(now)
        if self._next_register is not None and now >= self._next_register:
            self._outbox.append((self._register_message(), self.relay))
            self._next_register = now + self._retry
            self._retry = min(RETRY_MAX, self._retry * 2)
            if now - self._heard_at > SILENCE_LIMIT:
                _throttled.warning(
                    "no relay",
                    now,
                    "the relay at %s does not answer; still trying",
                    _address_text(self.relay),
                )
        if self._registered and self._next_refresh is not None and now >= self._next_refresh:
            assert self.code is not None
            self._outbox.append((rv.Refresh(self.code, self._secret, self.players).encode(), self.relay))
            self._next_refresh = now + REFRESH_INTERVAL
        for key, intro in list(self._intros.items()):
            if now > intro.until:
                del self._intros[key]
                continue
            if intro.punches_due and now >= intro.punches_due[0]:
                intro.punches_due = [due for due in intro.punches_due if due > now]
                punch = rv.Punch(key).encode()
                self._outbox.extend((punch, endpoint) for endpoint in intro.endpoints)
        for token, channel in list(self._channels.items()):
            if now > channel.until:
                del self._channels[token]
            elif now >= channel.next_bind:
                self._outbox.append((rv.Bind(token).encode(), channel.address))
                channel.next_bind = now + BIND_INTERVAL

    def _register_message(self) -> bytes:
        info = {**self.info, "players": self.players}
        message = rv.Register(
            self._nonce, self._cookie, self.code or "", self._secret, self.public, self.private, info
        )
        return message.encode()

    def get_timer(self) -> Optional[float]:
        """When `handle_timer` has something to do next (None: nothing)."""
        if self._stopped:
            return None
        times = [self._next_register, self._next_refresh]
        if self._registered:
            times.append(self._heard_at + SILENCE_LIMIT + 0.001)
        for intro in self._intros.values():
            times.append(intro.punches_due[0] if intro.punches_due else intro.until)
        for channel in self._channels.values():
            times.append(min(channel.next_bind, channel.until))
        due = [time for time in times if time is not None and time != float("inf")]
        return min(due) if due else None


def _with_port(address: tuple, port: int) -> tuple:
    return (address[0], port, *address[2:])
