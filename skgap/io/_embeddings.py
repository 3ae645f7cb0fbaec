"""One loader from the files researchers keep to paired embeddings ``X = [V | T]``."""

import os
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._core._layout import pair
from ._archive import ClipRetrievalArchive, is_clip_retrieval_folder
from ._blocks import check_block
from ._errors import DataFileError, KeyChoiceWarning
from ._labels import apply_labels
from ._sources import open_source
from ._texts import apply_texts

__all__ = ["IMAGE_KEYS", "TEXT_KEYS", "iter_embeddings", "load_embeddings", "resolve_keys"]

#: Names recognised as the image embeddings, in order of preference.
IMAGE_KEYS = (
    "image", "images", "image_embeddings", "image_embedding", "image_embeds", "image_emb",
    "image_features", "img_emb", "img_embs", "img_embeddings", "img_features", "img",
    "vision_emb", "vision_embeddings", "vision_embeds", "vision_features", "visual_emb",
    "visual_embeddings", "visual_features", "V",
)
#: Names recognised as the text embeddings, in order of preference.
TEXT_KEYS = (
    "text", "texts", "text_embeddings", "text_embedding", "text_embeds", "text_emb",
    "text_features", "txt_emb", "txt_embs", "txt_embeddings", "txt_features", "txt",
    "caption_emb", "caption_embeddings", "report_emb", "report_embeddings",
    "language_emb", "language_embeddings", "T",
)


def _match(keys, wanted, aliases):
    """The key of ``keys`` that names ``wanted`` (given) or one of ``aliases``."""
    if wanted is not None:
        if wanted in keys:
            return wanted
        return None
    # Match on the last path component (HDF5 'emb/image'), case-insensitively.
    by_name = {}
    for k in keys:
        by_name.setdefault(k.rsplit("/", 1)[-1].lower(), []).append(k)
    for alias in aliases:
        hits = by_name.get(alias.lower(), [])
        if len(hits) == 1:
            return hits[0]
    return None


def resolve_keys(keys, image_key=None, text_key=None, where="the file"):
    """Choose the image and text arrays among ``keys``.

    Named keys must exist. Otherwise ``image``/``text`` are taken, then the
    first of :data:`IMAGE_KEYS`/:data:`TEXT_KEYS` present; a choice made by
    alias is reported with a :class:`KeyChoiceWarning`.

    Returns
    -------
    image_key, text_key : str

    Raises
    ------
    DataFileError
        A named key is missing, or no key could be recognised.
    """
    keys = list(keys)
    found = ", ".join(map(repr, keys)) or "none"
    chosen = []
    for modality, given, aliases, option in (
        ("image", image_key, IMAGE_KEYS, "image_key"),
        ("text", text_key, TEXT_KEYS, "text_key"),
    ):
        key = _match(keys, given, aliases)
        if key is None:
            if given is not None:
                raise DataFileError(f"{where}: no array {given!r} for the {modality}s (found: {found}).")
            raise DataFileError(
                f"{where}: no {modality} embeddings under a known name (found: {found}); "
                f"name the array with {option}= (--{option.replace('_', '-')} on the command line)."
            )
        chosen.append(key)
    if chosen[0] == chosen[1]:
        raise DataFileError(f"{where}: the same array {chosen[0]!r} was chosen for images and texts.")
    guessed = [
        f"{m} embeddings from {k!r}"
        for m, k, given in zip(("image", "text"), chosen, (image_key, text_key))
        if given is None and k != m
    ]
    if guessed:
        warnings.warn(
            f"{where}: read {' and '.join(guessed)} (recognised names; pass image_key= / "
            "text_key= to choose others).",
            KeyChoiceWarning,
            stacklevel=3,
        )
    return tuple(chosen)


def _is_path(p):
    return isinstance(p, str) or hasattr(p, "__fspath__")


