"""Unit tests of `pygase.gamestate`: deep-merging updates, combining them, and their wire form."""

from __future__ import annotations

import copy
import functools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pygase import _codec
from pygase.gamestate import TO_DELETE, GameState, GameStateUpdate, GameStatus
from pygase.utils import Sqn

# The marker, the status enum and the defaults


def test_to_delete_is_a_4_byte_marker():
    assert isinstance(TO_DELETE, bytes)
    assert len(TO_DELETE) == 4


def test_game_status_paused_is_1_and_active_is_2():
    assert GameStatus.get("Paused") == 1
    assert GameStatus.get("Active") == 2
    assert GameStatus.get(1) == "Paused"
    assert GameStatus.get(2) == "Active"


def test_game_state_defaults_to_time_order_zero_and_paused():
    state = GameState()
    assert state.time_order == 0
    assert isinstance(state.time_order, Sqn)
    assert state.game_status == GameStatus.get("Paused")
    assert state.is_paused()


def test_active_game_state_is_not_paused():
    state = GameState(game_status=GameStatus.get("Active"))
    assert state.game_status == 2
    assert not state.is_paused()


def test_game_state_keeps_custom_attributes_and_converts_time_order_to_sqn():
    state = GameState(time_order=5, hp=100, players={1: {"x": 0.5}})
    assert state.hp == 100
    assert state.players == {1: {"x": 0.5}}
    assert isinstance(state.time_order, Sqn)
    assert state.time_order == 5


def test_game_states_and_updates_are_ordered_by_time_order():
    assert GameState(time_order=2) > GameState(time_order=1)
    assert GameState(time_order=1) > GameState(time_order=65535)  # wrap-aware
    assert GameStateUpdate(3) > GameStateUpdate(2)
    assert GameStateUpdate(1) > GameStateUpdate(65535)


# Applying an update


def test_update_changes_one_field_and_keeps_siblings():
    state = GameState(players={3: {"x": 0, "y": 7, "name": "ann"}, 4: {"x": 9}}, hp=100)
    new = state + GameStateUpdate(1, players={3: {"x": 1}})
    assert new.players == {3: {"x": 1, "y": 7, "name": "ann"}, 4: {"x": 9}}
    assert new.hp == 100


def test_update_sets_the_state_time_order():
    new = GameState(time_order=4) + GameStateUpdate(9, hp=1)
    assert new.time_order == 9
    assert isinstance(new.time_order, Sqn)


def test_update_adds_new_attributes_and_keys():
    new = GameState(players={1: {"x": 0}}) + GameStateUpdate(1, hp=5, players={2: {"x": 3}})
    assert new.hp == 5
    assert new.players == {1: {"x": 0}, 2: {"x": 3}}


def test_to_delete_removes_a_top_level_attribute():
    new = GameState(hp=100, mp=5) + GameStateUpdate(1, hp=TO_DELETE)
    assert not hasattr(new, "hp")
    assert new.mp == 5


def test_to_delete_removes_a_key_at_any_depth():
    state = GameState(world={"zones": {1: {"monsters": {7: {"hp": 3}, 8: {"hp": 4}}, "name": "cave"}}})
    new = state + GameStateUpdate(1, world={"zones": {1: {"monsters": {7: TO_DELETE}}}})
    assert new.world == {"zones": {1: {"monsters": {8: {"hp": 4}}, "name": "cave"}}}


def test_to_delete_of_a_missing_key_is_harmless():
    new = GameState(players={1: {"x": 0}}) + GameStateUpdate(1, players={2: TO_DELETE}, ghost=TO_DELETE)
    assert new.players == {1: {"x": 0}}
    assert not hasattr(new, "ghost")


def test_to_delete_inside_a_dict_that_replaces_a_scalar_is_dropped():
    new = GameState(slot=5) + GameStateUpdate(1, slot={"a": 1, "b": TO_DELETE})
    assert new.slot == {"a": 1}


def test_a_dict_replaces_a_non_dict():
    new = GameState(slot=5, name="ann") + GameStateUpdate(1, slot={"a": 1}, name={"first": "ann"})
    assert new.slot == {"a": 1}
    assert new.name == {"first": "ann"}


def test_a_scalar_replaces_a_dict():
    new = GameState(slot={"a": 1, "b": 2}) + GameStateUpdate(1, slot=3)
    assert new.slot == 3


def test_lists_are_replaced_not_merged():
    state = GameState(items=[1, 2, 3], nested={"path": [[0, 0], [1, 1]]})
    new = state + GameStateUpdate(1, items=[9], nested={"path": [[5, 5]]})
    assert new.items == [9]
    assert new.nested == {"path": [[5, 5]]}


def test_an_empty_dict_update_keeps_a_dict_unchanged():
    new = GameState(players={1: {"x": 0}}) + GameStateUpdate(1, players={})
    assert new.players == {1: {"x": 0}}
    assert new.time_order == 1


def test_plus_never_mutates_the_state_or_the_update():
    state = GameState(time_order=1, players={3: {"x": 0, "y": 7}, 4: {"x": 9}}, items=[1, 2], hp=100)
    update = GameStateUpdate(2, players={3: {"x": 1}, 4: TO_DELETE}, items=[3], hp=TO_DELETE)
    state_before = copy.deepcopy(state.__dict__)
    update_before = copy.deepcopy(update.__dict__)
    new = state + update
    assert new is not state
    assert state.__dict__ == state_before
    assert update.__dict__ == update_before
    assert new.players == {3: {"x": 1, "y": 7}}


def test_new_state_does_not_share_dicts_with_the_old_state():
    state = GameState(players={3: {"x": 0}})
    new = state + GameStateUpdate(1, hp=1)
    new.players[3]["x"] = 99
    assert state.players == {3: {"x": 0}}


def test_new_state_does_not_share_dicts_with_the_update():
    update = GameStateUpdate(1, players={3: {"x": 0}})
    new = GameState(players=5) + update
    new.players[3]["x"] = 99
    assert update.players == {3: {"x": 0}}


def test_new_state_does_not_share_lists_with_the_update():
    update = GameStateUpdate(1, items=[1, 2])
    new = GameState() + update
    new.items.append(3)
    assert update.items == [1, 2]


def test_update_plus_state_applies_the_update():
    new = GameStateUpdate(1, hp=5) + GameState(hp=1, mp=2)
    assert isinstance(new, GameState)
    assert (new.hp, new.mp, new.time_order) == (5, 2, 1)


def test_state_plus_something_else_is_a_type_error():
    with pytest.raises(TypeError):
        GameState() + 1
    with pytest.raises(TypeError):
        GameState() + {"hp": 1}


@pytest.mark.parametrize("update_time_order", [5, 4, 1])
def test_an_update_not_newer_than_the_state_is_not_applied(update_time_order):
    state = GameState(time_order=5, hp=100)
    new = state + GameStateUpdate(update_time_order, hp=1, mp=3)
    assert new.hp == 100
    assert not hasattr(new, "mp")
    assert new.time_order == 5


def test_an_update_with_time_order_zero_is_never_applied():
    new = GameState(hp=100) + GameStateUpdate(0, hp=1)
    assert new.hp == 100


def test_an_update_after_the_wrap_is_newer():
    new = GameState(time_order=65535, hp=100) + GameStateUpdate(1, hp=1)
    assert new.hp == 1
    assert new.time_order == 1


def test_an_update_just_before_the_wrap_is_older():
    new = GameState(time_order=2, hp=100) + GameStateUpdate(65535, hp=1)
    assert new.hp == 100


# Combining updates

STATE = GameState(time_order=10, players={1: {"x": 0, "y": 0}, 2: {"x": 5, "y": 5}}, hp=100, items=[1])
U1 = GameStateUpdate(11, players={1: {"x": 1}, 2: TO_DELETE}, hp=90)
U2 = GameStateUpdate(12, players={1: {"y": 2}, 3: {"x": 3}}, items=[2])
U3 = GameStateUpdate(13, players={1: TO_DELETE, 2: {"x": 6}}, hp=TO_DELETE)


def test_older_plus_newer_has_the_effect_of_applying_them_in_order():
    assert STATE + (U1 + U2) == (STATE + U1) + U2


def test_newer_plus_older_has_the_effect_of_applying_them_in_order():
    assert STATE + (U2 + U1) == (STATE + U1) + U2
    assert (STATE + (U2 + U1)).players == {1: {"x": 1, "y": 2}, 3: {"x": 3}}


