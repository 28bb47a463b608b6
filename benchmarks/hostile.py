"""Benchmark pygase under hostile traffic: how much garbage a server absorbs, and its memory over time.

Every process here talks to 127.0.0.1 only. The backend (`pygase.Backend`, 50 Hz, interval 0.02 s) runs in
its own process, bound to port 0; its state holds 20 entities that all move every tick (plus `tick` and a
`players` dict set by events). Honest clients run in other processes and use only the public
`pygase.Client` API (`connect_in_thread`, `wait_until`, `dispatch_event`, `disconnect`) and the counters
of `client.connection`. Each child process answers requests from this one over a multiprocessing pipe.

Figures, one line each, then a summary block:

1. garbage absorbed: 10 honest clients (in one process) count the state updates they apply
   (`client.connection.updates_received`). Their mean rate is first measured without an attack (the
   reference), then while 2 attacker processes send garbage datagrams to the server's port at a
   controlled total rate, stepped up (2k, 5k, 10k, 20k, 40k, 80k, 160k datagrams/s) until the attackers
   cannot send as fast as asked (less than 90 % of the target) or the server falls over. Each step lasts
   a window (5 s) and prints the rate actually sent, the honest clients' mean (and lowest) update rate in
   % of the reference, how many of them are throttled (connection quality 'bad'), the server's CPU (utime
   + stime of the backend process from /proc/<pid>/stat, in % of one core), the attackers' CPU, the CPU
   used by other programs, and the datagrams the kernel dropped at the server socket (its receive buffer
   was full; from /proc/net/udp). A step that misses 90 % is measured once more; both runs are printed
   and the better one counts, since other programs on the machine can only lower the rate. The figure
   is the highest rate actually sent at which the honest clients kept >= 90 % of their update rate (if a
   lower step missed, the line says so and names the highest rate up to which every step passed). The
   attackers send from their own sockets a fixed mix, built like the `attack` function of
   tests/test_hostile_input.py, from a pool of pre-built datagrams (so that building them does not limit
   the rate):
   25 % the protocol id and random bytes; 10 % handshake prefix, random kind and 95 random bytes (as in
   the test: the wrong length); 10 % well-formed HELLOs with random nonces (the server answers each with
   a cookie, its most expensive reply); 5 % well-formed RESPONSEs with random cookies; 15 % replays of
   datagrams captured from the honest clients (their handshake RESPONSEs and real packages; half of them
   with one byte flipped); 15 % forged shutdown packages with random host tokens; 15 % forged `COUNT`
   event packages; 5 % random bytes. Afterwards the backend process reports whether the server is still
   up (bound, game loop ticking), `len(server.connections)` (must be the 10 honest clients), whether any
   connection comes from an attacker's address (must not) and how many forged `COUNT` events its handler
   saw (must be 0: the honest clients send none).
2. memory over time: a fresh backend with 50 clients (25 in each of 2 processes), every client sending a
   `MOVE` event about every 0.5 s with `retries=3` (its handler writes `players[port]`), the state
   changing every tick. The backend's RSS (VmRSS from /proc/<pid>/status) is sampled when all clients
   have joined and then every 30 s for `--minutes` minutes (default 5; `--quick`: 20 s, every 5 s);
   prints start, end, max, growth and the slope of a least-squares line through the samples. Each sample
   line also shows the backend's number of Python objects tracked by the garbage collector (which tells
   a Python-level leak from allocator noise), the clients' mean update rate and how many of their
   connections are throttled (quality 'bad'); the end shows how many events were dispatched, handled
   and acknowledged.

After each part a line lists the warnings pygase logged in the child processes (counted by a logging
handler in each); those that mean a fault inside pygase (a state that does not decode, say) are reported
as problems in the summary. The first line names the pygase source measured (its location, always the
repository this script lives in, and a hash of its files); processes that started with different
source (someone edited pygase during the run) are reported as a problem.

Run (from the repository root; the full run takes about 7 minutes, --quick about 1):

    python benchmarks/hostile.py
    python benchmarks/hostile.py --quick
    python benchmarks/hostile.py --only garbage
    python benchmarks/hostile.py --only memory --minutes 10
    python benchmarks/hostile.py --log-file /tmp/pygase.log   # pygase's INFO messages too, for diagnosis

Every child process is shut down at the end, on errors, on Ctrl-C and on SIGTERM too; every client
disconnects before its process exits. Logging stays at WARNING. The machine's load average and the CPU
used by other programs during each window are printed, since this benchmark shares its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import multiprocessing
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from _children import Child, ChildError, progress

HOST = "127.0.0.1"
INTERVAL = 0.02  # 50 Hz game loop
ENTITIES = 20
HONEST_CLIENTS = 10
MEMORY_CLIENTS = 50
CLIENT_PROCESSES = 2  # for the memory part
ATTACKERS = 2
RATES = (2_000, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000)
QUICK_RATES = (2_000, 10_000)
KEEP = 0.90  # share of the update rate the honest clients must keep
CAN_SEND = 0.90  # an attacker that sends less than this share of its target rate is at its limit
EVENT_PERIOD = 0.5  # seconds between two events of one client in the memory part
EVENT_RETRIES = 3  # the memory part's events are resent up to this often if lost
POOL_SIZE = 4096
CONNECT_TIMEOUT = 30.0
#: pygase warnings that mean something went wrong inside pygase, not just a lost event on a busy machine
FAULTS = ("does not decode", "could not be handled", "error in", "with an error")
SIMULATE_VARIABLE = "PYGASE_SIMULATE"  # pygase's link simulator switch: always off here

_CLK_TCK = os.sysconf("SC_CLK_TCK")

# Measure the pygase next to this script, whatever else the environment has installed (the spawned child
# processes inherit sys.path).
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPOSITORY not in sys.path:
    sys.path.insert(0, _REPOSITORY)
_LOG_FORMAT = "%(asctime)s %(processName)s %(name)s %(levelname)s: %(message)s"


# ---- helpers for every process ---------------------------------------------------------------------------


_warnings: dict = {}  # in a child: pygase's warnings so far, by message template -> [count, an example]


def _child_setup(log_file: Optional[str] = None) -> None:
    import logging

    class CountWarnings(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            entry = _warnings.setdefault(str(record.msg), [0, ""])
            entry[0] += 1
            if not entry[1]:
                entry[1] = record.getMessage()[:200]

    os.environ.pop(SIMULATE_VARIABLE, None)
    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    counter = CountWarnings(logging.WARNING)
    counter.addFilter(lambda record: record.name.startswith("pygase"))
    logging.getLogger().addHandler(counter)
    if log_file:  # pygase's INFO messages (connections, timeouts, throttling) to a file, for diagnosis
        logging.getLogger().handlers[0].setLevel(logging.WARNING)  # the console stays at WARNING
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        logging.getLogger("pygase").setLevel(logging.INFO)
        logging.getLogger().addHandler(handler)


def _serve(conn: Any, handlers: dict, cleanup: Callable[[], None]) -> None:
    """Answer requests `(command, kwargs)` with `("ok", result)` or `("error", traceback)` until told to quit
    or until the parent's end of the pipe closes; clean up in any case."""
    try:
        while True:
            try:
                command, arguments = conn.recv()
            except (EOFError, OSError):
                return
            if command == "quit":
                cleanup()
                conn.send(("ok", None))
                return
            try:
                if command == "warnings":  # every child answers this one
                    result = {template: tuple(entry) for template, entry in _warnings.items()}
                else:
                    result = handlers[command](**arguments)
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", result))
    finally:
        cleanup()


