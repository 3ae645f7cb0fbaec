"""ConeStats: record the cone effect and modality gap of paired embeddings."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._base import PairedMixin, modality_dims_constraint
from ._geometry import inverse_norms, pair_cosines, unit_mean
from .metrics._cone import (
    _gap_principal_cosine,
    _relative_gap,
    _within_cosine_from_mean,
    uniformity,
)

__all__ = ["ConeStats"]


def modality_names(n_modalities):
    """Default names of the blocks: image and text for two, m0, m1, ... else."""
    if n_modalities == 2:
        return ("image", "text")
    return tuple(f"m{k}" for k in range(n_modalities))


class ConeStats(OneToOneFeatureMixin, TransformerMixin, PairedMixin, BaseEstimator):
    r"""Measure the cone effect and the modality gap of paired embeddings.

    A transformer that passes its input through unchanged and records, at
    ``fit``, the geometry of the embeddings it saw. Put it after any step of a
    :class:`~sklearn.pipeline.Pipeline` to measure what flows through it, or use
    it on its own and read :meth:`report`.

    Rows are L2-normalised block by block before any statistic is computed.

    Parameters
    ----------
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X = [V | T]``. ``None`` means two
        blocks of equal width. All blocks must have the same width, since the
        gap compares vectors of one space.
    uniformity_t : float, default=2.0
        Temperature ``t`` of :func:`~skgap.metrics.uniformity`.
    max_uniformity_samples : int or None, default=5000
        Estimate uniformity on at most this many rows per modality (the exact
        value costs O(n^2)). ``None`` uses every row.
    random_state : int, RandomState instance or None, default=None
        Seed of the uniformity subsample.

    Attributes
    ----------
    modality_dims_ : tuple of int
        Width of each block.
    n_samples_ : int
        Number of pairs seen at fit.
    centroids_ : ndarray of shape (n_modalities, d)
        :math:`\mu_m`, the mean of the unit embeddings of each modality.
    mean_resultant_length_ : ndarray of shape (n_modalities,)
        :math:`R_m = \lVert \mu_m \rVert` (cone effect).
    mean_within_cosine_ : ndarray of shape (n_modalities,)
        Mean off-diagonal cosine within each modality.
    uniformity_ : ndarray of shape (n_modalities,)
        Wang & Isola uniformity of each modality.
    gap_vector_ : ndarray of shape (d,) or (n_modalities - 1, d)
        :math:`\Delta = \mu_0 - \mu_m` between the first modality and each
        other one; a vector for two modalities.
    gap_norm_ : float or ndarray of shape (n_modalities - 1,)
        :math:`\lVert \Delta \rVert` (L2M).
    pairwise_gap_ : float or ndarray
        L2I, mean distance of matched pairs.
    alignment_ : float or ndarray
        Mean squared distance of matched pairs.
    mean_pair_cosine_ : float or ndarray
        Mean cosine of matched pairs.
    relative_gap_ : float or ndarray
        Relative modality gap (Schrodi et al., 2024).
    gap_principal_cosine_ : float or ndarray
        :math:`|\cos(\Delta, u_1)|` with :math:`u_1` the first principal axis of
        the pooled embeddings of the two modalities.
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    skgap.metrics : The functions behind every statistic.
    ModalityGapShifter : Reduce the gap that this estimator measures.

    Notes
    -----
    For two modalities with unit embeddings :math:`\hat v_i, \hat t_i`:

    .. math::

        R_V = \Big\lVert \tfrac{1}{n}\sum_i \hat v_i \Big\rVert,\quad
        \Delta = \mu_V - \mu_T,\quad
        \mathrm{L2I} = \tfrac{1}{n}\sum_i \lVert \hat v_i - \hat t_i \rVert,\quad
        \mathrm{RMG} = \frac{m}{m + (s_V + s_T)/2}

    Every reduction reads the data once in its own precision and accumulates
    in float64; ``X`` is never copied.

    Examples
    --------
    >>> from skgap import ConeStats
    >>> from skgap.datasets import make_paired_embeddings
    >>> X, y = make_paired_embeddings(n_samples=200, n_features=16, random_state=0)
    >>> stats = ConeStats(random_state=0).fit(X)
    >>> stats.mean_resultant_length_.shape
    (2,)
    >>> sorted(stats.report())[:3]
    ['R_image', 'R_text', 'alignment']
    """

    _parameter_constraints = {
        "modality_dims": modality_dims_constraint(),
        "uniformity_t": [Interval(Real, 0, None, closed="neither")],
        "max_uniformity_samples": [Interval(Integral, 2, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        modality_dims=None,
        *,
        uniformity_t=2.0,
        max_uniformity_samples=5000,
        random_state=None,
    ):
        self.modality_dims = modality_dims
        self.uniformity_t = uniformity_t
        self.max_uniformity_samples = max_uniformity_samples
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Measure the geometry of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Paired embeddings ``[V | T]``; at least two rows.
        y : None
            Ignored.

        Returns
        -------
        self : ConeStats
        """
        X, slices = self._validate_paired(X, reset=True, equal_dims=True, ensure_min_samples=2)
        blocks = [X[:, s] for s in slices]
        names = modality_names(len(blocks))
        inv = [inverse_norms(B, f"the {name} block") for B, name in zip(blocks, names)]
        mus = np.stack([unit_mean(B, w) for B, w in zip(blocks, inv)])
        n = X.shape[0]
        rng = check_random_state(self.random_state)

        self.n_samples_ = n
        self.centroids_ = mus
        R = np.minimum(np.linalg.norm(mus, axis=1), 1.0)
        self.mean_resultant_length_ = R
        self.mean_within_cosine_ = _within_cosine_from_mean(mus, n)
        self.uniformity_ = np.array(
            [
                uniformity(
                    B,
                    self.uniformity_t,
                    max_samples=self.max_uniformity_samples,
                    random_state=rng,
                )
                for B in blocks
            ]
        )

        within = self.mean_within_cosine_
        pair_stats = []
        for m in range(1, len(blocks)):
            cos = pair_cosines(blocks[0], blocks[m], inv[0], inv[m])
            sq = np.maximum(2.0 - 2.0 * cos, 0.0)
            mean_cos = float(cos.mean())
            delta = mus[0] - mus[m]
            pair_stats.append(
                dict(
                    gap_vector_=delta,
                    gap_norm_=float(np.linalg.norm(delta)),
                    pairwise_gap_=float(np.sqrt(sq).mean()),
                    alignment_=float(sq.mean()),
                    mean_pair_cosine_=mean_cos,
                    relative_gap_=_relative_gap(mean_cos, within[0], within[m]),
                    gap_principal_cosine_=_gap_principal_cosine(
                        blocks[0], blocks[m], inv[0], inv[m], mus[0], mus[m]
                    ),
                )
            )
        for key in pair_stats[0] if pair_stats else ():
            values = [p[key] for p in pair_stats]
            setattr(self, key, values[0] if len(values) == 1 else np.asarray(values))
        return self

    def transform(self, X):
        """Return ``X`` unchanged, after checking it has the fitted layout.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The validated input (no copy for a float NumPy array).
        """
        check_is_fitted(self)
        X, _ = self._validate_paired(X, reset=False)
        return X

    def report(self, as_frame=False):
        """The scalar statistics, keyed by name.

        Keys: ``R_<modality>``, ``mean_within_cosine_<modality>``,
        ``uniformity_<modality>`` for each modality (``image`` and ``text`` for
        two blocks, else ``m0``, ``m1``, ...), and for each modality paired with
        the first one ``gap_norm``, ``pairwise_gap``, ``alignment``,
        ``mean_pair_cosine``, ``relative_gap``, ``gap_principal_cosine``
        (suffixed ``_<modality>`` for more than two blocks), plus ``n_samples``.

        Parameters
        ----------
        as_frame : bool, default=False
            Return a one-row :class:`pandas.DataFrame` instead of a dict
            (requires pandas).

        Returns
        -------
        dict or pandas.DataFrame
        """
        check_is_fitted(self)
        names = modality_names(len(self.modality_dims_))
        out = {}
        for k, name in enumerate(names):
            out[f"R_{name}"] = float(self.mean_resultant_length_[k])
        for k, name in enumerate(names):
            out[f"mean_within_cosine_{name}"] = float(self.mean_within_cosine_[k])
        for k, name in enumerate(names):
            out[f"uniformity_{name}"] = float(self.uniformity_[k])
        keys = (
            "gap_norm",
            "pairwise_gap",
            "alignment",
            "mean_pair_cosine",
            "relative_gap",
            "gap_principal_cosine",
        )
        for key in keys:
            values = np.atleast_1d(getattr(self, key + "_", np.array([])))
            if len(names) == 2 and values.size:
                out[key] = float(values[0])
            else:
                for k, v in enumerate(values, start=1):
                    out[f"{key}_{names[k]}"] = float(v)
        out["n_samples"] = int(self.n_samples_)
        if as_frame:
            try:
                import pandas as pd
            except ImportError as exc:  # pragma: no cover - depends on the env
                raise ImportError(
                    "report(as_frame=True) needs pandas: pip install pandas"
                ) from exc
            return pd.DataFrame([out])
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
