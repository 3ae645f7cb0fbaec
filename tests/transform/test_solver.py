"""skgap.transform._solver and _implicit: preconditioned L-BFGS, LogisticRegression's objective and stopping rule."""

import warnings

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skgap.datasets import make_paired_embeddings
from skgap.transform import _implicit, _solver
from skgap.transform._implicit import fold_statistics, row_scalars
from skgap.transform._shift import ModalityGapShifter
from skgap.transform._solver import fit_shifted_logistic, preconditioner

D = 24
SLICES = (slice(0, D), slice(D, 2 * D))


def _problem(n_classes, lam=0.4, n=800, noise=3.0, dtype=np.float64, preset="coco-clip"):
    X, y = make_paired_embeddings(
        n, D, n_classes, preset=preset, noise=noise, random_state=n_classes
    )
    X = X.astype(dtype)
    shifter = ModalityGapShifter(lam=lam).fit(X)
    stats = fold_statistics(X, SLICES, shifter.shift_vectors_)
    alpha, gamma = row_scalars(X, SLICES, stats, lam)
    sw = np.where(y == 0, 2.0, 1.0)
    return X, y, stats[2], alpha, gamma, sw, shifter.transform(X).astype(np.float64)


def _fit(problem, n_classes, C=0.5, precondition=True, **kw):
    X, y, S, alpha, gamma, sw, _ = problem
    pre = preconditioner(X, SLICES, S, alpha, gamma, sw, n_classes, C) if precondition else None
    return fit_shifted_logistic(
        X, SLICES, S, alpha, gamma, y, n_classes, sw, C=C, precondition=pre, **kw
    )


def _gradient(Z, y, sw, coef, C, n_classes):
    """Gradient of LogisticRegression's objective, written out independently."""
    W, b = coef[:, :-1], coef[:, -1]
    omega = sw / sw.sum()
    raw = Z @ W.T + b
    if n_classes == 2:
        resid = expit(raw) - (y == 1)[:, None]
    else:
        resid = softmax(raw, axis=1) - np.eye(n_classes)[y]
    resid *= omega[:, None]
    g_W = resid.T @ Z + W / (C * sw.sum())
    return np.column_stack([g_W, resid.sum(axis=0)])


def _spy(monkeypatch, name, record=lambda *args, **kw: 1):
    """Replace ``<name>`` in the solver's modules by a pass-through that records each call."""
    calls = []
    modules = [m for m in (_implicit, _solver) if hasattr(m, name)]
    original = getattr(modules[0], name)

    def spy(*args, **kw):
        calls.append(record(*args, **kw))
        return original(*args, **kw)

    for module in modules:
        monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize("n_classes", [2, 3])
def test_preconditioned_fit_reaches_logistic_regression_optimum(n_classes):
    problem = _problem(n_classes)
    coef, n_iter = _fit(problem, n_classes, tol=1e-10, max_iter=5000)
    Z, y, sw = problem[6], problem[1], problem[5]
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(Z, y, sample_weight=sw)
    np.testing.assert_allclose(coef[:, :-1], ref.coef_, atol=1e-5)
    np.testing.assert_allclose(coef[:, -1], ref.intercept_, atol=1e-5)
    assert 0 < n_iter < 5000


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("tol", [1e-3, 1e-5])
def test_stopping_rule_is_the_gradient_of_the_original_coefficients(n_classes, tol):
    """``tol`` means what LogisticRegression(tol=...) means: max |gradient| <= tol."""
    problem = _problem(n_classes)
    coef, n_iter = _fit(problem, n_classes, tol=tol, max_iter=1000)
    grad = _gradient(problem[6], problem[1], problem[5], coef, 0.5, n_classes)
    assert np.max(np.abs(grad)) <= tol
    assert n_iter > 0


def test_preconditioning_cuts_cold_iterations_on_a_cone():
    """Narrow cones make plain L-BFGS slow; the change of variables fixes that."""
    problem = _problem(2, lam=0.0, n=3000, noise=8.0, dtype=np.float32)
    _, plain = _fit(problem, 2, C=1.0, precondition=False, tol=1e-6, max_iter=1000)
    coef, pre = _fit(problem, 2, C=1.0, tol=1e-6, max_iter=1000)
    assert pre < plain / 2
    exact, _ = _fit(problem, 2, C=1.0, tol=1e-12, max_iter=5000)
    grad = _gradient(problem[6], problem[1], problem[5], coef, 1.0, 2)
    assert np.max(np.abs(grad)) <= 1e-6
    assert np.max(np.abs(coef - exact)) < 1e-2


