"""skgap.transform._implicit.row_scalars: the implicit features are the shifted unit rows.

Block ``m`` of the shifted row is ``alpha x + gamma s`` with
``alpha = 1 / (r sqrt q)``, ``gamma = lam / sqrt q`` and
``q = ||x / r + lam s||^2``. The closed form ``q = 1 + 2 lam u.s + lam^2 ||s||^2``
cancels for a row almost opposite its shift, where ``row_scalars`` must take
``q`` from the explicit vector instead.
"""

import numpy as np
import pytest

from skgap.transform._implicit import fold_statistics, row_scalars

D = 8
SLICES = (slice(0, D), slice(D, 2 * D))


def _rows_near_their_shifts(angles):
    """Rows whose image block makes ``pi - angle`` with its unit shift (scaled by 3)."""
    rng = np.random.default_rng(0)
    shifts = [v / np.linalg.norm(v) for v in rng.standard_normal((2, D))]
    s = shifts[0]
    perp = rng.standard_normal(D)
    perp -= (perp @ s) * s
    perp /= np.linalg.norm(perp)
    X = rng.standard_normal((len(angles) + 3, 2 * D))  # a few ordinary rows too
    for i, angle in enumerate(angles):
        X[i, :D] = 3.0 * (-np.cos(angle) * s + np.sin(angle) * perp)
    return X, shifts


def _explicit(X, shifts, lam):
    """alpha and gamma from the explicit norm of ``u + lam s``, row by row."""
    alpha, gamma = np.empty((len(X), 2)), np.empty((len(X), 2))
    for m, sl in enumerate(SLICES):
        r = np.linalg.norm(X[:, sl], axis=1)
        root = np.linalg.norm(X[:, sl] / r[:, None] + lam * shifts[m], axis=1)
        alpha[:, m], gamma[:, m] = 1.0 / (r * root), lam / root
    return alpha, gamma


@pytest.mark.parametrize("angle", [1e-3, 1e-5, 1e-6])
def test_rows_almost_opposite_their_shift_get_the_explicit_scalars(angle):
    """q = ||u + s||^2 is about angle^2 here; the closed form would lose
    most of its digits (relative error eps / angle^2)."""
    X, shifts = _rows_near_their_shifts([angle])
    stats = fold_statistics(X, SLICES, shifts)
    alpha, gamma = row_scalars(X, SLICES, stats, 1.0)
    ref_alpha, ref_gamma = _explicit(X, shifts, 1.0)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-8)
    np.testing.assert_allclose(gamma, ref_gamma, rtol=1e-8)
    # What that means for the features: each shifted block is a unit row.
    S = stats[2]
    for m, sl in enumerate(SLICES):
        Z = alpha[:, m, None] * X[:, sl] + gamma[:, m, None] * S[m, sl]
        np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-8)


def test_ordinary_rows_use_the_closed_form_to_rounding():
    X, shifts = _rows_near_their_shifts([0.5, 1.0])
    stats = fold_statistics(X, SLICES, shifts)
    for lam in (0.0, 0.3, 1.0):
        alpha, gamma = row_scalars(X, SLICES, stats, lam)
        ref_alpha, ref_gamma = _explicit(X, shifts, lam)
        np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-12)
        np.testing.assert_allclose(gamma, ref_gamma, rtol=1e-12, atol=0)
