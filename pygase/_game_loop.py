"""The game loop: `GameStateMachine` (public as `pygase.backend.GameStateMachine`).

`GameStateMachine._steps` is the game loop itself, a generator that handles queued events and runs time
steps; it says when it has nothing to do until a time (sleep) and when a coroutine handler's result must be
awaited. Two drivers carry out what it says through one shared pump (`_pump`): `run_game_loop` in a thread
of its own, and `run_game_loop_async` on the running event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import math
import threading
import time
from typing import Any, Awaitable, Callable, Coroutine, Generator, Optional

from pygase._store import GameStateStore
from pygase._thread_bridge import AwaitableEvent, in_thread_of, loop_running_here
from pygase.errors import JoinRefused
from pygase.event import Event, UniversalEventHandler
from pygase.gamestate import GameState, GameStateUpdate, GameStatus

__all__ = ["GameStateMachine"]

logger = logging.getLogger("pygase.backend")  # the logger it always had: logging settings keep working

_ACTIVE = GameStatus.get("Active")
_PAUSED = GameStatus.get("Paused")

_FAILED = object()  # what a game loop driver sends back for an awaited handler that raised


def _handler_label(handler: UniversalEventHandler, event_type: str) -> str:
    function = handler._event_handlers.get(event_type)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"the handler {name} for event {event_type!r}"


def _run_to_end(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (all it awaits finishes at once) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a coroutine meant to run without an event loop waited for one")


class GameStateMachine:
    """Run a simulation that propagates the game state.

    A GameStateMachine progresses a game state through time, applying all game simulation logic. This
    class is meant either as a base class from which you inherit and implement the
    `GameStateMachine.time_step()` method, or you assign an implementation after instantiation.

    Events from clients are handled as soon as they arrive, between time steps, in the order they
    arrive; their handlers get `dt`, the time since the last time step.

    Arguments:
        game_state_store: part of the PyGaSe backend that provides the state

    Attributes:
        game_time (float): duration the game has been running in seconds
        game_status (int): `GameStatus.get('Active')` while the game loop runs, else `'Paused'`
    """

    def __init__(self, game_state_store: GameStateStore) -> None:
        self._game_state_store = game_state_store
        self._universal_event_handler = UniversalEventHandler()
        self.game_time = 0.0
        self.game_status = _PAUSED
        self._event_queue: collections.deque = collections.deque()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._thread_wake: Optional[threading.Lock] = None  # released to wake the threaded game loop
        self._thread: Optional[threading.Thread] = None
        self._stop_requested = False
        self._started = threading.Event()
        self._stopped = AwaitableEvent()
        self._stopped.set()
        self._error_logs: dict[str, tuple[float, int]] = {}  # source -> (last logged, not logged since)

    def register_event_handler(self, event_type: str, event_handler_function: Callable[..., Any]) -> None:
        """Register an event handler for a specific event type.

        For event handlers to have any effect, the events have to be wired from a `Server` to the
        `GameStateMachine` via the `event_wire` argument of the `Server.run()` method.

        Arguments:
            event_type: which type of event to link the handler function to
            event_handler_function: function or coroutine function to be invoked for events of the given
                type; gets the event's data and, if it declares them (or takes `**kwargs`), the keyword
                arguments `game_state`, `dt`, `client_address` and `sender_id` (the sending player's id;
                for `CLIENT_JOINED`, `CLIENT_LEFT` ...: `player_id`, and `join_data` when joining);
                returns an update dict (or None)
        """
        self._universal_event_handler.register_event_handler(event_type, event_handler_function)

    def _push_event(
        self,
        event: Event,
        client_address: Optional[tuple] = None,
        context: Optional[dict] = None,
        on_done: Optional[Callable[[Optional[str]], None]] = None,
    ) -> None:
        """Queue an event for handling; callable from any thread. `context`: more names its handler may
        declare (`sender_id`, `player_id` ...); `on_done(refusal)` is called once it was handled, with the
        reason of the `JoinRefused` it raised or None (for CLIENT_JOINED: the player waits for it)."""
        self._event_queue.append((event, client_address, context or {}, on_done))
        self._wake_up()

    def _wake_up(self) -> None:
        thread_wake = self._thread_wake
        if thread_wake is not None:
            with contextlib.suppress(RuntimeError):  # already released: a wake-up is pending anyway
                thread_wake.release()
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if in_thread_of(loop):
            wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop just closed
            loop.call_soon_threadsafe(wake.set)

    def time_step(self, game_state: GameState, dt: float) -> dict:
        """Calculate a game state update.

        This method should be implemented to return a dict with all the updated state attributes.

        Arguments:
            game_state: the state of the game prior to the time step
            dt: time in seconds since the last time step, use it to simulate at a consistent speed

        Returns:
            updated game state attributes
        """
        raise NotImplementedError("implement GameStateMachine.time_step or assign a function to it")

    def run_game_loop(self, interval: float = 0.02) -> Optional[Coroutine[Any, Any, None]]:
        """Simulate the game world.

        This function blocks as it continuously progresses the game state through time; use
        `run_game_loop_in_thread()` for a thread or await `run_game_loop_async()` in an asyncio program.
        Called where an asyncio event loop runs, it does not block but returns that coroutine, to await or
        spawn: `asyncio.create_task(machine.run_game_loop(0.02))`.
        As long as the simulation is running, the game state's `game_status` is
        `GameStatus.get('Active')`. Between time steps the loop sleeps (it is not a busy loop).

        Arguments:
            interval: (minimum) duration in seconds between consecutive time steps
        """
        if loop_running_here():
            self._check_can_start(interval)  # a bad interval raises here, not when awaited
            return self.run_game_loop_async(interval)
        self._begin(interval)
        # A lock used as a binary semaphore: waiting on it with a timeout costs a third of what an
        # Event.wait costs, which matters at 50 wake-ups a second on an idle server.
        wake = threading.Lock()
        wake.acquire()
        self._thread_wake = wake
        private_loop: Optional[asyncio.AbstractEventLoop] = None  # for coroutine handlers, made if needed

        async def sleep(until: float) -> None:
            # A wake-up that came in the meantime makes this return at once (one extra look).
            if not self._event_queue and not self._stop_requested:
                wake.acquire(timeout=max(0.0, until - time.monotonic()))

        async def run(awaitable: Any) -> Any:
            nonlocal private_loop
            if private_loop is None:
                private_loop = asyncio.new_event_loop()
            return private_loop.run_until_complete(awaitable)

        try:
            _run_to_end(self._pump(self._steps(interval, time.monotonic), sleep, run))
        finally:
            self._thread_wake = None
            if private_loop is not None:
                private_loop.close()
            self._end()
        return None

    def run_game_loop_in_thread(self, interval: float = 0.02) -> threading.Thread:
        """Simulate the game in a separate thread.

        See `GameStateMachine.run_game_loop()`. Returns once the loop runs.

        Returns:
            the thread the game loop runs in
        """
        self._check_can_start(interval)
        self._started.clear()
        thread = threading.Thread(
            target=self.run_game_loop, args=(interval,), name="pygase-game-loop", daemon=True
        )
        thread.start()
        self._started.wait(timeout=5.0)
        return thread

    async def run_game_loop_async(self, interval: float = 0.02) -> None:
        """Run the game loop on the running event loop until stopped (see `run_game_loop()`)."""
        self._begin(interval)
        loop = asyncio.get_running_loop()
        self._loop, self._wake = loop, asyncio.Event()
        wake = self._wake

        async def sleep(until: float) -> None:
            wake.clear()
            if not self._event_queue and not self._stop_requested:
                timer = loop.call_at(until, wake.set)
                await wake.wait()
                timer.cancel()

        try:
            await self._pump(self._steps(interval, loop.time), sleep, lambda awaitable: awaitable)
        finally:
            self._loop = self._wake = None
            self._end()

    async def _pump(
        self,
        steps: Generator[tuple[str, Any, Optional[str]], Any, None],
        sleep: Callable[[float], Awaitable[None]],
        run: Callable[[Any], Awaitable[Any]],
    ) -> None:
        """Carry out what the game loop's steps ask for until they end: the one loop of both drivers.

        `sleep(until)` returns at `until` or at a wake-up, whichever comes first; `run(awaitable)` gives
        a coroutine handler's result. The threaded driver's versions finish without ever suspending, so
        it runs this coroutine to its end in one go, without an event loop (`_run_to_end`).
        """
        reply: Any = None
        while True:
            try:
                kind, argument, label = steps.send(reply)
            except StopIteration:
                return
            reply = None
            if kind == "sleep":
                await sleep(argument)
            else:
                try:
                    reply = await run(argument)
                except JoinRefused as refusal:
                    reply = refusal  # (not an error: a CLIENT_JOINED handler turned a player away)
                except Exception:
                    logger.exception("error in %s", label)
                    reply = _FAILED

    def _check_can_start(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("the interval must be positive")
        if not self._stopped.is_set():
            raise RuntimeError("the game loop is already running")

    def _begin(self, interval: float) -> None:
        self._check_can_start(interval)
        self._stopped.clear()
        self._thread = threading.current_thread()
        self.game_status = _ACTIVE
        self._push({"game_status": _ACTIVE})

    def _end(self) -> None:
        self.game_status = _PAUSED
        self._push({"game_status": _PAUSED})
        self._thread = None
        self._stop_requested = False
        self._started.set()
        self._stopped.set()

    def _steps(
        self, interval: float, clock: Callable[[], float]
    ) -> Generator[tuple[str, Any, Optional[str]], Any, None]:
        """The game loop itself, for both drivers: handle events as they come, step every `interval`.

        A generator: it yields ("sleep", until, None) when there is nothing to do before `until`, and
        ("await", awaitable, label) for a coroutine handler's result, which the driver sends back
        (`_FAILED` if it raised).
        """
        self._started.set()
        last_step = clock()
        next_step = last_step + interval
        handler = self._universal_event_handler
        store = self._game_state_store
        while not self._stop_requested:
            if self._event_queue:
                event, client_address, context, on_done = self._event_queue.popleft()
                label = _handler_label(handler, event.type)
                try:
                    result = handler.handle(
                        event,
                        game_state=store.get_game_state(),
                        dt=clock() - last_step,
                        client_address=client_address,
                        **context,
                    )
                    if inspect.isawaitable(result):
                        result = yield ("await", result, label)
                except JoinRefused as refusal:
                    result = refusal
                except Exception as error:
                    hint = ""
                    if (
                        isinstance(error, TypeError)
                        and "'player_id'" in str(error)
                        and context.get("sender_id")
                    ):
                        hint = " [the id of the player who sent an event is `sender_id`]"
                    self._log_error(label, "error in %s (the game goes on)%s", label, hint, exc_info=True)
                    result = _FAILED
                refused = isinstance(result, JoinRefused)
                if not refused and result is not _FAILED:
                    self._push(result, label)  # (before a new player is let in: its first state has it)
                if on_done is not None:
                    on_done(result.reason if refused else None)
                elif refused:
                    self._log_error(
                        label, "%s raised JoinRefused, which only CLIENT_JOINED handlers may", label
                    )
                continue
            now = clock()
            if now < next_step:
                yield ("sleep", next_step, None)
                continue
            dt = now - last_step
            last_step = now
            self.game_time += dt
            try:
                result = self.time_step(store.get_game_state(), dt)
            except Exception:
                self._log_error("time_step", "error in time_step (the game loop goes on)", exc_info=True)
                result = None
            if inspect.isawaitable(result):
                result = yield ("await", result, "time_step")
            if result is not _FAILED:
                self._push(result, "time_step")
            next_step += interval
            if next_step <= now:  # fell behind: skip the missed steps instead of bursting
                next_step = now + interval

    def _log_error(self, source: str, message: str, *args: Any, exc_info: bool = False) -> None:
        """Log at ERROR, at most once a second for each `source`: a time step that fails does so 50 times
        a second, and a handler that fails does so for every event a client sends."""
        now = time.monotonic()
        last, skipped = self._error_logs.get(source, (-math.inf, 0))
        if now - last < 1.0:
            self._error_logs[source] = (last, skipped + 1)
            return
        self._error_logs[source] = (now, 0)
        if skipped:
            message += f" [{skipped} more from the same source in the last second were not logged]"
        logger.error(message, *args, exc_info=exc_info)

    def _push(self, changes: Any, source: str = "the game loop") -> None:
        if not changes:
            return
        if not isinstance(changes, dict):
            self._log_error(
                source, "%s returned %s instead of an update dict: ignored", source, type(changes).__name__
            )
            return
        if "time_order" in changes:
            self._log_error(source, "%s returned an update that sets time_order: ignored", source)
            return
        store = self._game_state_store
        try:
            update = GameStateUpdate(store.get_game_state().time_order + 1, **changes)
            store.push_update(update)  # checks the names and values
        except (TypeError, ValueError) as error:
            # The game goes on syncing without this update.
            self._log_error(source, "%s returned an update that was dropped: %s", source, error)

    def stop(self, timeout: float = 1.0) -> bool:
        """Pause the game simulation.

        This sets `game_status` to `GameStatus.get('Paused')`. A subsequent call of `run_game_loop()`
        resumes the simulation at the point where it was stopped. `stop_async()` is the coroutine version.

        Arguments:
            timeout: time in seconds to wait for the simulation to stop

        Returns:
            whether or not the simulation was successfully stopped; called in the game loop's own event
            loop (a handler, or a coroutine of a program that used `run_game_loop_async`), a future of
            that bool, which an asyncio program can await: `await machine.stop()`
        """
        if self._stopped.is_set():
            return True
        self._stop_requested = True
        self._wake_up()
        if in_thread_of(self._loop):
            return asyncio.ensure_future(self._stopped.wait_async(timeout))  # type: ignore[return-value]
        if threading.current_thread() is self._thread:
            return False
        return self._stopped.wait(timeout)

    async def stop_async(self, timeout: float = 1.0) -> bool:
        """Pause the game simulation without blocking the event loop (see `stop()`)."""
        if self._stopped.is_set():
            return True
        self._stop_requested = True
        self._wake_up()
        return await self._stopped.wait_async(timeout)