# ---- the backend process ---------------------------------------------------------------------------------


def backend_main(conn: Any, interval: float, log_file: Optional[str] = None) -> None:
    _child_setup(log_file)
    from pygase import Backend, GameState

    clock = [0.0]
    ticks = [0]
    counted: dict = {}  # address -> COUNT events handled (only attackers could send them in part 1)
    moves = [0]

    def time_step(game_state: Any, dt: float) -> dict:
        ticks[0] += 1
        clock[0] += dt
        t = clock[0]
        return {
            "tick": game_state.tick + 1,
            "entities": {
                i: {
                    "x": round(100.0 * math.cos(t * (0.2 + 0.05 * i)), 2),
                    "y": round(100.0 * math.sin(t * (0.2 + 0.05 * i)), 2),
                }
                for i in range(ENTITIES)
            },
        }

    def on_count(*args: Any, client_address: Any = None, **kwargs: Any) -> dict:
        counted[client_address] = counted.get(client_address, 0) + 1
        return {}

    def on_move(x: float, y: float, client_address: Any = None, **kwargs: Any) -> dict:
        moves[0] += 1
        return {"players": {int(client_address[1]): {"x": x, "y": y, "n": moves[0]}}}

    initial = GameState(
        tick=0,
        entities={i: {"x": 0.0, "y": 0.0} for i in range(ENTITIES)},
        players={},
    )
    backend = Backend(initial, time_step, {"COUNT": on_count, "MOVE": on_move})
    thread = backend.run_in_thread(HOST, 0, interval=interval)
    done = [False]

    def status(objects: bool = False) -> dict:
        server = backend.server
        addresses = list(server.connections)
        return {
            "up": server.port is not None and thread.is_alive(),
            "port": server.port,
            "connections": len(addresses),
            "ports": sorted(int(a[1]) for a in addresses),
            "hosts": sorted({a[0] for a in addresses}),
            "ticks": ticks[0],
            "counted": {f"{a[0]}:{a[1]}": n for a, n in list(counted.items())},
            "moves": moves[0],
            "objects": len(gc.get_objects()) if objects else None,
        }

    def cleanup() -> None:
        if done[0]:
            return
        done[0] = True
        backend.shutdown()
        thread.join(timeout=5.0)

    _serve(conn, {"status": status}, cleanup)


# ---- the honest clients' process -------------------------------------------------------------------------


