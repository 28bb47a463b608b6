"""The one background thread and event loop that all `Client`s of a process share."""

from __future__ import annotations

import asyncio
import threading
from typing import Optional


class NetworkThread:
    """The one background thread and event loop that all `Client`s of a process share.

    It starts when the first client needs it and stops when the last one is done, so no thread is left
    behind.
    """

    _lock = threading.Lock()
    _users = 0
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _thread: Optional[threading.Thread] = None

    @classmethod
    def acquire(cls) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        """Register one more user; start the thread if needed; return its loop and thread."""
        with cls._lock:
            if cls._loop is None or cls._thread is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    try:
                        loop.run_forever()
                    finally:
                        _cancel_remaining(loop)
                        loop.close()

                thread = threading.Thread(target=run, name="pygase-network", daemon=True)
                thread.start()
                ready.wait()
                cls._loop, cls._thread = loop, thread
            cls._users += 1
            return cls._loop, cls._thread

    @classmethod
    def release(cls) -> None:
        """Unregister a user; the last one stops the loop (and joins the thread unless it is the caller)."""
        with cls._lock:
            cls._users -= 1
            if cls._users > 0 or cls._loop is None:
                return
            loop, thread = cls._loop, cls._thread
            cls._loop = cls._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
