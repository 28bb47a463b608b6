"""PyGaSe: Python Game Server, real-time multiplayer networking for Python games.

A server-authoritative game state is kept by a `Backend` (a `GameStateStore`, a `GameStateMachine` that
runs the game loop, and a `Server`) and synchronized to every `Client` over UDP; clients and server talk
through events.

Logging goes through the standard `logging` module under the `pygase` logger: INFO for start-up,
connections and shutdown, DEBUG for single packages.
"""

import logging

from pygase.backend import Backend, GameStateMachine, GameStateStore, Server
from pygase.client import Client
from pygase.event import CLIENT_JOINED, CLIENT_LEFT
from pygase.gamestate import TO_DELETE, GameState, GameStateUpdate, GameStatus
from pygase.utils import get_available_ip_addresses

__all__ = [
    "Client",
    "Backend",
    "Server",
    "GameStateStore",
    "GameStateMachine",
    "GameState",
    "GameStateUpdate",
    "GameStatus",
    "TO_DELETE",
    "get_available_ip_addresses",
    "CLIENT_JOINED",
    "CLIENT_LEFT",
]

__version__ = "0.4.0.dev0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
