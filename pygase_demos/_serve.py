"""A dedicated server for a demo: `pygase-demo NAME serve [--port P] [--password W] [--bots N]
[--relay HOST:PORT [--public]]`.

The demo's backend (`make_backend`: the same rules as `host` mode) with no window, no player of its own
and no display, for a spare machine or a small cloud server. It is dedicated (`Backend(dedicated=True)`):
no client becomes its host, so no player can shut it down. It listens on all interfaces, IPv4 and IPv6
(`_framework.LISTEN_ON_ALL`); with a relay it registers there too and prints `room code: ABC234`
(`RoomCodeReporter`), listed in the relay's public list with --public. It logs its start, its room code,
players coming and going (`PlayerLog`) and its end to stderr, and stops on Ctrl-C (SIGINT) or SIGTERM, or
after --seconds: the players are told the server shuts down (`Backend.shutdown()`), no thread is left
behind, and the process exits with status 0.

`DedicatedServer` is the server itself (it neither prints nor touches signals or the logging set-up);
`serve_from_command_line` is what `run_demo` runs for `serve`: the log handler, the signal handlers, the
lines on stdout (where players join; the room code), and the wait.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Optional, Union

from pygase import Backend, GameState
from pygase_demos import _framework
from pygase_demos._framework import (
    DEFAULT_PORT,
    BotRunner,
    Demo,
    DemoRun,
    PlayerLog,
    RoomCodeReporter,
    describe_listening,
    final_state,
    hosting_line,
    join_command,
    make_backend,
    public_listing,
)

logger = logging.getLogger("pygase_demos.serve")

#: how often the waiting main thread looks whether a signal asked it to stop (seconds)
POLL_INTERVAL = 0.1
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DedicatedServer:
    """A demo's backend listening on its own, with optional bots.

    Arguments:
        demo: the game
        port: port to listen on (0: any free one; `start()` returns the one bound)
        password: session password players must give (None: anyone may join)
        bots: computer players, each a `Client` of this process joining over loopback
        hostname: address to listen on; by default all of this machine's (`_framework.LISTEN_ON_ALL`)
        relay: a relay's "HOST:PORT" to register with for a room code (`room_code`), or None
        public: with a relay, list the session there (True, or a dict with `game` and `name`)
    """

    def __init__(
        self,
        demo: Demo,
        port: int = DEFAULT_PORT,
        password: Optional[str] = None,
        bots: int = 0,
        hostname: Optional[str] = None,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> None:
        self.demo = demo
        self.relay = relay
        self.public = public
        self.hostname = _framework.LISTEN_ON_ALL if hostname is None else hostname
        self.port = port
        self.password = password
        self.bot_count = bots
        self.backend: Optional[Backend] = None
        self.players = PlayerLog()
        self.bots: Optional[BotRunner] = None
        self._thread: Optional[threading.Thread] = None
        self._threads_before: set[threading.Thread] = set()

    def start(self) -> int:
        """Start listening (and the bots); return the port. With a relay, it returns once the relay gave
        the room code (`room_code`), or after `Backend.run_in_thread`'s wait without one (it keeps asking).

        Raises:
            OSError: if the address cannot be bound (the port is taken, say); ConnectionError if the relay's
                name does not resolve
        """
        self._threads_before = set(threading.enumerate())
        self.backend = make_backend(self.demo, self.password, self.players, dedicated=True)
        self._thread = self.backend.run_in_thread(
            self.hostname, self.port, relay=self.relay, public=self.public
        )
        port = self.backend.server.port
        assert port is not None
        self.port = port
        logger.info(
            "%s server listening on %s, port %d, %s, up to %d players",
            self.demo.title,
            describe_listening(self.hostname),
            port,
            "password required" if self.password else "no password",
            self.demo.max_players,
        )
        if self.bot_count:
            self.bots = BotRunner(self.demo, port, self.bot_count, password=self.password)
            self.bots.start()
            logger.info("%d bots joining", self.bot_count)
        return port

    @property
    def room_code(self) -> Optional[str]:
        """The room code players join with through the relay (None without a relay, or until it answered)."""
        return self.backend.room_code if self.backend is not None else None

    @property
    def running(self) -> bool:
        """Whether the backend still runs (until `stop()`: no client of a dedicated server can stop it)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> Optional[GameState]:
        """Stop the bots, tell the players the server shuts down, and wait for every thread of it to end.

        Returns the game state as it was before anyone left (None if the server never started).
        """
        if self.backend is None or self._thread is None:
            return None
        state = final_state(self.backend)  # before anyone leaves
        if self.bots is not None:  # the bots leave first, like a window's bots do
            bot_ids = {bot.player_id for bot in self.bots.bots if bot.player_id is not None}
            self.bots.stop()
            # Their goodbyes are in; wait (briefly) for the game loop to have handled them, so that the
            # log says they left and the game loop does not stop with their departure still queued.
            deadline = time.monotonic() + 1.0
            while bot_ids & self.players.player_ids() and time.monotonic() < deadline:
                time.sleep(0.01)
        connected = len(self.backend.server.connections)
        if connected:
            logger.info("%d client(s) still connected: telling them that the server shuts down", connected)
        self.backend.shutdown()  # sends every client the shutdown notice
        self._thread.join(timeout=5)
        self._thread = None
        leftover = _threads_left(self._threads_before, timeout=2.0)
        if leftover:
            logger.warning("threads still running: %s", ", ".join(thread.name for thread in leftover))
        logger.info("server stopped")
        return state


