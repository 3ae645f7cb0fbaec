"""Device choice and NumPy <-> torch conversion for the training estimators."""

import numpy as np
import torch

from .._core._device import resolve_device

__all__ = ["resolve_device", "to_numpy", "to_tensor"]


def to_tensor(a, device, dtype=torch.float32):
    """A NumPy array as a tensor on ``device`` (no copy for float32 on the CPU)."""
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def to_numpy(t):
    """A tensor as a float32 NumPy array on the host (a copy, detached)."""
    return t.detach().to("cpu", torch.float32).numpy().copy()
