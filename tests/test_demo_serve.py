"""The demos' dedicated server (`pygase-demo NAME serve`) and the address parser of `join`.

The server runs as a subprocess on loopback, without a display or SDL variables; headless clients join it
as the demos' windows do, and the test reads its log.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from helpers import wait_for

from pygase import Client
from pygase_demos._framework import build_parser, format_address, parse_address, run_demo

ROOT = Path(__file__).resolve().parents[1]
POSIX_SIGNALS = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM and SIGINT as on POSIX")


class ServeProcess:
    """`python -m pygase_demos DEMO serve ...` with its stdout and stderr read together, without threads."""

    def __init__(self, *args: str) -> None:
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("SDL_")
            and name not in ("DISPLAY", "WAYLAND_DISPLAY", "PYGASE_SIMULATE", "PYGAME_HIDE_SUPPORT_PROMPT")
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pygase_demos", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        assert self.process.stdout is not None
        self._pipe = self.process.stdout
        os.set_blocking(self._pipe.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._pipe, selectors.EVENT_READ)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        """Read what the process wrote within `timeout` seconds; False once its output has ended."""
        if not self._selector.select(timeout):
            return True
        chunk = self._pipe.read()
        if not chunk:
            return False
        self.output += chunk.decode(errors="replace")
        return True

    def expect(self, pattern: str, timeout: float = 5.0) -> re.Match:
        """Wait until the output matches `pattern`; fail with the output so far if it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output)
            if match:
                return match
            remaining = deadline - time.monotonic()
            still_open = remaining > 0 and self._read(min(remaining, 0.2))
            if not still_open and not re.search(pattern, self.output):
                raise AssertionError(f"no {pattern!r} within {timeout:g} s in:\n{self.output}")

    def finish(self, timeout: float) -> int:
        """Wait for the process to end and read the rest of its output; return its exit status."""
        status = self.process.wait(timeout)
        while self._read(0):
            pass
        return status

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._selector.close()
        self._pipe.close()


@pytest.fixture
def serve():
    """Start serve subprocesses; kill whichever still runs after the test."""
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        started.append(ServeProcess(*args))
        return started[-1]

    yield start
    for process in started:
        process.close()


def join(port: int, demo: str, name: str) -> Client:
    """A headless client joining as the demos' windows do: join data (cards) or a JOIN event (chase)."""
    client = Client()
    if demo == "cards":
        client.connect_in_thread(port, "127.0.0.1", join_data={"name": name})
    else:
        client.connect_in_thread(port, "127.0.0.1")
        client.wait_until(lambda state: state.time_order > 0, timeout=5)
        client.dispatch_event("JOIN", name=name, retries=10)
    return client


def names_in(client: Client) -> list:
    with client.access_game_state() as state:
        return [player["name"] for player in getattr(state, "players", {}).values()]


@POSIX_SIGNALS
@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("demo", "stop_signal"), [("chase", signal.SIGTERM), ("cards", signal.SIGINT)], ids=["SIGTERM", "SIGINT"]
)
def test_a_dedicated_server_logs_players_and_stops_cleanly_on_a_signal(serve, demo: str, stop_signal: Any):
    server = serve(demo, "serve", "--port", "0")
    port = int(server.expect(r"Serving .* port (\d+); players join with: .* join HOST:\d+")[1])
    server.expect(rf"INFO pygase_demos.serve: .* listening on all interfaces, port {port}, no password")
    ann: Optional[Client] = None
    ben: Optional[Client] = None
    try:
        ann = join(port, demo, "Ann")
        ben = join(port, demo, "Ben")  # stays to hear that the server shuts down
        wait_for(lambda: {"Ann", "Ben"} <= set(names_in(ben)), timeout=5)
        ann_id = server.expect(r"INFO pygase_demos.players: player (\d+) \('Ann'\) joined")[1]
        server.expect(r"player \d+ \('Ben'\) joined")
        ann.disconnect()
        server.expect(rf"INFO pygase_demos.players: player {ann_id} \('Ann'\) left")
        wait_for(lambda: "Ann" not in names_in(ben), timeout=5)

        server.process.send_signal(stop_signal)
        assert server.finish(timeout=5) == 0
        name = signal.Signals(stop_signal).name
        server.expect(
            rf"stopping on {name}\n.* 1 client\(s\) still connected: telling them that the server shuts down"
            r"[\s\S]*INFO pygase_demos.serve: server stopped",
            timeout=0,
        )
        wait_for(lambda: ben.connection is not None and ben.connection.server_closed, timeout=3)
    finally:
        for client in (ann, ben):
            if client is not None:
                client.disconnect()
    assert "Traceback" not in server.output and "threads still running" not in server.output
    assert "pygame" not in server.output.lower()  # no display, not even pygame's greeting


@POSIX_SIGNALS
@pytest.mark.timeout(15)
def test_no_client_can_shut_a_dedicated_server_down(serve):
    """A dedicated server (`Backend(dedicated=True)`) has no host client: the first player's goodbye with
    `shutdown_server=True` is only a goodbye, and the next player still joins."""
    server = serve("dots", "serve", "--port", "0")
    port = int(server.expect(r"Serving .* port (\d+);")[1])
    first = join(port, "dots", "Ann")
    second: Optional[Client] = None
    try:
        server.expect(r"player (\d+) \('Ann'\) joined")
        first.disconnect(shutdown_server=True)
        server.expect(r"player \d+ \('Ann'\) left")
        second = join(port, "dots", "Ben")
        wait_for(lambda: names_in(second) == ["Ben"], timeout=5)
        assert server.process.poll() is None
        server.process.send_signal(signal.SIGTERM)
        assert server.finish(timeout=5) == 0
    finally:
        for client in (first, second):
            if client is not None:
                client.disconnect()
    assert "shut down by" not in server.output and "stopped on its own" not in server.output


