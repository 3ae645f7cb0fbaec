"""partial_fit: streaming chunks (e.g. of a memory-mapped file) equals fit on the whole."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skgap import metrics as M
from skgap._core._streaming import RowReservoir, row_priorities, sample_key
from skgap.datasets import make_paired_embeddings
from skgap.measure._cone_stats import ConeStats
from skgap.transform._shift import ModalityGapShifter

# Attributes of ConeStats compared between fit and partial_fit.
ATTRIBUTES = (
    "n_samples_",
    "centroids_",
    "mean_resultant_length_",
    "mean_within_cosine_",
    "uniformity_",
    "gap_vector_",
    "gap_norm_",
    "pairwise_gap_",
    "alignment_",
    "mean_pair_cosine_",
    "relative_gap_",
    "gap_principal_cosine_",
)


def _assert_same_stats(a, b, atol=1e-6):
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=atol, err_msg=name)


@pytest.fixture
def memmap(tmp_path):
    """A float32 memory-mapped file of 3000 raw (non-unit) paired rows."""
    X, _ = make_paired_embeddings(3000, 24, random_state=0)
    # Raw rows: each block of each row gets its own norm.
    X *= np.repeat(np.random.default_rng(0).uniform(1, 10, size=(len(X), 2)), 24, axis=1).astype(
        np.float32
    )
    path = tmp_path / "emb.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    return np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)


@pytest.mark.parametrize("chunk", [1000, 777, 3000])
def test_cone_stats_partial_fit_on_a_memmap_equals_fit(memmap, chunk):
    # k < n: the row sample is a proper subsample, and must still agree.
    whole = ConeStats(max_uniformity_samples=500, random_state=7).fit(np.asarray(memmap))
    streamed = ConeStats(max_uniformity_samples=500, random_state=7)
    for start in range(0, len(memmap), chunk):
        streamed.partial_fit(memmap[start : start + chunk])
    _assert_same_stats(streamed, whole)
    np.testing.assert_array_equal(streamed._stats.reservoir.index, whole._stats.reservoir.index)
    assert streamed.report() == pytest.approx(whole.report(), abs=1e-6)


def test_exact_statistics_when_every_row_is_kept(memmap):
    X = np.asarray(memmap)
    V, T = X[:, :24], X[:, 24:]
    streamed = ConeStats(max_uniformity_samples=None)
    for part in np.array_split(X, 4):
        streamed.partial_fit(part)
    assert streamed.uniformity_[0] == pytest.approx(M.uniformity(V), rel=1e-6)
    assert streamed.uniformity_[1] == pytest.approx(M.uniformity(T), rel=1e-6)
    assert streamed.gap_principal_cosine_ == pytest.approx(M.gap_principal_cosine(V, T), abs=1e-6)
    assert streamed.pairwise_gap_ == pytest.approx(M.pairwise_gap(V, T), rel=1e-6)


def test_shifter_partial_fit_on_a_memmap_equals_fit(memmap):
    X = np.asarray(memmap)
    whole = ModalityGapShifter(lam=0.8).fit(X)
    streamed = ModalityGapShifter(lam=0.8)
    for start in range(0, len(memmap), 700):
        streamed.partial_fit(memmap[start : start + 700])
    np.testing.assert_allclose(streamed.centroids_, whole.centroids_, atol=1e-6)
    np.testing.assert_allclose(streamed.shift_vectors_, whole.shift_vectors_, atol=1e-6)
    np.testing.assert_allclose(streamed.transform(X), whole.transform(X), atol=1e-6)


def test_partial_fit_continues_after_fit():
    X, _ = make_paired_embeddings(900, 8, random_state=3)
    a = ConeStats(max_uniformity_samples=100, random_state=0).fit(X[:400]).partial_fit(X[400:])
    b = ConeStats(max_uniformity_samples=100, random_state=0).fit(X)
    _assert_same_stats(a, b)
    s = ModalityGapShifter().fit(X[:400]).partial_fit(X[400:])
    np.testing.assert_allclose(s.centroids_, ModalityGapShifter().fit(X).centroids_, atol=1e-6)


def test_fit_resets_the_stream():
    X, _ = make_paired_embeddings(300, 8, random_state=4)
    s = ConeStats(random_state=0).partial_fit(X[:100]).partial_fit(X[100:])
    s.fit(X[:150])
    assert s.n_samples_ == 150
    _assert_same_stats(s, ConeStats(random_state=0).fit(X[:150]))


def test_sampled_statistics_follow_the_stream():
    """uniformity_ is computed from the sample of the rows seen so far."""
    X, _ = make_paired_embeddings(400, 8, random_state=5)
    Y, _ = make_paired_embeddings(400, 8, image_concentration=0.3, random_state=6)
    s = ConeStats(max_uniformity_samples=None).partial_fit(X)
    first = s.uniformity_.copy()
    s.partial_fit(Y)
    assert not np.allclose(s.uniformity_, first)
    np.testing.assert_allclose(
        s.uniformity_, ConeStats(max_uniformity_samples=None).fit(np.vstack([X, Y])).uniformity_
    )


def test_seed_controls_the_sample_and_none_varies():
    X, _ = make_paired_embeddings(2000, 8, random_state=8)
    a = ConeStats(max_uniformity_samples=50, random_state=1).fit(X)
    b = ConeStats(max_uniformity_samples=50, random_state=1).fit(X)
    c = ConeStats(max_uniformity_samples=50, random_state=2).fit(X)
    np.testing.assert_array_equal(a.uniformity_, b.uniformity_)
    assert not np.array_equal(a._stats.reservoir.index, c._stats.reservoir.index)
    d = ConeStats(max_uniformity_samples=50).fit(X)
    e = ConeStats(max_uniformity_samples=50).fit(X)
    assert not np.array_equal(d._stats.reservoir.index, e._stats.reservoir.index)
    # The same rows for every modality, sorted, without repeats.
    idx = a._stats.reservoir.index
    assert len(idx) == 50 and np.all(np.diff(idx) > 0)


def test_subsampled_principal_axis_is_close_to_the_exact_one():
    X, _ = make_paired_embeddings(6000, 32, preset="coco-clip", random_state=0)
    exact = M.gap_principal_cosine(X[:, :32], X[:, 32:])
    sampled = ConeStats(max_uniformity_samples=1000, random_state=0).fit(X).gap_principal_cosine_
    assert sampled == pytest.approx(exact, abs=0.01)


def test_pickle_mid_stream_and_continue():
    X, _ = make_paired_embeddings(600, 8, random_state=9)
    s = ConeStats(max_uniformity_samples=80, random_state=0).partial_fit(X[:300])
    s = pickle.loads(pickle.dumps(s))
    s.partial_fit(X[300:])
    _assert_same_stats(s, ConeStats(max_uniformity_samples=80, random_state=0).fit(X))


def test_partial_fit_errors():
    X, _ = make_paired_embeddings(50, 8, random_state=0)
    with pytest.raises(ValueError, match="minimum of 2"):
        ConeStats().partial_fit(X[:1])
    s = ConeStats().partial_fit(X[:10])
    s.partial_fit(X[10:11])  # later chunks may hold one row
    assert s.n_samples_ == 11
    with pytest.raises(ValueError, match="16 features"):
        s.partial_fit(X[:, :8])
    bad = X[20:30].copy()
    bad[4, 8:] = 0
    with pytest.raises(ValueError, match=r"text block has 1 row\(s\) with zero norm \(rows 4\)"):
        s.partial_fit(bad)
    # A refused chunk leaves the state as it was.
    assert s.n_samples_ == 11
    s.partial_fit(X[11:])
    _assert_same_stats(s, ConeStats().fit(X), atol=1e-6)
    bad[4, 8:] = np.nan
    shifter = ModalityGapShifter().fit(X)
    with pytest.raises(ValueError, match="NaN"):
        shifter.partial_fit(bad)
    np.testing.assert_array_equal(shifter.centroids_, ModalityGapShifter().fit(X).centroids_)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    seed=st.integers(0, 2**31),
)
def test_reservoir_is_the_bottom_k_for_every_chunking(n, k, cuts, seed):
    """Theorem: the sample is the k rows of smallest priority, however chunked."""
    key = sample_key(seed)
    rows = np.arange(n, dtype=np.float64)[:, None]
    res = RowReservoir(k, key)
    edges = sorted({0, n, *[c for c in cuts if c < n]})
    for a, b in zip(edges[:-1], edges[1:]):
        res.update(rows[a:b], offset=a)
    expected = np.sort(np.argsort(row_priorities(key, 0, n), kind="stable")[:k])
    np.testing.assert_array_equal(res.index, expected)
    np.testing.assert_array_equal(res.rows[:, 0], expected)


@given(start=st.integers(0, 50), length=st.integers(0, 30), seed=st.integers(0, 2**31))
def test_priorities_depend_on_the_row_only(start, length, seed):
    key = sample_key(seed)
    whole = row_priorities(key, 0, start + length)
    np.testing.assert_array_equal(row_priorities(key, start, start + length), whole[start:])


def test_merging_reservoirs_of_blocks_equals_one_stream():
    key = sample_key(0)
    rows = np.random.default_rng(0).standard_normal((500, 3))
    one = RowReservoir(60, key).update(rows, offset=0)
    left = RowReservoir(60, key).update(rows[:180], offset=0)
    right = RowReservoir(60, key).update(rows[180:], offset=180)
    merged = right.merge(left)
    np.testing.assert_array_equal(merged.index, one.index)
    np.testing.assert_array_equal(merged.rows, one.rows)


def test_real_clip_embeddings_stream_like_fit():
    from skgap.datasets import load_coco_clip

    try:
        X = load_coco_clip()
    except FileNotFoundError:
        pytest.skip("the COCO CLIP embeddings are not available")
    whole = ConeStats(max_uniformity_samples=200, random_state=0).fit(X)
    streamed = ConeStats(max_uniformity_samples=200, random_state=0)
    for part in np.array_split(X, 6):
        streamed.partial_fit(part)
    _assert_same_stats(streamed, whole)
