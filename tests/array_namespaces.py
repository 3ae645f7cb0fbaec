"""The array namespaces the array-API tests run on (those installed here)."""

import pytest


def array_namespaces():
    """``pytest.param((xp, device), id=...)`` for array-api-strict, torch CPU and torch CUDA."""
    out = []
    try:
        import array_api_strict

        device = array_api_strict.Device("CPU_DEVICE")
        out.append(pytest.param((array_api_strict, device), id="strict"))
    except ImportError:
        pass
    try:
        import torch

        out.append(pytest.param((torch, "cpu"), id="torch-cpu"))
        if torch.cuda.is_available():  # pragma: no cover - GPU machines only
            out.append(pytest.param((torch, "cuda"), id="torch-cuda"))
    except ImportError:
        pass
    return out
