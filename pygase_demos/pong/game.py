"""Pong for two players, with any number of spectators.

The first two players to join hold the paddles, tinted in their colours; everyone else watches and
waits in line, and takes a paddle when one is freed (people before bots: a person joining a game where
bots play takes a bot's paddle). First to 7 wins; a new match starts a few seconds later.

Controls: W / S or Up / Down move your paddle. F3 shows the network statistics. Esc or closing the
window leaves.

What it shows: a server-authoritative simulation (the server moves the ball and the paddles; a client only
sends MOVE(direction), which the server clamps and caps in speed), the ball and the opponent's paddle
interpolated between state updates (`SnapshotInterpolator`), your own paddle predicted (`Predictor`,
with the movement rule shared with the server in `rules.py`), and sounds derived on the client from
state changes.

    pygase-demo pong                    # play against a bot in this process
    pygase-demo pong host               # host on the LAN; friends join with
    pygase-demo pong join HOST:8080
"""

from __future__ import annotations

import collections
import math
import random
import time
from typing import Any, Optional

import pygame

from pygase import GameState
from pygase_demos import DEMOS, _assets
from pygase_demos._framework import Bot, Demo, PlayerView
from pygase_demos.pong import rules
from pygase_pygame import Predictor, SnapshotInterpolator

__all__ = ["DEMO", "PongDemo"]

BACKGROUND = (12, 14, 24)
COURT = (58, 64, 92)
DIGITS = (214, 218, 235)
MUTED = (130, 136, 160)
TEXT = (225, 228, 240)
GOLD = (255, 214, 90)


class PongDemo(Demo):
    """The pong demo: rules on the server (see `rules`), drawing and sounds in the window, bots."""

    name = "pong"
    title = "Pong"
    description = DEMOS["pong"]
    size = (rules.WIDTH, rules.HEIGHT)
    max_players = 16
    bot_names = ("Ada", "Bit", "Cog", "Dot", "Eve", "Fox", "Gus", "Hex", "Ivy", "Jet", "Kai", "Lux")

    def __init__(self, seed: Optional[int] = None) -> None:
        self.rng = random.Random(seed)

    # ---- server side ----
    def initial_state(self) -> GameState:
        return rules.initial_state()

    def time_step(self, game_state: GameState, dt: float) -> dict:
        return rules.step(game_state, dt, self.rng)

    def handlers(self) -> dict:
        def on_move(player: Any, game_state: GameState, direction: Any = 0, input_seq: Any = None, **_: Any):
            return rules.move(game_state, player, direction, input_seq)

        return {"MOVE": on_move}

    def add_player(self, game_state: GameState, name: str) -> tuple:
        return rules.add_player(game_state, name, self.rng)

    def remove_player(self, game_state: GameState, player_id: Any) -> dict:
        return rules.remove_player(game_state, player_id)

    # ---- client side ----
    def setup_window(self, window: Any, view: PlayerView) -> None:
        PongScreen(window, view)

    def bot_step(self, bot: Bot, game_state: GameState, dt: float) -> None:
        direction = rules.bot_direction(bot.memory, bot.rng, game_state, bot.player_id, dt)
        if direction is not None:
            bot.dispatch("MOVE", direction=round(direction, 3))


