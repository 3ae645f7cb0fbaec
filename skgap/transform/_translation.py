r"""Private base of the post-hoc transformers that translate each modality block.

:class:`~skgap.ModalityGapShifter`, :class:`~skgap.ModalityCentering` and
:class:`~skgap.CollapseCorrupt` learn the same state -- the mean unit
embedding :math:`\mu_m` of every modality block -- and apply the same map: each
unit row :math:`u` of block :math:`m` becomes

.. math:: u' = \frac{u + s_m}{\lVert u + s_m \rVert},

with a per-block vector :math:`s_m` that only they know how to derive from the
centroids (the shifter: :math:`\lambda` times the gap direction; the centring:
:math:`-\alpha\mu_m`). :class:`BlockTranslation` holds everything else once:
``fit`` and ``partial_fit`` (NumPy, array API and dask, through
:class:`~skgap._streaming.PairedStats`), the dispatch of ``transform`` to the
fused NumPy kernel :func:`~skgap._core._shift.shift_paired`, its array-API twin
:func:`~skgap._core._shift.shift_paired_xp` or a lazy dask ``map_blocks``, and the
tags.
"""

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from .._core import _dask
from .._core._array_api import check_same_namespace, get_namespace_and_device, is_numpy
from .._core._shift import shift_paired, shift_paired_xp
from .._core._streaming import PairedStats
from .._core._validation import (
    PairedMixin,
    block_names,
    update_paired_stats,
    validate_dask,
    validate_paired_fast,
)

__all__ = ["BlockTranslation"]


class BlockTranslation(OneToOneFeatureMixin, TransformerMixin, PairedMixin, BaseEstimator):
    r"""Fit per-block unit centroids; transform by translating each block's unit rows.

    Each unit row :math:`u` of block :math:`m` becomes
    :math:`(u + s_m) / \lVert u + s_m \rVert`.

    A subclass declares its parameters and defines

    - ``_block_shifts(xp, device)``: the matrix whose row :math:`m` is
      :math:`s_m`, computed from ``centroids_`` -- a float64 ndarray when
      ``xp`` is NumPy, else an array of ``xp`` on ``device``;

    and may override the hooks ``_after_fit(xp)`` (derived attributes, checks
    that need the fitted layout; ``xp`` is NumPy for NumPy and dask input) and
    ``_check_transform(self)`` (re-validation at transform).
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the centroid of each modality's unit rows on ``X``.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Paired embeddings ``[V | T]`` of the training split.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
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
        self : object
            The fitted transformer.
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
        self._after_fit(np if is_numpy(xp) else xp)
        return self

    def _after_fit(self, xp):
        """Hook: attributes derived from ``centroids_``; none by default."""

    def _check_transform(self):
        """Hook: checks of parameters at transform; none by default."""

    def transform(self, X):
        """Translate each modality block of ``X`` and renormalise its rows.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Paired embeddings with the fitted layout.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Unit rows in every block, in the dtype of ``X`` (float32 stays
            float32); a lazy dask array for dask input, an array of the input's
            namespace and device under array API dispatch.
        """
        check_is_fitted(self)
        self._check_transform()
        return self._transform(X)

    def _transform(self, X):
        # Not wrapped by set_output, so fit_transform can write into the result.
        if _dask.is_dask_array(X):
            X, slices = validate_dask(self, X, reset=False)
            names = block_names(len(slices))
            shifts = self._block_shifts(np, None)
            return _dask.shift_dask(X, slices, shifts, names, type(self).__name__)
        check_same_namespace(X, self, attribute="centroids_", method="transform")
        xp, _, device = get_namespace_and_device(X)
        X, slices = validate_paired_fast(self, X, reset=False, xp=xp, equal_dims=False)
        names = block_names(len(slices))
        if is_numpy(xp):
            return shift_paired(X, slices, self._block_shifts(np, None), names, estimator=self)
        S = self._block_shifts(xp, device)
        return shift_paired_xp(X, slices, [S[m, ...] for m in range(S.shape[0])], names, xp)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags
