"""Tests of GapClosingAdapter: gap closing, retrieval, clustering, sklearn API."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import v_measure_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from skgap.datasets import make_paired_embeddings  # noqa: E402
from skgap.measure import modality_gap, retrieval_recall_at_k
from skgap.train._adapter import GapClosingAdapter
from skgap.train._data import train_validation_split  # noqa: E402
from skgap.train._heads import Heads, init_head_params  # noqa: E402
from skgap.train._loop import Trainer  # noqa: E402

D = 32
# CLIP's own temperature is about 0.01; at that temperature contrastive
# training alone keeps the gap, which makes the comparison meaningful.
TAU = 0.01


def blocks(Z, n_blocks=2):
    return np.split(Z, n_blocks, axis=1)


def recall_at_1(Z):
    V, T = blocks(Z)
    r = retrieval_recall_at_k(V, T, k=1)
    return 0.5 * (r["image_to_text_recall@1"] + r["text_to_image_recall@1"])


def joint_v_measure(Z, y):
    """V-measure of k-means on both modalities pooled (the group-wise semantics)."""
    V, T = blocks(Z)
    labels = KMeans(len(np.unique(y)), n_init=4, random_state=0).fit_predict(np.vstack([V, T]))
    return v_measure_score(np.concatenate([y, y]), labels)


def gap(Z, n_blocks=2):
    B = blocks(Z, n_blocks)
    return modality_gap(B[0], B[1])[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices on a shared machine: threads only add overhead.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data():
    X, y = make_paired_embeddings(
        1500, D, n_classes=4, class_sep=1.5, noise=1.0, gap=1.0,
        image_concentration=0.8, text_concentration=0.8, random_state=0,
    )
    return X[:1000], X[1000:], y[:1000], y[1000:]


@pytest.fixture(scope="module")
def fitted(data):
    X_train = data[0]
    closing = GapClosingAdapter(temperature=TAU, random_state=0).fit(X_train)
    plain = GapClosingAdapter(
        temperature=TAU, w_atp=0, w_cu=0, init="identity", random_state=0
    ).fit(X_train)
    return closing, plain


def test_atp_cu_closes_the_gap_and_keeps_retrieval(data, fitted):
    _, X_test, _, y_test = data
    closing, _ = fitted
    Z = closing.transform(X_test)
    before, after = gap(X_test), gap(Z)
    assert before > 0.9
    assert after <= 0.2 * before  # at least 80% of the gap closed
    assert recall_at_1(Z) >= recall_at_1(X_test) - 0.03
    assert joint_v_measure(Z, y_test) > joint_v_measure(X_test, y_test) + 0.3


def test_contrastive_loss_alone_keeps_the_gap(data, fitted):
    _, X_test, _, y_test = data
    _, plain = fitted
    Z = plain.transform(X_test)
    assert gap(Z) >= 0.8 * gap(X_test)
    # With the gap in place, k-means still splits by modality, not by class.
    assert joint_v_measure(Z, y_test) < joint_v_measure(X_test, y_test) + 0.1


def test_history_records_losses_gap_and_validation(data, fitted):
    closing, _ = fitted
    h = closing.history_
    assert len(h) == closing.n_iter_ >= 1
    assert 1 <= closing.best_epoch_ <= closing.n_iter_
    keys = {
        "epoch", "train_loss", "train_clip", "train_atp", "train_cu", "train_gap",
        "valid_loss", "valid_clip", "valid_atp", "valid_cu", "valid_gap",
        "valid_recall@1", "temperature", "expert_steps", "mixup_lambda", "time",
    }
    assert set(h[0]) == keys
    assert [r["epoch"] for r in h] == list(range(1, len(h) + 1))
    for r in h:
        total = r["train_clip"] + r["train_atp"] + r["train_cu"]
        assert r["train_loss"] == pytest.approx(total, rel=1e-6, abs=1e-6)
    # The centred start removes most of the gap before the first epoch ends,
    # and training keeps it closed.
    assert max(r["train_gap"] for r in h) < 0.2 * gap(data[0])
    assert max(r["valid_gap"] for r in h) < 0.2 * gap(data[0])
    assert np.isnan(h[0]["mixup_lambda"]) and h[0]["expert_steps"] == 0


def test_history_recall_is_that_of_the_kept_heads_on_the_held_out_rows(data, fitted):
    # Recomputed independently: the rows fit held out (its first draw from the
    # seed) mapped by the heads it kept (those of best_epoch).
    closing, _ = fitted
    X_train = data[0]
    _, held_out = train_validation_split(len(X_train), 0.1, np.random.RandomState(0))
    recorded = closing.history_[closing.best_epoch_ - 1]["valid_recall@1"]
    assert recorded == pytest.approx(recall_at_1(closing.transform(X_train[held_out])), abs=1e-12)
    # A recall over 100 held-out pairs in two directions is a multiple of 1/200.
    for r in closing.history_:
        assert r["valid_recall@1"] * 200 == pytest.approx(round(r["valid_recall@1"] * 200))


def test_early_stopping_keeps_the_best_epoch(data):
    X_train = data[0][:400]
    est = GapClosingAdapter(
        temperature=TAU, epochs=40, lr=0.05, n_iter_no_change=2, tol=0.0, random_state=0
    ).fit(X_train)
    losses = [r["valid_loss"] for r in est.history_]
    assert est.n_iter_ < 40
    assert est.best_epoch_ == int(np.argmin(losses)) + 1
    assert est.n_iter_ == est.best_epoch_ + 2


def test_transform_layout_units_and_dtype(data, fitted):
    _, X_test, _, _ = data
    closing, _ = fitted
    Z32 = closing.transform(X_test)
    assert Z32.shape == X_test.shape and Z32.dtype == np.float32
    for B in blocks(Z32):
        np.testing.assert_allclose(np.linalg.norm(B, axis=1), 1, rtol=1e-5)
    Z64 = closing.transform(X_test.astype(np.float64))
    assert Z64.dtype == np.float64
    np.testing.assert_allclose(Z64, Z32, atol=1e-5)
    # Rows need not be unit: each block is normalised first.
    np.testing.assert_allclose(closing.transform(3.0 * X_test), Z32, atol=1e-6)
    names = closing.get_feature_names_out()
    assert len(names) == X_test.shape[1] and names[0] == "gapclosingadapter0"


def test_heads_start_at_the_identity():
    rng = np.random.RandomState(0)
    X, _ = make_paired_embeddings(50, 8, random_state=0)
    params = init_head_params((8, 8), 8, hidden_dim=5, rng=rng)
    heads = Heads(params, torch.device("cpu"))
    Z = heads([torch.as_tensor(B) for B in blocks(X)])
    np.testing.assert_allclose(np.hstack([z.detach().numpy() for z in Z]), X, atol=1e-6)
    # Different widths: one shared semi-orthogonal map per input width.
    params = init_head_params((8, 8, 12), 6, hidden_dim=None, rng=rng)
    np.testing.assert_array_equal(params[0]["weight"], params[1]["weight"])
    W = params[2]["weight"]
    np.testing.assert_allclose(W @ W.T, np.eye(6), atol=1e-6)


def test_centered_init_is_modality_centring():
    # With the training centroids, the untrained heads compute (z - mu_m) / ||.||,
    # the transform of ModalityCentering(alpha=1).
    from skgap import ModalityCentering

    X, _ = make_paired_embeddings(60, 8, random_state=1)
    mus = [B.astype(np.float64).mean(axis=0) for B in blocks(X)]
    params = init_head_params((8, 8), 8, hidden_dim=4, rng=np.random.RandomState(0),
                              centroids=mus)
    heads = Heads(params, torch.device("cpu"), torch.float64)
    Z = heads([torch.as_tensor(B, dtype=torch.float64) for B in blocks(X)])
    expected = ModalityCentering().fit(X).transform(X.astype(np.float64))
    np.testing.assert_allclose(np.hstack([z.detach().numpy() for z in Z]), expected, atol=1e-6)


def two_cones(n=1200, d=32, offset=0.8, noise=0.5, seed=0):
    """Shared signal plus a separate offset per modality .

    ``v_i = (o_V + s_i + e_i) / ||.||`` and ``t_i = (o_T + s_i + e'_i) / ||.||``
    with orthogonal offsets of norm ``offset``, ``s_i ~ N(0, I/d)`` and noise
    ``e ~ N(0, noise^2 I/d)``.
    """
    rng = np.random.default_rng(seed)
    O = np.linalg.qr(rng.standard_normal((d, 2)))[0].T * offset
    S = rng.standard_normal((n, d)) / np.sqrt(d)
    V = O[0] + S + noise * rng.standard_normal((n, d)) / np.sqrt(d)
    T = O[1] + S + noise * rng.standard_normal((n, d)) / np.sqrt(d)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    return np.hstack([V, T]).astype(np.float32)


def image_to_text_r1(Z, d):
    return retrieval_recall_at_k(Z[:, :d], Z[:, d:], k=1)["image_to_text_recall@1"]


def held_out_result(X, n_train, d):
    """Gap and image->text R@1 of the held-out rows, frozen and adapted with defaults."""
    X_test = X[n_train:]
    Z = GapClosingAdapter(random_state=0).fit(X[:n_train]).transform(X_test)
    return (modality_gap(X_test[:, :d], X_test[:, d:])[1], modality_gap(Z[:, :d], Z[:, d:])[1],
            image_to_text_r1(X_test, d), image_to_text_r1(Z, d))


def test_defaults_close_a_synthetic_held_out_gap():
    # The target: >= 80% of the held-out gap closed, R@1 within 5 points.
    gap0, gap1, r0, r1 = held_out_result(two_cones(), 900, 32)
    assert gap0 > 0.75
    assert gap1 <= 0.2 * gap0
    assert r1 >= r0 - 0.05


def test_defaults_close_half_the_coco_gap():
    # Fit on the first 400 COCO pairs, evaluate on the other 100.
    from skgap.datasets import load_coco_clip

    try:
        X = load_coco_clip()
    except FileNotFoundError:
        pytest.skip("the shared COCO CLIP embeddings are absent")
    gap0, gap1, r0, r1 = held_out_result(X, 400, 512)
    assert gap0 == pytest.approx(0.869, abs=2e-3)
    assert gap1 <= 0.5 * gap0
    assert r1 >= r0 - 0.05


def test_deterministic_with_random_state(data):
    X_train = data[0][:300]
    kw = dict(epochs=3, mixup_alpha=0.4, random_state=7)
    a = GapClosingAdapter(**kw).fit(X_train)
    b = GapClosingAdapter(**kw).fit(X_train)
    for pa, pb in zip(a.head_params_, b.head_params_):
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k])
    np.testing.assert_array_equal(a.transform(X_train), b.transform(X_train))
    c = GapClosingAdapter(**{**kw, "random_state": 8}).fit(X_train)
    assert not np.array_equal(a.head_params_[0]["weight"], c.head_params_[0]["weight"])


def test_pickle_and_clone(data, fitted):
    _, X_test, _, _ = data
    closing, _ = fitted
    blob = pickle.dumps(closing)
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(X_test), closing.transform(X_test))
    # The state is plain NumPy: no torch objects travel in the pickle.
    for p in closing.head_params_:
        assert all(isinstance(v, np.ndarray) for v in p.values())
    assert b"torch" not in blob
    fresh = clone(closing)
    assert fresh.get_params() == closing.get_params()
    assert not hasattr(fresh, "head_params_")


def test_mlp_heads_and_out_dim(data):
    X_train, X_test, _, _ = data
    est = GapClosingAdapter(
        hidden_dim=16, out_dim=24, temperature=TAU, epochs=15, random_state=0
    ).fit(X_train)
    Z = est.transform(X_test)
    assert Z.shape == (len(X_test), 48)
    assert set(est.head_params_[0]) == {
        "weight", "bias", "hidden_weight", "hidden_bias", "out_weight"
    }
    assert np.abs(est.head_params_[0]["out_weight"]).max() > 0  # the MLP was trained
    assert gap(Z) < 0.5 * gap(X_test)


def test_three_modalities_and_unequal_widths():
    rng = np.random.default_rng(0)
    X, _ = make_paired_embeddings(300, 8, gap=1.0, random_state=0)
    V, T = blocks(X)
    U = T @ np.linalg.qr(rng.standard_normal((8, 8)))[0] + 0.1  # a third, shifted block
    X3 = np.hstack([V, T, U]).astype(np.float32)
    est = GapClosingAdapter(n_modalities=3, epochs=5, random_state=0).fit(X3)
    Z = est.transform(X3)
    assert Z.shape == X3.shape and est.modality_dims_ == (8, 8, 8)
    X_uneq = np.hstack([V, np.hstack([T, T[:, :4]])]).astype(np.float32)
    est = GapClosingAdapter(modality_dims=(8, 12), out_dim=6, epochs=3, random_state=0)
    assert est.fit_transform(X_uneq).shape == (300, 12)
    with pytest.raises(ValueError, match="out_dim"):
        GapClosingAdapter(modality_dims=(8, 12), epochs=1).fit(X_uneq)
    with pytest.raises(ValueError, match="n_modalities=3"):
        GapClosingAdapter(modality_dims=(8, 12), n_modalities=3, out_dim=4).fit(X_uneq)


def test_learned_temperature(data):
    X_train = data[0][:400]
    est = GapClosingAdapter(learn_temperature=True, temperature=0.07, epochs=5,
                            lr=0.01, random_state=0).fit(X_train)
    taus = [r["temperature"] for r in est.history_]
    assert all(0.01 <= t <= 1 for t in taus)
    assert est.temperature_ != pytest.approx(0.07)
    fixed = GapClosingAdapter(temperature=0.07, epochs=2, random_state=0).fit(X_train)
    assert fixed.temperature_ == 0.07


def test_mixup_draws_beta_coefficients(data):
    X_train = data[0][:400]
    est = GapClosingAdapter(mixup_alpha=0.5, epochs=3, random_state=0).fit(X_train)
    lam = [r["mixup_lambda"] for r in est.history_]
    assert all(0 <= v <= 1 for v in lam)
    plain = GapClosingAdapter(epochs=3, random_state=0).fit(X_train)
    assert not np.array_equal(est.head_params_[0]["weight"], plain.head_params_[0]["weight"])


def _trainer(X, X_expert=None, **params):
    est = GapClosingAdapter(**params)
    B = [torch.as_tensor(b) for b in blocks(X)]
    E = None if X_expert is None else [torch.as_tensor(b) for b in blocks(X_expert)]
    params = init_head_params((D, D), D, None, np.random.RandomState(0))
    return Trainer(est, Heads(params, torch.device("cpu")), B, E, np.random.RandomState(0))


def test_mixup_mixes_pairs_in_every_modality(data):
    X = data[0][:8]
    batch, used_expert, lam = _trainer(X, mixup_alpha=0.5)._batch(np.arange(8), 0, 10)
    # Replay the draws: lambda ~ Beta(0.5, 0.5), then one permutation for all blocks.
    rng = np.random.RandomState(0)
    lam_ref, perm = rng.beta(0.5, 0.5), rng.permutation(8)
    assert lam == lam_ref and not used_expert
    for b, B in zip(batch, blocks(X)):
        M = lam_ref * B + (1 - lam_ref) * B[perm]
        np.testing.assert_allclose(b.numpy(), M / np.linalg.norm(M, axis=1, keepdims=True),
                                   atol=1e-6)
    plain, _, lam = _trainer(X)._batch(np.arange(8), 0, 10)
    assert lam is None
    np.testing.assert_array_equal(np.hstack([b.numpy() for b in plain]), X)


def test_expert_pairs_join_the_batch(data):
    X, X_expert = data[0][:8], data[1][:5]
    trainer = _trainer(X, X_expert, batch_size=4)
    # Step 60 of 100 is in the annealing phase (p = 0.275); step 0 is cold.
    assert trainer._batch(np.arange(4), 0, 100)[1] is False
    for _ in range(50):
        batch, used_expert, _ = trainer._batch(np.arange(4), 60, 100)
        if used_expert:
            break
    assert used_expert
    V = batch[0].numpy()
    assert V.shape == (8, D)  # 4 pairs plus min(batch_size, n_expert) = 4 expert pairs
    np.testing.assert_array_equal(V[:4], blocks(X)[0][:4])
    expert_rows = {tuple(r) for r in blocks(X_expert)[0]}
    assert all(tuple(r) in expert_rows for r in V[4:])


def test_expert_curriculum_follows_the_schedule(data):
    X_train, X_test, _, _ = data
    est = GapClosingAdapter(epochs=20, batch_size=100, early_stopping=False,
                            validation_fraction=0, random_state=0)
    est.fit(X_train, X_expert=X_test[:150])
    per_epoch = np.array([r["expert_steps"] for r in est.history_])
    # 10 steps per epoch, 200 in all: the first 10% (epochs 1-2) get none.
    assert per_epoch[:2].sum() == 0
    assert per_epoch.sum() > 0
    # The expected count is the sum of the schedule: about 0.05*40 + 0.275*60 + ...
    from skgap.train import expert_probability

    expected = expert_probability(np.arange(200), 200).sum()
    assert abs(per_epoch.sum() - expected) < 4 * np.sqrt(expected)
    # Expert pairs change what is learned.
    plain = clone(est).fit(X_train)
    assert not np.array_equal(est.head_params_[0]["weight"], plain.head_params_[0]["weight"])
    with pytest.raises(ValueError, match="X_expert has 10 columns"):
        clone(est).fit(X_train, X_expert=X_test[:, :10])


def test_score_is_mean_recall_at_1(data, fitted):
    _, X_test, _, _ = data
    closing, _ = fitted
    assert closing.score(X_test) == pytest.approx(recall_at_1(closing.transform(X_test)))


def test_grid_search_over_w_cu(data):
    X_train, _, y_train, _ = data
    X, y = X_train[:300], y_train[:300]
    base = GapClosingAdapter(epochs=2, random_state=0)
    search = GridSearchCV(base, {"w_cu": [0.0, 1.0]}, cv=2).fit(X)
    assert search.best_params_["w_cu"] in (0.0, 1.0)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    pipe = make_pipeline(base, LogisticRegression(max_iter=200))
    search = GridSearchCV(pipe, {"gapclosingadapter__w_cu": [0.0, 1.0]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.5


def test_set_output_pandas(data):
    pd = pytest.importorskip("pandas")
    X_train = data[0][:200]
    est = GapClosingAdapter(epochs=1, random_state=0).set_output(transform="pandas")
    out = est.fit_transform(X_train)
    assert isinstance(out, pd.DataFrame) and out.shape == X_train.shape


@pytest.mark.parametrize(
    "X_fn, kwargs, match",
    [
        (lambda X: X, dict(validation_fraction=0.0), "early_stopping"),
        (lambda X: X[:3], {}, "validation"),
        (lambda X: np.where(np.arange(len(X))[:, None] == 1, np.nan, X), {}, "NaN"),
        (lambda X: np.where(np.arange(len(X))[:, None] == 2, 0.0, X), {}, "zero norm"),
        (lambda X: X[:, :-1], {}, "modality_dims"),
        (lambda X: X, dict(w_cu=-1.0), "w_cu"),
        (lambda X: X, dict(device="tpu:9"), "device"),
    ],
)
def test_bad_inputs(data, X_fn, kwargs, match):
    X = data[0][:50]
    with pytest.raises(ValueError, match=match):
        GapClosingAdapter(epochs=1, **kwargs).fit(X_fn(X))


def test_transform_checks_layout(fitted, data):
    closing, _ = fitted
    with pytest.raises(ValueError, match="features"):
        closing.transform(data[1][:, :20])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_without_cuda(data):
    with pytest.raises(ValueError, match="CUDA is not available"):
        GapClosingAdapter(epochs=1, device="cuda").fit(data[0][:50])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data):
    X_train, X_test, _, _ = data
    kw = dict(epochs=3, random_state=0, temperature=TAU)
    gpu = GapClosingAdapter(device="cuda", **kw).fit(X_train)
    cpu = GapClosingAdapter(device="cpu", **kw).fit(X_train)
    np.testing.assert_allclose(gpu.transform(X_test), cpu.transform(X_test), atol=1e-3)
