"""The PyGaSe tutorial game in one terminal: a backend, and clients that attack a wandering enemy.

Shows: a `Backend` with a time step and an event handler, events from client to server with an answer
from server to client, the synchronized game state, and a host client shutting the server down.

Run it:

    python -m examples.drunken_master               # backend and two bot clients in one process
    python -m examples.drunken_master --seconds 10  # run longer
    python -m examples.drunken_master backend --port 8080   # just the backend, join from elsewhere
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import time

from pygase import Backend, Client, GameState


def make_backend() -> Backend:
    """Create the game: an enemy wanders around position 0 and loses hp when hit."""

    def time_step(game_state, dt):
        return {"position": math.sin(time.monotonic())}

    backend = Backend(GameState(position=0.0, hp=100), time_step)

    def on_attack(attack_position, client_address, game_state, **kwargs):
        if abs(attack_position - game_state.position) < 0.2:
            backend.server.dispatch_event("ATTACK_FEEDBACK", "Hit!", target_client=client_address)
            return {"hp": max(0, game_state.hp - 10)}
        backend.server.dispatch_event("ATTACK_FEEDBACK", "Missed.", target_client=client_address)
        return {}

    backend.game_state_machine.register_event_handler("ATTACK", on_attack)
    return backend


def play(seconds: float, port: int | None = None) -> None:
    """Run a backend (unless `port` names one) and two bots that attack for `seconds`."""
    backend = None
    if port is None:
        backend = make_backend()
        backend_thread = backend.run_in_thread("127.0.0.1", 0)
        port = backend.server.port
        assert port is not None
    bots = {"host": Client(), "guest": Client()}
    for name, client in bots.items():
        client.register_event_handler("ATTACK_FEEDBACK", lambda text, name=name: print(f"  {name}: {text}"))
        client.connect_in_thread(port, "127.0.0.1")
    try:
        for client in bots.values():
            client.wait_until(lambda state: state.hp > 0, timeout=3)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, client in bots.items():
                with client.access_game_state() as state:
                    position, hp = state.position, state.hp
                print(f"{name} sees the enemy at {position:+.2f} with {hp} hp, attacks")
                client.dispatch_event("ATTACK", attack_position=position + random.uniform(-0.3, 0.3))
            time.sleep(0.5)
    finally:
        bots["guest"].disconnect()
        bots["host"].disconnect(shutdown_server=True)
    if backend is not None:
        backend_thread.join(timeout=5)  # the host's request ends the backend
        print("the host shut the backend down" if backend.server.port is None else "the backend still runs")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("mode", nargs="?", choices=["play", "backend"], default="play")
    parser.add_argument("--port", type=int, default=None, help="backend port (play: join this backend)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the bots play")
    parser.add_argument("--verbose", action="store_true", help="show PyGaSe's INFO log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose or args.mode == "backend" else logging.WARNING)
    if args.mode == "backend":
        make_backend().run("0.0.0.0" if args.port else "127.0.0.1", args.port or 0)
    else:
        play(args.seconds, args.port)


if __name__ == "__main__":
    main()
