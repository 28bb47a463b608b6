"""Generate the demos' images and sounds: run `python pygase_demos/assets/make_assets.py` to rewrite them.

Images (PNG with alpha, written to `assets/images/`), drawn pixel by pixel from signed distance
fields so the edges are anti-aliased:

- `runner.png` 32x32: a round character seen from above, white with shading, eyes facing right
- `crown.png` 24x18: a gold crown with jewels (drawn in colour, not meant to be tinted)
- `shield.png` 44x44: a translucent bubble ring
- `ship.png` 32x32: a top-down spaceship pointing right
- `bullet.png` 8x8: a glowing white-yellow dot
- `spark.png` 24x24: an orange and yellow explosion burst
- `ball.png` 16x16: a white ball with soft shading
- `paddle.png` 12x80: a white rounded bar with shading
- `floor.png` 64x64: a subtle, seamless dark blue-grey floor tile
- `star.png` 8x8: a tiny white twinkle

The runner, ship, ball and paddle are white and light grey so that `pygase_demos._assets.tinted` (a
`BLEND_RGBA_MULT` by a colour) turns them into that colour with its shading kept.

Sounds (22050 Hz mono 16-bit WAV, written to `assets/sounds/`), synthesised with the standard
library: `catch.wav` (a bright rising pickup), `shoot.wav` (a short laser zap), `explode.wav` (a
noise burst that decays and darkens), `bounce.wav` (a short blip), `score.wav` (a two-note rising
chime) and `tag.wav` (a quick whistle).

The output is deterministic: the noise comes from a fixed-seed generator of our own, so running the
script twice writes identical bytes. It needs only pygame and runs headless (SDL's dummy video
driver is selected before pygame is imported).
"""

from __future__ import annotations

import math
import os
import sys
import wave
from array import array
from pathlib import Path
from typing import Callable, List, Tuple

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402  (the environment must be set first)

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
SOUNDS = HERE / "sounds"

RGBA = Tuple[float, float, float, float]
Point = Tuple[float, float]

# Light comes from the top left, the usual convention for sprites.
LIGHT_2D = (-0.6, -0.8)
_L3 = (-0.45, -0.6, 0.66)
_L3_NORM = math.sqrt(sum(c * c for c in _L3))
LIGHT_3D = (_L3[0] / _L3_NORM, _L3[1] / _L3_NORM, _L3[2] / _L3_NORM)


# --------------------------------------------------------------------------------------------------
# Small maths helpers
# --------------------------------------------------------------------------------------------------


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return low if value < low else high if value > high else value


def smoothstep(edge0: float, edge1: float, value: float) -> float:
    t = clamp((value - edge0) / (edge1 - edge0))
    return t * t * (3.0 - 2.0 * t)


def mix(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def mix_colour(a: Tuple[float, ...], b: Tuple[float, ...], t: float) -> Tuple[float, ...]:
    return tuple(mix(x, y, t) for x, y in zip(a, b))


def gradient(stops: List[Tuple[float, Tuple[float, ...]]], t: float) -> Tuple[float, ...]:
    """The colour at `t` on a piecewise-linear gradient given as sorted (position, colour) stops."""
    if t <= stops[0][0]:
        return stops[0][1]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:]):
        if t <= p1:
            return mix_colour(c0, c1, (t - p0) / (p1 - p0))
    return stops[-1][1]


def opaque(colour: Tuple[float, ...]) -> RGBA:
    return (colour[0], colour[1], colour[2], 1.0)


def grey(level: float, alpha: float = 1.0) -> RGBA:
    return (level, level, level, alpha)


def rgb255(r: int, g: int, b: int, alpha: float = 1.0) -> RGBA:
    return (r / 255.0, g / 255.0, b / 255.0, alpha)


# --------------------------------------------------------------------------------------------------
# Signed distance fields (negative inside, in pixels)
# --------------------------------------------------------------------------------------------------

Sdf = Callable[[float, float], float]


def sd_circle(cx: float, cy: float, radius: float) -> Sdf:
    return lambda x, y: math.hypot(x - cx, y - cy) - radius


def sd_ellipse(cx: float, cy: float, rx: float, ry: float) -> Sdf:
    """An approximate ellipse distance (exact on the axes, good enough for small sprites)."""

    def sdf(x: float, y: float) -> float:
        k = math.hypot((x - cx) / rx, (y - cy) / ry)
        return (k - 1.0) * min(rx, ry)

    return sdf


