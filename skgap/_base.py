"""Private base class shared by the estimators that read the paired layout."""

import numpy as np
from sklearn.utils.validation import validate_data

from ._layout import block_slices, resolve_modality_dims

FLOAT_DTYPES = (np.float64, np.float32)


def modality_dims_constraint():
    """``_parameter_constraints`` entry for ``modality_dims``."""
    return [None, "array-like"]


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
        if reset:
            dims = resolve_modality_dims(X.shape[1], self.modality_dims)
            if equal_dims and len(set(dims)) != 1:
                raise ValueError(
                    f"{type(self).__name__} compares modalities in one shared space, so "
                    f"all blocks need the same width; got modality_dims={dims}. Map the "
                    "spaces onto each other first (e.g. with AnchorAffineAligner)."
                )
            self.modality_dims_ = dims
        return X, block_slices(self.modality_dims_)
