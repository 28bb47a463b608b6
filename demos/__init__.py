"""Shortcuts for a checkout: `python -m demos` and `python -m demos.NAME ...`, as README.md shows.

The demos are the package `pygase_demos` (installed as the `pygase-demo` command). This folder is only
these forwarders and is left out of the wheel, so nothing named `demos` lands in site-packages.
"""

import sys


def forward(name=None):
    """Run `pygase-demo [NAME] ARGS...` with this process's ARGS, named as typed in a checkout."""
    from pygase_demos import __main__ as launcher
    from pygase_demos import _framework

    _framework.DEMO_COMMAND = "python -m demos.{name}"
    launcher.main(([name] if name else []) + sys.argv[1:], prog="python -m demos")
