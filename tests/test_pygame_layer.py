"""pygase_pygame headless: input reaches the server, drawing, interpolation, prediction, overlay, closing."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402
from helpers import run_until, wait_for  # noqa: E402

from pygase import Backend, GameState  # noqa: E402
from pygase_pygame import GameWindow, InputBindings, Predictor, SnapshotInterpolator  # noqa: E402

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """Server-side handlers that record what arrives."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def handler(self, name: str):
        def handle(*args, game_state=None, dt=None, client_address=None, sender_id=None, **kwargs):
            with self.lock:
                self.events.append((name, dict(kwargs)))
            return {}

        return handle

    def named(self, name: str) -> list:
        with self.lock:
            return [kwargs for event, kwargs in self.events if event == name]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def window_on_backend(recorder):
    """A window hosting a backend in this process; closed after the test."""
    created: list[GameWindow] = []

    def make(state=None, handlers=(), time_step=None, **window_options) -> GameWindow:
        backend = Backend(
            state if state is not None else GameState(players={}),
            time_step or (lambda game_state, dt: {}),
            {name: recorder.handler(name) for name in handlers},
        )
        window = GameWindow(size=(200, 150), fps=0, **window_options)
        window.host(backend)
        window.client.wait_until(lambda s: s.time_order > 0, timeout=3)
        created.append(window)
        return window

    yield make
    for window in created:
        window.close()


def test_posted_key_and_mouse_events_reach_the_server_with_the_bound_data(window_on_backend, recorder):
    window = window_on_backend(handlers=("JUMP", "LAND", "SHOOT", "AIM"))
    window.bindings.key_down("space", "JUMP", power=3)
    window.bindings.key_up("space", "LAND")
    window.bindings.mouse_down(1, "SHOOT", weapon="laser")
    window.bindings.mouse_motion("AIM")
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0, unicode=" "))
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_SPACE, mod=0))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(40, 50)))
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(41, 52), rel=(1, 2), buttons=(0, 0, 0)))
    run_until(window, lambda: len(recorder.events) >= 4)
    assert recorder.named("JUMP") == [{"power": 3}]
    assert recorder.named("LAND") == [{}]
    assert recorder.named("SHOOT") == [{"weapon": "laser", "pos": [40, 50]}]
    assert recorder.named("AIM") == [{"pos": [41, 52], "rel": [1, 2]}]


@pytest.mark.parametrize("fps", [8, 120])
def test_held_key_sends_at_its_rate_whatever_the_frame_rate(window_on_backend, recorder, fps):
    window = window_on_backend(handlers=("MOVE",))
    window.bindings.hold_rate = 20
    window.bindings.key_held("left", "MOVE", dx=-1)
    window.fps = fps
    press = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT, mod=0, unicode="")
    release = pygame.event.Event(pygame.KEYUP, key=pygame.K_LEFT, mod=0)
    # run() closes the window when it ends, and so stops the backend it hosts (its thread joined): no
    # MOVE can come after it returns, and none is left to wait for
    window.run(seconds=1.2, script=[(0.0, press), (1.0, release)])
    moves = recorder.named("MOVE")
    assert all(kwargs == {"dx": -1} for kwargs in moves)
    assert 18 <= len(moves) <= 23  # 20 per second for the one second the key was down


def test_draw_gets_the_state_and_the_screenshot_shows_it(window_on_backend, tmp_path):
    window = window_on_backend(state=GameState(players={1: {"x": 50, "y": 40}}))

    @window.hook
    def draw(screen, state):
        for player in state.players.values():
            pygame.draw.rect(screen, (255, 0, 0), (player["x"] - 5, player["y"] - 5, 10, 10))

    path = tmp_path / "shot.png"
    window.run(frames=3, screenshot=path)
    image = pygame.image.load(str(path))
    assert image.get_at((50, 40))[:3] == (255, 0, 0)
    assert image.get_at((150, 100))[:3] == (18, 18, 26)


def test_rendered_frame_shows_an_entity_at_the_interpolated_position(window_on_backend):
    interpolator = SnapshotInterpolator("players", min_delay=0.05, max_delay=0.05)
    window = window_on_backend(
        state=GameState(players={1: {"x": 0.0, "y": 20.0}}), interpolate=[interpolator]
    )

    @window.hook
    def draw(screen, state):
        player = state.players[1]
        pygame.draw.rect(screen, (0, 255, 0), (round(player["x"]) - 2, round(player["y"]) - 2, 5, 5))

    window.frame()  # take the first snapshot
    later = time.monotonic() + 100  # after the real snapshot the window recorded
    interpolator.record(GameState(players={1: {"x": 20.0, "y": 20.0}}), later)
    interpolator.record(GameState(players={1: {"x": 120.0, "y": 20.0}}), later + 0.1)
    window.frame(now=later + 0.1)  # render time is 0.05 s earlier: halfway between the two snapshots
    assert window.screen.get_at((70, 20))[:3] == (0, 255, 0)
    assert window.screen.get_at((120, 20))[:3] != (0, 255, 0)


