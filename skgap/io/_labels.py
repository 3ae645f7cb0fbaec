r"""Labels from the tables researchers keep: CSV/TSV, Parquet, ``.npy``/``.npz``.

CheXpert-style columns (Irvin et al. 2019) hold ``1`` (positive), ``0``
(negative), ``-1`` (uncertain) and blank (not mentioned). The ``uncertain``
policy maps them to training targets as the CheXpert paper's baselines do:

===========  ========  ========  ==========  ==================
policy       ``1``     ``0``     ``-1``      blank
===========  ========  ========  ==========  ==================
``'zero'``   1         0         0           0   (U-Zeros)
``'one'``    1         0         1           0   (U-Ones)
``'ignore'`` 1         0         row left    0   (U-Ignore)
                                 out
===========  ========  ========  ==========  ==================

Blank (the report does not mention the finding) counts as negative under
every policy, as in the paper's labeller output used for training.

A missing label is never a class. Spreadsheets and pandas write a missing
cell in many ways -- blank, ``NA``, ``N/A``, ``null``, ``None``, ``NaN``,
``#N/A``, ... (pandas' default ``na_values``) or ``?`` -- and every one of
them is read as blank: an error naming the count and the rows without a
policy, "not mentioned" (negative) under one. Labels that are not finite
(``inf``) are refused, and multi-label columns must hold 0 and 1 only.
"""

import csv
import io
import os
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._errors import DataFileError, require

__all__ = ["load_labels", "apply_labels", "split_label_spec", "LABEL_SUFFIXES"]

LABEL_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".npy", ".npz")
_POLICIES = ("zero", "one", "ignore")

#: Cell texts read as a missing value: pandas' default ``na_values`` and ``?``.
#: Matched exactly (after stripping spaces), as pandas does, so that a class
#: named ``none`` or ``n.a.`` stays a class.
MISSING_CELLS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "?",
})


def _is_missing(v):
    if v is None:
        return True
    if isinstance(v, (str, np.str_)):
        return v.strip() in MISSING_CELLS
    if isinstance(v, (bytes, np.bytes_)):
        return v.strip().decode("utf-8", "replace") in MISSING_CELLS
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return False


def _spelling(v):
    if isinstance(v, (bytes, np.bytes_)):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        return "blank" if not v.strip() else repr(v.strip())
    return str(v)


def _list_rows(rows, at):
    """``'on lines 3, 5 and 9'``: the first few of ``rows`` in the caller's wording."""
    rows = [int(r) for r in rows]
    shown = [at(r).split()[-1] for r in rows[:5]]
    words = at(rows[0]).rsplit(" ", 1)[0]
    words = words.replace("line", "lines").replace("row", "rows") if len(rows) > 1 else words
    if len(rows) > 5:
        return f"{words} {', '.join(shown)}, ... ({len(rows)} in all)"
    if len(rows) > 1:
        return f"{words} {', '.join(shown[:-1])} and {shown[-1]}"
    return f"{words} {shown[0]}"


def split_label_spec(spec):
    """``'FILE.csv:COL1,COL2'`` -> ``(Path('FILE.csv'), ['COL1', 'COL2'])``; no columns -> None."""
    spec = str(spec)
    head, sep, tail = spec.rpartition(":")
    if sep and head and Path(head).suffix.lower() in LABEL_SUFFIXES and tail:
        return Path(head).expanduser(), [c.strip() for c in tail.split(",")]
    return Path(spec).expanduser(), None