def clients_main(conn: Any, port: int, n: int, seed: int, log_file: Optional[str] = None) -> None:
    _child_setup(log_file)
    from pygase import Client
    from pygase.connection import ConnectionStatus

    connected = ConnectionStatus.get("Connected")
    disconnected = ConnectionStatus.get("Disconnected")
    clients = [Client() for _ in range(n)]
    rng = random.Random(seed)
    stop_events = threading.Event()
    event_thread: list = []
    tally = {"dispatched": 0, "acked": 0}
    tally_lock = threading.Lock()
    done = [False]

    def connect() -> float:
        started = time.perf_counter()
        for client in clients:
            client.connect_in_thread(port, HOST)
        for client in clients:
            client.wait_until(lambda state: state.tick > 0, timeout=CONNECT_TIMEOUT)
        return time.perf_counter() - started

    def counts() -> dict:
        connections = [c.connection for c in clients if c.connection is not None]
        return {
            "time": time.monotonic(),
            "updates": [c.connection.updates_received if c.connection else 0 for c in clients],
            "connected": sum(1 for c in connections if c.status == connected),
            # the connection's congestion avoidance: 'bad' means at most 10 packages/s each way
            "throttled": sum(1 for c in connections if c.status == connected and c.quality == "bad"),
            "latency": max((c.latency for c in connections), default=0.0),
        }

    def capture(seconds: float = 0.3, per_client: int = 4) -> list:
        """Datagrams the first clients really sent (RESPONSEs of their handshakes and packages).

        Like tests/test_hostile_input.py this reaches into the connection and the transport: a real
        attacker would capture the same bytes off the wire.
        """
        captured: list = []
        patched = []
        for client in clients[:3]:
            connection = client.connection
            if connection is None:
                continue
            captured.append(connection._handshake_datagram())  # the RESPONSE, valid for its address only
            protocol = client._protocol
            transport = protocol.transport if protocol is not None else None
            if transport is None:
                continue
            original = transport.sendto
            taken: list = []

            def record(data: bytes, *args: Any, _taken: list = taken, _original: Any = original) -> None:
                if len(_taken) < per_client:
                    _taken.append(bytes(data))
                _original(data, *args)

            transport.sendto = record
            patched.append((transport, taken))
        time.sleep(seconds)
        for transport, taken in patched:
            del transport.sendto  # back to the class's method
            captured.extend(taken)
        return captured

    def event_loop(period: float) -> None:
        # Every client sends MOVE about every `period` seconds, at its own phase.
        now = time.monotonic()
        due = [now + rng.uniform(0, period) for _ in clients]
        while not stop_events.is_set():
            now = time.monotonic()
            for index, client in enumerate(clients):
                if now < due[index]:
                    continue
                due[index] = max(due[index] + period, now)
                if client.connection is None or client.connection.status == disconnected:
                    continue  # gone for good (a Client does not reconnect by itself)
                try:
                    client.dispatch_event(
                        "MOVE",
                        x=round(rng.uniform(-100, 100), 2),
                        y=round(rng.uniform(-100, 100), 2),
                        retries=EVENT_RETRIES,
                        ack_callback=acked,
                    )
                except RuntimeError:
                    continue
                with tally_lock:
                    tally["dispatched"] += 1
            stop_events.wait(0.01)

    def acked() -> None:
        with tally_lock:
            tally["acked"] += 1

    def start_events(period: float) -> None:
        stop_events.clear()
        worker = threading.Thread(target=event_loop, args=(period,), name="events", daemon=True)
        worker.start()
        event_thread.append(worker)

    def stop() -> dict:
        stop_events.set()
        for worker in event_thread:
            worker.join(timeout=5.0)
        event_thread.clear()
        with tally_lock:
            return dict(tally)

    def cleanup() -> None:
        if done[0]:
            return
        done[0] = True
        stop()

        def leave(client: Any) -> None:
            try:
                client.disconnect()
            except Exception:
                traceback.print_exc()

        # All at once: each disconnect waits for the server's acknowledgement.
        leaving = [threading.Thread(target=leave, args=(client,), daemon=True) for client in clients]
        for thread in leaving:
            thread.start()
        for thread in leaving:
            thread.join(timeout=10.0)

    handlers = {
        "connect": connect,
        "counts": counts,
        "capture": capture,
        "start_events": start_events,
        "stop_events": stop,
    }
    _serve(conn, handlers, cleanup)


# ---- the attacker processes ------------------------------------------------------------------------------


def forged_package(rng: random.Random, *events: Any) -> bytes:
    """A well-formed client package, as an attacker who knows the protocol would write it (as in the test)."""
    from pygase.connection import ClientPackage, Header

    header = Header(
        rng.randrange(1, 65536), rng.randrange(0, 65536), "".join(rng.choice("01") for _ in range(32))
    )
    return ClientPackage(header, rng.randrange(0, 65536), list(events)).to_datagram()


