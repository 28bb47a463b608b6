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
from typing import Any, NoReturn, Optional

from pygase._codec import MAX_DEPTH, PLAIN_KEYS, Replace, keys_arrive
from pygase.errors import ReadOnlyStateError
from pygase.gamestate import TO_DELETE, GameState

__all__ = [
    "READ_ONLY_MESSAGE",
    "ReadOnlyDict",
    "ReadOnlyList",
    "ReadOnlyGameState",
    "Merge",
    "Refused",
    "freeze",
    "thaw",
]

READ_ONLY_MESSAGE = (
    "the game state is read-only here: a change made to it in place would never be sent to the clients. "
    "Return an update dict instead, e.g. {'players': {player_id: {'x': 5}}} (it is deep-merged into the "
    "state; TO_DELETE removes a key)"
)


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise ReadOnlyStateError(READ_ONLY_MESSAGE)


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
_ONLY_DICTS = frozenset((dict,))


class Refused(Exception):
    """An update holds something the receivers would refuse (a map key or nesting depth); internal."""


def _check_keys(value: dict, depth: int) -> None:
    if depth > MAX_DEPTH or not keys_arrive(value):
        raise Refused


def freeze(value: Any, depth: int = 0) -> Any:
    """A read-only copy of a sendable value (dicts and lists copied; bytearrays become bytes).

    Raises:
        Refused: for a map key or a nesting depth the receivers refuse (`depth` is that of `value`)
    """
    if isinstance(value, dict):
        _check_keys(value, depth)
        return ReadOnlyDict({key: freeze(item, depth + 1) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        if depth > MAX_DEPTH:
            raise Refused
        items = [freeze(item, depth + 1) for item in value]
        return ReadOnlyList(items) if isinstance(value, list) else tuple(items)
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


_MISSING = object()


def _changed(current: dict, update: dict) -> dict:
    """The items of a dict of scalars that `current` does not hold (equal and of the same type)."""
    get = current.get
    return {k: v for k, v in update.items() if (c := get(k, _MISSING)) != v or type(c) is not type(v)}


def _new_dict(update: dict, depth: int) -> ReadOnlyDict:
    """The dict an update puts where there was none to merge into: deletion markers dropped."""
    _check_keys(update, depth)
    return ReadOnlyDict(
        {
            key: _new_dict(item, depth + 1) if isinstance(item, dict) else freeze(item, depth + 1)
            for key, item in update.items()
            if not (type(item) is bytes and item == TO_DELETE)
        }
    )


class Merge:
    """What deep-merging an update into the read-only state does, worked out without changing it.

    Planning checks what `pack` lets through and the receivers refuse (map keys, nesting depth) on the
    way, so a refused update changes nothing, and the state is walked once. `execute()` then only
    updates dicts and deletes keys. What the update adds is frozen; nothing of it is shared with the
    state. Updates are deep-merged as `pygase.gamestate` describes.

    A value the state already holds (equal and of the same type: an `int` 1 does not stand for a `float`
    1.0 or `True`) is left out: `sent` is the update without them, all that changes and so all that the
    clients need. Lists, tuples and `Replace` dicts count as changed whenever they are in the update.

    Raises:
        Refused: from the constructor, if the update holds a key or nesting the receivers refuse
    """

    __slots__ = ("_targets", "_changes", "_deletions", "sent")

    def __init__(self, target: dict, update: dict) -> None:
        # State dicts and what to set in each, in two lists: a tuple per entity would be an object for the
        # garbage collector to count and scan, every tick.
        self._targets: list[dict] = []
        self._changes: list[dict] = []
        self._deletions: list[tuple[dict, Any]] = []  # (state dict, key to remove)
        #: the update without what the state already holds (a new dict; its values are the update's own)
        self.sent: dict = self._plan(target, update, 0)

    def _plan(self, target: dict, update: dict, depth: int) -> dict:
        """Plan merging `update` into `target`; return `update` without what `target` already holds."""
        _check_keys(update, depth)
        inner = depth + 1
        sent = self._plan_leaves(target, update, inner)
        if sent is not None:
            return sent
        sent = {}
        new: dict = {}
        for key, value in update.items():
            if isinstance(value, dict):
                current = target.get(key)
                if type(value) is Replace or not isinstance(current, dict):
                    new[key] = _new_dict(value, inner)
                    sent[key] = value
                elif _SCALARS.issuperset(map(type, value.values())):
                    _check_keys(value, inner)
                    changed = _changed(current, value)
                    if changed:
                        self._targets.append(current)  # a leaf, such as one entity's fields
                        self._changes.append(changed)
                        sent[key] = changed
                else:
                    part = self._plan(current, value, inner)
                    if part:
                        sent[key] = part
            elif type(value) is bytes and value == TO_DELETE:
                self._deletions.append((target, key))
                sent[key] = value
            else:
                current = target.get(key, _MISSING)
                if type(current) is type(value) and type(value) in _SCALARS and current == value:
                    continue  # (checked for `pack` when it was set)
                new[key] = freeze(value, inner)
                sent[key] = value
        if new:
            self._targets.append(target)
            self._changes.append(new)
        return sent

    def _plan_leaves(self, target: dict, update: dict, depth: int) -> Optional[dict]:
        """Plan a dict of leaf dicts (entities and their fields of scalars, the usual tick) if `update` is
        one; return what is sent of it, or None if it is not one (the general path plans it then).

        One pass over the fields compares each with the state and checks only what changed: a key the
        state has, and a value equal to one it holds, were checked when they were set.
        """
        if depth > MAX_DEPTH or not _ONLY_DICTS.issuperset(map(type, update.values())):
            return None
        sent = {}
        targets: list[dict] = []
        changes: list[dict] = []
        new = {}
        scalars, keys, missing = _SCALARS, PLAIN_KEYS, _MISSING
        for key, value in update.items():
            current = target.get(key)
            if type(current) is not ReadOnlyDict:
                new[key] = value
                continue
            changed = {}
            for field, item in value.items():  # (a loop, not a comprehension: this runs for every field)
                try:
                    held = current[field]
                except KeyError:
                    held = missing
                if held != item or type(held) is not type(item):
                    if type(item) not in scalars or (held is missing and type(field) not in keys):
                        return None
                    changed[field] = item
            if changed:
                targets.append(current)
                changes.append(changed)
                sent[key] = changed
        if new:
            targets.append(target)
            changes.append({key: _new_dict(value, depth) for key, value in new.items()})
            sent.update(new)
        self._targets += targets
        self._changes += changes
        return sent

    def execute(self) -> None:
        """Carry the merge out (each key of the update is touched once, so the order does not matter)."""
        update, pop = dict.update, dict.pop
        for target, values in zip(self._targets, self._changes):
            update(target, values)
        for target, key in self._deletions:
            pop(target, key, None)
