"""Shared fixtures: every test must leave no thread behind."""

from __future__ import annotations

import os
import threading
import time

import pytest

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