def garbage_pool(rng: random.Random, replays: list, size: int) -> list:
    """`size` datagrams of the mix described in the module docstring, shuffled."""
    from pygase import _handshake as handshake
    from pygase.connection import PROTOCOL_ID
    from pygase.event import Event

    pool = []
    for _ in range(size):
        choice = rng.random()
        if choice < 0.25:  # right protocol id, random rest
            payload = PROTOCOL_ID + rng.randbytes(rng.randrange(0, 300))
        elif choice < 0.35:  # handshake messages with random content (as in the test)
            payload = handshake.HANDSHAKE_PREFIX + bytes([rng.choice(b"HCRWX")]) + rng.randbytes(95)
        elif choice < 0.45:  # well-formed HELLOs: the server computes a cookie and answers each
            payload = handshake.hello(rng.randbytes(8))
        elif choice < 0.50:  # well-formed RESPONSEs with guessed cookies
            window = handshake.window_at(time.monotonic()) + rng.choice((-1, 0))
            payload = handshake.response(rng.randbytes(8), window, rng.randbytes(16), bytes(32))
        elif choice < 0.65 and replays:  # replayed and mutated real datagrams
            data = bytearray(rng.choice(replays))
            if rng.random() < 0.5 and len(data) > 4:
                data[rng.randrange(4, len(data))] ^= 0xFF
            payload = bytes(data)
        elif choice < 0.80:  # forged shutdowns with guessed tokens
            payload = forged_package(rng, Event("pygase:shutdown", rng.randbytes(16)))
        elif choice < 0.95:  # forged game events
            payload = forged_package(rng, Event("COUNT", 10**6))
        else:
            payload = rng.randbytes(rng.randrange(0, 200))
        pool.append(payload)
    return pool


def attacker_main(conn: Any, port: int, seed: int, replays: list) -> None:
    _child_setup()
    rng = random.Random(seed)
    pool = garbage_pool(rng, replays, POOL_SIZE)
    mask = POOL_SIZE - 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server's replies are not read
    sock.bind((HOST, 0))
    target = (HOST, port)

    def address() -> tuple:
        return sock.getsockname()

    def attack(rate: float, seconds: float) -> dict:
        sendto = sock.sendto
        start = time.perf_counter()
        end = start + seconds
        sent = errors = index = 0
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            due = int(rate * (now - start)) - sent - errors
            if due <= 0:
                time.sleep(0.0005)
                continue
            for _ in range(min(due, 500)):
                try:
                    sendto(pool[index & mask], target)
                    sent += 1
                except OSError:
                    errors += 1
                index += 1
        return {"sent": sent, "errors": errors, "seconds": time.perf_counter() - start}

    _serve(conn, {"address": address, "attack": attack}, sock.close)


# ---- the parent's side -----------------------------------------------------------------------------------