def _sniff(path, sample):
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_text_table(path):
    """``(columns, {column: list of str})`` of a delimited text table."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not a UTF-8 text table ({exc.reason}).") from exc
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    header = text.split("\n", 1)[0]
    delimiter = _sniff(path, "\n".join(text.splitlines()[:50]) if header else "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = list(reader)
    if not rows or not any(c.strip() for c in rows[0]):
        kind = "CSV" if path.suffix.lower() == ".csv" else "table"
        raise DataFileError(f"{path}: empty {kind} file (no header row).")
    columns = [c.strip() for c in rows[0]]
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise DataFileError(f"{path}: no data rows under the header.")
    for i, r in enumerate(body):
        if len(r) != len(columns):
            raise DataFileError(
                f"{path}: line {i + 2} has {len(r)} fields but the header has "
                f"{len(columns)} (delimiter {delimiter!r})."
            )
    return columns, {c: [r[j] for r in body] for j, c in enumerate(columns)}


def _read_parquet_table(path, wanted):
    require("pyarrow", f"reading labels from {path}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        columns = list(pf.schema_arrow.names)
        present = [c for c in wanted if c in columns] if wanted else columns
        table = pf.read(columns=present)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({exc}).") from exc
    data = {}
    for c in present:
        col = table.column(c).combine_chunks()
        values = col.to_numpy(zero_copy_only=False)
        if col.null_count:
            mask = col.is_null().to_numpy(zero_copy_only=False)
            values = np.where(mask, "", values.astype(str)).tolist()
        data[c] = values
    return columns, data


def _parse(values, where, uncertain, first_line=None):
    """One column's cells -> numbers (ints if whole) or strings, per the policy.

    ``where`` is ``(file, column)``; ``first_line`` is the line number of the
    first cell in a text table (rows are counted from 0 otherwise).
    """
    where, column = where

    def at(i):
        return f"on line {i + first_line}" if first_line is not None else f"in row {i}"

    cells = [v.strip() if isinstance(v, str) else v for v in values]
    blank = np.array([_is_missing(v) for v in cells], dtype=bool)
    if blank.any() and uncertain is None:
        rows = np.flatnonzero(blank)
        seen = sorted({_spelling(cells[i]) for i in rows[:50]})
        raise DataFileError(
            f"{where}: column {column!r}: {rows.size} missing label(s) {_list_rows(rows, at)} "
            f"(written {', '.join(seen)}); a missing label is never a class: fill or drop those "
            "rows, or, for CheXpert-style labels (1, 0, -1, blank = not mentioned), choose a "
            "policy with uncertain='zero'|'one'|'ignore' (--uncertain)."
        )
    try:
        nums = np.array([0.0 if b else float(v) for v, b in zip(cells, blank)])
    except (TypeError, ValueError):
        if uncertain is not None:
            raise DataFileError(
                f"{where}: column {column!r}: CheXpert-style labels must be 1, 0, -1 or "
                f"blank; found "
                f"{next(v for v, b in zip(cells, blank) if not b and not _is_number(v))!r}."
            ) from None
        return np.asarray([str(v) for v in cells]), False
    if np.isinf(nums).any():
        rows = np.flatnonzero(np.isinf(nums))
        raise DataFileError(
            f"{where}: column {column!r}: {rows.size} label(s) are infinite "
            f"{_list_rows(rows, at)}; labels must be finite class values."
        )
    if uncertain is not None:
        odd = ~np.isin(nums, (-1.0, 0.0, 1.0))
        if odd.any():
            raise DataFileError(
                f"{where}: column {column!r}: CheXpert-style labels must be 1, 0, -1 or "
                f"blank; found {nums[odd][0]:g} {at(int(np.flatnonzero(odd)[0]))}."
            )
        unc = nums == -1
        nums[unc] = {"zero": 0.0, "one": 1.0, "ignore": np.nan}[uncertain]
        return nums, True
    if np.isnan(nums).any():
        row = int(np.flatnonzero(np.isnan(nums))[0])
        raise DataFileError(f"{where}: column {column!r}: missing (NaN) label {at(row)}.")
    return nums, True


def _is_number(v):
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _whole(arr):
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    return arr


def _join(table_ids, ids, where, id_column):
    """Row of the table for each embedding id."""
    table_ids = np.asarray([str(v).strip() for v in table_ids])
    ids = np.asarray(ids).astype(str)
    uniq, counts = np.unique(table_ids, return_counts=True)
    if (counts > 1).any():
        raise DataFileError(
            f"{where}: id column {id_column!r} repeats {int((counts > 1).sum())} id(s) "
            f"(first: {uniq[counts > 1][0]!r}); ids must be unique to join."
        )
    order = np.argsort(table_ids)
    pos = np.searchsorted(table_ids[order], ids)
    pos = np.minimum(pos, len(order) - 1)
    hit = table_ids[order][pos] == ids
    if not hit.all():
        miss = ids[~hit]
        raise DataFileError(
            f"{where}: {miss.size} of {ids.size} embedding id(s) have no row in column "
            f"{id_column!r} (first: {miss[0]!r})."
        )
    return order[pos]


@validate_params(
    {
        "source": [str, os.PathLike],
        "n_rows": [Interval(Integral, 0, None, closed="left"), None],
        "columns": ["array-like", None],
        "id_column": [str, None],
        "ids": ["array-like", None],
        "uncertain": [StrOptions(set(_POLICIES)), None],
    },
    prefer_skip_nested_validation=True,
)
def load_labels(source, n_rows=None, *, columns=None, id_column=None, ids=None, uncertain=None):
    r"""Read labels from a table or array file, by position or joined by id.

    Parameters
    ----------
    source : path-like or str
        ``FILE`` or ``FILE:COLUMN[,COLUMN...]``: a CSV/TSV/TXT table (the
        delimiter -- comma, semicolon, tab or bar -- is sniffed), a Parquet
        table (``skgap[arrow]``), a ``.npy`` or an ``.npz`` with an array
        ``labels`` (or the array named as ``FILE.npz:NAME``).
    n_rows : int, default=None
        Rows the labels must have (checked after the join).
    columns : list of str, default=None
        Label columns (overrides those in ``source``); several make a
        multi-label target. A table with one column besides ``id_column``
        needs none.
    id_column : str, default=None
        Column holding row ids; with ``ids``, row ``i`` of the result is the
        table row whose id is ``ids[i]``.
    ids : array-like, default=None
        The id of each embedding row.
    uncertain : {'zero', 'one', 'ignore'} or None, default=None
        Policy for CheXpert-style labels (1, 0, -1 = uncertain, blank); see
        the module notes. ``None``: values are taken as they are and a blank
        cell is an error. ``'ignore'`` marks uncertain entries NaN (the
        caller drops those rows; :func:`load_embeddings` does).

    Returns
    -------
    y : ndarray of shape (n,) or (n, n_labels)
        Integers when every value is whole, floats otherwise, strings for
        text labels.

    Raises
    ------
    DataFileError
        The message names the file, the column and the problem.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "chexpert.csv")
    >>> _ = open(path, "w").write("Path;Edema;Effusion\na.jpg;1;-1\nb.jpg;;0\nc.jpg;-1;1\n")
    >>> load_labels(path + ":Edema,Effusion", uncertain="one").tolist()
    [[1, 1], [0, 0], [1, 1]]
    >>> load_labels(path + ":Edema", uncertain="zero", id_column="Path",
    ...             ids=["c.jpg", "a.jpg"]).tolist()
    [0, 1]
    """
    if uncertain is not None and uncertain not in _POLICIES:
        raise ValueError(f"uncertain must be one of {_POLICIES} or None, got {uncertain!r}.")
    path, spec_columns = split_label_spec(source)
    columns = list(columns) if columns is not None else spec_columns
    if not path.is_file():
        raise DataFileError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    where = str(path)
    if suffix in (".npy", ".npz"):
        if id_column is not None:
            raise DataFileError(f"{path}: an array file has no columns to join on {id_column!r}.")
        name = columns[0] if columns else "labels"
        try:
            if suffix == ".npz":
                with np.load(path, allow_pickle=False) as f:
                    if name not in f.files:
                        raise DataFileError(
                            f"{path}: no array {name!r} (found: {sorted(f.files)}); labels "
                            "can be a .npy, FILE.npz[:NAME] or a table FILE:COLUMN."
                        )
                    where = f"{path}[{name!r}]"
                    y = f[name]
            else:
                y = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataFileError(f"{where}: not a readable NumPy file ({exc}).") from exc
        return _check_labels(y, n_rows, where, uncertain)
    if suffix in (".parquet", ".pq"):
        all_columns, data = _read_parquet_table(path, (columns or []) + ([id_column] if id_column else []))
    else:
        all_columns, data = _read_text_table(path)
    label_columns = columns
    if label_columns is None:
        rest = [c for c in all_columns if c != id_column]
        if len(rest) != 1:
            raise DataFileError(
                f"{path}: {len(rest)} candidate columns; name the label column as {path}:COLUMN "
                f"(columns: {', '.join(all_columns)})."
            )
        label_columns = rest
    missing = [c for c in label_columns + ([id_column] if id_column else []) if c not in all_columns]
    if missing:
        raise DataFileError(
            f"{path}: no column(s) {', '.join(map(repr, missing))} (columns: {', '.join(all_columns)})."
        )
    first_line = None if suffix in (".parquet", ".pq") else 2
    parsed = [_parse(data[c], (path, c), uncertain, first_line) for c in label_columns]
    if len(parsed) > 1 and not all(numeric for _, numeric in parsed):
        raise DataFileError(
            f"{path}: multi-label columns {', '.join(label_columns)} must hold 0/1 numbers."
        )
    if len(parsed) > 1:
        for c, (values, _) in zip(label_columns, parsed):
            _check_binary(values, f"{path}: column {c!r}", uncertain,
                          lambda i: _at_line(i, first_line))
    y = parsed[0][0] if len(parsed) == 1 else np.column_stack([p for p, _ in parsed])
    y = _whole(y)
    if id_column is not None:
        if ids is None:
            raise DataFileError(
                f"{path}: id column {id_column!r} given but the embeddings carry no ids to join."
            )
        y = y[_join(data[id_column], ids, str(path), id_column)]
    return _check_labels(y, n_rows, where, uncertain)


def _at_line(i, first_line=None):
    return f"on line {i + first_line}" if first_line is not None else f"in row {i}"


def _check_binary(values, where, uncertain, at=_at_line):
    """Refuse multi-label values other than 0 and 1 (NaN marks 'ignore'd ones)."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return
    if values.dtype.kind not in "iuf":
        raise DataFileError(
            f"{where}: multi-label columns must hold 0/1 numbers, got {values.dtype}."
        )
    ok = np.isin(values, (0, 1))
    if uncertain == "ignore" and values.dtype.kind == "f":
        ok |= np.isnan(values)
    if not ok.all():
        bad = np.flatnonzero(~ok.reshape(values.shape[0], -1).all(axis=1))
        found = np.unique(values[~ok])[:5]
        raise DataFileError(
            f"{where}: multi-label columns must hold 0/1; found "
            f"{', '.join(f'{v:g}' for v in found)} {_list_rows(bad, at)}."
        )


