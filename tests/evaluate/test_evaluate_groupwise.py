import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, v_measure_score
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import groupwise_scores, knn_accuracy
from skgap.transform._shift import ModalityGapShifter


@pytest.fixture(scope="module")
def grouped():
    return make_paired_embeddings(240, 16, n_classes=3, class_sep=3.0, random_state=0)


def test_knn_accuracy_equals_leave_one_out_knn():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((60, 3))
    y = (Z[:, 0] + 0.8 * rng.standard_normal(60) > 0).astype(int)
    # An odd k: no tie-breaking differences with scikit-learn.
    want = cross_val_score(KNeighborsClassifier(5), Z, y, cv=LeaveOneOut()).mean()
    assert knn_accuracy(Z, y, n_neighbors=5) == pytest.approx(want)


def test_knn_accuracy_ignores_the_row_itself_even_with_duplicates():
    Z = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]])
    # Each row's one neighbour is an identical copy of its own class.
    assert knn_accuracy(Z, [0, 0, 0, 1, 1, 1], n_neighbors=1) == 1.0
    # Labels that disagree with the geometry are found wrong.
    assert knn_accuracy(Z, [0, 1, 0, 1, 0, 1], n_neighbors=2) < 0.5


def test_knn_accuracy_errors():
    Z = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match="below the number of rows"):
        knn_accuracy(Z, [0, 1, 0, 1, 0], n_neighbors=5)
    with pytest.raises(ValueError, match="'n_neighbors' parameter"):
        knn_accuracy(Z, [0, 1, 0, 1, 0], n_neighbors=0)
    with pytest.raises(ValueError, match="1-D y"):
        knn_accuracy(Z, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="5 rows"):
        knn_accuracy(Z, [0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        knn_accuracy(Z, [0.0, 1.0, np.nan, 1.0, 0.0])


def test_groupwise_scores_match_sklearn_on_the_stacked_points(grouped):
    X, y = grouped
    scores = groupwise_scores(X, y, random_state=3)
    assert set(scores) == {"ari", "nmi", "homogeneity", "completeness", "v_measure",
                           "knn_accuracy", "modality_ari"}
    V, T = X[:, :16], X[:, 16:]
    Z = np.vstack([V / np.linalg.norm(V, axis=1, keepdims=True),
                   T / np.linalg.norm(T, axis=1, keepdims=True)])
    labels = np.concatenate([y, y])
    clusters = KMeans(3, n_init=10, random_state=3).fit_predict(Z)
    assert scores["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
    assert scores["v_measure"] == pytest.approx(v_measure_score(labels, clusters))
    modality = np.repeat([0, 1], 240)
    assert scores["modality_ari"] == pytest.approx(adjusted_rand_score(modality, clusters))
    assert scores["knn_accuracy"] == pytest.approx(knn_accuracy(Z, labels, 10))


def test_closing_the_gap_turns_modality_clusters_into_class_clusters(grouped):
    X, y = grouped
    before = groupwise_scores(X, y)
    after = groupwise_scores(ModalityGapShifter(lam=1.0).fit_transform(X), y)
    assert before["modality_ari"] > 0.5
    assert after["modality_ari"] < 0.1
    assert after["v_measure"] > before["v_measure"] + 0.3
    # Local neighbourhoods barely change.
    assert abs(after["knn_accuracy"] - before["knn_accuracy"]) < 0.05


def test_n_clusters_option(grouped):
    X, y = grouped
    two = groupwise_scores(X, y, n_clusters=2)
    # Two clusters on a large gap: exactly the two modalities.
    assert two["modality_ari"] == pytest.approx(1.0)


def test_groupwise_errors(grouped):
    X, y = grouped
    with pytest.raises(ValueError, match="same width"):
        groupwise_scores(X, y, modality_dims=(12, 20))
    with pytest.raises(ValueError, match="two classes"):
        groupwise_scores(X, np.zeros(240))
    with pytest.raises(ValueError, match="exceeds"):
        groupwise_scores(X[:4], y[:4], n_clusters=9)
    with pytest.raises(ValueError, match="multi-label"):
        groupwise_scores(X, np.zeros((240, 2)))
    with pytest.raises(ValueError, match="'n_clusters' parameter"):
        groupwise_scores(X, y, n_clusters=0)
    with pytest.raises(ValueError, match="columns"):
        groupwise_scores(X[:, :15], y)
