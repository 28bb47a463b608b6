"""The demo launcher: pick a demo to play locally with bots, or a game announced on the LAN to join.

pygase-demo                # the launcher (arrow keys and Enter; Esc quits)
pygase-demo list           # the demos, one line each
pygase-demo browse         # the launcher, showing LAN games first
pygase-demo NAME ...       # demo NAME, as `python -m pygase_demos.NAME ...` (`pygase-demo NAME --help`)

With a relay (`--relay HOST:PORT`, or the environment variable PYGASE_RELAY) the launcher also lists the
public games of that relay (hosted with `--public`), marked "[online]", below the LAN's; choosing one
joins it by its room code. Only the demos' own games are listed.

`pygase-demo` is `python -m pygase_demos`; in a checkout, `python -m demos` is the same again.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from typing import Any, NamedTuple, Optional

from pygase_demos import DEMOS

logger = logging.getLogger("pygase_demos.launcher")

#: rows of the launcher's list on screen (it scrolls to keep the chosen one in view)
VISIBLE_ROWS = 6


def load(name: str) -> Any:
    """Import a demo's game object."""
    return importlib.import_module(f"pygase_demos.{name}.game").DEMO


class Entry(NamedTuple):
    """A line of the launcher: what it says, the demo command line it runs, and a detail below."""

    label: str
    argv: list
    detail: str


def _printable(text: str) -> str:
    """A name heard from the network as it can be shown on one line (no control characters)."""
    return "".join(character for character in text if character.isprintable())


def launcher_entries(lan: list, online: list, names: list, browse: bool = False) -> list[Entry]:
    """The launcher's list: the LAN's games, then the relay's public games ("[online]"), then the demos.

    `lan` and `online` are `pygase_pygame.lan.Session`s (from a `SessionBrowser` and a `RelayBrowser`);
    sessions of games that are not demos are left out (there is nothing to join them with).
    """
    from pygase_demos._framework import format_address

    entries: list[Entry] = []
    for session in lan:
        if session.game not in DEMOS:
            continue
        lock = " (password)" if session.password else ""
        seats = f"{session.players}/{session.max_players}"
        label = f"Join {_printable(session.name)} - {session.game}, {seats} players{lock}"
        entries.append(
            Entry(label, [session.game, "join", format_address(session.host, session.port)], session.host)
        )
    for session in online:
        if session.game not in DEMOS or not session.room:
            continue
        lock = " (password)" if session.password else ""
        seats = f"{session.players}/{session.max_players}"
        label = f"[online] {_printable(session.name)} - {session.game}, {seats} players{lock}"
        detail = f"room {session.room} on the relay {session.relay}"
        entries.append(Entry(label, [session.game, "join", session.room, "--relay", session.relay], detail))
    joins = bool(entries)
    for name in names:
        entries.append(Entry(f"Play {name} with bots", [name, "local"], DEMOS[name]))
    if browse and joins:
        entries.sort(key=lambda entry: entry.argv[1] != "join")
    return entries


class GameLists:
    """What the launcher lists, kept up to date by `poll()` (which never blocks): the LAN's games (a
    `SessionBrowser` on `announce_port`), a relay's public games (a `RelayBrowser`, with a relay) and the
    demos.

    Arguments:
        announce_port: the LAN discovery port to listen on
        relay: a relay's "HOST:PORT", or None for the LAN only
        interval: seconds between asking the relay for its list
    """

    def __init__(self, announce_port: int, relay: Optional[str] = None, interval: float = 3.0) -> None:
        from pygase_pygame.lan import SessionBrowser
        from pygase_pygame.online import RelayBrowser

        self.relay = relay
        self.lan: Optional[SessionBrowser] = None
        try:
            self.lan = SessionBrowser(announce_port)
        except OSError as error:  # the discovery port is taken: no LAN list, local games still work
            logger.info("no LAN list: %s", error)
        self.online: Optional[RelayBrowser] = None
        if relay is not None:
            try:
                self.online = RelayBrowser(relay, interval=interval)
            except OSError as error:
                logger.warning("no list of public games from the relay %s: %s", relay, error)

    def poll(self) -> None:
        """Read what the LAN and the relay said since the last call."""
        if self.lan is not None:
            self.lan.poll()
        if self.online is not None:
            self.online.poll()

    def lan_sessions(self) -> list:
        return self.lan.sessions() if self.lan is not None else []

    def online_sessions(self) -> list:
        return self.online.sessions() if self.online is not None else []

    def entries(self, browse: bool = False) -> list[Entry]:
        """The launcher's list as it is now (`launcher_entries`)."""
        return launcher_entries(self.lan_sessions(), self.online_sessions(), list(DEMOS), browse)

    def close(self) -> None:
        if self.lan is not None:
            self.lan.close()
        if self.online is not None:
            self.online.close()


