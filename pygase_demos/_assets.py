"""Load the demos' images, sounds and font from `pygase_demos/assets/` (beside this file, so they are
found wherever the package is installed; `assets/README.md` gives their sources and licences).

Images: `image("ship")` loads `assets/images/ship.png`; `tinted("ship", colour)` multiplies a white
sprite by a colour (cached). Sounds are optional: `play("shoot")` does nothing on a machine without
audio. `font(size)` is the demos' font.
"""

from __future__ import annotations

import logging
from functools import cache, lru_cache
from pathlib import Path
from typing import Optional

import pygame

ASSETS = Path(__file__).resolve().parent / "assets"
FONT_FILE = ASSETS / "fonts" / "DejaVuSans.ttf"

logger = logging.getLogger("pygase_demos")


@cache
def image(name: str) -> pygame.Surface:
    """Load `assets/images/<name>.png` (with its alpha channel).

    Raises:
        FileNotFoundError: if there is no such image
    """
    path = ASSETS / "images" / f"{name}.png"
    if not path.exists():
        raise FileNotFoundError(f"no image {name!r}: expected {path}")
    surface = pygame.image.load(str(path))
    return surface.convert_alpha() if pygame.display.get_surface() is not None else surface


@lru_cache(maxsize=256)
def tinted(name: str, colour: tuple) -> pygame.Surface:
    """A copy of a (white) sprite multiplied by `colour`."""
    surface = image(name).copy()
    surface.fill((*colour[:3], 255), special_flags=pygame.BLEND_RGBA_MULT)
    return surface


@cache
def _sound(name: str) -> Optional[pygame.mixer.Sound]:
    path = ASSETS / "sounds" / f"{name}.wav"
    try:
        if not pygame.mixer.get_init():
            pygame.mixer.init()
        return pygame.mixer.Sound(str(path))
    except (pygame.error, FileNotFoundError) as error:
        logger.debug("no sound %r: %s", name, error)
        return None


def play(name: str, volume: float = 0.6) -> None:
    """Play `assets/sounds/<name>.wav` if this machine has audio; otherwise do nothing."""
    sound = _sound(name)
    if sound is not None:
        sound.set_volume(volume)
        sound.play()


@cache
def font(size: int) -> pygame.font.Font:
    """The demos' font at `size` (pygame's default font if the file is missing)."""
    if not pygame.font.get_init():
        pygame.font.init()
    if FONT_FILE.exists():
        return pygame.font.Font(str(FONT_FILE), size)
    logger.warning("font %s is missing: using pygame's default font", FONT_FILE)
    return pygame.font.Font(None, size)
