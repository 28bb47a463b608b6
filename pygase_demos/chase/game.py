"""Chase: the server glue, the window (drawing, input, sounds) and the bots. The rules are in `rules`.

Server: the game state holds the world of `rules.new_world()`; `time_step` and the handlers run the
rules on a copy of it and send only what changed. Clients send MOVE(dx, dy) and nothing else: positions
are the server's alone.

Client: arrow keys and WASD are held-key bindings that send MOVE `rules.HOLD_RATE` times a second. The
local runner is predicted with `rules.move_step` (the server's own rule), everybody else is interpolated.
"""

from __future__ import annotations

import copy
import math
import random
import time
from typing import Any, Optional

import pygame

from pygase import TO_DELETE, GameState
from pygase.utils import get_available_ip_addresses
from pygase_demos import _assets, _framework
from pygase_demos._framework import Bot, Demo, PlayerView
from pygase_demos.chase import rules
from pygase_pygame import Predictor, SnapshotInterpolator

_KEYS = tuple(rules.new_world())
_MISSING = object()


def world_of(game_state: GameState) -> dict:
    """A private copy of the rules' world in `game_state`."""
    defaults = rules.new_world()
    return copy.deepcopy({key: getattr(game_state, key, defaults[key]) for key in _KEYS})


def diff(before: Any, after: dict) -> dict:
    """The update dict that turns `before` (a dict, or a GameState's attributes) into `after`."""
    old = before if isinstance(before, dict) else before.__dict__
    changes: dict = {}
    for key, value in after.items():
        previous = old.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(previous, dict):
            nested = diff(previous, value)
            if nested:
                changes[key] = nested
        elif previous is _MISSING or type(previous) is not type(value) or previous != value:
            changes[key] = value
    for key in old:
        if key not in after and (before is old or key in _KEYS):
            changes[key] = TO_DELETE
    return changes


class ChaseDemo(Demo):
    name = "chase"
    title = "Chase"
    description = "a game of tag: the chaser passes the role by catching someone"
    size = (rules.WIDTH, rules.HEIGHT)
    max_players = len(rules.COLOURS)

    def __init__(self) -> None:
        self.rng = random.Random()

    # ---- server side ------------------------------------------------------------------------------

    def initial_state(self) -> GameState:
        return GameState(**rules.new_world())

    def time_step(self, game_state: GameState, dt: float) -> dict:
        world = world_of(game_state)
        rules.tick(world, dt)
        return diff(game_state, world)

    def handlers(self) -> dict:
        return {"MOVE": self.on_move}

    def on_move(
        self, player: Any, game_state: GameState, dx: Any = 0, dy: Any = 0, input_seq: Any = None
    ) -> dict:
        """A client wants to run in direction (dx, dy); the rules decide how far."""
        current = game_state.players.get(player)
        if current is None:
            return {}
        world = {"players": {player: dict(current)}}
        rules.apply_move(world, player, {"dx": dx, "dy": dy}, input_seq)
        changes = diff(current, world["players"][player])
        return {"players": {player: changes}} if changes else {}

    def add_player(self, game_state: GameState, name: str) -> tuple:
        world = world_of(game_state)
        player_id = rules.add_player(world, name, self.rng)
        return player_id, diff(game_state, world)

    def remove_player(self, game_state: GameState, player_id: Any) -> dict:
        world = world_of(game_state)
        rules.remove_player(world, player_id)
        return diff(game_state, world)

    # ---- client side ------------------------------------------------------------------------------

    def setup_window(self, window: Any, view: PlayerView) -> None:
        ChaseView(window, view)

    # ---- bots -------------------------------------------------------------------------------------

    def bot_step(self, bot: Bot, game_state: GameState, dt: float) -> None:
        direction = bot_direction(bot, game_state, dt)
        if direction is not None:
            bot.dispatch("MOVE", dx=direction[0], dy=direction[1])


# ---- bots ------------------------------------------------------------------------------------------


def _full_speed(x: float, y: float, scale: float = 1.0) -> Optional[tuple]:
    """Scale a direction so that its larger component is `scale` (each axis runs at up to full speed)."""
    largest = max(abs(x), abs(y))
    if largest < 1e-6:
        return None
    return (round(x / largest * scale, 3), round(y / largest * scale, 3))


