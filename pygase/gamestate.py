"""Customize a game state model and apply state updates.

Contents:
- `TO_DELETE`: 4 byte update marker for game state attributes that are to be deleted
- `GameStatus`: enum for the status of the game simulation
- `GameState`: class for serializable custom state data objects
- `GameStateUpdate`: class for serializable objects that express changes to a `GameState` object

Updates are deep-merged: `{"players": {3: {"x": 1.0}}}` changes one field of one player and keeps every
sibling. A dict replaces a value that is not a dict; any other value (numbers, strings, lists ...)
replaces what was there; `TO_DELETE` removes a key at any depth.
"""

from __future__ import annotations

import copy
from typing import Any

from pygase import _codec
from pygase._codec import Replace
from pygase.errors import DecodeError, NotSendableBytesError
from pygase.utils import Comparable, NamedEnum, Sendable, Sqn

__all__ = ["TO_DELETE", "GameStatus", "GameState", "GameStateUpdate"]

#: Unique 4-byte token to mark game state entries for deletion in an update.
TO_DELETE: bytes = bytes.fromhex("d281e5ba")

_RESERVED = ("time_order", "game_status")


class GameStatus(NamedEnum):
    """Enum for the game simulation status.

    - `'Paused'` (1)
    - `'Active'` (2)
    """


GameStatus.register("Paused")
GameStatus.register("Active")


def _is_delete(value: Any) -> bool:
    return type(value) is bytes and value == TO_DELETE


def _concrete(value: dict) -> dict:
    """Copy an update dict into the plain value it stands for: markers removed, replacements unwrapped."""
    result = {}
    for key, item in value.items():
        if _is_delete(item):
            continue
        result[key] = _concrete(item) if isinstance(item, dict) else item
    return result


def _apply(target: dict, update: dict) -> None:
    """Deep-merge `update` into `target` in place (never keeping a reference to a dict of `update`)."""
    for key, value in update.items():
        kind = type(value)
        if kind is dict:
            current = target.get(key)
            if type(current) is dict:
                for item in value.values():
                    item_kind = type(item)
                    if item_kind is dict or item_kind is bytes or item_kind is Replace:
                        _apply(current, value)
                        break
                else:  # a leaf, such as the fields of one entity: merge it in one go
                    current.update(value)
            else:
                target[key] = _concrete(value)
        elif kind is bytes and value == TO_DELETE:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if kind is not Replace and isinstance(current, dict):
                _apply(current, value)
            else:
                target[key] = _concrete(value)
        else:
            target[key] = value


def _combine(earlier: dict, later: dict) -> dict:
    """Return one update dict that has the effect of applying `earlier` and then `later`.

    Neither argument is changed.
    """
    result = dict(earlier)
    for key, value in later.items():
        if isinstance(value, dict) and type(value) is not Replace:
            before = earlier.get(key, _MISSING)
            if before is _MISSING:
                result[key] = value
            elif type(before) is Replace:
                merged = _concrete(before)
                _apply(merged, value)
                result[key] = Replace(merged)
            elif isinstance(before, dict):
                result[key] = _combine(before, value)
            else:
                # The earlier update put a non-dict here, so the state's old dict is gone: replace it.
                result[key] = Replace(_concrete(value))
        else:
            result[key] = value
    return result


_MISSING = object()


def _covers(later: dict, earlier: dict) -> bool:
    """Whether `later` overwrites all that `earlier` does, so that applying `later` alone has the effect
    of applying both (what `_combine(earlier, later)` would build is `later` itself).

    A value covers anything unless it is a plain dict: that merges, so it covers only a plain dict whose
    keys it all covers in turn (a deletion, a scalar or a replaced dict before it must be kept).
    """
    for key, before in earlier.items():
        value = later.get(key, _MISSING)
        if value is _MISSING:
            return False
        merges = isinstance(value, dict) and type(value) is not Replace
        if merges and (type(before) is Replace or not isinstance(before, dict) or not _covers(value, before)):
            return False
    return True


def _extended(delta: GameStateUpdate, update: GameStateUpdate) -> GameStateUpdate:
    """`delta` followed by the newer `update`, as one update: `update` itself if it covers `delta` (as
    when every tick sets the same fields), so that its encoding can be reused."""
    if _covers(update.__dict__, delta.__dict__):  # (both have a time_order: a scalar, covered)
        return update
    return _combined(delta, update)


def _combined(earlier: GameStateUpdate, later: GameStateUpdate) -> GameStateUpdate:
    """Combine two updates cheaply; the result may share values with its operands (internal use)."""
    combined = GameStateUpdate.__new__(GameStateUpdate)
    combined.__dict__.update(_combine(earlier._changes(), later._changes()))
    combined.time_order = Sqn(later.time_order)
    return combined


