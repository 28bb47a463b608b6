"""A player's side of the rendezvous protocol (see `pygase._rendezvous`): from a room code to a route to
the host, direct or through the relay. Bytes, addresses and time in; datagrams and a route out.

The player looks the code up (after the relay's cookie round trip) and learns the host's endpoints. It
punches at the host's public endpoint with a low IP TTL first (`LOW_TTL`): those punches open its own
router toward the host and die before they reach the host's, whose router would otherwise remember them
and give the host's own punches another port. It punches its LAN endpoints at full strength, tells the
relay its router is open (OPENED), and the relay has the host punch back. The first punch (or answer)
that arrives names the route. After `LOW_TTL_PERIOD` it punches at full TTL too (for paths where a low
TTL dies too early, such as a second NAT). If nothing arrives within `PUNCH_PATIENCE`, it asks the relay
for a channel and binds its side; the route is then the channel's port on the relay.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Optional

from pygase import _rendezvous as rv
from pygase._endpoints import plain_address, same_endpoint
from pygase.utils import _address_text

__all__ = ["PlayerRendezvous", "Route", "LOW_TTL", "PUNCH_PATIENCE"]

logger = logging.getLogger("pygase.relay")

#: IP TTL of the first punches at the host's public endpoint: past the player's own router, not further.
LOW_TTL = 2
#: Seconds of low-TTL punches before full-TTL ones join them.
LOW_TTL_PERIOD = 0.8
#: Seconds between rounds of punches (and OPENEDs to the relay).
PUNCH_INTERVAL = 0.1
#: Seconds of punching before the player asks the relay for a channel.
PUNCH_PATIENCE = 2.0
#: Seconds between repeats of a request to the relay that was not answered.
RETRY_INTERVAL = 0.4
#: Seconds the relay may take to answer a LOOKUP, and to set up a channel, before the join fails.
LOOKUP_PATIENCE, CHANNEL_PATIENCE = 5.0, 5.0


@dataclass(frozen=True)
class Route:
    """Where the player's game datagrams go: the host (`relayed` False) or a relay channel's port."""

    address: tuple
    relayed: bool


class PlayerRendezvous:
    """Find a route to the session with room `code` through the relay at `relay`.

    Arguments:
        relay: the relay's address (of the player's socket's family)
        code: the room code, canonical (`pygase._room_codes.normalize_code`)
        private: the player's LAN endpoints (its socket's port on each LAN address)
        now: the time the search starts
        random: source of random bytes (tests pass their own)

    `route` is set once a route is found; `failure` (an exception to raise) if there is none.
    """

    def __init__(
        self,
        relay: tuple,
        code: str,
        private: tuple = (),
        now: float = 0.0,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.relay = relay
        self.code = code
        self.private = tuple(private)[: rv.MAX_ENDPOINTS - 1]
        self.route: Optional[Route] = None
        self.failure: Optional[Exception] = None
        self._nonce = random(rv.NONCE_SIZE)
        self._cookie = bytes(rv.COOKIE_SIZE)
        self._started = now
        self._phase = "lookup"
        self._next_send = now
        self._intro = b""
        self._host: tuple = ()
        self._punching_since = 0.0
        self._channel: Optional[rv.Offer] = None
        self._channel_since = 0.0
        self._outbox: list[tuple[bytes, tuple, Optional[int]]] = []

    @property
    def done(self) -> bool:
        """Whether the search ended (a route, or a failure)."""
        return self.route is not None or self.failure is not None

    def receive(self, datagram: bytes, address: tuple, now: float) -> None:
        """Take a datagram that arrived on the player's socket.

        Raises:
            ValueError: if it is malformed (the caller drops it)
        """
        if self.done:
            return
        message = rv.parse(datagram)
        if isinstance(message, rv.Punch):
            if self._phase in ("punch", "channel") and message.intro == self._intro:
                if not message.answer:
                    self._outbox.append((rv.Punch(self._intro, answer=True).encode(), address, None))
                self._found(Route(address, relayed=False))
        elif isinstance(message, rv.Bound):
            channel = self._channel
            if (
                channel is not None
                and message.token == channel.token
                and same_endpoint(address, self._channel_address())
            ):
                self._found(Route(self._channel_address(), relayed=True))
        elif same_endpoint(address, self.relay):
            self._from_relay(message, now)

    def _from_relay(self, message: rv.Message, now: float) -> None:
        if self._phase == "lookup" and getattr(message, "nonce", None) == self._nonce:
            if isinstance(message, rv.Challenge):
                self._cookie = message.cookie
                self._next_send = now
            elif isinstance(message, rv.NotFound):
                self.failure = ConnectionRefusedError(message.text)
            elif isinstance(message, rv.Peer):
                self._intro, self._host = message.intro, message.endpoints
                self._phase, self._punching_since, self._next_send = "punch", now, now
                logger.info(
                    "room %s is hosted at %s; punching through the routers",
                    self.code,
                    _address_text(self._host[0]),
                )
        elif isinstance(message, rv.NotFound) and self._phase == "channel" and message.nonce == self._intro:
            self.failure = ConnectionRefusedError(f"no punch got through, and {message.text}")
        elif isinstance(message, rv.Offer) and self._wants(message):
            self._channel, self._next_send = message, now

    def _wants(self, offer: rv.Offer) -> bool:
        """Whether an offer is the channel asked for (the relay answers repeated requests alike)."""
        return self._phase == "channel" and self._channel is None and offer.intro == self._intro

    def _channel_address(self) -> tuple:
        assert self._channel is not None
        return (self.relay[0], self._channel.port, *self.relay[2:])

    def _found(self, route: Route) -> None:
        self.route = route = Route((plain_address(str(route.address[0])), route.address[1]), route.relayed)
        how = "through the relay" if route.relayed else "directly"
        logger.info("room %s: talking to the host %s, at %s", self.code, how, _address_text(route.address))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple, Optional[int]]]:
        """What to send now, as (datagram, address, IP TTL or None for the default)."""
        self.handle_timer(now)
        out, self._outbox = self._outbox, []
        return out

    def handle_timer(self, now: float) -> None:
        """Send what is due; give up when the relay or the host cannot be reached in time."""
        if self.done:
            return
        if self._phase == "lookup" and now - self._started > LOOKUP_PATIENCE:
            self.failure = TimeoutError(f"the relay at {_address_text(self.relay)} does not answer")
            return
        if self._phase == "punch" and now - self._punching_since > PUNCH_PATIENCE:
            logger.info("room %s: no punch got through; asking the relay to forward", self.code)
            self._phase, self._channel_since, self._next_send = "channel", now, now
        if self._phase == "channel" and now - self._channel_since > CHANNEL_PATIENCE:
            self.failure = TimeoutError(
                "neither a direct route to the host nor the relay's channel worked (did the host stop?)"
            )
            return
        if now < self._next_send:
            return
        if self._phase == "lookup":
            lookup = rv.Lookup(self._nonce, self.code, self._cookie, self.private)
            self._outbox.append((lookup.encode(), self.relay, None))
            self._next_send = now + RETRY_INTERVAL
        elif self._phase == "punch":
            self._punch(now)
            self._next_send = now + PUNCH_INTERVAL
        elif self._channel is None:
            self._outbox.append((rv.ChannelRequest(self._intro).encode(), self.relay, None))
            self._next_send = now + RETRY_INTERVAL
        else:
            self._outbox.append((rv.Bind(self._channel.token).encode(), self._channel_address(), None))
            self._next_send = now + PUNCH_INTERVAL * 2

    def _punch(self, now: float) -> None:
        punch = rv.Punch(self._intro).encode()
        public, *private = self._host
        low = now - self._punching_since < LOW_TTL_PERIOD
        self._outbox.append((punch, public, LOW_TTL if low else None))
        self._outbox.extend((punch, endpoint, None) for endpoint in private)
        self._outbox.append((rv.Opened(self._intro).encode(), self.relay, None))

    def get_timer(self) -> Optional[float]:
        """When `handle_timer` has something to do next (None: the search is over)."""
        if self.done:
            return None
        if self._phase == "lookup":
            return min(self._next_send, self._started + LOOKUP_PATIENCE + 0.001)
        if self._phase == "punch":
            return min(self._next_send, self._punching_since + PUNCH_PATIENCE + 0.001)
        return min(self._next_send, self._channel_since + CHANNEL_PATIENCE + 0.001)
