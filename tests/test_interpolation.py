"""Unit tests of `pygase_pygame.interpolation`: snapshot interpolation and client-side prediction."""

from __future__ import annotations

import copy
import random
import threading
import time
from typing import Any

import pytest
from helpers import players

from pygase import GameState
from pygase_pygame.interpolation import Predictor, SnapshotInterpolator

# ---- helpers -------------------------------------------------------------------------------------------


def fixed(delay: float = 0.1, **kwargs: Any) -> SnapshotInterpolator:
    """An interpolator whose delay is pinned, so render time is exactly `now - delay`."""
    return SnapshotInterpolator("players", min_delay=delay, max_delay=delay, **kwargs)


def feed_steady(
    interpolator: SnapshotInterpolator, rate: float, seconds: float, speed: float = 10.0
) -> float:
    """Record a player moving at `speed` along x, `rate` updates a second; return the last arrival time."""
    interval = 1.0 / rate
    now = 0.0
    for i in range(round(seconds * rate) + 1):
        now = i * interval
        interpolator.record(players(p1={"x": speed * now, "y": 0.0}), now)
    return now


# ---- SnapshotInterpolator: interpolating ---------------------------------------------------------------


def test_sample_without_snapshots_is_empty():
    assert fixed().sample(1.0) == {}


def test_a_single_snapshot_is_shown_as_it_is():
    interpolator = fixed()
    interpolator.record(players(p1={"x": 3.0, "y": 4.0}), 1.0)
    assert interpolator.sample(1.0) == {1: (3.0, 4.0)}
    assert interpolator.sample(5.0) == {1: (3.0, 4.0)}


def test_halfway_between_two_snapshots_gives_the_midpoint():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 10.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 6.0}), 1.1)
    assert interpolator.sample(1.05 + 0.1)[1] == pytest.approx((5.0, 8.0))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.8, 0.999])
def test_interpolation_is_linear_between_the_snapshots_around_render_time(fraction):
    interpolator = fixed(0.1)
    for i, x in enumerate([0.0, 4.0, 10.0, 30.0]):
        interpolator.record(players(p1={"x": x, "y": -x}), 1.0 + 0.1 * i)
    # render time between the snapshots at 1.1 (x=4) and 1.2 (x=10)
    x = 4.0 + 6.0 * fraction
    assert interpolator.sample(1.1 + 0.1 * fraction + 0.1)[1] == pytest.approx((x, -x))


def test_exactly_at_a_snapshot_gives_its_values():
    interpolator = fixed(0.1)
    for i, x in enumerate([0.0, 4.0, 10.0]):
        interpolator.record(players(p1={"x": x, "y": 0.0}), 1.0 + 0.1 * i)
    assert interpolator.sample(1.1 + 0.1)[1] == pytest.approx((4.0, 0.0))


def test_render_time_lags_by_delay():
    interpolator = SnapshotInterpolator("players")
    last = feed_steady(interpolator, rate=20, seconds=5, speed=10.0)
    now = last + 0.01
    values = interpolator.sample(now)
    delay = interpolator.delay
    assert 0.03 <= delay <= 0.35
    assert values[1] == pytest.approx((10.0 * (now - delay), 0.0))


def test_custom_fields_are_returned_in_their_order():
    interpolator = SnapshotInterpolator("ships", fields=("angle", "x"), min_delay=0.1, max_delay=0.1)
    interpolator.record(GameState(ships={"a": {"x": 0.0, "angle": 90.0}}), 1.0)
    interpolator.record(GameState(ships={"a": {"x": 2.0, "angle": 180.0}}), 1.1)
    assert interpolator.sample(1.05 + 0.1) == {"a": pytest.approx((135.0, 1.0))}


def test_integer_values_are_interpolated_as_floats():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0, "y": 1}), 1.0)
    interpolator.record(players(p1={"x": 1, "y": 1}), 1.1)
    assert interpolator.sample(1.05 + 0.1)[1] == pytest.approx((0.5, 1.0))


# ---- SnapshotInterpolator: the adaptive delay ----------------------------------------------------------


def test_delay_is_30_to_50_ms_at_50_updates_a_second():
    interpolator = SnapshotInterpolator("players")
    feed_steady(interpolator, rate=50, seconds=5)
    assert 0.03 <= interpolator.delay <= 0.05
    assert interpolator.update_interval == pytest.approx(0.02)


def test_delay_is_150_to_250_ms_at_10_updates_a_second():
    interpolator = SnapshotInterpolator("players")
    feed_steady(interpolator, rate=10, seconds=10)
    assert 0.15 <= interpolator.delay <= 0.25
    assert interpolator.update_interval == pytest.approx(0.1)


def test_delay_grows_with_jitter():
    clean = SnapshotInterpolator("players")
    feed_steady(clean, rate=50, seconds=5)
    jittery = SnapshotInterpolator("players")
    rng = random.Random(1)
    now = 0.0
    for i in range(250):
        now = max(now + 0.001, i * 0.02 + rng.uniform(0.0, 0.03))  # up to 30 ms late
        jittery.record(players(p1={"x": float(i), "y": 0.0}), now)
    assert jittery.delay > clean.delay + 0.01


def test_delay_is_clamped_to_min_and_max_delay():
    slow = SnapshotInterpolator("players", min_delay=0.05, max_delay=0.2)
    feed_steady(slow, rate=2, seconds=10)
    assert slow.delay == pytest.approx(0.2)
    fast = SnapshotInterpolator("players", min_delay=0.05, max_delay=0.2)
    feed_steady(fast, rate=200, seconds=3)
    assert fast.delay == pytest.approx(0.05)


def test_delay_before_two_updates_is_within_bounds():
    interpolator = SnapshotInterpolator("players", min_delay=0.02, max_delay=0.3)
    assert 0.02 <= interpolator.delay <= 0.3
    assert interpolator.update_interval is None


def test_delay_adapts_gradually_when_the_update_rate_drops():
    interpolator = SnapshotInterpolator("players")
    last = feed_steady(interpolator, rate=50, seconds=3)
    before = interpolator.delay
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), last + 0.3)  # a long gap
    assert interpolator.delay == pytest.approx(before, abs=1e-9)  # no jump at once
    interpolator.sample(last + 0.4)
    assert before < interpolator.delay <= before + 0.2 * 0.1 + 1e-9  # it rises at most 0.2 s per second


def test_delay_covers_repeated_stalls_of_the_link():
    interpolator = SnapshotInterpolator("players")
    now = 0.0
    for i in range(200):
        now += 0.12 if i % 10 == 0 else 0.02  # 50 updates a second, but a 120 ms gap every 10 updates
        interpolator.record(players(p1={"x": 0.0, "y": 0.0}), now)
    assert interpolator.delay > 0.12


def test_the_delay_falls_back_after_a_single_stall():
    interpolator = SnapshotInterpolator("players")
    last = feed_steady(interpolator, rate=50, seconds=2)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), last + 0.3)
    for i in range(1, 500):  # then 10 clean seconds
        interpolator.record(players(p1={"x": 0.0, "y": 0.0}), last + 0.3 + i * 0.02)
    assert interpolator.delay <= 0.05


def test_render_time_never_runs_backwards_on_a_jittery_link():
    interpolator = SnapshotInterpolator("players")
    rng = random.Random(7)
    arrivals = []
    t = 0.0
    for i in range(300):
        t = max(t, i * 0.02 + rng.choice([0.0, 0.0, 0.0, 0.005, 0.04, 0.12]))  # bursts after stalls
        arrivals.append((t, 10.0 * i * 0.02))  # x = 10 * server time
    frame, shown = 0.0, []
    index = 0
    while frame < arrivals[-1][0]:
        while index < len(arrivals) and arrivals[index][0] <= frame:
            interpolator.record(players(p1={"x": arrivals[index][1], "y": 0.0}), arrivals[index][0])
            index += 1
        if index:
            shown.append(interpolator.sample(frame)[1][0])
        frame += 1 / 60
    # x is monotonic in server time; extrapolation may overshoot slightly, so allow tiny backward steps
    steps = [b - a for a, b in zip(shown, shown[1:])]
    assert min(steps) > -0.1
    assert shown[-1] > 50.0


