"""Smooth remote motion and predict the local player between server updates.

Contents:
- `SnapshotInterpolator`: shows remote entities a little in the past, interpolated between the state
  updates around that time, so motion looks smooth although updates arrive in steps and with jitter
- `Predictor`: opt-in client-side prediction with server reconciliation for the locally controlled entity

Both are fed from `Client.register_state_listener` (network thread, state lock held) and read from the
render loop, and are safe to use from those two threads at once:

    interpolator = SnapshotInterpolator("players")
    predictor = Predictor("players", my_id, move)   # move(entity, input_data, dt) -> changed fields

    def on_state(game_state):
        interpolator.record(game_state, time.perf_counter())
        predictor.reconcile_state(game_state)

    client.register_state_listener(on_state)

    # each frame, on the game's own copy of the state:
    seq = predictor.input({"dx": 1}, dt)
    client.dispatch_event("MOVE", dx=1, dt=dt, seq=seq)       # the server stores seq in "input_seq"
    with client.access_game_state() as game_state:
        players = copy.deepcopy(game_state.players)
    interpolator.apply(players, time.perf_counter(), skip=(my_id,))
    predictor.apply(players)
"""

from __future__ import annotations

import bisect
import collections
import copy
import math
import threading
from typing import Any, Callable, Collection, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from pygase_pygame._columns import (
    Column,
    Keys,
    Snapshot,
    align,
    capture,
    first_values,
    lerp,
    number,
    set_row,
    write,
)

__all__ = ["Predictor", "SnapshotInterpolator"]

#: field values of one entity, in `fields` order; None where missing or not a number
_Values = Tuple[Optional[float], ...]

# How the delay follows the network (see `SnapshotInterpolator.delay`).
_SMOOTHING = 0.1  # weight of a new sample in the moving averages of interval and jitter
_INTERVAL_FACTOR = 1.5  # delay = _INTERVAL_FACTOR * interval + _JITTER_FACTOR * jitter ...
_JITTER_FACTOR = 2.0
_INITIAL_DELAY = 0.1  # before two updates arrived
_DELAY_RISE_RATE = 0.2  # seconds of delay per second: the render clock slows to 0.8x at most ...
_DELAY_FALL_RATE = 0.05  # ... and speeds up to 1.05x at most while the delay adapts
_PEAK_MEMORY = 2.0  # seconds in which the excess of the longest recent interval fades to 1/e
_PEAK_MARGIN = 0.5  # ... and at least that interval plus _PEAK_MARGIN average intervals
# How entities settle when no update follows (see `SnapshotInterpolator.sample`): after extrapolating for
# `max_extrapolation` seconds they glide back onto the newest snapshot in max(update interval,
# _SETTLE_FACTOR * max_extrapolation) seconds, so at most at 1.5 / _SETTLE_FACTOR times their last speed.
_SETTLE_FACTOR = 2.0


