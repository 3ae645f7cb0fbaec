"""The solver's objective, term by term against scikit-learn's LinearModelLoss.

``_ShiftedObjective`` evaluates ``LogisticRegression``'s objective on the
implicitly shifted features without forming them. scikit-learn's
``LinearModelLoss`` (with ``HalfBinomialLoss`` / ``HalfMultinomialLoss``, the
objective ``LogisticRegression(solver='lbfgs')`` minimises) evaluates it on the
written-out features ``Z = ModalityGapShifter(lam).transform(X)``: the loss,
the gradient and the curvature ``d' H d`` of the conjugate-gradient steps must
agree, binary and multinomial, with uneven sample weights (zeros included).
"""

import numpy as np
import pytest
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.linear_model._linear_loss import LinearModelLoss

from skgap import ModalityGapShifter
from skgap.datasets import make_paired_embeddings
from skgap.transform._implicit import fold_statistics, row_scalars
from skgap.transform._solver import _ShiftedObjective

D = 16
SLICES = (slice(0, D), slice(D, 2 * D))
C = 0.3
LAM = 0.6


def _case(n_classes, dtype=np.float64, n=400, item_rows=None, monkeypatch=None):
    X, y = make_paired_embeddings(n, D, n_classes, preset="coco-clip", noise=3.0,
                                  random_state=n_classes)
    X = X.astype(dtype)
    shifter = ModalityGapShifter(lam=LAM).fit(X)
    stats = fold_statistics(X, SLICES, shifter.shift_vectors_)
    alpha, gamma = row_scalars(X, SLICES, stats, LAM)
    rng = np.random.default_rng(n_classes)
    sw = rng.uniform(0.2, 3.0, n)
    sw[::9] = 0.0  # held-out rows read in place have weight zero
    objective = _ShiftedObjective(X, SLICES, stats[2], alpha, gamma, y, n_classes, sw, C=C,
                                  products=None, threads=1)
    Z = shifter.transform(X).astype(np.float64)
    base = HalfBinomialLoss() if n_classes == 2 else HalfMultinomialLoss(n_classes=n_classes)
    reference = LinearModelLoss(base, fit_intercept=True)
    K = 1 if n_classes == 2 else n_classes
    theta = 0.7 * rng.standard_normal((K, 2 * D + 1))
    return objective, reference, Z, y.astype(np.float64), sw, theta


def _coef(theta):
    """LinearModelLoss's layout: 1-D for a binary model, (K, D + 1) otherwise."""
    return theta[0] if theta.shape[0] == 1 else theta


@pytest.mark.parametrize("n_classes", [2, 3])
def test_loss_and_gradient_are_linear_model_loss_on_the_shifted_rows(n_classes):
    objective, reference, Z, y, sw, theta = _case(n_classes)
    loss, grad = objective.loss_gradient(theta.ravel())
    l2 = 1.0 / (C * sw.sum())
    ref_loss, ref_grad = reference.loss_gradient(
        _coef(theta), Z, y, sample_weight=sw, l2_reg_strength=l2
    )
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    grad = grad.reshape(theta.shape)
    ref_grad = np.reshape(ref_grad, theta.shape)
    # Term by term: the coefficients of each block, then the intercepts.
    for sl in SLICES:
        np.testing.assert_allclose(grad[:, sl], ref_grad[:, sl], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad[:, -1], ref_grad[:, -1], rtol=1e-10, atol=1e-13)
    # The penalty is C's: with l2 = 0 the two disagree by l2 * W exactly.
    _, unpenalised = reference.loss_gradient(_coef(theta), Z, y, sample_weight=sw)
    np.testing.assert_allclose(
        grad[:, :-1] - np.reshape(unpenalised, theta.shape)[:, :-1], l2 * theta[:, :-1],
        rtol=1e-8, atol=1e-14,
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_curvature_is_the_hessian_product_of_linear_model_loss(n_classes):
    """``d' H d`` of the warm steps equals ``d . hessp(d)`` at the last evaluated point."""
    objective, reference, Z, y, sw, theta = _case(n_classes)
    objective.loss_gradient(theta.ravel())  # the curvature is taken at this point
    _, hessp = reference.gradient_hessian_product(
        _coef(theta), Z, y, sample_weight=sw, l2_reg_strength=1.0 / (C * sw.sum())
    )
    rng = np.random.default_rng(5)
    for direction in [rng.standard_normal(theta.shape) for _ in range(3)] + [
        np.eye(1, theta.size, theta.shape[1] - 1).reshape(theta.shape)  # an intercept alone
    ]:
        curvature = objective.curvature(direction, objective.direction_products(direction))
        expected = float(direction.ravel() @ np.ravel(hessp(_coef(direction))))
        assert curvature == pytest.approx(expected, rel=1e-10)
        assert curvature > 0


@pytest.mark.parametrize("n_classes", [2, 3])
def test_float32_rows_agree_to_their_precision(n_classes):
    objective, reference, Z, y, sw, theta = _case(n_classes, dtype=np.float32)
    loss, grad = objective.loss_gradient(theta.ravel())
    ref_loss, ref_grad = reference.loss_gradient(
        _coef(theta), Z, y, sample_weight=sw, l2_reg_strength=1.0 / (C * sw.sum())
    )
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(grad, np.ravel(ref_grad), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_moved_products_give_the_evaluation_of_the_new_point(n_classes, monkeypatch):
    """A warm step's products ``X w + t X d`` stand in for the forward pass at ``w + t d``."""
    objective, _, _, _, _, theta = _case(n_classes)
    objective.loss_gradient(theta.ravel())
    direction = np.random.default_rng(1).standard_normal(theta.shape)
    new = theta + 0.3 * direction
    objective.move_products(new, 0.3, objective.direction_products(direction))
    forward = []
    from skgap.transform import _solver

    original = _solver._block_products
    monkeypatch.setattr(_solver, "_block_products",
                        lambda *a: forward.append(1) or original(*a))
    moved = objective.loss_gradient(new.ravel())
    assert forward == []  # the cached products were used
    fresh, *_ = _case(n_classes)
    direct = fresh.loss_gradient(new.ravel())
    assert moved[0] == pytest.approx(direct[0], rel=1e-12)
    np.testing.assert_allclose(moved[1], direct[1], rtol=1e-9, atol=1e-13)
