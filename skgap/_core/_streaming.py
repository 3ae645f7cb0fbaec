"""Mergeable running statistics of paired embeddings, for fit, partial_fit and dask.

Every statistic of :class:`~skgap.ConeStats` and :class:`~skgap.ModalityGapShifter`
is either a sum over rows (sums of unit vectors, sums of pair cosines) or a
function of a uniform row sample (uniformity, the principal axis). Both kinds
are *mergeable*: the state of two disjoint sets of rows combines into the
state of their union. So ``fit`` on the whole array, ``partial_fit`` over any
chunking of it, and a map-reduce over dask blocks all reach the same state.

The sample is a *bottom-k* sample: row ``i`` (global position in the stream)
gets the priority :math:`p_i`, the ``i``-th draw of a counter-based Philox
generator keyed by ``random_state``, and the sample is the ``k`` rows of
smallest :math:`(p_i, i)`. Because :math:`p_i` depends on ``i`` only, not on
how rows are chunked, the sample is the same for every chunking, and it is a
uniform sample without replacement of the rows seen.
"""

from numbers import Integral

import numpy as np

from ._array_api import is_numpy, max_float_dtype, scale_safe_rows
from ._sphere import paired_unit_sums

__all__ = [
    "CHUNK_BYTES",
    "PairedStats",
    "RowReservoir",
    "chunk_rows",
    "fit_rows_in_chunks",
    "row_priorities",
    "sample_key",
]

#: Bytes per gather when rows of a large (memory-mapped) array are read by
#: index: 4,096 rows of 2 x 512 float32.
CHUNK_BYTES = 16 * 2**20


