"""PaperProbe: the probe as the cone-effect paper states it."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.multiclass import OneVsRestClassifier

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import PaperProbe, ProbeTrainingWarning, gap_sweep, make_paper_probe


def test_paper_probe_is_the_stated_protocol():
    X, y = make_paired_embeddings(300, 16, random_state=0)
    y = (np.arange(300) % 5 == 0).astype(int)  # imbalanced: class weights matter
    probe = PaperProbe(max_iter=400, n_iter_no_change=20, learning_rate=0.05).fit(X, y)
    assert probe.coef_.shape == (1, 32)  # linear, one logistic output, no hidden layer
    # Early stopping on the validation loss: it ran until n_iter_no_change epochs
    # passed without a lower loss, and kept the weights of the lowest one.
    assert probe.n_iter_ < 400
    assert probe.n_iter_ - probe.best_iter_ == 20
    assert probe.validation_loss_.size == probe.n_iter_
    assert int(np.argmin(probe.validation_loss_)) + 1 == probe.best_iter_
    assert PaperProbe().get_params()["momentum"] == 0.9
    assert PaperProbe().get_params()["learning_rate"] == 3e-4


def test_one_step_is_momentum_sgd_on_the_class_weighted_cross_entropy():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(6, 3))
    y = np.array([0, 0, 0, 0, 1, 1])  # too few rows to hold out: no early stopping
    lr = 0.1
    one = PaperProbe(learning_rate=lr, max_iter=1, batch_size=6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeTrainingWarning)
        one.fit(X, y)
    # The start: PyTorch's nn.Linear initialisation, uniform in +-1/sqrt(d), bias 0.
    W0 = np.random.RandomState(0).uniform(-1 / np.sqrt(3), 1 / np.sqrt(3), size=(1, 3))
    Z = X / one.scale_
    assert one.scale_ == pytest.approx(np.sqrt(np.mean(np.sum(X**2, axis=1))))
    w = np.where(y == 1, 6 / (2 * 2), 6 / (2 * 4))
    p = 1 / (1 + np.exp(-(Z @ W0.T)[:, 0]))
    g = (w / w.sum()) * (p - y)
    np.testing.assert_allclose(one.coef_, W0 - lr * (g @ Z)[None, :], rtol=1e-10)
    np.testing.assert_allclose(one.intercept_, [-lr * g.sum()], rtol=1e-10)


@pytest.mark.parametrize("dtype, c", [(np.float32, 1e30), (np.float64, 1e200)])
def test_paper_probe_is_scale_free(dtype, c):
    X, y = make_paired_embeddings(120, 8, random_state=1)
    X = X.astype(dtype)
    kw = dict(max_iter=30, n_iter_no_change=5)
    ref = PaperProbe(**kw).fit(X, y).predict_proba(X)
    big = PaperProbe(**kw).fit(X * dtype(c), y).predict_proba(X * dtype(c))
    assert np.isfinite(big).all()
    np.testing.assert_allclose(big, ref, rtol=1e-5, atol=1e-6)


def test_a_probe_that_does_not_train_warns_and_the_sweep_names_it():
    X = np.zeros((40, 4))
    y = np.arange(40) % 2
    with pytest.warns(ProbeTrainingWarning, match="no better than chance"):
        PaperProbe(max_iter=5).fit(X, y)
    assert issubclass(ProbeTrainingWarning, ConvergenceWarning)
    X, _ = make_paired_embeddings(80, 8, random_state=0)
    X[:, :] = 1.0  # every row alike: nothing to learn
    with pytest.warns(ProbeTrainingWarning) as record:
        gap_sweep(X, y[np.arange(80) % 40], lams=[0.0, 1.0], n_seeds=2, probe="paper",
                  as_frame=False)
    found = [str(w.message) for w in record if issubclass(w.category, ProbeTrainingWarning)]
    assert len(found) == 1  # once per sweep ...
    assert "task 'fusion'" in found[0] and "[split 0, lambda 0]" in found[0]  # ... naming fits


def test_the_sweep_seeds_the_paper_probe_per_split():
    X, y = make_paired_embeddings(120, 8, random_state=2)
    seen = []

    class Spy(PaperProbe):
        def fit(self, X, y):
            seen.append(self.random_state)
            return super().fit(X, y)

    from skgap.evaluate import _sweep

    probe = Spy(max_iter=3)
    plan_seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=2)
    for seed in plan_seeds:
        _sweep._reseeded(probe, int(seed)).fit(X, y)
    assert seen == [int(s) for s in plan_seeds] and seen[0] != seen[1]


def test_tiny_training_sets_train_without_early_stopping():
    X = np.random.RandomState(0).normal(size=(6, 4))
    y = np.array([0, 0, 0, 1, 1, 1])
    probe = PaperProbe(max_iter=50).fit(X, y)
    assert probe.validation_loss_.size == 0 and probe.n_iter_ == 50
    grown = PaperProbe(max_iter=50, n_iter_no_change=5).fit(np.tile(X, (10, 1)), np.tile(y, 10))
    assert grown.validation_loss_.size == grown.n_iter_


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