@pytest.mark.timeout(10)
def test_serve_runs_for_seconds_with_bots_and_opens_no_display(caplog):
    import pygame

    from pygase_demos.chase.game import DEMO

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    with caplog.at_level("INFO", logger="pygase_demos"):
        run = run_demo(DEMO, ["serve", "--port", "0", "--bots", "2", "--seconds", "1"])
    assert run.bots == 2 and run.frames == 0
    assert run.final_state is not None
    assert sorted(player["name"] for player in run.final_state.players.values()) == ["Ada (bot)", "Bit (bot)"]
    assert not pygame.display.get_init()
    messages = [record.getMessage() for record in caplog.records]
    assert "player 1 ('Ada (bot)') joined" in messages and "player 2 ('Bit (bot)') left" in messages
    assert messages[-1] == "server stopped"
    assert {number: signal.getsignal(number) for number in handlers} == handlers  # its handlers are undone


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


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["serve", "--screenshot", "shot.png"], "--screenshot makes no sense in serve mode"),
        (["serve", "--name", "Ann"], "--name makes no sense in serve mode"),
        (["serve", "--simulate", "loss=5%"], "--simulate makes no sense in serve mode"),
        (["serve", "10.0.0.1"], "an address is only for join"),
        (["serve", "--port", "70000"], "is not a port number"),
        (["join"], "join needs the address of the game"),
        (["join", "host:notaport"], "argument address: 'host:notaport': the port 'notaport' is not a number"),
        (["host", "10.0.0.1"], "an address is only for join"),
        (["--bots", "-1"], "--bots takes a number of bots, 0 or more"),
    ],
)
def test_options_that_make_no_sense_are_refused_with_a_usage_error(capsys, arguments: list, words: str):
    from pygase_demos.chase.game import DEMO

    with pytest.raises(SystemExit) as exit_:
        run_demo(DEMO, arguments)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and words in err


def test_the_help_documents_serve_mode():
    from pygase_demos.chase.game import DEMO

    help_text = " ".join(build_parser(DEMO).format_help().split())
    assert "{local,host,join,serve}" in help_text
    assert "serve a dedicated server: no window, no player of its own, no display needed" in help_text
    assert "Ctrl-C or SIGTERM" in help_text and "[IPV6]:PORT" in help_text


# ---- the address of join --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[2001:db8::1]:8080", ("2001:db8::1", 8080)),
        ("[::1]", ("::1", 8080)),
        ("[::1]:9", ("::1", 9)),
        ("::1", ("::1", 8080)),
        ("2001:db8::1", ("2001:db8::1", 8080)),
        ("fe80::1%eth0", ("fe80::1%eth0", 8080)),
        ("[fe80::1%eth0]:65535", ("fe80::1%eth0", 65535)),
        ("example.org:8081", ("example.org", 8081)),
        ("192.168.1.20", ("192.168.1.20", 8080)),
        ("192.168.1.20:1", ("192.168.1.20", 1)),
        ("localhost", ("localhost", 8080)),
        (" host:80 ", ("host", 80)),
    ],
)
def test_join_addresses_parse_into_hostname_and_port(text: str, expected: tuple):
    assert parse_address(text) == expected


def test_the_default_port_is_a_parameter():
    assert parse_address("::1", default_port=9000) == ("::1", 9000)
    assert parse_address("host", default_port=9000) == ("host", 9000)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the address is empty"),
        ("[::1", "no ']' closes the IPv6 address"),
        ("[::1]8080", "after ']' comes ':PORT' or nothing"),
        ("[::1]:", "no port after ':'"),
        ("[1.2.3.4]:80", "'1.2.3.4' is not an IPv6 address (only an IPv6 address goes in brackets)"),
        ("[nonsense]", "is not an IPv6 address"),
        ("::1]", "brackets go around an IPv6 address only"),
        ("host:notaport", "the port 'notaport' is not a number"),
        ("host:", "no port after ':'"),
        ("host:-1", "the port '-1' is not a number"),
        ("host:+80", "the port '+80' is not a number"),
        ("host:0", "the port 0 is out of range (1-65535)"),
        ("host:65536", "the port 65536 is out of range (1-65535)"),
        ("host:\u0664\u0662", "is not a number"),  # Arabic-Indic digits: isdigit, but no port
        (":8080", "no host before ':'"),
        ("my host:80", "a host name has no spaces"),
        ("1:2:3", "'1:2:3' is not an IPv6 address"),
        ("2001:db8::1:x", "with a port: [IPV6]:PORT"),
    ],
)
def test_malformed_join_addresses_are_refused_saying_why(text: str, words: str):
    with pytest.raises(ValueError) as error:
        parse_address(text)
    assert words in str(error.value)


@pytest.mark.parametrize(("hostname", "port"), [("::1", 8080), ("2001:db8::1", 1), ("example.org", 65535)])
def test_format_address_is_read_back_by_parse_address(hostname: str, port: int):
    assert parse_address(format_address(hostname, port)) == (hostname, port)