# ---- SnapshotInterpolator: extrapolation and the edges of the history ----------------------------------


def test_late_updates_are_extrapolated_from_the_last_two_snapshots():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": -5.0}), 1.1)  # 100/s along x, -50/s along y
    assert interpolator.sample(1.15 + 0.1)[1] == pytest.approx((15.0, -7.5))


def test_extrapolation_stops_after_max_extrapolation_and_settles_on_the_newest_snapshot():
    interpolator = fixed(0.1, max_extrapolation=0.05)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 0.0}), 1.1)
    assert interpolator.sample(1.1 + 0.1 + 0.05)[1] == pytest.approx((15.0, 0.0))
    x = interpolator.sample(1.1 + 0.1 + 0.1)[1][0]  # easing back: not further than the limit
    assert x is not None and 10.0 < x < 15.0
    assert interpolator.sample(1.1 + 0.1 + 0.5)[1] == (10.0, 0.0)  # no update came: the newest is exact
    assert interpolator.sample(1.1 + 0.1 + 60.0)[1] == (10.0, 0.0)


def test_a_burst_of_updates_does_not_make_extrapolation_overshoot():
    interpolator = fixed(0.05)
    for i in range(10):  # 10 units a second, 50 updates a second
        interpolator.record(players(p1={"x": 0.2 * i, "y": 0.0}), 0.02 * i)
    # a stall, then three updates at nearly the same moment, then silence
    for j, i in enumerate(range(10, 13)):
        interpolator.record(players(p1={"x": 0.2 * i, "y": 0.0}), 0.30 + 0.0001 * j)
    x = interpolator.sample(0.30 + 0.05 + 0.1)[1][0]
    assert x is not None
    assert 2.4 <= x <= 2.4 + 10.0 * 0.1 * 1.5  # not 0.2 units per 0.1 ms


def test_zero_max_extrapolation_holds_the_newest_snapshot():
    interpolator = fixed(0.1, max_extrapolation=0.0)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 0.0}), 1.1)
    assert interpolator.sample(3.0)[1] == (10.0, 0.0)


def test_an_entity_new_in_the_newest_snapshot_is_not_extrapolated():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 0.0}, p2={"x": 7.0, "y": 7.0}), 1.1)
    assert interpolator.sample(1.25)[2] == (7.0, 7.0)


def test_render_time_older_than_the_oldest_snapshot_uses_the_oldest():
    interpolator = fixed(0.3)
    interpolator.record(players(p1={"x": 1.0, "y": 2.0}), 1.0)
    interpolator.record(players(p1={"x": 5.0, "y": 6.0}), 1.1)
    assert interpolator.sample(1.15)[1] == (1.0, 2.0)  # render time 0.85


def test_history_is_bounded_and_keeps_the_newest_snapshots():
    interpolator = fixed(10.0, history=4)
    for i in range(10):
        interpolator.record(players(p1={"x": float(i), "y": 0.0}), float(i))
    assert len(interpolator._snapshots) == 4
    assert interpolator.sample(9.5)[1] == (6.0, 0.0)  # the oldest kept


def test_an_entity_that_appears_only_in_the_newest_snapshot_shows_its_newest_values():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 0.0}), 1.1)
    interpolator.record(players(p1={"x": 20.0, "y": 0.0}, p2={"x": 3.0, "y": 4.0}), 1.2)
    values = interpolator.sample(1.15 + 0.1)
    assert values[1] == pytest.approx((15.0, 0.0))
    assert values[2] == (3.0, 4.0)


