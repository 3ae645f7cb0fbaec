"""Writing the results of a command: output folder, CSV, JSON and figures."""

import contextlib
import csv
import errno
import tempfile
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
    check_writable(path, "the output folder")
    return path


def check_writable(folder, what="the folder"):
    """Refuse a ``folder`` this process cannot create files in, before any work is done.

    Permission bits alone do not say it (``os.access`` ignores read-only
    mounts and ACLs, and root passes it): a file is created and removed.
    """
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".skgap-write-test-"):
            pass
    except OSError as exc:
        raise DataError(f"{folder}: cannot write to {what} ({_reason(exc)}).") from exc


def _reason(exc):
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; it is read-only for this user"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


@contextlib.contextmanager
def writing(path):
    """Turn a failure to write ``path`` (full disk, permissions) into one line."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"{path}: cannot be written ({_reason(exc)}).") from exc


def write_csv(path, columns):
    """Write a dict of equal-length 1-D arrays as a CSV with a header row."""
    names = list(columns)
    arrays = [np.asarray(columns[n]) for n in names]
    with writing(path), open(path, "w", newline="") as f:
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
    text = dumps(obj) + "\n"
    with writing(path):
        Path(path).write_text(text)
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
        try:
            with writing(path):
                fig.savefig(path, dpi=dpi)
        finally:
            plt.close(fig)
        written.append(path)
    return written, None
