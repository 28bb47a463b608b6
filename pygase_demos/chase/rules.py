"""The rules of chase, as pure functions on plain dicts (no pygame, no networking).

The world is a dict with the keys of the game state (see `new_world`); the functions change it in place.
The server runs them on a copy of its state and sends the difference; the client runs `move_step` to
predict its own runner; the tests call them directly.

Movement. A MOVE input carries a direction (dx, dy), each clamped to -1..1 (anything else counts as 0),
and is worth exactly one input period (`STEP` = 1 / `HOLD_RATE` seconds) of running: it moves the
player's *target* (tx, ty) by speed * STEP per axis (`move_step`). The server moves the player's real
position (x, y) towards the target at the player's speed and never faster (`follow`), and never lets the
target lead by more than `LEAD_SECONDS` of running, so no input, however large or frequent, moves anyone
faster than their speed. A held key sends MOVE `HOLD_RATE` times a second, so the position runs steadily;
when the key is released nothing more is sent and the runner stops within one period. The client
predicts its own target with the same `move_step`, which therefore is exactly where the server will put
it. Each axis runs at the speed (a diagonal is the two axes at once, as with two held keys).

Tag. One player is the chaser ("it"). When the chaser touches a runner (centres closer than
`CATCH_DISTANCE`), the runner becomes the chaser: the new chaser is frozen for `PROTECT_SECONDS`, and
during that countdown nobody can be caught (everyone else is shielded). The same countdown starts when a
game begins (a second player joins), when a round starts, and when the role is handed on because the
chaser left or stood idle for `IDLE_SECONDS`; the role then goes to the runner with the most points.

Scores. Runners earn `RUN_POINTS` a second (surviving pays), the chaser earns `CATCH_POINTS` per catch.
A round lasts `ROUND_SECONDS`; then the best score wins (in whole points; a tie shares the win), the
results show for `RESULTS_SECONDS` (nobody scores or is caught meanwhile), and the scores start again
from zero.
"""

from __future__ import annotations

import math
import random
from typing import Any, Optional

#: the window and the arena (the top strip above the arena is the heads-up display)
WIDTH, HEIGHT = 800, 600
ARENA = (12, 48, WIDTH - 12, HEIGHT - 12)  # left, top, right, bottom of the floor
RADIUS = 16  # half a runner sprite
MIN_X, MAX_X = ARENA[0] + RADIUS, ARENA[2] - RADIUS
MIN_Y, MAX_Y = ARENA[1] + RADIUS, ARENA[3] - RADIUS

HOLD_RATE = 20.0  # MOVE events a second while a key is held (the client's bindings use this)
STEP = 1.0 / HOLD_RATE  # seconds of running one MOVE is worth
RUNNER_SPEED = 200.0  # pixels a second, per axis
CHASER_SPEED = 230.0  # the chaser is a little faster, so that catches happen
LEAD_SECONDS = 0.3  # how far (in seconds of running) the target may lead the position

CATCH_DISTANCE = 30.0
PROTECT_SECONDS = 2.0
IDLE_SECONDS = 5.0
CATCH_POINTS = 5.0
RUN_POINTS = 1.0
ROUND_SECONDS = 90.0
RESULTS_SECONDS = 5.0

#: one colour per player (index into this in the player's "colour")
COLOURS = (
    (255, 99, 99),
    (90, 170, 255),
    (110, 230, 120),
    (255, 200, 60),
    (200, 120, 255),
    (60, 225, 215),
    (255, 140, 200),
    (255, 150, 70),
    (180, 230, 90),
    (150, 160, 255),
    (240, 240, 240),
    (200, 160, 110),
    (120, 200, 160),
    (230, 90, 160),
    (150, 110, 70),
    (100, 130, 160),
)


def new_world() -> dict:
    """The state of a game without players."""
    return {
        "players": {},  # id -> player dict (see `add_player`)
        "chaser": None,  # id of the chaser
        "protect": 0.0,  # seconds left of the protection countdown
        "catches": 0,  # catches so far (clients play sounds when it changes)
        "last_catch": None,  # {"n", "by", "caught", "x", "y"} of the latest catch
        "handover": None,  # {"n", "to", "reason"} of the latest role change that was not a catch
        "round": 1,
        "round_left": ROUND_SECONDS,
        "results": 0.0,  # seconds left of showing the results (0 while playing)
        "winners": [],  # names of the last round's winners (more than one on a tie)
        "distance": 0.0,  # pixels run by everybody, all game long
        "points": 0.0,  # points scored by everybody, all game long
        "next_id": 1,
        "time": 0.0,
    }


# ---- movement (shared by the server and the client's prediction) ----------------------------------


