"""The PyGaSe wire format: headers and packages, bytes in and bytes out, nothing else.

A datagram is a 12-byte header (4-byte protocol id, 2-byte sequence, 2-byte ack, 32-bit ack bitfield)
followed by a msgpack array:

- `Package`:       [ack_delay, events, event_floor]
- `ClientPackage`: [ack_delay, events, event_floor, time_order]
- `ServerPackage`: [ack_delay, events, event_floor, game_state_update or nil, full_state, session]

`ack_delay` is how long, in units of 100 microseconds, the sender held the newest package it acknowledges
before sending this one, so the other side can measure the round trip time exactly. Each event is
[type, args, kwargs, id]. Ids count up from 1 per sender and let the receiver handle each event once and
in order; `event_floor` is the lowest id the sender may still send (everything below it was delivered or
given up), so the receiver knows when to stop waiting for a gap. Id 0 marks an entry outside that order
(parts of a large game state). `session` identifies the server's side of the connection: a client that
sees it change knows the server restarted and starts afresh.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Optional

import msgpack

from pygase import _codec
from pygase._header import PROTOCOL_ID, Header, _header_bytes, _usual_header
from pygase.errors import DecodeError, DuplicateSequenceError, ProtocolIDMismatchError
from pygase.event import Event
from pygase.gamestate import GameStateUpdate
from pygase.utils import Sqn

__all__ = [
    "PROTOCOL_ID",
    "ProtocolIDMismatchError",
    "DuplicateSequenceError",
    "Header",
    "Package",
    "ClientPackage",
    "ServerPackage",
]


#: The encoded events of a package without any (an empty msgpack array).
_NO_EVENTS = b"\x90"


def _body_start(fields: int, ack_delay: int, events: bytes, event_floor: int) -> bytes:
    """The fields every package body starts with: the field count, ack delay, encoded events, event floor.

    A subclass's own fields follow (`_tail_bytes`, `_server_tail`).
    """
    return _ARRAYS[fields] + _uint(ack_delay) + events + _uint(event_floor)


def _server_tail(update: bytes, full_state: bool, session: int) -> bytes:
    """A server package's own fields: the encoded update (b"\\xc0" for none), full state flag, session."""
    return update + (b"\xc3" if full_state else b"\xc2") + _uint(session)


_ARRAYS = [bytes((0x90 | size,)) for size in range(16)]  # msgpack's fixarray headers
_FIXINTS = [bytes((value,)) for value in range(0x80)]
_UINT8 = struct.Struct("!BB")
_UINT16 = struct.Struct("!BH")
_UINT32 = struct.Struct("!BI")


def _uint(value: int) -> bytes:
    """An int as msgpack encodes it (the bytes `_codec.pack` gives); a non-negative one without the
    packer: the fields of every package go this way."""
    if 0 <= value < 0x80:
        return _FIXINTS[value]
    if value < 0:
        return _codec.pack(value)
    if value < 0x100:
        return _UINT8.pack(0xCC, value)
    if value < 0x10000:
        return _UINT16.pack(0xCD, value)
    if value < 0x100000000:
        return _UINT32.pack(0xCE, value)
    return _codec.pack(value)


def _events_from_wire(data: Any) -> list:
    if not isinstance(data, list):
        raise DecodeError("package events must be a list")
    entries = []
    for item in data:
        if not isinstance(item, list) or len(item) != 4:
            raise DecodeError("a package event is [type, args, kwargs, id]")
        event_id = item[3]
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id < 0:
            raise DecodeError("an event id is a non-negative int")
        entries.append((Event._from_wire(item[:3]), event_id))
    return entries


def _unpack_frame(payload: bytes) -> Any:
    """Decode a package body in C, without walking the data of its events (see `check_event_data`)."""
    try:
        return msgpack.unpackb(
            payload, raw=False, strict_map_key=False, ext_hook=_codec._ext_hook, use_list=True
        )
    except DecodeError:
        raise
    except Exception as error:  # msgpack raises a variety of exceptions for malformed input
        raise DecodeError(f"malformed msgpack data: {error}") from None


def _unchecked_events(data: Any) -> list:
    """The (event, id) entries of a package decoded by `_unpack_frame`: each event's type and id checked,
    its args and kwargs only for being a list and a map."""
    if type(data) is not list:
        raise DecodeError("package events must be a list")
    entries = []
    for item in data:
        if type(item) is not list or len(item) != 4:
            raise DecodeError("a package event is [type, args, kwargs, id]")
        event_type, args, kwargs, event_id = item
        if type(event_type) is not str or type(args) is not list or not isinstance(kwargs, dict):
            raise DecodeError("an event is a str type, a list of args and a map of kwargs")
        if type(event_id) is not int or event_id < 0:
            raise DecodeError("an event id is a non-negative int")
        event = Event.__new__(Event)
        event.type, event.handler_args, event.handler_kwargs = event_type, args, kwargs
        entries.append((event, event_id))
    return entries


