"""The chase demo: its rules, the server glue, prediction, the bots, and whole headless runs (loopback)."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import copy  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402
from helpers import wait_for  # noqa: E402

from pygase import GameState, GameStateUpdate  # noqa: E402
from pygase_demos._framework import Bot, BotRunner, PlayerView, make_backend, run_demo  # noqa: E402
from pygase_demos.chase import rules  # noqa: E402
from pygase_demos.chase.game import DEMO, bot_direction  # noqa: E402
from pygase_pygame import Predictor  # noqa: E402


def world_with(*names: str) -> tuple:
    world = rules.new_world()
    ids = [rules.add_player(world, name, random.Random(index)) for index, name in enumerate(names)]
    return world, ids


def place(world: dict, player_id: int, x: float, y: float) -> None:
    player = world["players"][player_id]
    player.update(x=x, y=y, tx=x, ty=y)


def run(world: dict, seconds: float, dt: float = 0.02) -> None:
    for _ in range(round(seconds / dt)):
        rules.tick(world, dt)


# ---- rules ----------------------------------------------------------------------------------------


@pytest.mark.timeout(5)
def test_the_first_player_is_the_chaser_and_a_second_one_starts_the_countdown():
    world, (ada, bit) = world_with("Ada", "Bit")
    assert world["chaser"] == ada
    assert world["players"][ada]["it"] and not world["players"][bit]["it"]
    assert world["players"][ada]["frozen"]  # the game begins with a head start for the runner
    assert world["protect"] == rules.PROTECT_SECONDS
    assert {p["colour"] for p in world["players"].values()} == {0, 1}


@pytest.mark.timeout(5)
def test_a_catch_passes_the_role_and_freezes_the_new_chaser():
    world, (ada, bit, cog) = world_with("Ada", "Bit", "Cog")
    run(world, rules.PROTECT_SECONDS + 0.1)
    place(world, ada, 300, 300)
    place(world, bit, 300 + rules.CATCH_DISTANCE - 2, 300)
    place(world, cog, 600, 500)
    rules.tick(world, 0.02)
    assert world["chaser"] == bit
    assert world["catches"] == 1
    assert world["last_catch"]["by"] == ada and world["last_catch"]["caught"] == bit
    assert world["players"][bit]["it"] and world["players"][bit]["frozen"]
    assert not world["players"][ada]["it"] and not world["players"][ada]["frozen"]
    assert world["protect"] == pytest.approx(rules.PROTECT_SECONDS)


@pytest.mark.timeout(5)
def test_nobody_is_caught_during_the_protection_countdown():
    world, (ada, bit) = world_with("Ada", "Bit")
    run(world, rules.PROTECT_SECONDS + 0.1)
    place(world, ada, 300, 300)
    place(world, bit, 310, 300)
    rules.tick(world, 0.02)
    assert world["chaser"] == bit
    # Ada stays right next to the frozen new chaser: safe until the countdown is over
    before = dict(world["players"][bit])
    rules.apply_move(world, bit, {"dx": 1, "dy": 1})  # frozen: the input does nothing
    assert (world["players"][bit]["tx"], world["players"][bit]["ty"]) == (before["tx"], before["ty"])
    run(world, rules.PROTECT_SECONDS - 0.1)
    assert world["chaser"] == bit and world["catches"] == 1
    assert world["protect"] > 0
    run(world, 0.2)
    assert world["chaser"] == ada and world["catches"] == 2  # tagged back once the shields are down


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "data",
    [
        {"dx": 1000, "dy": 0},
        {"dx": 1, "dy": -1e300},
        {"dx": 10**400, "dy": 5},  # too large for a float
        {"dx": float("inf"), "dy": 1},
    ],
)
def test_the_speed_cap_holds_whatever_direction_a_client_sends(data):
    world, (ada, bit) = world_with("Ada", "Bit")
    run(world, rules.PROTECT_SECONDS + 0.1)
    place(world, bit, 400, 300)
    player = world["players"][bit]
    reach = rules.speed(player) * rules.STEP
    rules.apply_move(world, bit, data)
    assert abs(player["tx"] - 400) <= reach + 1e-9 and abs(player["ty"] - 300) <= reach + 1e-9
    # spamming inputs does not make anyone faster: the position follows at the speed, the target's
    # lead is capped
    for _ in range(500):
        rules.apply_move(world, bit, data)
    lead = rules.speed(player) * rules.LEAD_SECONDS
    assert abs(player["tx"] - player["x"]) <= lead + 1e-9 and abs(player["ty"] - player["y"]) <= lead + 1e-9
    seconds = 0.2
    run(world, seconds)
    most = rules.speed(player) * seconds + 1e-6
    assert abs(player["x"] - 400) <= most and abs(player["y"] - 300) <= most
    assert rules.MIN_X <= player["x"] <= rules.MAX_X and rules.MIN_Y <= player["y"] <= rules.MAX_Y


@pytest.mark.timeout(5)
@pytest.mark.parametrize("junk", ["fast", None, True, [1, 2], {"x": 1}, float("nan")])
def test_junk_directions_do_not_move_anyone(junk):
    world, (ada, bit) = world_with("Ada", "Bit")
    place(world, bit, 400, 300)
    rules.apply_move(world, bit, {"dx": junk, "dy": junk}, input_seq=junk)
    run(world, 0.2)
    player = world["players"][bit]
    assert (player["x"], player["y"], player["input_seq"]) == (400, 300, 0)


@pytest.mark.timeout(5)
def test_the_arena_walls_stop_runners():
    world, (ada,) = world_with("Ada")
    place(world, ada, rules.MIN_X + 3, rules.MAX_Y - 3)
    for _ in range(20):
        rules.apply_move(world, ada, {"dx": -1, "dy": 1})
        run(world, rules.STEP)
    player = world["players"][ada]
    assert (player["x"], player["y"]) == (rules.MIN_X, rules.MAX_Y)


@pytest.mark.timeout(5)
def test_runners_score_by_surviving_and_the_chaser_by_catching():
    world, (ada,) = world_with("Ada")
    run(world, 3.0)
    assert world["players"][ada]["score"] == 0  # nothing to play for alone
    bit = rules.add_player(world, "Bit", random.Random(1))
    run(world, 3.0)
    assert world["players"][bit]["score"] == pytest.approx(3.0 * rules.RUN_POINTS)
    assert world["players"][ada]["score"] == 0
    place(world, ada, 200, 200)
    place(world, bit, 205, 200)
    rules.tick(world, 0.02)
    assert world["players"][ada]["score"] == pytest.approx(rules.CATCH_POINTS + 0.0)
    assert world["players"][ada]["catches"] == 1
    bit_score = world["players"][bit]["score"]
    assert bit_score == pytest.approx(3.0 * rules.RUN_POINTS, abs=0.05)
    run(world, 1.0)  # now Ada runs and scores, Bit is the chaser
    assert world["players"][ada]["score"] == pytest.approx(rules.CATCH_POINTS + rules.RUN_POINTS)
    assert world["players"][bit]["score"] == bit_score
    assert world["points"] == pytest.approx(world["players"][ada]["score"] + bit_score)


@pytest.mark.timeout(5)
def test_a_round_ends_with_the_winners_and_scores_start_again():
    world, (ada, bit, cog) = world_with("Ada", "Bit", "Cog")
    world["round_left"] = 1.0
    place(world, ada, 100, 100)
    place(world, bit, 700, 500)
    place(world, cog, 700, 100)
    run(world, 1.1)
    assert world["results"] > 0
    assert world["winners"] == ["Bit", "Cog"]  # a tie shares the win
    scores = {pid: p["score"] for pid, p in world["players"].items()}
    run(world, rules.RESULTS_SECONDS - 0.1)
    assert {pid: p["score"] for pid, p in world["players"].items()} == scores  # frozen meanwhile
    run(world, 0.2)
    assert world["round"] == 2 and world["results"] == 0
    assert all(p["score"] < 0.2 for p in world["players"].values())
    assert rules.ROUND_SECONDS - 0.2 < world["round_left"] < rules.ROUND_SECONDS


@pytest.mark.timeout(5)
def test_when_the_chaser_leaves_the_leading_runner_takes_over():
    world, (ada, bit, cog) = world_with("Ada", "Bit", "Cog")
    world["players"][cog]["score"] = 7.0
    world["players"][bit]["score"] = 3.0
    rules.remove_player(world, ada)
    assert ada not in world["players"]
    assert world["chaser"] == cog and world["players"][cog]["it"] and world["players"][cog]["frozen"]
    assert world["protect"] == rules.PROTECT_SECONDS
    assert world["handover"]["to"] == cog and world["handover"]["reason"] == "left"
    rules.remove_player(world, bit)  # a runner leaving changes nothing else
    assert world["chaser"] == cog
    rules.remove_player(world, cog)
    assert world["chaser"] is None and world["players"] == {}
    dot = rules.add_player(world, "Dot", random.Random(2))
    assert world["chaser"] == dot


@pytest.mark.timeout(5)
def test_an_idle_chaser_hands_the_role_on():
    world, (ada, bit) = world_with("Ada", "Bit")
    run(world, rules.PROTECT_SECONDS + rules.IDLE_SECONDS - 0.5)
    assert world["chaser"] == ada
    rules.apply_move(world, ada, {"dx": 1})  # moving resets the idle clock
    run(world, rules.IDLE_SECONDS - 0.5)
    assert world["chaser"] == ada
    run(world, 1.0)
    assert world["chaser"] == bit and world["handover"]["reason"] == "idle"


@pytest.mark.timeout(5)
def test_prediction_with_the_shared_step_lands_where_the_server_puts_the_runner():
    world, (ada,) = world_with("Ada")
    place(world, ada, 400, 300)
    predictor = Predictor("players", ada, rules.move_step)
    predictor.reconcile(world["players"][ada])
    inputs = [{"dx": 1}] * 10 + [{"dy": -1}, {"dx": 1}] * 8 + [{"dx": -1, "dy": 0.5}] * 5 + [{"dx": 99}] * 30
    for data in inputs:
        seq = predictor.input(data, 1.0 / rules.HOLD_RATE)
        rules.apply_move(world, ada, data, seq)
        run(world, rules.STEP)
        predictor.reconcile(world["players"][ada])
        assert predictor.pending == 0 and predictor.error == pytest.approx(0.0)
    run(world, 0.5)  # the key is released: the runner stops where the prediction is
    predicted = predictor.predicted
    player = world["players"][ada]
    assert (player["x"], player["y"]) == pytest.approx((predicted["tx"], predicted["ty"]))
    assert player["x"] == rules.MAX_X  # the last inputs ran into the wall


# ---- the server glue ------------------------------------------------------------------------------


def apply(state: GameState, changes: dict) -> GameState:
    return state + GameStateUpdate(state.time_order + 1, **changes) if changes else state


@pytest.mark.timeout(5)
def test_the_backend_glue_sends_differences_and_never_takes_positions():
    state = DEMO.initial_state()
    ada, changes = DEMO.add_player(state, "Ada")
    state = apply(state, changes)
    bit, changes = DEMO.add_player(state, "Bit")
    state = apply(state, changes)
    assert state.chaser == ada and set(state.players) == {ada, bit}
    for _ in range(120):
        state = apply(state, DEMO.time_step(state, 0.02))
    assert state.players[bit]["score"] > 2
    x, y = state.players[bit]["x"], state.players[bit]["y"]
    update = DEMO.on_move(bit, state, dx=1000, dy=0, input_seq=1)
    assert set(update["players"][bit]) <= {"tx", "ty", "face", "idle", "input_seq"}
    state = apply(state, update)
    assert state.players[bit]["input_seq"] == 1
    changes = DEMO.time_step(state, 0.02)
    assert set(changes["players"][bit]) >= {"x", "score"}  # only what changed, per field
    assert "name" not in changes["players"][bit]
    state = apply(state, changes)
    assert state.players[bit]["x"] - x == pytest.approx(min(rules.RUNNER_SPEED * 0.02, rules.MAX_X - x))
    assert state.players[bit]["y"] == y
    state = apply(state, DEMO.remove_player(state, ada))
    assert ada not in state.players and state.chaser == bit


@pytest.mark.timeout(10)
def test_bots_catch_each_other_within_a_few_seconds():
    world = rules.new_world()
    bots = []
    for index in range(4):
        bot = Bot(f"Bot{index}", client=None, rng=random.Random(index))
        bot.player_id = rules.add_player(world, bot.name, random.Random(10 + index))
        bots.append(bot)
    catch_times = []
    for step in range(int(20 / rules.STEP)):
        view = SimpleNamespace(**copy.deepcopy(world))
        for bot in bots:
            direction = bot_direction(bot, view, rules.STEP)
            if direction is not None:
                assert max(abs(direction[0]), abs(direction[1])) <= 1
                rules.apply_move(world, bot.player_id, {"dx": direction[0], "dy": direction[1]})
        before = world["catches"]
        run(world, rules.STEP, dt=rules.STEP / 2)
        if world["catches"] != before:
            catch_times.append(step * rules.STEP)
    assert len(catch_times) >= 3, catch_times
    assert catch_times[0] < 8.0
    assert all(p["travelled"] > 300 for p in world["players"].values())


# ---- over loopback --------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_bots_play_over_loopback():
    backend = make_backend(DEMO)
    thread = backend.run_in_thread("127.0.0.1", 0)
    bots = BotRunner(DEMO, backend.server.port, 3)
    try:
        bots.start()
        wait_for(lambda: backend.game_state_store.get_game_state().catches >= 1, timeout=12)
        state = copy.deepcopy(backend.game_state_store.get_game_state())
    finally:
        bots.stop()
        backend.shutdown()
        thread.join(timeout=5)
    assert len(state.players) == 3
    assert state.catches >= 1
    assert all(p["travelled"] > 50 for p in state.players.values())


@pytest.mark.timeout(20)
def test_a_window_moves_its_runner_with_held_keys_and_predicts_it_exactly():
    from pygase import Client
    from pygase_pygame import GameWindow

    window = GameWindow(size=DEMO.size, client=Client())
    view = PlayerView("Tester")
    window.client.register_event_handler("YOU_ARE", lambda player_id: setattr(view, "player_id", player_id))
    DEMO.setup_window(window, view)
    window.hooks["on_connect"] = lambda: window.dispatch("JOIN", name="Tester", retries=10)
    backend = make_backend(DEMO)
    window.host(backend)
    seen: dict = {}
    corrections = []
    draw = window.hooks["draw"]

    def spy(screen, state):
        draw(screen, state)
        corrections.append(window.predictor.error)
        if view.player_id is not None:
            player = backend.game_state_store.get_game_state().players.get(view.player_id)
            if player is not None:
                seen.setdefault("start", (player["x"], player["y"]))
                seen["end"] = (player["x"], player["y"])
                seen["predicted"] = window.predictor.predicted

    window.hooks["draw"] = spy

    def key(when, kind, code):
        return when, pygame.event.Event(kind, key=code, mod=0, unicode="")

    def cheat():  # positions in a MOVE are ignored: only the direction counts
        if window.client.connection is not None:
            window.client.dispatch_event("MOVE", dx=0, dy=0, x=5000.0, y=-5000.0)
        return None

    script = [
        key(0.8, pygame.KEYDOWN, pygame.K_d),
        key(1.3, pygame.KEYUP, pygame.K_d),
        key(1.3, pygame.KEYDOWN, pygame.K_DOWN),
        key(1.7, pygame.KEYUP, pygame.K_DOWN),
        (1.9, pygame.event.Event(pygame.USEREVENT)),
    ]
    window.hooks["on_event"] = lambda event: cheat() if event.type == pygame.USEREVENT else None
    window.run(seconds=2.6, script=script)
    assert view.player_id is not None and "start" in seen
    (x0, y0), (x1, y1) = seen["start"], seen["end"]
    speed = rules.CHASER_SPEED  # alone, the tester is the chaser (and not frozen: nobody to run from)
    assert 0 < x1 - x0 <= speed * 0.5 + speed * rules.STEP * 2
    assert 0 < y1 - y0 <= speed * 0.4 + speed * rules.STEP * 2
    assert rules.MIN_X <= x1 <= rules.MAX_X and rules.MIN_Y <= y1 <= rules.MAX_Y
    assert (seen["predicted"]["tx"], seen["predicted"]["ty"]) == pytest.approx((x1, y1))
    assert max(corrections) == pytest.approx(0.0)


@pytest.mark.timeout(20)
def test_a_headless_local_game_with_bots(tmp_path):
    shot = tmp_path / "chase.png"
    result = run_demo(
        DEMO, ["local", "--bots", "3", "--headless", "--seconds", "4", "--screenshot", str(shot)]
    )
    state = result.final_state
    assert result.bots == 3 and result.frames > 30
    assert state is not None and state.time > 2
    # Closing the hosting window may remove the players before the final state is read: the totals stay.
    assert state.next_id == 5  # the window's player and three bots joined
    assert state.distance > 100  # positions moved
    assert state.catches >= 1 or state.points > 0
    for player in state.players.values():
        assert rules.MIN_X <= player["x"] <= rules.MAX_X and rules.MIN_Y <= player["y"] <= rules.MAX_Y
    image = pygame.image.load(str(shot))
    assert image.get_size() == DEMO.size
    colours = {tuple(image.get_at((x, y))) for x in range(0, 800, 7) for y in range(0, 600, 7)}
    assert len(colours) > 20
    assert math.isfinite(state.round_left)
