"""Post-hoc modality-gap shift: move each modality along the gap and renormalise."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import PairedMixin, modality_dims_constraint
from ._geometry import check_nonzero_norms, inverse_norms, row_norms, unit_mean
from .stats import modality_names

__all__ = ["ModalityGapShifter"]


def gap_shift_directions(centroids, direction="raw"):
    r"""Per-modality shift vectors for ``lam = 1``.

    Each modality moves toward the mean of the modality centroids
    :math:`\bar\mu = \frac{1}{M}\sum_m \mu_m`:

    - ``'raw'``: :math:`s_m = \bar\mu - \mu_m`;
    - ``'unit'``: :math:`s_m = (\bar\mu - \mu_m) / (2 \lVert \bar\mu - \mu_m \rVert)`
      (zero where a centroid already sits at the mean).

    For two modalities ``'raw'`` gives :math:`s_V = -\Delta/2`,
    :math:`s_T = +\Delta/2` and ``'unit'`` gives :math:`\mp \Delta/(2\lVert\Delta\rVert)`.

    Parameters
    ----------
    centroids : ndarray of shape (n_modalities, d)
    direction : {'raw', 'unit'}

    Returns
    -------
    ndarray of shape (n_modalities, d), float64
    """
    centroids = np.asarray(centroids, dtype=np.float64)
    s = centroids.mean(axis=0, keepdims=True) - centroids
    if direction == "unit":
        norms = np.linalg.norm(s, axis=1, keepdims=True)
        s = np.divide(s, 2.0 * norms, out=np.zeros_like(s), where=norms > 0)
    return s


def shift_block(B, shift, out=None, name="block"):
    r"""Return ``(b_i / ||b_i|| + shift) / ||.||`` for every row ``b_i`` of ``B``.

    The result is written in the dtype of ``B``. For a unit row ``u`` the norm
    of ``u + s`` is :math:`\sqrt{1 + 2 u \cdot s + \lVert s \rVert^2}`, so each
    row needs only its own norm and one dot product with ``s``.
    """
    dtype = B.dtype
    s = np.asarray(shift, dtype=dtype)
    inv = inverse_norms(B, name)
    if out is None:
        out = np.empty(B.shape, dtype=dtype)
    np.multiply(B, inv[:, None], out=out)
    out += s
    norms = row_norms(out)
    check_nonzero_norms(norms, f"{name} after the shift")
    out *= np.reciprocal(norms)[:, None]
    return out


class ModalityGapShifter(OneToOneFeatureMixin, TransformerMixin, PairedMixin, BaseEstimator):
    r"""Post-hoc modality-gap shift of frozen embeddings.

    Estimates the gap :math:`\Delta = \mu_V - \mu_T` on the rows it is fit on
    (the training split) and, at transform, moves every image embedding by
    :math:`-\lambda\Delta/2` and every text embedding by :math:`+\lambda\Delta/2`
    before projecting back onto the unit sphere.

    Parameters
    ----------
    lam : float in [0, 1], default=0.5
        Fraction :math:`\lambda` of the gap to close. ``0`` only normalises the
        rows; ``1`` moves both centroids to their midpoint before the
        renormalisation.
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X = [V | T]``; ``None`` means two
        blocks of equal width. All blocks must share a width.
    direction : {'raw', 'unit'}, default='raw'
        ``'raw'`` shifts along :math:`\Delta` itself (Restrepo et al., 2026,
        equation 5). ``'unit'`` shifts along :math:`\Delta / \lVert\Delta\rVert`,
        the convention of Liang et al. (2022), whose shift size
        :math:`\delta` equals :math:`\lambda \lVert \Delta \rVert` here.

    Attributes
    ----------
    modality_dims_ : tuple of int
        Width of each block.
    centroids_ : ndarray of shape (n_modalities, d)
        Mean unit embedding of each modality on the fit rows.
    gap_vector_ : ndarray of shape (d,)
        :math:`\Delta = \mu_0 - \mu_1` (first minus second modality).
    gap_norm_ : float
        :math:`\lVert \Delta \rVert`.
    shift_vectors_ : ndarray of shape (n_modalities, d)
        The shift :math:`s_m` applied to each modality at ``lam = 1``; the
        transform adds :math:`\lambda s_m`.
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    ConeStats : Measure the gap that remains after the shift.
    skgap.metrics.modality_gap : The estimate of :math:`\Delta`.

    Notes
    -----
    With unit rows :math:`v, t` (equation 5 of Restrepo et al., 2026):

    .. math::

        v' = \frac{v - \lambda\Delta/2}{\lVert v - \lambda\Delta/2 \rVert}, \qquad
        t' = \frac{t + \lambda\Delta/2}{\lVert t + \lambda\Delta/2 \rVert}.

    For :math:`M > 2` modalities each one moves toward the mean of the
    centroids, :math:`z' \propto z + \lambda(\bar\mu - \mu_m)`, which is
    equation 5 when :math:`M = 2`.

    Because of the renormalisation, ``lam=1`` does not make the gap exactly
    zero: it shrinks it, and :class:`ConeStats` placed after the shifter
    measures what remains. :math:`\Delta` must come from the training rows
    only; inside a :class:`~sklearn.pipeline.Pipeline` cross-validation sees to
    that.

    Input rows need not be unit vectors: each block is L2-normalised first.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings".
    Liang et al. (2022), "Mind the Gap: Understanding the Modality Gap in
    Multi-modal Contrastive Representation Learning", NeurIPS.

    Examples
    --------
    >>> from skgap import ModalityGapShifter, ConeStats
    >>> from skgap.datasets import make_paired_embeddings
    >>> X, y = make_paired_embeddings(n_samples=300, n_features=32, random_state=0)
    >>> before = ConeStats().fit(X).gap_norm_
    >>> Xs = ModalityGapShifter(lam=1.0).fit_transform(X)
    >>> after = ConeStats().fit(Xs).gap_norm_
    >>> bool(after < 0.5 * before)
    True
    """

    _parameter_constraints = {
        "lam": [Interval(Real, 0, 1, closed="both")],
        "modality_dims": modality_dims_constraint(),
        "direction": [StrOptions({"raw", "unit"})],
    }

    def __init__(self, lam=0.5, modality_dims=None, direction="raw"):
        self.lam = lam
        self.modality_dims = modality_dims
        self.direction = direction

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the modality centroids and the gap on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Paired embeddings ``[V | T]`` of the training split.
        y : None
            Ignored.

        Returns
        -------
        self : ModalityGapShifter
        """
        X, slices = self._validate_paired(X, reset=True, equal_dims=True)
        names = modality_names(len(slices))
        self.centroids_ = np.stack(
            [unit_mean(X[:, s], name=f"the {name} block") for s, name in zip(slices, names)]
        )
        self._set_gap_attributes()
        return self

    def _set_gap_attributes(self):
        if len(self.centroids_) >= 2:
            self.gap_vector_ = self.centroids_[0] - self.centroids_[1]
        else:
            self.gap_vector_ = np.zeros(self.centroids_.shape[1])
        self.gap_norm_ = float(np.linalg.norm(self.gap_vector_))
        self.shift_vectors_ = gap_shift_directions(self.centroids_, self.direction)

    def transform(self, X):
        """Shift each modality along the gap and renormalise.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Paired embeddings with the fitted layout.

        Returns
        -------
        X_shifted : ndarray of shape (n_samples, n_features)
            Unit rows in every block, in the dtype of ``X`` (float32 stays
            float32).
        """
        check_is_fitted(self)
        X, slices = self._validate_paired(X, reset=False)
        out = np.empty(X.shape, dtype=X.dtype)
        names = modality_names(len(slices))
        for s, shift, name in zip(slices, self.shift_vectors_, names):
            shift_block(X[:, s], self.lam * shift, out=out[:, s], name=f"the {name} block")
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
