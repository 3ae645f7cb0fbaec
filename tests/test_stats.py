import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skgap import ConeStats, ModalityGapShifter
from skgap import metrics as M

from strategies import paired_arrays, random_orthogonal, seeds


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
