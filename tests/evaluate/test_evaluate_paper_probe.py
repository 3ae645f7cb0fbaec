"""PaperProbe: the probe as the cone-effect paper states it, and scikit-learn's checks."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import PaperProbe, make_paper_probe

#: The checks PaperProbe fails by design, and why.
EXPECTED = {
    "check_classifiers_train": (
        "asks for training accuracy > 0.83 on a small problem; the paper's probe stops "
        "early at learning rate 3e-4, before it converges, by design"
    ),
}


@parametrize_with_checks([PaperProbe()], expected_failed_checks=lambda est: EXPECTED)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_paper_probe_is_the_stated_protocol():
    X, y = make_paired_embeddings(300, 16, random_state=0)
    y = (np.arange(300) % 5 == 0).astype(int)  # imbalanced: class weights matter
    probe = PaperProbe().fit(X, y)
    net = probe.model_
    assert net.hidden_layer_sizes == () and len(net.coefs_) == 1  # linear, no hidden layer
    assert (net.solver, net.momentum, net.learning_rate_init) == ("sgd", 0.9, 3e-4)
    assert net.early_stopping and net.n_iter_ < net.max_iter
    np.testing.assert_allclose(probe.predict_proba(X), net.predict_proba(X))
    # The balanced weights: a copy fitted with those weights by hand is the same network.
    w = np.where(y == 1, 300 / (2 * 60), 300 / (2 * 240))
    twin = MLPClassifier(hidden_layer_sizes=(), solver="sgd", momentum=0.9,
                         learning_rate_init=3e-4, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(probe.predict_proba(X), twin.predict_proba(X))




def test_tiny_training_sets_train_without_early_stopping():
    X = np.random.RandomState(0).normal(size=(6, 4))
    y = np.array([0, 0, 0, 1, 1, 1])
    probe = PaperProbe().fit(X, y)
    assert not probe.model_.early_stopping
    assert PaperProbe().fit(np.tile(X, (10, 1)), np.tile(y, 10)).model_.early_stopping


def test_errors_and_factory():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="at least two classes"):
        PaperProbe().fit(X, np.ones(10))
    with pytest.raises(ValueError, match="learning_rate"):
        PaperProbe(learning_rate=0).fit(X, np.arange(10) % 2)
    assert isinstance(make_paper_probe("multilabel"), OneVsRestClassifier)
    assert isinstance(make_paper_probe("binary"), PaperProbe)
    with pytest.raises(ValueError, match="task"):
        make_paper_probe("regression")
    clone(PaperProbe(momentum=0.5))
