import numpy as np
import pytest

from skgap import pair, unpair
from skgap._core._layout import block_slices, resolve_modality_dims


def test_pair_unpair_roundtrip_keeps_dtype_and_views():
    V = np.arange(12, dtype=np.float32).reshape(3, 4)
    T = -np.arange(6, dtype=np.float32).reshape(3, 2)
    X = pair(V, T)
    assert X.dtype == np.float32
    assert X.shape == (3, 6)
    V2, T2 = unpair(X, modality_dims=(4, 2))
    np.testing.assert_array_equal(V2, V)
    np.testing.assert_array_equal(T2, T)
    assert np.shares_memory(V2, X)


def test_unpair_equal_blocks_and_three_modalities():
    X = np.arange(18.0).reshape(3, 6)
    a, b = unpair(X)
    np.testing.assert_array_equal(a, X[:, :3])
    np.testing.assert_array_equal(b, X[:, 3:])
    blocks = unpair(X, n_modalities=3)
    assert [bl.shape for bl in blocks] == [(3, 2)] * 3


def test_pair_integer_blocks_become_float():
    X = pair(np.ones((2, 2), dtype=int), np.zeros((2, 2), dtype=int))
    assert X.dtype == np.float64


@pytest.mark.parametrize(
    "blocks, match",
    [
        ((np.ones((3, 2)), np.ones((4, 2))), "same number of rows"),
        ((np.ones(3), np.ones((3, 2))), "must be 2-D"),
        ((), "at least one block"),
    ],
)
def test_pair_errors(blocks, match):
    with pytest.raises(ValueError, match=match):
        pair(*blocks)


@pytest.mark.parametrize(
    "n_features, dims, match",
    [
        (5, None, "modality_dims"),
        (6, (2, 3), "sums to 5"),
        (6, (6, 0), "positive"),
        (6, [[3, 3]], "1-D"),
        (6, (2.5, 3.5), "integers"),
    ],
)
def test_resolve_modality_dims_errors_name_the_parameter(n_features, dims, match):
    with pytest.raises(ValueError, match=match) as exc:
        resolve_modality_dims(n_features, dims)
    assert "modality_dims" in str(exc.value)


def test_resolve_and_slices():
    assert resolve_modality_dims(6, None) == (3, 3)
    assert resolve_modality_dims(6, np.array([4, 2])) == (4, 2)
    assert block_slices((4, 2)) == (slice(0, 4), slice(4, 6))


def test_unpair_rejects_1d():
    with pytest.raises(ValueError, match="2-D"):
        unpair(np.ones(4))
