"""python -m demos.chase [local|host|join HOST[:PORT]] [--bots N] ... (see demos._framework)."""

from demos._framework import main
from demos.chase.game import DEMO

if __name__ == "__main__":
    main(DEMO)
