from demos._framework import main
from demos.dots.game import DEMO

main(DEMO)
