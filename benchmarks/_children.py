"""Child processes for the benchmarks: start one with a pipe, send it requests, shut it down for sure."""

from __future__ import annotations

import sys
from typing import Any


def progress(message: str) -> None:
    """Say what the benchmark is doing (on stderr, so the figures on stdout stay clean)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


class ChildError(RuntimeError):
    """A child process failed or did not answer."""


class Child:
    """A child process and our end of the pipe to it: requests are (command, arguments), answers
    (status, result)."""

    def __init__(self, context: Any, name: str, target: Any, *args: Any) -> None:
        self.name = name
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=target, args=(child_conn, *args), name=name, daemon=True)
        self.process.start()
        child_conn.close()  # so that the child's exit shows here as EOF

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def send(self, command: str, **arguments: Any) -> None:
        self.conn.send((command, arguments))

    def receive(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise ChildError(f"{self.name} did not answer within {timeout:.0f} s")
        try:
            status, result = self.conn.recv()
        except EOFError:
            raise ChildError(f"{self.name} exited (exit code {self.process.exitcode})") from None
        if status != "ok":
            raise ChildError(f"{self.name} failed:\n{result}")
        return result

    def request(self, command: str, timeout: float = 30.0, **arguments: Any) -> Any:
        self.send(command, **arguments)
        return self.receive(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Ask the child to clean up and quit; terminate (then kill) it if it does not."""
        if self.process.is_alive():
            try:
                self.request("quit", timeout=timeout)
            except (ChildError, OSError, EOFError) as error:
                progress(f"{self.name}: {error}")
            self.process.join(timeout)
        if self.process.is_alive():
            progress(f"{self.name} did not exit: terminating it")
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self.conn.close()
