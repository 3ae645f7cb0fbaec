r"""Private numerical kernels on the unit sphere, shared by metrics and estimators.

They read each array once and never upcast a float32 array to float64 as a
whole: reductions run over row chunks in the input precision and the partial
results are accumulated in float64.

**Scale-safe norms.** Every statistic here depends on the direction of each
row only, so it must give the same answer for ``c * X`` as for ``X``. A squared
sum overflows for float32 entries near 1e19 (float64: 1e154) and underflows
near 1e-19 (1e-154). Like LAPACK's ``nrm2``, the kernels therefore take a row's
norm as :math:`\lVert x \rVert = a \lVert x / a \rVert` with
:math:`a = \max_j |x_j|` -- but only where it is needed: the squared sums are
first taken in the input dtype, and when every one lies in the safe range
:math:`[\mathrm{tiny}/\epsilon,\ \mathrm{max}]` (see :func:`safe_sq_range`)
nothing can have overflowed (every partial sum is at most the total) and what
underflowed is below a relative :math:`d\,2^{-46}` of the total, so the fast
value is exact to rounding. Rows (or row tiles, in the fused kernels) outside
that range are redone from ``x / a``. A row is "zero" only when all its
entries are exactly zero.
"""

import contextlib
import os
import threading

import numpy as np
from sklearn.utils import check_array

from ._array_api import is_numpy, namespace_of, scale_safe_rows, to_numpy

# Rows per chunk in chunked reductions: 8192 rows x 512 float32 = 16 MiB.
CHUNK_ROWS = 8192


def check_block(E, name="E", *, min_samples=1):
    """Validate one modality block: 2-D, floating, finite, enough rows."""
    E = check_array(
        E,
        dtype=[np.float64, np.float32],
        ensure_min_samples=min_samples,
        input_name=name,
    )
    return E


def check_pair_blocks(V, T, names=("V", "T"), *, min_samples=1, same_width=True):
    """Validate two blocks describing the same pairs, row for row."""
    V = check_block(V, names[0], min_samples=min_samples)
    T = check_block(T, names[1], min_samples=min_samples)
    if V.shape[0] != T.shape[0]:
        raise ValueError(
            f"{names[0]} has {V.shape[0]} rows but {names[1]} has {T.shape[0]}; "
            "paired blocks need one row per pair in both."
        )
    if same_width and V.shape[1] != T.shape[1]:
        raise ValueError(
            f"{names[0]} has {V.shape[1]} columns but {names[1]} has {T.shape[1]}; "
            "gap statistics compare vectors of one shared space, so both blocks "
            "need the same width (map one space into the other first, e.g. with "
            "AnchorAffineAligner)."
        )
    return V, T


def safe_sq_range(dtype):
    r"""``(lo, hi)``: squared row sums in this range are free of over/underflow.

    ``hi`` is the largest finite value: a finite sum of non-negative terms
    had no partial sum above it. ``lo = tiny / eps``: each term that underflowed
    lost less than the smallest subnormal, so ``d`` of them change a total
    of at least ``lo`` by a relative :math:`d\,\epsilon\,2^{-p}` at most
    (:math:`d\,2^{-46}` in float32), far below rounding.
    """
    fi = np.finfo(dtype)
    return float(fi.tiny) / float(fi.eps), float(fi.max)