def bot_direction(bot: Bot, game_state: Any, dt: float) -> Optional[tuple]:
    """Where a bot runs: the chaser hunts the nearest runner, runners flee and avoid the walls."""
    players = getattr(game_state, "players", {})
    me = players.get(bot.player_id)
    if me is None:
        return None
    memory, rng = bot.memory, bot.rng
    chaser_id = getattr(game_state, "chaser", None)
    results = getattr(game_state, "results", 0.0) > 0
    # where everybody was a step ago, for their velocities
    seen = memory.setdefault("seen", {})
    velocities = {}
    for pid, player in players.items():
        if pid in seen and dt > 0:
            velocities[pid] = ((player["x"] - seen[pid][0]) / dt, (player["y"] - seen[pid][1]) / dt)
        seen[pid] = (player["x"], player["y"])

    wander = memory.get("wander", rng.uniform(0, 2 * math.pi)) + rng.gauss(0.0, 0.35)
    memory["wander"] = wander
    wx, wy = math.cos(wander), math.sin(wander)

    if me.get("it"):
        if me.get("frozen"):
            return None
        runners = {pid: p for pid, p in players.items() if pid != bot.player_id}
        if not runners or results:
            return _full_speed(wx, wy, 0.5)

        def distance(pid: Any) -> float:
            return math.hypot(runners[pid]["x"] - me["x"], runners[pid]["y"] - me["y"])

        nearest = min(runners, key=distance)
        target = memory.get("target")
        if target not in runners or distance(target) > 1.3 * distance(nearest) + 20:
            target = nearest
        memory["target"] = target
        prey = runners[target]
        vx, vy = velocities.get(target, (0.0, 0.0))
        ahead = min(0.5, distance(target) / rules.CHASER_SPEED)
        aim_x = min(max(prey["x"] + vx * ahead, rules.MIN_X), rules.MAX_X)
        aim_y = min(max(prey["y"] + vy * ahead, rules.MIN_Y), rules.MAX_Y)
        return _full_speed(aim_x - me["x"] + 12 * wx, aim_y - me["y"] + 12 * wy)

    # a runner
    if rng.random() < 0.08 and "last" in memory:  # hesitate now and then: bots can be caught
        return memory["last"]
    chaser = players.get(chaser_id)
    fx = fy = 0.0
    fleeing = False
    if chaser is not None and not results:
        ax, ay = me["x"] - chaser["x"], me["y"] - chaser["y"]
        distance = math.hypot(ax, ay) or 1.0
        if memory.get("alert_until", 0.0) <= getattr(game_state, "time", 0.0):
            memory["alert"] = rng.uniform(140, 300)
            memory["alert_until"] = getattr(game_state, "time", 0.0) + rng.uniform(1.5, 4.0)
        alert = memory.get("alert", 220.0)
        if distance < alert:
            fleeing = True
            urgency = 1.0 + (alert - distance) / alert
            fx, fy = ax / distance * urgency, ay / distance * urgency
            # cornered: slip sideways, towards the middle of the arena
            side_x, side_y = -ay / distance, ax / distance
            to_middle = (rules.WIDTH / 2 - me["x"]) * side_x + (rules.HEIGHT / 2 - me["y"]) * side_y
            if to_middle < 0:
                side_x, side_y = -side_x, -side_y
            fx += side_x * 0.6
            fy += side_y * 0.6
    margin = 110.0
    for low, high, value, axis in (
        (rules.MIN_X, rules.MAX_X, me["x"], 0),
        (rules.MIN_Y, rules.MAX_Y, me["y"], 1),
    ):
        push = 0.0
        if value - low < margin:
            push += 1.6 * (1 - (value - low) / margin)
        if high - value < margin:
            push -= 1.6 * (1 - (high - value) / margin)
        if axis == 0:
            fx += push
        else:
            fy += push
    weight = 0.35 if fleeing else 1.0
    result = _full_speed(fx + wx * weight, fy + wy * weight, 1.0 if fleeing else 0.55)
    memory["last"] = result
    return result


# ---- the window ------------------------------------------------------------------------------------

_WHITE = (255, 255, 255)
_DIM = (150, 155, 180)
_GOLD = (255, 210, 90)
_RED = (255, 80, 80)
_HUD = (14, 16, 24)


