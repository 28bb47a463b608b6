"""The server's game state, read-only to game code.

A change made in place to the state a handler or `time_step` gets (`game_state.players[1]["x"] = 5`)
would change the server's copy and never reach a client. So the store keeps its state in dicts and lists
that refuse writes, with an error that says what to do instead, and applies updates to them itself.

Reading costs nothing extra: the containers are `dict` and `list` subclasses that only override the
methods that write. `copy()`, `dict(...)`, `list(...)`, slicing, `+` and `copy.deepcopy` give ordinary
mutable containers, so game code can build its update from a copy.
"""

from __future__ import annotations

import copy
from typing import Any, NoReturn

from pygase._codec import Replace
from pygase.gamestate import TO_DELETE, GameState

__all__ = [
    "READ_ONLY_MESSAGE",
    "ReadOnlyDict",
    "ReadOnlyList",
    "ReadOnlyGameState",
    "freeze",
    "thaw",
    "apply",
]

READ_ONLY_MESSAGE = (
    "the game state is read-only here: a change made to it in place would never be sent to the clients. "
    "Return an update dict instead, e.g. {'players': {player_id: {'x': 5}}} (it is deep-merged into the "
    "state; TO_DELETE removes a key)"
)


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(READ_ONLY_MESSAGE)


class ReadOnlyDict(dict):
    """A dict of the server's game state: reads as a dict, refuses writes (copy it to change it)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return thaw(self)

    def __reduce__(self) -> Any:
        return dict, (thaw(self),)


class ReadOnlyList(list):
    """A list of the server's game state: reads as a list, refuses writes (copy it to change it)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> list:
        return thaw(self)

    def __reduce__(self) -> Any:
        return list, (thaw(self),)


class ReadOnlyGameState(GameState):
    """The store's `GameState`: attributes read as usual, setting or deleting one raises `TypeError`.

    It equals a `GameState` with the same attributes; `copy.deepcopy` gives a plain, mutable `GameState`.
    """

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        _refuse()

    def __delattr__(self, name: str) -> NoReturn:
        _refuse()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GameState):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict) -> GameState:
        plain = GameState.__new__(GameState)
        plain.__dict__.update(thaw(self.__dict__))
        return plain

    def __reduce__(self) -> Any:
        return copy.deepcopy(self).__reduce__()

    @classmethod
    def of(cls, state: GameState) -> ReadOnlyGameState:
        """A read-only copy of `state` (which is left as it is)."""
        frozen = cls.__new__(cls)
        frozen.__dict__.update({name: freeze(value) for name, value in state.__dict__.items()})
        return frozen


_SCALARS = frozenset((type(None), bool, int, float, str))


def freeze(value: Any) -> Any:
    """A read-only copy of a sendable value (dicts and lists copied; bytearrays become bytes)."""
    if isinstance(value, dict):
        return ReadOnlyDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return ReadOnlyList([freeze(item) for item in value])
    if isinstance(value, tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def thaw(value: Any) -> Any:
    """An ordinary mutable deep copy of a (possibly read-only) sendable value."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    if isinstance(value, tuple):
        return tuple(thaw(item) for item in value)
    return value


def _new_dict(update: dict) -> ReadOnlyDict:
    """The dict an update puts where there was none to merge into: deletion markers dropped."""
    return ReadOnlyDict(
        {
            key: _new_dict(item) if isinstance(item, dict) else freeze(item)
            for key, item in update.items()
            if not (type(item) is bytes and item == TO_DELETE)
        }
    )


def apply(target: dict, update: dict) -> None:
    """Deep-merge `update` into the read-only `target` (see `pygase.gamestate`): what it adds is frozen,
    and nothing of `update` is shared with the state."""
    for key, value in update.items():
        if isinstance(value, dict):
            current = target.get(key)
            if type(value) is Replace or not isinstance(current, dict):
                dict.__setitem__(target, key, _new_dict(value))
            elif set(map(type, value.values())) <= _SCALARS:
                dict.update(current, value)  # a leaf, such as one entity's fields: in one go
            else:
                apply(current, value)
        elif type(value) is bytes and value == TO_DELETE:
            dict.pop(target, key, None)
        else:
            dict.__setitem__(target, key, freeze(value))
