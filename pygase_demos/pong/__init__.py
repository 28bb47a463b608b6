"""Pong for two players, with any number of spectators: `pygase-demo pong` (see `game`)."""
