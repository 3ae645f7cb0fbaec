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

A cold start (no previous solution to start from) is preconditioned: CLIP-like
embeddings lie in a narrow cone, so the features' covariance is very
anisotropic and plain L-BFGS needs 15-40 iterations (60-90 with 10 classes)
where the preconditioned one needs 5-8 (see :func:`preconditioner`). The
change of variables does not change the objective or the optimum, only the
path to it, and the stopping rule stays scikit-learn's on the *original*
coefficients.

The objective and the optimiser are scikit-learn's
``LogisticRegression(solver='lbfgs')``, term for term: the weighted mean of
the half binomial (or half multinomial, all classes penalised) loss plus
:math:`\lVert W \rVert^2 / (2 C \sum_i w_i)`, minimised by SciPy's L-BFGS-B
with ``gtol=tol``, ``ftol=64 eps``, ``maxls=50`` and ``maxiter=max_iter``.
"""

import mmap
import warnings

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import minimize
from scipy.special import expit, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from ._geometry import block_shift_matrix, replay_row_errors, row_norms, run_work_items
from ._validation import block_names

__all__ = [
    "block_norms",
    "decision_values",
    "encode_labels",
    "fit_logistic_regression",
    "fit_shifted_logistic",
    "fold_statistics",
    "is_memory_mapped",
    "preconditioner",
    "row_scalars",
]


def block_norms(X, slices):
    """Block norms of every row, float64 ``(n, M)``; one pass."""
    return np.stack([row_norms(X[:, sl]) for sl in slices], axis=1).astype(np.float64)


def fold_statistics(X, slices, shifts, norms=None):
    """Per-row block norms and dot products with the shifts, one pass each.

    Returns ``norms`` and ``dots`` (float64, ``(n, M)``) and the block-diagonal
    shift matrix ``S``: row ``i`` of block ``m`` has the unit direction
    ``x / norms[i, m]`` and ``u . s_m = dots[i, m] / norms[i, m]``. The norms
    do not depend on the fold: pass them when already known.
    """
    if norms is None:
        norms = block_norms(X, slices)
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


def is_memory_mapped(X):
    """Whether ``X``'s buffer is a memory map (``np.load(..., mmap_mode=...)``, ``np.memmap``)."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


#: Bytes of ``X`` per work item of a loss-and-gradient evaluation (2048 rows of
#: 2 x 512 float32): the item's backward products find its rows in cache.
_ITEM_BYTES = 8 << 20


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


def decision_values(X, slices, S, alpha, gamma, W, b):
    """Decision values ``Z @ W.T + b`` of the implicit features, shape (n, K)."""
    Wt = W.astype(X.dtype, copy=False)
    P = _block_products(X, slices, Wt).astype(np.float64)  # (n, M, K)
    return _raw(alpha, P, gamma, _shift_products(S, slices, W), b)


