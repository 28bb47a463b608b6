"""The child-process side of `benchmarks/core.py`: the backend process and the client worker processes.

Both kinds of process are started by `core.py` with the multiprocessing "spawn" method and talk to the
parent over a `multiprocessing` pipe. Every request is a tuple `(command, arguments)`; every reply is
`("ok", result)` or `("error", traceback text)`. A child exits when it gets `("quit", None)` or when the
parent's end of the pipe closes, cleaning up first (the backend shuts down, every client disconnects).

Nothing here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import os
import random
import threading
import time
import traceback
from typing import Any, Callable, Optional

HOST = "127.0.0.1"
ENTITIES = 20
#: pygase's switch for its network simulator (latency, loss ...): always off in the benchmark processes
SIMULATE_VARIABLE = "PYGASE_SIMULATE"

_LOG_FORMAT = "%(asctime)s %(processName)s %(name)s %(levelname)s: %(message)s"


# ---- the game ----------------------------------------------------------------------------------------


class _Game:
    """The benchmark game: 20 entities circling at different speeds, plus markers set by events.

    `marker` is set by `SET_MARKER(value)`; `markers[probe]` by `SET_MARKER(value, probe=probe)`, so that
    several clients can measure event-to-visible latency at the same time without overwriting each
    other's values.
    """

    def __init__(self) -> None:
        self.ticks = 0
        self.clock = 0.0

    def initial_state(self) -> Any:
        from pygase import GameState

        return GameState(
            entities={i: {"x": 100.0 + i, "y": 0.0} for i in range(ENTITIES)},
            marker=0,
            markers={},
        )

    def time_step(self, game_state: Any, dt: float) -> dict:
        self.ticks += 1
        self.clock += dt
        t = self.clock
        return {
            "entities": {
                i: {"x": 100.0 * math.cos(t * (0.5 + 0.05 * i)), "y": 100.0 * math.sin(t * (0.5 + 0.05 * i))}
                for i in range(ENTITIES)
            }
        }

    @staticmethod
    def set_marker(value: int, probe: Optional[int] = None) -> dict:
        if probe is None:
            return {"marker": value}
        return {"markers": {probe: value}}


# ---- plumbing shared by both kinds of process ----------------------------------------------------------


def _serve(conn: Any, commands: dict[str, Callable[..., Any]]) -> None:
    """Answer requests from the parent until it says quit or goes away."""
    while True:
        try:
            command, arguments = conn.recv()
        except (EOFError, OSError):
            return
        if command == "quit":
            conn.send(("ok", None))
            return
        try:
            result = commands[command](**(arguments or {}))
        except Exception:
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("ok", result))


def _disconnected_status() -> int:
    from pygase.connection import ConnectionStatus

    return ConnectionStatus.get("Disconnected")


def _elapsed(start: float, seconds: float) -> bool:
    return time.perf_counter() - start >= seconds


# ---- the backend process -------------------------------------------------------------------------------


def _real_network_only() -> None:
    """Make sure pygase's network simulator (if this pygase has one) is off in this process."""
    os.environ.pop(SIMULATE_VARIABLE, None)


def max_clients_default() -> Optional[int]:
    """The default of `Backend(max_clients=...)`, or None if this pygase has no such limit."""
    from pygase import Backend

    parameter = inspect.signature(Backend).parameters.get("max_clients")
    return None if parameter is None else parameter.default


def backend_main(conn: Any, interval: float, max_clients: Optional[int]) -> None:
    """Run one `pygase.Backend` on 127.0.0.1, port 0; send its port to the parent; serve status requests.

    `max_clients` is passed on to the Backend if it is not None (the parent only passes it to pygase
    versions that have the limit).
    """
    _real_network_only()
    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    from pygase import Backend

    game = _Game()
    options = {} if max_clients is None else {"max_clients": max_clients}
    backend = Backend(
        initial_game_state=game.initial_state(),
        time_step_function=game.time_step,
        event_handlers={"SET_MARKER": game.set_marker},
        **options,
    )
    try:
        thread = backend.run_in_thread(hostname=HOST, port=0, interval=interval)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", backend.server.port))

    def status() -> dict:
        for _ in range(10):  # the server thread may change the dict while we look at it
            try:
                connections = list(backend.server.connections.values())
                break
            except RuntimeError:
                time.sleep(0.001)
        else:
            connections = []
        return {
            "connections": len(connections),
            "bad_quality": sum(1 for c in connections if c.quality != "good"),
            "ticks": game.ticks,
            "time_order": int(backend.game_state_store.get_game_state().time_order),
        }

    try:
        _serve(conn, {"status": status})
    finally:
        backend.shutdown()
        thread.join(timeout=5.0)