def test_an_entity_that_appeared_recently_is_interpolated_once_render_time_reaches_it():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}, p2={"x": 2.0, "y": 0.0}), 1.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}, p2={"x": 4.0, "y": 0.0}), 1.2)
    assert interpolator.sample(1.05 + 0.1)[2] == (2.0, 0.0)  # before it appeared: where it appeared
    assert interpolator.sample(1.15 + 0.1)[2] == pytest.approx((3.0, 0.0))


def test_entities_removed_from_the_newest_snapshot_are_not_returned():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}, p2={"x": 1.0, "y": 1.0}), 1.0)
    interpolator.record(players(p1={"x": 1.0, "y": 0.0}, p2={"x": 2.0, "y": 2.0}), 1.1)
    interpolator.record(players(p1={"x": 2.0, "y": 0.0}), 1.2)
    assert set(interpolator.sample(1.15 + 0.1)) == {1}


def test_an_entity_missing_for_a_while_holds_until_it_is_back():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(), 1.1)
    interpolator.record(players(p1={"x": 9.0, "y": 0.0}), 1.2)
    assert interpolator.sample(1.05 + 0.1)[1] == (0.0, 0.0)


def test_a_missing_collection_means_no_entities():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(GameState(), 1.1)
    assert interpolator.sample(2.0) == {}
    interpolator.record(GameState(players=[1, 2]), 1.2)  # not a dict: no entities either
    assert interpolator.sample(2.0) == {}


def test_non_numeric_fields_and_entities_are_ignored():
    interpolator = fixed(0.1)
    state = GameState()  # 2**2000 cannot be sent, so GameState(...) refuses it: set it afterwards
    state.players = {
        1: {"x": 1.0, "y": "up", "name": "ann"},
        2: {"x": True, "y": None},
        3: "not an entity",
        4: {"name": "no position"},
        5: {"x": float("nan"), "y": 2**2000},
        6: {"x": 1, "y": 2.5},
    }
    interpolator.record(state, 1.0)
    assert interpolator.sample(1.0) == {1: (1.0, None), 6: (1.0, 2.5)}


def test_record_copies_values_instead_of_keeping_the_state():
    interpolator = fixed(0.1)
    state = players(p1={"x": 1.0, "y": 2.0})
    interpolator.record(state, 1.0)
    state.players[1]["x"] = 99.0
    state.players[2] = {"x": 0.0, "y": 0.0}
    assert interpolator.sample(1.0) == {1: (1.0, 2.0)}


def test_a_snapshot_recorded_at_the_same_time_replaces_the_newest():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 0.0}), 1.1)
    interpolator.record(players(p1={"x": 20.0, "y": 0.0}), 1.1)
    assert len(interpolator._snapshots) == 2
    assert interpolator.sample(1.05 + 0.1)[1] == pytest.approx((10.0, 0.0))


def test_reset_forgets_snapshots_and_timing():
    interpolator = SnapshotInterpolator("players")
    feed_steady(interpolator, rate=50, seconds=1)
    interpolator.reset()
    assert interpolator.sample(2.0) == {}
    assert interpolator.update_interval is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fields": ()},
        {"min_delay": -0.1},
        {"min_delay": 0.5, "max_delay": 0.1},
        {"max_extrapolation": -1.0},
        {"history": 1},
    ],
)
def test_invalid_interpolator_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SnapshotInterpolator("players", **kwargs)


# ---- SnapshotInterpolator.apply ------------------------------------------------------------------------


def test_apply_overwrites_the_interpolated_fields_in_place():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0, "name": "ann"}), 1.0)
    interpolator.record(players(p1={"x": 10.0, "y": 20.0, "name": "ann"}), 1.1)
    entities = {1: {"x": 10.0, "y": 20.0, "name": "ann", "hp": 3}}
    entity = entities[1]
    interpolator.apply(entities, 1.05 + 0.1)
    assert entities[1] is entity
    assert entity == {"x": pytest.approx(5.0), "y": pytest.approx(10.0), "name": "ann", "hp": 3}