def _check_labels(y, n_rows, where, uncertain=None):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim not in (1, 2):
        raise DataFileError(
            f"{where}: labels must be 1-D (one class per row) or 2-D (multi-label 0/1 "
            f"columns), got shape {y.shape}."
        )
    if y.dtype.kind not in "biufUS":
        raise DataFileError(f"{where}: labels must be numbers or strings, got dtype {y.dtype}.")
    if n_rows is not None and y.shape[0] != n_rows:
        raise DataFileError(f"{where}: {y.shape[0]} labels for {n_rows} embedding rows.")
    if y.dtype.kind == "f":
        flat = y.reshape(y.shape[0], -1)
        inf = np.isinf(flat).any(axis=1)
        if inf.any():
            rows = np.flatnonzero(inf)
            raise DataFileError(
                f"{where}: {rows.size} label(s) are infinite {_list_rows(rows, _at_line)}; labels "
                "must be finite class values."
            )
        if uncertain != "ignore" and np.isnan(flat).any():
            rows = np.flatnonzero(np.isnan(flat).any(axis=1))
            raise DataFileError(
                f"{where}: {rows.size} missing (NaN) label(s) {_list_rows(rows, _at_line)}; a "
                "missing label is never a class: fill or drop those rows."
            )
    elif y.dtype.kind in "US" and y.size:
        missing = np.frompyfunc(_is_missing, 1, 1)(y).astype(bool).reshape(y.shape[0], -1)
        if missing.any():
            rows = np.flatnonzero(missing.any(axis=1))
            seen = sorted({_spelling(v) for v in y.reshape(y.shape[0], -1)[missing][:50]})
            raise DataFileError(
                f"{where}: {rows.size} missing label(s) {_list_rows(rows, _at_line)} (written "
                f"{', '.join(seen)}); a missing label is never a class: fill or drop those rows."
            )
    if y.ndim == 2:
        _check_binary(y, where, uncertain)
    return y


