"""Paint: each player moves a brush over a grid and paints cells in their colour; most cells wins.

A whole game on `pygase.Backend` and `pygase_pygame.GameWindow` alone (no demo framework), to read from
top to bottom: player ids, join data (the player's name; a taken name is turned away), a secret goal
cell that only its player sees (a private attribute), inputs as events, drawing from the state.

Run it:

    python -m examples.paint host --name Ann            # host on this machine, port 8080
    python -m examples.paint join 127.0.0.1:8080 --name Bob
    python -m examples.paint host --name Ann --port 0 --seconds 3 --screenshot paint.png   # headless try
"""

from __future__ import annotations

import argparse
import random
from typing import Optional

import pygame

from pygase import CLIENT_JOINED, CLIENT_LEFT, TO_DELETE, Backend, GameState, JoinRefused
from pygase_pygame import GameWindow

COLUMNS, ROWS, CELL = 16, 12, 40
COLOURS = [(230, 80, 80), (80, 160, 240), (90, 200, 110), (240, 200, 60), (190, 110, 230), (240, 140, 60)]
GOAL_BONUS = 5


# ---- the server side: state, players joining and leaving, events ----------------------------------------


def new_game() -> Backend:
    """The backend: the state, what happens when players join and leave, and what their events do."""
    state = GameState(
        cells={},  # "column,row" -> the player id who painted it last
        players={},  # player id -> {"name", "colour", "x", "y", "score"}
        goals={},  # player id -> the cell only that player sees: painting it scores a bonus
    )

    def joined(player_id, join_data, game_state):
        name = str(join_data.get("name", "")).strip()[:16] or f"player {player_id}"
        if any(player["name"] == name for player in game_state.players.values()):
            raise JoinRefused(f"the name {name!r} is taken")
        if len(game_state.players) >= len(COLOURS):
            raise JoinRefused("the game is full")
        taken = {player["colour"] for player in game_state.players.values()}
        colour = min(set(range(len(COLOURS))) - taken)
        player = {"name": name, "colour": colour, "x": COLUMNS // 2, "y": ROWS // 2, "score": 0}
        return {"players": {player_id: player}, "goals": {player_id: random_cell()}}

    def left(player_id):
        return {"players": {player_id: TO_DELETE}, "goals": {player_id: TO_DELETE}}

    def move(dx, dy, sender_id, game_state):
        me = game_state.players.get(sender_id)
        if me is None or not (isinstance(dx, int) and isinstance(dy, int)):
            return None
        x = min(max(me["x"] + max(-1, min(1, dx)), 0), COLUMNS - 1)
        y = min(max(me["y"] + max(-1, min(1, dy)), 0), ROWS - 1)
        return {"players": {sender_id: {"x": x, "y": y}}}

    def paint(sender_id, game_state):
        me = game_state.players.get(sender_id)
        if me is None:
            return None
        cell = f"{me['x']},{me['y']}"
        before = game_state.cells.get(cell)
        if before == sender_id:
            return None
        update: dict = {"cells": {cell: sender_id}, "players": {sender_id: {"score": me["score"] + 1}}}
        if before in game_state.players:
            update["players"][before] = {"score": game_state.players[before]["score"] - 1}
        if game_state.goals.get(sender_id) == cell:  # found the secret cell: a bonus and a new one
            update["players"][sender_id]["score"] += GOAL_BONUS
            update["goals"] = {sender_id: random_cell()}
        return update

    return Backend(
        state,
        lambda game_state, dt: None,  # nothing moves by itself: only events change the state
        {CLIENT_JOINED: joined, CLIENT_LEFT: left, "MOVE": move, "PAINT": paint},
        private_attributes=["goals"],
    )


def random_cell() -> str:
    return f"{random.randrange(COLUMNS)},{random.randrange(ROWS)}"


# ---- the client side: keys become events, the state is drawn every frame --------------------------------


def new_window() -> GameWindow:
    window = GameWindow(size=(COLUMNS * CELL, ROWS * CELL + 40), title="PyGaSe paint")
    for keys, step in (
        (("left", "a"), (-1, 0)),
        (("right", "d"), (1, 0)),
        (("up", "w"), (0, -1)),
        (("down", "s"), (0, 1)),
    ):
        for key in keys:
            window.bindings.key_down(key, "MOVE", dx=step[0], dy=step[1])
    window.bindings.key_down("space", "PAINT")
    pygame.font.init()
    font = pygame.font.Font(None, 26)

    @window.hook
    def draw(screen, state, player_id):
        screen.fill((25, 25, 30))
        for column in range(1, COLUMNS):
            pygame.draw.line(screen, (40, 40, 48), (column * CELL, 0), (column * CELL, ROWS * CELL))
        for row in range(1, ROWS + 1):
            pygame.draw.line(screen, (40, 40, 48), (0, row * CELL), (COLUMNS * CELL, row * CELL))
        for cell, owner in state.cells.items():
            column, row = map(int, cell.split(","))
            player = state.players.get(owner)
            colour = COLOURS[player["colour"]] if player else (70, 70, 70)
            screen.fill(colour, (column * CELL + 1, row * CELL + 1, CELL - 2, CELL - 2))
        goal = state.goals.get(player_id)  # only ours ever arrives
        if goal is not None:
            column, row = map(int, goal.split(","))
            pygame.draw.rect(
                screen, (255, 255, 255), (column * CELL + 8, row * CELL + 8, CELL - 16, CELL - 16), 2
            )
        for pid, player in state.players.items():
            rect = (player["x"] * CELL + 4, player["y"] * CELL + 4, CELL - 8, CELL - 8)
            pygame.draw.rect(screen, COLOURS[player["colour"]], rect, 4 if pid == player_id else 2)
        ranking = sorted(state.players.values(), key=lambda player: -player["score"])
        text = "   ".join(f"{player['name']} {player['score']}" for player in ranking)
        screen.blit(font.render(text, True, (235, 235, 235)), (10, ROWS * CELL + 10))

    return window


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description="PyGaSe paint: paint the most cells")
    parser.add_argument("mode", choices=["host", "join"])
    parser.add_argument("address", nargs="?", default="127.0.0.1:8080", help="HOST:PORT to join")
    parser.add_argument("--name", default="")
    parser.add_argument("--port", type=int, default=8080, help="port to host on (0: any free one)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--screenshot", help="save the last frame to this PNG file")
    options = parser.parse_args(argv)
    pygame.init()
    window = new_window()
    if options.mode == "host":
        port = window.host(new_game(), "0.0.0.0", options.port, join_data={"name": options.name})
        print(f"hosting on port {port}")
    else:
        host, _, port_text = options.address.rpartition(":")
        window.join(host or "127.0.0.1", int(port_text), join_data={"name": options.name})
    window.run(seconds=options.seconds, screenshot=options.screenshot)


if __name__ == "__main__":
    main()
