"""Opt-in quantization: send positions and angles as small ints instead of floats.

A float costs 9 bytes on the wire (5 with `single_precision_floats=True`); an int below 128 costs 1, below
65,536 costs 3. A position the players see on a screen needs no more than a tenth or a hundredth of a
pixel, an angle no more than 16 bits (a 360th of a degree at most 0.0055° off). Quantizing has a second
gain: PyGaSe sends only the values that changed, and an entity that jitters by 1e-9 each tick stops being
sent at all once its quantized position stays the same.

The server stores the quantized ints; the clients turn them back:

    from pygase.quantize import quantize, dequantize, quantize_angle, dequantize_angle

    def time_step(game_state, dt):            # on the server
        ...
        return {"ships": {i: {"x": quantize(x, 0.1), "y": quantize(y, 0.1),
                              "heading": quantize_angle(heading)} for i, (x, y, heading) in moved}}

    x = dequantize(ship["x"], 0.1)            # on a client, when drawing
    heading = dequantize_angle(ship["heading"])

`quantize(x, step)` is `round(x / step)`: the error is at most half a step. Use the same step on both
sides (a module constant, say).
"""

from __future__ import annotations

import math

__all__ = ["quantize", "dequantize", "quantize_angle", "dequantize_angle"]

_TAU = 2 * math.pi


def _check_step(step: float) -> None:
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 or math.isinf(step):
        raise ValueError(f"the step is a positive number (e.g. 0.01 for a hundredth), got {step!r}")


def _check_number(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"only numbers can be quantized, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"only finite numbers can be quantized, got {value!r}")


def quantize(value: float, step: float = 0.01) -> int:
    """`value` in whole steps: `round(value / step)`, an int (`dequantize` turns it back).

    Raises:
        ValueError: for a step that is not a positive number, or a value that is not finite
        TypeError: for a value that is not a number
    """
    _check_step(step)
    _check_number(value)
    return round(value / step)


def dequantize(units: int, step: float = 0.01) -> float:
    """The value `quantize(value, step)` stood for (within half a step)."""
    _check_step(step)
    return units * step


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ValueError(f"bits is a whole number from 1 to 32 (16 is plenty for most games), got {bits!r}")
    return 1 << bits


def quantize_angle(radians: float, bits: int = 16) -> int:
    """An angle in radians as an int from 0 to 2**bits - 1 (any angle: it is taken modulo a full turn).

    16 bits (the default) cost 3 bytes on the wire and are at most 0.0055° off.

    Raises:
        ValueError: for an angle that is not finite, or bits outside 1 to 32
        TypeError: for an angle that is not a number
    """
    turn = _check_bits(bits)
    _check_number(radians)
    return round(radians % _TAU / _TAU * turn) % turn


def dequantize_angle(units: int, bits: int = 16) -> float:
    """The angle, in radians from 0 to 2π, that `quantize_angle(angle, bits)` stood for."""
    turn = _check_bits(bits)
    return units % turn / turn * _TAU
