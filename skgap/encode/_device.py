"""Where the encoder runs and in which precision: pure decisions, no model.

Kept apart from the encoding loop so that the CUDA choices (device,
autocast dtype, pinned memory) can be unit-tested on a machine without a GPU:
every function takes the hardware facts as arguments, with defaults that ask
torch.
"""

import torch

from .._core._device import resolve_device

__all__ = ["resolve_device", "resolve_precision", "uses_pinned_memory"]

# Autocast dtype of each ``precision`` name; None means no autocast (float32).
_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision, device, *, bf16_supported=None):
    """Choose the autocast precision for ``device``.

    Parameters
    ----------
    precision : {'auto', 'fp32', 'bf16', 'fp16'}
        ``'auto'`` is bf16 on a CUDA device that supports it, fp16 on an older
        CUDA device, and fp32 (no autocast) elsewhere: on a CPU, reduced
        precision costs accuracy without reliably saving time.
    device : torch.device
        Where the model runs.
    bf16_supported : bool, default=None
        Whether the CUDA device computes natively in bfloat16; ``None`` asks
        ``torch.cuda.is_bf16_supported(including_emulation=False)`` (only
        consulted for CUDA).

    Returns
    -------
    name : {'fp32', 'bf16', 'fp16'}
        The precision used; part of the cache key, since it changes the
        embeddings in their last digits.
    amp_dtype : torch.dtype or None
        The autocast dtype, or ``None`` for plain float32.

    Raises
    ------
    ValueError
        If ``precision`` is unknown, or bf16 is asked of a CUDA device that
        lacks it.
    """
    if precision not in ("auto", *_AMP_DTYPES):
        raise ValueError(
            f"precision={precision!r} is not one of 'auto', 'fp32', 'bf16', 'fp16'."
        )
    is_cuda = device.type == "cuda"
    if is_cuda and precision in ("auto", "bf16") and bf16_supported is None:
        # Native support only: emulated bf16 (pre-Ampere GPUs) is slower than fp16.
        with torch.cuda.device(device):
            bf16_supported = torch.cuda.is_bf16_supported(including_emulation=False)
    if precision == "auto":
        precision = ("bf16" if bf16_supported else "fp16") if is_cuda else "fp32"
    elif precision == "bf16" and is_cuda and not bf16_supported:
        raise ValueError(
            f"precision='bf16' was requested but {device} does not support bfloat16; "
            "use precision='fp16' or 'auto'."
        )
    return precision, _AMP_DTYPES[precision]


def uses_pinned_memory(device):
    """Whether host batches should be pinned: only for copies to a CUDA device.

    Pinned (page-locked) host memory lets ``tensor.to(device, non_blocking=True)``
    overlap the copy with GPU work; on other devices pinning only costs time.
    """
    return device.type == "cuda"
