"""LAN sessions: a host announcing on a loopback address is found by the browser."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from helpers import free_udp_port, needs_ipv6_loopback

from pygase_pygame.lan import SessionAnnouncer, SessionBrowser, decode_announcement, encode_announcement

pytestmark = pytest.mark.timeout(20)


def test_announced_session_is_found_with_its_name_players_and_port():
    port = free_udp_port()
    with SessionBrowser(announce_port=port, bind="127.0.0.1") as browser:
        announcer = SessionAnnouncer(
            {
                "game": "chase",
                "name": "Ann's Tag",
                "players": 2,
                "max_players": 8,
                "port": 8123,
                "version": "1",
                "password": True,
            },
            addresses=["127.0.0.1"],
            announce_port=port,
            interval=0.1,
        )
        announcer.start()
        try:
            session = browser.wait_for(lambda s: s.game == "chase", timeout=3)
            assert session is not None
            assert (session.name, session.players, session.port, session.host) == (
                "Ann's Tag",
                2,
                8123,
                "127.0.0.1",
            )
            assert session.password is True and session.max_players == 8
            announcer.update(players=5)
            assert browser.wait_for(lambda s: s.players == 5, timeout=3) is not None
        finally:
            announcer.stop()


def test_malformed_announcements_are_ignored():
    port = free_udp_port()
    with SessionBrowser(announce_port=port, bind="127.0.0.1") as browser:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for junk in (b"", b"PYGASE-LAN1", b"PYGASE-LAN1\xc1", b"PYGASE-LAN1\x81\xa4port\xc3", b"x" * 600):
                sock.sendto(junk, ("127.0.0.1", port))
            sock.sendto(
                encode_announcement({"game": "pong", "name": "ok", "port": 9000}), ("127.0.0.1", port)
            )
        session = browser.wait_for(lambda s: s.game == "pong", timeout=3)
        assert session is not None
        assert [s.game for s in browser.sessions()] == ["pong"]


def test_announcement_fields_are_type_checked():
    good = encode_announcement({"game": "arena", "name": "x", "port": 1234, "players": 3})
    assert decode_announcement(good, "10.0.0.2", 0.0).players == 3
    for bad in ({"port": 0}, {"port": "8080"}, {"port": 80, "players": True}, {"port": 80, "password": 1}):
        with pytest.raises(ValueError):
            decode_announcement(encode_announcement(bad), "10.0.0.2", 0.0)


def test_demos_list_prints_each_demo_with_a_description():
    result = subprocess.run(
        [sys.executable, "-m", "demos", "list"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["dots", "chase", "arena", "pong", "cards"]
    assert all(len(line.split(maxsplit=1)[1]) > 10 for line in lines)


@needs_ipv6_loopback
def test_an_announcement_over_ipv6_is_heard_and_one_heard_both_ways_is_one_session_listed_by_ipv4():
    port = free_udp_port()
    info = {"game": "chase", "name": "six", "players": 1, "port": 8123}
    with SessionBrowser(announce_port=port, bind="::1") as browser:
        announcer = SessionAnnouncer(info, addresses=["::1"], announce_port=port, interval=0.1)
        announcer.start()
        try:
            session = browser.wait_for(lambda s: s.name == "six", timeout=3)
            assert session is not None and session.host == "::1"
        finally:
            announcer.stop()
    with SessionBrowser(announce_port=port, bind="") as browser:
        announcer = SessionAnnouncer(info, addresses=["::1", "127.0.0.1"], announce_port=port, interval=0.1)
        announcer.start()
        try:
            assert browser.wait_for(lambda s: s.host == "127.0.0.1", timeout=3) is not None
            time.sleep(0.3)  # deliberately: several announcements over both families
            browser.poll()
            assert [s.host for s in browser.sessions()] == ["127.0.0.1"]
        finally:
            announcer.stop()