def max_abs_scaled(B):
    """``(B / a, a)`` with ``a_i = max_j |B_ij|`` (rows of zeros are divided by 1).

    The scaled rows have entries in [-1, 1] and at least one entry of +-1, so
    their squared sums lie in ``[1, d]``: no overflow, no underflow.
    """
    a = np.max(np.abs(B), axis=1) if B.shape[1] else np.zeros(B.shape[0], B.dtype)
    safe = np.where(a > 0, a, 1).astype(B.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        return B / safe[:, None], a


def row_norms(E):
    """Euclidean norm of each row, in the dtype of ``E``, without over/underflow.

    The squared sums are taken in the dtype of ``E``; rows whose squared sum
    left :func:`safe_sq_range` are redone as ``a * ||E_i / a||`` with
    ``a = max |E_i|`` (module docstring). Zero rows give 0, rows with a NaN or
    inf entry a non-finite norm.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        sq = _row_dots(E, E)
    lo, hi = safe_sq_range(E.dtype)
    redo = ~((sq >= lo) & (sq <= hi))
    norms = np.sqrt(sq, out=sq)
    if redo.any():
        idx = np.flatnonzero(redo)
        U, a = max_abs_scaled(E[idx])
        with np.errstate(over="ignore", invalid="ignore"):
            norms[idx] = a * np.sqrt(_row_dots(U, U))
    return norms


def check_nonzero_norms(norms, name="E", offset=0):
    """Raise a ValueError naming the rows whose norm is zero (or not finite).

    ``offset`` is added to the row numbers shown (for a block of a larger array).
    """
    bad = ~(norms > 0)  # exactly zero, or NaN
    if bad.any():
        idx = np.flatnonzero(bad) + offset
        raise ValueError(
            f"{name} has {idx.size} row(s) with zero norm (rows {_shown(idx)}); such rows "
            "have no direction and cannot be projected onto the unit sphere. "
            "Remove them or fix the embeddings."
        )
    big = np.isinf(norms)
    if big.any():
        idx = np.flatnonzero(big) + offset
        raise ValueError(
            f"{name} has {idx.size} row(s) whose norm overflows {norms.dtype} (rows "
            f"{_shown(idx)}); rescale the embeddings or pass them as float64."
        )


def _shown(idx):
    return ", ".join(map(str, idx[:10])) + (", ..." if idx.size > 10 else "")


def inverse_norms(E, name="E"):
    """``1 / ||e_i||`` for every row, after checking that no row is zero."""
    norms = row_norms(E)
    check_nonzero_norms(norms, name)
    return np.reciprocal(norms, out=norms)


def normalize_rows(E, name="E", out=None):
    """Return ``E`` with every row scaled to unit Euclidean norm.

    Rows whose norm or its reciprocal is not a normal number of the dtype
    (norms below ``4 tiny`` or above ``1 / (4 tiny)``) are divided by their
    max-abs entry first, so no row loses precision to a subnormal factor.
    """
    norms = row_norms(E)
    check_nonzero_norms(norms, name)
    tiny4 = 4 * float(np.finfo(E.dtype).tiny)
    odd = ~((norms > tiny4) & (norms < 1.0 / tiny4))
    with np.errstate(over="ignore"):  # odd rows are redone below
        inv = np.reciprocal(norms, out=norms)
    if not odd.any():
        return np.multiply(E, inv[:, None], out=out)
    idx = np.flatnonzero(odd)
    U, _ = max_abs_scaled(E[idx])
    U /= np.sqrt(_row_dots(U, U))[:, None]
    inv[idx] = 0
    out = np.multiply(E, inv[:, None], out=out)
    out[idx] = U
    return out


def weighted_row_sum(E, w):
    """``sum_i w_i e_i`` accumulated in float64 over chunks of rows.

    Each chunk is a matrix-vector product in the precision of ``E`` (no copy of
    ``E``); chunk results are summed in float64.
    """
    total = np.zeros(E.shape[1], dtype=np.float64)
    w = np.asarray(w, dtype=E.dtype)
    for start in range(0, E.shape[0], CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        total += w[start:stop] @ E[start:stop]
    return total


def unit_mean(E, inv_norms=None, name="E"):
    """Mean of the L2-normalised rows of ``E``, as a float64 vector."""
    if inv_norms is None:
        inv_norms = inverse_norms(E, name)
    return weighted_row_sum(E, inv_norms) / E.shape[0]


def pair_cosines(V, T, inv_v=None, inv_t=None):
    """Cosine similarity of each matched pair ``(v_i, t_i)``, as float64."""
    if inv_v is None:
        inv_v = inverse_norms(V, "V")
    if inv_t is None:
        inv_t = inverse_norms(T, "T")
    # (v / ||v||) . t chunk by chunk: v . t itself can overflow (|v||t| > max).
    dots = np.empty(V.shape[0], dtype=np.float64)
    for start in range(0, V.shape[0], CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        U = V[start:stop] * np.asarray(inv_v[start:stop, None], dtype=V.dtype)
        dots[start:stop] = _row_dots(U, T[start:stop])
    cos = dots * inv_t
    # Rounding can push |cos| a hair above 1; distances below use 2 - 2 cos.
    return np.clip(cos, -1.0, 1.0, out=cos)


#: Rows at least per work item of :func:`unit_second_moment`.
MOMENT_ROWS = 2048


def unit_second_moment(blocks_and_inv):
    """``sum_i e_i e_i^T`` over the unit rows of several blocks, in float64.

    Each block is cut into at most two runs of at least :data:`MOMENT_ROWS`
    rows, the work items of one threaded pass (:func:`run_work_items`): a
    run adds the products ``U^T U`` of its chunks of :data:`CHUNK_ROWS` unit
    rows (in the dtype of the block) into its own float64 partial, and the
    partials are added in item order, so the result does not depend on the
    number of threads. At most two ``d x d`` partials per block, and one
    scaled chunk per thread, are held at a time.

    Parameters
    ----------
    blocks_and_inv : iterable of (E, inv_norms)
        Rows and their inverse norms; ``inv_norms`` None when the rows are
        unit rows already.
    """
    pairs = list(blocks_and_inv)
    items = [
        (E, inv, a, min(a + step, E.shape[0]))
        for E, inv in pairs
        for step in [max(MOMENT_ROWS, -(-E.shape[0] // 2))]
        for a in range(0, E.shape[0], step)
    ]
    d = pairs[0][0].shape[1]
    parts = np.zeros((len(items), d, d))

    def moment(i, _):
        E, inv, a, b = items[i]
        for start in range(a, b, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, b)
            U = E[start:stop]
            if inv is not None:
                U = U * inv[start:stop, None].astype(E.dtype)
            parts[i] += U.T @ U

    run_work_items(len(items), 1, moment, flops=sum(E.size for E, _ in pairs) * d)
    return parts.sum(axis=0)


# ---------------------------------------------------------------------------
# Fused row-tile kernels
#
# The kernels below read each row of X once from memory: a tile of rows small
# enough to stay in cache is loaded, every per-row quantity (norm, dot
# product with a shift) is computed from it, and the output tile is written in
# one go. Per-row scalars are computed in float64 (they are n x M values, not
# n x d); the big arrays stay in their own precision.
#
# A pass over many tiles is split into work items of WORK_TILES tiles, which
# the calling thread and up to (BLAS threads - 1) helper threads take in turn
# (NumPy and BLAS release the GIL inside each tile's operations, so the
# threads overlap). Each work item writes its own rows or its own partial
# sums, and partial sums are added in work-item order: the result does not
# depend on the number of threads.
# ---------------------------------------------------------------------------

#: Bytes of input per row tile of the fused kernels: 512 rows of 2 x 512
#: float32. A tile and its output stay in the last-level cache (two threads:
#: 8 MiB); tiles of 0.5-1 MiB, which fit a 1 MiB L2, were measured slower:
#: every tile costs some twenty NumPy calls of fixed overhead.
TILE_BYTES = 1 << 21

#: Bytes per tile when a kernel is called from a thread other than the main
#: one (a dask or joblib worker thread). There the BLAS limit cannot be set
#: (it is process-wide), and OpenBLAS runs a GEMM above 65536 x 4
#: multiply-adds on all its threads: with 2 MiB tiles the tiles' rank update
#: went multi-threaded inside every dask worker and a dask transform ran 20x
#: slower. 128 rows of 2 x 512 float32 keep it under that size.
WORKER_TILE_BYTES = 1 << 19

#: Tiles per work item of a threaded pass (8 MiB of input at the default tile).
WORK_TILES = 4

# Below this value of q = ||u + s||^2 the closed form 1 + 2 u.s + ||s||^2 loses
# too many digits to cancellation; such (rare) rows are recomputed explicitly.
_Q_EXPLICIT = 1e-2
_SQRT_Q_EXPLICIT = _Q_EXPLICIT**0.5


class InvalidRowsError(ValueError):
    """Raised by a fused kernel when a tile holds a row it cannot process.

    Callers catch it and replay the reference validation over the whole input,
    which raises the precise, user-facing error (NaN, zero-norm rows, ...).
    """


def tile_rows(n_features, itemsize):
    """Rows per tile so that one tile of ``n_features`` columns holds ``TILE_BYTES``.

    Off the main thread the tile holds at most ``WORKER_TILE_BYTES``.
    """
    budget = TILE_BYTES
    if threading.current_thread() is not threading.main_thread():
        budget = min(budget, WORKER_TILE_BYTES)
    return max(16, budget // max(1, n_features * itemsize))


_blas_controller = None


def _blas():
    """The BLAS pools of this process (threadpoolctl, looked up once)."""
    global _blas_controller
    if _blas_controller is None:
        import scipy.linalg.blas  # noqa: F401 - its BLAS (the tiles' GEMM) must be seen
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller


def blas_one_thread():
    """Context manager: every BLAS pool at one thread (cheaper than threadpool_limits).

    The limit is process-wide and restored on exit, so only the main thread
    sets it: two threads entering and leaving it in turn could restore each
    other's limit and leave BLAS on one thread for good. Elsewhere (a dask or
    joblib worker thread) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _blas().limit(limits=1)


