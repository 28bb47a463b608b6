"""A small internet inside the test run, made of Linux network namespaces: public hosts, home routers doing
NAT in front of a LAN, players behind them, and IPv6-only links. Nothing leaves the machine: every address
lives inside namespaces this module creates, and the root namespace is never touched (each veth pair is
created with both ends directly inside our namespaces).

Needs Linux, root, `ip` (iproute2) and `nft` (nftables); `testbed_unavailable()` says why it cannot run::

    from netns import Testbed, testbed_unavailable

    @pytest.fixture
    def net() -> Iterator[Testbed]:
        reason = testbed_unavailable()
        if reason:
            pytest.skip(reason)
        with Testbed() as testbed:
            yield testbed

    def test_something(net: Testbed) -> None:
        relay = net.public_host("relay")             # 198.51.100.x, on the internet
        a = net.home("a", nat="eim")                  # a home router: 203.0.113.x outside, 192.168.1.1 inside
        pa = a.host("pa")                             # a player on that LAN: 192.168.1.2, default route via a
        out = pa.run([sys.executable, "-c", code])    # subprocess.CompletedProcess, inside pa's namespace
        proc = pa.popen([sys.executable, "-c", code], stdin=PIPE, stdout=PIPE)  # killed on exit
        net.address_of(relay)                         # "198.51.100.10"

Topology: one "core" namespace routes between everything public. Each public host and each home router
has a point-to-point veth link to the core, the core's end always 192.0.2.1 (TEST-NET-1), the far end
198.51.100.x (public hosts) or 203.0.113.x (routers), so a packet between two of them crosses three IP
hops (sender, core, receiver) and a packet with IP TTL 2 from behind a router dies in the core, after it
opened its own router's NAT and before it reaches the far router.

A home router (`Testbed.home`) bridges its LAN ("lan", 192.168.N.1/24; hosts .2, .3, ...; two hosts talk
directly over the bridge) and does what a typical Linux home router's nftables rules do:

* NAT out: `masquerade` on the WAN link. `nat="eim"` keeps the source port when it is free (the same
  public port for every destination: endpoint-independent mapping); `nat="random"` is `masquerade
  fully-random`, a new random public port for each destination (a "symmetric" NAT).
* Filter: packets of known connections (`ct state established,related`) pass; anything new from the WAN
  side, to the router itself or to its LAN, is dropped (policy drop on input and forward).

`inbound` chooses when that drop happens relative to connection tracking, which decides whether naive
simultaneous hole punching works (tests/test_netns_testbed.py measures it):

* `inbound="drop"` (the default; what nftables or iptables rules that drop or reject new packets from the
  WAN in their filter chains do, OpenWrt's fw4 among them): conntrack confirms a new entry only when the
  packet has passed every hook, so the dropped unsolicited packet leaves no trace, and a LAN host's later
  packet to its sender still keeps its port. A naive simultaneous punch works: only the punches that
  arrive before the far side sent its first one are lost.
* `inbound="track"`: the router does not filter UDP to its own address; its stack discards it (no socket
  listens; the ICMP port unreachable is suppressed, so the router stays as silent as with "drop"). The
  packet has then passed every hook and conntrack confirms an entry for it, (peer -> router:port). A LAN
  host's later packet to that peer cannot have that public port (its reply tuple would be the entry's
  original one), so masquerade gives it another. On these routers a naive punch fails (0 of 20 through)
  and one that starts with low-TTL punches succeeds; the entry lasts conntrack's UDP timeout (30 s).

All commands run with a timeout; `Testbed.close()` (and `__exit__`, also when the body raised, and a
`weakref.finalize` safety net at interpreter exit) kills every process inside our namespaces (SIGTERM,
then SIGKILL after a bounded wait) and deletes the namespaces. Namespace names are
`<prefix><pid>-<counter>-<name>`, so parallel runs (pytest-xdist, several checkouts) never clash, and
`sweep_stale_namespaces()` removes those whose process died without cleaning up (SIGKILL).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import itertools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Dict, List, Literal, NamedTuple, Optional, Sequence, Tuple, Union

__all__ = [
    "Home",
    "Node",
    "Testbed",
    "TestbedError",
    "UdpFlow",
    "ipv6_unavailable",
    "sweep_stale_namespaces",
    "testbed_unavailable",
]

logger = logging.getLogger(__name__)

Nat = Literal["eim", "random"]
Inbound = Literal["drop", "track"]

DEFAULT_PREFIX = "pgtb"
COMMAND_TIMEOUT = 10.0  # seconds for one `ip`/`nft`/`sh` command (they take milliseconds)
KILL_TIMEOUT = 3.0  # seconds between SIGTERM and SIGKILL at cleanup, and again for the SIGKILLed to go
CORE_ADDRESS = "192.0.2.1"  # the core's end of every public link (TEST-NET-1)
PUBLIC_HOST_NET = "198.51.100."  # public hosts: .10, .11, ... (TEST-NET-2)
ROUTER_NET = "203.0.113."  # home routers' WAN addresses: .10, .11, ... (TEST-NET-3)
FIRST_PUBLIC = 10
NETNS_DIR = "/run/netns"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_counter = itertools.count()
_counter_lock = threading.Lock()


class TestbedError(RuntimeError):
    """A command building or tearing down the testbed failed (its stderr is in the message)."""

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name


def _run(argv: Sequence[str], *, input: Optional[str] = None, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a setup command (not inside a namespace unless `argv` says so); its stdout, or TestbedError."""
    logger.debug("run %s", " ".join(argv))
    try:
        done = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestbedError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        where = f" (input: {input.strip()!r})" if input else ""
        raise TestbedError(f"{' '.join(argv)} failed with status {done.returncode}{where}: {detail}")
    return done.stdout


