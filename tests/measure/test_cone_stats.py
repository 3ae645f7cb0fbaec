import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from strategies import paired_arrays, random_orthogonal, seeds

from skgap import ConeStats, ModalityGapShifter
from skgap import metrics as M


def test_attributes_match_the_metric_functions(paired):
    X, _ = paired
    V, T = X[:, :16], X[:, 16:]
    s = ConeStats(max_uniformity_samples=None).fit(X)
    np.testing.assert_allclose(
        s.mean_resultant_length_, [M.mean_resultant_length(V), M.mean_resultant_length(T)], rtol=1e-6
    )
    delta, norm = M.modality_gap(V, T)
    np.testing.assert_allclose(s.gap_vector_, delta, atol=1e-6)
    assert s.gap_norm_ == pytest.approx(norm, rel=1e-6)
    assert s.pairwise_gap_ == pytest.approx(M.pairwise_gap(V, T), rel=1e-6)
    assert s.alignment_ == pytest.approx(M.alignment(V, T), rel=1e-6)
    assert s.mean_pair_cosine_ == pytest.approx(M.mean_pair_cosine(V, T), rel=1e-6)
    assert s.relative_gap_ == pytest.approx(M.relative_modality_gap(V, T), rel=1e-6)
    assert s.gap_principal_cosine_ == pytest.approx(M.gap_principal_cosine(V, T), abs=1e-5)
    np.testing.assert_allclose(s.uniformity_, [M.uniformity(V), M.uniformity(T)], rtol=1e-5)
    np.testing.assert_allclose(
        s.mean_within_cosine_, [M.mean_within_cosine(V), M.mean_within_cosine(T)], rtol=1e-6
    )
    assert s.n_samples_ == 200
    assert s.centroids_.shape == (2, 16)


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def _tight_pairs(seed, n=60, d=8, spread=0.08, pair_noise=0.05):
    """Narrow cones (R near 0.99) whose matched pairs nearly coincide."""
    rng = np.random.default_rng(seed)
    axis = np.zeros(d)
    axis[0] = 1.0
    V = axis + spread * rng.standard_normal((n, d))
    T = V + pair_noise * rng.standard_normal((n, d))
    return V, T


def _off_diagonal_mean_cosine(A):
    U = _unit(A)
    G = U @ U.T
    n = len(U)
    return (G.sum() - np.trace(G)) / (n * (n - 1))


def test_statistics_of_a_narrow_cone_match_independent_computation():
    # R near 1 and pairs near each other: the regime of real CLIP embeddings,
    # where a clip of R below 1 or a clamp of the relative gap above the
    # actual pair distance would change the answer.
    V, T = _tight_pairs(0)
    s = ConeStats(max_uniformity_samples=None).fit(np.hstack([V, T]))
    R = [np.linalg.norm(_unit(V).mean(0)), np.linalg.norm(_unit(T).mean(0))]
    assert min(R) > 0.95
    np.testing.assert_allclose(s.mean_resultant_length_, R, rtol=1e-12)
    within = [_off_diagonal_mean_cosine(V), _off_diagonal_mean_cosine(T)]
    np.testing.assert_allclose(s.mean_within_cosine_, within, rtol=1e-10)
    pair_cos = np.einsum("ij,ij->i", _unit(V), _unit(T)).mean()
    m = (1 - pair_cos) / 2
    assert 1e-3 < m < 1e-2  # between the clamp and ten times the clamp
    spread = ((1 - within[0]) / 2 + (1 - within[1]) / 2) / 2
    assert s.relative_gap_ == pytest.approx(m / (m + spread), rel=1e-9)


def test_identical_rows_have_R_exactly_one_and_clamped_relative_gap():
    # R <= 1 by the triangle inequality; rounding may not push it above 1.
    X = np.tile([0.1, 0.7, 0.3, 0.2, 0.1, 0.7, 0.3, 0.2], (7, 1))
    s = ConeStats().fit(X)
    assert np.all(s.mean_resultant_length_ == 1.0)
    # Identical pairs and no spread: m is clamped to 1e-3 and s_V = s_T = 0.
    assert s.relative_gap_ == pytest.approx(1.0)
    V, _ = _tight_pairs(1)
    s = ConeStats().fit(np.hstack([V, V]))
    spread = (1 - _off_diagonal_mean_cosine(V)) / 2
    assert s.relative_gap_ == pytest.approx(1e-3 / (1e-3 + spread), rel=1e-9)


@pytest.mark.parametrize("d", [16, 96])  # the dense LAPACK and the Lanczos paths
def test_gap_principal_cosine_uses_the_top_principal_axis(d):
    rng = np.random.default_rng(d)
    scales = np.linspace(1.0, 0.2, d)  # distinct variances: a well-defined top axis
    gap_direction = np.eye(d)[0]
    V = 2 * gap_direction + 0.6 * rng.standard_normal((300, d)) * scales
    T = -2 * gap_direction + 0.6 * rng.standard_normal((300, d)) * scales
    P = np.vstack([_unit(V), _unit(T)])
    _, _, Vt = np.linalg.svd(P - P.mean(0), full_matrices=False)
    delta = _unit(V).mean(0) - _unit(T).mean(0)
    top = abs(Vt[0] @ delta) / np.linalg.norm(delta)
    bottom = abs(Vt[-1] @ delta) / np.linalg.norm(delta)
    assert top > 0.9 and bottom < 0.1
    s = ConeStats(max_uniformity_samples=None).fit(np.hstack([V, T]))
    assert s.gap_principal_cosine_ == pytest.approx(top, abs=1e-8)
    assert M.gap_principal_cosine(V, T) == pytest.approx(top, abs=1e-8)


