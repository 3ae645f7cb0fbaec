"""Cone-effect and modality-gap statistics of embeddings on the unit sphere.

Every function L2-normalises the rows it is given first, so raw encoder
outputs and unit vectors give the same numbers. All reductions accumulate in
float64 without making a float64 copy of the input.
"""

import math
from numbers import Integral

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_params

from .._core._norms import check_block, check_pair_blocks, inverse_norms, normalize_rows
from .._core._parallel import one_blas_thread, run_work_items
from .._core._validation import Interval, PositiveFinite, PositiveInt
from .._core._sphere import pair_cosines, unit_mean, unit_second_moment

__all__ = [
    "mean_resultant_length",
    "modality_gap",
    "pairwise_gap",
    "alignment",
    "uniformity",
    "relative_modality_gap",
    "mean_pair_cosine",
    "mean_within_cosine",
    "gap_principal_cosine",
]


@validate_params(
    {"E": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def mean_resultant_length(E):
    r"""Mean resultant length of the embeddings: the size of the cone effect.

    .. math::

        R = \Big\lVert \frac{1}{n} \sum_{i=1}^{n} \frac{e_i}{\lVert e_i \rVert} \Big\rVert_2

    ``R = 1`` when all embeddings point the same way (a degenerate cone) and
    ``R`` is near 0 when they spread uniformly over the sphere.

    Parameters
    ----------
    E : array-like of shape (n_samples, n_features)
        Embeddings of one modality.

    Returns
    -------
    R : float in [0, 1]

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", Table 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.measure import mean_resultant_length
    >>> mean_resultant_length(np.array([[1.0, 0.0], [0.0, 1.0]]))
    0.7071...
    """
    E = check_block(E, "E")
    return float(min(np.linalg.norm(unit_mean(E, name="E")), 1.0))


@validate_params(
    {"V": ["array-like"], "T": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def modality_gap(V, T):
    r"""Centroid modality gap between two modalities.

    .. math::

        \mu_V = \frac{1}{n}\sum_i \hat v_i, \qquad
        \mu_T = \frac{1}{n}\sum_i \hat t_i, \qquad
        \Delta = \mu_V - \mu_T, \qquad
        \mathrm{L2M} = \lVert \Delta \rVert_2

    with :math:`\hat x = x / \lVert x \rVert`. The blocks need not be paired
    row for row (only their centroids enter), but must share a space.

    Parameters
    ----------
    V : array-like of shape (n_samples_v, n_features)
        Embeddings of the first modality (images, by convention).
    T : array-like of shape (n_samples_t, n_features)
        Embeddings of the second modality (texts).

    Returns
    -------
    gap_vector : ndarray of shape (n_features,), float64
        :math:`\Delta`.
    gap_norm : float
        :math:`\lVert \Delta \rVert` (L2M), in [0, 2].

    References
    ----------
    Liang et al. (2022), "Mind the Gap: Understanding the Modality Gap in
    Multi-modal Contrastive Representation Learning", NeurIPS.
    """
    V = check_block(V, "V")
    T = check_block(T, "T")
    if V.shape[1] != T.shape[1]:
        raise ValueError(
            f"V has {V.shape[1]} columns but T has {T.shape[1]}; the gap is a "
            "difference of centroids and needs one shared space."
        )
    delta = unit_mean(V, name="V") - unit_mean(T, name="T")
    return delta, float(np.linalg.norm(delta))


@validate_params(
    {"V": ["array-like"], "T": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def mean_pair_cosine(V, T):
    r"""Mean cosine similarity of matched pairs.

    .. math:: \bar c = \frac{1}{n} \sum_i \cos(v_i, t_i)

    Parameters
    ----------
    V, T : array-like of shape (n_samples, n_features)
        Row ``i`` of ``V`` and of ``T`` describe the same item.

    Returns
    -------
    float in [-1, 1]
    """
    V, T = check_pair_blocks(V, T)
    return float(pair_cosines(V, T).mean())


@validate_params(
    {"V": ["array-like"], "T": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def pairwise_gap(V, T):
    r"""Instance-level modality gap (L2I): the mean distance of matched pairs.

    .. math:: \mathrm{L2I} = \frac{1}{n} \sum_i \lVert \hat v_i - \hat t_i \rVert_2
        = \frac{1}{n} \sum_i \sqrt{2 - 2\cos(v_i, t_i)}

    Parameters
    ----------
    V, T : array-like of shape (n_samples, n_features)
        Row ``i`` of ``V`` and of ``T`` describe the same item.

    Returns
    -------
    float in [0, 2]
    """
    return alignment(V, T, alpha=1)


@validate_params(
    {"V": ["array-like"], "T": ["array-like"], "alpha": [PositiveFinite()]},
    prefer_skip_nested_validation=True,
)
def alignment(V, T, alpha=2):
    r"""Alignment of matched pairs (Wang & Isola, 2020).

    .. math:: \mathcal{L}_{\mathrm{align}} = \frac{1}{n} \sum_i
        \lVert \hat v_i - \hat t_i \rVert_2^{\alpha}

    computed from the pair cosines as :math:`(2 - 2\cos(v_i, t_i))^{\alpha/2}`,
    so no difference array is formed. Lower is better aligned.

    Parameters
    ----------
    V, T : array-like of shape (n_samples, n_features)
        Row ``i`` of ``V`` and of ``T`` describe the same item.
    alpha : float, default=2
        Exponent, finite and ``> 0``.

    Returns
    -------
    float

    References
    ----------
    Wang & Isola (2020), "Understanding Contrastive Representation Learning
    through Alignment and Uniformity on the Hypersphere", ICML.
    """
    V, T = check_pair_blocks(V, T)
    sq = np.maximum(2.0 - 2.0 * pair_cosines(V, T), 0.0)
    return float(np.mean(sq ** (alpha / 2.0)))


@validate_params(
    {
        "E": ["array-like"],
        "t": [PositiveFinite()],
        "max_samples": [Interval(Integral, 2, None, closed="left"), None],
        "random_state": ["random_state"],
        "block_size": PositiveInt(),
    },
    prefer_skip_nested_validation=True,
)
def uniformity(E, t=2, *, max_samples=None, random_state=None, block_size=1024):
    r"""Uniformity of embeddings on the sphere (Wang & Isola, 2020).

    .. math:: \mathcal{L}_{\mathrm{unif}} = \log \frac{2}{n(n-1)}
        \sum_{i<j} \exp\!\big(-t \lVert \hat e_i - \hat e_j \rVert_2^2\big)

    Lower (more negative) is more uniform. The double sum is computed over
    blocks of at most ``block_size`` rows (at most 256 for NumPy input, whose
    blocks are shared among threads as BLAS allows), so memory
    stays at ``block_size x n`` values in the input precision rather than an
    ``n x n`` float64 matrix; with
    ``max_samples`` a random subset of rows (without replacement) estimates it.

    Parameters
    ----------
    E : array-like of shape (n_samples, n_features)
        Embeddings of one modality; at least two rows.
    t : float, default=2
        Temperature, finite and ``> 0``.
    max_samples : int or None, default=None
        Use at most this many rows, drawn with ``random_state``. ``None`` uses
        every row (exact, O(n^2 d) time).
    random_state : int, RandomState instance or None, default=None
        Seed of the subsample.
    block_size : int, default=1024
        Upper bound on the rows per block of the blocked double sum.

    Returns
    -------
    float, at most 0
    """
    E = check_block(E, "E", min_samples=2)
    n = E.shape[0]
    if max_samples is not None:
        if n > max_samples:
            rng = check_random_state(random_state)
            E = E[np.sort(rng.choice(n, size=max_samples, replace=False))]
            n = max_samples
    U = normalize_rows(E, "E")
    return _uniformity_of_unit_rows(U, t, block_size=block_size)


def _uniformity_of_unit_rows(U, t, block_size=1024, xp=np, acc=None):
    """Uniformity of rows already on the unit sphere (any array namespace).

    The double sum over pairs ``i < j`` runs over row blocks: block ``b``
    against itself and every later row. Within the square diagonal part the
    strict upper triangle is ``(sum - trace) / 2`` (the Gram block is
    symmetric), so no triangular mask is needed.
    """
    if xp is np and U.dtype in (np.float32, np.float64):
        return uniformities([U], t, block_size)[0]
    n = U.shape[0]
    acc = xp.float64 if acc is None else acc
    total = 0.0
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        w = stop - start
        G = xp.matmul(U[start:stop, ...], xp.permute_dims(U[start:, ...], (1, 0)))
        vals = xp.exp(-t * xp.clip(2.0 - 2.0 * G, 0.0, None))
        square = vals[:, :w]
        diag = xp.linalg.diagonal(square)
        upper = (float(xp.sum(square, dtype=acc)) - float(xp.sum(diag, dtype=acc))) / 2.0
        total += upper + float(xp.sum(vals[:, w:], dtype=acc))
    n_pairs = n * (n - 1) / 2.0
    return float(math.log(total / n_pairs))


#: Rows per block of the NumPy uniformity kernel: small enough that the
#: doubly computed diagonal squares cost little (a fraction ``b / (2k)`` of the
#: ``k^2 / 2`` pairs) and that the blocks spread evenly over threads, large
#: enough for an efficient GEMM.
_UNIFORMITY_BLOCK = 256


def uniformities(units, t, block_size=_UNIFORMITY_BLOCK):
    r"""Uniformity of each array of unit rows (NumPy), all blocks in one pass.

    With :math:`g_{ij} = u_i \cdot u_j`, each pair :math:`i < j` contributes
    :math:`\exp(-t \max(2 - 2 g_{ij}, 0)) = \exp(\min(2t\,g_{ij} - 2t, 0))`.
    Each row block ``b`` (at most ``_UNIFORMITY_BLOCK`` rows) is paired with
    itself and every later row: one BLAS GEMM writes :math:`2t\,g` directly
    (its ``alpha``) in the dtype of the rows, the shift, the clip and the
    exponential run in place (no temporaries), and the block's sum is taken
    in float64; in the square diagonal part the strict upper triangle is
    ``(sum - trace) / 2``. The blocks of all arrays are work items of one
    threaded pass (:func:`skgap._core._parallel.run_work_items`, one BLAS thread
    each); their sums are added in block order, so the result does not
    depend on the number of threads.

    Parameters
    ----------
    units : list of ndarray of shape (k, d), float32 or float64
        Unit rows; at least two per array.
    t : float
        Temperature.
    block_size : int
        Upper bound on the rows per block.

    Returns
    -------
    list of float
    """
    from scipy.linalg.blas import get_blas_funcs

    b = max(1, min(block_size, _UNIFORMITY_BLOCK))
    units = [np.ascontiguousarray(U) for U in units]
    gemms = [get_blas_funcs(("gemm",), (U,))[0] for U in units]
    items = [(m, start) for m, U in enumerate(units) for start in range(0, U.shape[0], b)]
    sums = np.zeros(len(items))
    two_t = 2.0 * float(t)

    def block_sum(i, _):
        m, start = items[i]
        U = units[m]
        stop = min(start + b, U.shape[0])
        w = stop - start
        gemm = gemms[m]
        # Rows start..k against rows start..stop: G[j, i] = 2t u_j . u_i, from
        # the Fortran-ordered views U.T (no copy for BLAS).
        G = gemm(two_t, U[start:].T, U[start:stop].T, trans_a=True)
        np.subtract(G, two_t, out=G)
        np.minimum(G, 0.0, out=G)
        np.exp(G, out=G)
        square = G[:w]
        upper = float(square.sum(dtype=np.float64)) - float(np.trace(square, dtype=np.float64))
        sums[i] = upper / 2.0 + float(G[w:].sum(dtype=np.float64))

    flops = sum(U.shape[0] ** 2 * U.shape[1] / 2 for U in units)
    run_work_items(len(items), 1, block_sum, flops=flops)
    out = []
    for m, U in enumerate(units):
        n = U.shape[0]
        total = float(sums[[i for i, (mm, _) in enumerate(items) if mm == m]].sum())
        out.append(float(math.log(total / (n * (n - 1) / 2.0))))
    return out


@validate_params(
    {"E": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def mean_within_cosine(E):
    r"""Mean cosine similarity between distinct embeddings of one modality.

    .. math:: \bar s = \frac{1}{n(n-1)} \sum_{i \neq j} \cos(e_i, e_j)
        = \frac{n R^2 - 1}{n - 1}

    where :math:`R` is the mean resultant length; computed in O(nd) from it.

    Parameters
    ----------
    E : array-like of shape (n_samples, n_features)
        At least two rows.

    Returns
    -------
    float in [-1/(n-1), 1]
    """
    E = check_block(E, "E", min_samples=2)
    return float(_within_cosine_from_mean(unit_mean(E, name="E"), E.shape[0]))


def _within_cosine_from_mean(mu, n):
    """Mean off-diagonal cosine from the unit mean(s) ``mu`` of ``n`` rows."""
    mu = np.asarray(mu)
    return within_cosine_from_length(np.sqrt(np.sum(mu * mu, axis=-1)), n)


def within_cosine_from_length(R, n, xp=np):
    """Mean off-diagonal cosine of ``n`` unit rows of mean resultant length ``R``."""
    # Rounding can push identical rows a hair above 1.
    return xp.clip((n * R**2 - 1.0) / (n - 1), -1.0, 1.0)


def relative_gap_from_cosines(mean_pair_cos, within_v, within_t):
    """RMG from its three cosine summaries (see relative_modality_gap)."""
    m = max(1.0 - (mean_pair_cos + 1.0) / 2.0, 1e-3)
    s_v = 1.0 - (within_v + 1.0) / 2.0
    s_t = 1.0 - (within_t + 1.0) / 2.0
    return float(m / (m + (s_v + s_t) / 2.0))


@validate_params(
    {"V": ["array-like"], "T": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def relative_modality_gap(V, T):
    r"""Relative modality gap (Schrodi et al., 2024).

    The gap between modalities measured against the spread within them:

    .. math::

        m = \max\!\Big(1 - \frac{\bar c + 1}{2},\ 10^{-3}\Big), \qquad
        s_X = 1 - \frac{\bar s_X + 1}{2}, \qquad
        \mathrm{RMG} = \frac{m}{m + (s_V + s_T)/2}

    with :math:`\bar c` the mean matched-pair cosine
    (:func:`mean_pair_cosine`) and :math:`\bar s_X` the mean off-diagonal
    within-modality cosine (:func:`mean_within_cosine`).

    Parameters
    ----------
    V, T : array-like of shape (n_samples, n_features)
        Row ``i`` of ``V`` and of ``T`` describe the same item.

    Returns
    -------
    float in (0, 1]

    References
    ----------
    Schrodi et al. (2024), "Two Effects, One Trigger: On the Modality Gap,
    Object Bias, and Information Imbalance in Contrastive Vision-Language
    Representation Learning".
    """
    V, T = check_pair_blocks(V, T, min_samples=2)
    return relative_gap_from_cosines(mean_pair_cosine(V, T), mean_within_cosine(V), mean_within_cosine(T))


@validate_params(
    {"V": ["array-like"], "T": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def gap_principal_cosine(V, T):
    r"""How well the gap lines up with the first principal axis of the data.

    .. math::

        |\cos(\Delta, u_1)|, \qquad u_1 = \arg\max_{\lVert u \rVert = 1}
        u^\top C u, \qquad
        C = \frac{1}{2n} \sum_{e \in \hat V \cup \hat T} (e - \bar e)(e - \bar e)^\top

    where :math:`C` is the covariance of the pooled unit embeddings of both
    modalities. The cone-effect paper finds the gap lies along :math:`u_1`
    (values near 1).

    Parameters
    ----------
    V : array-like of shape (n_samples_v, n_features)
    T : array-like of shape (n_samples_t, n_features)

    Returns
    -------
    float in [0, 1]
    """
    V = check_block(V, "V")
    T = check_block(T, "T")
    if V.shape[1] != T.shape[1]:
        raise ValueError(
            f"V has {V.shape[1]} columns but T has {T.shape[1]}; pooling needs one "
            "shared space."
        )
    inv_v = inverse_norms(V, "V")
    inv_t = inverse_norms(T, "T")
    return _gap_principal_cosine(V, T, inv_v, inv_t)


def _gap_principal_cosine(V, T, inv_v, inv_t, mu_v=None, mu_t=None):
    if mu_v is None:
        mu_v = unit_mean(V, inv_v)
    if mu_t is None:
        mu_t = unit_mean(T, inv_t)
    n = V.shape[0] + T.shape[0]
    pooled_mean = (V.shape[0] * mu_v + T.shape[0] * mu_t) / n
    C = unit_second_moment([(V, inv_v), (T, inv_t)]) / n - np.outer(pooled_mean, pooled_mean)
    return _cosine_with_top_axis(C, mu_v - mu_t)


def _cosine_with_top_axis(C, delta):
    """``|cos(delta, u1)|`` with ``u1`` the top eigenvector of the symmetric ``C``.

    Only the top eigenpair is computed: by Lanczos iteration (ARPACK, to
    machine precision, started from ``delta`` itself, which the cone effect
    puts close to ``u1``) for ``d > 64``, else by a dense LAPACK solve. The
    full spectrum costs O(d^3); this costs a few ``d x d`` matrix-vector
    products.
    """
    delta = np.asarray(delta, dtype=np.float64)
    norm = np.linalg.norm(delta)
    if norm == 0:
        return 0.0
    d = C.shape[0]
    if d > 64:
        from scipy.sparse.linalg import eigsh

        _, vecs = eigsh(C, k=1, which="LA", v0=delta / norm, tol=0)
    else:
        _, vecs = linalg.eigh(C, subset_by_index=[d - 1, d - 1])
    u1 = vecs[:, 0]
    return float(min(abs(u1 @ delta) / norm, 1.0))


def _sample_gap_principal_cosine(U0, U1, delta, xp=np):
    """:func:`gap_principal_cosine` of the unit rows ``U0, U1`` of a row sample.

    ``delta`` is the gap of the whole data; only the principal axis comes from
    the sample. Works in any array namespace; the ``d x d`` covariance is
    formed in the widest float of the sample's device.
    """
    if xp is np:
        n = U0.shape[0] + U1.shape[0]
        pooled = (U0.sum(axis=0, dtype=np.float64) + U1.sum(axis=0, dtype=np.float64)) / n
        C = unit_second_moment([(U0, None), (U1, None)]) / n - np.outer(pooled, pooled)
        # A 512 x 512 Lanczos is too small for BLAS threads (they only wait).
        with one_blas_thread():
            return _cosine_with_top_axis(C, np.asarray(delta, dtype=np.float64))
    acc = delta.dtype
    Z = xp.astype(xp.concat([U0, U1], axis=0), acc)
    Z = Z - xp.mean(Z, axis=0)
    C = xp.matmul(xp.permute_dims(Z, (1, 0)), Z) / Z.shape[0]
    _, vecs = xp.linalg.eigh(C)
    u1 = vecs[:, -1]
    norm = float(xp.linalg.vector_norm(delta))
    if norm == 0:
        return 0.0
    return float(min(abs(float(xp.vecdot(u1, delta))) / norm, 1.0))


# Unvalidated twins for skgap's own loops (a sweep calls these once per fit):
# @validate_params binds the signature on every call.
_mean_resultant_length = mean_resultant_length.__wrapped__
_modality_gap = modality_gap.__wrapped__
