r"""The gap shift of paired rows, tile by tile.

For a row :math:`x_m` of block :math:`m` with norm :math:`r = \lVert x_m \rVert`,
unit row :math:`u = x_m / r` and block shift :math:`s_m` (:math:`-\lambda\Delta/2`
for the image block, :math:`+\lambda\Delta/2` for the text block), the shifted
unit row is

.. math::

    x'_m = \frac{u + s_m}{\lVert u + s_m \rVert}, \qquad
    \lVert u + s_m \rVert^2 = q = 1 + 2\,u^\top s_m + \lVert s_m \rVert^2 .

:func:`row_scalar_q` is the one home of :math:`q`; every kernel that shifts
rows, explicitly or implicitly, computes it there. Where :math:`q` is small
(the shift nearly cancels the row) the expanded form loses digits, and the
row is shifted explicitly from :math:`u + s_m` instead.
"""

import numpy as np

from ._array_api import is_numpy, namespace_of, scale_safe_rows, to_numpy
from ._norms import (
    InvalidRowsError,
    _block_sq_norms,
    _row_dots,
    cancelled_floor,
    max_abs_scaled,
    replay_row_errors,
    safe_sq_range,
)
from ._parallel import WORK_TILES, run_work_items, tile_rows

#: Below this value of q = ||u + s||^2 the closed form 1 + 2 u.s + ||s||^2 loses
#: too many digits to cancellation; such (rare) rows are recomputed explicitly.
Q_EXPLICIT = 1e-2
_SQRT_Q_EXPLICIT = Q_EXPLICIT**0.5


def shifted_sq_norms(u_dot_s, s_sq):
    r"""The squared norm of a unit row plus its shift, from two scalars.

    .. math:: q = \lVert u + s \rVert^2 = 1 + 2\,u^\top s + \lVert s \rVert^2 .

    This is the one place where :math:`q` is computed; every kernel that
    shifts rows (explicitly, in any array namespace, or implicitly inside the
    cross-validated search) calls it. Where ``q < Q_EXPLICIT`` the caller
    recomputes the row explicitly from :math:`u + s`.

    Parameters
    ----------
    u_dot_s : array
        :math:`u^\top s` per row (and block); overwritten with ``q``.
    s_sq : float or array broadcasting against ``u_dot_s``
        :math:`\lVert s \rVert^2`.

    Returns
    -------
    array
        ``u_dot_s``, now holding ``q``.
    """
    u_dot_s *= 2.0
    u_dot_s += 1.0 + s_sq
    return u_dot_s


def block_shift_matrix(slices, shifts, n_features, dtype):
    """Stack per-block shifts into an ``(M, n_features)`` block-diagonal matrix.

    Row ``m`` holds ``shifts[m]`` in the columns of block ``m`` and zeros
    elsewhere, so that ``coef @ S`` adds ``coef[i, m] * s_m`` to block ``m`` of
    row ``i`` for all blocks at once (one small GEMM).
    """
    S = np.zeros((len(slices), n_features), dtype=dtype)
    for m, (sl, s) in enumerate(zip(slices, shifts)):
        S[m, sl] = s
    return S


def _rank_update(O):
    """``update(tile, coef, S)``: ``tile += coef @ S`` in place, for row runs of ``O``.

    One BLAS GEMM per tile when ``O`` is C-contiguous (the GEMM function is
    looked up once per pass), else a NumPy product.
    """
    if not O.flags.c_contiguous:

        def update(tile, coef, S):
            tile += coef @ S

        return update
    from scipy.linalg.blas import get_blas_funcs

    (gemm,) = get_blas_funcs(("gemm",), (O,))

    def update(tile, coef, S):
        # tile.T is Fortran-ordered, which is what BLAS updates in place.
        tT = tile.T
        res = gemm(1.0, S.T, coef.T, beta=1.0, c=tT, overwrite_c=True)
        if res is not tT:
            tile[...] = res.T  # pragma: no cover - BLAS made a copy

    return update


def _equal_width(X, slices):
    """The common block width if ``X`` rows are C-contiguous runs of equal blocks."""
    widths = {sl.stop - sl.start for sl in slices}
    if len(widths) == 1 and X.flags.c_contiguous and slices[-1].stop == X.shape[1]:
        return widths.pop()
    return None


