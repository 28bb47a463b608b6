"""Arena: top-down ships and bullets, everyone against everyone.

Controls: left/right or A/D rotate, up/W thrust, down/S brake, space fires (hold it for auto-fire).
Four hits destroy a ship; the shooter gets the kill and the wreck respawns two seconds later at a safe
spot, shielded for a moment (firing drops the shield). Bullets ricochet off the walls.

The server simulates everything (`rules.py`): clients only send INPUT(turn, thrust) and FIRE. Your own
ship is predicted (rotation and thrust, with the server's own `rules.steer`), the others are shown
slightly in the past, interpolated; bullets are sent once and drawn from where and when they were fired.
Explosions, hit sparks, sounds and the kill feed are derived on the client from how the state changes.
"""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Any, Optional

import pygame

from pygase import TO_DELETE, GameState
from pygase_demos import _assets
from pygase_demos._framework import Bot, Demo, PlayerView
from pygase_demos.arena import rules
from pygase_pygame import Predictor, SnapshotInterpolator

ROTATION_STEP = 5  # degrees between the cached rotations of a ship sprite


class ArenaDemo(Demo):
    name = "arena"
    title = "Arena"
    description = "Top-down ships and bullets: shoot everyone, four hits make a kill, respawn in two seconds."
    size = (rules.WIDTH, rules.HEIGHT)
    max_players = 12

    def __init__(self) -> None:
        self.rng = random.Random()
        self.limiter = rules.InputLimiter()

    # ---- server side ----
    def initial_state(self) -> GameState:
        self.limiter.clear()
        return GameState(ships={}, bullets={}, time=0.0, next_id=1, next_bullet=1)

    def time_step(self, game_state: GameState, dt: float) -> dict:
        return rules.advance(game_state.ships, game_state.bullets, game_state.time, dt, self.rng)

    def handlers(self) -> dict:
        return {"INPUT": self.on_input, "FIRE": self.on_fire}

    def on_input(self, player: Any, game_state: GameState, **data: Any) -> dict:
        ship = game_state.ships.get(player)
        if ship is None:
            return {}
        now = game_state.time
        wanted = {"turn": data.get("turn"), "thrust": data.get("thrust")}
        if rules.number(wanted["turn"]) and not self.limiter.allow(player, "turn", now):
            wanted["turn"] = 0
        if rules.number(wanted["thrust"]) and not self.limiter.allow(player, "thrust", now):
            wanted["thrust"] = 0
        changes = rules.steer(ship, wanted)
        seq = data.get("input_seq")
        if type(seq) is int and ship.get("input_seq", 0) < seq < 2**31:
            changes["input_seq"] = seq
        return {"ships": {player: changes}} if changes else {}

    def on_fire(self, player: Any, game_state: GameState) -> dict:
        ship = game_state.ships.get(player)
        if ship is None:
            return {}
        bullet_id = game_state.next_bullet
        fired = rules.fire(ship, player, game_state.time, bullet_id)
        if fired is None:
            return {}
        bullet, ship_changes = fired
        return {"bullets": {bullet_id: bullet}, "next_bullet": bullet_id + 1, "ships": {player: ship_changes}}

    def add_player(self, game_state: GameState, name: str) -> tuple:
        player_id = game_state.next_id
        ships = game_state.ships
        spot = rules.safe_spot(ships, self.rng)
        ship = rules.new_ship(
            name, rules.free_colour(ships), spot, rules.heading_towards_centre(spot), game_state.time
        )
        return player_id, {"next_id": player_id + 1, "ships": {player_id: ship}}

    def remove_player(self, game_state: GameState, player_id: Any) -> dict:
        self.limiter.forget(player_id)
        return {"ships": {player_id: TO_DELETE}}

    def player_count(self, game_state: GameState) -> int:
        return len(getattr(game_state, "ships", {}))

    # ---- client side ----
    def setup_window(self, window: Any, view: PlayerView) -> None:
        ArenaView(window, view)

    def bot_step(self, bot: Bot, game_state: GameState, dt: float) -> None:
        ships = game_state.ships
        me = ships.get(bot.player_id)
        if me is None or not me.get("alive"):
            return
        memory, rng = bot.memory, bot.rng
        # A slowly wandering aim error and the odd change of mind make the bots beatable.
        memory["wobble"] = rules.clamp(memory.get("wobble", 0.0) + rng.uniform(-4, 4), -14, 14)
        target = memory.get("target")
        if target not in ships or not ships[target].get("alive") or rng.random() < 0.01:
            enemies = [
                (math.hypot(s["x"] - me["x"], s["y"] - me["y"]), key)
                for key, s in ships.items()
                if key != bot.player_id and s.get("alive")
            ]
            target = min(enemies)[1] if enemies else None
            memory["target"] = target
        if target is None:
            bot.dispatch("INPUT", turn=rng.choice((-1, 0, 1)), thrust=rng.choice((0, 1)))
            return
        enemy = ships[target]
        distance = math.hypot(enemy["x"] - me["x"], enemy["y"] - me["y"])
        lead = distance / rules.BULLET_SPEED  # aim where the enemy will be
        aim_x = enemy["x"] + enemy.get("vx", 0.0) * lead - me.get("vx", 0.0) * lead * rules.BULLET_INHERIT
        aim_y = enemy["y"] + enemy.get("vy", 0.0) * lead - me.get("vy", 0.0) * lead * rules.BULLET_INHERIT
        wanted = math.degrees(math.atan2(aim_y - me["y"], aim_x - me["x"])) + memory["wobble"]
        error = (wanted - me["a"] + 180) % 360 - 180
        turn = rules.clamp(error / (rules.TURN_RATE * rules.INPUT_DT), -1.0, 1.0)
        thrust = 1.0 if distance > 280 else 0.0 if distance > 140 else -0.5
        if abs(error) > 60:
            thrust = min(thrust, 0.3)  # turn first
        bot.dispatch("INPUT", turn=round(turn, 2), thrust=thrust)
        if abs(error) < 16 and distance < 520 and game_state.time >= me.get("next_fire", 0.0):
            bot.dispatch("FIRE")


