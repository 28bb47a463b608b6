"""`pygase-demo chase [local|host|join HOST[:PORT]] [--bots N] ...` (see `pygase_demos._framework`)."""

from pygase_demos._framework import main
from pygase_demos.chase.game import DEMO

if __name__ == "__main__":
    main(DEMO)
