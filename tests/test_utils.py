"""Unit tests of `pygase.utils`: value objects, msgpack mixin, enums, sequence numbers, locks, addresses."""

from __future__ import annotations

import ipaddress
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygase import _codec
from pygase.utils import (
    Comparable,
    LockedResource,
    LockedRessource,
    NamedEnum,
    Sendable,
    Sqn,
    get_available_ip_addresses,
)


@pytest.fixture
def restore_sqn_bytesize():
    """Tests that change the process-wide Sqn bytesize must leave the default (2) behind."""
    yield
    Sqn.set_bytesize(2)


class Point(Comparable):
    def __init__(self, x, y):
        self.x = x
        self.y = y


class OtherPoint(Comparable):
    def __init__(self, x, y):
        self.x = x
        self.y = y


class Thing(Sendable, Comparable):
    def __init__(self, **attributes):
        self.__dict__.update(attributes)


# Comparable


def test_comparable_objects_with_equal_attributes_are_equal():
    assert Point(1, 2) == Point(1, 2)
    assert (Point(1, 2) != Point(1, 2)) is False


def test_comparable_objects_with_different_attributes_are_unequal():
    assert Point(1, 2) != Point(1, 3)
    assert (Point(1, 2) == Point(1, 3)) is False


def test_comparable_objects_of_different_types_are_unequal():
    assert Point(1, 2) != OtherPoint(1, 2)
    assert Point(1, 2) != {"x": 1, "y": 2}


def test_comparable_objects_are_not_hashable():
    with pytest.raises(TypeError):
        hash(Point(1, 2))


# Sendable


def test_sendable_round_trip_keeps_public_attributes():
    thing = Thing(
        name="ann",
        hp=100,
        ratio=0.1 + 0.2,
        alive=True,
        blob=b"\x00\xff",
        nothing=None,
        scores=[1, 2, 3],
        table={1: "one", "two": [2.5]},
    )
    copy = Thing.from_bytes(thing.to_bytes())
    assert copy == thing
    assert type(copy) is Thing
    assert copy.ratio == 0.1 + 0.2


def test_sendable_does_not_send_underscore_attributes():
    thing = Thing(name="ann", _secret="hidden")
    copy = Thing.from_bytes(thing.to_bytes())
    assert copy.__dict__ == {"name": "ann"}


def test_sendable_tuples_arrive_as_lists():
    copy = Thing.from_bytes(Thing(pair=(1, 2)).to_bytes())
    assert copy.pair == [1, 2]


def test_sendable_sqn_attribute_arrives_with_its_value():
    copy = Thing.from_bytes(Thing(sequence=Sqn(65535)).to_bytes())
    assert copy.sequence == 65535


def test_sendable_to_bytes_rejects_unsendable_values():
    with pytest.raises(TypeError):
        Thing(things={1, 2}).to_bytes()


@pytest.mark.parametrize("value", [[1, 2], "text", 42, None, b"bytes"])
def test_sendable_from_bytes_rejects_data_that_is_not_a_map(value):
    with pytest.raises(ValueError):
        Thing.from_bytes(_codec.pack(value))


@pytest.mark.parametrize("key", [1, "not an identifier", "1abc", "_private", "__class__", b"name"])
def test_sendable_from_bytes_rejects_invalid_attribute_names(key):
    with pytest.raises(ValueError):
        Thing.from_bytes(_codec.pack({key: 1}))


def test_sendable_from_bytes_rejects_malformed_msgpack():
    with pytest.raises(ValueError):
        Thing.from_bytes(b"\xc1")
    with pytest.raises(ValueError):
        Thing.from_bytes(_codec.pack({"name": "ann"})[:-1])


# NamedEnum


def test_named_enum_values_start_at_one_and_map_both_directions():
    class Colour(NamedEnum):
        pass

    Colour.register("red")
    Colour.register("green")
    assert Colour.get("red") == 1
    assert Colour.get("green") == 2
    assert Colour.get(1) == "red"
    assert Colour.get(2) == "green"


