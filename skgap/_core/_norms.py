r"""Private numerical kernels on the unit sphere, shared by metrics and estimators.

They read each array once and never upcast a float32 array to float64 as a
whole: reductions run over row chunks in the input precision and the partial
results are accumulated in float64.

**Scale-safe norms.** Every statistic here depends on the direction of each
row only, so it must give the same answer for ``c * X`` as for ``X``. A squared
sum overflows for float32 entries near 1e19 (float64: 1e154) and underflows
near 1e-19 (1e-154). Like LAPACK's ``nrm2``, the kernels therefore take a row's
norm as :math:`\lVert x \rVert = a \lVert x / a \rVert` with
:math:`a = \max_j |x_j|` -- but only where it is needed: the squared sums are
first taken in the input dtype, and when every one lies in the safe range
:math:`[\mathrm{tiny}/\epsilon,\ \mathrm{max}]` (see :func:`safe_sq_range`)
nothing can have overflowed (every partial sum is at most the total) and what
underflowed is below a relative :math:`d\,2^{-46}` of the total, so the fast
value is exact to rounding. Rows (or row tiles, in the fused kernels) outside
that range are redone from ``x / a``. A row is "zero" only when all its
entries are exactly zero.
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


def safe_sq_range(dtype):
    r"""``(lo, hi)``: squared row sums in this range are free of over/underflow.

    ``hi`` is the largest finite value: a finite sum of non-negative terms
    had no partial sum above it. ``lo = tiny / eps``: each term that underflowed
    lost less than the smallest subnormal, so ``d`` of them change a total
    of at least ``lo`` by a relative :math:`d\,\epsilon\,2^{-p}` at most
    (:math:`d\,2^{-46}` in float32), far below rounding.
    """
    fi = np.finfo(dtype)
    return float(fi.tiny) / float(fi.eps), float(fi.max)


def max_abs_scaled(B):
    """``(B / a, a)`` with ``a_i = max_j |B_ij|`` (rows of zeros are divided by 1).

    The scaled rows have entries in [-1, 1] and at least one entry of +-1, so
    their squared sums lie in ``[1, d]``: no overflow, no underflow.
    """
    a = np.max(np.abs(B), axis=1) if B.shape[1] else np.zeros(B.shape[0], B.dtype)
    safe = np.where(a > 0, a, 1).astype(B.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        return B / safe[:, None], a


def row_norms(E):
    """Euclidean norm of each row, in the dtype of ``E``, without over/underflow.

    The squared sums are taken in the dtype of ``E``; rows whose squared sum
    left :func:`safe_sq_range` are redone as ``a * ||E_i / a||`` with
    ``a = max |E_i|`` (module docstring). Zero rows give 0, rows with a NaN or
    inf entry a non-finite norm.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        sq = _row_dots(E, E)
    lo, hi = safe_sq_range(E.dtype)
    redo = ~((sq >= lo) & (sq <= hi))
    norms = np.sqrt(sq, out=sq)
    if redo.any():
        idx = np.flatnonzero(redo)
        U, a = max_abs_scaled(E[idx])
        with np.errstate(over="ignore", invalid="ignore"):
            norms[idx] = a * np.sqrt(_row_dots(U, U))
    return norms


def check_nonzero_norms(norms, name="E", offset=0):
    """Raise a ValueError naming the rows whose norm is zero (or not finite).

    ``offset`` is added to the row numbers shown (for a block of a larger array).
    """
    bad = ~(norms > 0)  # exactly zero, or NaN
    if bad.any():
        idx = np.flatnonzero(bad) + offset
        raise ValueError(
            f"{name} has {idx.size} row(s) with zero norm (rows {_shown(idx)}); such rows "
            "have no direction and cannot be projected onto the unit sphere. "
            "Remove them or fix the embeddings."
        )
    big = np.isinf(norms)
    if big.any():
        idx = np.flatnonzero(big) + offset
        raise ValueError(
            f"{name} has {idx.size} row(s) whose norm overflows {norms.dtype} (rows "
            f"{_shown(idx)}); rescale the embeddings or pass them as float64."
        )


#: Units of rounding below which a shifted row ``u + s`` counts as zero.
CANCELLED_ULPS = 8