def pygase_fingerprint() -> str:
    """pygase's version, location and a short hash of its source files, to tell which code a run measured."""
    import hashlib

    import pygase

    digest = hashlib.sha1()
    package = os.path.dirname(os.path.abspath(pygase.__file__))
    try:
        for name in sorted(os.listdir(package)):
            if name.endswith(".py"):
                with open(os.path.join(package, name), "rb") as source:
                    digest.update(name.encode() + b"\0" + source.read())
    except OSError as error:
        return f"pygase {pygase.__version__} from {package} (source unreadable: {error})"
    return f"pygase {pygase.__version__} from {package} (source sha1 {digest.hexdigest()[:12]})"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time every process of the machine has used so far (all states but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def loadavg() -> str:
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped at the socket bound to `port` (full receive buffer), /proc/net/udp."""
    drops = 0
    try:
        with open("/proc/net/udp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) == port:
                    drops += int(fields[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return drops


class CpuWindow:
    """CPU use over a window in % of one core: some processes, and everything else on the machine."""

    def __init__(self, pids: dict) -> None:
        self.pids = pids
        self.start = time.perf_counter()
        self.before = self._sample()

    def _sample(self) -> dict:
        sample = {}
        for name, pids in self.pids.items():
            total = 0.0
            for pid in pids:
                with contextlib.suppress(OSError):  # the process is gone
                    total += cpu_seconds(pid)
            sample[name] = total
        sample["_me"] = cpu_seconds(os.getpid())
        sample["_machine"] = machine_busy_seconds()
        return sample

    def stop(self) -> dict:
        after = self._sample()
        elapsed = time.perf_counter() - self.start
        result = {name: 100.0 * (after[name] - self.before[name]) / elapsed for name in after}
        ours = sum(value for name, value in result.items() if name != "_machine")
        result["others"] = max(0.0, result["_machine"] - ours)
        return result


def mean(values: list) -> float:
    return sum(values) / len(values) if values else math.nan


def slope_per_minute(points: list) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return math.nan
    mx = mean([p[0] for p in points])
    my = mean([p[1] for p in points])
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return math.nan
    return 60.0 * sum((p[0] - mx) * (p[1] - my) for p in points) / var


@dataclass
class Settings:
    quick: bool
    minutes: float
    only: Optional[str]
    log_file: Optional[str] = None
    window: float = 5.0
    baseline: float = 5.0
    recovery: float = 2.0
    rates: tuple = RATES
    sample_every: float = 30.0


@dataclass
class Step:
    target: float
    sent_rate: float
    errors: int
    keep: float  # mean update rate in % of the reference
    lowest: float  # lowest client's rate in % of the reference
    connected: int
    throttled: int  # honest clients whose connection quality was 'bad' at the end of the window
    server_cpu: float
    attacker_cpu: float
    others: float
    drops: int
    load: str


@dataclass
class Results:
    lines: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    problems: list = field(default_factory=list)


class HostileBenchmark:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.children: list[Child] = []
        self.sources: set = set()
        self.results = Results()

    # -- processes

    def start(self, name: str, target: Any, *args: Any) -> Child:
        self.sources.add(pygase_fingerprint())  # the code this child imports
        child = Child(self.context, name, target, *args)
        self.children.append(child)
        return child

    def report_warnings(self, part: str, children: list) -> None:
        """Print pygase's warnings in the child processes of a part; flag those that mean a fault."""
        found: dict = {}
        for child in children:
            try:
                answer = child.request("warnings", timeout=30.0)
            except ChildError as error:
                progress(f"{child.name}: {error}")
                continue
            for template, (count, example) in answer.items():
                entry = found.setdefault(template, [0, example, []])
                entry[0] += count
                entry[2].append(child.name)
        if not found:
            line = f"  pygase warnings during the {part} part: none"
        else:
            line = f"  pygase warnings during the {part} part: " + "; ".join(
                f"{count} x '{example}' ({', '.join(names)})"
                for count, example, names in sorted(found.values(), key=lambda e: -e[0])
            )
        print(line, flush=True)
        self.results.lines.append(line)
        for count, example, names in found.values():
            if any(word in example for word in FAULTS):
                self.results.problems.append(
                    f"{part} part: pygase logged '{example}' {count} time(s) ({', '.join(names)})"
                )

    def close(self, *children: Child) -> None:
        for child in children or list(reversed(self.children)):
            if child in self.children:
                self.children.remove(child)
            child.close()

    def close_all(self) -> None:
        # clients and attackers first, the backend last
        order = sorted(self.children, key=lambda c: c.name.startswith("backend"))
        for child in order:
            self.close(child)

    def start_backend(self, name: str) -> tuple[Child, int]:
        backend = self.start(name, backend_main, INTERVAL, self.settings.log_file)
        status = backend.request("status", timeout=30.0)
        if not status["up"]:
            raise ChildError("the backend did not come up")
        return backend, int(status["port"])

    @staticmethod
    def rates(before: dict, after: dict) -> list:
        seconds = after["time"] - before["time"]
        return [(b - a) / seconds for a, b in zip(before["updates"], after["updates"])]

    # -- figure 1

    def run_garbage(self) -> None:
        s = self.settings
        progress("garbage: starting the backend and 10 honest clients")
        backend, port = self.start_backend("backend-garbage")
        honest = self.start("honest-clients", clients_main, port, HONEST_CLIENTS, 1, s.log_file)
        joined = honest.request("connect", timeout=CONNECT_TIMEOUT + 10)
        progress(f"garbage: {HONEST_CLIENTS} clients joined in {joined:.2f} s; reference window")
        time.sleep(1.0)
        pids = {"server": [backend.pid], "honest": [honest.pid]}
        cpu = CpuWindow(pids)
        before = honest.request("counts")
        time.sleep(s.baseline)
        after = honest.request("counts")
        usage = cpu.stop()
        reference_rates = self.rates(before, after)
        reference = mean(reference_rates)
        load = loadavg()
        self.results.lines.append(
            f"no attack: honest clients apply {reference:.1f} updates/s each (lowest "
            f"{min(reference_rates):.1f}); server CPU {usage['server']:.0f} %, other programs "
            f"{usage['others']:.0f} %, load average {load}"
        )
        print(self.results.lines[-1], flush=True)
        if not reference > 0:
            raise ChildError("the honest clients received no updates without an attack")

        replays = honest.request("capture")
        attackers = [
            self.start(f"attacker-{i}", attacker_main, port, 1000 + i, replays) for i in range(ATTACKERS)
        ]
        attacker_ports = {int(a.request("address", timeout=60.0)[1]) for a in attackers}
        pids["attackers"] = [a.pid for a in attackers]
        progress(f"garbage: {len(replays)} captured datagrams to replay; attacking")

        steps: list[Step] = []
        fell_over = False
        limit_reached = False
        for target in s.rates:
            step = self.attack_step(target, honest, attackers, pids, port, reference)
            if step.keep < 100.0 * KEEP and step.sent_rate >= CAN_SEND * target:
                # Other programs share the cores: measure a missed step once more and keep the better run.
                time.sleep(s.recovery)
                again = self.attack_step(target, honest, attackers, pids, port, reference, repeat=True)
                step = max(step, again, key=lambda st: st.keep)
            steps.append(step)
            status = backend.request("status", timeout=30.0)
            if not status["up"]:
                fell_over = True
                self.results.problems.append(f"the server went down during the {target:,}/s step")
                break
            if step.sent_rate < CAN_SEND * target:
                limit_reached = True
                break
            time.sleep(s.recovery)  # let the server drain its queue before the next step

        time.sleep(s.recovery)
        ticks_before = backend.request("status")["ticks"]
        time.sleep(0.5)
        status = backend.request("status")
        ticking = status["ticks"] > ticks_before
        final = honest.request("counts")
        intruders = sorted(set(status["ports"]) & attacker_ports)
        foreign_hosts = [h for h in status["hosts"] if h != HOST]
        forged_events = sum(status["counted"].values())

        passing = [st for st in steps if st.keep >= 100.0 * KEEP]
        failing = [st for st in steps if st.keep < 100.0 * KEEP]
        if passing:
            best = max(passing, key=lambda st: st.sent_rate)
            figure = (
                f"garbage absorbed: {best.sent_rate:,.0f} datagrams/s (asked {best.target:,.0f}/s) with the "
                f"honest clients at {best.keep:.1f} % of their {reference:.1f} updates/s "
                f"(>= {100 * KEEP:.0f} % needed); server CPU {best.server_cpu:.0f} % of one core"
            )
            below = [st for st in failing if st.sent_rate < best.sent_rate]
            if below:
                steady = [st for st in passing if st.sent_rate < min(x.sent_rate for x in below)]
                figure += (
                    f" (but {', '.join(f'{st.sent_rate:,.0f}/s' for st in below)} missed {100 * KEEP:.0f} %"
                    + (
                        f"; every step up to {max(x.sent_rate for x in steady):,.0f}/s passed"
                        if steady
                        else ""
                    )
                    + ")"
                )
        else:
            figure = (
                f"garbage absorbed: less than {steps[0].sent_rate:,.0f} datagrams/s (the first step already "
                f"cut the honest clients to {steps[0].keep:.1f} %)"
            )
        if limit_reached:
            last = steps[-1]
            figure += (
                f"; the attackers could send no more than {last.sent_rate:,.0f}/s "
                f"(asked {last.target:,.0f}/s)"
            )
        elif not fell_over:
            figure += f"; the highest step tried was {steps[-1].sent_rate:,.0f}/s"
        print(figure, flush=True)
        self.results.lines.append(figure)

        server_ok = status["up"] and ticking and not fell_over
        check = (
            f"after the attack: server {'up and ticking' if server_ok else 'DOWN or not ticking'}, "
            f"len(server.connections) = {status['connections']} (honest clients connected: "
            f"{final['connected']}/{HONEST_CLIENTS}), attacker addresses among them: {len(intruders)}, "
            f"forged COUNT events handled: {forged_events}"
        )
        print(check, flush=True)
        self.results.lines.append(check)
        self.results.summary.append(figure)
        self.results.summary.append(check)
        if not server_ok:
            self.results.problems.append("the server is not up (or its game loop stopped) after the attack")
        if intruders or foreign_hosts or status["connections"] != HONEST_CLIENTS:
            self.results.problems.append(
                f"server connections after the attack: {status['connections']} (ports {status['ports']}, "
                f"attacker ports {sorted(attacker_ports)})"
            )
        if forged_events:
            self.results.problems.append(f"forged COUNT events were handled: {status['counted']}")
        if final["connected"] != HONEST_CLIENTS:
            self.results.problems.append(
                f"only {final['connected']}/{HONEST_CLIENTS} honest clients are connected after the attack"
            )
        self.report_warnings("garbage", [backend, honest, *attackers])
        self.close(*attackers, honest, backend)

    def attack_step(
        self,
        target: float,
        honest: Child,
        attackers: list,
        pids: dict,
        port: int,
        reference: float,
        repeat: bool = False,
    ) -> Step:
        """Attack at `target` datagrams/s in total for a window; measure the honest clients meanwhile."""
        s = self.settings
        ramp = 0.5
        for attacker in attackers:
            attacker.send("attack", rate=target / len(attackers), seconds=ramp + s.window + 0.2)
        time.sleep(ramp)
        drops_before = udp_drops(port)
        cpu = CpuWindow(pids)
        before = honest.request("counts")
        time.sleep(s.window)
        after = honest.request("counts")
        usage = cpu.stop()
        drops = udp_drops(port) - drops_before
        sent = [a.receive(timeout=s.window + 30.0) for a in attackers]
        sent_rate = sum(r["sent"] / r["seconds"] for r in sent)
        rates = self.rates(before, after)
        step = Step(
            target=target,
            sent_rate=sent_rate,
            errors=sum(r["errors"] for r in sent),
            keep=100.0 * mean(rates) / reference,
            lowest=100.0 * min(rates) / reference,
            connected=after["connected"],
            throttled=after["throttled"],
            server_cpu=usage["server"],
            attacker_cpu=usage["attackers"],
            others=usage["others"],
            drops=drops,
            load=loadavg(),
        )
        line = (
            f"  garbage {target:>6,.0f}/s asked, {sent_rate:>8,.0f}/s sent"
            + (" (again)" if repeat else "")
            + (f" ({step.errors} send errors)" if step.errors else "")
            + f": honest updates {step.keep:5.1f} % of reference (lowest client {step.lowest:5.1f} %,"
            f" {step.connected}/{HONEST_CLIENTS} connected, {step.throttled} throttled);"
            f" server CPU {step.server_cpu:3.0f} %,"
            f" attackers {step.attacker_cpu:3.0f} %, other programs {step.others:3.0f} %;"
            f" kernel drops at the server socket {step.drops:,}; load {step.load}"
        )
        print(line, flush=True)
        self.results.lines.append(line)
        return step

    # -- figure 2

    def run_memory(self) -> None:
        s = self.settings
        duration = 20.0 if s.quick else 60.0 * s.minutes
        every = 5.0 if s.quick else s.sample_every
        progress(f"memory: starting the backend and {MEMORY_CLIENTS} clients in {CLIENT_PROCESSES} processes")
        backend, port = self.start_backend("backend-memory")
        share = [MEMORY_CLIENTS // CLIENT_PROCESSES] * CLIENT_PROCESSES
        share[0] += MEMORY_CLIENTS - sum(share)
        workers = [
            self.start(f"clients-{i}", clients_main, port, n, 10 + i, s.log_file) for i, n in enumerate(share)
        ]
        for worker in workers:
            worker.send("connect")
        joined = [worker.receive(timeout=CONNECT_TIMEOUT + 20) for worker in workers]
        status = backend.request("status")
        progress(
            f"memory: {status['connections']} clients joined in {max(joined):.1f} s; events every "
            f"{EVENT_PERIOD} s each; sampling for {duration:.0f} s"
        )
        if status["connections"] != MEMORY_CLIENTS:
            self.results.problems.append(
                f"memory part: {status['connections']}/{MEMORY_CLIENTS} clients joined the server"
            )
        for worker in workers:
            worker.request("start_events", period=EVENT_PERIOD)
        pids = {"server": [backend.pid], "clients": [w.pid for w in workers]}
        started = time.monotonic()
        cpu = CpuWindow(pids)
        drops_before = udp_drops(port)
        samples: list[tuple[float, int, int]] = []
        update_rates: list[float] = []
        last = {"ticks": status["ticks"], "time": started, "counts": [w.request("counts") for w in workers]}

        def sample() -> None:
            now = time.monotonic()
            rss = rss_kb(backend.pid)
            info = backend.request("status", objects=True)
            counts = [w.request("counts") for w in workers]
            seconds = now - last["time"]
            rate = ""
            if samples:
                per_client = [r for a, b in zip(last["counts"], counts) for r in self.rates(a, b)]
                update_rates.append(mean(per_client))
                rate = (
                    f", {(info['ticks'] - last['ticks']) / seconds:.1f} ticks/s, clients applied "
                    f"{mean(per_client):.1f} updates/s (lowest {min(per_client):.1f})"
                )
            last.update(ticks=info["ticks"], time=now, counts=counts)
            connected = sum(c["connected"] for c in counts)
            throttled = sum(c["throttled"] for c in counts)
            samples.append((now - started, rss, info["objects"]))
            line = (
                f"  t = {now - started:5.0f} s: backend RSS {rss / 1024:7.1f} MB, {info['objects']:,} "
                f"Python objects, {info['connections']} connections ({connected} clients connected, "
                f"{throttled} throttled), {info['moves']:,} MOVE events handled{rate}; load {loadavg()}"
            )
            print(line, flush=True)
            self.results.lines.append(line)

        sample()
        next_sample = started + every
        end = started + duration
        while True:
            now = time.monotonic()
            if now >= end - 0.5:
                break
            time.sleep(max(0.0, min(next_sample, end) - now))
            if time.monotonic() >= end - 0.5:
                break
            if time.monotonic() >= next_sample:
                sample()
                next_sample += every
        sample()
        usage = cpu.stop()
        drops = udp_drops(port) - drops_before
        tallies = [worker.request("stop_events", timeout=30.0) for worker in workers]
        dispatched = sum(t["dispatched"] for t in tallies)
        status = backend.request("status")
        acked = sum(worker.request("stop_events")["acked"] for worker in workers)
        for _ in range(20):  # events still on their way: wait until all are handled and acknowledged
            if status["moves"] >= dispatched and acked >= dispatched:
                break
            time.sleep(0.5)
            status = backend.request("status")
            acked = sum(worker.request("stop_events")["acked"] for worker in workers)

        rss = [kb for _, kb, _ in samples]
        start_kb, end_kb, max_kb = rss[0], rss[-1], max(rss)
        slope = slope_per_minute([(t, kb) for t, kb, _ in samples])
        # A leak keeps growing; a burst (many clients rejoining, say) leaves a step. The second half tells.
        half = [(t, kb) for t, kb, _ in samples if t >= samples[-1][0] / 2]
        late_slope = slope_per_minute(half)
        objects_growth = samples[-1][2] - samples[0][2]
        minutes = samples[-1][0] / 60.0
        figure = (
            f"memory over {minutes:.1f} min with {MEMORY_CLIENTS} clients: backend RSS start "
            f"{start_kb / 1024:.1f} MB, end {end_kb / 1024:.1f} MB, max {max_kb / 1024:.1f} MB, growth "
            f"{(end_kb - start_kb) / 1024:+.1f} MB ({100.0 * (end_kb - start_kb) / start_kb:+.1f} %); "
            f"trend {slope:+,.0f} kB/min ({late_slope:+,.0f} kB/min over the second half); Python objects "
            f"{objects_growth:+,}"
        )
        print(figure, flush=True)
        detail = (
            f"  events: {dispatched:,} dispatched, {status['moves']:,} handled, {acked:,} acknowledged; "
            f"clients applied {mean(update_rates):.1f} updates/s on average; "
            f"server CPU {usage['server']:.0f} %, client processes {usage['clients']:.0f} %, other programs "
            f"{usage['others']:.0f} %; kernel drops at the server socket {drops:,}; "
            f"{status['connections']} connections at the end"
        )
        print(detail, flush=True)
        self.results.lines.extend([figure, detail])
        self.results.summary.append(figure)
        if status["connections"] != MEMORY_CLIENTS:
            self.results.problems.append(
                f"memory part: {status['connections']}/{MEMORY_CLIENTS} connections at the end"
            )
        if dispatched and status["moves"] < 0.95 * dispatched:
            self.results.problems.append(
                f"memory part: only {status['moves']:,} of {dispatched:,} events were handled"
            )
        if start_kb and (end_kb - start_kb) > 0.10 * start_kb:
            steady = late_slope > 0.02 * start_kb  # still growing by 2 % of the start per minute
            self.results.problems.append(
                f"backend RSS grew {(end_kb - start_kb) / 1024:+.1f} MB "
                + (
                    f"and still grows ({late_slope:+,.0f} kB/min over the second half)"
                    if steady
                    else f"in a step, not steadily ({late_slope:+,.0f} kB/min over the second half)"
                )
            )
        self.report_warnings("memory", [backend, *workers])
        self.close(*workers, backend)

    # -- everything

    def run(self) -> int:
        s = self.settings
        started = time.perf_counter()
        parts = [s.only] if s.only else ["garbage", "memory"]
        fingerprint = pygase_fingerprint()
        if s.log_file:
            with open(s.log_file, "w"):
                pass  # the child processes append to it
        print(
            f"{fingerprint} hostile-traffic benchmark: backend at {1 / INTERVAL:g} Hz with {ENTITIES} moving "
            f"entities; "
            f"parts: {', '.join(parts)}{' (quick)' if s.quick else ''}; machine: {os.cpu_count()} cores, "
            f"load average {loadavg()} at the start",
            flush=True,
        )
        if os.environ.get(SIMULATE_VARIABLE):
            print(f"note: {SIMULATE_VARIABLE} is set; the benchmark processes ignore it", flush=True)
        failed = False
        try:
            if "garbage" in parts:
                self.run_garbage()
            if "memory" in parts:
                self.run_memory()
        except (KeyboardInterrupt, SystemExit):
            progress("interrupted: stopping every child process")
            raise
        except Exception:
            failed = True
            traceback.print_exc()
            self.results.problems.append("the benchmark stopped with an error (see above)")
        finally:
            self.close_all()
        self.sources.add(fingerprint)
        if len(self.sources) > 1:
            self.results.problems.append(
                "pygase's source changed during the run: processes started with different code: "
                + ", ".join(sorted(self.sources))
            )
        elif pygase_fingerprint() != fingerprint:
            print(
                f"note: pygase's source changed after the last process started (now {pygase_fingerprint()})"
            )
        print("summary:")
        for line in self.results.summary:
            print(f"  {line}")
        for problem in self.results.problems:
            print(f"  PROBLEM: {problem}")
        if not self.results.problems:
            print("  no problems seen")
        print(f"  load average at the end {loadavg()}; total time {time.perf_counter() - started:.0f} s")
        return 1 if failed or self.results.problems else 0


def parse_arguments(argv: Optional[list] = None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Benchmark pygase under hostile traffic (see the docstring of benchmarks/hostile.py)."
    )
    parser.add_argument("--quick", action="store_true", help="short windows (smoke run)")
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="duration of the memory part (default 5; --quick: 20 s)"
    )
    parser.add_argument("--only", choices=("garbage", "memory"), help="run only one of the two parts")
    parser.add_argument(
        "--log-file",
        help="also write pygase's INFO messages of the backend and client processes to this file",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes needs a positive number")
    log_file = os.path.abspath(args.log_file) if args.log_file else None
    settings = Settings(quick=args.quick, minutes=args.minutes, only=args.only, log_file=log_file)
    if args.quick:
        settings.window = 2.0
        settings.baseline = 2.0
        settings.recovery = 1.0
        settings.rates = QUICK_RATES
    return settings


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Optional[list] = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    return HostileBenchmark(parse_arguments(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
