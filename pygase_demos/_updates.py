"""Building one update dict from several, for the demos' rules."""

from __future__ import annotations

__all__ = ["merge"]


def merge(target: dict, update: dict) -> dict:
    """Deep-merge `update` into `target` (as the server merges updates into the state); return `target`."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value
    return target