def _paths(path):
    if _is_path(path):
        return [Path(path).expanduser()]
    if not isinstance(path, (list, tuple)):
        raise TypeError(
            "path must be a path (str or path-like) or a list of two paths (images, texts); "
            f"got {type(path).__name__}."
        )
    for p in path:
        if not _is_path(p):
            raise TypeError(
                f"path must be a path or a list of two paths (images, texts); the list holds "
                f"a {type(p).__name__} ({p!r})."
            )
    paths = [Path(p).expanduser() for p in path]
    if len(paths) not in (1, 2):
        raise DataFileError(
            f"expected one embeddings file or folder, or two .npy files (images, texts); "
            f"got {len(paths)} files."
        )
    return paths


def _two_blocks(paths, image_key, text_key, mmap):
    """``(V, T, where, extra)`` from the files; ``extra`` reads other arrays by name."""
    if len(paths) == 2:
        blocks = []
        for p in paths:
            with open_source(p, mmap=mmap) as src:
                if src.array is None:
                    raise DataFileError(
                        f"{p}: two files must each hold one array (.npy or a bare tensor); "
                        f"this one holds named arrays {list(src.keys)}; give it alone."
                    )
                blocks.append(src.array)
        return blocks[0], blocks[1], (str(paths[0]), str(paths[1])), None
    path = paths[0]
    if path.is_dir():
        if not is_clip_retrieval_folder(path):
            raise DataFileError(
                f"{path}: is a folder but not a clip-retrieval archive (img_emb/, text_emb/)."
            )
        archive = ClipRetrievalArchive(path)
        Vs, Ts = [], []
        for V, T, where, start in archive.iter_blocks():
            Vs.append(check_block(V, where + " (images)", min_rows=1, first_row=start))
            Ts.append(check_block(T, where + " (texts)", min_rows=1, first_row=start))
        return np.concatenate(Vs), np.concatenate(Ts), (str(path),) * 2, archive.metadata_column
    with open_source(path, mmap=mmap) as src:
        if src.array is not None:
            arr = src.array
            if arr.ndim != 3 or arr.shape[0] != 2:
                raise DataFileError(
                    f"{path}: a single array must have shape (2, n_items, dim) (images, "
                    f"texts); got {arr.shape}. Give two files for separate image and text "
                    "arrays."
                )
            return arr[0], arr[1], (f"{path}[0]", f"{path}[1]"), None
        ik, tk = resolve_keys(src.keys, image_key, text_key, where=str(path))
        V, T = src.get(ik), src.get(tk)
        keys = src.keys
    def extra(name):
        if name not in keys:
            raise DataFileError(f"{path}: no array {name!r} (found: {', '.join(map(repr, keys))}).")
        with open_source(path, mmap=mmap) as s:
            return s.get(name)
    extra.keys = keys
    return V, T, (src.where(ik), src.where(tk)), extra


_LABEL_POLICY = [StrOptions({"zero", "one", "ignore"}), None]


