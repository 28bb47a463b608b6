"""The arena's rules: pure functions on plain dicts, shared by the server, the prediction and the tests.

State (all of it synchronized to every client):

    time          server game time in seconds (rounded to 1 ms)
    next_id       the next player id
    next_bullet   the next bullet id
    ships         player id -> {"name", "c" (colour index), "x", "y", "vx", "vy", "a" (heading in degrees,
                  not wrapped, so that interpolation never spins the long way round), "hp", "alive",
                  "respawn" (time of the respawn while dead), "shield" (invulnerable until),
                  "next_fire" (may fire again at), "kills", "deaths", "by" (who killed it last),
                  "input_seq" (the last input the server processed, for the client's prediction)}
    bullets       bullet id -> {"x", "y", "vx", "vy", "t" (time fired), "o" (owner)}

Bullets fly in straight lines and ricochet off the walls, so a bullet is sent once, when it is fired:
its position at any time follows from where, when and how fast it was fired (`bullet_position`). Its
entry is deleted (TO_DELETE) when it hits or expires. Ships change every tick, with values rounded to
0.1 so that ships at rest send nothing.

Inputs: INPUT(turn in [-1, 1], thrust in [-0.5, 1]) covers 1/HOLD_RATE seconds of steering (`steer`,
which the client also uses to predict its own ship); FIRE fires if the ship's cooldown has passed.
Nothing a client sends is trusted: inputs are clamped, rate-limited (`InputLimiter`) and speed is capped.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Optional

from pygase import TO_DELETE

WIDTH, HEIGHT = 900, 650

HOLD_RATE = 20.0  # INPUT events per second while a key is held
INPUT_DT = 1.0 / HOLD_RATE  # the time one INPUT event steers for

SHIP_RADIUS = 14.0
TURN_RATE = 250.0  # degrees per second
THRUST = 520.0  # pixels per second squared
REVERSE = 0.5  # braking thrust, as a share of THRUST
MAX_SPEED = 330.0  # pixels per second
DRAG = 0.9  # per second: speed falls by e^(-DRAG * dt)
REST_SPEED = 3.0  # slower than this, a ship stops (and stops costing bandwidth)
WALL_BOUNCE = 0.6  # share of the speed kept when bouncing off a wall

BULLET_SPEED = 560.0
BULLET_INHERIT = 0.4  # share of the ship's velocity a bullet inherits
BULLET_LIFE = 1.1  # seconds
BULLET_RADIUS = 3.0
FIRE_COOLDOWN = 0.22
DAMAGE = 25
MAX_HP = 100
RESPAWN_DELAY = 2.0
SHIELD_TIME = 1.5  # invulnerability after spawning (firing ends it)
MAX_DT = 0.1  # a longer tick (a stalled server) is simulated as this long

COLOURS = (
    (255, 90, 90),
    (90, 170, 255),
    (120, 235, 110),
    (255, 210, 70),
    (220, 110, 255),
    (70, 230, 220),
    (255, 150, 60),
    (255, 120, 190),
    (180, 180, 255),
    (200, 255, 140),
    (255, 255, 255),
    (160, 120, 90),
)


def number(value: Any, default: float = 0.0) -> float:
    """`value` as a finite float, or `default` for anything else (bools, strings, NaN, infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        result = float(value)
    except OverflowError:
        return default
    return result if math.isfinite(result) else default


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def cap_speed(vx: float, vy: float) -> tuple:
    speed = math.hypot(vx, vy)
    if speed > MAX_SPEED:
        scale = MAX_SPEED / speed
        return vx * scale, vy * scale
    return vx, vy


# ---- ships ------------------------------------------------------------------------------------------


def new_ship(name: str, colour: int, position: tuple, heading: int, now: float) -> dict:
    x, y = position
    return {
        "name": name,
        "c": colour,
        "x": round(x, 1),
        "y": round(y, 1),
        "vx": 0.0,
        "vy": 0.0,
        "a": heading,
        "hp": MAX_HP,
        "alive": True,
        "respawn": 0.0,
        "shield": round(now + SHIELD_TIME, 3),
        "next_fire": 0.0,
        "kills": 0,
        "deaths": 0,
        "by": 0,
        "input_seq": 0,
    }


def free_colour(ships: Mapping) -> int:
    used = {ship.get("c") for ship in ships.values()}
    for index in range(len(COLOURS)):
        if index not in used:
            return index
    return len(ships) % len(COLOURS)


def steer(ship: Mapping[str, Any], data: Mapping[str, Any], dt: float = INPUT_DT) -> dict:
    """The changes one INPUT(turn, thrust) makes to a ship: rotation and thrust (the server's rule and
    the client's prediction). Returns only changed fields; a dead ship does not steer."""
    if not ship.get("alive", True):
        return {}
    dt = clamp(number(dt, INPUT_DT), 0.0, INPUT_DT)
    turn = clamp(number(data.get("turn")), -1.0, 1.0)
    thrust = clamp(number(data.get("thrust")), -REVERSE, 1.0)
    changes: dict = {}
    heading = number(ship.get("a"))
    if turn:
        heading = int(round(heading + turn * TURN_RATE * dt))
        changes["a"] = heading
    if thrust:
        radians = math.radians(heading)
        vx = number(ship.get("vx")) + math.cos(radians) * THRUST * thrust * dt
        vy = number(ship.get("vy")) + math.sin(radians) * THRUST * thrust * dt
        vx, vy = cap_speed(vx, vy)
        changes["vx"], changes["vy"] = round(vx, 1), round(vy, 1)
    return changes


def move(ship: Mapping[str, Any], dt: float) -> dict:
    """A living ship's drag, speed cap, motion and wall bounces over `dt`: the changed fields."""
    vx, vy = number(ship.get("vx")), number(ship.get("vy"))
    decay = math.exp(-DRAG * dt)
    vx, vy = cap_speed(vx * decay, vy * decay)
    if math.hypot(vx, vy) < REST_SPEED:
        vx = vy = 0.0
    x = number(ship.get("x")) + vx * dt
    y = number(ship.get("y")) + vy * dt
    if x < SHIP_RADIUS:
        x, vx = SHIP_RADIUS, abs(vx) * WALL_BOUNCE
    elif x > WIDTH - SHIP_RADIUS:
        x, vx = WIDTH - SHIP_RADIUS, -abs(vx) * WALL_BOUNCE
    if y < SHIP_RADIUS:
        y, vy = SHIP_RADIUS, abs(vy) * WALL_BOUNCE
    elif y > HEIGHT - SHIP_RADIUS:
        y, vy = HEIGHT - SHIP_RADIUS, -abs(vy) * WALL_BOUNCE
    new = {"x": round(x, 1), "y": round(y, 1), "vx": round(vx, 1), "vy": round(vy, 1)}
    return {key: value for key, value in new.items() if ship.get(key) != value}


def safe_spot(
    ships: Mapping[Any, Mapping], rng: random.Random, exclude: Any = None, tries: int = 16
) -> tuple:
    """A random spot far from the living ships (the best of `tries` random candidates)."""
    margin = 60.0
    others = [
        (number(ship.get("x")), number(ship.get("y")))
        for key, ship in ships.items()
        if key != exclude and ship.get("alive", True)
    ]
    best, best_distance = (WIDTH / 2, HEIGHT / 2), -1.0
    for _ in range(tries):
        x = rng.uniform(margin, WIDTH - margin)
        y = rng.uniform(margin, HEIGHT - margin)
        distance = min((math.hypot(x - ox, y - oy) for ox, oy in others), default=float("inf"))
        if distance > best_distance:
            best, best_distance = (x, y), distance
    return round(best[0], 1), round(best[1], 1)


def heading_towards_centre(position: tuple) -> int:
    x, y = position
    return int(round(math.degrees(math.atan2(HEIGHT / 2 - y, WIDTH / 2 - x)) / 5) * 5) % 360


# ---- bullets ----------------------------------------------------------------------------------------


def _reflect(value: float, low: float, high: float) -> float:
    """Fold a coordinate that flew past the walls back into [low, high] (ricochets)."""
    span = high - low
    folded = (value - low) % (2 * span)
    return low + (folded if folded <= span else 2 * span - folded)


def bullet_position(bullet: Mapping[str, Any], now: float) -> tuple:
    """Where a bullet is at time `now` (it flies straight and ricochets off the walls)."""
    age = now - number(bullet.get("t"))
    x = number(bullet.get("x")) + number(bullet.get("vx")) * age
    y = number(bullet.get("y")) + number(bullet.get("vy")) * age
    return (
        _reflect(x, BULLET_RADIUS, WIDTH - BULLET_RADIUS),
        _reflect(y, BULLET_RADIUS, HEIGHT - BULLET_RADIUS),
    )


def fire(ship: Mapping[str, Any], owner: Any, now: float, bullet_id: int) -> Optional[tuple]:
    """Fire a bullet from a ship if it may: (bullet, ship changes), or None (dead, or cooling down)."""
    if not ship.get("alive", True) or now < number(ship.get("next_fire")):
        return None
    radians = math.radians(number(ship.get("a")))
    dx, dy = math.cos(radians), math.sin(radians)
    nose = SHIP_RADIUS + 4
    bullet = {
        "x": round(clamp(number(ship.get("x")) + dx * nose, BULLET_RADIUS, WIDTH - BULLET_RADIUS), 1),
        "y": round(clamp(number(ship.get("y")) + dy * nose, BULLET_RADIUS, HEIGHT - BULLET_RADIUS), 1),
        "vx": round(dx * BULLET_SPEED + number(ship.get("vx")) * BULLET_INHERIT, 1),
        "vy": round(dy * BULLET_SPEED + number(ship.get("vy")) * BULLET_INHERIT, 1),
        "t": now,
        "o": owner,
    }
    changes: dict = {"next_fire": round(now + FIRE_COOLDOWN, 3)}
    if number(ship.get("shield")) > now:
        changes["shield"] = 0.0  # firing ends the spawn protection
    return bullet, changes


# ---- the time step ----------------------------------------------------------------------------------


def advance(ships: Mapping, bullets: Mapping, now: float, dt: float, rng: random.Random) -> dict:
    """One server tick: the state update (time, ships, bullets) after `dt` seconds from time `now`.

    Ships move; dead ships respawn when their time comes; bullets that hit a (living, unshielded,
    not their owner's) ship damage it and are deleted, and so are expired ones. A ship that loses its
    last hit points dies: the shooter gets the kill, the victim a death and, at once, the (safe, random)
    spot it will respawn at after RESPAWN_DELAY seconds, so that it never visibly jumps while alive.
    """
    dt = clamp(number(dt), 0.0, MAX_DT)
    later = round(number(now) + dt, 3)
    current = {key: dict(ship) for key, ship in ships.items()}
    for ship in current.values():
        if ship.get("alive", True):
            ship.update(move(ship, dt))
        elif later >= number(ship.get("respawn")):
            ship.update(alive=True, hp=MAX_HP, shield=round(later + SHIELD_TIME, 3), vx=0.0, vy=0.0)

    bullet_changes: dict = {}
    for bullet_id, bullet in bullets.items():
        if later - number(bullet.get("t")) > BULLET_LIFE:
            bullet_changes[bullet_id] = TO_DELETE
            continue
        victim = _hit(bullet, current, now, later)
        if victim is None:
            continue
        bullet_changes[bullet_id] = TO_DELETE
        ship = current[victim]
        if number(ship.get("shield")) > later:
            continue  # absorbed by the shield
        ship["hp"] = max(0, int(number(ship.get("hp"))) - DAMAGE)
        if ship["hp"] == 0:
            _kill(current, victim, bullet.get("o"), later, rng)

    ship_changes: dict = {}
    for key, ship in current.items():
        old = ships[key]
        changed = {field: value for field, value in ship.items() if old.get(field) != value}
        if changed:
            ship_changes[key] = changed
    update: dict = {"time": later}
    if ship_changes:
        update["ships"] = ship_changes
    if bullet_changes:
        update["bullets"] = bullet_changes
    return update


def _hit(bullet: Mapping[str, Any], ships: Mapping[Any, Mapping], before: float, now: float) -> Any:
    """The ship a bullet hits between the times `before` and `now`, or None (checked in short steps)."""
    speed = math.hypot(number(bullet.get("vx")), number(bullet.get("vy")))
    steps = max(1, math.ceil(speed * (now - before) / (SHIP_RADIUS / 2)))
    start = max(before, number(bullet.get("t")))
    owner = bullet.get("o")
    reach = SHIP_RADIUS + BULLET_RADIUS
    for step in range(1, steps + 1):
        bx, by = bullet_position(bullet, start + (now - start) * step / steps)
        for key, ship in ships.items():
            if key == owner or not ship.get("alive", True):
                continue
            if math.hypot(bx - number(ship.get("x")), by - number(ship.get("y"))) <= reach:
                return key
    return None


def _kill(ships: dict, victim: Any, killer: Any, now: float, rng: random.Random) -> None:
    ship = ships[victim]
    spot = safe_spot(ships, rng, exclude=victim)
    ship.update(
        alive=False,
        hp=0,
        deaths=int(number(ship.get("deaths"))) + 1,
        by=killer if killer in ships else 0,
        respawn=round(now + RESPAWN_DELAY, 3),
        x=spot[0],
        y=spot[1],
        vx=0.0,
        vy=0.0,
        a=heading_towards_centre(spot),
    )
    if killer in ships and killer != victim:
        ships[killer]["kills"] = int(number(ships[killer].get("kills"))) + 1


# ---- input limits -----------------------------------------------------------------------------------


class InputLimiter:
    """Server-side token buckets: a client gets at most `rate` turning and `rate` thrusting inputs per
    second (plus a small burst for network jitter), however many it sends."""

    def __init__(self, rate: float = HOLD_RATE, burst: float = 10.0) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict = {}  # (player, axis) -> (tokens, time)

    def allow(self, player: Any, axis: str, now: float) -> bool:
        tokens, then = self._buckets.get((player, axis), (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[(player, axis)] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def forget(self, player: Any) -> None:
        for key in [key for key in self._buckets if key[0] == player]:
            del self._buckets[key]

    def clear(self) -> None:
        self._buckets.clear()
