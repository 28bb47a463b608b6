"""Room codes: what players type to join a session through a relay."""

from __future__ import annotations

__all__ = ["CODE_ALPHABET", "CODE_LENGTH", "normalize_code"]

#: Room codes: `CODE_LENGTH` characters of `CODE_ALPHABET`, which leaves out 0/O, 1/I/L.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


def normalize_code(text: str) -> str:
    """A room code as typed by a player (any case, spaces or dashes) in its canonical form.

    Raises:
        ValueError: naming what is wrong, if it cannot be a room code
    """
    if not isinstance(text, str):
        raise TypeError(f"a room code is a str, not {type(text).__name__}")
    code = text.upper().replace(" ", "").replace("-", "")
    wrong = sorted(set(code) - set(CODE_ALPHABET))
    if wrong or len(code) != CODE_LENGTH:
        problem = f"has {', '.join(map(repr, wrong))}" if wrong else f"has {len(code)} characters"
        raise ValueError(
            f"{text!r} is not a room code: it {problem}; a room code has {CODE_LENGTH} characters "
            f"from {CODE_ALPHABET} (no 0, 1, I, L or O)"
        )
    return code
