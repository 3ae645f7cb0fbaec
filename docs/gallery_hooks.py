"""Hooks that sphinx-gallery calls around each example (named in conf.py).

sphinx-gallery runs every example in the Sphinx process itself. An example
that calls ``sys.exit`` (say, to skip itself where optional data are missing)
would end the whole build there -- with exit status 0 and half a site. While an
example runs, ``sys.exit`` raises an ordinary error instead, so the example is
reported as failed and the build stops loudly.
"""

import sys

_SYS_EXIT = sys.exit


class ExampleExitError(RuntimeError):
    """An example tried to end the interpreter that builds the documentation."""


def _refuse_exit(status=None):
    raise ExampleExitError(
        f"the example called sys.exit({status!r}); the gallery runs every example in "
        "the Sphinx process, so an example must finish instead of exiting (guard the "
        "rest of it, or fall back to other data)"
    )


def forbid_sys_exit(gallery_conf, fname, when):
    """Swap ``sys.exit`` for an error before an example, restore it after."""
    sys.exit = _refuse_exit if when == "before" else _SYS_EXIT
