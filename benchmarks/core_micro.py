"""A deterministic, in-process measurement of the protocol core's CPU per client and tick (figure 5's load).

The same scenario as `benchmarks/core.py --clients N` (a store with 20 entities that all move every tick,
50 Hz, N clients, about 10 marker events a second), but without sockets, threads or processes: one
`ServerCore` and N `ClientConnection`s in this process, driven the way `pygase._transport` drives them
(a sweep after each tick, a reply to what a client sent, the clients' own timers), on a virtual clock.
Everything runs in one thread; each side's work is timed with the thread's CPU clock, so the figures
hardly depend on what else the machine runs (repeat it a few times and compare medians anyway).

Printed, per run and as the median of the runs:

- server: µs of CPU per client and tick (push_update, the sweeps, what it does with the clients'
  packages), and µs per datagram it sent;
- client: µs of CPU per datagram a client received (opening it, the package, its reply when due, its
  timers).

It uses only what both the current and older versions of pygase have (`pygase.testing.SimulatedSession`
to join the clients, then the cores directly), so it also measures an older checkout:

    python benchmarks/core_micro.py                       # 200 clients, 100 ticks, 5 runs
    PYTHONPATH=/tmp/base python benchmarks/core_micro.py  # the same against another checkout
    python benchmarks/core_micro.py --profile server      # cProfile of the server's share (or client)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from typing import Any, Callable, Optional

try:  # as `python -m benchmarks.core_micro` or `python benchmarks/core_micro.py`
    from benchmarks import _core_procs as procs
except ImportError:
    import _core_procs as procs  # type: ignore[no-redef]

INTERVAL = 0.02
ENTITIES = procs.ENTITIES
EVENTS_PER_SECOND = 10.0
_clock = time.thread_time


class _Game:
    """The game of benchmarks/core.py (`_core_procs._Game`), with the time step taking only `dt`."""

    def __init__(self) -> None:
        self._game = procs._Game()

    def initial_state(self) -> Any:
        return self._game.initial_state()

    def time_step(self, dt: float) -> dict:
        return self._game.time_step(None, dt)


class _Meter:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.profile: Optional[cProfile.Profile] = None

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        profile = self.profile
        if profile is not None:
            profile.enable()
        started = _clock()
        try:
            return function(*args)
        finally:
            self.seconds += _clock() - started
            if profile is not None:
                profile.disable()


class Harness:
    def __init__(self, clients: int, seed: int = 1) -> None:
        from pygase import GameStateStore
        from pygase.testing import SimulatedSession

        self.game = _Game()
        self.markers: dict = {}
        self.store = GameStateStore(self.game.initial_state())
        self.session = SimulatedSession(self.store, seed=seed)
        self.server = self.session.server
        if hasattr(self.server, "max_clients"):
            self.server.max_clients = max(clients, getattr(self.server, "max_clients", 0) or 0)
        for _ in range(clients):
            self.session.add_client()
        self.clients: dict[tuple, Any] = dict(self.session.clients)
        self.session.run(3.0, on_tick=lambda now: self._push())
        joined = sum(1 for c in self.clients.values() if getattr(c, "updates_received", 0) > 0)
        if joined != clients:
            raise RuntimeError(f"only {joined} of {clients} clients joined")
        self.now = self.session.network.now
        self.server_meter = _Meter()
        self.client_meter = _Meter()
        self.sent_by_server = 0
        self.received_by_server = 0
        self.received_by_clients = 0
        self._new_api = hasattr(self.server, "events")
        self._probe = 0
        self._marker = 0

    def _push(self) -> None:
        from pygase import GameStateUpdate

        changes = self.game.time_step(INTERVAL)
        if self.markers:
            changes["markers"], self.markers = self.markers, {}
        self.store.push_update(GameStateUpdate(self.store.get_game_state().time_order + 1, **changes))

    # -- the server's side, as pygase._transport.ServerProtocol drives it

    def _server_outputs(self, address: Optional[tuple] = None) -> list:
        server = self.server
        if self._new_api:
            outputs = server.events()
            return [o for o in outputs if type(o).__name__ == "EventReceived"]
        calls = server.take_calls(address) if address is not None else server.take_calls()
        for function, args in calls:
            function(*args)
        server.notifications.clear()
        return []

    def _sweep(self) -> list:
        server = self.server
        outgoing = server.datagrams_to_send(self.now)
        self._take_events(self._server_outputs())
        server.get_timer()
        return outgoing

    def _tick(self) -> list:
        self._push()
        return self._sweep()

    def _server_receive(self, datagram: bytes, address: tuple) -> list:
        server = self.server
        try:
            events = server.receive_datagram(datagram, address, self.now)
        except Exception as error:  # noqa: BLE001 - a drop, as the transport would
            if type(error).__name__ in ("DuplicateSequenceError",) or isinstance(error, ValueError):
                return []
            raise
        if events:  # an older core returns the events
            self._take_events([(e, None) for e in events])
        if server.settled(address):
            return []
        outgoing = server.datagrams_for(address, self.now)
        self._take_events(self._server_outputs(address))
        connection = server.connections.get(address)
        if connection is not None:
            connection.get_timer()
        return [(d, address) for d in outgoing]

    def _take_events(self, outputs: list) -> None:
        for output in outputs:
            event = output[0] if isinstance(output, tuple) else output.event
            if getattr(event, "type", None) == "SET_MARKER":
                self.markers[event.handler_kwargs.get("probe", 0)] = event.handler_args[0]

    # -- a client's side, as pygase._transport.ClientProtocol drives it

    def _client_flush(self, connection: Any) -> list:
        if hasattr(connection, "events"):
            connection.events()
        else:
            for function, args in connection.take_calls():
                function(*args)
        datagrams = connection.datagrams_to_send(self.now)
        if hasattr(connection, "events"):
            connection.events()
        connection.get_timer()
        return datagrams

    def _client_receive(self, connection: Any, datagram: bytes) -> list:
        try:
            connection.receive_datagram(datagram, self.now)
        except Exception as error:  # noqa: BLE001
            if type(error).__name__ == "DuplicateSequenceError" or isinstance(error, ValueError):
                return []
            raise
        if connection.settled():
            return []
        return self._client_flush(connection)

    def _client_timer(self, connection: Any) -> list:
        connection.handle_timer(self.now)
        return self._client_flush(connection)

    # -- one tick of virtual time

    def _deliver_to_clients(self, outgoing: list) -> list:
        replies = []
        meter = self.client_meter
        for datagram, address in outgoing:
            connection = self.clients.get(address)
            if connection is None:
                continue
            self.received_by_clients += 1
            replies.extend((d, address) for d in meter.run(self._client_receive, connection, datagram))
        return replies

    def _deliver_to_server(self, replies: list) -> list:
        outgoing = []
        for datagram, address in replies:
            self.received_by_server += 1
            outgoing.extend(self.server_meter.run(self._server_receive, datagram, address))
        self.sent_by_server += len(outgoing)
        return outgoing

    def _exchange(self, outgoing: list) -> None:
        while outgoing:
            replies = self._deliver_to_clients(outgoing)
            outgoing = self._deliver_to_server(replies)

    def run(self, ticks: int) -> None:
        from pygase.event import Event

        probe_every = max(1, round(1 / (EVENTS_PER_SECOND * INTERVAL)))
        addresses = list(self.clients)
        start = self.now
        for tick in range(ticks):
            self.now = start + tick * INTERVAL
            if tick % probe_every == 0:  # a probe dispatches a marker event (its timer sends it)
                address = addresses[self._probe % min(5, len(addresses))]
                self._marker += 1
                self.clients[address].dispatch_event(Event("SET_MARKER", self._marker, probe=self._probe % 5))
                self._probe += 1
            outgoing = self.server_meter.run(self._tick)
            self.sent_by_server += len(outgoing)
            self._exchange(outgoing)
            # the clients' own timers, a few times within the tick (heartbeats, acks of events)
            for step in (0.004, 0.010, 0.016):
                self.now = start + tick * INTERVAL + step
                replies = []
                for address, connection in self.clients.items():
                    timer = connection.get_timer()
                    if timer is not None and timer <= self.now:
                        replies.extend(
                            (d, address) for d in self.client_meter.run(self._client_timer, connection)
                        )
                self._exchange(self._deliver_to_server(replies))
                timer = self.server.get_timer()
                if timer is not None and timer <= self.now:
                    outgoing = self.server_meter.run(self._sweep)
                    self.sent_by_server += len(outgoing)
                    self._exchange(outgoing)


def measure(clients: int, ticks: int, profile: Optional[str] = None) -> dict:
    harness = Harness(clients)
    harness.run(10)  # warm up
    for name in ("server_meter", "client_meter"):
        setattr(harness, name, _Meter())
    harness.sent_by_server = harness.received_by_server = harness.received_by_clients = 0
    profiler = None
    if profile is not None:
        profiler = cProfile.Profile()
        getattr(harness, f"{profile}_meter").profile = profiler
    harness.run(ticks)
    bad = sum(1 for c in harness.server.connections.values() if c.quality != "good")
    result = {
        "server_us_per_client_tick": 1e6 * harness.server_meter.seconds / (ticks * clients),
        "server_us_per_sent": 1e6 * harness.server_meter.seconds / max(1, harness.sent_by_server),
        "client_us_per_received": 1e6 * harness.client_meter.seconds / max(1, harness.received_by_clients),
        "sent_per_client_tick": harness.sent_by_server / (ticks * clients),
        "received_per_client_tick": harness.received_by_server / (ticks * clients),
        "bad": bad,
    }
    if profiler is not None:
        result["profile"] = profiler
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", choices=("server", "client"), help="cProfile one side instead")
    parser.add_argument("--top", type=int, default=35, help="functions shown with --profile")
    arguments = parser.parse_args()
    import pygase

    print(f"pygase from {os.path.dirname(os.path.abspath(pygase.__file__))}", flush=True)
    if arguments.profile:
        result = measure(arguments.clients, arguments.ticks, arguments.profile)
        stats = pstats.Stats(result["profile"], stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(arguments.top)
        return
    results = []
    for run in range(arguments.runs):
        result = measure(arguments.clients, arguments.ticks)
        results.append(result)
        print(
            f"run {run + 1}: server {result['server_us_per_client_tick']:.1f} µs per client-tick "
            f"({result['server_us_per_sent']:.1f} µs per datagram sent, "
            f"{result['sent_per_client_tick']:.2f} sent and "
            f"{result['received_per_client_tick']:.2f} received per client-tick); "
            f"client {result['client_us_per_received']:.1f} µs per datagram received; "
            f"{result['bad']} connections 'bad'",
            flush=True,
        )
    server = statistics.median(r["server_us_per_client_tick"] for r in results)
    per_sent = statistics.median(r["server_us_per_sent"] for r in results)
    client = statistics.median(r["client_us_per_received"] for r in results)
    print(
        f"median of {len(results)} runs, {arguments.clients} clients, {arguments.ticks} ticks: server "
        f"{server:.1f} µs per client-tick ({per_sent:.1f} µs per datagram sent), client {client:.1f} µs per "
        f"datagram received",
        flush=True,
    )


if __name__ == "__main__":
    main()
