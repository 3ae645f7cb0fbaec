"""Private helpers for dask arrays: map-reduce of statistics, map_blocks.

dask is optional: nothing here imports it at module level, and
:func:`is_dask_array` recognises a dask array by its type without importing
dask. Validation of a dask array lives in :mod:`skgap._validation`.

Statistics are a map-reduce: every row block computes its own mergeable
:class:`~skgap._streaming.PairedStats` (sums of unit vectors, pair sums and a
bottom-k row sample, with its global row offset so that the sample is the one
``fit`` on the whole array would draw), then a binary tree of merges reduces
them to one small state on the client. Transforms are ``map_blocks`` of the
NumPy kernel: lazy, one output block per input block.
"""

import numpy as np

from ._norms import InvalidRowsError, replay_row_errors
from ._shift import shift_rows
from ._streaming import PairedStats, RowReservoir

__all__ = ["is_dask_array", "reduce_paired_stats", "shift_dask"]


def is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array`` (without importing dask)."""
    cls = type(X)
    return cls.__name__ == "Array" and cls.__module__.startswith("dask.array")


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
