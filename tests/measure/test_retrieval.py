import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skgap.measure import _retrieval, retrieval_recall_at_k


def clip_benchmark_recall(V, T, ks, groups=None):
    """The CLIP_benchmark definition, on the full score matrix (no ties expected)."""
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    T = T / np.linalg.norm(T, axis=1, keepdims=True)
    S = V @ T.T
    groups = np.arange(T.shape[0]) if groups is None else np.asarray(groups)
    positive = groups[None, :] == np.arange(V.shape[0])[:, None]  # (n_images, n_texts)
    out = {}
    order_i2t = np.argsort(-S, axis=1)
    order_t2i = np.argsort(-S.T, axis=1)
    for k in ks:
        topk = order_i2t[:, :k]
        hits = np.take_along_axis(positive, topk, axis=1).any(axis=1)
        out[f"image_to_text_recall@{k}"] = hits.mean()
    for k in ks:
        topk = order_t2i[:, :k]
        hits = (topk == groups[:, None]).any(axis=1)
        out[f"text_to_image_recall@{k}"] = hits.mean()
    return out


@pytest.mark.parametrize("block_size", [1, 7, None])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_clip_benchmark_definition(seed, block_size):
    rng = np.random.default_rng(seed)
    n, d = 60, 8
    V = rng.standard_normal((n, d))
    T = V + 1.5 * rng.standard_normal((n, d))
    ks = (1, 3, 10)
    got = retrieval_recall_at_k(V, T, k=ks, block_size=block_size)
    want = clip_benchmark_recall(V, T, ks)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


@pytest.mark.parametrize("block_size", [2, None])
def test_several_captions_per_image_hit_when_any_is_in_top_k(block_size):
    rng = np.random.default_rng(3)
    n_images, d = 25, 6
    V = rng.standard_normal((n_images, d))
    groups = np.repeat(np.arange(n_images), 3)
    rng.shuffle(groups)
    T = V[groups] + 1.2 * rng.standard_normal((groups.size, d))
    ks = (1, 2, 5)
    got = retrieval_recall_at_k(V, T, k=ks, groups=groups, block_size=block_size)
    want = clip_benchmark_recall(V, T, ks, groups)
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


def test_hit_if_any_caption_hand_made():
    V = np.eye(3)
    # Image 0 has two captions: one far away, one right on it.
    T = np.array([[0.0, 0.2, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 1.0]])
    groups = [0, 0, 1, 2]
    r = retrieval_recall_at_k(V, T, k=(1,), groups=groups)
    assert r["image_to_text_recall@1"] == 1.0
    # Caption 0 of image 0 points at image 2: one miss out of four texts.
    assert r["text_to_image_recall@1"] == 0.75


def test_real_coco_embeddings_match_the_published_number():
    from skgap.datasets import load_coco_clip

    try:
        X = load_coco_clip()
    except FileNotFoundError:
        pytest.skip("the shared COCO CLIP embeddings are absent")
    r = retrieval_recall_at_k(X[:, :512], X[:, 512:], k=(1,))
    # The data README: image->text R@1 = 0.552.
    assert r["image_to_text_recall@1"] == pytest.approx(0.552)


def test_ties_count_against_the_query():
    E = np.ones((5, 3))
    r = retrieval_recall_at_k(E, E, k=(1, 4, 5))
    assert r["image_to_text_recall@1"] == 0.0
    assert r["image_to_text_recall@4"] == 0.0
    assert r["image_to_text_recall@5"] == 1.0
    assert r["text_to_image_recall@1"] == 0.0
    assert r["text_to_image_recall@4"] == 0.0
    assert r["text_to_image_recall@5"] == 1.0


def test_identical_pairs_are_all_found():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((40, 10))
    r = retrieval_recall_at_k(V, 3.0 * V, k=1)
    assert r == {"image_to_text_recall@1": 1.0, "text_to_image_recall@1": 1.0}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 10.0))
def test_invariant_to_row_scaling_and_rotation(seed, scale):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((20, 5))
    T = V + rng.standard_normal((20, 5))
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    base = retrieval_recall_at_k(V, T, k=(1, 5))
    moved = retrieval_recall_at_k(
        scale * V @ Q, (T @ Q) * rng.uniform(0.5, 2.0, size=(20, 1)), k=(1, 5)
    )
    assert moved == pytest.approx(base)


def test_float32_and_float64_agree(paired):
    X, _ = paired
    r32 = retrieval_recall_at_k(X[:, :16], X[:, 16:])
    r64 = retrieval_recall_at_k(X[:, :16].astype(np.float64), X[:, 16:].astype(np.float64))
    assert r32 == pytest.approx(r64)


def test_blocks_bound_the_score_matrix(monkeypatch):
    """The automatic block never holds more than _BLOCK_ELEMENTS scores."""
    seen = []
    real = _retrieval._block_rows

    def spy(n_columns, block_size):
        rows = real(n_columns, block_size)
        seen.append(rows * n_columns)
        return rows

    monkeypatch.setattr(_retrieval, "_BLOCK_ELEMENTS", 100)
    monkeypatch.setattr(_retrieval, "_block_rows", spy)
    rng = np.random.default_rng(0)
    V = rng.standard_normal((50, 4))
    T = V + rng.standard_normal((50, 4))
    r = retrieval_recall_at_k(V, T, k=(1, 5))
    assert max(seen) <= 100
    assert r == pytest.approx(clip_benchmark_recall(V, T, (1, 5)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": ()}, "at least one"),
        ({"k": 0}, "'k' parameter"),
        ({"k": (1, 2.5)}, "positive integers"),
        ({"k": True}, "'k' parameter"),
        ({"block_size": 0}, "block_size"),
        ({"groups": [0, 1]}, "one entry per text"),
        ({"groups": np.array([0.5, 1, 2, 3, 4, 5])}, "integer"),
        ({"groups": [0, 1, 2, 3, 4, 9]}, r"\[0, 5\]"),
        ({"groups": [0, 0, 1, 1, 2, 2]}, "no text"),
    ],
)
def test_bad_arguments(kwargs, match):
    rng = np.random.default_rng(0)
    V, T = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    with pytest.raises(ValueError, match=match):
        retrieval_recall_at_k(V, T, **kwargs)


def test_float_groups_holding_whole_numbers_are_accepted():
    V = np.eye(2)
    r = retrieval_recall_at_k(V, np.eye(2), k=1, groups=np.array([0.0, 1.0]))
    assert r["image_to_text_recall@1"] == 1.0


def test_bad_inputs():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((6, 3))
    with pytest.raises(ValueError, match="columns"):
        retrieval_recall_at_k(V, rng.standard_normal((6, 4)))
    with pytest.raises(ValueError, match="Pass groups"):
        retrieval_recall_at_k(V, rng.standard_normal((5, 3)))
    bad = V.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retrieval_recall_at_k(bad, V)
    zero = V.copy()
    zero[4] = 0
    with pytest.raises(ValueError, match="zero norm"):
        retrieval_recall_at_k(V, zero)
