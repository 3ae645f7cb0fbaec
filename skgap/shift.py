"""Post-hoc modality-gap shift: move each modality along the gap and renormalise."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _dask
from ._array_api import (
    check_same_namespace,
    get_namespace_and_device,
    is_numpy,
    scale_safe_rows,
    to_numpy,
)
from ._geometry import (
    gap_shift_directions,
    replay_row_errors,
    shift_paired,
    side_weights,
)
from ._streaming import PairedStats
from ._validation import (
    PairedMixin,
    block_names,
    modality_dims_constraint,
    update_paired_stats,
    validate_dask,
    validate_paired_fast,
)

__all__ = ["ModalityGapShifter"]


def _shift_xp(X, slices, shifts, names, xp):
    """Gap shift in any array namespace (whole-array operations, one output)."""
    out = xp.empty_like(X)
    tiny = float(xp.finfo(X.dtype).smallest_normal)
    for sl, s, name in zip(slices, shifts, names):
        B = scale_safe_rows(X[:, sl], xp)
        norms = xp.linalg.vector_norm(B, axis=1, keepdims=True)
        if not bool(xp.all(norms > tiny)):
            replay_row_errors(to_numpy(X, xp), slices, names)
        s = xp.astype(s, X.dtype)
        # ||u + s||^2 = 1 + 2 u.s + ||s||^2 for the unit row u = b / ||b||.
        dots = xp.matmul(B, s)[:, None] / norms
        q = 1.0 + 2.0 * dots + xp.sum(s * s)
        if not bool(xp.all(q > 1e-2)):
            # Near-cancellation: fall back to the explicit normalise-add-renormalise.
            U = B / norms + s
            n2 = xp.linalg.vector_norm(U, axis=1, keepdims=True)
            if not bool(xp.all(n2 > tiny)):
                replay_row_errors(
                    to_numpy(X, xp), slices, names, shifts=[to_numpy(v, xp) for v in shifts]
                )
            out[:, sl] = U / n2
            continue
        beta = 1.0 / xp.sqrt(q)
        out[:, sl] = B * (beta / norms) + beta * s
    return out


class ModalityGapShifter(OneToOneFeatureMixin, TransformerMixin, PairedMixin, BaseEstimator):
    r"""Post-hoc modality-gap shift of frozen embeddings.

    Estimates the gap :math:`\Delta = \mu_V - \mu_T` on the rows it is fit on
    (the training split) and, at transform, moves every image embedding by
    :math:`-\lambda\Delta/2` and every text embedding by :math:`+\lambda\Delta/2`
    before projecting back onto the unit sphere (or only one modality, by
    :math:`\lambda\Delta`, with ``side``).

    Parameters
    ----------
    lam : float in [-1, 1], default=0.5
        Fraction :math:`\lambda` of the gap to close. ``0`` only normalises the
        rows; ``1`` moves both centroids to their midpoint before the
        renormalisation. A negative value moves the modalities the other way,
        apart: the gap widens (by :math:`|\lambda|\Delta` before the
        renormalisation), as in the two-way sweeps of Liang et al. (2022).
        Checked again at :meth:`transform`, so a value set after ``fit`` is
        validated too.
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X = [V | T]``; ``None`` means two
        blocks of equal width. All blocks must share a width.
    direction : {'raw', 'unit'}, default='raw'
        ``'raw'`` shifts along :math:`\Delta` itself (Restrepo et al., 2026,
        equation 5). ``'unit'`` shifts along :math:`\Delta / \lVert\Delta\rVert`,
        the convention of Liang et al. (2022), whose shift size
        :math:`\delta` equals :math:`\lambda \lVert \Delta \rVert` here.
    side : {'both', 'image', 'text'}, default='both'
        Which modality moves. ``'both'`` is equation 5 (each moves by
        :math:`\lambda\Delta/2`). ``'text'`` leaves the image block in place
        (only normalised) and moves the text block by :math:`+\lambda\Delta`,
        so ``lam=1`` carries the text centroid onto the image centroid before
        the renormalisation -- the text-only training setting of CapDec and
        CLOSE. ``'image'`` is the mirror (image block moved by
        :math:`-\lambda\Delta`). With ``direction='unit'`` the moving block
        shifts by :math:`\lambda\Delta/\lVert\Delta\rVert`. ``'image'`` and
        ``'text'`` need exactly two modality blocks.

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
        The shift :math:`s_m` applied to each modality at ``lam = 1`` with
        the ``direction`` and ``side`` of ``fit``; the transform adds
        :math:`\lambda s_m` (recomputed from ``centroids_`` with the current
        ``direction`` and ``side`` if they were changed after ``fit``).
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

    **Cost.** For a row :math:`x` with norm :math:`r` and unit direction
    :math:`u = x / r`, :math:`\lVert u + s \rVert^2 = 1 + 2\,u \cdot s +
    \lVert s \rVert^2 = q`, so

    .. math:: x' = \frac{x}{r \sqrt q} + \frac{s}{\sqrt q}:

    each row needs its norm and one dot product, and the output is written
    once. ``transform`` runs over row tiles that stay in cache, reads ``X``
    once from memory, allocates only the output and never upcasts float32.

    **Streaming, dask, array API.** :meth:`partial_fit` accumulates the sums
    of unit rows, so chunks of a memory-mapped file give the centroids of
    the whole. A dask array is fitted by a map-reduce of block sums and
    transformed lazily with ``map_blocks``. With
    ``sklearn.set_config(array_api_dispatch=True)`` PyTorch (CPU or CUDA) or
    other array-API arrays go in and come out on their device.

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

    Fitted chunk by chunk, the shifter learns the same gap:

    >>> import numpy as np
    >>> streamed = ModalityGapShifter(lam=1.0)
    >>> for chunk in np.array_split(X, 3):
    ...     streamed = streamed.partial_fit(chunk)
    >>> bool(np.allclose(streamed.transform(X), Xs, atol=1e-6))
    True
    """

    _parameter_constraints = {
        "lam": [Interval(Real, -1, 1, closed="both")],
        "modality_dims": modality_dims_constraint(),
        "direction": [StrOptions({"raw", "unit"})],
        "side": [StrOptions({"both", "image", "text"})],
    }

    def __init__(self, lam=0.5, modality_dims=None, direction="raw", side="both"):
        self.lam = lam
        self.modality_dims = modality_dims
        self.direction = direction
        self.side = side

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the modality centroids and the gap on ``X``.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Paired embeddings ``[V | T]`` of the training split.
        y : None
            Ignored.

        Returns
        -------
        self : ModalityGapShifter
        """
        self._stats = None
        return self._partial(X, first=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add a chunk of training rows to the centroid sums.

        After the last chunk the fitted attributes equal those of :meth:`fit`
        on all the rows (up to float rounding). Continues from :meth:`fit`
        too.

        Parameters
        ----------
        X : array-like or dask array of shape (n_chunk, n_features)
            The next training rows.
        y : None
            Ignored.

        Returns
        -------
        self : ModalityGapShifter
        """
        return self._partial(X, first=getattr(self, "_stats", None) is None)

    def _partial(self, X, *, first):
        if _dask.is_dask_array(X):
            X, slices = validate_dask(self, X, reset=first, equal_dims=True)
            stats = _dask.reduce_paired_stats(
                X, slices, block_names(len(slices)), type(self).__name__, pairs=False
            )
            self._stats = stats if first else self._stats.merge(stats)
            xp = np
        else:
            if not first:
                check_same_namespace(X, self, attribute="centroids_", method="partial_fit")
            xp, _, device = get_namespace_and_device(X)
            X, slices = validate_paired_fast(self, X, reset=first, xp=xp)
            stats = PairedStats(slices, pairs=False) if first else self._stats
            update_paired_stats(self, stats, X, slices, xp, device)  # atomic on errors
            self._stats = stats
        self.centroids_ = self._stats.sums / self._stats.n_samples
        self._set_gap_attributes(np if is_numpy(xp) else xp)
        return self

    def _set_gap_attributes(self, xp=np):
        if xp is np:
            if len(self.centroids_) >= 2:
                self.gap_vector_ = self.centroids_[0] - self.centroids_[1]
            else:
                self.gap_vector_ = np.zeros(self.centroids_.shape[1])
            self.gap_norm_ = float(np.linalg.norm(self.gap_vector_))
        else:
            C = self.centroids_
            self.gap_vector_ = (
                C[0, ...] - C[1, ...] if C.shape[0] >= 2 else xp.zeros_like(C[0, ...])
            )
            self.gap_norm_ = float(xp.linalg.vector_norm(self.gap_vector_))
        self.shift_vectors_ = self._shift_vectors(xp)

    def _shift_vectors(self, xp=np, device=None):
        """:math:`s_m` for the current ``direction`` and ``side`` (see ``gap_shift_directions``)."""
        C = self.centroids_
        if xp is np or is_numpy(xp):
            return gap_shift_directions(np.asarray(C), self.direction, self.side)
        C = xp.asarray(C, device=device)
        s = xp.mean(C, axis=0, keepdims=True) - C
        if self.direction == "unit":
            norms = xp.linalg.vector_norm(s, axis=1, keepdims=True)
            s = xp.where(norms > 0, s / (2.0 * xp.where(norms > 0, norms, 1.0)), 0.0)
        w = side_weights(self.side, C.shape[0])
        return s * xp.asarray(w[:, None], dtype=s.dtype, device=device)

    def transform(self, X):
        """Shift each modality along the gap and renormalise.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Paired embeddings with the fitted layout.

        Returns
        -------
        X_shifted : ndarray of shape (n_samples, n_features)
            Unit rows in every block, in the dtype of ``X`` (float32 stays
            float32); a lazy dask array for dask input, an array of the input's
            namespace and device under array API dispatch.
        """
        check_is_fitted(self)
        # lam, side and direction may have been set after fit: check them again.
        self._validate_params()
        if _dask.is_dask_array(X):
            X, slices = validate_dask(self, X, reset=False)
            shifts = self.lam * self._shift_vectors()
            names = block_names(len(slices))
            return _dask.shift_dask(X, slices, shifts, names, type(self).__name__)
        check_same_namespace(X, self, attribute="shift_vectors_", method="transform")
        xp, _, device = get_namespace_and_device(X)
        X, slices = validate_paired_fast(self, X, reset=False, xp=xp, equal_dims=False)
        names = block_names(len(slices))
        if not is_numpy(xp):
            S = self._shift_vectors(xp, device)
            shifts = [self.lam * S[m, ...] for m in range(S.shape[0])]
            return _shift_xp(X, slices, shifts, names, xp)
        shifts = self.lam * self._shift_vectors()
        return shift_paired(X, slices, shifts, names, estimator=self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags
