r"""Post-hoc centring of each modality: I0T mean-centring and C3 collapse-and-corrupt."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from .._core._validation import Interval  # refuses booleans
from .._core import _dask
from .._core._array_api import get_namespace_and_device, is_numpy, scale_safe_rows
from .._core._norms import check_nonzero_norms, normalize_rows, row_norms
from .._core._validation import block_names, modality_dims_constraint, validate_paired_fast
from ._translation import BlockTranslation

__all__ = ["CollapseCorrupt", "ModalityCentering"]


def _centring_shifts(centroids, a, xp, device):
    r""":math:`s_m = -a\,\mu_m` for every block, in the namespace of the data."""
    if is_numpy(xp):
        return -a * np.asarray(centroids)
    return -a * xp.asarray(centroids, device=device)


class ModalityCentering(BlockTranslation):
    r"""Subtract (a fraction of) each modality's training centroid, then renormalise.

    The mean-centring of I0T's post-hoc standardisation (An et al., 2024): with :math:`\mu_m`
    the mean unit embedding of modality :math:`m` on the rows it is fit on,
    every unit row :math:`u` of block :math:`m` becomes

    .. math:: u' = \frac{u - \alpha\,\mu_m}{\lVert u - \alpha\,\mu_m \rVert},
        \qquad \alpha \in [0, 1].

    ``alpha=1`` is I0T's centring: both cones are moved to the origin, so the
    centroids of the output are (before the renormalisation) both zero and
    the gap :math:`\mu_V - \mu_T` goes with them; ``alpha`` between 0 and 1
    traces a path from the frozen embeddings, like :math:`\lambda` of
    :class:`ModalityGapShifter`.

    Parameters
    ----------
    alpha : float in [0, 1], default=1.0
        Fraction :math:`\alpha` of each centroid to subtract. ``0`` only
        normalises the rows.
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X = [V | T]``; ``None`` means two
        blocks of equal width. All blocks must share a width.

    Attributes
    ----------
    modality_dims_ : tuple of int
        Width of each block.
    centroids_ : ndarray of shape (n_modalities, d)
        Mean unit embedding :math:`\mu_m` of each modality on the fit rows.
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    ModalityGapShifter : Move both modalities along the gap instead.
    CollapseCorrupt : The same centring plus training-time noise (C3).

    Notes
    -----
    Unlike the :math:`\lambda` shift, which moves the two cones onto their
    common midpoint :math:`(\mu_V + \mu_T)/2`, centring removes each cone's
    own offset. The common component of the two centroids, which carries no
    information about which item is which, goes too; on CLIP embeddings this
    typically raises cross-modal retrieval while it closes the gap.

    For a row :math:`x` with norm :math:`r` and :math:`s = -\alpha\mu_m`,
    :math:`\lVert x/r + s\rVert^2 = 1 + 2\,x\cdot s/r + \lVert s\rVert^2`, so
    ``transform`` uses the fused one-pass kernel of the gap shift (float32
    stays float32, no copy of ``X`` besides the output). :meth:`partial_fit`,
    dask arrays (fit by a map-reduce of block sums, transform lazily) and
    array-API inputs under ``sklearn.set_config(array_api_dispatch=True)``
    work as for :class:`ModalityGapShifter`. A row that becomes the zero
    vector (e.g. every row of a block equal, at ``alpha=1``) has no direction
    and raises a ``ValueError`` naming the rows.

    References
    ----------
    An, Kim, Thorne, Shim (2024), "I0T: Embedding Standardization Method
    Towards Zero Modality Gap", arXiv:2412.14384 (ACL 2025); the mean-centring
    step of its post-hoc standardisation, I0T\ :sub:`post`.

    Examples
    --------
    >>> from skgap import ModalityCentering
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.measure import modality_gap
    >>> X, _ = make_paired_embeddings(400, 16, gap=0.8, random_state=0)
    >>> Z = ModalityCentering().fit(X[:300]).transform(X[300:])
    >>> before = modality_gap(X[300:, :16], X[300:, 16:])[1]
    >>> after = modality_gap(Z[:, :16], Z[:, 16:])[1]
    >>> bool(after < 0.5 * before)
    True
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "modality_dims": modality_dims_constraint(),
    }

    def __init__(self, alpha=1.0, modality_dims=None):
        self.alpha = alpha
        self.modality_dims = modality_dims

    def _block_shifts(self, xp, device):
        return _centring_shifts(self.centroids_, float(self.alpha), xp, device)


