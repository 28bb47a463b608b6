"""Use helpful classes and functions.

Provides utilities used in PyGaSe code or helpful to users of this library.

Contents:
- `Comparable`: mixin that makes objects compare as equal if their type and attributes match
- `Sendable`: mixin that allows to serialize objects to small bytestrings
- `NamedEnum`: base class for lists of strings to be mapped to integer values
- `Sqn`: subclass of `int` for sequence numbers that always fit in 2 bytes
- `LockedRessource`: class that attaches a `threading.Lock` to a ressource (alias `LockedResource`)
- `get_available_ip_addresses`: function that returns a list of local network interfaces
- `accepted_keywords`: function that returns the keyword arguments a function can be called with
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import struct
import sys
import threading
from typing import Any, Callable, ClassVar, Iterator, Optional, TypeVar, Union

from pygase import _codec
from pygase._endpoints import plain_address
from pygase.errors import DecodeError, NotSendableBytesError

__all__ = [
    "Comparable",
    "Sendable",
    "NamedEnum",
    "Sqn",
    "LockedRessource",
    "LockedResource",
    "get_available_ip_addresses",
    "get_broadcast_addresses",
    "accepted_keywords",
]

_S = TypeVar("_S", bound="Sendable")


class Comparable:
    """Compare objects by equality of attributes.

    Two objects are equal when they are of the same type and their attributes are equal.
    """

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    __hash__ = None  # type: ignore[assignment]  # mutable value objects are not hashable


def _as_sent(value: Any) -> Any:
    """`value` the way it arrives: tuples become lists (at any depth); everything else stays as it is."""
    if isinstance(value, (tuple, list)):
        return [_as_sent(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_sent(item) for key, item in value.items()}
    return value


class Sendable(Comparable):
    """Send objects via UDP packages.

    This mixin for classes that are supposed to be sendable as part of a PyGaSe package makes
    objects serializable with the msgpack protocol.
    Sendables can only have attributes of type `str`, `bytes`, `Sqn`, `int`, `float`, `bool`,
    `None` as well as lists, tuples and dicts of such (tuples arrive as lists).
    Attribute names that start with an underscore are not sent.

    As in PyGaSe 0.3.1 a `Sendable` is `Comparable`: two objects of the same class are equal if they
    send the same data, so `type(x).from_bytes(x.to_bytes()) == x` (a tuple equals the list it arrives
    as, attributes that start with an underscore do not count).
    """

    def _sent_attributes(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Sendable)
        mine, theirs = self._sent_attributes(), other._sent_attributes()
        return bool(mine == theirs or _as_sent(mine) == _as_sent(theirs))

    def to_bytes(self) -> bytes:
        """Serialize the object to a compact bytestring."""
        return _codec.pack(self._sent_attributes())

    @classmethod
    def from_bytes(cls: type[_S], bytepack: bytes) -> _S:
        """Deserialize a bytestring into an instance of this class.

        Arguments:
            bytepack: the bytestring to be parsed to a subclass of `Sendable`

        Returns:
            a copy of an object that was serialized via `Sendable.to_bytes`

        Raises:
            pygase.errors.NotSendableBytesError: if the bytes are not a msgpack map of public attribute
                names to values (a `TypeError` as in PyGaSe 0.3.1, and a `ValueError`)
        """
        try:
            data = _codec.unpack(bytepack)
        except DecodeError as error:
            raise NotSendableBytesError(f"bytes could not be parsed into {cls.__name__}: {error}") from None
        if not isinstance(data, dict):
            raise NotSendableBytesError(f"{cls.__name__} data must be a map, got {type(data).__name__}")
        for key in data:
            if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
                raise NotSendableBytesError(f"{cls.__name__} data has an invalid attribute name: {key!r}")
        instance = cls.__new__(cls)
        instance.__dict__.update(data)
        return instance


class NamedEnum:
    """Map string labels to integer values.

    This is a base class meant to be subclassed to produce a dynamic enum mapping type.
    Each subclass has a mapping of its own; values start at 1.

    Example:
        class MyEnum(NamedEnum):
            '''Encode labels in integers.'''

        MyEnum.register("foo")
        MyEnum.register("bar")
        assert MyEnum.get("foo") == 1
        assert MyEnum.get("bar") == 2
        assert MyEnum.get(1) == "foo"
        assert MyEnum.get(2) == "bar"
    """

    _labels: ClassVar[list[str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._labels = []

    @classmethod
    def get(cls, name_or_value: Union[str, int]) -> Any:
        """Get the value for a label or vice versa.

        Arguments:
            name_or_value: label or value to de- or encode

        Returns:
            int value for given string label or vice versa

        Raises:
            TypeError: if argument is neither `int` nor `str`
            ValueError: if the label or value is not registered
        """
        if isinstance(name_or_value, bool) or not isinstance(name_or_value, (int, str)):
            raise TypeError(f"{cls.__name__}.get takes a str label or an int value")
        if isinstance(name_or_value, str):
            try:
                return cls._labels.index(name_or_value) + 1
            except ValueError:
                raise ValueError(f"{name_or_value!r} is not a label of {cls.__name__}") from None
        if 1 <= name_or_value <= len(cls._labels):
            return cls._labels[name_or_value - 1]
        raise ValueError(f"{name_or_value} is not a value of {cls.__name__}")

    @classmethod
    def register(cls, name: str) -> None:
        """Add a new label to the mapping.

        Arguments:
            name: string label to register as new enum value (registering it again has no effect)
        """
        if not isinstance(name, str):
            raise TypeError("NamedEnum labels are strings")
        if name not in cls._labels:
            cls._labels.append(name)


class Sqn(int):
    """Use finite periodic integers that fit in 2 bytes.

    Subclass of `int` that provides a residue-class-like behaviour of wrapping back to 1 after a maximum
    value. Use it to represent sequence numbers with a fixed number of bytes when you only need well-defined
    ordering within a specific finite scale. 0 represents the state before the sequence has started and
    is smaller than every other sequence number.

    For the default bytesize of 2 the maximum sequence number is 65535. Ordering is wrap-aware: a number
    is greater than another if it lies less than half the range ahead of it, so `Sqn(1) > Sqn(65535)`.
    `Sqn + int` counts forward and wraps; adding a negative number counts back without wrapping and, as
    in PyGaSe 0.3.1, raises `ValueError` if the result would be below 0. `Sqn - Sqn` (or `Sqn - int`)
    is the signed, wrap-aware distance between the two, an `int`: `Sqn(3) - 5 == -2`.
    """

    _bytesize: ClassVar[int] = 2
    _max_sequence: ClassVar[int] = 2**16 - 1

    def __new__(cls, value: int = 0) -> Sqn:
        value = int(value)
        if not 0 <= value <= cls._max_sequence:
            raise ValueError(f"sequence numbers lie between 0 and {cls._max_sequence}, got {value}")
        return super().__new__(cls, value)

    @classmethod
    def set_bytesize(cls, bytesize: int) -> None:
        """Redefine the bytesize and wrap-over behaviour for all `Sqn` instances.

        This is a process-wide setting meant for tests of long sessions; both sides of a connection must
        use the same bytesize.

        Arguments:
            bytesize: new size for the `bytes` representation of `Sqn` instances
        """
        if not isinstance(bytesize, int) or not 1 <= bytesize <= 4:
            raise ValueError("Sqn bytesize must be 1, 2, 3 or 4")
        cls._bytesize = bytesize
        cls._max_sequence = 2 ** (8 * bytesize) - 1

    @classmethod
    def get_max_sequence(cls) -> int:
        """Return the maximum sequence number after which `Sqn`s wrap back to 1."""
        return cls._max_sequence

    def to_sqn_bytes(self) -> bytes:
        """Return representation of the number in exactly the currently set bytesize.

        The default bytesize is 2.
        """
        return int(self).to_bytes(self._bytesize, "big")

    @classmethod
    def from_sqn_bytes(cls, bytestring: bytes) -> Sqn:
        """Return `Sqn` object that was encoded in given bytestring."""
        if len(bytestring) != cls._bytesize:
            raise ValueError(f"Sqn bytes must be {cls._bytesize} long, got {len(bytestring)}")
        return cls(int.from_bytes(bytestring, "big"))

    def _distance(self, other: int) -> int:
        """Signed number of steps from `other` forward to `self`, in (-half range, half range]."""
        period = self._max_sequence
        difference = (int(self) - int(other)) % period
        if difference > period // 2:
            difference -= period
        return difference

    def __add__(self, other: int) -> Sqn:
        steps = int(other)
        total = int(self) + steps
        if steps <= 0:  # counting back (or not at all) does not wrap
            if total < 0:
                raise ValueError(f"{self!r} + {steps} would be below 0: sequence numbers are not negative")
            return Sqn(total)
        return Sqn((total - 1) % self._max_sequence + 1)

    __radd__ = __add__

    def __sub__(self, other: int) -> int:
        if int(other) == 0 or int(self) == 0:
            return int(self) - int(other)
        return self._distance(other)

    def __rsub__(self, other: int) -> int:
        return Sqn(other).__sub__(self)

    def __lt__(self, other: int) -> bool:
        if int(self) == 0 or int(other) == 0:
            return int(self) < int(other)
        return self._distance(other) < 0

    def __gt__(self, other: int) -> bool:
        if int(self) == 0 or int(other) == 0:
            return int(self) > int(other)
        return self._distance(other) > 0

    def __le__(self, other: int) -> bool:
        return not self.__gt__(other)

    def __ge__(self, other: int) -> bool:
        return not self.__lt__(other)

    def __eq__(self, other: object) -> bool:
        return int.__eq__(self, other)

    def __hash__(self) -> int:
        return int.__hash__(self)

    def __repr__(self) -> str:
        return f"Sqn({int(self)})"


_T = TypeVar("_T")


class LockedRessource:
    """Access a ressource thread-safely.

    This class makes an object available via a context manager that essentially attaches a
    `threading.Lock` to it, that threads writing to this object should abide.

    Usage example:
        my_ressource = {"foo": "bar"}
        my_locked_ressource = LockedRessource(my_ressource)
        with my_locked_ressource() as ressource:
            ...  # do stuff without any other threads meddling with the ressource

    Arguments:
        ressource: object to be wrapped

    Attributes:
        lock (threading.Lock): lock that threads writing to `ressource` should abide
        ressource: the wrapped object
    """

    def __init__(self, ressource: Any) -> None:
        self.lock = threading.Lock()
        self.ressource = ressource

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Any]:
        with self.lock:
            yield self.ressource


LockedResource = LockedRessource


_SIOCGIFADDR = 0x8915
_SIOCGIFBRDADDR = 0x8919


def _interface_addresses(request: int) -> list[str]:
    """Ask the Linux kernel for one IPv4 address of each interface (address or broadcast address)."""
    import fcntl  # only on POSIX; callers catch ImportError

    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(probe.fileno(), request, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # interface without an IPv4 address
            address = socket.inet_ntoa(packed[20:24])
            if address not in addresses:
                addresses.append(address)
    return addresses


def get_available_ip_addresses() -> list:
    """Return a list of all locally available IPv4 addresses.

    Includes the loopback address 127.0.0.1. On Linux every interface with an IPv4 address is listed;
    elsewhere the addresses the host name resolves to.
    """
    addresses: list[str] = []
    if sys.platform.startswith("linux"):
        with contextlib.suppress(ImportError, OSError):
            addresses = _interface_addresses(_SIOCGIFADDR)
    if not addresses:
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
                address = str(info[4][0])
                if address not in addresses:
                    addresses.append(address)
    if "127.0.0.1" not in addresses:
        addresses.insert(0, "127.0.0.1")
    return addresses


def _address_text(address: Any) -> str:
    """An address (a (host, port, ...) tuple) as people write it: 1.2.3.4:80, [2001:db8::1]:80; an IPv4
    address a dual-stack socket reports mapped into IPv6 (::ffff:1.2.3.4) as IPv4."""
    host, port = plain_address(str(address[0]).strip("[]")), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listening_on(hostname: str, port: int) -> str:
    """Where a server bound to `hostname` and `port` listens, and where clients join it (for its log)."""
    if hostname in ("localhost", "127.0.0.1", "::1", "[::1]"):
        return f"{_address_text((hostname.strip('[]'), port))} (this machine only)"
    addresses = [a for a in get_available_ip_addresses() if not a.startswith("127.")]
    if hostname in ("", "0.0.0.0", "::", "[::]"):
        joins = (
            ", ".join(_address_text((a, port)) for a in addresses) or f"this machine's address, port {port}"
        )
        stack = "IPv4 and IPv6" if hostname in ("", "::", "[::]") else "IPv4"
        return f"all interfaces ({stack}), port {port}; join at {joins}"
    where = _address_text((hostname.strip("[]"), port))
    return f"{where} (LAN addresses of this machine: {', '.join(addresses) or 'none'})"


def get_broadcast_addresses() -> list:
    """Return the IPv4 broadcast addresses of this machine's non-loopback interfaces (Linux only).

    Returns an empty list where the platform offers no way to list them.
    """
    if not sys.platform.startswith("linux"):
        return []
    with contextlib.suppress(ImportError, OSError):
        return [a for a in _interface_addresses(_SIOCGIFBRDADDR) if a not in ("0.0.0.0",)]
    return []


def accepted_keywords(function: Callable[..., Any]) -> Optional[frozenset]:
    """Return the names `function` can be called with as keyword arguments, or None if it takes **kwargs.

    Use it to pass a callback only the keywords it declares, the way event handlers get just the event
    data they name and `pygase_pygame` calls its hooks. Reading a signature is slow: call it once per
    function and keep the result.

    Example:
        names = accepted_keywords(handler)
        handler(**(data if names is None else {k: v for k, v in data.items() if k in names}))

    Returns:
        a frozenset of parameter names (positional-only and *args are not among them), empty for a
        callable whose signature cannot be read (a builtin such as `max`); None if it takes **kwargs
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature, e.g. max: pass nothing extra
        return frozenset()
    names = set()
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            return None
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            names.add(parameter.name)
    return frozenset(names)
