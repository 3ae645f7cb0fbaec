"""Anchor-based latent space translation (semantic alignment) between two encoders."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._array_api import check_same_namespace, get_namespace_and_device
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from .._core._layout import (
    block_slices,
    carried_modality_dims,
    check_carried_dims,
    resolve_modality_dims,
)
from .._core._validation import Interval  # refuses booleans
from .._core._validation import modality_dims_constraint

__all__ = ["AnchorAffineAligner", "IllPosedAlignmentWarning"]

class IllPosedAlignmentWarning(UserWarning):
    """The anchors do not determine the map uniquely.

    Issued by :class:`AnchorAffineAligner` when the anchors are too few or
    rank deficient for the requested kind; the fit still returns the solution
    named in the message (minimum norm, ridge, or one of the optimal
    orthogonal maps).
    """


def _standardize_stats(A, standardize, xp):
    """Shift ``mu`` and scale ``sigma`` (both of shape ``(d,)``) of one space.

    Scales that are zero up to rounding (constant features, or identical
    anchors) are replaced by one so that nothing is divided by noise.

    The variances are taken of ``A / p``, with ``p`` the power of two nearest
    below ``max |A|`` (an exact division), and scaled back: squares of
    float32 anchors of 1e20 would overflow, of 1e-30 underflow to a zero
    spread.
    """
    ones = xp.ones(A.shape[1], dtype=A.dtype, device=_device(A))
    if standardize is None:
        return xp.zeros_like(ones), ones
    p = _power_of_two_scale(A, xp)
    As = A / p
    mu_s = xp.mean(As, axis=0)
    mu = mu_s * p
    if standardize == "center":
        return mu, ones
    eps = xp.finfo(A.dtype).eps
    if standardize == "feature":
        sigma = xp.std(As, axis=0)
        # A constant column still gets a std of about eps * |mean| from rounding.
        floor = 10 * eps * xp.abs(mu_s)
    else:  # isotropic: RMS norm of the centred anchors, one number for the space
        sigma = xp.sqrt(xp.sum(xp.var(As, axis=0)))
        floor = 10 * eps * xp.sqrt(xp.sum(mu_s * mu_s))
        sigma = sigma * ones
    sigma = xp.where(sigma <= floor, ones, sigma * p)
    return mu, sigma


def _power_of_two_scale(A, xp):
    """``2**floor(log2(max |A|))`` as a Python float (1.0 for an all-zero ``A``)."""
    a = float(xp.max(xp.abs(A))) if A.shape[0] and A.shape[1] else 0.0
    if not (a > 0 and math.isfinite(a)):
        return 1.0
    return math.ldexp(1.0, math.frexp(a)[1] - 1)


def _device(A):
    return get_namespace_and_device(A)[2]


def _rank_tol(s, shape, dtype, xp):
    """NumPy's ``matrix_rank`` tolerance: ``max(shape) * eps * s_max``."""
    if s.shape[0] == 0:
        return 0.0
    return float(xp.max(s)) * max(shape) * float(xp.finfo(dtype).eps)


def _least_squares(A, B, alpha, xp):
    r"""Minimum-norm (``alpha=0``) or ridge solution of ``min ||A R - B||``.

    One thin SVD :math:`A = U \Sigma V^\top` gives both:
    :math:`R = V \,\mathrm{diag}(f(\sigma))\, U^\top B` with
    :math:`f(\sigma) = 1/\sigma` above the rank tolerance (0 below) when
    ``alpha = 0``, and :math:`f(\sigma) = \sigma / (\sigma^2 + \alpha)` else.
    Returns ``(R, rank)``.
    """
    U, s, Vt = xp.linalg.svd(A, full_matrices=False)
    tol = _rank_tol(s, A.shape, A.dtype, xp)
    keep = s > tol
    rank = int(xp.sum(xp.astype(keep, xp.int32)))
    if alpha > 0:
        f = s / (s * s + alpha)
    else:
        f = xp.where(keep, 1 / xp.where(keep, s, xp.ones_like(s)), xp.zeros_like(s))
    R = Vt.T @ ((U.T @ B) * f[:, None])
    return R, rank


