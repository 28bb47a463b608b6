from pygase_demos._framework import main
from pygase_demos.dots.game import DEMO

main(DEMO)
