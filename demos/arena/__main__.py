"""`python -m demos.arena [local|host|join HOST[:PORT]] [--bots N] ...`"""

from demos._framework import main
from demos.arena.game import DEMO

if __name__ == "__main__":
    main(DEMO)
