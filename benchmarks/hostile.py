"""Benchmark pygase under hostile traffic: the red team's attacks, garbage absorbed, memory over time.

Every process here talks over the loopback interface only. The backend (`pygase.Backend`, 50 Hz, interval
0.02 s) runs in its own process, bound to 127.0.0.1, port 0; its state holds 20 entities that all move
every tick (plus `tick` and a `players` dict set by events). Honest clients run in other processes and use
only the public `pygase.Client` API (`connect_in_thread`, `wait_until`, `dispatch_event`, `disconnect`)
and the counters of `client.connection`. Each child process answers requests from this one over a
multiprocessing pipe.

Three parts: `attacks` (the default), `garbage` and `memory` (the figures the README's performance table
quotes); `--only PART` runs one, `--all` runs all three (garbage, memory, then the attacks).

0. attacks (issue 11's red-team list). A backend with a session password (a random 4-digit PIN), a host
   (a hand-driven client, the first to join) and 10 honest clients in another process, which count the
   state updates they apply; their mean rate is measured without an attack first (the reference). Then
   each attack runs from a red-team process of its own, at a bounded rate, for a bounded time (a 5 s
   window, 2 s with --quick, after a 0.5 s ramp), and prints one line:

       attack=<name> honest_rate_pct=<p> server_rss_mb=<m> server_cpu_pct=<c> effect=<none|...>

   `honest_rate_pct` is the honest clients' mean update rate in the window in % of the reference;
   `server_rss_mb` the backend's highest VmRSS (/proc/<pid>/status, sampled every 0.1 s from the
   attack's start to its end); `server_cpu_pct` the backend's CPU (utime + stime, /proc/<pid>/stat) over
   the window, in % of one core. The last line is `attacks=<n> with_effect=<k>`; the target is
   `with_effect=0`. Details (what each attack sent and got, the checks' figures) go to stderr.

   `effect` lists, comma-separated, what the attack achieved; `none` if no check found anything. The
   checks every attack gets: `server_down` (the backend process is not up or its game loop stopped
   ticking); `honest_rate_<p>pct` (the honest clients kept less than 90 % of their reference rate);
   `honest_disconnected_<n>` (n honest clients lost their connection); `rss_grew_to_<m>MB` (RSS reached
   100 MB, or grew by 25 MB or more during the attack); `cpu_saturated` (the backend used 90 % of a core
   or more); `server_error` (the backend logged an error that means a fault inside pygase: a datagram
   that could not be handled, a handler that failed); `log_lines_<n>` (the backend logged n > 10
   warnings in the second half of the window: the attacker keeps writing the server's log; a burst that
   stops, such as the one warning each of the first 100 unknown event types get, shows on stderr with
   the attack's other warnings but is not an effect); and for the attacks of a client that
   joined and sends packages built by hand (5 to 9, 11), `inconclusive` if the server acknowledged none
   of them (nothing shows they reached its decoder). The attacks, each with its own checks:

   1. spoofed_packages: datagrams that claim to come from a victim (honest client 0), 2,000/s: its
      sealed datagrams (captured as it sent them) replayed from its own address (forged with a raw
      socket, IP_HDRINCL; needs CAP_NET_RAW, else they come from the attacker's address and stderr says
      so) and from the attacker's, with a byte flipped, with the counter jumped ahead (sequence jump),
      and packages carrying `pygase:disconnect` and `COUNT` events under the victim's connection id,
      sealed with a made-up key or not at all. `moved_victim`: the server's connection with the victim's
      id was at another address at any of its 4-per-second looks, or is at the end;
      `disconnected_victim`: that connection was missing at a look, or the victim is not connected or
      has a new connection id at the end; `victim_rate_<p>pct`: the victim kept less than 90 % of its
      own reference rate; `forged_event_handled`: the backend's `COUNT` handler ran (only forgeries
      carry that event).
   2. sniffing: the host joined with the PIN; everything it sent and received (its whole handshake,
      HELLO to WELCOME, and its first packages) is what a sniffer on the path records. The attacker
      tries all 10,000 PINs offline against it: for each it computes the CPace generator of the PIN and
      the captured cookie and derives session keys (the pygase KDF, with the captured shares) from every
      secret it could compute without a party's private scalar (the generator, either share, a share
      times a scalar made from the PIN), and checks whether they open the captured CONFIRM's proof or
      the WELCOME (which would reveal the host token), and whether a share equals the generator; it
      also tries to read every captured datagram as a plain package. `password_guessed`: some guess
      opened something or matched; `plaintext_readable`: a captured datagram reads as a package;
      `host_token_seen` / `pin_in_clear`: the host token's bytes, or the PIN's digits, appear in a
      captured datagram. A control first checks, with the host's real keys, that the captured CONFIRM
      and WELCOME do open (`inconclusive` if not: the attack would have tested nothing).
   3. host_takeover: the host leaves; a client that knows the PIN binds the old host's address (same
      IP and port) and joins, then sends `pygase:shutdown` with the token its WELCOME gave, with the
      old host's token (as if it had leaked) and with zeros. `host_taken`: its WELCOME made it the host,
      or the server names its address as the host, or the server asked to shut down or went down.
   4. online_guessing: as many handshakes with wrong PINs as it can from one source address (16 at
      once, at most 200 started per second), each to the end: HELLO, RESPONSE, CONFIRM. A guess counts
      when the server answers it (refused: wrong password); a CONFIRM the server ignores or turns away
      untested (one proof per cookie, a back-off per source: "try again later") tests nothing.
      `pin_guessable_in_<m>min`: at the rate achieved in the window, all 10,000 PINs take an hour or
      less; `pin_guessed`: a wrong PIN was let in. Meanwhile 15 more source addresses guess too (4 at
      once each); what all got together is shown on stderr, not judged (the issue asks for a back-off
      per source).
   5. held_back_events: a joined client (it knows the PIN) sends events with ids 2..4097 and never 1,
      4 per package (nests of one-entry maps of some 370 bytes: the most decoded memory per wire byte),
      400 packages/s, round after round: the server must hold them until 1 comes. Generic checks.
   6. costly_decoding: events of type `pygase:x` whose argument is a 1,900-element list (of empty
      lists: the costliest element of one byte), one per package, 1,500/s. Generic checks.
   7. oversized_parts: events of ~2 MiB (more than the server's max_event_size of 1 MiB) in parts,
      2,000 parts/s, alternately with their true part count (2,098 parts of 1,000 bytes) and with a
      count the server allows (1,049) but parts of 1,900 bytes. `oversized_event_handled`: the game's
      handler got an event larger than max_event_size.
   8. unknown_types: events of unknown types, each a unique 1,000-character one, 1,000/s. Generic.
   9. forged_shutdowns: packages of a joined non-host client, each with 53 `pygase:shutdown` events
      with random tokens, 500/s (26,500 forged shutdowns/s): warnings the server would log unthrottled.
      `host_taken` as in 3.
   10. slot_squatting: 63 handshakes with the PIN from one host (another loopback address) to fill
      max_clients (64), the squatters kept alive; then an honest newcomer (a `pygase.Client` in the
      honest clients' process) joins. `newcomer_refused` (with the reason) / `newcomer_failed`: it did
      not get the state within 8 s.
   11. lying_progress: a joined client sends a package every 2 ms reporting time order 0 (it has no
      state) and acknowledging with all-ones ack bits (half of them for the newest package it got, half
      for 16 packages ahead). `server_sends_<x>x`: the server sent it more than 4 times the bytes per
      second it sent an honest client.
   12. amplification: a client joins and leaves; from its address, that just left, the attacker sends
      in phases (about 200/s each): its own goodbye and earlier datagrams again, 17-byte packages
      naming its old connection id, 17-byte handshake messages of every kind, HELLOs, RESPONSEs and
      CONFIRMs with valid cookies; and before it leaves, its own fresh sealed packages from another
      address (the server answers with path challenges). `amplification_<x>x`: in some phase the bytes
      the server sent back exceed the bytes sent to it (x = the highest ratio).

   Attackers come from loopback addresses of their own (127.0.0.11 and up; 127.0.0.1 if those cannot be
   bound), so that a per-source limit the server applies to one attack does not fall on the honest
   clients or the next attack; the host and the victim are on 127.0.0.1. Each of these addresses stands
   for a host on the internet: the backend of this part counts loopback addresses toward its per-IP
   limits as it counts public IPs (pygase exempts loopback and private networks, where every player
   has an address of its own; see `loopback_as_public`, said on stderr at the start). Before each attack
   the setup is checked: a backend that went down is started again with its clients (the reference is
   measured again), honest clients that lost their connection are replaced. An attack that fails with
   an error prints its line with `effect=error` (the traceback goes to stderr). The whole part takes
   about 2 to 3 minutes (--quick about 1).

The garbage and memory parts print figures, one line each, then a summary block:

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

Run (from the repository root; the attacks take about 2 to 3 minutes, --quick about 1; garbage and memory
together about 7 minutes, --quick about 1):

    python benchmarks/hostile.py                      # the attacks
    python benchmarks/hostile.py --quick
    python benchmarks/hostile.py --only attacks
    python benchmarks/hostile.py --only garbage
    python benchmarks/hostile.py --only memory --minutes 10
    python benchmarks/hostile.py --all                # garbage, memory, then the attacks
    python benchmarks/hostile.py --attack sniffing --attack slot_squatting   # some of the attacks
    python benchmarks/hostile.py --log-file /tmp/pygase.log   # pygase's INFO messages too, for diagnosis

Every child process is shut down at the end, on errors, on Ctrl-C and on SIGTERM too; every client
disconnects before its process exits. Logging stays at WARNING. The machine's load average and the CPU
used by other programs during each window are printed, since this benchmark shares its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import math
import multiprocessing
import os
import random
import signal
import socket
import struct
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

# the attacks part
ATTACK_WINDOW = 5.0  # seconds each attack is measured (after a ramp); --quick: 2
RAMP = 0.5  # seconds an attack runs before its window starts
RSS_LIMIT_MB = 100.0  # the backend's RSS must stay under this
RSS_GROWTH_MB = 25.0  # ... and must not grow by this much during one attack
CPU_SATURATED = 90.0  # % of one core
LOG_LINES = 10  # warnings the backend may log in the second half of an attack's window
PIN_HOUR = 3600.0  # an online guesser must not get through all 10,000 PINs within this many seconds
SENDS_TO_LIAR = 4.0  # a client that lies about its progress must not get more than this times an honest one's
TRANSCRIPT = 48  # datagrams of the host's session a sniffer records (its handshake and first packages)
SQUATTERS = 63
GUESS_SOURCES = 16  # source addresses of the online guesser's second figure (not judged)
NEWCOMER_TIMEOUT = 8.0

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


def loopback_as_public() -> str:
    """Make this process's server count loopback addresses toward its per-IP limits as it counts public
    ones (it exempts loopback and private networks, where every player has an address of its own): in the
    attacks part each 127.0.0.x stands for a host on the internet. Returns what was done."""
    import ipaddress

    try:  # (where the per-IP limit lives: _server_admission since the player API, _server_core before)
        from pygase import _server_admission as module
    except ImportError:
        from pygase import _server_core as module  # type: ignore[no-redef]

    original = getattr(module, "_source_of", None)
    if original is None:
        return "the server has no per-IP source function (_source_of): nothing changed"

    def source_of(address: tuple) -> Any:
        try:
            ip = ipaddress.ip_address(address[0])
        except ValueError:
            return original(address)
        return ip if ip.is_loopback else original(address)

    module._source_of = source_of
    return "the server counts each loopback address as a public IP for its per-IP limits"


def backend_main(
    conn: Any,
    interval: float,
    log_file: Optional[str] = None,
    password: Optional[str] = None,
    loopback_public: bool = False,
) -> None:
    _child_setup(log_file)
    from pygase import Backend, GameState

    address_rule = loopback_as_public() if loopback_public else "addresses as they are"

    clock = [0.0]
    ticks = [0]
    counted: dict = {}  # address -> COUNT events handled (only attackers could send them in part 1)
    moves = [0]
    handled: dict = {}  # event type -> how many the handlers got (HELD, BIG: the attacks part)
    big_max = [0]  # bytes of the largest BIG event's data a handler got

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

    def on_held(*args: Any, **kwargs: Any) -> dict:
        handled["HELD"] = handled.get("HELD", 0) + 1
        return {}

    def on_big(*args: Any, **kwargs: Any) -> dict:
        handled["BIG"] = handled.get("BIG", 0) + 1
        size = sum(len(a) for a in args if isinstance(a, (bytes, str, list)))
        big_max[0] = max(big_max[0], size)
        return {}

    initial = GameState(
        tick=0,
        entities={i: {"x": 0.0, "y": 0.0} for i in range(ENTITIES)},
        players={},
    )
    handlers = {"COUNT": on_count, "MOVE": on_move, "HELD": on_held, "BIG": on_big}
    backend = Backend(initial, time_step, handlers, password=password)
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
            # the attacks part: where each connection (by id) is, who is host, what the handlers got
            "ids": {c.connection_id.hex(): f"{a[0]}:{a[1]}" for a, c in list(server.connections.items())},
            "host": None if server.host_client is None else "{}:{}".format(*server.host_client[:2]),
            "shutdown_requested": bool(server._core.shutdown_requested),
            "handled": dict(handled),
            "counted_total": sum(counted.values()),
            "big_max": big_max[0],
            "max_event_size": server._core.max_event_size,
            "addresses": address_rule,
        }

    def cleanup() -> None:
        if done[0]:
            return
        done[0] = True
        backend.shutdown()
        thread.join(timeout=5.0)

    _serve(conn, {"status": status}, cleanup)


# ---- the honest clients' process -------------------------------------------------------------------------


def clients_main(
    conn: Any, port: int, n: int, seed: int, log_file: Optional[str] = None, password: Optional[str] = None
) -> None:
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
            client.connect_in_thread(port, HOST, password)
        for client in clients:
            client.wait_until(lambda state: state.tick > 0, timeout=CONNECT_TIMEOUT)
        return time.perf_counter() - started

    def counts() -> dict:
        connections = [c.connection for c in clients if c.connection is not None]
        return {
            "time": time.monotonic(),
            "updates": [c.connection.updates_received if c.connection else 0 for c in clients],
            "bytes": [c.connection.bytes_received if c.connection else 0 for c in clients],
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

    def info() -> list:
        """Each client's local port, connection id (hex) and whether it is connected."""
        answer = []
        for client in clients:
            connection, protocol = client.connection, client._protocol
            transport = protocol.transport if protocol is not None else None
            cipher = connection._cipher if connection is not None else None
            answer.append(
                {
                    "port": transport.get_extra_info("sockname")[1] if transport is not None else None,
                    "id": cipher.connection_id.hex() if cipher is not None else None,
                    "connected": connection is not None and connection.status == connected,
                }
            )
        return answer

    def capture_from(index: int, seconds: float = 1.0, count: int = 32) -> list:
        """The first `count` datagrams client `index` sends in `seconds` (what a sniffer would record)."""
        protocol = clients[index]._protocol
        transport = protocol.transport if protocol is not None else None
        if transport is None:
            return []
        taken: list = []
        original = transport.sendto

        def record(data: bytes, *args: Any) -> None:
            if len(taken) < count:
                taken.append(bytes(data))
            original(data, *args)

        transport.sendto = record
        try:
            time.sleep(seconds)
        finally:
            del transport.sendto  # back to the class's method
        return taken

    def newcomer(patience: float = NEWCOMER_TIMEOUT) -> dict:
        """A new honest client joins (with the password); whether it got the state within `patience` s."""
        client = Client()
        started = time.perf_counter()
        result: dict = {"joined": False, "refused": None, "error": None}
        client.connect_in_thread(port, HOST, password)
        try:
            client.wait_until(lambda state: state.tick > 0, timeout=patience)
            result["joined"] = True
        except (TimeoutError, ConnectionError) as error:
            result["error"] = f"{type(error).__name__}: {error}"
        result["refused"] = client.refused_reason
        result["seconds"] = time.perf_counter() - started
        try:
            client.disconnect()
        except Exception:
            traceback.print_exc()
        return result

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
        "capture_from": capture_from,
        "info": info,
        "newcomer": newcomer,
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