def sd_round_box(cx: float, cy: float, half_w: float, half_h: float, radius: float) -> Sdf:
    def sdf(x: float, y: float) -> float:
        qx = abs(x - cx) - half_w + radius
        qy = abs(y - cy) - half_h + radius
        outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
        return outside + min(max(qx, qy), 0.0) - radius

    return sdf


def sd_polygon(points: List[Point]) -> Sdf:
    """Exact distance to a simple polygon (after Inigo Quilez's `sdPolygon`)."""

    def sdf(x: float, y: float) -> float:
        vx, vy = points[0]
        best = (x - vx) ** 2 + (y - vy) ** 2
        sign = 1.0
        j = len(points) - 1
        for i in range(len(points)):
            ax, ay = points[i]
            bx, by = points[j]
            ex, ey = bx - ax, by - ay
            wx, wy = x - ax, y - ay
            t = clamp((wx * ex + wy * ey) / (ex * ex + ey * ey))
            dx, dy = wx - ex * t, wy - ey * t
            best = min(best, dx * dx + dy * dy)
            c1 = y >= ay
            c2 = y < by
            c3 = ex * wy > ey * wx
            if (c1 and c2 and c3) or (not c1 and not c2 and not c3):
                sign = -sign
            j = i
        return sign * math.sqrt(best)

    return sdf


def sd_union(*fields: Sdf) -> Sdf:
    return lambda x, y: min(f(x, y) for f in fields)


def sd_gradient(sdf: Sdf, x: float, y: float) -> Point:
    """The unit outward normal of a field, by central differences."""
    h = 0.25
    gx = sdf(x + h, y) - sdf(x - h, y)
    gy = sdf(x, y + h) - sdf(x, y - h)
    length = math.hypot(gx, gy) or 1.0
    return gx / length, gy / length


def bevel_light(sdf: Sdf, x: float, y: float, d: float, width: float) -> float:
    """-1..1: how much the bevelled rim at (x, y) faces the light (0 away from the rim)."""
    rim = clamp(1.0 + d / width)
    if rim <= 0.0:
        return 0.0
    nx, ny = sd_gradient(sdf, x, y)
    return (nx * LIGHT_2D[0] + ny * LIGHT_2D[1]) * rim


def sphere_light(cx: float, cy: float, radius: float, x: float, y: float) -> Tuple[float, float]:
    """(diffuse, specular) of a sphere lit from the top left, seen from above."""
    nx, ny = (x - cx) / radius, (y - cy) / radius
    nz = math.sqrt(max(0.0, 1.0 - nx * nx - ny * ny))
    diffuse = max(0.0, nx * LIGHT_3D[0] + ny * LIGHT_3D[1] + nz * LIGHT_3D[2])
    # Blinn-Phong half vector between the light and the viewer (0, 0, 1).
    hx, hy, hz = LIGHT_3D[0], LIGHT_3D[1], LIGHT_3D[2] + 1.0
    h_len = math.sqrt(hx * hx + hy * hy + hz * hz)
    specular = max(0.0, (nx * hx + ny * hy + nz * hz) / h_len) ** 24
    return diffuse, specular


# --------------------------------------------------------------------------------------------------
# A float RGBA canvas with "over" compositing
# --------------------------------------------------------------------------------------------------


class Canvas:
    """A premultiplied-alpha float image; shapes are painted over it one layer at a time."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels: List[List[float]] = [[0.0, 0.0, 0.0, 0.0] for _ in range(width * height)]

    def paint(self, sdf: Sdf, shade: Callable[[float, float, float], RGBA]) -> None:
        """Paint the inside of `sdf` (anti-aliased over one pixel) with `shade(x, y, distance)`."""
        for py in range(self.height):
            for px in range(self.width):
                x, y = px + 0.5, py + 0.5
                d = sdf(x, y)
                coverage = clamp(0.5 - d)
                if coverage > 0.0:
                    self._over(px, py, shade(x, y, d), coverage)

    def field(self, shade: Callable[[float, float], RGBA]) -> None:
        """Paint every pixel with `shade(x, y)`, whose alpha says how much it covers."""
        for py in range(self.height):
            for px in range(self.width):
                self._over(px, py, shade(px + 0.5, py + 0.5), 1.0)

    def _over(self, px: int, py: int, colour: RGBA, coverage: float) -> None:
        r, g, b, a = colour
        a = clamp(a) * coverage
        if a <= 0.0:
            return
        pixel = self.pixels[py * self.width + px]
        keep = 1.0 - a
        pixel[0] = clamp(r) * a + pixel[0] * keep
        pixel[1] = clamp(g) * a + pixel[1] * keep
        pixel[2] = clamp(b) * a + pixel[2] * keep
        pixel[3] = a + pixel[3] * keep

    def to_surface(self) -> pygame.Surface:
        surface = pygame.Surface((self.width, self.height), pygame.SRCALPHA, 32)
        for py in range(self.height):
            for px in range(self.width):
                r, g, b, a = self.pixels[py * self.width + px]
                if a <= 0.0:
                    surface.set_at((px, py), (0, 0, 0, 0))
                    continue
                surface.set_at(
                    (px, py),
                    (_byte(r / a), _byte(g / a), _byte(b / a), _byte(a)),
                )
        return surface


def _byte(value: float) -> int:
    return int(round(clamp(value) * 255.0))


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------


def soft_shadow(canvas: Canvas, sdf: Sdf, softness: float, strength: float) -> None:
    """A blurred dark shadow under a shape (`sdf` already offset down and right)."""
    canvas.field(lambda x, y: grey(0.0, strength * (1.0 - smoothstep(-softness, softness, sdf(x, y)))))


def draw_runner() -> Canvas:
    canvas = Canvas(32, 32)
    cx, cy, radius = 15.5, 15.5, 13.0
    soft_shadow(canvas, sd_circle(cx + 1.0, cy + 1.5, radius - 0.5), 1.5, 0.35)

    body = sd_circle(cx, cy, radius)

    def body_shade(x: float, y: float, d: float) -> RGBA:
        diffuse, specular = sphere_light(cx, cy, radius + 1.0, x, y)
        level = 0.6 + 0.34 * diffuse + 0.12 * specular
        # A darker outline so the silhouette reads on any background, whatever the tint.
        outline = smoothstep(-2.0, -0.8, d)
        return grey(mix(level, 0.32, outline))

    canvas.paint(body, body_shade)

    for ey in (10.8, 20.2):
        ex = 21.2
        eye = sd_ellipse(ex, ey, 3.4, 3.9)
        canvas.paint(eye, lambda x, y, d: grey(mix(1.0, 0.22, smoothstep(-0.9, -0.2, d))))
        pupil = sd_circle(ex + 1.2, ey + 0.1, 2.0)
        canvas.paint(pupil, lambda x, y, d: grey(0.06))
    return canvas


def draw_crown() -> Canvas:
    canvas = Canvas(24, 18)
    gold_light = rgb255(255, 226, 110)
    gold_mid = rgb255(240, 180, 40)
    gold_dark = rgb255(176, 110, 18)
    outline_colour = rgb255(110, 60, 10)

    points = [(2.5, 15.5), (2.5, 5.0), (7.5, 10.0), (12.0, 3.5), (16.5, 10.0), (21.5, 5.0), (21.5, 15.5)]
    spikes = sd_polygon(points)
    band = sd_round_box(12.0, 14.0, 10.0, 2.6, 1.0)
    crown = sd_union(spikes, band)

    def crown_shade(x: float, y: float, d: float) -> RGBA:
        base = gradient([(3.0, gold_light), (12.0, gold_mid), (17.0, gold_dark)], y)
        light = bevel_light(crown, x, y, d, 1.8)
        lit = mix_colour(base, gold_light if light > 0 else gold_dark, abs(light) * 0.8)
        return opaque(mix_colour(lit, outline_colour, smoothstep(-1.2, -0.4, d)))

    canvas.paint(crown, crown_shade)

    # The band: a slightly darker strip with its own top highlight line.
    def band_shade(x: float, y: float, d: float) -> RGBA:
        base = mix_colour(gold_mid, gold_dark, 0.35)
        top = 1.0 - smoothstep(11.8, 12.8, y)
        lit = mix_colour(base, gold_light, top * 0.8)
        return opaque(mix_colour(lit, outline_colour, smoothstep(-1.2, -0.4, d)))

    canvas.paint(band, band_shade)

    def ball(cx: float, cy: float, radius: float, colour: RGBA, shine: RGBA) -> None:
        def shade(x: float, y: float, d: float) -> RGBA:
            diffuse, specular = sphere_light(cx, cy, radius + 0.5, x, y)
            lit = mix_colour(mix_colour(colour, shine, diffuse * 0.5), (1.0, 1.0, 1.0, 1.0), specular)
            return opaque(mix_colour(lit, outline_colour, smoothstep(-0.8, -0.2, d) * 0.8))

        canvas.paint(sd_circle(cx, cy, radius), shade)

    for tip_x, tip_y in ((2.5, 4.0), (12.0, 2.4), (21.5, 4.0)):
        ball(tip_x, tip_y, 1.9, gold_mid, gold_light)
    ball(12.0, 14.1, 1.9, rgb255(200, 20, 40), rgb255(255, 120, 130))
    ball(6.5, 14.1, 1.4, rgb255(30, 90, 210), rgb255(140, 190, 255))
    ball(17.5, 14.1, 1.4, rgb255(30, 90, 210), rgb255(140, 190, 255))
    return canvas


def draw_shield() -> Canvas:
    canvas = Canvas(44, 44)
    c, radius = 22.0, 20.5
    tint = (0.9, 0.96, 1.0)

    def shade(x: float, y: float) -> RGBA:
        dx, dy = x - c, y - c
        r = math.hypot(dx, dy)
        edge = clamp(radius + 0.5 - r)  # anti-aliased outer edge
        if edge <= 0.0:
            return (0.0, 0.0, 0.0, 0.0)
        t = r / radius
        inner = 0.08 + 0.45 * t**6  # a faint film that thickens towards the rim
        rim = 0.55 * math.exp(-(((r - (radius - 1.6)) / 1.3) ** 2))
        # A crescent of reflected light in the top left, and a fainter one opposite it.
        facing = (dx * LIGHT_2D[0] + dy * LIGHT_2D[1]) / (r or 1.0)
        band = math.exp(-(((r - (radius - 4.5)) / 1.8) ** 2))
        highlight = 0.55 * max(0.0, facing) ** 3 * band + 0.18 * max(0.0, -facing) ** 4 * band
        alpha = clamp(inner + rim + highlight) * edge
        whiten = clamp(highlight * 2.0)
        return (mix(tint[0], 1.0, whiten), mix(tint[1], 1.0, whiten), tint[2], alpha)

    canvas.field(shade)
    return canvas


def draw_ship() -> Canvas:
    canvas = Canvas(32, 32)
    hull_points = [
        (30.5, 16.0),
        (21.0, 12.2),
        (14.5, 3.5),
        (9.0, 2.5),
        (11.0, 11.5),
        (5.0, 12.5),
        (3.5, 16.0),
        (5.0, 19.5),
        (11.0, 20.5),
        (9.0, 29.5),
        (14.5, 28.5),
        (21.0, 19.8),
    ]
    hull = sd_polygon(hull_points)
    soft_shadow(canvas, sd_polygon([(x + 1.0, y + 1.5) for x, y in hull_points]), 1.2, 0.35)

    def hull_shade(x: float, y: float, d: float) -> RGBA:
        level = 0.86 - 0.12 * clamp((y - 16.0) / 12.0) + 0.06 * clamp((16.0 - y) / 12.0)
        level += 0.22 * bevel_light(hull, x, y, d, 2.2)
        # A raised spine along the middle, lit on its upper side.
        spine = math.exp(-(((y - 15.2) / 1.1) ** 2)) - 0.6 * math.exp(-(((y - 17.2) / 1.0) ** 2))
        level += 0.10 * spine * smoothstep(6.0, 10.0, x)
        level = mix(level, 0.3, smoothstep(-1.4, -0.5, d))
        return grey(level)

    canvas.paint(hull, hull_shade)

    # Panel lines where the wings meet the body.
    for wing_y, sign in ((11.6, -1.0), (20.4, 1.0)):
        line = sd_polygon(
            [
                (11.5, wing_y),
                (19.5, wing_y + sign * 0.5),
                (19.5, wing_y + sign * 1.2),
                (11.5, wing_y + sign * 0.7),
            ]
        )
        canvas.paint(line, lambda x, y, d: grey(0.45, 0.8))

    # Engine nozzle at the back, with a bright exhaust that tints with the rest.
    canvas.paint(
        sd_round_box(4.6, 16.0, 1.6, 2.6, 0.8), lambda x, y, d: grey(mix(0.55, 0.3, smoothstep(-0.8, 0, d)))
    )
    canvas.paint(sd_round_box(3.9, 16.0, 0.9, 1.6, 0.6), lambda x, y, d: grey(0.95))

    # Cockpit canopy: dark glass with a highlight.
    canopy = sd_ellipse(19.0, 16.0, 4.4, 2.4)

    def canopy_shade(x: float, y: float, d: float) -> RGBA:
        diffuse, specular = sphere_light(18.0, 16.0, 4.0, x, y)
        level = 0.16 + 0.22 * diffuse + 0.7 * specular
        return grey(mix(level, 0.12, smoothstep(-0.8, -0.1, d)))

    canvas.paint(canopy, canopy_shade)
    return canvas


def draw_bullet() -> Canvas:
    canvas = Canvas(8, 8)
    c = 4.0
    core = (1.0, 1.0, 0.92)
    glow = (1.0, 0.84, 0.3)

    def shade(x: float, y: float) -> RGBA:
        r = math.hypot(x - c, y - c)
        alpha = clamp(1.0 - smoothstep(1.0, 2.0, r) * 0.35) * math.exp(-((max(0.0, r - 1.2) / 1.55) ** 2))
        alpha *= 1.0 - smoothstep(3.4, 4.0, r)
        colour = mix_colour(core, glow, smoothstep(0.6, 2.2, r))
        return (colour[0], colour[1], colour[2], alpha)

    canvas.field(shade)
    return canvas


def draw_spark() -> Canvas:
    canvas = Canvas(24, 24)
    c = 12.0
    stops = [
        (0.0, (1.0, 1.0, 0.92)),
        (0.3, (1.0, 0.9, 0.42)),
        (0.62, (1.0, 0.62, 0.16)),
        (1.0, (1.0, 0.38, 0.08)),
    ]

    def shade(x: float, y: float) -> RGBA:
        dx, dy = x - c, y - c
        r = math.hypot(dx, dy)
        angle = math.atan2(dy, dx)
        # Uneven flame tongues: a few cosines at fixed phases make a ragged, star-like rim.
        rays = 0.5 + 0.28 * math.cos(7.0 * angle + 0.4) + 0.16 * math.cos(11.0 * angle + 1.9)
        rays += 0.08 * math.cos(3.0 * angle + 2.6)
        reach = 11.3 * (0.62 + 0.38 * clamp(rays))
        t = r / reach
        if t >= 1.0:
            return (0.0, 0.0, 0.0, 0.0)
        alpha = 1.45 * (1.0 - t) ** 0.75
        alpha *= 1.0 - smoothstep(10.5, 11.8, r)  # never touch the sprite's border
        red, green, blue = gradient(stops, t)
        return (red, green, blue, clamp(alpha))

    canvas.field(shade)
    return canvas


def draw_ball() -> Canvas:
    canvas = Canvas(16, 16)
    cx, cy, radius = 8.0, 8.0, 7.4

    def shade(x: float, y: float, d: float) -> RGBA:
        diffuse, specular = sphere_light(cx, cy, radius + 0.6, x, y)
        level = 0.6 + 0.37 * diffuse + 0.35 * specular
        return grey(mix(level, 0.4, smoothstep(-1.3, -0.4, d)))

    canvas.paint(sd_circle(cx, cy, radius), shade)
    return canvas


def draw_paddle() -> Canvas:
    canvas = Canvas(12, 80)
    cx, cy, half_w, half_h = 6.0, 40.0, 5.6, 39.6
    paddle = sd_round_box(cx, cy, half_w, half_h, 5.0)

    def shade(x: float, y: float, d: float) -> RGBA:
        # Shaded like a cylinder lying along the bar, with the light coming from the left.
        nx = clamp((x - cx) / (half_w + 0.4), -1.0, 1.0)
        nz = math.sqrt(1.0 - nx * nx)
        diffuse = max(0.0, -0.55 * nx + 0.83 * nz)
        specular = max(0.0, -0.3 * nx + 0.95 * nz) ** 30
        level = 0.6 + 0.36 * diffuse + 0.3 * specular
        level += 0.12 * bevel_light(paddle, x, y, d, 2.0) * smoothstep(34.0, 37.0, abs(y - cy))
        return grey(mix(level, 0.36, smoothstep(-1.2, -0.4, d)))

    canvas.paint(paddle, shade)
    return canvas


def _hash01(x: int, y: int, seed: int) -> float:
    """A fixed pseudo-random value in [0, 1) for a grid cell (integer hash, no global state)."""
    h = (x * 374761393 + y * 668265263 + seed * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFFFF) / float(0x1000000)


def draw_floor() -> Canvas:
    size, cell = 64, 32
    canvas = Canvas(size, size)
    base = (28, 32, 43)

    def shade(x: float, y: float) -> RGBA:
        px, py = int(x), int(y)
        lx, ly = px % cell, py % cell
        level = (_hash01(px // cell, py // cell, 1) - 0.5) * 3.0  # each slab a shade apart
        level += (_hash01(px, py, 2) - 0.5) * 2.5  # fine grain
        if lx == 0 or ly == 0:
            level -= 6.0  # the groove between slabs
        elif lx == 1 or ly == 1:
            level += 3.0  # its lit edge
        elif lx == cell - 1 or ly == cell - 1:
            level -= 2.0  # its shadowed edge
        # A rivet near each slab's corner.
        rivet = math.hypot(lx - 4.5, ly - 4.5)
        if rivet < 1.2:
            level += 4.0
        elif rivet < 2.0:
            level -= 2.0
        r, g, b = (int(round(channel + level)) for channel in base)
        return rgb255(r, g, b)

    canvas.field(shade)
    return canvas


def draw_star() -> Canvas:
    canvas = Canvas(8, 8)
    c = 4.0

    def shade(x: float, y: float) -> RGBA:
        dx, dy = abs(x - c), abs(y - c)
        r = math.hypot(dx, dy)
        core = math.exp(-((r / 1.1) ** 2))
        arm_h = math.exp(-((dy / 0.55) ** 2)) * clamp(1.0 - dx / 3.9)
        arm_v = math.exp(-((dx / 0.55) ** 2)) * clamp(1.0 - dy / 3.9)
        alpha = clamp(core + 0.95 * max(arm_h, arm_v))
        return (1.0, 1.0, mix(0.9, 1.0, core), alpha)

    canvas.field(shade)
    return canvas


IMAGE_MAKERS: List[Tuple[str, Callable[[], Canvas]]] = [
    ("runner", draw_runner),
    ("crown", draw_crown),
    ("shield", draw_shield),
    ("ship", draw_ship),
    ("bullet", draw_bullet),
    ("spark", draw_spark),
    ("ball", draw_ball),
    ("paddle", draw_paddle),
    ("floor", draw_floor),
    ("star", draw_star),
]


# --------------------------------------------------------------------------------------------------
# Sounds
# --------------------------------------------------------------------------------------------------

RATE = 22050
PEAK = 0.6  # of full scale: loud enough, with headroom


class Noise:
    """A fixed-seed xorshift32 generator, so the noise is identical on every run and platform."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFF or 1

    def next(self) -> float:
        """A value in [-1, 1)."""
        s = self.state
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.state = s
        return s / 2147483648.0 - 1.0


def frames(duration: float) -> int:
    return int(round(duration * RATE))


def envelope(t: float, duration: float, attack: float, release: float, decay: float = 0.0) -> float:
    """A click-free envelope: linear attack, exponential decay, and a short fade to exactly zero."""
    level = 1.0 if t >= attack else t / attack
    if decay > 0.0:
        level *= math.exp(-max(0.0, t - attack) * decay)
    tail = (frames(duration) - 1) / RATE - t  # so the last sample is exactly zero
    if tail < release:
        level *= max(0.0, tail / release)
    return level


def sweep(duration: float, freq: Callable[[float], float], voice: Callable[[float], float]) -> List[float]:
    """A tone whose frequency follows `freq(t)`, integrated so glides have no phase jumps."""
    samples = []
    phase = 0.0
    for n in range(frames(duration)):
        samples.append(voice(phase))
        phase += 2.0 * math.pi * freq(n / RATE) / RATE
    return samples


def soft_square(phase: float) -> float:
    """A square-ish wave from its first three odd harmonics: buzzy but not harsh."""
    return math.sin(phase) + math.sin(3 * phase) / 3.0 + math.sin(5 * phase) / 6.0


def bell(phase: float) -> float:
    return math.sin(phase) + 0.35 * math.sin(2.0 * phase) + 0.12 * math.sin(3.0 * phase)


