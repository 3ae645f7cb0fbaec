import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from strategies import paired_arrays, random_orthogonal, seeds

from skgap import ConeStats, ModalityGapShifter
from skgap.measure import modality_gap
from skgap.transform._shift import gap_shift_directions

lams = st.floats(0.0, 1.0, allow_nan=False)


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def equation_5(X, lam, d, fit_rows=None):
    """The paper's equation 5, written independently of the estimator."""
    F = X if fit_rows is None else X[fit_rows]
    delta = _unit(F[:, :d]).mean(0) - _unit(F[:, d:]).mean(0)
    v = _unit(X[:, :d]) - lam * delta / 2
    t = _unit(X[:, d:]) + lam * delta / 2
    return np.hstack([_unit(v), _unit(t)])


def test_transform_is_equation_5(paired):
    X, _ = paired
    X = X.astype(np.float64)
    out = ModalityGapShifter(lam=0.7).fit(X[:150]).transform(X)
    np.testing.assert_allclose(out, equation_5(X, 0.7, 16, fit_rows=slice(0, 150)), atol=1e-12)


def test_gap_is_estimated_on_fit_rows_only(paired):
    X, _ = paired
    s = ModalityGapShifter().fit(X[:50])
    np.testing.assert_allclose(s.gap_vector_, modality_gap(X[:50, :16], X[:50, 16:])[0], atol=1e-6)
    assert not np.allclose(s.gap_vector_, modality_gap(X[:, :16], X[:, 16:])[0], atol=1e-3)


def test_unit_direction_follows_liang_convention(paired):
    X, _ = paired
    X = X.astype(np.float64)
    raw = ModalityGapShifter(lam=0.4).fit(X)
    # Liang's delta = lam_raw * ||Delta||: a unit shift of that size equals the raw one.
    unit = ModalityGapShifter(lam=0.4 * raw.gap_norm_, direction="unit").fit(X)
    np.testing.assert_allclose(unit.transform(X), raw.transform(X), atol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(unit.shift_vectors_, axis=1), [0.5, 0.5], rtol=1e-12
    )


def test_float32_in_float32_out_without_upcast(paired):
    X, _ = paired
    out = ModalityGapShifter().fit(X).transform(X)
    assert out.dtype == np.float32
    assert not np.shares_memory(out, X)
    np.testing.assert_allclose(
        out, equation_5(X.astype(np.float64), 0.5, 16), atol=1e-5
    )


def test_lambda_one_shrinks_the_gap_but_not_to_zero(paired):
    X, _ = paired
    before = ConeStats().fit(X).gap_norm_
    after = ConeStats().fit(ModalityGapShifter(lam=1.0).fit_transform(X)).gap_norm_
    assert after < 0.25 * before
    assert after > 0


def test_gridsearch_over_lambda_in_a_pipeline():
    from skgap.datasets import make_paired_embeddings

    X, y = make_paired_embeddings(300, 16, random_state=1)
    X = X.astype(np.float64)
    pipe = Pipeline([("gap", ModalityGapShifter()), ("clf", LogisticRegression(tol=1e-10))])
    lams = [0.0, 0.5, 1.0]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, {"gap__lam": lams}, cv=cv, scoring="neg_log_loss").fit(X, y)
    # Independently: per fold, the gap is estimated on the training rows only
    # (equation 5 with fit_rows), the probe fitted on them, scored on the rest.
    d = X.shape[1] // 2
    expected = np.zeros((len(lams), 3))
    for f, (train, test) in enumerate(cv.split(X, y)):
        for i, lam in enumerate(lams):
            Z = equation_5(X, lam, d, fit_rows=train)
            clf = LogisticRegression(tol=1e-10).fit(Z[train], y[train])
            expected[i, f] = -log_loss(y[test], clf.predict_proba(Z[test]))
    np.testing.assert_allclose(search.cv_results_["split0_test_score"], expected[:, 0], rtol=1e-7)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected.mean(1), rtol=1e-7)
    assert search.best_params_["gap__lam"] == lams[int(np.argmax(expected.mean(1)))]


@pytest.mark.parametrize("lam", [-1.1, 1.5, float("nan"), "a"])
def test_lambda_out_of_range_is_refused(paired, lam):
    X, _ = paired
    with pytest.raises(ValueError, match="lam"):
        ModalityGapShifter(lam=lam).fit(X)


def test_unknown_direction_is_refused(paired):
    X, _ = paired
    with pytest.raises(ValueError, match="direction"):
        ModalityGapShifter(direction="sideways").fit(X)


