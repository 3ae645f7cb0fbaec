"""The paired layout: modality blocks side by side in one 2-D array.

Paired embeddings travel as ``X = [V | T]`` (image block first, text block
second, or more blocks for more modalities) so that scikit-learn's row-wise
machinery -- :class:`~sklearn.pipeline.Pipeline`, cross-validation splitters,
:class:`~sklearn.model_selection.GridSearchCV` -- keeps the members of a pair
together.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["PairedArray", "carried_modality_dims", "pair", "unpair"]


class PairedArray(np.ndarray):
    """A paired array that carries the widths of its blocks.

    :func:`pair` returns one when the blocks differ in width, so that an
    estimator left at ``modality_dims=None`` reads the true widths instead of
    splitting the columns down the middle. Row selections (cross-validation
    splits, ``X[train]``) keep the widths; anything that changes the number of
    columns drops them.

    Attributes
    ----------
    modality_dims : tuple of int or None
    """

    def __array_finalize__(self, obj):
        dims = getattr(obj, "modality_dims", None)
        if dims is not None and (self.ndim != 2 or self.shape[1] != sum(dims)):
            dims = None
        self.modality_dims = dims

    def __reduce__(self):
        # ndarray pickles its data alone; the widths ride along in the state.
        constructor, args, state = super().__reduce__()
        return constructor, args, (state, self.modality_dims)

    def __setstate__(self, state):
        base, dims = state
        super().__setstate__(base)
        self.modality_dims = dims


def carried_modality_dims(X):
    """The block widths ``X`` carries (a :class:`PairedArray` from :func:`pair`), else None."""
    return getattr(X, "modality_dims", None) if isinstance(X, PairedArray) else None


def check_carried_dims(modality_dims, carried, owner="the estimator"):
    """``modality_dims`` where given, else the widths ``X`` carries; refuse a contradiction."""
    if carried is None:
        return modality_dims
    if modality_dims is None:
        return carried
    given = tuple(int(d) for d in np.asarray(modality_dims).ravel().tolist())
    if given != tuple(carried):
        raise ValueError(
            f"X was paired from blocks of widths {tuple(carried)}, but {owner} has "
            f"modality_dims={given}; leave modality_dims=None to use the widths of X."
        )
    return modality_dims


def resolve_modality_dims(
    n_features, modality_dims=None, n_modalities=2, *, shared_space=None, min_blocks=1
):
    """Return the width of each modality block as a tuple of ints.

    Parameters
    ----------
    n_features : int
        Width of the paired array.
    modality_dims : sequence of int or None
        Width of each block, in order. ``None`` means ``n_modalities`` blocks
        of equal width.
    n_modalities : int, default=2
        Number of blocks when ``modality_dims`` is None.
    shared_space : str or None, default=None
        When given, every block must have the same width (the caller compares
        the modalities in one space); the string names the caller in the error.

    Returns
    -------
    dims : tuple of int

    Raises
    ------
    ValueError
        If the widths cannot describe an array of ``n_features`` columns.
    """
    dims = _resolve(n_features, modality_dims, n_modalities)
    if len(dims) < min_blocks:
        raise ValueError(
            f"modality_dims={dims} describes {len(dims)} modality block(s), but at least "
            f"{min_blocks} are needed: the gap lies between modalities, so one block has "
            "no gap. Give the width of every block, "
            "e.g. modality_dims=(d_image, d_text)."
        )
    if shared_space is not None and len(set(dims)) != 1:
        raise ValueError(
            f"{shared_space} compares modalities in one shared space, so all blocks need "
            f"the same width; got modality_dims={dims}. Map the spaces onto each other "
            "first (e.g. with AnchorAffineAligner)."
        )
    return dims


def _resolve(n_features, modality_dims, n_modalities):
    if modality_dims is None:
        if n_modalities < 1:
            raise ValueError(f"n_modalities must be >= 1, got {n_modalities}.")
        if n_features % n_modalities != 0:
            raise ValueError(
                f"X has {n_features} columns, which cannot be split into "
                f"{n_modalities} modality blocks of equal width; pass "
                "modality_dims=(d_1, ..., d_m) giving the width of each block."
            )
        return (n_features // n_modalities,) * n_modalities
    if isinstance(modality_dims, (str, bytes)) or any(
        isinstance(d, (bool, np.bool_)) for d in np.ravel(np.asarray(modality_dims, dtype=object))
    ):
        # np.asarray((True, 15)) is array([1, 15]): a flag would pass as a width.
        raise ValueError(
            f"modality_dims must be a sequence of integer block widths, got {modality_dims!r}."
        )
    dims = np.asarray(modality_dims)
    if dims.ndim != 1 or dims.size < 1:
        raise ValueError(
            f"modality_dims must be a 1-D sequence of block widths, got {modality_dims!r}."
        )
    if not all(isinstance(d, Integral) or float(d).is_integer() for d in dims.tolist()):
        raise ValueError(f"modality_dims must hold integers, got {modality_dims!r}.")
    dims = tuple(int(d) for d in dims.tolist())
    if any(d < 1 for d in dims):
        raise ValueError(f"modality_dims must be positive widths, got {dims}.")
    if sum(dims) != n_features:
        raise ValueError(
            f"modality_dims={dims} sums to {sum(dims)} but X has {n_features} "
            "columns; the block widths must add up to the width of X."
        )
    return dims


def block_slices(dims):
    """Column slices of the blocks described by ``dims``."""
    edges = np.concatenate([[0], np.cumsum(dims)]).tolist()
    return tuple(slice(a, b) for a, b in zip(edges[:-1], edges[1:]))


def _dense_numeric(a, name, caller):
    """``np.asarray(a)``, refusing sparse matrices and non-numeric dtypes by name."""
    if hasattr(a, "toarray") or type(a).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix ({type(a).__name__}); {caller}() takes dense "
            "embeddings. Convert it with .toarray() first."
        )
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {arr.dtype}; {caller}() takes arrays of real numbers "
            "(bool, integer or floating)."
        )
    return arr


def pair(*blocks):
    """Stack modality blocks side by side into one paired array.

    Row ``i`` of every block must describe the same item (for instance an
    image and its report). The result is ``X = [B_1 | B_2 | ... | B_m]``.

    Parameters
    ----------
    *blocks : array-like of shape (n_samples, d_m)
        One 2-D array per modality, all with the same number of rows.

    Returns
    -------
    X : ndarray of shape (n_samples, sum_m d_m)
        The paired array, in the common floating dtype of the blocks
        (float32 blocks stay float32). Blocks of different widths give a
        :class:`PairedArray` that carries them: an estimator left at
        ``modality_dims=None`` reads them (through ``Pipeline`` and the row
        splits of cross-validation), and one given other widths refuses it.
        A plain array carries no widths: it is read as equal blocks unless
        ``modality_dims`` says otherwise.

    See Also
    --------
    unpair : The inverse operation.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap import pair, unpair
    >>> V = np.ones((3, 2), dtype=np.float32)
    >>> T = np.zeros((3, 2), dtype=np.float32)
    >>> X = pair(V, T)
    >>> X.shape, X.dtype
    ((3, 4), dtype('float32'))
    >>> [b.shape for b in unpair(X)]
    [(3, 2), (3, 2)]
    """
    if len(blocks) < 1:
        raise ValueError("pair() needs at least one block.")
    arrays = []
    for m, b in enumerate(blocks):
        a = _dense_numeric(b, f"Block {m}", "pair")
        if a.ndim != 2:
            raise ValueError(
                f"Block {m} must be 2-D (n_samples, n_features); got shape {a.shape}."
            )
        arrays.append(a)
    n_rows = {a.shape[0] for a in arrays}
    if len(n_rows) != 1:
        raise ValueError(
            "All blocks must have the same number of rows (one row per pair); got "
            + ", ".join(f"block {m}: {a.shape[0]}" for m, a in enumerate(arrays))
            + "."
        )
    dtype = np.result_type(*arrays)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    X = np.concatenate(arrays, axis=1, dtype=dtype)
    dims = tuple(a.shape[1] for a in arrays)
    if len(set(dims)) == 1:
        return X
    # Unequal widths cannot be read off the array's shape: the array carries them.
    X = X.view(PairedArray)
    X.modality_dims = dims
    return X


@validate_params(
    {
        # Checked in the body, which names a sparse matrix and says what to do.
        "X": "no_validation",
        "modality_dims": ["array-like", None],
        # A count of blocks; booleans pass scikit-learn's Interval, so refused here.
        "n_modalities": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def unpair(X, modality_dims=None, n_modalities=2):
    """Split a paired array into its modality blocks.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Paired array ``[B_1 | ... | B_m]``.
    modality_dims : sequence of int, default=None
        Width of each block. ``None`` splits into ``n_modalities`` equal blocks.
    n_modalities : int, default=2
        Number of blocks when ``modality_dims`` is None.

    Returns
    -------
    blocks : tuple of ndarray
        Views into ``X`` (no copy for a NumPy input), one per modality.

    See Also
    --------
    pair : The inverse operation.
    """
    if isinstance(n_modalities, (bool, np.bool_)):
        raise ValueError(f"n_modalities must be an integer count of blocks, got {n_modalities!r}.")
    carried = carried_modality_dims(X)
    X = _dense_numeric(X, "X", "unpair")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
    modality_dims = check_carried_dims(modality_dims, carried, "unpair()")
    dims = resolve_modality_dims(X.shape[1], modality_dims, n_modalities)
    return tuple(X[:, s] for s in block_slices(dims))
