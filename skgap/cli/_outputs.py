"""Writing the results of a command: output folder, CSV, JSON and figures."""

import csv
from pathlib import Path

import numpy as np

from ._format import dumps
from ._io import DataError

PLOT_HINT = "pip install skgap[plot]"


def prepare_out_dir(path):
    """Create the output folder (and parents); refuse a path that is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: --out must be a folder, but this is a file.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot create the output folder ({exc.strerror}).") from exc
    return path


def write_csv(path, columns):
    """Write a dict of equal-length 1-D arrays as a CSV with a header row."""
    names = list(columns)
    arrays = [np.asarray(columns[n]) for n in names]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in zip(*arrays):
            writer.writerow([_cell(v) for v in row])
    return path


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path, obj):
    Path(path).write_text(dumps(obj) + "\n")
    return path


def save_figures(out_dir, makers, dpi=120):
    """Draw and save figures; skip them with a note when matplotlib is missing.

    Parameters
    ----------
    out_dir : Path
    makers : list of (file name, callable returning a Figure)

    Returns
    -------
    written : list of Path
    note : str or None
        Why figures were skipped, if they were.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        names = ", ".join(name for name, _ in makers)
        return [], f"matplotlib is not installed: skipped {names} ({PLOT_HINT})."
    written = []
    for name, make in makers:
        fig = make()
        path = Path(out_dir) / name
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)
    return written, None
