"""`pygase-demo cards [local|host|join HOST:PORT] [--bots N] ...`: see `pygase_demos.cards.game`."""

from pygase_demos._framework import main
from pygase_demos.cards.game import DEMO

main(DEMO)