class CollapseCorrupt(BlockTranslation):
    r"""C3's collapse-and-corrupt: centre each modality, add noise to training rows.

    The embedding-space step of C3 (Zhang et al., ICLR 2024) for learning a
    cross-modal task from one modality: a model trained on the (text)
    embeddings of one modality is applied to the (image) embeddings of the
    other at inference. *Collapse* removes the constant offset of each
    modality, :math:`u \mapsto u - \mu_m` (the gap); *corrupt* adds Gaussian
    noise to the training embeddings of the modality the model learns from,
    so the model tolerates the remaining, item-wise difference between an
    item's image and its text.

    Parameters
    ----------
    noise_scale : float >= 0, default=0.1
        Expected norm :math:`\sigma` of the noise added to each training row
        of the ``corrupt`` block: :math:`\epsilon \sim
        \mathcal N(0, \sigma^2 I_d / d)`, i.e. a standard deviation of
        :math:`\sigma / \sqrt d` per coordinate, so the noise's size relative
        to the (unit) embeddings does not depend on the width ``d``. ``0``
        makes ``fit_transform`` equal ``fit(X).transform(X)``.
    corrupt : {'text', 'image'}, int or None, default='text'
        Block that receives the noise in :meth:`fit_transform`: ``'image'``
        (block 0), ``'text'`` (block 1), a block index, or ``None`` for none.
        Text is the default: C3's setting is text-only training.
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X = [V | T]``; ``None`` means two
        blocks of equal width. All blocks must share a width.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise of :meth:`fit_transform`.

    Attributes
    ----------
    modality_dims_ : tuple of int
        Width of each block.
    centroids_ : ndarray of shape (n_modalities, d)
        Mean unit embedding :math:`\mu_m` of each modality on the fit rows.
    corrupt_block_ : int or None
        Index of the block that :meth:`fit_transform` corrupts.
    n_features_in_ : int
        Width of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    ModalityCentering : The collapse step alone, with a fraction ``alpha``.
    ModalityGapShifter : Post-hoc shift along the gap.

    Notes
    -----
    With :math:`\mu_m` the training centroid of block :math:`m`, a unit row
    :math:`u` of that block is mapped to

    .. math::

        u' = \frac{u - \mu_m + \epsilon}{\lVert u - \mu_m + \epsilon \rVert},
        \qquad
        \epsilon \sim \mathcal N\!\left(0, \tfrac{\sigma^2}{d} I_d\right)
        \text{ for the training rows of the corrupted block, } \epsilon = 0
        \text{ otherwise.}

    The renormalisation keeps every output on the unit sphere, as the other
    skgap transformers do (C3 feeds the collapsed embeddings to a decoder; a
    downstream linear model is insensitive to the row scale it removes).

    **fit_transform differs from fit().transform().** The noise is part of
    training only, so, following scikit-learn's
    :class:`~sklearn.preprocessing.TargetEncoder`, :meth:`fit_transform`
    returns the corrupted training rows while :meth:`transform` never adds
    noise: ``fit_transform(X)`` equals ``fit(X).transform(X)`` only when
    ``noise_scale=0`` or ``corrupt=None``. In a
    :class:`~sklearn.pipeline.Pipeline`, fitting calls ``fit_transform`` on
    the training rows (a downstream model sees noisy text) and predicting
    calls ``transform`` on new rows (clean images or texts). Dask arrays are
    fit and transformed as in :class:`ModalityCentering`; ``fit_transform``
    of a dask array with noise computes the result.

    References
    ----------
    Zhang, Sui, Yeung-Levy (2024), "Connect, Collapse, Corrupt: Learning
    Cross-Modal Tasks with Uni-Modal Data", ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap import CollapseCorrupt
    >>> from skgap.datasets import make_paired_embeddings
    >>> X, _ = make_paired_embeddings(200, 16, random_state=0)
    >>> c3 = CollapseCorrupt(noise_scale=0.2, random_state=0)
    >>> Z_train = c3.fit_transform(X)          # text rows corrupted
    >>> Z_clean = c3.transform(X)              # no noise at transform
    >>> bool(np.allclose(Z_train[:, :16], Z_clean[:, :16]))
    True
    >>> bool(np.allclose(Z_train[:, 16:], Z_clean[:, 16:]))
    False
    """

    _parameter_constraints = {
        "noise_scale": [Interval(Real, 0, None, closed="left")],
        "corrupt": [StrOptions({"image", "text"}), Interval(Integral, 0, None, closed="left"), None],
        "modality_dims": modality_dims_constraint(),
        "random_state": ["random_state"],
    }

    def __init__(self, noise_scale=0.1, corrupt="text", modality_dims=None, random_state=None):
        self.noise_scale = noise_scale
        self.corrupt = corrupt
        self.modality_dims = modality_dims
        self.random_state = random_state

    def _block_shifts(self, xp, device):
        return _centring_shifts(self.centroids_, 1.0, xp, device)

    def _after_fit(self, xp):
        n_blocks = len(self.modality_dims_)
        block = {"image": 0, "text": 1}.get(self.corrupt, self.corrupt)
        if block is not None and block >= n_blocks:
            raise ValueError(
                f"corrupt={self.corrupt!r} names block {block}, but X has {n_blocks} "
                "modality blocks; use a block index below that, or None."
            )
        self.corrupt_block_ = block

    def fit_transform(self, X, y=None):
        """Fit the centroids, then return the collapsed, corrupted training rows.

        Unlike :meth:`transform`, adds the Gaussian noise of ``noise_scale`` to
        the ``corrupt`` block before the renormalisation (see Notes).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Paired embeddings ``[V | T]`` of the training split.
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Unit rows in every block, in the dtype (and namespace) of ``X``.
        """
        self.fit(X)
        if self.corrupt_block_ is None or self.noise_scale == 0:
            return self._transform(X)
        if _dask.is_dask_array(X):
            X = X.compute()
        out = self._transform(X)
        xp, _, device = get_namespace_and_device(X)
        X, slices = validate_paired_fast(self, X, reset=False, xp=xp, equal_dims=False)
        sl = slices[self.corrupt_block_]
        d = sl.stop - sl.start
        rng = check_random_state(self.random_state)
        dtype = X.dtype if is_numpy(xp) else np.dtype(str(X.dtype).split(".")[-1])
        noise = rng.standard_normal((X.shape[0], d)).astype(dtype, copy=False)
        noise *= dtype.type(self.noise_scale / np.sqrt(d))
        mu = self.centroids_[self.corrupt_block_, ...]
        if not is_numpy(xp):
            B = scale_safe_rows(X[:, sl], xp)
            U = B / xp.linalg.vector_norm(B, axis=1, keepdims=True)
            U = U - xp.astype(xp.asarray(mu, device=device), X.dtype)
            U = U + xp.asarray(noise, device=device)
            n2 = xp.linalg.vector_norm(U, axis=1, keepdims=True)
            if not bool(xp.all(n2 > 0)):
                raise ValueError("A corrupted row has zero norm after the noise; refit with another random_state.")
            out[:, sl] = U / n2
            return out
        U = normalize_rows(np.asarray(X[:, sl]), block_names(len(slices))[self.corrupt_block_])
        U -= mu.astype(U.dtype, copy=False)
        U += noise
        norms = row_norms(U)
        name = block_names(len(slices))[self.corrupt_block_]
        check_nonzero_norms(norms, f"{name} after the noise")
        out[:, sl] = U / norms[:, None]
        return out