def chunk_rows(X):
    """Rows of ``X`` per gather of about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(1, X.shape[1] * X.itemsize))


def fit_rows_in_chunks(estimator, X, rows):
    """``estimator.fit(X[rows])`` through ``partial_fit`` on gathers of :func:`chunk_rows` rows.

    For an unfitted estimator whose ``partial_fit`` over any chunking reaches
    the state of ``fit`` (every estimator built on :class:`PairedStats`): a
    memory-mapped ``X`` is then never copied whole. One chunk is exactly
    ``fit``; more are equal to it up to float rounding.
    """
    step = chunk_rows(X)
    for start in range(0, len(rows), step):
        estimator.partial_fit(X[rows[start : start + step]])
    return estimator


def sample_key(random_state):
    """Philox key (two uint64) derived from ``random_state``.

    An int always gives the same key; a ``RandomState`` instance is consumed
    (one draw); ``None`` draws fresh OS entropy.
    """
    if random_state is None:
        seq = np.random.SeedSequence()
    elif isinstance(random_state, Integral):
        seq = np.random.SeedSequence(int(random_state))
    elif isinstance(random_state, np.random.RandomState):
        seq = np.random.SeedSequence(random_state.randint(0, 2**32, size=4).tolist())
    else:
        raise ValueError(
            f"random_state must be None, an int or a RandomState, got {random_state!r}."
        )
    return seq.generate_state(2, dtype=np.uint64)


def row_priorities(key, start, stop):
    """Priorities of the rows ``start .. stop - 1`` of the stream, in [0, 1).

    Philox advances its counter in steps of four 64-bit draws, so the stream
    is entered at ``start // 4`` and the first ``start % 4`` draws are skipped:
    the priority of row ``i`` is the ``i``-th draw whatever ``start`` is.
    """
    bit_gen = np.random.Philox(key=key)
    bit_gen.advance(start // 4)
    skip = start % 4
    return np.random.Generator(bit_gen).random(stop - start + skip)[skip:]


def _take_rows(X, idx, xp):
    if is_numpy(xp):
        return np.asarray(X)[idx]
    device = getattr(X, "device", None)
    return xp.take(X, xp.asarray(idx, device=device), axis=0)


def _concat_rows(a, b, xp):
    if a is None:
        return b
    if is_numpy(xp):
        return np.concatenate([a, b], axis=0)
    dtype = xp.result_type(a.dtype, b.dtype)
    return xp.concat([xp.astype(a, dtype), xp.astype(b, dtype)], axis=0)


class RowReservoir:
    """Bottom-k row sample, identical for every chunking of the stream.

    Parameters
    ----------
    capacity : int or None
        Sample size ``k``; ``None`` keeps every row.
    key : ndarray of two uint64
        Philox key of the priorities (see :func:`sample_key`).
    """

    def __init__(self, capacity, key):
        self.capacity = capacity
        self.key = key
        self.priority = np.empty(0)
        self.index = np.empty(0, dtype=np.int64)
        self.rows = None

    def __len__(self):
        return self.index.size

    def _select(self, priority, index):
        """Positions of the ``capacity`` smallest ``(priority, index)``, by index."""
        k = self.capacity
        if k is None or priority.size <= k:
            keep = np.arange(priority.size)
        else:
            # O(n) partition to the k-th priority, then an exact (priority,
            # index) order among the few rows at or below it (ties included).
            kth = np.partition(priority, k - 1)[k - 1]
            keep = np.flatnonzero(priority <= kth)
            if keep.size > k:
                keep = keep[np.lexsort((index[keep], priority[keep]))[:k]]
        return keep[np.argsort(index[keep], kind="stable")]

    def update(self, X, offset, xp=np):
        """Offer the rows of ``X``, the stream rows ``offset .. offset + n - 1``."""
        n = X.shape[0]
        index = np.arange(offset, offset + n, dtype=np.int64)
        if self.capacity is None:
            priority = np.zeros(n)
            cand = np.arange(n)
        else:
            priority = row_priorities(self.key, offset, offset + n)
            if len(self) >= self.capacity:
                cand = np.flatnonzero(priority <= self.priority.max())
            else:
                cand = np.arange(n)
            # Trim within the chunk first: never gather more than k new rows.
            cand = cand[self._select(priority[cand], index[cand])]
        if cand.size == 0:
            return self
        rows = _take_rows(X, cand, xp)
        return self._absorb(priority[cand], index[cand], rows, xp)

    def merge(self, other, xp=np):
        """Absorb another reservoir over disjoint rows (same key and capacity)."""
        if other.rows is None:
            return self
        return self._absorb(other.priority, other.index, other.rows, xp)

    def _absorb(self, priority, index, rows, xp):
        all_p = np.concatenate([self.priority, priority])
        all_i = np.concatenate([self.index, index])
        all_rows = _concat_rows(self.rows, rows, xp)
        keep = self._select(all_p, all_i)
        if keep.size != all_i.size or np.any(np.diff(all_i) < 0):
            all_rows = _take_rows(all_rows, keep, xp)
            all_p, all_i = all_p[keep], all_i[keep]
        self.priority, self.index, self.rows = all_p, all_i, all_rows
        return self


def _paired_unit_sums_xp(X, slices, pairs, xp, device):
    """Array-API twin of :func:`skgap._core._sphere.paired_unit_sums` (whole-array ops)."""
    acc = max_float_dtype(xp, device)
    tiny = float(xp.finfo(X.dtype).smallest_normal)
    blocks = [scale_safe_rows(X[:, sl], xp) for sl in slices]
    inv = []
    sums = []
    for B in blocks:
        norms = xp.linalg.vector_norm(B, axis=1)
        if not bool(xp.all(norms > tiny)):
            from ._norms import InvalidRowsError

            raise InvalidRowsError("zero-norm rows")
        w = 1.0 / norms
        inv.append(w)
        sums.append(xp.astype(xp.matmul(w, B), acc))
    sums = xp.stack(sums)
    pair_sums = []
    if pairs:
        for m in range(1, len(slices)):
            cos = xp.astype(xp.vecdot(blocks[0], blocks[m], axis=-1) * inv[0] * inv[m], acc)
            cos = xp.clip(cos, -1.0, 1.0)
            sqd = xp.clip(2.0 - 2.0 * cos, 0.0, None)
            pair_sums.append(xp.stack([xp.sum(cos), xp.sum(xp.sqrt(sqd)), xp.sum(sqd)]))
    if pair_sums:
        pair_sums = xp.stack(pair_sums)
    else:
        pair_sums = xp.zeros((max(len(slices) - 1, 0), 3), dtype=acc, device=device)
    return sums, pair_sums


class PairedStats:
    """Running, mergeable sufficient statistics of paired unit rows.

    Parameters
    ----------
    slices : tuple of slice
        Column slice of each modality block.
    pairs : bool
        Also accumulate the pair-cosine sums of every block with the first.
    reservoir : RowReservoir or None
        Row sample for the statistics that need one (uniformity, principal
        axis); ``None`` keeps no rows.

    Attributes
    ----------
    n_samples : int
    sums : array of shape (M, d)
        :math:`\\sum_i u_{im}`, in the widest float of the data's device.
    pair_sums : array of shape (M - 1, 3)
        Sums of cosines, distances and squared distances of matched pairs.
    """

    def __init__(self, slices, *, pairs=True, reservoir=None):
        self.slices = tuple(slices)
        self.pairs = pairs
        self.reservoir = reservoir
        self.n_samples = 0
        self.sums = None
        self.pair_sums = None

    def update(self, X, *, xp=np, device=None, offset=None):
        """Add the rows of ``X`` (stream rows ``offset ...``; default: next ones)."""
        offset = self.n_samples if offset is None else offset
        if is_numpy(xp):
            sums, pair_sums = paired_unit_sums(np.asarray(X), self.slices, pairs=self.pairs)
        else:
            sums, pair_sums = _paired_unit_sums_xp(X, self.slices, self.pairs, xp, device)
        self._add(sums, pair_sums, X.shape[0])
        if self.reservoir is not None:
            self.reservoir.update(X, offset, xp)
        return self

    def merge(self, other, xp=np):
        """Absorb the statistics of disjoint rows."""
        if other.n_samples == 0:
            return self
        self._add(other.sums, other.pair_sums, other.n_samples)
        if self.reservoir is not None and other.reservoir is not None:
            self.reservoir.merge(other.reservoir, xp)
        return self

    def _add(self, sums, pair_sums, n):
        if self.sums is None:
            self.sums, self.pair_sums = sums, pair_sums
        else:
            self.sums = self.sums + sums
            self.pair_sums = self.pair_sums + pair_sums
        self.n_samples += n
