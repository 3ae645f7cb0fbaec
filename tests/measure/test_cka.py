import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import random_orthogonal, seeds

from skgap.measure import _cka as cka_module
from skgap.measure import cka

fast = settings(max_examples=30, deadline=None)


def hsic_cka(A, B):
    """Kornblith et al.'s kernel form with n x n Gram matrices, for reference."""
    n = A.shape[0]
    H = np.eye(n) - 1.0 / n
    K, L = H @ A @ A.T @ H, H @ B @ B.T @ H
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


def draw(seed, n, p, q):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)) * rng.uniform(0.1, 3, p), rng.standard_normal((n, q))


@fast
@given(seed=seeds, n=st.integers(3, 30), p=st.integers(1, 6), q=st.integers(1, 6))
def test_equals_the_kernel_form_and_lies_in_unit_interval(seed, n, p, q):
    A, B = draw(seed, n, p, q)
    B = B + A[:, :1]  # some shared signal
    value = cka(A, B)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(hsic_cka(A, B), abs=1e-10)
    assert value == pytest.approx(cka(B, A), abs=1e-12)


@fast
@given(
    seed=seeds,
    p=st.integers(1, 6),
    extra=st.integers(0, 3),
    scale=st.floats(0.01, 100.0),
)
def test_one_for_a_rotated_scaled_shifted_copy(seed, p, extra, scale):
    A, _ = draw(seed, 20, p, 1)
    Q = random_orthogonal(p + extra, seed)[:p]  # isometric embedding into p + extra dims
    B = scale * A @ Q + np.random.default_rng(seed).normal(size=p + extra)
    assert cka(A, B) == pytest.approx(1.0, abs=1e-9)


@fast
@given(seed=seeds)
def test_invariant_to_orthogonal_maps_of_either_side(seed):
    A, B = draw(seed, 25, 4, 5)
    P, Q = random_orthogonal(4, seed), random_orthogonal(5, seed + 1)
    assert cka(A @ P, B @ Q) == pytest.approx(cka(A, B), abs=1e-10)


def test_not_invariant_to_per_feature_scaling(rng):
    # Unlike CCA, linear CKA sees anisotropic rescaling.
    A = rng.standard_normal((100, 3))
    assert cka(A, A * [1.0, 10.0, 0.1]) < 0.9


def test_unrelated_representations_score_low(rng):
    assert cka(rng.standard_normal((2000, 5)), rng.standard_normal((2000, 5))) < 0.02


def test_chunked_accumulation_matches_one_pass(monkeypatch, rng):
    A, B = rng.standard_normal((50, 4)), rng.standard_normal((50, 3)) + 5.0
    whole = cka(A, B)
    monkeypatch.setattr(cka_module, "CHUNK_ROWS", 7)
    assert cka(A, B) == pytest.approx(whole, abs=1e-12)


def test_float32_input_is_accurate_and_not_copied_to_float64(rng):
    A = rng.standard_normal((300, 8)) + 10.0  # offset: centring must be exact
    B = A @ rng.standard_normal((8, 6)) + rng.standard_normal((300, 6))
    assert cka(A.astype(np.float32), B.astype(np.float32)) == pytest.approx(cka(A, B), abs=1e-5)


@pytest.mark.parametrize(
    "A, B, match",
    [
        (np.ones((5, 2)) * [[1.0], [2.0], [3.0], [4.0], [5.0]], np.ones((4, 2)), "rows"),
        (np.ones((1, 2)), np.ones((1, 2)), "minimum of 2"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), np.eye(2), "NaN"),
        (np.ones((4, 3)), np.arange(8.0).reshape(4, 2), "A is constant"),
        (np.arange(8.0).reshape(4, 2), np.full((4, 2), 3.0), "B is constant"),
        # 0.1 is not exact in binary: the centred block is rounding noise, not 0.
        (np.arange(6.0).reshape(3, 2), np.full((3, 2), 0.1), "B is constant"),
    ],
)
def test_bad_input(A, B, match):
    with pytest.raises(ValueError, match=match):
        cka(A, B)