def shaped(samples: List[float], duration: float, **envelope_args: float) -> List[float]:
    return [s * envelope(n / RATE, duration, **envelope_args) for n, s in enumerate(samples)]


def make_catch() -> List[float]:
    # Two quick rising notes (E6 then A6) with a touch of the octave: a pickup "bling".
    voice = lambda p: math.sin(p) + 0.25 * math.sin(2.0 * p)  # noqa: E731
    out: List[float] = []
    for pitch, length, decay in ((1318.5, 0.07, 18.0), (1760.0, 0.15, 14.0)):
        tone = sweep(length, lambda t, f=pitch: f, voice)
        out += shaped(tone, length, attack=0.004, release=0.012, decay=decay)
    return out


def make_shoot() -> List[float]:
    # A laser "pew": a fast downward glide from high to low, buzzy, decaying quickly.
    duration = 0.16

    def freq(t: float) -> float:
        return 280.0 + 1500.0 * math.exp(-t * 28.0)

    return shaped(sweep(duration, freq, soft_square), duration, attack=0.003, release=0.03, decay=14.0)


def make_explode() -> List[float]:
    # White noise through a one-pole low-pass whose cutoff falls, plus a low thump.
    duration = 0.6
    noise = Noise(0x5EED1234)
    out = []
    low = 0.0
    low2 = 0.0
    thump_phase = 0.0
    for n in range(frames(duration)):
        t = n / RATE
        cutoff = 300.0 + 3500.0 * math.exp(-t * 7.0)
        k = 1.0 - math.exp(-2.0 * math.pi * cutoff / RATE)
        low += k * (noise.next() - low)
        low2 += k * (low - low2)  # two poles for a rounder rumble
        thump_phase += 2.0 * math.pi * (55.0 + 60.0 * math.exp(-t * 20.0)) / RATE
        thump = math.sin(thump_phase) * math.exp(-t * 9.0) * 0.8
        level = envelope(t, duration, attack=0.004, release=0.08, decay=5.5)
        out.append((low2 * 2.2 + thump) * level)
    return out


