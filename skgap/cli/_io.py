"""Reading the user's embeddings and labels for the command line.

Every problem is reported as :class:`DataError` naming the file and what is
wrong with it, so the command line can print one clear line instead of a
traceback.
"""

from pathlib import Path

import numpy as np

from .._geometry import row_norms
from .._layout import pair


class DataError(ValueError):
    """A user's data file cannot be used; the message names file and problem."""


def _load_array(path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable NumPy file ({exc}).") from exc
    raise DataError(f"{path}: expected a .npz or .npy file, got '{path.suffix}'.")


def _check_block(arr, where):
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise DataError(f"{where}: expected a 2-D array (n_items, dim), got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.floating):
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{where}: expected numbers, got dtype {arr.dtype}.")
        arr = arr.astype(np.float64)
    if arr.shape[0] < 2:
        raise DataError(f"{where}: needs at least 2 rows, got {arr.shape[0]}.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{where}: {rows.size} row(s) hold NaN or infinity (first: row {rows[0]})."
        )
    zero = row_norms(arr) == 0
    if zero.any():
        rows = np.flatnonzero(zero)
        raise DataError(
            f"{where}: {rows.size} row(s) are all zeros and cannot be normalised "
            f"(first: row {rows[0]})."
        )
    return arr


def load_embeddings(paths):
    """Load paired embeddings from the forms the command line accepts.

    - one ``.npz`` with arrays ``image`` and ``text`` (and optionally ``labels``);
    - one ``.npy`` of shape ``(2, n, d)``: ``[0]`` images, ``[1]`` texts;
    - two ``.npy`` files of shape ``(n, d)``: images, then texts.

    Returns
    -------
    X : ndarray of shape (n, d_image + d_text)
    labels : ndarray or None
        The npz's ``labels`` array, when it has one.
    """
    paths = [Path(p) for p in paths]
    labels = None
    if len(paths) == 2:
        V = _check_block(_load_array(paths[0]), str(paths[0]))
        T = _check_block(_load_array(paths[1]), str(paths[1]))
        where = f"{paths[0]} and {paths[1]}"
    elif len(paths) == 1:
        path = paths[0]
        data = _load_array(path)
        if isinstance(data, dict):
            missing = [k for k in ("image", "text") if k not in data]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(repr(k) for k in missing)}; "
                    f"an embeddings .npz holds 'image' and 'text' (found: {sorted(data)})."
                )
            V = _check_block(data["image"], f"{path}['image']")
            T = _check_block(data["text"], f"{path}['text']")
            labels = data.get("labels")
        else:
            if data.ndim != 3 or data.shape[0] != 2:
                raise DataError(
                    f"{path}: a single .npy must have shape (2, n_items, dim) "
                    f"(images, texts); got {data.shape}."
                )
            V = _check_block(data[0], f"{path}[0]")
            T = _check_block(data[1], f"{path}[1]")
        where = str(path)
    else:
        raise DataError(f"expected one .npz/.npy file or two .npy files, got {len(paths)}.")
    if V.shape[0] != T.shape[0]:
        raise DataError(
            f"{where}: {V.shape[0]} image rows but {T.shape[0]} text rows; "
            "row i of each must be the same pair."
        )
    if V.shape[1] != T.shape[1]:
        raise DataError(
            f"{where}: image width {V.shape[1]} differs from text width {T.shape[1]}; "
            "gap statistics need one shared space."
        )
    return pair(V, T), labels


def load_labels(spec, n_rows, default=None):
    """Load labels from ``.npy``, ``.npz`` (array ``labels``) or ``file.csv:COLUMN``.

    Parameters
    ----------
    spec : str or None
        Where the labels are; ``None`` returns ``default``.
    n_rows : int
        Number of embedding rows the labels must match.
    default : ndarray or None
        Labels found beside the embeddings.
    """
    if spec is None:
        labels = default
        where = "labels in the embeddings file"
    else:
        where = spec
        path_str, _, column = spec.partition(":") if spec.count(":") == 1 else (spec, "", "")
        path = Path(path_str)
        if path.suffix == ".csv":
            labels = _labels_from_csv(path, column)
        else:
            data = _load_array(path)
            if isinstance(data, dict):
                if "labels" not in data:
                    raise DataError(f"{path}: no array 'labels' (found: {sorted(data)}).")
                data = data["labels"]
            labels = data
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim not in (1, 2):
        raise DataError(f"{where}: labels must be 1-D or 2-D (multi-label), got shape {labels.shape}.")
    if labels.shape[0] != n_rows:
        raise DataError(f"{where}: {labels.shape[0]} labels for {n_rows} embedding rows.")
    return labels


def _labels_from_csv(path, column):
    import csv

    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if not column:
            if len(fields) != 1:
                raise DataError(
                    f"{path}: name the label column as {path}:COLUMN (columns: {fields})."
                )
            column = fields[0]
        if column not in fields:
            raise DataError(f"{path}: no column {column!r} (columns: {fields}).")
        values = [row[column] for row in reader]
    try:
        return np.asarray([float(v) for v in values])
    except ValueError:
        return np.asarray(values)