class SnapshotInterpolator:
    """Show the entities of one state collection smoothly, a short adaptive delay in the past.

    Every state update that arrives is recorded with its arrival time as a snapshot of the entities'
    numeric `fields`. Rendering happens at `now - delay`, between two snapshots, so positions are
    interpolated linearly instead of jumping with each update. The delay follows the observed update
    interval and its jitter (see `delay`), so a remote entity lags behind the server by about one and a
    half update intervals on a clean link (30 ms at 50 updates/s, 150 ms at 10 updates/s) and more on a
    jittery one.

    When no update follows (nothing changed on the server, or the link stalls), motion is extrapolated
    briefly and then settles: about `delay + max_extrapolation + max(update_interval, 2 *
    max_extrapolation)` seconds after the newest update (a third of a second with the defaults at 50
    updates/s) the values shown are exactly the newest authoritative ones, and they stay so until the
    next update.

    Arguments:
        collection: name of the game state attribute that holds the entities, a dict of
            key -> entity dict (for example `"players"` for `state.players = {1: {"x": 3.0, "y": 4.0}}`)
        fields: the numeric entity fields to interpolate
        min_delay: the shortest delay in seconds
        max_delay: the longest delay in seconds
        max_extrapolation: how many seconds past the newest snapshot to extrapolate when updates are
            late; after that, entities glide back onto their newest values and stay there exactly (an
            entity that stopped gets no further updates, so it must end where the server has it)
        history: how many snapshots to keep (at least 2)

    `record` is meant to be called from a state listener (network thread) and `sample` / `apply` from the
    render loop; all three are thread-safe. Times are in seconds from any monotonic clock (for example
    `time.perf_counter()`), the same for all calls.

    A snapshot is kept as one list of numbers per field. While updates hold the same entities (in any
    order), recording, interpolating and applying them takes a few list operations per field rather than
    work per entity and field (on the project's test machine, about 0.2 ms to record and 0.6 ms to apply
    1000 entities of two fields).
    """

    def __init__(
        self,
        collection: str,
        fields: Tuple[str, ...] = ("x", "y"),
        min_delay: float = 0.03,
        max_delay: float = 0.35,
        max_extrapolation: float = 0.1,
        history: int = 32,
    ) -> None:
        if not fields:
            raise ValueError("fields must name at least one field")
        if not 0 <= min_delay <= max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if max_extrapolation < 0:
            raise ValueError("max_extrapolation must not be negative")
        if history < 2:
            raise ValueError("history must keep at least 2 snapshots")
        self.collection = collection
        self.fields = tuple(fields)
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.max_extrapolation = max_extrapolation
        self.history = history
        self._lock = threading.Lock()
        self._snapshots: Deque[Snapshot] = collections.deque(maxlen=history)
        self._reset_timing()

    def _reset_timing(self) -> None:
        self._interval: Optional[float] = None  # moving average of the update interval
        self._jitter = 0.0  # moving average of the interval's deviation from that
        self._peak = 0.0  # the longest recent interval, fading towards the average
        self._target = self._clamp(_INITIAL_DELAY)  # the delay the network asks for
        self._anchor_delay = self._target  # the delay was _anchor_delay at _anchor_time ...
        self._anchor_time: Optional[float] = None  # ... and moves towards _target from there
        self._last_now: Optional[float] = None  # the latest time passed to `record` or `sample`

    def reset(self) -> None:
        """Forget all snapshots and timing (for example after reconnecting)."""
        with self._lock:
            self._snapshots.clear()
            self._reset_timing()

    # ---- recording ----------------------------------------------------------------------------------

    def record(self, game_state: Any, now: float) -> None:
        """Record the entities of `game_state` as a snapshot that arrived at time `now`.

        Copies the numeric `fields` of each entity of `getattr(game_state, collection, {})`; entities that
        are not dicts or have none of the fields as numbers are left out. Cheap (O(entities)), so it can
        run in a state listener. A snapshot recorded at the same time as (or earlier than) the newest one
        replaces it.
        """
        try:  # (read without the lock: only a hint of which keys to share)
            previous: Optional[Keys] = self._snapshots[-1].keys
        except IndexError:
            previous = None
        keys, columns, complete = capture(getattr(game_state, self.collection, None), self.fields, previous)
        with self._lock:
            self._see(now)
            snapshots = self._snapshots
            if snapshots and now <= snapshots[-1].time:  # no time between them: the newer state wins
                snapshots[-1] = Snapshot(snapshots[-1].time, keys, columns, complete)
                return
            if snapshots:
                self._observe_interval(now - snapshots[-1].time, now)
            snapshots.append(Snapshot(now, keys, columns, complete))

    def _observe_interval(self, interval: float, now: float) -> None:
        # Longer gaps (a paused game, a stalled link) count as a long but finite interval.
        interval = min(interval, 2 * self.max_delay)
        if self._interval is None:
            self._interval = interval
            self._jitter = interval / 2
            self._peak = interval
        else:
            self._jitter += _SMOOTHING * (abs(interval - self._interval) - self._jitter)
            self._interval += _SMOOTHING * (interval - self._interval)
            excess = (self._peak - self._interval) * math.exp(-interval / _PEAK_MEMORY)
            self._peak = max(interval, self._interval + excess)
        target = self._clamp(
            max(
                _INTERVAL_FACTOR * self._interval + _JITTER_FACTOR * self._jitter,
                self._peak + _PEAK_MARGIN * self._interval,
            )
        )
        if self._anchor_time is None:  # the first estimate: nothing has been rendered smoothly yet
            self._anchor_delay = target
        else:
            self._anchor_delay = self._delay_at(now)
        self._anchor_time = now
        self._target = target

    def _clamp(self, delay: float) -> float:
        return min(max(delay, self.min_delay), self.max_delay)

    def _see(self, now: float) -> None:
        if self._last_now is None or now > self._last_now:
            self._last_now = now

    def _delay_at(self, now: float) -> float:
        # The delay moves towards the target gradually, so render time never jumps (or runs) backwards.
        if self._anchor_time is None:
            return self._target
        elapsed = max(0.0, now - self._anchor_time)
        change = self._target - self._anchor_delay
        if change > 0:
            change = min(change, _DELAY_RISE_RATE * elapsed)
        else:
            change = max(change, -_DELAY_FALL_RATE * elapsed)
        return self._anchor_delay + change

    # ---- reading ------------------------------------------------------------------------------------

    @property
    def delay(self) -> float:
        """How far (in seconds) rendering lags behind the arrival of updates: render time is `now - delay`.

        It aims at 1.5 smoothed update intervals plus twice their mean deviation, but at least the longest
        recent interval plus half an average one (that excess fades within a few seconds), so that the
        next update normally arrives before rendering needs it; clamped to [`min_delay`, `max_delay`].
        It changes gradually: the render clock runs at 0.8x to 1.05x speed while the delay adapts, so
        render time never jumps. The value is that at the latest time passed to `record` or `sample`.
        """
        with self._lock:
            return self._delay_at(self._last_now) if self._last_now is not None else self._target

    @property
    def update_interval(self) -> Optional[float]:
        """The smoothed interval between updates in seconds (None before two updates arrived)."""
        with self._lock:
            return self._interval

    def sample(self, now: float) -> Dict[Any, Tuple[Optional[float], ...]]:
        """Return each entity's field values (a tuple in `fields` order) at render time `now - delay`.

        Values are interpolated linearly between the two snapshots around the render time. If the render
        time is past the newest snapshot (updates are late, or none come because nothing changed), they
        are extrapolated with the velocity between the last two snapshots (at least half an update
        interval apart, so that a burst of updates does not give absurd speeds) for at most
        `max_extrapolation` seconds. Then they ease back (smoothly, starting and ending at rest) onto the
        newest snapshot's values over max(`update_interval`, 2 * `max_extrapolation`) seconds, and from
        then on are exactly those values: an entity that stopped is shown where the server has it, never
        at a projected spot. Before the oldest snapshot, the oldest values are used. An entity that is
        new in the newest snapshot shows its newest values; entities missing from the newest snapshot are
        left out. A field that is missing or not a number in the snapshots used is None; the others are
        floats.
        """
        keys, columns, _ = self._sample_columns(now)
        return dict(zip(keys.keys, zip(*columns))) if columns else {}

    def _sample_columns(self, now: float) -> Tuple[Keys, Sequence[Column], bool]:
        """`sample` as the newest snapshot's keys, one column per field (not to be changed), and whether
        no value in them is None."""
        with self._lock:
            self._see(now)
            snapshots = list(self._snapshots)  # snapshots are never changed once recorded
            render_time = now - self._delay_at(now)
            interval = self._interval or 0.0
        if not snapshots:
            return Keys(()), (), True
        newest = snapshots[-1]
        keys = newest.keys
        if render_time >= newest.time:
            columns, complete = self._extrapolate(snapshots, render_time, interval)
            return keys, columns, complete
        times = [snapshot.time for snapshot in snapshots]
        index = bisect.bisect_right(times, render_time) - 1  # times[index] <= render_time < times[index + 1]
        if index < 0:  # older than the oldest snapshot: the oldest values (or where an entity appears)
            columns, complete, missing = align(snapshots[0], keys)
            for row in missing:  # (`align` made new columns then)
                set_row(columns, row, first_values(snapshots, 1, keys.keys[row]))
            return keys, columns, complete
        a, b = snapshots[index], snapshots[index + 1]
        fraction = (render_time - a.time) / (b.time - a.time)
        columns_a, complete_a, missing_a = align(a, keys)
        columns_b, complete_b, missing_b = align(b, keys)
        # An entity not in `a` shows its values in `b` (where it appears); one not in `b` (gone for a
        # while and back later) holds its values in `a`: `lerp` takes the side that is not None.
        complete = complete_a and complete_b
        columns = [lerp(ca, cb, fraction, complete) for ca, cb in zip(columns_a, columns_b)]
        for row in set(missing_a).intersection(missing_b):  # in neither: where it first appears later
            set_row(columns, row, first_values(snapshots, index + 2, keys.keys[row]))
        return keys, columns, complete

    def _extrapolate(
        self, snapshots: List[Snapshot], render_time: float, interval: float
    ) -> Tuple[Sequence[Column], bool]:
        newest = snapshots[-1]
        ahead = render_time - newest.time
        extrapolation = self.max_extrapolation
        if ahead > extrapolation:
            # No update came in time: ease the projection back onto the newest values, which are the
            # authoritative ones until an update says otherwise (an entity that stopped sends none).
            settle = max(interval, _SETTLE_FACTOR * extrapolation)
            progress = (ahead - extrapolation) / settle if settle > 0 else 1.0
            if progress >= 1.0:
                return newest.columns, newest.complete
            ahead = extrapolation * (1.0 - progress * progress * (3.0 - 2.0 * progress))  # smoothstep
        if ahead <= 0.0 or len(snapshots) < 2:
            return newest.columns, newest.complete
        # The velocity is that between the newest snapshot and the last one at least half an update
        # interval older: updates that arrive in a burst are close in time, and their velocity is wild.
        times = [snapshot.time for snapshot in snapshots]
        base = bisect.bisect_right(times, newest.time - 0.5 * interval) - 1
        base = max(0, min(len(snapshots) - 2, base))
        before = snapshots[base]
        # Extrapolating is interpolating past the end, from `before` to the newest values (an entity
        # not in `before` is taken from the snapshot just before the newest, or else not moved).
        columns_before, complete, missing = align(before, newest.keys)
        fraction = 1.0 + ahead / (newest.time - before.time)
        columns = [
            lerp(cb, cn, fraction, complete and newest.complete)
            for cb, cn in zip(columns_before, newest.columns)
        ]
        previous = snapshots[-2]
        if missing and previous is not before:
            fraction = 1.0 + ahead / (newest.time - previous.time)
            for row in missing:
                key = newest.keys.keys[row]
                values = previous.row(key)
                if values is not None:
                    newest_values = [column[row] for column in newest.columns]
                    set_row(columns, row, lerp(list(values), newest_values, fraction, False))
        return columns, complete and newest.complete

    def apply(self, entities: Dict[Any, Any], now: float, skip: Collection[Any] = ()) -> None:
        """Overwrite the interpolated fields of `entities` in place with their values at `now - delay`.

        `entities` is the game's own copy of the collection (key -> entity dict). Only entities present
        both there and in the newest snapshot, and only fields that are numbers in the entity, are
        changed; the keys in `skip` (the locally predicted entity, say) and everything else are left
        alone. A field that holds an int gets an int (the interpolated value rounded), so a type the game
        relies on does not change; once an entity has settled (see `sample`) its fields equal the newest
        authoritative values exactly.
        """
        keys, columns, complete = self._sample_columns(now)
        write(entities, keys, columns, complete, self.fields, skip)


