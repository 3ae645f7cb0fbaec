import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import cross_val_score
from strategies import random_orthogonal, seeds

from skgap._core._layout import pair
from skgap.transform._align import AnchorAffineAligner
from skgap.transform._zeroshot import ZeroShotClassifier, pool_prompt_embeddings


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def zero_shot_world(seed, *, n=600, n_classes=10, d_t=24, d_v=32, noise=0.8):
    """Text space with class prompts; vision space a rotated, scaled, noisy copy."""
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((n_classes, d_t))
    y = rng.integers(0, n_classes, n)
    T = C[y] + noise * rng.standard_normal((n, d_t))
    Q = random_orthogonal(max(d_t, d_v), seed)[:d_t, :d_v]
    V = 2.0 * T @ Q + 0.3 * rng.standard_normal((n, d_v)) + 0.5
    return C, y, T, V


def fitted_aligner(V, T, kind="ortho"):
    return AnchorAffineAligner(kind=kind, modality_dims=(V.shape[1], T.shape[1])).fit(pair(V, T))


# -- prompt ensembles ----------------------------------------------------------


def test_pooling_normalises_averages_renormalises(rng):
    P = rng.standard_normal((4, 3, 6))
    expected = _unit(_unit(P.reshape(12, 6)).reshape(4, 3, 6).mean(1))
    np.testing.assert_allclose(pool_prompt_embeddings(P), expected)
    # Prompt norms do not weigh in the average.
    scaled = P * rng.uniform(0.1, 10, (4, 3, 1))
    np.testing.assert_allclose(pool_prompt_embeddings(scaled), expected)


def test_pooling_accepts_ragged_lists_and_single_prompts(rng):
    ragged = [rng.standard_normal((k, 5)) for k in (1, 3, 2)]
    pooled = pool_prompt_embeddings(ragged)
    for k, block in enumerate(ragged):
        np.testing.assert_allclose(pooled[k], pool_prompt_embeddings(block[None])[0])
    one = rng.standard_normal((3, 5))
    np.testing.assert_allclose(pool_prompt_embeddings(one), _unit(one))
    np.testing.assert_allclose(pool_prompt_embeddings(list(one)), _unit(one))


def test_pooling_keeps_float32(rng):
    C = rng.standard_normal((3, 4)).astype(np.float32)
    assert pool_prompt_embeddings(C).dtype == np.float32


@pytest.mark.parametrize(
    "embeddings, match",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "zero norm"),
        (np.array([[[1.0, 0.0], [-1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]]), "cancel|averaging"),
        ([np.ones((2, 3)), np.ones((1, 4))], "different widths"),
        (np.ones(3), "shape"),
        ([], "empty"),
    ],
)
def test_bad_class_embeddings(embeddings, match):
    with pytest.raises(ValueError, match=match):
        pool_prompt_embeddings(embeddings)


# -- scores ----------------------------------------------------------------


def test_proba_is_softmax_of_cosine_over_temperature(rng):
    C, X = rng.standard_normal((4, 6)), rng.standard_normal((20, 6))
    clf = ZeroShotClassifier(C, temperature=0.05).fit(X)
    cos = _unit(X) @ _unit(C).T
    np.testing.assert_allclose(clf.decision_function(X), cos)
    np.testing.assert_allclose(clf.predict_proba(X), softmax(cos / 0.05, axis=1))
    np.testing.assert_array_equal(clf.predict(X), cos.argmax(1))


@settings(max_examples=20, deadline=None)
@given(seed=seeds, scale=st.floats(0.01, 100.0))
def test_scores_ignore_the_norm_of_the_input(seed, scale):
    rng = np.random.default_rng(seed)
    C, X = rng.standard_normal((3, 5)), rng.standard_normal((8, 5))
    clf = ZeroShotClassifier(C).fit(X)
    np.testing.assert_allclose(clf.predict_proba(scale * X), clf.predict_proba(X), atol=1e-9)


def test_binary_decision_function_is_the_cosine_difference(rng):
    C, X = rng.standard_normal((2, 5)), rng.standard_normal((10, 5))
    clf = ZeroShotClassifier(C).fit(X)
    cos = _unit(X) @ _unit(C).T
    np.testing.assert_allclose(clf.decision_function(X), cos[:, 1] - cos[:, 0])
    np.testing.assert_array_equal(clf.predict(X), (clf.decision_function(X) > 0).astype(int))


def test_prompt_ensemble_is_used(rng):
    P = rng.standard_normal((3, 4, 6))
    X = rng.standard_normal((15, 6))
    ensemble = ZeroShotClassifier(P).fit(X)
    pooled = ZeroShotClassifier(pool_prompt_embeddings(P)).fit(X)
    np.testing.assert_allclose(ensemble.predict_proba(X), pooled.predict_proba(X))
    first_prompt = ZeroShotClassifier(P[:, 0]).fit(X)
    assert not np.allclose(ensemble.decision_function(X), first_prompt.decision_function(X))


def test_float32_stays_float32(rng):
    C = rng.standard_normal((3, 5))
    X = rng.standard_normal((10, 5)).astype(np.float32)
    clf = ZeroShotClassifier(C).fit(X)
    assert clf.decision_function(X).dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32


def test_zero_norm_rows_are_refused(rng):
    X = rng.standard_normal((5, 3))
    clf = ZeroShotClassifier(np.eye(3)).fit(X)
    X[2] = 0
    with pytest.raises(ValueError, match="zero norm"):
        clf.predict(X)


# -- classes -----------------------------------------------------------------


