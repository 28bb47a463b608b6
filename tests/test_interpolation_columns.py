"""`SnapshotInterpolator` with many entities, some appearing, disappearing, reordered or not numbers.

The interpolator keeps snapshots as columns of numbers and takes fast paths when consecutive snapshots
hold the same entities; these tests check that what `sample` and `apply` give is what the documented
per-entity rules say, on the fast paths and on the slow ones, against a plain per-entity model.
"""

from __future__ import annotations

import bisect
import math
import os
import random
import time
from typing import Any, Optional

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from helpers import run_until  # noqa: E402

from pygase import TO_DELETE, Backend, GameState  # noqa: E402
from pygase_pygame import GameWindow  # noqa: E402
from pygase_pygame.interpolation import SnapshotInterpolator  # noqa: E402

pytestmark = pytest.mark.timeout(60)

DELAY = 0.05

Values = tuple[Optional[float], ...]


def fixed(**kwargs: Any) -> SnapshotInterpolator:
    """An interpolator of `things` whose delay is pinned, so render time is exactly `now - DELAY`."""
    return SnapshotInterpolator("things", min_delay=DELAY, max_delay=DELAY, **kwargs)


def moving(count: int, t: float) -> dict[int, dict[str, Any]]:
    return {
        i: {"x": 400.0 + 300.0 * math.cos(t + i), "y": 300.0 + 200.0 * math.sin(t + i)} for i in range(count)
    }


# ---- a plain per-entity model of the documented rules ----------------------------------------------------


def as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def recorded(entities: Any, fields: tuple[str, ...]) -> dict[Any, Values]:
    """What a snapshot holds: each dict entity's fields as numbers, if it has one at all."""
    result = {}
    if isinstance(entities, dict):
        for key, entity in entities.items():
            if isinstance(entity, dict):
                values = tuple(as_number(entity.get(field)) for field in fields)
                if any(value is not None for value in values):
                    result[key] = values
    return result


def lerp(a: Values, b: Values, fraction: float) -> Values:
    return tuple(
        va + (vb - va) * fraction if va is not None and vb is not None else (vb if vb is not None else va)
        for va, vb in zip(a, b)
    )


def model(history: list, render_time: float, interval: float, max_extrapolation: float) -> dict:
    """`sample` as its docstring describes it, entity by entity (history: (time, recorded) pairs)."""
    times = [time for time, _ in history]
    newest_time, newest = history[-1]

    def first(start: int, key: Any) -> Values:
        return next(entities[key] for _, entities in history[start:] if key in entities)

    if render_time >= newest_time:
        ahead = render_time - newest_time
        if ahead > max_extrapolation:
            settle = max(interval, 2.0 * max_extrapolation)
            progress = (ahead - max_extrapolation) / settle if settle > 0 else 1.0
            if progress >= 1.0:
                return dict(newest)
            ahead = max_extrapolation * (1.0 - progress * progress * (3.0 - 2.0 * progress))
        if ahead <= 0.0 or len(history) < 2:
            return dict(newest)
        base = max(0, min(len(history) - 2, bisect.bisect_right(times, newest_time - 0.5 * interval) - 1))
        result = {}
        for key, values in newest.items():
            for index in (base, len(history) - 2):
                time, entities = history[index]
                if key in entities:
                    result[key] = lerp(entities[key], values, 1.0 + ahead / (newest_time - time))
                    break
            else:
                result[key] = values
        return result
    index = bisect.bisect_right(times, render_time) - 1
    if index < 0:
        return {key: first(0, key) for key in newest}
    (time_a, a), (time_b, b) = history[index], history[index + 1]
    fraction = (render_time - time_a) / (time_b - time_a)
    result = {}
    for key in newest:
        if key not in a:
            result[key] = first(index + 1, key)
        elif key not in b:
            result[key] = a[key]
        else:
            result[key] = lerp(a[key], b[key], fraction)
    return result


def same(got: dict, expected: dict) -> bool:
    if list(got) != list(expected):
        return False
    for key, values in expected.items():
        for value, wanted in zip(got[key], values):
            if (value is None) != (wanted is None) or (wanted is not None and value != pytest.approx(wanted)):
                return False
    return True


# ---- sample --------------------------------------------------------------------------------------------


def test_a_thousand_moving_entities_are_interpolated_each_at_its_own_position():
    interpolator = fixed()
    for i in range(5):
        interpolator.record(GameState(things=moving(1000, 0.02 * i)), 1.0 + 0.02 * i)
    values = interpolator.sample(1.05 + DELAY)  # halfway between the snapshots at 1.04 and 1.06
    assert len(values) == 1000
    for key in (0, 1, 500, 999):
        x = (moving(1000, 0.04)[key]["x"] + moving(1000, 0.06)[key]["x"]) / 2
        y = (moving(1000, 0.04)[key]["y"] + moving(1000, 0.06)[key]["y"]) / 2
        assert values[key] == pytest.approx((x, y))