class Predictor:
    """Predict the locally controlled entity from its inputs and reconcile it with the server.

    Each input is applied to the predicted entity at once, with the same movement rule (`step`) the server
    applies, and kept with a sequence number until the server acknowledges it by storing that number in
    the entity's `ack_field`. When a state arrives, the prediction restarts from the authoritative entity
    and replays the inputs the server has not processed yet, so the local entity responds without the
    round trip yet follows the server wherever they disagree.

    Arguments:
        collection: name of the game state attribute that holds the entities (key -> entity dict)
        key: the key of the local entity in that collection
        step: `step(entity, input_data, dt)` returns the fields an input changes (for example
            `{"x": entity["x"] + input_data["dx"] * dt}`); it must be the server's rule for one input
            event and should not depend on anything but its arguments
        ack_field: the entity field in which the server stores the sequence number of the last input
            it processed (missing counts as 0)
        max_pending: how many unacknowledged inputs to keep at most (the oldest are dropped)

    `input`, `reconcile` and `apply` are thread-safe; `step` runs with the predictor's lock held.
    """

    def __init__(
        self,
        collection: str,
        key: Any,
        step: Callable[[Dict[str, Any], Dict[str, Any], float], Mapping[str, Any]],
        ack_field: str = "input_seq",
        max_pending: int = 256,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.collection = collection
        self.key = key
        self.step = step
        self.ack_field = ack_field
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._sequence = 0
        self._pending: Deque[Tuple[int, Dict[str, Any], float]] = collections.deque(maxlen=max_pending)
        self._predicted: Optional[Dict[str, Any]] = None
        self._moved_fields: set[str] = set()  # the fields `step` changes, for `error`
        self._error = 0.0

    def reset(self) -> None:
        """Forget the prediction and the pending inputs (sequence numbers keep counting up)."""
        with self._lock:
            self._pending.clear()
            self._predicted = None
            self._error = 0.0

    def _step(self, entity: Dict[str, Any], data: Dict[str, Any], dt: float) -> None:
        changes = self.step(entity, data, dt)
        self._moved_fields.update(changes)
        entity.update(changes)

    def input(self, data: Mapping[str, Any], dt: float) -> int:
        """Record an input and apply it to the predicted entity at once.

        Arguments:
            data: the input (the event data the server's rule gets as `input_data`)
            dt: the time step the input covers

        Returns:
            the input's sequence number (1, 2, ...), to send with the input event so that the server can
            store it in the entity's `ack_field`
        """
        with self._lock:
            self._sequence += 1
            entry = (self._sequence, dict(data), dt)
            self._pending.append(entry)
            if self._predicted is not None:
                self._step(self._predicted, entry[1], dt)
            return self._sequence

    def reconcile(self, server_entity: Mapping[str, Any]) -> None:
        """Restart the prediction from the authoritative entity and replay the unacknowledged inputs.

        Drops the inputs with a sequence number up to the entity's `ack_field`. Thread-safe, and cheap
        enough for a state listener (it copies the entity and replays the pending inputs).
        """
        ack = server_entity.get(self.ack_field, 0)
        if isinstance(ack, bool) or not isinstance(ack, int):
            ack = 0
        predicted = copy.deepcopy(dict(server_entity))
        with self._lock:
            pending = self._pending
            while pending and pending[0][0] <= ack:
                pending.popleft()
            # An ack beyond our numbers (we restarted, the server did not): continue after it.
            self._sequence = max(self._sequence, ack)
            for _, data, dt in pending:
                self._step(predicted, data, dt)
            if self._predicted is not None:
                self._error = _distance(self._predicted, predicted, self._moved_fields)
            self._predicted = predicted

    def reconcile_state(self, game_state: Any) -> None:
        """Reconcile with `getattr(game_state, collection)[key]`; nothing happens if it is not there."""
        entities = getattr(game_state, self.collection, None)
        if isinstance(entities, Mapping):
            entity = entities.get(self.key)
            if isinstance(entity, Mapping):
                self.reconcile(entity)

    @property
    def predicted(self) -> Optional[Dict[str, Any]]:
        """A copy of the predicted entity, or None before the first `reconcile`."""
        with self._lock:
            return copy.deepcopy(self._predicted)

    @property
    def pending(self) -> int:
        """How many inputs the server has not acknowledged yet."""
        with self._lock:
            return len(self._pending)

    @property
    def error(self) -> float:
        """How far the last `reconcile` moved the prediction (0.0 when the prediction was right).

        The Euclidean distance, over the numeric fields `step` changes, between the prediction just
        before the reconcile and the one after it, which is the server state with the still unacknowledged
        inputs replayed: the misprediction the player saw corrected.
        """
        with self._lock:
            return self._error

    def apply(self, entities: Dict[Any, Any]) -> None:
        """Overwrite the local entity in `entities` (the game's copy of the collection) with the prediction.

        Nothing happens before the first `reconcile` or if the local entity is not in `entities`.
        """
        entity = entities.get(self.key)
        if not isinstance(entity, dict):
            return
        predicted = self.predicted
        if predicted is not None:
            entity.update(predicted)


def _distance(a: Mapping[str, Any], b: Mapping[str, Any], fields: Iterable[str]) -> float:
    total = 0.0
    for field in fields:
        va, vb = number(a.get(field)), number(b.get(field))
        if va is not None and vb is not None:
            total += (va - vb) ** 2
    return math.sqrt(total)