class ChaseView:
    """Everything one window draws and plays; registered on the window by `setup_window`."""

    def __init__(self, window: Any, view: PlayerView) -> None:
        self.window = window
        self.view = view
        bindings = window.bindings
        bindings.hold_rate = rules.HOLD_RATE
        for keys, data in (
            (("left", "a"), {"dx": -1}),
            (("right", "d"), {"dx": 1}),
            (("up", "w"), {"dy": -1}),
            (("down", "s"), {"dy": 1}),
        ):
            for key in keys:
                bindings.key_held(key, "MOVE", retries=1, **data)
        self.interpolator = SnapshotInterpolator("players", ("x", "y"))
        self.predictor = Predictor("players", None, rules.move_step)
        window.interpolators.append(self.interpolator)
        window.predictor = self.predictor
        window.predicted_events.add("MOVE")
        window.hooks["update"] = self.update
        window.hooks["draw"] = self.draw

        self.last_draw: Optional[float] = None
        self.shown: Optional[list] = None  # where the local runner is drawn (smoothed prediction)
        self.drawn: dict = {}  # player id -> last drawn position
        self.moving: dict = {}  # player id -> time it last moved
        self.particles: list = []  # [x, y, vx, vy, life, max_life, colour]
        self.flashes: list = []  # [x, y, life]
        self.popups: list = []  # [text, colour, x, y, life]
        self.seen_catches: Optional[int] = None
        self.seen_handover: Optional[int] = None
        self.seen_results = 0.0
        self.seen_points = 0
        self.background: Optional[pygame.Surface] = None
        self.text_cache: dict = {}
        self.sprite_cache: dict = {}
        self._invitation: Optional[str] = None
        self._invitation_room: Optional[str] = None  # the room code the invitation names

    # ---- state ------------------------------------------------------------------------------------

    def name_of(self, state: Any, player_id: Any) -> str:
        player = state.players.get(player_id)
        return player["name"] if player else "?"

    def update(self, dt: float, state: Any) -> None:
        """Sounds and effects for what happened since the last frame."""
        if self.predictor.key != self.view.player_id:  # learnt from YOU_ARE after joining
            self.predictor.reset()
            self.predictor.key = self.view.player_id
        dt = min(dt, 0.1)
        for particle in self.particles:
            particle[0] += particle[2] * dt
            particle[1] += particle[3] * dt
            particle[2] *= 0.9
            particle[3] *= 0.9
            particle[4] -= dt
        self.particles = [p for p in self.particles if p[4] > 0]
        for popup in self.popups:
            popup[3] -= 28 * dt
            popup[4] -= dt
        self.popups = [p for p in self.popups if p[4] > 0]
        for flash in self.flashes:
            flash[2] -= dt
        self.flashes = [f for f in self.flashes if f[2] > 0]
        if state is None or not hasattr(state, "players"):
            return
        me = self.view.player_id
        catch = state.last_catch
        if self.seen_catches is not None and state.catches != self.seen_catches and catch:
            self.effect_catch(state, catch)
            if catch["caught"] == me:
                _assets.play("tag", 0.7)
            else:
                _assets.play("catch", 0.7 if catch["by"] == me else 0.35)
        self.seen_catches = state.catches
        handover = state.handover
        number = handover["n"] if handover else 0
        if self.seen_handover is not None and number != self.seen_handover and handover:
            reason = "left" if handover["reason"] == "left" else "fell asleep"
            text = f"The chaser {reason}: {self.name_of(state, handover['to'])} is it!"
            self.popups.append([text, _GOLD, rules.WIDTH / 2, rules.HEIGHT / 2 + 60, 2.5])
            if handover["to"] == me:
                _assets.play("tag", 0.7)
        self.seen_handover = number
        if state.results > 0 and self.seen_results == 0:
            _assets.play("score", 0.7)
        self.seen_results = state.results
        mine = state.players.get(me)
        if mine is not None:
            points = int(mine["score"]) // 25
            if points > self.seen_points and state.results == 0:
                _assets.play("score", 0.25)
            self.seen_points = points

    def effect_catch(self, state: Any, catch: dict) -> None:
        caught = state.players.get(catch["caught"])
        colour = rules.COLOURS[caught["colour"] % len(rules.COLOURS)] if caught else _GOLD
        x, y = catch["x"], catch["y"]
        for index in range(18):
            angle = index / 18 * 2 * math.pi + random.uniform(-0.2, 0.2)
            speed = random.uniform(120, 260)
            life = random.uniform(0.5, 0.9)
            self.particles.append(
                [x, y, math.cos(angle) * speed, math.sin(angle) * speed, life, life, colour]
            )
        self.flashes.append([x, y, 0.45])
        by, victim = self.name_of(state, catch["by"]), self.name_of(state, catch["caught"])
        popup_y = y + 34 if y + 70 < rules.ARENA[3] else y - 70  # below: names are above the runners
        self.popups.append([f"{by} caught {victim}!", _GOLD, x, popup_y, 1.6])

    # ---- drawing ----------------------------------------------------------------------------------

    def text(self, text: str, size: int, colour: tuple, shadow: bool = True) -> pygame.Surface:
        key = (text, size, colour, shadow)
        surface = self.text_cache.get(key)
        if surface is None:
            font = _assets.font(size)
            front = font.render(text, True, colour)
            if shadow:
                surface = pygame.Surface((front.get_width() + 2, front.get_height() + 2), pygame.SRCALPHA)
                back = font.render(text, True, (0, 0, 0))
                surface.blit(back, (2, 2))
                surface.blit(front, (0, 0))
            else:
                surface = front
            if len(self.text_cache) > 400:
                self.text_cache.clear()
            self.text_cache[key] = surface
        return surface

    def sprite(self, colour: tuple, face: int) -> pygame.Surface:
        key = (colour, face)
        surface = self.sprite_cache.get(key)
        if surface is None:
            surface = _assets.tinted("runner", colour)
            if face < 0:
                surface = pygame.transform.flip(surface, True, False)
            self.sprite_cache[key] = surface
        return surface

    def floor(self, screen: pygame.Surface) -> pygame.Surface:
        if self.background is None:
            background = pygame.Surface(screen.get_size())
            background.fill(_HUD)
            left, top, right, bottom = rules.ARENA
            tile = _assets.image("floor")
            background.set_clip(pygame.Rect(left, top, right - left, bottom - top))
            for x in range(left, right, tile.get_width()):
                for y in range(top, bottom, tile.get_height()):
                    background.blit(tile, (x, y))
            background.set_clip(None)
            pygame.draw.rect(
                background, (70, 82, 120), (left - 4, top - 4, right - left + 8, bottom - top + 8), 4, 6
            )
            self.background = background
        return self.background

    def positions(self, state: Any, dt: float) -> dict:
        """Where to draw each player: interpolated, and the local runner at its smoothed prediction."""
        result = {pid: [p["x"], p["y"]] for pid, p in state.players.items()}
        me = state.players.get(self.view.player_id)
        if me is not None:
            target = [me.get("tx", me["x"]), me.get("ty", me["y"])]
            shown = self.shown
            if shown is None or math.hypot(target[0] - shown[0], target[1] - shown[1]) > 90:
                shown = list(target)
            else:  # glide to the prediction, each axis a little faster than the runner
                for axis in (0, 1):
                    gap = target[axis] - shown[axis]
                    reach = max(rules.CHASER_SPEED * 1.3, abs(gap) * 12) * dt
                    shown[axis] += max(-reach, min(reach, gap))
            self.shown = shown
            result[self.view.player_id] = shown
        return result

    def draw(self, screen: pygame.Surface, state: Any) -> None:
        if not hasattr(state, "players"):
            return
        now = time.monotonic()
        dt = min(0.1, now - (self.last_draw if self.last_draw is not None else now))
        self.last_draw = now
        screen.blit(self.floor(screen), (0, 0))
        positions = self.positions(state, dt)
        for pid, (x, y) in positions.items():
            last = self.drawn.get(pid)
            if last is not None and math.hypot(x - last[0], y - last[1]) > 0.3:
                self.moving[pid] = now
            self.drawn[pid] = (x, y)
        self.draw_scoreboard(screen, state, positions)
        order = sorted(state.players, key=lambda pid: positions[pid][1])
        for pid in order:
            self.draw_shadow(screen, state, pid, positions[pid], now)
        for pid in order:
            self.draw_player(screen, state, pid, positions[pid], now)
        for x, y, _, _, life, max_life, colour in self.particles:
            star = _assets.tinted("star", colour)
            size = max(2, int(star.get_width() * (0.6 + life / max_life)))
            screen.blit(pygame.transform.scale(star, (size, size)), (x - size / 2, y - size / 2))
        for x, y, life in self.flashes:
            size = int(24 + (0.45 - life) * 160)
            spark = pygame.transform.smoothscale(_assets.image("spark"), (size, size))
            spark.set_alpha(int(255 * life / 0.45))
            screen.blit(spark, (x - size / 2, y - size / 2))
        for text, colour, x, y, life in self.popups:
            label = self.text(text, 17, colour)
            surface = pygame.Surface((label.get_width() + 16, label.get_height() + 6), pygame.SRCALPHA)
            surface.fill((8, 10, 18, 170))
            surface.blit(label, (8, 3))
            surface.set_alpha(int(255 * min(1.0, life / 0.5)))
            x = max(16, min(rules.WIDTH - surface.get_width() - 16, x - surface.get_width() / 2))
            screen.blit(surface, (x, max(rules.ARENA[1] + 4, y)))
        self.draw_hud(screen, state, now)
        if state.results > 0:
            self.draw_results(screen, state)
        elif len(state.players) < 2:
            self.banner(screen, "Waiting for other players…", self.invitation(), 230)

    def invitation(self) -> str:
        """How others can join this game (shown while nobody else is there): on the LAN, and by the room
        code with a relay (recomputed when the code arrives or changes); one line or two."""
        room = self.view.room
        if self._invitation is None or room != self._invitation_room:
            self._invitation_room = room
            server = getattr(self.window.backend, "server", None)
            if server is not None and _framework.listens_on_all(server.hostname):
                lan = [a for a in get_available_ip_addresses() if not a.startswith("127.")]
                address = _framework.format_address(lan[0] if lan else "THIS-MACHINE", server.port)
                lines = _framework.invitation_lines("chase", address, room, self.view.relay)
                self._invitation = "\n".join(lines)
            elif server is None and room is not None:  # joined by the room code: others can too
                self._invitation = "\n".join(
                    _framework.invitation_lines("chase", None, room, self.view.relay)
                )
            elif server is None:
                self._invitation = "The game starts when someone else joins."
            else:
                self._invitation = "Playing on this machine only: add --bots 3, or host for your LAN."
        return self._invitation

    def draw_shadow(self, screen: pygame.Surface, state: Any, pid: Any, pos: list, now: float) -> None:
        x, y = pos
        pygame.draw.ellipse(screen, (8, 10, 16), (x - 15, y + 10, 30, 10))
        if pid == state.chaser:
            pulse = 0.5 + 0.5 * math.sin(now * 8)
            radius = int(22 + 4 * pulse)
            ring = pygame.Surface((radius * 2 + 4, radius * 2 + 4), pygame.SRCALPHA)
            pygame.draw.circle(
                ring, (255, 60, 60, 110 + int(80 * pulse)), (radius + 2, radius + 2), radius, 3
            )
            screen.blit(ring, (x - radius - 2, y - radius - 2))
        if pid == self.view.player_id:
            pygame.draw.ellipse(screen, (255, 255, 255), (x - 19, y + 8, 38, 14), 2)

    def draw_player(self, screen: pygame.Surface, state: Any, pid: Any, pos: list, now: float) -> None:
        player = state.players[pid]
        colour = rules.COLOURS[player["colour"] % len(rules.COLOURS)]
        x, y = pos
        bob = 0.0
        if now - self.moving.get(pid, -1.0) < 0.12:
            bob = -abs(math.sin(now * 16 + pid)) * 4
        sprite = self.sprite(colour, player.get("face", 1))
        screen.blit(sprite, (x - sprite.get_width() / 2, y - sprite.get_height() / 2 + bob))
        top = y - rules.RADIUS + bob
        is_chaser = pid == state.chaser
        if state.protect > 0 and not is_chaser and state.results == 0:
            shield = _assets.image("shield").copy()
            shield.set_alpha(int(170 + 85 * math.sin(now * 10)))
            screen.blit(shield, (x - shield.get_width() / 2, y - shield.get_height() / 2 + bob))
        if is_chaser:
            crown = _assets.image("crown")
            screen.blit(crown, (x - crown.get_width() / 2, top - crown.get_height() + 5))
            top -= crown.get_height() - 4
        name_colour = (255, 150, 150) if is_chaser else _WHITE
        label = self.text(player["name"], 13, name_colour)
        label_y = top - label.get_height() - 1
        screen.blit(label, (x - label.get_width() / 2, label_y))
        if pid == self.view.player_id:
            tip = label_y - 3
            pygame.draw.polygon(screen, colour, [(x - 6, tip - 8), (x + 6, tip - 8), (x, tip)])
        if is_chaser and player.get("frozen") and state.protect > 0:
            count = self.text(str(math.ceil(state.protect)), 22, _GOLD)
            screen.blit(count, (x + 18, y - 14))

    def centered(self, screen: pygame.Surface, surface: pygame.Surface, y: float) -> None:
        screen.blit(surface, (rules.WIDTH / 2 - surface.get_width() / 2, y))

    def banner(self, screen: pygame.Surface, title: str, subtitle: str, y: float) -> None:
        """A panel in the middle: `title` in large letters, and `subtitle` below (one or more lines)."""
        big = self.text(title, 30, _GOLD)
        lines = [self.text(line, 16, _WHITE) for line in subtitle.split("\n")]
        width = max(big.get_width(), *(line.get_width() for line in lines)) + 40
        panel = pygame.Surface((width, 74 + 22 * len(lines)), pygame.SRCALPHA)
        panel.fill((10, 12, 20, 200))
        screen.blit(panel, (rules.WIDTH / 2 - width / 2, y - 12))
        self.centered(screen, big, y)
        for index, line in enumerate(lines):
            self.centered(screen, line, y + 42 + 22 * index)

    def draw_hud(self, screen: pygame.Surface, state: Any, now: float) -> None:
        screen.blit(self.text("CHASE", 24, _GOLD), (14, 8))
        left = int(math.ceil(state.round_left))
        clock = f"Round {state.round}   {left // 60}:{left % 60:02d}"
        screen.blit(self.text(clock, 16, _WHITE if left > 10 else _RED), (112, 14))
        me = state.players.get(self.view.player_id)
        chaser_name = self.name_of(state, state.chaser)
        if state.results > 0:
            message, colour = f"Round over - next round in {math.ceil(state.results)}", _GOLD
        elif me is None:
            message, colour = "Watching", _DIM
        elif len(state.players) < 2:
            message, colour = "You are it - as soon as someone joins", _DIM
        elif me.get("it") and me.get("frozen"):
            message, colour = f"YOU ARE IT!  Go in {math.ceil(state.protect)}…", _RED
        elif me.get("it"):
            message, colour = "YOU ARE IT!  Catch someone", _RED
        elif state.protect > 0:
            message, colour = f"{chaser_name} is it - shields up for {math.ceil(state.protect)}", _GOLD
        else:
            message, colour = f"Run from {chaser_name}!", (140, 230, 150)
        hint = self.text("arrows/WASD run · F3 net", 12, _DIM, shadow=False)
        hint_left = rules.WIDTH - hint.get_width() - 14
        screen.blit(hint, (hint_left, 17))
        room_left, room_right = 270, hint_left - 16
        surface = self.text(message, 18, colour)
        if surface.get_width() > room_right - room_left:
            surface = self.text(message, 14, colour)
        middle = (room_left + room_right) / 2
        screen.blit(surface, (middle - surface.get_width() / 2, 24 - surface.get_height() / 2))
        if state.protect > 0 and state.results == 0 and len(state.players) >= 2:
            self.draw_countdown(screen, state)

    def draw_countdown(self, screen: pygame.Surface, state: Any) -> None:
        """A translucent badge in the middle: the seconds of protection left, and a ring running out."""
        radius = 46
        badge = pygame.Surface((radius * 2 + 8, radius * 2 + 8), pygame.SRCALPHA)
        centre = (radius + 4, radius + 4)
        pygame.draw.circle(badge, (10, 12, 20, 150), centre, radius)
        fraction = state.protect / rules.PROTECT_SECONDS
        rect = pygame.Rect(4, 4, radius * 2, radius * 2)
        start = math.pi / 2
        pygame.draw.arc(badge, (255, 210, 90, 230), rect, start, start + 2 * math.pi * fraction, 5)
        count = self.text(str(math.ceil(state.protect)), 40, _GOLD)
        badge.blit(count, (centre[0] - count.get_width() / 2, centre[1] - count.get_height() / 2 - 2))
        badge.set_alpha(200)
        x, y = rules.WIDTH / 2, (rules.ARENA[1] + rules.ARENA[3]) / 2
        screen.blit(badge, (x - badge.get_width() / 2, y - badge.get_height() / 2))
        label = self.text(f"{self.name_of(state, state.chaser)} is it!", 16, _WHITE)
        self.centered(screen, label, y + radius + 8)

    def draw_scoreboard(self, screen: pygame.Surface, state: Any, positions: dict) -> None:
        ranking = sorted(state.players, key=lambda pid: (-state.players[pid]["score"], pid))
        rows = ranking[:10]
        width, row_height = 196, 22
        height = 30 + row_height * len(rows)
        left, top = rules.WIDTH - width - 20, rules.ARENA[1] + 8
        board = pygame.Surface((width, height), pygame.SRCALPHA)
        board.fill((8, 10, 18, 185))
        pygame.draw.rect(board, (90, 100, 140, 200), board.get_rect(), 1, 6)
        self.draw_rows(board, state, rows, width, row_height)
        area = pygame.Rect(left, top, width, height).inflate(40, 60)
        covered = any(area.collidepoint(x, y) for x, y in positions.values())
        board.set_alpha(90 if covered else 255)
        screen.blit(board, (left, top))

    def draw_rows(self, screen: pygame.Surface, state: Any, rows: list, width: int, row_height: int) -> None:
        left = top = 0
        screen.blit(self.text("SCORES", 13, _GOLD), (left + 10, top + 6))
        small_crown = self.sprite_cache.get("small crown")
        if small_crown is None:
            small_crown = pygame.transform.smoothscale(_assets.image("crown"), (16, 12))
            self.sprite_cache["small crown"] = small_crown
        for index, pid in enumerate(rows):
            player = state.players[pid]
            y = top + 26 + index * row_height
            if pid == self.view.player_id:
                highlight = pygame.Surface((width - 8, row_height - 2), pygame.SRCALPHA)
                highlight.fill((255, 255, 255, 40))
                screen.blit(highlight, (left + 4, y - 1))
            colour = rules.COLOURS[player["colour"] % len(rules.COLOURS)]
            pygame.draw.circle(screen, colour, (left + 16, y + row_height // 2 - 1), 6)
            screen.blit(self.text(f"{index + 1}. {player['name']}", 14, _WHITE), (left + 28, y + 1))
            if pid == state.chaser:
                screen.blit(small_crown, (left + width - 70, y + 4))
            score = self.text(str(int(player["score"])), 14, _GOLD)
            screen.blit(score, (left + width - 12 - score.get_width(), y + 1))

    def draw_results(self, screen: pygame.Surface, state: Any) -> None:
        ranking = sorted(state.players, key=lambda pid: (-state.players[pid]["score"], pid))[:5]
        width, height = 380, 120 + 26 * len(ranking)
        top = rules.HEIGHT / 2 - height / 2
        panel = pygame.Surface((width, height), pygame.SRCALPHA)
        panel.fill((8, 10, 18, 225))
        pygame.draw.rect(panel, (255, 210, 90, 220), panel.get_rect(), 2, 8)
        screen.blit(panel, (rules.WIDTH / 2 - width / 2, top))
        self.centered(screen, self.text(f"Round {state.round} over!", 28, _GOLD), top + 14)
        winners = list(state.winners) or ["nobody"]
        if len(winners) == 1:
            headline = f"{winners[0]} wins!"
        elif len(winners) == 2:
            headline = f"{winners[0]} and {winners[1]} share the win!"
        else:
            headline = f"{len(winners)} players share the win!"
        line = self.text(headline, 20, _WHITE)
        if line.get_width() > width - 20:
            line = self.text(headline, 14, _WHITE)
        self.centered(screen, line, top + 54)
        left = rules.WIDTH / 2 - width / 2
        for index, pid in enumerate(ranking):
            player = state.players[pid]
            y = top + 90 + 26 * index
            colour = rules.COLOURS[player["colour"] % len(rules.COLOURS)]
            pygame.draw.circle(screen, colour, (int(left + 70), int(y + 11)), 7)
            screen.blit(self.text(f"{index + 1}. {player['name']}", 17, _WHITE), (left + 86, y))
            score = self.text(str(int(player["score"])), 17, _GOLD)
            screen.blit(score, (left + width - 70 - score.get_width(), y))
        metres = int(state.distance / 32)  # a runner is about a metre wide
        footer = f"together you ran {metres} m  ·  next round in {math.ceil(state.results)}"
        self.centered(screen, self.text(footer, 14, _DIM), top + height - 26)


DEMO = ChaseDemo()