def pass_threads(n_items):
    """Threads for a pass of ``n_items`` work items: 1, or what BLAS is allowed.

    The pass follows the BLAS thread limit, so ``threadpool_limits(1)`` (and
    :func:`skgap._threads.run_fits`, joblib's workers) keep it on one thread.
    Called from any thread other than the main one (a dask or joblib worker,
    a user's pool) it stays on that thread, so that it never nests threads
    inside someone else's.
    """
    if n_items < 2 or threading.current_thread() is not threading.main_thread():
        return 1
    limits = [lib.num_threads for lib in _blas().lib_controllers]
    if not limits:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(n_items, cpus, *limits))


#: Fewer multiply-adds than this in a whole pass: not worth starting threads
#: (a thread start costs 0.1-1 ms on a busy machine).
MIN_THREADED_FLOPS = 5e7


def run_work_items(n, item_rows, fn, flops=None, threads=None):
    """Call ``fn(start, stop)`` for each run of ``item_rows`` rows of ``0 .. n``.

    ``flops``, when given, is the work of the whole pass (multiply-adds); below
    :data:`MIN_THREADED_FLOPS` the pass stays on the calling thread.
    ``threads``, when given, replaces :func:`pass_threads`: a caller that
    already holds BLAS at one thread (inside :func:`skgap._threads.run_fits`)
    passes the count it was allowed before.

    The items are shared among :func:`pass_threads` threads (the caller's
    included), each taking the next free item. Inside the pass every BLAS call
    is limited to one thread (the threads are the parallelism, and a BLAS
    call rounds the same on any number of threads). The first exception of
    any thread is re-raised here once all have stopped.
    """
    starts = range(0, n, item_rows)
    small = flops is not None and flops < MIN_THREADED_FLOPS
    if threads is not None:
        n_threads = max(1, min(int(threads), len(starts)))
    else:
        n_threads = 1 if small else pass_threads(len(starts))
    if n_threads == 1:
        # BLAS on one thread here too: a multi-threaded GEMM may round
        # differently, and the result must not depend on the threads.
        with blas_one_thread():
            for a in starts:
                fn(a, min(a + item_rows, n))
        return
    items = iter(starts)
    lock = threading.Lock()
    errors = []

    def work():
        try:
            while not errors:
                with lock:
                    a = next(items, None)
                if a is None:
                    return
                fn(a, min(a + item_rows, n))
        except BaseException as exc:  # re-raised in the caller below
            errors.append(exc)

    with blas_one_thread():
        helpers = [threading.Thread(target=work) for _ in range(n_threads - 1)]
        for t in helpers:
            t.start()
        work()
        for t in helpers:
            t.join()
    if errors:
        raise errors[0]


