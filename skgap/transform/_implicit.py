r"""Implicitly gap-shifted features: products with Z without forming Z (private).

For one :math:`\lambda`, the shifted feature vector of row :math:`i` is, block
by block, :math:`z_{im} = \alpha_{im} x_{im} + \gamma_{im} s_m` with per-row
scalars :math:`\alpha_{im} = 1 / (r_{im}\sqrt{q_{im}})` and
:math:`\gamma_{im} = \lambda / \sqrt{q_{im}}` (see
:class:`~skgap.ModalityGapShifterCV`). A linear model only ever needs
:math:`Z W` and :math:`Z^\top G`, and both are cheap without forming
:math:`Z`:

.. math::

    (Z W)_i = \sum_m \alpha_{im} (X_m W_m)_i + \gamma_{im} (s_m^\top W_m), \qquad
    (Z^\top G)_m = X_m^\top (\alpha_m \odot G) + s_m \, (\gamma_m^\top G).

So the probe of every :math:`\lambda` trains on the raw rows ``X`` (read by
BLAS, never copied or rewritten) and a few length-``n`` vectors.

The logistic solver that trains on these products is
:mod:`skgap.transform._solver`.
"""

import mmap

import numpy as np

from .._core._norms import replay_row_errors, row_norms
from .._core._parallel import run_work_items
from .._core._shift import Q_EXPLICIT, shifted_sq_norms, block_shift_matrix
from .._core._validation import block_names

#: Bytes of ``X`` per work item of a loss-and-gradient evaluation (2048 rows of
#: 2 x 512 float32): the item's backward products find its rows in cache.
_ITEM_BYTES = 8 << 20


