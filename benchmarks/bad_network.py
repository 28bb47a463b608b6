"""Benchmark pygase over a bad link: event delivery, event-to-visible latency and a 1 MB state download.

Every client here talks to a real `pygase.Backend` over real UDP sockets on 127.0.0.1, through the
library's own link simulator: `Client(simulate=LinkConditions(latency=0.1, jitter=0.02, loss=0.2))`
delays both the client's sends and its receives by 100 +- 20 ms and drops 20 % of each, so every
datagram in either direction is delayed by 100 +- 20 ms and lost with probability 0.2 (a round trip
takes about 200 ms). The backends run at 50 Hz (interval 0.02 s) in their own process; the clients run
in this process and use only the public `pygase.Client` API.

Figures, one line each, then a summary block:

1. delivery with retries=5: a client dispatches `--events` events `HIT(i)` (i = 0, 1, ...) 20 ms apart,
   each with `retries=5` and an `ack_callback`; the server's `HIT` handler records every i it gets and
   returns `{"last": i}`. After waiting for stragglers (up to 10 s; earlier once everything is handled
   and acknowledged) it prints the share of events the server handled, how many it handled more than
   once (must be 0), whether it handled them in the order they were sent, and the share acknowledged to
   the client. A 20 % loss each way leaves an event undelivered after 6 tries with probability
   0.2 ** 6 = 6e-5, so anything clearly below 100 % is a bug.
2. event-to-visible latency: the client dispatches `MARK(v)` (a fresh v each time, `retries=5`), whose
   handler sets `marker = v`, and polls its own `access_game_state()` every ~1 ms until it shows
   `marker == v` (a sample not seen within 8 s, longer than the ~5.5 s its six tries take, counts as
   missed); p50 / p95 / max over `--samples` samples spaced 100-200 ms apart. The ideal is one round
   trip, ~200 ms; each lost try adds a retransmission timeout (~0.26 s, doubling with every retry).
3. 1 MB state download: a backend whose state holds `world` (4500 tiles of 200 bytes, >= 1 MB encoded)
   and a `clock` that changes every tick; a fresh client connects and the time from `connect_in_thread`
   until `wait_until(lambda s: len(s.world) == 4500, timeout=120)` returns is measured, `--repeats` times
   over the bad link and as often over the clean loopback link (no simulation) for comparison; each
   time and the median are printed, with a diagnostic line per download (packages received, the server
   side's packages sent and lost, round trip time and quality, how long `disconnect()` took and how long
   the server still kept the client after it left; a client that left should be forgotten at once).

Run (from the repository root; the default run takes about 2 minutes, --quick about 30 s, --large-state
only figure 3):

    python benchmarks/bad_network.py
    python benchmarks/bad_network.py --quick
    python benchmarks/bad_network.py --large-state --repeats 5

The last lines are machine-readable: `large_state_seconds_median=<s>` (the bad link) and
`large_state_clean_seconds_median=<s>` (clean loopback); a timed-out download counts as longer than any.

Only 127.0.0.1 is used. The backend processes are shut down and every client is disconnected at the end,
on errors and on Ctrl-C too. Logging stays at WARNING (pygase warns, for instance, about lost events).
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

# Measure the pygase next to this script, whatever else the environment has installed (the spawned backend
# processes inherit sys.path).
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPOSITORY not in sys.path:
    sys.path.insert(0, _REPOSITORY)

from pygase import Backend, Client, GameState  # noqa: E402
from pygase.connection import ConnectionStatus  # noqa: E402
from pygase.testing import SIMULATE_VARIABLE, LinkConditions  # noqa: E402

HOST = "127.0.0.1"
INTERVAL = 0.02  # 50 Hz game loop
BAD_LINK = LinkConditions(latency=0.1, jitter=0.02, loss=0.2)

EVENT_GAP = 0.02
RETRIES = 5
STRAGGLER_WAIT = 10.0
VISIBLE_TIMEOUT = 8.0  # longer than the ~5.5 s over which retries=5 spreads its six tries
SAMPLE_GAP = (0.1, 0.2)
POLL = 0.001
TILES = 4500
TILE_BYTES = 200
DOWNLOAD_TIMEOUT = 120.0
CONNECT_TIMEOUT = 15.0

_DISCONNECTED = ConnectionStatus.get("Disconnected")
_LOG_FORMAT = "%(asctime)s %(processName)s %(name)s %(levelname)s: %(message)s"


# ---- the backend process ----------------------------------------------------------------------------


def big_world() -> dict:
    return {i: {"name": f"tile{i}", "data": bytes(TILE_BYTES)} for i in range(TILES)}


def _backend_main(conn: Any, kind: str) -> None:
    """Run one Backend on 127.0.0.1 (port 0), send the port back, then answer requests until "quit"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it tells us to quit
    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    handled: list[int] = []
    handled_lock = threading.Lock()

    def on_hit(i: int, **kwargs: Any) -> dict:
        with handled_lock:
            handled.append(i)
        return {"last": i}

    def on_mark(value: int, **kwargs: Any) -> dict:
        return {"marker": value}

    def time_step(game_state: Any, dt: float) -> dict:
        return {"clock": game_state.clock + dt}

    if kind == "events":
        state = GameState(clock=0.0, last=-1, marker=0)
    else:
        state = GameState(clock=0.0, world=big_world())
    backend = Backend(state, time_step, {"HIT": on_hit, "MARK": on_mark})
    try:
        thread = backend.run_in_thread(hostname=HOST, port=0, interval=INTERVAL)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return

    def get_handled() -> list:
        with handled_lock:
            return list(handled)

    def reset() -> None:
        with handled_lock:
            handled.clear()

    def connections() -> list:
        for _ in range(20):  # the server thread may change the dict while we look at it
            try:
                items = list(backend.server.connections.items())
                break
            except RuntimeError:
                time.sleep(0.001)
        else:
            items = []
        return [
            {
                "address": address,
                "quality": c.quality,
                "latency": c.latency,
                "packages_sent": c.packages_sent,
                "packages_lost": c.packages_lost,
                "packages_received": c.packages_received,
                "bytes_sent": c.bytes_sent,
            }
            for address, c in items
        ]

    commands: dict[str, Callable[[], Any]] = {
        "handled": get_handled,
        "reset": reset,
        "connections": connections,
    }
    conn.send(("ok", backend.server.port))
    try:
        while True:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            if command == "quit":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", commands[command]()))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        backend.shutdown()
        thread.join(timeout=5.0)


