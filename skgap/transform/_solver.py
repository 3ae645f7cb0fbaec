r"""The logistic solver of the implicitly shifted probes (private).

The objective is scikit-learn's ``LogisticRegression(solver='lbfgs')``, term
for term: the weighted mean of the half binomial (or half multinomial, all
classes penalised) loss plus :math:`\lVert W \rVert^2 / (2 C \sum_i w_i)`;
the optimiser is SciPy's L-BFGS-B with ``gtol=tol``, ``ftol=64 eps``,
``maxls=50`` and ``maxiter=max_iter`` (after any conjugate-gradient steps,
which count towards ``max_iter``), and every fit stops by scikit-learn's
rule: the largest absolute gradient at most ``tol``. The features are those
of :mod:`skgap.transform._implicit`: the solver never forms them.

scikit-learn's ``LinearModelLoss`` computes the same objective but needs the
features as a matrix: written out for each lambda, at 16k x (2 x 512) float32
rows one of its evaluations took 1.2-1.3 times the fused evaluation here
(binary; 1.1-1.3 times with 10 classes), and writing the features costs about
five binary evaluations (one with 10 classes) a lambda, where a warm-started
lambda needs two or three. So the evaluation stays fused
(:class:`_ShiftedObjective`: the forward and backward products of a run of
rows read it once from memory), and the pointwise multinomial loss inside it
is scikit-learn's own ``HalfMultinomialLoss``. The tests check the objective,
its gradient and its curvature term by term against ``LinearModelLoss`` on the
written-out features.

A cold start (no previous solution to start from) is preconditioned: CLIP-like
embeddings lie in a narrow cone, so the features' covariance is very
anisotropic and plain L-BFGS needs 15-40 iterations (60-90 with 10 classes)
where the preconditioned one needs 5-8 (see :func:`preconditioner`). The
change of variables does not change the objective or the optimum, only the
path to it, and the stopping rule stays scikit-learn's on the *original*
coefficients.

A warm start (the previous :math:`\lambda`'s solution, or the folds'
solutions for the refit) is close to the optimum, where the objective is
nearly quadratic; there L-BFGS-B's first iteration, whose trial step has unit
length, spends two to three evaluations. A warm start takes conjugate-gradient
steps instead, each to the minimum of the quadratic model along its
direction: one pass over the rows a step (see :func:`_warm_steps`); L-BFGS-B
takes over if a step does not lower the loss as Armijo's rule asks, or after
:data:`_MAX_WARM_STEPS` steps. The steps are taken in the original variables, not the whitened ones: a change
of lambda moves the solution mostly along the gradient itself, which one
exact line step there follows.
"""

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import minimize
from scipy.special import expit
from sklearn._loss.loss import HalfMultinomialLoss
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from .._core._parallel import run_work_items
from ._implicit import (
    _block_products,
    _item_rows,
    _raw,
    _sample_rows,
    _shift_products,
    feature_means,
    row_scalars,
)

__all__ = [
    "encode_labels",
    "fit_logistic_regression",
    "fit_shifted_logistic",
    "preconditioner",
]


#: Conjugate-gradient steps a warm start may take before L-BFGS-B takes over.
#: Along a lambda path a warm start needs 0-2 steps (up to 7 on a coarse grid
#: with several classes); from a start that is near in another way (the
#: solution of other rows) CG can crawl for a hundred steps where L-BFGS-B
#: needs six.
_MAX_WARM_STEPS = 5


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
    rows = _sample_rows(sample_weight, max_rows)
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


def _warn_not_converged(max_iter):
    # Called from fit_shifted_logistic: stacklevel 4 points at the code that
    # called its wrapper, where the user's fit is, not inside the solver.
    warnings.warn(
        f"The probe's lbfgs did not converge in max_iter={max_iter} iterations; "
        "increase max_iter.",
        ConvergenceWarning,
        stacklevel=4,
    )


