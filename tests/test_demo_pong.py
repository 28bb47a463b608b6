"""The pong demo: its rules (ball, paddles, seats, scoring, matches, bots), drawing, and a local run."""

from __future__ import annotations

import math
import os
import random

import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402

from pygase import GameStateUpdate  # noqa: E402
from pygase_demos._framework import PlayerView, run_demo  # noqa: E402
from pygase_demos.pong import rules  # noqa: E402
from pygase_demos.pong.game import DEMO, PongScreen  # noqa: E402
from pygase_pygame import GameWindow, Predictor  # noqa: E402

pytestmark = pytest.mark.timeout(30)

TICK = 0.02


def apply(state, changes):
    """The state with `changes` deep-merged, as the server does it."""
    return state + GameStateUpdate(state.time_order + 1, **changes) if changes else state


def join(state, *names):
    ids = []
    for name in names:
        player, changes = rules.add_player(state, name, random.Random(1))
        state = apply(state, changes)
        ids.append(player)
    return state, ids


def run(state, seconds, rng=None, until=None):
    rng = rng or random.Random(3)
    for _ in range(round(seconds / TICK)):
        state = apply(state, rules.step(state, TICK, rng))
        if until is not None and until(state):
            break
    return state


def in_play(state, ball):
    return apply(state, {"phase": "play", "timer": 0.0, "objects": {"ball": ball}})


def speed(ball):
    return math.hypot(ball["vx"], ball["vy"])


# ---- the ball ----------------------------------------------------------------------------------------


def test_ball_bounces_off_the_top_and_bottom_walls():
    ball, events = rules.advance_ball({"x": 400.0, "y": 10.0, "vx": 100.0, "vy": -300.0}, {}, 0.02)
    assert events == ["wall"]
    assert ball["vy"] == 300.0 and ball["y"] >= rules.BALL_R
    ball, events = rules.advance_ball({"x": 400.0, "y": 588.0, "vx": 100.0, "vy": 300.0}, {}, 0.02)
    assert events == ["wall"]
    assert ball["vy"] == -300.0 and ball["y"] <= rules.HEIGHT - rules.BALL_R


def test_ball_bounces_off_a_paddle_faster_at_an_angle_set_by_where_it_hits():
    face = rules.LEFT_X + rules.PADDLE_W / 2 + rules.BALL_R
    centre_hit, events = rules.advance_ball(
        {"x": face + 3, "y": 300.0, "vx": -400.0, "vy": 0.0}, {"left": 300.0}, 0.02
    )
    assert events == ["hit left"]
    assert centre_hit["vx"] > 0 and abs(centre_hit["vy"]) < 1e-6
    assert speed(centre_hit) == pytest.approx(400.0 * rules.SPEEDUP)
    edge_hit, _ = rules.advance_ball(
        {"x": face + 3, "y": 340.0, "vx": -400.0, "vy": 0.0}, {"left": 300.0}, 0.02
    )
    assert edge_hit["vx"] > 0 and edge_hit["vy"] > 0.5 * speed(edge_hit)  # the low end sends it down
    right_face = rules.RIGHT_X - rules.PADDLE_W / 2 - rules.BALL_R
    back, events = rules.advance_ball(
        {"x": right_face - 3, "y": 280.0, "vx": 400.0, "vy": 0.0}, {"right": 300.0}, 0.02
    )
    assert events == ["hit right"] and back["vx"] < 0 and back["vy"] < 0


def test_ball_speed_is_capped_and_a_fast_ball_never_passes_through_a_paddle():
    ball = {"x": 400.0, "y": 300.0, "vx": -rules.MAX_SPEED, "vy": 0.0}
    for _ in range(40):  # a long rally between two walls of paddles, with coarse ticks
        ball, _ = rules.advance_ball(ball, {"left": ball["y"], "right": ball["y"]}, 0.05)
        assert speed(ball) <= rules.MAX_SPEED + 1e-6
        assert rules.LEFT_X < ball["x"] < rules.RIGHT_X


def test_a_miss_scores_for_the_other_side_and_the_ball_is_served_again():
    state, _ = join(rules.initial_state(), "Ann", "Ben")
    state = apply(state, {"objects": {"left": {"y": 100.0}}})
    state = in_play(state, {"x": 200.0, "y": 500.0, "vx": -500.0, "vy": 0.0})
    state = run(state, 2.0, until=lambda s: s.phase != "play")
    assert state.score == {"left": 0, "right": 1}
    assert state.phase == "serve"
    assert (state.objects["ball"]["x"], state.objects["ball"]["vx"]) == (rules.WIDTH / 2, 0.0)
    state = run(state, rules.SERVE_PAUSE + 0.1, until=lambda s: s.phase == "play")
    assert state.phase == "play"
    assert state.objects["ball"]["vx"] < 0  # served to the player who lost the point
    assert speed(state.objects["ball"]) == pytest.approx(rules.SERVE_SPEED)