def test_prediction_moves_the_local_player_at_once_and_corrects_to_the_server(window_on_backend):
    def step(entity, data, dt):
        return {"x": entity["x"] + data["dx"] * 100 * dt}

    predictor = Predictor("players", 1, step)
    server_x = {"value": 10.0}
    checked_before_answer = threading.Event()

    def on_move(dx, input_seq, game_state, **kwargs):
        # Hold the answer until the test has looked at the prediction: on a busy machine the answer could
        # otherwise arrive (and be reconciled) between dispatch and the first assert.
        checked_before_answer.wait(5)
        # The server applies its own rule (here: half the speed, so the prediction must be corrected).
        server_x["value"] += dx * 50 * 0.05
        return {"players": {1: {"x": server_x["value"], "input_seq": input_seq}}}

    window = window_on_backend(
        state=GameState(players={1: {"x": 10.0, "y": 0.0, "input_seq": 0}}),
        predictor=predictor,
        predicted_events={"MOVE"},
    )
    window.backend.game_state_machine.register_event_handler("MOVE", on_move)
    run_until(window, lambda: predictor.predicted is not None)
    window.dispatch("MOVE", dx=1)
    assert predictor.predicted["x"] == pytest.approx(15.0)  # 100 px/s for 1/20 s, before any answer
    checked_before_answer.set()
    run_until(window, lambda: window.snapshot().players[1]["input_seq"] == 1)
    window.frame()
    assert predictor.predicted["x"] == pytest.approx(12.5)
    assert window.snapshot().players[1]["x"] == pytest.approx(12.5)


def test_overlay_shows_the_clients_statistics(window_on_backend):
    window = window_on_backend(time_step=lambda game_state, dt: {"t": time.monotonic()})
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F3, mod=0, unicode=""))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # deliberately a second of frames: the overlay's rates need it
        window.frame()
        time.sleep(0.01)
    assert window.show_overlay
    stats = window.client.statistics()
    text = "\n".join(window.overlay.lines)
    assert f"RTT {window.client.connection.latency * 1000:.0f} ms" in text or "RTT" in text
    assert "updates" in text and "/s" in text
    rate = float(text.split("updates ")[1].split("/s")[0])
    assert abs(rate - stats.update_rate) < 15
    assert rate > 20  # the backend ticks at 50 Hz


def test_closing_a_hosting_window_disconnects_and_stops_its_server(recorder):
    backend = Backend(GameState(x=0), lambda game_state, dt: {})
    window = GameWindow(size=(100, 100), fps=0)
    window.host(backend)
    window.client.wait_until(lambda s: s.x == 0, timeout=3)
    assert backend.server.port is not None
    window.run(frames=2)
    assert window.client.connection.status == 1  # Disconnected
    assert backend.server.port is None


def test_closing_a_joining_window_disconnects_but_leaves_the_server_running():
    backend = Backend(GameState(x=0), lambda game_state, dt: {})
    thread = backend.run_in_thread("127.0.0.1", 0)
    try:
        window = GameWindow(size=(100, 100), fps=0)
        window.join("127.0.0.1", backend.server.port)
        window.client.wait_until(lambda s: s.x == 0, timeout=3)
        window.run(frames=2)
        wait_for(lambda: not backend.server.connections, timeout=2)
        assert backend.server.connections == {}
        assert backend.server.port is not None
    finally:
        backend.shutdown()
        thread.join(timeout=5)


def test_window_says_connecting_while_no_server_answers():
    window = GameWindow(size=(100, 100), fps=0)
    try:
        window.join("127.0.0.1", 9)  # the discard port: nobody answers
        window.frame()
        assert window.status_text() == "connecting…"
    finally:
        window.close()


def test_misspelled_hook_name_gets_a_warning_with_a_suggestion():
    window = GameWindow(size=(50, 50), fps=0)
    try:
        with pytest.warns(UserWarning, match="on_key_down"):

            @window.hook
            def on_key_dwon(key):
                pass

        assert "on_key_dwon" not in window.hooks
    finally:
        window.close()


def test_hooks_get_only_the_arguments_they_declare(window_on_backend):
    window = window_on_backend()
    seen = []

    @window.hook
    def on_key_down(key):
        seen.append(key)

    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_a, mod=0, unicode="a"))
    window.frame()
    assert seen == [pygame.K_a]


def test_bindings_survive_a_json_round_trip_and_can_be_rebound(tmp_path):
    bindings = InputBindings(hold_rate=15)
    bindings.key_held("left", "MOVE", dx=-1)
    bindings.mouse_down(3, "BLOCK")
    bindings.joy_axis(1, "THROTTLE", dead_zone=0.25)
    path = tmp_path / "keys.json"
    bindings.save(path)
    loaded = InputBindings.load(path)
    assert loaded.to_dict() == bindings.to_dict()
    assert json.loads(path.read_text())["hold_rate"] == 15
    loaded.rebind("MOVE", "a")
    assert [b.source for b in loaded.bindings if b.event_type == "MOVE"] == ["a"]


def test_unknown_key_names_and_binding_kinds_get_helpful_errors():
    bindings = InputBindings()
    with pytest.raises(ValueError, match="did you mean 'space'"):
        bindings.key_down("spcae", "JUMP")
    with pytest.raises(ValueError, match="did you mean 'key_held'"):
        bindings.add("key_hold", "a", "JUMP")
    with pytest.warns(UserWarning, match="key_held"):
        InputBindings.from_dict({"bindings": [{"kind": "key_hled", "source": "a", "event": "X"}]})


def test_user_draw_errors_are_logged_and_the_game_goes_on(window_on_backend, caplog):
    window = window_on_backend()

    @window.hook
    def draw(screen, state):
        raise KeyError("missing")

    window.frame()
    window.frame()
    assert window.frames == 2
    assert any("draw hook" in record.getMessage() for record in caplog.records)
