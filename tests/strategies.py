"""Hypothesis strategies for paired embeddings (small, bounded, no zero rows)."""

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

elements = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def paired_arrays(draw, min_rows=3, max_rows=12, min_dim=2, max_dim=5, n_modalities=2):
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(min_dim, max_dim))
    X = draw(arrays(np.float64, (n, n_modalities * d), elements=elements))
    blocks = X.reshape(n, n_modalities, d)
    # Rows must have a direction; tiny rows make the sphere ill-conditioned.
    assume(np.all(np.linalg.norm(blocks, axis=2) > 1e-2))
    return X, d


seeds = st.integers(0, 2**32 - 1)


def random_orthogonal(d, seed):
    """A Haar-random orthogonal d x d matrix."""
    Q, R = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return Q * np.sign(np.diag(R))
