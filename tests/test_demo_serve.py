"""Serving the demos: the log of players coming and going that their backends keep (`make_backend`)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import wait_for


def _play_through(backend: Any, events: list, caplog: Any) -> tuple:
    """Hand `events` ((event, client address, context) each) to the backend's game loop as its server
    would (no network: its answers to the clients are not sent); return what the players' log said and
    the refusals the handlers decided."""
    machine = backend.game_state_machine
    decided: list = []
    thread = machine.run_game_loop_in_thread(0.01)

    def said() -> list:
        return [record.getMessage() for record in caplog.records if record.name == "pygase_demos.players"]

    try:
        with caplog.at_level("INFO", logger="pygase_demos.players"):
            for event, address, context in events:
                machine._push_event(event, client_address=address, context=context, on_done=decided.append)
            wait_for(lambda: len(decided) == len(events), timeout=3)
    finally:
        machine.stop()
        thread.join(timeout=5)
    return said(), decided


@pytest.mark.timeout(10)
def test_the_players_log_follows_the_library_players_of_a_demo(caplog):
    from pygase import CLIENT_DROPPED, CLIENT_JOINED, CLIENT_LEFT, CLIENT_RETURNED
    from pygase.event import Event
    from pygase_demos._framework import make_backend
    from pygase_demos.cards.game import DEMO

    ann, ben = ("127.0.0.1", 5001), ("127.0.0.1", 5002)
    messages, decided = _play_through(
        make_backend(DEMO),
        [
            (Event(CLIENT_JOINED), ann, {"player_id": 1, "join_data": {"name": "Ann\nforged line"}}),
            (Event(CLIENT_JOINED), ben, {"player_id": 2, "join_data": {"name": "Ann\nforged line"}}),
            (Event(CLIENT_DROPPED), ann, {"player_id": 1}),
            (Event(CLIENT_RETURNED), ann, {"player_id": 1}),
            (Event(CLIENT_LEFT), ann, {"player_id": 1}),
        ],
        caplog,
    )
    assert messages == [
        "player 1 ('Ann\\nforged line') joined",  # a name is quoted: it cannot forge a log line
        f"refused 'Ann\\nforged line': {decided[1]}",
        "player 1 ('Ann\\nforged line') dropped (connection lost; back within 30 s keeps the seat)",
        "player 1 ('Ann\\nforged line') returned",
        "player 1 ('Ann\\nforged line') left",
    ]
    assert decided[0] is None and "is taken" in decided[1]  # the demo's refusal goes on to the server


@pytest.mark.timeout(10)
def test_the_players_log_follows_the_join_events_of_a_demo(caplog):
    from pygase import CLIENT_DROPPED, CLIENT_LEFT, CLIENT_RETURNED
    from pygase.event import Event
    from pygase_demos._framework import make_backend
    from pygase_demos.chase.game import DEMO

    ann = ("127.0.0.1", 5001)
    messages, _ = _play_through(
        make_backend(DEMO),
        [
            (Event("JOIN", name="Ann"), ann, {"sender_id": 1}),
            (Event("JOIN", name="Ann"), ann, {"sender_id": 1}),  # sent again: still one player
            (Event(CLIENT_DROPPED), ann, {"player_id": 1}),
            (Event(CLIENT_RETURNED), ann, {"player_id": 1}),
            (Event(CLIENT_LEFT), ann, {"player_id": 1}),
        ],
        caplog,
    )
    assert messages == [
        "player 1 ('Ann') joined",
        "player 1 ('Ann') dropped (connection lost; back within 30 s keeps the seat)",
        "player 1 ('Ann') returned",
        "player 1 ('Ann') left",
    ]
