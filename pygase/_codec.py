"""The one msgpack codec PyGaSe uses for everything it puts on the wire.

Values are None, bool, int, float, str, bytes and lists, tuples and dicts of those (dicts may have int
keys; tuples arrive as lists). `Replace` is a dict that travels as a msgpack extension type so a combined
state update can say "replace this dict" instead of "merge into this dict".
"""

from __future__ import annotations

import threading
from itertools import chain
from typing import Any, Optional

import msgpack

from pygase import errors

__all__ = [
    "Replace",
    "pack",
    "pack_checked",
    "pack_state",
    "check_sendable",
    "unpack",
    "unpack_trusted",
    "DecodeError",
    "MAX_DEPTH",
]

_REPLACE_EXT = 1
#: Deepest nesting of lists and maps a decoded value may have.
MAX_DEPTH = 32


DecodeError = errors.DecodeError  # bytes that are not a valid PyGaSe msgpack value


class Replace(dict):
    """A dict that replaces the value at its key when an update is applied, instead of merging into it."""

    def __repr__(self) -> str:
        return f"Replace({dict.__repr__(self)})"


def _default(obj: Any) -> Any:
    # strict_types=True sends every non-exact type here, so int and dict subclasses are handled explicitly.
    if isinstance(obj, Replace):
        # A fresh packer: the shared ones are in the middle of packing the value that holds this one.
        inner = msgpack.packb(dict(obj), use_bin_type=True, strict_types=True, default=_default)
        return msgpack.ExtType(_REPLACE_EXT, inner)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, (tuple, list)):
        return list(obj)
    if isinstance(obj, dict):
        return dict(obj)
    raise errors.UnsendableValueError(f"{type(obj).__name__} cannot be sent: {_VALUES_HELP}")


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError("a replace marker holds plain values only")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _REPLACE_EXT:
        # Plain values only inside: a nested extension would make the decoder recurse in C for every
        # level, and a datagram of nested markers could exhaust the stack.
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_no_ext, use_list=True)
        except DecodeError:
            raise
        except Exception as error:
            raise DecodeError(f"malformed replace marker: {error}") from None
        if not isinstance(value, dict):
            raise DecodeError("a replace marker must hold a map")
        return Replace(value)
    raise DecodeError(f"unknown msgpack extension type {code}")


# A Packer keeps a buffer while it packs and calls back into Python for our own types, where another
# thread may run: each thread has packers of its own.
_packers = threading.local()


def _packer(single_float: bool) -> msgpack.Packer:
    try:
        return _packers.single if single_float else _packers.double
    except AttributeError:
        _packers.double = msgpack.Packer(
            use_bin_type=True, strict_types=True, default=_default, autoreset=True
        )
        _packers.single = msgpack.Packer(
            use_bin_type=True, strict_types=True, default=_default, autoreset=True, use_single_float=True
        )
        return _packers.single if single_float else _packers.double


def _state_packer(single_float: bool) -> msgpack.Packer:
    try:
        return _packers.state_single if single_float else _packers.state_double
    except AttributeError:
        # Not strict: dict and list subclasses (the store's read-only containers) pack as they are.
        _packers.state_double = msgpack.Packer(use_bin_type=True, default=_default, autoreset=True)
        _packers.state_single = msgpack.Packer(
            use_bin_type=True, default=_default, autoreset=True, use_single_float=True
        )
        return _packers.state_single if single_float else _packers.state_double


def pack_state(attributes: dict, single_float: bool = False) -> bytes:
    """Serialize a whole game state held by a store: checked values, no `Replace` in it (so any dict,
    list or tuple packs as a plain map or array, without copying)."""
    return _state_packer(single_float).pack(attributes)


def pack(value: Any, single_float: bool = False) -> bytes:
    """Serialize a value; `single_float` sends floats with 32-bit precision to save space."""
    packer = _packer(single_float)
    try:
        return packer.pack(value)
    except (ValueError, OverflowError) as error:  # msgpack's own limits, e.g. an int too large
        raise errors.UnsendableValueError(f"value cannot be sent: {error}") from error