def test_transform_errors(paired):
    X, _ = paired
    s = ModalityGapShifter().fit(X)
    with pytest.raises(ValueError, match="32 features"):
        s.transform(X[:, :30])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        s.transform(bad)
    bad = X.copy()
    bad[4, :16] = 0
    with pytest.raises(ValueError, match="image block has 1 row"):
        s.transform(bad)
    with pytest.raises(ValueError, match="modality_dims"):
        ModalityGapShifter().fit(X[:, :31])
    with pytest.raises(ValueError, match="same width"):
        ModalityGapShifter(modality_dims=(12, 20)).fit(X)


def test_not_fitted_error(paired):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ModalityGapShifter().transform(paired[0])


def test_clone_pickle_and_feature_names(paired):
    pd = pytest.importorskip("pandas")
    X, _ = paired
    cols = [f"img{i}" for i in range(16)] + [f"txt{i}" for i in range(16)]
    df = pd.DataFrame(X, columns=cols)
    s = ModalityGapShifter(lam=0.3).set_output(transform="pandas").fit(df)
    out = s.transform(df)
    assert list(out.columns) == cols
    assert list(s.get_feature_names_out()) == cols
    s2 = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(s2.transform(df).to_numpy(), out.to_numpy())
    assert clone(s).get_params()["lam"] == 0.3


def test_three_modalities_move_toward_the_mean_centroid(rng):
    X = rng.standard_normal((60, 9))
    X[:, :3] += 3
    X[:, 6:] -= 2
    s = ModalityGapShifter(lam=1.0, modality_dims=(3, 3, 3)).fit(X)
    mean_c = s.centroids_.mean(0)
    np.testing.assert_allclose(s.shift_vectors_, mean_c - s.centroids_)
    out = s.transform(X)
    np.testing.assert_allclose(np.linalg.norm(out.reshape(60, 3, 3), axis=2), 1.0)
    spread_before = np.linalg.norm(s.centroids_ - mean_c, axis=1)
    after = ModalityGapShifter(modality_dims=(3, 3, 3)).fit(out).centroids_
    spread_after = np.linalg.norm(after - after.mean(0), axis=1)
    assert np.all(spread_after < spread_before)


def test_unit_direction_with_coincident_centroids_is_no_shift():
    C = np.array([[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(gap_shift_directions(C, "unit"), 0.0)


@settings(max_examples=40, deadline=None)
@given(paired_arrays(), lams, seeds)
def test_rotation_equivariance(data, lam, seed):
    X, d = data
    Q = random_orthogonal(d, seed)
    rot = lambda A: np.hstack([A[:, :d] @ Q, A[:, d:] @ Q])  # noqa: E731
    a = ModalityGapShifter(lam=lam).fit(X)
    b = ModalityGapShifter(lam=lam).fit(rot(X))
    np.testing.assert_allclose(b.transform(rot(X)), rot(a.transform(X)), atol=1e-9)
    assert b.gap_norm_ == pytest.approx(a.gap_norm_, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(paired_arrays())
def test_lambda_zero_is_identity_on_unit_rows(data):
    X, d = data
    U = np.hstack([_unit(X[:, :d]), _unit(X[:, d:])])
    np.testing.assert_allclose(ModalityGapShifter(lam=0.0).fit(U).transform(U), U, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(paired_arrays(), lams)
def test_outputs_have_unit_rows(data, lam):
    X, d = data
    out = ModalityGapShifter(lam=lam).fit(X).transform(X)
    np.testing.assert_allclose(np.linalg.norm(out[:, :d], axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out[:, d:], axis=1), 1.0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(paired_arrays(min_rows=4))
def test_lambda_one_gap_smaller_than_before(data):
    X, d = data
    before = modality_gap(X[:, :d], X[:, d:])[1]
    if before < 1e-6:
        return
    out = ModalityGapShifter(lam=1.0).fit(X).transform(X)
    assert modality_gap(out[:, :d], out[:, d:])[1] < before


@settings(max_examples=40, deadline=None)
@given(paired_arrays(), lams)
def test_n_modal_form_is_equation_5_for_two_modalities(data, lam):
    X, d = data
    s = ModalityGapShifter(lam=lam).fit(X)
    np.testing.assert_allclose(s.shift_vectors_[0], -s.gap_vector_ / 2, atol=1e-15)
    np.testing.assert_allclose(s.shift_vectors_[1], s.gap_vector_ / 2, atol=1e-15)
    np.testing.assert_allclose(s.transform(X), equation_5(X, lam, d), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(paired_arrays(), lams)
def test_row_permutation_commutes(data, lam):
    X, d = data
    perm = np.random.default_rng(0).permutation(len(X))
    a = ModalityGapShifter(lam=lam).fit(X)
    b = ModalityGapShifter(lam=lam).fit(X[perm])
    np.testing.assert_allclose(b.transform(X[perm]), a.transform(X)[perm], atol=1e-12)