def block_shift_matrix(slices, shifts, n_features, dtype):
    """Stack per-block shifts into an ``(M, n_features)`` block-diagonal matrix.

    Row ``m`` holds ``shifts[m]`` in the columns of block ``m`` and zeros
    elsewhere, so that ``coef @ S`` adds ``coef[i, m] * s_m`` to block ``m`` of
    row ``i`` for all blocks at once (one small GEMM).
    """
    S = np.zeros((len(slices), n_features), dtype=dtype)
    for m, (sl, s) in enumerate(zip(slices, shifts)):
        S[m, sl] = s
    return S


def _rank_update(O):
    """``update(tile, coef, S)``: ``tile += coef @ S`` in place, for row runs of ``O``.

    One BLAS GEMM per tile when ``O`` is C-contiguous (the GEMM function is
    looked up once per pass), else a NumPy product.
    """
    if not O.flags.c_contiguous:

        def update(tile, coef, S):
            tile += coef @ S

        return update
    from scipy.linalg.blas import get_blas_funcs

    (gemm,) = get_blas_funcs(("gemm",), (O,))

    def update(tile, coef, S):
        # tile.T is Fortran-ordered, which is what BLAS updates in place.
        tT = tile.T
        res = gemm(1.0, S.T, coef.T, beta=1.0, c=tT, overwrite_c=True)
        if res is not tT:
            tile[...] = res.T  # pragma: no cover - BLAS made a copy

    return update


