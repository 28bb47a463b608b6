"""Serving the demos: the log of players coming and going that their backends keep (`make_backend`), and
the address parser of `join`."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import wait_for

from pygase_demos._framework import format_address, parse_address, run_demo


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
        (["join"], "join needs the address of the game"),
        (["join", "host:notaport"], "argument address: 'host:notaport': the port 'notaport' is not a number"),
        (["host", "10.0.0.1"], "an address is only for join"),
    ],
)
def test_join_addresses_that_make_no_sense_are_refused_with_a_usage_error(
    capsys, arguments: list, words: str
):
    from pygase_demos.chase.game import DEMO

    with pytest.raises(SystemExit) as exit_:
        run_demo(DEMO, arguments)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and words in err


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
