r"""Light per-modality heads of the gap-closing adapter.

The learned state lives in NumPy arrays (one dict per modality) so that the
estimator pickles and clones without torch objects; :class:`Heads` is rebuilt
from it whenever torch is needed.

A head maps a unit embedding :math:`z \in \mathbb R^{d_m}` to

.. math:: h(z) = W z + b \;+\; W_2\, \mathrm{GELU}(W_1 z + b_1)

(the second term only when ``hidden_dim`` is set) and the adapter returns
:math:`h(z) / \lVert h(z) \rVert`. At initialisation :math:`W` is the identity
(a shared semi-orthogonal matrix when the widths differ), :math:`b = 0` and
:math:`W_2 = 0`, so training starts from the frozen embeddings themselves.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._device import to_numpy, to_tensor

_LINEAR = ("weight", "bias")
_MLP = ("hidden_weight", "hidden_bias", "out_weight")


def _semi_orthogonal(rng, n_out, n_in):
    """An ``n_out x n_in`` matrix with orthonormal rows or columns."""
    A = rng.standard_normal((max(n_out, n_in), min(n_out, n_in)))
    Q, R = np.linalg.qr(A)
    Q *= np.sign(np.diag(R))
    return Q if n_out >= n_in else Q.T


def init_head_params(in_dims, out_dim, hidden_dim, rng, centroids=None):
    r"""Initial parameters of one head per modality, as float32 NumPy dicts.

    With ``centroids`` (one mean unit row, or None, per modality) the bias starts at
    :math:`b_m = -W_m \mu_m`, so the untrained head is the modality centring
    :math:`z \mapsto (z - \mu_m)/\lVert\cdot\rVert` of
    :class:`skgap.ModalityCentering`; without, :math:`b_m = 0`.
    """
    shared = {}
    params = []
    if centroids is None:
        centroids = [None] * len(in_dims)
    for d, mu in zip(in_dims, centroids):
        if d == out_dim:
            W = np.eye(out_dim)
        else:
            # One projection per input width, so blocks of one space stay aligned.
            if d not in shared:
                shared[d] = _semi_orthogonal(rng, out_dim, d)
            W = shared[d]
        bias = np.zeros(out_dim) if mu is None else -(W @ np.asarray(mu, dtype=np.float64))
        p = {"weight": W, "bias": bias}
        if hidden_dim is not None:
            p["hidden_weight"] = rng.standard_normal((hidden_dim, d)) / np.sqrt(d)
            p["hidden_bias"] = np.zeros(hidden_dim)
            p["out_weight"] = np.zeros((out_dim, hidden_dim))
        params.append({k: v.astype(np.float32) for k, v in p.items()})
    return params


class Head(nn.Module):
    """One modality's head, built from a dict of NumPy parameters."""

    def __init__(self, params, device, dtype=torch.float32):
        super().__init__()
        for name, value in params.items():
            self.register_parameter(name, nn.Parameter(to_tensor(value, device, dtype)))
        self.has_mlp = "out_weight" in params

    def forward(self, z):
        h = F.linear(z, self.weight, self.bias)
        if self.has_mlp:
            hidden = F.gelu(F.linear(z, self.hidden_weight, self.hidden_bias))
            h = h + F.linear(hidden, self.out_weight)
        return h

    def numpy_params(self):
        names = _LINEAR + (_MLP if self.has_mlp else ())
        return {name: to_numpy(getattr(self, name)) for name in names}


class Heads(nn.Module):
    """One head per modality block."""

    def __init__(self, params, device, dtype=torch.float32):
        super().__init__()
        self.heads = nn.ModuleList(Head(p, device, dtype) for p in params)

    def forward(self, blocks):
        """Unit outputs, one tensor per modality block."""
        return [F.normalize(h(b), dim=1) for h, b in zip(self.heads, blocks)]

    def numpy_params(self):
        return [h.numpy_params() for h in self.heads]
