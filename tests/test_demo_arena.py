"""The arena demo: its rules (hits, kills, respawns, cooldown, speed cap, expiry), prediction, and a
headless end-to-end game with bots."""

from __future__ import annotations

import math
import os
import random

import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402

from pygase import TO_DELETE, GameStateUpdate  # noqa: E402
from pygase.backend import GameStateStore  # noqa: E402
from pygase_demos._framework import run_demo  # noqa: E402
from pygase_demos.arena import rules  # noqa: E402
from pygase_demos.arena.game import DEMO, ArenaDemo  # noqa: E402
from pygase_pygame import Predictor  # noqa: E402

pytestmark = pytest.mark.timeout(20)

TICK = 0.02


class Arena:
    """An arena server without a network: the demo's handlers and time step on a real state store."""

    def __init__(self) -> None:
        self.demo = ArenaDemo()
        self.demo.rng = random.Random(5)
        self.store = GameStateStore(self.demo.initial_state())
        self.updates: list = []

    @property
    def state(self):
        return self.store.get_game_state()

    def apply(self, changes: dict) -> dict:
        if changes:
            self.updates.append(changes)
            self.store.push_update(GameStateUpdate(self.state.time_order + 1, **changes))
        return changes

    def join(self, name: str, x: float, y: float, heading: int = 0) -> int:
        player, changes = self.demo.add_player(self.state, name)
        self.apply(changes)
        self.apply({"ships": {player: {"x": x, "y": y, "a": heading, "shield": 0.0}}})
        return player

    def tick(self, seconds: float = TICK) -> None:
        for _ in range(max(1, round(seconds / TICK))):
            self.apply(self.demo.time_step(self.state, TICK))

    def fire(self, player: int) -> dict:
        return self.apply(self.demo.on_fire(player=player, game_state=self.state))

    def input(self, player: int, **data) -> dict:
        return self.apply(self.demo.on_input(player=player, game_state=self.state, **data))

    def ship(self, player: int) -> dict:
        return self.state.ships[player]


def test_a_bullet_hits_a_ship_reduces_its_hp_and_is_deleted():
    arena = Arena()
    shooter = arena.join("shooter", 100, 300, heading=0)
    target = arena.join("target", 300, 300)
    arena.fire(shooter)
    assert len(arena.state.bullets) == 1
    arena.tick(0.5)
    assert arena.ship(target)["hp"] == rules.MAX_HP - rules.DAMAGE
    assert arena.ship(shooter)["hp"] == rules.MAX_HP  # its own bullet never hits the shooter
    assert arena.state.bullets == {}
    assert any(update.get("bullets") == {1: TO_DELETE} for update in arena.updates)


def test_a_kill_is_credited_to_the_shooter_and_the_victim_respawns_after_the_delay():
    arena = Arena()
    shooter = arena.join("shooter", 100, 300, heading=0)
    target = arena.join("target", 300, 300)
    arena.apply({"ships": {target: {"hp": rules.DAMAGE}}})
    arena.fire(shooter)
    for _ in range(50):
        arena.tick()
        if not arena.ship(target)["alive"]:
            break
    died_at = arena.state.time
    victim = arena.ship(target)
    assert victim["alive"] is False and victim["hp"] == 0
    assert victim["deaths"] == 1 and victim["by"] == shooter
    assert arena.ship(shooter)["kills"] == 1
    assert victim["respawn"] == pytest.approx(died_at + rules.RESPAWN_DELAY)
    assert 0 < victim["x"] < rules.WIDTH and 0 < victim["y"] < rules.HEIGHT
    arena.tick(rules.RESPAWN_DELAY - 0.1)
    assert arena.ship(target)["alive"] is False  # still waiting
    arena.tick(0.2)
    back = arena.ship(target)
    assert back["alive"] is True and back["hp"] == rules.MAX_HP
    assert back["shield"] > arena.state.time  # spawn protection
    # a shielded ship takes no damage
    arena.apply({"ships": {shooter: {"x": back["x"] - 150, "y": back["y"], "a": 0, "next_fire": 0.0}}})
    arena.fire(shooter)
    arena.tick(0.4)
    assert arena.ship(target)["hp"] == rules.MAX_HP and arena.state.bullets == {}


def test_the_fire_cooldown_is_enforced_by_the_server():
    arena = Arena()
    player = arena.join("spammer", 450, 300)
    assert arena.fire(player)
    assert arena.fire(player) == {}  # same instant: refused
    for _ in range(50):  # a client flooding FIRE for one second
        arena.fire(player)
        arena.tick()
    fired = arena.state.next_bullet - 1
    assert fired <= 1 + math.ceil(1.0 / rules.FIRE_COOLDOWN)
    assert fired >= math.floor(1.0 / rules.FIRE_COOLDOWN)
    arena.apply({"ships": {player: {"alive": False, "respawn": arena.state.time + 10}}})
    arena.tick(0.5)
    assert arena.fire(player) == {}  # dead ships do not fire


