"""Which torch device a ``device`` parameter names: the one rule for every torch estimator.

Shared by the encoders (:mod:`skgap.encode`) and the training estimators
(:mod:`skgap.train`); torch is imported inside the function, so this module
costs nothing to import where torch is absent.
"""

__all__ = ["resolve_device"]


def resolve_device(device, *, cuda_available=None):
    """Turn the ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``'auto'`` (CUDA when present, else the CPU) or anything
        :class:`torch.device` accepts (``'cpu'``, ``'cuda'``, ``'cuda:1'``,
        ``'mps'``).
    cuda_available : bool, default=None
        Whether CUDA can be used; ``None`` asks ``torch.cuda.is_available()``.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If ``device`` is not a device name, or names CUDA where there is none.
    """
    import torch

    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if cuda_available else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device ({exc}); use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'."
        ) from None
    if dev.type == "cuda" and not cuda_available:
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here; use "
            "device='auto' (CUDA when present, else the CPU) or device='cpu'."
        )
    return dev