def test_named_enum_registering_a_label_again_keeps_its_value():
    class Colour(NamedEnum):
        pass

    Colour.register("red")
    Colour.register("green")
    Colour.register("red")
    assert Colour.get("red") == 1
    assert Colour.get("green") == 2
    with pytest.raises(ValueError):
        Colour.get(3)


@pytest.mark.parametrize("argument", [1.0, None, b"red", ["red"], True])
def test_named_enum_get_raises_type_error_for_other_types(argument):
    class Colour(NamedEnum):
        pass

    Colour.register("red")
    with pytest.raises(TypeError):
        Colour.get(argument)


def test_named_enum_get_raises_value_error_for_unknown_labels_and_values():
    class Colour(NamedEnum):
        pass

    Colour.register("red")
    with pytest.raises(ValueError):
        Colour.get("blue")
    for value in (0, -1, 2):
        with pytest.raises(ValueError):
            Colour.get(value)


def test_named_enum_register_rejects_non_string_labels():
    class Colour(NamedEnum):
        pass

    with pytest.raises(TypeError):
        Colour.register(1)


def test_named_enum_each_subclass_has_its_own_mapping():
    class Colour(NamedEnum):
        pass

    class Shape(NamedEnum):
        pass

    Colour.register("red")
    Shape.register("circle")
    Shape.register("square")
    assert Colour.get("red") == 1
    assert Shape.get("circle") == 1
    assert Shape.get(2) == "square"
    with pytest.raises(ValueError):
        Colour.get("circle")
    with pytest.raises(ValueError):
        Colour.get(2)
    with pytest.raises(ValueError):
        Shape.get("red")


# Sqn


def test_sqn_default_is_zero_and_max_is_65535():
    assert Sqn() == 0
    assert Sqn.get_max_sequence() == 65535


@pytest.mark.parametrize("value", [-1, 65536])
def test_sqn_rejects_values_outside_the_range(value):
    with pytest.raises(ValueError):
        Sqn(value)


def test_sqn_counts_forward_and_wraps_from_65535_to_1():
    assert Sqn(1) + 1 == 2
    assert isinstance(Sqn(1) + 1, Sqn)
    assert Sqn(65535) + 1 == 1
    assert Sqn(65534) + 3 == 2
    assert 1 + Sqn(65535) == 1


def test_sqn_zero_counts_forward_to_one():
    assert Sqn(0) + 1 == 1


def test_sqn_zero_is_before_everything():
    for value in (1, 2, 32768, 65535):
        assert Sqn(0) < Sqn(value)
        assert Sqn(value) > Sqn(0)
        assert not Sqn(0) > Sqn(value)
        assert not Sqn(value) < Sqn(0)


def test_sqn_ordering_is_wrap_aware():
    assert Sqn(1) > Sqn(65535)
    assert Sqn(65535) < Sqn(1)
    assert Sqn(10) > Sqn(65000)
    assert Sqn(2) > Sqn(1)
    assert not Sqn(1) > Sqn(2)
    assert Sqn(1) >= Sqn(65535)
    assert Sqn(65535) <= Sqn(1)


def test_sqn_ordering_within_half_the_range_is_plain():
    assert Sqn(32767) > Sqn(1)
    assert Sqn(1) < Sqn(32767)


def test_sqn_equal_numbers_are_neither_less_nor_greater():
    assert Sqn(7) == Sqn(7)
    assert Sqn(7) == 7
    assert not Sqn(7) < Sqn(7)
    assert not Sqn(7) > Sqn(7)
    assert Sqn(7) <= Sqn(7)
    assert Sqn(7) >= Sqn(7)
    assert hash(Sqn(7)) == hash(7)


@pytest.mark.parametrize("a, b", [(1, 2), (65535, 1), (100, 30000), (40000, 5000), (65000, 30)])
def test_sqn_ordering_is_antisymmetric(a, b):
    assert (Sqn(a) < Sqn(b)) != (Sqn(b) < Sqn(a))
    assert (Sqn(a) > Sqn(b)) == (Sqn(b) < Sqn(a))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 65535), st.integers(1, 32767))