_vecdot = getattr(np, "vecdot", None)  # NumPy >= 2.0: a gufunc, faster than einsum


def _row_dots(A, B, out=None):
    """``sum_j A[i, j] * B[i, j]`` for every row (in the dtype of the inputs)."""
    if _vecdot is not None:
        return _vecdot(A, B, out=out)
    return np.einsum("...j,...j->...", A, B, out=out)  # pragma: no cover - NumPy < 2


def _block_sq_norms(T, slices, width):
    """Squared norm of every block of every row of the tile, shape ``(k, M)``.

    One call on the ``(k, M, d)`` view when the blocks tile a C-contiguous
    row, else one call per block. In the dtype of ``T``.
    """
    k = T.shape[0]
    if width is not None:
        T3 = T.reshape(k, len(slices), width)
        return _row_dots(T3, T3)
    return np.stack([_row_dots(T[:, sl], T[:, sl]) for sl in slices], axis=1)


def _equal_width(X, slices):
    """The common block width if ``X`` rows are C-contiguous runs of equal blocks."""
    widths = {sl.stop - sl.start for sl in slices}
    if len(widths) == 1 and X.flags.c_contiguous and slices[-1].stop == X.shape[1]:
        return widths.pop()
    return None


def _safe_tile(T, slices, width, lo, hi):
    """The tile and its squared block norms (in its dtype), scaled where needed.

    The fast path squares the tile in its own dtype. When any squared norm left
    ``[lo, hi]`` (:func:`safe_sq_range`: huge or tiny entries, a zero row, a
    NaN), every block row of the tile is divided by its max-abs entry (a
    tile-sized copy): the directions -- all the fused kernels use -- are
    unchanged, and the squared norms land in ``[1, d]``. Zero and non-finite
    rows raise :class:`InvalidRowsError`.
    """
    sq = _block_sq_norms(T, slices, width)
    if sq.min() >= lo and sq.max() <= hi:  # NaN compares False
        return T, sq
    if not np.isfinite(T).all():
        raise InvalidRowsError("non-finite entries")
    U = np.empty(T.shape, dtype=T.dtype)
    for sl in slices:
        B, a = max_abs_scaled(T[:, sl])
        if not (a > 0).all():
            raise InvalidRowsError("zero-norm rows")
        U[:, sl] = B
    return U, _block_sq_norms(U, slices, _equal_width(U, slices))


def shift_rows(X, slices, shifts, out=None):
    r"""Fused gap shift of every block: ``(x/||x|| + s_m) / ||x/||x|| + s_m||``.

    For a row ``x`` of block ``m`` with norm :math:`r = \lVert x \rVert` and
    unit direction :math:`u = x / r`,

    .. math:: \lVert u + s \rVert^2 = 1 + 2\,u\cdot s + \lVert s \rVert^2 = q,
        \qquad \text{out} = \frac{x}{r\sqrt q} + \frac{s}{\sqrt q},

    so each row needs its norm and one dot product, and the output is written
    once as ``alpha * x + beta * s`` (a row scaling and a rank-``M`` GEMM
    update on a tile that is still in cache). Tiles are shared among threads
    (:func:`run_work_items`); every output row depends on its input row only,
    so the result does not depend on the number of threads.

    Parameters
    ----------
    X : ndarray of shape (n, sum d_m), float32 or float64
    slices : sequence of slice
        Column slice of each block.
    shifts : array-like of shape (M, d)
        Shift of each block (cast to ``X.dtype``).
    out : ndarray, optional
        Output array of the shape and dtype of ``X``.

    Returns
    -------
    out : ndarray

    Raises
    ------
    InvalidRowsError
        When a row has non-finite entries, zero norm, or zero norm after the
        shift. The caller replays the reference validation for the message.
    """
    dtype = X.dtype
    n, D = X.shape
    S = block_shift_matrix(slices, shifts, D, dtype)
    if out is None:
        out = np.empty((n, D), dtype=dtype)
    width = _equal_width(X, slices)
    # With equal blocks the dot products u . s_m are one vecdot on the
    # (k, M, d) view against the (M, d) shifts: faster than a GEMM of M columns.
    Sb = None if width is None else np.stack([S[m, sl] for m, sl in enumerate(slices)])
    plan = dict(
        slices=slices,
        S=S,
        c=1.0 + _row_dots(S, S).astype(np.float64),  # q = 2 u.s + (1 + ||s||^2)
        width=width,
        Sb=Sb,
        update=_rank_update(out),
        lohi=safe_sq_range(dtype),
    )
    rows = tile_rows(D, dtype.itemsize)

    def shift_item(a, b):
        with np.errstate(over="ignore", invalid="ignore"):  # bad rows are flagged
            for t in range(a, b, rows):
                _shift_tile(X[t : min(t + rows, b)], out[t : min(t + rows, b)], **plan)

    run_work_items(n, WORK_TILES * rows, shift_item)
    return out