def _item_rows(X):
    """Rows of ``X`` per work item (:data:`_ITEM_BYTES`)."""
    return max(1, _ITEM_BYTES // max(1, X.shape[1] * X.itemsize))


def block_norms(X, slices):
    """Block norms of every row, float64 ``(n, M)``; one pass."""
    return np.stack([row_norms(X[:, sl]) for sl in slices], axis=1).astype(np.float64)


def fold_statistics(X, slices, shifts, norms=None, threads=1):
    """Per-row block norms and dot products with the shifts, one pass each.

    Returns ``norms`` and ``dots`` (float64, ``(n, M)``) and the block-diagonal
    shift matrix ``S``: row ``i`` of block ``m`` has the unit direction
    ``x / norms[i, m]`` and ``u . s_m = dots[i, m] / norms[i, m]``. The norms
    do not depend on the fold: pass them when already known. ``threads``
    share the rows of the dot products (each row's products do not depend on
    them).
    """
    if norms is None:
        norms = block_norms(X, slices)
    S = block_shift_matrix(slices, shifts, X.shape[1], X.dtype)
    dots = np.empty((X.shape[0], len(slices)))

    def item(a, z):
        dots[a:z] = X[a:z] @ S.T

    run_work_items(X.shape[0], _item_rows(X), item, threads=threads)
    return norms, dots, S


def row_scalars(X, slices, stats, lam):
    r"""Per-row scalars of the shifted features of one lambda.

    With :math:`r = \lVert x \rVert`, :math:`p = x \cdot s` and
    :math:`q = 1 + 2\lambda p / r + \lambda^2 \lVert s \rVert^2 =
    \lVert u + \lambda s \rVert^2`, block ``m`` of the shifted row is
    ``alpha * x + gamma * s`` with ``alpha = 1 / (r sqrt q)`` and
    ``gamma = lam / sqrt q``. Rows where ``q`` is small (a row almost opposite
    its shift, where the closed form loses digits) get ``q`` from the explicit
    norm of ``u + lam s``.
    """
    norms, dots, S = stats
    ss = np.einsum("ij,ij->i", S, S).astype(np.float64)
    q = shifted_sq_norms(lam * dots / norms, lam**2 * ss)
    for i, m in zip(*np.nonzero(q < Q_EXPLICIT)):
        sl = slices[m]
        v = X[i, sl].astype(np.float64) / norms[i, m] + lam * S[m, sl].astype(np.float64)
        q[i, m] = v @ v
    if not np.all(q > np.finfo(X.dtype).tiny):
        shifts = [lam * S[m, sl] for m, sl in enumerate(slices)]
        replay_row_errors(X, slices, block_names(len(slices)), shifts=shifts)
    root = np.sqrt(q)
    return 1.0 / (norms * root), lam / root


def is_memory_mapped(X):
    """Whether ``X``'s buffer is a memory map (``np.load(..., mmap_mode=...)``, ``np.memmap``)."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


def _block_products(X, slices, W):
    """``[X_m @ W_m^T]`` stacked, shape (n, M, K): one BLAS call per block."""
    if W.shape[0] == 1:
        return np.stack([X[:, sl] @ W[0, sl] for sl in slices], axis=1)[:, :, None]
    return np.stack([X[:, sl] @ W[:, sl].T for sl in slices], axis=1)


def _shift_products(S, slices, W):
    """``s_m . w_m`` for every block and class, float64, shape (M, K)."""
    return np.stack([W[:, sl] @ S[m, sl].astype(np.float64) for m, sl in enumerate(slices)])


def _raw(alpha, P, gamma, sW, b):
    """``(Z W^T)_i + b`` from the block products ``P = [X_m W_m^T]`` (module docstring)."""
    return np.einsum("nm,nmk->nk", alpha, P) + gamma @ sW + b


def decision_values(X, slices, S, alpha, gamma, W, b, threads=1):
    """Decision values ``Z @ W.T + b`` of the implicit features, shape (n, K).

    ``threads`` share the rows (each row's value does not depend on them).
    """
    Wt = W.astype(X.dtype, copy=False)
    sW = _shift_products(S, slices, W)
    out = np.empty((X.shape[0], W.shape[0]))

    def item(a, z):
        P = _block_products(X[a:z], slices, Wt)  # (rows, M, K)
        out[a:z] = _raw(alpha[a:z], P, gamma[a:z], sW, b)

    run_work_items(X.shape[0], _item_rows(X), item, threads=threads)
    return out


def gather_rows(X, rows, threads=1):
    """``X[rows]``, the copy shared by ``threads`` (a memory-bound gather)."""
    out = np.empty((len(rows), X.shape[1]), dtype=X.dtype)

    def item(a, z):
        np.take(X, rows[a:z], axis=0, out=out[a:z])

    run_work_items(len(rows), _item_rows(X), item, threads=threads)
    return out


def _sample_rows(sample_weight, max_rows):
    """At most ``max_rows`` evenly spaced rows of positive weight."""
    # Rows of zero weight (held-out rows read in place) do not count.
    rows = np.flatnonzero(np.asarray(sample_weight) > 0)
    n = rows.size
    return rows[np.unique(np.linspace(0, n - 1, min(n, max_rows)).round().astype(np.intp))]


def feature_means(X, slices, stats, lams, sample_weight, max_rows=2048):
    r"""Weighted means of the shifted features of several lambdas, on a row sample.

    On the same rows as :func:`preconditioner` (at most ``max_rows`` evenly
    spaced rows of positive weight), block ``m`` of the mean of
    :math:`\lambda` is :math:`X_m^\top (\omega \odot \alpha_m) + s_m\,
    (\omega^\top \gamma_m)` with the normalised row weights :math:`\omega`
    and the row scalars of :func:`row_scalars`: one small GEMM per block for
    every lambda at once.

    The shift moves the features' mean with :math:`\lambda` (that is what it
    does) while their covariance changes little, so the preconditioner of one
    :math:`\lambda` serves the others once its mean is replaced by theirs:
    with a stale mean, the intercept's coupling to the moved mean leaves the
    whitened Hessian far from ``I`` (a warm start's first step overshoots).

    Returns
    -------
    means : ndarray of shape (len(lams), D), float64
    """
    rows = _sample_rows(sample_weight, max_rows)
    norms, dots, S = stats
    sub = (norms[rows], dots[rows], S)
    Xs = X[rows]
    omega = np.asarray(sample_weight, dtype=np.float64)[rows]
    omega = omega / omega.sum()
    L, M = len(lams), len(slices)
    A = np.empty((M, rows.size, L), dtype=X.dtype)
    g = np.empty((L, M))
    for k, lam in enumerate(lams):
        alpha, gamma = row_scalars(Xs, slices, sub, float(lam))
        A[:, :, k] = (omega[:, None] * alpha).T
        g[k] = omega @ gamma
    means = np.empty((L, X.shape[1]))
    for m, sl in enumerate(slices):
        means[:, sl] = A[m].T @ Xs[:, sl] + np.outer(g[:, m], S[m, sl])
    return means
