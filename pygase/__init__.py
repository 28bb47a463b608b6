"""PyGaSe: Python Game Server, real-time multiplayer networking for Python games.

A server-authoritative game state is kept by a `Backend` (a `GameStateStore`, a `GameStateMachine` that
runs the game loop, and a `Server`) and synchronized to every `Client` over UDP; clients and server talk
through events.

Logging goes through the standard `logging` module under the `pygase` logger: INFO for start-up,
connections and shutdown, DEBUG for single packages. A program that configures no logging still gets
WARNING and ERROR messages (a game handler that raised, say) on stderr.
"""

from pygase.backend import Backend, GameStateMachine, GameStateStore, Server
from pygase.client import Client
from pygase.errors import JoinRefused
from pygase.event import CLIENT_DROPPED, CLIENT_JOINED, CLIENT_LEFT, CLIENT_RETURNED
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
    "CLIENT_DROPPED",
    "CLIENT_RETURNED",
    "JoinRefused",
]

__version__ = "0.4.0.dev0"

# No NullHandler on the "pygase" logger: a program that sets up no logging still sees PyGaSe's warnings
# and errors (a handler that raised, an update that could not be sent) on stderr, through logging's
# last-resort handler. A NullHandler would silence them.
