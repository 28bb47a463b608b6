"""What every demo shares: players joining and leaving, bots, the command line, LAN announcements.

A demo subclasses `Demo` with its rules (`initial_state`, `time_step`, `handlers`, `add_player`,
`remove_player`), its drawing (`setup_window`) and its bots (`bot_step`), and its `__main__` calls
`run_demo(TheDemo(), sys.argv[1:])`. Command line of every demo (`pygase-demo NAME` when installed,
`python -m pygase_demos.NAME`, or `python -m demos.NAME` in a checkout):

    pygase-demo NAME [local] [--bots N]                  host and play in one process (the default)
    pygase-demo NAME host [--port P] [--name N] [--password W] [--bots N] [--relay HOST:PORT [--public]]
    pygase-demo NAME join ADDRESS|CODE [--name N] [--password W] [--relay HOST:PORT]
    ... [--headless] [--seconds S] [--screenshot PATH] [--simulate CONDITIONS]
    pygase-demo NAME serve [--port P] [--password W] [--bots N] [--seconds S] [--verbose]
                           [--relay HOST:PORT [--public]]

ADDRESS is HOST, HOST:PORT, an IPv6 address (::1) or one in brackets with a port ([::1]:8080); see
`parse_address`. CODE is the room code of a game hosted with a relay (see `parse_join_target` for how a
code is told from a host name). `serve` is a dedicated server (`pygase_demos._serve`): the game's backend
with no window and no player of its own, listening on all interfaces (`LISTEN_ON_ALL`) and logging
players coming and going, until Ctrl-C or SIGTERM (or --seconds).

Room codes: with --relay HOST:PORT (default: the environment variable PYGASE_RELAY), `host` and `serve`
register the game with that relay (`python -m pygase.relay`) besides listening on the LAN as always, print
one line `room code: ABC234` on stdout once the relay gave the code (and a new one if it changes: a relay
that restarted and lost the session), and the window shows it in its title (`window_title`; chase also in
its invitation); players anywhere join with `join ABC234 --relay HOST:PORT`. --public lists the game in
the relay's public list, which the launcher (`pygase-demo`) shows beside the LAN's games.

--headless runs without a display and stops after --seconds S, 5 by default (the window stops
after --seconds too, and runs until closed without it). --simulate puts a simulated bad link in front
of this window's client, in the syntax of `PYGASE_SIMULATE` (`pygase.testing`), e.g.
`--simulate loss=10%,latency=75ms,jitter=10ms`: latency is one way, so the round trip is twice that;
times take ms or s, probabilities % or a fraction.

Joining: when a window or bot connects it sends JOIN(name); the backend calls `add_player`, remembers which
client address is which player and answers YOU_ARE(player_id). Event handlers of the demo get that
`player` id (and `game_state`, `dt`) if they declare them; events from clients that have not joined are
ignored. When a client leaves or times out, `remove_player` is called.

A demo with `player_ids = True` uses the library's players instead: windows and bots join with the join
data {"name": ...}, `player_joined(game_state, player_id, join_data)` seats the player (or raises
`pygase.JoinRefused`), `player_dropped` / `player_returned` follow a lost connection that comes back
within `rejoin_grace` seconds, `remove_player` runs when the player is gone for good, event handlers
declare `sender_id`, and `private_attributes` go to `Backend(private_attributes=...)`.

Either way the backend logs each player joining, being refused, dropping, returning and leaving at INFO
on the `pygase_demos.players` logger (shown by `serve`, and by the other modes with --verbose).
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

from pygase import (
    CLIENT_DROPPED,
    CLIENT_JOINED,
    CLIENT_LEFT,
    CLIENT_RETURNED,
    Backend,
    Client,
    GameState,
    JoinRefused,
)
from pygase._rendezvous_io import DEFAULT_RELAY_PORT, parse_relay, relay_from_environment
from pygase._room_codes import normalize_code
from pygase.testing import LinkConditions

logger = logging.getLogger("pygase_demos")
#: players joining, refused, dropping, returning and leaving, at INFO: a server's record of its players
players_logger = logging.getLogger("pygase_demos.players")

DEFAULT_PORT = 8080
#: Where `host` and `serve` listen: every address of this machine, IPv4 and IPv6 (dual-stack; IPv4 only
#: where the machine has no IPv6). The one place to change it.
LISTEN_ON_ALL = ""
#: The hostnames a server listens on every interface with ("" and "::" dual-stack, "0.0.0.0" IPv4 only).
ALL_INTERFACES = ("", "::", "0.0.0.0")
#: How a demo's command is written in its usage line and messages ("players join with: ..."): the
#: installed command. A checkout's `demos/` shortcuts set it to what is typed there, `python -m demos.{name}`.
DEMO_COMMAND = "pygase-demo {name}"
VERSION = "1"


@dataclass
class PlayerView:
    """What a window knows about its own player (and the relay it hosts or joined through, if any)."""

    name: str
    player_id: Any = None
    #: the relay's "HOST:PORT" when the game is hosted or joined with a room code (`--relay`), else None
    relay: Optional[str] = None
    #: the game's room code at that relay (a host knows it once the relay answered), else None
    room: Optional[str] = None


@dataclass
class Bot:
    """A computer player: a `Client` of its own, playing through the same network API as a person."""

    name: str
    client: Client
    rng: random.Random
    player_id: Any = None
    memory: dict = field(default_factory=dict)

    def dispatch(self, event_type: str, *args: Any, **kwargs: Any) -> None:
        self.client.dispatch_event(event_type, *args, **kwargs)


class Demo:
    """Base class of the demo games."""

    name = "demo"
    title = "PyGaSe demo"
    description = ""
    size = (800, 600)
    max_players = 16
    bot_names = ("Ada", "Bit", "Cog", "Dot", "Eve", "Fox", "Gus", "Hex", "Ivy", "Jet", "Kai", "Lux")
    #: True: players are the library's player ids (join data, rejoining; see the module docstring)
    player_ids = False
    #: state attributes keyed by player id of which each player receives only its own entry
    private_attributes: tuple = ()
    #: seconds a player whose connection was lost keeps its player id (with `player_ids`)
    rejoin_grace = 30.0

    # ---- server side ----
    def initial_state(self) -> GameState:
        raise NotImplementedError

    def time_step(self, game_state: GameState, dt: float) -> dict:
        raise NotImplementedError

    def handlers(self) -> dict:
        """Event type -> handler; handlers may declare `player`, `game_state`, `dt` and the event's data."""
        return {}

    def add_player(self, game_state: GameState, name: str) -> tuple:
        """Return (new player id, state changes) for a player called `name`."""
        raise NotImplementedError

    def remove_player(self, game_state: GameState, player_id: Any) -> dict:
        """Return the state changes when a player leaves."""
        raise NotImplementedError

    def player_joined(self, game_state: GameState, player_id: Any, join_data: dict) -> dict:
        """With `player_ids`: the state changes when a player arrives (raise `JoinRefused` to refuse)."""
        raise NotImplementedError

    def player_dropped(self, game_state: GameState, player_id: Any) -> dict:
        """With `player_ids`: the state changes when a player's connection was lost (its id is kept)."""
        return {}

    def player_returned(self, game_state: GameState, player_id: Any) -> dict:
        """With `player_ids`: the state changes when a dropped player is back with the same id."""
        return {}

    def player_count(self, game_state: GameState) -> int:
        players = getattr(game_state, "players", {})
        return len(players) if isinstance(players, dict) else 0

    # ---- client side ----
    def setup_window(self, window: Any, view: PlayerView) -> None:
        """Bind input, register hooks (draw ...) and interpolation on a `GameWindow`."""
        raise NotImplementedError

    def bot_step(self, bot: Bot, game_state: GameState, dt: float) -> None:
        """Play one step (called 20 times a second with the bot's view of the state)."""


