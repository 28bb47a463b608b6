"""The exceptions PyGaSe raises, in one hierarchy.

Every exception of PyGaSe's own is a `PygaseError`, and also the built-in exception a caller would
expect (`ValueError` for bad data, `TypeError` for values that cannot be sent ...), so both
`except pygase.errors.PygaseError` and the built-in name catch it. As in h11, an error says whose
fault it is:

- `ProtocolError` (a `ValueError`): what the *other side* sent breaks the protocol. The protocol core
  never lets anything else out for garbage input: a datagram either parses or raises one of these,
  which the drivers log (rate-limited) and drop.
  - `DecodeError`: bytes that are not a valid PyGaSe value, package or event;
    - `NotSendableBytesError` (also a `TypeError`, as in 0.3.1): what `Sendable.from_bytes` raises for
      bytes that do not hold an object of its class;
  - `ProtocolIDMismatchError`: a datagram that is not PyGaSe's at all (the PyGaSe 0.3.1 name);
  - `HandshakeError`: a malformed or unexpected handshake message;
  - `UnknownSenderError`: a package from an address that has not completed the handshake.
- `DuplicateSequenceError` (a `ConnectionError`, as in 0.3.1): a package that arrived before.
- `UnsendableValueError` (a `TypeError`): a value *this side* tried to send or put in the state that
  could not arrive intact; the message names its path.
- `ReadOnlyStateError` (a `TypeError`): game code changed the server's state in place instead of
  returning an update.
- `JoinRefused`: raised by game code, not by PyGaSe: a `CLIENT_JOINED` handler turns a player away.
"""

from __future__ import annotations

__all__ = [
    "PygaseError",
    "ProtocolError",
    "DecodeError",
    "NotSendableBytesError",
    "ProtocolIDMismatchError",
    "HandshakeError",
    "UnknownSenderError",
    "DuplicateSequenceError",
    "UnsendableValueError",
    "ReadOnlyStateError",
    "JoinRefused",
]


class PygaseError(Exception):
    """Base of every exception PyGaSe raises of its own."""


class ProtocolError(PygaseError, ValueError):
    """What the other side sent breaks the PyGaSe protocol (its fault, not this program's)."""


class DecodeError(ProtocolError):
    """Bytes that are not a valid PyGaSe value, package or event."""


class NotSendableBytesError(DecodeError, TypeError):
    """Bytes that `Sendable.from_bytes` could not parse into an object of its class.

    A `TypeError`, which PyGaSe 0.3.1 raised here, and a `DecodeError` (so a `ValueError` too).
    """


class ProtocolIDMismatchError(ProtocolError):
    """Bytestring could not be identified as a valid PyGaSe package."""


class HandshakeError(ProtocolError):
    """A malformed handshake message, or one that answers no request of ours."""


class UnknownSenderError(ProtocolError):
    """A package came from an address that has not completed the handshake."""


class DuplicateSequenceError(PygaseError, ConnectionError):
    """Received a package with a sequence number that was already received before."""


class UnsendableValueError(PygaseError, TypeError):
    """A value that cannot be sent intact (the message names its path, e.g. ``grid[(1, 2)]``)."""


class ReadOnlyStateError(PygaseError, TypeError):
    """Game code changed the server's game state in place: return an update dict instead."""


class JoinRefused(PygaseError):
    """Raise it in a `CLIENT_JOINED` handler to turn the joining player away with a reason.

    The player's `Client.connect` then raises `ConnectionRefusedError` with the reason (its first 64 bytes
    of UTF-8), e.g. `raise JoinRefused("name taken")`. Nothing of the game's state went to that client.
    """

    def __init__(self, reason: str = "refused by the game") -> None:
        super().__init__(reason)
        self.reason = str(reason)
