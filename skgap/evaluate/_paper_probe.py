"""The linear probe as the cone-effect paper states it: SGD with momentum, early stopping."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core._validation import Interval  # refuses booleans
from ._auc import TASKS

__all__ = ["PaperProbe", "make_paper_probe"]


class PaperProbe(ClassifierMixin, BaseEstimator):
    r"""A linear probe trained as in the cone-effect paper (Section 2.2.4).

    A linear model with no hidden layer (softmax regression; a logistic
    output for two classes), trained by stochastic gradient descent with
    momentum, early stopping on a held-out validation split of the training
    rows, and a class-weighted loss: scikit-learn's
    :class:`~sklearn.neural_network.MLPClassifier` with
    ``hidden_layer_sizes=()`` and balanced sample weights
    :math:`w_i = n / (K\, n_{y_i})`.

    With the paper's learning rate (3e-4) and early stopping the probe stops
    long before it converges; its scores then move with :math:`\lambda`
    where a converged logistic regression (:func:`make_linear_probe`) does
    not. Put both curves side by side (``gap_sweep(..., probe="paper")``).

    Parameters
    ----------
    learning_rate : float, default=3e-4
        Step size of SGD.
    momentum : float in [0, 1), default=0.9
        Momentum of SGD.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training rows held out (stratified) for early stopping.
        When the training rows are too few for such a split (fewer held-out
        rows than classes, or a class of one row), the probe trains on all of
        them without early stopping.
    max_iter : int, default=200
        Largest number of epochs.
    n_iter_no_change : int, default=10
        Epochs without improvement of the validation score before stopping.
    random_state : int or None, default=0
        Seeds the weight initialisation, the validation split and the batches.

    Attributes
    ----------
    model_ : MLPClassifier
        The fitted network.
    classes_ : ndarray
        Class labels.
    n_iter_ : int
        Epochs run before early stopping (or ``max_iter``).
    n_features_in_ : int
        Width of ``X``.

    See Also
    --------
    make_linear_probe : The converged, L2-penalised logistic regression.

    Notes
    -----
    The loss minimised by SGD is the weighted cross-entropy

    .. math:: -\frac{1}{\sum_i w_i}\sum_i w_i \log \operatorname{softmax}(W x_i + b)_{y_i}
        + \frac{\alpha}{2 n}\lVert W\rVert^2

    with scikit-learn's default :math:`\alpha = 10^{-4}`.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", Section 2.2.4.

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import PaperProbe
    >>> X, y = make_paired_embeddings(300, 16, random_state=0)
    >>> PaperProbe().fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        learning_rate=3e-4,
        momentum=0.9,
        validation_fraction=0.1,
        max_iter=200,
        n_iter_no_change=10,
        random_state=0,
    ):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the network on ``X`` with balanced class weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : PaperProbe
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        classes, counts = np.unique(y, return_counts=True)
        if classes.size < 2:
            raise ValueError(
                f"PaperProbe needs at least two classes in y, got one class ({classes[0]!r})."
            )
        # Early stopping holds out a stratified validation split; with too few rows for one
        # (fewer held-out rows than classes, or a class of one row) train on all the rows.
        n_val = int(np.ceil(self.validation_fraction * y.shape[0]))
        early = n_val >= classes.size and counts.min() >= 2 and y.shape[0] - n_val >= classes.size
        model = MLPClassifier(
            hidden_layer_sizes=(),
            solver="sgd",
            momentum=self.momentum,
            learning_rate_init=self.learning_rate,
            early_stopping=early,
            validation_fraction=self.validation_fraction,
            max_iter=self.max_iter,
            n_iter_no_change=self.n_iter_no_change,
            random_state=self.random_state,
        )
        # Early stopping at the paper's step size ends before convergence by design.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y, sample_weight=compute_sample_weight("balanced", y))
        self.model_ = model
        self.classes_ = model.classes_
        self.n_iter_ = model.n_iter_
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def make_paper_probe(task="binary", *, random_state=0):
    """The paper's probe for a task: :class:`PaperProbe`, one-vs-rest for multi-label.

    Parameters
    ----------
    task : {'binary', 'multiclass', 'multilabel'}, default='binary'
    random_state : int or None, default=0

    Returns
    -------
    PaperProbe or OneVsRestClassifier
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    probe = PaperProbe(random_state=random_state)
    return OneVsRestClassifier(probe) if task == "multilabel" else probe
