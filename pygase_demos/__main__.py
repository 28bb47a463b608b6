"""The demo launcher: pick a demo to play locally with bots, or a game announced on the LAN to join.

pygase-demo                # the launcher (arrow keys and Enter; Esc quits)
pygase-demo list           # the demos, one line each
pygase-demo browse         # the launcher, showing LAN games first
pygase-demo NAME ...       # demo NAME, as `python -m pygase_demos.NAME ...` (`pygase-demo NAME --help`)

`pygase-demo` is `python -m pygase_demos`; in a checkout, `python -m demos` is the same again.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from typing import Any, Optional

from pygase_demos import DEMOS


def load(name: str) -> Any:
    """Import a demo's game object."""
    return importlib.import_module(f"pygase_demos.{name}.game").DEMO


def launcher(args: argparse.Namespace) -> Optional[list]:
    """Show the launcher; return the command line of the chosen demo, or None to quit."""
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ["SDL_AUDIODRIVER"] = "dummy"
    import pygame

    from pygase_demos._framework import format_address
    from pygase_pygame.lan import DISCOVERY_PORT, SessionBrowser

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
    try:
        browser: Optional[SessionBrowser] = SessionBrowser(args.announce_port or DISCOVERY_PORT)
    except OSError:
        browser = None  # the discovery port is taken: no LAN list, local games still work
    names = list(DEMOS)
    selected = 0
    started = time.monotonic()
    choice: Optional[list] = None
    try:
        while choice is None:
            if browser is not None:
                browser.poll()
            sessions = browser.sessions() if browser is not None else []
            entries: list[tuple[str, list, str]] = []
            for session in sessions:
                lock = " (password)" if session.password else ""
                seats = f"{session.players}/{session.max_players}"
                label = f"Join {session.name} - {session.game}, {seats} players{lock}"
                entries.append(
                    (label, [session.game, "join", format_address(session.host, session.port)], session.host)
                )
            for name in names:
                entries.append((f"Play {name} with bots", [name, "local"], DEMOS[name]))
            if args.browse and sessions:
                entries.sort(key=lambda entry: entry[1][1] != "join")
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
                        choice = entries[selected][1]
            screen.fill((18, 18, 26))
            screen.blit(title_font.render("PyGaSe demos", True, (255, 210, 90)), (40, 30))
            hint = "Up/Down to choose, Enter to start, Esc to quit"
            if browser is None:
                hint += " (LAN discovery unavailable)"
            screen.blit(small.render(hint, True, (160, 160, 180)), (40, 80))
            if not sessions:
                screen.blit(small.render("No LAN games heard yet...", True, (120, 120, 140)), (40, 110))
            y = 140
            for index, (label, _, detail) in enumerate(entries):
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
        if browser is not None:
            browser.close()
        pygame.display.quit()
    return choice


def main(argv: Optional[list] = None, prog: str = "pygase-demo") -> None:
    """Entry point of `pygase-demo` (and `python -m pygase_demos`): the launcher, the list, or a demo."""
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
    parser.add_argument("--announce-port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
    _framework.run_demo(load(name), rest)


if __name__ == "__main__":
    main(sys.argv[1:])
