"""Self-checks of the network-namespace testbed (tests/netns.py): its home routers behave like Linux home
routers (NAT out, unsolicited inbound dropped, LAN hosts reach each other), and what that means for UDP
hole punching: a naive simultaneous punch, one that starts with low-TTL punches, and a "random" (symmetric)
NAT on one side. Plain UDP sockets in small `python -c` agents inside the namespaces, driven over their
stdin/stdout; skipped with the reason when the testbed cannot run (not root, no `ip`/`nft`, ...)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import pytest
from netns import (
    Home,
    Node,
    Testbed,
    TestbedError,
    ipv6_unavailable,
    sweep_stale_namespaces,
    testbed_unavailable,
)

pytestmark = pytest.mark.timeout(15)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PLAYER_PORT = 40000  # every player binds this port, so a port-preserving NAT maps it to 40000 outside
RELAY_PORT = 3478
PUNCHES = 20
PUNCH_INTERVAL = 0.01  # seconds between two punches: 20 punches take 0.2 s
Endpoint = Tuple[str, int]

# A UDP agent: binds a socket, reports its port, then obeys JSON commands, one per stdin line, answering
# each with one JSON line: "send" (count datagrams "<tag><i>", i = first, first + 1, ..., to an address,
# optionally with another IP TTL / IPv6 hop limit, after a wait) and "take" (the datagrams received so
# far, once it has `expect` of them or after a wait). With "echo", it answers every datagram with
# "echo:<payload>", as a relay tells players their public endpoints.
AGENT = r"""
import json, socket, sys, threading, time
config = json.loads(sys.argv[1])
v6 = config["family"] == 6
sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("::" if v6 else "0.0.0.0", config["port"]))
ttl_option = (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) if v6 else (socket.IPPROTO_IP, socket.IP_TTL)
received, lock = [], threading.Lock()
def receive():
    while True:
        data, address = sock.recvfrom(2048)
        with lock:
            received.append([data.decode(), address[0], address[1]])
        if config["echo"]:
            sock.sendto(b"echo:" + data, address)
threading.Thread(target=receive, daemon=True).start()
def answer(**reply):
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
answer(port=sock.getsockname()[1])
for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "send":
        time.sleep(command["wait"])
        sock.setsockopt(*ttl_option, command["ttl"] or 64)
        for i in range(command["count"]):
            sock.sendto(f"{command['tag']}{command['first'] + i}".encode(), tuple(command["to"]))
            time.sleep(command["interval"])
        sock.setsockopt(*ttl_option, 64)
        answer(sent=command["count"])
    else:
        deadline = time.monotonic() + command["wait"]
        while len(received) < command["expect"] and time.monotonic() < deadline:
            time.sleep(0.002)
        with lock:
            taken, received[:] = list(received), []
        answer(received=taken)