# ---- hand-driven clients: the host, and attackers who know the protocol ----------------------------------


def _status_value(name: str) -> Any:
    from pygase.connection import ConnectionStatus

    return ConnectionStatus.get(name)


def _entry(event_type: str, args: list, kwargs: dict, event_id: int) -> bytes:
    """One event entry of a package, [type, args, kwargs, id], encoded as the wire has it."""
    from pygase import _codec

    return b"\x94" + _codec.pack(event_type) + _codec.pack(args) + _codec.pack(kwargs) + _codec.pack(event_id)


def _events_bytes(entries: list) -> bytes:
    """The encoded list of a package's event entries (each from `_entry`)."""
    count = len(entries)
    head = bytes((0x90 | count,)) if count < 16 else b"\xdc" + count.to_bytes(2, "big")
    return head + b"".join(entries)


def _plain_package(sequence: int, ack: int, bits: int, entries: list, floor: int, time_order: int) -> bytes:
    """A client package (unsealed) built straight into bytes from encoded event `entries`, as an attacker
    who writes the wire format itself would; `ClientPackage.from_datagram` reads it."""
    from pygase import _codec
    from pygase._packages import _body_start, _header_bytes

    return (
        _header_bytes(sequence, ack, bits)
        + _body_start(4, 0, _events_bytes(entries), floor)
        + _codec.pack(time_order)
    )


def _nest(depth: int) -> dict:
    """Nested one-entry maps: the most decoded memory per byte on the wire (as in the tests)."""
    value: dict = {}
    for _ in range(depth):
        value = {0: value}
    return value


class HandClient:
    """A `pygase.connection.ClientConnection` driven by hand over a UDP socket of its own, as
    tests/test_client_server.py does: what someone who knows the protocol runs (and, knowing the password,
    a player). It can record what it sends and receives (a sniffer on the path sees the same bytes) and
    send packages built by hand (`send_package`), sealed with its session key.
    """

    def __init__(
        self, server: tuple, password: Optional[str], host: str = HOST, port: int = 0, record: int = 0
    ) -> None:
        from pygase.connection import ClientConnection
        from pygase.event import UniversalEventHandler

        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.connection = ClientConnection(server, UniversalEventHandler(), password)
        self.lock = threading.RLock()
        self.record_limit = record
        self.recorded: list = []  # ("out" or "in", datagram): the first `record_limit` of them
        self.keys: Optional[tuple] = None  # the session keys once agreed (the judge's control in attack 2)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.send_own = True  # whether `step` sends what the connection itself has due
        self.next_event_id = 1  # the next event id of packages built by hand
        self.closed = False
        # Which packages built by hand the server acknowledged: it took them (decoded them, and did not
        # refuse their events), which tells an attack that its packages reached the server's decoder.
        self.crafted: set = set()
        self.acked: set = set()
        reliability = self.connection._reliability
        acknowledge = reliability.acknowledge

        def note_acks(ack: Any, bits: int) -> Any:
            newest, rest = int(ack), bits
            if newest:
                self.acked.add(newest)
                while rest:
                    distance = (rest & -rest).bit_length()
                    rest &= rest - 1
                    self.acked.add((newest - distance - 1) % 65535 + 1)
            return acknowledge(ack, bits)

        reliability.acknowledge = note_acks

    @property
    def joined(self) -> bool:
        connection = self.connection
        return connection._cipher is not None and connection.status == _status_value("Connected")

    @property
    def done(self) -> bool:
        return self.connection.status == _status_value("Disconnected")

    def _record(self, direction: str, datagram: bytes) -> None:
        if len(self.recorded) < self.record_limit:
            self.recorded.append((direction, bytes(datagram)))

    def send(self, datagram: bytes) -> None:
        try:
            self.sock.sendto(datagram, self.server)
        except OSError:
            return
        self.bytes_sent += len(datagram)
        self._record("out", datagram)

    def step(self, now: float) -> None:
        """Take what arrived, run the timers, send what is due, run the callbacks that are due."""
        from pygase._outputs import CallbackDue
        from pygase.errors import PygaseError

        with self.lock:
            if self.closed:
                return
            connection = self.connection
            for _ in range(1000):
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                except OSError as error:  # (an ICMP "port unreachable", say)
                    connection.receive_network_error(error, now)
                    break
                self.bytes_received += len(data)
                self._record("in", data)
                with contextlib.suppress(ValueError, PygaseError):
                    connection.receive_datagram(data, now)
                exchange = connection._exchange
                if exchange is not None and exchange.keys is not None:
                    self.keys = exchange.keys
            connection.handle_timer(now)
            if self.send_own:
                for datagram in connection.datagrams_to_send(now):
                    self.send(datagram)
            for output in connection.events():
                if isinstance(output, CallbackDue):
                    output.function(*output.args)

    def package(
        self,
        entries: list,
        floor: int,
        time_order: Optional[int] = None,
        ack: Optional[int] = None,
        bits: Optional[int] = None,
    ) -> bytes:
        """A package built by hand, sealed: the next sequence number, the acks of this connection (or
        `ack` and `bits`), its time order (or `time_order`), the encoded event `entries` and `floor`."""
        with self.lock:
            connection = self.connection
            assert connection._cipher is not None, "not joined"
            connection.local_sequence = connection.local_sequence + 1
            self.crafted.add(int(connection.local_sequence))
            received = connection._received
            if time_order is None:
                time_order = int(connection._reported_time_order(time.monotonic()))
            plaintext = _plain_package(
                int(connection.local_sequence),
                int(received.newest) if ack is None else ack,
                received.bits if bits is None else bits,
                entries,
                floor,
                time_order,
            )
            if len(plaintext) > 2048:
                raise ValueError(f"a package of {len(plaintext)} bytes: more than a server takes")
            return connection._cipher.seal(plaintext)

    @property
    def crafted_acked(self) -> int:
        """How many packages built by hand the server acknowledged so far."""
        return len(self.crafted & self.acked)

    def send_package(self, entries: list, floor: int, **fields: Any) -> int:
        datagram = self.package(entries, floor, **fields)
        self.send(datagram)
        return len(datagram)

    def leave(self, pump: Optional[Pump], timeout: float = 1.5) -> None:
        """Leave as a client does (a goodbye that the server acknowledges), then close the socket."""
        with self.lock:
            self.send_own = True
            if self.joined:
                reliability = self.connection._reliability
                reliability.next_event_id = max(reliability.next_event_id, self.next_event_id)
                self.connection.shutdown()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.done:
            if pump is None:
                self.step(time.monotonic())
            time.sleep(0.005)
        self.close(pump)

    def close(self, pump: Optional[Pump] = None) -> None:
        if pump is not None:
            pump.remove(self)
        with self.lock:
            if not self.closed:
                self.closed = True
                self.sock.close()


