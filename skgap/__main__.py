"""``python -m skgap``: the same command line as the ``skgap`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
