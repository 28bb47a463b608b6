"""The dots demo: the speed cap, collecting the star, and a headless game with bots."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402
import pytest  # noqa: E402

from pygase import GameState  # noqa: E402
from pygase_demos._framework import run_demo  # noqa: E402
from pygase_demos.dots.game import DEMO, SPEED, STEP  # noqa: E402

pytestmark = pytest.mark.timeout(30)


def state_with_player(x=100.0, y=100.0, star=(500.0, 400.0)) -> GameState:
    return GameState(
        players={1: {"x": x, "y": y, "name": "a", "colour": 0, "score": 0}}, star={"x": star[0], "y": star[1]}
    )


@pytest.mark.parametrize("dx", [1, 1000, 1e300, float("inf"), "fast", None])
def test_a_move_never_goes_faster_than_the_speed_cap(dx):
    changes = DEMO.move(1, state_with_player(), dx=dx, dy=0)
    moved = changes["players"][1]["x"] - 100.0
    assert 0 <= moved <= SPEED * STEP + 1e-9


def test_reaching_the_star_scores_and_moves_the_star():
    changes = DEMO.move(1, state_with_player(x=495.0, y=400.0), dx=1, dy=0)
    assert changes["players"][1]["score"] == 1
    assert changes["star"] != {"x": 500.0, "y": 400.0}


def test_headless_game_with_bots_collects_stars(tmp_path):
    shot = tmp_path / "dots.png"
    run = run_demo(DEMO, ["local", "--bots", "3", "--headless", "--seconds", "4", "--screenshot", str(shot)])
    scores = [player["score"] for player in run.final_state.players.values()]
    assert len(scores) == 4 and sum(scores) > 0
    image = pygame.image.load(str(shot))
    colours = {tuple(image.get_at((x, y))) for x in range(0, 640, 7) for y in range(0, 480, 7)}
    assert len(colours) > 3


def test_readme_walk_through_is_the_demos_own_code():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    walk_through = readme.split("## Write your own game")[1].split(
        "### Your own game, without the demo framework"
    )[0]
    blocks = [part.split("```")[0] for part in walk_through.split("```python\n")[1:]]
    source = (root / "pygase_demos" / "dots" / "game.py").read_text()
    assert len(blocks) == 5
    for block in blocks:
        assert block in source, f"README block not in pygase_demos/dots/game.py:\n{block}"


def test_join_mode_with_the_right_password_plays_and_with_a_wrong_one_does_not():
    from pygase_demos._framework import make_backend

    backend = make_backend(DEMO, password="open sesame")
    thread = backend.run_in_thread("127.0.0.1", 0)
    address = f"127.0.0.1:{backend.server.port}"
    try:
        run_demo(DEMO, ["join", address, "--password", "wrong", "--headless", "--seconds", "1"])
        assert backend.game_state_store.get_game_state().next_id == 1  # nobody joined
        run_demo(DEMO, ["join", address, "--password", "open sesame", "--headless", "--seconds", "1.5"])
        assert backend.game_state_store.get_game_state().next_id == 2  # the window's player joined
    finally:
        backend.shutdown()
        thread.join(timeout=5)
