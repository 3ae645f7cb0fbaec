"""ConeStats: record the cone effect and modality gap of paired embeddings."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils.validation import check_is_fitted

from .._core._validation import Interval  # refuses booleans
from .._core import _dask
from .._core._array_api import (
    check_same_namespace,
    get_namespace_and_device,
    is_numpy,
    max_float_dtype,
    namespace_of,
    scale_safe_rows,
)
from .._core._norms import normalize_rows
from .._core._streaming import PairedStats, RowReservoir, sample_key
from .._core._validation import (
    PairedMixin,
    block_names,
    modality_dims_constraint,
    modality_names,
    update_paired_stats,
    validate_dask,
    validate_paired,
    validate_paired_fast,
)
from ._cone import (
    _sample_gap_principal_cosine,
    _uniformity_of_unit_rows,
    relative_gap_from_cosines,
    uniformities,
    within_cosine_from_length,
)

__all__ = ["ConeStats"]


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
        Temperature ``t`` of :func:`~skgap.measure.uniformity`.
    max_uniformity_samples : int or None, default=5000
        Estimate uniformity and the principal axis on a uniform sample of at
        most this many rows (the exact uniformity costs O(n^2 d), the exact
        principal axis O(n d^2)). ``None`` uses every row (and, with
        :meth:`partial_fit`, keeps every row in memory).
    random_state : int, RandomState instance or None, default=None
        Seed of the row sample. With an int, ``fit`` on the whole data and
        :meth:`partial_fit` over any chunking of it draw the same sample.

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
        Wang & Isola uniformity of each modality, on the row sample.
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
        the pooled embeddings of the two modalities, estimated on the row
        sample (:math:`\Delta` comes from every row).
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    skgap.measure : The functions behind every statistic.
    ModalityGapShifter : Reduce the gap that this estimator measures.

    Notes
    -----
    For two modalities with unit embeddings :math:`\hat v_i, \hat t_i`:

    .. math::

        R_V = \Big\lVert \tfrac{1}{n}\sum_i \hat v_i \Big\rVert,\quad
        \Delta = \mu_V - \mu_T,\quad
        \mathrm{L2I} = \tfrac{1}{n}\sum_i \lVert \hat v_i - \hat t_i \rVert,\quad
        \mathrm{RMG} = \frac{m}{m + (s_V + s_T)/2}

    **Cost.** Every statistic except two is a sum over rows, computed in one
    fused pass over row tiles that stay in cache (each row's block norms, pair
    dot products and its contribution to the centroid sums are taken while
    the tile is loaded), in the precision of ``X`` with float64
    accumulation; ``X`` is never copied. The tiles, and the blocks of the
    sample statistics below, are shared among as many threads as BLAS may
    use (from the main thread; ``threadpoolctl.threadpool_limits(1)`` keeps
    ``fit`` on one thread), and partial sums are added in a fixed order:
    the result does not depend on the number of threads. Uniformity and the
    principal axis need a row sample: a uniform sample of
    ``k = max_uniformity_samples`` rows, the same rows for every modality. Uniformity then costs
    O(k^2 d) and the principal axis O(k d^2 + d^3) (the pooled ``2k x d``
    sample's covariance, top eigenpair only), instead of O(n^2 d) and
    O(n d^2). The sample axis is exact when ``n <= k``; otherwise its error
    shrinks like :math:`1/\sqrt{k}` divided by the gap between the two top
    eigenvalues. When the modality gap dominates the spread, as in CLIP-like
    embeddings (cosine near 1), the cosine is within 1e-3 of the full-data
    value at ``k = 1000``; when it does not (cosine near 0, a flat top of the
    spectrum) it can be off by a few 1e-2 at ``k = 5000`` -- pass
    ``max_uniformity_samples=None`` for the exact value.

    **Streaming.** The sums are mergeable, and the sample is a *bottom-k*
    sample: row ``i`` of the stream gets the priority :math:`p_i`, draw ``i``
    of a counter-based (Philox) generator seeded by ``random_state``, and the
    sample is the ``k`` rows of smallest :math:`p_i`. The priority of a row
    depends on its position only, so :meth:`partial_fit` over any chunks,
    ``fit`` on the whole array and ``fit`` on a dask array (a map-reduce of
    block states) reach the same state: equal statistics, up to float
    rounding. After :meth:`partial_fit`, ``uniformity_`` and
    ``gap_principal_cosine_`` are computed from the sample when first read
    (``fit`` computes them at once). The fitted estimator keeps the sample
    (at most ``k`` rows) so that :meth:`partial_fit` can continue; its
    pickle holds those rows.

    **Array API.** With ``sklearn.set_config(array_api_dispatch=True)``,
    ``X`` may be a PyTorch (CPU or CUDA), CuPy or other array-API array: the
    statistics are computed in its namespace and on its device, array
    attributes stay there, scalar ones are Python floats.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings" (the statistics).
    Wang & Isola (2020), "Understanding Contrastive Representation Learning
    through Alignment and Uniformity on the Hypersphere", ICML (uniformity).
    Cohen & Kaplan (2007), "Summarizing data using bottom-k sketches", PODC
    (the mergeable row sample).
    Salmon et al. (2011), "Parallel random numbers: as easy as 1, 2, 3", SC
    (Philox, the counter-based generator of the priorities).

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

    Streaming over chunks gives the statistics of the whole:

    >>> import numpy as np
    >>> streamed = ConeStats(random_state=0)
    >>> for chunk in np.array_split(X, 4):
    ...     streamed = streamed.partial_fit(chunk)
    >>> bool(np.allclose(streamed.centroids_, stats.centroids_))
    True
    >>> bool(np.allclose(streamed.uniformity_, stats.uniformity_))
    True
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
        X : array-like or dask array of shape (n_samples, n_features)
            Paired embeddings ``[V | T]``; at least two rows. A dask array is
            reduced block by block on its scheduler.
        y : None
            Ignored.

        Returns
        -------
        self : ConeStats
        """
        self._stats = None
        if _dask.is_dask_array(X):
            X, slices = validate_dask(
                self, X, reset=True, equal_dims=True, ensure_min_samples=2
            )
            stats = _dask.reduce_paired_stats(
                X,
                slices,
                block_names(len(slices)),
                type(self).__name__,
                pairs=True,
                capacity=self.max_uniformity_samples,
                key=sample_key(self.random_state),
            )
            self._set_from_stats(stats, np, None)
        else:
            self._update(X, reset=True, ensure_min_samples=2)
        self._sampled_statistics()  # fit computes everything at once
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add a chunk of rows to the statistics (out-of-core, streaming).

        The running sums and the row sample are updated, so that after the
        last chunk every attribute equals what :meth:`fit` on all the rows
        gives (see Notes). Continues from :meth:`fit` too.

        Parameters
        ----------
        X : array-like or dask array of shape (n_chunk, n_features)
            The next rows. The first call needs at least two rows.
        y : None
            Ignored.

        Returns
        -------
        self : ConeStats
        """
        first = getattr(self, "_stats", None) is None
        if _dask.is_dask_array(X):
            X, slices = validate_dask(
                self, X, reset=first, equal_dims=True, ensure_min_samples=2 if first else 1
            )
            if first:
                self._stats = self._new_stats(slices)
            stats = _dask.reduce_paired_stats(
                X,
                slices,
                block_names(len(slices)),
                type(self).__name__,
                pairs=True,
                capacity=self.max_uniformity_samples,
                key=self._stats.reservoir.key,
                offset=self._stats.n_samples,
            )
            self._set_from_stats(self._stats.merge(stats), np, None)
        else:
            self._update(X, reset=first, ensure_min_samples=2 if first else 1)
        return self

    def _new_stats(self, slices):
        reservoir = RowReservoir(self.max_uniformity_samples, sample_key(self.random_state))
        return PairedStats(slices, pairs=True, reservoir=reservoir)

    def _update(self, X, *, reset, ensure_min_samples):
        if not reset:
            check_same_namespace(X, self, attribute="centroids_", method="partial_fit")
        xp, _, device = get_namespace_and_device(X)
        X, slices = validate_paired_fast(
            self, X, reset=reset, xp=xp, ensure_min_samples=ensure_min_samples
        )
        stats = self._new_stats(slices) if reset else self._stats
        # An invalid chunk raises before anything is accumulated: the state
        # is left as it was.
        update_paired_stats(self, stats, X, slices, xp, device)
        self._set_from_stats(stats, xp, device)

    def _set_from_stats(self, stats, xp, device):
        """Every statistic that is a function of the running sums."""
        self._stats = stats
        self._sampled_cache = None
        if is_numpy(xp):
            xp = np
        n = stats.n_samples
        mus = stats.sums / n
        self.n_samples_ = n
        self.centroids_ = mus
        R = xp.clip(xp.linalg.vector_norm(mus, axis=1), None, 1.0)
        self.mean_resultant_length_ = R
        self.mean_within_cosine_ = within = within_cosine_from_length(R, n, xp)
        M = len(stats.slices)
        pair_stats = []
        for m in range(1, M):
            sum_cos, sum_dist, sum_sq = (float(stats.pair_sums[m - 1, j]) for j in range(3))
            mean_cos = sum_cos / n
            delta = mus[0, ...] - mus[m, ...]
            pair_stats.append(
                dict(
                    gap_vector_=delta,
                    gap_norm_=float(xp.linalg.vector_norm(delta)),
                    pairwise_gap_=sum_dist / n,
                    alignment_=sum_sq / n,
                    mean_pair_cosine_=mean_cos,
                    relative_gap_=relative_gap_from_cosines(
                        mean_cos, float(within[0]), float(within[m])
                    ),
                )
            )
        for key in pair_stats[0] if pair_stats else ():
            values = [p[key] for p in pair_stats]
            if len(values) == 1:
                value = values[0]
            elif key == "gap_vector_":
                value = xp.stack(values)
            else:
                value = np.asarray(values)
            setattr(self, key, value)

    def _sampled_statistics(self):
        """Uniformity and principal-axis cosines from the row sample (cached)."""
        if getattr(self, "_stats", None) is None:
            raise AttributeError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' or "
                "'partial_fit' first."
            )
        if self._sampled_cache is not None:
            return self._sampled_cache
        stats = self._stats
        rows = stats.reservoir.rows
        xp, device = namespace_of(rows)
        slices = stats.slices
        acc = np.float64 if is_numpy(xp) else max_float_dtype(xp, device)
        if is_numpy(xp):
            units = [normalize_rows(rows[:, sl], "the sample") for sl in slices]
        else:
            safe = [scale_safe_rows(rows[:, sl], xp) for sl in slices]
            units = [B / xp.linalg.vector_norm(B, axis=1, keepdims=True) for B in safe]
        if rows.shape[0] >= 2 and is_numpy(xp):
            unif = uniformities(units, self.uniformity_t)  # all blocks in one threaded pass
        elif rows.shape[0] >= 2:
            unif = [_uniformity_of_unit_rows(U, self.uniformity_t, xp=xp, acc=acc) for U in units]
        else:
            unif = [float("nan")] * len(units)
        mus = stats.sums / stats.n_samples
        cosines = [
            _sample_gap_principal_cosine(units[0], units[m], mus[0, ...] - mus[m, ...], xp=xp)
            for m in range(1, len(units))
        ]
        self._sampled_cache = {
            "uniformity_": xp.asarray(unif, dtype=acc, device=device)
            if not is_numpy(xp)
            else np.asarray(unif),
            "gap_principal_cosine_": cosines[0] if len(cosines) == 1 else np.asarray(cosines),
        }
        return self._sampled_cache

    @property
    def uniformity_(self):
        return self._sampled_statistics()["uniformity_"]

    @property
    def gap_principal_cosine_(self):
        return self._sampled_statistics()["gap_principal_cosine_"]

    def transform(self, X):
        """Return ``X`` unchanged, after checking it has the fitted layout.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The validated input (no copy for a float NumPy array; a dask array
            stays lazy).
        """
        check_is_fitted(self)
        if _dask.is_dask_array(X):
            X, _ = validate_dask(self, X, reset=False)
            return X
        check_same_namespace(X, self, attribute="centroids_", method="transform")
        xp, _ = get_namespace_and_device(X)[:2]
        X, _ = validate_paired(self, X, reset=False, xp=xp)
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
        tags.array_api_support = True
        return tags
