"""Crazy Eights for 2 to 6 players, with spectators and hidden hands: `pygase-demo cards` (see `game`)."""
