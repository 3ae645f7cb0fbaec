"""The fused row-tile kernels equal the textbook computations, for every input layout."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import paired_arrays

from skgap._core import _norms, _parallel, _shift, _sphere

SLICES = (slice(0, 6), slice(6, 12))


def _reference_shift(X, slices, shifts):
    out = np.empty(X.shape)
    for sl, s in zip(slices, shifts):
        U = X[:, sl] / np.linalg.norm(X[:, sl], axis=1, keepdims=True) + s
        out[:, sl] = U / np.linalg.norm(U, axis=1, keepdims=True)
    return out


@pytest.fixture
def small_tiles(patch_core):
    """Tiles of 16 rows, so that small inputs span many tiles."""
    patch_core("TILE_BYTES", 1)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shift_rows_is_normalise_add_renormalise(layout, dtype, small_tiles, rng):
    X = (rng.standard_normal((100, 12)) * rng.uniform(0.1, 50, (100, 1))).astype(dtype)
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided":
        X = np.repeat(X, 2, axis=0)[::2]
    shifts = rng.standard_normal((2, 6)) * 0.4
    out = _shift.shift_rows(X, SLICES, shifts)
    assert out.dtype == dtype and out.flags.c_contiguous
    atol = 2e-6 if dtype == np.float32 else 1e-13
    expected = _reference_shift(X.astype(np.float64), SLICES, shifts)
    np.testing.assert_allclose(out, expected, atol=atol)


@settings(max_examples=40, deadline=None)
@given(paired_arrays(min_rows=1, max_rows=40), st.floats(0.0, 1.5), st.integers(0, 2**31))
def test_shift_rows_theorem(data, scale, seed):
    X, d = data
    shifts = np.random.default_rng(seed).standard_normal((2, d)) * scale
    slices = (slice(0, d), slice(d, 2 * d))
    try:
        out = _shift.shift_rows(X, slices, shifts)
    except _norms.InvalidRowsError:
        # Only a row exactly opposite its shift (u + s = 0) may be refused.
        gaps = [
            np.linalg.norm(X[:, sl] / np.linalg.norm(X[:, sl], axis=1, keepdims=True) + s, axis=1)
            for sl, s in zip(slices, shifts)
        ]
        assert min(g.min() for g in gaps) < 1e-12
        return
    np.testing.assert_allclose(out, _reference_shift(X, slices, shifts), atol=1e-9)


def test_rows_nearly_opposite_their_shift_stay_exact():
    s = np.array([1.0, 0.0, 0.0])
    X = np.array([[-1.0, 1e-3, 0.0], [-1.0, 0.0, 2e-2], [0.3, 0.4, 0.5]])
    X = np.hstack([X, X])
    slices = (slice(0, 3), slice(3, 6))
    out = _shift.shift_rows(X, slices, [s, 0.5 * s])
    np.testing.assert_allclose(out, _reference_shift(X, slices, [s, 0.5 * s]), atol=1e-12)
    with pytest.raises(_norms.InvalidRowsError):
        _shift.shift_rows(np.array([[-2.0, 0.0, 0.0]]), (slice(0, 3),), [s])


def test_float32_overflow_rows_are_normalised_not_rejected():
    X = np.array([[3e20, 4e20, 0.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    out = _shift.shift_rows(X, (slice(0, 3), slice(3, 6)), np.zeros((2, 3)))
    np.testing.assert_allclose(out, [[0.6, 0.8, 0.0, 1.0, 0.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize(
    "bad, kind", [(np.nan, "non-finite"), (np.inf, "non-finite"), (0.0, "zero-norm")]
)
def test_invalid_rows_are_flagged(bad, kind, rng):
    X = rng.standard_normal((40, 12))
    X[33, 6:] = bad
    with pytest.raises(_norms.InvalidRowsError, match=kind):
        _shift.shift_rows(X, SLICES, np.zeros((2, 6)))
    with pytest.raises(_norms.InvalidRowsError, match=kind):
        _sphere.paired_unit_sums(X, SLICES)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_paired_unit_sums_over_many_tiles(layout, small_tiles, rng):
    X = rng.standard_normal((203, 12)).astype(np.float32) + 1.0
    if layout == "F":
        X = np.asfortranarray(X)
    sums, pair_sums = _sphere.paired_unit_sums(X, SLICES)
    U = [X[:, sl].astype(np.float64) for sl in SLICES]
    U = [u / np.linalg.norm(u, axis=1, keepdims=True) for u in U]
    np.testing.assert_allclose(sums, [u.sum(0) for u in U], rtol=1e-5)
    cos = np.clip(np.sum(U[0] * U[1], axis=1), -1, 1)
    expected = [cos.sum(), np.sqrt(2 - 2 * cos).sum(), (2 - 2 * cos).sum()]
    np.testing.assert_allclose(pair_sums[0], expected, rtol=1e-5)


def test_replay_names_rows_with_their_offset(rng):
    X = rng.standard_normal((20, 12))
    X[[3, 9], :6] = 0
    with pytest.raises(ValueError, match=r"2 row\(s\) with zero norm \(rows 103, 109\)"):
        _norms.replay_row_errors(X, SLICES, ("the image block", "the text block"), offset=100)
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _norms.replay_row_errors(X, SLICES, ("a", "b"), estimator="ConeStats")


@pytest.fixture
def threads(patch_core):
    """Run the fused passes on ``n`` threads (even on a one-core machine)."""

    def set_threads(n):
        patch_core("pass_threads", lambda n_items: min(n, n_items))

    return set_threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_passes_equal_one_thread_bit_for_bit(dtype, small_tiles, threads, rng):
    # 16-row tiles, 4 tiles per work item: 1003 rows are 16 items on 3 threads.
    X = (rng.standard_normal((1003, 12)) * rng.uniform(0.1, 50, (1003, 1))).astype(dtype)
    X[[5, 600]] *= dtype(1e30)  # scale-safe tiles in two items
    shifts = rng.standard_normal((2, 6)) * 0.4
    threads(1)
    out1 = _shift.shift_rows(X, SLICES, shifts)
    sums1, pairs1 = _sphere.paired_unit_sums(X, SLICES)
    threads(3)
    out3 = _shift.shift_rows(X, SLICES, shifts)
    sums3, pairs3 = _sphere.paired_unit_sums(X, SLICES)
    np.testing.assert_array_equal(out3, out1)
    # Partial sums are added in work-item order: no dependence on the threads.
    np.testing.assert_array_equal(sums3, sums1)
    np.testing.assert_array_equal(pairs3, pairs1)
    np.testing.assert_allclose(out1, _reference_shift(X.astype(np.float64), SLICES, shifts),
                               atol=2e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unit_second_moment_over_runs_and_chunks(dtype, threads, patch_core, rng):
    """Runs of at least MOMENT_ROWS rows (two per block), chunks of CHUNK_ROWS:
    the sum of u u^T over every unit row, the same on any number of threads."""
    patch_core("MOMENT_ROWS", 40)
    patch_core("CHUNK_ROWS", 16)
    patch_core("MIN_THREADED_FLOPS", 0)
    E = (rng.standard_normal((203, 6)) * rng.uniform(0.1, 50, (203, 1))).astype(dtype)
    U = rng.standard_normal((57, 6))
    U = (U / np.linalg.norm(U, axis=1, keepdims=True)).astype(dtype)
    inv = 1.0 / np.linalg.norm(E.astype(np.float64), axis=1)
    unit = E.astype(np.float64) * inv[:, None]
    expected = unit.T @ unit + U.astype(np.float64).T @ U.astype(np.float64)
    threads(1)
    one = _sphere.unit_second_moment([(E, inv), (U, None)])
    threads(3)
    three = _sphere.unit_second_moment([(E, inv), (U, None)])
    np.testing.assert_array_equal(three, one)
    assert one.dtype == np.float64
    np.testing.assert_allclose(one, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_invalid_row_in_a_helper_thread_is_raised(small_tiles, threads, rng):
    threads(3)
    X = rng.standard_normal((1003, 12))
    X[990, :6] = 0.0  # in the last work item
    with pytest.raises(_norms.InvalidRowsError, match="zero-norm"):
        _shift.shift_rows(X, SLICES, np.zeros((2, 6)))
    X[990, :6] = np.nan
    with pytest.raises(_norms.InvalidRowsError, match="non-finite"):
        _sphere.paired_unit_sums(X, SLICES)


def test_pass_threads_follow_the_blas_limit_and_never_nest():
    import threading

    from threadpoolctl import threadpool_limits

    assert _parallel.pass_threads(1) == 1
    with threadpool_limits(1):
        assert _parallel.pass_threads(100) == 1
    with threadpool_limits(2):
        expected = min(2, len(__import__("os").sched_getaffinity(0)))
        assert _parallel.pass_threads(100) == expected
        seen = []
        worker = threading.Thread(target=lambda: seen.append(_parallel.pass_threads(100)))
        worker.start()
        worker.join()
        assert seen == [1]


def test_small_passes_stay_on_the_calling_thread(threads):
    import threading
    import time

    threads(4)
    seen = set()

    def record(a, b):
        seen.add(threading.get_ident())
        time.sleep(0.02)  # long enough for the helpers to take items too

    _parallel.run_work_items(8, 1, record, flops=_parallel.MIN_THREADED_FLOPS / 2)
    assert seen == {threading.get_ident()}
    _parallel.run_work_items(8, 1, record, flops=_parallel.MIN_THREADED_FLOPS)
    assert len(seen) > 1



def test_worker_threads_use_small_tiles():
    """Off the main thread BLAS cannot be limited: tiles stay small (see WORKER_TILE_BYTES)."""
    import threading

    seen = []
    worker = threading.Thread(target=lambda: seen.append(_parallel.tile_rows(1024, 4)))
    worker.start()
    worker.join()
    assert seen == [_parallel.WORKER_TILE_BYTES // 4096] and _parallel.tile_rows(1024, 4) == _parallel.TILE_BYTES // 4096
    assert seen[0] < _parallel.tile_rows(1024, 4)