_CONTAINERS = (list, dict, Replace)
_KEYS = (str, int, bytes)
PLAIN_KEYS = frozenset(_KEYS)
_LEAVES = frozenset((type(None), bool, int, float, str, bytes))
_VALUES_HELP = "use None, bool, int, float, str, bytes, list, tuple or dict"


def pack_checked(value: Any, single_float: bool = False, depth: int = 0, where: str = "") -> bytes:
    """Serialize a value that comes from user code, checking it arrives on the other side as it is.

    msgpack itself packs some values that the receiver refuses (a tuple or float as a map key, nesting
    deeper than `MAX_DEPTH`): those would stop a game's syncing far from the mistake. `depth` is how deep
    `value` will sit in what is decoded (an event's data sits inside its package).

    Raises:
        UnsendableValueError: (a `TypeError`) naming the path of the first bad value, e.g.
            ``grid[(1, 2)]: map keys must be ...``; the message starts with `where`
    """
    try:
        packed = pack(value, single_float)
    except TypeError:
        packed = None
    if packed is None or not _arrives_intact(value, depth):
        raise errors.UnsendableValueError(
            where + (describe_problem(value, depth) or "the value cannot be sent")
        )
    return packed


def check_sendable(value: Any, depth: int = 0, where: str = "") -> None:
    """Raise `UnsendableValueError` (a `TypeError`) as `pack_checked` does if `value` cannot arrive."""
    pack_checked(value, depth=depth, where=where)


def keys_arrive(mapping: Any) -> bool:
    """Whether the receivers accept every key of `mapping` (str, int or bytes; not bool)."""
    return PLAIN_KEYS.issuperset(map(type, mapping)) or all(
        isinstance(key, _KEYS) and not isinstance(key, bool) for key in mapping
    )


def _arrives_intact(value: Any, depth: int) -> bool:
    """Fast check of what `pack` lets through and `unpack` refuses: map keys and nesting depth.

    The value is known to pack, so every type in it is one the codec knows. Keys and values are tested
    at C speed (`issuperset(map(type, ...))`): this runs on every update a game pushes.
    """
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        if not keys_arrive(value):
            return False
        items: Any = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return True
    if _LEAVES.issuperset(map(type, items)):
        return True
    inner = depth + 1
    for item in items:
        if type(item) is dict and inner <= MAX_DEPTH:
            # a leaf dict (one entity's fields) is checked here, without a call
            if PLAIN_KEYS.issuperset(map(type, item)) and _LEAVES.issuperset(map(type, item.values())):
                continue
        elif not isinstance(item, (dict, list, tuple)):
            continue
        if not _arrives_intact(item, inner):
            return False
    return True


def describe_problem(value: Any, depth: int = 0, root: str = "") -> Optional[str]:
    """Say where in `value` the first thing that cannot be sent intact is, and why (None if nothing).

    The path starts with `root`, or else at the keys of `value` when it is a dict of names (attributes,
    keyword arguments), so ``{"grid": {(1, 2): 3}}`` gives
    ``grid[(1, 2)]: map keys must be str, int or bytes, not tuple``.
    """
    found = _problem(value, depth)
    if found is None:
        return None
    path, reason = found
    if not root and isinstance(value, dict) and path and isinstance(path[0], str) and path[0].isidentifier():
        root, path = path[0], path[1:]
    text = root + "".join(f"[{key!r}]" for key in path)
    return f"{text or 'the value'}: {reason}"


def _problem(value: Any, depth: int) -> Any:
    """(path, reason) of the first value in `value` that does not arrive intact, or None. Slow: only
    called once a value was found wanting."""
    if value is None or isinstance(value, (bool, float, str, bytes, bytearray, memoryview)):
        return None
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return None
        return [], "ints must fit in 64 bits"
    if isinstance(value, (dict, list, tuple)):
        if depth > MAX_DEPTH:
            return [], f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, bool) or not isinstance(key, _KEYS):
                    reason = f"map keys must be str, int or bytes, not {type(key).__name__}"
                    if isinstance(key, tuple):
                        reason += " (use a str such as '1,2' or nested dicts)"
                    return [key], reason
                found = _problem(key, depth + 1) or _problem(item, depth + 1)
                if found is not None:
                    return [key, *found[0]], found[1]
            return None
        for index, item in enumerate(value):
            found = _problem(item, depth + 1)
            if found is not None:
                return [index, *found[0]], found[1]
        return None
    return [], f"{type(value).__name__} cannot be sent: {_VALUES_HELP}"


