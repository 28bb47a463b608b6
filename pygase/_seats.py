"""Players and their seats on a server: player ids, joins waiting for the game's decision, and seats kept
for players who dropped.

Part of the protocol core (no sockets, threads or clocks). Every client the game lets in gets a player id
(1, 2, 3, ... never reused while the server runs) and a secret seat token. A player whose connection times
out keeps its seat for a grace period: a client that joins again showing the token gets the same player
id back. `pygase._server_core.ServerCore` owns one `Seats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = ["Seat", "PendingJoin", "Seats"]


@dataclass
class Seat:
    """One player's place: its id, the token that gets it back, and its connection (None while dropped)."""

    player_id: int
    token: bytes
    address: tuple
    connection: Any = None


@dataclass
class PendingJoin:
    """A client that proved it has the keys and waits for the game to let it in (or not)."""

    player_id: int
    address: tuple
    admitted: Any  # the gate's `Admitted`
    until: float  # given up (silently) if the game has not decided by then
    refusal: Optional[bytes] = None  # once refused: the REJECTED, sent again if the CONFIRM repeats


class Seats:
    """The seats of one server, by player id, by token and (for joins waiting) by address.

    Arguments:
        random_bytes: source of seat tokens
    """

    def __init__(self, random_bytes: Callable[[int], bytes]) -> None:
        self._random_bytes = random_bytes
        self._next_id = 1
        self.by_player: dict[int, Seat] = {}
        self._by_token: dict[bytes, Seat] = {}
        self._held: dict[int, float] = {}  # player id -> when the grace period ends, while it is dropped
        self.pending: dict[tuple, PendingJoin] = {}  # by the joining client's address

    def new_player_id(self) -> int:
        player_id = self._next_id
        self._next_id += 1
        return player_id

    def take(self, player_id: int, address: tuple, connection: Any, token_size: int) -> Seat:
        """Seat a new player."""
        token = self._random_bytes(token_size)
        seat = Seat(player_id, token, address, connection)
        self.by_player[player_id] = seat
        self._by_token[token] = seat
        return seat

    def with_token(self, token: bytes) -> Optional[Seat]:
        """The seat `token` belongs to, if it is still kept."""
        return self._by_token.get(token) if any(token) else None

    def free(self, seat: Seat) -> None:
        """The player left for good."""
        self.by_player.pop(seat.player_id, None)
        self._by_token.pop(seat.token, None)
        self._held.pop(seat.player_id, None)

    def hold(self, seat: Seat, until: float) -> None:
        """The player's connection was lost: keep its seat until `until`."""
        seat.connection = None
        self._held[seat.player_id] = until

    def reseat(self, seat: Seat, connection: Any, address: tuple) -> None:
        """The player is back, on `connection` from `address`."""
        seat.connection, seat.address = connection, address
        self._held.pop(seat.player_id, None)

    def held(self) -> int:
        """How many seats wait for a player who dropped."""
        return len(self._held)

    def expired(self, now: float) -> list:
        """Free and return the seats whose grace period is over."""
        over = [self.by_player[player_id] for player_id, until in self._held.items() if now >= until]
        for seat in over:
            self.free(seat)
        return over

    def pending_expired(self, now: float) -> list:
        """Forget and return the joins that waited too long for a decision (or whose refusal is old)."""
        over = [join for join in self.pending.values() if now >= join.until]
        for join in over:
            del self.pending[join.address]
        return over

    def pending_of(self, player_id: int) -> Optional[PendingJoin]:
        for join in self.pending.values():
            if join.player_id == player_id and join.refusal is None:
                return join
        return None

    def next_deadline(self) -> Optional[float]:
        """When a grace period or a wait for a decision ends next."""
        times = list(self._held.values())
        times.extend(join.until for join in self.pending.values())
        return min(times) if times else None