def check_event_data(event: Event) -> None:
    """Check the args and kwargs of an event from `ClientPackage._from_datagram_unchecked` as
    `ClientPackage.from_datagram` would have (nested no deeper, map keys of the allowed types).

    Raises:
        DecodeError: if they are not
    """
    _codec.check([[[event.handler_args, event.handler_kwargs]]])  # where they sit in a package's body
    if not all(type(key) is str and key.isidentifier() for key in event.handler_kwargs):
        raise DecodeError("event kwargs must have identifier keys")


class Package:
    """Create a UDP package implementing the PyGaSe protocol.

    Arguments:
        header: package header
        events: list of events to attach to this package

    Attributes:
        header (Header): package header

    PyGaSe servers and clients use the subclasses `ServerPackage` and `ClientPackage` respectively.
    The Package class would also work on its own (it's not an 'abstract' class), in which case you would
    have all features of PyGaSe except for a synchronized game state.

    As in PyGaSe 0.3.1 packages compare equal if they are of the same class and carry the same header,
    events and data, so `Package.from_datagram(package.to_datagram()) == package`.
    """

    _max_size = 2048
    _body_fields = 3

    def _compared(self) -> tuple:
        """What the package carries, for comparisons (subclasses add their fields)."""
        return (self.header, self._entries, self.ack_delay, self.event_floor)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Package)
        return self._compared() == other._compared()

    __hash__ = None  # type: ignore[assignment]  # mutable value objects are not hashable

    def __init__(self, header: Header, events: Optional[list] = None) -> None:
        self.header = header
        self._entries: list[tuple[Event, int]] = [(event, 0) for event in (events or [])]
        self.ack_delay = 0
        self.event_floor = 0
        self._datagram: Optional[bytes] = None
        self._serialized = False  # to_datagram was called: add_event checks the size from then on

    @property
    def events(self) -> list:
        """Get a list of the events in the package."""
        return [event for event, _ in self._entries]

    def add_event(self, event: Event) -> None:
        """Add a PyGaSe event to the package.

        Arguments:
            event: the event to be attached to this package

        Raises:
            OverflowError: if the package has previously been converted to a datagram and its size with
                the added event would exceed `Package._max_size` (2048 bytes)
        """
        self._entries.append((event, 0))
        self._datagram = None
        if self._serialized:
            try:
                self.to_datagram()
            except OverflowError:
                self._entries.pop()
                raise OverflowError(
                    f"the package would exceed {self._max_size} bytes with this event"
                ) from None

    def _add_entry(self, event: Event, event_id: int) -> None:
        self._entries.append((event, event_id))
        self._datagram = None

    def get_bytesize(self) -> int:
        """Return the size in bytes the package has as a datagram."""
        return len(self.to_datagram())

    def _events_bytes(self) -> bytes:
        return _codec.pack([[*event._to_wire(), event_id] for event, event_id in self._entries])

    def _tail_bytes(self) -> bytes:
        """The msgpack fields that follow the events; subclasses add theirs."""
        return b""

    def to_datagram(self) -> bytes:
        """Return package compactly serialized to bytes.

        Raises:
            OverflowError: if the resulting datagram would exceed `Package._max_size`
        """
        body = _body_start(self._body_fields, self.ack_delay, self._events_bytes(), self.event_floor)
        head = _header_bytes(int(self.header.sequence), int(self.header.ack), self.header._bits)
        datagram = head + body + self._tail_bytes()
        self._serialized = True
        if len(datagram) > self._max_size:
            raise OverflowError(f"the package has {len(datagram)} bytes, more than {self._max_size}")
        self._datagram = datagram
        return datagram

    @classmethod
    def _parse(cls, datagram: bytes, unpack: Callable[[bytes], Any] = _codec.unpack) -> tuple[Header, list]:
        """Split a datagram into its header and body fields, checking the common ones."""
        if len(datagram) > cls._max_size:
            raise DecodeError(f"a PyGaSe datagram has at most {cls._max_size} bytes")
        header, payload = Header.deconstruct_datagram(datagram)
        body = unpack(payload)
        if not isinstance(body, list) or len(body) != cls._body_fields:
            raise DecodeError(f"a {cls.__name__} body is a list of {cls._body_fields} fields")
        for name, value in (("ack_delay", body[0]), ("event_floor", body[2])):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise DecodeError(f"{name} must be a non-negative int")
        return header, body

    def _fill(self, body: list) -> None:
        self.ack_delay = body[0]
        self._entries = _events_from_wire(body[1])
        self.event_floor = body[2]

    @classmethod
    def from_datagram(cls, datagram: bytes) -> Package:
        """Deserialize datagram to Package.

        Arguments:
            datagram: bytestring to deserialize, typically received via network

        Returns:
            the deserialized package

        Raises:
            ProtocolIDMismatchError: if the first four bytes don't match the PyGaSe protocol ID
            ValueError: if the rest of the datagram is not a valid package of this class
        """
        header, body = cls._parse(datagram)
        package = cls.__new__(cls)
        package.header = header
        package._datagram = None
        package._serialized = False
        package._fill(body)
        return package