def _threads_left(before: set[threading.Thread], timeout: float) -> list[threading.Thread]:
    """The threads that were not there in `before` and still run after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        leftover = [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]
        if not leftover or time.monotonic() >= deadline:
            return leftover
        time.sleep(0.01)


class _LogFilter(logging.Filter):
    """The library's own INFO and DEBUG records stay out of a server's log unless --verbose."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name == "pygase" or record.name.startswith("pygase.")
        return self.verbose or not library or record.levelno >= logging.WARNING


def _install_log_handler(verbose: bool) -> Callable[[], None]:
    """Log INFO to stderr in a plain format; return what undoes it (for a run inside a larger program)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_LogFilter(verbose))
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    return undo


def _catch_stop_signals(requested: list[str]) -> Callable[[], None]:
    """Make SIGINT and SIGTERM append their name to `requested` instead of ending the process; return what
    restores the previous handlers. Signals can only be caught in the main thread: elsewhere, nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(number: int, frame: Optional[FrameType]) -> None:
        requested.append(signal.Signals(number).name)  # (no logging in a signal handler: its lock)

    previous: dict[int, Any] = {number: signal.signal(number, on_signal) for number in STOP_SIGNALS}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)

    return restore


def serve_from_command_line(demo: Demo, args: argparse.Namespace) -> DemoRun:
    """Run `serve` mode with parsed arguments (see `run_demo`) until a signal or --seconds ends it."""
    undo_logging = _install_log_handler(args.verbose)
    requested: list[str] = []
    restore_signals = _catch_stop_signals(requested)
    public = public_listing(demo, f"{demo.title} server") if args.public else False
    server = DedicatedServer(demo, args.port, args.password, args.bots, relay=args.relay, public=public)
    try:
        try:
            port = server.start()
        except ConnectionError as error:  # (before OSError: it is one) the relay's name does not resolve
            logger.error("cannot register with the relay %s: %s", args.relay, error)
            raise SystemExit(1) from None
        except OSError as error:
            logger.error(
                "cannot listen on %s, port %d: %s", describe_listening(server.hostname), args.port, error
            )
            raise SystemExit(1) from None
        # The lines a command prints (the log goes to stderr): where players find the game.
        lead = f"Serving {demo.title} on {describe_listening(server.hostname)}, port {port}"
        print(hosting_line(lead, demo.name, port, args.relay), flush=True)
        reporter: Optional[RoomCodeReporter] = None
        if args.relay is not None:

            def on_code(code: str) -> None:
                logger.info(
                    "room code %s at the relay %s%s; players anywhere join with: %s",
                    code,
                    args.relay,
                    " (listed publicly)" if args.public else "",
                    join_command(demo.name, code, args.relay),
                )

            assert server.backend is not None  # (started)
            reporter = RoomCodeReporter(server.backend, on_code)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not requested and server.running:
            if reporter is not None:
                reporter.check()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                logger.info("stopping after %g s (--seconds)", args.seconds)
                break
            time.sleep(POLL_INTERVAL if remaining is None else min(POLL_INTERVAL, remaining))
        if requested:
            logger.info("stopping on %s", requested[0])
        elif not server.running:
            logger.error("the server stopped on its own (see the log above)")
        state = server.stop()
    finally:
        if server.running:  # an exception on the way: still tell the players and end the threads
            server.stop()
        restore_signals()
        undo_logging()
    return DemoRun(state, 0, server.bot_count)
