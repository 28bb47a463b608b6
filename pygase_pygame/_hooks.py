"""Call user functions with just the arguments they declare (the pgzero way)."""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Optional

_accepted: dict[Callable[..., Any], Optional[frozenset]] = {}


def _accepted_names(function: Callable[..., Any]) -> Optional[frozenset]:
    """The keyword names `function` accepts, or None if it takes **kwargs."""
    try:
        return _accepted[function]
    except (KeyError, TypeError):
        pass
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        names: Optional[frozenset] = frozenset()
    else:
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            names = None
        else:
            names = frozenset(p.name for p in parameters if p.kind is not p.VAR_POSITIONAL)
    with contextlib.suppress(TypeError):  # unhashable callables are inspected every time
        _accepted[function] = names
    return names


def call_declared(function: Callable[..., Any], **available: Any) -> Any:
    """Call `function` with those of `available` it declares (all of them if it takes **kwargs)."""
    names = _accepted_names(function)
    if names is None:
        return function(**available)
    return function(**{name: value for name, value in available.items() if name in names})
