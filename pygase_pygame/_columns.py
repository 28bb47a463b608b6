"""Snapshots of an entity collection as columns of numbers, and the column math of interpolating them.

A `Snapshot` keeps the interpolated fields of the entities of one state update as one list per field
(`columns`), row `i` being the entity `keys.keys[i]`. Consecutive snapshots of the same entities share
their `Keys`, so interpolating between them is a list comprehension per field instead of a loop over
entities and fields with dict look-ups; writing the result into the game's entity dicts is done with
C-level `map`s where the entities' fields are all floats (or all ints). Entities that appear, disappear
or have fields that are not numbers take slower paths with the same results.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import repeat
from operator import setitem
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Tuple, cast

__all__ = ["Keys", "Snapshot", "capture", "align", "lerp", "first_values", "set_row", "write", "number"]

#: one field's values, row by row; None where the field is missing or not a number
Column = List[Optional[float]]

# (typed for `map`, which cannot pick among the overloads of these)
_get: Callable[..., Any] = dict.get
_set: Callable[[Any, Any, Any], None] = setitem
_round: Callable[[Any], int] = round


def number(value: Any) -> Optional[float]:
    """Return `value` as a finite float, or None if it is not a number (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return result if math.isfinite(result) else None


class Keys:
    """The entity keys of a snapshot, in row order, with their row numbers (made when first needed)."""

    __slots__ = ("keys", "_index")

    def __init__(self, keys: Tuple[Any, ...]) -> None:
        self.keys = keys
        self._index: Optional[Dict[Any, int]] = None

    @property
    def index(self) -> Dict[Any, int]:
        """key -> row"""
        index = self._index
        if index is None:  # (two threads may both build it: the same dict, no harm)
            index = self._index = dict(zip(self.keys, range(len(self.keys))))
        return index


class Snapshot:
    """The interpolated fields of one state update: `columns[field][row]`, never changed once made.

    `complete` says that no value is None (every entity has every field as a number).
    """

    __slots__ = ("time", "keys", "columns", "complete")

    def __init__(self, time: float, keys: Keys, columns: Tuple[Column, ...], complete: bool) -> None:
        self.time = time
        self.keys = keys
        self.columns = columns
        self.complete = complete

    def row(self, key: Any) -> Optional[Tuple[Optional[float], ...]]:
        """The values of the entity `key`, or None if it is not in this snapshot."""
        row = self.keys.index.get(key)
        return None if row is None else tuple(column[row] for column in self.columns)


def _all(values: List[Any], kind: type) -> bool:
    """Whether every one of `values` is of type `kind` exactly (checked at C speed)."""
    return list(map(type, values)).count(kind) == len(values)


def _column(raw: List[Any]) -> Tuple[Column, bool]:
    """The numbers of `raw` as floats, None where not a number; and whether there is no None."""
    # Finite floats, the common case, are checked at C speed: a sum of finite floats that overflows is
    # the only false alarm, and the slow path gets that right too.
    if _all(raw, float) and math.isfinite(sum(raw)):
        return raw, True
    column = list(map(number, raw))
    return column, None not in column


def capture(
    entities: Any, fields: Tuple[str, ...], previous: Optional[Keys]
) -> Tuple[Keys, Tuple[Column, ...], bool]:
    """Return the keys and columns of the entities (a dict of key -> entity dict) with a numeric field,
    and whether the columns are complete (no None).

    Entities that are not dicts, or have none of `fields` as a number, are left out. If the keys are
    those of `previous`, `previous` itself is returned as the keys (so it is shared).
    """
    keys: Sequence[Any] = ()
    columns: List[Column] = [[] for _ in fields]
    complete = True
    if isinstance(entities, dict) and entities:
        keys = list(entities)
        values = list(entities.values())
        try:
            raws = [list(map(_get, values, repeat(field))) for field in fields]
        except TypeError:  # (from `dict.get`) some are not dicts, so not entities: leave them out
            pairs = [(key, entity) for key, entity in zip(keys, values) if isinstance(entity, dict)]
            keys = [key for key, _ in pairs]
            raws = [[entity.get(field) for _, entity in pairs] for field in fields]
        made = [_column(raw) for raw in raws]
        columns = [column for column, _ in made]
        complete = all(full for _, full in made)
        if not any(full for _, full in made):  # some entity may have no number at all
            rows = [row for row in range(len(keys)) if any(column[row] is not None for column in columns)]
            if len(rows) < len(keys):
                keys = [keys[row] for row in rows]
                columns = [[column[row] for row in rows] for column in columns]
    keys = tuple(keys)
    if previous is not None and previous.keys == keys:
        return previous, tuple(columns), complete
    return Keys(keys), tuple(columns), complete


def align(snapshot: Snapshot, keys: Keys) -> Tuple[Tuple[Column, ...], bool, List[int]]:
    """Return the snapshot's columns in the row order of `keys`, whether they are complete (no None),
    and the rows whose key the snapshot does not have (all None there)."""
    if snapshot.keys is keys:
        return snapshot.columns, snapshot.complete, []
    rows = list(map(snapshot.keys.index.get, keys.keys))
    if None not in rows:
        found = cast(List[int], rows)
        return (
            tuple([list(map(column.__getitem__, found)) for column in snapshot.columns]),
            snapshot.complete,
            [],
        )
    missing = [i for i, row in enumerate(rows) if row is None]
    columns = tuple([[column[r] if r is not None else None for r in rows] for column in snapshot.columns])
    return columns, False, missing


def lerp(a: Column, b: Column, fraction: float, complete: bool) -> Column:
    """Interpolate row by row (`complete`: no None on either side); where one side is None, take the
    other (b first)."""
    if complete:
        return [va + (vb - va) * fraction for va, vb in zip(a, b)]  # type: ignore[operator]
    return [
        va + (vb - va) * fraction if va is not None and vb is not None else (vb if vb is not None else va)
        for va, vb in zip(a, b)
    ]


def first_values(snapshots: Sequence[Snapshot], start: int, key: Any) -> Tuple[Optional[float], ...]:
    """The values of `key` in the first of `snapshots[start:]` that has it (the newest one must)."""
    for snapshot in snapshots[start:]:
        values = snapshot.row(key)
        if values is not None:
            return values
    raise AssertionError("unreachable: the key is in the newest snapshot")  # pragma: no cover


def set_row(columns: Sequence[Column], row: int, values: Sequence[Optional[float]]) -> None:
    """Overwrite one row of (freshly made) columns."""
    for column, value in zip(columns, values):
        column[row] = value


_MISSING = object()


def write(
    entities: Dict[Any, Any],
    keys: Keys,
    columns: Sequence[Column],
    complete: bool,
    fields: Tuple[str, ...],
    skip: Collection[Any] = (),
) -> None:
    """Overwrite `fields` of the entity dicts in `entities` with the values of their rows in `columns`
    (`complete`: no value in them is None).

    Only entities that are dicts and in `keys`, not in `skip`, and only fields that hold a number (not a
    bool) are changed, and never with None; an int field gets the value rounded, so it stays an int.
    """
    targets: List[Any] = list(map(entities.get, keys.keys))
    try:
        currents = [list(map(_get, targets, repeat(field), repeat(_MISSING))) for field in fields]
    except TypeError:  # (from `dict.get`) some are missing or not dicts: write the others
        rows = [row for row, target in enumerate(targets) if isinstance(target, dict)]
        targets = [targets[row] for row in rows]
        columns = [[column[row] for row in rows] for column in columns]
        currents = [[target.get(field, _MISSING) for target in targets] for field in fields]
    # The skipped entities are written with the others and get their fields back afterwards.
    skipped = []
    for key in skip:
        try:
            entity = entities.get(key)
        except TypeError:  # unhashable: not a key
            continue
        if isinstance(entity, dict):
            skipped.append((entity, {field: entity[field] for field in fields if field in entity}))
    for field, column, current in zip(fields, columns, currents):
        if complete and _all(current, float):
            deque(map(_set, targets, repeat(field), column), 0)  # (at C speed)
            continue
        if complete and _all(current, int):  # ints stay ints (and settle exactly on the authoritative int)
            deque(map(_set, targets, repeat(field), map(_round, column)), 0)
            continue
        for target, now, value in zip(targets, current, column):
            if value is None or now is _MISSING:
                continue
            kind = type(now)
            if kind is float:
                target[field] = value
            elif kind is int:
                target[field] = round(value)
            elif number(now) is not None:  # a subclass of int (not bool) or float
                target[field] = round(value) if isinstance(now, int) else value
    for entity, fields_before in skipped:
        entity.update(fields_before)
