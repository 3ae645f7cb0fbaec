"""gap_sweep on large test splits: the capped retrieval gallery, k-means on a
sample of the test pairs, memory-mapped archives, and bounded memory."""

import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from skgap._core import _streaming
from skgap.datasets import make_paired_embeddings
from skgap.evaluate import _sweep, _tasks, gap_sweep
from skgap.evaluate._degenerate import _distinct_and_tied, _hashed_distinct_and_tied
from skgap.evaluate._tasks import (
    _cluster_labels,
    _clustering_metrics,
    _retrieval_metrics,
    _test_sample,
)
from skgap.measure import retrieval_recall_at_k

TASKS = ("fusion", "image", "text", "zeroshot", "retrieval", "clustering")


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def data():
    return make_paired_embeddings(500, 16, n_classes=3, noise=1.0, random_state=0)


@pytest.fixture(scope="module")
def clustered():
    """Test rows with class structure: three well-separated classes, a small gap."""
    return make_paired_embeddings(3000, 16, n_classes=3, class_sep=3.0, noise=0.3, gap=0.2,
                                  random_state=1)


def _by_key(table):
    keys = zip(table["seed"], table["lam"], table["task"], table["metric"])
    return dict(zip(keys, np.asarray(table["score"], dtype=float)))


def test_caps_above_the_test_split_change_nothing(data):
    X, y = data
    capped = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=TASKS, as_frame=False)
    whole = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=TASKS, as_frame=False,
                      retrieval_gallery=None, clustering_sample=None)
    # Bit for bit: 100 test pairs are below both default caps.
    for name in capped:
        np.testing.assert_array_equal(capped[name], whole[name])


def test_caps_below_the_test_split_score_the_sample(data, monkeypatch):
    X, y = data
    seen = []
    retrieval = _tasks._retrieval_metrics

    def spy(V, T, gallery=None, seed=0):
        seen.append((seed, V.shape[0], gallery))
        return retrieval(V, T, gallery, seed)

    monkeypatch.setattr(_tasks, "_retrieval_metrics", spy)
    capped = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=("retrieval", "clustering"),
                       as_frame=False, retrieval_gallery=40, clustering_sample=30)
    whole = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=("retrieval", "clustering"),
                      as_frame=False, retrieval_gallery=None, clustering_sample=None)
    assert {g for _, _, g in seen} == {40, None}
    assert not np.array_equal(capped["score"], whole["score"])
    # The gallery and the k-means sample follow the split's seed, not the value.
    assert len({s for s, _, g in seen if g == 40}) == 2


def test_test_sample_is_a_fixed_subset_per_seed():
    idx = _test_sample(1000, 100, 7)
    assert idx.size == 100 and np.unique(idx).size == 100
    assert np.all(np.diff(idx) > 0) and 0 <= idx[0] and idx[-1] < 1000
    np.testing.assert_array_equal(idx, _test_sample(1000, 100, 7))
    assert not np.array_equal(idx, _test_sample(1000, 100, 8))
    assert _test_sample(100, 100, 7) is None and _test_sample(100, None, 7) is None


def test_retrieval_gallery_is_recall_among_its_pairs(clustered):
    X, _ = clustered
    V, T = X[:, :16], X[:, 16:]
    idx = _test_sample(V.shape[0], 500, 3)
    expected = retrieval_recall_at_k(V[idx], T[idx], k=(1, 5, 10))
    got = dict(_retrieval_metrics(V, T, 500, 3))
    for k in (1, 5, 10):
        assert got[f"i2t_R@{k}"] == expected[f"image_to_text_recall@{k}"]
        assert got[f"t2i_R@{k}"] == expected[f"text_to_image_recall@{k}"]
    # Recall among a gallery of 500 is higher than among all 3000 pairs.
    whole = dict(_retrieval_metrics(V, T))
    assert got["i2t_R@10"] > whole["i2t_R@10"]


def test_sampled_kmeans_agrees_with_full_kmeans():
    """k-means on 1000 of 4000 test pairs, every row assigned, against k-means on
    all rows, on overlapping classes (ARI against the labels about 0.5): the
    labellings agree (adjusted Rand index between them at least 0.85) and the
    scores are within 0.01 of each other."""
    X, y = make_paired_embeddings(4000, 16, n_classes=3, class_sep=1.0, noise=1.0, gap=0.2,
                                  random_state=2)
    V, T = X[:, :16], X[:, 16:]
    full = np.concatenate(_cluster_labels(V, T, 3, 0))
    part = np.concatenate(_cluster_labels(V, T, 3, 0, sample=1000))
    assert adjusted_rand_score(full, part) >= 0.85
    exact = dict(_clustering_metrics(V, T, y, 3, 0))
    approx = dict(_clustering_metrics(V, T, y, 3, 0, sample=1000))
    assert exact["ARI"] > 0.4  # the comparison is on real cluster structure
    for name in ("ARI", "AMI", "modality_ARI"):
        assert abs(approx[name] - exact[name]) <= 0.01