def test_preconditioner_is_a_whitening_of_the_hessian_at_zero():
    """R^T R is c * weighted covariance + l2 I, and mu the weighted mean, on all rows here."""
    X, y, S, alpha, gamma, sw, Z = _problem(3, n=500)
    R, mu, root_c = preconditioner(X, SLICES, S, alpha, gamma, sw, 3, 0.5, max_rows=500)
    omega = sw / sw.sum()
    mean = omega @ Z
    cov = (Z - mean).T @ ((Z - mean) * omega[:, None])
    np.testing.assert_allclose(mu, mean, atol=1e-10)
    assert root_c == pytest.approx(np.sqrt(2 / 9))
    np.testing.assert_allclose(
        R.T @ R, 2 / 9 * cov + np.eye(2 * D) / (0.5 * sw.sum()), rtol=1e-8, atol=1e-12
    )
    assert np.allclose(R, np.triu(R))


def test_converged_start_is_returned_unchanged():
    problem = _problem(2)
    coef, _ = _fit(problem, 2, tol=1e-8, max_iter=1000)
    again, n_iter = _fit(problem, 2, tol=1e-4, max_iter=1000, coef0=coef)
    assert n_iter == 0
    np.testing.assert_array_equal(again, coef)


def test_convergence_warning_at_max_iter():
    problem = _problem(3)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        _, n_iter = _fit(problem, 3, tol=1e-10, max_iter=2)
    assert n_iter == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _fit(problem, 3, tol=1e-4, max_iter=1000)


def test_preconditioner_of_a_singular_covariance_with_a_huge_c():
    """Fewer rows than features and C = 1e12: the ridge floor keeps it factorable."""
    X, y, S, alpha, gamma, sw, Z = _problem(2, n=30)
    pre = preconditioner(X, SLICES, S, alpha, gamma, sw, 2, 1e12)
    assert pre is not None
    R, mu, _ = pre
    cov = np.cov(Z, rowvar=False, bias=True, aweights=sw)
    floor = 1e-6 * np.trace(cov / 4) / (2 * D)
    np.testing.assert_allclose(R.T @ R, cov / 4 + floor * np.eye(2 * D), atol=1e-10)
    coef, _ = fit_shifted_logistic(
        X, SLICES, S, alpha, gamma, y, 2, sw, C=1e12, tol=1e-4, max_iter=300, precondition=pre
    )
    assert np.all(np.isfinite(coef))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_an_evaluation_does_not_depend_on_its_threads(n_classes, monkeypatch):
    """Work items add their partial sums in item order, whatever thread ran them."""
    problem = _problem(n_classes)
    whole, _ = _fit(problem, n_classes, tol=1e-6, max_iter=500)
    monkeypatch.setattr(_implicit, "_ITEM_BYTES", 50 * 2 * D * 8)  # 16 items of 50 rows
    one, n_one = _fit(problem, n_classes, tol=1e-6, max_iter=500, threads=1)
    two, n_two = _fit(problem, n_classes, tol=1e-6, max_iter=500, threads=2)
    np.testing.assert_array_equal(one, two)
    assert n_one == n_two
    np.testing.assert_allclose(one, whole, atol=1e-4)


def test_a_warm_start_from_the_last_solution_skips_the_forward_pass(monkeypatch):
    problem = _problem(2)
    products = {}
    coef, _ = _fit(problem, 2, tol=1e-8, max_iter=1000, products=products)
    forward = _spy(monkeypatch, "_block_products")
    # Warm starts run in the original variables (the search preconditions cold
    # starts only), so the start is the last evaluated point, bit for bit.
    again, n_iter = _fit(problem, 2, tol=1e-4, max_iter=1000, coef0=coef, products=products,
                         precondition=False)
    assert n_iter == 0 and forward == []
    np.testing.assert_array_equal(again, coef)
    # A start elsewhere computes its products.
    _fit(problem, 2, tol=1e-4, max_iter=1000, coef0=0.5 * coef, products=products,
         precondition=False)
    assert forward


