"""LearnedGapProbe: a linear probe on gap-shifted embeddings that learns the shift."""

from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core._validation import Interval  # refuses booleans
from .._core._layout import block_slices, resolve_modality_dims
from .._core._shift import gap_shift_directions, shift_paired
from .._core._streaming import PairedStats
from .._core._validation import FLOAT_DTYPES, block_names, modality_dims_constraint, update_paired_stats
from ._data import unit_blocks
from ._device import resolve_device, to_numpy, to_tensor

__all__ = ["LearnedGapProbe"]


def shifted_features(blocks, shifts, lam):
    r"""Torch twin of :func:`skgap.transform._shift.shift_block`, fused side by side.

    ``blocks`` are unit rows, one tensor per modality; returns
    :math:`[\,(u^m + \lambda s_m) / \lVert u^m + \lambda s_m \rVert\,]_m`
    concatenated along the columns, differentiable in :math:`\lambda`.
    """
    return torch.cat([F.normalize(B + lam * s, dim=1) for B, s in zip(blocks, shifts)], dim=1)


class LearnedGapProbe(ClassifierMixin, BaseEstimator):
    r"""Linear probe on early-fused, gap-shifted embeddings with a learned shift.

    The probe of the cone-effect paper's code with "automatic alignment": the
    shift size :math:`\lambda` of :class:`~skgap.ModalityGapShifter` is a
    parameter of the model, learned jointly with a linear (logistic or
    softmax) classifier on the concatenated shifted embeddings
    :math:`[v' \mid t']`, instead of being chosen by cross-validation.

    Requires torch for ``fit`` (prediction runs in NumPy).

    Parameters
    ----------
    alpha : float >= 0, default=1e-4
        L2 penalty on the weights (not on the intercept or :math:`\lambda`).
    lam_init : float in [0, 1], default=0.0
        Starting value of :math:`\lambda`; 0 starts from the unshifted
        (only normalised) embeddings.
    max_iter : int, default=300
        Maximum number of optimiser steps (full-batch) or epochs.
    lr : float, default=0.05
        Adam learning rate, for the weights and :math:`\lambda` alike.
    batch_size : int or None, default=None
        Rows per step; ``None`` uses every row (full-batch, deterministic).
    tol : float, default=1e-6
        Training stops when the loss has not decreased by ``tol`` for
        ``n_iter_no_change`` consecutive iterations.
    n_iter_no_change : int, default=10
        See ``tol``.
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X``; ``None`` means two equal
        blocks. All blocks must share a width (the shift lives in one space).
    device : str, default='auto'
        Torch device for training; ``'auto'`` uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation and the mini-batches.
    verbose : int, default=0
        Print the loss and :math:`\lambda` every 50 iterations when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    lam_ : float in [0, 1]
        The learned shift size :math:`\lambda`.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights on the fused shifted embeddings (one row for two classes).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    centroids_ : ndarray of shape (n_modalities, d)
        Modality centroids :math:`\mu_m` of the training rows.
    gap_vector_ : ndarray of shape (d,)
        :math:`\Delta = \mu_0 - \mu_1`, from the training rows only.
    shift_vectors_ : ndarray of shape (n_modalities, d)
        Shift :math:`s_m` of each modality at :math:`\lambda = 1`, as in
        :class:`~skgap.ModalityGapShifter` (``direction='raw'``).
    modality_dims_ : tuple of int
        Width of each block.
    loss_curve_ : list of float
        Training loss (data term plus penalty) at each iteration.
    lam_path_ : list of float
        :math:`\lambda` after each iteration.
    n_iter_ : int
        Iterations run.
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    skgap.ModalityGapShifter : The fixed-:math:`\lambda` shift.
    skgap.train.GapClosingAdapter : Close the gap by training heads.

    Notes
    -----
    With unit rows :math:`u^m_i` and the shifts :math:`s_m` of
    :class:`~skgap.ModalityGapShifter` (for two modalities
    :math:`s_V = -\Delta/2, s_T = +\Delta/2`, :math:`\Delta` estimated on the
    training rows), the features are

    .. math:: x_i(\lambda) = \Big[\, \frac{u_i^m + \lambda s_m}
        {\lVert u_i^m + \lambda s_m \rVert} \,\Big]_{m=1}^{M}

    and the probe minimises, over :math:`W, b` and :math:`\lambda`,

    .. math:: \frac{1}{n}\sum_i \ell\big(W x_i(\lambda) + b,\ y_i\big)
        + \frac{\alpha}{2} \lVert W \rVert_F^2,
        \qquad \lambda \in [0, 1],

    with :math:`\ell` the logistic loss (two classes) or the softmax
    cross-entropy. :math:`\lambda` is kept in :math:`[0, 1]` by projection:
    after every Adam step it is clipped back to the interval (projected
    gradient descent), so it can start exactly at 0 and still move, which a
    clamp inside the model (zero gradient at the bound) or a sigmoid
    reparameterisation (never exactly 0) would not allow.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings".

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.train import LearnedGapProbe
    >>> X, y = make_paired_embeddings(400, 16, class_sep=2.0, random_state=0)
    >>> probe = LearnedGapProbe(random_state=0).fit(X, y)
    >>> 0.0 <= probe.lam_ <= 1.0
    True
    >>> bool(probe.score(X, y) > 0.7)
    True
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "lam_init": [Interval(Real, 0, 1, closed="both")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "modality_dims": modality_dims_constraint(),
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        alpha=1e-4,
        lam_init=0.0,
        max_iter=300,
        lr=0.05,
        batch_size=None,
        tol=1e-6,
        n_iter_no_change=10,
        modality_dims=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.lam_init = lam_init
        self.max_iter = max_iter
        self.lr = lr
        self.batch_size = batch_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.modality_dims = modality_dims
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_layout(self, n_features):
        return resolve_modality_dims(
            n_features, self.modality_dims, shared_space="LearnedGapProbe", min_blocks=2
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn :math:`\\lambda` and the linear classifier jointly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Paired embeddings ``[V | T]`` of the training split.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : LearnedGapProbe
        """
        X, y = validate_data(self, X, y, dtype=list(FLOAT_DTYPES), ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        n_classes = self.classes_.size
        if n_classes < 2:
            raise ValueError(
                f"LearnedGapProbe needs samples of at least 2 classes; got one class "
                f"({self.classes_[0]!r})."
            )
        self.modality_dims_ = self._check_layout(X.shape[1])
        slices = block_slices(self.modality_dims_)
        # The centroids of ModalityGapShifter, from the same one-pass statistics.
        stats = update_paired_stats(self, PairedStats(slices, pairs=False), X, slices, np, None)
        self.centroids_ = stats.sums / stats.n_samples
        self.gap_vector_ = self.centroids_[0] - self.centroids_[1]
        self.shift_vectors_ = gap_shift_directions(self.centroids_, "raw")

        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        blocks = [to_tensor(B, device) for B in unit_blocks(X, slices)]
        shifts = [to_tensor(s, device) for s in self.shift_vectors_]
        n_out = 1 if n_classes == 2 else n_classes
        n_features = X.shape[1]
        W = torch.nn.Parameter(
            to_tensor(rng.standard_normal((n_out, n_features)) * 0.01, device)
        )
        b = torch.nn.Parameter(torch.zeros(n_out, device=device))
        lam = torch.nn.Parameter(torch.tensor(float(self.lam_init), device=device))
        target = torch.as_tensor(y_idx, device=device)
        optimizer = torch.optim.Adam([W, b, lam], lr=self.lr)

        def data_loss(rows):
            # rows=None: the full batch, without an indexing copy per step.
            B_rows = blocks if rows is None else [B[rows] for B in blocks]
            t_rows = target if rows is None else target[rows]
            logits = F.linear(shifted_features(B_rows, shifts, lam), W, b)
            if n_out == 1:
                return F.binary_cross_entropy_with_logits(logits[:, 0], t_rows.float())
            return F.cross_entropy(logits, t_rows)

        n = X.shape[0]
        batch = n if self.batch_size is None else min(self.batch_size, n)
        self.loss_curve_, self.lam_path_ = [], []
        best, no_improve = np.inf, 0
        for it in range(self.max_iter):
            order = np.arange(n) if batch == n else rng.permutation(n)
            total = 0.0
            for start in range(0, n, batch):
                rows = None
                if batch < n:
                    rows = torch.as_tensor(order[start : start + batch], device=device)
                loss = data_loss(rows) + 0.5 * self.alpha * (W * W).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    lam.clamp_(0.0, 1.0)  # projection onto [0, 1]
                total += float(loss.detach()) * (n if rows is None else rows.numel())
            self.loss_curve_.append(total / n)
            self.lam_path_.append(float(lam.detach()))
            if self.verbose and it % 50 == 0:
                print(f"iter {it:4d}  loss {self.loss_curve_[-1]:.5f}  lambda {float(lam):.4f}")
            if self.loss_curve_[-1] < best - self.tol:
                best, no_improve = self.loss_curve_[-1], 0
            else:
                no_improve += 1
                if no_improve >= self.n_iter_no_change:
                    break
        self.n_iter_ = len(self.loss_curve_)
        self.lam_ = float(lam.detach())
        self.coef_ = to_numpy(W)
        self.intercept_ = to_numpy(b)
        return self

    def _fused(self, X):
        """Shifted, L2-normalised blocks side by side, in NumPy (dtype of ``X``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=list(FLOAT_DTYPES))
        slices = block_slices(self.modality_dims_)
        shifts = self.lam_ * np.asarray(self.shift_vectors_)
        return shift_paired(X, slices, shifts, block_names(len(slices)), estimator=self)

    def decision_function(self, X):
        """Logits of the linear classifier on the shifted, fused embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the logit of ``classes_[1]``.
        """
        Fx = self._fused(X)
        scores = Fx @ self.coef_.T.astype(Fx.dtype) + self.intercept_.astype(Fx.dtype)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities (logistic or softmax of the decision function).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]
