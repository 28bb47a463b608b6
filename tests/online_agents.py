"""Processes that play online in the namespace testbed (tests/netns.py): a relay, a host and players,
each a Python process in its namespace that answers on stdout with one JSON line per question.

Used by tests/test_online_play.py and benchmarks/online.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from netns import Node

RELAY_PORT = 8090
GAME_PORT = 5000

RELAY = """
import json, logging, sys
from pygase.relay import Relay
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
relay = Relay("", int(sys.argv[1]))
relay.run_in_thread()
print(json.dumps({"port": relay.port}), flush=True)
sys.stdin.read()
print(json.dumps(relay.counts()), flush=True)
relay.shutdown()
"""

HOST = """
import json, logging, sys
from pygase import Backend, GameState
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
relay, hostname, port = sys.argv[1] or None, sys.argv[2], int(sys.argv[3])
backend = Backend(
    GameState(ticks=0, said=""),
    lambda game_state, dt: {"ticks": game_state.ticks + 1},
    {"SAY": lambda text, game_state, dt: {"said": text}},
)
backend.run_in_thread(hostname, port, relay=relay)
print(json.dumps({"code": backend.room_code, "port": backend.server.port}), flush=True)
for line in sys.stdin:
    print(json.dumps({"code": backend.room_code}), flush=True)
backend.shutdown()
"""

PLAYER = """
import json, logging, sys, time
from pygase import Client
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
how, first, second = sys.argv[1:4]
client = Client()
started = time.monotonic()
if how == "room":
    client.connect_in_thread(room=first, relay=second)
else:
    client.connect_in_thread(int(second), first)
try:
    client.wait_until(lambda state: state.ticks > 0, timeout=12)
    first_state = time.monotonic() - started
    client.dispatch_event("SAY", text="hello", retries=5)
    client.wait_until(lambda state: state.said == "hello", timeout=5)
    result = {"route": client.statistics().route, "server": list(client.connection.remote_address[:2]),
              "first_state": first_state,
              "host": client.connection.host_token is not None}
    print(json.dumps(result), flush=True)
    if "--stay" in sys.argv:
        for line in sys.stdin:
            ticks = client.copy_game_state().ticks
            time.sleep(float(line))
            print(json.dumps({"ticks": client.copy_game_state().ticks - ticks,
                              "connected": client.connection.status == 3}), flush=True)
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
finally:
    client.disconnect()
"""


class Agent:
    """A Python process in a namespace that prints one JSON line per answer."""

    def __init__(self, node: Node, script: str, *args: Any) -> None:
        self.process = node.popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def answer(self, line: str = "") -> dict:
        """Send a line (if any) and read the next JSON answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if line:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        text = self.process.stdout.readline()
        if not text:
            self.process.wait(timeout=5)
            raise AssertionError(f"the agent ended without answering:\n{self.log()}")
        return json.loads(text)

    def finish(self) -> dict:
        """Close its stdin and read its last answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        text = self.process.stdout.read()
        self.process.wait(timeout=10)
        return json.loads(text.splitlines()[-1]) if text.strip() else {}

    def log(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        assert self.process.stderr is not None
        return self.process.stderr.read()


def start_relay(node: Node) -> tuple[Agent, str]:
    relay = Agent(node, RELAY, RELAY_PORT)
    relay.answer()
    return relay, f"{node.address()}:{RELAY_PORT}"


def host_game(node: Node, relay: str, hostname: str = "") -> tuple[Agent, dict]:
    host = Agent(node, HOST, relay, hostname, GAME_PORT)
    registered = host.answer()
    assert registered["code"], host.log()
    return host, registered


def play(node: Node, *args: Any) -> dict:
    player = Agent(node, PLAYER, *args)
    result = player.answer()
    assert "error" not in result, f"{result}\n--- player log:\n{player.log()}"
    player.finish()
    return result