def test_entities_in_another_order_are_matched_by_key():
    interpolator = fixed()
    interpolator.record(GameState(things={i: {"x": float(i), "y": 0.0} for i in range(100)}), 1.0)
    interpolator.record(
        GameState(things={i: {"x": float(i) + 10, "y": 2.0} for i in reversed(range(100))}), 1.1
    )
    values = interpolator.sample(1.05 + DELAY)
    assert list(values) == list(reversed(range(100)))  # in the newest snapshot's order
    assert all(values[i] == pytest.approx((i + 5.0, 1.0)) for i in range(100))


def test_one_entity_appearing_among_many_does_not_disturb_the_others():
    interpolator = fixed()
    interpolator.record(GameState(things={i: {"x": 0.0, "y": 0.0} for i in range(500)}), 1.0)
    crowd = {i: {"x": 10.0, "y": 0.0} for i in range(500)}
    crowd[7777] = {"x": 3.0, "y": 4.0}
    interpolator.record(GameState(things=crowd), 1.1)
    values = interpolator.sample(1.05 + DELAY)
    assert values[7777] == (3.0, 4.0)  # shown where it appears
    assert all(values[i] == pytest.approx((5.0, 0.0)) for i in range(500))
    del crowd[3]
    interpolator.record(GameState(things=crowd), 1.2)
    values = interpolator.sample(1.15 + DELAY)
    assert 3 not in values and len(values) == 500
    assert values[4] == pytest.approx((10.0, 0.0))


def test_one_entity_that_is_not_a_number_among_many():
    interpolator = fixed()
    state = GameState(things={i: {"x": 0.0, "y": 0.0} for i in range(300)})
    interpolator.record(state, 1.0)
    later = GameState(things={i: {"x": 2.0, "y": 2.0} for i in range(300)})
    later.things[5] = {"x": "far", "y": 2.0}
    later.things[6] = "not an entity"
    later.things[7] = {"x": float("inf"), "y": True}
    interpolator.record(later, 1.1)
    values = interpolator.sample(1.05 + DELAY)
    assert values[5] == pytest.approx((0.0, 1.0))  # x: only the older snapshot has a number
    assert 6 not in values and 7 not in values
    assert values[8] == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("seed", range(8))
def test_sample_follows_the_per_entity_rules_through_arrivals_departures_and_odd_values(seed):
    rng = random.Random(seed)
    fields = ("x", "y")
    interpolator = fixed(history=8, max_extrapolation=0.05)
    present = set(range(20))
    history: list = []
    now = 1.0
    odd = ["up", None, True, float("nan"), 3, 2**2000]
    for step in range(40):
        if rng.random() < 0.3:
            present.add(rng.randrange(40))
        if rng.random() < 0.3 and present:
            present.discard(rng.choice(sorted(present)))
        keys = sorted(present)
        if rng.random() < 0.2:
            rng.shuffle(keys)
        things: dict[Any, Any] = {}
        for key in keys:
            if rng.random() < 0.05:
                things[key] = "not an entity"
                continue
            things[key] = {
                field: (rng.choice(odd) if rng.random() < 0.08 else rng.uniform(-100, 100))
                for field in fields
            }
        state = GameState()
        state.things = things  # (2**2000 cannot be sent, so GameState(...) would refuse it)
        now += rng.choice([0.02, 0.02, 0.02, 0.0001, 0.05])
        interpolator.record(state, now)
        snapshot = recorded(things, fields)
        if history and now <= history[-1][0]:
            history[-1] = (history[-1][0], snapshot)
        else:
            history.append((now, snapshot))
        history = history[-8:]
        interval = interpolator.update_interval or 0.0
        for ahead in (-0.2, -0.03, -0.011, 0.0, 0.004, 0.02, 0.06, 0.3):
            shown_at = now + ahead + DELAY
            got = interpolator.sample(shown_at)
            expected = model(history, shown_at - DELAY, interval, 0.05)  # (the same rounding)
            assert same(got, expected), (step, ahead)


# ---- apply ---------------------------------------------------------------------------------------------


def test_apply_writes_a_thousand_entities_and_keeps_their_other_fields():
    interpolator = fixed()
    interpolator.record(GameState(things={i: {"x": 0.0, "y": float(i)} for i in range(1000)}), 1.0)
    interpolator.record(GameState(things={i: {"x": 10.0, "y": float(i) + 2} for i in range(1000)}), 1.1)
    entities = {i: {"x": 10.0, "y": float(i) + 2, "name": f"n{i}"} for i in range(1000)}
    interpolator.apply(entities, 1.05 + DELAY)
    assert all(
        entities[i] == {"x": pytest.approx(5.0), "y": pytest.approx(i + 1.0), "name": f"n{i}"}
        for i in entities
    )