def _axis(value: Any) -> float:
    """A direction component from untrusted input: a number clamped to -1..1, anything else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return 0.0
    if not math.isfinite(value):
        return 0.0
    return max(-1.0, min(1.0, value))


def direction(data: Any) -> tuple:
    """The (dx, dy) of a MOVE input, each in -1..1."""
    if not isinstance(data, dict):
        return 0.0, 0.0
    return _axis(data.get("dx", 0)), _axis(data.get("dy", 0))


def speed(player: dict) -> float:
    return CHASER_SPEED if player.get("it") else RUNNER_SPEED


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def move_step(player: dict, data: Any, dt: float = STEP) -> dict:
    """The fields one MOVE input changes: the target moves by speed * dt per axis, inside the arena.

    This is the prediction's step function too, so it depends on its arguments only. A frozen player
    does not move. `dt` is at most `STEP` (the server always passes `STEP`).
    """
    if player.get("frozen"):
        return {}
    dx, dy = direction(data)
    if dx == 0.0 and dy == 0.0:
        return {}
    reach = speed(player) * _clamp(float(dt), 0.0, STEP)
    changes: dict = {
        "tx": _clamp(float(player.get("tx", player.get("x", MIN_X))) + dx * reach, MIN_X, MAX_X),
        "ty": _clamp(float(player.get("ty", player.get("y", MIN_Y))) + dy * reach, MIN_Y, MAX_Y),
    }
    if dx:
        changes["face"] = 1 if dx > 0 else -1
    return changes


def apply_move(world: dict, player_id: Any, data: Any, input_seq: Any = None) -> bool:
    """Apply a MOVE input of `player_id` (server side); return whether the player exists.

    The target may lead the position by `LEAD_SECONDS` of running at most; the input's sequence number
    (for the client's prediction) is stored in "input_seq".
    """
    player = world["players"].get(player_id)
    if player is None:
        return False
    player.update(move_step(player, data, STEP))
    lead = speed(player) * LEAD_SECONDS
    player["tx"] = _clamp(player["tx"], player["x"] - lead, player["x"] + lead)
    player["ty"] = _clamp(player["ty"], player["y"] - lead, player["y"] + lead)
    if direction(data) != (0.0, 0.0):
        player["idle"] = 0.0
    if isinstance(input_seq, int) and not isinstance(input_seq, bool) and 0 <= input_seq < 2**62:
        player["input_seq"] = input_seq
    return True


def follow(player: dict, dt: float) -> float:
    """Move the position towards the target at the player's speed; return the distance run."""
    if player.get("frozen"):
        player["tx"], player["ty"] = player["x"], player["y"]
        return 0.0
    reach = speed(player) * max(0.0, dt)
    x, y = player["x"], player["y"]
    player["x"] = x + _clamp(player["tx"] - x, -reach, reach)
    player["y"] = y + _clamp(player["ty"] - y, -reach, reach)
    return math.hypot(player["x"] - x, player["y"] - y)


# ---- players and roles -----------------------------------------------------------------------------


def leader(world: dict, exclude: Any = None) -> Optional[Any]:
    """The id of the player with the most points (the earliest to join on a tie), or None."""
    candidates = [(-p["score"], pid) for pid, p in world["players"].items() if pid != exclude]
    return min(candidates)[1] if candidates else None


def standings(world: dict) -> list:
    """Player ids, best score first."""
    return sorted(world["players"], key=lambda pid: (-world["players"][pid]["score"], pid))


def start_protection(world: dict) -> None:
    """Freeze the chaser and shield everybody for `PROTECT_SECONDS`."""
    world["protect"] = PROTECT_SECONDS
    chaser = world["players"].get(world["chaser"])
    if chaser is not None:
        chaser["frozen"] = True
        chaser["tx"], chaser["ty"] = chaser["x"], chaser["y"]
        chaser["idle"] = 0.0


def set_chaser(world: dict, player_id: Any, protect: bool = True) -> None:
    """Make `player_id` the chaser (None: nobody), starting the protection countdown if asked."""
    players = world["players"]
    old = players.get(world["chaser"])
    if old is not None:
        old["it"] = False
        old["frozen"] = False
    world["chaser"] = player_id
    new = players.get(player_id)
    if new is None:
        world["chaser"] = None
        world["protect"] = 0.0
        return
    new["it"] = True
    new["idle"] = 0.0
    if protect:
        start_protection(world)


def hand_over(world: dict, reason: str) -> None:
    """Give the chaser role to the leading runner (not a catch: the chaser left or idled)."""
    new = leader(world, exclude=world["chaser"])
    set_chaser(world, new, protect=len(world["players"]) >= 2)
    if new is not None:
        handover = world.get("handover") or {}
        world["handover"] = {"n": handover.get("n", 0) + 1, "to": new, "reason": reason}


def spawn_point(world: dict, rng: random.Random) -> tuple:
    """A random place in the arena, as far from the other players as a few tries find."""
    best, best_distance = (WIDTH / 2, HEIGHT / 2), -1.0
    for _ in range(24):
        point = (rng.uniform(MIN_X + 20, MAX_X - 20), rng.uniform(MIN_Y + 20, MAX_Y - 20))
        nearest = min(
            (math.hypot(point[0] - p["x"], point[1] - p["y"]) for p in world["players"].values()),
            default=1e9,
        )
        if nearest > best_distance:
            best, best_distance = point, nearest
    return best


def add_player(world: dict, name: str, rng: Optional[random.Random] = None) -> int:
    """Add a player called `name`; return its id. The first player is the chaser."""
    rng = rng or random.Random()
    player_id = world["next_id"]
    world["next_id"] = player_id + 1
    used = {p["colour"] for p in world["players"].values()}
    colour = next((i for i in range(len(COLOURS)) if i not in used), player_id % len(COLOURS))
    x, y = spawn_point(world, rng)
    world["players"][player_id] = {
        "name": str(name)[:16] or "player",
        "colour": colour,
        "x": x,
        "y": y,
        "tx": x,
        "ty": y,
        "face": 1 if x < WIDTH / 2 else -1,
        "score": 0.0,
        "it": False,
        "frozen": False,
        "idle": 0.0,
        "catches": 0,
        "travelled": 0.0,
        "input_seq": 0,
    }
    if world["chaser"] not in world["players"]:
        set_chaser(world, player_id, protect=False)
    elif len(world["players"]) == 2:  # the game begins: give the newcomer a head start
        start_protection(world)
    return player_id


def remove_player(world: dict, player_id: Any) -> None:
    """Remove a player; if it was the chaser, the leading runner takes over."""
    if player_id not in world["players"]:
        return
    if world["chaser"] == player_id:
        hand_over(world, "left")
    del world["players"][player_id]
    if world["chaser"] == player_id:  # nobody was left to take over
        world["chaser"] = None
        world["protect"] = 0.0


# ---- the game clock --------------------------------------------------------------------------------


def catch(world: dict, caught: Any) -> None:
    """The chaser caught `caught`: points for the chaser, and `caught` is the new (frozen) chaser."""
    by = world["chaser"]
    chaser = world["players"][by]
    chaser["score"] += CATCH_POINTS
    world["points"] += CATCH_POINTS
    chaser["catches"] += 1
    world["catches"] += 1
    victim = world["players"][caught]
    world["last_catch"] = {
        "n": world["catches"],
        "by": by,
        "caught": caught,
        "x": (chaser["x"] + victim["x"]) / 2,
        "y": (chaser["y"] + victim["y"]) / 2,
    }
    set_chaser(world, caught)


def find_catch(world: dict) -> Optional[Any]:
    """The runner the chaser touches now (the nearest), if a catch is possible."""
    players = world["players"]
    chaser = players.get(world["chaser"])
    if chaser is None or chaser.get("frozen") or world["protect"] > 0 or world["results"] > 0:
        return None
    best, best_distance = None, CATCH_DISTANCE
    for pid, player in players.items():
        if pid == world["chaser"]:
            continue
        distance = math.hypot(player["x"] - chaser["x"], player["y"] - chaser["y"])
        if distance < best_distance:
            best, best_distance = pid, distance
    return best


def tick(world: dict, dt: float) -> None:
    """Advance the game by `dt` seconds: running, countdowns, scores, catches, rounds."""
    dt = max(0.0, min(float(dt), 0.25))  # a stalled server does not teleport anyone
    players = world["players"]
    world["time"] += dt
    playing = len(players) >= 2

    if world["results"] > 0:
        world["results"] = max(0.0, world["results"] - dt)
        if world["results"] == 0.0:  # a new round
            world["round"] += 1
            world["round_left"] = ROUND_SECONDS
            for player in players.values():
                player["score"] = 0.0
                player["catches"] = 0
            if world["chaser"] in players:
                start_protection(world)

    if world["protect"] > 0:
        world["protect"] = max(0.0, world["protect"] - dt)
        if world["protect"] == 0.0:
            chaser = players.get(world["chaser"])
            if chaser is not None:
                chaser["frozen"] = False

    for player in players.values():
        distance = follow(player, dt)
        player["travelled"] += distance
        world["distance"] += distance

    if not playing or world["results"] > 0:
        return

    for pid, player in players.items():
        if pid != world["chaser"]:
            player["score"] += RUN_POINTS * dt
            world["points"] += RUN_POINTS * dt

    world["round_left"] = max(0.0, world["round_left"] - dt)
    if world["round_left"] == 0.0:
        best = max(int(p["score"]) for p in players.values())
        ranking = standings(world)
        world["winners"] = [players[pid]["name"] for pid in ranking if int(players[pid]["score"]) == best]
        world["results"] = RESULTS_SECONDS
        return

    caught = find_catch(world)
    if caught is not None:
        catch(world, caught)
        return

    chaser = players.get(world["chaser"])
    if chaser is not None and not chaser.get("frozen"):
        chaser["idle"] = chaser.get("idle", 0.0) + dt
        if chaser["idle"] >= IDLE_SECONDS:
            hand_over(world, "idle")