def test_apply_honours_skip_and_leaves_other_entities_alone():
    interpolator = fixed(0.1)
    interpolator.record(
        players(p1={"x": 0.0, "y": 0.0}, p2={"x": 0.0, "y": 0.0}, p3={"x": 0.0, "y": 0.0}), 1.0
    )
    interpolator.record(
        players(p1={"x": 2.0, "y": 2.0}, p2={"x": 2.0, "y": 2.0}, p3={"x": 2.0, "y": 2.0}), 1.1
    )
    entities = {1: {"x": 2.0, "y": 2.0}, 2: {"x": 2.0, "y": 2.0}, 4: {"x": 8.0, "y": 8.0}}
    interpolator.apply(entities, 1.05 + 0.1, skip=(2,))
    assert entities == {
        1: {"x": pytest.approx(1.0), "y": pytest.approx(1.0)},
        2: {"x": 2.0, "y": 2.0},  # skipped
        4: {"x": 8.0, "y": 8.0},  # not in the snapshots
    }  # and 3, only in the snapshots, is not added


def test_apply_leaves_non_numeric_fields_untouched():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": 0.0}), 1.0)
    interpolator.record(players(p1={"x": 2.0, "y": 2.0}), 1.1)
    entities: dict[Any, Any] = {1: {"x": None, "y": 2.0, "name": "ann"}}
    interpolator.apply(entities, 1.05 + 0.1)
    assert entities == {1: {"x": None, "y": pytest.approx(1.0), "name": "ann"}}
    other: dict[Any, Any] = {1: "not a dict"}
    interpolator.apply(other, 1.15)
    assert other == {1: "not a dict"}


def test_apply_does_not_write_fields_unknown_in_the_snapshots():
    interpolator = fixed(0.1)
    interpolator.record(players(p1={"x": 0.0, "y": "?"}), 1.0)
    interpolator.record(players(p1={"x": 2.0, "y": "?"}), 1.1)
    entities = {1: {"x": 2.0, "y": 5.0}}
    interpolator.apply(entities, 1.15)
    assert entities == {1: {"x": pytest.approx(1.0), "y": 5.0}}


# ---- Predictor -----------------------------------------------------------------------------------------

SPEED = 10.0


def move(entity: dict[str, Any], input_data: dict[str, Any], dt: float) -> dict[str, Any]:
    """The server's rule for one MOVE event."""
    return {
        "x": entity["x"] + input_data["dx"] * SPEED * dt,
        "y": entity["y"] + input_data["dy"] * SPEED * dt,
    }


def predictor(**kwargs: Any) -> Predictor:
    return Predictor("players", 1, move, **kwargs)


def server(x: float, y: float, seq: int, **more: Any) -> dict[str, Any]:
    return {"x": x, "y": y, "input_seq": seq, **more}


def test_input_returns_sequence_numbers_counting_from_1():
    p = predictor()
    assert [p.input({"dx": 1, "dy": 0}, 0.1) for _ in range(3)] == [1, 2, 3]


def test_nothing_is_predicted_before_the_first_reconcile():
    p = predictor()
    p.input({"dx": 1, "dy": 0}, 0.1)
    assert p.predicted is None
    entities = {1: {"x": 0.0, "y": 0.0}}
    p.apply(entities)
    assert entities == {1: {"x": 0.0, "y": 0.0}}


def test_input_is_applied_to_the_prediction_at_once():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0, name="ann"))
    p.input({"dx": 1, "dy": 0}, 0.1)
    assert p.predicted == {"x": pytest.approx(1.0), "y": 0.0, "input_seq": 0, "name": "ann"}
    p.input({"dx": 0, "dy": -1}, 0.5)
    assert p.predicted == {"x": pytest.approx(1.0), "y": pytest.approx(-5.0), "input_seq": 0, "name": "ann"}


def test_reconcile_drops_acknowledged_inputs_and_replays_the_rest():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0))
    for _ in range(5):
        p.input({"dx": 1, "dy": 0}, 0.1)  # 1 unit each
    assert p.pending == 5
    p.reconcile(server(3.0, 0.0, 3))  # the server processed inputs 1 to 3
    assert p.pending == 2
    assert p.predicted == {"x": pytest.approx(5.0), "y": 0.0, "input_seq": 3}
    assert p.error == pytest.approx(0.0)


