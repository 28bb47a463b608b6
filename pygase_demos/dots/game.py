"""Dots: move your dot around and collect the star. The smallest demo, and the one README.md walks through.

Shows the whole shape of a PyGaSe game in one short file: a game state, a time step, an event handler
that moves players with a speed cap (the server never takes positions from clients), bindings from keys
to events, interpolated drawing, and a bot.

Controls: arrow keys or WASD. Run: `pygase-demo dots` (see `pygase-demo dots --help`).
"""

from __future__ import annotations

import math
import random

import pygame

from pygase import TO_DELETE, GameState
from pygase_demos import _assets
from pygase_demos._framework import Demo, main
from pygase_pygame import SnapshotInterpolator

WIDTH, HEIGHT = 640, 480
SPEED = 220.0  # pixels a second
STEP = 1 / 20  # a held key sends MOVE 20 times a second; each MOVE is worth this much running
COLOURS = [(255, 99, 99), (90, 170, 255), (110, 230, 120), (255, 200, 60), (200, 120, 255)]


def clamp(value, low, high):
    return max(low, min(high, value))


class DotsDemo(Demo):
    name = "dots"
    title = "Dots"
    description = "Collect the star: the smallest demo, walked through in README.md."
    size = (WIDTH, HEIGHT)

    # ---- server: rules --------------------------------------------------------------------------------

    def initial_state(self):
        return GameState(players={}, star={"x": WIDTH / 2, "y": HEIGHT / 2}, next_id=1)

    def time_step(self, game_state, dt):
        return {}  # nothing moves by itself: everything happens in the event handlers

    def add_player(self, game_state, name):
        player_id = game_state.next_id
        player = {
            "x": random.uniform(40, WIDTH - 40),
            "y": random.uniform(40, HEIGHT - 40),
            "name": name,
            "colour": (player_id - 1) % len(COLOURS),
            "score": 0,
        }
        return player_id, {"players": {player_id: player}, "next_id": player_id + 1}

    def remove_player(self, game_state, player_id):
        return {"players": {player_id: TO_DELETE}}

    def handlers(self):
        return {"MOVE": self.move}

    def move(self, player, game_state, dx=0.0, dy=0.0):
        """One MOVE: a step of at most SPEED * STEP per axis, whatever the client sent."""
        me = game_state.players[player]
        dx = clamp(float(dx), -1.0, 1.0) if isinstance(dx, (int, float)) and math.isfinite(dx) else 0.0
        dy = clamp(float(dy), -1.0, 1.0) if isinstance(dy, (int, float)) and math.isfinite(dy) else 0.0
        x = clamp(me["x"] + dx * SPEED * STEP, 10, WIDTH - 10)
        y = clamp(me["y"] + dy * SPEED * STEP, 10, HEIGHT - 10)
        star = game_state.star
        if math.hypot(x - star["x"], y - star["y"]) < 20:  # caught the star: score, and it jumps away
            new_star = {"x": random.uniform(30, WIDTH - 30), "y": random.uniform(30, HEIGHT - 30)}
            return {"players": {player: {"x": x, "y": y, "score": me["score"] + 1}}, "star": new_star}
        return {"players": {player: {"x": x, "y": y}}}

    # ---- client: input and drawing --------------------------------------------------------------------

    def setup_window(self, window, view):
        for keys, direction in (
            (("left", "a"), {"dx": -1}),
            (("right", "d"), {"dx": 1}),
            (("up", "w"), {"dy": -1}),
            (("down", "s"), {"dy": 1}),
        ):
            for key in keys:
                window.bindings.key_held(key, "MOVE", **direction)
        window.interpolators.append(SnapshotInterpolator("players"))
        font = _assets.font(18)

        @window.hook
        def draw(screen, state):
            star = state.star
            pygame.draw.circle(screen, (255, 230, 90), (round(star["x"]), round(star["y"])), 9)
            for player_id, player in state.players.items():
                position = (round(player["x"]), round(player["y"]))
                pygame.draw.circle(screen, COLOURS[player["colour"]], position, 12)
                if player_id == view.player_id:
                    pygame.draw.circle(screen, (255, 255, 255), position, 15, 2)
                label = font.render(f"{player['name']}  {player['score']}", True, (230, 230, 230))
                screen.blit(label, (position[0] - label.get_width() // 2, position[1] - 34))

    # ---- bots -----------------------------------------------------------------------------------------

    def bot_step(self, bot, game_state, dt):
        me = game_state.players.get(bot.player_id)
        if me is None:
            return
        dx, dy = game_state.star["x"] - me["x"], game_state.star["y"] - me["y"]
        if bot.rng.random() < 0.8:  # bots hesitate and wobble a little, so people can win
            wobble = bot.rng.uniform(-0.6, 0.6)
            bot.dispatch("MOVE", dx=clamp(dx / 20 + wobble, -1, 1), dy=clamp(dy / 20 - wobble, -1, 1))


DEMO = DotsDemo()

if __name__ == "__main__":
    main(DEMO)
