"""Post-hoc modality-gap shift: move each modality along the gap and renormalise."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._core._validation import Interval  # refuses booleans
from .._core._shift import gap_shift_directions
from .._core._validation import modality_dims_constraint
from ._translation import BlockTranslation

__all__ = ["ModalityGapShifter"]


class ModalityGapShifter(BlockTranslation):
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
    skgap.measure.modality_gap : The estimate of :math:`\Delta`.

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
    The tiles are shared among as many threads as BLAS may use (called from
    the main thread; ``threadpoolctl.threadpool_limits(1)`` keeps the
    transform on one thread, and worker threads of dask or joblib never
    start more); every output row depends on its input row only, so the
    result does not depend on the threads.

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

    # One block has no gap: shifting it by a zero gap would be a silent no-op.
    _min_modalities = 2

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

    def _after_fit(self, xp):
        C = self.centroids_
        if xp is np:
            self.gap_vector_ = C[0] - C[1] if len(C) >= 2 else np.zeros(C.shape[1])
            self.gap_norm_ = float(np.linalg.norm(self.gap_vector_))
        else:
            two = C.shape[0] >= 2
            self.gap_vector_ = C[0, ...] - C[1, ...] if two else xp.zeros_like(C[0, ...])
            self.gap_norm_ = float(xp.linalg.vector_norm(self.gap_vector_))
        self.shift_vectors_ = gap_shift_directions(C, self.direction, self.side, xp)

    def _check_transform(self):
        # lam, side and direction may have been set after fit: check them again.
        self._validate_params()

    def _block_shifts(self, xp, device):
        """:math:`\\lambda s_m`, with the current ``direction`` and ``side``."""
        return self.lam * gap_shift_directions(
            self.centroids_, self.direction, self.side, xp, device
        )