def test_inputs_made_before_the_first_state_are_replayed_on_it():
    p = predictor()
    p.input({"dx": 1, "dy": 0}, 0.1)
    p.input({"dx": 1, "dy": 0}, 0.1)
    p.reconcile(server(100.0, 0.0, 1))
    assert p.predicted is not None
    assert p.predicted["x"] == pytest.approx(101.0)


def test_prediction_corrects_to_the_server_when_the_server_disagrees():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0))
    for _ in range(4):
        p.input({"dx": 1, "dy": 0}, 0.1)  # predicted x = 4
    p.reconcile(server(2.0, 0.0, 4))  # a wall stopped the player at x = 2
    assert p.predicted == {"x": 2.0, "y": 0.0, "input_seq": 4}
    assert p.error == pytest.approx(2.0)
    assert p.pending == 0


def test_error_measures_the_correction_over_the_moved_fields():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0, hp=100))
    p.input({"dx": 1, "dy": 1}, 0.1)  # predicted (1, 1)
    p.reconcile(server(4.0, 5.0, 1, hp=50))  # hp is not a moved field
    assert p.error == pytest.approx(5.0)


def test_a_missing_ack_field_counts_as_nothing_acknowledged():
    p = predictor()
    p.input({"dx": 1, "dy": 0}, 0.1)
    p.reconcile({"x": 0.0, "y": 0.0})
    assert p.pending == 1
    assert p.predicted == {"x": pytest.approx(1.0), "y": 0.0}


def test_a_custom_ack_field_is_used():
    p = predictor(ack_field="last_move")
    p.input({"dx": 1, "dy": 0}, 0.1)
    p.input({"dx": 1, "dy": 0}, 0.1)
    p.reconcile({"x": 1.0, "y": 0.0, "last_move": 1, "input_seq": 2})
    assert p.pending == 1


def test_an_ack_beyond_the_sent_inputs_continues_the_numbering_after_it():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 40))  # e.g. the client restarted and the server kept its count
    assert p.input({"dx": 1, "dy": 0}, 0.1) == 41
    p.reconcile(server(0.0, 0.0, 40))
    assert p.pending == 1


def test_the_pending_input_list_is_bounded():
    p = predictor(max_pending=16)
    for _ in range(1000):
        p.input({"dx": 1, "dy": 0}, 0.001)
    assert p.pending == 16
    assert predictor().max_pending == 256


def test_predicted_and_reconcile_copy_instead_of_sharing():
    p = predictor()
    entity = server(0.0, 0.0, 0, items=[1, 2])
    p.reconcile(entity)
    entity["items"].append(3)
    entity["x"] = 50.0
    predicted = p.predicted
    assert predicted == {"x": 0.0, "y": 0.0, "input_seq": 0, "items": [1, 2]}
    predicted["items"].append(4)
    assert p.predicted == {"x": 0.0, "y": 0.0, "input_seq": 0, "items": [1, 2]}


def test_input_data_is_copied():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0))
    data = {"dx": 1, "dy": 0}
    p.input(data, 0.1)
    data["dx"] = 100
    p.reconcile(server(0.0, 0.0, 0))
    assert p.predicted is not None
    assert p.predicted["x"] == pytest.approx(1.0)


def test_apply_overwrites_the_local_entity_in_place():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0, name="ann"))
    p.input({"dx": 1, "dy": 0}, 0.1)
    entities = {1: {"x": 0.5, "y": 0.0, "input_seq": 0, "name": "ann"}, 2: {"x": 9.0, "y": 9.0}}
    local = entities[1]
    p.apply(entities)
    assert entities[1] is local
    assert local == {"x": pytest.approx(1.0), "y": 0.0, "input_seq": 0, "name": "ann"}
    assert entities[2] == {"x": 9.0, "y": 9.0}


