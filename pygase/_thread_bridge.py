"""Bridges between threads and asyncio event loops, for the server and the game loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Optional


def loop_running_here() -> bool:
    """Whether an asyncio event loop runs in the caller's thread: a blocking call would stall it, so the
    blocking methods return their coroutine instead ("can also be spawned as a coroutine", as 0.3.1's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def in_thread_of(loop: Optional[asyncio.AbstractEventLoop]) -> bool:
    """Whether the caller runs in `loop` (so it must not block, and may touch the loop's objects)."""
    try:
        return loop is not None and asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class AwaitableEvent(threading.Event):
    """A `threading.Event` that coroutines can wait for too, without polling and without a thread.

    `set()` wakes waiting threads as any Event does, and each coroutine in `wait_async` through its own
    event loop's `call_soon_threadsafe`: correct from any thread, the loop's own included (the coroutine
    goes on at the loop's next turn).
    """

    def __init__(self) -> None:
        super().__init__()
        self._async_lock = threading.Lock()  # is_set and the waiter list change together
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    def set(self) -> None:
        with self._async_lock:
            super().set()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits there any more
                loop.call_soon_threadsafe(_resolve, future)

    async def wait_async(self, timeout: float) -> bool:
        """Wait until the event is set or `timeout` seconds have passed; return whether it is set."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        waiter = (loop, future)
        with self._async_lock:
            if self.is_set():
                return True
            self._async_waiters.append(waiter)
        timer = loop.call_later(timeout, _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            with self._async_lock:
                if waiter in self._async_waiters:
                    self._async_waiters.remove(waiter)
        return self.is_set()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
