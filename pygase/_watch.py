"""Change callbacks on parts of a client's game state (`Client.on_change`), like Colyseus' `listen`.

A watch is a path into the state (an attribute name, then keys) and a callback. After each update the
client applies, the watches whose path the update touched compare the value there with the one they saw
last; a change queues `callback(old, new)`. The client runs the queued callbacks in its network thread,
after the state lock is released, so a callback may read the state. Old and new values are copies:
changing them changes nothing else. A value that is not there (yet, or any more) is `None`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Optional

from pygase.gamestate import TO_DELETE

logger = logging.getLogger("pygase.client")

_MISSING = object()


def parse_path(path: Any) -> tuple:
    """A path as a tuple: "players" -> ("players",), ("players", 3) stays; refuses anything else."""
    if isinstance(path, str):
        path = (path,)
    if not isinstance(path, tuple) or not path:
        raise TypeError(
            f'a state path is an attribute name or a tuple (name, key, ...), e.g. "players" or '
            f'("players", 3); got {path!r}'
        )
    name = path[0]
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise TypeError(f"a state path starts with an attribute name, got {name!r}")
    for key in path[1:]:
        if isinstance(key, bool) or not isinstance(key, (str, int, bytes)):
            raise TypeError(f"state keys are str, int or bytes, got {key!r} in {path!r}")
    return path


def _lookup(state_attributes: dict, path: tuple) -> Any:
    value: Any = state_attributes
    for key in path:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _touches(update: dict, path: tuple) -> bool:
    """Whether applying `update` may change the value at `path`."""
    value: Any = update
    for key in path:
        if not isinstance(value, dict):
            return True  # a value above the path is replaced
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return False
        if type(value) is bytes and value == TO_DELETE:
            return True
    return True


class _Watch:
    __slots__ = ("path", "callback", "seen")

    def __init__(self, path: tuple, callback: Callable[[Any, Any], Any]) -> None:
        self.path = path
        self.callback = callback
        self.seen: Any = _MISSING


class StateWatches:
    """The change callbacks of one client (shared by its connections, as reconnects replace them)."""

    def __init__(self) -> None:
        self._watches: list[_Watch] = []
        self._due: list[tuple[Callable[[Any, Any], Any], Any, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._watches)

    def add(self, path: tuple, callback: Callable[[Any, Any], Any], state_attributes: Optional[dict]) -> None:
        """Watch `path`; what is there now (if the state is known) counts as seen."""
        watch = _Watch(path, callback)
        if state_attributes is not None:
            watch.seen = copy.deepcopy(_lookup(state_attributes, path))
        self._watches.append(watch)

    def check(self, state_attributes: dict, update: Optional[dict]) -> None:
        """After an update (None: a whole new state) was applied: queue the callbacks of what changed."""
        for watch in self._watches:
            if update is not None and not _touches(update, watch.path):
                continue
            now = _lookup(state_attributes, watch.path)
            if now == watch.seen and type(now) is type(watch.seen):
                continue
            new = copy.deepcopy(now)
            old, watch.seen = watch.seen, new
            self._due.append(
                (
                    watch.callback,
                    None if old is _MISSING else old,
                    None if new is _MISSING else copy.deepcopy(new),
                )
            )

    def run_due(self) -> None:
        """Run the queued callbacks (outside the state lock); what one raises is logged."""
        due, self._due = self._due, []
        for callback, old, new in due:
            try:
                callback(old, new)
            except Exception:
                logger.exception("error in the change callback %r", callback)