def _safe_tile(T, slices, width, lo, hi):
    """The tile and its squared block norms (in its dtype), scaled where needed.

    The fast path squares the tile in its own dtype. When any squared norm left
    ``[lo, hi]`` (:func:`safe_sq_range`: huge or tiny entries, a zero row, a
    NaN), every block row of the tile is divided by its max-abs entry (a
    tile-sized copy): the directions -- all the fused kernels use -- are
    unchanged, and the squared norms land in ``[1, d]``. Zero and non-finite
    rows raise :class:`InvalidRowsError`.
    """
    sq = _block_sq_norms(T, slices, width)
    if sq.min() >= lo and sq.max() <= hi:  # NaN compares False
        return T, sq
    if not np.isfinite(T).all():
        raise InvalidRowsError("non-finite entries")
    U = np.empty(T.shape, dtype=T.dtype)
    for sl in slices:
        B, a = max_abs_scaled(T[:, sl])
        if not (a > 0).all():
            raise InvalidRowsError("zero-norm rows")
        U[:, sl] = B
    return U, _block_sq_norms(U, slices, _equal_width(U, slices))


def shift_rows(X, slices, shifts, out=None):
    r"""Fused gap shift of every block: ``(x/||x|| + s_m) / ||x/||x|| + s_m||``.

    For a row ``x`` of block ``m`` with norm :math:`r = \lVert x \rVert` and
    unit direction :math:`u = x / r`,

    .. math:: \lVert u + s \rVert^2 = 1 + 2\,u\cdot s + \lVert s \rVert^2 = q,
        \qquad \text{out} = \frac{x}{r\sqrt q} + \frac{s}{\sqrt q},

    so each row needs its norm and one dot product, and the output is written
    once as ``alpha * x + beta * s`` (a row scaling and a rank-``M`` GEMM
    update on a tile that is still in cache). Tiles are shared among threads
    (:func:`run_work_items`); every output row depends on its input row only,
    so the result does not depend on the number of threads.

    Parameters
    ----------
    X : ndarray of shape (n, sum d_m), float32 or float64
    slices : sequence of slice
        Column slice of each block.
    shifts : array-like of shape (M, d)
        Shift of each block (cast to ``X.dtype``).
    out : ndarray, optional
        Output array of the shape and dtype of ``X``.

    Returns
    -------
    out : ndarray

    Raises
    ------
    InvalidRowsError
        When a row has non-finite entries, zero norm, or zero norm after the
        shift. The caller replays the reference validation for the message.
    """
    dtype = X.dtype
    n, D = X.shape
    S = block_shift_matrix(slices, shifts, D, dtype)
    if out is None:
        out = np.empty((n, D), dtype=dtype)
    width = _equal_width(X, slices)
    # With equal blocks the dot products u . s_m are one vecdot on the
    # (k, M, d) view against the (M, d) shifts: faster than a GEMM of M columns.
    Sb = None if width is None else np.stack([S[m, sl] for m, sl in enumerate(slices)])
    plan = dict(
        slices=slices,
        S=S,
        s_sq=_row_dots(S, S).astype(np.float64),
        width=width,
        Sb=Sb,
        update=_rank_update(out),
        lohi=safe_sq_range(dtype),
    )
    rows = tile_rows(D, dtype.itemsize)

    def shift_item(a, b):
        with np.errstate(over="ignore", invalid="ignore"):  # bad rows are flagged
            for t in range(a, b, rows):
                _shift_tile(X[t : min(t + rows, b)], out[t : min(t + rows, b)], **plan)

    run_work_items(n, WORK_TILES * rows, shift_item)
    return out


def _shift_tile(T, O, slices, S, s_sq, width, Sb, update, lohi):
    """One tile of :func:`shift_rows` (T and O in cache)."""
    T, sq = _safe_tile(T, slices, width, *lohi)
    norms = np.sqrt(sq, dtype=np.float64)
    if Sb is not None:
        u_dot_s = _row_dots(T.reshape(T.shape[0], len(slices), width), Sb) / norms
    else:
        u_dot_s = T @ S.T / norms
    q = shifted_sq_norms(u_dot_s, s_sq)
    beta = np.sqrt(q)
    if not beta.min() >= _SQRT_Q_EXPLICIT:
        _shift_tile_with_explicit_rows(T, O, slices, S, norms, q, update)
        return
    np.reciprocal(beta, out=beta)
    # alpha = beta / r, computed in float64 and rounded once to the dtype.
    alpha = np.empty(beta.shape, dtype=T.dtype)
    np.divide(beta, norms, out=alpha, casting="same_kind")
    if width is not None and O.flags.c_contiguous:
        k = T.shape[0]
        M = len(slices)
        np.multiply(T.reshape(k, M, width), alpha[:, :, None], out=O.reshape(k, M, width))
    else:
        for m, sl in enumerate(slices):
            np.multiply(T[:, sl], alpha[:, m, None], out=O[:, sl])
    update(O, beta.astype(T.dtype), S)


