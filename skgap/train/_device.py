"""Device choice and NumPy <-> torch conversion for the training estimators."""

import numpy as np
import torch


def resolve_device(device):
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``'auto'`` picks CUDA when it is available, else the CPU. Any other string
    goes through :class:`torch.device`; a device torch cannot use raises a
    ``ValueError`` naming it.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here; "
            "use device='auto' or 'cpu'."
        )
    return dev


def to_tensor(a, device, dtype=torch.float32):
    """A NumPy array as a tensor on ``device`` (no copy for float32 on the CPU)."""
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def to_numpy(t):
    """A tensor as a float32 NumPy array on the host (a copy, detached)."""
    return t.detach().to("cpu", torch.float32).numpy().copy()
