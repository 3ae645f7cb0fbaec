"""Private base class shared by the estimators that read the paired layout."""

import numpy as np
from sklearn.utils.validation import validate_data

from ._layout import block_slices, resolve_modality_dims

FLOAT_DTYPES = (np.float64, np.float32)


def modality_dims_constraint():
    """``_parameter_constraints`` entry for ``modality_dims``."""
    return [None, "array-like"]


def record_layout(estimator, n_features, *, reset, equal_dims=False):
    """Resolve ``estimator.modality_dims`` at fit (``reset``) and return the block slices.

    On reset the widths are stored as ``modality_dims_``; later calls reuse them
    (the width of ``X`` itself is checked by ``validate_data``).
    """
    if reset:
        estimator.modality_dims_ = resolve_modality_dims(
            n_features,
            estimator.modality_dims,
            shared_space=type(estimator).__name__ if equal_dims else None,
        )
    return block_slices(estimator.modality_dims_)


class PairedMixin:
    """Input validation for estimators over ``X = [B_1 | ... | B_m]``.

    Subclasses declare ``modality_dims`` as a parameter. ``fit`` calls
    :meth:`_validate_paired` with ``reset=True``, which records
    ``n_features_in_`` (and ``feature_names_in_``) and ``modality_dims_``;
    later calls check that the new ``X`` has the same layout.
    """

    def _validate_paired(self, X, *, reset, equal_dims=False, ensure_min_samples=1):
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=list(FLOAT_DTYPES),
            ensure_min_samples=ensure_min_samples,
        )
        return X, record_layout(self, X.shape[1], reset=reset, equal_dims=equal_dims)