def _shift_tile(T, O, slices, S, c, width, Sb, update, lohi):
    """One tile of :func:`shift_rows` (T and O in cache)."""
    T, sq = _safe_tile(T, slices, width, *lohi)
    norms = np.sqrt(sq, dtype=np.float64)
    if Sb is not None:
        q = _row_dots(T.reshape(T.shape[0], len(slices), width), Sb) / norms
    else:
        q = T @ S.T / norms
    q *= 2.0
    q += c
    beta = np.sqrt(q)
    if not beta.min() >= _SQRT_Q_EXPLICIT:
        _shift_tile_with_explicit_rows(T, O, slices, S, norms, q, update)
        return
    np.reciprocal(beta, out=beta)
    # alpha = beta / r, computed in float64 and rounded once to the dtype.
    alpha = np.empty(beta.shape, dtype=T.dtype)
    np.divide(beta, norms, out=alpha, casting="same_kind")
    if width is not None and O.flags.c_contiguous:
        k = T.shape[0]
        M = len(slices)
        np.multiply(T.reshape(k, M, width), alpha[:, :, None], out=O.reshape(k, M, width))
    else:
        for m, sl in enumerate(slices):
            np.multiply(T[:, sl], alpha[:, m, None], out=O[:, sl])
    update(O, beta.astype(T.dtype), S)


def _shift_tile_with_explicit_rows(T, O, slices, S, norms, q, update):
    """A tile holding rows with ``q`` near 0: closed form elsewhere, explicit there."""
    explicit = q < _Q_EXPLICIT
    beta = 1.0 / np.sqrt(np.maximum(q, _Q_EXPLICIT))
    alpha = (beta / norms).astype(T.dtype)
    for m, sl in enumerate(slices):
        np.multiply(T[:, sl], alpha[:, m, None], out=O[:, sl])
    update(O, beta.astype(T.dtype), S)
    _shift_explicitly(T, O, slices, S, norms, explicit)


def _shift_explicitly(T, O, slices, S, norms, mask):
    """Redo the rows of ``mask`` as normalise, add, renormalise (no closed form)."""
    tiny = np.finfo(T.dtype).tiny
    for r, m in zip(*np.nonzero(mask)):
        sl = slices[m]
        v = T[r, sl] / T.dtype.type(norms[r, m]) + S[m, sl]
        nv = np.sqrt(np.dot(v, v))
        if not nv > tiny:
            raise InvalidRowsError("zero norm after the shift")
        O[r, sl] = v / nv


#: Weight of each block's shift for ``side``: one side moves twice as far.
SIDE_WEIGHTS = {"both": (1.0, 1.0), "image": (2.0, 0.0), "text": (0.0, 2.0)}


def side_weights(side, n_modalities):
    """Per-block weights of the shift for ``side`` ('both', 'image', 'text').

    ``'image'`` and ``'text'`` name the two blocks of ``[V | T]``, so they need
    exactly two modalities.
    """
    if side == "both":
        return np.ones(n_modalities)
    if n_modalities != 2:
        raise ValueError(
            f"side={side!r} moves one block of a [V | T] pair, but X has "
            f"{n_modalities} modality blocks; use side='both'."
        )
    return np.asarray(SIDE_WEIGHTS[side])