def _polar(M, xp):
    r"""Nearest (semi-)orthogonal matrix :math:`U V^\top` of ``M = U Sigma V^T``.

    Returns ``(Q, rank)``. For a rectangular ``M`` this equals padding the
    smaller dimension with zeros, taking the square polar factor and cutting
    the padding off again.
    """
    U, s, Vt = xp.linalg.svd(M, full_matrices=False)
    tol = _rank_tol(s, M.shape, M.dtype, xp)
    rank = int(xp.sum(xp.astype(s > tol, xp.int32)))
    return U @ Vt, rank


class AnchorAffineAligner(TransformerMixin, BaseEstimator):
    r"""Translate one latent space into another from matched anchor pairs.

    Semantic alignment (Maiorca et al., 2023): given anchors seen by two
    encoders -- rows :math:`s_i` of a source space and :math:`t_i` of a target
    space describing the same items -- estimate an at-most-affine map from the
    source to the target in closed form. Use it to stitch a general encoder
    to a specialised one, or to move the embeddings of a vision-only encoder
    into the text space of a vision-language model for zero-shot
    classification (Di Folco et al., 2025).

    Input is the paired layout ``X = [S | T]``: source block first, target
    block second; the widths may differ (``modality_dims=(d_s, d_t)``).

    Parameters
    ----------
    kind : {'ortho', 'lortho', 'linear', 'affine'}, default='ortho'
        The family of maps (see Notes for each optimisation problem):

        - ``'ortho'``: orthogonal Procrustes, :math:`R = U V^\top` from the SVD
          of :math:`\hat S^\top \hat T`;
        - ``'lortho'``: the least-squares linear map, projected onto the
          nearest orthogonal matrix;
        - ``'linear'``: least squares without bias;
        - ``'affine'``: least squares with a bias term.
    modality_dims : sequence of two int, default=None
        ``(d_s, d_t)``, the widths of the source and target blocks of ``X``.
        ``None`` means two blocks of equal width.
    n_anchors : int >= 2 or None, default=None
        Number of rows of ``X`` used as anchors, drawn without replacement
        with ``random_state``. ``None`` uses every row.
    standardize : {'feature', 'isotropic', 'center'} or None, default='feature'
        Pre-processing of each space, with statistics of its anchors only;
        the translation undoes the target's at the end.

        - ``'feature'``: centre and divide each feature by its standard
          deviation, as in the paper and the reference library latentis (so
          results can be compared with it). Every kind then maps z-scores to
          z-scores; ``'ortho'`` is a rotation *of the standardised spaces*,
          which is not an isometry of the original ones.
        - ``'isotropic'``: centre and divide by one scale per space, the RMS
          norm of the centred anchors. ``'ortho'`` composed with the scaling
          is a similarity of the original spaces (rotation, one global scale
          :math:`\sigma_t/\sigma_s`, translation): it preserves angles and
          ratios of distances, and recovers a planted rotation exactly.
        - ``'center'``: centre only. ``'ortho'`` is then a rigid motion
          (rotation plus translation): it preserves distances.
        - ``None``: the raw spaces. ``'ortho'`` is a linear isometry: it
          preserves norms and the angles between embeddings, hence cosine
          similarities.
    alpha : float >= 0, default=0.0
        Ridge penalty :math:`\alpha \lVert R \rVert_F^2` of the least-squares
        step of ``'linear'``, ``'affine'`` and ``'lortho'``, in the
        standardised coordinates. ``0`` gives the minimum-norm least-squares
        solution. ``'ortho'`` ignores it (its problem is bounded already).
    random_state : int, RandomState instance or None, default=None
        Seed of the anchor subsample when ``n_anchors`` is set.

    Attributes
    ----------
    coef_ : ndarray of shape (d_s, d_t)
        The map :math:`R` between the *standardised* spaces. For ``'ortho'``
        and ``'lortho'`` it has orthonormal rows (``d_s <= d_t``) or columns
        (``d_s >= d_t``).
    intercept_ : ndarray of shape (d_t,)
        The bias :math:`b` in standardised target coordinates; zero except for
        ``kind='affine'`` with ``standardize=None`` (anchors that are centred
        already need no bias).
    source_mean_, target_mean_ : ndarray of shape (d_s,) and (d_t,)
        Shift :math:`\mu` of each space (zeros when ``standardize=None``).
    source_scale_, target_scale_ : ndarray of shape (d_s,) and (d_t,)
        Scale :math:`\sigma` of each space (ones unless ``standardize`` is
        ``'feature'`` or ``'isotropic'``; all entries equal for
        ``'isotropic'``).
    n_anchors_ : int
        Number of anchors used.
    anchor_indices_ : ndarray of shape (n_anchors,)
        Rows of the fit ``X`` used as anchors, in increasing order.
    modality_dims_ : tuple of int
        ``(d_s, d_t)``.
    n_features_in_ : int
        Width of ``X``, :math:`d_s + d_t`.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    ZeroShotClassifier : Classify through a fitted aligner.
    skgap.measure.cka : Similarity of two spaces, before and after alignment.
    scipy.linalg.orthogonal_procrustes : The ``'ortho'`` problem for square
        matrices.

    Notes
    -----
    Write :math:`\hat S \in \mathbb{R}^{n \times d_s}` and
    :math:`\hat T \in \mathbb{R}^{n \times d_t}` for the standardised anchors,
    :math:`\hat s = (s - \mu_s) \oslash \sigma_s`. The kinds solve

    .. math::

        \text{affine:}\quad & \min_{R,\, b}\ \lVert \hat S R + \mathbf 1 b^\top
            - \hat T \rVert_F^2 + \alpha \lVert R \rVert_F^2 \\
        \text{linear:}\quad & \min_{R}\ \lVert \hat S R - \hat T \rVert_F^2
            + \alpha \lVert R \rVert_F^2 \\
        \text{lortho:}\quad & R = \operatorname*{arg\,min}_{Q^\top Q = I}
            \lVert Q - R_{\text{linear}} \rVert_F = U V^\top,\quad
            R_{\text{linear}} = U \Sigma V^\top \\
        \text{ortho:}\quad & \min_{Q^\top Q = I}\ \lVert \hat S Q - \hat T
            \rVert_F^2 \;\Longleftrightarrow\; Q = U V^\top,\quad
            \hat S^\top \hat T = U \Sigma V^\top

    all in closed form: one thin SVD each (``'affine'`` centres the anchors,
    solves the linear problem and sets :math:`b = \bar{\hat t} - \bar{\hat s}
    R`, which equals least squares on :math:`[\hat S, \mathbf 1]` with an
    unpenalised bias). latentis fits ``'affine'`` by SGD; the closed form is
    the exact optimum. A new source row is translated as

    .. math::

        \tilde t = \big((s - \mu_s) \oslash \sigma_s\, R + b\big) \odot \sigma_t
        + \mu_t .

    *Different widths.* ``'ortho'`` and ``'lortho'`` need square maps: the
    smaller space is zero-padded to :math:`\max(d_s, d_t)` and the padding cut
    off after the map, as in latentis. The result is the semi-orthogonal polar
    factor of the rectangular matrix, computed directly. With
    :math:`d_s \le d_t` it is an isometric embedding (norms and angles kept);
    with :math:`d_s > d_t` it projects onto a :math:`d_t`-dimensional subspace
    first, so norms shrink.

    *Ill-posed fits.* ``'linear'``, ``'affine'`` and ``'lortho'`` need the
    (centred) anchors to span the source space: about :math:`d_s + 1`
    anchors. With fewer, or rank-deficient anchors, and ``alpha=0``, the fit
    warns (:class:`IllPosedAlignmentWarning`) and returns the minimum-norm
    least-squares solution, which maps the unseen source directions to zero;
    ``alpha > 0`` gives the (unique) ridge solution without a warning.
    ``'ortho'`` is unique when :math:`\hat S^\top \hat T` has full rank
    :math:`\min(d_s, d_t)`; otherwise it warns and returns :math:`U V^\top` of
    the thin SVD, one of the optimal maps. Fewer than two anchors is an error.

    References
    ----------
    Maiorca, V., Moschella, L., Norelli, A., Fumero, M., Locatello, F. and
    Rodola, E. (2023). "Latent Space Translation via Semantic Alignment".
    NeurIPS.
    Di Folco, M. et al. (2025). "Semantic Alignment of Unimodal Medical Text
    and Vision Representations".
    Schonemann, P. H. (1966). "A generalized solution of the orthogonal
    Procrustes problem". Psychometrika 31, 1-10.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skgap import pair
    >>> from skgap import AnchorAffineAligner
    >>> rng = np.random.default_rng(0)
    >>> S = rng.normal(size=(50, 8))
    >>> Q = ortho_group.rvs(8, random_state=0)
    >>> T = 2.0 * S @ Q + 1.0  # a rotated, scaled and shifted copy
    >>> aligner = AnchorAffineAligner(kind="ortho", standardize="isotropic")
    >>> aligner.fit(pair(S, T)).n_anchors_
    50
    >>> bool(np.allclose(aligner.coef_, Q))
    True
    >>> bool(np.allclose(aligner.translate(S), T))
    True
    """

    _parameter_constraints = {
        "kind": [StrOptions({"affine", "linear", "lortho", "ortho"})],
        "modality_dims": modality_dims_constraint(),
        "n_anchors": [None, Interval(Integral, 2, None, closed="left")],
        "standardize": [None, StrOptions({"feature", "isotropic", "center"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        kind="ortho",
        modality_dims=None,
        n_anchors=None,
        standardize="feature",
        alpha=0.0,
        random_state=None,
    ):
        self.kind = kind
        self.modality_dims = modality_dims
        self.n_anchors = n_anchors
        self.standardize = standardize
        self.alpha = alpha
        self.random_state = random_state

    def _validate_X(self, X, *, reset):
        # Not PairedMixin._validate_paired: the accepted dtypes must come from
        # the array namespace of X for array-API inputs (torch, cupy, ...).
        xp, _, _ = get_namespace_and_device(X)
        carried = carried_modality_dims(X)
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[xp.float64, xp.float32],
            ensure_min_samples=2 if reset else 1,
        )
        if reset:
            self.modality_dims_ = resolve_modality_dims(
                X.shape[1], check_carried_dims(self.modality_dims, carried, "AnchorAffineAligner")
            )
            if len(self.modality_dims_) != 2:
                raise ValueError(
                    "AnchorAffineAligner maps one source space onto one target "
                    f"space, so X needs exactly two blocks; got modality_dims="
                    f"{self.modality_dims_}."
                )
        return X, block_slices(self.modality_dims_)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the map from the anchors in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, d_s + d_t)
            Anchor pairs ``[S | T]``: row ``i`` of both blocks describes the
            same item.
        y : None
            Ignored.

        Returns
        -------
        self : AnchorAffineAligner
        """
        X, (src, tgt) = self._validate_X(X, reset=True)
        xp, _, dev = get_namespace_and_device(X)
        n_samples = X.shape[0]
        if self.n_anchors is None:
            idx = np.arange(n_samples)
        elif self.n_anchors > n_samples:
            raise ValueError(
                f"n_anchors={self.n_anchors} exceeds the {n_samples} rows of X; "
                "pass at most that many, or None to use every row."
            )
        else:
            rng = check_random_state(self.random_state)
            idx = np.sort(rng.choice(n_samples, size=self.n_anchors, replace=False))
        self.anchor_indices_ = xp.asarray(idx, device=dev)
        self.n_anchors_ = int(idx.shape[0])
        if self.n_anchors_ < n_samples:
            X = xp.take(X, self.anchor_indices_, axis=0)
        S, T = X[:, src], X[:, tgt]
        d_s, d_t = self.modality_dims_

        self.source_mean_, self.source_scale_ = _standardize_stats(S, self.standardize, xp)
        self.target_mean_, self.target_scale_ = _standardize_stats(T, self.standardize, xp)
        S = (S - self.source_mean_) / self.source_scale_
        T = (T - self.target_mean_) / self.target_scale_

        kind = self.kind
        self.intercept_ = xp.zeros(d_t, dtype=X.dtype, device=dev)
        if kind == "ortho":
            self.coef_, rank = _polar(S.T @ T, xp)
            if rank < min(d_s, d_t):
                self._warn(
                    f"S^T T has rank {rank} < min(d_s, d_t) = {min(d_s, d_t)}, so "
                    "the orthogonal map is not unique; returning U V^T of its thin "
                    "SVD, one of the optimal maps"
                )
            return self

        if kind == "affine" and self.standardize is None:
            # Centring both sides turns the bias into a closed-form afterthought;
            # with any other standardize the anchors are centred already.
            s_bar, t_bar = xp.mean(S, axis=0), xp.mean(T, axis=0)
            coef, rank = _least_squares(S - s_bar, T - t_bar, self.alpha, xp)
            self.intercept_ = t_bar - s_bar @ coef
        else:
            coef, rank = _least_squares(S, T, self.alpha, xp)
        underdetermined = rank < d_s and self.alpha == 0
        if underdetermined:
            self._warn(
                f"the standardised source anchors have rank {rank} < d_s = {d_s}, "
                "so least squares is underdetermined; returning the minimum-norm "
                "solution (pass alpha > 0 for a ridge solution)"
            )
        if kind == "lortho":
            coef, polar_rank = _polar(coef, xp)
            if polar_rank < min(d_s, d_t) and not underdetermined:
                self._warn(
                    f"the least-squares map has rank {polar_rank} < min(d_s, d_t) = "
                    f"{min(d_s, d_t)}, so its orthogonal factor is not unique; returning "
                    "U V^T of its thin SVD, one of the nearest orthogonal maps"
                )
        self.coef_ = coef
        return self

    def _warn(self, what):
        warnings.warn(
            f"AnchorAffineAligner(kind={self.kind!r}) with {self.n_anchors_} anchors: "
            f"{what}. More anchors than dimensions make the fit well posed.",
            IllPosedAlignmentWarning,
            stacklevel=3,
        )

    def translate(self, S):
        """Map source rows into the target space.

        Parameters
        ----------
        S : array-like of shape (n_samples, d_s)
            Source-space embeddings (the first block alone).

        Returns
        -------
        T_hat : ndarray of shape (n_samples, d_t)
            The translations, in the target's original coordinates (its
            standardisation undone), in the dtype of ``S``.
        """
        check_is_fitted(self)
        check_same_namespace(S, self, attribute="coef_", method="translate")
        xp, _, _ = get_namespace_and_device(S)
        S = check_array(S, dtype=[xp.float64, xp.float32], input_name="S")
        d_s = self.modality_dims_[0]
        if S.shape[1] != d_s:
            raise ValueError(
                f"S has {S.shape[1]} columns but the aligner was fit with a source "
                f"block of {d_s} columns (modality_dims_={self.modality_dims_})."
            )
        return self._translate(S, xp)

    def _translate(self, S, xp):
        # Fold both standardisations into one affine map: one (n, d_t) result
        # and no standardised copy of S.
        coef = self.coef_ / self.source_scale_[:, None]
        offset = self.intercept_ - (self.source_mean_ / self.source_scale_) @ self.coef_
        W = coef * self.target_scale_
        c = offset * self.target_scale_ + self.target_mean_
        dtype = S.dtype
        return S @ xp.astype(W, dtype) + xp.astype(c, dtype)

    def transform(self, X):
        """Replace the source block by its translation: ``[translate(S) | T]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, d_s + d_t)
            Paired embeddings with the fitted layout.

        Returns
        -------
        X_aligned : ndarray of shape (n_samples, 2 * d_t)
            Two blocks of width ``d_t`` in the target space, in the dtype of
            ``X``; feed it to :class:`~skgap.ConeStats` or a probe.
        """
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="coef_", method="transform")
        X, (src, tgt) = self._validate_X(X, reset=False)
        xp, _, _ = get_namespace_and_device(X)
        return xp.concat([self._translate(X[:, src], xp), X[:, tgt]], axis=1)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: the translated block, then the target.

        The translated block lives in target coordinates, so its columns are
        named after the target's, prefixed ``translated_``; the target block
        passes through with its own names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Column names of ``X``; defaults to ``feature_names_in_`` or
            ``x0, ..., x{n-1}``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        target = [str(n) for n in names[self.modality_dims_[0] :]]
        return np.asarray([f"translated_{n}" for n in target] + target, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags
