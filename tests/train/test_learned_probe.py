"""Tests of LearnedGapProbe: the shift it learns and the classifier API."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402

from skgap import ModalityGapShifter  # noqa: E402
from skgap.datasets import make_paired_embeddings  # noqa: E402
from skgap.train._learned_probe import LearnedGapProbe, shifted_features


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices on a shared machine: threads only add overhead.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def binary():
    X, y = make_paired_embeddings(400, 16, class_sep=1.0, random_state=0)
    return X[:300], X[300:], y[:300], y[300:]


@pytest.fixture(scope="module")
def fitted(binary):
    X_train, _, y_train, _ = binary
    return LearnedGapProbe(random_state=0).fit(X_train, y_train)


def test_binary_classifier_api(binary, fitted):
    _, X_test, _, y_test = binary
    assert list(fitted.classes_) == [0, 1]
    assert fitted.coef_.shape == (1, 32) and fitted.intercept_.shape == (1,)
    scores = fitted.decision_function(X_test)
    assert scores.shape == (len(X_test),)
    proba = fitted.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(fitted.predict(X_test), (scores > 0).astype(int))
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-6)
    assert fitted.score(X_test, y_test) > 0.8


def test_lambda_is_learned_in_the_unit_interval(fitted):
    path = np.array(fitted.lam_path_)
    assert len(path) == fitted.n_iter_ == len(fitted.loss_curve_)
    assert np.all((0 <= path) & (path <= 1))
    assert fitted.lam_ == path[-1]
    # Starting at 0, lambda moves: closing the gap helps this probe.
    assert fitted.lam_ > 0.5
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


def test_lambda_stays_put_without_a_gap():
    X, y = make_paired_embeddings(200, 8, random_state=1)
    V = X[:, :8]
    # Identical modalities: no gap, the shift is zero and so is d loss / d lambda.
    probe = LearnedGapProbe(lam_init=0.3, max_iter=30, random_state=0).fit(np.hstack([V, V]), y)
    np.testing.assert_allclose(probe.shift_vectors_, 0, atol=1e-7)
    assert probe.lam_ == pytest.approx(0.3)


def test_lam_init_at_the_upper_bound_stays_in_range(binary):
    X_train, _, y_train, _ = binary
    probe = LearnedGapProbe(lam_init=1.0, max_iter=40, random_state=0).fit(X_train, y_train)
    assert max(probe.lam_path_) <= 1.0


def test_shift_matches_modality_gap_shifter(binary, fitted):
    X_train, X_test, _, _ = binary
    shifter = ModalityGapShifter(lam=fitted.lam_).fit(X_train)
    np.testing.assert_allclose(fitted.shift_vectors_, shifter.shift_vectors_, atol=1e-7)
    np.testing.assert_allclose(fitted.gap_vector_, shifter.gap_vector_, atol=1e-7)
    expected = shifter.transform(X_test)
    np.testing.assert_allclose(fitted._fused(X_test), expected, atol=1e-6)
    # The torch features used in training are the same function of lambda.
    U = [
        torch.as_tensor(B / np.linalg.norm(B, axis=1, keepdims=True))
        for B in np.split(X_test, 2, axis=1)
    ]
    S = [torch.as_tensor(s, dtype=torch.float32) for s in fitted.shift_vectors_]
    for lam in (0.0, 0.3, 0.7, 1.0):
        got = shifted_features(U, S, torch.tensor(lam)).numpy()
        expected = ModalityGapShifter(lam=lam).fit(X_train).transform(X_test)
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_decision_function_is_linear_in_fused_features(binary, fitted):
    _, X_test, _, _ = binary
    F = ModalityGapShifter(lam=fitted.lam_).fit(binary[0]).transform(X_test)
    expected = F @ fitted.coef_[0] + fitted.intercept_[0]
    np.testing.assert_allclose(fitted.decision_function(X_test), expected, rtol=1e-5, atol=1e-5)


def test_multiclass_and_string_labels():
    X, y = make_paired_embeddings(300, 12, n_classes=3, class_sep=2.0, random_state=0)
    labels = np.array(["cardiomegaly", "edema", "normal"])[y]
    probe = LearnedGapProbe(random_state=0, max_iter=100).fit(X, labels)
    np.testing.assert_array_equal(probe.classes_, ["cardiomegaly", "edema", "normal"])
    assert probe.coef_.shape == (3, 24)
    scores = probe.decision_function(X)
    assert scores.shape == (300, 3)
    proba = probe.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(probe.predict(X), probe.classes_[scores.argmax(axis=1)])
    assert np.mean(probe.predict(X) == labels) > 0.8


def test_mini_batches(binary, fitted):
    X_train, X_test, y_train, y_test = binary
    # A batch at least as large as the data is the full batch, step for step.
    whole = LearnedGapProbe(batch_size=len(X_train), random_state=0).fit(X_train, y_train)
    assert whole.lam_path_ == fitted.lam_path_
    np.testing.assert_array_equal(whole.coef_, fitted.coef_)
    # Real mini-batches take other steps and still learn to close the gap.
    probe = LearnedGapProbe(batch_size=64, max_iter=30, random_state=0).fit(X_train, y_train)
    assert probe.lam_path_[: 5] != fitted.lam_path_[: 5]
    assert probe.lam_ > 0.5
    assert probe.score(X_test, y_test) > 0.7


def test_deterministic_and_pickle(binary, fitted):
    X_train, X_test, y_train, _ = binary
    again = clone(fitted).fit(X_train, y_train)
    np.testing.assert_array_equal(again.coef_, fitted.coef_)
    assert again.lam_ == fitted.lam_
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))


def test_float64_and_float32_predict_alike(binary, fitted):
    _, X_test, _, _ = binary
    s32 = fitted.decision_function(X_test)
    s64 = fitted.decision_function(X_test.astype(np.float64))
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    np.testing.assert_allclose(s32, s64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X, y: (X, np.zeros_like(y)), "at least 2 classes"),
        (lambda X, y: (X[:, :-1], y), "modality_dims"),
        (lambda X, y: (np.where(np.arange(len(X))[:, None] == 0, 0.0, X), y), "zero norm"),
    ],
)
def test_bad_inputs(binary, make, match):
    X, y = make(binary[0], binary[2])
    with pytest.raises(ValueError, match=match):
        LearnedGapProbe(max_iter=2).fit(X, y)


def test_unequal_blocks_are_refused(binary):
    X_train, _, y_train, _ = binary
    with pytest.raises(ValueError, match="same width"):
        LearnedGapProbe(modality_dims=(12, 20), max_iter=2).fit(X_train, y_train)


def test_predict_names_the_block_of_a_zero_row(binary, fitted):
    X = binary[1].copy()
    d = X.shape[1] // 2
    X[3, d:] = 0
    with pytest.raises(ValueError, match=r"text block has 1 row\(s\) with zero norm \(rows 3\)"):
        fitted.predict(X)
