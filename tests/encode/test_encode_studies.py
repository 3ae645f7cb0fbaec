"""pool_by_group: the spherical mean of each study's views (skgap/encode/_studies.py)."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skgap.encode import pool_by_group  # noqa: E402


def loop_reference(E, groups):
    out, ids = [], []
    for g in dict.fromkeys(groups):
        rows = [e / np.linalg.norm(e) for e, h in zip(E, groups) if h == g]
        m = np.sum(rows, axis=0)
        out.append(m / np.linalg.norm(m))
        ids.append(g)
    return np.array(out), ids


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 12), scale=st.sampled_from([1e-150, 1.0, 1e150]))
def test_matches_the_definition_and_is_scale_free(seed, n, scale):
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(n, 5)) + 0.5
    groups = rng.integers(0, 4, size=n).astype(str)
    pooled, ids = pool_by_group(E, groups)
    ref, ref_ids = loop_reference(E, groups)
    assert ids.tolist() == ref_ids
    np.testing.assert_allclose(pooled, ref, atol=1e-12)
    # every row rescaled by its own positive factor: the same directions
    factors = scale * rng.uniform(0.5, 2.0, size=(n, 1))
    np.testing.assert_allclose(pool_by_group(E * factors, groups)[0], pooled, atol=1e-12)


def test_singletons_are_their_unit_rows_and_dtype_is_kept():
    E = np.array([[3, 4], [0, -2]], dtype=np.float32)
    pooled, ids = pool_by_group(E, ["b", "a"])
    assert pooled.dtype == np.float32 and ids.tolist() == ["b", "a"]  # first-appearance order
    np.testing.assert_allclose(pooled, [[0.6, 0.8], [0, -1]])


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        pool_by_group(np.ones((3, 2)), [1, 2])
    with pytest.raises(ValueError, match="row 1 of E is zero"):
        pool_by_group(np.array([[1.0, 0], [0, 0]]), [1, 1])
    with pytest.raises(ValueError, match="group 7 cancel out"):
        pool_by_group(np.array([[1.0, 0], [-2.0, 0]]), [7, 7])