def test_classes_follow_class_embeddings_order(rng):
    X = rng.standard_normal((6, 3))
    np.testing.assert_array_equal(ZeroShotClassifier(np.eye(3)).fit(X).classes_, [0, 1, 2])
    # Whole-number labels index rows, even when a split misses a class.
    clf = ZeroShotClassifier(np.eye(3)).fit(X, [0, 2, 0, 2, 2, 0])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    np.testing.assert_array_equal(clf.predict(np.eye(3)), [0, 1, 2])


def test_string_labels_match_rows_in_sorted_order():
    X = np.eye(3)
    clf = ZeroShotClassifier(np.eye(3)).fit(X, ["dog", "cat", "owl"])
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "owl"])
    np.testing.assert_array_equal(clf.predict(np.eye(3)[[2, 0]]), ["owl", "cat"])


def test_label_count_must_match(rng):
    X = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="2 distinct labels but class_embeddings describes 3"):
        ZeroShotClassifier(np.eye(3)).fit(X, ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="Unknown label type"):
        ZeroShotClassifier(np.eye(3)).fit(X, [0.5, 1.5, 2.5, 0.1])


# -- multi-label ---------------------------------------------------------------


def test_multilabel_with_negative_prompts_is_chexzero(rng):
    pos, neg = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    X = rng.standard_normal((30, 6))
    clf = ZeroShotClassifier(pos, multilabel=True, negative_embeddings=neg, temperature=0.1)
    clf.fit(X, rng.integers(0, 2, (30, 4)))
    margin = _unit(X) @ _unit(pos).T - _unit(X) @ _unit(neg).T
    np.testing.assert_allclose(clf.decision_function(X), margin)
    # The sigmoid of the margin is the softmax over (negative, positive).
    two_way = softmax(np.stack([_unit(X) @ _unit(neg).T, _unit(X) @ _unit(pos).T]) / 0.1, axis=0)
    np.testing.assert_allclose(clf.predict_proba(X), two_way[1])
    np.testing.assert_array_equal(clf.predict(X), (margin > 0).astype(int))
    np.testing.assert_array_equal(clf.classes_, np.arange(4))


def test_multilabel_without_negatives_uses_the_mean_class(rng):
    C, X = rng.standard_normal((5, 6)), rng.standard_normal((20, 6))
    clf = ZeroShotClassifier(C, multilabel=True).fit(X)
    cos = _unit(X) @ _unit(C).T
    margin = cos - cos.mean(1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), expit(margin / 0.01))
    np.testing.assert_array_equal(clf.predict(X), margin > 0)


def test_multilabel_errors(rng):
    X = rng.standard_normal((6, 3))
    with pytest.raises(ValueError, match="indicator matrix of shape"):
        ZeroShotClassifier(np.eye(3), multilabel=True).fit(X, rng.integers(0, 2, (6, 2)))
    with pytest.raises(ValueError, match="only used with multilabel=True"):
        ZeroShotClassifier(np.eye(3), negative_embeddings=np.eye(3)).fit(X)
    with pytest.raises(ValueError, match="one negative prompt"):
        ZeroShotClassifier(np.eye(3), multilabel=True, negative_embeddings=np.eye(3)[:2]).fit(X)


# -- the aligner -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ortho", "lortho", "linear", "affine"])
@pytest.mark.parametrize("d_v", [24, 32])
def test_zero_shot_through_the_aligner_far_above_chance(kind, d_v):
    C, y, T, V = zero_shot_world(0, d_v=d_v)
    aligner = fitted_aligner(V[:200], T[:200], kind)  # 200 anchor pairs
    clf = ZeroShotClassifier(C, aligner=aligner).fit(V[200:], y[200:])
    assert clf.score(V[200:], y[200:]) > 0.9  # chance: 0.1


def test_zero_shot_without_the_aligner_is_near_chance():
    C, y, T, V = zero_shot_world(0, d_v=24)  # same width, rotated space
    assert ZeroShotClassifier(C).fit(T).score(T, y) > 0.9  # the text side is easy
    assert ZeroShotClassifier(C).fit(V).score(V, y) < 0.2  # chance: 0.1


def test_unfitted_aligner_is_refused(rng):
    X = rng.standard_normal((5, 4))
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        ZeroShotClassifier(np.eye(3), aligner=AnchorAffineAligner()).fit(X)


def test_frozen_aligner_survives_clone_and_cross_validation():
    C, y, T, V = zero_shot_world(1)
    aligner = fitted_aligner(V[:200], T[:200])
    bare = ZeroShotClassifier(C, aligner=aligner)
    with pytest.raises(NotFittedError):
        clone(bare).fit(V, y)  # clone resets a bare aligner
    frozen = ZeroShotClassifier(C, aligner=FrozenEstimator(aligner))
    scores = cross_val_score(frozen, V[200:], y[200:], cv=3)
    assert scores.min() > 0.9
    again = pickle.loads(pickle.dumps(clone(frozen).fit(V, y)))
    np.testing.assert_array_equal(again.predict(V), bare.fit(V, y).predict(V))


def test_width_errors(rng):
    C, y, T, V = zero_shot_world(2)
    with pytest.raises(ValueError, match="X has 32 features but class_embeddings has width 24"):
        ZeroShotClassifier(C).fit(V)
    wrong_target = fitted_aligner(V[:100], V[:100, :10])
    with pytest.raises(ValueError, match="space of width 10 but class_embeddings has width 24"):
        ZeroShotClassifier(C, aligner=wrong_target).fit(V)
    with pytest.raises(ValueError, match="cannot translate X"):
        ZeroShotClassifier(C, aligner=fitted_aligner(V[:100], T[:100])).fit(T)
    clf = ZeroShotClassifier(C).fit(T)
    with pytest.raises(ValueError, match="features"):
        clf.predict(V)
