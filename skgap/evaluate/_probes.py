"""Linear probes on paired embeddings: early fusion and late fusion."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils import check_array, check_consistent_length, get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._core._parallel import one_blas_thread
from .._core._validation import Interval, PairedMixin, PositiveInt, modality_dims_constraint
from ._auc import TASKS, continuous_scores, infer_task

__all__ = ["make_linear_probe", "LateFusionClassifier"]


@validate_params(
    {
        "task": [StrOptions(set(TASKS))],
        "C": [Interval(Real, 0, np.inf, closed="neither")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "max_iter": PositiveInt(),
    },
    prefer_skip_nested_validation=True,
)
def make_linear_probe(task="binary", *, C=1.0, class_weight="balanced", max_iter=1000):
    r"""The early-fusion linear probe of the cone-effect paper, for any task.

    A class-weighted logistic regression on the concatenated embeddings
    :math:`[v' \,|\, t']` (the paired array itself, so put it after a
    :class:`~skgap.ModalityGapShifter` in a pipeline). Multi-label targets
    get one such model per label through
    :class:`~sklearn.multiclass.OneVsRestClassifier`.

    Parameters
    ----------
    task : {'binary', 'multiclass', 'multilabel'}, default='binary'
        Binary and multi-class tasks give one
        :class:`~sklearn.linear_model.LogisticRegression` (multinomial for
        several classes); ``'multilabel'`` wraps it one-vs-rest.
    C : float, default=1.0
        Inverse strength of the L2 penalty.
    class_weight : 'balanced', dict or None, default='balanced'
        ``'balanced'`` weighs each class by :math:`n / (K\, n_k)`, so rare
        findings count as much as common ones (per label for multi-label).
    max_iter : int, default=1000
        Iterations of the L-BFGS solver.

    Returns
    -------
    probe : LogisticRegression or OneVsRestClassifier
        An unfitted scikit-learn classifier.

    See Also
    --------
    LateFusionClassifier : One probe per modality, probabilities averaged.
    gap_sweep : The probe scored against the gap-shift :math:`\lambda`.

    Notes
    -----
    With class weights :math:`w_k = n / (K n_k)` the probe minimises

    .. math:: \frac{1}{2C}\lVert W \rVert^2 - \sum_i w_{y_i} \log p(y_i \mid [v'_i, t'_i]).

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", Section 4 (early-fusion linear probes).

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skgap import ModalityGapShifter
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import make_linear_probe
    >>> X, y = make_paired_embeddings(300, 16, random_state=0)
    >>> model = make_pipeline(ModalityGapShifter(lam=0.5), make_linear_probe("binary"))
    >>> model.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    >>> make_linear_probe("multilabel")
    OneVsRestClassifier(estimator=LogisticRegression(class_weight='balanced',
                                                     max_iter=1000))
    """
    lr = LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter)
    if task == "multilabel":
        return OneVsRestClassifier(lr)
    return lr


class LateFusionClassifier(ClassifierMixin, PairedMixin, BaseEstimator):
    r"""Late fusion: one probe per modality, class probabilities averaged.

    Fits a clone of ``estimator`` on each modality block of
    ``X = [V | T]`` separately and predicts with the weighted mean of their
    probabilities. Compare it with the early-fusion probe
    (:func:`make_linear_probe` on the whole ``X``) to see what the joint
    view adds.

    Parameters
    ----------
    estimator : classifier with predict_proba, default=None
        The per-modality probe. ``None`` uses :func:`make_linear_probe` for
        the task of ``y``.
    modality_dims : sequence of int, default=None
        Width of each block; ``None`` means two blocks of equal width. The
        blocks may differ in width (each probe sees only its own).
    weights : array-like of shape (n_modalities,), default=None
        Non-negative weight of each modality's probabilities; ``None`` means
        equal weights. They are normalised to sum to one.

    Attributes
    ----------
    estimators_ : list of fitted classifiers
        One per modality, in block order.
    classes_ : ndarray
        Class labels (label indices for multi-label targets).
    weights_ : ndarray of shape (n_modalities,)
        The normalised weights.
    modality_dims_ : tuple of int
        Width of each block.
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    make_linear_probe : The early-fusion probe.

    Notes
    -----
    With per-modality probabilities :math:`p_m(k \mid x_m)` and weights
    :math:`w_m` (:math:`\sum_m w_m = 1`):

    .. math:: p(k \mid x) = \sum_m w_m\, p_m(k \mid x_m), \qquad
        \hat y = \arg\max_k p(k \mid x)

    and, for multi-label targets, :math:`\hat y_\ell = [p_\ell(x) \ge 1/2]`.

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import LateFusionClassifier
    >>> X, y = make_paired_embeddings(300, 16, random_state=0)
    >>> clf = LateFusionClassifier().fit(X, y)
    >>> len(clf.estimators_), clf.predict_proba(X[:3]).shape
    (2, (3, 2))
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "modality_dims": modality_dims_constraint(),
        "weights": ["array-like", None],
    }

    def __init__(self, estimator=None, *, modality_dims=None, weights=None):
        self.estimator = estimator
        self.modality_dims = modality_dims
        self.weights = weights

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit one probe per modality block.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Paired embeddings ``[V | T]``.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix.

        Returns
        -------
        self : LateFusionClassifier
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X, slices = self._validate_paired(X, reset=True)
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            # A column vector is one label per row, not a one-label indicator
            # matrix: flatten it and say so, as scikit-learn's classifiers do.
            y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        weights = self._check_weights(len(slices))
        base = self.estimator if self.estimator is not None else make_linear_probe(infer_task(y))
        with one_blas_thread():  # small fits: BLAS threads only contend
            self.estimators_ = [clone(base).fit(X[:, s], y) for s in slices]
        self.classes_ = self.estimators_[0].classes_
        self.weights_ = weights
        self._multilabel = y.ndim == 2
        return self

    def _check_weights(self, n_modalities):
        if self.weights is None:
            return np.full(n_modalities, 1.0 / n_modalities)
        w = np.asarray(self.weights, dtype=float)
        if w.shape != (n_modalities,):
            raise ValueError(
                f"weights must hold one value per modality ({n_modalities}), "
                f"got shape {w.shape}."
            )
        if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be finite, non-negative and not all zero, got {w.tolist()}."
            )
        return w / w.sum()

    def predict_proba(self, X):
        """Weighted mean of the per-modality probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
        """
        check_is_fitted(self)
        X, slices = self._validate_paired(X, reset=False)
        proba = None
        for est, s, w in zip(self.estimators_, slices, self.weights_):
            p = w * continuous_scores(est, X[:, s])
            proba = p if proba is None else proba + p
        return proba

    def predict(self, X):
        """Most probable class (multi-label: every label with probability >= 1/2).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba >= 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The default probe goes one-vs-rest on indicator targets; a given one decides.
        tags.classifier_tags.multi_label = (
            self.estimator is None or get_tags(self.estimator).classifier_tags.multi_label
        )
        return tags