class Pump:
    """Drives hand clients from one thread: each one `step`s every `period` seconds."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self._clients: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pump", daemon=True)
        self._thread.start()

    def add(self, *clients: HandClient) -> None:
        with self._lock:
            self._clients.extend(clients)

    def remove(self, client: HandClient) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            now = time.monotonic()
            with self._lock:
                clients = list(self._clients)
            for client in clients:
                try:
                    client.step(now)
                except Exception:
                    traceback.print_exc()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def join_all(clients: list, pump: Pump, timeout: float) -> None:
    """Let the pump drive `clients` until each joined or gave up, or `timeout` passed."""
    pump.add(*clients)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(c.joined or c.done for c in clients):
        time.sleep(0.01)


@contextlib.contextmanager
def joined_attacker(port: int, password: Optional[str], ip: str) -> Any:
    """A hand client that joined the server (it knows the password, like any player), driven by a pump;
    it leaves and closes afterwards."""
    pump = Pump()
    client = HandClient((HOST, port), password, host=ip)
    try:
        join_all([client], pump, CONNECT_TIMEOUT)
        if not client.joined:
            raise RuntimeError(
                f"the attacker could not join: {client.connection.refused_reason or 'no welcome'}"
            )
        yield client
        time.sleep(0.3)  # (the acks of its last packages)
        client.leave(pump)
    finally:
        client.close(pump)
        pump.stop()


def paced(rate: float, seconds: float) -> Any:
    """Count 0, 1, 2 ... at `rate` per second for `seconds` (in bursts of at most 50 when behind)."""
    start = time.perf_counter()
    done = 0
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return
        due = int(rate * elapsed) + 1 - done
        if due <= 0:
            time.sleep(min(0.002, (done - rate * elapsed) / rate))
            continue
        for _ in range(min(due, 50)):
            yield done
            done += 1


# ---- the host's process ----------------------------------------------------------------------------------


def host_main(conn: Any, port: int, password: Optional[str], log_file: Optional[str] = None) -> None:
    """The host: the first client to join, driven by hand so that its whole session can be recorded."""
    _child_setup(log_file)
    pump = Pump()
    client = HandClient((HOST, port), password, record=TRANSCRIPT)

    def join(timeout: float = CONNECT_TIMEOUT) -> dict:
        join_all([client], pump, timeout)
        connection = client.connection
        return {
            "joined": client.joined,
            "host": connection.host_token is not None,
            "address": list(client.address),
            "token": connection.host_token,
            "refused": connection.refused_reason,
        }

    def transcript() -> dict:
        with client.lock:
            return {"datagrams": list(client.recorded), "keys": client.keys}

    def leave() -> dict:
        client.leave(pump)
        return {"address": list(client.address), "left": client.done}

    def cleanup() -> None:
        client.close(pump)
        pump.stop()

    _serve(conn, {"join": join, "transcript": transcript, "leave": leave}, cleanup)


# ---- the red team's process ------------------------------------------------------------------------------


def _ip_udp(source: tuple, target: tuple, payload: bytes) -> bytes:
    """An IPv4 packet holding a UDP datagram from `source` to `target` (the kernel fills in the IP header's
    checksum; a UDP checksum of 0 means none)."""
    udp = struct.pack("!HHHH", source[1], target[1], 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0x4000,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(source[0]),
        socket.inet_aton(target[0]),
    )
    return header + udp


def spoofer() -> tuple:
    """(a raw socket that sends UDP datagrams with any source address, how) if forging works here
    (IP_HDRINCL, needs CAP_NET_RAW; checked by forging a datagram to a socket of our own), else
    (None, why not)."""
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except OSError as error:
        return None, f"no raw socket ({error}): sent from the attacker's address instead"
    forged = (HOST, 9)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        probe.settimeout(1.0)
        try:
            raw.sendto(_ip_udp(forged, probe.getsockname(), b"probe"), (HOST, 0))
            _, sender = probe.recvfrom(64)
        except OSError as error:
            raw.close()
            return None, f"forging failed ({error}): sent from the attacker's address instead"
    if tuple(sender) != forged:
        raw.close()
        return None, f"a forged datagram arrived from {sender}: sent from the attacker's address instead"
    return raw, "forged source address (raw socket)"


def _drain(sock: socket.socket) -> tuple:
    """(datagrams, bytes) waiting at a non-blocking socket, read and dropped."""
    count = size = 0
    while True:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return count, size
        except OSError:  # (an ICMP error for an earlier send)
            continue
        count += 1
        size += len(data)


def attack_spoof(
    port: int, victim: list, victim_id: str, captured: list, seconds: float, rate: float, ip: str
) -> dict:
    """Attack 1: datagrams that claim to be the victim's (see the module docstring)."""
    from pygase import _handshake as handshake
    from pygase._connection import DISCONNECT_EVENT
    from pygase._packages import PROTOCOL_ID, ClientPackage, Header
    from pygase.event import Event

    rng = random.Random(1)
    server = (HOST, port)
    victim_address = (victim[0], int(victim[1]))
    connection_id = bytes.fromhex(victim_id)
    top = max((int.from_bytes(d[12:20], "big") for d in captured), default=1)

    def plain(sequence: int, ack: int, bits: int, *events: Any) -> bytes:
        package = ClientPackage(Header._from_ints(sequence, ack, bits), 0)
        for index, event in enumerate(events):
            package._add_entry(event, index + 1)
        package.event_floor = 1
        return package.to_datagram()

    forged_events = (Event(DISCONNECT_EVENT), Event("COUNT", 1))
    pool: list = []  # (datagram, whether it is sent from the victim's address)
    for datagram in captured:
        pool.append((datagram, True))  # a replay from the victim's own address
        pool.append((datagram, False))  # a replay from elsewhere: "the victim moved here"
        flipped = bytearray(datagram)
        flipped[rng.randrange(20, len(flipped))] ^= 1 << rng.randrange(8)
        pool.append((bytes(flipped), True))
        jumped = datagram[:12] + (top + rng.randrange(1, 30_000)).to_bytes(8, "big") + datagram[20:]
        pool.extend([(jumped, True), (jumped, False)])  # the counter (sequence) jumped ahead
    # an unsealed package whose header (sequence, ack, bits) reads as the victim's connection id
    as_id = [int.from_bytes(connection_id[a:b], "big") for a, b in ((0, 2), (2, 4), (4, 8))]
    for _ in range(64):
        inner = plain(rng.randrange(1, 65536), rng.randrange(65536), rng.getrandbits(32), *forged_events)
        prefix = PROTOCOL_ID + connection_id + (top + rng.randrange(1, 1 << 20)).to_bytes(8, "big")
        pool.append((prefix + inner + rng.randbytes(16), True))  # the package in the clear, a made-up tag
        pool.append((prefix + inner + rng.randbytes(16), False))
        pool.append((prefix + rng.randbytes(len(inner) + 16), True))  # sealed with a made-up key
        pool.append((plain(*as_id, *forged_events), True))
        pool.append((handshake.hello(rng.randbytes(8)), True))
    rng.shuffle(pool)

    raw, how = spoofer()
    own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = forged = errors = replies = reply_bytes = 0
    try:
        own.bind((ip, 0))
        own.setblocking(False)
        for index in paced(rate, seconds):
            datagram, from_victim = pool[index % len(pool)]
            try:
                if from_victim and raw is not None:
                    raw.sendto(_ip_udp(victim_address, server, datagram), (HOST, 0))
                    forged += 1
                else:
                    own.sendto(datagram, server)
                sent += 1
            except OSError:
                errors += 1
            if index % 64 == 0:
                count, size = _drain(own)
                replies, reply_bytes = replies + count, reply_bytes + size
        time.sleep(0.2)
        count, size = _drain(own)
        replies, reply_bytes = replies + count, reply_bytes + size
    finally:
        own.close()
        if raw is not None:
            raw.close()
    return {
        "sent": sent,
        "forged_source": forged,
        "errors": errors,
        "spoofing": how,
        "pool": len(pool),
        "replies": replies,
        "reply_bytes": reply_bytes,
    }


