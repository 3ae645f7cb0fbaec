"""One way in for every array: validation of the paired layout, for all estimators.

Every estimator of the paired layout ``X = [B_1 | ... | B_m]`` opens its
methods through this module, which sits below all estimators (it imports only
the layout, the array-API wrappers and the row kernels). It dispatches on the
kind of array:

- NumPy: :func:`validate_paired` (scikit-learn's ``validate_data``, float32 or
  float64 kept) and :func:`validate_paired_fast`, which leaves the finiteness
  check to the fused kernels that read every entry anyway;
- array-API arrays (PyTorch, CuPy, ...): :func:`validate_paired` with the
  namespace's float dtypes;
- dask arrays: :func:`validate_dask`, lazy (no compute).

It also names the blocks (:func:`modality_names`, :func:`block_names`) for
reports and error messages, and replays the reference checks when a fused
kernel flags a row (:func:`update_paired_stats`).
"""

from numbers import Integral, Real

import numpy as np
from sklearn import config_context
from sklearn.utils._param_validation import Interval as _SklearnInterval
from sklearn.utils.validation import validate_data

from ._array_api import is_numpy, to_numpy
from ._layout import block_slices, carried_modality_dims, check_carried_dims, resolve_modality_dims
from ._norms import InvalidRowsError, replay_row_errors

__all__ = [
    "FLOAT_DTYPES",
    "Interval",
    "PositiveFinite",
    "PositiveInt",
    "PairedMixin",
    "block_names",
    "modality_dims_constraint",
    "modality_names",
    "record_layout",
    "update_paired_stats",
    "validate_dask",
    "validate_paired",
    "validate_paired_fast",
]

FLOAT_DTYPES = (np.float64, np.float32)


class Interval(_SklearnInterval):
    """scikit-learn's :class:`~sklearn.utils._param_validation.Interval`, refusing booleans.

    ``bool`` is a subclass of ``int``, so scikit-learn's interval takes
    ``True`` as the number 1; here a flag is never a count, a width or a
    :math:`\\lambda` (``lam=True`` would otherwise shift the gap fully
    without saying so).
    """

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        return super().is_satisfied_by(val)


def PositiveFinite(type=Real):
    """``(0, inf)``: a finite positive number (an exponent, a temperature)."""
    return Interval(type, 0, np.inf, closed="neither")


def PositiveInt(allow_none=False):
    """``[1, inf)`` integers (not booleans); ``None`` too when asked."""
    return [Interval(Integral, 1, None, closed="left")] + ([None] if allow_none else [])


def modality_dims_constraint():
    """``_parameter_constraints`` entry for ``modality_dims``."""
    return [None, "array-like"]


def modality_names(n_modalities):
    """Default names of the blocks: image and text for two, m0, m1, ... else."""
    if n_modalities == 2:
        return ("image", "text")
    return tuple(f"m{k}" for k in range(n_modalities))


def block_names(n_modalities):
    """``'the image block'``, ... as used in error messages."""
    return tuple(f"the {name} block" for name in modality_names(n_modalities))


def record_layout(estimator, n_features, *, reset, equal_dims=False, carried=None):
    """Resolve ``estimator.modality_dims`` at fit (``reset``) and return the block slices.

    On reset the widths are stored as ``modality_dims_``; later calls reuse them
    (the width of ``X`` itself is checked by ``validate_data``). An estimator
    that needs several blocks (a gap) says so with a class attribute
    ``_min_modalities``. ``carried``: the widths ``X`` carries from
    :func:`~skgap.pair` (used when ``modality_dims`` is None; a contradiction
    is refused).
    """
    name = type(estimator).__name__
    if reset:
        estimator.modality_dims_ = resolve_modality_dims(
            n_features,
            check_carried_dims(estimator.modality_dims, carried, name),
            shared_space=name if equal_dims else None,
            min_blocks=getattr(estimator, "_min_modalities", 1),
        )
    elif carried is not None and tuple(carried) != tuple(estimator.modality_dims_):
        raise ValueError(
            f"X was paired from blocks of widths {tuple(carried)}, but {name} was fitted on "
            f"blocks of widths {tuple(estimator.modality_dims_)}."
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
        carried = carried_modality_dims(X)
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=list(FLOAT_DTYPES),
            ensure_min_samples=ensure_min_samples,
        )
        return X, record_layout(self, X.shape[1], reset=reset, equal_dims=equal_dims,
                                carried=carried)


def validate_paired(estimator, X, *, reset, equal_dims=False, ensure_min_samples=1, xp=None):
    """Validate ``X`` of any array namespace; return ``(X, slices)``.

    NumPy input goes through :meth:`PairedMixin._validate_paired`. Other
    namespaces are validated with that namespace's float dtypes
    (``check_array`` cannot cast a torch tensor to a NumPy dtype), with the
    same layout checks and errors.
    """
    if xp is None or is_numpy(xp):
        return estimator._validate_paired(
            X, reset=reset, equal_dims=equal_dims, ensure_min_samples=ensure_min_samples
        )
    carried = carried_modality_dims(X)
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=[xp.float64, xp.float32],
        ensure_min_samples=ensure_min_samples,
    )
    return X, record_layout(estimator, X.shape[1], reset=reset, equal_dims=equal_dims,
                            carried=carried)


def validate_paired_fast(estimator, X, *, reset, xp, ensure_min_samples=1, equal_dims=True):
    """Validate the layout; for NumPy, leave the finite check to the fused pass.

    The fused kernels see every entry anyway (a NaN or inf makes a row norm
    non-finite), so scikit-learn's separate finiteness pass over ``X`` is
    skipped and its exact error is raised by the replay when a kernel flags a
    row.
    """
    if is_numpy(xp):
        try:
            with config_context(assume_finite=True):
                return validate_paired(
                    estimator, X, reset=reset, equal_dims=equal_dims,
                    ensure_min_samples=ensure_min_samples,
                )
        except ValueError:
            # Keep the reference precedence: a NaN is reported before a
            # layout error, as the full validation below does.
            pass
    return validate_paired(
        estimator, X, reset=reset, equal_dims=equal_dims,
        ensure_min_samples=ensure_min_samples, xp=xp,
    )


def update_paired_stats(estimator, stats, X, slices, xp, device):
    """``stats.update(X)``, replaying the reference checks on invalid rows."""
    try:
        return stats.update(X, xp=xp, device=device)
    except InvalidRowsError:
        if not is_numpy(xp):
            X = to_numpy(X, xp)
        replay_row_errors(np.asarray(X), slices, block_names(len(slices)), estimator=estimator)


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