def player_name(raw: Any) -> str:
    """The name a player joins with as the framework passes it on (to `add_player`, and to the log): at
    most 16 characters, "player" if it is empty."""
    return str(raw)[:16] or "player"


class PlayerLog:
    """Log players coming and going at INFO on `players_logger`, with their id and name.

    The backend's handlers call it (in the game loop's thread) after the demo's own rules ran, so it
    records what happened without knowing any rules. Names come from joining (a name sent by a client is
    quoted with `repr`, so it cannot forge log lines).
    """

    def __init__(self) -> None:
        self.names: dict[Any, str] = {}  # player id -> name, of the players in the game
        self._lock = threading.Lock()

    def player_ids(self) -> set:
        """The ids of the players in the game (joined and not left yet); callable from any thread."""
        with self._lock:
            return set(self.names)

    def who(self, player_id: Any) -> str:
        name = self.names.get(player_id)
        return f"player {player_id}" if name is None else f"player {player_id} ({name!r})"

    def joined(self, player_id: Any, name: str) -> None:
        with self._lock:
            self.names[player_id] = name
        players_logger.info("%s joined", self.who(player_id))

    def refused(self, name: str, reason: str) -> None:
        players_logger.info("refused %r: %s", name, reason)

    def dropped(self, player_id: Any, grace: float) -> None:
        players_logger.info(
            "%s dropped (connection lost; back within %g s keeps the seat)", self.who(player_id), grace
        )

    def returned(self, player_id: Any) -> None:
        players_logger.info("%s returned", self.who(player_id))

    def left(self, player_id: Any) -> None:
        players_logger.info("%s left", self.who(player_id))
        with self._lock:
            self.names.pop(player_id, None)