@validate_params(
    {
        "path": [str, os.PathLike, list, tuple],
        "image_key": [str, None],
        "text_key": [str, None],
        "labels": [str, os.PathLike, "array-like", None],
        "mmap": ["boolean"],
        "id_key": [str, None],
        "id_column": [str, None],
        "uncertain": _LABEL_POLICY,
    },
    prefer_skip_nested_validation=True,
)
def load_embeddings(
    path,
    image_key=None,
    text_key=None,
    labels=None,
    mmap=True,
    *,
    id_key=None,
    id_column=None,
    uncertain=None,
    texts=None,
):
    r"""Load paired image and text embeddings from the files researchers keep.

    Parameters
    ----------
    path : path-like or sequence of two path-likes
        One of

        - ``.npz`` -- only the two embedding arrays (and ``labels``/ids when
          asked) are read; other members, object arrays included, are never
          decoded;
        - ``.npy`` of shape ``(2, n, d)``, or two ``.npy`` files of shape
          ``(n, d)`` (images, texts);
        - ``.pt``/``.pth`` -- a dict of tensors, loaded with
          ``weights_only=True`` (never unpickles code); needs ``skgap[torch]``;
        - ``.safetensors`` (``skgap[safetensors]``);
        - ``.h5``/``.hdf5`` datasets, found by their path (``skgap[hdf5]``);
        - ``.parquet``/``.arrow``/``.feather`` tables whose embedding columns
          are lists or fixed-size lists of numbers (``skgap[arrow]``);
        - a clip-retrieval folder (``img_emb/img_emb_N.npy``,
          ``text_emb/text_emb_N.npy``, ``metadata/metadata_N.parquet``).
    image_key, text_key : str, default=None
        Names of the two arrays (columns, datasets). ``None`` takes
        ``image``/``text``, else a recognised alias (:data:`IMAGE_KEYS`,
        :data:`TEXT_KEYS`: ``img_emb``, ``vision_emb``, ``text_emb``, ...),
        with a :class:`KeyChoiceWarning` saying which were used.
    labels : str, path-like, array-like or None, default=None
        Where the labels are: an array; the name of an array or column of
        the same file (or of a clip-retrieval archive's metadata); or a label
        file ``FILE`` or ``FILE:COLUMN[,COLUMN...]`` (CSV/TSV with sniffed
        delimiter, Parquet, ``.npy``, ``.npz``), see
        :func:`~skgap.io.load_labels`. ``None`` uses the file's own
        ``labels`` array when it has one.
    mmap : bool, default=True
        Memory-map ``.npy`` files, archive shards, torch files and Arrow
        files instead of reading them whole first.
    id_key : str, default=None
        Array or column of this file holding the row ids to join a label
        table on; defaults to ``id_column``.
    id_column : str, default=None
        Column of the label table holding the ids: labels are then matched
        to rows by id, not by position.
    uncertain : {'zero', 'one', 'ignore'} or None, default=None
        CheXpert-style label policy, see :func:`~skgap.io.load_labels`.
        With ``'ignore'`` the rows with an uncertain label are dropped from
        both ``X`` and ``y``.
    texts : str or path-like, default=None
        Where the text of each row (caption, report) is: the name of a
        string array or column of the same file (an ``.npz`` member saved as
        ``np.array(texts, dtype=str)``, a Parquet/Arrow column, the
        ``caption`` column of a clip-retrieval archive's metadata), or a
        table ``FILE:COLUMN`` (CSV/TSV/Parquet), by position or joined on
        ``id_column``. When given, the texts are returned as a fourth value.

    Returns
    -------
    X : ndarray of shape (n, d_image + d_text)
        ``[V | T]`` in the files' float dtype (float16 and integers become
        float32).
    y : ndarray of shape (n,) or (n, n_labels), or None
    modality_dims : tuple of int
        ``(d_image, d_text)``.
    texts : ndarray of object, shape (n,)
        Only with ``texts=``: one non-empty ``str`` per row of ``X``.

    Raises
    ------
    DataFileError
        A file, key or value that cannot be used; the message names the
        file, the key and the problem.
    ImportError
        An optional reader is missing; the message names the skgap extra.

    See Also
    --------
    iter_embeddings : The same files in chunks, for :meth:`ConeStats.partial_fit`.

    Examples
    --------
    >>> import numpy as np, tempfile, os, warnings
    >>> from skgap.io import load_embeddings
    >>> rng = np.random.default_rng(0)
    >>> path = os.path.join(tempfile.mkdtemp(), "emb.npz")
    >>> np.savez(path, vision_emb=rng.normal(size=(5, 4)).astype("float32"),
    ...          text_emb=rng.normal(size=(5, 4)).astype("float32"),
    ...          names=np.array(["a", "b", "c", "d", "e"], dtype=object))
    >>> with warnings.catch_warnings(record=True) as notes:
    ...     warnings.simplefilter("always")
    ...     X, y, dims = load_embeddings(path)
    >>> X.shape, X.dtype, y, dims
    ((5, 8), dtype('float32'), None, (4, 4))
    >>> print(str(notes[0].message).split(": ", 1)[1])
    read image embeddings from 'vision_emb' and text embeddings from 'text_emb' (recognised names; pass image_key= / text_key= to choose others).
    """
    paths = _paths(path)
    V, T, (where_v, where_t), extra = _two_blocks(paths, image_key, text_key, mmap)
    V = check_block(V, where_v)
    T = check_block(T, where_t)
    if V.shape[0] != T.shape[0]:
        raise DataFileError(
            f"{where_v.split('[')[0]}: {V.shape[0]} image rows but {T.shape[0]} text rows "
            f"({where_v} and {where_t}); row i of each must be the same pair."
        )
    n = V.shape[0]
    if V.dtype != T.dtype:
        dtype = np.result_type(V.dtype, T.dtype)
        V, T = V.astype(dtype, copy=False), T.astype(dtype, copy=False)
    X = pair(V, T)
    dims = (V.shape[1], T.shape[1])
    y, keep = apply_labels(
        labels, n, extra=extra, id_key=id_key, id_column=id_column, uncertain=uncertain,
        where=" and ".join(dict.fromkeys((where_v.split("[")[0], where_t.split("[")[0]))),
    )
    if texts is not None:
        texts = apply_texts(texts, n, extra=extra, id_key=id_key, id_column=id_column,
                            where=where_v.split("[")[0])
    if keep is not None:
        X = X[keep]
        texts = None if texts is None else texts[keep]
    if texts is not None:
        return X, y, dims, texts
    return X, y, dims


