"""The rules of pong, as plain functions of the game state (no pygame, no network, no clock).

Everything the server decides lives here: who holds which paddle, how a paddle moves for one MOVE event
(`move_paddle`, shared with the client's `Predictor` so that your own paddle answers at once), the ball's
flight (`advance_ball`), scoring, serving and matches (`step`), and how a bot picks its next move
(`bot_direction`). Each function returns the changes to deep-merge into the state, like a PyGaSe handler.

The state:

    objects  {"ball": {x, y, vx, vy}, "left": paddle, "right": paddle}
             paddle = {x, y, player (id or None), input_seq (last MOVE applied), budget (seconds of
             movement the paddle may still make at once: the server's speed cap)}
    players  {id: {name, colour, side ("left", "right" or None: watching), bot, since (queue ticket)}}
    score    {"left": int, "right": int}
    phase    "waiting" (for a second player), "serve" (ball resting, `timer` counts down),
             "play", "over" (`winner` shown for `timer` seconds, then a new match)
    hits, bounces, serves, rally   counters the clients turn into sounds and captions
"""

from __future__ import annotations

import math
import random
from typing import Any, Optional

from pygase import TO_DELETE, GameState
from pygase_demos._updates import merge

__all__ = [
    "WIDTH",
    "HEIGHT",
    "WIN_SCORE",
    "initial_state",
    "add_player",
    "remove_player",
    "move",
    "move_paddle",
    "advance_ball",
    "step",
    "bot_direction",
    "predict_y",
]

WIDTH, HEIGHT = 800, 600
PADDLE_W, PADDLE_H = 12, 80
BALL_R = 8
LEFT_X, RIGHT_X = 40.0, WIDTH - 40.0  # paddle centres
SIDES = ("left", "right")

PADDLE_SPEED = 470.0  # px/s: the most a paddle moves, whatever a client sends
MOVE_STEP = 0.05  # s of movement one MOVE event is worth (held keys repeat 20 times a second)
MAX_BUDGET = 0.25  # s of movement a paddle may bank, so that events bunched by the network still count
SERVE_SPEED = 400.0  # px/s
SPEEDUP = 1.07  # per paddle hit
MAX_SPEED = 950.0
MAX_BOUNCE_ANGLE = math.radians(55)  # off the paddle's very end; the centre sends the ball straight
SERVE_ANGLES = (math.radians(12), math.radians(35))
FIRST_SERVE_PAUSE = 1.0  # s before a match's first serve
SERVE_PAUSE = 1.0  # s between a point and the next serve
OVER_PAUSE = 4.0  # s the winner is shown before a new match
WIN_SCORE = 7

PALETTE = (
    (255, 92, 92),
    (80, 170, 255),
    (120, 230, 120),
    (255, 200, 70),
    (200, 120, 255),
    (70, 225, 215),
    (255, 140, 200),
    (255, 150, 60),
)


