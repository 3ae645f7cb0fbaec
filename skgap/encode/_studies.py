r"""Studies: one report, several images (frontal and lateral views per report).

A study's image embeddings are pooled into one row per report by the mean of
their unit vectors, renormalised:

.. math::

    \hat v_g = \frac{\sum_{i \in g} v_i / \lVert v_i \rVert}
                    {\bigl\lVert \sum_{i \in g} v_i / \lVert v_i \rVert \bigr\rVert},

the direction of the study's mean view on the unit sphere (the spherical
mean of its images); it does not depend on the scale of any row.
"""

import numpy as np

__all__ = ["pool_by_group"]


def pool_by_group(E, groups):
    r"""Pool the rows of ``E`` that share a group id: mean of unit rows, renormalised.

    Parameters
    ----------
    E : array-like of shape (n, d)
        Embeddings, one row per item; rows must be non-zero.
    groups : array-like of shape (n,)
        Group (study) id of each row.

    Returns
    -------
    pooled : ndarray of shape (n_groups, d)
        Unit rows, in the order the groups first appear; float32 input stays
        float32.
    ids : ndarray of shape (n_groups,)
        The group id of each pooled row.

    Raises
    ------
    ValueError
        Shapes disagree, a row is zero, or a group's unit rows cancel out
        (their sum is zero, so the mean has no direction).

    Examples
    --------
    >>> import numpy as np
    >>> E = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    >>> pooled, ids = pool_by_group(E, ["s1", "s1", "s2"])
    >>> np.round(pooled, 4).tolist(), ids.tolist()
    ([[0.7071, 0.7071], [1.0, 0.0]], ['s1', 's2'])
    """
    E = np.asarray(E)
    if E.dtype.kind == "c":
        # Casting to float would silently drop the imaginary parts.
        raise ValueError(
            "E holds complex numbers; embeddings are real rows. Pass the real parts "
            "(E.real) if that is meant."
        )
    if E.dtype.kind not in "biuf":
        raise ValueError(f"E must hold real numbers, got dtype {E.dtype}.")
    if not np.issubdtype(E.dtype, np.floating):
        E = E.astype(np.float64)
    groups = np.asarray(groups)
    if E.ndim != 2 or groups.shape != (E.shape[0],):
        raise ValueError(
            f"pool_by_group needs E of shape (n, d) and groups of shape (n,); got "
            f"{E.shape} and {groups.shape}."
        )
    # Scale each row by its largest entry first: the norm cannot overflow or underflow.
    scale = np.abs(E).max(axis=1, keepdims=True)
    if (scale == 0).any() or not np.isfinite(scale).all():
        bad = int(np.flatnonzero(~((scale[:, 0] > 0) & np.isfinite(scale[:, 0])))[0])
        raise ValueError(f"row {bad} of E is zero or not finite; it has no direction.")
    U = E / scale
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    ids, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    sums = np.zeros((ids.size, E.shape[1]), dtype=U.dtype)
    np.add.at(sums, inverse.ravel(), U)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    if (norms <= np.finfo(U.dtype).eps * 8).any():
        g = ids[int(np.flatnonzero(norms[:, 0] <= np.finfo(U.dtype).eps * 8)[0])]
        raise ValueError(f"the unit rows of group {g.item()!r} cancel out; their mean has no direction.")
    order = np.argsort(first, kind="stable")
    return (sums / norms)[order], ids[order]