def cancelled_floor(dtype, s_norm):
    r"""Norm below which ``u + s`` (``u`` a unit row) is rounding noise, not a direction.

    Each entry of ``u + s`` carries a rounding error of about
    :math:`\epsilon(|u_i| + |s_i|)`, so a result shorter than a few
    :math:`\epsilon(1 + \lVert s Vert)` points wherever the rounding put it:
    a row equal to the centroid it is centred on gives unit rows of noise.
    Such rows are refused as zero rows.
    """
    return CANCELLED_ULPS * float(np.finfo(dtype).eps) * (1.0 + float(s_norm))


def _shown(idx):
    return ", ".join(map(str, idx[:10])) + (", ..." if idx.size > 10 else "")


def inverse_norms(E, name="E"):
    """``1 / ||e_i||`` for every row, after checking that no row is zero."""
    norms = row_norms(E)
    check_nonzero_norms(norms, name)
    return np.reciprocal(norms, out=norms)


def normalize_rows(E, name="E", out=None):
    """Return ``E`` with every row scaled to unit Euclidean norm.

    Rows whose norm or its reciprocal is not a normal number of the dtype
    (norms below ``4 tiny`` or above ``1 / (4 tiny)``) are divided by their
    max-abs entry first, so no row loses precision to a subnormal factor.
    """
    norms = row_norms(E)
    check_nonzero_norms(norms, name)
    tiny4 = 4 * float(np.finfo(E.dtype).tiny)
    odd = ~((norms > tiny4) & (norms < 1.0 / tiny4))
    with np.errstate(over="ignore"):  # odd rows are redone below
        inv = np.reciprocal(norms, out=norms)
    if not odd.any():
        return np.multiply(E, inv[:, None], out=out)
    idx = np.flatnonzero(odd)
    U, _ = max_abs_scaled(E[idx])
    U /= np.sqrt(_row_dots(U, U))[:, None]
    inv[idx] = 0
    out = np.multiply(E, inv[:, None], out=out)
    out[idx] = U
    return out


class InvalidRowsError(ValueError):
    """Raised by a fused kernel when a tile holds a row it cannot process.

    Callers catch it and replay the reference validation over the whole input,
    which raises the precise, user-facing error (NaN, zero-norm rows, ...).
    """


_vecdot = getattr(np, "vecdot", None)  # NumPy >= 2.0: a gufunc, faster than einsum


def _row_dots(A, B, out=None):
    """``sum_j A[i, j] * B[i, j]`` for every row (in the dtype of the inputs)."""
    if _vecdot is not None:
        return _vecdot(A, B, out=out)
    return np.einsum("...j,...j->...", A, B, out=out)  # pragma: no cover - NumPy < 2


def _block_sq_norms(T, slices, width):
    """Squared norm of every block of every row of the tile, shape ``(k, M)``.

    One call on the ``(k, M, d)`` view when the blocks tile a C-contiguous
    row, else one call per block. In the dtype of ``T``.
    """
    k = T.shape[0]
    if width is not None:
        T3 = T.reshape(k, len(slices), width)
        return _row_dots(T3, T3)
    return np.stack([_row_dots(T[:, sl], T[:, sl]) for sl in slices], axis=1)


def replay_row_errors(X, slices, names, *, estimator=None, shifts=None, offset=0):
    """Raise the reference error for the first invalid row of ``X``.

    Fused kernels only detect that *some* row is invalid; this replays the
    checks of the reference (unfused) code in its order -- non-finite entries
    (scikit-learn's message), then each block's zero-norm rows, then, with
    ``shifts``, each block's rows of zero norm after the shift -- so users see
    the same messages as before. ``offset`` shifts the row numbers shown.
    """
    from sklearn.utils import check_array

    check_array(X, dtype=None, input_name="X", estimator=estimator, ensure_min_samples=0)
    for m, (sl, name) in enumerate(zip(slices, names)):
        B = X[:, sl]
        norms = row_norms(B)
        check_nonzero_norms(norms, name, offset=offset)
        if shifts is not None:
            U = B * np.reciprocal(norms)[:, None]
            s = np.asarray(shifts[m], dtype=B.dtype)
            U += s
            after = row_norms(U)
            floor = cancelled_floor(B.dtype, np.linalg.norm(s))
            check_nonzero_norms(
                np.where(after > floor, after, 0), f"{name} after the shift", offset=offset
            )
    raise ValueError(  # pragma: no cover - the kernels and this replay agree
        "X holds rows that cannot be projected onto the unit sphere."
    )
