"""Input handling shared by the training estimators: layout, unit rows, splits."""

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from .._core._layout import (
    block_slices,
    carried_modality_dims,
    check_carried_dims,
    resolve_modality_dims,
)
from .._core._norms import CHUNK_ROWS, check_nonzero_norms, normalize_rows, row_norms
from .._core._validation import FLOAT_DTYPES, modality_names


def validate_paired(estimator, X, *, reset, n_modalities=2, ensure_min_samples=1):
    """Validate ``X = [B_1 | ... | B_M]``; record ``modality_dims_`` on reset.

    Returns ``(X, slices)``. Unlike the core mixin this honours
    ``n_modalities`` when ``modality_dims`` is None, and checks that the two
    agree when both are given.
    """
    carried = carried_modality_dims(X)
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=list(FLOAT_DTYPES),
        ensure_min_samples=ensure_min_samples,
    )
    if reset:
        given = check_carried_dims(estimator.modality_dims, carried, type(estimator).__name__)
        dims = resolve_modality_dims(X.shape[1], given, n_modalities)
        if len(dims) != n_modalities:
            raise ValueError(
                f"modality_dims={tuple(dims)} describes {len(dims)} blocks but "
                f"n_modalities={n_modalities}; make them agree."
            )
        estimator.modality_dims_ = dims
    return X, block_slices(estimator.modality_dims_)


def check_extra_pairs(X_extra, n_features, name):
    """Validate a second paired array of the fitted width (e.g. expert pairs)."""
    X_extra = check_array(X_extra, dtype=list(FLOAT_DTYPES), input_name=name)
    if X_extra.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X_extra.shape[1]} columns but X has {n_features}; it must "
            "hold pairs in the same layout [V | T] as X."
        )
    return X_extra


def unit_blocks(X, slices, dtype=np.float32):
    """Each block of ``X`` L2-normalised, as separate C-contiguous arrays of ``dtype``.

    Rows are normalised in the dtype of ``X`` before the cast (a float64 row
    of 1e200 entries would overflow to inf in float32, one of 1e-200 to
    zero), chunk by chunk, so no float64 copy of a whole block is made.
    """
    names = modality_names(len(slices))
    out = []
    for s, name in zip(slices, names):
        B = np.empty((X.shape[0], s.stop - s.start), dtype=dtype)
        for a in range(0, X.shape[0], CHUNK_ROWS):
            try:
                B[a : a + CHUNK_ROWS] = normalize_rows(X[a : a + CHUNK_ROWS, s], "")
            except ValueError:
                # Name the block and the rows of the whole array.
                check_nonzero_norms(row_norms(X[:, s]), f"the {name} block")
                raise
        out.append(B)
    return out


def train_validation_split(n_samples, validation_fraction, rng, min_rows=2):
    """Row indices ``(train, validation)``; validation is empty for fraction 0.

    Both parts keep at least ``min_rows`` rows, since a contrastive loss over
    one pair is constant.
    """
    if validation_fraction == 0:
        if n_samples < min_rows:
            raise ValueError(
                f"Training needs at least {min_rows} pairs; got n_samples={n_samples}."
            )
        return np.arange(n_samples), np.arange(0)
    n_val = max(min_rows, int(round(validation_fraction * n_samples)))
    if n_samples - n_val < min_rows:
        raise ValueError(
            f"Too few pairs to hold out a validation set: n_samples={n_samples} with "
            f"validation_fraction={validation_fraction} leaves {n_samples - n_val} for "
            f"training (need at least {min_rows} in each part). Use more pairs or set "
            "validation_fraction=0 and early_stopping=False."
        )
    perm = rng.permutation(n_samples)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def batches(indices, batch_size, rng):
    """Shuffled mini-batches of nearly equal size (none smaller than half a batch).

    ``np.array_split`` over ``ceil(n / batch_size)`` parts avoids a last batch
    of one pair, on which the contrastive and uniformity terms are undefined.
    """
    perm = indices[rng.permutation(indices.size)]
    n_batches = max(1, -(-indices.size // batch_size))
    return np.array_split(perm, n_batches)