def make_backend(
    demo: Demo, password: Optional[str] = None, log: Optional[PlayerLog] = None, dedicated: bool = False
) -> Backend:
    """Build the demo's backend with the joining protocol wired in, logging players in `log` (a new
    `PlayerLog` by default). `dedicated`: no client becomes the host who may shut the server down (serve
    mode; `Backend(dedicated=True)`)."""
    log = PlayerLog() if log is None else log
    if demo.player_ids:

        def joined(game_state: GameState, player_id: Any, join_data: dict) -> dict:
            name = player_name(join_data.get("name") or "" if isinstance(join_data, dict) else "")
            try:
                changes = demo.player_joined(game_state, player_id, join_data)
            except JoinRefused as refusal:
                log.refused(name, str(refusal))
                raise
            log.joined(player_id, name)
            return changes

        def dropped(game_state: GameState, player_id: Any) -> dict:
            changes = demo.player_dropped(game_state, player_id)
            log.dropped(player_id, demo.rejoin_grace)
            return changes

        def returned(game_state: GameState, player_id: Any) -> dict:
            changes = demo.player_returned(game_state, player_id)
            log.returned(player_id)
            return changes

        def removed(game_state: GameState, player_id: Any) -> dict:
            changes = demo.remove_player(game_state, player_id)
            log.left(player_id)
            return changes

        return Backend(
            demo.initial_state(),
            demo.time_step,
            {
                CLIENT_JOINED: joined,
                CLIENT_DROPPED: dropped,
                CLIENT_RETURNED: returned,
                CLIENT_LEFT: removed,
                **demo.handlers(),
            },
            password=password,
            max_clients=demo.max_players + 8,
            rejoin_grace=demo.rejoin_grace,
            private_attributes=demo.private_attributes,
            dedicated=dedicated,
        )
    players: dict[tuple, Any] = {}  # client address -> player id (touched in the game loop only)
    backend = Backend(
        demo.initial_state(),
        demo.time_step,
        password=password,
        max_clients=demo.max_players + 8,
        rejoin_grace=demo.rejoin_grace,
        dedicated=dedicated,
    )

    def join(game_state: GameState, client_address: tuple, name: str = "player", **kwargs: Any) -> dict:
        if client_address in players:
            player_id, changes = players[client_address], {}
        else:
            if demo.player_count(game_state) >= demo.max_players:
                log.refused(player_name(name), f"the game is full ({demo.max_players} players)")
                backend.server.dispatch_event("FULL", target_client=client_address, retries=5)
                return {}
            player_id, changes = demo.add_player(game_state, player_name(name))
            players[client_address] = player_id
            log.joined(player_id, player_name(name))
        backend.server.dispatch_event("YOU_ARE", player_id, target_client=client_address, retries=10)
        return changes

    def left(game_state: GameState, client_address: tuple) -> dict:
        player_id = players.pop(client_address, None)
        if player_id is None:
            return {}
        changes = demo.remove_player(game_state, player_id)
        log.left(player_id)
        return changes

    def dropped(client_address: tuple) -> dict:
        if client_address in players:
            log.dropped(players[client_address], demo.rejoin_grace)
        return {}

    def returned(client_address: tuple) -> dict:
        if client_address in players:
            log.returned(players[client_address])
        return {}

    machine = backend.game_state_machine
    machine.register_event_handler("JOIN", join)
    machine.register_event_handler(CLIENT_LEFT, left)
    machine.register_event_handler(CLIENT_DROPPED, dropped)
    machine.register_event_handler(CLIENT_RETURNED, returned)
    for event_type, handler in demo.handlers().items():
        machine.register_event_handler(event_type, _as_player_handler(handler, players))
    return backend


def _as_player_handler(handler: Callable[..., Any], players: dict) -> Callable[..., Any]:
    from pygase_pygame._hooks import call_declared

    def handle(*args: Any, game_state: GameState, dt: float, client_address: tuple, **data: Any) -> Any:
        player_id = players.get(client_address)
        if player_id is None:
            return {}
        if args:
            data["args"] = args
        return call_declared(handler, player=player_id, game_state=game_state, dt=dt, **data)

    return handle