class ClientPackage(Package):
    """Subclass of `Package` for packages sent by PyGaSe clients.

    Arguments:
        header: package header
        time_order: the client's last known time order of the game state
        events: list of events to attach to this package

    Attributes:
        time_order (Sqn): see corresponding constructor argument
    """

    _body_fields = 4

    def __init__(self, header: Header, time_order: int, events: Optional[list] = None) -> None:
        super().__init__(header, events)
        self.time_order = Sqn(time_order)

    def _tail_bytes(self) -> bytes:
        return _codec.pack(int(self.time_order))

    def _compared(self) -> tuple:
        return (*super()._compared(), self.time_order)

    def to_datagram(self) -> bytes:
        """Override `Package.to_datagram` to include time_order."""
        return super().to_datagram()

    def _fill(self, body: list) -> None:
        super()._fill(body)
        time_order = body[3]
        if not isinstance(time_order, int) or isinstance(time_order, bool):
            raise DecodeError("a client package's time_order must be an int")
        try:
            self.time_order = Sqn(time_order)
        except ValueError as error:
            raise DecodeError(f"invalid time_order: {error}") from None

    @classmethod
    def from_datagram(cls, datagram: bytes) -> ClientPackage:
        """Override `Package.from_datagram` to include time_order."""
        package = super().from_datagram(datagram)
        assert isinstance(package, ClientPackage)
        return package

    @classmethod
    def _from_datagram_unchecked(cls, datagram: bytes) -> ClientPackage:
        """Like `from_datagram`, but leave the data of the events unchecked: `check_event_data` checks an
        event's args and kwargs once the server decided to handle it.

        The body is decoded in C; walking the values in it is what costs (a list of 1,900 maps costs
        about a hundred times what a plain package does), so events beyond a client's rate limit and
        control events of unknown types cost no more than their bytes.

        Raises:
            DecodeError: if the datagram is not a client package of well-formed events
        """
        header, body = cls._parse(datagram, _unpack_frame)
        package = cls.__new__(cls)
        package.header = header
        package._datagram = None
        package._serialized = False
        package._fill([body[0], [], body[2], body[3]])
        package._entries = _unchecked_events(body[1])
        return package


