"""One client's connection on the server, without the socket: what the client lacks, and getting it there.

Part of the protocol core (no sockets, threads or clocks). Every package to a client carries what it lacks
since the state it last reported, as a delta or the whole state; an update too large for a package
travels in parts that are resent until they arrive (`pygase._transfer` decides which part goes when).
`pygase._server_core.ServerCore` keeps one `ServerConnection` per client;
`pygase.connection.ServerConnection` is the public name.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Optional

from pygase import _codec
from pygase._connection import DISCONNECTED, STATE_PART_EVENT, Connection
from pygase._crypto import AuthenticationError
from pygase._event_order import PART_SIZE, HeldBudget
from pygase._packages import ClientPackage, Header, Package, ServerPackage, _server_tail
from pygase._reliability import sequences_named
from pygase._transfer import PARTS_HELD_EVENT, PartsSender, parse_report
from pygase.event import Event
from pygase.gamestate import GameState
from pygase.utils import Sqn

logger = logging.getLogger("pygase.connection")


class ServerConnection(Connection):
    """The protocol of one client's connection on the server; its arguments and attributes are those
    of the public `pygase.connection.ServerConnection`, which documents them.

    What the client lacks goes along with every package; a larger update travels in parts that are
    resent until they arrive, and the next update waits until it has.
    """

    _incoming_package = ClientPackage
    _outgoing_fields = ServerPackage._body_fields
    heartbeat_interval = 0.1
    #: Updates that encode to more bytes than this travel in parts.
    inline_state_limit = 900
    #: Bytes a second of this client's packages the server decodes (each counts its size and 64 bytes
    #: more), in bursts of up to twice that. A package beyond it is dropped before anything in it is
    #: decoded, as if it had been lost on the way (events sent with retries come again). An honest client
    #: sends a few KB a second; its large events arrive at about this rate. Decoding costs at most about
    #: 0.7 µs a byte, so this bounds the CPU one client can take to about 5 % of a core.
    max_receive_rate = 64 * 1024
    #: Bytes a second the server sends this client, in bursts of up to twice that: the most one client
    #: can make the server send, whatever it reports (a whole state goes at most this fast).
    max_send_rate = 1024 * 1024
    #: Seconds a client that completed the handshake has to send its first package, or it is dropped
    #: (so handshakes alone do not hold the server's places).
    join_timeout = 3.0

    def __init__(
        self,
        remote_address: tuple,
        event_handler: Any,
        game_state_store: Any,
        last_client_time_order: Sqn,
        event_wire: Any = None,
        session: Optional[int] = None,
    ) -> None:
        super().__init__(remote_address, event_handler, event_wire)
        self.game_state_store = game_state_store
        self.last_client_time_order = Sqn(last_client_time_order)
        #: a random number that tells this server session's packages from an earlier one's
        self.session = secrets.randbits(32) if session is None else session
        #: time order of the newest state sent to this client
        self._sent_time_order: Optional[Sqn] = None
        self._transfer_id = 0
        self._transfer: Optional[_Transfer] = None  # a large update on its way in parts
        self._pin: Optional[tuple[Sqn, object]] = None  # (time order, token) held in the store's cache
        #: the client put together the whole state of a store still at time order 0, which it reports
        #: as 0 like no state at all: it needs only the updates since
        self._initial_state_held = False
        #: the id datagrams name this connection by (the server core gives it)
        self.connection_id = bytes(8)
        #: the cookie of the handshake that made (or last keyed) this connection, and the WELCOME sent
        self.join_cookie = b""
        self.welcome = b""
        #: the client's player id and the token that gets its seat back (the server core gives them)
        self.player_id = 0
        self.seat_token = bytes(16)
        self._probe: Optional[tuple[tuple, bytes, float]] = None  # (address, token, when) of a path challenge
        self._receive_budget = TokenBucket()
        self._send_budget = TokenBucket()
        self._send_blocked_until = float("-inf")  # sending waits for its budget until then
        self._join_deadline: Optional[float] = None  # until the client's first package
        self._whole_state_at = float("-inf")  # when the last whole state went out in parts
        self._refused_logged = float("-inf")
        # (session, the bytes after an update in a package, after a whole state): see `_plain_tail`
        self._session_tail: tuple = (None, b"", b"")

    def _receive_package(self, package: Package, now: float) -> list:
        assert isinstance(package, ClientPackage)
        self._join_deadline = None
        events = super()._receive_package(package, now)
        if package.header.sequence == self.remote_sequence:  # the newest package says what the client has
            self.last_client_time_order = package.time_order
            if int(package.time_order) != 0:
                self._initial_state_held = False  # it moved on: a 0 from it means no state again
            if self._pin is not None and package.time_order > self._pin[0]:
                self._release_pin()
        transfer = self._transfer
        kept = []
        for event in events:
            if event.type != PARTS_HELD_EVENT:
                kept.append(event)
                continue
            report = parse_report(event.handler_args, Sqn._max_sequence)
            if report is None:
                continue
            transfer_id, first, bitmap, late = report
            if late:
                self._reliability.acknowledge_late(late)
            if transfer is not None:
                if transfer_id == transfer.transfer_id:
                    transfer.sender.report(first, bitmap, now)
                if late:
                    transfer.sender.package_acked(late, now)
        if transfer is None:
            return kept
        header = package.header
        ack, bits = int(header.ack), header._bits
        if ack:  # (after the reports, which say more: a client that does not send them is served too)
            transfer.sender.package_acked([ack, *sequences_named(ack, bits)], now)
        if transfer.sender.remaining == 0 or (
            int(transfer.time_order) != 0 and package.time_order >= transfer.time_order
        ):
            self._transfer_done(transfer)
        return kept

    def _release_pin(self) -> None:
        if self._pin is not None:
            unpin = getattr(self.game_state_store, "_unpin", None)
            if unpin is not None:
                unpin(self._pin[1])
            self._pin = None

    def _close(self) -> None:
        super()._close()
        self._release_pin()

    def _ack_callback_args(self) -> tuple:
        return (self,)

    # ---- what the server core asks of a connection ---------------------------------------------------

    def accept(self, now: float, max_event_size: int, held_budget: Optional[HeldBudget] = None) -> None:
        """The client completed the handshake at `now`; it may send events up to `max_event_size`, and
        the events it makes us hold back count against `held_budget` (all clients' together) too."""
        self._inbound.max_event_size = max_event_size
        self._inbound.share(held_budget)
        self._start(now)
        self._last_received = now
        self._join_deadline = now + self.join_timeout

    @property
    def never_heard(self) -> bool:
        """Whether the client sent no package since it joined (it may never have got our WELCOME)."""
        return self._join_deadline is not None

    def admit(self, size: int, now: float) -> bool:
        """Whether to decode a package of `size` bytes from the client now (see `max_receive_rate`)."""
        if self._receive_budget.spend(size + _PACKAGE_WORK, now, self.max_receive_rate):
            return True
        if now >= self._refused_logged + 5.0:
            self._refused_logged = now
            logger.warning(
                "client %s sends more than %d bytes a second: dropping its packages undecoded",
                self.remote_address,
                self.max_receive_rate,
            )
        return False

    def handle_timer(self, now: float) -> None:
        if self._join_deadline is not None and now >= self._join_deadline and self.status != DISCONNECTED:
            logger.info(
                "client %s sent no package within %g s of joining: dropped",
                self.remote_address,
                self.join_timeout,
            )
            self._close()
            return
        super().handle_timer(now)

    def get_timer(self) -> Optional[float]:
        timer = super().get_timer()
        if timer is None:
            return None
        if self._join_deadline is not None and self._join_deadline < timer:
            timer = self._join_deadline
        # nothing goes out before the send budget allows
        return timer if timer >= self._send_blocked_until else self._send_blocked_until

    def _seal(self, datagram: bytes, records: list, now: float, rest: bool = False) -> bytes:
        sealed = super()._seal(datagram, records, now, rest)
        rate = self.max_send_rate
        level = self._send_budget.charge(len(sealed), now, rate)
        if level <= 0:
            self._send_blocked_until = now - level / rate
        return sealed

    def key(self, cipher: Any) -> None:
        """Seal and open with `cipher` from now on (the handshake agreed on new keys)."""
        self._cipher = cipher

    def open(self, datagram: bytes) -> bytes:
        """What a sealed datagram from the client holds (`AuthenticationError` if it is not one); call
        `remember()` if it is accepted, so that a copy of it is refused as a replay."""
        cipher = self._cipher
        if cipher is None:
            raise AuthenticationError("a package for a connection without keys")
        return cipher.open(datagram, False, False)

    def remember(self) -> None:
        """The datagram opened last was accepted (see `open`)."""
        if self._cipher is not None:
            self._cipher.remember()

    def seal(self, plaintext: bytes) -> bytes:
        """A sealed control message to the client (no package: no sequence number)."""
        assert self._cipher is not None
        return self._cipher.seal(plaintext)

    #: Shortest time in seconds between two path challenges (see `ServerCore._path_proven`).
    probe_interval = 0.5

    def path_token(self, address: tuple) -> Optional[bytes]:
        """The token a path challenge to `address` asked for, if one was sent there."""
        probe = self._probe
        return probe[1] if probe is not None and probe[0] == address else None

    def may_probe(self, now: float) -> bool:
        return self._probe is None or now >= self._probe[2] + self.probe_interval

    def start_probe(self, address: tuple, token: bytes, now: float) -> None:
        self._probe = (address, token, now)

    def newest_opened(self) -> bool:
        """Whether the datagram opened last is the newest the client sent so far."""
        return self._cipher is not None and self._cipher.newest

    def receive_package(self, package: ClientPackage, now: float) -> list:
        """Take a package from the client; return its new events, control events included."""
        return self._receive_package(package, now)

    def acknowledge_at_once(self, now: float) -> None:
        """Send the next package (and the acks it carries) at once: the client is leaving."""
        self._ack_due_at = now

    def close(self) -> None:
        """End the connection: what is still in flight is given up, its callbacks reported."""
        self._close()

    def bare_ack(self, package: ClientPackage) -> bytes:
        """A package that only acknowledges `package` (for a client that already left)."""
        self.local_sequence = self.local_sequence + 1
        header = Header._from_ints(int(self.local_sequence), int(package.header.sequence), 0)
        reply = ServerPackage(header, None)
        reply.session = self.session
        datagram = reply.to_datagram()
        return self._cipher.seal(datagram) if self._cipher is not None else datagram

    def notice(self, event: Event, now: float) -> bytes:
        """A package that carries `event` once, at once (see `Connection._notice_datagram`)."""
        return self._notice_datagram(event, now)

    def has_outputs(self) -> bool:
        return bool(self._outputs)

    def settled(self) -> bool:
        return (
            super().settled()
            and self._transfer is None
            and self._sent_time_order == _store_time_order(self.game_state_store)
        )

    # ---- the parts of a large update (see `pygase._transfer`) -----------------------------------------

    def _parts_due(self, now: float) -> bool:
        transfer = self._transfer
        if transfer is None or self._join_deadline is not None:
            return False  # (a client not heard from since it joined may not have the keys to open them)
        ready = transfer.sender.ready_at()
        return ready is not None and ready <= now

    def _parts_deadline(self) -> Optional[float]:
        transfer = self._transfer
        if transfer is None or self._join_deadline is not None:
            return None
        sender = transfer.sender
        ready = sender.ready_at()
        lost = sender.deadline(self._recovery.retransmission_timeout())
        if ready is None or (lost is not None and lost < ready):
            return lost
        return ready

    def _parts_timer(self, now: float) -> None:
        if self._transfer is not None:
            self._transfer.sender.detect_losses(now, self._recovery.retransmission_timeout())

    def _add_parts(self, package: Package, datagram: bytes, now: float) -> bytes:
        transfer = self._transfer
        if transfer is None or self._join_deadline is not None:
            return datagram
        sender = transfer.sender
        sequence = int(package.header.sequence)
        while True:
            ready = sender.ready_at()
            if ready is None or ready > now:
                return datagram
            index = sender.next_part()
            package._add_entry(transfer.part(index), 0)
            candidate = package.to_datagram()
            if len(candidate) > self.mtu and len(package._entries) > 1:
                package._entries.pop()
                package._datagram = None
                return package.to_datagram()
            sender.sent(index, sequence, now)
            datagram = candidate
            if len(datagram) + PART_SIZE > self.mtu:
                return datagram

    def datagrams_to_send(self, now: float) -> list:
        """Return the datagrams that are due now; the one sent most goes the short way (`_usual_datagram`)."""
        usual = self._usual_datagram(now)
        return [usual] if usual is not None else super().datagrams_to_send(now)

    def _usual_datagram(self, now: float) -> Optional[bytes]:
        """The package a server sends most, built without the general path's steps (it runs for every
        client after every tick): a newer state that fits in a package, with nothing else due (no events,
        no parts) and nothing holding it back. None, with nothing changed, in every other case."""
        if (
            self._transfer is not None
            or self._cipher is None
            or self._last_sent is None
            or self.status == DISCONNECTED
            or self._reliability.outbox
            or now < self._send_blocked_until
            or self._recovery.quality != "good"
            or self._session_tail[0] != self.session
        ):
            return None
        store = self.game_state_store
        if self._sent_time_order == _store_time_order(store):
            return None
        time_order, update_bytes, full_state = _store_update_since(
            store, self.last_client_time_order, self._initial_state_held, self.player_id
        )
        if update_bytes is None or full_state or len(update_bytes) > self.inline_state_limit:
            return None
        self._sent_time_order = time_order
        return self._seal(
            self._plain_datagram(now, update_bytes + self._session_tail[1], True), [], now, True
        )

    def _send_due(self, now: float) -> bool:
        if now < self._send_blocked_until:
            return False  # the send budget is spent (see `max_send_rate`)
        if super()._send_due(now):
            return True
        # A newer state than this client was sent goes out at once (as far as congestion allows).
        return (
            self._transfer is None
            and self._sent_time_order != _store_time_order(self.game_state_store)
            and now >= self._recovery.earliest_send(self._last_sent)
        )

    def _make_package(self, header: Header, now: float) -> Package:
        package = ServerPackage(header, None)
        package.session = self.session
        if self._transfer is None:
            inline = self._inline_update(now)
            if inline is not None:
                package._update_bytes, package.full_state = inline
        return package

    def _plain_tail(self, now: float) -> Optional[bytes]:
        if self._session_tail[0] != self.session:
            session = self.session
            self._session_tail = (
                session,
                _server_tail(b"", False, session),
                _server_tail(b"", True, session),
            )
        if self._transfer is None:
            inline = self._inline_update(now)
            if self._transfer is not None:
                return None  # the update starts a transfer: this package carries its first parts
            if inline is not None:  # (the update, then the full state flag and the session)
                return inline[0] + self._session_tail[2 if inline[1] else 1]
        return b"\xc0" + self._session_tail[1]  # no update

    def _inline_update(self, now: float) -> Optional[tuple[bytes, bool]]:
        """What the client lacks, as (encoded update, full state flag) if it fits in this package.

        Every package carries what the client lacks, measured from what it says it has, so a lost package
        costs nothing but the wait for the next one. An update too large for a package starts a transfer
        in parts instead (and None is returned), as does nothing to send.
        """
        time_order, update_bytes, full_state = _store_update_since(
            self.game_state_store, self.last_client_time_order, self._initial_state_held, self.player_id
        )
        self._sent_time_order = time_order
        if update_bytes is None:
            return None
        if len(update_bytes) > self.inline_state_limit:
            if full_state:
                # A client that got a whole state says again that it lacks one: it gets another at most
                # once a round trip (an honest one got the first, or asks again after its loss).
                if now < self._whole_state_at + self._recovery.retransmission_timeout():
                    return None
                self._whole_state_at = now
            self._start_transfer(time_order, update_bytes, full_state, now)
            return None
        return update_bytes, full_state

    def _start_transfer(self, time_order: Sqn, update_bytes: bytes, full_state: bool, now: float) -> None:
        self._transfer_id += 1
        pin = getattr(self.game_state_store, "_pin", None)
        if pin is not None:
            # The next delta builds on this state, however long the transfer takes: keep it cached.
            self._release_pin()
            self._pin = (time_order, pin(time_order))
        transfer = self._transfer = _Transfer(self._transfer_id, time_order, update_bytes, full_state, now)
        logger.debug(
            "sending a state of %d bytes to %s in %d parts",
            len(update_bytes),
            self.remote_address,
            transfer.sender.count,
        )

    def _transfer_done(self, transfer: _Transfer) -> None:
        """Every part of `transfer` arrived (or the client reports a state at least as new)."""
        if self._transfer is not transfer:
            return
        self._transfer = None
        if transfer.time_order > self.last_client_time_order:
            self.last_client_time_order = transfer.time_order
        elif int(transfer.time_order) == 0 and transfer.full_state and transfer.sender.remaining == 0:
            self._initial_state_held = True  # (a part arrives whole and is applied at once)


_PACKAGE_WORK = 64  # what decoding a package costs beyond its bytes, in bytes


class TokenBucket:
    """Units that come at a rate and are saved up to twice that rate (a second's burst on top of a
    second's rate); spending may run into debt, which is paid back before anything more is allowed.

    No clock: `now` comes in, and the rate with it, so a changed setting takes effect at once.
    """

    __slots__ = ("level", "_at")

    def __init__(self) -> None:
        self.level: Optional[float] = None  # full until first used
        self._at = 0.0

    def charge(self, units: float, now: float, rate: float) -> float:
        """Take `units` whatever is left; return the level after."""
        # (it runs for every datagram sent and received: comparisons instead of min() and max())
        level = self.level
        if level is None:
            level = 2 * rate
        else:
            if now > self._at:
                level += (now - self._at) * rate
            if level > 2 * rate:
                level = 2 * rate
        self._at = now
        level -= units
        self.level = level
        return level

    def spend(self, units: float, now: float, rate: float) -> bool:
        """Take `units` if anything is left (the level may go below zero then); False if nothing is."""
        if self.charge(0, now, rate) <= 0:
            return False
        self.level -= units  # type: ignore[operator]
        return True


class _Transfer:
    """A large update on its way to one client in parts (resent until they arrive)."""

    __slots__ = ("transfer_id", "time_order", "update_bytes", "full_state", "sender")

    def __init__(
        self, transfer_id: int, time_order: Sqn, update_bytes: bytes, full_state: bool, now: float
    ) -> None:
        self.transfer_id = transfer_id
        self.time_order = time_order
        self.update_bytes = update_bytes
        self.full_state = full_state
        self.sender = PartsSender((len(update_bytes) + PART_SIZE - 1) // PART_SIZE, now)

    def part(self, index: int) -> Event:
        """The event that carries part `index`."""
        chunk = self.update_bytes[index * PART_SIZE : (index + 1) * PART_SIZE]
        return Event(STATE_PART_EVENT, self.transfer_id, index, self.sender.count, self.full_state, chunk)


def _store_state(store: Any) -> GameState:
    getter = getattr(store, "get_game_state", None) or store.get_gamestate
    return getter()


def _store_time_order(store: Any) -> Sqn:
    fast = getattr(store, "_time_order", None)
    return fast() if fast is not None else _store_state(store).time_order


def _store_update_since(
    store: Any, time_order: Sqn, initial_state_held: bool = False, player_id: int = 0
) -> tuple:
    """(current time order, bytes of what a client at `time_order` lacks or None, full state flag).

    A `GameStateStore` answers this itself, with caching; any other store that has the documented
    methods (`get_game_state` or `get_gamestate`, `get_update_cache`) is asked through those. A client
    at time order 0 has no state yet (unless `initial_state_held`) and gets the whole state.
    """
    fast = getattr(store, "_encoded_update_since", None)
    if fast is not None:
        return fast(time_order, initial_state_held=initial_state_held, player_id=player_id)
    state = _store_state(store)
    current = state.time_order
    held = int(time_order) != 0 or initial_state_held
    if time_order == current and held:
        return current, None, False
    cache = list(store.get_update_cache())
    for index in range(len(cache) - 1, -1, -1):
        if held and cache[index].time_order == time_order and cache[index + 1 :]:
            combined = cache[index + 1]
            for update in cache[index + 2 :]:
                combined = combined + update
            return combined.time_order, combined.to_bytes(), False
    public = {key: value for key, value in state.__dict__.items() if not key.startswith("_")}
    return current, _codec.pack(public), True
