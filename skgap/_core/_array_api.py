"""Private helpers for scikit-learn's array API dispatch.

With ``sklearn.set_config(array_api_dispatch=True)``, an estimator that
declares ``array_api_support`` receives arrays of any array-API library
(PyTorch, CuPy, ``array_api_strict``...) and returns arrays of the same
library on the same device. These helpers wrap scikit-learn's private
``sklearn.utils._array_api`` module in one place, so that a change there is
fixed here only.
"""

import numpy as np
from sklearn.utils._array_api import (
    _is_numpy_namespace,
    _max_precision_float_dtype,
    get_namespace_and_device,
)

try:  # scikit-learn >= 1.8
    from sklearn.utils._array_api import check_same_namespace
except ImportError:  # pragma: no cover - older scikit-learn

    def check_same_namespace(X, estimator, *, attribute, method):
        """No-op: this scikit-learn does not check namespaces across methods."""


__all__ = [
    "check_same_namespace",
    "get_namespace_and_device",
    "is_numpy",
    "max_float_dtype",
    "namespace_of",
    "scale_safe_rows",
    "to_numpy",
]


def is_numpy(xp):
    """Whether ``xp`` (as returned by ``get_namespace``) is NumPy itself."""
    return _is_numpy_namespace(xp)


def namespace_of(a):
    """``(xp, device)`` of an array, whatever the dispatch setting.

    Used on arrays an estimator stored at fit time, when the global
    ``array_api_dispatch`` flag may have changed since.
    """
    if isinstance(a, np.ndarray):
        return np, None
    from sklearn.externals import array_api_compat

    return array_api_compat.array_namespace(a), array_api_compat.device(a)


def max_float_dtype(xp, device):
    """float64 where the device has it (CPU, CUDA), else float32 (e.g. MPS)."""
    return _max_precision_float_dtype(xp, device)


def to_numpy(a, xp):
    """A NumPy copy of an array of namespace ``xp`` (host transfer)."""
    if is_numpy(xp):
        return np.asarray(a)
    try:
        from sklearn.utils._array_api import move_to

        return move_to(a, xp=np, device="cpu")
    except ImportError:  # pragma: no cover - older scikit-learn
        from sklearn.utils._array_api import _convert_to_numpy

        return _convert_to_numpy(a, xp)


def scale_safe_rows(B, xp):
    r"""``B``, or ``B`` with each row divided by its max-abs entry if a norm could fail.

    The array-API twin of the scale-safe norms of :mod:`skgap._core._norms`:
    ``xp.linalg.vector_norm`` squares without scaling (PyTorch returns inf
    for a float32 row of 1e30 entries and 0 for one of 1e-30). When every
    row norm lies in :math:`[\sqrt{\mathrm{tiny}/\epsilon}, \sqrt{\max}]` ``B``
    is returned as it is; otherwise every row is divided by its largest
    absolute entry (rows of zeros by 1), which keeps its direction and puts
    its norm in :math:`[1, \sqrt d]`. Callers use directions only.
    """
    finfo = xp.finfo(B.dtype)
    lo = (float(finfo.smallest_normal) / float(finfo.eps)) ** 0.5
    hi = float(finfo.max) ** 0.5
    norms = xp.linalg.vector_norm(B, axis=1)
    if bool(xp.all(norms >= lo)) and bool(xp.all(norms <= hi)):
        return B
    a = xp.max(xp.abs(B), axis=1, keepdims=True)
    return B / xp.where(a > 0, a, xp.ones_like(a))