def preconditioner(X, slices, S, alpha, gamma, sample_weight, n_classes, C, max_rows=2048):
    r"""Linear change of variables that makes the probe's Hessian at zero about ``I``.

    At :math:`\theta = 0` every predicted probability is :math:`1/K`
    (:math:`K = 2` for a binary probe), so the Hessian of the objective in the
    coefficients :math:`w` and intercept :math:`b` of one class is

    .. math::

        H = c \sum_i \omega_i \begin{pmatrix} z_i \\ 1 \end{pmatrix}
        \begin{pmatrix} z_i \\ 1 \end{pmatrix}^\top
        + \begin{pmatrix} \ell I & 0 \\ 0 & 0 \end{pmatrix},
        \qquad c = \frac{K - 1}{K^2},\;
        \omega_i = \frac{w_i}{\sum_j w_j},\;
        \ell = \frac{1}{C \sum_j w_j}

    (``c = 1/4`` for a binary probe). With the weighted mean
    :math:`\mu = \sum_i \omega_i z_i`, the covariance
    :math:`\Sigma = \sum_i \omega_i (z_i - \mu)(z_i - \mu)^\top` and the
    Cholesky factor :math:`R^\top R = c\Sigma + \ell I`, the variables

    .. math:: v = R w, \qquad v_0 = \sqrt{c}\,(b + \mu^\top w)

    have Hessian :math:`I` at zero: centring removes the coupling of the
    intercept with the cone's mean direction, :math:`R` whitens the rest.
    :math:`\Sigma` and :math:`\mu` are estimated on at most ``max_rows``
    evenly spaced rows of positive weight (one small GEMM and one Cholesky
    factorisation); any
    :math:`R` and :math:`\mu` give the same optimum, the estimate only decides
    how fast L-BFGS gets there.

    Parameters
    ----------
    X, slices, S, alpha, gamma, sample_weight, n_classes, C
        As in :func:`fit_shifted_logistic`.
    max_rows : int, default=2048
        Rows used for :math:`\Sigma` and :math:`\mu`.

    Returns
    -------
    (R, mu, root_c) or None
        ``R`` (upper-triangular, float64, ``(D, D)``), ``mu`` (float64,
        ``(D,)``) and :math:`\sqrt c`; the ridge added to :math:`c\Sigma` is
        :math:`\max(\ell, 10^{-6} \operatorname{tr}(c\Sigma) / D)`, so that a
        singular :math:`\Sigma` (fewer rows than features) with a tiny
        :math:`\ell` stays factorable. ``None`` if the factorisation still
        fails: the caller then runs plain L-BFGS.
    """
    D = X.shape[1]
    # Rows of zero weight (held-out rows read in place) do not count.
    rows = np.flatnonzero(np.asarray(sample_weight) > 0)
    n = rows.size
    rows = rows[np.unique(np.linspace(0, n - 1, min(n, max_rows)).round().astype(np.intp))]
    Z = np.empty((rows.size, D), dtype=X.dtype)
    for m, sl in enumerate(slices):
        Z[:, sl] = alpha[rows, m, None] * X[rows, sl] + gamma[rows, m, None] * S[m, sl]
    omega = np.asarray(sample_weight, dtype=np.float64)[rows]
    omega = omega / omega.sum()
    mu = omega @ Z
    # In X's dtype: no float64 temporaries of the sample (the GEMM is float32 anyway).
    Zc = (Z - mu.astype(X.dtype)) * np.sqrt(omega).astype(X.dtype)[:, None]
    c = (n_classes - 1) / n_classes**2
    H = c * (Zc.T @ Zc).astype(np.float64)
    # With fewer rows than features and a tiny penalty (huge C) H is singular
    # up to rounding; a ridge floor keeps it factorable (any R is valid).
    ridge = max(1.0 / (C * np.sum(sample_weight)), 1e-6 * np.trace(H) / D)
    H.flat[:: D + 1] += ridge
    try:
        R = cholesky(H, lower=False, check_finite=False)
    except np.linalg.LinAlgError:  # not expected after the floor; plain L-BFGS then
        return None
    return R, mu.astype(np.float64), float(np.sqrt(c))


def _warn_not_converged(max_iter, stacklevel):
    warnings.warn(
        f"The probe's lbfgs did not converge in max_iter={max_iter} iterations; "
        "increase max_iter.",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )


def fit_shifted_logistic(
    X, slices, S, alpha, gamma, y, n_classes, sample_weight, *, C, tol, max_iter, coef0=None,
    precondition=None, products=None, threads=1,
):
    r"""Fit scikit-learn's lbfgs logistic regression on the implicit features.

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
    precondition : tuple, optional
        ``(R, mu, root_c)`` from :func:`preconditioner`: L-BFGS then runs in
        the variables :math:`v = Rw`, :math:`v_0 = \sqrt c (b + \mu^\top w)`
        of each class. The objective is unchanged; the solver stops, as
        scikit-learn's, when the largest absolute gradient *in the original
        coefficients and intercepts* is at most ``tol`` (checked after each
        iteration, at the start too), or on SciPy's relative-reduction test,
        which does not depend on the variables.
    products : dict, optional
        Cache of the block products ``X_m W_m^T`` of the last evaluated
        ``W``, shared by the fits of one ``X`` along the lambda path: a warm
        start from the previous solution skips its first forward pass.
    threads : int, default=1
        Threads sharing each evaluation's work items (row runs of about
        8 MiB: forward and backward products of an item read its rows once
        from memory). BLAS runs at one thread inside; the result does not
        depend on ``threads``.

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

    M = len(slices)
    scale = sw / sw_sum
    item_rows = max(1, _ITEM_BYTES // max(1, D * X.itemsize))
    n_items = -(-n // item_rows)
    # Per work item: weighted loss, X^T (alpha G), gamma^T G and sum G; added in
    # item order, so the result does not depend on the number of threads.
    loss_parts = np.empty(n_items)
    grad_parts = np.empty((n_items, K, D))
    gamma_parts = np.empty((n_items, M, K))
    sum_parts = np.empty((n_items, K))
    if products is None:
        products = {}

    def loss_grad(theta):
        th = theta.reshape(K, D + 1)
        W, b = th[:, :D], th[:, D]
        Wt = W.astype(X.dtype, copy=False)
        sW = _shift_products(S, slices, W)
        # X_m W_m^T does not depend on lambda: a warm start (the previous
        # lambda's solution, its last evaluated point) skips the forward pass.
        reuse = np.array_equal(products.get("W"), Wt)
        P = products["P"] if reuse else np.empty((n, M, K))

        def item(a, z):
            i = a // item_rows
            Xi = X[a:z]
            if not reuse:
                P[a:z] = _block_products(Xi, slices, Wt)
            raw = _raw(alpha[a:z], P[a:z], gamma[a:z], sW, b)
            t = target[a:z]
            if binary:
                # Half binomial loss log(1 + e^r) - y r, and its derivative.
                point = np.logaddexp(0.0, raw) - t * raw
                G = expit(raw) - t
            else:
                lse = logsumexp(raw, axis=1, keepdims=True)
                point = lse - np.sum(t * raw, axis=1, keepdims=True)
                G = np.exp(raw - lse) - t
            loss_parts[i] = sw[a:z] @ point.sum(axis=1)
            G *= scale[a:z, None]
            # The backward products read the item's rows again while in cache.
            for m, sl in enumerate(slices):
                AG = (alpha[a:z, m, None] * G).astype(X.dtype)
                if K == 1:
                    grad_parts[i, 0, sl] = Xi[:, sl].T @ AG[:, 0]
                else:
                    # (d, n) @ (n, K): OpenBLAS is slow on the (K, n) @ (n, d) orientation.
                    grad_parts[i, :, sl] = (Xi[:, sl].T @ AG).T
            gamma_parts[i] = gamma[a:z].T @ G
            sum_parts[i] = G.sum(axis=0)

        run_work_items(n, item_rows, item, threads=threads)
        if not reuse:
            products["W"], products["P"] = Wt.copy(), P
        loss = float(loss_parts.sum()) / sw_sum + 0.5 * l2 * float(np.sum(W * W))
        grad = np.empty((K, D + 1))
        grad[:, :D] = grad_parts.sum(axis=0) + l2 * W
        gG = gamma_parts.sum(axis=0)
        for m, sl in enumerate(slices):
            grad[:, sl] += np.outer(gG[m], S[m, sl].astype(np.float64))
        grad[:, D] = sum_parts.sum(axis=0)
        return loss, grad.ravel()

    theta0 = np.zeros((K, D + 1)) if coef0 is None else np.asarray(coef0, dtype=np.float64)
    if precondition is not None:
        return _fit_preconditioned(loss_grad, theta0, precondition, tol=tol, max_iter=max_iter)
    res = minimize(
        loss_grad,
        theta0.ravel(),
        method="L-BFGS-B",
        jac=True,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    if not res.success and res.nit >= max_iter:
        _warn_not_converged(max_iter, stacklevel=4)
    return res.x.reshape(K, D + 1), min(int(res.nit), max_iter)


class _Converged(Exception):
    """Raised by the L-BFGS-B callback at an iterate that meets ``tol``; carries it.

    An exception of our own rather than SciPy's ``StopIteration`` protocol,
    which only SciPy >= 1.11 honours.
    """


def _fit_preconditioned(loss_grad, theta0, precondition, *, tol, max_iter):
    """L-BFGS-B in the variables of :func:`preconditioner`, stopped on the original gradient."""
    R, mu, root_c = precondition
    K, D = theta0.shape[0], theta0.shape[1] - 1

    def to_theta(v):
        v = v.reshape(K, D + 1)
        W = solve_triangular(R, v[:, :D].T, lower=False, check_finite=False).T
        return np.column_stack([W, v[:, D] / root_c - W @ mu])

    # Memo of the last evaluation: SciPy re-evaluates the start, and the
    # stopping test after each iteration needs the gradient at the new iterate,
    # which the line search has just computed.
    last = {"v": None}

    def loss_grad_v(v):
        if last["v"] is not None and np.array_equal(v, last["v"]):
            return last["out"]
        loss, grad = loss_grad(to_theta(v).ravel())
        grad = grad.reshape(K, D + 1)
        # Chain rule through w = R^-1 v and b = v_0 / sqrt(c) - mu.w.
        g_W = grad[:, :D] - grad[:, D:] * mu
        g_v = np.column_stack(
            [solve_triangular(R, g_W.T, trans="T", lower=False, check_finite=False).T,
             grad[:, D] / root_c]
        )
        last.update(v=v.copy(), out=(loss, g_v.ravel()), gmax=np.max(np.abs(grad)))
        return last["out"]

    def converged(v):
        loss_grad_v(v)
        return last["gmax"] <= tol

    W0, b0 = theta0[:, :D], theta0[:, D]
    v0 = np.column_stack([W0 @ R.T, (b0 + W0 @ mu) * root_c]).ravel()
    if converged(v0):  # scikit-learn's L-BFGS-B also stops at a converged start
        return theta0, 0
    n_iter = [0]

    def callback(xk):
        # Called after each iteration (SciPy counts it first), at the new iterate.
        n_iter[0] += 1
        if converged(xk):
            raise _Converged(np.array(xk, dtype=np.float64))

    try:
        res = minimize(
            loss_grad_v,
            v0,
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            # gtol=0: the gradient test is the callback's, on the original variables.
            options={
                "maxiter": max_iter, "maxls": 50, "gtol": 0.0, "ftol": 64 * np.finfo(float).eps
            },
        )
    except _Converged as stop:
        return to_theta(stop.args[0]), min(n_iter[0], max_iter)
    if not res.success and res.nit >= max_iter:
        _warn_not_converged(max_iter, stacklevel=5)
    return to_theta(res.x), min(int(res.nit), max_iter)


def encode_labels(y, class_weight, rows=None, name="the data"):
    """Classes, label codes and row weights of ``LogisticRegression``'s objective.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Labels.
    class_weight : dict, 'balanced' or None
        As in :class:`~sklearn.linear_model.LogisticRegression`, computed on
        the training rows.
    rows : ndarray of int, optional
        The training rows; the others get code 0 and weight 0, which leaves
        the objective that of ``rows`` alone. ``None``: every row.
    name : str, default='the data'
        What the training rows are called in the error message.

    Returns
    -------
    classes : ndarray
        Sorted classes of the training rows.
    y_enc : ndarray of shape (n,)
        Codes ``0 .. len(classes) - 1``.
    sample_weight : ndarray of shape (n,), float64

    Raises
    ------
    ValueError
        When the training rows hold fewer than two classes (scikit-learn's
        message).
    """
    y_rows = y if rows is None else y[rows]
    classes, codes = np.unique(y_rows, return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            "This solver needs samples of at least 2 classes in the data, but "
            f"{name} contains only one class: {classes[0]!r}"
        )
    weights = np.ones(classes.size)
    if class_weight is not None:
        weights = compute_class_weight(class_weight, classes=classes, y=y_rows)
    if rows is None:
        return classes, codes, weights[codes]
    y_enc, sample_weight = np.zeros(len(y), dtype=codes.dtype), np.zeros(len(y))
    y_enc[rows], sample_weight[rows] = codes, weights[codes]
    return classes, y_enc, sample_weight


def fit_logistic_regression(
    params, X, y, slices, stats, lam, *, rows=None, precondition=True, threads=1
):
    """``LogisticRegression(**params)`` fitted on gap-shifted rows that are never written.

    Equal, within the solver's tolerance, to
    ``LogisticRegression(**params).fit(Z[rows], y[rows])`` where block ``m`` of
    ``Z`` is ``(u + lam * s_m) / ||u + lam * s_m||`` for the unit rows ``u`` of
    ``X`` and the unit shifts ``s_m``: the same objective term for term
    (:func:`fit_shifted_logistic`), from a cold start.

    Parameters
    ----------
    params : dict
        ``LogisticRegression`` parameters (lbfgs, L2, with an intercept).
    X : ndarray of shape (n, D)
        Raw rows, read in place.
    y : ndarray of shape (n,)
        Labels (only those of ``rows`` are read).
    slices : sequence of slice
        Column slice of each block of ``X``.
    stats : tuple
        :func:`fold_statistics` of ``X`` with the unit shifts ``s_m``.
    lam : float
        Scales the shifts.
    rows : ndarray of int, optional
        The training rows; the others get weight zero, which leaves the
        objective that of ``rows`` alone. ``None``: every row.
    precondition : bool, default=True
        Run L-BFGS in the variables of :func:`preconditioner` (a few times
        fewer iterations, and at a given ``tol`` closer to the optimum);
        ``False`` follows ``LogisticRegression``'s own path from zero, so the
        solution matches its solution on the written-out rows up to rounding.
    threads : int, default=1
        Threads of each evaluation (:func:`fit_shifted_logistic`).

    Returns
    -------
    probe : LogisticRegression
        Fitted, with the attributes its own ``fit`` sets (coefficients in
        ``X``'s dtype, as ``LogisticRegression`` keeps float32 input float32).
    """
    classes, y_enc, sample_weight = encode_labels(y, params.get("class_weight"), rows)
    alpha, gamma = row_scalars(X, slices, stats, lam)
    S = stats[2]
    C = params.get("C", 1.0)
    pre = None
    if precondition:
        pre = preconditioner(X, slices, S, alpha, gamma, sample_weight, classes.size, C)
    coef, n_iter = fit_shifted_logistic(
        X, slices, S, alpha, gamma, y_enc, classes.size, sample_weight, C=C,
        tol=params.get("tol", 1e-4), max_iter=params.get("max_iter", 100), precondition=pre,
        threads=threads,
    )
    probe = LogisticRegression(**params)
    probe.classes_ = classes
    probe.coef_ = np.ascontiguousarray(coef[:, :-1], dtype=X.dtype)
    probe.intercept_ = coef[:, -1].astype(X.dtype)
    probe.n_features_in_ = X.shape[1]
    probe.n_iter_ = np.array([n_iter], dtype=np.int32)
    return probe