def gap_shift_directions(centroids, direction="raw", side="both", xp=np, device=None):
    r"""Per-modality shift vectors for ``lam = 1``.

    Each modality moves toward the mean of the modality centroids
    :math:`\bar\mu = \frac{1}{M}\sum_m \mu_m`:

    - ``'raw'``: :math:`s_m = \bar\mu - \mu_m`;
    - ``'unit'``: :math:`s_m = (\bar\mu - \mu_m) / (2 \lVert \bar\mu - \mu_m \rVert)`
      (zero where a centroid already sits at the mean).

    For two modalities ``'raw'`` gives :math:`s_V = -\Delta/2`,
    :math:`s_T = +\Delta/2` and ``'unit'`` gives :math:`\mp \Delta/(2\lVert\Delta\rVert)`.

    ``side='text'`` moves the text block alone, twice as far:
    :math:`s_V = 0, s_T = 2 (\bar\mu - \mu_T)` (``+\Delta`` for ``'raw'``, so
    ``lam = 1`` carries the text centroid onto the image centroid);
    ``side='image'`` is the mirror.

    Parameters
    ----------
    centroids : array of shape (n_modalities, d)
    direction : {'raw', 'unit'}
    side : {'both', 'image', 'text'}, default='both'
    xp : array namespace, default=numpy
    device : device, default=None
        Device of the result; ``None`` keeps that of ``centroids``.

    Returns
    -------
    array of shape (n_modalities, d)
        float64 ndarray for NumPy; in ``xp`` on ``device`` (dtype of
        ``centroids``) otherwise.
    """
    if is_numpy(xp):
        xp, C = np, np.asarray(centroids, dtype=np.float64)
    else:
        C = xp.asarray(centroids, device=device)
        device = namespace_of(C)[1]
    s = xp.mean(C, axis=0, keepdims=True) - C
    if direction == "unit":
        norms = xp.linalg.vector_norm(s, axis=1, keepdims=True)
        s = xp.where(norms > 0, s / (2.0 * xp.where(norms > 0, norms, 1.0)), 0.0)
    w = side_weights(side, C.shape[0])
    return s * xp.asarray(w[:, None], dtype=s.dtype, device=device)


def shift_block(B, shift, out=None, name="block"):
    r"""Return ``(b_i / ||b_i|| + shift) / ||.||`` for every row ``b_i`` of ``B``.

    The result is written in the dtype of ``B``. For a unit row ``u`` the norm
    of ``u + s`` is :math:`\sqrt{1 + 2 u \cdot s + \lVert s \rVert^2}`, so each
    row needs only its own norm and one dot product with ``s``; the output is
    written once, tile by tile (see :func:`shift_rows`).
    """
    B = np.asarray(B)
    return shift_paired(B, (slice(0, B.shape[1]),), [shift], (name,), out=out)


def shift_paired(X, slices, shifts, names, *, estimator=None, out=None):
    """:func:`shift_block` of every block of ``X`` at once, in one fused pass.

    On an invalid row (NaN, zero norm before or after the shift) the reference
    checks are replayed so the error names the row and its block (``names``).
    """
    try:
        return shift_rows(X, slices, shifts, out=out)
    except InvalidRowsError:
        replay_row_errors(X, slices, names, estimator=estimator, shifts=shifts)


def shift_paired_xp(X, slices, shifts, names, xp):
    r""":func:`shift_paired` in any array namespace (whole-block operations, one output).

    Every unit row :math:`u = x / \lVert x \rVert` of block :math:`m` becomes
    :math:`(u + s_m) / \lVert u + s_m \rVert`. Each block is first made
    scale-safe (:func:`skgap._array_api.scale_safe_rows`), so a float32 row of
    1e30 (or 1e-30) entries gives the answer of the unscaled row. With
    :math:`q = \lVert u + s \rVert^2 = 1 + 2\,u \cdot s + \lVert s \rVert^2`
    the output is :math:`x / (\lVert x \rVert \sqrt q) + s / \sqrt q`; where
    :math:`q` nearly cancels (:math:`q \le 10^{-2}`) the block is redone as
    normalise, add, renormalise.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), namespace ``xp``
    slices : sequence of slice
        Column block of each modality.
    shifts : sequence of arrays of shape (d_m,)
        :math:`s_m` for each block, in ``xp`` on the device of ``X``.
    names : sequence of str
        Block names for the error messages.
    xp : array namespace

    Returns
    -------
    array of the shape, dtype, namespace and device of ``X``

    Raises
    ------
    ValueError
        Naming the first row that is not finite or has zero norm, before or
        after the shift (:func:`replay_row_errors` on a NumPy copy).
    """
    out = xp.empty_like(X)
    tiny = float(xp.finfo(X.dtype).smallest_normal)
    for sl, s in zip(slices, shifts):
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


