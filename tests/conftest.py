import os

import numpy as np
import pytest

# Hub look-ups must fail at once, never hang in retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def paired():
    """Small synthetic paired embeddings with a clear gap (float32)."""
    from skgap.datasets import make_paired_embeddings

    return make_paired_embeddings(n_samples=200, n_features=16, random_state=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def hub_offline(monkeypatch):
    """Force offline hub look-ups, whatever the caller's environment says."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def one_blas_thread():
    """BLAS at one thread for a test of many tiny fits (threads only add
    overhead to them on a shared machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a module of tiny-model tests (threads only wait on them)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def patch_core(monkeypatch):
    """Set a knob of the sphere kernels (tile sizes, thread counts) in every
    ``skgap._core`` module that holds it: the kernels import each other's names."""
    from skgap._core import _norms, _parallel, _shift, _sphere, _streaming

    def patch(name, value):
        modules = [m for m in (_norms, _parallel, _shift, _sphere, _streaming) if hasattr(m, name)]
        assert modules, name
        for module in modules:
            monkeypatch.setattr(module, name, value)

    return patch
