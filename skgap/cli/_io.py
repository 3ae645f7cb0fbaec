"""Reading the user's embeddings and labels for the command line.

Every problem is reported as :class:`DataError` naming the file and what is
wrong with it, so the command line prints one clear line instead of a
traceback.
"""

import csv
import zipfile
from pathlib import Path

import numpy as np

from .._geometry import row_norms
from .._layout import pair

#: The forms DATA may take, for help texts and error messages.
DATA_FORMS = (
    "an .npz with arrays 'image' and 'text' (optionally 'labels'), a .npy of shape "
    "(2, n, d) (images, then texts), or two .npy files of shape (n, d) (images, texts)"
)
LABEL_FORMS = (
    "a .npy, an .npz with an array 'labels', or FILE.csv:COLUMN "
    "(FILE.csv:COL1,COL2,... for multi-label 0/1 columns)"
)


class DataError(ValueError):
    """A user's data file cannot be used; the message names file and problem."""


def _load_array(path):
    path = Path(path)
    if path.suffix not in (".npz", ".npy"):
        raise DataError(f"{path}: expected a .npz or .npy file, got '{path.suffix or path.name}'.")
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable NumPy file ({exc}).") from exc


def _check_block(arr, where):
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise DataError(f"{where}: expected a 2-D array (n_items, dim), got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{where}: expected real numbers, got dtype {arr.dtype}.")
    if arr.dtype == np.float16 or not np.issubdtype(arr.dtype, np.floating):
        # float16 and integer embeddings are computed on in float32.
        arr = arr.astype(np.float32)
    if arr.shape[0] < 2:
        raise DataError(f"{where}: needs at least 2 rows, got {arr.shape[0]}.")
    if arr.shape[1] < 1:
        raise DataError(f"{where}: has no columns.")
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
    X : ndarray of shape (n, 2 d)
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
                    f"(images, texts); got {data.shape}. Give two .npy files for "
                    "separate image and text arrays."
                )
            V = _check_block(data[0], f"{path}[0]")
            T = _check_block(data[1], f"{path}[1]")
        where = str(path)
    else:
        raise DataError(f"expected DATA as {DATA_FORMS}; got {len(paths)} files.")
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


def _split_spec(spec):
    """``FILE.csv:COLS`` -> (path, columns); other specs -> (path, None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head.lower().endswith(".csv"):
        return Path(head), [c for c in tail.split(",")]
    return Path(spec), None


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

    Returns
    -------
    labels : ndarray of shape (n_rows,) or (n_rows, n_labels), or None
    """
    if spec is None:
        labels = default
        where = "the 'labels' array of the embeddings file"
    else:
        path, columns = _split_spec(spec)
        where = str(path)
        if path.suffix.lower() == ".csv":
            labels = _labels_from_csv(path, columns)
        else:
            data = _load_array(path)
            if isinstance(data, dict):
                if "labels" not in data:
                    raise DataError(
                        f"{path}: no array 'labels' (found: {sorted(data)}); labels can be "
                        f"{LABEL_FORMS}."
                    )
                where = f"{path}['labels']"
                data = data["labels"]
            labels = data
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    if labels.ndim not in (1, 2):
        raise DataError(
            f"{where}: labels must be 1-D (one class per row) or 2-D (multi-label 0/1 "
            f"columns), got shape {labels.shape}."
        )
    if labels.shape[0] != n_rows:
        raise DataError(f"{where}: {labels.shape[0]} labels for {n_rows} embedding rows.")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        rows = np.flatnonzero(np.isnan(labels).reshape(n_rows, -1).any(axis=1))
        raise DataError(
            f"{where}: {rows.size} row(s) have a missing (NaN) label (first: row {rows[0]})."
        )
    if labels.dtype.kind not in "biufUS":
        raise DataError(f"{where}: labels must be numbers or strings, got dtype {labels.dtype}.")
    return labels


def _labels_from_csv(path, columns):
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if not fields:
                raise DataError(f"{path}: empty CSV file (no header row).")
            if columns is None:
                if len(fields) != 1:
                    raise DataError(
                        f"{path}: {len(fields)} columns; name the label column as "
                        f"{path}:COLUMN (columns: {', '.join(fields)})."
                    )
                columns = fields
            missing = [c for c in columns if c not in fields]
            if missing:
                raise DataError(
                    f"{path}: no column(s) {', '.join(map(repr, missing))} "
                    f"(columns: {', '.join(fields)})."
                )
            rows = [[row[c] for c in columns] for row in reader]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text CSV file ({exc.reason}).") from exc
    if not rows:
        raise DataError(f"{path}: no data rows under the header.")
    for i, row in enumerate(rows):
        for c, value in zip(columns, row):
            if value is None or value.strip() == "":
                # Row numbers as a spreadsheet shows them: header is line 1.
                raise DataError(f"{path}: empty value in column {c!r} on line {i + 2}.")
    values = np.asarray(rows)
    try:
        numeric = values.astype(float)
    except ValueError:
        if len(columns) > 1:
            raise DataError(
                f"{path}: multi-label columns {', '.join(columns)} must hold 0/1 numbers."
            ) from None
        return values[:, 0]
    if np.all(numeric == np.round(numeric)):
        numeric = numeric.astype(int)
    return numeric[:, 0] if len(columns) == 1 else numeric