class GameState(Sendable, Comparable):
    """Customize a serializable game state model.

    Contains game state information that will be synchronized between the server and the clients.
    Via `pygase.utils.Sendable` its instances will be serialized using the msgpack protocol and must only
    contain attributes of type `str`, `bytes`, `Sqn`, `int`, `float`, `bool`, `None` as well as lists,
    tuples or dicts of such (dict keys are `str`, `int` or `bytes`; nesting at most 32 levels deep).
    The constructor checks this and raises `TypeError` naming the path of a bad value, e.g.
    ``grid[(1, 2)]`` for a tuple key.

    Arguments:
        time_order: current time order number of the game state, higher means more recent
        game_status: `GameStatus` enum value that describes whether or not the game loop is running;
            0 (the default) means `GameStatus.get("Paused")`
        **kwargs: custom game state attributes (they can also be assigned later)

    Attributes:
        game_status (int): see constructor argument of same name
        time_order (Sqn): see constructor argument of same name

    Raises:
        TypeError: if an attribute's value cannot be sent intact

    `GameState` instances mainly consist of custom attributes that make up the game state.
    `state + update` returns a new state with a newer update applied (the operands are unchanged).
    """

    def __init__(self, time_order: int = 0, game_status: int = 0, **kwargs: Any) -> None:
        if kwargs:
            _codec.check_sendable(kwargs, where="GameState attribute cannot be sent: ")
        self.__dict__.update(kwargs)
        self.game_status = game_status or GameStatus.get("Paused")
        self.time_order = Sqn(time_order)

    def is_paused(self) -> bool:
        """Return True if game is paused."""
        return bool(self.game_status == GameStatus.get("Paused"))

    def __repr__(self) -> str:
        attributes = ", ".join(f"{key}={value!r}" for key, value in self.__dict__.items())
        return f"GameState({attributes})"

    def __lt__(self, other: Any) -> bool:
        return bool(self.time_order < other.time_order)

    def __gt__(self, other: Any) -> bool:
        return bool(self.time_order > other.time_order)

    def __add__(self, other: Any) -> GameState:
        if not isinstance(other, GameStateUpdate):
            return NotImplemented
        result = GameState.__new__(GameState)
        result.__dict__.update(copy.deepcopy(self.__dict__))
        copy.deepcopy(other)._apply_to(result)  # the result shares nothing with either operand
        return result

    @classmethod
    def from_bytes(cls, bytepack: bytes) -> GameState:
        """Deserialize a game state, checking that `time_order` and `game_status` are valid.

        Raises:
            pygase.errors.NotSendableBytesError: if the bytes do not hold a game state (a `TypeError`
                and a `ValueError`)
        """
        state = super().from_bytes(bytepack)
        state.time_order = _read_time_order(state.__dict__, NotSendableBytesError)
        status = state.__dict__.get("game_status", 0)
        if not isinstance(status, int) or isinstance(status, bool):
            raise NotSendableBytesError("game_status must be an int")
        state.game_status = status or GameStatus.get("Paused")
        return state


def _read_time_order(data: dict, error_class: type[DecodeError] = DecodeError) -> Sqn:
    time_order = data.get("time_order")
    if not isinstance(time_order, int) or isinstance(time_order, bool):
        raise error_class("time_order must be an int")
    try:
        return Sqn(time_order)
    except ValueError as error:
        raise error_class(f"invalid time_order: {error}") from None


class GameStateUpdate(Sendable, Comparable):
    """Update a `GameState` object.

    Contains a set of changes to carry out on a `GameState`.
    The server keeps a `time_order` counter and labels all updates in ascending order.

    Attributes of a `GameStateUpdate` object represent new values of `GameState` attributes.
    To remove game state attributes just assign `TO_DELETE` to it in the update.

    Use the `+` operator to combine updates (`older + newer` and `newer + older` both give one update
    with the effect of applying them in time order) or to update a game state (`game_state + update`).
    `+` never changes its operands; it returns a new object. `sum(updates)` combines a list of updates.

    Arguments:
        time_order: the time order up to which the update reaches
        **kwargs: game state attributes to be updated

    Attributes:
        time_order (Sqn): see constructor argument of same name

    `GameStateUpdate` instances mainly consist of custom game state attributes to update.
    """

    def __init__(self, time_order: int, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)
        self.time_order = Sqn(time_order)

    def __repr__(self) -> str:
        attributes = ", ".join(f"{key}={value!r}" for key, value in self.__dict__.items())
        return f"GameStateUpdate({attributes})"

    @classmethod
    def from_bytes(cls, bytepack: bytes) -> GameStateUpdate:
        """Extend `Sendable.from_bytes` to make sure time_order is of type `Sqn`.

        Raises:
            pygase.errors.NotSendableBytesError: if the bytes do not hold an update (a `TypeError` and a
                `ValueError`)
        """
        update = super().from_bytes(bytepack)
        update.time_order = _read_time_order(update.__dict__, NotSendableBytesError)
        return update

    @classmethod
    def _from_dict(cls, data: Any) -> GameStateUpdate:
        """Build an update from a decoded map, raising `ValueError` for any other shape."""
        if not isinstance(data, dict):
            raise DecodeError("a game state update must be a map")
        if 0 in data and "time_order" not in data:  # the time order's key on the wire (see `_store`)
            data["time_order"] = data.pop(0)
        for key in data:
            if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
                raise DecodeError(f"invalid game state attribute name: {key!r}")
        time_order = _read_time_order(data)
        update = cls.__new__(cls)
        update.__dict__.update(data)
        update.time_order = time_order
        return update

    def _changes(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key != "time_order"}

    def _apply_to(self, game_state: GameState) -> None:
        """Apply this update to `game_state` in place if it is newer; internal and cheap."""
        if self.time_order > game_state.time_order:
            _apply(game_state.__dict__, self.__dict__)  # time_order too: a leaf, copied as it is

    def __lt__(self, other: Any) -> bool:
        return bool(self.time_order < other.time_order)

    def __gt__(self, other: Any) -> bool:
        return bool(self.time_order > other.time_order)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, GameStateUpdate):
            # On a tie of time orders `other` counts as the later one.
            earlier, later = (other, self) if self.time_order > other.time_order else (self, other)
            return copy.deepcopy(_combined(earlier, later))  # shares nothing with its operands
        if isinstance(other, GameState):
            return other + self
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, int) and other == 0:
            return self  # so that sum() works on lists of updates
        if isinstance(other, GameState):
            return other + self
        return NotImplemented