def test_sum_of_updates_has_the_effect_of_applying_them_in_order():
    combined = sum([U1, U2, U3])
    assert isinstance(combined, GameStateUpdate)
    assert STATE + combined == ((STATE + U1) + U2) + U3
    assert (STATE + combined).players == {2: {"x": 6}, 3: {"x": 3}}


def test_combined_update_has_the_newest_time_order():
    assert (U1 + U2).time_order == 12
    assert (U2 + U1).time_order == 12
    assert sum([U1, U2, U3]).time_order == 13


def test_combining_updates_never_mutates_them():
    before = [copy.deepcopy(u.__dict__) for u in (U1, U2, U3)]
    U1 + U2
    U3 + U1
    sum([U1, U2, U3])
    assert [u.__dict__ for u in (U1, U2, U3)] == before


def test_combined_update_does_not_share_dicts_with_its_operands():
    older = GameStateUpdate(1, players={1: {"x": 1}})
    combined = older + GameStateUpdate(2, hp=3)
    combined.players[1]["x"] = 99
    assert older.players == {1: {"x": 1}}


def test_on_equal_time_orders_the_right_operand_counts_as_later():
    first = GameStateUpdate(3, hp=1)
    second = GameStateUpdate(3, hp=2)
    assert (first + second).hp == 2
    assert (second + first).hp == 1


def test_combined_delete_then_dict_replaces_the_whole_dict():
    state = GameState(player={"x": 1, "y": 2})
    delete = GameStateUpdate(1, player=TO_DELETE)
    recreate = GameStateUpdate(2, player={"z": 3})
    assert (state + (delete + recreate)).player == {"z": 3}
    assert (state + (recreate + delete)).player == {"z": 3}


def test_combined_scalar_then_dict_replaces_the_whole_dict():
    state = GameState(player={"x": 1, "y": 2})
    combined = GameStateUpdate(1, player=0) + GameStateUpdate(2, player={"z": 3})
    assert (state + combined).player == {"z": 3}


def test_combined_dict_then_scalar_gives_the_scalar():
    state = GameState(player={"x": 1})
    combined = GameStateUpdate(1, player={"y": 2}) + GameStateUpdate(2, player=7)
    assert (state + combined).player == 7


def test_combined_nested_delete_then_dict_replaces_only_that_entry():
    state = GameState(players={1: {"x": 1, "y": 2}, 2: {"x": 5}})
    combined = GameStateUpdate(1, players={1: TO_DELETE}) + GameStateUpdate(2, players={1: {"x": 9}})
    assert (state + combined).players == {1: {"x": 9}, 2: {"x": 5}}


def test_combined_update_survives_serialization_with_the_same_effect():
    state = GameState(player={"x": 1, "y": 2}, other={"a": 1})
    combined = sum(
        [
            GameStateUpdate(1, player=TO_DELETE, other={"b": 2}),
            GameStateUpdate(2, player={"z": 3}),
            GameStateUpdate(3, player={"w": 4}),
        ]
    )
    received = GameStateUpdate.from_bytes(combined.to_bytes())
    assert state + received == state + combined
    assert (state + received).player == {"z": 3, "w": 4}
    assert (state + received).other == {"a": 1, "b": 2}


# Property: combining updates is the same as applying them one after the other

_KEYS = st.sampled_from(["a", "b", 1, 2])
_ATTRIBUTES = st.sampled_from(["a", "b", "c"])
_LEAVES = st.one_of(
    st.sampled_from([0, 1, -2, "", "x", True, None]),
    st.sampled_from([(), (0,), (1, 2)]).map(list),
)


def _nested(leaves, depth):
    """Leaves, or dicts of such values nested up to `depth` levels (cheaper to draw than st.recursive)."""
    values = leaves
    for _ in range(depth):
        values = st.one_of(leaves, st.dictionaries(_KEYS, values, max_size=3))
    return values


_STATE_VALUES = _nested(_LEAVES, 3)
_UPDATE_VALUES = _nested(st.one_of(_LEAVES, st.just(TO_DELETE)), 3)


