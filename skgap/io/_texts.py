"""The texts (captions, reports) of the rows of an embeddings file.

Texts live beside the embeddings in three ways: a string array of the same
file (an ``.npz`` member saved as ``np.array(texts, dtype=str)``, a Parquet
or Arrow column, an HDF5 dataset), a column of a clip-retrieval archive's
``metadata_N.parquet`` shards (``caption``), or a column of a separate
CSV/TSV/Parquet table, by position or joined by id like the labels.
"""

from pathlib import Path

import numpy as np

from ._errors import DataFileError
from ._labels import _join, _read_parquet_table, _read_text_table, split_label_spec

__all__ = ["apply_texts"]

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def _as_texts(values, where):
    """Cells -> an object array of str; bytes are decoded as UTF-8, anything else refused."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataFileError(f"{where}: texts must be one string per row, got shape {values.shape}.")
    if values.dtype.kind not in "USO":
        raise DataFileError(
            f"{where}: texts must be strings, got an array of dtype {values.dtype}."
        )
    out = np.empty(values.shape[0], dtype=object)
    for i, v in enumerate(values.tolist()):
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFileError(f"{where}: row {i} is not UTF-8 text.") from None
        if not isinstance(v, str):
            raise DataFileError(f"{where}: row {i} holds a {type(v).__name__}, not a string.")
        if not v.strip():
            raise DataFileError(f"{where}: row {i} is an empty text; every row needs its text.")
        out[i] = v
    return out


def _table_texts(path, column, n_rows, extra, id_key, id_column):
    if column is None:
        raise DataFileError(f"{path}: name the text column as {path}:COLUMN.")
    if path.suffix.lower() in (".parquet", ".pq"):
        columns, data = _read_parquet_table(path, [column] + ([id_column] if id_column else []))
    else:
        columns, data = _read_text_table(path)
    missing = [c for c in [column] + ([id_column] if id_column else []) if c not in columns]
    if missing:
        raise DataFileError(
            f"{path}: no column(s) {', '.join(map(repr, missing))} (columns: {', '.join(columns)})."
        )
    texts = _as_texts(np.asarray(data[column], dtype=object), f"{path}[{column!r}]")
    if id_column is not None:
        if extra is None:
            raise DataFileError(f"{path}: the embeddings hold no ids to join the texts on.")
        texts = texts[_join(data[id_column], extra(id_key or id_column), str(path), id_column)]
    elif texts.shape[0] != n_rows:
        raise DataFileError(
            f"{path}[{column!r}]: {texts.shape[0]} texts for {n_rows} embedding rows; give one "
            "per row, or join them by id (id_column=)."
        )
    return texts


def apply_texts(texts, n_rows, *, extra=None, id_key=None, id_column=None,
                where="the embeddings"):
    """The text of each row of an embeddings file.

    Parameters
    ----------
    texts : str or path-like
        ``FILE:COLUMN`` of a CSV/TSV/Parquet table (by position, or joined on
        ``id_column`` with the file's ``id_key`` array), else the name of a
        string array or column of the embeddings file (``caption`` in a
        clip-retrieval archive's metadata).
    n_rows : int
    extra : callable or None
        ``extra(name)`` reads another array of the embeddings file.
    id_key, id_column : str or None
        As for the labels.

    Returns
    -------
    texts : ndarray of object, shape (n_rows,)
    """
    if not isinstance(texts, (str, Path)) and not hasattr(texts, "__fspath__"):
        raise TypeError(
            f"texts must name an array or column (str) or a table FILE:COLUMN, got "
            f"{type(texts).__name__}."
        )
    path, columns = split_label_spec(texts)
    if path.is_file() and path.suffix.lower() in _TABLE_SUFFIXES:
        if columns is not None and len(columns) != 1:
            raise DataFileError(f"{path}: name one text column, got {columns}.")
        return _table_texts(path, columns[0] if columns else None, n_rows, extra, id_key,
                            id_column)
    name = str(texts)
    keys = getattr(extra, "keys", None)
    if extra is None or (keys is not None and name not in keys):
        found = f" (found: {', '.join(map(repr, keys))})" if keys is not None else ""
        raise DataFileError(
            f"{where}: no array or column {name!r} with the texts{found}, and no table "
            f"{path}; name an array of the file or a table FILE:COLUMN."
        )
    out = _as_texts(extra(name), f"{where}[{name!r}]")
    if out.shape[0] != n_rows:
        raise DataFileError(f"{where}[{name!r}]: {out.shape[0]} texts for {n_rows} rows.")
    return out