def make_bounce() -> List[float]:
    # A short, round blip with a tiny downward bend.
    duration = 0.07

    def freq(t: float) -> float:
        return 620.0 - 900.0 * t

    voice = lambda p: math.sin(p) + 0.2 * math.sin(2.0 * p)  # noqa: E731
    return shaped(sweep(duration, freq, voice), duration, attack=0.002, release=0.02, decay=30.0)


def make_score() -> List[float]:
    # A two-note rising chime (C6 then G6), each note a bell that rings on under the next.
    duration = 0.55
    notes = [(0.0, 1046.5), (0.12, 1568.0)]
    out = [0.0] * frames(duration)
    for start, pitch in notes:
        length = duration - start
        tone = sweep(length, lambda t, f=pitch: f, bell)
        offset = frames(start)
        for n, s in enumerate(tone):
            if offset + n < len(out):
                out[offset + n] += s * envelope(n / RATE, length, attack=0.004, release=0.05, decay=7.0)
    return out


def make_tag() -> List[float]:
    # A quick referee-style whistle: a rising glide with a fast warble.
    duration = 0.26

    def freq(t: float) -> float:
        glide = 1250.0 + 850.0 * smoothstep(0.0, 0.08, t)
        return glide * (1.0 + 0.035 * math.sin(2.0 * math.pi * 38.0 * t))

    voice = lambda p: math.sin(p) + 0.08 * math.sin(2.0 * p)  # noqa: E731
    return shaped(sweep(duration, freq, voice), duration, attack=0.012, release=0.05, decay=5.0)


SOUND_MAKERS: List[Tuple[str, Callable[[], List[float]]]] = [
    ("catch", make_catch),
    ("shoot", make_shoot),
    ("explode", make_explode),
    ("bounce", make_bounce),
    ("score", make_score),
    ("tag", make_tag),
]


def to_pcm16(samples: List[float]) -> bytes:
    """Normalise to `PEAK` of full scale and pack as little-endian signed 16-bit."""
    loudest = max(abs(s) for s in samples) or 1.0
    scale = PEAK * 32767.0 / loudest
    pcm = array("h", (int(round(s * scale)) for s in samples))
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()


def write_wav(path: Path, samples: List[float]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(to_pcm16(samples))


# --------------------------------------------------------------------------------------------------


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    SOUNDS.mkdir(parents=True, exist_ok=True)
    for name, draw in IMAGE_MAKERS:
        path = IMAGES / f"{name}.png"
        pygame.image.save(draw().to_surface(), str(path))
        print(f"wrote {path.relative_to(HERE.parent)}")
    for name, make in SOUND_MAKERS:
        path = SOUNDS / f"{name}.wav"
        write_wav(path, make())
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