@st.composite
def _state_and_updates(draw):
    start = draw(st.integers(0, 65535))
    state = GameState(time_order=start, **draw(st.dictionaries(_ATTRIBUTES, _STATE_VALUES, max_size=3)))
    updates = []
    time_order = Sqn(start)
    for _ in range(draw(st.integers(1, 4))):
        time_order = time_order + draw(st.integers(1, 50))
        changes = draw(st.dictionaries(_ATTRIBUTES, _UPDATE_VALUES, max_size=3))
        updates.append(GameStateUpdate(time_order, **changes))
    return state, updates


def _combinations(updates):
    return {
        "sum": sum(updates),
        "older + newer from the left": functools.reduce(lambda acc, u: acc + u, updates),
        "newer + older from the left": functools.reduce(lambda acc, u: u + acc, updates),
        "older + newer from the right": functools.reduce(lambda acc, u: u + acc, reversed(updates)),
        "newer + older from the right": functools.reduce(lambda acc, u: acc + u, reversed(updates)),
    }


def _apply_in_order(state, updates):
    for update in updates:
        state = state + update
    return state


@settings(max_examples=150, deadline=None)
@given(_state_and_updates())
@example((GameState(a={"x": 1}), [GameStateUpdate(1, a=TO_DELETE), GameStateUpdate(2, a={"y": 2})]))
@example((GameState(a={"x": 1}), [GameStateUpdate(1, a=5), GameStateUpdate(2, a={"y": TO_DELETE})]))
def test_combined_updates_have_the_effect_of_applying_them_in_time_order(state_and_updates):
    """Also after the combined update went over the wire, where "replace this dict" must survive."""
    state, updates = state_and_updates
    state_before = copy.deepcopy(state.__dict__)
    updates_before = [copy.deepcopy(update.__dict__) for update in updates]
    expected = _apply_in_order(state, updates)
    for name, combined in _combinations(updates).items():
        assert state + combined == expected, name
        received = GameStateUpdate.from_bytes(combined.to_bytes())
        assert state + received == expected, f"{name}, serialized"
    assert state.__dict__ == state_before
    assert [update.__dict__ for update in updates] == updates_before


# Serialization


def test_game_state_round_trip_keeps_attributes_and_sqn_time_order():
    state = GameState(
        time_order=65535,
        game_status=GameStatus.get("Active"),
        hp=100,
        name="ann",
        items=[1, "two", None],
        blob=b"\x01\x02",
    )
    copy_ = GameState.from_bytes(state.to_bytes())
    assert copy_ == state
    assert isinstance(copy_.time_order, Sqn)
    assert copy_.time_order == 65535
    assert not copy_.is_paused()


def test_game_state_round_trip_keeps_int_dict_keys():
    state = GameState(players={1: {"x": 1}, 2: {"x": 2}, -3: {"x": 3}})
    copy_ = GameState.from_bytes(state.to_bytes())
    assert copy_.players == {1: {"x": 1}, 2: {"x": 2}, -3: {"x": 3}}
    assert all(isinstance(key, int) for key in copy_.players)


def test_game_state_round_trip_keeps_full_float_precision():
    value = 0.1 + 0.2
    copy_ = GameState.from_bytes(GameState(x=value, tiny=1e-300, third=1 / 3).to_bytes())
    assert copy_.x == value
    assert copy_.tiny == 1e-300
    assert copy_.third == 1 / 3


def test_game_state_round_trip_keeps_the_default_status():
    copy_ = GameState.from_bytes(GameState().to_bytes())
    assert copy_.is_paused()
    assert copy_.time_order == 0


def test_update_round_trip_keeps_sqn_time_order_and_to_delete():
    update = GameStateUpdate(65535, players={3: {"x": 0.1 + 0.2}, 4: TO_DELETE}, hp=TO_DELETE)
    copy_ = GameStateUpdate.from_bytes(update.to_bytes())
    assert copy_ == update
    assert isinstance(copy_.time_order, Sqn)
    assert copy_.time_order == 65535
    assert list(copy_.players) == [3, 4]
    assert copy_.players[3]["x"] == 0.1 + 0.2
    new = GameState(hp=1, players={3: {"x": 0, "y": 1}, 4: {"x": 4}}) + copy_
    assert new.players == {3: {"x": 0.1 + 0.2, "y": 1}}
    assert not hasattr(new, "hp")