def _check(value: Any) -> bool:
    """Reject values nested too deeply, odd map keys and msgpack's built-in Timestamp extension; return
    whether the value holds a list at any depth (or is one).

    Iterative (no recursion) and lean: it runs on every datagram a client or server receives. A container
    of leaves, and a map of maps of leaves (the entities of a state update), is checked at C speed in a
    few calls instead of a loop over its items.
    """
    if type(value) is msgpack.Timestamp:
        raise DecodeError("timestamps are not PyGaSe values")
    holds_list = False
    pending = [(value, 0)]
    while pending:
        container, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(f"value is nested deeper than {MAX_DEPTH} levels")
        if type(container) is list:
            holds_list = True
            items: Any = container
        else:
            if not PLAIN_KEYS.issuperset(map(type, container)):
                _refuse_keys(container)
            items = container.values()
        kinds = set(map(type, items))
        if _LEAVES.issuperset(kinds):
            continue
        if kinds == _ONLY_DICT and depth < MAX_DEPTH and _maps_of_leaves(items):
            continue
        for item in items:
            kind = type(item)
            if kind in _CONTAINERS:
                pending.append((item, depth + 1))
            elif kind is msgpack.Timestamp:
                raise DecodeError("timestamps are not PyGaSe values")
    return holds_list


_ONLY_DICT = {dict}


def _maps_of_leaves(maps: Any) -> bool:
    """Whether maps (plain dicts) have plain keys and leaves only: the entities of a state update."""
    return PLAIN_KEYS.issuperset(map(type, chain.from_iterable(maps))) and _LEAVES.issuperset(
        map(type, chain.from_iterable(map(dict.values, maps)))
    )


def _refuse_keys(mapping: dict) -> None:
    for key in mapping:
        if type(key) not in _KEYS:
            raise DecodeError(f"map keys must be str, int or bytes, not {type(key).__name__}")


def check(value: Any) -> None:
    """Check a value decoded some other way than `unpack` (raises `DecodeError`)."""
    if type(value) in _CONTAINERS or type(value) is msgpack.Timestamp:
        _check(value)


def unpack(data: bytes) -> Any:
    """Deserialize one value, raising `DecodeError` for anything that is not a valid value."""
    return unpack_noting_lists(data)[0]


def unpack_noting_lists(data: bytes) -> tuple[Any, bool]:
    """`unpack`, and whether the value holds a list at any depth (its checks walk it anyway). Merging a
    value without lists into a state copies every container it adds, so one decoded state update can serve
    several states (see `pygase.connection._RecentUpdates`)."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)
    except DecodeError:
        raise
    except Exception as error:  # msgpack raises a variety of exceptions for malformed input
        raise DecodeError(f"malformed msgpack data: {error}") from None
    if type(value) in _CONTAINERS or type(value) is msgpack.Timestamp:
        return value, _check(value)
    return value, False


def unpack_trusted(data: bytes) -> Any:
    """Deserialize bytes this process packed itself, skipping the checks meant for network input."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)


def merged_maps(first: bytes, second: bytes) -> bytes:
    """One msgpack map with the entries of two packed maps (whose keys differ), without decoding them."""
    count_a, body_a = _map_parts(first)
    count_b, body_b = _map_parts(second)
    count = count_a + count_b
    if count < 16:
        head = bytes([0x80 | count])
    elif count < 2**16:
        head = b"\xde" + count.to_bytes(2, "big")
    else:
        head = b"\xdf" + count.to_bytes(4, "big")
    return head + body_a + body_b


def _map_parts(packed: bytes) -> tuple[int, bytes]:
    """(number of entries, the entries' bytes) of a packed msgpack map."""
    first = packed[0]
    if 0x80 <= first <= 0x8F:
        return first & 0x0F, packed[1:]
    if first == 0xDE:
        return int.from_bytes(packed[1:3], "big"), packed[3:]
    if first == 0xDF:
        return int.from_bytes(packed[1:5], "big"), packed[5:]
    raise ValueError("not a packed map")
