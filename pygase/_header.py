"""The header every PyGaSe package starts with: protocol id, sequence number, ack and ack bit field.

A 12-byte header: the 4-byte protocol id, a 2-byte sequence number, the 2-byte sequence number of the
newest package received and a 32-bit field of acks for the 32 packages before that one (the PyGaSe 0.3.1
`Header`, whose ack bit field is a str of '0' and '1'; the core uses the int). Bytes in, bytes out.
"""

from __future__ import annotations

import struct

from pygase.errors import DecodeError, ProtocolIDMismatchError
from pygase.utils import Sqn

__all__ = ["PROTOCOL_ID", "Header"]

#: Unique 4-byte identifier for the PyGaSe package protocol.
PROTOCOL_ID: bytes = bytes.fromhex("ffd0fab9")

_BITFIELD_BITS = 32


def _bits_from_str(ack_bitfield: str) -> int:
    if (
        not isinstance(ack_bitfield, str)
        or len(ack_bitfield) != _BITFIELD_BITS
        or set(ack_bitfield) - {"0", "1"}
    ):
        raise ValueError("ack_bitfield must be a string of 32 '0' and '1' characters")
    # The first character stands for the package directly before `ack`: bit 0 of the int.
    return int(ack_bitfield[::-1], 2)


def _bits_to_str(bits: int) -> str:
    return format(bits, "032b")[::-1]


class Header:
    """Create a PyGaSe package header.

    Arguments:
        sequence: package sequence number
        ack: sequence number of the last received package
        ack_bitfield: a 32 character string representing the 32 sequence numbers prior to the last one
            received, with the first character corresponding to the package directly preceding it and so
            forth. '1' means that package has been received, '0' means it hasn't.

    Attributes:
        sequence (Sqn): see corresponding constructor argument
        ack (Sqn): see corresponding constructor argument
        ack_bitfield (str): see corresponding constructor argument

    Sequence numbers: a sequence of 0 means no packages have been sent or received.
    After 65535 sequence numbers wrap around to 1, so they can be stored in 2 bytes.
    """

    __slots__ = ("sequence", "ack", "_bits")

    def __init__(self, sequence: int, ack: int, ack_bitfield: str) -> None:
        self.sequence = Sqn(sequence)
        self.ack = Sqn(ack)
        self._bits = _bits_from_str(ack_bitfield)

    @classmethod
    def _from_ints(cls, sequence: int, ack: int, bits: int) -> Header:
        header = cls.__new__(cls)
        header.sequence = Sqn(sequence)
        header.ack = Sqn(ack)
        header._bits = bits
        return header

    @property
    def ack_bitfield(self) -> str:
        return _bits_to_str(self._bits)

    @ack_bitfield.setter
    def ack_bitfield(self, value: str) -> None:
        self._bits = _bits_from_str(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Header):
            return NotImplemented
        return self.destructure() == other.destructure()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Header(sequence={int(self.sequence)}, ack={int(self.ack)}, ack_bitfield={self.ack_bitfield!r})"
        )

    def to_bytearray(self) -> bytearray:
        """Return 12 bytes representing the header (4-byte protocol id included)."""
        return bytearray(_header_bytes(int(self.sequence), int(self.ack), self._bits))

    def destructure(self) -> tuple:
        """Return the tuple (sequence, ack, ack_bitfield)."""
        return (self.sequence, self.ack, self.ack_bitfield)

    @staticmethod
    def _size() -> int:
        return len(PROTOCOL_ID) + 2 * Sqn._bytesize + 4

    @staticmethod
    def deconstruct_datagram(datagram: bytes) -> tuple:
        """Return a tuple containing the header and the rest of the datagram.

        Arguments:
            datagram: serialized PyGaSe package to deconstruct

        Returns:
            (header, payload) with payload being a bytestring of the rest of the datagram

        Raises:
            ProtocolIDMismatchError: if the first four bytes don't match the PyGaSe protocol ID
            ValueError: if the datagram is too short to hold a header
        """
        if datagram[: len(PROTOCOL_ID)] != PROTOCOL_ID:
            raise ProtocolIDMismatchError("the datagram does not start with the PyGaSe protocol id")
        width = Sqn._bytesize
        size = len(PROTOCOL_ID) + 2 * width + 4
        if len(datagram) < size:
            raise DecodeError(f"a PyGaSe datagram has at least {size} bytes, got {len(datagram)}")
        if width == 2:  # (every datagram comes this way: one struct, and Sqns that need no range check)
            header = Header.__new__(Header)
            header.sequence, header.ack, header._bits = _usual_header(datagram)
            return header, bytes(datagram[size:])
        start = len(PROTOCOL_ID)
        sequence = int.from_bytes(datagram[start : start + width], "big")
        ack = int.from_bytes(datagram[start + width : start + 2 * width], "big")
        (bits,) = _BITS.unpack(datagram[start + 2 * width : size])
        return Header._from_ints(sequence, ack, bits), bytes(datagram[size:])


def _header_bytes(sequence: int, ack: int, bits: int) -> bytes:
    """The 12 header bytes of a package, straight from ints (what `Header.to_bytearray` gives)."""
    width = Sqn._bytesize
    if width == 2:
        return _HEADER_2.pack(PROTOCOL_ID, sequence, ack, bits)
    return PROTOCOL_ID + sequence.to_bytes(width, "big") + ack.to_bytes(width, "big") + _BITS.pack(bits)


def _header_fields(sequence: int, ack: int, bits: int) -> bytes:
    """The header without its protocol id (how a sealed datagram carries it; see `pygase._crypto`)."""
    if Sqn._bytesize == 2:
        return _FIELDS_2.pack(sequence, ack, bits)
    return _header_bytes(sequence, ack, bits)[len(PROTOCOL_ID) :]


def _usual_header(datagram: bytes) -> tuple:
    """(sequence, ack, ack bits) of a datagram with the default 2-byte sequence numbers (not checked)."""
    sequence, ack, bits = _FIELDS_2.unpack_from(datagram, len(PROTOCOL_ID))
    return int.__new__(Sqn, sequence), int.__new__(Sqn, ack), bits


_BITS = struct.Struct("!I")
_FIELDS_2 = struct.Struct("!HHI")  # sequence, ack and ack bits with the default 2-byte sequence numbers
_HEADER_2 = struct.Struct("!4sHHI")
