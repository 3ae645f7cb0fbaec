"""The ``skgap`` command line.

Each subcommand lives in its own module ``skgap/cli/_<name>.py`` exposing
``register(subparsers)``, which adds its parser and sets ``func``.
"""

import argparse
import sys
from importlib import import_module

from .. import __version__
from ._io import DataError

_COMMANDS = ("demo", "report")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skgap",
        description=(
            "Measure the cone effect and modality gap of paired image/text embeddings "
            "and choose the gap-shift lambda by cross-validated linear probes."
        ),
        epilog="Run 'skgap COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"skgap {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        import_module(f"._{name}", __name__).register(sub)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except DataError as exc:
        print(f"skgap {args.command}: error: {exc}", file=sys.stderr)
        return 2