def _shift_tile_with_explicit_rows(T, O, slices, S, norms, q, update):
    """A tile holding rows with ``q`` near 0: closed form elsewhere, explicit there."""
    explicit = q < Q_EXPLICIT
    beta = 1.0 / np.sqrt(np.maximum(q, Q_EXPLICIT))
    alpha = (beta / norms).astype(T.dtype)
    for m, sl in enumerate(slices):
        np.multiply(T[:, sl], alpha[:, m, None], out=O[:, sl])
    update(O, beta.astype(T.dtype), S)
    _shift_explicitly(T, O, slices, S, norms, explicit)


def _shift_explicitly(T, O, slices, S, norms, mask):
    """Redo the rows of ``mask`` as normalise, add, renormalise (no closed form)."""
    floors = [cancelled_floor(T.dtype, np.linalg.norm(S[m, sl])) for m, sl in enumerate(slices)]
    for r, m in zip(*np.nonzero(mask)):
        sl = slices[m]
        v = T[r, sl] / T.dtype.type(norms[r, m]) + S[m, sl]
        nv = np.sqrt(np.dot(v, v))
        if not nv > floors[m]:
            raise InvalidRowsError("zero norm after the shift")
        O[r, sl] = v / nv


#: Weight of each block's shift for ``side``: one side moves twice as far.
SIDE_WEIGHTS = {"both": (1.0, 1.0), "image": (2.0, 0.0), "text": (0.0, 2.0)}


def side_weights(side, n_modalities):
    """Per-block weights of the shift for ``side`` ('both', 'image', 'text').

    ``'image'`` and ``'text'`` name the two blocks of ``[V | T]``, so they need
    exactly two modalities.
    """
    if side == "both":
        return np.ones(n_modalities)
    if n_modalities != 2:
        raise ValueError(
            f"side={side!r} moves one block of a [V | T] pair, but X has "
            f"{n_modalities} modality blocks; use side='both'."
        )
    return np.asarray(SIDE_WEIGHTS[side])


def gap_shift_directions(centroids, direction="raw", side="both", xp=np, device=None):
    r"""Per-modality shift vectors for ``lam = 1``.

    Each modality moves toward the mean of the modality centroids
    :math:`\bar\mu = \frac{1}{M}\sum_m \mu_m`:

    - ``'raw'``: :math:`s_m = \bar\mu - \mu_m`;
    - ``'unit'``: :math:`s_m = (\bar\mu - \mu_m) / (2 \lVert \bar\mu - \mu_m \rVert)`
      (zero where a centroid already sits at the mean).

    For two modalities ``'raw'`` gives :math:`s_V = -\Delta/2`,
    :math:`s_T = +\Delta/2` and ``'unit'`` gives :math:`\mp \Delta/(2\lVert\Delta\rVert)`.

    ``side='text'`` moves the text block alone, twice as far:
    :math:`s_V = 0, s_T = 2 (\bar\mu - \mu_T)` (``+\Delta`` for ``'raw'``, so
    ``lam = 1`` carries the text centroid onto the image centroid);
    ``side='image'`` is the mirror.

    Parameters
    ----------
    centroids : array of shape (n_modalities, d)
    direction : {'raw', 'unit'}
    side : {'both', 'image', 'text'}, default='both'
    xp : array namespace, default=numpy
    device : device, default=None
        Device of the result; ``None`` keeps that of ``centroids``.

    Returns
    -------
    array of shape (n_modalities, d)
        float64 ndarray for NumPy; in ``xp`` on ``device`` (dtype of
        ``centroids``) otherwise.
    """
    if is_numpy(xp):
        xp, C = np, np.asarray(centroids, dtype=np.float64)
    else:
        C = xp.asarray(centroids, device=device)
        device = namespace_of(C)[1]
    s = xp.mean(C, axis=0, keepdims=True) - C
    if direction == "unit":
        norms = xp.linalg.vector_norm(s, axis=1, keepdims=True)
        s = xp.where(norms > 0, s / (2.0 * xp.where(norms > 0, norms, 1.0)), 0.0)
    w = side_weights(side, C.shape[0])
    return s * xp.asarray(w[:, None], dtype=s.dtype, device=device)