def _ip_batch(netns: str, commands: Sequence[str]) -> None:
    """Run `ip` commands inside `netns`, all in one `ip -netns NS -batch -` process."""
    _run(["ip", "-netns", netns, "-batch", "-"], input="".join(f"{line}\n" for line in commands))


def _wait_operational(links: Sequence[Tuple[str, str]], timeout: float = COMMAND_TIMEOUT) -> None:
    """Wait until each (namespace, device) is operationally up. A veth's carrier comes up asynchronously
    (the kernel's linkwatch), and until then the device has no queueing discipline and drops what is sent
    through it, so a datagram sent right after building would be lost."""
    deadline = time.monotonic() + timeout
    pending = list(links)
    while pending:
        by_netns: Dict[str, List[str]] = {}
        for netns, device in pending:
            by_netns.setdefault(netns, []).append(device)
        up = set()
        for netns, devices in by_netns.items():
            for line in _run(["ip", "-netns", netns, "-oneline", "link", "show"]).splitlines():
                name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
                if name in devices and " state UP " in line:
                    up.add((netns, name))
        pending = [link for link in pending if link not in up]
        if pending and time.monotonic() > deadline:
            raise TestbedError(f"links not up after {timeout:g} s: {pending}")
        if pending:
            time.sleep(0.005)