def _lbfgs_options(max_iter, gtol):
    """L-BFGS-B options of scikit-learn's lbfgs logistic regression."""
    return {"maxiter": max_iter, "maxls": 50, "gtol": gtol, "ftol": 64 * np.finfo(float).eps}


@dataclass(frozen=True)
class _Point:
    """One point of an evaluation: ``W`` in ``X``'s dtype, its shift products and block products.

    ``P`` holds the block products ``X_m W_m^T`` (shape ``(n, M, K)``); when
    ``reuse`` is true they come from the cache and the forward pass is skipped.
    """

    Wt: np.ndarray
    sW: np.ndarray
    b: np.ndarray
    P: np.ndarray
    reuse: bool


class _ShiftedObjective:
    r"""``LogisticRegression``'s objective on the implicit features of one lambda.

    The weighted mean of the half binomial (one column of decision values)
    or half multinomial loss plus :math:`\ell \lVert W \rVert^2 / 2` with
    :math:`\ell = 1 / (C \sum_i w_i)`, and its gradient in
    :math:`\theta = [W \mid b]` (shape ``(K, D + 1)``, raveled for SciPy).

    Each evaluation runs in work items of rows (:func:`_item_rows`): an item
    computes its decision values, pointwise losses and residuals, then its
    backward products while its rows are still in cache, and writes its
    partial sums into its own slot; the slots are added in item order, so the
    result does not depend on ``threads``.

    State kept between calls, all on this object: the predicted
    probabilities of the last evaluation (:attr:`probs`, for the curvature of
    :meth:`curvature`) and ``products``, the cache of the block products of
    the last evaluated ``W`` (a dict with keys ``'W'`` and ``'P'``, shared by
    the fits of one ``X`` along a lambda path).
    """

    def __init__(self, X, slices, S, alpha, gamma, y, n_classes, sample_weight, *, C,
                 products, threads):
        n, D = X.shape
        self.X, self.slices, self.S, self.alpha, self.gamma = X, slices, S, alpha, gamma
        self.n, self.D, self.M = n, D, len(slices)
        self.binary = n_classes == 2
        self.K = K = 1 if self.binary else n_classes
        self.sw = np.asarray(sample_weight, dtype=np.float64)
        self.sw_sum = self.sw.sum()
        self.scale = self.sw / self.sw_sum
        self.l2 = 1.0 / (C * self.sw_sum)
        if self.binary:
            self.target = (y == 1).astype(np.float64)[:, None]
        else:
            self._base_loss = HalfMultinomialLoss(n_classes=n_classes)
            self._y_true = np.asarray(y, dtype=np.float64)
            self.target = np.zeros((n, K))
            self.target[np.arange(n), y] = 1.0
        self.products = {} if products is None else products
        self.threads = threads
        self.item_rows = _item_rows(X)
        n_items = -(-n // self.item_rows)
        # Per work item: weighted loss, X^T (alpha G), gamma^T G and sum G.
        self._loss_parts = np.empty(n_items)
        self._grad_parts = np.empty((n_items, K, D))
        self._gamma_parts = np.empty((n_items, self.M, K))
        self._sum_parts = np.empty((n_items, K))
        self.probs = np.empty((n, K))

    def split(self, theta):
        """``W`` (``(K, D)``) and ``b`` (``(K,)``) of the raveled ``theta``."""
        th = theta.reshape(self.K, self.D + 1)
        return th[:, : self.D], th[:, self.D]

    def _point(self, W, b):
        Wt = W.astype(self.X.dtype, copy=False)
        # X_m W_m^T does not depend on lambda: a warm start (the previous
        # lambda's solution, its last evaluated point) skips the forward pass.
        reuse = np.array_equal(self.products.get("W"), Wt)
        P = self.products["P"] if reuse else np.empty((self.n, self.M, self.K))
        return _Point(Wt, _shift_products(self.S, self.slices, W), b, P, reuse)

    def _pointwise(self, raw, a, z):
        """Pointwise losses ``(rows,)`` and residuals ``G = p - t`` ``(rows, K)`` of rows ``a:z``."""
        t = self.target[a:z]
        if self.binary:
            # Half binomial loss log(1 + e^r) - y r, and its derivative, in
            # NumPy: scikit-learn's compiled HalfBinomialLoss made a whole
            # evaluation 6-11% slower on one column of decision values (and
            # rounds differently, which moves float32 fits along another path).
            point = np.logaddexp(0.0, raw) - t * raw
            return point.sum(axis=1), expit(raw) - t
        # scikit-learn's own HalfMultinomialLoss (the base loss of its
        # LinearModelLoss): its compiled loop makes a whole 10-class evaluation
        # 1.1-1.8x faster than logsumexp and exp over the (rows, K) block.
        return self._base_loss.loss_gradient(self._y_true[a:z], raw)

    def _item(self, point, a, z):
        """Forward pass, pointwise terms and backward products of rows ``a:z``."""
        i = a // self.item_rows
        Xi = self.X[a:z]
        if not point.reuse:
            point.P[a:z] = _block_products(Xi, self.slices, point.Wt)
        raw = _raw(self.alpha[a:z], point.P[a:z], self.gamma[a:z], point.sW, point.b)
        t = self.target[a:z]
        loss, G = self._pointwise(raw, a, z)
        self._loss_parts[i] = self.sw[a:z] @ loss
        self.probs[a:z] = G + t
        G *= self.scale[a:z, None]
        # The backward products read the item's rows again while in cache.
        for m, sl in enumerate(self.slices):
            AG = (self.alpha[a:z, m, None] * G).astype(self.X.dtype)
            if self.K == 1:
                self._grad_parts[i, 0, sl] = Xi[:, sl].T @ AG[:, 0]
            else:
                # (d, n) @ (n, K): OpenBLAS is slow on the (K, n) @ (n, d) orientation.
                self._grad_parts[i, :, sl] = (Xi[:, sl].T @ AG).T
        self._gamma_parts[i] = self.gamma[a:z].T @ G
        self._sum_parts[i] = G.sum(axis=0)

    def loss_gradient(self, theta):
        """Loss (float) and gradient (raveled like ``theta``) at ``theta``; one read of the rows."""
        W, b = self.split(theta)
        point = self._point(W, b)
        run_work_items(self.n, self.item_rows, partial(self._item, point), threads=self.threads)
        if not point.reuse:
            self.products["W"], self.products["P"] = point.Wt.copy(), point.P
        D = self.D
        loss = float(self._loss_parts.sum()) / self.sw_sum + 0.5 * self.l2 * float(np.sum(W * W))
        grad = np.empty((self.K, D + 1))
        grad[:, :D] = self._grad_parts.sum(axis=0) + self.l2 * W
        gG = self._gamma_parts.sum(axis=0)
        for m, sl in enumerate(self.slices):
            grad[:, sl] += np.outer(gG[m], self.S[m, sl].astype(np.float64))
        grad[:, D] = self._sum_parts.sum(axis=0)
        return loss, grad.ravel()

    def direction_products(self, d):
        """Block products ``X_m d_m^T`` ``(n, M, K)`` of a direction ``d`` ``(K, D + 1)``; half a pass."""
        Wdt = d[:, : self.D].astype(self.X.dtype)
        Pd = np.empty((self.n, self.M, self.K))

        def item(a, z):
            Pd[a:z] = _block_products(self.X[a:z], self.slices, Wdt)

        run_work_items(self.n, self.item_rows, item, threads=self.threads)
        return Pd

    def curvature(self, d, Pd):
        r""":math:`d^\top H d` at the last evaluated point, from the direction's products ``Pd``.

        With the change :math:`a_i = Z_i d_W^\top + d_b` of the decision values,
        :math:`d^\top H d = \sum_i \omega_i (\sum_k p_{ik} a_{ik}^2 -
        (\sum_k p_{ik} a_{ik})^2) + \ell \lVert d_W \rVert^2`
        (:math:`p_i (1 - p_i) a_i^2` for a binary probe).
        """
        Wd, db = d[:, : self.D], d[:, self.D]
        A = _raw(self.alpha, Pd, self.gamma, _shift_products(self.S, self.slices, Wd), db)
        p = self.probs
        if self.binary:
            h = p[:, 0] * (1.0 - p[:, 0]) * A[:, 0] ** 2
        else:
            h = np.sum(p * A * A, axis=1) - np.sum(p * A, axis=1) ** 2
        return float(self.scale @ h) + self.l2 * float(np.sum(Wd * Wd))

    def move_products(self, theta, t, Pd):
        """Cache the products of ``theta + t d`` as ``X w + t X d``: its evaluation skips the forward pass."""
        self.products["W"] = theta[:, : self.D].astype(self.X.dtype)
        self.products["P"] = self.products["P"] + t * Pd


def _warm_steps(objective, theta, *, tol, max_iter):
    """Conjugate-gradient steps with exact quadratic line steps from a warm start.

    Near the optimum the objective is nearly quadratic. Each step goes to the
    minimum of the quadratic model along a Polak-Ribiere direction ``d``:
    ``t = -g.d / d'Hd`` (:meth:`_ShiftedObjective.curvature`). The curvature
    needs the products ``X_m d_m`` (half a pass), and these give the new
    point's products too, ``X_m (w + t d)_m = X_m w_m + t X_m d_m``, so its
    evaluation skips the forward pass: one pass a step, where L-BFGS-B's first
    iteration from a warm start spends two to three (its first trial step has
    unit length). The stopping rule is scikit-learn's (largest absolute
    gradient at most ``tol``).

    Returns the point ``(K, D + 1)``, the steps taken and whether it met
    ``tol``; if not (a step that does not lower the loss by Armijo's rule,
    where the model is not quadratic enough, or :data:`_MAX_WARM_STEPS`
    steps: the start was not close enough for CG to pay), L-BFGS-B goes on
    from the point returned.
    """
    loss, grad = objective.loss_gradient(theta.ravel())
    d = g_prev = None
    steps = min(max_iter, _MAX_WARM_STEPS)
    for step in range(steps):
        if np.max(np.abs(grad)) <= tol:
            return theta, step, True
        beta = 0.0
        if g_prev is not None:  # Polak-Ribiere+
            beta = max(0.0, float(grad @ (grad - g_prev)) / float(g_prev @ g_prev))
        d = -grad + beta * d if beta > 0 else -grad
        slope = float(grad @ d)
        if not slope < 0:  # not a descent direction: restart
            d = -grad
            slope = -float(grad @ grad)
        dth = d.reshape(theta.shape)
        Pd = objective.direction_products(dth)
        curvature = objective.curvature(dth, Pd)
        if not curvature > 0:
            return theta, step, False
        t = -slope / curvature
        new = theta + t * dth
        objective.move_products(new, t, Pd)
        new_loss, new_grad = objective.loss_gradient(new.ravel())
        if not new_loss <= loss + 1e-4 * t * slope:
            return theta, step, False
        theta, loss, grad, g_prev = new, new_loss, new_grad, grad
    return theta, steps, np.max(np.abs(grad)) <= tol


def _fit_plain(objective, theta0, *, tol, max_iter):
    """L-BFGS-B in the original variables, as scikit-learn runs it; returns (coef, n_iter, hit_cap)."""
    res = minimize(
        objective.loss_gradient, theta0.ravel(), method="L-BFGS-B", jac=True,
        options=_lbfgs_options(max_iter, tol),
    )
    hit_cap = not res.success and res.nit >= max_iter
    return res.x.reshape(theta0.shape), min(int(res.nit), max_iter), hit_cap


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
        ``(R, mu, root_c)`` from :func:`preconditioner` (``mu`` best the
        features' mean of this lambda, :func:`feature_means`): L-BFGS then
        runs in the variables :math:`v = Rw`,
        :math:`v_0 = \sqrt c (b + \mu^\top w)` of each class. The objective
        is unchanged; the solver stops, as scikit-learn's, when the largest
        absolute gradient *in the original coefficients and intercepts* is
        at most ``tol`` (checked after each iteration, at the start too), or
        on SciPy's relative-reduction test, which does not depend on the
        variables. A warm start (``coef0``) first takes conjugate-gradient
        steps in the original variables (module docstring); L-BFGS-B, in
        these variables or the original ones, goes on only if they stop
        short.
    products : dict, optional
        Cache of the block products ``X_m W_m^T`` of the last evaluated
        ``W``, shared by the fits of one ``X`` along the lambda path: a warm
        start from the previous solution skips its first forward pass, and
        so does the point each conjugate-gradient step reaches.
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
        Iterations: conjugate-gradient steps plus L-BFGS iterations.
    """
    objective = _ShiftedObjective(
        X, slices, S, alpha, gamma, y, n_classes, sample_weight, C=C, products=products,
        threads=threads,
    )
    K, D = objective.K, objective.D
    theta0 = np.zeros((K, D + 1)) if coef0 is None else np.asarray(coef0, dtype=np.float64)
    done = 0
    if coef0 is not None:
        theta0, done, met = _warm_steps(objective, theta0, tol=tol, max_iter=max_iter)
        if met:
            return theta0, done
        if done >= max_iter:
            _warn_not_converged(max_iter)
            return theta0, max_iter
    if precondition is not None:
        fit = partial(_fit_preconditioned, precondition=precondition)
    else:
        fit = _fit_plain
    coef, n_iter, hit_cap = fit(objective, theta0, tol=tol, max_iter=max_iter - done)
    if hit_cap:
        _warn_not_converged(max_iter)
    return coef, done + n_iter


class _Converged(Exception):
    """Raised by the L-BFGS-B callback at an iterate that meets ``tol``; carries it.

    An exception of our own rather than SciPy's ``StopIteration`` protocol,
    which only SciPy >= 1.11 honours.
    """


def _whitened_gradient(grad, precondition):
    r"""Gradient in the variables of :func:`preconditioner`, shape (K, D + 1).

    The chain rule through :math:`w = R^{-1} v` and
    :math:`b = v_0 / \sqrt c - \mu^\top w`.
    """
    R, mu, root_c = precondition
    D = grad.shape[1] - 1
    g_W = grad[:, :D] - grad[:, D:] * mu
    return np.column_stack(
        [solve_triangular(R, g_W.T, trans="T", lower=False, check_finite=False).T,
         grad[:, D] / root_c]
    )


def _from_whitened(v, precondition):
    """Coefficients and intercepts ``(K, D + 1)`` of the whitened variables ``v``."""
    R, mu, root_c = precondition
    D = v.shape[1] - 1
    W = solve_triangular(R, v[:, :D].T, lower=False, check_finite=False).T
    return np.column_stack([W, v[:, D] / root_c - W @ mu])


def _to_whitened(theta, precondition):
    """The whitened variables (raveled) of coefficients and intercepts ``(K, D + 1)``."""
    R, mu, root_c = precondition
    D = theta.shape[1] - 1
    W, b = theta[:, :D], theta[:, D]
    return np.column_stack([W @ R.T, (b + W @ mu) * root_c]).ravel()


class _WhitenedObjective:
    """The objective in the variables of :func:`preconditioner`, memoised at its last point.

    SciPy evaluates the start again, and the stopping test after each
    iteration needs the gradient at the new iterate, which the line search
    has just computed: the memo (the last ``v``, its loss and whitened
    gradient, and the largest absolute gradient in the *original*
    variables) answers both without another pass.
    """

    def __init__(self, objective, theta0, precondition):
        self.objective, self.theta0, self.precondition = objective, theta0, precondition
        self.shape = theta0.shape
        self.v0 = _to_whitened(theta0, precondition)
        self._v = self._out = None
        self.gmax = np.inf

    def to_theta(self, v):
        return _from_whitened(v.reshape(self.shape), self.precondition)

    def __call__(self, v):
        if self._v is not None and np.array_equal(v, self._v):
            return self._out
        # The start itself without a round trip: its block products may be cached.
        theta = self.theta0 if v is self.v0 else self.to_theta(v)
        loss, grad = self.objective.loss_gradient(theta.ravel())
        grad = grad.reshape(self.shape)
        g_v = _whitened_gradient(grad, self.precondition)
        self._v, self._out, self.gmax = v.copy(), (loss, g_v.ravel()), np.max(np.abs(grad))
        return self._out

    def converged(self, v, tol):
        """Whether the gradient at ``v``, in the original variables, meets ``tol``."""
        self(v)
        return self.gmax <= tol


class _StopAtTol:
    """L-BFGS-B callback: counts iterations, raises :class:`_Converged` at one that meets ``tol``."""

    def __init__(self, whitened, tol):
        self.whitened, self.tol, self.n_iter = whitened, tol, 0

    def __call__(self, xk):
        # Called after each iteration (SciPy counts it first), at the new iterate.
        self.n_iter += 1
        if self.whitened.converged(xk, self.tol):
            raise _Converged(np.array(xk, dtype=np.float64))


def _fit_preconditioned(objective, theta0, *, precondition, tol, max_iter):
    """L-BFGS-B in the variables of :func:`preconditioner`, stopped on the original gradient.

    Returns ``(coef, n_iter, hit_cap)``.
    """
    whitened = _WhitenedObjective(objective, theta0, precondition)
    if whitened.converged(whitened.v0, tol):  # scikit-learn's L-BFGS-B also stops at a converged start
        return theta0, 0, False
    stop = _StopAtTol(whitened, tol)
    try:
        # gtol=0: the gradient test is the callback's, on the original variables.
        res = minimize(
            whitened, whitened.v0, method="L-BFGS-B", jac=True, callback=stop,
            options=_lbfgs_options(max_iter, 0.0),
        )
    except _Converged as converged:
        return whitened.to_theta(converged.args[0]), min(stop.n_iter, max_iter), False
    hit_cap = not res.success and res.nit >= max_iter
    return whitened.to_theta(res.x), min(int(res.nit), max_iter), hit_cap


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
    params, X, y, slices, stats, lam, *, rows=None, precondition=True, coef0=None, threads=1
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
    precondition : bool or tuple, default=True
        Run L-BFGS in the variables of :func:`preconditioner` (a few times
        fewer iterations, and at a given ``tol`` closer to the optimum);
        ``False`` follows ``LogisticRegression``'s own path from zero, so the
        solution matches its solution on the written-out rows up to rounding.
        A tuple is a :func:`preconditioner` built for other rows or another
        lambda: its factor is used with these rows' feature mean at ``lam``
        (:func:`feature_means`), which saves building one.
    coef0 : ndarray of shape (K, D + 1), optional
        Starting point (coefficients then intercept, one row for two
        classes), e.g. the cross-validation fits of ``lam``; ``None`` starts
        from zero.
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
    if isinstance(precondition, tuple):
        mu = feature_means(X, slices, stats, [lam], sample_weight)[0]
        pre = (precondition[0], mu, precondition[2])
    elif precondition:
        pre = preconditioner(X, slices, S, alpha, gamma, sample_weight, classes.size, C)
    coef, n_iter = fit_shifted_logistic(
        X, slices, S, alpha, gamma, y_enc, classes.size, sample_weight, C=C,
        tol=params.get("tol", 1e-4), max_iter=params.get("max_iter", 100), coef0=coef0,
        precondition=pre, threads=threads,
    )
    probe = LogisticRegression(**params)
    probe.classes_ = classes
    probe.coef_ = np.ascontiguousarray(coef[:, :-1], dtype=X.dtype)
    probe.intercept_ = coef[:, -1].astype(X.dtype)
    probe.n_features_in_ = X.shape[1]
    probe.n_iter_ = np.array([n_iter], dtype=np.int32)
    return probe
