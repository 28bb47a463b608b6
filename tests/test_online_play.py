"""Online play in a small internet made of network namespaces (issue 13): a relay on a public address,
homes behind Linux NAT routers, players joining by room code (see tests/netns.py for the testbed).

Each side is a Python process in its namespace: the relay (`pygase.relay.Relay`), a host (a `Backend`
registered with the relay) and players (`Client.connect(room=...)`). Needs root, `ip` and `nft`; skipped
with the reason otherwise.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from netns import Node, Testbed, ipv6_unavailable, testbed_unavailable
from online_agents import GAME_PORT, HOST, PLAYER, Agent, host_game, play, start_relay

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def net():
    reason = testbed_unavailable()
    if reason:
        pytest.skip(reason)
    with Testbed() as testbed:
        yield testbed


@pytest.mark.parametrize("inbound", ["drop", "track"])
def test_players_behind_two_home_routers_join_by_room_code_and_talk_directly(net: Testbed, inbound: str):
    """`track` routers let an unsolicited punch reach their stack (it then spoils a naive punch): the
    low-TTL punches must make it work there too."""
    relay_node = net.public_host("relay")
    home_a, home_b = net.home("a", nat="eim", inbound=inbound), net.home("b", nat="eim", inbound=inbound)
    relay, relay_address = start_relay(relay_node)
    host, registered = host_game(home_a.host("ann"), relay_address)
    result = play(home_b.host("bob"), "room", registered["code"], relay_address)
    assert result["route"] == "direct"
    assert result["server"] == [home_a.address(), GAME_PORT]  # the host's router, not the relay
    assert result["host"] is False  # a stranger joining by code first gets no right to shut it down
    host.finish()
    assert relay.finish()["channels"] == 0  # the relay forwarded no game datagram


def test_behind_a_router_that_randomizes_ports_the_relay_forwards_the_game(net: Testbed):
    relay_node = net.public_host("relay")
    home_a, home_b = net.home("a", nat="eim", inbound="track"), net.home("b", nat="random")
    relay, relay_address = start_relay(relay_node)
    host, registered = host_game(home_a.host("ann"), relay_address)
    result = play(home_b.host("bob"), "room", registered["code"], relay_address)
    assert result["route"] == "relay"
    assert result["server"][0] == relay_node.address()
    host.finish()
    assert relay.finish()["channels"] == 1


def test_host_and_player_behind_the_same_router_find_each_other_on_their_lan(net: Testbed):
    relay_node = net.public_host("relay")
    home = net.home("a", nat="eim", inbound="track")
    relay, relay_address = start_relay(relay_node)
    ann = home.host("ann")
    host, registered = host_game(ann, relay_address)
    result = play(home.host("bob"), "room", registered["code"], relay_address)
    assert result["route"] == "direct"
    assert result["server"] == [ann.address(), GAME_PORT]  # its LAN address
    host.finish()
    relay.finish()


def test_the_direct_game_goes_on_while_the_relay_restarts(net: Testbed):
    relay_node = net.public_host("relay")
    home_a, home_b = net.home("a", nat="eim"), net.home("b", nat="eim")
    relay, relay_address = start_relay(relay_node)
    host, registered = host_game(home_a.host("ann"), relay_address)
    player = Agent(home_b.host("bob"), PLAYER, "room", registered["code"], relay_address, "--stay")
    joined = player.answer()
    assert joined.get("route") == "direct", f"{joined}\n{player.log()}"
    relay.finish()  # the relay is gone
    during = player.answer("1.0")
    assert during["connected"] and during["ticks"] >= 30  # 50 ticks a second, one second
    relay, _ = start_relay(relay_node)  # back, knowing nothing: the host registers again, same code
    cy = home_b.host("cy")
    deadline = time.monotonic() + 10  # (the host hears at its next refresh, within 5 s)
    while True:
        again = Agent(cy, PLAYER, "room", registered["code"], relay_address).answer()
        if "error" not in again or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert again.get("route") == "direct", again
    assert host.answer("status")["code"] == registered["code"]
    player.finish()
    host.finish()
    relay.finish()


@pytest.fixture
def ipv6_host(net: Testbed) -> tuple[Node, Node, Agent]:
    """Two hosts on an IPv6-only link, ann hosting a game on [::] without a relay: (ann, bob, host)."""
    reason = ipv6_unavailable()
    if reason:
        pytest.skip(reason)
    ann, bob = net.ipv6_link("ann", "bob")
    host = Agent(ann, HOST, "", "::", GAME_PORT)
    host.answer()
    return ann, bob, host


def test_a_host_and_a_player_on_an_ipv6_only_link_play(net: Testbed, ipv6_host):
    ann, bob, host = ipv6_host
    result = play(bob, "address", f"[{net.address_of(ann, family=6)}]", GAME_PORT)
    assert result["server"] == [net.address_of(ann, family=6), GAME_PORT]
    host.finish()


def test_lan_announcements_over_ipv6_lead_a_player_to_the_host(ipv6_host):
    ann, bob, host = ipv6_host
    announcer = ann.popen(
        [sys.executable, "-c", ANNOUNCE, str(GAME_PORT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        found = bob.run([sys.executable, "-c", BROWSE], timeout=15).stdout.strip()
    finally:
        announcer.kill()
        announcer.wait(timeout=5)
    assert found.startswith("fe80::") and "%" in found, found  # link-local, with its interface
    result = play(bob, "address", found, GAME_PORT)
    assert result["route"] == "direct"
    host.finish()


ANNOUNCE = """
import sys, time
from pygase_pygame.lan import SessionAnnouncer
announcer = SessionAnnouncer({"game": "t", "name": "six", "port": int(sys.argv[1])}, interval=0.2)
announcer.start()
time.sleep(30)
"""

BROWSE = """
from pygase_pygame.lan import SessionBrowser
with SessionBrowser() as browser:
    session = browser.wait_for(lambda s: s.name == "six", timeout=10)
print(session.host if session else "not found")
"""