def paired_unit_sums(X, slices, *, pairs=True):
    r"""One pass of the sufficient statistics of the cone and gap statistics.

    For unit rows :math:`u_{im} = x_{im} / \lVert x_{im} \rVert` of each block
    :math:`m` and the pair cosines :math:`c_{im} = u_{i0} \cdot u_{im}`:

    .. math:: \Sigma_m = \sum_i u_{im}, \qquad
        \Big(\sum_i c_{im},\ \sum_i \sqrt{2 - 2 c_{im}},\ \sum_i (2 - 2 c_{im})\Big)

    Each row tile's norms, pair dot products and weighted row sum are taken
    while it is in cache (tile products in the precision of ``X``, partial
    sums in float64); the per-row float64 work (cosines, distances) is done
    once per work item. Work items may run on several threads
    (:func:`run_work_items`); their partial sums are added in item order, so
    the result does not depend on the number of threads.

    Returns
    -------
    sums : ndarray of shape (M, d), float64
    pair_sums : ndarray of shape (M - 1, 3), float64
        Zeros when ``pairs`` is False.

    Raises
    ------
    InvalidRowsError
        On non-finite entries or zero-norm rows.
    """
    dtype = X.dtype
    n, D = X.shape
    M = len(slices)
    d = slices[0].stop - slices[0].start
    width = _equal_width(X, slices)
    lohi = safe_sq_range(dtype)
    rows = tile_rows(D, dtype.itemsize)
    item_rows = WORK_TILES * rows
    n_items = -(-n // item_rows)
    item_sums = np.zeros((n_items, M, d))
    item_pairs = np.zeros((n_items, max(M - 1, 0), 3))

    def sum_item(a, b):
        i = a // item_rows
        with np.errstate(over="ignore", invalid="ignore"):  # bad rows are flagged
            _sum_item(X[a:b], slices, width, rows, pairs, lohi, item_sums[i], item_pairs[i])

    run_work_items(n, item_rows, sum_item)
    # In item order: the same float64 sums whatever the number of threads.
    return item_sums.sum(axis=0), item_pairs.sum(axis=0)


def _sum_item(X, slices, width, rows, pairs, lohi, sums, pair_sums):
    """One work item of :func:`paired_unit_sums`, accumulated into ``sums``, ``pair_sums``."""
    n = X.shape[0]
    M = len(slices)
    dtype = X.dtype
    inv = np.empty((n, M))
    dots = np.empty((n, max(M - 1, 0)), dtype=dtype) if pairs else None
    for a in range(0, n, rows):
        b = min(a + rows, n)
        T, sq = _safe_tile(X[a:b], slices, width, *lohi)
        # 1 / ||x||, in float64 and rounded once to the dtype for the row sums.
        np.divide(1.0, np.sqrt(sq, dtype=np.float64), out=inv[a:b])
        inv_t = inv[a:b].astype(dtype)
        for m, sl in enumerate(slices):
            sums[m] += inv_t[:, m] @ T[:, sl]
        if pairs:
            B0 = T[:, slices[0]]
            for m in range(1, M):
                _row_dots(B0, T[:, slices[m]], out=dots[a:b, m - 1])
    if pairs:
        for m in range(1, M):
            cos = dots[:, m - 1].astype(np.float64)
            cos *= inv[:, 0]
            cos *= inv[:, m]
            np.minimum(cos, 1.0, out=cos)
            np.maximum(cos, -1.0, out=cos)
            sqd = 2.0 - 2.0 * cos
            np.maximum(sqd, 0.0, out=sqd)
            pair_sums[m - 1] += (cos.sum(), np.sqrt(sqd).sum(), sqd.sum())


def replay_row_errors(X, slices, names, *, estimator=None, shifts=None, offset=0):
    """Raise the reference error for the first invalid row of ``X``.

    Fused kernels only detect that *some* row is invalid; this replays the
    checks of the reference (unfused) code in its order -- non-finite entries
    (scikit-learn's message), then each block's zero-norm rows, then, with
    ``shifts``, each block's rows of zero norm after the shift -- so users see
    the same messages as before. ``offset`` shifts the row numbers shown.
    """
    from sklearn.utils import check_array

    check_array(X, dtype=None, input_name="X", estimator=estimator, ensure_min_samples=0)
    for m, (sl, name) in enumerate(zip(slices, names)):
        B = X[:, sl]
        norms = row_norms(B)
        check_nonzero_norms(norms, name, offset=offset)
        if shifts is not None:
            U = B * np.reciprocal(norms)[:, None]
            U += np.asarray(shifts[m], dtype=B.dtype)
            check_nonzero_norms(row_norms(U), f"{name} after the shift", offset=offset)
    raise ValueError(  # pragma: no cover - the kernels and this replay agree
        "X holds rows that cannot be projected onto the unit sphere."
    )
