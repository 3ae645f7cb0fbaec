"""Tidy result tables: a pandas DataFrame when pandas is there, else a dict of arrays."""

import numpy as np


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        return None
    return pd


def make_table(columns, as_frame="auto"):
    """Return ``columns`` (dict name -> 1-D array) as a DataFrame or a dict.

    Parameters
    ----------
    columns : dict of str to array-like
    as_frame : {'auto', True, False}
        ``'auto'``: a DataFrame when pandas imports, else the dict; ``True``
        requires pandas; ``False`` always returns the dict of arrays.
    """
    if as_frame not in ("auto", True, False):
        raise ValueError(f"as_frame must be 'auto', True or False, got {as_frame!r}.")
    columns = {k: np.asarray(v) for k, v in columns.items()}
    if as_frame is False:
        return columns
    pd = _pandas()
    if pd is None:
        if as_frame is True:
            raise ImportError(
                "as_frame=True needs pandas: pip install skgap[pandas] (or pass as_frame=False)."
            )
        return columns
    return pd.DataFrame(columns)


def as_columns(table):
    """Read a table (DataFrame, dict of arrays or structured array) as a dict of arrays."""
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return {str(c): np.asarray(table[c]) for c in table.columns}
    if isinstance(table, np.ndarray) and table.dtype.names:
        return {name: np.asarray(table[name]) for name in table.dtype.names}
    if isinstance(table, dict):
        out = {str(k): np.asarray(v) for k, v in table.items()}
        lengths = {v.shape[0] if v.ndim else -1 for v in out.values()}
        if len(lengths) > 1 or -1 in lengths:
            raise ValueError(
                "a table given as a dict needs 1-D columns of one length; got lengths "
                + ", ".join(f"{k}: {v.shape}" for k, v in out.items())
                + "."
            )
        return out
    raise TypeError(
        "expected a table: a pandas DataFrame, a dict of equal-length arrays or a "
        f"structured array; got {type(table).__name__}."
    )