"""


class Datagram(NamedTuple):
    payload: str
    source: Endpoint


class Agent:
    """A UDP agent (AGENT above) running in a namespace; the testbed kills it when it closes. Starting
    one does not wait for it (a Python starts in some 50 ms), so several start side by side."""

    def __init__(self, node: Node, port: int = PLAYER_PORT, *, family: int = 4, echo: bool = False) -> None:
        self.node = node
        config = json.dumps({"family": family, "port": port, "echo": echo})
        self.process = node.popen(  # -I -S: the standard library is all it needs, and it starts faster
            [sys.executable, "-I", "-S", "-c", AGENT, config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._port: Optional[int] = None

    @property
    def port(self) -> int:
        """The agent's UDP port (waiting for it to start the first time)."""
        if self._port is None:
            self._port = int(self._answer()["port"])
        return self._port

    def _answer(self, timeout: float = 5.0) -> Dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, f"the agent in {self.node.name} did not answer within {timeout} s"
        line = self.process.stdout.readline()
        assert line, f"the agent in {self.node.name} exited with status {self.process.wait(1)}"
        return json.loads(line)

    def start_send(
        self,
        to: Endpoint,
        count: int = 1,
        *,
        tag: str = "p",
        first: int = 0,
        ttl: Optional[int] = None,
        interval: float = 0.0,
        wait: float = 0.0,
    ) -> None:
        """Have the agent send `count` datagrams "<tag><first>", "<tag><first + 1>", ... `interval` seconds
        apart (after `wait` seconds), without waiting for it; finish with `sent()`."""
        command = {"op": "send", "to": list(to), "count": count, "tag": tag, "first": first, "ttl": ttl}
        self._tell({**command, "interval": interval, "wait": wait})

    def sent(self) -> None:
        assert "sent" in self._answer()

    def send(self, to: Endpoint, count: int = 1, *, tag: str = "p", ttl: Optional[int] = None) -> None:
        """Send and wait until the datagrams are out (and, the testbed having no delays, arrived)."""
        self.start_send(to, count, tag=tag, ttl=ttl)
        self.sent()

    def take(self, wait: float = 0.0, expect: Optional[int] = None) -> List[Datagram]:
        """The datagrams received since the last take, once there are `expect` of them or after `wait`
        seconds (all of them without `expect`)."""
        self._tell({"op": "take", "wait": wait, "expect": 2**31 if expect is None else expect})
        return [Datagram(payload, (host, port)) for payload, host, port in self._answer()["received"]]

    def _tell(self, command: Dict[str, Any]) -> None:
        assert self.port  # the first answer is the port
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()


def listed_namespaces() -> Set[str]:
    """The names `ip netns list` shows."""
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def skip_unless_available() -> None:
    reason = testbed_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def net() -> Iterator[Testbed]:
    skip_unless_available()
    with Testbed() as testbed:
        yield testbed
        names = set(testbed.namespaces)
    assert not names & listed_namespaces(), "namespaces left behind"


def public_endpoints(relay: Agent, players: Dict[str, Agent]) -> Dict[str, Endpoint]:
    """Each player says hello to the relay, which sees (and echoes to) its public endpoint: what a relay
    tells the players about each other before they punch."""
    for name, agent in players.items():
        agent.send((relay.node.address(), relay.port), tag=f"hello-{name}-")
    seen = {datagram.payload: datagram.source for datagram in relay.take(wait=3, expect=len(players))}
    for name, agent in players.items():
        assert [d.payload for d in agent.take(wait=3, expect=1)] == [f"echo:hello-{name}-0"], (
            f"{name} got no echo"
        )
    return {name: seen[f"hello-{name}-0"] for name in players}


def through(received: Sequence[Datagram], tag: str) -> int:
    """How many different punches tagged `tag` arrived."""
    return len({d.payload for d in received if d.payload.startswith(tag)})


def punch(
    first: Agent, second: Agent, endpoints: Tuple[Endpoint, Endpoint], *, low_ttl_first: bool = False
) -> Tuple[int, int]:
    """Both players punch towards the other's public endpoint (as the relay saw it), PUNCHES punches each,
    PUNCH_INTERVAL apart: `first`'s punch 0 goes out (and arrives) before `second` starts, then both send
    the rest at the same time. With `low_ttl_first`, `second` sends 3 punches with IP TTL 2 before all
    that: they leave through its own NAT (opening it towards `first`) and die in the core, one hop short
    of `first`'s router. Returns how many punches arrived: (first -> second, second -> first).

    Why one side strictly first: on the internet the two sides never start within the one-way delay of
    each other, so one side's first punch reaches the other's router before that side sent anything (the
    case that matters); the testbed's delays are microseconds, so "at the same time" would be a race.
    """
    first_public, second_public = endpoints
    if low_ttl_first:
        second.send(first_public, 3, tag="low-", ttl=2)
    first.send(second_public, 1, tag="from-first-")
    first.start_send(second_public, PUNCHES - 1, tag="from-first-", first=1, interval=PUNCH_INTERVAL)
    second.start_send(first_public, PUNCHES, tag="from-second-", interval=PUNCH_INTERVAL)
    first.sent()
    second.sent()
    at_first, at_second = first.take(wait=0.1), second.take()
    assert through(at_first, "low-") == 0, "a TTL 2 punch crossed the core"
    return through(at_second, "from-first-"), through(at_first, "from-second-")