def test_transform_is_a_validated_passthrough(paired):
    X, _ = paired
    s = ConeStats().fit(X)
    out = s.transform(X)
    assert out is X or np.shares_memory(out, X)
    with pytest.raises(ValueError, match="features"):
        s.transform(X[:, :30])


def test_report_keys_values_and_frame(paired):
    X, _ = paired
    s = ConeStats(random_state=0).fit(X)
    rep = s.report()
    assert rep["R_image"] == pytest.approx(s.mean_resultant_length_[0])
    assert rep["gap_norm"] == pytest.approx(s.gap_norm_)
    assert rep["n_samples"] == 200
    assert all(isinstance(v, (float, int)) for v in rep.values())
    pd = pytest.importorskip("pandas")
    frame = s.report(as_frame=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(rep)
    assert frame.shape == (1, len(rep))


def test_three_modalities_report_each_pair_against_the_first(rng):
    X = rng.standard_normal((50, 12))
    X[:, :4] += 2
    s = ConeStats(modality_dims=(4, 4, 4)).fit(X)
    assert s.gap_vector_.shape == (2, 4)
    assert s.gap_norm_.shape == (2,)
    rep = s.report()
    assert {"R_m0", "R_m1", "R_m2", "gap_norm_m1", "gap_norm_m2"} <= set(rep)
    np.testing.assert_allclose(
        s.gap_norm_[1], M.modality_gap(X[:, :4], X[:, 8:])[1], rtol=1e-10
    )


def test_in_a_pipeline_it_measures_what_flows(paired):
    X, _ = paired
    pipe = make_pipeline(ModalityGapShifter(lam=1.0), ConeStats()).fit(X)
    before = ConeStats().fit(X).gap_norm_
    assert pipe[-1].gap_norm_ < 0.5 * before


def test_unequal_blocks_are_refused(rng):
    X = rng.standard_normal((10, 7))
    with pytest.raises(ValueError, match="same width"):
        ConeStats(modality_dims=(3, 4)).fit(X)


def test_odd_width_error_names_modality_dims(rng):
    with pytest.raises(ValueError, match="modality_dims"):
        ConeStats().fit(rng.standard_normal((10, 7)))


def test_zero_row_error_names_block(paired):
    X, _ = paired
    X = X.copy()
    X[5, 16:] = 0
    with pytest.raises(ValueError, match="text block has 1 row"):
        ConeStats().fit(X)


def test_float32_input_stays_float32_and_clone_pickle(paired):
    X, _ = paired
    s = ConeStats(random_state=0).fit(X)
    assert s.transform(X).dtype == np.float32
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.report() == s.report()
    assert clone(s).get_params() == s.get_params()


def test_set_output_pandas(paired):
    pd = pytest.importorskip("pandas")
    X, _ = paired
    out = ConeStats().set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [f"x{i}" for i in range(32)]


@settings(max_examples=30, deadline=None)
@given(paired_arrays(), seeds)
def test_rotation_and_permutation_leave_statistics_unchanged(data, seed):
    X, d = data
    Q = random_orthogonal(d, seed)
    XQ = np.hstack([X[:, :d] @ Q, X[:, d:] @ Q])
    a = ConeStats(max_uniformity_samples=None).fit(X)
    b = ConeStats(max_uniformity_samples=None).fit(XQ)
    perm = np.random.default_rng(1).permutation(len(X))
    c = ConeStats(max_uniformity_samples=None).fit(X[perm])
    for other in (b, c):
        np.testing.assert_allclose(other.mean_resultant_length_, a.mean_resultant_length_, atol=1e-9)
        assert other.gap_norm_ == pytest.approx(a.gap_norm_, abs=1e-9)
        assert other.alignment_ == pytest.approx(a.alignment_, abs=1e-9)
        assert other.relative_gap_ == pytest.approx(a.relative_gap_, abs=1e-9)
        np.testing.assert_allclose(other.uniformity_, a.uniformity_, atol=1e-9)
    assert np.all((a.mean_resultant_length_ >= 0) & (a.mean_resultant_length_ <= 1))


def test_fit_on_threads_equals_one_thread_bit_for_bit(patch_core, rng):
    """Work items of every pass (sums, uniformity blocks, covariance) add up in order."""
    X = (rng.standard_normal((900, 32)) + 0.5).astype(np.float32)
    X *= rng.uniform(0.5, 20, (900, 1)).astype(np.float32)
    patch_core("TILE_BYTES", 1)  # 16-row tiles: many items
    fitted = {}
    for n_threads in (1, 3):
        patch_core("pass_threads", lambda n, k=n_threads: min(k, n))
        fitted[n_threads] = ConeStats(max_uniformity_samples=700, random_state=0).fit(X)
    for key in ("centroids_", "pairwise_gap_", "alignment_", "uniformity_",
                "gap_principal_cosine_"):
        np.testing.assert_array_equal(getattr(fitted[3], key), getattr(fitted[1], key))
    # And the sample statistics are those of the metric functions on the sample.
    rows = fitted[1]._stats.reservoir.rows
    np.testing.assert_allclose(
        fitted[1].uniformity_, [M.uniformity(rows[:, :16]), M.uniformity(rows[:, 16:])],
        rtol=1e-6,
    )