def _sysctl_script(forward: bool) -> str:
    """A shell script setting the namespace's sysctls: IPv4 forwarding on routers only; IPv6 duplicate
    address detection off (addresses usable at once) wherever the kernel has IPv6."""
    lines = [f"echo {int(forward)} > /proc/sys/net/ipv4/ip_forward"]
    if os.path.isdir("/proc/sys/net/ipv6"):
        for conf in ("all", "default"):
            lines.append(f"echo 0 > /proc/sys/net/ipv6/conf/{conf}/accept_dad")
            lines.append(f"echo 0 > /proc/sys/net/ipv6/conf/{conf}/dad_transmits")
        if forward:
            lines.append("echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
    return " && ".join(lines)


def _router_ruleset(nat: Nat, inbound: Inbound) -> str:
    """The nftables rules of a home router (see the module docstring)."""
    track_input = '        iifname "wan" meta l4proto udp ct state new accept\n' if inbound == "track" else ""
    stealth_output = (
        "    chain output {\n"
        "        type filter hook output priority filter; policy accept;\n"
        '        oifname "wan" icmp type destination-unreachable icmp code port-unreachable drop\n'
        "    }\n"
        if inbound == "track"
        else ""
    )
    masquerade = "masquerade fully-random" if nat == "random" else "masquerade"
    return (
        "table inet home_filter {\n"
        "    chain input {\n"
        "        type filter hook input priority filter; policy drop;\n"
        "        ct state established,related accept\n"
        '        iifname { "lo", "lan" } accept\n'
        f"{track_input}"
        "    }\n"
        "    chain forward {\n"
        "        type filter hook forward priority filter; policy drop;\n"
        "        ct state established,related accept\n"
        '        iifname "lan" accept\n'
        "    }\n"
        f"{stealth_output}"
        "}\n"
        "table ip home_nat {\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f'        oifname "wan" {masquerade}\n'
        "    }\n"
        "}\n"
    )


class Node:
    """One network namespace of the testbed: a public host, a home router, a player or an IPv6 host."""

    def __init__(self, testbed: Testbed, name: str, netns: str) -> None:
        self.testbed = testbed
        self.name = name  # the short name given to the testbed
        self.netns = netns  # the namespace's real name (`ip netns list`)
        self.addresses: Dict[int, List[str]] = {4: [], 6: []}  # family -> addresses, the main one first

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.netns}) {self.addresses}>"

    def address(self, family: int = 4) -> str:
        """The node's main address of that family (4 or 6): a router's public one, a host's LAN one."""
        found = self.addresses.get(family)
        if not found:
            raise LookupError(f"{self.name} has no IPv{family} address")
        return found[0]

    def command(self, argv: Sequence[str]) -> List[str]:
        """`argv` wrapped to run inside this namespace (`ip netns exec NS ...`)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
        input: Optional[str] = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the namespace to completion (text output captured; killed after `timeout`
        seconds, raising subprocess.TimeoutExpired; CalledProcessError on failure when `check`)."""
        logger.debug("%s: run %s", self.netns, argv)
        return subprocess.run(
            self.command(argv), input=input, capture_output=True, text=True, timeout=timeout, check=check
        )

    def popen(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside the namespace (keyword arguments go to subprocess.Popen). The testbed kills
        it, and anything else still running in its namespaces, when it closes."""
        logger.debug("%s: popen %s", self.netns, argv)
        return self.testbed._track(subprocess.Popen(self.command(argv), **popen_kwargs))


Endpoint = Tuple[str, int]


class UdpFlow(NamedTuple):
    """One UDP entry of a router's connection tracking table: the packet's addresses as they arrived
    (`source` -> `destination`) and those the replies must have (`reply_source` -> `reply_destination`).
    For a LAN host's flow out, `reply_destination` is its public endpoint (the NAT mapping)."""

    source: Endpoint
    destination: Endpoint
    reply_source: Endpoint
    reply_destination: Endpoint
    replied: bool  # conntrack has seen a packet in the reply direction


def _parse_udp_flows(table: str) -> List[UdpFlow]:
    flows = []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[2] != "udp":
            continue
        values: Dict[str, List[str]] = {}
        for field in fields:
            key, _, value = field.partition("=")
            if value:
                values.setdefault(key, []).append(value)
        try:
            (src, reply_src), (dst, reply_dst) = values["src"][:2], values["dst"][:2]
            (sport, reply_sport), (dport, reply_dport) = values["sport"][:2], values["dport"][:2]
        except (KeyError, ValueError):
            continue
        flows.append(
            UdpFlow(
                (src, int(sport)),
                (dst, int(dport)),
                (reply_src, int(reply_sport)),
                (reply_dst, int(reply_dport)),
                "[UNREPLIED]" not in fields,
            )
        )
    return flows


class Home(Node):
    """A home router: a namespace with a public address on the internet (`address()`), NAT out of its
    LAN and a firewall (see the module docstring). `host()` adds players to its LAN."""

    def __init__(
        self, testbed: Testbed, name: str, netns: str, index: int, nat: Nat, inbound: Inbound
    ) -> None:
        super().__init__(testbed, name, netns)
        self.index = index  # the LAN is 192.168.<index>.0/24
        self.nat: Nat = nat
        self.inbound: Inbound = inbound
        self.lan_address = f"192.168.{index}.1"
        self.hosts: List[Node] = []

    def host(self, name: str) -> Node:
        """A new namespace on this home's LAN (192.168.N.2, .3, ...; default route via the router)."""
        if len(self.hosts) >= 253:
            raise TestbedError(f"home {self.name} is full (253 hosts)")
        address = f"192.168.{self.index}.{len(self.hosts) + 2}"
        port = f"h{len(self.hosts)}"  # the host's bridge port, inside the router's namespace
        node = self.testbed._new_node(name, Node, forward=False)
        _ip_batch(
            node.netns,
            [
                "link set lo up",
                self.testbed._veth("eth0", port, self.netns),
                f"addr add {address}/24 dev eth0",
                "link set eth0 up",
            ],
        )
        _ip_batch(self.netns, [f"link set {port} master lan", f"link set {port} up"])
        _ip_batch(node.netns, [f"route add default via {self.lan_address}"])
        _wait_operational([(node.netns, "eth0"), (self.netns, port)])
        node.addresses[4].append(address)
        self.hosts.append(node)
        return node

    def udp_flows(self) -> List[UdpFlow]:
        """The router's UDP connection tracking entries (from /proc/net/nf_conntrack inside its namespace;
        TestbedError if the kernel has no CONFIG_NF_CONNTRACK_PROCFS)."""
        done = self.run(["cat", "/proc/net/nf_conntrack"], check=False)
        if done.returncode != 0:
            raise TestbedError(f"cannot read the conntrack table: {done.stderr.strip()}")
        return _parse_udp_flows(done.stdout)


class _Resources:
    """What a testbed must release: its namespaces and the processes it started. Kept apart from the
    Testbed so the `weakref.finalize` safety net can hold it without keeping the Testbed alive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.netns: List[str] = []
        self.processes: List[subprocess.Popen[Any]] = []


def _namespace_id(path: str) -> Optional[Tuple[int, int]]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _pids_in(netns_names: Sequence[str]) -> List[int]:
    """Every process (but this one) whose network namespace is one of these (what `ip netns pids` does)."""
    wanted = {ident for ident in (_namespace_id(f"{NETNS_DIR}/{name}") for name in netns_names) if ident}
    if not wanted:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and _namespace_id(f"/proc/{entry}/ns/net") in wanted:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie does not: it only waits for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal_all(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_gone(pids: Sequence[int], processes: Sequence[subprocess.Popen[Any]], timeout: float) -> List[int]:
    """Wait for the pids to go (a zombie counts as gone) and reap our children among them; the pids still
    alive after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if _alive(pid)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    for process in processes:
        if process.pid not in left:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()) + 0.1)
    return left


