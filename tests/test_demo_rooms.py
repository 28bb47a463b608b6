"""The demos with a relay: room codes for `host` and `serve` (`--relay`, `--public`), `join CODE`, and the
launcher's list of public games.

Everything runs on 127.0.0.1 with an in-process relay (`pygase.relay.Relay`); `serve` runs as a
subprocess (`ServeProcess` of test_demo_serve), the windows headless in this process.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from types import SimpleNamespace
from typing import Any, Optional

import pygame
import pytest
from helpers import free_udp_port, wait_for
from test_demo_serve import ServeProcess, names_in

from pygase import Client
from pygase.relay import Relay
from pygase_demos import _framework
from pygase_demos.__main__ import GameLists, launcher_entries
from pygase_demos._framework import (
    JoinTarget,
    PlayerView,
    RoomCodeReporter,
    invitation_lines,
    parse_join_target,
    room_code_in,
    run_demo,
    window_title,
)
from pygase_demos.chase.game import DEMO as CHASE
from pygase_pygame.lan import Session
from pygase_pygame.online import RelayBrowser

POSIX_SIGNALS = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM as on POSIX")
#: the line `host` and `serve` print with a relay (multi-line mode: it is a line of its own)
ROOM_CODE_LINE = r"(?m)^room code: ([2-9A-HJKMNP-Z]{6})$"


@pytest.fixture(autouse=True)
def no_relay_in_the_environment(monkeypatch):
    """The tests say which relay they use: not one a developer set in PYGASE_RELAY."""
    monkeypatch.delenv("PYGASE_RELAY", raising=False)
    monkeypatch.setattr(_framework, "DEMO_COMMAND", "pygase-demo {name}")


@pytest.fixture
def relay():
    """An in-process relay on 127.0.0.1; its "HOST:PORT"."""
    started = Relay("127.0.0.1", 0)
    started.run_in_thread()
    yield f"127.0.0.1:{started.port}"
    started.shutdown()


@pytest.fixture
def serve():
    """Start `python -m pygase_demos ... serve` subprocesses; kill whichever still runs after the test."""
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        started.append(ServeProcess(*args))
        return started[-1]

    yield start
    for process in started:
        process.close()


@pytest.fixture
def quiet_lan(monkeypatch):
    """Host mode announces on the LAN: record the announcements here instead of broadcasting them."""
    announced: list[dict] = []

    class Announcer:
        def __init__(self, info: dict) -> None:
            announced.append(dict(info))

        def start(self) -> None:
            pass

        def update(self, **changes: Any) -> None:
            announced[-1].update(changes)

        def stop(self) -> None:
            pass

    monkeypatch.setattr("pygase_pygame.lan.SessionAnnouncer", Announcer)
    return announced


def join_by_code(room: str, relay: str, name: str) -> Client:
    """A headless client joining chase by room code as its windows do: connect, then a JOIN event."""
    client = Client()
    client.connect_in_thread(room=room, relay=relay)
    try:
        client.wait_until(lambda state: state.time_order > 0, timeout=8)
        client.dispatch_event("JOIN", name=name, retries=10)
    except BaseException:
        client.disconnect()
        raise
    return client


def room_codes(output: str) -> list:
    return re.findall(ROOM_CODE_LINE, output)


# ---- serve and join with a relay -------------------------------------------------------------------


@POSIX_SIGNALS
@pytest.mark.timeout(20)
def test_a_dedicated_server_prints_its_room_code_and_a_player_joins_by_it(serve, relay):
    server = serve("chase", "serve", "--port", "0", "--relay", relay)
    code = server.expect(ROOM_CODE_LINE, timeout=8)[1]
    server.expect(rf"INFO pygase_demos.serve: room code {code} at the relay {re.escape(relay)};")
    assert "or from anywhere: pygase-demo chase join ROOM_CODE --relay" in server.output
    client: Optional[Client] = None
    try:
        client = join_by_code(code.lower(), relay, "Ann")  # typed in any case
        wait_for(lambda: names_in(client) == ["Ann"], timeout=5)
        server.expect(r"INFO pygase_demos.players: player \d+ \('Ann'\) joined")
        server.process.send_signal(signal.SIGTERM)
        assert server.finish(timeout=5) == 0
        wait_for(lambda: client.connection is not None and client.connection.server_closed, timeout=3)
    finally:
        if client is not None:
            client.disconnect()
    assert room_codes(server.output) == [code]  # one line, once
    assert "stopping on SIGTERM" in server.output and "Traceback" not in server.output


@POSIX_SIGNALS
@pytest.mark.timeout(20)
def test_join_with_a_room_code_joins_a_served_game(serve, relay, caplog):
    server = serve("chase", "serve", "--port", "0", "--relay", relay)
    code = server.expect(ROOM_CODE_LINE, timeout=8)[1]
    with caplog.at_level("WARNING"):
        run = run_demo(
            CHASE, ["join", code, "--relay", relay, "--name", "Zed", "--headless", "--seconds", "2.5"]
        )
    assert run.final_state is None and run.frames > 0  # joined: this process hosted nothing
    server.expect(r"INFO pygase_demos.players: player \d+ \('Zed'\) joined")
    server.expect(r"INFO pygase_demos.players: player \d+ \('Zed'\) left")
    assert not [record for record in caplog.records if "looks like a room code" in record.getMessage()]
    server.process.send_signal(signal.SIGTERM)
    assert server.finish(timeout=5) == 0


@POSIX_SIGNALS
@pytest.mark.timeout(20)
def test_a_public_server_is_listed_on_the_relay_and_in_the_launcher(serve, relay):
    server = serve("cards", "serve", "--port", "0", "--relay", relay, "--public", "--password", "pw")
    code = server.expect(ROOM_CODE_LINE, timeout=8)[1]
    server.expect(r"\(listed publicly\)")
    with RelayBrowser(relay, game="cards", interval=0.2) as browser:

        def listed() -> list:
            browser.poll()
            return browser.sessions()

        wait_for(listed, timeout=5)
        (session,) = browser.sessions()
        assert (session.game, session.name, session.room, session.password) == (
            "cards",
            "Crazy Eights server",
            code,
            True,
        )
    lists = GameLists(free_udp_port(), relay, interval=0.2)
    try:
        wait_for(lambda: lists.poll() or lists.online_sessions(), timeout=5)
        entries = lists.entries()
    finally:
        lists.close()
    online = [entry for entry in entries if entry.label.startswith("[online]")]
    assert [(entry.label, entry.argv, entry.detail) for entry in online] == [
        (
            "[online] Crazy Eights server - cards, 0/14 players (password)",
            ["cards", "join", code, "--relay", relay],
            f"room {code} on the relay {relay}",
        )
    ]
    assert entries.index(online[0]) == 0  # before the demos to play with bots
    server.process.send_signal(signal.SIGTERM)
    assert server.finish(timeout=5) == 0


# ---- host with a relay -----------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_host_prints_shows_and_lists_its_room_code(relay, quiet_lan, monkeypatch, capsys, tmp_path):
    captions: list[str] = []
    set_caption = pygame.display.set_caption
    monkeypatch.setattr(
        pygame.display, "set_caption", lambda text, *rest: (captions.append(text), set_caption(text, *rest))
    )
    found: list = []
    stop = threading.Event()

    def browse() -> None:  # the relay's public list while the host runs
        with RelayBrowser(relay, game="chase", interval=0.2) as browser:
            while not found and not stop.wait(0.05):
                browser.poll()
                found.extend(browser.sessions())

    browsing = threading.Thread(target=browse)
    browsing.start()
    shot = tmp_path / "host.png"
    try:
        run = run_demo(
            CHASE,
            ["host", "--port", "0", "--relay", relay, "--public", "--name", "Ann"]
            + ["--headless", "--seconds", "2", "--screenshot", str(shot)],
        )
    finally:
        stop.set()
        browsing.join(timeout=5)
    out = capsys.readouterr().out
    (code,) = room_codes(out)
    assert re.search(
        r"Hosting Chase on port \d+; players join with: pygase-demo chase join HOST:\d+, or from", out
    )
    assert captions[0] == "Chase - PyGaSe" and captions[-1] == f"Chase - PyGaSe - room {code}"
    assert shot.stat().st_size > 0
    assert run.final_state is not None and [p["name"] for p in run.final_state.players.values()] == ["Ann"]
    assert [(s.game, s.name, s.room) for s in found] == [("chase", "Ann's Chase", code)]
    assert quiet_lan[0]["game"] == "chase"  # LAN hosting goes on beside the relay


def test_the_chase_invitation_names_the_lan_address_and_the_room_code():
    from pygase_demos.chase.game import ChaseView
    from pygase_pygame.bindings import InputBindings

    server = SimpleNamespace(hostname="::", port=8080)
    window = SimpleNamespace(
        bindings=InputBindings(), interpolators=[], predicted_events=set(), hooks={}, backend=None
    )
    window.backend = SimpleNamespace(server=server)
    view = PlayerView("Ann", relay="relay.example.org:8090")
    chase = ChaseView(window, view)
    lan_only = chase.invitation()
    assert lan_only.startswith("Friends join with: pygase-demo chase join ") and lan_only.endswith(":8080")
    view.room = "ABC234"  # the relay answered: the invitation follows
    lan, anywhere = chase.invitation().split("\n")
    assert lan == lan_only
    assert anywhere == "or from anywhere: pygase-demo chase join ABC234 --relay relay.example.org:8090"
    window.backend = None  # a window that joined by the code invites by it too
    chase._invitation = None
    assert (
        chase.invitation()
        == "Friends join with: pygase-demo chase join ABC234 --relay relay.example.org:8090"
    )


def test_the_window_title_and_the_invitation_lines():
    assert window_title(CHASE) == "Chase - PyGaSe"
    assert window_title(CHASE, "ABC234") == "Chase - PyGaSe - room ABC234"
    assert invitation_lines("pong", "192.0.2.2:8080") == [
        "Friends join with: pygase-demo pong join 192.0.2.2:8080"
    ]
    assert invitation_lines("pong", None, "ABC234", "r:1") == [
        "Friends join with: pygase-demo pong join ABC234 --relay r:1"
    ]


def test_the_room_code_line_is_printed_once_and_again_when_the_code_changes(capsys):
    backend = SimpleNamespace(room_code=None)
    changes: list = []
    reporter = RoomCodeReporter(backend, changes.append)
    assert reporter.check() is None
    backend.room_code = "ABC234"
    reporter.check()
    reporter.check()
    backend.room_code = None  # the relay lost the session: the last code stays shown while it asks again
    assert reporter.check() == "ABC234"
    backend.room_code = "XYZ789"
    reporter.check()
    assert capsys.readouterr().out == "room code: ABC234\nroom code: XYZ789\n"
    assert changes == ["ABC234", "XYZ789"]


# ---- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "relay", "expected"),
    [
        ("ABC234", "r:1", JoinTarget("ABC234", None)),
        ("abc-234", "r:1", JoinTarget("ABC234", None)),
        (" abc 234 ", "r:1", JoinTarget("ABC234", None)),
        ("ubuntu", "r:1", JoinTarget("UBUNTU", None)),  # looks like a code: with a relay it is one
        ("ubuntu", None, JoinTarget(None, ("ubuntu", 8080))),  # without one, a host name as before
        ("ABC234", None, JoinTarget(None, ("ABC234", 8080))),
        ("ubuntu:8080", "r:1", JoinTarget(None, ("ubuntu", 8080))),  # a port makes it an address
        ("abc.23", "r:1", JoinTarget(None, ("abc.23", 8080))),
        ("ABC2345:80", "r:1", JoinTarget(None, ("ABC2345", 80))),  # with a port: an address
        ("myhostname123", "r:1", JoinTarget(None, ("myhostname123", 8080))),  # too long for a code
        ("ABC10O", None, JoinTarget(None, ("ABC10O", 8080))),  # 0, 1, O are not in codes
        ("[::1]:9", "r:1", JoinTarget(None, ("::1", 9))),
        ("192.168.1.20", "r:1", JoinTarget(None, ("192.168.1.20", 8080))),
    ],
)
def test_the_argument_of_join_is_a_room_code_with_a_relay_or_an_address(text, relay, expected):
    assert parse_join_target(text, relay) == expected


@pytest.mark.parametrize(("text", "problem"), [("ABC2345", "7 characters"), ("ABC10O", "has '0', '1', 'O'")])
def test_with_a_relay_a_mistyped_room_code_says_what_is_wrong_with_it(text, problem):
    with pytest.raises(ValueError, match=f"{problem}.*give its port"):
        parse_join_target(text, "r:1")


def test_room_codes_are_told_from_addresses():
    assert room_code_in("h7k-2mq") == "H7K2MQ"
    assert room_code_in("H7K2MQ:80") is None and room_code_in("h7k.2m") is None and room_code_in("") is None


@pytest.mark.parametrize(
    ("arguments", "environment", "words"),
    [
        (["host", "--public"], None, "--public lists the game on a relay: give --relay HOST:PORT"),
        (["serve", "--public"], None, "--public lists the game on a relay"),
        (["join", "ABC234", "--public", "--relay", "r:1"], None, "--public is for host and serve mode"),
        (["--relay", "r:1"], None, "--relay makes no sense in local mode"),
        (["host", "--relay", "r:notaport"], None, "argument --relay: relay 'r:notaport': the port must be"),
        (["host"], "r:notaport", "the environment variable PYGASE_RELAY: relay 'r:notaport'"),
        (["join", "ABC 234:80"], "r:1", "argument address: 'ABC 234:80': a host name has no spaces"),
    ],
)
def test_relay_options_that_make_no_sense_are_refused(capsys, monkeypatch, arguments, environment, words):
    if environment is not None:
        monkeypatch.setenv("PYGASE_RELAY", environment)
    with pytest.raises(SystemExit) as exit_:
        run_demo(CHASE, arguments)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and words in err


def test_pygase_relay_is_the_default_relay_and_the_help_says_how_codes_are_told_from_names(monkeypatch):
    monkeypatch.setenv("PYGASE_RELAY", "relay.example.org")
    parser = _framework.build_parser(CHASE)
    args = parser.parse_args(["join", "abc234"])
    _framework.check_arguments(parser, args)
    assert (args.room, args.address, args.relay) == ("ABC234", None, "relay.example.org")
    args = parser.parse_args(["local"])
    _framework.check_arguments(parser, args)
    assert args.relay is None  # (local mode has no use for it)
    help_text = " ".join(parser.format_help().split())
    assert "a room code when a relay is set, a host name when none is" in help_text
    assert "give its port (ubuntu:8080)" in help_text and "PYGASE_RELAY" in help_text


# ---- the launcher ----------------------------------------------------------------------------------


def session(game: str, name: str, **fields: Any) -> Session:
    values: dict[str, Any] = dict(
        host="192.0.2.7", port=8080, players=2, max_players=16, version="1", password=False
    )
    values.update(fields)
    return Session(game=game, name=name, last_seen=0.0, **values)


def test_the_launcher_lists_lan_games_then_online_games_then_the_demos():
    lan = [session("chase", "Ann's Chase")]
    online = [
        session("pong", "Ben's\nPong", room="ABC234", relay="r:1", password=True),
        session("paint", "not a demo", room="XYZ789", relay="r:1"),  # nothing to join it with
        session("cards", "no room", relay="r:1"),
    ]
    entries = launcher_entries(lan, online, ["dots", "chase"])
    assert [(entry.label, entry.argv) for entry in entries] == [
        ("Join Ann's Chase - chase, 2/16 players", ["chase", "join", "192.0.2.7:8080"]),
        ("[online] Ben'sPong - pong, 2/16 players (password)", ["pong", "join", "ABC234", "--relay", "r:1"]),
        ("Play dots with bots", ["dots", "local"]),
        ("Play chase with bots", ["chase", "local"]),
    ]
    assert entries[1].detail == "room ABC234 on the relay r:1"
    without_relay = launcher_entries(lan, [], ["dots"])
    assert [entry.label for entry in without_relay] == [
        "Join Ann's Chase - chase, 2/16 players",
        "Play dots with bots",
    ]