def shift_block(B, shift, out=None, name="block"):
    r"""Return ``(b_i / ||b_i|| + shift) / ||.||`` for every row ``b_i`` of ``B``.

    The result is written in the dtype of ``B``. For a unit row ``u`` the norm
    of ``u + s`` is :math:`\sqrt{1 + 2 u \cdot s + \lVert s \rVert^2}`, so each
    row needs only its own norm and one dot product with ``s``; the output is
    written once, tile by tile (see :func:`shift_rows`).
    """
    B = np.asarray(B)
    return shift_paired(B, (slice(0, B.shape[1]),), [shift], (name,), out=out)


def shift_paired(X, slices, shifts, names, *, estimator=None, out=None):
    """:func:`shift_block` of every block of ``X`` at once, in one fused pass.

    On an invalid row (NaN, zero norm before or after the shift) the reference
    checks are replayed so the error names the row and its block (``names``).
    """
    try:
        return shift_rows(X, slices, shifts, out=out)
    except InvalidRowsError:
        replay_row_errors(X, slices, names, estimator=estimator, shifts=shifts)


def shift_paired_xp(X, slices, shifts, names, xp):
    r""":func:`shift_paired` in any array namespace (whole-block operations, one output).

    Every unit row :math:`u = x / \lVert x \rVert` of block :math:`m` becomes
    :math:`(u + s_m) / \lVert u + s_m \rVert`. Each block is first made
    scale-safe (:func:`skgap._array_api.scale_safe_rows`), so a float32 row of
    1e30 (or 1e-30) entries gives the answer of the unscaled row. With
    :math:`q = \lVert u + s \rVert^2 = 1 + 2\,u \cdot s + \lVert s \rVert^2`
    the output is :math:`x / (\lVert x \rVert \sqrt q) + s / \sqrt q`; where
    :math:`q` nearly cancels (:math:`q \le 10^{-2}`) the block is redone as
    normalise, add, renormalise.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), namespace ``xp``
    slices : sequence of slice
        Column block of each modality.
    shifts : sequence of arrays of shape (d_m,)
        :math:`s_m` for each block, in ``xp`` on the device of ``X``.
    names : sequence of str
        Block names for the error messages.
    xp : array namespace

    Returns
    -------
    array of the shape, dtype, namespace and device of ``X``

    Raises
    ------
    ValueError
        Naming the first row that is not finite or has zero norm, before or
        after the shift (:func:`replay_row_errors` on a NumPy copy).
    """
    out = xp.empty_like(X)
    tiny = float(xp.finfo(X.dtype).smallest_normal)
    for sl, s in zip(slices, shifts):
        B = scale_safe_rows(X[:, sl], xp)
        norms = xp.linalg.vector_norm(B, axis=1, keepdims=True)
        if not bool(xp.all(norms > tiny)):
            replay_row_errors(to_numpy(X, xp), slices, names)
        s = xp.astype(s, X.dtype)
        q = shifted_sq_norms(xp.matmul(B, s)[:, None] / norms, xp.sum(s * s))
        if not bool(xp.all(q >= Q_EXPLICIT)):
            # Near-cancellation: fall back to the explicit normalise-add-renormalise.
            U = B / norms + s
            n2 = xp.linalg.vector_norm(U, axis=1, keepdims=True)
            floor = cancelled_floor(np.float32 if X.dtype == xp.float32 else np.float64,
                                    float(xp.linalg.vector_norm(s)))
            if not bool(xp.all(n2 > floor)):
                replay_row_errors(
                    to_numpy(X, xp), slices, names, shifts=[to_numpy(v, xp) for v in shifts]
                )
            out[:, sl] = U / n2
            continue
        beta = 1.0 / xp.sqrt(q)
        out[:, sl] = B * (beta / norms) + beta * s
    return out
