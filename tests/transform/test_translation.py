"""Tests of the block translation shared by the shifter and the centring transformers.

``skgap._translation.BlockTranslation`` fits per-block unit centroids and maps
each unit row ``u`` of block ``m`` to ``(u + s_m) / ||u + s_m||``; the
array-API kernel ``skgap._geometry.shift_paired_xp`` must agree with the fused
NumPy kernel ``shift_paired`` and with the textbook formula.
"""

import numpy as np
import pytest
from sklearn.base import clone

from skgap._core._shift import gap_shift_directions, shift_paired, shift_paired_xp
from skgap.transform._translation import BlockTranslation

xps = pytest.importorskip("array_api_strict")

D = 6
SLICES = (slice(0, D), slice(D, 2 * D))
NAMES = ("V", "T")


def unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def textbook(X, shifts):
    """Normalise, add s_m, renormalise, block by block, in float64."""
    X = X.astype(np.float64)
    return np.hstack([unit(unit(X[:, sl]) + s) for sl, s in zip(SLICES, shifts)])


def strict(a):
    return xps.asarray(np.asarray(a))


def run_xp(X, shifts):
    out = shift_paired_xp(strict(X), SLICES, [strict(s) for s in shifts], NAMES, xps)
    assert out.dtype == strict(X).dtype
    return np.asarray(out)


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((40, 2 * D)).astype(np.float32)


@pytest.mark.parametrize("size", [0.0, 0.3, 1.5])
def test_xp_kernel_matches_numpy_and_the_formula(X, size):
    rng = np.random.default_rng(1)
    shifts = size * rng.standard_normal((2, D))
    ref = textbook(X, shifts)
    np.testing.assert_allclose(run_xp(X, shifts), ref, atol=2e-6)
    np.testing.assert_allclose(shift_paired(X, SLICES, shifts, NAMES), ref, atol=2e-6)


def test_xp_kernel_near_cancellation(X):
    # Row 0 of V is e_0 and s_V = -0.999 e_0, so ||u_0 + s||^2 = 1e-6: the
    # one-pass q = 1 + 2 u.s + ||s||^2 cancels catastrophically in float32 and
    # the explicit normalise-add-renormalise fallback must take over (row 0
    # comes out as e_0); the other rows follow the formula.
    X = X.copy()
    X[0, :D] = 0.0
    X[0, 0] = 2.0
    shifts = np.zeros((2, D))
    shifts[0, 0] = -0.999
    got = run_xp(X, shifts)
    np.testing.assert_allclose(got[0, :D], np.eye(D)[0], atol=1e-6)
    np.testing.assert_allclose(got, textbook(X, shifts), atol=2e-5)


@pytest.mark.parametrize("c", [1e30, 1e-30])
def test_xp_kernel_depends_on_directions_only(X, c):
    # Theorem: the map sees x only through x / ||x||, so c * X gives the answer
    # of X even where ||c x||^2 overflows or underflows in float32.
    shifts = 0.4 * np.random.default_rng(2).standard_normal((2, D))
    got = run_xp(X * np.float32(c), shifts)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, run_xp(X, shifts), atol=2e-6)


def test_xp_kernel_names_a_row_that_vanishes(X):
    X = X.copy()
    X[3, D:] = 0.0
    with pytest.raises(ValueError, match=r"T.*3"):
        run_xp(X, np.zeros((2, D)))
    X = np.abs(X[:5]) + 1.0
    X[:, :D] = 0.0
    X[:, 0] = 3.0  # every image row is u = e_0 exactly; s = -e_0 cancels it
    shifts = np.zeros((2, D))
    shifts[0, 0] = -1.0
    for kernel in (run_xp, lambda X, s: shift_paired(X, SLICES, s, NAMES)):
        with pytest.raises(ValueError, match="V after the shift"):
            kernel(X, shifts)


@pytest.mark.parametrize("direction", ["raw", "unit"])
@pytest.mark.parametrize("side", ["both", "image", "text"])
def test_gap_shift_directions_in_any_namespace(direction, side):
    C = np.random.default_rng(3).standard_normal((2, D))
    ref = gap_shift_directions(C, direction, side)
    got = gap_shift_directions(strict(C), direction, side, xps)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-12, atol=1e-15)
    # s_V + s_T = 0 for 'both': the two modalities move by opposite vectors.
    if side == "both":
        np.testing.assert_allclose(ref[0], -ref[1], atol=1e-15)


class _TowardsZero(BlockTranslation):
    """A minimal subclass: s_m = -k * mu_m (k = 1 is ModalityCentering)."""

    _parameter_constraints = {"k": [float], "modality_dims": [None, tuple]}

    def __init__(self, k=1.0, modality_dims=None):
        self.k = k
        self.modality_dims = modality_dims

    def _block_shifts(self, xp, device):
        if xp is np:
            return -self.k * np.asarray(self.centroids_)
        return -self.k * xp.asarray(self.centroids_, device=device)


def test_base_class_fits_unit_centroids_and_translates(X):
    est = _TowardsZero(k=0.5).fit(X)
    mus = np.stack([unit(X[:, sl].astype(np.float64)).mean(axis=0) for sl in SLICES])
    np.testing.assert_allclose(est.centroids_, mus, atol=1e-6)
    Z = est.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, textbook(X, -0.5 * mus), atol=2e-6)
    # partial_fit over chunks learns the centroids of fit on all rows.
    streamed = clone(est)
    for chunk in np.array_split(X, 3):
        streamed.partial_fit(chunk)
    np.testing.assert_allclose(streamed.centroids_, est.centroids_, atol=1e-7)
    # k = 0 only normalises the rows.
    np.testing.assert_allclose(
        _TowardsZero(k=0.0).fit(X).transform(X), textbook(X, np.zeros((2, D))), atol=2e-6
    )


def test_base_class_dispatches_array_api_and_dask(X, monkeypatch):
    from sklearn import config_context

    ref = _TowardsZero(k=0.8).fit(X).transform(X)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with config_context(array_api_dispatch=True):
        est = _TowardsZero(k=0.8).fit(strict(X))
        Z = est.transform(strict(X))
    assert type(Z).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(Z), ref, atol=2e-6)
    da = pytest.importorskip("dask.array")
    lazy = _TowardsZero(k=0.8).fit(da.from_array(X, chunks=(15, 2 * D)))
    out = lazy.transform(da.from_array(X, chunks=(15, 2 * D)))
    np.testing.assert_allclose(out.compute(), ref, atol=2e-6)


def test_base_class_tags():
    tags = _TowardsZero().__sklearn_tags__()
    assert tags.array_api_support
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
