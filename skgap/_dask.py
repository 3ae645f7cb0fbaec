"""Private helpers for dask arrays: validation, map-reduce of statistics, map_blocks.

dask is optional: nothing here imports it at module level, and
:func:`is_dask_array` recognises a dask array by its type without importing
dask.

Statistics are a map-reduce: every row block computes its own mergeable
:class:`~skgap._streaming.PairedStats` (sums of unit vectors, pair sums and a
bottom-k row sample, with its global row offset so that the sample is the one
``fit`` on the whole array would draw), then a binary tree of merges reduces
them to one small state on the client. Transforms are ``map_blocks`` of the
NumPy kernel: lazy, one output block per input block.
"""

import numpy as np
from sklearn.utils.validation import validate_data

from ._geometry import InvalidRowsError, replay_row_errors, shift_rows
from ._base import record_layout
from ._streaming import PairedStats, RowReservoir

__all__ = ["is_dask_array", "validate_dask", "reduce_paired_stats", "shift_dask"]


def is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array`` (without importing dask)."""
    cls = type(X)
    return cls.__name__ == "Array" and cls.__module__.startswith("dask.array")


def validate_dask(estimator, X, *, reset, equal_dims=False, ensure_min_samples=1):
    """Check a dask array lazily: shape, dtype, width and layout, no compute.

    Finiteness and zero-norm rows are checked inside the blocks, when they
    are computed. Columns are rechunked into one block so that every row block
    holds whole rows.

    Returns
    -------
    X : dask.array.Array
        Float32/float64, one chunk along the columns.
    slices : tuple of slice
    """
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D dask array (n_samples, n_features), got {X.ndim} dimension(s)."
        )
    if np.isnan(X.shape[0]):
        raise ValueError(
            "The dask array has unknown chunk sizes along the rows; call "
            "X.compute_chunk_sizes() first (the row offsets of the blocks are needed)."
        )
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.bool_)):
            raise ValueError(f"X must hold floating-point numbers, got dtype {X.dtype}.")
        X = X.astype(np.float64)
    if X.shape[0] < ensure_min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum "
            f"of {ensure_min_samples} is required by {type(estimator).__name__}."
        )
    # Records n_features_in_ on reset and checks it otherwise (no conversion).
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    slices = record_layout(estimator, X.shape[1], reset=reset, equal_dims=equal_dims)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X, slices


def _block_stats(block, offset, row0, slices, names, estimator_name, pairs, capacity, key):
    block = np.asarray(block)
    reservoir = None if key is None else RowReservoir(capacity, key)
    stats = PairedStats(slices, pairs=pairs, reservoir=reservoir)
    try:
        return stats.update(block, offset=offset)
    except InvalidRowsError:
        # Row numbers in the message are those of the array passed by the user.
        replay_row_errors(block, slices, names, estimator=estimator_name, offset=row0)


def _merge(a, b):
    return a.merge(b)


def reduce_paired_stats(
    X, slices, names, estimator_name, *, pairs, capacity=None, key=None, offset=0
):
    """Map-reduce :class:`PairedStats` over the row blocks of a dask array.

    Parameters
    ----------
    X : dask.array.Array
        Validated, one chunk along the columns.
    key : ndarray or None
        Philox key of the row sample; ``None`` keeps no sample.
    offset : int, default=0
        Stream position of the first row of ``X`` (rows already seen by
        earlier ``partial_fit`` calls).

    Returns
    -------
    PairedStats
        With its rows offset so that the state equals one ``update`` on the
        whole array.
    """
    import dask

    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int).tolist()
    blocks = X.to_delayed().ravel()
    parts = [
        dask.delayed(_block_stats)(
            blk, offset + row0, row0, slices, names, estimator_name, pairs, capacity, key
        )
        for blk, row0 in zip(blocks, starts)
    ]
    while len(parts) > 1:
        merged = [dask.delayed(_merge)(a, b) for a, b in zip(parts[::2], parts[1::2])]
        if len(parts) % 2:
            merged.append(parts[-1])
        parts = merged
    (stats,) = dask.compute(parts[0])
    return stats


def _shift_block(block, slices, shifts, names, estimator_name, block_info=None):
    block = np.asarray(block)
    try:
        return shift_rows(block, slices, shifts)
    except InvalidRowsError:
        offset = 0
        if block_info is not None and 0 in block_info:
            offset = block_info[0]["array-location"][0][0]
        replay_row_errors(
            block, slices, names, estimator=estimator_name, shifts=shifts, offset=offset
        )


def shift_dask(X, slices, shifts, names, estimator_name):
    """Lazy gap shift of every row block (``map_blocks`` of the fused kernel)."""
    return X.map_blocks(
        _shift_block,
        slices,
        np.asarray(shifts),
        names,
        estimator_name,
        dtype=X.dtype,
        meta=np.empty((0, 0), dtype=X.dtype),
    )
