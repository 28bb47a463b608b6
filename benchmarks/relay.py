"""What a relay (`python -m pygase.relay`) costs: memory per session, latency a channel adds, CPU per load.

Printed on stdout, one `name=value` a line (what it is doing goes to stderr):

- `relay_memory_bytes_per_session`: bytes a `RelayCore` holds per registration, with 10,000 of them
  (each from its own address, half of them public, with a typical info), measured in this process with
  tracemalloc;
- `relay_added_latency_us`: how much longer the median round trip of a 100-byte datagram is through a
  relay channel than straight between the same two sockets, on loopback; the relay is `python -m
  pygase.relay` in a process of its own (its channel rate cap lifted: the pings come back to back), both
  ends are in this one, so the figure is two passes through the relay, one each way;
- `relay_cpu_pct_per_1000_dps`: that relay process's CPU (% of one core, from /proc/PID/schedstat, or
  /proc/PID/stat) while a channel forwards 500 datagrams of 100 bytes a second each way for a few
  seconds, less what it uses idle over as long;
- `relay_forwarded_pct`: how much of that traffic arrived (a check that the load was real).

    python benchmarks/relay.py [--seconds 4] [--pings 2000]

Loopback only; the traffic loops are bounded; the relay process is ended even if the benchmark fails.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

# Measure the pygase next to this script, whatever else is installed (the relay process runs it too).
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPOSITORY not in sys.path:
    sys.path.insert(0, _REPOSITORY)

from pygase import _rendezvous as rv  # noqa: E402
from pygase._relay_core import RelayCore  # noqa: E402

LOOPBACK = "127.0.0.1"
SIZE = 100
INFO = {"game": "pong", "name": "a table", "players": 1, "max_players": 4, "password": False}


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def memory_per_session(sessions: int = 10_000) -> float:
    """Bytes per registration a RelayCore holds (with the per-source state each new source adds)."""
    secret, now = os.urandom(32), 1000.0
    tracemalloc.start()
    core = RelayCore(secret)
    requests = []
    for n in range(sessions):
        address = (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 40000 + n % 1000)
        nonce = n.to_bytes(8, "big")
        cookie = rv.make_cookie(secret, address, int(now // 10), nonce)
        private = ((f"192.168.{n >> 8 & 255}.{n & 255}", 40000),)
        requests.append(
            (rv.Register(nonce, cookie, public=n % 2 == 0, private=private, info=INFO).encode(), address)
        )
    after_requests = tracemalloc.get_traced_memory()[0]
    for datagram, address in requests:
        (reply,) = core.receive(datagram, address, now)
        assert isinstance(rv.parse(reply.datagram), rv.Registered)
    held = tracemalloc.get_traced_memory()[0] - after_requests
    tracemalloc.stop()
    assert core.counts()["sessions"] == sessions, core.counts()
    return held / sessions


class RelayProcess:
    """`python -m pygase.relay` on loopback in a process of its own."""

    def __init__(self) -> None:
        # No rate cap to speak of: the pings come back to back, far faster than a game sends.
        command = [sys.executable, "-m", "pygase.relay", "--host", LOOPBACK, "--port", "0"]
        command += ["--channel-rate", "1048576"]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=_REPOSITORY)
        line = self.process.stderr.readline() if self.process.stderr else ""
        if "listening on" not in line:
            self.close()
            raise RuntimeError(f"the relay did not start: {line!r}")
        self.port = int(line.split(" port ")[1].split()[0])

    def cpu_seconds(self) -> float:
        """The process's CPU time so far."""
        try:
            with open(f"/proc/{self.process.pid}/schedstat") as stat:
                return int(stat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(2.0)
    return sock


def _ask(sock: socket.socket, message_type: Any, to: tuple, **fields: Any) -> Any:
    nonce = os.urandom(8)
    sock.sendto(message_type(nonce=nonce, **fields).encode(), to)
    challenge = rv.parse(sock.recvfrom(4096)[0])
    sock.sendto(message_type(nonce=nonce, cookie=challenge.cookie, **fields).encode(), to)
    return rv.parse(sock.recvfrom(4096)[0])


def open_channel(port: int) -> tuple[socket.socket, tuple, socket.socket, tuple, list[socket.socket]]:
    """Register a host, look it up, open a channel; the two bound ends and where each sends."""
    relay = (LOOPBACK, port)
    game_host, player, host_end, player_end = sockets = [_udp() for _ in range(4)]
    registered = _ask(game_host, rv.Register, relay, info=INFO)
    peer = _ask(player, rv.Lookup, relay, code=registered.code)
    player.sendto(rv.ChannelRequest(peer.intro).encode(), relay)
    player_offer, host_offer = rv.parse(player.recvfrom(4096)[0]), rv.parse(game_host.recvfrom(4096)[0])
    for sock, offer in ((player_end, player_offer), (host_end, host_offer)):
        sock.sendto(rv.Bind(offer.token).encode(), (LOOPBACK, offer.port))
        assert rv.parse(sock.recvfrom(4096)[0]) == rv.Bound(offer.token)
    return player_end, (LOOPBACK, player_offer.port), host_end, (LOOPBACK, host_offer.port), sockets


def _round_trip(sender: socket.socket, to: tuple, echo: socket.socket, back: Any, payload: bytes) -> float:
    start = time.perf_counter()
    sender.sendto(payload, to)
    data, source = echo.recvfrom(4096)
    echo.sendto(data, back if back is not None else source)
    sender.recvfrom(4096)
    return time.perf_counter() - start


def added_latency(port: int, pings: int) -> float:
    """Median round trip through the channel less the median straight between the same sockets (µs)."""
    player_end, player_to, host_end, host_to, sockets = open_channel(port)
    try:
        payload = bytes(random.Random(1).randbytes(SIZE))
        relayed, direct = [], []
        for _ in range(pings):  # interleaved, so that both see the same machine
            relayed.append(_round_trip(player_end, player_to, host_end, host_to, payload))
            direct.append(_round_trip(player_end, host_end.getsockname(), host_end, None, payload))
        return (statistics.median(relayed) - statistics.median(direct)) * 1e6
    finally:
        for sock in sockets:
            sock.close()


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recvfrom(4096)
        except (BlockingIOError, InterruptedError):
            return count
        count += 1


def cpu_under_load(relay: RelayProcess, seconds: float, rate: int = 500) -> tuple[float, float]:
    """The relay's CPU (% of a core, less idle) while forwarding `rate` datagrams a second each way, and
    the share of them that arrived (%)."""
    player_end, player_to, host_end, host_to, sockets = open_channel(relay.port)
    try:
        for sock in (player_end, host_end):
            sock.setblocking(False)
        start_cpu, start = relay.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        idle = (relay.cpu_seconds() - start_cpu) / (time.perf_counter() - start)
        payload = bytes(SIZE)
        sent = received = 0
        start_cpu, start = relay.cpu_seconds(), time.perf_counter()
        while sent < rate * seconds:
            due = start + sent / rate
            while (now := time.perf_counter()) < due:
                received += _drain(player_end) + _drain(host_end)
                time.sleep(min(due - now, 0.0005))
            player_end.sendto(payload, player_to)
            host_end.sendto(payload, host_to)
            sent += 1
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            received += _drain(player_end) + _drain(host_end)
            time.sleep(0.005)
        busy = (relay.cpu_seconds() - start_cpu) / (time.perf_counter() - start)
        per_1000 = (busy - idle) * 100 * 1000 / (2 * rate)
        return per_1000, 100.0 * received / (2 * sent)
    finally:
        for sock in sockets:
            sock.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of load for the CPU figure")
    parser.add_argument("--pings", type=int, default=2000, help="round trips each way for the latency")
    args = parser.parse_args(argv)
    progress("memory: 10,000 registrations in a RelayCore")
    print(f"relay_memory_bytes_per_session={memory_per_session():.0f}", flush=True)
    relay = RelayProcess()
    try:
        progress(f"latency: {args.pings} round trips through a relay process and straight")
        print(f"relay_added_latency_us={added_latency(relay.port, args.pings):.0f}", flush=True)
        progress(f"CPU: idle, then 1000 datagrams a second through a channel, {args.seconds:.0f} s each")
        cpu, forwarded = cpu_under_load(relay, args.seconds)
        print(f"relay_cpu_pct_per_1000_dps={cpu:.1f}", flush=True)
        print(f"relay_forwarded_pct={forwarded:.1f}", flush=True)
    finally:
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
