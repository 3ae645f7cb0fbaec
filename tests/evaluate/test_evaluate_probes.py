import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import GaussianNB

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import LateFusionClassifier, make_linear_probe


pytestmark = pytest.mark.usefixtures("one_blas_thread")


# scikit-learn's checks run in tests/test_common.py; check_supervised_y_2d
# there needs the DataConversionWarning of a flattened column-vector y.
def test_column_vector_y_is_flattened_with_a_warning():
    X, y = make_paired_embeddings(120, 8, random_state=0)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        as_column = LateFusionClassifier().fit(X, y[:, None])
    np.testing.assert_array_equal(
        as_column.predict_proba(X), LateFusionClassifier().fit(X, y).predict_proba(X)
    )


def test_one_label_is_refused_clearly():
    X = np.random.default_rng(0).uniform(size=(10, 4))
    with pytest.raises(ValueError, match="class"):
        LateFusionClassifier().fit(X, np.ones(10))


@pytest.mark.parametrize(
    "task, kind", [("binary", LogisticRegression), ("multiclass", LogisticRegression),
                   ("multilabel", OneVsRestClassifier)]
)
def test_make_linear_probe(task, kind):
    probe = make_linear_probe(task, C=0.5)
    assert isinstance(probe, kind)
    lr = probe.estimator if task == "multilabel" else probe
    assert lr.class_weight == "balanced"
    assert lr.C == 0.5
    with pytest.raises(ValueError, match="'task' parameter"):
        make_linear_probe("ordinal")


def test_linear_probe_is_class_weighted_on_imbalanced_labels():
    X, y = make_paired_embeddings(400, 16, random_state=0)
    # Keep only a fifth of the positives.
    keep = (y == 0) | (np.arange(y.size) % 5 == 0)
    X, y = X[keep], y[keep]
    weighted = make_linear_probe("binary").fit(X, y)
    plain = LogisticRegression(max_iter=1000).fit(X, y)
    # Balanced weights predict the rare class more often.
    assert weighted.predict(X).mean() > plain.predict(X).mean()


def test_late_fusion_averages_per_modality_probabilities():
    X, y = make_paired_embeddings(300, 16, n_classes=3, random_state=0)
    clf = LateFusionClassifier(weights=[3, 1]).fit(X, y)
    p_v = make_linear_probe("multiclass").fit(X[:, :16], y).predict_proba(X[:, :16])
    p_t = make_linear_probe("multiclass").fit(X[:, 16:], y).predict_proba(X[:, 16:])
    np.testing.assert_allclose(clf.weights_, [0.75, 0.25])
    np.testing.assert_allclose(clf.predict_proba(X), 0.75 * p_v + 0.25 * p_t, rtol=1e-6)
    fused = 0.75 * p_v + 0.25 * p_t
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(fused, axis=1)])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])


def test_late_fusion_multilabel():
    X, Y = make_paired_embeddings(300, 16, n_classes=4, multilabel=True, random_state=0)
    clf = LateFusionClassifier().fit(X, Y)
    P = clf.predict_proba(X)
    assert P.shape == (300, 4)
    np.testing.assert_array_equal(clf.predict(X), (P >= 0.5).astype(int))
    assert isinstance(clf.estimators_[0], OneVsRestClassifier)


def test_late_fusion_blocks_of_different_widths_and_a_custom_probe():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((120, 6))
    T = rng.standard_normal((120, 10))
    y = (V[:, 0] + T[:, 0] > 0).astype(int)
    X = np.hstack([V, T])
    clf = LateFusionClassifier(GaussianNB(), modality_dims=(6, 10)).fit(X, y)
    assert [e.n_features_in_ for e in clf.estimators_] == [6, 10]
    assert clf.modality_dims_ == (6, 10)
    assert clf.score(X, y) > 0.7
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    assert clone(clf).get_params()["modality_dims"] == (6, 10)


@pytest.mark.parametrize(
    "weights, match",
    [([1.0], "one value per modality"), ([1.0, -1.0], "non-negative"),
     ([0.0, 0.0], "not all zero"), ([np.nan, 1.0], "finite")],
)
def test_late_fusion_bad_weights(weights, match):
    X, y = make_paired_embeddings(60, 8, random_state=0)
    with pytest.raises(ValueError, match=match):
        LateFusionClassifier(weights=weights).fit(X, y)


def test_late_fusion_bad_inputs():
    X, y = make_paired_embeddings(60, 8, random_state=0)
    with pytest.raises(ValueError, match="requires y"):
        LateFusionClassifier().fit(X, None)
    with pytest.raises(ValueError, match="modality_dims"):
        LateFusionClassifier().fit(X[:, :15], y)
    with pytest.raises(ValueError, match="Unknown label type"):
        LateFusionClassifier().fit(X, np.linspace(0, 1, 60))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LateFusionClassifier().fit(X, y[:50])
    with pytest.raises(ValueError, match="estimator"):
        LateFusionClassifier(estimator="logistic").fit(X, y)
    clf = LateFusionClassifier().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :12])
