"""Online play in a small internet made of network namespaces (issue 13): a relay on a public address,
homes behind Linux NAT routers, players joining by room code (see tests/netns.py for the testbed).

Each side is a Python process in its namespace: the relay (`pygase.relay.Relay`), a host (a `Backend`
registered with the relay) and players (`Client.connect(room=...)`). Needs root, `ip` and `nft`; skipped
with the reason otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from netns import Node, Testbed, ipv6_unavailable, testbed_unavailable

pytestmark = pytest.mark.timeout(60)

RELAY_PORT = 8090
GAME_PORT = 5000

RELAY = """
import json, logging, sys
from pygase.relay import Relay
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
relay = Relay("", int(sys.argv[1]))
relay.run_in_thread()
print(json.dumps({"port": relay.port}), flush=True)
sys.stdin.read()
print(json.dumps(relay.counts()), flush=True)
relay.shutdown()
"""

HOST = """
import json, logging, sys
from pygase import Backend, GameState
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
relay, hostname, port = sys.argv[1] or None, sys.argv[2], int(sys.argv[3])
backend = Backend(
    GameState(ticks=0, said=""),
    lambda game_state, dt: {"ticks": game_state.ticks + 1},
    {"SAY": lambda text, game_state, dt: {"said": text}},
)
backend.run_in_thread(hostname, port, relay=relay)
print(json.dumps({"code": backend.room_code, "port": backend.server.port}), flush=True)
for line in sys.stdin:
    print(json.dumps({"code": backend.room_code}), flush=True)
backend.shutdown()
"""

PLAYER = """
import json, logging, sys, time
from pygase import Client
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
how, first, second = sys.argv[1:4]
client = Client()
started = time.monotonic()
if how == "room":
    client.connect_in_thread(room=first, relay=second)
else:
    client.connect_in_thread(int(second), first)
try:
    client.wait_until(lambda state: state.ticks > 0, timeout=12)
    first_state = time.monotonic() - started
    client.dispatch_event("SAY", text="hello", retries=5)
    client.wait_until(lambda state: state.said == "hello", timeout=5)
    result = {"route": client.statistics().route, "server": list(client.connection.remote_address[:2]),
              "first_state": first_state}
    print(json.dumps(result), flush=True)
    if "--stay" in sys.argv:
        for line in sys.stdin:
            ticks = client.copy_game_state().ticks
            time.sleep(float(line))
            print(json.dumps({"ticks": client.copy_game_state().ticks - ticks,
                              "connected": client.connection.status == 3}), flush=True)
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
finally:
    client.disconnect()
"""


@pytest.fixture
def net():
    reason = testbed_unavailable()
    if reason:
        pytest.skip(reason)
    with Testbed() as testbed:
        yield testbed


class Agent:
    """A Python process in a namespace that prints one JSON line per answer."""

    def __init__(self, node: Node, script: str, *args: Any) -> None:
        self.process = node.popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def answer(self, line: str = "") -> dict:
        """Send a line (if any) and read the next JSON answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if line:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        text = self.process.stdout.readline()
        if not text:
            self.process.wait(timeout=5)
            raise AssertionError(f"the agent ended without answering:\n{self.log()}")
        return json.loads(text)

    def finish(self) -> dict:
        """Close its stdin and read its last answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        text = self.process.stdout.read()
        self.process.wait(timeout=10)
        return json.loads(text.splitlines()[-1]) if text.strip() else {}

    def log(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        assert self.process.stderr is not None
        return self.process.stderr.read()


def start_relay(node: Node) -> tuple[Agent, str]:
    relay = Agent(node, RELAY, RELAY_PORT)
    relay.answer()
    return relay, f"{node.address()}:{RELAY_PORT}"


def host_game(node: Node, relay: str, hostname: str = "") -> tuple[Agent, dict]:
    host = Agent(node, HOST, relay, hostname, GAME_PORT)
    registered = host.answer()
    assert registered["code"], host.log()
    return host, registered


def play(node: Node, *args: Any) -> dict:
    player = Agent(node, PLAYER, *args)
    result = player.answer()
    assert "error" not in result, f"{result}\n--- player log:\n{player.log()}"
    player.finish()
    return result


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


def test_a_host_and_a_player_on_an_ipv6_only_link_play(net: Testbed):
    reason = ipv6_unavailable()
    if reason:
        pytest.skip(reason)
    ann, bob = net.ipv6_link("ann", "bob")
    host, _ = host_game_without_relay(ann)
    result = play(bob, "address", f"[{net.address_of(ann, family=6)}]", GAME_PORT)
    assert result["server"] == [net.address_of(ann, family=6), GAME_PORT]
    host.finish()


def host_game_without_relay(node: Node) -> tuple[Agent, dict]:
    host = Agent(node, HOST, "", "::", GAME_PORT)
    return host, host.answer()


def test_lan_announcements_over_ipv6_lead_a_player_to_the_host(net: Testbed):
    reason = ipv6_unavailable()
    if reason:
        pytest.skip(reason)
    ann, bob = net.ipv6_link("ann", "bob")
    host, _ = host_game_without_relay(ann)
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
