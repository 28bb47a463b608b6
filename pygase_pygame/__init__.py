"""pygame integration for PyGaSe: write a multiplayer game the way you write a single-player one.

- `GameWindow`: owns the window and the clock, connects a `pygase.Client` (or hosts a `pygase.Backend` in
  this process), turns input into events, and calls your `draw(screen, state)` every frame with a snapshot
  of the game state; F3 shows network statistics.
- `InputBindings`: declarative key, mouse and joystick bindings to events, savable as JSON.
- `SnapshotInterpolator` and `Predictor`: smooth motion of remote entities and instant motion of your own.

Runs headless with `SDL_VIDEODRIVER=dummy` and `SDL_AUDIODRIVER=dummy`; works with pygame 2 and pygame-ce.
"""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from pygase_pygame.bindings import Binding, InputBindings  # noqa: E402
from pygase_pygame.interpolation import Predictor, SnapshotInterpolator  # noqa: E402
from pygase_pygame.overlay import NetStatsOverlay  # noqa: E402
from pygase_pygame.window import HOOKS, GameWindow  # noqa: E402

__all__ = [
    "GameWindow",
    "HOOKS",
    "InputBindings",
    "Binding",
    "SnapshotInterpolator",
    "Predictor",
    "NetStatsOverlay",
]