def test_a_match_ends_at_seven_and_a_new_one_starts():
    state, _ = join(rules.initial_state(), "Ann", "Ben")
    state = apply(state, {"score": {"left": 6, "right": 4}, "objects": {"right": {"y": 500.0}}})
    state = in_play(state, {"x": 700.0, "y": 100.0, "vx": 600.0, "vy": 0.0})
    state = run(state, 1.0, until=lambda s: s.phase != "play")
    assert state.score["left"] == rules.WIN_SCORE
    assert (state.phase, state.winner, state.winner_side) == ("over", "Ann", "left")
    state = run(state, rules.OVER_PAUSE - 0.5)
    assert state.phase == "over"  # the winner is shown for a few seconds
    state = run(state, 1.0)
    assert state.phase == "serve" and state.score == {"left": 0, "right": 0} and state.winner == ""


# ---- paddles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [1e9, -1e9, float("inf"), float("nan"), "fast", True, [1], None, 1])
def test_paddle_speed_is_capped_whatever_direction_a_client_sends(direction):
    state, (ann, _) = join(rules.initial_state(), "Ann", "Ben")
    start = state.objects["left"]["y"]
    for _ in range(50):  # a flood of events with no time passing
        state = apply(state, rules.move(state, ann, direction))
    moved = abs(state.objects["left"]["y"] - start)
    assert moved <= rules.PADDLE_SPEED * rules.MAX_BUDGET + 1e-6
    position = state.objects["left"]["y"]
    state = run(state, 1.0)  # a second of time allows a second of movement, no more
    for _ in range(50):
        state = apply(state, rules.move(state, ann, direction))
    assert abs(state.objects["left"]["y"] - position) <= rules.PADDLE_SPEED * 1.0 + 1e-6
    assert rules.PADDLE_H / 2 <= state.objects["left"]["y"] <= rules.HEIGHT - rules.PADDLE_H / 2


def test_a_move_event_moves_the_paddle_as_the_clients_predictor_does():
    state, (ann, _) = join(rules.initial_state(), "Ann", "Ben")
    predictor = Predictor("objects", "left", rules.move_paddle)
    predictor.reconcile(state.objects["left"])
    for seq in range(1, 4):
        assert predictor.input({"direction": -1}, rules.MOVE_STEP) == seq
        state = apply(state, rules.move(state, ann, -1, input_seq=seq))
    assert state.objects["left"]["input_seq"] == 3
    predicted = predictor.predicted
    predictor.reconcile(state.objects["left"])
    assert predictor.pending == 0 and predictor.error == pytest.approx(0.0)
    assert predicted["y"] == pytest.approx(300.0 - 3 * rules.PADDLE_SPEED * rules.MOVE_STEP)


# ---- seats -------------------------------------------------------------------------------------------


def test_the_first_two_players_get_the_paddles_and_a_third_is_a_spectator():
    state, (ann, ben, cat) = join(rules.initial_state(), "Ann", "Ben", "Cat")
    assert state.objects["left"]["player"] == ann and state.objects["right"]["player"] == ben
    assert state.players[cat]["side"] is None
    assert state.phase == "serve"
    before = state.objects
    state = apply(state, rules.move(state, cat, 1))  # a spectator cannot move a paddle
    assert state.objects == before


def test_one_player_waits_for_an_opponent():
    state, (ann,) = join(rules.initial_state(), "Ann")
    state = run(state, 2.0)
    assert state.phase == "waiting" and state.objects["ball"]["vx"] == 0.0
    state, (ben,) = join(state, "Ben")
    state = run(state, rules.FIRST_SERVE_PAUSE + 0.1)
    assert state.phase == "play"