class ServerPackage(Package):
    """Subclass of `Package` for packages sent by PyGaSe servers.

    Arguments:
        header: package header
        game_state_update: the server's most recent minimal update for the client (or None)
        events: list of events to attach to this package
        full_state: True if the update holds the whole game state, which replaces the client's copy

    Attributes:
        game_state_update (GameStateUpdate): see corresponding constructor argument
        full_state (bool): see corresponding constructor argument
    """

    _body_fields = 6

    def __init__(
        self,
        header: Header,
        game_state_update: Optional[GameStateUpdate],
        events: Optional[list] = None,
        full_state: bool = False,
    ) -> None:
        super().__init__(header, events)
        self.game_state_update = game_state_update
        self.full_state = full_state
        self.session = 0
        self._update_bytes: Optional[bytes] = None

    def _compared(self) -> tuple:
        update = self.game_state_update
        if update is None and self._update_bytes is not None:  # left encoded: compare what it holds
            try:
                update = GameStateUpdate._from_dict(_codec.unpack(self._update_bytes))
            except ValueError:
                return (*super()._compared(), self._update_bytes, self.full_state, self.session)
        return (*super()._compared(), update, self.full_state, self.session)

    def _tail_bytes(self) -> bytes:
        update = self._update_bytes
        if update is None:
            update = b"\xc0" if self.game_state_update is None else self.game_state_update.to_bytes()
        return _server_tail(update, self.full_state, self.session)

    def to_datagram(self) -> bytes:
        """Override `Package.to_datagram` to include game_state_update."""
        return super().to_datagram()

    def _fill(self, body: list) -> None:
        super()._fill(body)
        update, full_state, session = body[3], body[4], body[5]
        if not isinstance(full_state, bool):
            raise DecodeError("a server package's full_state flag must be a bool")
        if not isinstance(session, int) or isinstance(session, bool) or not 0 <= session < 2**32:
            raise DecodeError("a server package's session must be a 32-bit unsigned int")
        self.session = session
        self.game_state_update = None if update is None else GameStateUpdate._from_dict(update)
        self.full_state = full_state
        self._update_bytes = None

    @classmethod
    def _from_datagram_deferred(cls, datagram: bytes) -> ServerPackage:
        """Like `from_datagram`, but leave the game state update encoded, in `_update_bytes`.

        A client that receives updates faster than anyone looks at its state decodes only the newest.

        Raises:
            ProtocolIDMismatchError: if the first four bytes don't match the PyGaSe protocol ID
            ValueError: if the rest of the datagram is not a valid server package (the update itself is
                checked when it is decoded)
        """
        if len(datagram) > cls._max_size:
            raise DecodeError(f"a PyGaSe datagram has at most {cls._max_size} bytes")
        # (every datagram a client receives comes this way: it is written for speed)
        header, payload = Header.deconstruct_datagram(datagram)
        unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=False,
            ext_hook=_codec._ext_hook,
            use_list=True,
            max_buffer_size=2 * cls._max_size,
        )
        unpacker.feed(payload)
        try:
            if unpacker.read_array_header() != cls._body_fields:
                raise DecodeError(f"a {cls.__name__} body is a list of {cls._body_fields} fields")
            ack_delay, events, floor = unpacker.unpack(), unpacker.unpack(), unpacker.unpack()
            start = unpacker.tell()
            unpacker.skip()
            end = unpacker.tell()
            full_state, session = unpacker.unpack(), unpacker.unpack()
            if unpacker.tell() != len(payload):
                raise DecodeError("a server package has bytes after its body")
        except DecodeError:
            raise
        except Exception as error:  # msgpack's ValueError, OutOfData, StackError ...
            raise DecodeError(f"malformed server package: {error}") from None
        # (msgpack gives exact ints, and bools for true and false: `type(...) is int` leaves bools out)
        if type(ack_delay) is not int or not 0 <= ack_delay < 2**63:
            raise DecodeError("ack_delay must be a non-negative int")
        if type(floor) is not int or not 0 <= floor < 2**63:
            raise DecodeError("event_floor must be a non-negative int")
        if type(events) is list and events:
            _codec.check(events)
            entries = _events_from_wire(events)
        elif type(events) is list:
            entries = []  # (most packages carry no events)
        else:
            entries = _events_from_wire(events)  # (raises)
        if type(full_state) is not bool:
            raise DecodeError("a server package's full_state flag must be a bool")
        if type(session) is not int or not 0 <= session < 2**32:
            raise DecodeError("a server package's session must be a 32-bit unsigned int")
        package = cls.__new__(cls)
        package.header = header
        package._datagram = None
        package._serialized = False
        package.ack_delay = ack_delay
        package._entries = entries
        package.event_floor = floor
        package.session = session
        package.game_state_update = None
        package.full_state = full_state
        raw = payload[start:end]
        package._update_bytes = None if raw == b"\xc0" else bytes(raw)
        return package

    @classmethod
    def _from_datagram_usual(cls, datagram: bytes, session: int, tails: tuple) -> Optional[ServerPackage]:
        """`_from_datagram_deferred` for the package a client receives most: no events, and the session
        it expects (`tails`: `_server_tail(b"", False, session)` and the same with True). Returns None for
        any other package (which then takes the general path); the update is checked when it is decoded.
        """
        size = len(datagram)
        if size > cls._max_size or size < 17 or datagram[12] != 0x96 or Sqn._bytesize != 2:
            return None
        # [ack_delay, [], floor, update, full_state, session]: ack_delay and floor as small ints
        ack_delay = datagram[13]
        at = 14
        if ack_delay > 0x7F:
            if ack_delay == 0xCC:
                ack_delay, at = datagram[14], 15
            elif ack_delay == 0xCD:
                ack_delay, at = (datagram[14] << 8) | datagram[15], 16
            else:
                return None
        if datagram[at] != 0x90:  # events: only an empty list here
            return None
        floor = datagram[at + 1]
        if floor > 0x7F:
            return None
        if datagram.endswith(tails[0]):
            full_state, end = False, size - len(tails[0])
        elif datagram.endswith(tails[1]):
            full_state, end = True, size - len(tails[1])
        else:
            return None
        start = at + 2
        if end <= start or datagram[:4] != PROTOCOL_ID:
            return None
        package = cls.__new__(cls)
        header = Header.__new__(Header)
        header.sequence, header.ack, header._bits = _usual_header(datagram)
        package.header = header
        package._datagram = None
        package._serialized = False
        package.ack_delay = ack_delay
        package._entries = []
        package.event_floor = floor
        package.session = session
        package.game_state_update = None
        package.full_state = full_state
        update = datagram[start:end]
        package._update_bytes = None if update == b"\xc0" else update
        return package

    @classmethod
    def from_datagram(cls, datagram: bytes) -> ServerPackage:
        """Override `Package.from_datagram` to include game_state_update."""
        package = super().from_datagram(datagram)
        assert isinstance(package, ServerPackage)
        return package