def _warm_problem(n_classes=2, lam_from=0.4, lam_to=0.5, n=800):
    """The solution at ``lam_from``, the problem at ``lam_to`` (same shift, as along a
    path) and a preconditioner with the features' mean of ``lam_to``."""
    X, y = make_paired_embeddings(n, D, n_classes, preset="coco-clip", noise=3.0,
                                  random_state=2)
    shifter = ModalityGapShifter(lam=lam_to).fit(X)
    stats = fold_statistics(X, SLICES, shifter.shift_vectors_)
    sw = np.where(y == 0, 2.0, 1.0)
    start = row_scalars(X, SLICES, stats, lam_from)
    pre = preconditioner(X, SLICES, stats[2], *start, sw, n_classes, 0.5)
    products = {}
    coef, _ = fit_shifted_logistic(
        X, SLICES, stats[2], *start, y, n_classes, sw, C=0.5, tol=1e-8, max_iter=1000,
        precondition=pre, products=products,
    )
    alpha, gamma = row_scalars(X, SLICES, stats, lam_to)
    mean = _implicit.feature_means(X, SLICES, stats, [lam_to], sw)[0]
    problem = (X, y, stats[2], alpha, gamma, sw, shifter.transform(X).astype(np.float64))
    return problem, coef, products, (pre[0], mean, pre[2])


def _warm_fit(problem, n_classes, coef0, **kw):
    X, y, S, alpha, gamma, sw, _ = problem
    return fit_shifted_logistic(
        X, SLICES, S, alpha, gamma, y, n_classes, sw, C=0.5, coef0=coef0, **kw
    )


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("tol", [1e-4, 1e-7])
def test_warm_conjugate_gradient_steps_meet_tol(n_classes, tol, monkeypatch):
    """A warm start takes conjugate-gradient steps, stopped by scikit-learn's rule,
    and lands about as close to the optimum as LogisticRegression(tol=tol)."""
    problem, coef0, products, _ = _warm_problem(n_classes)
    Z, y, sw = problem[6], problem[1], problem[5]
    lbfgs = []
    monkeypatch.setattr(_solver, "minimize", lambda *a, **k: lbfgs.append(1))
    if tol < 1e-6:  # more steps than the cap allows: lift it to test CG alone
        monkeypatch.setattr(_solver, "_MAX_WARM_STEPS", 100)
    coef, n_iter = _warm_fit(problem, n_classes, coef0, tol=tol, max_iter=100,
                             products=products)
    assert lbfgs == [] and n_iter > 0
    assert np.max(np.abs(_gradient(Z, y, sw, coef, 0.5, n_classes))) <= tol
    ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=10000).fit(Z, y, sample_weight=sw)
    same_tol = LogisticRegression(C=0.5, tol=tol, max_iter=10000).fit(Z, y, sample_weight=sw)
    best = np.column_stack([ref.coef_, ref.intercept_])
    theirs = np.column_stack([same_tol.coef_, same_tol.intercept_])
    assert np.max(np.abs(coef - best)) <= 3 * np.max(np.abs(theirs - best))


def test_each_warm_step_reads_the_rows_once(monkeypatch):
    """A step's direction products give the new point's products: one forward
    pass a step, and none for the start (the last evaluated point)."""
    problem, coef0, products, _ = _warm_problem()
    forward = _spy(monkeypatch, "_block_products")
    _, n_iter = _warm_fit(problem, 2, coef0, tol=1e-5, max_iter=100, products=products)
    assert 0 < n_iter <= _solver._MAX_WARM_STEPS and len(forward) == n_iter  # one work item


@pytest.mark.parametrize("precondition", [False, True])
def test_warm_steps_hand_over_to_lbfgs_far_from_the_optimum(precondition, monkeypatch):
    """Where the loss is far from quadratic, a step that fails Armijo's test
    hands over to L-BFGS-B (preconditioned if asked), which still meets tol."""
    problem, coef0, _, pre = _warm_problem()
    Z, y, sw = problem[6], problem[1], problem[5]
    far = coef0 + 40.0 * np.random.default_rng(0).standard_normal(coef0.shape)
    calls = _spy(monkeypatch, "minimize", lambda *args, **kw: kw["options"]["maxiter"])
    coef, n_iter = _warm_fit(problem, 2, far, tol=1e-5, max_iter=500,
                             precondition=pre if precondition else None)
    # The steps taken count towards max_iter.
    assert len(calls) == 1 and calls[0] <= 500 and n_iter <= 500
    assert np.max(np.abs(_gradient(Z, y, sw, coef, 0.5, 2))) <= 1e-5