def test_apply_does_not_add_a_local_entity_that_is_gone():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0))
    entities: dict[Any, Any] = {2: {"x": 9.0, "y": 9.0}}
    p.apply(entities)
    assert entities == {2: {"x": 9.0, "y": 9.0}}


def test_reconcile_state_finds_the_local_entity_in_the_game_state():
    p = predictor()
    p.reconcile_state(GameState())  # no collection yet: nothing happens
    p.reconcile_state(players(p2={"x": 1.0, "y": 1.0}))  # no local entity yet: nothing happens
    assert p.predicted is None
    p.reconcile_state(players(p1=server(3.0, 4.0, 0), p2={"x": 1.0, "y": 1.0}))
    assert p.predicted == {"x": 3.0, "y": 4.0, "input_seq": 0}


def test_reset_forgets_the_prediction_but_keeps_counting():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0))
    p.input({"dx": 1, "dy": 0}, 0.1)
    p.reset()
    assert p.predicted is None
    assert p.pending == 0
    assert p.input({"dx": 1, "dy": 0}, 0.1) == 2


def test_invalid_max_pending_is_rejected():
    with pytest.raises(ValueError):
        predictor(max_pending=0)


def test_prediction_and_interpolation_work_together_on_one_snapshot():
    interpolator = fixed(0.1)
    p = predictor()
    for i, t in enumerate([1.0, 1.1]):
        state = players(p1=server(0.0, 0.0, 0), p2={"x": 10.0 * i, "y": 0.0})
        interpolator.record(state, t)
        p.reconcile_state(state)
    p.input({"dx": 1, "dy": 0}, 0.1)
    entities = copy.deepcopy(players(p1=server(0.0, 0.0, 0), p2={"x": 10.0, "y": 0.0}).players)
    interpolator.apply(entities, 1.15, skip=(p.key,))
    p.apply(entities)
    assert entities[1]["x"] == pytest.approx(1.0)
    assert entities[2]["x"] == pytest.approx(5.0)


# ---- thread safety -------------------------------------------------------------------------------------


def test_recording_and_sampling_in_two_threads_is_safe():
    interpolator = SnapshotInterpolator("players", history=8)
    errors: list[BaseException] = []
    stop = threading.Event()
    start = time.perf_counter()

    def network() -> None:
        try:
            for i in range(3000):
                entities = {key: {"x": float(i), "y": float(key)} for key in range(i % 20)}
                interpolator.record(GameState(players=entities), start + i * 0.001)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            stop.set()

    thread = threading.Thread(target=network)
    thread.start()
    samples = 0
    try:
        while not stop.is_set() and time.perf_counter() - start < 10.0:
            values = interpolator.sample(time.perf_counter())
            for key, (x, y) in values.items():
                assert x is not None and 0.0 <= x < 3000.0
                assert y == float(key)
            interpolator.apply({1: {"x": 0.0, "y": 1.0}}, time.perf_counter(), skip=(2,))
            _ = interpolator.delay
            samples += 1
    finally:
        thread.join(timeout=10.0)
    assert not thread.is_alive()
    assert not errors
    assert samples > 0


def test_input_and_reconcile_in_two_threads_stay_consistent():
    p = predictor()
    p.reconcile(server(0.0, 0.0, 0))
    errors: list[BaseException] = []
    done = threading.Event()

    def network() -> None:
        try:
            while not done.is_set():
                # the server acknowledges what it has "seen" so far, each input moving 1 along x
                seen = max(0, p._sequence - 3)
                p.reconcile(server(float(seen), 0.0, seen))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=network)
    thread.start()
    try:
        for _ in range(2000):
            p.input({"dx": 1, "dy": 0}, 0.1)
    finally:
        done.set()
        thread.join(timeout=10.0)
    assert not thread.is_alive()
    assert not errors
    # The network thread acknowledged at most input 1997; acks only grow, as they do from a real server.
    p.reconcile(server(1997.0, 0.0, 1997))
    predicted = p.predicted
    assert predicted is not None
    assert predicted["x"] == pytest.approx(2000.0)
    assert p.pending == 3
