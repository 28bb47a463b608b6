"""The awaitable event that server and game loop shutdowns wait on: no polling, no thread of its own."""

from __future__ import annotations

import asyncio
import threading
import time

from pygase._thread_bridge import AwaitableEvent


def test_a_coroutine_wakes_when_another_thread_sets_the_event():
    event = AwaitableEvent()

    async def main():
        threading.Timer(0.05, event.set).start()
        started = time.monotonic()
        assert await event.wait_async(2.0) is True
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5
    assert event.is_set()


def test_a_coroutine_wakes_when_its_own_loop_sets_the_event():
    event = AwaitableEvent()

    async def main():
        asyncio.get_running_loop().call_later(0.02, event.set)
        return await event.wait_async(2.0)

    assert asyncio.run(main()) is True


def test_waiting_times_out_and_leaves_no_waiter_behind():
    event = AwaitableEvent()

    async def main():
        started = time.monotonic()
        assert await event.wait_async(0.05) is False
        return time.monotonic() - started

    assert 0.04 < asyncio.run(main()) < 1.0
    assert event._async_waiters == []
    event.set()  # no waiter left: nothing is scheduled on the closed loop


def test_an_event_already_set_returns_at_once_and_threads_still_wait_as_usual():
    event = AwaitableEvent()
    event.set()
    assert asyncio.run(event.wait_async(0.0)) is True
    assert event.wait(0.0) is True
    event.clear()
    assert event.wait(0.01) is False


def test_a_cancelled_wait_is_forgotten():
    event = AwaitableEvent()

    async def main():
        task = asyncio.ensure_future(event.wait_async(5.0))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert event._async_waiters == []


def test_a_waiter_on_a_closed_loop_does_not_trouble_set():
    event = AwaitableEvent()
    loop = asyncio.new_event_loop()
    event._async_waiters.append((loop, loop.create_future()))
    loop.close()
    event.set()
    assert event.is_set()


def test_shutdown_async_from_another_event_loop_waits_for_the_backend_thread():
    from pygase import Backend, GameState

    backend = Backend(GameState(n=0), lambda game_state, dt: {"n": game_state.n + 1})
    thread = backend.run_in_thread("127.0.0.1", 0)
    before = set(threading.enumerate())

    async def main():
        await backend.shutdown_async()
        # (the server thread's own asyncio.run may start a thread to end its loop: not ours)
        return [t.name for t in set(threading.enumerate()) - before if t.name.startswith("asyncio")]

    assert asyncio.run(main()) == []  # waited without an executor thread
    assert backend.server.port is None and backend.game_state_machine._stopped.is_set()
    thread.join(timeout=2.0)
    assert not thread.is_alive()


def test_backend_shuts_down_from_a_coroutine_on_its_own_loop():
    from pygase import Backend, GameState

    async def main():
        backend = Backend(GameState(n=0), lambda game_state, dt: {"n": game_state.n + 1})
        task = asyncio.ensure_future(backend.run_async("127.0.0.1", 0))
        while backend.server.port is None:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await backend.shutdown_async()
        await asyncio.wait_for(task, 2.0)
        return backend, time.monotonic() - started

    backend, took = asyncio.run(main())
    assert backend.game_state_store.get_game_state().n > 0
    assert backend.game_state_store.get_game_state().is_paused()
    assert took < 1.0
