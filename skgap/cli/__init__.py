"""The ``skgap`` command line.

Each subcommand lives in its own module ``skgap/cli/_<name>.py`` exposing
``register(subparsers)``, which adds its parser and sets ``func``; the
command names are listed in ``_COMMANDS`` in the order ``--help`` shows them.
"""

import argparse
import os
import sys
from importlib import import_module

from .. import __version__
from ._io import DataError, add_data_options, command_options
from ._messages import cli_words, one_line_warnings
from ._options import HelpFormatter

# The order of the help text: try it, measure, choose lambda. "encode"
# (skgap/cli/_encode.py, torch imported only when it runs) goes at the end.
_COMMANDS = ("demo", "report", "sweep", "encode")

_EPILOG = """\
start here:
  skgap demo                         the whole story on synthetic data, in seconds
  skgap report EMB.npz               cone and gap statistics of your embeddings
  skgap sweep EMB.npz --labels Y.npy choose the gap-shift lambda for your task

Run 'skgap COMMAND --help' for the options of a command.
"""


def seed(text):
    """A random seed: an integer in [0, 2**32 - 1], as NumPy takes it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}.") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"a seed must lie in 0 .. 4294967295 (2**32 - 1), got {value}."
        )
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skgap",
        description=(
            "Measure the cone effect and modality gap of paired image/text embeddings "
            "and choose the gap-shift lambda by linear probes over random splits."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skgap {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        import_module(f"._{name}", __name__).register(sub)
        command = sub.choices[name]
        if any(action.dest == "data" for action in command._actions):
            # Every command that reads embeddings takes the loader's options.
            add_data_options(command)
        for action in command._actions:
            if action.dest == "seed" and action.type is int:
                action.type = seed  # one seed contract for every command
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 2 bad input or usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        with command_options(args), one_line_warnings(args.command):
            return int(args.func(args) or 0)
    except DataError as exc:
        print(f"skgap {args.command}: error: {cli_words(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of the output went away (skgap report X | head): stop quietly,
        # and keep Python from reporting the failed flush of stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