def _status_line(lists: GameLists) -> str:
    """What the launcher says under its hint while no game to join is listed."""
    lan = [session for session in lists.lan_sessions() if session.game in DEMOS]
    online = [session for session in lists.online_sessions() if session.game in DEMOS]
    if lists.relay is None:
        return "" if lan else "No LAN games heard yet..."
    if lan or online:
        return ""
    return f"No LAN games heard yet, no public games on the relay {lists.relay} yet..."


def launcher(args: argparse.Namespace) -> Optional[list]:
    """Show the launcher; return the command line of the chosen demo, or None to quit."""
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ["SDL_AUDIODRIVER"] = "dummy"
    import pygame

    from pygase_pygame.lan import DISCOVERY_PORT

    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode((760, 520))
    pygame.display.set_caption("PyGaSe demos")
    title_font, font, small = (
        pygame.font.Font(None, 48),
        pygame.font.Font(None, 30),
        pygame.font.Font(None, 22),
    )
    clock = pygame.time.Clock()
    lists = GameLists(args.announce_port or DISCOVERY_PORT, args.relay)
    selected = 0
    first = 0  # the entry shown at the top
    started = time.monotonic()
    choice: Optional[list] = None
    try:
        while choice is None:
            lists.poll()
            entries = lists.entries(args.browse)
            selected = min(selected, len(entries) - 1)
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (
                    event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE
                ):
                    return None
                if event.type == pygame.KEYDOWN:
                    if event.key == pygame.K_DOWN:
                        selected = (selected + 1) % len(entries)
                    elif event.key == pygame.K_UP:
                        selected = (selected - 1) % len(entries)
                    elif event.key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_SPACE):
                        choice = entries[selected].argv
            first = min(max(first, selected - VISIBLE_ROWS + 1), selected)
            screen.fill((18, 18, 26))
            screen.blit(title_font.render("PyGaSe demos", True, (255, 210, 90)), (40, 30))
            hint = "Up/Down to choose, Enter to start, Esc to quit"
            if lists.lan is None:
                hint += " (LAN discovery unavailable)"
            screen.blit(small.render(hint, True, (160, 160, 180)), (40, 80))
            status = _status_line(lists)
            if status:
                screen.blit(small.render(status, True, (120, 120, 140)), (40, 110))
            y = 140
            for index, (label, _, detail) in enumerate(entries[first : first + VISIBLE_ROWS], first):
                colour = (255, 255, 255) if index == selected else (170, 170, 190)
                if index == selected:
                    pygame.draw.rect(screen, (50, 60, 90), (30, y - 4, 700, 50), border_radius=6)
                screen.blit(font.render(label, True, colour), (44, y))
                screen.blit(small.render(detail, True, (140, 140, 160)), (44, y + 24))
                y += 58
            pygame.display.flip()
            if args.seconds is not None and time.monotonic() - started >= args.seconds:
                if args.screenshot:
                    pygame.image.save(screen, args.screenshot)
                return None
            clock.tick(30)
    finally:
        lists.close()
        pygame.display.quit()
    return choice


def main(argv: Optional[list] = None, prog: str = "pygase-demo") -> None:
    """Entry point of `pygase-demo` (and `python -m pygase_demos`): the launcher, the list, or a demo."""
    from pygase._rendezvous_io import relay_from_environment
    from pygase_demos import _framework

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DEMOS:
        _framework.main(load(argv[0]), argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog=prog,
        description="PyGaSe demo launcher",
        epilog=f"{prog} NAME [ARGS...] runs demo NAME ({', '.join(DEMOS)}); {prog} NAME --help: its options",
    )
    parser.add_argument("command", nargs="?", default="launch", choices=["launch", "list", "browse"])
    parser.add_argument(
        "--headless", action="store_true", help="no display (with --seconds, for screenshots)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="close the launcher after this long")
    parser.add_argument("--screenshot", default=None, help="save the launcher to this PNG before closing")
    parser.add_argument(
        "--relay",
        type=_framework.relay_argument,
        default=None,
        metavar="HOST:PORT",
        help="also list the public games of this relay (default: the environment variable PYGASE_RELAY)",
    )
    parser.add_argument("--announce-port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.relay is None and relay_from_environment() is not None:
        try:
            args.relay = _framework.relay_argument(relay_from_environment() or "")
        except argparse.ArgumentTypeError as error:
            parser.error(f"the environment variable PYGASE_RELAY: {error}")
    if args.command == "list":
        width = max(len(name) for name in DEMOS)
        for name, description in DEMOS.items():
            print(f"{name:<{width}}  {description}")
        return
    args.browse = args.command == "browse"
    choice = launcher(args)
    if choice is None:
        return
    name, *rest = choice
    _framework.main(load(name), rest)


if __name__ == "__main__":
    main(sys.argv[1:])