def test_warm_steps_hand_over_to_lbfgs_after_their_cap(monkeypatch):
    """A start too far for conjugate gradients to pay: L-BFGS-B goes on from
    the last step, with what is left of max_iter."""
    problem, coef0, products, _ = _warm_problem(lam_from=0.0, lam_to=1.0)
    Z, y, sw = problem[6], problem[1], problem[5]
    monkeypatch.setattr(_solver, "_MAX_WARM_STEPS", 1)
    calls = _spy(monkeypatch, "minimize", lambda *args, **kw: kw["options"]["maxiter"])
    coef, n_iter = _warm_fit(problem, 2, coef0, tol=1e-6, max_iter=300, products=products)
    assert calls == [299] and 1 < n_iter <= 300
    assert np.max(np.abs(_gradient(Z, y, sw, coef, 0.5, 2))) <= 1e-6


def test_warm_steps_warn_at_max_iter():
    problem, coef0, products, _ = _warm_problem(lam_from=0.0, lam_to=1.0)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        _, n_iter = _warm_fit(problem, 2, coef0, tol=1e-12, max_iter=1, products=products)
    assert n_iter == 1


@pytest.mark.parametrize("n_classes", [2, 3])
def test_warm_steps_do_not_depend_on_their_threads(n_classes, monkeypatch):
    problem, coef0, products, _ = _warm_problem(n_classes)
    monkeypatch.setattr(_implicit, "_ITEM_BYTES", 50 * 2 * D * 8)  # 16 items of 50 rows
    out = [
        _warm_fit(problem, n_classes, coef0, tol=1e-7, max_iter=100, products=dict(products),
                  threads=threads)
        for threads in (1, 2)
    ]
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert out[0][1] == out[1][1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_feature_means_are_the_weighted_means_of_the_shifted_rows(dtype):
    X, y = make_paired_embeddings(300, D, 2, preset="coco-clip", random_state=1)
    X = X.astype(dtype)
    shifter = ModalityGapShifter().fit(X)
    stats = fold_statistics(X, SLICES, shifter.shift_vectors_)
    sw = np.where(y == 0, 3.0, 1.0)
    lams = [0.0, 0.3, 1.0]
    means = _implicit.feature_means(X, SLICES, stats, lams, sw, max_rows=300)
    assert means.shape == (3, 2 * D) and means.dtype == np.float64
    for lam, mean in zip(lams, means):
        Z = shifter.set_params(lam=lam).transform(X).astype(np.float64)
        atol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(mean, sw @ Z / sw.sum(), atol=atol)
    # Rows of zero weight do not count; at most max_rows evenly spaced rows do.
    sw[::2] = 0.0
    kept = _implicit.feature_means(X, SLICES, stats, [0.5], sw, max_rows=10)[0]
    rows = np.flatnonzero(sw)[np.linspace(0, 149, 10).round().astype(int)]
    Z = shifter.set_params(lam=0.5).transform(X[rows]).astype(np.float64)
    np.testing.assert_allclose(kept, sw[rows] @ Z / sw[rows].sum(), atol=1e-6)


def test_row_passes_do_not_depend_on_their_threads(monkeypatch):
    """Gather, dot products with the shifts and decision values split rows only."""
    X, _ = make_paired_embeddings(500, D, 2, random_state=3)
    monkeypatch.setattr(_implicit, "_ITEM_BYTES", 37 * X.shape[1] * X.itemsize)
    rows = np.random.default_rng(0).permutation(500)[:300]
    for threads in (1, 2):
        np.testing.assert_array_equal(_implicit.gather_rows(X, rows, threads), X[rows])
    shifts = ModalityGapShifter().fit(X).shift_vectors_
    one, two = (fold_statistics(X, SLICES, shifts, threads=t) for t in (1, 2))
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_allclose(one[1], X @ one[2].T, rtol=1e-5, atol=1e-6)
    alpha, gamma = row_scalars(X, SLICES, one, 0.5)
    W = np.random.default_rng(1).standard_normal((3, 2 * D))
    b = np.arange(3.0)
    values = [_implicit.decision_values(X, SLICES, one[2], alpha, gamma, W, b, t) for t in (1, 2)]
    np.testing.assert_array_equal(values[0], values[1])
    Z = ModalityGapShifter(lam=0.5).fit(X).transform(X).astype(np.float64)
    np.testing.assert_allclose(values[0], Z @ W.T + b, rtol=1e-4, atol=1e-4)
