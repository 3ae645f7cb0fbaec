"""skgap._core._sphere.pair_cosines: cosines of matched pairs stay in [-1, 1]."""

import numpy as np
import pytest

from skgap._core._sphere import pair_cosines
from skgap.metrics import mean_pair_cosine, pairwise_gap


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cosines_of_parallel_and_opposite_pairs_are_exactly_within_one(dtype):
    """For t = c v the exact cosine is +-1; rounding of the normalised dot
    product lands a hair outside [-1, 1] on many rows, which must not leak out
    (arccos, 2 - 2 cos and a mean cosine above 1 all go wrong then)."""
    rng = np.random.default_rng(0)
    V = (rng.standard_normal((2000, 64)) * rng.uniform(0.1, 10.0, (2000, 1))).astype(dtype)
    scale = rng.uniform(0.5, 2.0, (2000, 1)).astype(dtype)
    for sign in (1.0, -1.0):
        cos = pair_cosines(V, sign * scale * V)
        assert cos.dtype == np.float64
        assert np.all(np.abs(cos) <= 1.0)
        np.testing.assert_allclose(cos, sign, atol=5 * np.finfo(dtype).eps)
    assert mean_pair_cosine(V, V) <= 1.0
    assert np.isfinite(np.arccos(pair_cosines(V, V))).all()
    assert pairwise_gap(V, V) >= 0.0