def test_speed_and_turning_are_capped_whatever_a_client_sends():
    arena = Arena()
    player = arena.join("cheater", 450, 300)
    for seq in range(1, 200):
        for thrust in (1e9, float("inf"), float("nan"), "fast", True, 5):
            arena.input(player, thrust=thrust, turn=0, input_seq=seq)
        arena.tick()
        ship = arena.ship(player)
        assert math.hypot(ship["vx"], ship["vy"]) <= rules.MAX_SPEED + 0.1
    assert arena.ship(player)["input_seq"] == 199
    # a flood of turning inputs between two ticks turns no more than the burst allows
    heading = arena.ship(player)["a"]
    for _ in range(100):
        arena.input(player, turn=50, input_seq="not a number")
    turned = abs(arena.ship(player)["a"] - heading)
    assert 0 < turned <= rules.InputLimiter().burst * rules.TURN_RATE * rules.INPUT_DT + 1
    assert arena.ship(player)["input_seq"] == 199
    for seq in (True, 2**40, -5, 3):  # bools, absurd and old sequence numbers are ignored
        arena.input(player, turn=1, input_seq=seq)
    assert arena.ship(player)["input_seq"] == 199


def test_expired_bullets_are_deleted_from_the_state():
    arena = Arena()
    player = arena.join("alone", 450, 300)
    arena.fire(player)
    arena.tick(rules.BULLET_LIFE - 0.1)
    assert list(arena.state.bullets) == [1]
    arena.tick(0.2)
    assert arena.state.bullets == {}
    assert any(update.get("bullets") == {1: TO_DELETE} for update in arena.updates)


def test_bullets_ricochet_inside_the_arena():
    bullet = {"x": 890.0, "y": 10.0, "vx": 500.0, "vy": -300.0, "t": 0.0, "o": 1}
    for step in range(60):
        x, y = rules.bullet_position(bullet, step * 0.02)
        assert 0 <= x <= rules.WIDTH and 0 <= y <= rules.HEIGHT
    x, y = rules.bullet_position(bullet, 0.1)
    assert x < 890 and y > 10  # bounced off the right and the top walls


def test_the_prediction_uses_the_servers_rule_and_matches_it():
    arena = Arena()
    player = arena.join("pilot", 450, 300)
    predictor = Predictor("ships", player, rules.steer)
    predictor.reconcile(arena.ship(player))
    inputs = [{"turn": -1}, {"thrust": 1}, {"thrust": 1}, {"turn": 1}, {"thrust": -rules.REVERSE}]
    for data in inputs:
        seq = predictor.input(data, rules.INPUT_DT)
        arena.input(player, input_seq=seq, **data)
    predicted, server = predictor.predicted, arena.ship(player)
    for field in ("a", "vx", "vy"):
        assert predicted[field] == pytest.approx(server[field])
    predictor.reconcile(server)
    assert predictor.pending == 0 and predictor.error == pytest.approx(0.0)


def test_players_join_with_distinct_colours_and_leave():
    arena = Arena()
    players = [arena.join(f"p{index}", 100 + 60 * index, 300) for index in range(4)]
    assert len({arena.ship(player)["c"] for player in players}) == 4
    assert DEMO.player_count(arena.state) == 4
    arena.apply(arena.demo.remove_player(arena.state, players[0]))
    assert players[0] not in arena.state.ships


@pytest.mark.timeout(25)
def test_a_headless_game_with_three_bots_makes_progress(tmp_path, monkeypatch):
    screenshot = tmp_path / "arena.png"
    moving = []  # ships seen moving in the updates the game pushed (at the end all may be at rest)
    push_update = GameStateStore.push_update

    def watch(store, update):
        ships = getattr(update, "ships", None)
        if isinstance(ships, dict):
            moving.extend(
                1 for ship in ships.values() if isinstance(ship, dict) and (ship.get("vx") or ship.get("vy"))
            )
        return push_update(store, update)

    monkeypatch.setattr(GameStateStore, "push_update", watch)
    run = run_demo(
        DEMO, ["local", "--bots", "3", "--headless", "--seconds", "4", "--screenshot", str(screenshot)]
    )
    state = run.final_state
    assert run.bots == 3 and run.frames > 30
    assert state.time > 3.0
    bots = [ship for ship in state.ships.values() if ship["name"].endswith("(bot)")]
    assert len(bots) == 3
    assert state.next_bullet > 6  # bullets were fired
    damage = sum(rules.MAX_HP - ship["hp"] + rules.MAX_HP * ship["deaths"] for ship in state.ships.values())
    assert damage > 0  # and hit
    assert (
        len(moving) > 10
    )  # ships move (the state's last look may find every living ship coasting to a stop)
    image = pygame.image.load(str(screenshot))
    width, height = image.get_size()
    colours = {tuple(image.get_at((x, y)))[:3] for x in range(0, width, 7) for y in range(0, height, 7)}
    assert len(colours) > 20
