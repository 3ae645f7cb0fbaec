import numpy as np
import pytest
from hypothesis import given, settings
from scipy.spatial.distance import pdist
from strategies import paired_arrays

from skgap.measure import (
    alignment,
    gap_principal_cosine,
    mean_pair_cosine,
    mean_resultant_length,
    mean_within_cosine,
    modality_gap,
    pairwise_gap,
    relative_modality_gap,
    uniformity,
)


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


@pytest.fixture
def VT(rng):
    V = rng.standard_normal((40, 6)) + 2.0
    T = rng.standard_normal((40, 6)) - 1.0
    return V, T


def test_mean_resultant_length_matches_definition(VT):
    V, _ = VT
    assert mean_resultant_length(V) == pytest.approx(np.linalg.norm(_unit(V).mean(0)))


def test_mean_resultant_length_extremes():
    same = np.tile([[3.0, 4.0]], (5, 1))
    assert mean_resultant_length(same) == pytest.approx(1.0)
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert mean_resultant_length(opposite) == pytest.approx(0.0)


def test_modality_gap_matches_definition(VT):
    V, T = VT
    delta, norm = modality_gap(V, T)
    expected = _unit(V).mean(0) - _unit(T).mean(0)
    np.testing.assert_allclose(delta, expected, rtol=1e-12)
    assert norm == pytest.approx(np.linalg.norm(expected))


def test_pairwise_and_alignment(VT):
    V, T = VT
    dist = np.linalg.norm(_unit(V) - _unit(T), axis=1)
    assert pairwise_gap(V, T) == pytest.approx(dist.mean())
    assert alignment(V, T) == pytest.approx((dist**2).mean())
    assert alignment(V, T, alpha=3) == pytest.approx((dist**3).mean())
    assert mean_pair_cosine(V, T) == pytest.approx(np.sum(_unit(V) * _unit(T), 1).mean())


def test_uniformity_matches_pdist(VT):
    V, _ = VT
    d2 = pdist(_unit(V), "sqeuclidean")
    expected = np.log(np.mean(np.exp(-2 * d2)))
    assert uniformity(V) == pytest.approx(expected, rel=1e-10)
    # Blocking must not change the value.
    assert uniformity(V, block_size=7) == pytest.approx(expected, rel=1e-10)
    assert uniformity(V, t=0.5) == pytest.approx(np.log(np.mean(np.exp(-0.5 * d2))))


def test_uniformity_subsample_is_seeded(rng):
    E = rng.standard_normal((300, 5)).astype(np.float32)
    a = uniformity(E, max_samples=50, random_state=1)
    b = uniformity(E, max_samples=50, random_state=1)
    c = uniformity(E, max_samples=50, random_state=2)
    assert a == b and a != c
    # A subsample estimates the full value.
    assert a == pytest.approx(uniformity(E), abs=0.15)


def test_mean_within_cosine_matches_off_diagonal_mean(VT):
    V, _ = VT
    U = _unit(V)
    G = U @ U.T
    n = len(U)
    expected = (G.sum() - np.trace(G)) / (n * (n - 1))
    assert mean_within_cosine(V) == pytest.approx(expected)


def test_relative_modality_gap_from_raw_cosines(VT):
    # Schrodi et al.'s definition computed from the raw arrays, sharing no code
    # with skgap: matched-pair cosines and off-diagonal within-modality cosines.
    V, T = VT
    U, W = _unit(V), _unit(T)
    n = len(U)
    pair = np.einsum("ij,ij->i", U, W).mean()
    within = [(G.sum() - np.trace(G)) / (n * (n - 1)) for G in (U @ U.T, W @ W.T)]
    m = (1 - pair) / 2
    assert m > 1e-3  # the clamp plays no part here
    s = ((1 - within[0]) / 2 + (1 - within[1]) / 2) / 2
    assert relative_modality_gap(V, T) == pytest.approx(m / (m + s), rel=1e-12)


@pytest.mark.parametrize("d", [2, 3, 7])
def test_relative_modality_gap_of_orthonormal_frames(d):
    # V = the standard basis: within cosines all 0, so s_V = s_T = 1/2.
    V = np.eye(d) * np.arange(1, d + 1)[:, None]  # row scale does not matter
    shifted = np.roll(np.eye(d), 1, axis=0)  # no row matched with itself: cosines 0
    assert relative_modality_gap(V, shifted) == pytest.approx(1 / 2)  # m = 1/2
    assert relative_modality_gap(V, -V) == pytest.approx(2 / 3)  # m = 1
    assert relative_modality_gap(V, 3 * V) == pytest.approx(1e-3 / (1e-3 + 1 / 2))  # clamped


def test_relative_modality_gap_clamp_acts_only_below_1e_3():
    # Pairs at angle theta: m = (1 - cos theta) / 2, clamped at 1e-3 from below.
    d = 4
    V = np.eye(d)
    for m in (5e-4, 2e-3, 5e-3, 2e-2):
        theta = np.arccos(1 - 2 * m)
        # Rotate each basis vector towards the next by theta (a matched pair at angle theta).
        T = np.cos(theta) * V + np.sin(theta) * np.roll(V, 1, axis=0)
        within_t = (T @ T.T - np.eye(d)).sum() / (d * (d - 1))
        s = (1 / 2 + (1 - within_t) / 2) / 2
        m_eff = max(m, 1e-3)
        assert relative_modality_gap(V, T) == pytest.approx(m_eff / (m_eff + s), rel=1e-9)


def test_gap_principal_cosine_matches_pca(VT):
    V, T = VT
    P = np.vstack([_unit(V), _unit(T)])
    P = P - P.mean(0)
    u1 = np.linalg.svd(P, full_matrices=False)[2][0]
    delta, norm = modality_gap(V, T)
    assert gap_principal_cosine(V, T) == pytest.approx(abs(u1 @ delta) / norm, abs=1e-8)


def test_gap_lies_on_first_principal_axis_for_separated_cones(paired):
    X, _ = paired
    assert gap_principal_cosine(X[:, :16], X[:, 16:]) > 0.9


def test_float32_inputs_give_float32_level_accuracy(VT):
    V, T = VT
    assert mean_resultant_length(V.astype(np.float32)) == pytest.approx(
        mean_resultant_length(V), rel=1e-5
    )
    assert alignment(V.astype(np.float32), T.astype(np.float32)) == pytest.approx(
        alignment(V, T), rel=1e-5
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda V, T: mean_resultant_length(np.zeros((3, 4))), "zero norm"),
        (lambda V, T: modality_gap(V, T[:, :3]), "shared space"),
        (lambda V, T: mean_pair_cosine(V, T[:5]), "rows"),
        (lambda V, T: alignment(V, T, alpha=0), "alpha"),
        (lambda V, T: uniformity(V, t=-1), "'t' parameter"),
        (lambda V, T: uniformity(V, max_samples=1), "max_samples"),
        (lambda V, T: uniformity(V[:1]), "minimum of 2"),
        (lambda V, T: mean_resultant_length(np.ones(4)), "2D array"),
        (lambda V, T: gap_principal_cosine(V, T[:, :2]), "shared space"),
    ],
)
def test_errors(VT, call, match):
    V, T = VT
    with pytest.raises(ValueError, match=match):
        call(V, T)


def test_nan_is_rejected(VT):
    V, T = VT
    V = V.copy()
    V[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mean_resultant_length(V)
    with pytest.raises(ValueError, match="NaN"):
        alignment(V, T)


def test_zero_norm_error_names_rows(VT):
    V, T = VT
    V = V.copy()
    V[[2, 7]] = 0
    with pytest.raises(ValueError, match=r"2 row\(s\) with zero norm \(rows 2, 7\)"):
        modality_gap(V, T)


@settings(max_examples=40, deadline=None)
@given(paired_arrays())
def test_R_in_unit_interval_and_permutation_invariant(data):
    X, d = data
    V, T = X[:, :d], X[:, d:]
    R = mean_resultant_length(V)
    assert 0.0 <= R <= 1.0
    perm = np.random.default_rng(0).permutation(len(X))
    assert mean_resultant_length(V[perm]) == pytest.approx(R, abs=1e-12)
    assert alignment(V[perm], T[perm]) == pytest.approx(alignment(V, T), abs=1e-12)
    assert modality_gap(V[perm], T[perm])[1] == pytest.approx(modality_gap(V, T)[1], abs=1e-12)
    assert 0 < relative_modality_gap(V, T) <= 1


@pytest.mark.parametrize("dtype, rel", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_uniformity_over_many_blocks_matches_pdist(dtype, rel, rng):
    # 600 rows: three row blocks of the GEMM kernel, each with its diagonal square.
    E = (rng.standard_normal((600, 24)) + 0.8).astype(dtype)
    for t in (2.0, 0.7):
        d2 = pdist(_unit(E.astype(np.float64)), "sqeuclidean")
        assert uniformity(E, t=t) == pytest.approx(np.log(np.mean(np.exp(-t * d2))), rel=rel)
