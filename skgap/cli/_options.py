"""Argument types and shared options of the subcommands."""

import argparse
import os
import re
import sys

import numpy as np

DEFAULT_LAMS = "0:1:11"


class HelpFormatter(argparse.HelpFormatter):
    """Wrap prose as usual but keep the line breaks of text with indented lines (examples)."""

    def _fill_text(self, text, width, indent):
        if any(line.startswith("  ") for line in text.splitlines()):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def lambda_grid(values):
    """Parse ``--lams``: numbers and ``START:STOP:NUM`` ranges, sorted and unique.

    ``0:1:11`` means 11 evenly spaced values from 0 to 1 (``np.linspace``).
    """
    if isinstance(values, str):
        values = [values]
    out = []
    for token in values:
        for part in str(token).replace(",", " ").split():
            if ":" in part:
                pieces = part.split(":")
                try:
                    start, stop, num = float(pieces[0]), float(pieces[1]), int(pieces[2])
                    if len(pieces) != 3 or num < 1:
                        raise ValueError
                except (ValueError, IndexError):
                    raise argparse.ArgumentTypeError(
                        f"bad lambda range {part!r}: write START:STOP:NUM, e.g. 0:1:11."
                    ) from None
                out.extend(np.linspace(start, stop, num).tolist())
            else:
                try:
                    out.append(float(part))
                except ValueError:
                    raise argparse.ArgumentTypeError(
                        f"bad lambda {part!r}: expected a number in [-1, 1] or START:STOP:NUM."
                    ) from None
    lams = np.unique(np.round(out, 12))
    if lams.size == 0:
        raise argparse.ArgumentTypeError("give at least one lambda.")
    if not np.all(np.isfinite(lams)) or lams.min() < -1 or lams.max() > 1:
        raise argparse.ArgumentTypeError(
            f"every lambda must lie in [-1, 1]; got {', '.join(f'{v:g}' for v in lams)}."
        )
    return lams


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}.") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}.")
    return value


def test_fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}.") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {value:g}.")
    return value


# pytest would collect a module-level name starting with ``test``.
test_fraction.__test__ = False


class _LambdaAction(argparse.Action):
    """Parse the tokens of ``--lams`` into one sorted grid (usage error if bad)."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, lambda_grid(values))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument {option_string}: {exc}")


#: A token that starts with '-' but is a lambda or a lambda range (e.g. -1:1:9), not an option.
_NEGATIVE_LAMBDAS = re.compile(r"^-\d*\.?\d+([:,][-\d.:,]*)?$")


def add_lams(parser, default=DEFAULT_LAMS):
    # argparse reads "-1:1:9" as an option unless it looks like a negative number;
    # widen its test (the parser has no option of that shape).
    parser._negative_number_matcher = _NEGATIVE_LAMBDAS
    start, stop, num = default.split(":")
    step = (float(stop) - float(start)) / (int(num) - 1)
    parser.add_argument(
        "--lams",
        nargs="+",
        action=_LambdaAction,
        default=lambda_grid(default),
        metavar="LAM",
        help=(
            "gap-shift lambdas to compare: numbers in [-1, 1] and/or START:STOP:NUM ranges, "
            f"e.g. --lams 0 0.5 1 or --lams -1:1:9 (default: {default}, i.e. "
            f"{float(start):g}, {float(start) + step:g}, ..., {float(stop):g}); 0 is no "
            "shift, 1 closes the gap, negative values widen it"
        ),
    )


def add_progress(parser):
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when the terminal is interactive)",
    )


def want_progress(flag):
    if flag is not None:
        return flag
    return sys.stderr.isatty() and not os.environ.get("CI")


def task_list(text):
    """Parse ``--tasks``: comma-separated task family names."""
    from ..evaluate._tasks import TASK_FAMILIES

    names = [t.strip() for t in str(text).split(",") if t.strip()]
    unknown = [t for t in names if t not in TASK_FAMILIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"bad --tasks {text!r}: give comma-separated names from {', '.join(TASK_FAMILIES)}."
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"bad --tasks {text!r}: a task is named twice.")
    return tuple(names)


def add_sweep_statistics(parser):
    """``--select`` and ``--confidence``: how a sweep is summarised."""
    parser.add_argument(
        "--select", choices=("one_se", "best"), default="one_se",
        help="how to choose lambda per task: 'one_se' takes the lambda closest to 0 within one "
             "standard error (of the paired difference) of the best mean; 'best' the highest "
             "mean (default: %(default)s)",
    )
    parser.add_argument(
        "--confidence", type=test_fraction, default=0.95, metavar="C",
        help="coverage of the paired t-interval behind each verdict (default: %(default)s)",
    )
