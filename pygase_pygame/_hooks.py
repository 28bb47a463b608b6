"""The window's hooks: their names and arguments (`HOOKS`), the checked registry (`Hooks`), and calling
user functions with just the arguments they declare (the pgzero way)."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, Callable, Optional

from pygase.utils import accepted_keywords
from pygase_pygame._names import did_you_mean

__all__ = ["HOOKS", "Hooks", "call_declared", "check_declared"]

#: Hook names and the arguments each can declare.
HOOKS = {
    "draw": ("screen", "state", "player_id"),
    "draw_waiting": ("screen", "status", "player_id"),
    "update": ("dt", "state", "player_id"),
    "on_key_down": ("key", "mod", "unicode", "player_id"),
    "on_key_up": ("key", "mod", "player_id"),
    "on_mouse_down": ("pos", "button", "player_id"),
    "on_mouse_up": ("pos", "button", "player_id"),
    "on_mouse_move": ("pos", "rel", "buttons", "player_id"),
    "on_joy_button_down": ("joy", "button", "player_id"),
    "on_joy_button_up": ("joy", "button", "player_id"),
    "on_joy_axis": ("joy", "axis", "value", "player_id"),
    "on_event": ("event", "player_id"),
    "on_connect": ("player_id",),
    "on_disconnect": ("player_id",),
    "on_close": ("player_id",),
}

_accepted: dict[Callable[..., Any], Optional[frozenset]] = {}


def call_declared(function: Callable[..., Any], **available: Any) -> Any:
    """Call `function` with those of `available` it declares (all of them if it takes **kwargs)."""
    try:
        names = _accepted[function]
    except (KeyError, TypeError):
        names = accepted_keywords(function)
        with contextlib.suppress(TypeError):  # unhashable callables are inspected every time
            _accepted[function] = names
    if names is None:
        return function(**available)
    return function(**{name: value for name, value in available.items() if name in names})


def check_declared(function: Callable[..., Any], allowed: Iterable[str], hook: str) -> None:
    """Refuse `function` as the hook called `hook` if calling it with keywords out of `allowed` would fail.

    Every parameter without a default must be one of the `allowed` names (any of them, in any order);
    `*args`, `**kwargs` and parameters with defaults are fine. A callable whose signature cannot be read
    is let through.

    Raises:
        TypeError: naming the hook, the bad parameter and the allowed names
    """
    if not callable(function):
        raise TypeError(f"the {hook} hook must be a function, not {type(function).__name__}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    allowed = tuple(allowed)
    label = getattr(function, "__name__", type(function).__name__)
    declared = f"{label}{signature}" if label == hook else f"{hook} ({label}{signature})"
    if allowed:
        may = f"{hook} may declare any of {', '.join(allowed)}, by these names, in any order"
    else:
        may = f"{hook} takes no arguments"
    unknown = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            continue  # gets its default unless it is one of the allowed names
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"hook {declared}: parameter {parameter.name!r} is positional-only, but hooks get their "
                f"arguments by name ({may})"
            )
        if parameter.name not in allowed:
            unknown.append(f"{parameter.name!r}{did_you_mean(parameter.name, allowed)}")
    if len(unknown) == 1:
        raise TypeError(f"hook {declared}: parameter {unknown[0]} is not an argument of this hook; {may}")
    if unknown:
        raise TypeError(
            f"hook {declared}: parameters {', '.join(unknown)} are not arguments of this hook; {may}"
        )


class Hooks(MutableMapping):
    """The hooks of a window by name (`window.hooks`): a dict that checks what is put in it.

    `window.hooks["draw"] = function` registers a hook like `@window.hook` does. A name that is not in
    `HOOKS` gets a warning with the closest hook name and is not registered; a function with a parameter
    the hook never gives (`draw(surface, game_state)`) is refused with a TypeError.
    """

    def __init__(self) -> None:
        self._functions: dict[str, Callable[..., Any]] = {}

    def _register(self, name: str, function: Callable[..., Any], stacklevel: int) -> None:
        # `stacklevel` as in warnings.warn, counted from here: where a warning points in the user's code
        if name not in HOOKS:
            warnings.warn(
                f"{name!r} is not a GameWindow hook{did_you_mean(name, HOOKS)}", stacklevel=stacklevel
            )
            return
        check_declared(function, HOOKS[name], name)
        self._functions[name] = function

    def __setitem__(self, name: str, function: Callable[..., Any]) -> None:
        self._register(name, function, stacklevel=3)

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self._functions[name]

    def __delitem__(self, name: str) -> None:
        del self._functions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def __len__(self) -> int:
        return len(self._functions)

    def __repr__(self) -> str:
        return f"Hooks({self._functions!r})"
