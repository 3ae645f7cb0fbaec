"""ModalityGapShifter's lambda in [-1, 1] and its one-sided shifts (side=).

Each side is compared with the formula written out independently here.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from skgap import ModalityGapShifter

from strategies import paired_arrays

signed_lams = st.floats(-1.0, 1.0, allow_nan=False)


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def one_sided(X, lam, d, side, direction="raw"):
    """Blocks moved, before the renormalisation: image by -lam*Delta, text by +lam*Delta
    (one side), or each by half of it (both)."""
    V, T = _unit(X[:, :d]), _unit(X[:, d:])
    delta = V.mean(0) - T.mean(0)
    if direction == "unit":
        delta = delta / np.linalg.norm(delta)
    if side == "text":
        return V, T + lam * delta
    if side == "image":
        return V - lam * delta, T
    return V - lam * delta / 2, T + lam * delta / 2


@settings(max_examples=40, deadline=None)
@given(paired_arrays(), signed_lams, st.sampled_from(["both", "image", "text"]),
       st.sampled_from(["raw", "unit"]))
def test_each_side_is_its_formula(data, lam, side, direction):
    X, d = data
    delta = _unit(X[:, :d]).mean(0) - _unit(X[:, d:]).mean(0)
    assume(direction == "raw" or np.linalg.norm(delta) > 1e-3)  # 'unit' needs a gap
    V, T = one_sided(X, lam, d, side, direction)
    # Rows carried near the origin have no stable direction.
    assume(min(np.linalg.norm(V, axis=1).min(), np.linalg.norm(T, axis=1).min()) > 1e-3)
    shifter = ModalityGapShifter(lam=lam, side=side, direction=direction).fit(X)
    np.testing.assert_allclose(shifter.transform(X), np.hstack([_unit(V), _unit(T)]), atol=1e-9)


def test_text_side_at_one_carries_the_text_centroid_onto_the_image_centroid(paired):
    X, _ = paired
    d = X.shape[1] // 2
    s = ModalityGapShifter(lam=1.0, side="text").fit(X)
    V, T = _unit(X[:, :d].astype(np.float64)), _unit(X[:, d:].astype(np.float64))
    # Before the renormalisation the moved text centroid is the image centroid.
    moved = T + s.shift_vectors_[1]
    np.testing.assert_allclose(moved.mean(0), V.mean(0), atol=1e-6)
    np.testing.assert_array_equal(s.shift_vectors_[0], 0.0)
    # The image block is only normalised.
    np.testing.assert_allclose(s.transform(X)[:, :d], V, atol=1e-6)


def test_image_side_mirrors_text_side(paired):
    X, _ = paired
    d = X.shape[1] // 2
    text = ModalityGapShifter(lam=0.6, side="text").fit(X)
    image = ModalityGapShifter(lam=0.6, side="image").fit(X)
    np.testing.assert_allclose(image.shift_vectors_[0], -text.shift_vectors_[1])
    np.testing.assert_allclose(image.transform(X)[:, d:], _unit(X[:, d:]), atol=1e-6)


def test_negative_lambda_widens_the_gap(paired):
    X, _ = paired
    d = X.shape[1] // 2

    def gap(Z):
        return np.linalg.norm(_unit(Z[:, :d]).mean(0) - _unit(Z[:, d:]).mean(0))

    before = gap(X.astype(np.float64))
    wider = gap(ModalityGapShifter(lam=-0.5).fit_transform(X).astype(np.float64))
    narrower = gap(ModalityGapShifter(lam=0.5).fit_transform(X).astype(np.float64))
    assert narrower < before < wider


@pytest.mark.parametrize("bad", [2.0, -1.5, float("nan")])
def test_lambda_set_after_fit_is_validated_at_transform(paired, bad):
    X, _ = paired
    s = ModalityGapShifter(lam=0.5).fit(X)
    s.set_params(lam=bad)
    with pytest.raises(ValueError, match="lam"):
        s.transform(X)


def test_lambda_nan_is_refused_at_fit(paired):
    X, _ = paired
    with pytest.raises(ValueError, match="lam"):
        ModalityGapShifter(lam=float("nan")).fit(X)


def test_side_set_after_fit_is_used_at_transform(paired):
    X, _ = paired
    s = ModalityGapShifter(lam=0.7).fit(X)
    s.set_params(side="text")
    expected = ModalityGapShifter(lam=0.7, side="text").fit(X).transform(X)
    np.testing.assert_allclose(s.transform(X), expected)


def test_one_side_needs_two_blocks():
    X = np.random.default_rng(0).standard_normal((20, 9))
    with pytest.raises(ValueError, match="side='text'.*3 modality blocks"):
        ModalityGapShifter(side="text", modality_dims=(3, 3, 3)).fit(X)
    with pytest.raises(ValueError, match="side"):
        ModalityGapShifter(side="left").fit(X[:, :8])


def test_one_sided_shift_on_dask_matches_numpy(paired):
    da = pytest.importorskip("dask.array")
    X, _ = paired
    s = ModalityGapShifter(lam=-0.4, side="image").fit(X)
    np.testing.assert_allclose(
        s.transform(da.from_array(X, chunks=(50, -1))).compute(), s.transform(X), atol=1e-6
    )