def two_homes(
    net: Testbed, nat_a: str = "eim", nat_b: str = "eim", *, inbound: str = "drop"
) -> Tuple[Home, Home, Agent, Agent, Tuple[Endpoint, Endpoint]]:
    """Homes a and b with a player each (agents on PLAYER_PORT), and their public endpoints as a relay
    saw them."""
    relay = Agent(net.public_host("relay"), RELAY_PORT, echo=True)
    a = net.home("a", nat_a, inbound=inbound)  # type: ignore[arg-type]
    b = net.home("b", nat_b, inbound=inbound)  # type: ignore[arg-type]
    pa, pb = Agent(a.host("pa")), Agent(b.host("pb"))
    seen = public_endpoints(relay, {"pa": pa, "pb": pb})
    return a, b, pa, pb, (seen["pa"], seen["pb"])


# -- 1, 2: NAT out, nothing in ---------------------------------------------------------------------------


@pytest.mark.parametrize("nat", ["eim", "random"])
def test_player_reaches_public_hosts_through_nat(net: Testbed, nat: str) -> None:
    relay = Agent(net.public_host("relay"), RELAY_PORT, echo=True)
    other = Agent(net.public_host("other"), RELAY_PORT, echo=True)
    home = net.home("a", nat)  # type: ignore[arg-type]
    player = Agent(home.host("pa"))
    player.send((relay.node.address(), RELAY_PORT), tag="to-relay-")
    player.send((other.node.address(), RELAY_PORT), tag="to-other-")
    replies = sorted(d.payload for d in player.take(wait=3, expect=2))
    assert replies == ["echo:to-other-0", "echo:to-relay-0"]
    (at_relay,), (at_other,) = relay.take(), other.take()
    assert at_relay.source[0] == at_other.source[0] == home.address() == net.address_of(home)
    if nat == "eim":  # endpoint-independent mapping, port preserved: one public endpoint for everyone
        assert at_relay.source[1] == at_other.source[1] == PLAYER_PORT
    else:  # a new random public port per destination
        assert at_relay.source[1] != at_other.source[1]


@pytest.mark.parametrize("inbound", ["drop", "track"])
def test_unsolicited_inbound_is_not_delivered(net: Testbed, inbound: str) -> None:
    """A public host sends to the router's address and the player's (would-be) public port before the
    player sent anything: nothing arrives. Afterwards the player reaches that host as usual, and its
    public port shows what the unsolicited datagrams left behind: nothing with inbound="drop" (port
    40000 preserved), a conntrack entry holding (host, 40000) with inbound="track" (another port)."""
    relay = Agent(net.public_host("relay"), RELAY_PORT, echo=True)
    home = net.home("a", inbound=inbound)  # type: ignore[arg-type]
    player = Agent(home.host("pa"))
    relay.send((home.address(), PLAYER_PORT), 3, tag="unsolicited-")
    assert player.take(wait=0.2) == []
    player.send((relay.node.address(), RELAY_PORT), tag="hello-")
    assert [d.payload for d in player.take(wait=3, expect=1)] == ["echo:hello-0"]
    (hello,) = relay.take()
    assert hello.source[0] == home.address()
    if inbound == "drop":
        assert hello.source[1] == PLAYER_PORT
    else:
        assert hello.source[1] != PLAYER_PORT


# -- 3, 4, 5: hole punching ------------------------------------------------------------------------------