# ---- the floor: what the same game loop costs without pygase ----------------------------------------------


def floor_main(conn: Any, interval: float) -> None:
    """Run the benchmark's `time_step` every `interval` seconds in a thread, as pygase's game loop does
    (a lock wait with a timeout between steps), but with nothing else: no state store, no server.

    The CPU this process uses is the floor under the idle server's figure on this machine: Python waking
    at 50 Hz and running the game's own code.
    """
    game = _Game()
    state = game.initial_state()
    stop = threading.Event()

    def loop() -> None:
        wake = threading.Lock()
        wake.acquire()
        next_step = time.monotonic() + interval
        while not stop.is_set():
            wake.acquire(timeout=max(0.0, next_step - time.monotonic()))
            game.time_step(state, interval)
            next_step += interval

    thread = threading.Thread(target=loop, name="floor-loop", daemon=True)
    thread.start()
    conn.send(("ok", None))
    try:
        _serve(conn, {})
    finally:
        stop.set()
        thread.join(timeout=1.0)


# ---- the client worker processes -----------------------------------------------------------------------


class _Worker:
    """Some `pygase.Client`s in one process (they share its network thread) and the measurements."""

    def __init__(self, port: int, count: int, seed: int) -> None:
        self.port = port
        self.count = count
        self.clients: list[Any] = []
        self.random = random.Random(seed)
        self.values = itertools.count(self.random.randrange(1, 1 << 30))
        self.values_lock = threading.Lock()

    def _next_value(self) -> int:
        with self.values_lock:
            return next(self.values)

    # -- connecting

    def connect(self, within: float) -> dict:
        from pygase import Client

        start = time.perf_counter()
        for _ in range(self.count):
            client = Client()
            client.connect_in_thread(port=self.port, hostname=HOST)
            self.clients.append(client)
        deadline = start + within
        connected = 0
        for client in self.clients:
            try:
                client.wait_until(
                    lambda game_state: len(game_state.entities) == ENTITIES,
                    timeout=max(0.01, deadline - time.perf_counter()),
                )
            except TimeoutError:
                continue
            connected += 1
        return {"connected": connected, "seconds": time.perf_counter() - start}

    def disconnect(self) -> dict:
        """Disconnect every client, all at once (`Client.disconnect()` blocks until the server confirms).

        Returns the time the slowest disconnect took and how many connections are still not closed.
        """
        clients, self.clients = self.clients, []
        if not clients:
            return {"seconds": 0.0, "slowest": 0.0, "still_open": 0}
        start = time.perf_counter()
        durations: list[float] = []

        def disconnect(client: Any) -> None:
            began = time.perf_counter()
            client.disconnect()
            durations.append(time.perf_counter() - began)

        threads = [threading.Thread(target=disconnect, args=(c,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30.0)
        disconnected = _disconnected_status()
        return {
            "seconds": time.perf_counter() - start,
            "slowest": max(durations, default=0.0),
            "still_open": sum(1 for c in clients if c.connection.status != disconnected),
        }

    def _counters(self) -> list[tuple[int, int, int]]:
        counters = []
        for client in self.clients:
            connection = client.connection
            counters.append(
                (connection.updates_received, connection.bytes_received, connection.packages_received)
            )
        return counters

    # -- a measurement window: update rates, datagram sizes, optional latency probes

    def window(
        self, seconds: float, probes: list, probe_gap: tuple, give_up: float, read_hz: float = 0.0
    ) -> dict:
        """Run for `seconds`; return per-client counter deltas and the probes' event-to-visible latencies.

        `probes` lists (client index, probe slot) pairs; each of those clients dispatches SET_MARKER with a
        fresh value for its slot, waits until its own state shows it, then sleeps a random gap.
        """
        before = self._counters()
        start = time.perf_counter()
        results: list[dict] = []
        threads = []
        read = [0] * len(self.clients)  # distinct time orders each client's state showed (figure 5b)
        if read_hz > 0:
            reader = threading.Thread(
                target=self._read_states, args=(read, read_hz, seconds), name="reader", daemon=True
            )
            reader.start()
            threads.append(reader)
        for index, slot in probes:
            result: dict = {"latencies": [], "lost": 0}
            results.append(result)
            thread = threading.Thread(
                target=self._visible_loop,
                args=(self.clients[index], slot, result, None, seconds, probe_gap, give_up),
                name=f"probe-{slot}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        time.sleep(max(0.0, start + seconds - time.perf_counter()))
        after = self._counters()
        elapsed = time.perf_counter() - start
        for thread in threads:
            thread.join(timeout=give_up + 1.0)
        disconnected = _disconnected_status()
        return {
            "seconds": elapsed,
            "updates": [a[0] - b[0] for a, b in zip(after, before)],
            "bytes": [a[1] - b[1] for a, b in zip(after, before)],
            "packages": [a[2] - b[2] for a, b in zip(after, before)],
            "latencies": [x for r in results for x in r["latencies"]],
            "lost": sum(r["lost"] for r in results),
            "read": read,
            "dropped_clients": sum(1 for c in self.clients if c.connection.status == disconnected),
        }

    def _read_states(self, read: list, hz: float, seconds: float) -> None:
        """Figure 5b: read every client's time order through `access_game_state()`, round-robin, `hz` sweeps
        a second, sleeping the rest; count in `read` the distinct time orders each client showed."""
        last = [-1] * len(self.clients)
        start = time.perf_counter()
        sweep = 0
        while not _elapsed(start, seconds):
            for index, client in enumerate(self.clients):
                with client.access_game_state() as state:
                    order = int(state.time_order)
                if order != last[index]:
                    if last[index] != -1:
                        read[index] += 1
                    last[index] = order
            sweep += 1
            time.sleep(max(0.0, start + sweep / hz - time.perf_counter()))

    def _visible_loop(
        self,
        client: Any,
        slot: Optional[int],
        result: dict,
        count: Optional[int],
        seconds: Optional[float],
        gap: tuple,
        give_up: float,
    ) -> None:
        """Dispatch SET_MARKER with fresh values and time until the client's own state shows each."""
        rng = random.Random(self.random.random())
        disconnected = _disconnected_status()
        start = time.perf_counter()
        sent = 0
        while True:
            if count is not None and sent >= count:
                return
            if seconds is not None and _elapsed(start, seconds):
                return
            if client.connection.status == disconnected:
                return  # the connection was lost (counted as a dropped client, not as lost changes)
            value = self._next_value()
            if slot is None:

                def seen(game_state: Any, value: int = value) -> bool:
                    return bool(game_state.marker == value)

                t0 = time.perf_counter()
                client.dispatch_event("SET_MARKER", value)
            else:

                def seen(game_state: Any, value: int = value) -> bool:
                    return bool(game_state.markers[slot] == value)

                t0 = time.perf_counter()
                client.dispatch_event("SET_MARKER", value, probe=slot)
            sent += 1
            try:
                client.wait_until(seen, timeout=give_up)
            except TimeoutError:
                result["lost"] += 1
            else:
                result["latencies"].append(time.perf_counter() - t0)
            time.sleep(rng.uniform(*gap))

    def visible(self, count: int, gap: tuple, give_up: float) -> dict:
        """Figure 2: event-to-visible latency of the first client, `count` events, on the plain `marker`."""
        result: dict = {"latencies": [], "lost": 0}
        self._visible_loop(self.clients[0], None, result, count, None, gap, give_up)
        return result

    def ack(self, count: int, gap: tuple, give_up: float) -> dict:
        """Figure 1: time from `dispatch_event(..., ack_callback=cb)` to `cb` being called."""
        client = self.clients[0]
        rng = random.Random(self.random.random())
        round_trips: list[float] = []
        lost = 0
        for _ in range(count):
            acked = threading.Event()
            stamp: list[float] = []

            def on_ack(stamp: list = stamp, acked: threading.Event = acked) -> None:
                stamp.append(time.perf_counter())
                acked.set()

            t0 = time.perf_counter()
            client.dispatch_event("SET_MARKER", self._next_value(), ack_callback=on_ack)
            if acked.wait(give_up):
                round_trips.append(stamp[0] - t0)
            else:
                lost += 1
            time.sleep(rng.uniform(*gap))
        return {"round_trips": round_trips, "lost": lost}


def worker_main(conn: Any, port: int, count: int, seed: int) -> None:
    """Run `count` clients of the server at 127.0.0.1:`port` and serve measurement requests."""
    _real_network_only()
    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    worker = _Worker(port, count, seed)
    try:
        _serve(
            conn,
            {
                "connect": worker.connect,
                "window": worker.window,
                "ack": worker.ack,
                "visible": worker.visible,
                "disconnect": worker.disconnect,
            },
        )
    finally:
        worker.disconnect()
