import numpy as np
import pytest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.multioutput import MultiOutputClassifier
from sklearn.svm import LinearSVC

from skgap.evaluate import (
    auc_scorer,
    binary_auc,
    continuous_scores,
    infer_task,
    multiclass_auc,
    multilabel_auc,
    probe_auc,
)
from skgap.evaluate._auc import check_task


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_infer_task():
    assert infer_task([0, 1, 0]) == "binary"
    assert infer_task(["a", "b", "c"]) == "multiclass"
    assert infer_task(np.array([[0, 1], [1, 0], [1, 1]])) == "multilabel"
    with pytest.raises(ValueError, match="continuous"):
        infer_task([0.1, 0.5, 2.3])
    with pytest.raises(ValueError, match="one class only"):
        infer_task([1, 1, 1])


def test_check_task_accepts_matching_and_names_mismatches():
    assert check_task(None, [0, 1]) == "binary"
    assert check_task("multiclass", [0, 1, 2]) == "multiclass"
    with pytest.raises(ValueError, match="2 distinct classes.*task='binary'"):
        check_task("multiclass", [0, 1, 1])
    with pytest.raises(ValueError, match="exactly two classes"):
        check_task("binary", [0, 1, 2])
    with pytest.raises(ValueError, match="indicator matrix"):
        check_task("multilabel", [0, 1, 2])
    with pytest.raises(ValueError, match="task must be one of"):
        check_task("regression", [0, 1])


def test_binary_auc_matches_sklearn(rng):
    y = rng.integers(0, 2, 50)
    s = rng.random(50)
    assert binary_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    # predict_proba layout: the positive column is used.
    assert binary_auc(y, np.column_stack([1 - s, s])) == pytest.approx(roc_auc_score(y, s))
    # String labels: the larger one is positive.
    labels = np.where(y == 1, "sick", "healthy")
    assert binary_auc(labels, s) == pytest.approx(roc_auc_score(labels == "sick", s))


def test_binary_auc_errors():
    with pytest.raises(ValueError, match="both classes"):
        binary_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="1-D"):
        binary_auc([[0, 1], [1, 0]], [0.1, 0.2])
    with pytest.raises(ValueError, match="rows"):
        binary_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="1-D or"):
        binary_auc([0, 1], np.ones((2, 3)))


def test_multiclass_auc_matches_sklearn_macro_ovr(rng):
    y = rng.integers(0, 4, 80)
    P = rng.dirichlet(np.ones(4), size=80)
    want = roc_auc_score(y, P, multi_class="ovr", average="macro")
    assert multiclass_auc(y, P) == pytest.approx(want)


def test_multiclass_auc_on_a_split_missing_a_class(rng):
    y = rng.integers(0, 3, 60)  # classes 0, 1, 2 present; class 3 absent
    P = rng.dirichlet(np.ones(4), size=60)
    want = np.mean([roc_auc_score(y == k, P[:, k]) for k in range(3)])
    assert multiclass_auc(y, P, labels=[0, 1, 2, 3]) == pytest.approx(want)
    with pytest.raises(ValueError, match="labels=estimator.classes_"):
        multiclass_auc(y, P)


def test_multiclass_auc_errors():
    with pytest.raises(ValueError, match="2-D"):
        multiclass_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="1-D"):
        multiclass_auc(np.zeros((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="at least two classes"):
        multiclass_auc([1, 1, 1], np.ones((3, 3)), labels=[0, 1, 2])


def test_multilabel_auc_per_label_and_macro(rng):
    Y = rng.integers(0, 2, (70, 4))
    S = rng.random((70, 4))
    per_label, macro = multilabel_auc(Y, S)
    want = [roc_auc_score(Y[:, j], S[:, j]) for j in range(4)]
    np.testing.assert_allclose(per_label, want)
    assert macro == pytest.approx(np.mean(want))
    assert macro == pytest.approx(roc_auc_score(Y, S, average="macro"))


def test_multilabel_auc_undefined_label_is_nan_and_left_out(rng):
    Y = rng.integers(0, 2, (30, 3))
    Y[:, 1] = 0
    S = rng.random((30, 3))
    with pytest.warns(UndefinedMetricWarning, match=r"label\(s\) \[1\]"):
        per_label, macro = multilabel_auc(Y, S)
    assert np.isnan(per_label[1])
    assert macro == pytest.approx(np.mean(per_label[[0, 2]]))
    with pytest.raises(ValueError, match="undefined"):
        multilabel_auc(np.zeros((5, 2), dtype=int), rng.random((5, 2)))
    with pytest.raises(ValueError, match="same 2-D shape"):
        multilabel_auc(Y, S[:, :2])


def test_probe_auc_dispatches(rng):
    y = rng.integers(0, 2, 40)
    s = rng.random(40)
    assert probe_auc(y, s) == binary_auc(y, s)
    y3 = rng.integers(0, 3, 40)
    P = rng.dirichlet(np.ones(3), size=40)
    assert probe_auc(y3, P) == multiclass_auc(y3, P)
    Y = rng.integers(0, 2, (40, 3))
    S = rng.random((40, 3))
    assert probe_auc(Y, S, task="multilabel") == multilabel_auc(Y, S)[1]
    with pytest.raises(ValueError, match="'task' parameter"):
        probe_auc(y, s, task="ranking")


def test_continuous_scores_of_each_kind(rng):
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    np.testing.assert_array_equal(continuous_scores(lr, X), lr.predict_proba(X))
    svc = LinearSVC().fit(X, y)
    np.testing.assert_array_equal(continuous_scores(svc, X), svc.decision_function(X))
    Y = np.column_stack([y, (X[:, 1] > 0).astype(int)])
    moc = MultiOutputClassifier(LogisticRegression()).fit(X, Y)
    got = continuous_scores(moc, X)
    assert got.shape == (60, 2)
    np.testing.assert_allclose(got[:, 1], moc.estimators_[1].predict_proba(X)[:, 1])
    with pytest.raises(TypeError, match="neither predict_proba nor decision_function"):
        continuous_scores(object(), X)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_auc_scorer_works_in_gridsearch(kind, rng):
    from sklearn.multiclass import OneVsRestClassifier

    X = rng.standard_normal((120, 5))
    if kind == "binary":
        y = (X[:, 0] + 0.5 * rng.standard_normal(120) > 0).astype(int)
        est = LogisticRegression()
    elif kind == "multiclass":
        y = np.digitize(X[:, 0], [-0.5, 0.5])
        est = LogisticRegression()
    else:
        y = (X[:, :3] > 0).astype(int)
        est = OneVsRestClassifier(LogisticRegression())
    search = GridSearchCV(est, {"estimator__C" if kind == "multilabel" else "C": [0.1, 1.0]},
                          scoring=auc_scorer, cv=3).fit(X, y)
    best = search.best_estimator_
    assert auc_scorer(best, X, y) == pytest.approx(probe_auc(y, continuous_scores(best, X)))
    assert 0.5 < search.best_score_ <= 1.0