@pytest.mark.parametrize("inbound", ["drop", "track"])
def test_naive_simultaneous_punch(net: Testbed, inbound: str) -> None:
    """Both "eim" players punch at normal TTL; a's first punch reaches b's router before b sent anything
    to a, then both go on at the same time.

    inbound="drop": that first punch is dropped before conntrack confirms an entry for it, so it leaves no
    trace: b's punches keep public port 40000, b's router then expects a's, and all punches but a's first
    (and any other of a's that beat b's first punch) get through.

    inbound="track": a's first punch is confirmed in b's router's conntrack table (a -> router b:40000),
    so b's own punches can no longer have public port 40000 towards a: they leave from another port, which
    a's router does not expect, while a's punches go on to b's router itself. 0 of 20 either way."""
    _, b, pa, pb, (ea, eb) = two_homes(net, inbound=inbound)
    a_to_b, b_to_a = punch(pa, pb, (ea, eb))
    if inbound == "drop":
        assert b_to_a == PUNCHES
        assert PUNCHES // 2 <= a_to_b < PUNCHES  # 19 or 18 here; fewer only if b started very late
        return
    assert (a_to_b, b_to_a) == (0, 0)
    try:
        flows = b.udp_flows()
    except TestbedError as exc:  # no /proc/net/nf_conntrack: the counts above must do
        pytest.skip(f"punch counts checked; conntrack table not readable: {exc}")
    # b's router: a's unsolicited punch holds (a's endpoint, router b:40000) ...
    assert (ea, eb, eb, ea) in [flow[:4] for flow in flows]
    # ... so b's punches to a went out from another public port.
    (to_a,) = [
        flow for flow in flows if flow.source == (pb.node.address(), PLAYER_PORT) and flow.destination == ea
    ]
    assert to_a.reply_destination[0] == eb[0] and to_a.reply_destination[1] != PLAYER_PORT


@pytest.mark.parametrize("inbound", ["drop", "track"])
def test_low_ttl_punch_first(net: Testbed, inbound: str) -> None:
    """The same punch, but b first sends 3 punches with IP TTL 2: they open b's NAT towards a and die in
    the core, so a's punches find b's router expecting them, and b's answer finds a's: 20 of 20 each way,
    whatever the routers do with unsolicited packets."""
    _, _, pa, pb, endpoints = two_homes(net, inbound=inbound)
    assert punch(pa, pb, endpoints, low_ttl_first=True) == (PUNCHES, PUNCHES)


@pytest.mark.parametrize("inbound", ["drop", "track"])
def test_random_nat_defeats_low_ttl_punch(net: Testbed, inbound: str) -> None:
    """Home a does nat="random" (a new public port per destination), so the endpoint the relay saw is not
    the one a's punches come from, nor one that expects b's: the low-TTL punch fails whichever side goes
    first (0 of 20 each way): a case for the relay fallback."""
    relay = Agent(net.public_host("relay"), RELAY_PORT, echo=True)
    a = net.home("a", "random", inbound=inbound)  # type: ignore[arg-type]
    b = net.home("b", "eim", inbound=inbound)  # type: ignore[arg-type]
    # Two pairs of players, one per order, so the first attempt leaves no state in the second's way.
    players = {
        name: Agent(home.host(name), PLAYER_PORT + i)
        for i, (name, home) in enumerate([("pa1", a), ("pb1", b), ("pa2", a), ("pb2", b)])
    }
    seen = public_endpoints(relay, players)
    assert seen["pa1"][1] != PLAYER_PORT and seen["pb1"] == (b.address(), PLAYER_PORT + 1)
    # b (eim) sends its low-TTL punches first, then a, then b; and the other way round.
    assert punch(players["pa1"], players["pb1"], (seen["pa1"], seen["pb1"]), low_ttl_first=True) == (0, 0)
    assert punch(players["pb2"], players["pa2"], (seen["pb2"], seen["pa2"]), low_ttl_first=True) == (0, 0)