class BotRunner:
    """Run bots in one thread, each stepping 20 times a second."""

    def __init__(
        self, demo: Demo, port: int, count: int, seed: int = 7, password: Optional[str] = None
    ) -> None:
        self.demo = demo
        self.bots: list[Bot] = []
        rng = random.Random(seed)
        for index in range(count):
            bot = Bot(
                demo.bot_names[index % len(demo.bot_names)] + " (bot)", Client(), random.Random(rng.random())
            )
            if demo.player_ids:
                bot.client.connect_in_thread(port, "127.0.0.1", password, join_data={"name": bot.name})
            else:
                bot.client.register_event_handler(
                    "YOU_ARE", lambda player_id, bot=bot: setattr(bot, "player_id", player_id)
                )
                bot.client.connect_in_thread(port, "127.0.0.1", password)
            self.bots.append(bot)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-bots", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        joined: set[int] = set()
        while not self._stop.wait(0.05):
            now = time.monotonic()
            dt, last = now - last, now
            for index, bot in enumerate(self.bots):
                connection = bot.client.connection
                if connection is None or connection.updates_received == 0:
                    continue
                if self.demo.player_ids:
                    bot.player_id = bot.client.player_id
                elif index not in joined or (bot.player_id is None and bot.rng.random() < 0.05):
                    joined.add(index)
                    bot.dispatch("JOIN", name=bot.name, retries=5)
                if bot.player_id is None:
                    continue
                try:
                    with bot.client.access_game_state() as state:
                        self.demo.bot_step(bot, state, dt)
                except Exception:
                    logger.exception("bot %s failed a step", bot.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for bot in self.bots:
            bot.client.disconnect()


SIMULATE_EXAMPLE = "loss=10%,latency=75ms,jitter=10ms"


def parse_simulation(text: Optional[str]) -> Optional[LinkConditions]:
    """Parse --simulate, in the syntax of `LinkConditions.from_string` (e.g. "loss=10%,latency=75ms").

    Raises:
        argparse.ArgumentTypeError: with the accepted syntax; for the old LOSS,LATENCY_MS form (such as
            "0.1,150", a round trip in ms) it names the same conditions in the new syntax
    """
    if not text:
        return None
    old_form = text.replace(" ", "").split(",")
    if len(old_form) == 2 and "=" not in text:
        try:
            loss, round_trip = float(old_form[0].rstrip("%")), float(old_form[1].removesuffix("ms"))
        except ValueError:
            pass
        else:
            percent = loss if loss > 1 or old_form[0].endswith("%") else loss * 100
            one_way = round_trip / 2
            raise argparse.ArgumentTypeError(
                f"the LOSS,LATENCY_MS form is gone: write --simulate "
                f"loss={percent:g}%,latency={one_way:g}ms,jitter={one_way / 5:g}ms "
                f"for what {text} meant (latency is one way: {round_trip:g} ms round trip is "
                f"latency={one_way:g}ms)"
            )
    try:
        return LinkConditions.from_string(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


ADDRESS_FORMS = "HOST, HOST:PORT, an IPv6 address (::1) or [IPV6]:PORT"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split the address to join into (hostname, port).

    Accepts `HOST`, `HOST:PORT`, a bare IPv6 literal (`::1`, `2001:db8::1`: the default port, since the
    last group cannot be told from a port) and an IPv6 literal in brackets, with or without a port
    (`[::1]`, `[2001:db8::1]:8080`). The hostname comes back without brackets.

    Raises:
        ValueError: saying what is wrong (an unclosed bracket, a port that is no number or out of 1-65535,
            a bracketed address that is no IPv6 literal ...)
    """
    text = text.strip()
    if not text:
        raise ValueError(f"the address is empty: give {ADDRESS_FORMS}")
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{text!r}: no ']' closes the IPv6 address (write [IPV6]:PORT)")
        host, rest = text[1:close], text[close + 1 :]
        _check_ipv6(host, text, "only an IPv6 address goes in brackets")
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"{text!r}: after ']' comes ':PORT' or nothing")
        return host, _parse_port(rest[1:], text)
    if "[" in text or "]" in text:
        raise ValueError(f"{text!r}: brackets go around an IPv6 address only, as in [::1]:8080")
    if text.count(":") > 1:
        _check_ipv6(text, text, "an address with several ':' is an IPv6 address; with a port: [IPV6]:PORT")
        return text, default_port
    host, colon, port = text.partition(":")
    if not host:
        raise ValueError(f"{text!r}: no host before ':' (give {ADDRESS_FORMS})")
    if any(character.isspace() for character in host):
        raise ValueError(f"{text!r}: a host name has no spaces")
    return host, (_parse_port(port, text) if colon else default_port)


def format_address(hostname: str, port: int) -> str:
    """Write (hostname, port) as `parse_address` reads it back: an IPv6 literal in brackets."""
    return f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"


def _check_ipv6(host: str, text: str, hint: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IPv6 address ({hint})") from None


def _parse_port(port: str, text: str) -> int:
    if not port:
        raise ValueError(f"{text!r}: no port after ':'")
    if not (port.isascii() and port.isdigit()):
        raise ValueError(f"{text!r}: the port {port!r} is not a number")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"{text!r}: the port {number} is out of range (1-65535)")
    return number


def room_code_in(text: str) -> Optional[str]:
    """The room code `text` is written like, in canonical form (`ABC234`), or None.

    A room code has 6 characters from `pygase._room_codes.CODE_ALPHABET`, in any case, with spaces or
    dashes allowed ("abc-234"); text with a ':' or a '.' is never one (it is an address).
    """
    if ":" in text or "." in text:
        return None
    try:
        return normalize_code(text.strip())
    except ValueError:
        return None


class JoinTarget(NamedTuple):
    """What `join` joins: a room code at a relay, or an address (hostname, port); the other is None."""

    room: Optional[str]
    address: Optional[tuple[str, int]]


def parse_join_target(text: str, relay: Optional[str]) -> JoinTarget:
    """What the argument of `join` names: a room code (`room_code_in`) when a relay is set, else an address.

    Some host names look like room codes ("ubuntu", "server"): without a relay they stay host names, so
    joining a LAN machine works as before; with one, a port makes them an address ("ubuntu:8080"), and a
    short word that is not a room code ("ABCD2O": an O for a 0) is refused with what is wrong with it.

    Raises:
        ValueError: as `parse_address`, for what is neither
    """
    room = room_code_in(text)
    if room is not None and relay is not None:
        return JoinTarget(room, None)
    word = text.strip().replace("-", "").replace(" ", "")
    if relay is not None and word.isalnum() and 4 <= len(word) <= 8:  # a mistyped room code, most likely
        try:
            normalize_code(text.strip())
        except ValueError as error:
            raise ValueError(
                f"{error}; to join a machine of that name, give its port ({word}:8080)"
            ) from None
    return JoinTarget(None, parse_address(text))


def relay_argument(text: str) -> str:
    """--relay: a relay's HOST:PORT, checked by `parse_relay` (its message in a usage error)."""
    try:
        parse_relay(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text.strip()


def listens_on_all(hostname: Optional[str]) -> bool:
    """Whether a server given `hostname` listens on every interface of its machine."""
    return hostname in ALL_INTERFACES


def describe_listening(hostname: str) -> str:
    """Where a server given `hostname` listens, in words for a log line or a message."""
    if hostname in ("", "::"):
        return "all interfaces"  # (IPv4 and IPv6; IPv4 only on a machine without IPv6)
    if hostname == "0.0.0.0":
        return "all IPv4 interfaces"
    return hostname


def join_command(name: str, target: str, relay: Optional[str] = None) -> str:
    """The command that joins demo `name` at `target` (an address, or a room code with its `relay`)."""
    command = f"{DEMO_COMMAND.format(name=name)} join {target}"
    return command if relay is None else f"{command} --relay {relay}"


def window_title(demo: Demo, room: Optional[str] = None) -> str:
    """A demo window's title, with the room code players join by when there is one."""
    title = f"{demo.title} - PyGaSe"
    return title if room is None else f"{title} - room {room}"


def invitation_lines(
    name: str, lan_address: Optional[str], room: Optional[str] = None, relay: Optional[str] = None
) -> list[str]:
    """How friends join a game that listens on all interfaces (what a window shows while waiting for
    them): the command on the LAN (`lan_address` is HOST:PORT), and with a room code from anywhere."""
    lines = []
    if lan_address is not None:
        lines.append(f"Friends join with: {join_command(name, lan_address)}")
    if room is not None:
        lead = "or from anywhere" if lines else "Friends join with"
        lines.append(f"{lead}: {join_command(name, room, relay)}")
    return lines


class RoomCodeReporter:
    """Report the room code a backend got from its relay: the line `room code: ABC234` on stdout once the
    code is known, and again when it changes (a relay that restarted and lost the session).

    `check()` is called now and then (each frame, each poll of a server's loop) in one thread.
    """

    def __init__(self, backend: Backend, on_change: Optional[Callable[[str], None]] = None) -> None:
        self.backend = backend
        self.on_change = on_change
        #: the code last reported (None until the relay answered)
        self.code: Optional[str] = None

    def check(self) -> Optional[str]:
        """Report the room code if it is new; return the code last reported."""
        code = self.backend.room_code
        if code is not None and code != self.code:
            self.code = code
            # (a documented line of the command line, the one a script or person reads the code from)
            print(f"room code: {code}", flush=True)
            if self.on_change is not None:
                self.on_change(code)
        return self.code


def _port_argument(text: str) -> int:
    """--port: a port number, 0 for any free one."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0: any free port)")
    return int(text)


MODES_HELP = """modes:
  local                 host and play in one process, with 3 bots (--bots N); the default
  host                  host on the LAN (--port P) and play; the game is announced to LAN launchers;
                        with a relay (--relay HOST:PORT or PYGASE_RELAY) players anywhere join it by its
                        room code too: printed as a line 'room code: ABC234' and shown in the window
  join ADDRESS|CODE     join a game: ADDRESS is HOST, HOST:PORT, an IPv6 address (::1) or [IPV6]:PORT;
                        CODE is the room code of a game hosted with a relay, looked up at --relay (or
                        PYGASE_RELAY). 6 letters and digits with no ':' or '.' (ABC234, abc-234) are a
                        room code when a relay is set, a host name when none is; for a machine named
                        like a room code, give its port (ubuntu:8080)
  serve                 a dedicated server: no window, no player of its own, no display needed; listens
                        on all interfaces (--port P), logs players coming and going to stderr, and stops
                        on Ctrl-C or SIGTERM (or after --seconds S), telling the players; --bots N adds
                        computer players; --name, --screenshot and --simulate do not apply; with a relay
                        it prints 'room code: ABC234' as host does
"""


def build_parser(demo: Demo) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=DEMO_COMMAND.format(name=demo.name),
        description=f"{demo.title}: {demo.description}",
        epilog=MODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "mode",
        nargs="?",
        default="local",
        choices=["local", "host", "join", "serve"],
        help="local, host, join or serve (see modes below); default: local",
    )
    parser.add_argument(
        "address",
        nargs="?",
        metavar="ADDRESS|CODE",
        help=f"join mode: the game to join ({ADDRESS_FORMS}), or its room code with a relay",
    )
    parser.add_argument(
        "--port",
        type=_port_argument,
        default=DEFAULT_PORT,
        help=f"port to listen on in host and serve mode (default {DEFAULT_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--name", default=None, help="your player name (default: your user name; not in serve mode)"
    )
    parser.add_argument(
        "--password", default=None, help="session password (host, serve: require it; join: give it)"
    )
    parser.add_argument(
        "--bots", type=int, default=None, help="computer players (local default 3, host and serve 0)"
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="run without a display; stops after --seconds, 5 by default (serve never has a display and "
        "runs until stopped)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this many seconds (default: until closed)"
    )
    parser.add_argument("--screenshot", default=None, help="save the last frame to this PNG")
    parser.add_argument(
        "--simulate",
        type=parse_simulation,
        default=None,
        metavar="CONDITIONS",
        help=(  # argparse %-formats help: %% is a percent sign
            f"simulate a bad link, e.g. {SIMULATE_EXAMPLE.replace('%', '%%')} (latency is one way: the round "
            "trip is twice that; times take ms or s, loss and duplication %% or a fraction; the syntax of "
            "PYGASE_SIMULATE)"
        ),
    )
    parser.add_argument(
        "--relay",
        type=relay_argument,
        default=None,
        metavar="HOST:PORT",
        help=f"relay for room codes (port {DEFAULT_RELAY_PORT} if left out; default: the environment "
        "variable PYGASE_RELAY): host and serve get a room code there, join looks codes up there",
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="host, serve: list the game on the relay for everyone (its name, players, password or not), "
        "as launchers with the same relay show it beside the LAN's games (needs a relay)",
    )
    parser.add_argument("--verbose", action="store_true", help="show PyGaSe's log")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, with a usage error, options that make no sense in the chosen mode; fill in defaults."""
    if args.mode == "join" and args.address is None:
        parser.error(f"join needs the address of the game: {ADDRESS_FORMS}")
    if args.mode != "join" and args.address is not None:
        hint = " (serve listens on all interfaces: --port P)" if args.mode == "serve" else ""
        parser.error(f"an address is only for join, not for {args.mode} mode{hint}")
    if args.bots is not None and args.bots < 0:
        parser.error("--bots takes a number of bots, 0 or more")
    _check_relay(parser, args)
    if args.mode == "serve":
        refused = [
            ("--name", args.name is not None, "the server has no player of its own"),
            ("--screenshot", args.screenshot is not None, "the server has no window"),
            ("--simulate", args.simulate is not None, "it simulates a window's link; the server has none"),
        ]
        for option, given, why in refused:
            if given:
                parser.error(f"{option} makes no sense in serve mode: {why}")
        if args.bots is None:
            args.bots = 0
    elif args.name is None:
        args.name = os.environ.get("USER", "player").title()[:16]
    if args.seconds is not None and args.seconds < 0:
        parser.error("--seconds takes a duration, 0 or more")


def _check_relay(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--relay (or PYGASE_RELAY) and --public; parse join's argument into `args.room` or `args.address`."""
    if args.mode == "local":
        if args.relay is not None:
            parser.error("--relay makes no sense in local mode (only this machine plays): use host or serve")
    elif args.relay is None:
        relay = relay_from_environment()
        if relay is not None:
            try:
                parse_relay(relay)
            except ValueError as error:
                parser.error(f"the environment variable PYGASE_RELAY: {error}")
            args.relay = relay.strip()
    if args.public:
        if args.mode not in ("host", "serve"):
            parser.error(f"--public is for host and serve mode, not {args.mode}: it lists a game on a relay")
        if args.relay is None:
            parser.error("--public lists the game on a relay: give --relay HOST:PORT (or set PYGASE_RELAY)")
    args.room, args.target = None, args.address  # (the target as typed)
    if args.mode == "join":
        try:
            args.room, args.address = parse_join_target(args.address, args.relay)
        except ValueError as error:
            parser.error(f"argument address: {error}")


@dataclass
class DemoRun:
    """What a finished run leaves behind (for tests): the final server state, if this process hosted."""

    final_state: Optional[GameState]
    frames: int
    bots: int


def final_state(backend: Backend) -> GameState:
    """A copy of the backend's game state as it is now (the state of a game as it ended)."""
    store = backend.game_state_store
    with store._lock:
        return copy.deepcopy(store.get_game_state())


def public_listing(demo: Demo, name: str) -> dict:
    """What the relay's public list shows of a game hosted with --public (the launcher lists the demos'
    games by `game`)."""
    return {"game": demo.name, "name": name, "max_players": demo.max_players}


def hosting_line(lead: str, name: str, port: int, relay: Optional[str]) -> str:
    """The line `host` and `serve` print when they listen: where players join (with a relay, the room code
    follows on a line of its own, `RoomCodeReporter`)."""
    line = f"{lead}; players join with: {join_command(name, f'HOST:{port}')}"
    return line if relay is None else f"{line}, or from anywhere: {join_command(name, 'ROOM_CODE', relay)}"


def run_demo(demo: Demo, argv: Optional[list] = None) -> DemoRun:
    """Run a demo from command-line arguments; see the module docstring."""
    parser = build_parser(demo)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    try:  # every Client of this process reads PYGASE_SIMULATE: refuse nonsense there with a usage message
        LinkConditions.from_environment()
    except ValueError as error:
        parser.error(str(error))
    if args.mode == "serve":
        from pygase_demos._serve import serve_from_command_line

        return serve_from_command_line(demo, args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ["SDL_AUDIODRIVER"] = "dummy"
        if args.seconds is None:
            args.seconds = 5.0
    import pygame

    from pygase_pygame import GameWindow
    from pygase_pygame._hooks import call_declared
    from pygase_pygame.lan import SessionAnnouncer

    window = GameWindow(size=demo.size, title=window_title(demo), client=Client(simulate=args.simulate))
    view = PlayerView(
        args.name, relay=args.relay if args.mode == "host" or args.room else None, room=args.room
    )
    join_data = {"name": args.name} if demo.player_ids else None
    window.client.register_event_handler("YOU_ARE", lambda player_id: setattr(view, "player_id", player_id))
    window.client.register_event_handler("FULL", lambda: logger.warning("the game is full: watching"))
    demo.setup_window(window, view)
    user_connect = window.hooks.get("on_connect")
    user_update = window.hooks.get("update")
    #: called once a frame, before the demo's update hook (in the window's thread)
    frame_tasks: list[Callable[[], Any]] = []

    def on_connect() -> None:
        if demo.player_ids:
            view.player_id = window.client.player_id
        else:
            window.dispatch("JOIN", name=view.name, retries=10)
        if user_connect is not None:
            user_connect()

    def update(dt: float, state: Any) -> None:
        if demo.player_ids:  # the view learns the player id as soon as there is one
            view.player_id = window.client.player_id
        for task in frame_tasks:
            task()
        if user_update is not None:
            call_declared(user_update, dt=dt, state=state)

    window.hooks["on_connect"] = on_connect
    window.hooks["update"] = update
    backend: Optional[Backend] = None
    announcer: Optional[SessionAnnouncer] = None
    bots: Optional[BotRunner] = None
    if args.mode == "join":
        if args.room is not None:
            pygame.display.set_caption(window_title(demo, args.room))
            window.client.connect_in_thread(
                password=args.password, join_data=join_data, room=args.room, relay=args.relay
            )
        else:
            host, port = args.address
            if room_code_in(args.target) is not None:  # (with a relay it would be a room code)
                logger.warning(
                    "%r looks like a room code, but no relay is set (--relay HOST:PORT or PYGASE_RELAY): "
                    "joining the machine called %r",
                    args.target,
                    host,
                )
            window.client.connect_in_thread(port, host, args.password, join_data)
    else:
        backend = make_backend(demo, args.password)
        hosting_on_lan = args.mode == "host"
        try:
            port = window.host(
                backend,
                LISTEN_ON_ALL if hosting_on_lan else "127.0.0.1",
                args.port if hosting_on_lan else 0,
                join_data=join_data,
                relay=args.relay if hosting_on_lan else None,
                public=public_listing(demo, f"{args.name}'s {demo.title}") if args.public else False,
            )
        except OSError as error:
            window.close()
            if isinstance(error, ConnectionError):  # the relay's name does not resolve
                raise SystemExit(str(error)) from None
            raise SystemExit(f"cannot listen on port {args.port}: {error}") from None
        if hosting_on_lan:
            print(
                hosting_line(f"Hosting {demo.title} on port {port}", demo.name, port, args.relay), flush=True
            )
            announcer = SessionAnnouncer(
                {
                    "game": demo.name,
                    "name": f"{args.name}'s {demo.title}",
                    "players": 1,
                    "max_players": demo.max_players,
                    "port": port,
                    "version": VERSION,
                    "password": bool(args.password),
                }
            )
            announcer.start()
            if args.relay is not None:

                def show_code(code: str) -> None:
                    view.room = code
                    pygame.display.set_caption(window_title(demo, code))

                reporter = RoomCodeReporter(backend, show_code)
                reporter.check()
                frame_tasks.append(reporter.check)
        bot_count = args.bots if args.bots is not None else (3 if args.mode == "local" else 0)
        if bot_count:
            # The player joins first, so the player (not a bot) is the host who may end the game.
            try:
                window.client.wait_until(lambda state: state.time_order > 0, timeout=5)
            except TimeoutError:
                logger.warning("the game does not answer; starting the bots anyway")
            bots = BotRunner(demo, port, bot_count, password=args.password)
            bots.start()
    if announcer is not None and backend is not None:
        store, announced, lan = backend.game_state_store, [1], announcer

        def announce_players() -> None:
            count = demo.player_count(store.get_game_state())
            if count != announced[0]:
                announced[0] = count
                lan.update(players=count)

        frame_tasks.append(announce_players)

    user_close = window.hooks.get("on_close")
    final: list[GameState] = []

    def on_close() -> None:
        if backend is not None:  # the state of the game as it ended, before anyone leaves
            final.append(final_state(backend))
        # Bots and announcements end before the window shuts its server down.
        if announcer is not None:
            announcer.stop()
        if bots is not None:
            bots.stop()
        if user_close is not None:
            user_close()

    window.hooks["on_close"] = on_close
    try:
        window.run(seconds=args.seconds, screenshot=args.screenshot)
    finally:
        window.close()
    return DemoRun(final[0] if final else None, window.frames, len(bots.bots) if bots else 0)


def main(demo: Demo, argv: Optional[list] = None) -> None:
    """Entry point of `pygase-demo NAME` and `python -m pygase_demos.NAME`: run `demo` with `argv`
    (default: this process's arguments)."""
    import sys

    try:
        run_demo(demo, sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        pass
    except ConnectionRefusedError as error:
        raise SystemExit(str(error)) from None