def _session_keys_from(secret: bytes, cookie: bytes, client_share: bytes, server_share: bytes) -> tuple:
    """pygase's session key derivation (as `pygase._crypto.session_keys` does it) applied to `secret` in
    place of the shared point, which takes a party's private scalar to compute."""
    from pygase import _crypto

    return _crypto.derive_keys(secret, client_share, server_share, cookie)


def _opens(keys: tuple, proof: bytes, welcome: bytes) -> Optional[str]:
    """What the (client-to-server, server-to-client) `keys` open of a captured handshake: the CONFIRM's
    proof, the WELCOME (its body holds the host token), or None."""
    from pygase import _crypto as crypto

    to_server, to_client = keys
    zero = bytes(crypto.CONNECTION_ID_SIZE)
    with contextlib.suppress(crypto.AuthenticationError):
        crypto.Cipher(to_client, to_server, zero).open(proof, counter_zero=True)
        return "the CONFIRM's proof"
    with contextlib.suppress(crypto.AuthenticationError):
        crypto.Cipher(to_server, to_client, zero).open(welcome, counter_zero=True)
        return "the WELCOME"
    return None


def _handshake_of(datagrams: list) -> dict:
    """The first handshake message of each kind in a capture, parsed."""
    from pygase import _handshake as handshake

    messages: dict = {}
    for _, datagram in datagrams:
        if handshake.is_handshake(datagram):
            with contextlib.suppress(ValueError):
                message = handshake.parse(datagram)
                messages.setdefault(message.kind, message)
    return messages


def attack_sniff(datagrams: list) -> dict:
    """Attack 2: everything of a session joined with a PIN, recorded off the wire; try all 10,000 PINs."""
    from pygase import _crypto as crypto
    from pygase.connection import ClientPackage, ServerPackage

    started = time.perf_counter()
    messages = _handshake_of(datagrams)
    missing = [k for k in ("challenge", "response", "key", "confirm", "welcome") if k not in messages]
    if missing:
        return {"error": f"the capture has no {', '.join(missing)}", "tried": 0, "hits": [], "readable": 0}
    confirm = messages["confirm"]
    cookie, client_share, server_share = confirm.cookie, confirm.share, messages["key"].share
    proof, welcome = confirm.sealed, messages["welcome"].sealed
    readable = 0
    for _, datagram in datagrams:  # anything that reads as a package without a key?
        for kind in (ClientPackage, ServerPackage):
            try:
                kind.from_datagram(datagram)
            except Exception:
                continue
            readable += 1
            break
    hits: list = []
    for secret, what in ((client_share, "the client's share"), (server_share, "the server's share")):
        opened = _opens(_session_keys_from(secret, cookie, client_share, server_share), proof, welcome)
        if opened:
            hits.append(f"{what} as the shared secret opens {opened}")
    tried = 0
    for number in range(10_000):
        guess = f"{number:04d}"
        tried += 1
        point = crypto.password_point(guess, cookie)
        if point in (client_share, server_share):
            hits.append(f"PIN {guess}: a share is the PIN's generator itself")
        opened = _opens(_session_keys_from(point, cookie, client_share, server_share), proof, welcome)
        if opened:
            hits.append(f"PIN {guess}: its generator as the shared secret opens {opened}")
        scalar = hashlib.sha256(guess.encode()).digest()
        for theirs, whose in ((server_share, "the client's"), (client_share, "the server's")):
            try:
                keys = crypto.session_keys(scalar, theirs, client_share, server_share, cookie)
            except crypto.AuthenticationError:
                continue
            opened = _opens(keys, proof, welcome)
            if opened:
                hits.append(f"PIN {guess}: {whose} scalar made from it opens {opened}")
    return {
        "tried": tried,
        "hits": hits[:10],
        "hit_count": len(hits),
        "readable": readable,
        "datagrams": len(datagrams),
        "seconds": time.perf_counter() - started,
    }


def attack_takeover(
    port: int, address: list, password: str, old_token: Optional[bytes], seconds: float
) -> dict:
    """Attack 3: after the host left, a client binds its address and joins; then tries to shut down."""
    from pygase._connection import SHUTDOWN_EVENT
    from pygase.event import Event

    pump = Pump()
    deadline = time.monotonic() + 3.0
    client = None
    result: dict = {"bound": False, "joined": False, "host": False}
    try:
        while client is None:
            try:
                client = HandClient((HOST, port), password, host=address[0], port=int(address[1]))
            except OSError as error:
                if time.monotonic() > deadline:
                    result["error"] = f"cannot bind the old host's address {address}: {error}"
                    return result
                time.sleep(0.05)
        result["bound"] = True
        started = time.monotonic()
        join_all([client], pump, CONNECT_TIMEOUT)
        connection = client.connection
        result.update(joined=client.joined, host=connection.host_token is not None)
        result["refused"] = connection.refused_reason
        if client.joined:
            tokens = [t for t in (connection.host_token, old_token, bytes(16)) if t is not None]
            with client.lock:
                for token in tokens:
                    connection.dispatch_event(Event(SHUTDOWN_EVENT, token), retries=3)
            result["shutdowns_sent"] = len(tokens)
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        client.leave(pump)
    finally:
        if client is not None:
            client.close(pump)
        pump.stop()
    return result


def attack_guess(port: int, exclude: str, seconds: float, rate: float, slots: int, ips: list) -> dict:
    """Attack 4: handshakes with wrong PINs, as many as the server answers, from each source address in
    `ips` (`slots` at once from the first, 4 from each other; at most `rate` started per second in all)."""
    wrong = [f"{n:04d}" for n in range(10_000) if f"{n:04d}" != exclude]
    random.Random(4).shuffle(wrong)
    guesses = iter(wrong)
    attempts: list = []  # (hand client, when it started, source)
    names = ("started", "wrong_password", "let_in", "other_refusal", "unanswered")
    stats = {ip: dict.fromkeys(names, 0) for ip in ips}
    started = time.monotonic()
    next_start = started
    try:
        while time.monotonic() - started < seconds:
            now = time.monotonic()
            for ip in ips:
                limit = slots if ip == ips[0] else 4
                while sum(1 for a in attempts if a[2] == ip) < limit and now >= next_start:
                    attempts.append((HandClient((HOST, port), next(guesses), host=ip), now, ip))
                    stats[ip]["started"] += 1
                    next_start += 1.0 / rate
            for attempt in list(attempts):
                client, began, ip = attempt
                client.step(now)
                reason = client.connection.refused_reason
                if reason == "wrong password":
                    stats[ip]["wrong_password"] += 1
                elif reason is not None:
                    stats[ip]["other_refusal"] += 1
                elif client.joined:
                    stats[ip]["let_in"] += 1
                    client.leave(None)
                elif now - began > 1.5:  # the CONFIRM was ignored (or lost): it tested nothing
                    stats[ip]["unanswered"] += 1
                else:
                    continue
                client.close()
                attempts.remove(attempt)
            time.sleep(0.002)
    finally:
        for client, _, _ in attempts:
            client.close()
    return {"sources": stats, "seconds": time.monotonic() - started}


def attack_held(port: int, password: str, seconds: float, rate: float, ip: str) -> dict:
    """Attack 5: events with ids 2..4097, never 1 (the server must hold them until 1 comes)."""
    from pygase import _codec

    fat = _codec.pack("HELD") + _codec.pack([_nest(26)] * 7) + _codec.pack({})
    entries = [b"\x94" + fat + _codec.pack(event_id) for event_id in range(2, 4098)]
    groups = [entries[i : i + 4] for i in range(0, len(entries), 4)]
    sent = size = 0
    with joined_attacker(port, password, ip) as client:
        client.send_own = False
        for index in paced(rate, seconds):
            size += client.send_package(groups[index % len(groups)], floor=1)
            sent += 1
        client.next_event_id = 4098
    return {"packages": sent, "bytes": size, "events_per_round": len(entries), "acked": client.crafted_acked}


def attack_costly(port: int, password: str, seconds: float, rate: float, ip: str) -> dict:
    """Attack 6: `pygase:x` events, each with a 1,900-element list, one per package."""
    from pygase import _codec

    body = _codec.pack("pygase:x") + _codec.pack([[[]] * 1900]) + _codec.pack({})
    sent = size = 0
    with joined_attacker(port, password, ip) as client:
        client.send_own = False
        for _ in paced(rate, seconds):
            event_id = client.next_event_id
            client.next_event_id += 1
            size += client.send_package([b"\x94" + body + _codec.pack(event_id)], floor=event_id)
            sent += 1
    return {"packages": sent, "bytes": size, "acked": client.crafted_acked}