def test_sqn_counting_forward_less_than_half_the_range_gives_a_greater_number(start, steps):
    earlier = Sqn(start)
    later = earlier + steps
    assert later > earlier
    assert earlier < later
    assert not later < earlier
    assert later - earlier == steps
    assert earlier - later == -steps


def test_sqn_difference_is_the_signed_wrap_aware_distance():
    assert Sqn(5) - Sqn(3) == 2
    assert Sqn(3) - Sqn(5) == -2
    assert Sqn(1) - Sqn(65535) == 1
    assert Sqn(65535) - Sqn(1) == -1
    assert Sqn(2) - Sqn(65530) == 7


def test_sqn_difference_from_zero_is_plain():
    assert Sqn(5) - Sqn(0) == 5
    assert Sqn(0) - Sqn(5) == -5


def test_sqn_bytes_round_trip_in_two_bytes():
    for value in (0, 1, 256, 65535):
        encoded = Sqn(value).to_sqn_bytes()
        assert len(encoded) == 2
        assert Sqn.from_sqn_bytes(encoded) == value
        assert isinstance(Sqn.from_sqn_bytes(encoded), Sqn)
    assert Sqn(258).to_sqn_bytes() == b"\x01\x02"


@pytest.mark.parametrize("encoded", [b"", b"\x01", b"\x00\x01\x02"])
def test_sqn_from_sqn_bytes_rejects_the_wrong_length(encoded):
    with pytest.raises(ValueError):
        Sqn.from_sqn_bytes(encoded)


def test_sqn_set_bytesize_changes_the_wrap(restore_sqn_bytesize):
    Sqn.set_bytesize(1)
    assert Sqn.get_max_sequence() == 255
    assert Sqn(255) + 1 == 1
    assert Sqn(1) > Sqn(255)
    assert Sqn(1) - Sqn(255) == 1
    assert Sqn(200).to_sqn_bytes() == b"\xc8"
    assert Sqn.from_sqn_bytes(b"\xc8") == 200
    with pytest.raises(ValueError):
        Sqn(256)


def test_sqn_set_bytesize_four_allows_long_sequences(restore_sqn_bytesize):
    Sqn.set_bytesize(4)
    assert Sqn.get_max_sequence() == 2**32 - 1
    assert Sqn(65535) + 1 == 65536
    assert len(Sqn(70000).to_sqn_bytes()) == 4


@pytest.mark.parametrize("bytesize", [0, 5, 1.5])
def test_sqn_set_bytesize_rejects_unsupported_sizes(bytesize, restore_sqn_bytesize):
    with pytest.raises(ValueError):
        Sqn.set_bytesize(bytesize)
    assert Sqn.get_max_sequence() == 65535


def test_sqn_repr_names_the_class():
    assert repr(Sqn(3)) == "Sqn(3)"


# LockedRessource


def test_locked_ressource_yields_the_ressource():
    ressource = {"foo": "bar"}
    locked = LockedRessource(ressource)
    with locked() as inside:
        assert inside is ressource
    assert locked.ressource is ressource


def test_locked_ressource_holds_the_lock_inside_and_releases_it_after():
    locked = LockedRessource([])
    assert not locked.lock.locked()
    with locked():
        assert locked.lock.locked()
        assert not locked.lock.acquire(blocking=False)
    assert not locked.lock.locked()


def test_locked_ressource_releases_the_lock_after_an_exception():
    locked = LockedRessource([])
    with pytest.raises(RuntimeError), locked():
        raise RuntimeError("boom")
    assert not locked.lock.locked()


def test_locked_ressource_blocks_another_thread_while_held():
    locked = LockedRessource([])
    acquired = []

    def other_thread():
        acquired.append(locked.lock.acquire(timeout=0.05))

    with locked():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert acquired == [False]


def test_locked_resource_is_an_alias_of_locked_ressource():
    assert LockedResource is LockedRessource


# get_available_ip_addresses


def test_get_available_ip_addresses_returns_ipv4_strings_including_loopback():
    addresses = get_available_ip_addresses()
    assert isinstance(addresses, list)
    assert "127.0.0.1" in addresses
    for address in addresses:
        assert isinstance(address, str)
        assert isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    assert len(addresses) == len(set(addresses))
