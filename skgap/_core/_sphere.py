r"""Sums over unit rows: centroids, pair cosines and second moments.

Each kernel reads its rows once, in chunks, in the input precision, and adds
the partial sums in float64 in a fixed order, so the result depends neither
on the chunking nor on the number of threads.
"""

import numpy as np

from ._norms import CHUNK_ROWS, _row_dots, inverse_norms, safe_sq_range
from ._parallel import WORK_TILES, run_work_items, tile_rows
from ._shift import _equal_width, _safe_tile


def weighted_row_sum(E, w):
    """``sum_i w_i e_i`` accumulated in float64 over chunks of rows.

    Each chunk is a matrix-vector product in the precision of ``E`` (no copy of
    ``E``); chunk results are summed in float64.
    """
    total = np.zeros(E.shape[1], dtype=np.float64)
    w = np.asarray(w, dtype=E.dtype)
    for start in range(0, E.shape[0], CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        total += w[start:stop] @ E[start:stop]
    return total


def unit_mean(E, inv_norms=None, name="E"):
    """Mean of the L2-normalised rows of ``E``, as a float64 vector."""
    if inv_norms is None:
        inv_norms = inverse_norms(E, name)
    return weighted_row_sum(E, inv_norms) / E.shape[0]


def pair_cosines(V, T, inv_v=None, inv_t=None):
    """Cosine similarity of each matched pair ``(v_i, t_i)``, as float64."""
    if inv_v is None:
        inv_v = inverse_norms(V, "V")
    if inv_t is None:
        inv_t = inverse_norms(T, "T")
    # (v / ||v||) . t chunk by chunk: v . t itself can overflow (|v||t| > max).
    dots = np.empty(V.shape[0], dtype=np.float64)
    for start in range(0, V.shape[0], CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        U = V[start:stop] * np.asarray(inv_v[start:stop, None], dtype=V.dtype)
        dots[start:stop] = _row_dots(U, T[start:stop])
    cos = dots * inv_t
    # Rounding can push |cos| a hair above 1; distances below use 2 - 2 cos.
    return np.clip(cos, -1.0, 1.0, out=cos)


#: Rows at least per work item of :func:`unit_second_moment`.
MOMENT_ROWS = 2048


def unit_second_moment(blocks_and_inv):
    """``sum_i e_i e_i^T`` over the unit rows of several blocks, in float64.

    Each block is cut into at most two runs of at least :data:`MOMENT_ROWS`
    rows, the work items of one threaded pass (:func:`run_work_items`): a
    run adds the products ``U^T U`` of its chunks of :data:`CHUNK_ROWS` unit
    rows (in the dtype of the block) into its own float64 partial, and the
    partials are added in item order, so the result does not depend on the
    number of threads. At most two ``d x d`` partials per block, and one
    scaled chunk per thread, are held at a time.

    Parameters
    ----------
    blocks_and_inv : iterable of (E, inv_norms)
        Rows and their inverse norms; ``inv_norms`` None when the rows are
        unit rows already.
    """
    pairs = list(blocks_and_inv)
    items = [
        (E, inv, a, min(a + step, E.shape[0]))
        for E, inv in pairs
        for step in [max(MOMENT_ROWS, -(-E.shape[0] // 2))]
        for a in range(0, E.shape[0], step)
    ]
    d = pairs[0][0].shape[1]
    parts = np.zeros((len(items), d, d))

    def moment(i, _):
        E, inv, a, b = items[i]
        for start in range(a, b, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, b)
            U = E[start:stop]
            if inv is not None:
                U = U * inv[start:stop, None].astype(E.dtype)
            parts[i] += U.T @ U

    run_work_items(len(items), 1, moment, flops=sum(E.size for E, _ in pairs) * d)
    return parts.sum(axis=0)


def paired_unit_sums(X, slices, *, pairs=True):
    r"""One pass of the sufficient statistics of the cone and gap statistics.

    For unit rows :math:`u_{im} = x_{im} / \lVert x_{im} \rVert` of each block
    :math:`m` and the pair cosines :math:`c_{im} = u_{i0} \cdot u_{im}`:

    .. math:: \Sigma_m = \sum_i u_{im}, \qquad
        \Big(\sum_i c_{im},\ \sum_i \sqrt{2 - 2 c_{im}},\ \sum_i (2 - 2 c_{im})\Big)

    Each row tile's norms, pair dot products and weighted row sum are taken
    while it is in cache (tile products in the precision of ``X``, partial
    sums in float64); the per-row float64 work (cosines, distances) is done
    once per work item. Work items may run on several threads
    (:func:`run_work_items`); their partial sums are added in item order, so
    the result does not depend on the number of threads.

    Returns
    -------
    sums : ndarray of shape (M, d), float64
    pair_sums : ndarray of shape (M - 1, 3), float64
        Zeros when ``pairs`` is False.

    Raises
    ------
    InvalidRowsError
        On non-finite entries or zero-norm rows.
    """
    dtype = X.dtype
    n, D = X.shape
    M = len(slices)
    d = slices[0].stop - slices[0].start
    width = _equal_width(X, slices)
    lohi = safe_sq_range(dtype)
    rows = tile_rows(D, dtype.itemsize)
    item_rows = WORK_TILES * rows
    n_items = -(-n // item_rows)
    item_sums = np.zeros((n_items, M, d))
    item_pairs = np.zeros((n_items, max(M - 1, 0), 3))

    def sum_item(a, b):
        i = a // item_rows
        with np.errstate(over="ignore", invalid="ignore"):  # bad rows are flagged
            _sum_item(X[a:b], slices, width, rows, pairs, lohi, item_sums[i], item_pairs[i])

    run_work_items(n, item_rows, sum_item)
    # In item order: the same float64 sums whatever the number of threads.
    return item_sums.sum(axis=0), item_pairs.sum(axis=0)


def _sum_item(X, slices, width, rows, pairs, lohi, sums, pair_sums):
    """One work item of :func:`paired_unit_sums`, accumulated into ``sums``, ``pair_sums``."""
    n = X.shape[0]
    M = len(slices)
    dtype = X.dtype
    inv = np.empty((n, M))
    dots = np.empty((n, max(M - 1, 0)), dtype=dtype) if pairs else None
    for a in range(0, n, rows):
        b = min(a + rows, n)
        T, sq = _safe_tile(X[a:b], slices, width, *lohi)
        # 1 / ||x||, in float64 and rounded once to the dtype for the row sums.
        np.divide(1.0, np.sqrt(sq, dtype=np.float64), out=inv[a:b])
        inv_t = inv[a:b].astype(dtype)
        for m, sl in enumerate(slices):
            sums[m] += inv_t[:, m] @ T[:, sl]
        if pairs:
            B0 = T[:, slices[0]]
            for m in range(1, M):
                _row_dots(B0, T[:, slices[m]], out=dots[a:b, m - 1])
    if pairs:
        for m in range(1, M):
            cos = dots[:, m - 1].astype(np.float64)
            cos *= inv[:, 0]
            cos *= inv[:, m]
            np.minimum(cos, 1.0, out=cos)
            np.maximum(cos, -1.0, out=cos)
            sqd = 2.0 - 2.0 * cos
            np.maximum(sqd, 0.0, out=sqd)
            pair_sums[m - 1] += (cos.sum(), np.sqrt(sqd).sum(), sqd.sum())