def apply_labels(labels, n_rows, *, extra=None, id_key=None, id_column=None, uncertain=None,
                 where="the embeddings"):
    """Labels for the rows of an embeddings file, and the rows to keep.

    ``extra(name)`` reads another array of the embeddings file (or a column
    of a clip-retrieval archive's metadata); ``None`` when there is none.

    Returns
    -------
    y : ndarray or None
    keep : ndarray of bool or None
        Rows to keep (``uncertain='ignore'`` drops rows with an uncertain
        label); ``None`` keeps all.
    """
    keys = getattr(extra, "keys", None)
    if labels is None:
        if extra is not None and keys is not None and "labels" in keys:
            y = _check_labels(extra("labels"), n_rows, f"{where}['labels']")
        else:
            return None, None
    elif isinstance(labels, (str, Path)) or hasattr(labels, "__fspath__"):
        path, _ = split_label_spec(labels)
        if path.is_file():
            ids = None
            if id_column is not None:
                if extra is None:
                    raise DataFileError(
                        f"{where}: holds no ids to join the labels on {id_column!r}."
                    )
                ids = extra(id_key or id_column)
            y = load_labels(labels, n_rows, id_column=id_column, ids=ids, uncertain=uncertain)
        elif extra is not None and (keys is None or str(labels) in keys):
            name = str(labels)
            values = extra(name)
            if values.dtype.kind in "OUS" or uncertain is not None:
                values, _ = _parse(list(values), (where, name), uncertain)
            y = _check_labels(_whole(np.asarray(values)), n_rows, f"{where}[{name!r}]", uncertain)
        else:
            raise DataFileError(
                f"{labels}: no such label file"
                + (f", and {where} has no array {str(labels)!r}" if extra is not None else "")
                + "."
            )
    else:
        y = _check_labels(labels, n_rows, "labels", uncertain)
    if y.dtype.kind == "f" and np.isnan(y).any():
        keep = ~np.isnan(y.reshape(y.shape[0], -1)).any(axis=1)
        y = _whole(y[keep])
        return y, keep
    return y, None
