"""`python -m demos.pong [local|host|join HOST:PORT] [--bots N] ...`: see `demos.pong.game`."""

from demos._framework import main
from demos.pong.game import DEMO

main(DEMO)
