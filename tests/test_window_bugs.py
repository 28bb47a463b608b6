"""Regressions of issue 12 in the pygame layer: a password locked the host out of its own game (1), hooks
with wrong parameter names failed every frame instead of at registration (6), `run()` could not run twice
and there was no way to draw a waiting screen (7). Headless, loopback only."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402
from helpers import run_until, wait_for  # noqa: E402

from pygase import Backend, Client, GameState  # noqa: E402
from pygase.connection import ConnectionStatus  # noqa: E402
from pygase_pygame import HOOKS, GameWindow  # noqa: E402

pytestmark = pytest.mark.timeout(30)

BACKGROUND = (18, 18, 26)


def is_host(client: Client) -> bool:
    return client.connection is not None and client.connection.host_token is not None


@pytest.fixture
def window():
    created = GameWindow(size=(200, 150), fps=0)
    yield created
    created.close()
    created.client.disconnect()  # if a test joined again after closing


@pytest.fixture
def server(backend_factory):
    """A password-protected backend running on loopback (not hosted by a window)."""
    return backend_factory(GameState(x=1), lambda game_state, dt: {}, password="pw")


# ---- 1: a password locked the host out of its own game ----------------------------------------------


def test_a_window_hosting_a_password_backend_joins_as_its_host_and_others_need_the_password(window):
    backend = Backend(GameState(x=1), lambda game_state, dt: {}, password="pw")
    port = window.host(backend)
    window.client.wait_until(lambda state: state.x == 1, timeout=3)
    run_until(window, lambda: window.snapshot() is not None)
    assert window.status_text() == ""  # not "wrong password"
    assert window.client.refused_reason is None
    assert is_host(window.client)

    guest, stranger = Client(), Client()
    try:
        guest.connect_in_thread(port, "127.0.0.1", "pw")
        guest.wait_until(lambda state: state.x == 1, timeout=3)
        assert not is_host(guest)  # the host was first, and stays the host
        stranger.connect_in_thread(port, "127.0.0.1")
        wait_for(lambda: stranger.refused_reason is not None, timeout=3)
        assert stranger.refused_reason == "password required"
    finally:
        guest.disconnect()
        stranger.disconnect()
    # host rights: the hosting window's client may shut the server down
    window.client.disconnect(shutdown_server=True)
    wait_for(lambda: backend.server.port is None, timeout=3)
    assert backend.server.port is None


def test_host_takes_an_explicit_password_too(window):
    backend = Backend(GameState(x=1), lambda game_state, dt: {}, password="pw")
    window.host(backend, password="wrong")
    run_until(window, lambda: window.status_text() == "wrong password")
    assert window.snapshot() is None


def test_join_takes_hostname_port_and_password_by_keyword(window, server):
    window.join(hostname="127.0.0.1", port=server.server.port, password="pw")
    window.client.wait_until(lambda state: state.x == 1, timeout=3)
    run_until(window, lambda: window.snapshot() is not None)
    assert window.status_text() == ""


def test_join_keeps_its_positional_order_and_says_when_the_password_is_wrong(window, server):
    window.join("127.0.0.1", server.server.port, "nope")
    run_until(window, lambda: window.status_text() == "wrong password")
    assert window.snapshot() is None


def test_the_demos_host_password_path_lets_the_host_and_bots_with_the_password_play(monkeypatch):
    from pygase_demos._framework import run_demo
    from pygase_demos.chase.game import DEMO

    windows: list[GameWindow] = []
    original_host = GameWindow.host

    def host_on_loopback(self, backend, hostname="127.0.0.1", port=0, **options):
        windows.append(self)  # and stay off the LAN: loopback, no announcements
        return original_host(self, backend, "127.0.0.1", port, **options)

    monkeypatch.setattr(GameWindow, "host", host_on_loopback)
    monkeypatch.setattr("pygase_pygame.lan.announcement_addresses", lambda: [])
    result = run_demo(
        DEMO,
        ["host", "--port", "0", "--password", "pw", "--name", "Hosty", "--bots", "1"]
        + ["--headless", "--seconds", "2"],
    )
    (window,) = windows
    assert window.client.refused_reason is None
    assert is_host(window.client)
    assert result.final_state is not None
    assert result.final_state.next_id == 3  # the host's player and the bot joined


# ---- 6: hooks with parameters they never get -----------------------------------------------------------


def test_a_hook_with_wrong_parameter_names_is_refused_when_registered(window):
    with pytest.raises(TypeError) as refused:

        @window.hook
        def draw(surface, game_state):
            pass

    message = str(refused.value)
    assert "draw" in message and "'surface'" in message and "'game_state'" in message
    assert "screen, state" in message
    assert "draw" not in window.hooks


def test_a_misnamed_parameter_gets_a_suggestion(window):
    with pytest.raises(TypeError, match=r"'game_state'.*did you mean 'state'"):

        @window.hook
        def update(dt, game_state):
            pass


def test_hooks_set_by_name_are_checked_too(window):
    with pytest.raises(TypeError, match=r"on_event.*'e'.*event"):
        window.hooks["on_event"] = lambda e: None
    with pytest.raises(TypeError, match=r"on_connect.*'client'.*on_connect may declare any of player_id"):
        window.hooks.update(on_connect=lambda client: None)
    with pytest.raises(TypeError, match="must be a function"):
        window.hooks["draw"] = "draw"
    with pytest.raises(TypeError, match="positional-only"):
        exec("def draw(screen, /): pass\nwindow.hooks['draw'] = draw", {"window": window})
    assert dict(window.hooks) == {}


def test_unknown_hook_names_set_by_name_get_the_warning_of_the_decorator(window):
    with pytest.warns(UserWarning, match="did you mean 'draw'") as caught:
        window.hooks["drwa"] = lambda screen: None
    assert caught[0].filename == __file__
    assert "drwa" not in window.hooks


def test_hooks_may_declare_some_of_their_arguments_defaults_args_and_kwargs(window):
    class Game:
        def draw(self, state):
            pass

    window.hooks["draw"] = Game().draw
    window.hooks["update"] = lambda state, dt, speed=2: None
    window.hooks["on_event"] = lambda *args, **kwargs: None
    window.hooks["on_key_down"] = lambda unicode, key: None
    assert set(window.hooks) == {"draw", "update", "on_event", "on_key_down"}
    del window.hooks["update"]
    assert "update" not in window.hooks and window.hooks.get("update") is None


def test_every_hook_in_the_table_accepts_all_its_arguments(window):
    for name, arguments in HOOKS.items():
        window.hooks[name] = eval(f"lambda {', '.join(arguments)}: None")
    assert set(window.hooks) == set(HOOKS)


# ---- 7: run() twice, and the waiting screen --------------------------------------------------------------


def test_run_can_be_called_again_after_the_window_closed(window):
    window.run(frames=2)
    window.run(frames=3)  # used to fail with "video system not initialized"
    assert window.frames == 5  # frames counts the frames of each run
    assert window.status_text() == "not connected"


def test_a_window_that_closed_can_join_again_and_play(window, server):
    drawn = []
    window.hooks["draw"] = lambda state: drawn.append(state.x)
    window.join("127.0.0.1", server.server.port, "pw")
    window.client.wait_until(lambda state: state.x == 1, timeout=3)
    window.run(frames=2)
    assert drawn and window.client.connection.status == ConnectionStatus.get("Disconnected")
    drawn.clear()
    window.join("127.0.0.1", server.server.port, "pw")
    window.client.wait_until(lambda state: state.x == 1, timeout=3)
    window.run(frames=2)
    assert drawn == [1, 1]


def test_run_with_close_false_leaves_the_window_open_and_connected(window, server):
    window.join("127.0.0.1", server.server.port, "pw")
    window.client.wait_until(lambda state: state.x == 1, timeout=3)
    window.run(frames=2, close=False)
    connection = window.client.connection
    assert connection.status == ConnectionStatus.get("Connected")
    window.run(frames=2, close=False)
    assert window.client.connection is connection and connection.status == ConnectionStatus.get("Connected")
    # the player closing the window closes it anyway
    window.run(frames=100, close=False, script=[(0.0, pygame.event.Event(pygame.QUIT))])
    assert connection.status == ConnectionStatus.get("Disconnected")
    assert window.frames < 100


def test_draw_waits_for_the_first_state_and_the_banner_says_why(window, silent_port, tmp_path):
    drawn = []
    window.hooks["draw"] = lambda state: drawn.append(state)
    window.join("127.0.0.1", silent_port)
    shot = tmp_path / "banner.png"
    window.run(frames=3, screenshot=shot)
    assert drawn == []
    image = pygame.image.load(str(shot))
    assert image.get_at((100, 75))[:3] != BACKGROUND  # the banner in the middle
    assert image.get_at((2, 2))[:3] == BACKGROUND


def test_draw_waiting_draws_a_waiting_screen_with_the_status_instead_of_the_banner(
    window, silent_port, tmp_path
):
    statuses = []

    @window.hook
    def draw_waiting(screen, status):
        statuses.append(status)
        screen.fill((0, 90, 0))

    window.join("127.0.0.1", silent_port)
    shot = tmp_path / "waiting.png"
    window.run(frames=3, screenshot=shot)
    assert statuses == ["connecting…"] * 3
    image = pygame.image.load(str(shot))
    assert image.get_at((100, 75))[:3] == (0, 90, 0)  # no banner over it
    assert image.get_at((2, 2))[:3] == (0, 90, 0)


def test_draw_waiting_hears_of_a_wrong_password_and_draw_takes_over_once_the_state_is_there(window, server):
    statuses, drawn = [], []
    window.hooks["draw_waiting"] = lambda status: statuses.append(status)
    window.hooks["draw"] = lambda state: drawn.append(state.x)
    window.join("127.0.0.1", server.server.port, "wrong")
    run_until(window, lambda: statuses[-1:] == ["wrong password"])
    assert drawn == []
    window.client.disconnect()
    window.join("127.0.0.1", server.server.port, "pw")
    run_until(window, lambda: drawn)
    waited = len(statuses)
    window.frame()
    assert len(statuses) == waited


def test_status_says_waiting_for_the_game_between_joining_and_the_first_state(window):
    window.client.connection = SimpleNamespace(
        status=ConnectionStatus.get("Connected"),
        server_closed=False,
        _last_received=time.monotonic(),
        updates_received=0,
    )
    try:
        assert window.status_text() == "waiting for the game…"
    finally:
        window.client.connection = None


def test_the_banner_says_why_a_connect_failed(window, closed_port):
    window.join("127.0.0.1", closed_port)
    run_until(window, lambda: "nothing listens" in window.status_text(), timeout=4.0)
    assert f"127.0.0.1:{closed_port}" in window.status_text()


def test_join_with_swapped_arguments_names_its_own_order(window):
    with pytest.raises(TypeError, match=r"join\(\) takes the hostname first, then the port"):
        window.join(8080, "127.0.0.1")
    with pytest.raises(TypeError, match=r"join\(hostname, port\) takes a str and an int"):
        window.join("127.0.0.1", "8080")
