import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import groupwise_scores, make_clustering_scorer, make_retrieval_scorer
from skgap.measure import retrieval_recall_at_k
from skgap.transform._shift import ModalityGapShifter


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def data():
    return make_paired_embeddings(240, 16, n_classes=3, class_sep=3.0, noise=1.0, random_state=0)


@pytest.mark.parametrize("direction", ["both", "image_to_text", "text_to_image"])
def test_retrieval_scorer_scores_the_transformed_output(data, direction):
    X, _ = data
    shifter = ModalityGapShifter(lam=0.7).fit(X[:120])
    Z = shifter.transform(X[120:])
    r = retrieval_recall_at_k(Z[:, :16], Z[:, 16:], k=(5,))
    i2t, t2i = r["image_to_text_recall@5"], r["text_to_image_recall@5"]
    want = {"both": (i2t + t2i) / 2, "image_to_text": i2t, "text_to_image": t2i}[direction]
    scorer = make_retrieval_scorer(k=5, direction=direction)
    assert scorer(shifter, X[120:]) == pytest.approx(want)
    assert scorer(shifter, X[120:], None) == pytest.approx(want)


def test_retrieval_scorer_y_as_groups_merges_repeated_images():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((30, 8))
    ids = np.repeat(np.arange(30), 2)  # two captions per image, image rows repeated
    V = images[ids]
    T = V + 0.8 * rng.standard_normal(V.shape)
    X = np.hstack([V, T])
    identity = FunctionTransformer().fit(X)
    score = make_retrieval_scorer(k=1, direction="image_to_text", y_as_groups=True)(
        identity, X, ids
    )
    want = retrieval_recall_at_k(images, T, k=(1,), groups=ids)["image_to_text_recall@1"]
    assert score == pytest.approx(want)
    with pytest.raises(ValueError, match="needs y"):
        make_retrieval_scorer(y_as_groups=True)(identity, X)
    with pytest.raises(ValueError, match="one image id per row"):
        make_retrieval_scorer(y_as_groups=True)(identity, X, ids[:-1])


def test_retrieval_scorer_in_gridsearch_over_lambda(data):
    X, _ = data
    search = GridSearchCV(ModalityGapShifter(), {"lam": [0.0, 0.5, 1.0]},
                          scoring=make_retrieval_scorer(k=5), cv=KFold(3)).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (3,)
    assert np.all((scores > 0) & (scores <= 1))
    # In a pipeline of transformers, the layout is read from the shifter step.
    pipe = Pipeline([("gap", ModalityGapShifter()), ("id", FunctionTransformer())])
    search = GridSearchCV(pipe, {"gap__lam": [0.0, 1.0]},
                          scoring=make_retrieval_scorer(k=5), cv=KFold(3)).fit(X)
    assert search.cv_results_["mean_test_score"][0] == pytest.approx(scores[0])


def test_clustering_scorer_in_gridsearch_prefers_a_closed_gap(data):
    X, y = data
    search = GridSearchCV(ModalityGapShifter(), {"lam": [0.0, 1.0]},
                          scoring=make_clustering_scorer("v_measure"), cv=3).fit(X, y)
    assert search.best_params_ == {"lam": 1.0}
    shifter = ModalityGapShifter(lam=1.0).fit(X)
    scorer = make_clustering_scorer("ari", n_neighbors=5, random_state=1)
    want = groupwise_scores(shifter.transform(X), y, n_neighbors=5, random_state=1)["ari"]
    assert scorer(shifter, X, y) == pytest.approx(want)


def test_scorers_use_explicit_or_fitted_layout():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((40, 6))
    T = V + 0.5 * rng.standard_normal((40, 6))
    X = np.hstack([V, T, rng.standard_normal((40, 4))])  # a third, unused block
    drop_last = FunctionTransformer(lambda A: A[:, :12]).fit(X)
    scorer = make_retrieval_scorer(k=1, modality_dims=(6, 6))
    r = retrieval_recall_at_k(V, T, k=(1,))
    want = (r["image_to_text_recall@1"] + r["text_to_image_recall@1"]) / 2
    assert scorer(drop_last, X) == pytest.approx(want)
    three = make_retrieval_scorer(k=1, modality_dims=(4, 4, 4))
    with pytest.raises(ValueError, match="two modality blocks"):
        three(drop_last, X)


def test_scorers_refuse_a_pipeline_ending_in_a_classifier(data):
    X, y = data
    pipe = make_pipeline(ModalityGapShifter(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="no transform method"):
        make_retrieval_scorer()(pipe, X, y)
    with pytest.raises(TypeError, match="no transform method"):
        make_clustering_scorer()(pipe, X, y)


def test_clustering_scorer_needs_labels(data):
    X, _ = data
    shifter = ModalityGapShifter().fit(X)
    with pytest.raises(ValueError, match="needs the class labels"):
        make_clustering_scorer()(shifter, X)


@pytest.mark.parametrize(
    "factory, kwargs, match",
    [
        (make_retrieval_scorer, {"k": 0}, "'k' parameter"),
        (make_retrieval_scorer, {"k": (1, 5)}, "'k' parameter"),
        (make_retrieval_scorer, {"direction": "sideways"}, "direction"),
        (make_retrieval_scorer, {"y_as_groups": "yes"}, "y_as_groups"),
        (make_clustering_scorer, {"metric": "modality_ari"}, "metric"),
        (make_clustering_scorer, {"metric": "silhouette"}, "metric"),
    ],
)
def test_bad_scorer_arguments(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


def test_reprs():
    assert repr(make_retrieval_scorer(k=5)) == (
        "make_retrieval_scorer(k=5, direction='both', y_as_groups=False)"
    )
    assert repr(make_clustering_scorer("nmi")).startswith("make_clustering_scorer(metric='nmi'")
