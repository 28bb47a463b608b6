"""Bind pygame input to PyGaSe events, declaratively.

    bindings = InputBindings(hold_rate=20)
    bindings.key_held("left", "MOVE", dx=-1)      # sent 20 times a second while the key is down
    bindings.key_down("space", "JUMP")            # sent once per press
    bindings.mouse_down(1, "SHOOT")               # sent with pos=(x, y)
    bindings.joy_axis(0, "STEER", dead_zone=0.2)  # sent with value=-1.0 .. 1.0 when it changes

Bindings are plain data: `to_dict()` / `from_dict()` and `save()` / `load()` (JSON) let players rebind keys;
`rebind()` changes the key or button of an event. Key names are pygame's (`pygame.key.name`): "a",
"left", "space", "left shift", "f1" ...
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pygame

from pygase_pygame._hooks import call_declared
from pygase_pygame._names import did_you_mean

__all__ = ["Binding", "InputBindings", "KINDS"]

logger = logging.getLogger(__name__)

#: The kinds of input a binding can react to.
KINDS = (
    "key_down",
    "key_up",
    "key_held",
    "mouse_down",
    "mouse_up",
    "mouse_motion",
    "joy_button_down",
    "joy_button_up",
    "joy_axis",
)

Dispatch = Callable[..., None]


def key_name(key: Union[str, int]) -> str:
    """Return pygame's name for a key given as a name or a key code.

    Raises:
        ValueError: for a name pygame does not know, with a suggestion
    """
    if isinstance(key, int) and not isinstance(key, bool):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pygame.key.name(key)
    if not isinstance(key, str):
        raise TypeError(f"keys are names like 'left' or pygame key codes, not {type(key).__name__}")
    try:
        with warnings.catch_warnings():  # names work before pygame.init(); pygame warns anyway
            warnings.simplefilter("ignore")
            return pygame.key.name(pygame.key.key_code(key))
    except ValueError:
        known = [pygame.key.name(code) for name, code in vars(pygame).items() if name.startswith("K_")]
        raise ValueError(f"unknown key name {key!r}{did_you_mean(key.lower(), known)}") from None


@dataclass
class Binding:
    """One input bound to one event type.

    Attributes:
        kind: one of `KINDS`
        source: key name, mouse or joystick button number, joystick axis number (None for mouse motion)
        event_type: the PyGaSe event sent
        data: keyword arguments sent with the event
        dead_zone: joystick axis values closer to 0 than this count as 0
    """

    kind: str
    source: Any
    event_type: str
    data: dict = field(default_factory=dict)
    dead_zone: float = 0.1

    def to_dict(self) -> dict:
        result = {"kind": self.kind, "source": self.source, "event": self.event_type, "data": dict(self.data)}
        if self.kind == "joy_axis":
            result["dead_zone"] = self.dead_zone
        return result


class InputBindings:
    """A declarative mapping from pygame input to PyGaSe events.

    Arguments:
        hold_rate: how many times per second a held key's event is sent, whatever the frame rate
    """

    def __init__(self, hold_rate: float = 20.0) -> None:
        if hold_rate <= 0:
            raise ValueError("hold_rate must be positive")
        self.hold_rate = hold_rate
        self.bindings: list[Binding] = []
        self._custom: dict[int, list[Callable[..., Any]]] = {}
        self._held: dict[str, float] = {}  # key name -> time its next event is due
        self._axis_values: dict[tuple[int, int], float] = {}

    # ---- declaring --------------------------------------------------------------------------------

    def add(self, kind: str, source: Any, event_type: str, dead_zone: float = 0.1, **data: Any) -> Binding:
        """Add a binding of any kind (the methods below are shortcuts)."""
        if kind not in KINDS:
            raise ValueError(f"unknown binding kind {kind!r}{did_you_mean(kind, KINDS)}")
        if not isinstance(event_type, str) or not event_type:
            raise TypeError("event_type must be a non-empty str")
        if kind.startswith("key_"):
            source = key_name(source)
        elif kind == "mouse_motion":
            source = None
        elif not isinstance(source, int) or isinstance(source, bool):
            raise TypeError(f"{kind} bindings take a button or axis number, not {source!r}")
        binding = Binding(kind, source, event_type, dict(data), dead_zone)
        self.bindings.append(binding)
        return binding

    def key_down(self, key: Union[str, int], event_type: str, **data: Any) -> Binding:
        """Send `event_type(**data)` once when `key` is pressed."""
        return self.add("key_down", key, event_type, **data)

    def key_up(self, key: Union[str, int], event_type: str, **data: Any) -> Binding:
        """Send `event_type(**data)` once when `key` is released."""
        return self.add("key_up", key, event_type, **data)

    def key_held(self, key: Union[str, int], event_type: str, **data: Any) -> Binding:
        """Send `event_type(**data)` when `key` is pressed and then `hold_rate` times a second while held."""
        return self.add("key_held", key, event_type, **data)

    def mouse_down(self, button: int, event_type: str, **data: Any) -> Binding:
        """Send `event_type(pos=(x, y), **data)` when mouse `button` (1 left, 2 middle, 3 right) goes down."""
        return self.add("mouse_down", button, event_type, **data)

    def mouse_up(self, button: int, event_type: str, **data: Any) -> Binding:
        """Send `event_type(pos=(x, y), **data)` when mouse `button` is released."""
        return self.add("mouse_up", button, event_type, **data)

    def mouse_motion(self, event_type: str, **data: Any) -> Binding:
        """Send `event_type(pos=(x, y), rel=(dx, dy), **data)` when the mouse moves."""
        return self.add("mouse_motion", None, event_type, **data)

    def joy_button_down(self, button: int, event_type: str, **data: Any) -> Binding:
        """Send `event_type(joy=instance_id, **data)` when a joystick or gamepad button is pressed."""
        return self.add("joy_button_down", button, event_type, **data)

    def joy_button_up(self, button: int, event_type: str, **data: Any) -> Binding:
        """Send `event_type(joy=instance_id, **data)` when a joystick or gamepad button is released."""
        return self.add("joy_button_up", button, event_type, **data)

    def joy_axis(self, axis: int, event_type: str, dead_zone: float = 0.1, **data: Any) -> Binding:
        """Send `event_type(value=v, joy=instance_id, **data)` when a joystick axis changes (v in -1..1)."""
        return self.add("joy_axis", axis, event_type, dead_zone=dead_zone, **data)

    def on(self, pygame_event_type: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: call the function for every pygame event of that type.

        The function gets the pygame `event` and a `dispatch(event_type, *args, **kwargs)` function, if
        it declares parameters of those names.

            @bindings.on(pygame.MOUSEWHEEL)
            def zoom(event, dispatch):
                dispatch("ZOOM", event.y)
        """

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self._custom.setdefault(pygame_event_type, []).append(function)
            return function

        return register

    def rebind(self, event_type: str, source: Any, kind: Optional[str] = None) -> None:
        """Bind `event_type` to another key, button or axis (for bindings of `kind`, or all of them).

        Raises:
            KeyError: if no binding sends `event_type`
        """
        found = [b for b in self.bindings if b.event_type == event_type and (kind is None or b.kind == kind)]
        if not found:
            events = {b.event_type for b in self.bindings}
            raise KeyError(f"no binding sends {event_type!r}{did_you_mean(event_type, events)}")
        for binding in found:
            binding.source = key_name(source) if binding.kind.startswith("key_") else source
        self._held.clear()

    # ---- plain data ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Return the bindings as plain data (JSON-compatible)."""
        return {"hold_rate": self.hold_rate, "bindings": [b.to_dict() for b in self.bindings]}

    @classmethod
    def from_dict(cls, data: dict) -> InputBindings:
        """Build bindings from `to_dict()` data; entries that make no sense are skipped with a warning."""
        bindings = cls(hold_rate=float(data.get("hold_rate", 20.0)))
        for entry in data.get("bindings", []):
            try:
                bindings.add(
                    entry["kind"],
                    entry.get("source"),
                    entry["event"],
                    dead_zone=float(entry.get("dead_zone", 0.1)),
                    **dict(entry.get("data", {})),
                )
            except (KeyError, TypeError, ValueError) as error:
                warnings.warn(f"skipping binding {entry!r}: {error}", stacklevel=2)
        return bindings

    def save(self, path: Union[str, Path]) -> None:
        """Write the bindings to a JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Union[str, Path]) -> InputBindings:
        """Read bindings from a JSON file written by `save()`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ---- running ------------------------------------------------------------------------------------

    def handle(self, event: Any, dispatch: Dispatch, now: float) -> None:
        """Turn one pygame event into PyGaSe events through `dispatch(event_type, **kwargs)`."""
        kind, source, extra = self._classify(event)
        if kind is not None:
            if kind == "key_down":
                self._press(source, dispatch, now)
            elif kind == "key_up":
                self._held.pop(source, None)
            for binding in self.bindings:
                if binding.kind == kind and binding.source == source:
                    if kind == "joy_axis":
                        self._axis(binding, event, dispatch)
                    else:
                        dispatch(binding.event_type, **binding.data, **extra)
        for function in self._custom.get(event.type, ()):
            call_declared(function, event=event, dispatch=dispatch)

    def _classify(self, event: Any) -> tuple[Optional[str], Any, dict]:
        if event.type == pygame.KEYDOWN:
            return "key_down", pygame.key.name(event.key), {}
        if event.type == pygame.KEYUP:
            return "key_up", pygame.key.name(event.key), {}
        if event.type == pygame.MOUSEBUTTONDOWN:
            return "mouse_down", event.button, {"pos": tuple(event.pos)}
        if event.type == pygame.MOUSEBUTTONUP:
            return "mouse_up", event.button, {"pos": tuple(event.pos)}
        if event.type == pygame.MOUSEMOTION:
            return "mouse_motion", None, {"pos": tuple(event.pos), "rel": tuple(event.rel)}
        if event.type == pygame.JOYBUTTONDOWN:
            return "joy_button_down", event.button, {"joy": getattr(event, "instance_id", 0)}
        if event.type == pygame.JOYBUTTONUP:
            return "joy_button_up", event.button, {"joy": getattr(event, "instance_id", 0)}
        if event.type == pygame.JOYAXISMOTION:
            return "joy_axis", event.axis, {}
        return None, None, {}

    def _press(self, key: str, dispatch: Dispatch, now: float) -> None:
        held = [b for b in self.bindings if b.kind == "key_held" and b.source == key]
        if held and key not in self._held:
            for binding in held:
                dispatch(binding.event_type, **binding.data)
            self._held[key] = now + 1.0 / self.hold_rate

    def _axis(self, binding: Binding, event: Any, dispatch: Dispatch) -> None:
        joy = getattr(event, "instance_id", 0)
        value = float(event.value)
        if abs(value) < binding.dead_zone:
            value = 0.0
        if self._axis_values.get((joy, event.axis)) == value:
            return
        self._axis_values[(joy, event.axis)] = value
        dispatch(binding.event_type, value=value, joy=joy, **binding.data)

    def update(self, dispatch: Dispatch, now: float) -> None:
        """Send the events of held keys that are due; call once per frame."""
        if not self._held:
            return
        period = 1.0 / self.hold_rate
        for key, due in list(self._held.items()):
            bindings = [b for b in self.bindings if b.kind == "key_held" and b.source == key]
            while due <= now:  # catch up after a slow frame: the rate does not depend on the frame rate
                for binding in bindings:
                    dispatch(binding.event_type, **binding.data)
                due += period
            self._held[key] = due

    def release_all(self) -> None:
        """Forget held keys (the window lost focus, say)."""
        self._held.clear()

    @property
    def held_keys(self) -> list:
        """Names of the held keys that currently send events."""
        return list(self._held)