@pytest.mark.parametrize("cls", [GameState, GameStateUpdate])
@pytest.mark.parametrize("time_order", ["missing", None, "5", 1.5, True, -1, 65536, [1]])
def test_from_bytes_rejects_missing_or_invalid_time_order(cls, time_order):
    data = {"hp": 1}
    if time_order != "missing":
        data["time_order"] = time_order
    with pytest.raises(ValueError):
        cls.from_bytes(_codec.pack(data))


@pytest.mark.parametrize("game_status", ["Active", 1.0, True, None, [2]])
def test_game_state_from_bytes_rejects_a_non_int_game_status(game_status):
    with pytest.raises(ValueError):
        GameState.from_bytes(_codec.pack({"time_order": 1, "game_status": game_status}))


@pytest.mark.parametrize("cls", [GameState, GameStateUpdate])
@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\xc1",
        _codec.pack([1, 2]),
        _codec.pack({"_x": 1, "time_order": 1}),
        _codec.pack({1: 1, "time_order": 1}),
    ],
)
def test_from_bytes_rejects_garbage_with_value_error(cls, garbage):
    with pytest.raises(ValueError):
        cls.from_bytes(garbage)


@settings(max_examples=300, deadline=None)
@given(_state_and_updates())
@example((GameState(a={"x": 1}), [GameStateUpdate(1, a=TO_DELETE), GameStateUpdate(2, a={"x": 2})]))
@example((GameState(a={"x": 1}), [GameStateUpdate(1, a=5), GameStateUpdate(2, a={"x": 2})]))
@example((GameState(a={"x": 1, "y": 1}), [GameStateUpdate(1, a={"x": 3}), GameStateUpdate(2, a={"x": 2})]))
@example(
    (
        GameState(a={"x": 1, "y": 1}),
        [GameStateUpdate(1, a=5), GameStateUpdate(2, a={"x": 1}), GameStateUpdate(3, a={"x": 2})],
    )
)
def test_extending_a_delta_by_an_update_that_covers_it_has_the_effect_of_applying_both(state_and_updates):
    """The store extends what a client lacks update by update, and takes an update that overwrites all
    of it as the whole delta (to reuse its encoding): the effect must stay that of applying them all."""
    from pygase.gamestate import _extended

    state, updates = state_and_updates
    expected = _apply_in_order(state, updates)
    delta = functools.reduce(_extended, updates)
    assert state + delta == expected
    assert state + GameStateUpdate.from_bytes(delta.to_bytes()) == expected


def test_an_update_that_sets_every_field_again_is_the_whole_delta():
    from pygase.gamestate import _extended

    older = GameStateUpdate(1, players={1: {"x": 0.0, "y": 0.0}, 2: {"x": 1.0}})
    newer = GameStateUpdate(2, players={1: {"x": 0.5, "y": 0.5}, 2: {"x": 1.5}})
    assert _extended(older, newer) is newer
    sparse = GameStateUpdate(3, players={1: {"x": 0.7}})
    assert _extended(newer, sparse) is not sparse  # player 1's y and player 2 are still needed


@settings(max_examples=200, deadline=None)
@given(_state_and_updates())
@example((GameState(a={1: {"x": 1}}), [GameStateUpdate(1, a={1: {"x": 2}, 2: {"x": 3}})]))
@example((GameState(a={1: {"x": 1}}), [GameStateUpdate(1, a={1: {"x": TO_DELETE}, 2: 5})]))
def test_the_stores_read_only_state_follows_updates_as_a_plain_state_does(state_and_updates):
    """The store merges updates into its read-only state itself (`_readonly.Merge`): same effect as
    `state + update`, and every dict and list in it stays read-only."""
    from pygase import GameStateStore
    from pygase._readonly import ReadOnlyDict, ReadOnlyList

    state, updates = state_and_updates
    store = GameStateStore(state)
    plain = copy.deepcopy(store.get_game_state())
    for update in updates:
        store.push_update(update)
        plain = plain + update
        assert store.get_game_state() == plain

    def mutable_parts(value):
        if isinstance(value, dict):
            yield from ([] if type(value) is ReadOnlyDict else [value])
            for item in value.values():
                yield from mutable_parts(item)
        elif isinstance(value, list):
            yield from ([] if type(value) is ReadOnlyList else [value])
            for item in value:
                yield from mutable_parts(item)

    assert not [part for value in vars(store.get_game_state()).values() for part in mutable_parts(value)]
