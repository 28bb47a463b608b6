"""The README's walk-through game, `examples/paint.py`: players by id and name, a secret cell each."""

from __future__ import annotations

import pygame
import pytest

from examples import paint
from pygase import Client

pytestmark = pytest.mark.timeout(60)


def _key(key: int, down: bool = True) -> pygame.event.Event:
    if down:
        return pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="")
    return pygame.event.Event(pygame.KEYUP, key=key, mod=0)


def test_two_players_paint_a_taken_name_is_turned_away_and_goals_stay_secret(tmp_path):
    window = paint.new_window()
    port = window.host(paint.new_game(), "127.0.0.1", 0, join_data={"name": "Ann"})
    bob = Client()
    bob.connect_in_thread(port, "127.0.0.1", join_data={"name": "Bob"})
    try:
        bob.wait_until(lambda state: len(state.players) == 2, timeout=5)
        with pytest.raises(ConnectionRefusedError, match="the name 'Ann' is taken"):
            Client().connect(port, "127.0.0.1", join_data={"name": "Ann"})
        for step in ({"dx": 1, "dy": 0}, {"dx": 1, "dy": 0}):
            bob.dispatch_event("MOVE", retries=3, **step)
        bob.dispatch_event("PAINT", retries=3)
        script = [(0.2, _key(pygame.K_LEFT)), (0.3, _key(pygame.K_LEFT, False)), (0.4, _key(pygame.K_SPACE))]
        screenshot = tmp_path / "paint.png"
        window.run(seconds=1.5, script=script, screenshot=screenshot, close=False)
        bob.wait_until(lambda state: len(state.cells) == 2, timeout=5)
        with bob.access_game_state() as state:
            players = {player["name"]: (pid, player) for pid, player in state.players.items()}
            ann_id, ann = players["Ann"]
            bob_id, bob_player = players["Bob"]
            assert bob.player_id == bob_id and window.client.player_id == ann_id
            assert state.cells == {
                f"{paint.COLUMNS // 2 + 2},{paint.ROWS // 2}": bob_id,
                f"{paint.COLUMNS // 2 - 1},{paint.ROWS // 2}": ann_id,
            }
            assert ann["score"] >= 1 and bob_player["score"] >= 1
            assert set(state.goals) == {bob_id}  # Ann's secret cell never reached Bob
        assert screenshot.stat().st_size > 1000
    finally:
        bob.disconnect()
        window.close()


def test_the_readme_walk_through_shows_the_examples_own_code():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    walk_through = readme.split("### Your own game, without the demo framework")[1].split("\n## ")[0]
    blocks = [part.split("```")[0] for part in walk_through.split("```python\n")[1:]]
    source = (root / "examples" / "paint.py").read_text(encoding="utf-8")
    assert len(blocks) == 4
    for block in blocks:
        for line in block.splitlines():
            if line.strip() and "..." not in line:
                assert line.strip() in source, (
                    f"README shows a line that examples/paint.py does not have: {line}"
                )
