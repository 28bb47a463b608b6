"""Pong for two players, with any number of spectators: `python -m demos.pong` (see `game`)."""
