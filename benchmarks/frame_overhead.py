"""Per-frame cost of the pygase_pygame layer, headless.

A backend in this process moves N entities every tick (50 Hz); a `GameWindow` joined to it interpolates
them and runs frames as fast as it can, with an empty draw hook, so what is timed is the layer itself:
event pumping, bindings, state snapshot, interpolation, the overlay (shown) and the display flip.

    python benchmarks/frame_overhead.py            # 1000 entities, then 100 (the last line)
    python benchmarks/frame_overhead.py --seconds 3
    python benchmarks/frame_overhead.py --threads  # also the CPU each thread used (Linux)

Everything runs in one process, so the window's frames share the interpreter lock with the client's
network thread and with the hosted server's threads: `--threads` shows how much of a core each took,
and how many milliseconds per state update that window received.

The last line reads `median_ms=<m> p99_ms=<p> entities=100`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Optional

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pygase import Backend, GameState  # noqa: E402
from pygase_pygame import GameWindow, SnapshotInterpolator  # noqa: E402


def thread_cpu() -> Optional[dict[str, float]]:
    """CPU seconds each thread of this process used so far, by thread name (None without Linux /proc)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used = {}
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            used[names.get(int(task), f"thread {task}")] = (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        return None
    return used


def measure(entities: int, seconds: float, threads: bool = False) -> tuple[float, float, float, list[str]]:
    """Return (median ms, p99 ms, updates per second seen, lines about the threads' CPU) of the layer's
    frame time."""

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
    cpu_before = thread_cpu() if threads else None
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            started = time.perf_counter()
            window.frame()
            samples.append((time.perf_counter() - started - draw_time[0]) * 1000)
            time.sleep(0.004)  # leave the other threads room, as a frame-rate cap would
        rate = (window.client.connection.updates_received - updates_before) / seconds
        cpu_after = thread_cpu() if threads else None
    finally:
        window.close()
    lines = []
    if threads and (cpu_before is None or cpu_after is None):
        lines.append("# (the CPU per thread is read from /proc: Linux only)")
    elif cpu_before is not None and cpu_after is not None:
        shares = {name: (used - cpu_before.get(name, 0.0)) / seconds for name, used in cpu_after.items()}
        lines.append(
            f"#   all threads: {sum(shares.values()) * 100:.1f}% of a core (Python code runs on one)"
        )
        for name, share in sorted(shares.items(), key=lambda item: -item[1]):
            if share >= 0.005:
                per_update = f", {share / rate * 1000:.2f} ms per state update received" if rate else ""
                label = "MainThread (the window's frames)" if name == "MainThread" else name
                lines.append(f"#   {label}: {share * 100:.1f}% of a core{per_update}")
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))], rate, lines


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per entity count")
    parser.add_argument("--threads", action="store_true", help="print the CPU each thread used")
    args = parser.parse_args()
    for entities in (1000, 100):
        median, p99, rate, lines = measure(entities, args.seconds, args.threads)
        print(f"# {entities} entities: {rate:.1f} state updates/s reached the window")
        for line in lines:
            print(line)
        print(f"median_ms={median:.3f} p99_ms={p99:.3f} entities={entities}")


if __name__ == "__main__":
    main()
