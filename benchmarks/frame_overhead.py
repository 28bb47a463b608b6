"""Per-frame cost of the pygase_pygame layer, headless.

A backend in this process moves N entities every tick (50 Hz); a `GameWindow` joined to it interpolates
them and runs frames as fast as it can, with an empty draw hook, so what is timed is the layer itself:
event pumping, bindings, state snapshot, interpolation, the overlay (shown) and the display flip.

    python benchmarks/frame_overhead.py            # 1000 entities, then 100 (the last line)
    python benchmarks/frame_overhead.py --seconds 3

The last line reads `median_ms=<m> p99_ms=<p> entities=100`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pygase import Backend, GameState  # noqa: E402
from pygase_pygame import GameWindow, SnapshotInterpolator  # noqa: E402


def measure(entities: int, seconds: float) -> tuple[float, float, float]:
    """Return (median ms, p99 ms, updates per second seen) of the layer's frame time."""

    def time_step(game_state, dt):
        t = time.monotonic()
        moved = {
            i: {"x": 400 + 300 * math.cos(t + i), "y": 300 + 200 * math.sin(t + i)} for i in range(entities)
        }
        return {"things": moved}

    backend = Backend(GameState(things={i: {"x": 0.0, "y": 0.0} for i in range(entities)}), time_step)
    window = GameWindow(size=(800, 600), fps=0, interpolate=[SnapshotInterpolator("things")])
    window.show_overlay = True
    window.host(backend)
    window.client.wait_until(lambda state: state.time_order > 10, timeout=10)
    draw_time = [0.0]

    @window.hook
    def draw(screen, state):
        started = time.perf_counter()
        len(state.things)  # the game's own drawing would go here; it is not part of the layer's cost
        draw_time[0] = time.perf_counter() - started

    samples = []
    updates_before = window.client.connection.updates_received
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            started = time.perf_counter()
            window.frame()
            samples.append((time.perf_counter() - started - draw_time[0]) * 1000)
            time.sleep(0.004)  # leave the other threads room, as a frame-rate cap would
        rate = (window.client.connection.updates_received - updates_before) / seconds
    finally:
        window.close()
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))], rate


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per entity count")
    args = parser.parse_args()
    for entities in (1000, 100):
        median, p99, rate = measure(entities, args.seconds)
        print(f"# {entities} entities: {rate:.1f} state updates/s reached the window")
        print(f"median_ms={median:.3f} p99_ms={p99:.3f} entities={entities}")


if __name__ == "__main__":
    main()
