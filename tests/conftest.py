"""Shared fixtures: every test must leave no thread behind; backends, clients and sockets on loopback that
are closed after the test. Plain helpers are in helpers.py."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from helpers import free_udp_port

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture
def backend_factory():
    """Start backends on 127.0.0.1 with a free port; shut all of them down after the test."""
    from pygase import Backend

    started: list = []

    def start(initial_game_state, time_step_function, event_handlers=None, interval=0.02, **settings):
        backend = Backend(initial_game_state, time_step_function, event_handlers, **settings)
        thread = backend.run_in_thread("127.0.0.1", 0, interval)
        started.append((backend, thread))
        return backend

    yield start
    for backend, thread in started:
        backend.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def client_factory():
    """Create clients connected to 127.0.0.1; disconnect all of them after the test."""
    from pygase import Client

    clients: list = []

    def connect(port: int, **options):
        client = Client()
        client.connect_in_thread(port, "127.0.0.1", **options)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.disconnect()


@pytest.fixture
def closed_port() -> int:
    """A loopback UDP port where nothing listens (it was free a moment ago)."""
    return free_udp_port()


@pytest.fixture
def silent_port():
    """A loopback UDP port where a socket takes datagrams and never answers: a client stays "connecting…"."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
