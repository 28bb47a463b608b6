"""Call user functions with just the arguments they declare (the pgzero way)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

from pygase.event import _accepted_keywords

_accepted: dict[Callable[..., Any], Optional[frozenset]] = {}


def call_declared(function: Callable[..., Any], **available: Any) -> Any:
    """Call `function` with those of `available` it declares (all of them if it takes **kwargs)."""
    try:
        names = _accepted[function]
    except (KeyError, TypeError):
        names = _accepted_keywords(function)
        with contextlib.suppress(TypeError):  # unhashable callables are inspected every time
            _accepted[function] = names
    if names is None:
        return function(**available)
    return function(**{name: value for name, value in available.items() if name in names})
