"""Bridges between threads and asyncio event loops, for the server and the game loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Optional


def in_thread_of(loop: Optional[asyncio.AbstractEventLoop]) -> bool:
    try:
        return loop is not None and asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def wait_for_event(event: threading.Event, timeout: float) -> bool:
    """Wait for a threading.Event without blocking the running event loop; return whether it is set."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return event.is_set()