@pytest.mark.parametrize("chunk", [None, 64])
def test_memmap_gives_the_in_memory_table(data, tmp_path, monkeypatch, chunk):
    """All six tasks with both caps below the test split; ``chunk``: the mapped
    rows read 64 at a time (the shift fitted and the prototypes summed over
    several chunks), as an archive larger than one chunk is."""
    X, y = data
    if chunk is not None:
        monkeypatch.setattr(_streaming, "chunk_rows", lambda A: chunk)
        monkeypatch.setattr(_sweep, "chunk_rows", lambda A: chunk)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    kwargs = {"lams": [0.0, 0.5, 1.0], "n_seeds": 2, "tasks": TASKS, "as_frame": False,
              "retrieval_gallery": 60, "clustering_sample": 50}
    in_memory = _by_key(gap_sweep(X, y, **kwargs))
    on_disk = _by_key(gap_sweep(mapped, y, **kwargs))
    assert in_memory.keys() == on_disk.keys()
    for key, score in in_memory.items():
        # The probes train on the mapped rows with the held-out rows weighted 0
        # (the same objective, other rounding); the other tasks see the same rows.
        tol = 1e-4 if key[2] in ("fusion", "image", "text") else 1e-6
        assert abs(on_disk[key] - score) <= tol, key


def test_text_prototypes_in_chunks_equal_one_gather(data, monkeypatch):
    X, y = data
    rng = np.random.RandomState(0)
    train = np.sort(rng.choice(X.shape[0], 400, replace=False))
    classes = np.unique(y)
    T = X[:, 16:] * rng.uniform(0.1, 10.0, size=(X.shape[0], 1))  # rows of any norm
    whole = _sweep._text_prototypes(T, train, y[train], classes)
    monkeypatch.setattr(_sweep, "chunk_rows", lambda T: 37)
    chunked = _sweep._text_prototypes(T, train, y[train], classes)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    # A class absent from the training rows keeps a NaN prototype.
    absent = _sweep._text_prototypes(T, train[y[train] != 2], y[train][y[train] != 2], classes)
    assert np.isnan(absent[2]).all() and np.isfinite(absent[:2]).all()


def test_hashed_duplicate_count_equals_the_exact_one():
    # Rows of 8 KiB: the hashes are taken over four chunks of 512 rows.
    rng = np.random.default_rng(0)
    B = rng.normal(size=(2000, 1024))
    B[100:1200] = B[5]  # row 5 and 1100 copies
    B[1500:1600] = B[1700]  # row 1700 and 100 copies
    B[1800, 0] = -0.0
    B[1801] = B[1800]
    B[1801, 0] = 0.0  # differs from row 1800 in its bytes only: counted distinct
    B[1900] = B[1901]
    B[1900, -1] += 1.0  # differs from row 1901 in its last entry only
    assert _hashed_distinct_and_tied(B) == _distinct_and_tied(B) == (800, 1202)


@pytest.mark.parametrize("block_size", [32])
def test_retrieval_memory_does_not_grow_as_n_squared(block_size):
    """Peak memory of blocked retrieval: a few blocks of scores, far below the
    n x n matrix, and growing about linearly with n."""
    rng = np.random.default_rng(0)
    peaks = {}
    for n in (1500, 3000):
        V = rng.normal(size=(n, 8)).astype(np.float32)
        T = rng.normal(size=(n, 8)).astype(np.float32)
        tracemalloc.start()
        retrieval_recall_at_k(V, T, block_size=block_size)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[3000] < 3000**2 * 4 / 20  # a twentieth of one float32 n x n matrix
    assert peaks[3000] / peaks[1500] < 2.5  # quadratic growth would be 4


@pytest.mark.parametrize("name, value", [("retrieval_gallery", 1), ("clustering_sample", 0),
                                         ("retrieval_gallery", 2.5), ("clustering_sample", "all")])
def test_caps_are_validated(data, name, value):
    X, y = data
    with pytest.raises(ValueError, match=name):
        gap_sweep(X, y, lams=[0.0], n_seeds=1, tasks=("retrieval",), **{name: value})