# -- 6, 7: LAN and IPv6 ----------------------------------------------------------------------------------


def test_hosts_behind_one_router_talk_over_the_lan(net: Testbed) -> None:
    home = net.home("a")
    first, second = Agent(home.host("pa")), Agent(home.host("pa2"), echo=True)
    assert first.node.address() != second.node.address()
    first.send((second.node.address(), second.port), tag="lan-")
    assert [d.payload for d in first.take(wait=3, expect=1)] == ["echo:lan-0"]
    (datagram,) = second.take()
    assert datagram.source == (first.node.address(), PLAYER_PORT)  # the LAN address: no NAT between them


def test_ipv6_only_link(net: Testbed) -> None:
    reason = ipv6_unavailable()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    h, p = net.ipv6_link("h", "p")
    here, there = Agent(h, family=6), Agent(p, family=6, echo=True)
    here.send((net.address_of(p, family=6), there.port), tag="v6-")
    assert [d.payload for d in here.take(wait=3, expect=1)] == ["echo:v6-0"]
    assert time.monotonic() - started < 5, "the addresses were not usable at once (DAD?)"
    (datagram,) = there.take()
    assert datagram.source[:2] == (net.address_of(h, family=6), PLAYER_PORT)
    assert datagram.source[0].startswith("2001:db8:")
    for node in (h, p):  # no IPv4 at all (but loopback)
        assert node.run(["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout.strip() == ""


# -- 8: cleanup ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body_raises", [False, True])
def test_namespaces_and_processes_are_gone_after_exit(body_raises: bool) -> None:
    skip_unless_available()
    expected = pytest.raises(RuntimeError) if body_raises else contextlib.nullcontext()
    with expected, Testbed() as net:
        player = net.home("a").host("pa")
        sleeper = player.popen(["sleep", "60"])
        names = set(net.namespaces)
        assert len(names) == 3 and names <= listed_namespaces()  # core, a, pa
        if body_raises:
            raise RuntimeError("the body failed")
    assert not names & listed_namespaces()
    assert sleeper.returncode is not None  # killed and reaped
    net.close()  # again: nothing to do


def test_namespaces_are_deleted_at_interpreter_exit() -> None:
    """A testbed never closed is cleaned up by its finalizer when the interpreter exits."""
    skip_unless_available()
    names, pids = _namespaces_of_child("net = Testbed(); net.home('a').host('pa').popen(['sleep', '60'])")
    assert len(names) == 3 and not names & listed_namespaces()
    assert len(pids) == 1 and not os.path.exists(f"/proc/{pids[0]}")  # the sleep was killed (and reaped)


def test_sweep_deletes_namespaces_of_a_killed_run() -> None:
    """After SIGKILL no cleanup runs; sweep_stale_namespaces() deletes what the dead process left."""
    skip_unless_available()
    names, _ = _namespaces_of_child("net = Testbed(); net.home('a').host('pa')", kill=True)
    assert len(names) == 3 and names <= listed_namespaces()
    assert names <= set(sweep_stale_namespaces())
    assert not names & listed_namespaces()


def _namespaces_of_child(build: str, *, kill: bool = False) -> Tuple[Set[str], List[int]]:
    """Run `build` in a child Python (`net` being its testbed); the namespaces it made and the pids of the
    processes it started in them, after the child exited by itself or (`kill`) was killed with SIGKILL."""
    code = (
        f"import json, sys; sys.path.insert(0, {TESTS_DIR!r})\n"
        "from netns import Testbed\n"
        f"{build}\n"
        "pids = [process.pid for process in net._resources.processes]\n"
        "print(json.dumps([net.namespaces, pids]), flush=True)\n" + ("sys.stdin.read()\n" if kill else "")
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        names, pids = json.loads(child.stdout.readline())
        if kill:
            child.send_signal(signal.SIGKILL)
        else:
            assert child.stdin is not None
            child.stdin.close()
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
    return set(names), pids
