"""`pygase-demo pong [local|host|join HOST:PORT] [--bots N] ...`: see `pygase_demos.pong.game`."""

from pygase_demos._framework import main
from pygase_demos.pong.game import DEMO

main(DEMO)