class BackendProcess:
    """A backend in a child process (spawned), driven over a pipe; a context manager that always cleans up."""

    def __init__(self, kind: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=_backend_main, args=(child_conn, kind), name=f"backend-{kind}", daemon=True
        )
        self.process.start()
        child_conn.close()
        self.port: int = self._reply(60.0)

    def _reply(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the backend process did not answer within {timeout} s")
        status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"the backend process failed:\n{result}")
        return result

    def request(self, command: str, timeout: float = 10.0) -> Any:
        self.conn.send(command)
        return self._reply(timeout)

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self.conn.send("quit")
                self.conn.poll(10.0)
        except (OSError, EOFError, BrokenPipeError):
            pass
        self.conn.close()
        self.process.join(timeout=10.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- clients ----------------------------------------------------------------------------------------


class LostEventCounter(logging.Handler):
    """Count pygase's "event ... was lost" warnings (the client gave an event up)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "was lost" in record.getMessage():
            self.count += 1


@contextmanager
def connected_client(
    port: int, link: Optional[LinkConditions], ready: Callable[[Any], bool], timeout: float = CONNECT_TIMEOUT
) -> Iterator[Client]:
    """A client connected to 127.0.0.1:port whose state satisfies `ready`; disconnected on exit."""
    client = Client(simulate=link)
    client.connect_in_thread(port, HOST)
    try:
        client.wait_until(ready, timeout=timeout)
        yield client
    finally:
        client.disconnect()


def percentile(values: list, share: float) -> float:
    """Linear-interpolated percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


# ---- figure 1: delivery -----------------------------------------------------------------------------


def measure_delivery(backend: BackendProcess, count: int, lost_counter: LostEventCounter) -> dict:
    backend.request("reset")
    acked: set[int] = set()
    acked_twice: list[int] = []
    acked_lock = threading.Lock()

    def ack(i: int) -> Callable[[], None]:
        def callback() -> None:
            with acked_lock:
                if i in acked:
                    acked_twice.append(i)
                acked.add(i)

        return callback

    lost_before = lost_counter.count
    with connected_client(backend.port, BAD_LINK, lambda s: s.clock > 0) as client:
        start = time.perf_counter()
        for i in range(count):
            client.dispatch_event("HIT", i, retries=RETRIES, ack_callback=ack(i))
            sleep_until(start + (i + 1) * EVENT_GAP)
        sent_seconds = time.perf_counter() - start
        wait_start = time.perf_counter()
        handled: list[int] = []
        while time.perf_counter() - wait_start < STRAGGLER_WAIT:
            time.sleep(0.25)
            handled = backend.request("handled")
            with acked_lock:
                all_acked = len(acked) == count
            if all_acked and len(set(handled)) == count:
                time.sleep(0.5)  # datagrams still on the simulated link
                break
        waited = time.perf_counter() - wait_start
        handled = backend.request("handled")
        with client.access_game_state() as state:
            client_last = state.last
        connection = client.connection
        stats = {
            "sent": connection.packages_sent,
            "lost": connection.packages_lost,
            "quality": connection.quality,
            "rtt": connection.latency,
        }
    with acked_lock:
        acked_count, twice = len(acked), len(acked_twice)
    unique = set(handled)
    return {
        "count": count,
        "handled": len(unique),
        "duplicates": len(handled) - len(unique),
        "in_order": all(a < b for a, b in zip(handled, handled[1:])),
        "acked": acked_count,
        "acked_twice": twice,
        "given_up": lost_counter.count - lost_before,
        "client_last": client_last,
        "server_last": handled[-1] if handled else None,
        "missing": sorted(set(range(count)) - unique),
        "sent_seconds": sent_seconds,
        "waited": waited,
        "client": stats,
    }


# ---- figure 2: event-to-visible latency -------------------------------------------------------------


def measure_visible(backend: BackendProcess, samples: int, rng: random.Random) -> dict:
    latencies: list[float] = []
    missed = 0
    with connected_client(backend.port, BAD_LINK, lambda s: s.clock > 0) as client:
        with client.access_game_state() as state:
            value = int(state.marker)
        for _ in range(samples):
            value += 1
            start = time.perf_counter()
            client.dispatch_event("MARK", value, retries=RETRIES)
            seen = False
            while time.perf_counter() - start < VISIBLE_TIMEOUT:
                with client.access_game_state() as state:
                    seen = state.marker == value
                if seen:
                    latencies.append(time.perf_counter() - start)
                    break
                time.sleep(POLL)
            if not seen:
                missed += 1
            time.sleep(rng.uniform(*SAMPLE_GAP))
        connection = client.connection
        stats = {"quality": connection.quality, "rtt": connection.latency}
    return {"latencies": latencies, "missed": missed, "samples": samples, "client": stats}


# ---- figure 3: 1 MB state download ------------------------------------------------------------------


def wait_until_forgotten(backend: BackendProcess, addresses: set, timeout: float) -> tuple:
    """Poll the server until none of `addresses` is connected; return (seconds, bytes a re-created one sent).

    A connection whose byte counter went down after the client left was created anew by a late datagram
    (a "ghost"); the bytes it sent are counted (as far as the 0.25 s polling saw them).
    """
    start = time.perf_counter()
    last_bytes: dict = {}
    ghost_bytes = 0
    while True:
        present = [c for c in backend.request("connections") if tuple(c["address"]) in addresses]
        for c in present:
            address = tuple(c["address"])
            if c["bytes_sent"] < last_bytes.get(address, 0):
                ghost_bytes += last_bytes[address]  # the earlier ghost was replaced by yet another one
            last_bytes[address] = c["bytes_sent"]
        if not present or time.perf_counter() - start >= timeout:
            return time.perf_counter() - start, ghost_bytes, last_bytes


def measure_download(backend: BackendProcess, link: Optional[LinkConditions]) -> dict:
    """Connect a fresh client; time until it holds the whole world. None for the time if it timed out."""
    # Start from a server without connections, so that runs do not disturb each other.
    before = {tuple(c["address"]) for c in backend.request("connections")}
    if before:
        wait_until_forgotten(backend, before, 10.0)
    client = Client(simulate=link)
    start = time.perf_counter()
    client.connect_in_thread(backend.port, HOST)
    seconds: Optional[float]
    server: list = []
    try:
        try:
            client.wait_until(lambda s: len(s.world) == TILES, timeout=DOWNLOAD_TIMEOUT)
            seconds = time.perf_counter() - start
        except TimeoutError:
            seconds = None
        connection = client.connection
        client_stats = {
            "received": connection.packages_received,
            "bytes": connection.bytes_received,
            "sent": connection.packages_sent,
            "status": connection.status,
        }
        server = backend.request("connections")
    finally:
        disconnect_start = time.perf_counter()
        client.disconnect()
        disconnect_seconds = time.perf_counter() - disconnect_start
    mine = {tuple(c["address"]) for c in server}
    at_end = {tuple(c["address"]): c["bytes_sent"] for c in server}
    linger, ghost_bytes, last_bytes = wait_until_forgotten(backend, mine, 8.0)
    for address, sent in last_bytes.items():
        if sent < at_end.get(address, 0):
            ghost_bytes += sent
    return {
        "seconds": seconds,
        "client": client_stats,
        "server": server,
        "disconnect": disconnect_seconds,
        "linger": linger,
        "ghost_bytes": ghost_bytes,
    }


# ---- report -----------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms"


def secs(seconds: Optional[float]) -> str:
    return "timeout" if seconds is None else f"{seconds:.1f} s"


def median_of(values: list) -> Optional[float]:
    """Median, None if empty; a timed-out run (None) counts as longer than any other."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    middle = ordered[len(ordered) // 2]
    if len(ordered) % 2 or middle is None:
        return middle
    lower = ordered[len(ordered) // 2 - 1]
    return None if lower is None else (lower + middle) / 2


def download_line(label: str, runs: list) -> str:
    times = ", ".join(secs(r["seconds"]) for r in runs)
    return f"{label}: {times}; median {secs(median_of([r['seconds'] for r in runs]))}"


def download_diagnostics(runs: list) -> str:
    parts = []
    for r in runs:
        server = r["server"][0] if len(r["server"]) == 1 else None
        text = f"client got {r['client']['received']} pkgs / {r['client']['bytes'] / 1e6:.2f} MB"
        if server is not None:
            text += (
                f", server sent {server['packages_sent']} lost {server['packages_lost']}"
                f" rtt {ms(server['latency'])} {server['quality']}"
            )
        text += f"; disconnect {r['disconnect']:.1f} s, server forgot it after {r['linger']:.1f} s"
        if r["ghost_bytes"]:
            text += f" (re-created, sent {r['ghost_bytes'] / 1e3:.0f} kB more)"
        parts.append(text)
    return "\n".join(f"    ({part})" for part in parts)


def event_figures(
    events: int, samples: int, rng: random.Random, lost_counter: LostEventCounter, summary: list
) -> None:
    """Figures 1 and 2 on a backend of their own: print them and add their summary lines."""
    with BackendProcess("events") as backend:
        d = measure_delivery(backend, events, lost_counter)
        n = d["count"]
        line = (
            f"1. delivery, retries={RETRIES}: handled {d['handled']}/{n} ({d['handled'] / n:.1%}), "
            f"duplicates {d['duplicates']}, in sent order: {'yes' if d['in_order'] else 'NO'}, "
            f"acked {d['acked']}/{n} ({d['acked'] / n:.1%})"
        )
        print(line, flush=True)
        print(
            f"    (sent in {d['sent_seconds']:.1f} s, waited {d['waited']:.1f} s for stragglers; "
            f"given up by the client: {d['given_up']}; acked twice: {d['acked_twice']}; "
            f"client sees last={d['client_last']}, server handled last {d['server_last']}; "
            f"client pkgs sent {d['client']['sent']} lost {d['client']['lost']}, "
            f"rtt {ms(d['client']['rtt'])}, quality {d['client']['quality']}"
            + (f"; missing ids {d['missing'][:20]}" if d["missing"] else "")
            + ")",
            flush=True,
        )
        summary.append(
            f"delivery (retries={RETRIES})        {d['handled'] / n:.1%} handled, "
            f"{d['acked'] / n:.1%} acked, {d['duplicates']} duplicates, "
            f"order {'kept' if d['in_order'] else 'BROKEN'}"
        )

        v = measure_visible(backend, samples, rng)
        lat = v["latencies"]
        if lat:
            p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
            line = (
                f"2. event-to-visible: p50 {ms(p50)}, p95 {ms(p95)}, max {ms(max(lat))} "
                f"over {len(lat)} samples; not seen within {VISIBLE_TIMEOUT:.0f} s: {v['missed']}"
            )
            summary.append(f"event-to-visible            p50 {ms(p50)}, p95 {ms(p95)} ({v['missed']} missed)")
        else:
            line = f"2. event-to-visible: none of {samples} samples seen within {VISIBLE_TIMEOUT:.0f} s"
            summary.append("event-to-visible            no sample seen")
        print(line, flush=True)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--events", type=int, help="events for figure 1 (default 300, quick 60)")
    parser.add_argument("--samples", type=int, help="samples for figure 2 (default 100, quick 20)")
    parser.add_argument("--repeats", type=int, help="downloads per link for figure 3 (default 3, quick 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sample spacing")
    parser.add_argument(
        "--large-state", action="store_true", help="only figure 3, the 1 MB state download (no events)"
    )
    args = parser.parse_args(argv)
    events = args.events or (60 if args.quick else 300)
    samples = args.samples or (20 if args.quick else 100)
    repeats = args.repeats or (1 if args.quick else 3)

    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    lost_counter = LostEventCounter()
    logging.getLogger("pygase").addHandler(lost_counter)
    if os.environ.pop(SIMULATE_VARIABLE, None):  # the clean-link figures must not be simulated
        print(f"note: ignoring {SIMULATE_VARIABLE}; this benchmark sets its own link conditions")
    rng = random.Random(args.seed)

    size = len(GameState(clock=0.0, world=big_world()).to_bytes())
    assert size >= 1_000_000, size
    print(
        f"bad link: {BAD_LINK.loss:.0%} loss, {ms(BAD_LINK.latency)} +- {ms(BAD_LINK.jitter)} each way "
        f"(client-side simulator); backend at {1 / INTERVAL:.0f} Hz on {HOST}"
    )
    began = time.perf_counter()
    summary: list[str] = []
    medians: dict[str, Optional[float]] = {}
    try:
        if not args.large_state:
            event_figures(events, samples, rng, lost_counter, summary)
        with BackendProcess("world") as backend:
            bad_runs = []
            for _ in range(repeats):
                bad_runs.append(measure_download(backend, BAD_LINK))
            print(download_line(f"3. 1 MB state ({size / 1e6:.2f} MB), bad link", bad_runs), flush=True)
            print(download_diagnostics(bad_runs), flush=True)
            clean_runs = []
            for _ in range(repeats):
                clean_runs.append(measure_download(backend, None))
            print(download_line("3. 1 MB state, clean loopback", clean_runs), flush=True)
            print(download_diagnostics(clean_runs), flush=True)
            summary.append(
                f"1 MB state, bad link        median {secs(median_of([r['seconds'] for r in bad_runs]))}"
            )
            summary.append(
                f"1 MB state, clean loopback  median {secs(median_of([r['seconds'] for r in clean_runs]))}"
            )
            medians["large_state_seconds_median"] = median_of([r["seconds"] for r in bad_runs])
            medians["large_state_clean_seconds_median"] = median_of([r["seconds"] for r in clean_runs])
            ghosts = sum(1 for r in bad_runs + clean_runs if r["linger"] > 1.0)
            summary.append(
                f"left clients kept by server {ghosts} of {len(bad_runs + clean_runs)} downloads "
                f"(longest {max(r['linger'] for r in bad_runs + clean_runs):.1f} s after disconnect)"
            )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("pygase").removeHandler(lost_counter)

    print()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"summary ({'quick' if args.quick else 'full'} run, {time.perf_counter() - began:.0f} s, "
        f"load average at the end {load} on {os.cpu_count()} cores):"
    )
    for line in summary:
        print(f"  {line}")
    for name, value in medians.items():
        print(f"{name}={'inf' if value is None else f'{value:.2f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
