"""Checks of one embedding block (image or text), with messages naming its source."""

import numpy as np

from ._errors import DataFileError

__all__ = ["check_block"]


def check_block(arr, where, *, min_rows=2, first_row=0):
    """Return ``arr`` as a float 2-D block, or raise naming ``where`` and the problem.

    float16 and integer blocks become float32; float32 and float64 are kept
    (a memory-mapped block stays mapped). Rows must be finite and non-zero,
    since every statistic normalises them.

    Parameters
    ----------
    arr : array-like
    where : str
        The file and key, for messages.
    min_rows : int, default=2
    first_row : int, default=0
        Row number of ``arr[0]`` in the whole file (for streamed chunks).
    """
    arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    if arr.ndim != 2:
        raise DataFileError(f"{where}: expected a 2-D array (n_items, dim), got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataFileError(f"{where}: expected real numbers, got dtype {arr.dtype}.")
    if arr.dtype == np.float16 or not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    if arr.shape[0] < min_rows:
        raise DataFileError(f"{where}: needs at least {min_rows} rows, got {arr.shape[0]}.")
    if arr.shape[1] < 1:
        raise DataFileError(f"{where}: has no columns.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataFileError(
            f"{where}: {rows.size} row(s) hold NaN or infinity (first: row {rows[0] + first_row})."
        )
    zero = ~(arr != 0).any(axis=1)  # exact: a norm could underflow to 0
    if zero.any():
        rows = np.flatnonzero(zero)
        raise DataFileError(
            f"{where}: {rows.size} row(s) are all zeros and cannot be normalised "
            f"(first: row {rows[0] + first_row})."
        )
    return arr
