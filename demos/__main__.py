"""`python -m demos ...` in a checkout is `pygase-demo ...`: the launcher, `list` or `browse`."""

from demos import forward

forward()