def _release(resources: _Resources, kill_timeout: float) -> None:
    """Kill every process in the namespaces (and every process we started), then delete the namespaces.
    Idempotent; never raises (it also runs at interpreter exit), problems are logged."""
    with resources.lock:
        names, resources.netns = list(resources.netns), []
        processes, resources.processes = list(resources.processes), []
    try:
        pids = set(_pids_in(names)) | {p.pid for p in processes if p.poll() is None}
        if pids:
            logger.debug("killing %s in %s", sorted(pids), names)
            _signal_all(sorted(pids), signal.SIGTERM)
            left = _wait_gone(sorted(pids), processes, kill_timeout)
            if left:
                logger.warning("processes %s ignored SIGTERM for %.1f s: SIGKILL", left, kill_timeout)
                _signal_all(left, signal.SIGKILL)
                left = _wait_gone(left, processes, kill_timeout)
                if left:
                    logger.error("processes %s survived SIGKILL", left)
        for process in processes:
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    except Exception:  # pragma: no cover - cleanup must go on to the namespaces
        logger.exception("killing the testbed's processes failed")
    if names:
        logger.debug("deleting namespaces %s", names)
        try:
            _run(["ip", "-force", "-batch", "-"], input="".join(f"netns delete {name}\n" for name in names))
        except TestbedError as exc:
            logger.warning("%s", exc)
        for name in names:
            if os.path.exists(f"{NETNS_DIR}/{name}"):
                try:
                    _run(["ip", "netns", "delete", name])
                except TestbedError as exc:
                    logger.error("namespace %s is left behind: %s", name, exc)


