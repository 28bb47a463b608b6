"""`GameWindow`: one object that runs the client side of a PyGaSe game in pygame.

    window = GameWindow(size=(640, 480), title="Tag")
    window.bindings.key_held("left", "MOVE", dx=-1)

    @window.hook
    def draw(screen, state):
        for player in state.players.values():
            pygame.draw.circle(screen, (255, 200, 0), (player["x"], player["y"]), 10)

    window.join("192.168.1.20", 8080)      # or window.host(backend) to play on a backend in this process
    window.run()

Each frame the window pumps pygame's events (turning bound input into events sent to the server and
calling your input hooks), takes a snapshot of the game state when it changed (so drawing never holds
the state lock and never blocks the network thread), interpolates remote entities, applies client-side
prediction if configured, and calls your `draw(screen, state)`. F3 toggles the network statistics.
Closing the window disconnects; a window that hosts shuts its server down. `run()` again opens it again.

`draw` is called once the first game state arrived. Until then, and whenever the connection is in
trouble, a status banner in the middle of the window says what is going on ("connecting…", "wrong
password", "connection lost, reconnecting…", "server closed" ...: `window.status_text()`). To draw a
waiting screen of your own, register `draw_waiting(screen, status)`: it is called instead of the banner
until the first state arrived, with the banner's text as `status`.

Hooks are functions registered with `@window.hook` (or `window.hooks[name] = function`), found by name;
each gets only the arguments it declares, by name and in any order: `draw(screen, state)`,
`draw_waiting(screen, status)`, `update(dt, state)` (`state` is None before the first state),
`on_key_down(key, mod, unicode)`, `on_key_up(key, mod)`, `on_mouse_down(pos, button)`,
`on_mouse_up(pos, button)`, `on_mouse_move(pos, rel, buttons)`, `on_joy_button_down(joy, button)`,
`on_joy_button_up(joy, button)`, `on_joy_axis(joy, axis, value)`, `on_event(event)`, `on_connect()`,
`on_disconnect()`, `on_close()`. Every hook may also declare `player_id`: this window's player id on the
server (`client.player_id`; None until joined). A hook with a parameter it would never get, such as
`draw(surface, game_state)`, is refused with a TypeError when it is registered.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import pygame

from pygase.backend import Backend
from pygase.client import Client
from pygase.connection import ConnectionStatus
from pygase.gamestate import GameState
from pygase_pygame._hooks import HOOKS, Hooks, call_declared
from pygase_pygame._join import connect_arguments
from pygase_pygame.bindings import InputBindings, key_name
from pygase_pygame.overlay import NetStatsOverlay

__all__ = ["GameWindow", "HOOKS", "Hooks"]

logger = logging.getLogger(__name__)

_CONNECTED = ConnectionStatus.get("Connected")
_DISCONNECTED = ConnectionStatus.get("Disconnected")
_SILENCE_SHOWN_AFTER = 1.0  # seconds without a package before "connection lost" is shown


class GameWindow:
    """The pygame window, clock, input and drawing of a PyGaSe game client.

    Arguments:
        size: window size in pixels
        title: window caption
        fps: frame rate limit (0 for none)
        client: the `pygase.Client` to use (a new one by default)
        bindings: input bindings (`window.bindings` is an empty `InputBindings` by default)
        interpolate: `SnapshotInterpolator`s for collections of moving entities in the state (more can
            be appended to `window.interpolators` later)
        predictor: a `Predictor` for the local player's entity (client-side prediction); it may also be
            set later as `window.predictor`, and its `key` once the game tells the player who they are
        predicted_events: event types that are inputs of the predictor; they get an `input_seq` kwarg
        overlay_key: key that toggles the network statistics overlay
        background: colour the screen is cleared with each frame

    Attributes:
        hooks (Hooks): the registered hooks by name (see `hook()` and `HOOKS`)
        client (pygase.Client): the window's client
        backend (pygase.Backend): the backend this window hosts (see `host()`), or None
        rejoin_for (float): seconds a window whose connection was lost keeps joining again (30)
    """

    def __init__(
        self,
        size: tuple = (800, 600),
        title: str = "PyGaSe",
        fps: int = 60,
        client: Optional[Client] = None,
        bindings: Optional[InputBindings] = None,
        interpolate: Iterable[Any] = (),
        predictor: Any = None,
        predicted_events: Iterable[str] = (),
        overlay_key: str = "f3",
        background: Any = (18, 18, 26),
    ) -> None:
        self._size = tuple(size)
        self._title = title
        self.screen = self._open_display()
        self.clock = pygame.time.Clock()
        self.fps = fps
        self.background = background
        self.client = client if client is not None else Client()
        self.bindings = bindings if bindings is not None else InputBindings()
        self.interpolators = list(interpolate)
        self.predictor = predictor
        self.predicted_events = set(predicted_events)
        self.overlay_key = key_name(overlay_key)
        self.overlay = NetStatsOverlay()
        self.show_overlay = False
        self.hooks = Hooks()
        self.backend: Optional[Backend] = None
        self.running = False
        self.frames = 0
        self._backend_thread: Optional[threading.Thread] = None
        self._snapshot: Optional[GameState] = None
        self._snapshot_of: Any = None  # the connection the snapshot is of
        self._snapshot_version = -1
        self._was_connected = False
        self._hook_errors: dict[str, float] = {}
        self._font: Optional[pygame.font.Font] = None
        self._banner_text = ""
        self._banner: Optional[pygame.Surface] = None
        self._last_frame = time.monotonic()
        self._closed = False
        self.rejoin_for = 30.0
        self._joined_with: Optional[tuple] = None  # what `join` was called with
        self._rejoin_until: Optional[float] = None
        self._rejoin_next = 0.0
        self._quit = False  # the player closed the window
        # Interpolators and a predictor may also be added after construction: the listener feeds whatever
        # `interpolators` and `predictor` hold when a state arrives.
        self.client.register_state_listener(self._on_state)

    def _open_display(self) -> pygame.Surface:
        pygame.display.init()
        pygame.font.init()
        screen = pygame.display.set_mode(self._size)
        pygame.display.set_caption(self._title)
        return screen

    def _reopen(self) -> None:
        """Open the window again after `close()` (its client stays as `close()` left it: disconnected)."""
        self.screen = self._open_display()
        self._closed = False
        self._quit = False

    # ---- set-up -------------------------------------------------------------------------------------

    def hook(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: register `function` as the hook its name says (see `HOOKS`).

        `window.hooks[name] = function` does the same. A name that is not a hook gets a warning with the
        closest hook name, and is not registered.

        Raises:
            TypeError: if `function` has a parameter the hook never gives (such as `draw(surface, state)`:
                a draw hook may declare `screen` and `state`); parameters with defaults, `*args` and
                `**kwargs` are fine
        """
        self.hooks._register(function.__name__, function, stacklevel=3)
        return function

    def join(
        self,
        hostname: str = "localhost",
        port: int = 8080,
        password: Optional[str] = None,
        join_data: Optional[dict] = None,
        room: Optional[str] = None,
        relay: Optional[str] = None,
    ) -> None:
        """Connect to a PyGaSe server in the background; the window shows the connection's state.

        Arguments:
            hostname: hostname or IP address (IPv4 or IPv6) of the server
            port: port of the server
            password: the session password, if the server has one (a wrong one: the window says so)
            join_data: a small dict for the game's `CLIENT_JOINED` handler, e.g. `{"name": "Ann"}` (if
                the game turns the player away, the window shows its reason)
            room: instead of hostname and port, the room code of a game hosted through a relay
                (`join(room="ABC234", relay="relay.example.org:8090")`; see `Client.connect`)
            relay: the relay's "HOST:PORT" (default: the environment variable PYGASE_RELAY)

        A window whose connection is lost without a goodbye joins again by itself, into the same seat,
        for `rejoin_for` seconds (30).

        Raises:
            TypeError: if `hostname` is not a str or `port` not an int (the order is `join(hostname,
                port)`, the other way round from `Client.connect(port, hostname)`), or `join_data` is
                not a dict that can be sent
            ValueError: if `join_data` is larger than 1 KiB packed, or `room` or `relay` cannot be one
        """
        joined_with = connect_arguments(hostname, port, password, join_data, room, relay)
        try:
            self.client.connect_in_thread(*joined_with)
        except (TypeError, ValueError) as error:  # (in the words of this method)
            raise type(error)(str(error).replace("connect_in_thread(", "join(")) from None
        self._joined_with, self._rejoin_until = joined_with, None

    def host(
        self,
        backend: Backend,
        hostname: str = "127.0.0.1",
        port: int = 0,
        password: Optional[str] = None,
        join_data: Optional[dict] = None,
        relay: Optional[str] = None,
        public: Union[bool, dict] = False,
    ) -> int:
        """Run `backend` in this process and join it as its host; return the port it listens on.

        The window joins at once, so it is the first client and becomes the host: the client that may shut
        the server down. Closing the window shuts the backend down.

        Arguments:
            backend: the backend to run
            hostname: address to listen on ("0.0.0.0": all of this machine's, to host on the LAN)
            port: port to listen on (0: any free one)
            password: the session password to join with; by default the one the backend was made with
                (`Backend(..., password=...)`), so the host is never refused
            join_data: what the host player joins with (see `join`)
            relay: a relay's "HOST:PORT": players anywhere join by the room code it gives
                (`backend.room_code`, logged; `Backend.run`)
            public: with a relay, list the game there (True, or a dict with `game` and `name`)
        """
        if password is None:
            password = backend.server.password
        self.backend = backend
        self._backend_thread = backend.run_in_thread(hostname, port, relay=relay, public=public)
        bound = backend.server.port
        assert bound is not None
        here = "127.0.0.1" if hostname in ("", "0.0.0.0", "::", "[::]") else hostname
        self.join(here, bound, password, join_data)
        return bound

    def dispatch(self, event_type: str, *args: Any, **kwargs: Any) -> None:
        """Send an event to the server; inputs of the predictor are applied locally at once.

        Never raises for a missing connection: the event is dropped and logged.
        """
        if self.client.connection is None:
            logger.debug("not connected: event %r dropped", event_type)
            return
        if self.predictor is not None and event_type in self.predicted_events:
            kwargs["input_seq"] = self.predictor.input(dict(kwargs), 1.0 / self.bindings.hold_rate)
        try:
            self.client.dispatch_event(event_type, *args, **kwargs)
        except (TypeError, ValueError):
            logger.exception("event %r cannot be sent", event_type)

    # ---- state --------------------------------------------------------------------------------------

    def _on_state(self, game_state: GameState) -> None:
        """State listener (network thread, lock held): feed interpolation and prediction."""
        if self.interpolators:
            now = time.monotonic()
            for interpolator in self.interpolators:
                interpolator.record(game_state, now)
        predictor = self.predictor
        if predictor is not None and predictor.key is not None:  # the key may be learnt later
            predictor.reconcile_state(game_state)

    def snapshot(self) -> Optional[GameState]:
        """Return a private copy of the latest game state (None before the first state arrived).

        The copy is taken only when the state changed, so this is cheap to call every frame.
        """
        connection = self.client.connection
        if connection is None or connection.updates_received == 0:
            return None
        version = connection.updates_received
        if version != self._snapshot_version or self._snapshot is None or self._snapshot_of is not connection:
            # Read before copying, so the copy is never older than the version it is recorded as (a newer
            # one arriving in between costs one more copy next frame).
            snapshot = self.client.copy_game_state()
            self._snapshot, self._snapshot_version, self._snapshot_of = snapshot, version, connection
        return self._snapshot

    def _prepare_state(self, now: float) -> Optional[GameState]:
        state = self.snapshot()
        if state is None:
            return None
        predictor = self.predictor
        for interpolator in self.interpolators:
            entities = getattr(state, interpolator.collection, None)
            if isinstance(entities, dict):
                skip = (
                    (predictor.key,)
                    if predictor is not None and predictor.collection == interpolator.collection
                    else ()
                )
                interpolator.apply(entities, now, skip=skip)
        if predictor is not None:
            entities = getattr(state, predictor.collection, None)
            if isinstance(entities, dict):
                predictor.apply(entities)
        return state

    @property
    def interpolation_delay(self) -> Optional[float]:
        """The current interpolation delay in seconds (None without interpolation)."""
        return self.interpolators[0].delay if self.interpolators else None

    def status_text(self) -> str:
        """What the connection is doing, in words for the player ('' while all is well).

        This is the text of the status banner, and the `status` a `draw_waiting` hook gets: "not
        connected", "connecting…", "waiting for the game…" (joined, no state yet), "connection lost,
        reconnecting…", "server closed, waiting for it to return…", "connection lost, joining again…"
        (it ended without a goodbye: the window joins again, into the same seat, for `rejoin_for`
        seconds), and once the connection ended "disconnected", "server closed", why the server refused
        this client ("wrong password", "server full", the game's reason ...) or why the connect failed
        (`Client.connect_error`: nothing listens on that port, no answer).
        """
        connection = self.client.connection
        if connection is None:
            return "not connected"
        if self._rejoin_until is not None and connection.status != _CONNECTED:
            return "connection lost, joining again…"
        if connection.status == _DISCONNECTED:
            reason = self.client.refused_reason
            if reason:
                return str(reason)
            failure = self.client.connect_error  # nothing listening, no answer ...
            if failure is not None:
                return str(failure)
            return "server closed" if connection.server_closed else "disconnected"
        if connection.server_closed:
            return "server closed, waiting for it to return…"
        last = connection._last_received
        if last is None:
            return f"looking for room {connection.room}…" if connection.route is None else "connecting…"
        if time.monotonic() - last > _SILENCE_SHOWN_AFTER:
            return "connection lost, reconnecting…"
        if connection.updates_received == 0:
            return "waiting for the game…"
        return ""

    # ---- running ------------------------------------------------------------------------------------

    def _call_hook(self, name: str, **arguments: Any) -> Any:
        hook = self.hooks.get(name)
        if hook is None:
            return None
        try:
            return call_declared(hook, player_id=self.client.player_id, **arguments)
        except Exception:
            now = time.monotonic()
            if now - self._hook_errors.get(name, float("-inf")) > 2.0:  # log, but not every frame
                self._hook_errors[name] = now
                logger.exception("error in the %s hook (the game goes on)", name)
            return None

    def _handle_event(self, event: Any, now: float) -> None:
        if event.type == pygame.QUIT:
            self.running = False
            self._quit = True
            return
        if event.type == pygame.KEYDOWN and pygame.key.name(event.key) == self.overlay_key:
            self.show_overlay = not self.show_overlay
            return
        if event.type == getattr(pygame, "WINDOWFOCUSLOST", -1):
            self.bindings.release_all()
        if event.type == pygame.JOYDEVICEADDED:
            pygame.joystick.Joystick(event.device_index).init()
        self.bindings.handle(event, self.dispatch, now)
        self._call_hook("on_event", event=event)
        if event.type == pygame.KEYDOWN:
            self._call_hook(
                "on_key_down", key=event.key, mod=event.mod, unicode=getattr(event, "unicode", "")
            )
        elif event.type == pygame.KEYUP:
            self._call_hook("on_key_up", key=event.key, mod=event.mod)
        elif event.type == pygame.MOUSEBUTTONDOWN:
            self._call_hook("on_mouse_down", pos=event.pos, button=event.button)
        elif event.type == pygame.MOUSEBUTTONUP:
            self._call_hook("on_mouse_up", pos=event.pos, button=event.button)
        elif event.type == pygame.MOUSEMOTION:
            self._call_hook("on_mouse_move", pos=event.pos, rel=event.rel, buttons=event.buttons)
        elif event.type == pygame.JOYBUTTONDOWN:
            self._call_hook("on_joy_button_down", joy=getattr(event, "instance_id", 0), button=event.button)
        elif event.type == pygame.JOYBUTTONUP:
            self._call_hook("on_joy_button_up", joy=getattr(event, "instance_id", 0), button=event.button)
        elif event.type == pygame.JOYAXISMOTION:
            self._call_hook(
                "on_joy_axis", joy=getattr(event, "instance_id", 0), axis=event.axis, value=event.value
            )

    def frame(self, now: Optional[float] = None) -> None:
        """Run one frame: input, state snapshot, interpolation and prediction, drawing, display flip.

        A closed window opens again.
        """
        if self._closed:
            self._reopen()
        now = time.monotonic() if now is None else now
        dt, self._last_frame = now - self._last_frame, now
        for event in pygame.event.get():
            self._handle_event(event, now)
        self.bindings.update(self.dispatch, now)
        connected = self.client.connection is not None and self.client.connection.status == _CONNECTED
        self._rejoin_if_lost(connected, now)
        if connected != self._was_connected:
            self._was_connected = connected
            self._call_hook("on_connect" if connected else "on_disconnect")
        state = self._prepare_state(now)
        self._call_hook("update", dt=dt, state=state)
        self.screen.fill(self.background)
        status = self.status_text()
        if state is not None:
            self._call_hook("draw", screen=self.screen, state=state)
            self._draw_banner(status)
        elif "draw_waiting" in self.hooks:
            self._call_hook("draw_waiting", screen=self.screen, status=status)
        else:
            self._draw_banner(status)
        if self.show_overlay and self.client.connection is not None:
            if self.overlay.due(now):
                self.overlay.update(self.client.statistics(), self.interpolation_delay, now)
            self.overlay.draw(self.screen)
        pygame.display.flip()
        self.frames += 1

    def _rejoin_if_lost(self, connected: bool, now: float) -> None:
        """A player whose connection was lost (no goodbye, no refusal, the server not closed) joins again,
        every 2 s for `rejoin_for` seconds: the server keeps its seat (and player id) that long."""
        connection = self.client.connection
        if connected or connection is None or self._joined_with is None:
            self._rejoin_until = None if connected else self._rejoin_until
            return
        lost = (
            connection.status == _DISCONNECTED
            and self.client.player_id is not None
            and not connection.server_closed
            and self.client.refused_reason is None
        )
        if not lost or not self.client._done.is_set():
            return
        if self._rejoin_until is None:
            self._rejoin_until = now + self.rejoin_for
            logger.info("connection lost: joining again for up to %g s", self.rejoin_for)
        if now < self._rejoin_until and now >= self._rejoin_next:
            self._rejoin_next = now + 2.0
            self.client.connect_in_thread(*self._joined_with)

    def _draw_banner(self, text: str) -> None:
        if not text:
            return
        if text != self._banner_text or self._banner is None:
            if self._font is None:
                self._font = pygame.font.Font(None, 32)
            self._banner_text = text
            self._banner = self._font.render(text, True, (255, 230, 120))
        rect = self._banner.get_rect(center=(self.screen.get_width() // 2, self.screen.get_height() // 2))
        backdrop = rect.inflate(24, 16)
        pygame.draw.rect(self.screen, (0, 0, 0), backdrop)
        self.screen.blit(self._banner, rect)

    def run(
        self,
        frames: Optional[int] = None,
        seconds: Optional[float] = None,
        screenshot: Union[str, Path, None] = None,
        script: Iterable[tuple[float, Any]] = (),
        close: bool = True,
    ) -> None:
        """Run the game until the player closes the window (or for `frames` frames or `seconds` seconds).

        When the run ends, the window closes (see `close()`): it disconnects, and a window that hosts shuts
        its server down. `run()` may be called again: it opens the window again, but the window's client
        is disconnected then (the status banner says so) unless `join()` or `host()` connected it again.
        To stop and go on later with the same connection, pass `close=False`.

        Arguments:
            frames: stop after this many frames (of this run)
            seconds: stop after this many seconds
            screenshot: save the last frame to this PNG file
            script: (time in seconds since the start, pygame event) pairs posted at that time, to drive
                the game without a player (tests, demos, bots)
            close: close the window when the run ends; False leaves it open and connected (unless the
                player closed it), and the next `run()` goes on with the game
        """
        if self._closed:
            self._reopen()
        pending = sorted(script, key=lambda item: item[0])
        start = time.monotonic()
        first_frame = self.frames
        self._last_frame = start
        self.running = True
        self._quit = False
        finished = False
        try:
            while self.running:
                now = time.monotonic()
                while pending and pending[0][0] <= now - start:
                    pygame.event.post(pending.pop(0)[1])
                self.frame(now)
                if frames is not None and self.frames - first_frame >= frames:
                    break
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                if self.fps:
                    self.clock.tick(self.fps)
            if screenshot is not None:
                self.save_screenshot(screenshot)
            finished = True
        finally:
            if close or self._quit or not finished:
                self.close()

    def save_screenshot(self, path: Union[str, Path]) -> None:
        """Save what the screen shows now to a PNG file."""
        pygame.image.save(self.screen, str(path))

    def close(self) -> None:
        """Disconnect (shutting the server down if this window hosts it) and close the window.

        Nothing happens if the window is closed already. A closed window opens again with `run()`.
        """
        if self._closed:
            return
        self._closed = True
        self.running = False
        self._joined_with = None  # (no joining again after a goodbye)
        self._call_hook("on_close")
        backend, thread = self.backend, self._backend_thread  # no thread: the backend was shut down
        if self.client.connection is not None:
            self.client.disconnect(shutdown_server=backend is not None and thread is not None)
        if backend is not None and thread is not None:
            backend.shutdown()
            thread.join(timeout=5)
            self._backend_thread = None  # `backend` stays, for a look at how the game ended
        self._was_connected = False
        pygame.display.quit()
