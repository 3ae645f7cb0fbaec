"""The linear probe as the cone-effect paper states it: SGD with momentum, early stopping."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core._validation import Interval  # refuses booleans
from ._auc import TASKS

__all__ = ["PaperProbe", "ProbeTrainingWarning", "make_paper_probe"]


class ProbeTrainingWarning(ConvergenceWarning):
    """A probe ended no better than chance on its own training rows.

    Raised (as a warning) by :class:`PaperProbe` when, after training, its
    balanced accuracy on the rows it was fitted on is at most that of always
    predicting the majority class (:math:`1/K`), or its (macro one-vs-rest)
    AUC on them is at most 0.5. Its scores on test rows then say nothing about
    the embeddings; :func:`gap_sweep` collects these warnings and names the
    task, split and :math:`\\lambda` of each.
    """


def _rms_row_norm(X):
    """Root mean square row norm of ``X``, overflow- and underflow-free."""
    peak = float(np.max(np.abs(X))) if X.size else 0.0
    if not np.isfinite(peak) or peak == 0.0:
        return 1.0
    U = X / peak
    return peak * float(np.sqrt(np.mean(np.einsum("ij,ij->i", U, U, dtype=np.float64))))


def _train_auc(Y, P):
    """Macro one-vs-rest AUC of probabilities ``P`` against one-hot ``Y`` (NaN-free rows)."""
    from scipy.stats import rankdata

    aucs = []
    for k in range(Y.shape[1]):
        pos = Y[:, k] > 0
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos and n_neg:
            r = rankdata(P[:, k])
            aucs.append((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else np.nan


class PaperProbe(ClassifierMixin, BaseEstimator):
    r"""A linear probe trained as in the cone-effect paper (Section 2.2.4).

    A linear model with no hidden layer -- a logistic output for two classes
    (binary cross-entropy), a softmax for more -- trained with a
    class-weighted cross-entropy by gradient descent with momentum 0.9 at
    learning rate 3e-4, with early stopping on the loss of a held-out
    validation split of the training rows, in mini-batches of 32 rows
    (shuffled each epoch with ``random_state``). At this learning rate the
    loss falls slowly; the early stopping therefore waits
    ``n_iter_no_change`` epochs (100) without a lower validation loss, for
    up to ``max_iter`` epochs (2000), and keeps the weights of the epoch with
    the lowest validation loss.

    Parameters
    ----------
    learning_rate : float, default=3e-4
        Step size.
    momentum : float in [0, 1), default=0.9
        Momentum (heavy ball, as ``torch.optim.SGD``:
        :math:`v \leftarrow \mu v + g`, :math:`w \leftarrow w - \eta v`).
    validation_fraction : float in (0, 1), default=0.1
        Share of the training rows held out (stratified) for early stopping.
        When the training rows are too few for such a split (fewer held-out
        rows than classes, or a class of one row), the probe trains on all of
        them for ``max_iter`` epochs.
    max_iter : int, default=2000
        Largest number of epochs.
    n_iter_no_change : int, default=100
        Epochs without a lower validation loss before stopping.
    batch_size : int, default=32
        Rows per step (the last batch of an epoch may be smaller).
    random_state : int, RandomState instance or None, default=0
        Seeds the weight initialisation, the validation split and the batches.
        :func:`gap_sweep` sets it to each split's seed.

    Attributes
    ----------
    coef_ : ndarray of shape (n_outputs, n_features)
        Weights (one output for two classes), on the scaled features.
    intercept_ : ndarray of shape (n_outputs,)
    scale_ : float
        The root mean square row norm of the training rows, which every row
        is divided by (see Notes).
    classes_ : ndarray
        Class labels.
    n_iter_ : int
        Epochs run.
    best_iter_ : int
        The epoch whose weights are kept (lowest validation loss).
    validation_loss_ : ndarray of shape (`n_iter_`,)
        Weighted validation loss after each epoch (empty without early
        stopping).
    training_auc_, training_balanced_accuracy_ : float
        Macro AUC and balanced accuracy on the rows the probe was fitted on.
    n_features_in_ : int
        Width of ``X``.

    Warns
    -----
    ProbeTrainingWarning
        When the probe ends no better than chance on its own training rows.

    See Also
    --------
    make_linear_probe : The converged, L2-penalised logistic regression.

    Notes
    -----
    With balanced weights :math:`w_i = n / (K\, n_{y_i})` the loss is

    .. math:: L(W, b) = -\frac{1}{\sum_i w_i}\sum_i w_i \log p_{y_i}(x_i / r),
        \qquad p(x) = \operatorname{softmax}(W x + b),

    (the logistic form for two classes), with :math:`r` the root mean square
    row norm of the training rows (``scale_``). Dividing by :math:`r` makes
    the probe scale-free -- it gives the same predictions on :math:`cX` for
    any :math:`c > 0`, where the raw step :math:`\eta\,\nabla L` would
    overflow -- and leaves unit rows unchanged (a pair :math:`[v \mid t]` of
    unit blocks is divided by :math:`\sqrt 2`). The weights start as
    PyTorch's ``nn.Linear`` does, uniform in :math:`\pm 1/\sqrt d`, the bias
    at 0.

    What differs from the authors' released code: the paper's text states
    SGD with momentum 0.9 at learning rate 3e-4; the released training
    script uses AdamW. skgap follows the text, since the paper's claims are
    stated for that protocol, and offers :func:`make_linear_probe` (a
    converged logistic regression, the optimum both optimisers approach) for
    the answer that does not depend on the optimiser. The paper states no
    batch size; skgap uses 32.

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
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        learning_rate=3e-4,
        momentum=0.9,
        validation_fraction=0.1,
        max_iter=2000,
        n_iter_no_change=100,
        batch_size=32,
        random_state=0,
    ):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.random_state = random_state

    def _outputs(self, X, W, b):
        """Log-probabilities of every class, shape (n, K)."""
        z = X @ W.T + b
        if z.shape[1] == 1:  # logistic output: classes (0, 1) get log sigma(-z), log sigma(z)
            return np.concatenate([-np.logaddexp(0, z), -np.logaddexp(0, -z)], axis=1)
        return log_softmax(z, axis=1)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the probe on ``X`` with balanced class weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : PaperProbe
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
        if classes.size < 2:
            raise ValueError(
                f"PaperProbe needs at least two classes in y, got one class ({classes[0]!r})."
            )
        rng = check_random_state(self.random_state)
        self.scale_ = _rms_row_norm(X)
        Z = (X / X.dtype.type(self.scale_)).astype(np.float64)
        K, d = classes.size, X.shape[1]
        Y = np.eye(K)[y_idx]
        w = compute_sample_weight("balanced", y_idx)
        n_val = int(np.ceil(self.validation_fraction * y.shape[0]))
        early = n_val >= K and counts.min() >= 2 and y.shape[0] - n_val >= K
        rows = np.arange(y.shape[0])
        if early:
            fit_rows, val_rows = train_test_split(
                rows, test_size=n_val, stratify=y_idx, random_state=rng.randint(2**31 - 1))
        else:
            fit_rows, val_rows = rows, rows[:0]
        n_out = 1 if K == 2 else K
        bound = 1.0 / np.sqrt(d)
        W = rng.uniform(-bound, bound, size=(n_out, d))
        b = np.zeros(n_out)
        vW, vb = np.zeros_like(W), np.zeros_like(b)
        Zf, Yf, wf = Z[fit_rows], Y[fit_rows], w[fit_rows]
        # The targets of the outputs: the positive class's column for a logistic output.
        Tf = Yf[:, 1:] if n_out == 1 else Yf
        Zv, Yv, wv = Z[val_rows], Y[val_rows], w[val_rows] / max(w[val_rows].sum(), 1e-300)
        best = (np.inf, W.copy(), b.copy(), 0)
        losses, since = [], 0
        batch = min(self.batch_size, fit_rows.size)
        for epoch in range(1, self.max_iter + 1):
            order = rng.permutation(fit_rows.size)
            for start in range(0, fit_rows.size, batch):
                i = order[start:start + batch]
                Zb = Zf[i]
                z = Zb @ W.T + b
                P = expit(z) if n_out == 1 else softmax(z, axis=1)
                # d loss / d logits of the weighted mean cross-entropy: w_i (p_i - y_i) / sum w.
                G = (wf[i] / wf[i].sum())[:, None] * (P - Tf[i])
                vW = self.momentum * vW + G.T @ Zb
                vb = self.momentum * vb + G.sum(axis=0)
                W = W - self.learning_rate * vW
                b = b - self.learning_rate * vb
            if not early:
                continue
            loss = float(-np.sum(wv * np.sum(Yv * self._outputs(Zv, W, b), axis=1)))
            losses.append(loss)
            if loss < best[0]:
                best, since = (loss, W.copy(), b.copy(), epoch), 0
            else:
                since += 1
                if since >= self.n_iter_no_change:
                    break
        if early:
            _, W, b, self.best_iter_ = best
        else:
            self.best_iter_ = epoch
        self.coef_, self.intercept_ = W, b
        self.classes_ = classes
        self.n_iter_ = epoch
        self.validation_loss_ = np.asarray(losses)
        P = np.exp(self._outputs(Z, W, b))
        self.training_auc_ = _train_auc(Y, P)
        self.training_balanced_accuracy_ = float(
            balanced_accuracy_score(y_idx, np.argmax(P, axis=1)))
        if self.training_balanced_accuracy_ <= 1.0 / K or not self.training_auc_ > 0.5:
            warnings.warn(
                f"PaperProbe ended no better than chance on its own training rows (balanced "
                f"accuracy {self.training_balanced_accuracy_:.3f}, chance {1 / K:.3f}; AUC "
                f"{self.training_auc_:.3f}) after {self.n_iter_} epochs.",
                ProbeTrainingWarning,
                stacklevel=2,
            )
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
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Z = (X / X.dtype.type(self.scale_)).astype(np.float64)
        return np.exp(self._outputs(Z, self.coef_, self.intercept_))

    def decision_function(self, X):
        """Logits: one column for two classes (the positive class), else one per class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Z = (X / X.dtype.type(self.scale_)).astype(np.float64)
        z = Z @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

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