def test_apply_keeps_int_fields_ints_among_many():
    interpolator = fixed()
    interpolator.record(GameState(things={i: {"x": 0, "y": 0} for i in range(200)}), 1.0)
    interpolator.record(GameState(things={i: {"x": 10, "y": 3} for i in range(200)}), 1.1)
    entities = {i: {"x": 10, "y": 3} for i in range(200)}
    interpolator.apply(entities, 1.05 + DELAY)
    assert all(type(e["x"]) is int and e["x"] == 5 and type(e["y"]) is int for e in entities.values())


def test_apply_with_skip_and_a_copy_that_differs_from_the_snapshots():
    interpolator = fixed()
    interpolator.record(GameState(things={i: {"x": 0.0, "y": 0.0} for i in range(100)}), 1.0)
    interpolator.record(GameState(things={i: {"x": 2.0, "y": 2.0} for i in range(100)}), 1.1)
    entities: dict[Any, Any] = {i: {"x": 2.0, "y": 2.0} for i in range(100)}
    entities[3] = {"x": 2.0, "y": "stuck", "hp": 1}  # a field that is not a number here
    entities[4] = [2.0, 2.0]  # not a dict
    entities[5] = {"x": True, "y": 2}  # a bool is left alone, an int stays an int
    del entities[6]  # not in the game's copy: not added
    entities[1000] = {"x": 9.0, "y": 9.0}  # not in the snapshots: left alone
    interpolator.apply(entities, 1.05 + DELAY, skip=(7,))
    assert entities[0] == {"x": pytest.approx(1.0), "y": pytest.approx(1.0)}
    assert entities[3] == {"x": pytest.approx(1.0), "y": "stuck", "hp": 1}
    assert entities[4] == [2.0, 2.0]
    assert entities[5] == {"x": True, "y": 1} and type(entities[5]["y"]) is int
    assert 6 not in entities
    assert entities[7] == {"x": 2.0, "y": 2.0}  # skipped
    assert entities[1000] == {"x": 9.0, "y": 9.0}


def test_apply_gives_each_entity_the_values_sample_gives():
    rng = random.Random(3)
    interpolator = fixed()
    for i in range(4):
        things = {
            key: {"x": rng.uniform(0, 800), "y": rng.uniform(0, 600)} for key in range(0, 400, 1 + i % 2)
        }
        interpolator.record(GameState(things=things), 1.0 + 0.02 * i)
    now = 1.05 + DELAY
    entities = {key: {"x": 0.0, "y": 0.0} for key in range(400)}
    interpolator.apply(entities, now)
    for key, (x, y) in interpolator.sample(now).items():
        assert entities[key] == {"x": x, "y": y}


# ---- end to end: what a window draws -------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_window_draws_many_entities_with_arrivals_and_departures_and_settles_on_the_server():
    """A backend moves 400 entities for a few ticks, adds one (with a name) and removes one, then stops;
    the state each frame hands to the game holds each entity's own fields, positions near the range it
    moved through, and ends with exactly the server's values."""
    ticks = {"done": 0}
    moves = 10

    def time_step(game_state: Any, dt: float) -> dict:
        if ticks["done"] >= moves:
            return {}  # stopped: nothing changes, nothing is sent
        ticks["done"] += 1
        things: dict[Any, Any] = {key: {"x": thing["x"] + 5.0} for key, thing in game_state.things.items()}
        if ticks["done"] == 3:
            things[1000] = {"x": 1.0, "y": 2.0, "name": "new"}
        if ticks["done"] == 5:
            things[0] = TO_DELETE
        return {"things": things}

    start = {i: {"x": 0.0, "y": float(i), "name": f"n{i}"} for i in range(400)}
    backend = Backend(GameState(things=start), time_step)
    window = GameWindow(size=(200, 150), fps=0, interpolate=[SnapshotInterpolator("things")])
    seen: list = []

    @window.hook
    def draw(state: Any) -> None:
        seen.append({key: (thing["x"], thing["y"], thing["name"]) for key, thing in state.things.items()})

    try:
        window.host(backend)

        def stopped() -> bool:
            with window.client.access_game_state() as state:
                return getattr(state, "things", {}).get(1, {}).get("x") == 5.0 * moves

        run_until(window, stopped, timeout=10.0, what="the entities did not reach their final spots")
        settle_by = time.monotonic() + 1.0  # well past delay, extrapolation and settling
        while time.monotonic() < settle_by:
            window.frame()
            time.sleep(0.005)
    finally:
        window.close()
    assert seen
    overshoot = 5.0 * moves  # (extrapolation may go past the end for a moment before it settles)
    for shown in seen:
        for key, (x, y, name) in shown.items():
            if key == 1000:
                assert name == "new" and y == 2.0 and 1.0 - overshoot <= x <= 1.0 + 5.0 * moves + overshoot
            else:
                assert name == f"n{key}" and y == float(key) and -overshoot <= x <= 5.0 * moves + overshoot
    final = seen[-1]
    assert 0 not in final and len(final) == 400
    assert final[1000] == (1.0 + 5.0 * (moves - 3), 2.0, "new")
    assert all(final[key] == (5.0 * moves, float(key), f"n{key}") for key in range(1, 400))
