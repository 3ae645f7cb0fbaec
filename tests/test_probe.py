"""skgap._probe: preconditioned L-BFGS, LogisticRegression's objective and stopping rule."""

import warnings

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skgap import _probe
from skgap._probe import fit_shifted_logistic, fold_statistics, preconditioner, row_scalars
from skgap.datasets import make_paired_embeddings
from skgap.shift import ModalityGapShifter

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
    monkeypatch.setattr(_probe, "_ITEM_BYTES", 50 * 2 * D * 8)  # 16 items of 50 rows
    one, n_one = _fit(problem, n_classes, tol=1e-6, max_iter=500, threads=1)
    two, n_two = _fit(problem, n_classes, tol=1e-6, max_iter=500, threads=2)
    np.testing.assert_array_equal(one, two)
    assert n_one == n_two
    np.testing.assert_allclose(one, whole, atol=1e-4)


def test_a_warm_start_from_the_last_solution_skips_the_forward_pass(monkeypatch):
    problem = _problem(2)
    products = {}
    coef, _ = _fit(problem, 2, tol=1e-8, max_iter=1000, products=products)
    forward = []
    block_products = _probe._block_products

    def counted(*args):
        forward.append(1)
        return block_products(*args)

    monkeypatch.setattr(_probe, "_block_products", counted)
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
