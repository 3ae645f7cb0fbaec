"""Linear centred kernel alignment (CKA) between two representations."""

import numpy as np
from sklearn.utils._param_validation import validate_params

from .._core._norms import CHUNK_ROWS, check_pair_blocks
from .._core._sphere import weighted_row_sum

__all__ = ["cka"]


def _centred_cross_products(A, B):
    """``(A_c^T B_c, A_c^T A_c, B_c^T B_c, mu_A, mu_B)`` in float64, over row chunks.

    Each chunk is centred and multiplied in the precision of the input (no
    float64 copy of ``A`` or ``B``); the small products are summed in float64.
    CKA does not change when ``A`` or ``B`` is multiplied by a constant, so
    each block is divided by its largest absolute entry first (chunk by
    chunk): the Gram matrices then neither overflow (float32 entries above
    1e19) nor underflow (below 1e-19). The means returned are of the scaled
    blocks.
    """
    n = A.shape[0]
    ones = np.ones(n)
    scale_a, scale_b = _max_abs(A), _max_abs(B)
    mu_a = (weighted_row_sum(A, ones) / n).astype(A.dtype) / scale_a
    mu_b = (weighted_row_sum(B, ones) / n).astype(B.dtype) / scale_b
    p, q = A.shape[1], B.shape[1]
    AB = np.zeros((p, q))
    AA = np.zeros((p, p))
    BB = np.zeros((q, q))
    for start in range(0, n, CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        Ac = A[start:stop] / scale_a - mu_a
        Bc = B[start:stop] / scale_b - mu_b
        AB += Ac.T @ Bc
        AA += Ac.T @ Ac
        BB += Bc.T @ Bc
    return AB, AA, BB, mu_a, mu_b


def _max_abs(A):
    """``max |A_ij|`` in the dtype of ``A`` (1 for an all-zero array); no copy of ``A``."""
    a = max(A.max(), -A.min()) if A.size else A.dtype.type(0)
    return a if a > 0 else A.dtype.type(1)


def _has_variance(gram, mu, n, dtype):
    """Whether the centred block is more than rounding noise.

    A constant column centres to about ``eps * |mean|`` per entry, not to
    exactly zero, so compare the centred energy ``tr(A_c^T A_c)`` with the
    raw energy ``sum(A**2) = n ||mu||^2 + tr(A_c^T A_c)``.
    """
    centred = np.trace(gram)
    raw = n * float(np.dot(mu, mu)) + centred
    return centred > 10 * np.finfo(dtype).eps * raw


@validate_params(
    {"A": ["array-like"], "B": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def cka(A, B):
    r"""Linear centred kernel alignment of two representations of the same items.

    How similar two spaces are, up to rotation and scale: row ``i`` of ``A``
    and of ``B`` describe the same item, the widths may differ. With the
    column-centred matrices :math:`A_c = HA`, :math:`B_c = HB`
    (:math:`H = I_n - \tfrac1n \mathbf 1 \mathbf 1^\top`),

    .. math::

        \mathrm{CKA}(A, B)
        = \frac{\mathrm{HSIC}(AA^\top, BB^\top)}
               {\sqrt{\mathrm{HSIC}(AA^\top, AA^\top)\,\mathrm{HSIC}(BB^\top, BB^\top)}}
        = \frac{\lVert A_c^\top B_c \rVert_F^2}
               {\lVert A_c^\top A_c \rVert_F \, \lVert B_c^\top B_c \rVert_F},

    where :math:`\mathrm{HSIC}(K, L) \propto \operatorname{tr}(KHLH)`. The
    second form works in feature space and never builds an
    :math:`n \times n` matrix: it costs :math:`O(n (p + q)^2)` time and
    :math:`O((p + q)^2)` memory.

    Parameters
    ----------
    A : array-like of shape (n_samples, p)
        First representation.
    B : array-like of shape (n_samples, q)
        Second representation of the same items, row for row.

    Returns
    -------
    cka : float in [0, 1]
        1 when :math:`B = c\,A Q + \mathbf 1 b^\top` for an orthogonal
        :math:`Q` (semi-orthogonal when the widths differ), a scalar
        :math:`c \neq 0` and a shift :math:`b`.

    Raises
    ------
    ValueError
        If the row counts differ, there are fewer than two rows, values are
        not finite, or a representation is constant (it has no variance to
        compare).

    See Also
    --------
    skgap.AnchorAffineAligner : Make two spaces comparable.

    Notes
    -----
    Linear CKA is invariant to orthogonal transforms, isotropic scaling and
    translation of either space, but not to arbitrary invertible linear maps
    (per-feature rescaling changes it). It is therefore a fair before/after
    measure of an orthogonal alignment, and says how far an affine alignment
    had to distort the geometry. The estimator is the plain (biased) HSIC
    ratio of Kornblith et al. (2019), whose value exceeds zero for unrelated
    representations when :math:`n` is not much larger than :math:`p, q`.

    References
    ----------
    Kornblith, S., Norouzi, M., Lee, H. and Hinton, G. (2019). "Similarity of
    Neural Network Representations Revisited". ICML, equation (5).

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.measure import cka
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(200, 5))
    >>> Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    >>> round(cka(A, 3.0 * A @ Q + 1.0), 6)
    1.0
    >>> bool(cka(A, rng.normal(size=(200, 7))) < 0.2)
    True
    """
    A, B = check_pair_blocks(A, B, names=("A", "B"), min_samples=2, same_width=False)
    AB, AA, BB, mu_a, mu_b = _centred_cross_products(A, B)
    n = A.shape[0]
    for name, gram, mu, dtype in (("A", AA, mu_a, A.dtype), ("B", BB, mu_b, B.dtype)):
        if not _has_variance(gram, mu.astype(np.float64), n, dtype):
            raise ValueError(
                f"{name} is constant over its rows (zero variance after centring), "
                "so its similarity to another representation is undefined."
            )
    value = np.sum(AB * AB) / (np.linalg.norm(AA) * np.linalg.norm(BB))
    return float(min(max(value, 0.0), 1.0))
