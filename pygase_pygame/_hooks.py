"""Call user functions with just the arguments they declare (the pgzero way)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable
from typing import Any, Callable, Optional

from pygase.utils import accepted_keywords
from pygase_pygame._names import did_you_mean

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