def attack_oversized(port: int, password: str, seconds: float, rate: float, ip: str) -> dict:
    """Attack 7: events of ~2 MiB in parts, with their true part count and with a count the server
    allows but larger parts."""
    from pygase import _codec
    from pygase._event_order import PART_EVENT, PART_SIZE

    sent = size = rounds = 0
    with joined_attacker(port, password, ip) as client:
        client.send_own = False
        limit = client.connection.max_event_size  # the server's, from its WELCOME
        allowed = limit // PART_SIZE + 1  # the most parts the server lets an event have
        fat_part = 1900
        true_event = _codec.pack(["BIG", [bytes(2 * 1024 * 1024)], {}])
        lying_event = _codec.pack(["BIG", [bytes(allowed * fat_part - 64)], {}])
        plans = [
            (true_event, PART_SIZE, (len(true_event) + PART_SIZE - 1) // PART_SIZE),
            (lying_event, fat_part, (len(lying_event) + fat_part - 1) // fat_part),
        ]
        schedule: list = []
        for _ in paced(rate, seconds):
            if not schedule:
                encoded, part, count = plans[rounds % 2]
                rounds += 1
                schedule = [(encoded[i * part : (i + 1) * part], i, count) for i in reversed(range(count))]
            data, part_index, count = schedule.pop()
            event_id = client.next_event_id
            client.next_event_id += 1
            entry = _entry(PART_EVENT, [part_index, count, data], {}, event_id)
            size += client.send_package([entry], floor=event_id)
            sent += 1
    return {
        "packages": sent,
        "bytes": size,
        "events_started": rounds,
        "event_bytes": [len(true_event), len(lying_event)],
        "part_counts": [plans[0][2], plans[1][2]],
        "max_event_size": limit,
        "acked": client.crafted_acked,
    }


def attack_unknown(port: int, password: str, seconds: float, rate: float, ip: str) -> dict:
    """Attack 8: events of unknown types, each a unique 1,000-character one."""
    rng = random.Random(8)
    sent = size = 0
    with joined_attacker(port, password, ip) as client:
        client.send_own = False
        for index in paced(rate, seconds):
            event_type = f"U{index:08d}" + rng.randbytes(496).hex()[:991]
            event_id = client.next_event_id
            client.next_event_id += 1
            size += client.send_package([_entry(event_type, [], {}, event_id)], floor=event_id)
            sent += 1
    return {
        "packages": sent,
        "bytes": size,
        "type_length": len(event_type) if sent else 0,
        "acked": client.crafted_acked,
    }


def attack_shutdowns(port: int, password: str, seconds: float, rate: float, ip: str) -> dict:
    """Attack 9: 53 forged shutdown events (random tokens) in each package of a joined client."""
    from pygase._connection import SHUTDOWN_EVENT

    rng = random.Random(9)
    per_package = 53
    sent = size = 0
    with joined_attacker(port, password, ip) as client:
        client.send_own = False
        while per_package > 1:
            try:  # (53 fit with id 0: events outside the order)
                client.package([_entry(SHUTDOWN_EVENT, [bytes(16)], {}, 0)] * per_package, floor=1)
                break
            except ValueError:
                per_package -= 1
        for _ in paced(rate, seconds):
            entries = [_entry(SHUTDOWN_EVENT, [rng.randbytes(16)], {}, 0) for _ in range(per_package)]
            size += client.send_package(entries, floor=client.next_event_id)
            sent += 1
    return {"packages": sent, "bytes": size, "per_package": per_package, "acked": client.crafted_acked}


_squatters: dict = {}  # the red team's process: the clients of attack 10 while they squat


def squat_start(port: int, password: str, count: int, ip: str) -> dict:
    """Attack 10: `count` clients from one host join; a pump keeps them alive until `squat_stop`."""
    squat_stop()
    pump = Pump(period=0.01)
    clients: list = []
    _squatters.update(pump=pump, clients=clients)
    started = time.monotonic()
    for _ in range(count):
        clients.append(HandClient((HOST, port), password, host=ip))
    join_all(clients, pump, 10.0)
    refused: dict = {}
    for client in clients:
        reason = client.connection.refused_reason
        if reason is not None:
            refused[reason] = refused.get(reason, 0) + 1
    return {
        "joined": sum(1 for c in clients if c.joined),
        "refused": refused,
        "seconds": time.monotonic() - started,
    }


def squat_stop() -> dict:
    """The squatters leave (all at once), and their sockets close."""
    pump, clients = _squatters.pop("pump", None), _squatters.pop("clients", [])
    still = sum(1 for c in clients if c.joined)
    for client in clients:
        with client.lock:
            client.send_own = True
            if client.joined:
                client.connection.shutdown()
    deadline = time.monotonic() + 2.0
    while clients and time.monotonic() < deadline and not all(c.done for c in clients):
        time.sleep(0.01)
    for client in clients:
        client.close(pump)
    if pump is not None:
        pump.stop()
    return {"still_joined": still}


def attack_liar(port: int, password: str, seconds: float, period: float, ip: str) -> dict:
    """Attack 11: a package every `period` s reporting time order 0 and all-ones acks."""
    sent = 0
    with joined_attacker(port, password, ip) as client:
        client.send_own = False
        received_before, sent_before = client.bytes_received, client.bytes_sent
        started = time.monotonic()
        for index in paced(1.0 / period, seconds):
            newest = int(client.connection._received.newest)
            ack = newest if index % 2 == 0 else (newest + 16 - 1) % 65535 + 1
            client.send_package([], floor=1, time_order=0, ack=ack, bits=0xFFFFFFFF)
            sent += 1
        elapsed = time.monotonic() - started
        received = client.bytes_received - received_before
        sent_bytes = client.bytes_sent - sent_before
    return {
        "packages": sent,
        "bytes_sent": sent_bytes,
        "bytes_received": received,
        "seconds": elapsed,
        "received_per_second": received / elapsed if elapsed else 0.0,
        "acked": client.crafted_acked,
    }


def attack_amplify(port: int, password: str, seconds: float, rate: float, ip: str) -> dict:
    """Attack 12: unauthenticated requests from an address that just left; reply bytes per request bytes."""
    from pygase import _crypto as crypto
    from pygase import _handshake as handshake
    from pygase._packages import PROTOCOL_ID

    rng = random.Random(12)
    server = (HOST, port)
    phases: dict = {}  # name -> [requests, request bytes, replies, reply bytes, largest reply]
    phase_seconds = seconds / 9

    def run_phase(name: str, sock: socket.socket, make: Callable[[int], Optional[bytes]]) -> list:
        entry = phases.setdefault(name, [0, 0, 0, 0, 0])
        answers: list = []
        for index in paced(rate, phase_seconds):
            datagram = make(index)
            if datagram is None:
                continue
            with contextlib.suppress(OSError):
                sock.sendto(datagram, server)
                entry[0] += 1
                entry[1] += len(datagram)
            answers.extend(_take(sock, entry))
        time.sleep(0.1)  # late replies still count for this phase
        answers.extend(_take(sock, entry))
        return answers

    def _take(sock: socket.socket, entry: list) -> list:
        taken = []
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return taken
            except OSError:
                continue
            entry[2] += 1
            entry[3] += len(data)
            entry[4] = max(entry[4], len(data))
            taken.append(data)

    pump = Pump()
    client = HandClient(server, password, host=ip, record=10_000)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        other.bind((ip, 0))
        other.setblocking(False)
        join_all([client], pump, CONNECT_TIMEOUT)
        if not client.joined:
            raise RuntimeError(f"the attacker could not join: {client.connection.refused_reason}")
        time.sleep(0.3)
        connection_id = client.connection._cipher.connection_id
        # its own fresh packages from another address: the server asks that address to prove it
        run_phase("own_packages_elsewhere", other, lambda i: client.package([], floor=1))
        pump.remove(client)  # from here on only the attacker reads its socket
        client.leave(None)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(tuple(client.address))  # the address that just left
        sock.setblocking(False)
        try:
            sent = [
                d for direction, d in client.recorded if direction == "out" and not handshake.is_handshake(d)
            ]
            goodbye = sent[-1:]
            run_phase("its_goodbye_again", sock, lambda i: goodbye[0] if goodbye else None)
            run_phase("its_packages_again", sock, lambda i: sent[i % len(sent)] if sent else None)
            run_phase("17_byte_packages", sock, lambda i: PROTOCOL_ID + connection_id + rng.randbytes(5))
            kinds = b"HCRKFWX"
            run_phase(
                "17_byte_handshakes",
                sock,
                lambda i: handshake.HANDSHAKE_PREFIX + kinds[i % 7 : i % 7 + 1] + rng.randbytes(10),
            )
            challenges = run_phase("hellos", sock, lambda i: handshake.hello(rng.randbytes(8)))
            cookies = []
            for reply in challenges:
                with contextlib.suppress(ValueError):
                    message = handshake.parse(reply)
                    if message.kind == "challenge":
                        cookies.append(message)
            share = crypto.share(rng.randbytes(32), crypto.password_point("0000", bytes(16)))

            def response(i: int) -> Optional[bytes]:
                if not cookies:
                    return None
                c = cookies[i % len(cookies)]
                return handshake.response(c.nonce, c.window, c.cookie, share)

            def confirm(i: int) -> Optional[bytes]:
                if not cookies:
                    return None
                c = cookies[i % len(cookies)]
                proof = rng.randbytes(
                    crypto.SEALED_OVERHEAD + len(handshake.CONFIRM_PROOF) + handshake.SEAT_TOKEN_SIZE
                )
                return handshake.confirm(c.nonce, c.window, c.cookie, share, True, proof)

            run_phase("responses", sock, response)
            run_phase("confirms", sock, confirm)
        finally:
            sock.close()
    finally:
        client.close(pump)
        other.close()
        pump.stop()
    return {
        "phases": {
            name: {
                "requests": e[0],
                "request_bytes": e[1],
                "replies": e[2],
                "reply_bytes": e[3],
                "largest_reply": e[4],
            }
            for name, e in phases.items()
        }
    }


def redteam_main(conn: Any, log_file: Optional[str] = None) -> None:
    _child_setup(log_file)
    handlers = {
        "spoof": attack_spoof,
        "sniff": attack_sniff,
        "takeover": attack_takeover,
        "guess": attack_guess,
        "held": attack_held,
        "costly": attack_costly,
        "oversized": attack_oversized,
        "unknown": attack_unknown,
        "shutdowns": attack_shutdowns,
        "squat_start": squat_start,
        "squat_stop": squat_stop,
        "liar": attack_liar,
        "amplify": attack_amplify,
    }
    _serve(conn, handlers, squat_stop)


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


class RssSampler:
    """The VmRSS of a process, sampled every `every` seconds from a thread until `stop`."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid = pid
        self.every = every
        self.samples = [rss_kb(pid)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError, RuntimeError):  # (the process is gone)
                self.samples.append(rss_kb(self.pid))

    def stop(self) -> tuple:
        """(RSS at the start, highest RSS) in MB."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        return self.samples[0] / 1024, max(self.samples) / 1024


@dataclass
class Window:
    """What one attack's window measured."""

    seconds: float
    honest: float  # the honest clients' mean update rate, % of the reference
    rates: list  # each honest client's update rate (updates/s)
    connected_before: int
    connected_after: int
    server_cpu: float  # % of one core
    others: float  # CPU of other programs on the machine, % of one core
    ours: float  # CPU of the honest clients', the red team's and the host's processes
    honest_bytes: float  # mean bytes/s the server sent an honest client
    middle_warnings: dict = field(default_factory=dict)  # the backend's warnings half-way through
    rss_start_mb: float = math.nan
    rss_max_mb: float = math.nan


def loopback_aliases() -> bool:
    """Whether this machine lets a socket bind 127.0.0.x other than 127.0.0.1 (Linux does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.11", 0))
        except OSError:
            return False
    return True


@dataclass
class Settings:
    quick: bool
    minutes: float
    parts: list
    log_file: Optional[str] = None
    window: float = 5.0
    attack_window: float = ATTACK_WINDOW
    attack_recovery: float = 1.0
    attacks: tuple = ()  # (empty: all of them)
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
        # the attacks part
        self.backend: Optional[Child] = None
        self.host: Optional[Child] = None
        self.honest: Optional[Child] = None
        self.redteam: Optional[Child] = None
        self.port = 0
        self.pin = ""
        self.aliases = False
        self.host_info: dict = {}
        self.reference = math.nan
        self.reference_rates: list = []
        self.last_status: dict = {}
        self.current = "attacks"
        self.attack_results: list = []
        self.sampler: Optional[RssSampler] = None
        self.window_started = 0.0
        self.middle_warnings: Optional[dict] = None

    # -- processes

    def start(self, name: str, target: Any, *args: Any) -> Child:
        self.sources.add(pygase_fingerprint())  # the code this child imports
        child = Child(self.context, name, target, *args)
        self.children.append(child)
        return child

    def report_warnings(self, part: str, children: list, stderr: bool = False) -> None:
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
        print(line, flush=True, file=sys.stderr if stderr else sys.stdout)
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

    def start_backend(
        self, name: str, password: Optional[str] = None, loopback_public: bool = False
    ) -> tuple[Child, int]:
        backend = self.start(name, backend_main, INTERVAL, self.settings.log_file, password, loopback_public)
        status = backend.request("status", timeout=30.0)
        if not status["up"]:
            raise ChildError("the backend did not come up")
        return backend, int(status["port"])

    @staticmethod
    def rates(before: dict, after: dict) -> list:
        seconds = after["time"] - before["time"]
        return [(b - a) / seconds for a, b in zip(before["updates"], after["updates"])]

    # -- part 0: the attacks

    ATTACKS = (
        "spoofed_packages",
        "sniffing",
        "host_takeover",
        "online_guessing",
        "held_back_events",
        "costly_decoding",
        "oversized_parts",
        "unknown_types",
        "forged_shutdowns",
        "slot_squatting",
        "lying_progress",
        "amplification",
    )

    def attack_ip(self, number: int) -> str:
        """The loopback address attack `number` comes from (a host of its own, if the machine allows)."""
        return f"127.0.0.{10 + number}" if self.aliases else HOST

    def detail(self, message: str) -> None:
        progress(f"{self.current}: {message}")

    def attacks_setup(self) -> None:
        s = self.settings
        progress(
            f"attacks: starting a backend with a password (a 4-digit PIN), its host and {HONEST_CLIENTS} "
            "clients"
        )
        self.backend, self.port = self.start_backend(
            "backend-attacks", password=self.pin, loopback_public=True
        )
        progress(f"attacks: {self.backend.request('status')['addresses']}")
        self.host = self.start("host", host_main, self.port, self.pin, s.log_file)
        joined = self.host.request("join", timeout=CONNECT_TIMEOUT + 10)
        if not (joined["joined"] and joined["host"]):
            raise ChildError(f"the hand-driven host did not join as the host: {joined}")
        self.host_info = joined
        self.start_honest()
        time.sleep(1.0)
        cpu = CpuWindow({"server": [self.backend.pid]})
        before = self.honest.request("counts")
        time.sleep(s.baseline)
        after = self.honest.request("counts")
        usage = cpu.stop()
        self.reference_rates = self.rates(before, after)
        self.reference = mean(self.reference_rates)
        progress(
            f"attacks: without an attack the honest clients apply {self.reference:.1f} updates/s each "
            f"(lowest {min(self.reference_rates):.1f}); server CPU {usage['server']:.0f} %, RSS "
            f"{rss_kb(self.backend.pid) / 1024:.1f} MB; other programs {usage['others']:.0f} %, "
            f"load {loadavg()}"
        )
        if not self.reference > 0:
            raise ChildError("the honest clients received no updates without an attack")

    def start_honest(self) -> None:
        s = self.settings
        self.honest = self.start(
            "honest-clients", clients_main, self.port, HONEST_CLIENTS, 1, s.log_file, self.pin
        )
        self.honest.request("connect", timeout=CONNECT_TIMEOUT + 10)

    def ticking(self) -> bool:
        """Whether the backend is up and its game loop ticks (keeps its status in `last_status`)."""
        first = self.backend.request("status")
        time.sleep(0.3)
        self.last_status = self.backend.request("status")
        return bool(self.last_status["up"]) and self.last_status["ticks"] > first["ticks"]

    def ensure_ready(self) -> None:
        """Before an attack: the red team's process, a backend that ticks, every honest client connected."""
        if self.redteam is None or not self.redteam.process.is_alive():
            if self.redteam is not None:
                self.close(self.redteam)
            self.redteam = self.start("redteam", redteam_main, self.settings.log_file)
        up = False
        if self.backend is not None and self.backend.process.is_alive():
            with contextlib.suppress(ChildError, OSError, EOFError):
                up = self.ticking()
        if not up:
            if self.backend is not None:
                progress("attacks: the server is down: starting a new one, with its host and clients")
            for child in (self.honest, self.host, self.backend):
                if child is not None:
                    self.close(child)
            self.honest = self.host = self.backend = None
            self.attacks_setup()
            return
        counts = self.honest.request("counts")
        if counts["connected"] < HONEST_CLIENTS:
            progress(
                f"attacks: {counts['connected']}/{HONEST_CLIENTS} honest clients connected: replacing them"
            )
            self.close(self.honest)
            self.start_honest()
            time.sleep(1.0)

    def begin(self) -> dict:
        """What is noted before an attack starts (and RSS sampling from then on)."""
        warnings, status = self.backend.request("warnings"), self.backend.request("status")
        self.sampler = RssSampler(self.backend.pid)
        return {"warnings": warnings, "status": status, "rss": self.sampler}

    def window(self, body: Optional[Callable[[], None]] = None, ramp: float = RAMP) -> Window:
        """Measure the honest clients and the backend's CPU while `body` runs (default: the window)."""
        time.sleep(ramp)
        ours = [c.pid for c in (self.honest, self.redteam, self.host) if c is not None]
        cpu = CpuWindow({"server": [self.backend.pid], "ours": ours})
        before = self.honest.request("counts")
        self.window_started = time.monotonic()
        self.middle_warnings = None
        if body is None:
            time.sleep(self.settings.attack_window / 2)
            self.half_way()
            time.sleep(self.settings.attack_window / 2)
        else:
            body()
        if self.middle_warnings is None:  # (a body that took longer than the window)
            self.middle_warnings = self.backend.request("warnings")
        after = self.honest.request("counts")
        usage = cpu.stop()
        rates = self.rates(before, after)
        seconds = after["time"] - before["time"]
        received = [(b - a) / seconds for a, b in zip(before["bytes"], after["bytes"])]
        return Window(
            seconds=seconds,
            honest=100.0 * mean(rates) / self.reference,
            rates=rates,
            connected_before=before["connected"],
            connected_after=after["connected"],
            server_cpu=usage["server"],
            others=usage["others"],
            ours=usage["ours"],
            honest_bytes=mean(received),
            middle_warnings=self.middle_warnings,
        )

    def half_way(self) -> None:
        """Note the backend's warnings once half the window has passed (window bodies call this often)."""
        if (
            self.middle_warnings is None
            and time.monotonic() >= self.window_started + self.settings.attack_window / 2
        ):
            self.middle_warnings = self.backend.request("warnings")

    def generic(self, begin: dict, window: Window) -> tuple:
        """The checks every attack gets (see the module docstring): (effects, the backend's status)."""
        window.rss_start_mb, window.rss_max_mb = begin["rss"].stop()
        effects = []
        up = False
        status: dict = {}
        warnings: dict = {}
        try:
            up = self.ticking()
            status = self.last_status
            warnings = self.backend.request("warnings")
        except (ChildError, OSError, EOFError) as error:
            self.detail(f"the backend does not answer: {error}")
        if not up:
            effects.append("server_down")
        if window.honest < 100.0 * KEEP:
            effects.append(f"honest_rate_{window.honest:.0f}pct")
        lost = window.connected_before - window.connected_after
        if lost > 0:
            effects.append(f"honest_disconnected_{lost}")
        if window.rss_max_mb >= RSS_LIMIT_MB or window.rss_max_mb - window.rss_start_mb >= RSS_GROWTH_MB:
            effects.append(f"rss_grew_to_{window.rss_max_mb:.0f}MB")
        if window.server_cpu >= CPU_SATURATED:
            effects.append("cpu_saturated")
        earlier = begin["warnings"]
        new = {}
        for template, (count, example) in warnings.items():
            more = count - earlier.get(template, (0, ""))[0]
            if more > 0:
                new[template] = (more, example)
        lines = sum(count for count, _ in new.values())
        late = sum(count for count, _ in warnings.values()) - sum(
            count for count, _ in window.middle_warnings.values()
        )
        if any(word in example for _, example in new.values() for word in FAULTS):
            effects.append("server_error")
        if late > LOG_LINES:
            effects.append(f"log_lines_{late}")
        self.detail(
            f"honest clients {window.honest:.1f} % of their reference (lowest client "
            f"{100.0 * min(window.rates) / self.reference:.1f} %), {window.connected_after}/{HONEST_CLIENTS} "
            f"connected; server CPU {window.server_cpu:.0f} %, RSS {window.rss_start_mb:.1f} -> max "
            f"{window.rss_max_mb:.1f} MB; clients and attacker {window.ours:.0f} %, other programs "
            f"{window.others:.0f} %, load {loadavg()}; backend warnings {lines} ({late} in the window's "
            "second half)"
            + (
                ": " + "; ".join(f"{c} x '{e}'" for c, e in sorted(new.values(), key=lambda x: -x[0])[:4])
                if new
                else ""
            )
        )
        return effects, status

    def report_attack(self, name: str, window: Optional[Window], effects: list) -> None:
        effect = ",".join(effects) if effects else "none"
        honest = window.honest if window is not None else math.nan
        rss = window.rss_max_mb if window is not None else math.nan
        cpu = window.server_cpu if window is not None else math.nan
        print(
            f"attack={name} honest_rate_pct={honest:.1f} server_rss_mb={rss:.1f} server_cpu_pct={cpu:.0f} "
            f"effect={effect}",
            flush=True,
        )
        self.attack_results.append((name, effects))

    def joined_attack(self, command: str, number: int, **arguments: Any) -> tuple:
        """Run an attack of a client that joined: (window, effects, status, result, begin). The effects
        are the generic ones, and `inconclusive` if the server acknowledged none of the packages built by
        hand (it can then not tell a defence from packages that were never decoded)."""
        s = self.settings
        begin = self.begin()
        self.redteam.send(
            command,
            port=self.port,
            password=self.pin,
            seconds=RAMP + s.attack_window,
            ip=self.attack_ip(number),
            **arguments,
        )
        window = self.window()
        result = self.redteam.receive(timeout=CONNECT_TIMEOUT + s.attack_window + 60)
        effects, status = self.generic(begin, window)
        if "acked" in result:
            if not result["acked"]:
                effects.insert(0, "inconclusive")
            self.detail(f"the server acknowledged {result['acked']:,} of its {result['packages']:,} packages")
        return window, effects, status, result, begin

    # the attacks, each returning (window, effects)

    def attack_spoofed_packages(self) -> tuple:
        s = self.settings
        victim = self.honest.request("info")[0]  # honest client 0
        victim_id, victim_at = victim["id"], f"{HOST}:{victim['port']}"
        captured = self.honest.request("capture_from", index=0, seconds=1.0, count=32)
        if not captured or victim_id is None:
            raise ChildError("nothing of the victim's was captured")
        begin = self.begin()
        self.redteam.send(
            "spoof",
            port=self.port,
            victim=[HOST, victim["port"]],
            victim_id=victim_id,
            captured=captured,
            seconds=RAMP + s.attack_window,
            rate=2000,
            ip=self.attack_ip(1),
        )
        looks = {"looks": 0, "missing": 0, "elsewhere": set()}

        def body() -> None:
            end = time.monotonic() + s.attack_window
            while time.monotonic() < end:
                self.half_way()
                where = self.backend.request("status")["ids"].get(victim_id)
                looks["looks"] += 1
                if where is None:
                    looks["missing"] += 1
                elif where != victim_at:
                    looks["elsewhere"].add(where)
                time.sleep(0.25)

        window = self.window(body)
        result = self.redteam.receive(timeout=60.0)
        generic, status = self.generic(begin, window)
        after = self.honest.request("info")[0]
        where = status.get("ids", {}).get(victim_id)
        effects = []
        if looks["elsewhere"] or (where is not None and where != victim_at):
            effects.append("moved_victim")
        if looks["missing"] or where is None or not after["connected"] or after["id"] != victim_id:
            effects.append("disconnected_victim")
        victim_rate = 100.0 * window.rates[0] / self.reference_rates[0]
        if victim_rate < 100.0 * KEEP:
            effects.append(f"victim_rate_{victim_rate:.0f}pct")
        forged = status.get("counted_total", 0) - begin["status"]["counted_total"]
        if forged > 0:
            effects.append("forged_event_handled")
        self.detail(
            f"{result['sent']:,} datagrams ({result['forged_source']:,} with the victim's address: "
            f"{result['spoofing']}) from a pool of {result['pool']} built from {len(captured)} captured; "
            f"the server answered the attacker's own address {result['replies']} times "
            f"({result['reply_bytes']:,} bytes); the victim's connection: {looks['looks']} looks, missing "
            f"{looks['missing']}, elsewhere "
            f"{sorted(looks['elsewhere'])}, at the end {where} (victim at {victim_at}); victim's rate "
            f"{victim_rate:.1f} % of its own; forged COUNT events handled: {forged}"
        )
        return window, effects + generic

    def sniff_control(self, datagrams: list, keys: Optional[tuple]) -> Optional[str]:
        """Why the sniffing attack would test nothing, or None: the host's real keys must open the captured
        CONFIRM and WELCOME, and the attack's key derivation must be pygase's."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

        from pygase import _crypto as crypto

        if keys is None:
            return "the host's session keys were not recorded"
        messages = _handshake_of(datagrams)
        if "confirm" not in messages or "welcome" not in messages or "key" not in messages:
            return "the capture lacks the CONFIRM, KEY or WELCOME"
        confirm, welcome = messages["confirm"], messages["welcome"]
        to_server, to_client = keys
        zero = bytes(crypto.CONNECTION_ID_SIZE)
        try:
            crypto.Cipher(to_client, to_server, zero).open(confirm.sealed, counter_zero=True)
            crypto.Cipher(to_server, to_client, zero).open(welcome.sealed, counter_zero=True)
        except crypto.AuthenticationError:
            return "the host's real keys do not open the captured CONFIRM and WELCOME"
        scalar, other = bytes(range(32)), bytes(range(1, 33))
        theirs = crypto.share(other, crypto.password_point("1234", confirm.cookie))
        expected = crypto.session_keys(scalar, theirs, confirm.share, messages["key"].share, confirm.cookie)
        secret = X25519PrivateKey.from_private_bytes(scalar).exchange(
            X25519PublicKey.from_public_bytes(theirs)
        )
        if _session_keys_from(secret, confirm.cookie, confirm.share, messages["key"].share) != expected:
            return "the attack's key derivation is not pygase's"
        return None

    def attack_sniffing(self) -> tuple:
        transcript = self.host.request("transcript")
        datagrams, keys = transcript["datagrams"], transcript["keys"]
        begin = self.begin()
        self.redteam.send("sniff", datagrams=datagrams)
        window = self.window()
        result = self.redteam.receive(timeout=600.0)
        generic, _ = self.generic(begin, window)
        effects = []
        control = self.sniff_control(datagrams, keys)
        if control or result.get("error") or result["tried"] < 10_000:
            effects.append("inconclusive")
        if result["hits"]:
            effects.append("password_guessed")
        if result["readable"]:
            effects.append("plaintext_readable")
        token = self.host_info["token"]
        if token and any(token in d for _, d in datagrams):
            effects.append("host_token_seen")
        if any(self.pin.encode() in d for _, d in datagrams):
            effects.append("pin_in_clear")
        messages = _handshake_of(datagrams)
        kinds = sorted(messages)
        clear = getattr(messages.get("confirm"), "has_password", None)
        control = control or "the real keys open the CONFIRM and WELCOME, the KDF is pygase's"
        self.detail(
            f"captured {len(datagrams)} datagrams of the host's session (handshake: {', '.join(kinds)}); "
            f"control: {control}; tried "
            f"{result['tried']:,} PINs offline in {result.get('seconds', 0):.1f} s: "
            f"{result.get('hit_count', 0)} hits {result['hits'][:3]}; readable as packages: "
            f"{result['readable']}; the CONFIRM says in the clear that the client has a password: {clear}"
            + (f"; {result['error']}" if result.get("error") else "")
        )
        return window, effects + generic

    def attack_host_takeover(self) -> tuple:
        s = self.settings
        old = self.host_info
        address = f"{HOST}:{old['address'][1]}"
        left = self.host.request("leave", timeout=15.0)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # until the server let the host's session go
            status = self.backend.request("status")
            if status["host"] is None and address not in status["ids"].values():
                break
            time.sleep(0.1)
        self.close(self.host)
        self.host = None
        begin = self.begin()
        self.redteam.send(
            "takeover",
            port=self.port,
            address=old["address"],
            password=self.pin,
            old_token=old["token"],
            seconds=RAMP + s.attack_window,
        )
        seen = {"host": set(), "shutdown": False}

        def body() -> None:
            end = time.monotonic() + s.attack_window
            while time.monotonic() < end:
                try:
                    self.half_way()
                    status = self.backend.request("status")
                except ChildError:
                    return
                if status["host"] is not None:
                    seen["host"].add(status["host"])
                seen["shutdown"] = seen["shutdown"] or status["shutdown_requested"]
                time.sleep(0.25)

        window = self.window(body)
        result = self.redteam.receive(timeout=CONNECT_TIMEOUT + 60.0)
        generic, status = self.generic(begin, window)
        effects = []
        if not result.get("bound") or not result.get("joined"):
            effects.append("inconclusive")
        if (
            result.get("host")
            or address in seen["host"]
            or seen["shutdown"]
            or status.get("shutdown_requested")
            or "server_down" in generic
        ):
            effects.append("host_taken")
        self.detail(
            f"the host left ({left}); a client bound its address {address}: {result}; the server named as "
            f"host during the attack: {sorted(seen['host']) or 'nobody'}; shutdown requested: "
            f"{seen['shutdown'] or status.get('shutdown_requested')}"
        )
        return window, effects + generic

    def attack_online_guessing(self) -> tuple:
        s = self.settings
        begin = self.begin()
        # the judged figure: one source address; the detail also gives what more sources got together
        sources = [self.attack_ip(4)] + (
            [f"127.0.0.{100 + i}" for i in range(GUESS_SOURCES - 1)] if self.aliases else []
        )
        self.redteam.send(
            "guess",
            port=self.port,
            exclude=self.pin,
            seconds=RAMP + s.attack_window,
            rate=200,
            slots=16,
            ips=sources,
        )
        window = self.window()
        result = self.redteam.receive(timeout=60.0)
        generic, _ = self.generic(begin, window)
        seconds = result["seconds"]
        one = result["sources"][sources[0]]
        tested = one["wrong_password"] + one["let_in"]
        rate = tested / seconds
        all_pins = 10_000 / rate if rate > 0 else math.inf
        effects = []
        if any(stats["let_in"] for stats in result["sources"].values()):
            effects.append("pin_guessed")
        if all_pins <= PIN_HOUR:
            effects.append(f"pin_guessable_in_{all_pins / 60:.1f}min")
        together = sum(st["wrong_password"] + st["let_in"] for st in result["sources"].values())
        self.detail(
            f"from {sources[0]}: {one['started']} handshakes started in {seconds:.1f} s; the server answered "
            f"{tested} guesses ({rate:.2f} guesses/s; all 10,000 PINs would take {all_pins / 3600:.1f} h at "
            f"that rate), ignored {one['unanswered']} CONFIRMs, refused {one['other_refusal']} otherwise; "
            f"meanwhile from {len(sources)} source addresses together (not judged: the back-off is per "
            f"source): {together} guesses answered, {together / seconds:.2f} guesses/s"
        )
        return window, effects + generic

    def attack_held_back_events(self) -> tuple:
        window, generic, status, result, begin = self.joined_attack("held", 5, rate=400)
        held = status.get("handled", {}).get("HELD", 0) - begin["status"]["handled"].get("HELD", 0)
        self.detail(
            f"{result['packages']:,} packages ({result['bytes']:,} bytes) with events 2..4097 in rounds; "
            f"HELD events the game handled (after the attacker's goodbye let them go): {held}"
        )
        return window, generic

    def attack_costly_decoding(self) -> tuple:
        window, generic, _, result, _ = self.joined_attack("costly", 6, rate=1500)
        self.detail(f"{result['packages']:,} packages ({result['bytes']:,} bytes) of pygase:x events")
        return window, generic

    def attack_oversized_parts(self) -> tuple:
        window, generic, status, result, _ = self.joined_attack("oversized", 7, rate=2000)
        largest = status.get("big_max", 0)
        effects = []
        if largest > result["max_event_size"]:
            effects.append("oversized_event_handled")
        self.detail(
            f"{result['packages']:,} parts ({result['bytes']:,} bytes) of {result['events_started']} events "
            f"of {result['event_bytes']} bytes in {result['part_counts']} parts (max_event_size "
            f"{result['max_event_size']:,}); the largest BIG event the game got: {largest:,} bytes"
        )
        return window, effects + generic

    def attack_unknown_types(self) -> tuple:
        window, generic, _, result, _ = self.joined_attack("unknown", 8, rate=1000)
        self.detail(
            f"{result['packages']:,} packages ({result['bytes']:,} bytes), each an event of a new "
            f"{result['type_length']}-character type"
        )
        return window, generic

    def attack_forged_shutdowns(self) -> tuple:
        window, generic, status, result, _ = self.joined_attack("shutdowns", 9, rate=500)
        effects = []
        if status.get("shutdown_requested") or "server_down" in generic:
            effects.append("host_taken")
        self.detail(
            f"{result['packages']:,} packages with {result['per_package']} forged shutdowns each "
            f"({result['packages'] * result['per_package']:,} in all)"
        )
        return window, effects + generic

    def attack_slot_squatting(self) -> tuple:
        s = self.settings
        begin = self.begin()
        outcome: dict = {}

        def body() -> None:
            started = time.monotonic()
            outcome["squat"] = self.redteam.request(
                "squat_start",
                timeout=60.0,
                port=self.port,
                password=self.pin,
                count=SQUATTERS,
                ip=self.attack_ip(10),
            )
            outcome["connections"] = len(self.backend.request("status")["ids"])
            outcome["newcomer"] = self.honest.request(
                "newcomer", timeout=NEWCOMER_TIMEOUT + 30.0, patience=NEWCOMER_TIMEOUT
            )
            time.sleep(max(0.0, s.attack_window / 2 - (time.monotonic() - started)))
            self.half_way()
            time.sleep(max(0.0, s.attack_window - (time.monotonic() - started)))

        try:
            window = self.window(body, ramp=0.0)
        finally:
            stopped = self.redteam.request("squat_stop", timeout=30.0)
        generic, _ = self.generic(begin, window)
        newcomer = outcome["newcomer"]
        effects = []
        if not newcomer["joined"]:
            reason = (newcomer["refused"] or "").replace(" ", "_")
            effects.append(f"newcomer_refused_{reason}" if reason else "newcomer_failed")
        self.detail(
            f"squatters from {self.attack_ip(10)}: {outcome['squat']}; server connections then "
            f"{outcome['connections']}; the newcomer: {newcomer}; squatters still joined at the end: "
            f"{stopped['still_joined']}"
        )
        return window, effects + generic

    def attack_lying_progress(self) -> tuple:
        window, generic, _, result, _ = self.joined_attack("liar", 11, period=0.002)
        ratio = result["received_per_second"] / window.honest_bytes if window.honest_bytes else math.inf
        effects = []
        if ratio > SENDS_TO_LIAR:
            effects.append(f"server_sends_{ratio:.1f}x")
        self.detail(
            f"{result['packages']:,} packages ({result['bytes_sent']:,} bytes); the server sent the liar "
            f"{result['received_per_second']:,.0f} bytes/s, an honest client "
            f"{window.honest_bytes:,.0f} bytes/s ({ratio:.2f} x)"
        )
        return window, effects + generic

    def attack_amplification(self) -> tuple:
        window, generic, _, result, _ = self.joined_attack("amplify", 12, rate=200)
        ratios = {}
        for name, phase in result["phases"].items():
            if phase["request_bytes"]:
                ratios[name] = phase["reply_bytes"] / phase["request_bytes"]
        worst = max(ratios.values(), default=0.0)
        effects = []
        if worst > 1.0:
            effects.append(f"amplification_{worst:.2f}x")
        self.detail(
            "reply bytes / request bytes: "
            + "; ".join(
                f"{name} {p['replies']}/{p['requests']} replies, {p['reply_bytes']:,}/{p['request_bytes']:,} "
                f"bytes ({ratios.get(name, 0.0):.2f} x, largest reply {p['largest_reply']})"
                for name, p in result["phases"].items()
            )
        )
        return window, effects + generic

    def run_attacks(self) -> int:
        """Run every attack, print its line and the last line; return how many had an effect."""
        self.pin = f"{random.SystemRandom().randrange(10_000):04d}"
        self.aliases = loopback_aliases()
        if not self.aliases:
            progress("attacks: 127.0.0.11 cannot be bound here: every attacker comes from 127.0.0.1")
        for number, name in enumerate(self.ATTACKS, start=1):
            if self.settings.attacks and name not in self.settings.attacks:
                continue
            self.current = f"attack {number} {name}"
            window: Optional[Window] = None
            try:
                self.ensure_ready()
                progress(f"{self.current}: running")
                window, effects = getattr(self, f"attack_{name}")()
            except (ChildError, OSError, RuntimeError, ValueError, KeyError, TypeError):
                progress(f"{self.current}: failed:\n{traceback.format_exc()}")
                effects = ["error"]
                if self.sampler is not None:
                    self.sampler.stop()
                if self.redteam is not None:  # (it may still be busy with the attack: start afresh)
                    self.close(self.redteam)
                    self.redteam = None
            self.report_attack(name, window, effects)
            time.sleep(self.settings.attack_recovery)
        with_effect = sum(1 for _, effects in self.attack_results if effects)
        children = [c for c in (self.backend, self.honest, self.redteam) if c is not None]
        self.report_warnings("attacks", children, stderr=True)
        print(f"attacks={len(self.attack_results)} with_effect={with_effect}", flush=True)
        return with_effect

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
        parts = s.parts
        figures = [part for part in parts if part != "attacks"]
        out = sys.stdout if figures else sys.stderr  # (the attacks' stdout is their lines only)
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
            file=out,
        )
        if os.environ.get(SIMULATE_VARIABLE):
            print(
                f"note: {SIMULATE_VARIABLE} is set; the benchmark processes ignore it", flush=True, file=out
            )
        failed = False
        with_effect = 0
        try:
            if "garbage" in parts:
                self.run_garbage()
            if "memory" in parts:
                self.run_memory()
            if figures:
                self.close_all()
                self.summarize(fingerprint, started)
            if "attacks" in parts:
                try:
                    with_effect = self.run_attacks()
                finally:
                    self.close_all()
                self.check_sources(fingerprint, sys.stderr)
                for problem in self.results.problems:
                    progress(f"PROBLEM: {problem}")
                progress(
                    f"attacks: load average at the end {loadavg()}; total time "
                    f"{time.perf_counter() - started:.0f} s"
                )
        except (KeyboardInterrupt, SystemExit):
            progress("interrupted: stopping every child process")
            raise
        except Exception:
            failed = True
            traceback.print_exc()
            self.results.problems.append("the benchmark stopped with an error (see above)")
            if figures:
                self.summarize(fingerprint, started)
        finally:
            self.close_all()
        return 1 if failed or self.results.problems or with_effect else 0

    def check_sources(self, fingerprint: str, out: Any) -> None:
        self.sources.add(fingerprint)
        if len(self.sources) > 1:
            self.results.problems.append(
                "pygase's source changed during the run: processes started with different code: "
                + ", ".join(sorted(self.sources))
            )
        elif pygase_fingerprint() != fingerprint:
            print(
                f"note: pygase's source changed after the last process started (now {pygase_fingerprint()})",
                file=out,
            )

    def summarize(self, fingerprint: str, started: float) -> None:
        """The summary block of the garbage and memory parts."""
        self.check_sources(fingerprint, sys.stdout)
        print("summary:")
        for line in self.results.summary:
            print(f"  {line}")
        for problem in self.results.problems:
            print(f"  PROBLEM: {problem}")
        if not self.results.problems:
            print("  no problems seen")
        print(
            f"  load average at the end {loadavg()}; total time {time.perf_counter() - started:.0f} s",
            flush=True,
        )


def parse_arguments(argv: Optional[list] = None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Benchmark pygase under hostile traffic (see the docstring of benchmarks/hostile.py)."
    )
    parser.add_argument("--quick", action="store_true", help="short windows (smoke run)")
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="duration of the memory part (default 5; --quick: 20 s)"
    )
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument(
        "--only", choices=("attacks", "garbage", "memory"), help="run one part (default: the attacks)"
    )
    parts.add_argument("--all", action="store_true", help="run every part: garbage, memory, then the attacks")
    parser.add_argument(
        "--attack",
        action="append",
        choices=HostileBenchmark.ATTACKS,
        help="run only this attack of the attacks part (may be given more than once)",
    )
    parser.add_argument(
        "--log-file",
        help="also write pygase's INFO messages of the backend and client processes to this file",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes needs a positive number")
    log_file = os.path.abspath(args.log_file) if args.log_file else None
    selected = ["garbage", "memory", "attacks"] if args.all else [args.only or "attacks"]
    settings = Settings(quick=args.quick, minutes=args.minutes, parts=selected, log_file=log_file)
    if args.attack:
        settings.attacks = [name for name in HostileBenchmark.ATTACKS if name in args.attack]
    if args.quick:
        settings.window = 2.0
        settings.baseline = 2.0
        settings.recovery = 1.0
        settings.rates = QUICK_RATES
        settings.attack_window = 2.0
        settings.attack_recovery = 0.5
    return settings


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Optional[list] = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    return HostileBenchmark(parse_arguments(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