def test_the_longest_waiting_spectator_takes_a_freed_paddle():
    state, (ann, ben, cat, dan) = join(rules.initial_state(), "Ann", "Ben", "Cat", "Dan")
    state = apply(state, {"score": {"left": 3, "right": 2}})
    state = apply(state, rules.remove_player(state, ann))
    assert ann not in state.players
    assert state.objects["left"]["player"] == cat and state.players[cat]["side"] == "left"
    assert state.players[dan]["side"] is None
    assert state.phase == "serve" and state.score == {"left": 0, "right": 0}  # a new match
    state = apply(state, rules.remove_player(state, ben))
    assert state.objects["right"]["player"] == dan
    state = apply(state, rules.remove_player(state, dan))  # nobody left in line: wait
    assert state.objects["right"]["player"] is None and state.phase == "waiting"


def test_people_take_paddles_from_bots_and_before_bots():
    state, (ada, bit, sam) = join(rules.initial_state(), "Ada (bot)", "Bit (bot)", "Sam")
    assert state.objects["left"]["player"] == sam and state.players[ada]["side"] is None
    state, (zoe, eve) = join(state, "Zoe", "Eve")
    assert state.players[zoe]["side"] == "right" and state.players[bit]["side"] is None
    assert state.players[eve]["side"] is None  # people do not take people's paddles
    state = apply(state, rules.remove_player(state, zoe))
    assert state.players[eve]["side"] == "right"  # a person before the bots that waited longer
    state = apply(state, rules.remove_player(state, eve))
    assert state.players[ada]["side"] == "right"  # only bots waiting: the longest waiting one


# ---- bots --------------------------------------------------------------------------------------------


def test_bots_rally_and_score_within_seconds():
    state, (ada, bit) = join(rules.initial_state(), "Ada (bot)", "Bit (bot)")
    rng, memories = random.Random(5), {ada: {}, bit: {}}
    bot_rngs = {ada: random.Random(6), bit: random.Random(7)}
    first_point = None
    for tick in range(round(60 / TICK)):
        state = apply(state, rules.step(state, TICK, rng))
        if tick % 3 == 0:  # bots step about 20 times a second
            for bot in (ada, bit):
                direction = rules.bot_direction(memories[bot], bot_rngs[bot], state, bot, 3 * TICK)
                if direction is not None:
                    state = apply(state, rules.move(state, bot, direction))
        if first_point is None and sum(state.score.values()):
            first_point = tick * TICK
    points = state.serves - (state.phase == "play")
    assert first_point is not None and first_point < 30
    assert points >= 4  # points are scored ...
    assert state.hits >= points  # ... after rallies


# ---- the client --------------------------------------------------------------------------------------


def test_every_phase_draws(tmp_path):
    window = GameWindow(size=(rules.WIDTH, rules.HEIGHT), fps=0)
    try:
        screen = PongScreen(window, PlayerView("Ann", 1))
        state, _ = join(rules.initial_state(), "Ann")
        waiting = state
        state, _ = join(state, "Ben", "Cat (bot)")
        playing = in_play(state, {"x": 300.0, "y": 200.0, "vx": 300.0, "vy": 100.0})
        over = apply(state, {"phase": "over", "timer": 2.0, "winner": "Ann", "winner_side": "left"})
        for phase_state in (waiting, state, playing, over):
            window.screen.fill(window.background)
            screen.update(phase_state)
            screen.draw(window.screen, phase_state)
        assert screen.predictor.key == "left"
        colours = {
            window.screen.get_at((x, y))[:3] for x in range(0, rules.WIDTH, 7) for y in range(0, 300, 7)
        }
        assert len(colours) > 10
    finally:
        window.close()


def test_a_local_game_with_two_bots_plays(tmp_path):
    screenshot = tmp_path / "pong.png"
    result = run_demo(
        DEMO,
        ["local", "--bots", "2", "--headless", "--seconds", "5", "--screenshot", str(screenshot)],
    )
    state = result.final_state
    assert result.bots == 2 and result.frames > 50
    # The final state is the server's after the window and the bots left (or while they were leaving),
    # so players may be gone and the score reset: the counters tell what happened.
    assert state.serves >= 1  # the ball was served ...
    assert state.hits + state.serves >= 2  # ... and reached a paddle, or was missed and served again
    assert any(state.objects[side]["y"] != rules.HEIGHT / 2 for side in rules.SIDES)  # a bot moved
    image = pygame.image.load(str(screenshot))
    colours = {image.get_at((x, y))[:3] for x in range(0, image.get_width(), 5) for y in range(0, 200, 5)}
    assert len(colours) > 10  # scores, names and paddles, not a blank screen


def test_the_demo_object_is_pong():
    assert DEMO.name == "pong" and DEMO.size == (rules.WIDTH, rules.HEIGHT)
    assert set(DEMO.handlers()) == {"MOVE"}
