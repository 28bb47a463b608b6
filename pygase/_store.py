"""The game state store: the server's copy of the game state and the updates that clients lack.

`GameStateStore` (public as `pygase.backend.GameStateStore`) keeps the state read-only (see
`pygase._readonly`), caches the latest updates, and encodes for each client what it lacks: the newest
update, a delta merged from the cached updates (remembered for clients that lag behind), or the whole
state. Cache pins keep the updates that a client receiving a large state builds on.
"""

from __future__ import annotations

import difflib
import logging
import threading
from typing import Callable, Iterable, Optional

from pygase import _codec, _readonly
from pygase._readonly import ReadOnlyGameState
from pygase.errors import UnsendableValueError
from pygase.gamestate import TO_DELETE, GameState, GameStateUpdate, _extended
from pygase.utils import Sqn

__all__ = ["GameStateStore"]

logger = logging.getLogger("pygase.backend")  # the logger it always had: logging settings keep working

_PINNED_CACHE_LIMIT = 30  # pins may keep at most this many times the usual update cache (a minute at 50 Hz)
_DELTAS_KEPT = 64  # deltas remembered for clients that lag behind, by the base they build on


class GameStateStore:
    """Provide access to a game state and manage state updates.

    Arguments:
        initial_game_state: state of the game before the simulation begins
        single_precision_floats: send floats with 32 bits instead of 64 (4 bytes less each; about seven
            significant digits arrive, which is plenty for positions on a screen)
        private_attributes: names of state attributes that hold something for each player, keyed by
            player id (a card hand, what a player's units see): player P receives only its own entry
            (`hands[P]`), nobody else's ever leaves the server toward it. The rest of each update is
            still encoded once for all clients. Each must be in the initial state (an empty dict if no
            player has anything yet): a misspelled name is an error, not a secret sent to everyone.

    The store keeps the latest updates so that it can send each client exactly what it lacks; a client
    that fell further behind than the cache reaches gets the whole state.
    """

    _update_cache_size = 100

    def __init__(
        self,
        initial_game_state: Optional[GameState] = None,
        single_precision_floats: bool = False,
        private_attributes: Iterable[str] = (),
    ) -> None:
        if isinstance(private_attributes, str):
            raise TypeError("private_attributes is a list of attribute names, e.g. ['hands']")
        self.single_precision_floats = single_precision_floats
        self.private_attributes = frozenset(private_attributes)
        _check_names(dict.fromkeys(self.private_attributes))
        source = initial_game_state if initial_game_state is not None else GameState()
        _check_names(source.__dict__)
        self._check_private(source.__dict__, "the initial game state")
        missing = sorted(self.private_attributes.difference(source.__dict__))
        if missing:  # (a misspelled name would leave the real attribute shared with everyone)
            close = difflib.get_close_matches(missing[0], list(source.__dict__), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"private attribute {missing[0]!r} is not in the initial game state{hint}: start it "
                f"there, as an empty dict if no player has anything yet"
            )
        _codec.check_sendable(source.__dict__, where="the initial game state cannot be sent: ")
        # The store works on its own, read-only copy: the caller's object stays as it was, and game code
        # that changes the state in place (which would never be sent) gets an error saying so.
        state = ReadOnlyGameState.of(source)
        self._game_state = state
        # As in PyGaSe 0.3.1 the state keeps its time order (0 by default, so that the first update is
        # `GameStateUpdate(1, ...)`) and the cache starts with an empty `GameStateUpdate(0)`. A client at
        # time order 0 has no state yet: it always gets the whole state (see `_encoded_update_since`).
        self._game_state_update_cache: list[GameStateUpdate] = [GameStateUpdate(0)]
        self._cache_base = state.time_order  # the time order the oldest cached update builds on
        self._lock = threading.RLock()
        self._encoded: dict[int, tuple] = {}
        # base time order -> (what a client there lacks, as of which time order), most recent last
        self._deltas: dict[int, tuple[GameStateUpdate, Sqn]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._pins: dict[object, Sqn] = {}
        self._latest: tuple[Optional[GameStateUpdate], bytes] = (None, b"")  # newest update, encoded
        self._latest_base = -1  # the time order the newest update builds on

    def get_update_cache(self) -> list:
        """Return the latest state updates."""
        with self._lock:
            return list(self._game_state_update_cache)

    def get_game_state(self) -> GameState:
        """Return the current game state.

        It is read-only: setting an attribute, or changing one of its dicts or lists in place, raises
        `TypeError` (such a change would never reach the clients; push an update instead). Copies of its
        parts (`dict(...)`, `.copy()`, `copy.deepcopy`) are ordinary mutable values.
        """
        return self._game_state

    get_gamestate = get_game_state

    def push_update(self, update: GameStateUpdate) -> None:
        """Push a new state update to the update cache.

        This method will usually be called by whatever is progressing the game state, usually a
        `GameStateMachine`. An update that is not newer than the state is ignored.

        Raises:
            TypeError: if the update holds a value that cannot be sent intact (the message names its path,
                e.g. ``grid[(1, 2)]``); the state is left as it was
            ValueError: if an attribute name is not a Python identifier (or starts with "_")
        """
        _check_names(update.__dict__)
        if self.private_attributes:
            self._check_private(update.__dict__, "the update")
        with self._lock:
            state = self._game_state
            # Every value must arrive before anything changes: planning the merge checks the map keys and
            # nesting that the receivers refuse (all names are public: checked above) and leaves out what
            # the state already holds; packing what is left checks the types.
            try:
                merge: Optional[_readonly.Merge] = _readonly.Merge(state.__dict__, update.__dict__)
            except _readonly.Refused:
                merge = None
            encoded = None if merge is None else self._encode_sent(merge.sent)
            if merge is None or encoded is None:
                problem = _codec.describe_problem(update.__dict__) or "it cannot be sent"
                raise UnsendableValueError(f"the update cannot be sent: {problem}")
            if not update.time_order > state.time_order:
                logger.debug("ignoring update %d: the state is at %d", update.time_order, state.time_order)
                return
            previous = state.time_order
            merge.execute()
            update = GameStateUpdate.__new__(GameStateUpdate)  # what changed: what the cache keeps
            update.__dict__ = merge.sent
            cache = self._game_state_update_cache
            cache.append(update)
            excess = len(cache) - self._update_cache_size
            if self._pins and len(cache) > _PINNED_CACHE_LIMIT * self._update_cache_size:
                # A transfer that never ends (a client that never acknowledges) must not hold the cache
                # forever: its client will get the whole state again instead.
                logger.warning("dropping %d cache pins held too long", len(self._pins))
                self._pins.clear()
            if excess > 0 and self._pins:
                # Keep what pinned time orders need: clients receiving a large state build on it.
                oldest = min(self._pins.values(), key=lambda t: int(t - update.time_order))
                while excess > 0 and cache[0].time_order <= oldest:
                    self._evicted(cache.pop(0))
                    excess -= 1
            elif excess > 0:
                self._evicted(cache[excess - 1])
                del cache[:excess]
            self._encoded = {int(previous): (update.time_order, encoded, False)}
            self._latest = (update, encoded)
            self._latest_base = int(previous)
        for listener in list(self._listeners):
            listener()

    def _encode_sent(self, sent: dict) -> Optional[bytes]:
        """The bytes of what an update changes (None if a value cannot be sent)."""
        private = self.private_attributes.intersection(sent)
        try:
            if private:  # what everyone gets is packed without them; they are packed just to check them
                _codec.pack({name: sent[name] for name in private})
            return self._encode(sent)
        except TypeError:
            return None

    def _evicted(self, update: GameStateUpdate) -> None:
        """`update` left the cache: the oldest cached update now builds on it (the empty first entry,
        `GameStateUpdate(0)`, builds on nothing and changes nothing)."""
        if int(update.time_order) != 0:
            self._cache_base = update.time_order

    def _pin(self, time_order: Sqn) -> object:
        """Keep the updates since `time_order` in the cache until `_unpin`; return the pin's token."""
        token = object()
        with self._lock:
            self._pins[token] = Sqn(time_order)
        return token

    def _unpin(self, token: object) -> None:
        with self._lock:
            self._pins.pop(token, None)

    def _time_order(self) -> Sqn:
        return self._game_state.time_order

    def _encoded_update_since(
        self, time_order: Sqn, initial_state_held: bool = False, player_id: int = 0
    ) -> tuple:
        """Return (current time order, bytes of what a client at `time_order` lacks, full state flag).

        The bytes are None if the client is up to date. Results are cached until the next update, so
        clients at the same time order share one encoding; the client of `player_id` also gets its own
        entries of the private attributes, spliced into that encoding.

        A client at time order 0 has no state yet and gets the whole state, even from a store that is
        still at time order 0 (its initial state), unless `initial_state_held`: the caller knows that
        the client holds the state at time order 0 (it received it whole), so it only lacks the updates.
        """
        with self._lock:
            current = self._game_state.time_order
            # What the client holds, as a key: its time order, or -1 for nothing at all.
            held = int(time_order) if int(time_order) != 0 or initial_state_held else -1
            if held == int(current):
                return current, None, False
            cached = self._encoded.get(held)
            if cached is not None:
                return (
                    self._with_private(cached, time_order, player_id) if self.private_attributes else cached
                )
            if len(self._encoded) > 64:  # clients at many different time orders (a paused game)
                self._encoded.clear()
            delta = None if held < 0 else self._delta_for(time_order, current)
            if delta is None:
                result = (current, self._encode_state(), True)
            elif delta is self._latest[0]:  # the newest update covers all the client lacks
                result = (current, self._latest[1], False)
            else:
                result = (current, self._encode(delta.__dict__), False)
            self._encoded[held] = result
            return self._with_private(result, time_order, player_id) if self.private_attributes else result

    def _check_private(self, attributes: dict, what: str) -> None:
        """Refuse a private attribute that is not keyed by player ids: no player would get any of it."""
        for name in self.private_attributes.intersection(attributes):
            value = attributes[name]
            if isinstance(value, dict):
                bad = [key for key in value if not isinstance(key, int) or isinstance(key, bool)]
                if not bad:
                    continue
                problem = f"its key {bad[0]!r} is not a player id (an int)"
            elif value == TO_DELETE:
                continue
            else:
                problem = f"it is a {type(value).__name__}"
            raise UnsendableValueError(
                f"{what} cannot be sent: {name!r} is a private attribute, a dict keyed by player id "
                f"(each player gets only its own entry), but {problem}"
            )

    def _with_private(self, shared: tuple, time_order: Sqn, player_id: int) -> tuple:
        """`shared` (an `_encoded_update_since` result) with the player's own private entries added."""
        current, encoded, full_state = shared
        if full_state:
            source = self._game_state.__dict__
        elif self._latest[0] is not None and int(time_order) == self._latest_base:
            source = self._latest[0].__dict__
        else:
            known = self._deltas.get(int(time_order))
            source = known[0].__dict__ if known is not None else {}
        part = {}
        for name in self.private_attributes:
            if name not in source:
                continue
            value = source[name]
            if isinstance(value, dict):
                part[name] = {player_id: value[player_id]} if player_id in value else {}
                if not part[name] and not full_state:
                    del part[name]
            else:
                part[name] = value  # (a deletion of the whole attribute, say)
        if not part:
            return shared
        return current, _codec.merged_maps(encoded, self._encode(part, private=True)), full_state

    def _delta_for(self, time_order: Sqn, current: Sqn) -> Optional[GameStateUpdate]:
        """What a client at `time_order` lacks, brought up to date from the last time it was asked for.

        A client that lags asks for the same base again and again; extending the delta it got last time
        by the few updates since costs a merge per new update instead of one per update it lacks.
        """
        base = int(time_order)
        known = self._deltas.pop(base, None)
        delta = None
        if known is not None:
            delta, as_of = known
            newer = self._updates_after(as_of)
            if newer is None:
                delta = None  # fell out of the cache: start again from the base
            else:
                for update in newer:
                    delta = _extended(delta, update)
        if delta is None:
            delta = self._delta_since(time_order)
        if delta is not None:
            self._deltas[base] = (delta, current)  # most recently asked for last
            while len(self._deltas) > _DELTAS_KEPT:
                del self._deltas[next(iter(self._deltas))]
        return delta

    def _updates_after(self, time_order: Sqn) -> Optional[list]:
        """The cached updates newer than `time_order` (None if it is not in the cache)."""
        cache = self._game_state_update_cache
        if time_order == self._cache_base:
            return cache[1:] if cache and int(cache[0].time_order) == 0 else cache  # (not the empty first)
        for index in range(len(cache) - 1, -1, -1):
            if cache[index].time_order == time_order:
                return cache[index + 1 :]
        return None

    def _delta_since(self, time_order: Sqn) -> Optional[GameStateUpdate]:
        newer = self._updates_after(time_order)
        if not newer:
            return None
        combined = newer[0]
        for update in newer[1:]:
            combined = _extended(combined, update)
        return combined

    def _encode(self, attributes: dict, private: bool = False) -> bytes:
        hidden = () if private else self.private_attributes
        public = {
            key: value for key, value in attributes.items() if not key.startswith("_") and key not in hidden
        }
        return _codec.pack(public if private else _wire(public), single_float=self.single_precision_floats)

    def _encode_state(self) -> bytes:
        # The state holds read-only dicts and lists, which the general packer would copy one by one.
        state = self._game_state.__dict__
        if self.private_attributes:
            state = {key: value for key, value in state.items() if key not in self.private_attributes}
        return _codec.pack_state(_wire(state), single_float=self.single_precision_floats)

    def _add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)


def _wire(attributes: dict) -> dict:
    """An update's or state's attributes as they go on the wire: the time order under the key 0 (one
    byte instead of eleven in every state datagram; no attribute name can be an int)."""
    wire: dict = {0: attributes["time_order"]} if "time_order" in attributes else {}
    wire.update(attributes)
    wire.pop("time_order", None)
    return wire


def _check_names(attributes: dict) -> None:
    for name in attributes:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ValueError(
                f"game state attribute names are identifiers not starting with '_', got {name!r}"
            )