class ArenaView:
    """One window's client side: input, interpolation and prediction, effects, sounds and drawing."""

    def __init__(self, window: Any, view: PlayerView) -> None:
        self.window = window
        self.view = view
        bindings = window.bindings
        bindings.hold_rate = rules.HOLD_RATE
        for key, data in (
            ("left", {"turn": -1}),
            ("a", {"turn": -1}),
            ("right", {"turn": 1}),
            ("d", {"turn": 1}),
            ("up", {"thrust": 1}),
            ("w", {"thrust": 1}),
            ("down", {"thrust": -rules.REVERSE}),
            ("s", {"thrust": -rules.REVERSE}),
        ):
            # One resend: a lost input would be skipped by the server and visibly undo its prediction.
            bindings.key_held(key, "INPUT", retries=1, **data)
        bindings.key_held("space", "FIRE")
        self.ships = SnapshotInterpolator("ships", fields=("x", "y", "a"))
        self.predictor = Predictor("ships", None, rules.steer)
        window.interpolators.append(self.ships)
        window.predictor = self.predictor
        window.predicted_events.add("INPUT")
        # The window feeds the interpolator and the predictor; this listener keeps the server clock.
        window.client.register_state_listener(self.on_state)
        window.hooks["update"] = self.update
        window.hooks["draw"] = self.draw
        self._lock = threading.Lock()
        self._clock_offset: Optional[float] = None  # server time minus local time, smoothed
        self._last_arrival = time.monotonic()
        self._seen_ships: dict = {}  # id -> (alive, hp, kills) as last seen
        self._seen_bullets: set = set()
        self._drawn: dict = {}  # id -> where the ship was drawn last
        self._effects: list = []  # [kind, x, y, start, colour]
        self._feed: list = []  # (time, text, colour)
        self._background: Optional[pygame.Surface] = None
        self._rotated: dict = {}
        self._texts: dict = {}
        self._started = time.monotonic()
        self._own_heading: Optional[float] = None  # what is drawn: eases into the 12-degree input steps
        self._last_draw = self._started

    # ---- network thread -----------------------------------------------------------------------------

    def on_state(self, game_state: GameState) -> None:
        now = time.monotonic()
        server_time = rules.number(getattr(game_state, "time", 0.0))
        sample = server_time - now
        with self._lock:
            if self._clock_offset is None or abs(sample - self._clock_offset) > 1.0:
                self._clock_offset = sample
            else:  # follow quick arrivals fast and late ones slowly: the offset tracks the quickest path
                weight = 0.3 if sample > self._clock_offset else 0.03
                self._clock_offset += weight * (sample - self._clock_offset)
            self._last_arrival = now

    def server_time(self, now: float) -> float:
        """The server time of what is shown now (the latest state's time, running on)."""
        with self._lock:
            return now + (self._clock_offset or 0.0)

    # ---- every frame --------------------------------------------------------------------------------

    def update(self, dt: float, state: Optional[GameState]) -> None:
        me = self.view.player_id
        if me is not None and self.predictor.key != me:
            self.predictor.reset()
            self.predictor.key = me
        if state is None:
            return
        now = time.monotonic()
        ships = getattr(state, "ships", {})
        for key, ship in ships.items():
            alive, hp, kills = ship.get("alive"), ship.get("hp", 0), ship.get("kills", 0)
            seen = self._seen_ships.get(key)
            if seen is not None:
                was_alive, was_hp, was_kills = seen
                x, y = self._drawn.get(key, (ship["x"], ship["y"]))
                colour = rules.COLOURS[ship.get("c", 0) % len(rules.COLOURS)]
                if was_alive and not alive:
                    self._effects.append(["boom", x, y, now, colour])
                    _assets.play("explode", 0.5)
                    killer = ships.get(ship.get("by"))
                    who = killer["name"] if killer else "the void"
                    killer_colour = (
                        rules.COLOURS[killer.get("c", 0) % len(rules.COLOURS)] if killer else colour
                    )
                    self._feed.append((now, f"{who}  >  {ship['name']}", killer_colour))
                    self._feed = self._feed[-5:]
                elif alive and not was_alive:
                    self._effects.append(["warp", ship["x"], ship["y"], now, colour])
                elif alive and hp < was_hp:
                    self._effects.append(["hit", x, y, now, colour])
                if key == me and kills > was_kills:
                    _assets.play("score", 0.5)
            self._seen_ships[key] = (alive, hp, kills)
        for key in list(self._seen_ships):
            if key not in ships:
                del self._seen_ships[key]
                self._drawn.pop(key, None)
        bullets = getattr(state, "bullets", {})
        fresh = [key for key in bullets if key not in self._seen_bullets]
        if any(bullets[key].get("o") == me for key in fresh) and me is not None:
            _assets.play("shoot", 0.25)
        self._seen_bullets = set(bullets)
        self._effects = [e for e in self._effects if now - e[3] < 0.8]

    def draw(self, screen: pygame.Surface, state: GameState) -> None:
        now = time.monotonic()
        screen.blit(self.background(), (0, 0))
        me = self.view.player_id
        present = self.server_time(now)
        shown = present - self.ships.delay  # the others are shown that far in the past
        ships = getattr(state, "ships", {})
        for bullet in getattr(state, "bullets", {}).values():
            at = present if bullet.get("o") == me else shown
            age = at - rules.number(bullet.get("t"))
            if 0 <= age <= rules.BULLET_LIFE:
                owner = ships.get(bullet.get("o"))
                colour = rules.COLOURS[owner.get("c", 0) % len(rules.COLOURS)] if owner else (255, 255, 255)
                x, y = rules.bullet_position(bullet, at)
                tail = rules.bullet_position(bullet, max(rules.number(bullet.get("t")), at - 0.03))
                pygame.draw.line(screen, colour, tail, (x, y), 2)
                sprite = self.glow("bullet", 12, tuple(min(255, c // 2 + 140) for c in colour))
                screen.blit(
                    sprite, sprite.get_rect(center=(round(x), round(y))), special_flags=pygame.BLEND_RGB_ADD
                )
        with self._lock:
            ahead = min(max(now - self._last_arrival, 0.0), 0.1)
        frame_time, self._last_draw = now - self._last_draw, now
        for key, ship in ships.items():
            if not ship.get("alive"):
                continue
            x, y = ship["x"], ship["y"]
            if key == me:  # the predicted ship is at the latest state's time: run it on to now
                x = rules.clamp(
                    x + ship.get("vx", 0.0) * ahead, rules.SHIP_RADIUS, rules.WIDTH - rules.SHIP_RADIUS
                )
                y = rules.clamp(
                    y + ship.get("vy", 0.0) * ahead, rules.SHIP_RADIUS, rules.HEIGHT - rules.SHIP_RADIUS
                )
            heading = rules.number(ship.get("a"))
            if key == me:
                drawn = self._own_heading
                if drawn is None or abs(heading - drawn) > 90:
                    drawn = heading
                self._own_heading = drawn + (heading - drawn) * min(1.0, frame_time * 25)
                heading = self._own_heading
            self._drawn[key] = (x, y)
            self.draw_ship(screen, ship, x, y, heading, key == me, (present if key == me else shown))
        self.draw_effects(screen, now)
        self.draw_scoreboard(screen, ships, me)
        self.draw_feed(screen, now)
        self.draw_messages(screen, ships.get(me), present, now)

    # ---- drawing ------------------------------------------------------------------------------------

    def background(self) -> pygame.Surface:
        if self._background is None:
            surface = pygame.Surface((rules.WIDTH, rules.HEIGHT))
            surface.fill((8, 10, 22))
            rng = random.Random(2024)
            for _ in range(170):
                level = rng.randint(70, 255)
                star = _assets.tinted("star", (level, level, min(255, level + 30)))
                if rng.random() < 0.6:
                    star = pygame.transform.smoothscale(star, (4, 4))
                surface.blit(star, (rng.randrange(rules.WIDTH), rng.randrange(rules.HEIGHT)))
            for x in range(0, rules.WIDTH, 75):
                pygame.draw.line(surface, (16, 20, 40), (x, 0), (x, rules.HEIGHT))
            for y in range(0, rules.HEIGHT, 75):
                pygame.draw.line(surface, (16, 20, 40), (0, y), (rules.WIDTH, y))
            pygame.draw.rect(surface, (60, 80, 140), surface.get_rect(), 3)
            self._background = surface.convert()
        return self._background

    def glow(self, name: str, size: int, colour: tuple = (255, 255, 255)) -> pygame.Surface:
        """A sprite premultiplied onto black, for additive blending (no dark fringes when scaled)."""
        key = ("glow", name, size, colour)
        surface = self._rotated.get(key)
        if surface is None:
            sprite = _assets.tinted(name, colour) if colour != (255, 255, 255) else _assets.image(name)
            surface = pygame.Surface((size, size))
            surface.fill((0, 0, 0))
            surface.blit(pygame.transform.smoothscale(sprite, (size, size)), (0, 0))
            self._rotated[key] = surface
        return surface

    def ship_sprite(self, colour_index: int, heading: float) -> pygame.Surface:
        step = int(round(heading / ROTATION_STEP)) % (360 // ROTATION_STEP)
        key = (colour_index, step)
        sprite = self._rotated.get(key)
        if sprite is None:
            base = _assets.tinted("ship", rules.COLOURS[colour_index % len(rules.COLOURS)])
            sprite = self._rotated[key] = pygame.transform.rotozoom(base, -step * ROTATION_STEP, 1.0)
        return sprite

    def text(self, text: str, size: int, colour: tuple) -> pygame.Surface:
        key = (text, size, colour)
        surface = self._texts.get(key)
        if surface is None:
            if len(self._texts) > 300:
                self._texts.clear()
            surface = self._texts[key] = _assets.font(size).render(text, True, colour)
        return surface

    def draw_ship(
        self, screen: pygame.Surface, ship: dict, x: float, y: float, heading: float, mine: bool, at: float
    ) -> None:
        colour_index = ship.get("c", 0)
        colour = rules.COLOURS[colour_index % len(rules.COLOURS)]
        centre = (round(x), round(y))
        if mine and any(k in self.window.bindings.held_keys for k in ("up", "w")):
            radians = math.radians(heading)
            flicker = 10 + 6 * random.random()
            tail = (x - math.cos(radians) * (12 + flicker), y - math.sin(radians) * (12 + flicker))
            pygame.draw.line(
                screen, (255, 170, 60), (x - math.cos(radians) * 10, y - math.sin(radians) * 10), tail, 5
            )
        sprite = self.ship_sprite(colour_index, heading)
        screen.blit(sprite, sprite.get_rect(center=centre))
        if rules.number(ship.get("shield")) > at:
            pulse = 20 + int(3 * math.sin(time.monotonic() * 12))
            pygame.draw.circle(screen, (140, 200, 255), centre, pulse, 2)
        if mine:
            pygame.draw.circle(screen, colour, centre, 22, 1)
        label = self.text(ship.get("name", "?"), 13, colour)
        screen.blit(label, label.get_rect(midbottom=(centre[0], centre[1] - 22)))
        hp = max(0.0, min(1.0, ship.get("hp", 0) / rules.MAX_HP))
        bar = pygame.Rect(0, 0, 30, 4)
        bar.midtop = (centre[0], centre[1] + 23)
        pygame.draw.rect(screen, (50, 20, 20), bar)
        fill = bar.copy()
        fill.width = round(bar.width * hp)
        health_colour = (90, 230, 90) if hp > 0.5 else (240, 200, 60) if hp > 0.25 else (240, 70, 60)
        pygame.draw.rect(screen, health_colour, fill)

    def draw_effects(self, screen: pygame.Surface, now: float) -> None:
        for kind, x, y, start, colour in self._effects:
            age = now - start
            if kind == "boom":
                life = 0.8
                size = 24 + 4 * int(20 * min(1.0, age / 0.3))
                fade = max(0.0, 1 - age / life)
                for index in range(10):  # debris flying out
                    angle = index * math.tau / 10 + 0.3 * (index % 3)
                    distance = 18 + (90 + 12 * (index % 4)) * age
                    px, py = x + math.cos(angle) * distance, y + math.sin(angle) * distance
                    pygame.draw.circle(screen, colour, (round(px), round(py)), max(1, 3 - int(age * 4)))
            elif kind == "warp":  # a ring closing in on a ship that respawns
                radius = int(60 * max(0.0, 1 - age / 0.4))
                if radius > 2:
                    pygame.draw.circle(screen, colour, (round(x), round(y)), radius, 2)
                continue
            else:
                life = 0.25
                size = 16 + 4 * int(6 * age / life)
                fade = max(0.0, 1 - age / life)
            if fade <= 0:
                continue
            image = self.glow("spark", size).copy()
            level = int(255 * fade)
            image.fill((level, level, level), special_flags=pygame.BLEND_RGB_MULT)
            screen.blit(
                image, image.get_rect(center=(round(x), round(y))), special_flags=pygame.BLEND_RGB_ADD
            )

    def draw_scoreboard(self, screen: pygame.Surface, ships: dict, me: Any) -> None:
        rows = sorted(ships.items(), key=lambda item: (-item[1].get("kills", 0), item[1].get("deaths", 0)))
        width, line = 210, 18
        panel = pygame.Surface((width, 28 + line * len(rows)), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 140))
        left = rules.WIDTH - width - 10
        top = 104 if self.window.show_overlay else 10  # F3's statistics take the corner
        screen.blit(panel, (left, top))
        screen.blit(self.text("PILOT", 12, (150, 160, 190)), (left + 10, top + 6))
        screen.blit(self.text("K", 12, (150, 160, 190)), (left + 150, top + 6))
        screen.blit(self.text("D", 12, (150, 160, 190)), (left + 182, top + 6))
        for index, (key, ship) in enumerate(rows):
            colour = rules.COLOURS[ship.get("c", 0) % len(rules.COLOURS)]
            y = top + 24 + index * line
            if key == me:
                pygame.draw.rect(screen, (60, 70, 110), (left + 4, y - 2, width - 8, line), border_radius=3)
            pygame.draw.circle(screen, colour, (left + 14, y + 7), 4)
            screen.blit(self.text(ship.get("name", "?")[:16], 14, colour), (left + 24, y))
            screen.blit(self.text(str(ship.get("kills", 0)), 14, (240, 240, 240)), (left + 150, y))
            screen.blit(self.text(str(ship.get("deaths", 0)), 14, (200, 200, 210)), (left + 182, y))

    def draw_feed(self, screen: pygame.Surface, now: float) -> None:
        y = 12
        for start, text, colour in self._feed:
            if now - start < 5.0:
                screen.blit(self.text(text, 14, colour), (12, y))
                y += 18

    def draw_messages(self, screen: pygame.Surface, ship: Optional[dict], present: float, now: float) -> None:
        centre = (rules.WIDTH // 2, rules.HEIGHT // 2)
        if ship is not None and not ship.get("alive"):
            wait = max(0.0, rules.number(ship.get("respawn")) - present)
            message = self.text(f"Destroyed - back in {wait:.1f} s", 26, (255, 220, 120))
            screen.blit(message, message.get_rect(center=centre))
        if now - self._started < 8.0:
            hint = self.text(
                "Arrows or WASD: turn and thrust  -  Space: fire  -  F3: network", 14, (150, 160, 190)
            )
            screen.blit(hint, hint.get_rect(midbottom=(centre[0], rules.HEIGHT - 10)))


DEMO = ArenaDemo()