class Testbed:
    """A small internet of network namespaces; use it as a context manager (see the module docstring).

    `prefix` starts every namespace name (followed by the pid and a per-process counter);
    `kill_timeout` bounds each of the two waits when processes are killed at close.
    """

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name

    def __init__(self, *, prefix: str = DEFAULT_PREFIX, kill_timeout: float = KILL_TIMEOUT) -> None:
        if not re.fullmatch(r"[a-z]{1,8}", prefix):
            raise ValueError(f"prefix must be 1-8 lowercase letters, not {prefix!r}")
        with _counter_lock:
            number = next(_counter)
        self.prefix = f"{prefix}{os.getpid()}-{number}-"
        self.kill_timeout = kill_timeout
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, _release, self._resources, kill_timeout)
        self._nodes: Dict[str, Node] = {}
        self._core: Optional[str] = None
        self._links = itertools.count()  # core interfaces n0, n1, ... and IPv6 links
        self._ifindexes = itertools.count(100, 2)
        self._public_hosts = 0
        self._homes = 0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        try:
            self.start()
        except BaseException:
            self.close()  # __exit__ does not run when __enter__ raises
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Create the core namespace (done by `__enter__`, and by the first node if not yet done)."""
        if self._closed:
            raise TestbedError("this testbed is closed")
        if self._core is None:
            core = self._add_netns("core", forward=True)
            _ip_batch(core, ["link set lo up"])
            self._core = core

    def close(self) -> None:
        """Kill every process in the testbed's namespaces and delete them (idempotent)."""
        self._closed = True
        self._finalizer()

    @property
    def namespaces(self) -> List[str]:
        """The names of the namespaces created so far (and not yet deleted)."""
        with self._resources.lock:
            return list(self._resources.netns)

    def _track(self, process: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
        with self._resources.lock:
            self._resources.processes.append(process)
        return process

    def _add_netns(self, name: str, *, forward: bool) -> str:
        netns = self.prefix + name
        _run(["ip", "netns", "add", netns])
        with self._resources.lock:
            self._resources.netns.append(netns)
        _run(["ip", "netns", "exec", netns, "sh", "-c", _sysctl_script(forward)])
        return netns

    def _new_node(self, name: str, kind: type, *, forward: bool, **extra: Any) -> Any:
        if not _NAME.fullmatch(name) or name == "core":
            raise ValueError(f"node names are 1-32 of A-Z a-z 0-9 _ . - (and not 'core'), not {name!r}")
        if name in self._nodes:
            raise ValueError(f"this testbed already has a node named {name!r}")
        self.start()
        node = kind(self, name, self._add_netns(name, forward=forward), **extra)
        self._nodes[name] = node
        return node

    def _link_to_core(self, node: Node, device: str, address: str) -> None:
        """A point-to-point link between `node` (its `device`, `address`) and the core (192.0.2.1)."""
        assert self._core is not None
        core_device = f"n{next(self._links)}"
        _ip_batch(
            node.netns,
            [
                "link set lo up",
                self._veth(device, core_device, self._core),
                f"addr add {address} peer {CORE_ADDRESS} dev {device}",
                f"link set {device} up",
            ],
        )
        _ip_batch(
            self._core,
            [f"addr add {CORE_ADDRESS} peer {address} dev {core_device}", f"link set {core_device} up"],
        )
        _ip_batch(node.netns, [f"route add default via {CORE_ADDRESS} dev {device}"])
        _wait_operational([(node.netns, device), (self._core, core_device)])

    def _veth(self, device: str, peer: str, peer_netns: str) -> str:
        """The `ip link` command (for a batch in the namespace of `device`) making a veth pair whose ends
        have interface indexes unique in the testbed. The kernel brings a veth's carrier up at once when its
        index differs from its peer's, but up to a second later when the two (in different namespaces)
        happen to be equal, as they would be for two fresh namespaces' first devices."""
        index = next(self._ifindexes)
        return (
            f"link add {device} index {index} type veth peer name {peer} index {index + 1} netns {peer_netns}"
        )

    # -- building --------------------------------------------------------------------------------------

    def public_host(self, name: str) -> Node:
        """A namespace on the internet with a public address (198.51.100.10, .11, ...)."""
        if self._public_hosts >= 255 - FIRST_PUBLIC:
            raise TestbedError("no public address left")
        address = f"{PUBLIC_HOST_NET}{FIRST_PUBLIC + self._public_hosts}"
        self._public_hosts += 1
        node: Node = self._new_node(name, Node, forward=False)
        self._link_to_core(node, "eth0", address)
        node.addresses[4].append(address)
        return node

    def home(self, name: str, nat: Nat = "eim", *, inbound: Inbound = "drop") -> Home:
        """A home router (203.0.113.10, .11, ... on the internet; LAN 192.168.N.0/24) doing NAT for its
        LAN and dropping unsolicited inbound traffic; `nat` and `inbound` are explained in the module
        docstring. Add players with `.host(name)`."""
        if nat not in ("eim", "random"):
            raise ValueError(f"nat must be 'eim' or 'random', not {nat!r}")
        if inbound not in ("drop", "track"):
            raise ValueError(f"inbound must be 'drop' or 'track', not {inbound!r}")
        if self._homes >= 255 - FIRST_PUBLIC:
            raise TestbedError("no public address left")
        index = self._homes + 1
        address = f"{ROUTER_NET}{FIRST_PUBLIC + self._homes}"
        self._homes += 1
        router: Home = self._new_node(name, Home, forward=True, index=index, nat=nat, inbound=inbound)
        # The firewall first, so no packet ever reaches the router unfiltered.
        _run(["ip", "netns", "exec", router.netns, "nft", "-f", "-"], input=_router_ruleset(nat, inbound))
        self._link_to_core(router, "wan", address)
        _ip_batch(
            router.netns,
            [
                "link add lan type bridge forward_delay 0",
                f"addr add {router.lan_address}/24 dev lan",
                "link set lan up",
            ],
        )
        router.addresses[4].extend([address, router.lan_address])
        return router

    def ipv6_link(self, a: Union[Node, str], b: Union[Node, str]) -> Tuple[Node, Node]:
        """Two namespaces on one link with only IPv6 addresses (2001:db8:0:K::1/64 and ::2, no duplicate
        address detection, so usable at once). A name makes a new namespace; a Node adds a link to it."""
        reason = ipv6_unavailable()
        if reason:
            raise TestbedError(reason)
        link = next(self._links)
        device = f"v6l{link}"
        nodes = [self._new_node(x, Node, forward=False) if isinstance(x, str) else x for x in (a, b)]
        if nodes[0] is nodes[1]:
            raise ValueError("an IPv6 link needs two different nodes")
        first, second = nodes
        _ip_batch(
            first.netns,
            ["link set lo up", self._veth(device, device, second.netns)],
        )
        for number, node in enumerate(nodes, 1):
            address = str(ipaddress.IPv6Address(f"2001:db8:0:{link:x}::{number}"))
            _ip_batch(
                node.netns,
                ["link set lo up", f"addr add {address}/64 dev {device} nodad", f"link set {device} up"],
            )
            node.addresses[6].append(address)
        _wait_operational([(node.netns, device) for node in nodes])
        return first, second

    def address_of(self, node: Node, family: int = 4) -> str:
        """`node`'s main address: a public host's or router's public one, a LAN host's LAN one."""
        return node.address(family)


@functools.cache
def testbed_unavailable() -> Optional[str]:
    """Why the testbed cannot run here (a sentence for pytest.skip), or None when it can. Checked once per
    process: Linux, root, `ip` and `nft` installed, and a probe namespace with a veth pair, a bridge and a
    home router's nftables rules created (and deleted again)."""
    if not sys.platform.startswith("linux"):
        return f"the network-namespace testbed needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return (
            f"the network-namespace testbed needs root (network namespaces, nftables); uid is {os.geteuid()}"
        )
    if shutil.which("ip") is None:
        return "the network-namespace testbed needs `ip` (apt-get install iproute2)"
    if shutil.which("nft") is None:
        return "the network-namespace testbed needs `nft` (apt-get install nftables)"
    probe = Testbed(prefix="pgprobe")
    try:
        router = probe.home("r", "random", inbound="track")
        router.host("h")
        router.run(["true"])
    except (TestbedError, OSError, subprocess.SubprocessError) as exc:
        return f"network namespaces are not usable here: {exc}"
    finally:
        probe.close()
    return None


testbed_unavailable.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test when imported


@functools.cache
def ipv6_unavailable() -> Optional[str]:
    """Why IPv6 links cannot be made here (a sentence for pytest.skip), or None."""
    if not os.path.isdir("/proc/sys/net/ipv6"):
        return "the kernel has no IPv6 (no /proc/sys/net/ipv6)"
    return None


def sweep_stale_namespaces(prefixes: Sequence[str] = (DEFAULT_PREFIX, "pgprobe")) -> List[str]:
    """Delete namespaces left by testbeds whose process is gone (killed with SIGKILL, so no cleanup ran):
    those named `<prefix><pid>-...` whose pid no longer runs. Returns the names deleted."""
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []
    stale = []
    for name in names:
        for prefix in prefixes:
            match = re.fullmatch(rf"{re.escape(prefix)}(\d+)-\d+-.+", name)
            if match and not _alive(int(match.group(1))):
                stale.append(name)
    if stale:
        logger.info("deleting stale testbed namespaces %s", stale)
        leftovers = _Resources()
        leftovers.netns = stale
        _release(leftovers, KILL_TIMEOUT)
    return stale
