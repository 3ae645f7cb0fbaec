"""Private numerical kernels on the unit sphere, shared by metrics and estimators.

They read each array once and never upcast a float32 array to float64 as a
whole: reductions run over row chunks in the input precision and the partial
results are accumulated in float64.
"""

import numpy as np
from sklearn.utils import check_array

# Rows per chunk in chunked reductions: 8192 rows x 512 float32 = 16 MiB.
CHUNK_ROWS = 8192


def check_block(E, name="E", *, min_samples=1):
    """Validate one modality block: 2-D, floating, finite, enough rows."""
    E = check_array(
        E,
        dtype=[np.float64, np.float32],
        ensure_min_samples=min_samples,
        input_name=name,
    )
    return E


def check_pair_blocks(V, T, names=("V", "T"), *, min_samples=1, same_width=True):
    """Validate two blocks describing the same pairs, row for row."""
    V = check_block(V, names[0], min_samples=min_samples)
    T = check_block(T, names[1], min_samples=min_samples)
    if V.shape[0] != T.shape[0]:
        raise ValueError(
            f"{names[0]} has {V.shape[0]} rows but {names[1]} has {T.shape[0]}; "
            "paired blocks need one row per pair in both."
        )
    if same_width and V.shape[1] != T.shape[1]:
        raise ValueError(
            f"{names[0]} has {V.shape[1]} columns but {names[1]} has {T.shape[1]}; "
            "gap statistics compare vectors of one shared space, so both blocks "
            "need the same width (map one space into the other first, e.g. with "
            "AnchorAffineAligner)."
        )
    return V, T


def row_norms(E):
    """Euclidean norm of each row, in the dtype of ``E``."""
    return np.sqrt(np.einsum("ij,ij->i", E, E))


def check_nonzero_norms(norms, name="E"):
    """Raise a ValueError naming the rows whose norm is zero (or not finite)."""
    bad = ~(norms > np.finfo(norms.dtype).tiny)
    if bad.any():
        idx = np.flatnonzero(bad)
        shown = ", ".join(map(str, idx[:10])) + (", ..." if idx.size > 10 else "")
        raise ValueError(
            f"{name} has {idx.size} row(s) with zero norm (rows {shown}); such rows "
            "have no direction and cannot be projected onto the unit sphere. "
            "Remove them or fix the embeddings."
        )


def inverse_norms(E, name="E"):
    """``1 / ||e_i||`` for every row, after checking that no row is zero."""
    norms = row_norms(E)
    check_nonzero_norms(norms, name)
    return np.reciprocal(norms, out=norms)


def normalize_rows(E, name="E", out=None):
    """Return ``E`` with every row scaled to unit Euclidean norm."""
    inv = inverse_norms(E, name)
    return np.multiply(E, inv[:, None], out=out)


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
    dots = np.einsum("ij,ij->i", V, T).astype(np.float64)
    cos = dots * inv_v * inv_t
    # Rounding can push |cos| a hair above 1; distances below use 2 - 2 cos.
    return np.clip(cos, -1.0, 1.0, out=cos)


def unit_second_moment(blocks_and_inv):
    """``sum_i e_i e_i^T`` over the unit rows of several blocks, in float64.

    Parameters
    ----------
    blocks_and_inv : iterable of (E, inv_norms)
    """
    d = None
    acc = None
    for E, inv in blocks_and_inv:
        if acc is None:
            d = E.shape[1]
            acc = np.zeros((d, d), dtype=np.float64)
        for start in range(0, E.shape[0], CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            U = E[start:stop] * inv[start:stop, None].astype(E.dtype)
            acc += U.T @ U
    return acc
