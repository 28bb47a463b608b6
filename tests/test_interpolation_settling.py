"""An interpolated entity that stops must be drawn where the server has it, not where it was heading.

A server sends no update while nothing changes, so after an entity stops the newest snapshot is the last
word: `SnapshotInterpolator` may extrapolate briefly, but must then settle on exactly those values (and
keep int fields ints), both in `sample`/`apply` and in what `GameWindow.snapshot()` gives the game.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from helpers import players, run_until  # noqa: E402

from pygase import Backend, GameState  # noqa: E402
from pygase_pygame import GameWindow  # noqa: E402
from pygase_pygame.interpolation import SnapshotInterpolator  # noqa: E402

DELAY = 0.1
SPEED = 100.0  # units a second along x
RATE = 10.0  # updates a second


def moved_then_stopped(x_type: type = float, **kwargs: Any) -> tuple[SnapshotInterpolator, float]:
    """An interpolator (delay pinned to DELAY) fed a player that moved for 0.3 s and then stopped at
    x = 30 (so no update followed); return it and the arrival time of that last update."""
    interpolator = SnapshotInterpolator("players", min_delay=DELAY, max_delay=DELAY, **kwargs)
    last = 0.0
    for i in range(4):
        last = 1.0 + i / RATE
        interpolator.record(players(p1={"x": x_type(SPEED * i / RATE), "y": x_type(5)}), last)
    return interpolator, last


def test_a_stopped_entity_settles_exactly_on_its_last_authoritative_values() -> None:
    interpolator, last = moved_then_stopped()
    # render time reaches the last update DELAY after it arrived; a second later it must have settled
    for after in (1.0, 2.0, 60.0):
        assert interpolator.sample(last + DELAY + after) == {1: (30.0, 5.0)}


def test_a_stopped_entity_settles_within_the_documented_time() -> None:
    interpolator, last = moved_then_stopped()
    interval = interpolator.update_interval
    assert interval is not None
    extrapolation = interpolator.max_extrapolation
    settled_after = DELAY + extrapolation + max(interval, 2 * extrapolation)  # as the docstring says
    assert interpolator.sample(last + settled_after + 1e-9) == {1: (30.0, 5.0)}


def test_settling_moves_smoothly_never_beyond_the_extrapolation_limit() -> None:
    interpolator, last = moved_then_stopped()
    limit = 30.0 + SPEED * interpolator.max_extrapolation  # the farthest extrapolation may project
    step = 1 / 240  # a fast display
    now = last + DELAY - 0.05  # still interpolating towards the last update
    shown = []
    while now < last + DELAY + 1.0:
        x = interpolator.sample(now)[1][0]
        assert x is not None
        shown.append(x)
        now += step
    assert max(shown) <= limit + 1e-9
    assert min(shown[shown.index(max(shown)) :]) >= 30.0 - 1e-9  # it eases back, it does not overshoot
    biggest_jump = max(abs(b - a) for a, b in zip(shown, shown[1:]))
    assert biggest_jump <= 1.5 * SPEED * step + 1e-9  # no faster than the entity moved (plus easing)
    assert shown[-1] == 30.0


def test_late_updates_are_still_extrapolated_for_a_short_while() -> None:
    interpolator, last = moved_then_stopped()
    assert interpolator.sample(last + DELAY + 0.05)[1] == pytest.approx((35.0, 5.0))


def test_an_update_after_settling_is_interpolated_to_again() -> None:
    interpolator, last = moved_then_stopped()
    assert interpolator.sample(last + DELAY + 5.0)[1] == (30.0, 5.0)
    interpolator.record(players(p1={"x": 50.0, "y": 5.0}), last + 5.0)
    interpolator.record(players(p1={"x": 70.0, "y": 5.0}), last + 5.0 + 1 / RATE)
    x = interpolator.sample(last + 5.0 + 1 / RATE + DELAY / 2)[1][0]
    assert x is not None and 50.0 < x < 70.0


def test_apply_keeps_int_fields_ints_and_settles_on_the_exact_int() -> None:
    interpolator, last = moved_then_stopped(x_type=int)
    entities: dict[Any, Any] = {1: {"x": 30, "y": 5, "name": "ann"}}
    interpolator.apply(entities, last + DELAY - 0.075)  # render time between x = 20 and x = 30: x is 22.5
    assert type(entities[1]["x"]) is int and type(entities[1]["y"]) is int
    assert entities[1]["x"] in (22, 23) and entities[1]["y"] == 5
    interpolator.apply(entities, last + DELAY + 0.05)  # extrapolating
    assert type(entities[1]["x"]) is int
    interpolator.apply(entities, last + DELAY + 5.0)  # settled
    assert entities[1] == {"x": 30, "y": 5, "name": "ann"}
    assert type(entities[1]["x"]) is int and type(entities[1]["y"]) is int


def test_apply_keeps_float_fields_floats() -> None:
    interpolator, last = moved_then_stopped(x_type=int)  # the server sent ints, the game holds floats
    entities: dict[Any, Any] = {1: {"x": 30.0, "y": 5.0}}
    interpolator.apply(entities, last + DELAY - 0.075)  # x is 22.5
    assert entities[1]["x"] == pytest.approx(22.5)
    assert type(entities[1]["x"]) is float


# ---- end to end: what the game draws -------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", [float, int])
def test_window_snapshot_of_a_stopped_entity_settles_on_the_servers_values(kind: type) -> None:
    """A backend moves a player for a few ticks and then leaves it alone (so it sends no more updates);
    the state the window hands to the game must end up with exactly the server's position and type."""
    steps = {"left": 8}

    def time_step(game_state: Any, dt: float) -> dict:
        if steps["left"] <= 0:
            return {}  # stopped: nothing changes, nothing is sent
        steps["left"] -= 1
        player = game_state.players[1]
        return {"players": {1: {"x": player["x"] + kind(7), "y": player["y"]}}}

    backend = Backend(GameState(players={1: {"x": kind(0), "y": kind(40)}}), time_step)
    window = GameWindow(size=(200, 150), fps=0, interpolate=[SnapshotInterpolator("players")])
    try:
        window.host(backend)
        final = kind(7 * 8)
        deadline = time.monotonic() + 5.0  # for both waits together
        run_until(
            window,
            lambda: window.client.connection is not None and window.client.connection.updates_received > 0,
            timeout=deadline - time.monotonic(),
            what="no state arrived",
        )

        def stopped() -> bool:  # the server's player has stopped at its final spot
            with window.client.access_game_state() as state:
                return state.players[1]["x"] == final

        run_until(
            window,
            stopped,
            timeout=deadline - time.monotonic(),
            what="the player did not reach its final spot",
        )
        updates = window.client.connection.updates_received
        # deliberately a second of frames: well past delay + extrapolation + settling, and no update may come
        settle_by = time.monotonic() + 1.0
        while time.monotonic() < settle_by:
            window.frame()
            time.sleep(0.005)
        assert window.client.connection.updates_received == updates, "the server kept sending updates"
        shown = window.snapshot()
        assert shown is not None
        player = vars(shown)["players"][1]
        assert player["x"] == final and player["y"] == kind(40)
        assert type(player["x"]) is kind and type(player["y"]) is kind
    finally:
        window.close()
