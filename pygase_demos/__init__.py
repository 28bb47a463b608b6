"""Demo games for PyGaSe: small, complete games to play with friends on a LAN.

Run `pygase-demo` for the launcher, `pygase-demo list` for the list, or `pygase-demo NAME` (also
`python -m pygase_demos[.NAME]`; in a checkout, `python -m demos[.NAME]`). The images, sounds and font
are in `assets/`, beside this file, with their sources and licences in `assets/README.md`.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

#: name -> one-line description (the games themselves are imported when run)
DEMOS = {
    "dots": "Collect the star: the smallest demo, walked through in README.md.",
    "chase": "A game of tag: the chaser passes the role by catching someone.",
    "arena": "Top-down ships and bullets in an arena: shoot, dodge, respawn, top the kill board.",
    "pong": "Pong for two players, with any number of spectators.",
    "cards": "Crazy Eights for 2-6 players: hidden hands, a lobby, spectators, rejoining a dropped seat.",
}
