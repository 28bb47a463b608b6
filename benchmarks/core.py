"""Benchmark pygase's core: event latency, idle server CPU, state datagram size and scaling to many clients.

Scenario: one `pygase.Backend` at the default 50 Hz (interval 0.02 s) whose state holds 20 entities that
all move every tick (`time_step` returns new x and y for every entity), plus a `SET_MARKER` event
handler: `SET_MARKER(value)` sets `marker`; `SET_MARKER(value, probe=p)` sets `markers[p]` (used when
several clients measure at once, so that they do not overwrite each other's values).

The backend runs in its own process, bound to 127.0.0.1 port 0 (the port is sent back to this process).
Clients run in other processes ("workers", up to `--workers` of them, by default one per core; the clients
of one worker share its network thread) and use only the public `pygase.Client` API:
`connect_in_thread`, `dispatch_event` (with `ack_callback`), `wait_until` / `access_game_state` and
`disconnect`; statistics come from the counters of `client.connection`.

Figures, each printed on one line next to its target:

1. event ack round trip: `dispatch_event("SET_MARKER", v, ack_callback=cb)` until `cb` runs; median and
   p95 over `--events` events spaced 20-30 ms apart (random phases relative to the 20 ms tick).
2. event-to-visible latency: `dispatch_event("SET_MARKER", v)` until the client's own game state shows
   `marker == v` (`client.wait_until`, woken on every state change); median, p95 and how many changes
   were not seen within 2 s.
3. idle server CPU: CPU time (utime + stime from /proc/<pid>/stat, all threads) of the backend process
   over a window, with 0 clients and with 1 idle connected client, in percent of one core. Beside it, the
   floor: the CPU of a process that runs only the same `time_step` at 50 Hz in a thread, without pygase
   (on a virtual machine each wake-up from idle costs a good share of that).
4. bytes per state datagram: UDP payload bytes the idle client received divided by the datagrams it
   received (`connection.bytes_received / connection.packages_received`, deltas over the window).
4b. the same for a scene whose `time_step` returns x, y, vx and vy for each of 20 bouncing entities every
   tick (vx and vy change only at the walls), as game code naturally does: one client of a backend in
   this process, at full precision and with `single_precision_floats=True`; then the line
   `bytes_per_state_datagram_4vals=<bytes>` (full precision). Also printed by `--store-only`.
5. for each N in `--clients`: server CPU over the window, state updates per second each client applied
   (`connection.updates_received`; mean and minimum over the clients) and event-to-visible latency
   measured by up to 5 of the clients (on their own `markers[p]`) while all N are connected. The probes
   dispatch about 10 events per second in total, whatever N; each of those events makes the server
   broadcast a state update at once, so update rates are somewhat above the 50 Hz tick rate.
   A second, indented line per N gives diagnostics: the backend's ticks per second, its connections with
   quality 'bad' (throttled), the CPU of the client worker processes and connect/disconnect times.
   All processes share the machine's cores: the server competes with its clients for CPU, which real
   clients on other machines would not do. More worker processes than cores (`--workers 4` on 2 cores)
   add that much more competition and make the server fall behind sooner.
5b. with `--reading`, figure 5 again for each N with clients that read their state as a game does: in
   each worker process one thread reads every client's `time_order` through `access_game_state()`,
   round-robin, 60 sweeps a second (sleeping the rest); the rate is the distinct time orders each client
   showed per second (compared with N=1 of the same kind), beside the same latency probes.

6. the game loop's work in the store per tick, measured in this process with the benchmark game's own
   `time_step` (20 entities): `time_step` reading the store's state, and `push_update` of its result
   (checking that every value arrives intact, then applying it to the store's read-only state), in µs
   per tick (median of 5 runs of 2,000 ticks). `--store-only` prints just this figure; it uses only the
   public API, so it also runs against older versions of pygase for comparison.
7. the cost of encryption: sealing and opening one 530-byte package (the state datagram of figure 4)
   with a session's keys, in µs per datagram (also printed by `--store-only`).

Run (from the repository root; takes under 3 minutes with the defaults):

    python benchmarks/core.py                  # full run: N = 1, 50, 100, 200
    python benchmarks/core.py --quick --clients 1,50    # smoke run
    python benchmarks/core.py --seconds 8 --events 300 --workers 4
    python benchmarks/core.py --store-only     # figures 6 to 8 and 4b, in this process, some 15 s

Only 127.0.0.1 is used. Every child process is shut down at the end, on errors and on Ctrl-C too; every
client disconnects before its worker exits.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional

from _children import Child, ChildError, progress

try:  # python -m benchmarks.core
    from benchmarks import _core_procs as procs
except ImportError:  # python benchmarks/core.py
    import _core_procs as procs  # type: ignore[no-redef]

INTERVAL = 0.02

# targets (from the issue)
ACK_MEDIAN_TARGET_MS = 12.0
VISIBLE_MEDIAN_TARGET_MS = 15.0
IDLE_CPU_TARGET = 1.0
IDLE_CLIENT_CPU_TARGET = 3.0
DATAGRAM_BYTES_TARGET = 600
DATAGRAM_4VALS_TARGET = 550
DATAGRAM_4VALS_SINGLE_TARGET = 400
#: Sweeps a second over every client's state in figure 5b (a game reads its state every frame).
READ_HZ = 60.0
SCALE_N = 200
SCALE_RATE_RATIO_TARGET = 0.8
SCALE_LATENCY_TARGET_MS = 200.0

PROBES = 5  # clients that measure latency during a figure 5 window
PROBE_EVENTS_PER_SECOND = 10.0  # in total over all probes
VISIBLE_TIMEOUT = 2.0  # a change not seen within this time counts as lost
ACK_TIMEOUT = 2.0
GAP = (0.020, 0.030)  # seconds between events of figures 1 and 2
SERVER_DRAIN_TIMEOUT = 8.0  # longer than pygase's 5 s connection timeout
FOREIGN_LOAD_WARNING = 20.0  # % of one core used by other processes during a window that spoils it

_CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- small helpers --------------------------------------------------------------------------------------


def store_tick_costs(ticks: int = 2000, runs: int = 5) -> tuple[float, float]:
    """Figure 6: (µs per tick in `time_step`, µs per tick in `push_update`), each the median over runs."""
    from pygase import GameStateStore, GameStateUpdate

    step_costs, push_costs = [], []
    for _ in range(runs):
        game = procs._Game()
        store = GameStateStore(game.initial_state())
        in_step = in_push = 0.0
        for _ in range(ticks):
            started = time.perf_counter()
            changes = game.time_step(store.get_game_state(), INTERVAL)
            stepped = time.perf_counter()
            store.push_update(GameStateUpdate(store.get_game_state().time_order + 1, **changes))
            in_step += stepped - started
            in_push += time.perf_counter() - stepped
        step_costs.append(1e6 * in_step / ticks)
        push_costs.append(1e6 * in_push / ticks)
    return statistics.median(step_costs), statistics.median(push_costs)


def sealing_costs(size: int = 530, rounds: int = 20000) -> tuple[float, float]:
    """Figure 7: (µs to seal, µs to open) one datagram of `size` bytes with a session's keys."""
    from pygase import _crypto

    sender = _crypto.Cipher(bytes(32), bytes(range(32)), bytes(8))
    receiver = _crypto.Cipher(bytes(range(32)), bytes(32), bytes(8))
    # A package: since sealed datagrams leave out the protocol id it starts with, packages are built
    # without it and sealed with `seal_rest`.
    if hasattr(sender, "seal_rest"):
        seal_one, payload = sender.seal_rest, bytes(size - 4)
    else:  # a pygase from before
        seal_one, payload = sender.seal, bytes(size)
    sealed = [seal_one(payload) for _ in range(rounds)]
    started = time.perf_counter()
    for _ in range(rounds):
        seal_one(payload)
    seal = 1e6 * (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for datagram in sealed:
        receiver.open(datagram)
    return seal, 1e6 * (time.perf_counter() - started) / rounds


def private_filter_costs(players: int = 50, ticks: int = 500, runs: int = 5) -> tuple[float, float]:
    """Figure 8: (µs per tick to encode what each of `players` clients lacks, with every player's hand
    shared; the same with the hands private, each player getting only its own), medians over runs.

    The scene: the figure-6 entities move every tick, and one player's hand (5 cards) changes each tick.
    """
    from pygase import GameStateStore, GameStateUpdate

    def run(private: bool) -> float:
        game = procs._Game()
        state = game.initial_state()
        state.hands = {pid: [pid, 1, 2, 3, 4] for pid in range(1, players + 1)}
        store = GameStateStore(state, private_attributes=["hands"] if private else ())
        spent = 0.0
        for tick in range(ticks):
            changes = game.time_step(store.get_game_state(), INTERVAL)
            changes["hands"] = {tick % players + 1: [tick, 1, 2, 3, 4]}
            before = store.get_game_state().time_order
            store.push_update(GameStateUpdate(before + 1, **changes))
            started = time.perf_counter()
            for pid in range(1, players + 1):  # every client is one tick behind, as at 50 Hz
                store._encoded_update_since(before, player_id=pid)
            spent += time.perf_counter() - started
        return 1e6 * spent / ticks

    shared = statistics.median(run(False) for _ in range(runs))
    private = statistics.median(run(True) for _ in range(runs))
    return shared, private


def print_store_tick_costs() -> None:
    step, push = store_tick_costs()
    print(
        f"6. game loop work in the store per tick ({procs.ENTITIES} moving entities): time_step reading the "
        f"state {step:.1f} µs, push_update (check + apply) {push:.1f} µs",
        flush=True,
    )
    try:
        seal, opened = sealing_costs()
    except ImportError:  # a pygase from before sealed datagrams
        return
    print(
        f"7. sealed datagrams (ChaCha20-Poly1305, 530-byte package): seal {seal:.1f} µs, "
        f"open {opened:.1f} µs per datagram",
        flush=True,
    )
    try:
        shared, private = private_filter_costs()
    except TypeError:  # a pygase from before private attributes
        return
    print(
        f"8. per-player filter, 50 players: encoding what each client lacks per tick {shared:.0f} µs with "
        f"all hands shared, {private:.0f} µs with each hand private to its player "
        f"(+{(private - shared) / 50:.1f} µs per client)",
        flush=True,
    )


class _Bouncing:
    """Figure 4b's scene: 20 entities bouncing in a box. `time_step` returns x, y, vx and vy of each every
    tick, as game code naturally does, although vx and vy change only when an entity hits a wall."""

    def __init__(self) -> None:
        self.entities = {
            i: {"x": 40.0 + 35 * i, "y": 30.0 + 25 * i, "vx": 60.0 + 7 * i, "vy": 45.0 - 5 * i}
            for i in range(procs.ENTITIES)
        }

    def initial_state(self) -> Any:
        from pygase import GameState

        return GameState(entities={i: dict(entity) for i, entity in self.entities.items()})

    def time_step(self, game_state: Any, dt: float) -> dict:
        for entity in self.entities.values():
            for axis, speed, size in (("x", "vx", 800.0), ("y", "vy", 600.0)):
                entity[axis] += entity[speed] * dt
                if not 0.0 <= entity[axis] <= size:
                    entity[speed] = -entity[speed]
        return {"entities": {i: dict(entity) for i, entity in self.entities.items()}}


def four_value_datagram_bytes(single_precision: bool, seconds: float = 3.0) -> float:
    """Figure 4b: UDP payload bytes per state datagram that one idle client receives from a backend whose
    `time_step` returns four values per entity (`_Bouncing`), in this process over 127.0.0.1."""
    from pygase import Backend, Client

    game = _Bouncing()
    backend = Backend(game.initial_state(), game.time_step, single_precision_floats=single_precision)
    backend.run_in_thread("127.0.0.1", 0)
    client = Client()
    try:
        client.connect_in_thread(port=backend.server.port, hostname="127.0.0.1")
        client.wait_until(lambda state: state.time_order > 25, timeout=10)
        connection = client.connection
        received, packages = connection.bytes_received, connection.packages_received
        time.sleep(seconds)
        received, packages = connection.bytes_received - received, connection.packages_received - packages
    finally:
        client.disconnect()
        backend.shutdown()
    return received / packages if packages else math.nan


def print_four_value_bytes() -> None:
    try:
        full, single = four_value_datagram_bytes(False), four_value_datagram_bytes(True)
    except TypeError:  # a pygase from before single-precision floats
        return
    ok = full <= DATAGRAM_4VALS_TARGET and single <= DATAGRAM_4VALS_SINGLE_TARGET
    print(
        f"[4b] bytes per state datagram, {procs.ENTITIES} entities returning x, y, vx, vy every tick (vx "
        f"and vy change only at the walls): {full:.1f} at full precision, {single:.1f} with "
        f"single_precision_floats=True   target: <= {DATAGRAM_4VALS_TARGET} and "
        f"<= {DATAGRAM_4VALS_SINGLE_TARGET}   {verdict(ok)}",
        flush=True,
    )
    print(f"bytes_per_state_datagram_4vals={full:.1f}", flush=True)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # fields from the 3rd on; the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine have used so far (every state but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _CLK_TCK


class CpuMeter:
    """CPU use over a window, in percent of one core: the given processes, and the whole machine.

    The benchmark's figures are only meaningful on an otherwise quiet machine; `others` (machine minus the
    benchmark's own processes) shows how much else ran at the same time.
    """

    def __init__(self, server_pid: int, worker_pids: list) -> None:
        self.server_pid = server_pid
        self.worker_pids = list(worker_pids)
        self.start = time.perf_counter()
        self.before = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        workers = sum(cpu_seconds(pid) for pid in self.worker_pids)
        return cpu_seconds(self.server_pid), workers, cpu_seconds(os.getpid()), machine_busy_seconds()

    def stop(self) -> dict:
        after = self._sample()
        elapsed = time.perf_counter() - self.start
        server, workers, parent, machine = (100.0 * (a - b) / elapsed for a, b in zip(after, self.before))
        return {
            "seconds": elapsed,
            "server": server,
            "workers": workers,
            "machine": machine,
            "others": max(0.0, machine - server - workers - parent),
        }


def udp_drops(server_port: int) -> tuple[int, int]:
    """Datagrams the kernel dropped for a full receive buffer: (server socket, sum over client sockets).

    Read from /proc/net/udp: the server socket is bound to `server_port`; client sockets are connected to
    it. Sockets that were closed in between are no longer counted.
    """
    server = clients = 0
    try:
        with open("/proc/net/udp") as table:
            next(table)
            for line in table:
                fields = line.split()
                local_port = int(fields[1].split(":")[1], 16)
                remote_port = int(fields[2].split(":")[1], 16)
                if local_port == server_port:
                    server += int(fields[-1])
                elif remote_port == server_port:
                    clients += int(fields[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return server, clients


def percentile(values: list, q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{1000 * seconds:.2f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def pygase_fingerprint() -> str:
    """`pygase.__version__` and a short hash of its source files, to tell which code a run measured."""
    import pygase

    digest = hashlib.sha1()
    package = os.path.dirname(os.path.abspath(pygase.__file__))
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as source:
                digest.update(name.encode() + b"\0" + source.read())
    return f"pygase {pygase.__version__} (source sha1 {digest.hexdigest()[:12]})"


def request_all(children: list, command: str, timeout: float, **arguments: Any) -> list:
    """Send a request to every child at once, then collect the answers in order."""
    for child in children:
        child.send(command, **arguments)
    return [child.receive(timeout) for child in children]


# ---- the benchmark --------------------------------------------------------------------------------------


@dataclass
class Settings:
    store_only: bool
    clients: list
    reading: bool
    seconds: float
    events: int
    workers: int
    settle: float
    connect_timeout: float


@dataclass
class Teardown:
    """How the clients of a phase went away."""

    seconds: float = 0.0  # until every worker's clients had disconnected (they disconnect in parallel)
    slowest: float = 0.0  # the slowest single `Client.disconnect()`
    client_open: int = 0  # clients whose connection was not closed after `disconnect()` returned
    server_left: int = 0  # connections the server still had right after all clients disconnected
    server_drain: float = 0.0  # seconds until the server had no connection left (nan: not within 8 s)


@dataclass
class ScaleResult:
    n: int
    connected: int
    connect_seconds: float
    server_cpu: float
    worker_cpu: float
    other_cpu: float
    rates: list
    latencies: list
    lost: int
    ticks_per_second: float
    bad_quality: int
    dropped_clients: int
    server_drops: int
    client_drops: int
    teardown: Teardown


class CoreBenchmark:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.backend: Optional[Child] = None
        self.workers: list[Child] = []
        self.port = 0
        self.passed: list[tuple[str, bool]] = []
        self.single_client_rate = math.nan
        self.foreign_load: list[float] = []  # CPU % of other processes in each window
        # Some pygase versions refuse clients beyond `max_clients` (default 64): raise it to the largest N.
        default = procs.max_clients_default()
        wanted = max(settings.clients)
        self.max_clients = wanted if default is not None and default < wanted else None
        self.max_clients_note = (
            f"Backend(max_clients={wanted}) instead of the default {default}" if self.max_clients else ""
        )

    # -- processes

    def start_backend(self) -> None:
        progress("starting the backend process")
        self.backend = Child(self.context, "backend", procs.backend_main, INTERVAL, self.max_clients)
        self.port = self.backend.receive(timeout=30.0)
        progress(f"backend pid {self.backend.pid} listens on {procs.HOST}:{self.port}")

    def backend_status(self) -> dict:
        assert self.backend is not None
        return self.backend.request("status", timeout=10.0)

    def start_workers(self, n: int) -> list:
        count = min(self.settings.workers, n)
        sizes = [n // count + (1 if i < n % count else 0) for i in range(count)]
        self.workers = [
            Child(self.context, f"clients-{i}", procs.worker_main, self.port, size, 1000 * n + i)
            for i, size in enumerate(sizes)
        ]
        return sizes

    def connect_workers(self) -> tuple[int, float]:
        """Connect every worker's clients; return (clients connected, seconds the slowest worker took)."""
        s = self.settings
        results = request_all(
            self.workers, "connect", timeout=s.connect_timeout + 60.0, within=s.connect_timeout
        )
        return sum(r["connected"] for r in results), max(r["seconds"] for r in results)

    def stop_workers(self) -> Teardown:
        """Disconnect every client, stop the workers and wait until the server has no connection left."""
        teardown = Teardown()
        try:
            for result in request_all(self.workers, "disconnect", timeout=60.0):
                teardown.seconds = max(teardown.seconds, result["seconds"])
                teardown.slowest = max(teardown.slowest, result["slowest"])
                teardown.client_open += result["still_open"]
        finally:
            self.close_workers()
        start = time.perf_counter()
        teardown.server_left = self.backend_status()["connections"]
        while self.backend_status()["connections"]:
            if time.perf_counter() - start > SERVER_DRAIN_TIMEOUT:
                teardown.server_drain = math.nan
                break
            time.sleep(0.05)
        else:
            teardown.server_drain = time.perf_counter() - start
        return teardown

    def close_workers(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers = []

    def close(self) -> None:
        self.close_workers()
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def check(self, name: str, ok: bool) -> str:
        self.passed.append((name, ok))
        return verdict(ok)

    # -- figure 3, no clients

    def run_idle(self) -> dict:
        assert self.backend is not None
        time.sleep(self.settings.settle)
        progress(f"measuring server CPU with 0 clients for {self.settings.seconds:g} s")
        meter = CpuMeter(self.backend.pid, [])
        time.sleep(self.settings.seconds)
        usage = meter.stop()
        self.foreign_load.append(usage["others"])
        usage["floor"] = self.measure_floor()
        return usage

    def measure_floor(self) -> float:
        """CPU of a process that only runs the game's time_step at 50 Hz, without pygase (a reference)."""
        progress(f"measuring the floor (time_step at 50 Hz, no pygase) for {self.settings.seconds:g} s")
        floor = Child(self.context, "floor", procs.floor_main, INTERVAL)
        try:
            floor.receive(timeout=30.0)
            time.sleep(self.settings.settle)
            meter = CpuMeter(floor.pid, [])
            time.sleep(self.settings.seconds)
            return float(meter.stop()["server"])
        finally:
            floor.close()

    # -- figures 1 to 4, one client

    def run_single_client(self, idle: dict) -> None:
        """Figures 1-4: one client in one worker; first idle, then the two event latency series."""
        s = self.settings
        assert self.backend is not None
        self.start_workers(1)
        worker = self.workers[0]
        try:
            progress("connecting 1 client")
            connected, _ = self.connect_workers()
            if connected != 1:
                raise ChildError(f"the single client did not connect within {s.connect_timeout:g} s")
            time.sleep(s.settle)

            progress(f"measuring server CPU and datagrams with 1 idle client for {s.seconds:g} s")
            meter = CpuMeter(self.backend.pid, [worker.pid])
            window = worker.request(
                "window", timeout=s.seconds + 30.0, seconds=s.seconds, probes=[], probe_gap=GAP, give_up=1.0
            )
            one = meter.stop()
            self.foreign_load.append(one["others"])

            progress(f"measuring the ack round trip of {s.events} events")
            ack = worker.request(
                "ack",
                timeout=s.events * (ACK_TIMEOUT + 0.1) + 30,
                count=s.events,
                gap=GAP,
                give_up=ACK_TIMEOUT,
            )
            progress(f"measuring event-to-visible latency of {s.events} events")
            visible = worker.request(
                "visible",
                timeout=s.events * (VISIBLE_TIMEOUT + 0.1) + 30,
                count=s.events,
                gap=GAP,
                give_up=VISIBLE_TIMEOUT,
            )
        except BaseException:
            self.close_workers()
            raise
        teardown = self.stop_workers()
        if teardown.server_left or teardown.client_open:
            progress(f"single client teardown: {teardown}")

        trips, seen = ack["round_trips"], visible["latencies"]
        ack_median, visible_median = percentile(trips, 50), percentile(seen, 50)
        ok = ack_median <= ACK_MEDIAN_TARGET_MS / 1000 and ack["lost"] == 0
        print(
            f"[1] event ack round trip:      median {ms(ack_median)}, p95 {ms(percentile(trips, 95))}, "
            f"max {ms(max(trips, default=math.nan))} (n={len(trips)}, no ack within {ACK_TIMEOUT:g} s: "
            f"{ack['lost']})   target: median <= {ACK_MEDIAN_TARGET_MS:g} ms   {self.check('ack', ok)}"
        )
        ok = visible_median <= VISIBLE_MEDIAN_TARGET_MS / 1000 and visible["lost"] == 0
        print(
            f"[2] event-to-visible latency:  median {ms(visible_median)}, p95 {ms(percentile(seen, 95))}, "
            f"max {ms(max(seen, default=math.nan))} (n={len(seen)}), never seen: {visible['lost']}"
            f"   target: median <= {VISIBLE_MEDIAN_TARGET_MS:g} ms, none lost   "
            f"{self.check('event-to-visible', ok)}"
        )
        ok = idle["server"] <= IDLE_CPU_TARGET and one["server"] <= IDLE_CLIENT_CPU_TARGET
        print(
            f"[3] idle server CPU:           {idle['server']:.2f} % with 0 clients, "
            f"{one['server']:.2f} % with 1 idle client (% of one core; other processes on the machine "
            f"meanwhile: {idle['others']:.0f} % / {one['others']:.0f} %; floor: the same time_step at "
            f"50 Hz without pygase {idle['floor']:.2f} %)   "
            f"target: <= {IDLE_CPU_TARGET:g} % and <= {IDLE_CLIENT_CPU_TARGET:g} %   "
            f"{self.check('idle CPU', ok)}"
        )
        packages, received, updates = window["packages"][0], window["bytes"][0], window["updates"][0]
        per_datagram = received / packages if packages else math.nan
        self.single_client_rate = updates / window["seconds"]
        ok = per_datagram <= DATAGRAM_BYTES_TARGET
        print(
            f"[4] bytes per state datagram:  {per_datagram:.1f} bytes of UDP payload "
            f"({packages} datagrams received in {window['seconds']:.1f} s, {updates} of them state updates, "
            f"{self.single_client_rate:.1f} updates/s)   target: <= {DATAGRAM_BYTES_TARGET}   "
            f"{self.check('datagram size', ok)}"
        )

    # -- figure 5, N clients

    def run_scale(self, n: int, read_hz: float = 0.0) -> ScaleResult:
        """Figure 5 for one N: all N clients connected, a window of update rates, CPU and probe latencies
        (figure 5b with `read_hz`: the clients' states read that often, and the rates counted there)."""
        s = self.settings
        assert self.backend is not None
        sizes = self.start_workers(n)
        progress(f"N={n}: connecting {n} clients in {len(sizes)} worker process(es) {sizes}")
        try:
            connected, connect_seconds = self.connect_workers()
            time.sleep(s.settle)

            # probes, round-robin over the workers: probe j is client j // workers of worker j % workers
            probes: list[list] = [[] for _ in self.workers]
            count = min(PROBES, n)
            for j in range(count):
                probes[j % len(self.workers)].append((j // len(self.workers), j + 1))
            mean_gap = count / PROBE_EVENTS_PER_SECOND
            gap = (0.5 * mean_gap, 1.5 * mean_gap)

            progress(
                f"N={n}: {connected} connected in {connect_seconds:.2f} s; measuring for {s.seconds:g} s"
            )
            status_before = self.backend_status()
            drops_before = udp_drops(self.port)
            meter = CpuMeter(self.backend.pid, [w.pid for w in self.workers])
            for worker, worker_probes in zip(self.workers, probes):
                worker.send(
                    "window",
                    seconds=s.seconds,
                    probes=worker_probes,
                    probe_gap=gap,
                    give_up=VISIBLE_TIMEOUT,
                    read_hz=read_hz,
                )
            time.sleep(s.seconds)
            usage = meter.stop()
            self.foreign_load.append(usage["others"])
            elapsed = usage["seconds"]
            drops_after = udp_drops(self.port)
            status_after = self.backend_status()
            windows = [w.receive(timeout=VISIBLE_TIMEOUT + 30.0) for w in self.workers]
        except BaseException:
            self.close_workers()
            raise
        progress(f"N={n}: disconnecting")
        teardown = self.stop_workers()
        return ScaleResult(
            n=n,
            connected=connected,
            connect_seconds=connect_seconds,
            server_cpu=usage["server"],
            worker_cpu=usage["workers"],
            other_cpu=usage["others"],
            rates=[u / w["seconds"] for w in windows for u in w["read" if read_hz else "updates"]],
            latencies=[x for w in windows for x in w["latencies"]],
            lost=sum(w["lost"] for w in windows),
            ticks_per_second=(status_after["ticks"] - status_before["ticks"]) / elapsed,
            bad_quality=status_after["bad_quality"],
            dropped_clients=sum(w["dropped_clients"] for w in windows),
            server_drops=drops_after[0] - drops_before[0],
            client_drops=drops_after[1] - drops_before[1],
            teardown=teardown,
        )

    def report_scale(self, result: ScaleResult, reference_rate: float, figure: str = "5") -> None:
        median, p95 = percentile(result.latencies, 50), percentile(result.latencies, 95)
        mean_rate = statistics.fmean(result.rates) if result.rates else math.nan
        min_rate = min(result.rates, default=math.nan)
        ratio = min_rate / reference_rate if reference_rate > 0 else math.nan
        what = "time orders read/s" if figure == "5b" else "updates/s"
        line = (
            f"[{figure}] N={result.n:<4} connected {result.connected}/{result.n} "
            f"| server CPU {result.server_cpu:5.1f} % "
            f"| {what} per client: mean {mean_rate:5.1f}, min {min_rate:5.1f} "
            f"({100 * ratio:.0f} % of N=1) "
            f"| event-to-visible: median {ms(median)}, p95 {ms(p95)} (n={len(result.latencies)}), "
            f"never seen {result.lost}"
        )
        if result.n == SCALE_N:
            ok = (
                result.connected == result.n
                and ratio >= SCALE_RATE_RATIO_TARGET
                and p95 < SCALE_LATENCY_TARGET_MS / 1000
                and result.lost == 0
            )
            line += (
                f"   target: every client >= {100 * SCALE_RATE_RATIO_TARGET:.0f} % of the N=1 rate, "
                f"latency (p95) < {SCALE_LATENCY_TARGET_MS:g} ms   "
                f"{self.check(f'N={SCALE_N} [{figure}]', ok)}"
            )
        print(line)
        t = result.teardown
        drain = "not within 8 s" if math.isnan(t.server_drain) else f"{t.server_drain:.1f} s"
        print(
            f"      server: {result.ticks_per_second:.1f} ticks/s, "
            f"{result.bad_quality} connections throttled "
            f"(quality 'bad') at the end, UDP receive-buffer drops {result.server_drops} (server socket) / "
            f"{result.client_drops} (client sockets); clients: {result.dropped_clients} dropped, worker "
            f"processes {result.worker_cpu:.0f} % CPU; other processes on the machine "
            f"{result.other_cpu:.0f} % CPU ({os.cpu_count()} cores); "
            f"connect {result.connect_seconds:.2f} s"
            f"; disconnect {t.seconds:.2f} s (slowest client {t.slowest:.2f} s, {t.client_open} not closed), "
            f"server connections left {t.server_left}, gone after {drain}"
        )

    # -- everything

    def run(self) -> int:
        s = self.settings
        started = time.perf_counter()
        fingerprint = pygase_fingerprint()
        before = machine_busy_seconds()
        time.sleep(0.5)
        load = 100.0 * (machine_busy_seconds() - before) / 0.5
        print(
            f"{fingerprint}: 1 backend at {1 / INTERVAL:g} Hz with {procs.ENTITIES} moving "
            f"entities; windows of {s.seconds:g} s, {s.events} events for figures 1-2, "
            f"N = {', '.join(map(str, s.clients))} "
            f"in up to {s.workers} client processes; machine: {os.cpu_count()} cores, {load:.0f} % busy "
            f"before the start (100 % = one core)",
            flush=True,
        )
        if self.max_clients_note:
            print(f"note: {self.max_clients_note}", flush=True)
        if os.environ.get(procs.SIMULATE_VARIABLE):
            print(f"note: {procs.SIMULATE_VARIABLE} is set; the benchmark processes ignore it", flush=True)
        try:
            self.start_backend()
            self.run_single_client(self.run_idle())
            print_four_value_bytes()
            reference = math.nan
            for n in s.clients:
                result = self.run_scale(n)
                if n == 1 and result.rates:
                    reference = statistics.fmean(result.rates)
                # without an N=1 run (yet) compare with the idle client of figure 4 (no probe events)
                self.report_scale(result, self.single_client_rate if math.isnan(reference) else reference)
                sys.stdout.flush()
            reference = math.nan
            for n in s.clients if s.reading else []:
                result = self.run_scale(n, read_hz=READ_HZ)
                if n == 1 and result.rates:
                    reference = statistics.fmean(result.rates)
                self.report_scale(
                    result, self.single_client_rate if math.isnan(reference) else reference, "5b"
                )
                sys.stdout.flush()
        finally:
            self.close()
        print_store_tick_costs()
        if max(self.foreign_load, default=0.0) > FOREIGN_LOAD_WARNING:
            print(
                f"WARNING: other processes used up to {max(self.foreign_load):.0f} % CPU (mean "
                f"{statistics.fmean(self.foreign_load):.0f} %) during the measurement windows: the machine "
                f"was not quiet, so CPU, rate and latency figures are not reliable"
            )
        if pygase_fingerprint() != fingerprint:
            print(f"WARNING: pygase's source changed during the run (now {pygase_fingerprint()})")
        failed = [name for name, ok in self.passed if not ok]
        print(
            f"targets met: {len(self.passed) - len(failed)}/{len(self.passed)}"
            + (f" (missed: {', '.join(failed)})" if failed else "")
            + f"; total time {time.perf_counter() - started:.0f} s"
        )
        return 0


def parse_arguments(argv: Optional[list] = None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Benchmark pygase's core (see the module docstring of benchmarks/core.py)."
    )
    parser.add_argument(
        "--clients", default="1,50,100,200", help="comma-separated numbers of clients (figure 5)"
    )
    parser.add_argument("--quick", action="store_true", help="short windows and fewer events (smoke run)")
    parser.add_argument(
        "--seconds", type=float, help="length of each measurement window (default 6, quick 2)"
    )
    parser.add_argument("--events", type=int, help="events for figures 1 and 2 (default 200, quick 40)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="maximum number of client processes (default: one per core)",
    )
    parser.add_argument(
        "--store-only",
        action="store_true",
        help="print only figures 6 to 8 and 4b (measured in this process)",
    )
    parser.add_argument(
        "--reading",
        action="store_true",
        help=f"figure 5b too: each N again with clients whose states are read {READ_HZ:g} times a second",
    )
    args = parser.parse_args(argv)
    try:
        clients = [int(part) for part in args.clients.split(",") if part.strip()]
    except ValueError:
        parser.error("--clients takes a comma-separated list of numbers, e.g. 1,50,100,200")
    if not clients or min(clients) < 1:
        parser.error("--clients needs numbers >= 1")
    if args.workers < 1:
        parser.error("--workers needs a number >= 1")
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 6.0)
    if seconds <= 0:
        parser.error("--seconds needs a positive number")
    events = args.events if args.events is not None else (40 if args.quick else 200)
    return Settings(
        store_only=args.store_only,
        clients=clients,
        reading=args.reading,
        seconds=seconds,
        events=max(1, events),
        workers=args.workers,
        settle=0.5 if args.quick else 1.0,
        connect_timeout=15.0,
    )


def main(argv: Optional[list] = None) -> int:
    settings = parse_arguments(argv)
    if settings.store_only:
        print(f"{pygase_fingerprint()}:", flush=True)
        print_store_tick_costs()
        print_four_value_bytes()
        return 0
    return CoreBenchmark(settings).run()


if __name__ == "__main__":
    sys.exit(main())