@validate_params(
    {
        "path": [str, os.PathLike, list, tuple],
        "image_key": [str, None],
        "text_key": [str, None],
        "chunk_rows": [Interval(Integral, 1, None, closed="left")],
        "mmap": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def iter_embeddings(path, image_key=None, text_key=None, *, chunk_rows=65536, mmap=True):
    """Paired embeddings in chunks of rows, for out-of-core statistics.

    A clip-retrieval folder is read shard by shard from memory maps, so only
    one chunk is in memory at a time; other formats are loaded with
    :func:`load_embeddings` and cut into chunks.

    Parameters
    ----------
    path, image_key, text_key
        As for :func:`load_embeddings`.
    chunk_rows : int, default=65536
        Rows per chunk, at most.
    mmap : bool, default=True
        As for :func:`load_embeddings`.

    Returns
    -------
    n_rows : int
        Rows over all chunks (for a progress bar).
    modality_dims : tuple of int
    chunks : iterator of ndarray of shape (n_chunk, d_image + d_text)

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skgap import ConeStats
    >>> rng = np.random.default_rng(0)
    >>> path = os.path.join(tempfile.mkdtemp(), "pairs.npy")
    >>> np.save(path, rng.normal(size=(2, 5, 4)).astype("float32"))
    >>> n, dims, chunks = iter_embeddings(path, chunk_rows=2)
    >>> stats = ConeStats()
    >>> for X in chunks:
    ...     _ = stats.partial_fit(X)
    >>> n, dims, stats.n_samples_
    (5, (4, 4), 5)
    """
    paths = _paths(path)
    if len(paths) == 1 and is_clip_retrieval_folder(paths[0]):
        archive = ClipRetrievalArchive(paths[0])

        def chunks():
            for V, T, where, start in archive.iter_blocks(chunk_rows):
                V = check_block(V, where + " (images)", min_rows=1, first_row=start)
                T = check_block(T, where + " (texts)", min_rows=1, first_row=start)
                if V.dtype != T.dtype:
                    dtype = np.result_type(V.dtype, T.dtype)
                    V, T = V.astype(dtype, copy=False), T.astype(dtype, copy=False)
                yield pair(V, T)

        return archive.n_rows, archive.modality_dims, chunks()
    X, _, dims = load_embeddings(paths, image_key, text_key, mmap=mmap)
    return X.shape[0], dims, (X[i : i + chunk_rows] for i in range(0, X.shape[0], chunk_rows))
