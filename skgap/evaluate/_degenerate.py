"""Tasks whose scores cannot say anything about the gap: named, not scored as findings.

A sweep can score a task that no value of the path parameter could change,
or whose score is decided by ties rather than by the geometry:

- retrieval among rows of which most are copies of another row (class-name
  captions: ten distinct texts for hundreds of images), where the rank of the
  right partner is decided by how ties are counted;
- a probe task that both modalities solve alone (AUC >= 0.999 from the image
  block and from the text block): the task is easy, not leaked;
- a metric with the same score at every value and split.

:class:`DegenerateTaskWarning` carries the task and the reason so that the
command line, the figures and the HTML report can grey the task and say why.
"""

import numpy as np

__all__ = ["DegenerateTaskWarning", "constant_metrics", "duplicate_rows_reason"]

#: Ties decide the retrieval ranks when more than this fraction of the rows
#: share their row with another one (their right partner ties with a wrong one).
TIED_FRACTION = 0.5


class _TaskWarning(UserWarning):
    """A warning about one task family, with the line the outputs show for it."""

    def __init__(self, message, task=None, reason=None):
        super().__init__(message)
        self.task = task
        self.reason = reason


class DegenerateTaskWarning(_TaskWarning):
    """A scored task cannot tell one value of the path parameter from another.

    Raised (as a warning) by :func:`~skgap.evaluate.gap_sweep`. The warning
    object has the attributes ``task`` (the task family) and ``reason`` (one
    line, starting with ``'degenerate:'`` or ``'trivial:'``), which the
    command line and the report show next to that task instead of a verdict.

    Parameters
    ----------
    message : str
        The warning's text.
    task : str, default=None
        The task family it concerns.
    reason : str, default=None
        One line that the command line, the figures and the report show
        next to the task instead of a verdict.
    """


#: Blocks larger than this are counted from row hashes, a chunk at a time.
_WHOLE_BLOCK_BYTES = 64 * 2**20


def _distinct_and_tied(block):
    """``(distinct rows, rows that share their value with another row)`` of a 2-D block.

    A block of more than :data:`_WHOLE_BLOCK_BYTES` (an archive's column
    block, often memory-mapped) is not copied: each row's bytes are hashed a
    chunk at a time and the hashes counted. Two different rows share a
    64-bit hash with probability about :math:`n^2 / 2^{65}` (below
    :math:`10^{-8}` for a million rows), which could only count more rows tied.
    """
    if block.shape[0] * block.shape[1] * block.itemsize > _WHOLE_BLOCK_BYTES:
        return _hashed_distinct_and_tied(block)
    B = np.ascontiguousarray(block)
    # One opaque item per row: np.unique compares whole rows by their bytes
    # (-0.0 and 0.0 differ there, which only ever counts more rows distinct).
    rows = B.view(np.dtype((np.void, B.dtype.itemsize * B.shape[1]))).ravel()
    _, counts = np.unique(rows, return_counts=True)
    return counts.size, int(counts[counts > 1].sum())


def _hashed_distinct_and_tied(block):
    step = max(1, (4 * 2**20) // max(1, block.shape[1] * block.itemsize))
    keys = np.empty(block.shape[0], dtype=np.int64)
    for start in range(0, block.shape[0], step):
        B = np.ascontiguousarray(block[start:start + step])
        keys[start:start + B.shape[0]] = [hash(row.tobytes()) for row in B]
    _, counts = np.unique(keys, return_counts=True)
    return counts.size, int(counts[counts > 1].sum())


def duplicate_rows_reason(X, slices, names=("image", "text")):
    """Why retrieval on ``X`` is decided by ties, or None when it is not.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The paired rows.
    slices : sequence of slice
        The column block of each modality.
    names : sequence of str
        The name of each modality, for the message.

    Returns
    -------
    reason : str or None
        ``'degenerate: 10 distinct texts for 848 pairs; ties decide the
        retrieval ranks'`` when more than half of the rows of a block are
        copies of another row of that block, else None.

    Notes
    -----
    The retrieval rank of a query counts every candidate scored *at least as
    high* as its right partner: an exact copy of the partner ranks ahead of it.
    With one caption per class, every image has as many tied texts as its class
    has rows, so recall@1 is near 0 at every value of the path parameter.
    """
    n = X.shape[0]
    for sl, name in zip(slices, names):
        distinct, tied = _distinct_and_tied(X[:, sl])
        if tied > TIED_FRACTION * n:
            return (f"degenerate: {distinct} distinct {name}s for {n} pairs; ties decide "
                    "the retrieval ranks")
    return None


def constant_metrics(summary):
    """``{(task, metric): reason}`` for each metric with one score at every value and split.

    Parameters
    ----------
    summary : dict of ndarray
        A :func:`~skgap.evaluate.summarize_sweep` table as columns (``task``,
        ``metric``, ``mean``, ``std``, ``n``).

    Returns
    -------
    dict
    """
    task, metric = np.asarray(summary["task"]), np.asarray(summary["metric"])
    mean, std, n = (np.asarray(summary[k], dtype=float) for k in ("mean", "std", "n"))
    out = {}
    for key in dict.fromkeys(zip(task.tolist(), metric.tolist())):
        rows = (task == key[0]) & (metric == key[1])
        m, s = mean[rows], std[rows]
        if not np.isfinite(m).all() or n[rows].min() < 2:
            continue
        if np.all(s == 0) and np.ptp(m) == 0:
            out[key] = (f"trivial: {m[0]:.4f} at every lambda and split; no lambda can "
                        "change it")
    return out