class PongScreen:
    """The client side of one window: input, interpolation, prediction, drawing and sounds."""

    def __init__(self, window: Any, view: PlayerView) -> None:
        self.window = window
        self.view = view
        for key, direction in (("w", -1), ("up", -1), ("s", 1), ("down", 1)):
            window.bindings.key_held(key, "MOVE", direction=direction)
        # The ball and the other paddle are shown interpolated, your own paddle predicted (the window
        # feeds both from each state that arrives).
        self.interpolator = SnapshotInterpolator("objects", ("x", "y"))
        self.predictor = Predictor("objects", None, rules.move_paddle)
        window.interpolators.append(self.interpolator)
        window.predictor = self.predictor
        window.predicted_events.add("MOVE")
        window.background = BACKGROUND
        self.counters: Optional[tuple] = None
        self.trail: collections.deque = collections.deque(maxlen=10)
        self.big = _assets.font(110)
        self.medium = _assets.font(40)
        self.normal = _assets.font(22)
        self.small = _assets.font(16)
        self._text_cache: dict = {}
        for sound in ("bounce", "score"):  # load them now, not at the first bounce (silently)
            _assets.play(sound, 0.0)
        window.hook(self.update)
        window.hook(self.draw)
        window.hook(self.on_key_down)

    # ---- state ----
    def my_side(self, state: Any) -> Optional[str]:
        entry = state.players.get(self.view.player_id) if self.view.player_id is not None else None
        return entry.get("side") if isinstance(entry, dict) else None

    def update(self, state: Any) -> None:
        if state is None:
            return
        side = self.my_side(state)
        if side != self.predictor.key:
            self.predictor.key = side
            self.predictor.reset()
        counters = (state.hits + state.bounces, sum(state.score.values()), state.phase)
        if self.counters is not None:
            if counters[1] > self.counters[1]:
                _assets.play("score", 0.7)
            elif counters[0] > self.counters[0]:
                _assets.play("bounce", 0.5)
        self.counters = counters

    def on_key_down(self, key: int) -> None:
        if key == pygame.K_ESCAPE:
            self.window.running = False

    # ---- drawing ----
    def text(self, font: Any, message: str, colour: tuple) -> pygame.Surface:
        key = (id(font), message, tuple(colour))
        surface = self._text_cache.get(key)
        if surface is None:
            if len(self._text_cache) > 300:
                self._text_cache.clear()
            surface = self._text_cache[key] = font.render(message, True, colour)
        return surface

    def blit_centred(self, screen: Any, surface: pygame.Surface, centre: tuple) -> pygame.Rect:
        rect = surface.get_rect(center=(int(centre[0]), int(centre[1])))
        screen.blit(surface, rect)
        return rect

    def draw(self, screen: Any, state: Any) -> None:
        width, height = screen.get_size()
        players = state.players
        objects = state.objects
        me = self.view.player_id
        self.draw_court(screen, width, height)
        for index, side in enumerate(rules.SIDES):
            holder = objects[side]["player"]
            entry = players.get(holder) if holder is not None else None
            x = width / 2 + (-1 if index == 0 else 1) * 110
            self.blit_centred(screen, self.text(self.big, str(state.score.get(side, 0)), DIGITS), (x, 78))
            if entry is None:
                label, colour = "waiting...", MUTED
            else:
                label = entry["name"] + ("  (you)" if holder == me else "")
                colour = tuple(entry["colour"])
            self.blit_centred(screen, self.text(self.normal, label, colour), (x, 150))
        if state.phase == "play" and state.rally >= 4:
            self.blit_centred(screen, self.text(self.small, f"rally {state.rally}", MUTED), (width / 2, 178))
        for side in rules.SIDES:
            self.draw_paddle(screen, objects[side], players)
        self.draw_ball(screen, state)
        self.draw_message(screen, state, width, height)
        self.draw_spectators(screen, state, height)
        self.draw_hint(screen, state, width, height)

    def draw_court(self, screen: Any, width: int, height: int) -> None:
        pygame.draw.rect(screen, COURT, (0, 0, width, 4))
        pygame.draw.rect(screen, COURT, (0, height - 4, width, 4))
        for y in range(14, height - 10, 34):
            pygame.draw.rect(screen, COURT, (width // 2 - 2, y, 4, 18), border_radius=2)

    def draw_paddle(self, screen: Any, paddle: dict, players: dict) -> None:
        entry = players.get(paddle["player"]) if paddle["player"] is not None else None
        colour = tuple(entry["colour"]) if entry is not None else (90, 94, 115)
        centre = (round(paddle["x"]), round(paddle["y"]))
        try:
            sprite = _assets.tinted("paddle", colour)
        except FileNotFoundError:  # assets not installed: plain shapes
            rect = pygame.Rect(0, 0, rules.PADDLE_W, rules.PADDLE_H)
            rect.center = centre
            pygame.draw.rect(screen, colour, rect, border_radius=4)
            return
        glow = sprite.get_rect(center=centre).inflate(8, 8)
        pygame.draw.rect(screen, tuple(c // 4 for c in colour), glow, border_radius=8)
        self.blit_centred(screen, sprite, centre)

    def draw_ball(self, screen: Any, state: Any) -> None:
        ball = state.objects["ball"]
        if state.phase != "play":
            # Resting in the middle; blinking while a serve is due (never drawn at a stale position).
            self.trail.clear()
            if state.phase == "over" or (state.phase == "serve" and int(time.monotonic() * 4) % 2):
                return
            position = (rules.WIDTH / 2, rules.HEIGHT / 2)
        else:
            position = (ball["x"], ball["y"])
            self.trail.append(position)
        for index, (x, y) in enumerate(list(self.trail)[:-1]):
            fade = (index + 1) / len(self.trail)
            radius = max(2, round(rules.BALL_R * (0.3 + 0.6 * fade)))
            colour = tuple(round(c * fade * 0.7) for c in (150, 170, 255))
            pygame.draw.circle(screen, colour, (round(x), round(y)), radius)
        try:
            self.blit_centred(screen, _assets.image("ball"), position)
        except FileNotFoundError:
            pygame.draw.circle(
                screen, (245, 245, 255), (round(position[0]), round(position[1])), rules.BALL_R
            )

    def draw_message(self, screen: Any, state: Any, width: int, height: int) -> None:
        centre = (width / 2, height / 2 - 55)
        if state.phase == "waiting":
            self.panel(
                screen,
                [
                    (self.normal, "waiting for an opponent", TEXT),
                    (self.small, "the game starts when a second player joins", MUTED),
                ],
                centre,
            )
        elif state.phase == "serve" and sum(state.score.values()) == 0:
            self.panel(screen, [(self.normal, f"first to {rules.WIN_SCORE}", TEXT)], centre)
        elif state.phase == "over":
            side = state.winner_side
            holder = state.objects[side]["player"] if side in rules.SIDES else None
            entry = state.players.get(holder) if holder is not None else None
            colour = tuple(entry["colour"]) if entry is not None else GOLD
            seconds = max(1, math.ceil(state.timer))
            rect = self.panel(
                screen,
                [
                    (self.medium, f"{state.winner} wins!", colour),
                    (self.normal, f"new match in {seconds}", MUTED),
                ],
                centre,
            )
            self.draw_stars(screen, rect, colour)

    def panel(self, screen: Any, lines: list, centre: tuple) -> pygame.Rect:
        """Lines of text centred on a translucent rounded backdrop; returns the backdrop's rect."""
        surfaces = [self.text(font, message, colour) for font, message, colour in lines]
        gap = 6
        width = max(surface.get_width() for surface in surfaces) + 48
        height = sum(surface.get_height() for surface in surfaces) + gap * (len(surfaces) - 1) + 24
        rect = pygame.Rect(0, 0, width, height)
        rect.center = (int(centre[0]), int(centre[1]))
        backdrop = pygame.Surface(rect.size, pygame.SRCALPHA)
        pygame.draw.rect(backdrop, (4, 5, 10, 235), backdrop.get_rect(), border_radius=12)
        pygame.draw.rect(backdrop, (*COURT, 255), backdrop.get_rect(), width=1, border_radius=12)
        screen.blit(backdrop, rect)
        y = rect.top + 12
        for surface in surfaces:
            screen.blit(surface, surface.get_rect(midtop=(rect.centerx, y)))
            y += surface.get_height() + gap
        return rect

    def draw_stars(self, screen: Any, rect: pygame.Rect, colour: tuple) -> None:
        """Twinkling stars around the winner's panel."""
        try:
            _assets.image("star")
        except FileNotFoundError:  # assets not installed: no stars
            return
        now = time.monotonic()
        for index in range(14):
            angle = index / 14 * math.tau + now * 0.4
            x = rect.centerx + math.cos(angle) * (rect.width / 2 + 26)
            y = rect.centery + math.sin(angle) * (rect.height / 2 + 22)
            twinkle = 0.5 + 0.5 * math.sin(now * 5 + index * 1.7)
            size = round(8 + 12 * twinkle)
            tint = GOLD if index % 2 else colour
            sprite = pygame.transform.smoothscale(_assets.tinted("star", tint), (size, size))
            self.blit_centred(screen, sprite, (x, y))

    def draw_spectators(self, screen: Any, state: Any, height: int) -> None:
        watching = sorted(
            (entry for entry in state.players.values() if entry.get("side") is None),
            key=lambda entry: (entry.get("bot", False), entry.get("since", 0)),
        )
        if not watching:
            return
        y = height - 30 - 18 * min(len(watching), 6)
        screen.blit(self.text(self.small, "spectators", MUTED), (14, y))
        for entry in watching[:6]:
            y += 18
            name = self.text(self.small, entry["name"], tuple(entry["colour"]))
            screen.blit(name, (22, y))
            screen.blit(self.text(self.small, "watching", MUTED), (30 + name.get_width(), y))
        if len(watching) > 6:
            screen.blit(self.text(self.small, f"and {len(watching) - 6} more", MUTED), (22, y + 18))

    def draw_hint(self, screen: Any, state: Any, width: int, height: int) -> None:
        if self.view.player_id is None:
            return
        if self.my_side(state) is not None:
            hint = "W / S or Up / Down to move  -  F3 network"
        else:
            hint = "you are watching: you play when a paddle is free"
        surface = self.text(self.small, hint, MUTED)
        screen.blit(surface, surface.get_rect(bottomright=(width - 14, height - 12)))


DEMO = PongDemo()
