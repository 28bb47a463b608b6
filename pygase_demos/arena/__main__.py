"""`pygase-demo arena [local|host|join HOST[:PORT]] [--bots N] ...`"""

from pygase_demos._framework import main
from pygase_demos.arena.game import DEMO

if __name__ == "__main__":
    main(DEMO)
