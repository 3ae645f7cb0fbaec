r"""Logistic regression on implicitly gap-shifted features (private).

For one :math:`\lambda`, the shifted feature vector of row :math:`i` is, block
by block, :math:`z_{im} = \alpha_{im} x_{im} + \gamma_{im} s_m` with per-row
scalars :math:`\alpha_{im} = 1 / (r_{im}\sqrt{q_{im}})` and
:math:`\gamma_{im} = \lambda / \sqrt{q_{im}}` (see
:class:`~skgap.shift_cv.ModalityGapShifterCV`). A linear model only ever needs
:math:`Z W` and :math:`Z^\top G`, and both are cheap without forming
:math:`Z`:

.. math::

    (Z W)_i = \sum_m \alpha_{im} (X_m W_m)_i + \gamma_{im} (s_m^\top W_m), \qquad
    (Z^\top G)_m = X_m^\top (\alpha_m \odot G) + s_m \, (\gamma_m^\top G).

So the probe of every :math:`\lambda` trains on the raw rows ``X`` (read by
BLAS, never copied or rewritten) and a few length-``n`` vectors.

The objective and the optimiser are scikit-learn's
``LogisticRegression(solver='lbfgs')``, term for term: the weighted mean of
the half binomial (or half multinomial, all classes penalised) loss plus
:math:`\lVert W \rVert^2 / (2 C \sum_i w_i)`, minimised by SciPy's L-BFGS-B
with ``gtol=tol``, ``ftol=64 eps``, ``maxls=50`` and ``maxiter=max_iter``.
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp
from sklearn.exceptions import ConvergenceWarning

from ._geometry import block_shift_matrix, replay_row_errors, row_norms
from ._validation import block_names

__all__ = ["decision_values", "fit_shifted_logistic", "fold_statistics", "row_scalars"]


def fold_statistics(X, slices, shifts):
    """Per-row block norms and dot products with the shifts, one pass each.

    Returns ``norms`` and ``dots`` (float64, ``(n, M)``) and the block-diagonal
    shift matrix ``S``: row ``i`` of block ``m`` has the unit direction
    ``x / norms[i, m]`` and ``u . s_m = dots[i, m] / norms[i, m]``.
    """
    norms = np.stack([row_norms(X[:, sl]) for sl in slices], axis=1).astype(np.float64)
    S = block_shift_matrix(slices, shifts, X.shape[1], X.dtype)
    dots = (X @ S.T).astype(np.float64)
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
    q = 1.0 + 2.0 * lam * dots / norms + lam**2 * ss
    for i, m in zip(*np.nonzero(q < 1e-2)):
        sl = slices[m]
        v = X[i, sl].astype(np.float64) / norms[i, m] + lam * S[m, sl].astype(np.float64)
        q[i, m] = v @ v
    if not np.all(q > np.finfo(X.dtype).tiny):
        shifts = [lam * S[m, sl] for m, sl in enumerate(slices)]
        replay_row_errors(X, slices, block_names(len(slices)), shifts=shifts)
    root = np.sqrt(q)
    return 1.0 / (norms * root), lam / root


def _block_products(X, slices, W):
    """``[X_m @ W_m^T]`` stacked, shape (n, M, K): one BLAS call per block."""
    if W.shape[0] == 1:
        return np.stack([X[:, sl] @ W[0, sl] for sl in slices], axis=1)[:, :, None]
    return np.stack([X[:, sl] @ W[:, sl].T for sl in slices], axis=1)


def decision_values(X, slices, S, alpha, gamma, W, b):
    """Decision values ``Z @ W.T + b`` of the implicit features, shape (n, K)."""
    Wt = W.astype(X.dtype, copy=False)
    P = _block_products(X, slices, Wt).astype(np.float64)  # (n, M, K)
    # s_m . w_m for every block and class, shape (M, K).
    sW = np.stack([W[:, sl] @ S[m, sl].astype(np.float64) for m, sl in enumerate(slices)])
    raw = np.einsum("nm,nmk->nk", alpha, P) + gamma @ sW
    return raw + b


def _grad_W(X, slices, S, alpha, gamma, G):
    """``Z.T @ G`` of the implicit features, shape (K, D)."""
    K = G.shape[1]
    out = np.empty((K, X.shape[1]))
    for m, sl in enumerate(slices):
        AG = (alpha[:, m, None] * G).astype(X.dtype)
        if K == 1:
            out[0, sl] = X[:, sl].T @ AG[:, 0]
        else:
            # (d, n) @ (n, K): OpenBLAS is slow on the (K, n) @ (n, d) orientation.
            out[:, sl] = (X[:, sl].T @ AG).T
    for m, sl in enumerate(slices):
        out[:, sl] += np.outer(gamma[:, m] @ G, S[m, sl].astype(np.float64))
    return out


def fit_shifted_logistic(
    X, slices, S, alpha, gamma, y, n_classes, sample_weight, *, C, tol, max_iter, coef0=None
):
    """Fit scikit-learn's lbfgs logistic regression on the implicit features.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        Raw rows (float32 or float64), read only.
    slices : tuple of slice
        Column slice of each block.
    S : ndarray of shape (M, D)
        Block-diagonal shift matrix (``s_m`` in the columns of block ``m``).
    alpha, gamma : ndarray of shape (n, M), float64
        Per-row scalars of the features (see the module docstring).
    y : ndarray of shape (n,)
        Encoded labels ``0 .. n_classes - 1``.
    n_classes : int
    sample_weight : ndarray of shape (n,)
        Row weights (class weights included).
    C, tol, max_iter : float, float, int
        As in :class:`~sklearn.linear_model.LogisticRegression`.
    coef0 : ndarray of shape (K, D + 1), optional
        Warm start: coefficients then intercept, ``K = 1`` for two classes.

    Returns
    -------
    coef : ndarray of shape (K, D + 1)
        Coefficients, intercept in the last column.
    n_iter : int
        L-BFGS iterations.
    """
    n, D = X.shape
    binary = n_classes == 2
    K = 1 if binary else n_classes
    sw = np.asarray(sample_weight, dtype=np.float64)
    sw_sum = sw.sum()
    l2 = 1.0 / (C * sw_sum)
    if binary:
        target = (y == 1).astype(np.float64)[:, None]
    else:
        target = np.zeros((n, K))
        target[np.arange(n), y] = 1.0

    def loss_grad(theta):
        th = theta.reshape(K, D + 1)
        W, b = th[:, :D], th[:, D]
        raw = decision_values(X, slices, S, alpha, gamma, W, b)
        if binary:
            # Half binomial loss log(1 + e^r) - y r, and its derivative.
            point = np.logaddexp(0.0, raw) - target * raw
            G = expit(raw) - target
        else:
            lse = logsumexp(raw, axis=1, keepdims=True)
            point = lse - np.sum(target * raw, axis=1, keepdims=True)
            G = np.exp(raw - lse) - target
        loss = float(sw @ point.sum(axis=1)) / sw_sum + 0.5 * l2 * float(np.sum(W * W))
        G *= (sw / sw_sum)[:, None]
        grad = np.empty((K, D + 1))
        grad[:, :D] = _grad_W(X, slices, S, alpha, gamma, G) + l2 * W
        grad[:, D] = G.sum(axis=0)
        return loss, grad.ravel()

    theta0 = np.zeros((K, D + 1)) if coef0 is None else np.asarray(coef0, dtype=np.float64)
    res = minimize(
        loss_grad,
        theta0.ravel(),
        method="L-BFGS-B",
        jac=True,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    if not res.success and res.nit >= max_iter:
        warnings.warn(
            f"The probe's lbfgs did not converge in max_iter={max_iter} iterations; "
            "increase max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return res.x.reshape(K, D + 1), min(int(res.nit), max_iter)
