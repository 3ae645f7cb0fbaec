"""Cross-modal retrieval: image-to-text and text-to-image recall@k, blocked."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import validate_params

from .._core._validation import Interval, PositiveInt
from .._core._norms import check_block, normalize_rows

__all__ = ["retrieval_recall_at_k"]

#: Scores per block of the similarity matrix: 2**24 float32 values = 64 MiB.
_BLOCK_ELEMENTS = 2**24


def _check_ks(k):
    if isinstance(k, Integral) or np.ndim(k) == 0:
        ks = (k,)
    else:
        ks = tuple(k)
    if not ks:
        raise ValueError("k must hold at least one cut-off, got an empty sequence.")
    for value in ks:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"k must hold positive integers, got {k!r}.")
    return tuple(int(v) for v in ks)


def _check_groups(groups, n_images, n_texts):
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_texts:
        raise ValueError(
            f"groups must be a 1-D array with one entry per text row ({n_texts}), "
            f"got shape {groups.shape}."
        )
    if not np.issubdtype(groups.dtype, np.integer):
        if np.issubdtype(groups.dtype, np.floating) and np.all(np.mod(groups, 1) == 0):
            groups = groups.astype(np.intp)
        else:
            raise ValueError(
                f"groups must hold integer image row indices, got dtype {groups.dtype}."
            )
    if groups.size and (groups.min() < 0 or groups.max() >= n_images):
        raise ValueError(
            f"groups must index the {n_images} image rows (values in [0, {n_images - 1}]); "
            f"got values in [{groups.min()}, {groups.max()}]."
        )
    counts = np.bincount(groups, minlength=n_images)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0)
        shown = ", ".join(map(str, missing[:10])) + (", ..." if missing.size > 10 else "")
        raise ValueError(
            f"{missing.size} image row(s) have no text in groups (rows {shown}); "
            "image-to-text recall needs at least one caption per image."
        )
    return groups.astype(np.intp, copy=False)


def _block_rows(n_columns, block_size):
    if block_size is None:
        return max(1, _BLOCK_ELEMENTS // max(n_columns, 1))
    if isinstance(block_size, bool) or not isinstance(block_size, Integral) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}.")
    return int(block_size)


def _image_to_text_ranks(V, T, groups, block_size):
    """Number of negatives scored at least as high as the best positive, per image."""
    n_images = V.shape[0]
    rows = _block_rows(T.shape[0], block_size)
    ranks = np.empty(n_images, dtype=np.intp)
    for start in range(0, n_images, rows):
        stop = min(start + rows, n_images)
        S = V[start:stop] @ T.T
        if groups is None:
            idx = np.arange(stop - start)
            best = S[idx, start + idx]
            at_least = (S >= best[:, None]).sum(axis=1)
            # The positive itself is counted by ``>=``.
            ranks[start:stop] = at_least - 1
        else:
            positive = groups[None, :] == np.arange(start, stop)[:, None]
            best = np.where(positive, S, -np.inf).max(axis=1)
            ge = S >= best[:, None]
            ranks[start:stop] = ge.sum(axis=1) - (ge & positive).sum(axis=1)
    return ranks


def _text_to_image_ranks(V, T, groups, block_size):
    """Number of wrong images scored at least as high as the right one, per text."""
    n_texts = T.shape[0]
    rows = _block_rows(V.shape[0], block_size)
    ranks = np.empty(n_texts, dtype=np.intp)
    for start in range(0, n_texts, rows):
        stop = min(start + rows, n_texts)
        S = T[start:stop] @ V.T
        target = np.arange(start, stop) if groups is None else groups[start:stop]
        best = S[np.arange(stop - start), target]
        ranks[start:stop] = (S >= best[:, None]).sum(axis=1) - 1
    return ranks


@validate_params(
    {
        "V": ["array-like"],
        "T": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "groups": ["array-like", None],
        "block_size": PositiveInt(allow_none=True),
    },
    prefer_skip_nested_validation=True,
)
def retrieval_recall_at_k(V, T, k=(1, 5, 10), *, groups=None, block_size=None):
    r"""Cross-modal retrieval recall@k in both directions.

    Scores every (image, text) pair by cosine similarity and reports, for each
    cut-off :math:`k`, the fraction of queries whose right answer is among
    their :math:`k` best-scored candidates:

    .. math::

        \mathrm{R@k}_{I\to T} = \frac{1}{n_I} \sum_{i} \big[\,
            \#\{ j \notin P_i : s_{ij} \ge \max_{p \in P_i} s_{ip} \} < k \,\big],
        \qquad
        \mathrm{R@k}_{T\to I} = \frac{1}{n_T} \sum_{j} \big[\,
            \#\{ i \ne g_j : s_{ij} \ge s_{g_j j} \} < k \,\big],

    with :math:`s_{ij} = \cos(v_i, t_j)`, :math:`g_j` the image of text
    :math:`j` and :math:`P_i = \{j : g_j = i\}` the captions of image
    :math:`i`. An image query is a hit when *any* of its captions is in the
    top :math:`k` (the CLIP_benchmark convention). Ties count against the
    query, so degenerate embeddings (all equal) score zero, not one.

    Parameters
    ----------
    V : array-like of shape (n_images, d)
        Image embeddings (any norm; rows are L2-normalised).
    T : array-like of shape (n_texts, d)
        Text embeddings.
    k : int or sequence of int, default=(1, 5, 10)
        Cut-offs.
    groups : array-like of int of shape (n_texts,), default=None
        ``groups[j]`` is the row of ``V`` that text ``j`` describes (several
        captions per image). ``None`` pairs row ``i`` of ``V`` with row ``i``
        of ``T`` (then ``n_images == n_texts``).
    block_size : int or None, default=None
        Query rows per block of the similarity matrix. ``None`` picks blocks
        of about :math:`2^{24}` scores (64 MiB in float32), so memory stays
        bounded however many pairs there are; the matrix is computed in the
        precision of the input and never as one ``n x n`` float64 array.

    Returns
    -------
    recalls : dict
        ``{"image_to_text_recall@k": float, ..., "text_to_image_recall@k": float, ...}``
        for each ``k``, in [0, 1].

    See Also
    --------
    skgap.evaluate.make_retrieval_scorer : The same numbers as a scorer for
        :class:`~sklearn.model_selection.GridSearchCV`.

    Notes
    -----
    Each query needs only the score of its best positive and a count of the
    candidates scored at least as high, so ranks come from one pass over each
    block of scores: :math:`O(n_I n_T d)` time and
    :math:`O(\text{block\_size} \cdot n)` memory.

    References
    ----------
    LAION-AI, CLIP_benchmark, ``clip_benchmark/metrics/zeroshot_retrieval.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.measure import retrieval_recall_at_k
    >>> V = np.eye(3)
    >>> T = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.5]])
    >>> r = retrieval_recall_at_k(V, T, k=(1, 2))

    Every image finds its own caption first, but caption 2 is closer to
    image 0 than to image 2:

    >>> r["image_to_text_recall@1"], r["text_to_image_recall@1"]
    (1.0, 0.666...)
    >>> r["text_to_image_recall@2"]
    1.0
    """
    ks = _check_ks(k)
    V = check_block(V, "V")
    T = check_block(T, "T")
    if V.shape[1] != T.shape[1]:
        raise ValueError(
            f"V has {V.shape[1]} columns but T has {T.shape[1]}; retrieval compares "
            "vectors of one shared space."
        )
    if groups is None:
        if V.shape[0] != T.shape[0]:
            raise ValueError(
                f"V has {V.shape[0]} rows but T has {T.shape[0]}; without groups row i "
                "of V is paired with row i of T. Pass groups (the image row of each "
                "text) for several captions per image."
            )
    else:
        groups = _check_groups(groups, V.shape[0], T.shape[0])
    # One common floating dtype, so float32 inputs stay float32.
    dtype = np.result_type(V.dtype, T.dtype)
    V = normalize_rows(V.astype(dtype, copy=False), "V")
    T = normalize_rows(T.astype(dtype, copy=False), "T")

    i2t = _image_to_text_ranks(V, T, groups, block_size)
    t2i = _text_to_image_ranks(V, T, groups, block_size)
    out = {}
    for kk in ks:
        out[f"image_to_text_recall@{kk}"] = float(np.mean(i2t < kk))
    for kk in ks:
        out[f"text_to_image_recall@{kk}"] = float(np.mean(t2i < kk))
    return out


# Unvalidated twin for skgap's own loops (a sweep scores retrieval once per fit).
_retrieval_recall_at_k = retrieval_recall_at_k.__wrapped__