# ---- small helpers -----------------------------------------------------------------------------------


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def clean_direction(value: Any) -> float:
    """A direction from a client as a number in [-1, 1] (anything else counts as 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    value = float(value)
    return _clamp(value, -1.0, 1.0) if math.isfinite(value) else 0.0


def side_of(game_state: Any, player: Any) -> Optional[str]:
    """The side whose paddle `player` holds, or None (watching, or unknown)."""
    entry = game_state.players.get(player)
    return entry.get("side") if isinstance(entry, dict) else None


def _centred_ball() -> dict:
    return {"x": WIDTH / 2, "y": HEIGHT / 2, "vx": 0.0, "vy": 0.0}


def _paddle(x: float) -> dict:
    return {"x": x, "y": HEIGHT / 2, "player": None, "input_seq": 0, "budget": MAX_BUDGET}


# ---- state and seats ---------------------------------------------------------------------------------


def initial_state() -> GameState:
    return GameState(
        objects={"ball": _centred_ball(), "left": _paddle(LEFT_X), "right": _paddle(RIGHT_X)},
        players={},
        score={"left": 0, "right": 0},
        phase="waiting",
        timer=0.0,
        serve_dir=1,
        winner="",
        winner_side=None,
        hits=0,
        bounces=0,
        serves=0,
        rally=0,
        next_id=1,
        ticket=0,
    )


def _new_match(serve_dir: int) -> dict:
    return {
        "score": {"left": 0, "right": 0},
        "phase": "serve",
        "timer": FIRST_SERVE_PAUSE,
        "serve_dir": serve_dir,
        "winner": "",
        "winner_side": None,
        "rally": 0,
        "objects": {"ball": _centred_ball()},
    }


def _waiting() -> dict:
    return {
        "score": {"left": 0, "right": 0},
        "phase": "waiting",
        "timer": 0.0,
        "winner": "",
        "winner_side": None,
        "rally": 0,
        "objects": {"ball": _centred_ball()},
    }


def _seat(player: Any, side: str) -> dict:
    return {"players": {player: {"side": side}}, "objects": {side: {"player": player, "input_seq": 0}}}


def _next_in_line(players: dict, exclude: Any = None) -> Any:
    """The spectator who gets the next free paddle: people before bots, then the longest waiting."""
    waiting = [
        (bool(entry.get("bot")), entry.get("since", 0), pid)
        for pid, entry in players.items()
        if pid != exclude and isinstance(entry, dict) and entry.get("side") is None
    ]
    return min(waiting)[2] if waiting else None


def add_player(game_state: Any, name: str, rng: Optional[random.Random] = None) -> tuple:
    """Return (player id, changes): a free paddle if there is one, else a place among the spectators.

    A person (a name not ending in "(bot)") takes a bot's paddle rather than watch: bots keep the seats
    warm for people. The bot then waits in line like any spectator.
    """
    pid = int(game_state.next_id)
    ticket = int(game_state.ticket)
    is_bot = name.rstrip().endswith("(bot)")
    colour = list(PALETTE[(pid - 1) % len(PALETTE)])
    changes: dict = {
        "next_id": pid + 1,
        "ticket": ticket + 2,
        "players": {pid: {"name": name, "colour": colour, "side": None, "bot": is_bot, "since": ticket}},
    }
    objects = game_state.objects
    players = game_state.players
    free = [side for side in SIDES if objects[side]["player"] is None]
    if free:
        merge(changes, _seat(pid, free[0]))
        if len(free) == 1:  # the second player: a match begins
            merge(changes, _new_match((rng or random).choice((-1, 1))))
        return pid, changes
    if not is_bot:
        for side in SIDES:
            holder = objects[side]["player"]
            if players.get(holder, {}).get("bot"):
                merge(changes, {"players": {holder: {"side": None, "since": ticket + 1}}})
                merge(changes, _seat(pid, side))
                merge(changes, _new_match(1 if side == "right" else -1))
                break
    return pid, changes


def remove_player(game_state: Any, player: Any) -> dict:
    """Return the changes when `player` leaves: the next in line takes a paddle it frees."""
    entry = game_state.players.get(player)
    if not isinstance(entry, dict):
        return {}
    changes: dict = {"players": {player: TO_DELETE}}
    side = entry.get("side")
    if side in SIDES and game_state.objects[side]["player"] == player:
        successor = _next_in_line(game_state.players, exclude=player)
        if successor is not None:
            merge(changes, _seat(successor, side))
            merge(changes, _new_match(1 if side == "right" else -1))
        else:
            merge(changes, {"objects": {side: {"player": None, "input_seq": 0}}})
            merge(changes, _waiting())
    return changes


# ---- paddles -----------------------------------------------------------------------------------------


def move_paddle(paddle: dict, data: dict, dt: float = MOVE_STEP) -> dict:
    """The paddle's new position after one MOVE event (the rule shared by server and `Predictor`).

    `data["direction"]` is clamped to [-1, 1] and `dt` to `MOVE_STEP`, so no input moves a paddle
    faster than `PADDLE_SPEED`.
    """
    direction = clean_direction(data.get("direction", 0))
    dt = _clamp(float(dt), 0.0, MOVE_STEP)
    y = paddle["y"] + direction * PADDLE_SPEED * dt
    return {"y": _clamp(y, PADDLE_H / 2, HEIGHT - PADDLE_H / 2)}


def move(game_state: Any, player: Any, direction: Any = 0, input_seq: Any = None) -> dict:
    """Handle MOVE(direction) from `player`: spectators' moves are ignored.

    Each event moves the paddle for at most `MOVE_STEP` seconds, paid from the paddle's budget, which
    refills in real time (`step`): a client that sends events faster than keys repeat gains nothing.
    """
    side = side_of(game_state, player)
    if side not in SIDES:
        return {}
    paddle = game_state.objects[side]
    budget = float(paddle.get("budget", MAX_BUDGET))
    spent = _clamp(budget, 0.0, MOVE_STEP)
    change = dict(move_paddle(paddle, {"direction": direction}, spent))
    change["budget"] = budget - spent
    if (
        isinstance(input_seq, int)
        and not isinstance(input_seq, bool)
        and paddle.get("input_seq", 0) < input_seq < 2**62
    ):
        change["input_seq"] = input_seq
    return {"objects": {side: change}}


# ---- the ball ----------------------------------------------------------------------------------------


def advance_ball(ball: dict, paddle_y: dict, dt: float) -> tuple:
    """Move the ball `dt` seconds; return (new ball, events).

    Events: "wall", "hit left", "hit right", "out left", "out right". The paddle faces are swept, so a
    fast ball never passes through a paddle between two ticks. Where the ball meets the paddle sets the
    bounce angle (centre: straight back, ends: up to `MAX_BOUNCE_ANGLE`); each hit is `SPEEDUP` faster,
    up to `MAX_SPEED`.
    """
    x, y, vx, vy = ball["x"], ball["y"], ball["vx"], ball["vy"]
    events = []
    nx, ny = x + vx * dt, y + vy * dt
    top, bottom = BALL_R, HEIGHT - BALL_R
    if ny < top:
        ny, vy = 2 * top - ny, abs(vy)
        events.append("wall")
    elif ny > bottom:
        ny, vy = 2 * bottom - ny, -abs(vy)
        events.append("wall")
    reach = PADDLE_H / 2 + BALL_R
    for side, face, sign in (
        ("left", LEFT_X + PADDLE_W / 2 + BALL_R, -1),
        ("right", RIGHT_X - PADDLE_W / 2 - BALL_R, 1),
    ):
        py = paddle_y.get(side)
        if py is None or vx * sign <= 0 or not (sign * x <= sign * face < sign * nx):
            continue
        fraction = (face - x) / (nx - x)
        cy = y + (ny - y) * fraction
        if abs(cy - py) <= reach:
            offset = (cy - py) / reach
            speed = min(MAX_SPEED, math.hypot(vx, vy) * SPEEDUP)
            angle = offset * MAX_BOUNCE_ANGLE
            vx, vy = -sign * speed * math.cos(angle), speed * math.sin(angle)
            nx, ny = face, cy
            events.append(f"hit {side}")
    if nx < -BALL_R:
        events.append("out left")
    elif nx > WIDTH + BALL_R:
        events.append("out right")
    return {"x": nx, "y": ny, "vx": vx, "vy": vy}, events


def serve_velocity(direction: int, rng: random.Random) -> tuple:
    angle = rng.uniform(*SERVE_ANGLES) * rng.choice((-1, 1))
    return direction * SERVE_SPEED * math.cos(angle), SERVE_SPEED * math.sin(angle)


def _score(game_state: Any, scorer: str) -> dict:
    score = dict(game_state.score)
    score[scorer] = int(score.get(scorer, 0)) + 1
    changes: dict = {"score": score, "rally": 0, "objects": {"ball": _centred_ball()}}
    if score[scorer] >= WIN_SCORE:
        holder = game_state.objects[scorer]["player"]
        name = game_state.players.get(holder, {}).get("name", scorer)
        changes.update(phase="over", timer=OVER_PAUSE, winner=name, winner_side=scorer)
    else:  # the next serve goes to the player who lost the point
        changes.update(phase="serve", timer=SERVE_PAUSE, serve_dir=1 if scorer == "left" else -1)
    return changes


def step(game_state: Any, dt: float, rng: random.Random) -> dict:
    """One tick of the game loop: refill paddle budgets, count down pauses, fly the ball, score."""
    changes: dict = {}
    objects = game_state.objects
    for side in SIDES:
        budget = objects[side].get("budget", MAX_BUDGET)
        if budget < MAX_BUDGET:
            merge(changes, {"objects": {side: {"budget": min(MAX_BUDGET, budget + dt)}}})
    phase = game_state.phase
    seated = all(objects[side]["player"] is not None for side in SIDES)
    if not seated:
        if phase != "waiting":
            merge(changes, _waiting())
        return changes
    if phase == "waiting":
        merge(changes, _new_match(rng.choice((-1, 1))))
    elif phase == "serve":
        timer = game_state.timer - dt
        if timer > 0:
            changes["timer"] = timer
        else:
            vx, vy = serve_velocity(int(game_state.serve_dir), rng)
            ball = {"x": WIDTH / 2, "y": HEIGHT / 2, "vx": vx, "vy": vy}
            merge(changes, {"phase": "play", "timer": 0.0, "serves": game_state.serves + 1})
            merge(changes, {"objects": {"ball": ball}})
    elif phase == "over":
        timer = game_state.timer - dt
        if timer > 0:
            changes["timer"] = timer
        else:
            merge(changes, _new_match(rng.choice((-1, 1))))
    elif phase == "play":
        ball, events = advance_ball(objects["ball"], {s: objects[s]["y"] for s in SIDES}, dt)
        merge(changes, {"objects": {"ball": ball}})
        hits = sum(1 for event in events if event.startswith("hit"))
        walls = events.count("wall")
        if hits:
            changes["hits"] = game_state.hits + hits
            changes["rally"] = game_state.rally + hits
        if walls:
            changes["bounces"] = game_state.bounces + walls
        if "out left" in events:
            merge(changes, _score(game_state, "right"))
        elif "out right" in events:
            merge(changes, _score(game_state, "left"))
    return changes


# ---- bots --------------------------------------------------------------------------------------------


def predict_y(x: float, y: float, vx: float, vy: float, target_x: float) -> float:
    """Where a ball at (x, y) flying (vx, vy) crosses `target_x`, bouncing off the walls on the way."""
    if vx == 0:
        return y
    raw = y + vy * (target_x - x) / vx
    span = HEIGHT - 2 * BALL_R
    folded = (raw - BALL_R) % (2 * span)
    return BALL_R + (folded if folded <= span else 2 * span - folded)


def bot_direction(
    memory: dict, rng: random.Random, game_state: Any, player: Any, dt: float
) -> Optional[float]:
    """The direction a bot sends this step (None: stay), from what it saw a reaction time ago.

    The bot predicts where the ball will cross its paddle, but it sees the ball late, misjudges by an
    error picked afresh for each approach (larger for faster balls) and aims off-centre on purpose to
    vary its returns; between approaches it drifts back towards the middle.
    """
    side = side_of(game_state, player)
    if side not in SIDES:
        return None
    objects = game_state.objects
    paddle, ball = objects[side], objects["ball"]
    clock = memory["clock"] = memory.get("clock", 0.0) + dt
    seen = memory.setdefault("seen", [])
    seen.append((clock, ball["x"], ball["y"], ball["vx"], ball["vy"]))
    while len(seen) > 2 and seen[1][0] <= clock - 0.5:
        seen.pop(0)
    lag = memory.setdefault("lag", rng.uniform(0.1, 0.2))
    sighting = seen[0]
    for entry in seen:
        if entry[0] <= clock - lag:
            sighting = entry
    _, bx, by, bvx, bvy = sighting
    towards = -1 if side == "left" else 1
    if game_state.phase == "play" and bvx * towards > 0:
        approach = (game_state.serves, game_state.hits)
        if memory.get("approach") != approach:
            memory["approach"] = approach
            speed = math.hypot(bvx, bvy)
            memory["error"] = rng.gauss(0, 14 + 0.06 * speed) + rng.uniform(-26, 26)
        face = paddle["x"] - towards * (PADDLE_W / 2 + BALL_R)
        target = predict_y(bx, by, bvx, bvy, face) + memory["error"]
    else:
        if "rest" not in memory or rng.random() < 0.01:
            memory["rest"] = HEIGHT / 2 + rng.choice((-1, 1)) * rng.uniform(15, 70)
        target = memory["rest"]
    difference = target - paddle["y"]
    if abs(difference) < 3:
        return None
    return _clamp(difference / (PADDLE_SPEED * MOVE_STEP), -1.0, 1.0)
