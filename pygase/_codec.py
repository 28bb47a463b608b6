"""The one msgpack codec PyGaSe uses for everything it puts on the wire.

Values are None, bool, int, float, str, bytes and lists, tuples and dicts of those (dicts may have int
keys; tuples arrive as lists). `Replace` is a dict that travels as a msgpack extension type so a combined
state update can say "replace this dict" instead of "merge into this dict".
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

__all__ = ["Replace", "pack", "unpack", "unpack_trusted", "DecodeError", "MAX_DEPTH"]

_REPLACE_EXT = 1
#: Deepest nesting of lists and maps a decoded value may have.
MAX_DEPTH = 32


class DecodeError(ValueError):
    """Bytes that are not a valid PyGaSe msgpack value."""


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
    raise TypeError(
        f"{type(obj).__name__} cannot be sent: use None, bool, int, float, str, bytes, list, tuple or dict"
    )


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


def pack(value: Any, single_float: bool = False) -> bytes:
    """Serialize a value; `single_float` sends floats with 32-bit precision to save space."""
    packer = _packer(single_float)
    try:
        return packer.pack(value)
    except ValueError as error:  # msgpack's own limits, e.g. an int too large
        raise TypeError(f"value cannot be sent: {error}") from error


_CONTAINERS = (list, dict, Replace)
_KEYS = (str, int, bytes)


def _check(value: Any) -> None:
    """Reject values nested too deeply, odd map keys and msgpack's built-in Timestamp extension.

    Iterative (no recursion) and lean: it runs on every datagram a client or server receives.
    """
    if type(value) is msgpack.Timestamp:
        raise DecodeError("timestamps are not PyGaSe values")
    pending = [(value, 0)]
    while pending:
        container, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(f"value is nested deeper than {MAX_DEPTH} levels")
        if type(container) is list:
            items: Any = container
        else:
            for key in container:
                if type(key) not in _KEYS:
                    raise DecodeError(f"map keys must be str, int or bytes, not {type(key).__name__}")
            items = container.values()
        for item in items:
            kind = type(item)
            if kind in _CONTAINERS:
                pending.append((item, depth + 1))
            elif kind is msgpack.Timestamp:
                raise DecodeError("timestamps are not PyGaSe values")


def check(value: Any) -> None:
    """Check a value decoded some other way than `unpack` (raises `DecodeError`)."""
    if type(value) in _CONTAINERS or type(value) is msgpack.Timestamp:
        _check(value)


def unpack(data: bytes) -> Any:
    """Deserialize one value, raising `DecodeError` for anything that is not a valid value."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)
    except DecodeError:
        raise
    except Exception as error:  # msgpack raises a variety of exceptions for malformed input
        raise DecodeError(f"malformed msgpack data: {error}") from None
    if type(value) in _CONTAINERS or type(value) is msgpack.Timestamp:
        _check(value)
    return value


def unpack_trusted(data: bytes) -> Any:
    """Deserialize bytes this process packed itself, skipping the checks meant for network input."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)
