"""Tests of ModalityCentering and CollapseCorrupt against direct computations."""

import pickle

import numpy as np
import pytest
from array_namespaces import array_namespaces
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skgap import CollapseCorrupt, ModalityCentering, ModalityGapShifter
from skgap.datasets import load_coco_clip, make_paired_embeddings
from skgap.measure import modality_gap, retrieval_recall_at_k

D = 16


@pytest.fixture(scope="module")
def data():
    X, y = make_paired_embeddings(400, D, gap=0.8, random_state=0)
    return X[:300], X[300:], y


def unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def reference_centring(X_train, X, alpha, d=D):
    """(u - alpha mu) / ||.|| per block, mu from the training rows, in float64."""
    X_train, X = X_train.astype(np.float64), X.astype(np.float64)
    out = []
    for sl in (slice(0, d), slice(d, 2 * d)):
        mu = unit(X_train[:, sl]).mean(axis=0)
        out.append(unit(unit(X[:, sl]) - alpha * mu))
    return np.hstack(out)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_centring_matches_the_formula(data, alpha):
    X_train, X_test, _ = data
    est = ModalityCentering(alpha=alpha).fit(X_train)
    Z = est.transform(X_test)
    assert Z.dtype == np.float32 and Z.shape == X_test.shape
    np.testing.assert_allclose(Z, reference_centring(X_train, X_test, alpha), atol=2e-6)
    np.testing.assert_allclose(
        est.centroids_[0], unit(X_train[:, :D].astype(np.float64)).mean(axis=0), atol=1e-6
    )


def test_full_centring_zeroes_the_training_centroids(data):
    # Theorem: alpha=1 on the fit rows gives sum_i (u_i - mu) = 0 before the
    # renormalisation, so the output centroid is a weighted mean of zero-sum
    # vectors -- much smaller than the input one -- and the gap shrinks.
    X_train, X_test, _ = data
    Z = ModalityCentering().fit(X_train).transform(X_test)
    before = modality_gap(X_test[:, :D], X_test[:, D:])[1]
    after = modality_gap(Z[:, :D], Z[:, D:])[1]
    assert after < 0.35 * before
    # alpha=0 only normalises: unit input comes back unchanged.
    np.testing.assert_allclose(ModalityCentering(alpha=0).fit(X_train).transform(X_test),
                               X_test, atol=1e-6)


def test_alpha_traces_a_monotone_path(data):
    X_train, X_test, _ = data
    gaps = []
    for alpha in np.linspace(0, 1, 6):
        Z = ModalityCentering(alpha=alpha).fit(X_train).transform(X_test)
        gaps.append(modality_gap(Z[:, :D], Z[:, D:])[1])
    assert np.all(np.diff(gaps) < 0)


def test_scale_invariance_and_float64(data):
    X_train, X_test, _ = data
    est = ModalityCentering(alpha=0.7).fit(X_train)
    Z = est.transform(X_test)
    np.testing.assert_allclose(ModalityCentering(alpha=0.7).fit(5e3 * X_train).transform(
        1e-3 * X_test), Z, atol=2e-6)
    Z64 = est.transform(X_test.astype(np.float64))
    assert Z64.dtype == np.float64
    np.testing.assert_allclose(Z64, Z, atol=2e-6)


def test_partial_fit_equals_fit(data):
    X_train, X_test, _ = data
    full = ModalityCentering().fit(X_train)
    streamed = ModalityCentering()
    for chunk in np.array_split(X_train, 4):
        streamed.partial_fit(chunk)
    np.testing.assert_allclose(streamed.centroids_, full.centroids_, atol=1e-6)


def test_dask_matches_numpy(data):
    da = pytest.importorskip("dask.array")
    X_train, X_test, _ = data
    est = ModalityCentering(alpha=0.5).fit(da.from_array(X_train, chunks=(70, 2 * D)))
    ref = ModalityCentering(alpha=0.5).fit(X_train)
    np.testing.assert_allclose(est.centroids_, ref.centroids_, atol=1e-6)
    out = est.transform(da.from_array(X_test, chunks=(30, 2 * D)))
    np.testing.assert_allclose(out.compute(), ref.transform(X_test), atol=1e-6)
    # C3's noisy fit_transform of a dask array gives the NumPy result.
    c3 = CollapseCorrupt(noise_scale=0.3, random_state=0)
    noisy = c3.fit_transform(da.from_array(X_train, chunks=(70, 2 * D)))
    np.testing.assert_allclose(np.asarray(noisy), clone(c3).fit_transform(X_train), atol=1e-6)


@pytest.mark.parametrize("ns", array_namespaces())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_api_matches_numpy(data, ns, dtype, monkeypatch):
    pytest.importorskip("array_api_compat")
    from sklearn import config_context
    from sklearn.utils._array_api import move_to

    xp, device = ns
    X_train, X_test, _ = data
    scale = np.random.default_rng(0).uniform(1, 4, size=(len(X_train), 1))
    X_train = (X_train * scale).astype(dtype)  # raw rows: normalised first
    X_test = X_test.astype(dtype)
    ref = CollapseCorrupt(noise_scale=0.3, random_state=0)
    Z_ref = ref.fit_transform(X_train)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with config_context(array_api_dispatch=True):
        est = CollapseCorrupt(noise_scale=0.3, random_state=0)
        Z = est.fit_transform(xp.asarray(X_train, device=device))
        T = est.transform(xp.asarray(X_test, device=device))
        C = ModalityCentering(alpha=0.4).fit(xp.asarray(X_train, device=device))
        U = C.transform(xp.asarray(X_test, device=device))
    for out in (Z, T, U):
        assert type(out).__module__.split(".")[0] == xp.__name__.split(".")[0]
        assert out.dtype == xp.asarray(X_test, device=device).dtype

    def back(a):
        return np.asarray(move_to(a, xp=np, device="cpu"))

    atol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(back(Z), Z_ref, atol=atol)
    np.testing.assert_allclose(back(T), ref.transform(X_test), atol=atol)
    np.testing.assert_allclose(
        back(U), ModalityCentering(alpha=0.4).fit(X_train).transform(X_test), atol=atol
    )


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_array_api_is_scale_safe(data, scale, monkeypatch):
    # Theorem: the map depends on each row's direction only, so float32 c * X
    # gives the answer of X even where ||c x||^2 overflows (1e30) or
    # underflows (1e-30) -- torch's vector_norm squares without scaling.
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    from sklearn import config_context

    X_train, X_test, _ = data
    ref = ModalityCentering(alpha=0.7).fit(X_train)
    c3_ref = CollapseCorrupt(noise_scale=0.3, random_state=0)
    Z_ref = c3_ref.fit_transform(X_train)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with config_context(array_api_dispatch=True):
        est = ModalityCentering(alpha=0.7).fit(torch.asarray(X_train * np.float32(scale)))
        U = est.transform(torch.asarray(X_test * np.float32(scale)))
        c3 = CollapseCorrupt(noise_scale=0.3, random_state=0)
        Z = c3.fit_transform(torch.asarray(X_train * np.float32(scale)))
    assert U.dtype == torch.float32 and Z.dtype == torch.float32
    np.testing.assert_allclose(U.numpy(), ref.transform(X_test), atol=2e-6)
    np.testing.assert_allclose(Z.numpy(), Z_ref, atol=2e-6)


def test_feature_names_and_pandas_output(data):
    pd = pytest.importorskip("pandas")
    X_train, _, _ = data
    cols = [f"v{i}" for i in range(D)] + [f"t{i}" for i in range(D)]
    df = pd.DataFrame(X_train, columns=cols)
    for est in (ModalityCentering(), CollapseCorrupt(random_state=0)):
        out = est.set_output(transform="pandas").fit_transform(df)
        assert isinstance(out, pd.DataFrame) and list(out.columns) == cols
        assert list(est.get_feature_names_out()) == cols


def test_three_modalities(data):
    X_train, X_test, _ = data
    rng = np.random.default_rng(0)
    extra = unit(rng.standard_normal((len(X_train) + len(X_test), D)) + 2.0)
    X3_train = np.hstack([X_train, extra[: len(X_train)]])
    X3_test = np.hstack([X_test, extra[len(X_train):]])
    est = ModalityCentering(alpha=0.8, modality_dims=(D, D, D)).fit(X3_train)
    Z = est.transform(X3_test)
    mu = unit(X3_train[:, 2 * D:]).mean(axis=0)
    np.testing.assert_allclose(Z[:, 2 * D:], unit(unit(X3_test[:, 2 * D:]) - 0.8 * mu), atol=2e-6)
    np.testing.assert_allclose(Z[:, :2 * D], reference_centring(X_train, X_test, 0.8), atol=2e-6)
    c3 = CollapseCorrupt(corrupt=2, modality_dims=(D, D, D), random_state=0)
    Zc = c3.fit_transform(X3_train)
    clean = c3.transform(X3_train)
    np.testing.assert_array_equal(Zc[:, :2 * D], clean[:, :2 * D])
    assert not np.allclose(Zc[:, 2 * D:], clean[:, 2 * D:])


def test_pickle_and_clone(data):
    X_train, X_test, _ = data
    est = ModalityCentering(alpha=0.4).fit(X_train)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.transform(X_test), est.transform(X_test))
    assert not hasattr(clone(est), "centroids_")


# --- CollapseCorrupt -----------------------------------------------------------


def test_collapse_corrupt_matches_the_formula(data):
    X_train, X_test, _ = data
    sigma = 0.3
    est = CollapseCorrupt(noise_scale=sigma, random_state=0)
    Z = est.fit_transform(X_train)
    # Replay the noise: one standard normal draw of the text block's shape.
    eps = np.random.RandomState(0).standard_normal((len(X_train), D)) * sigma / np.sqrt(D)
    X64 = X_train.astype(np.float64)
    mu_v, mu_t = unit(X64[:, :D]).mean(0), unit(X64[:, D:]).mean(0)
    np.testing.assert_allclose(Z[:, :D], unit(unit(X64[:, :D]) - mu_v), atol=2e-6)
    np.testing.assert_allclose(Z[:, D:], unit(unit(X64[:, D:]) - mu_t + eps), atol=2e-5)
    # transform never adds noise: it is the full centring of the new rows.
    np.testing.assert_allclose(
        est.transform(X_test), reference_centring(X_train, X_test, 1.0), atol=2e-6
    )
    assert est.corrupt_block_ == 1


def test_noise_scale_and_seed(data):
    X_train, _, _ = data
    a = CollapseCorrupt(noise_scale=0.5, corrupt="image", random_state=3)
    Za = a.fit_transform(X_train)
    assert a.corrupt_block_ == 0
    np.testing.assert_allclose(Za[:, D:], a.transform(X_train)[:, D:], atol=1e-6)
    np.testing.assert_array_equal(Za, clone(a).fit_transform(X_train))
    assert not np.allclose(Za, clone(a).set_params(random_state=4).fit_transform(X_train))
    # The mean squared change of the corrupted rows grows with the noise scale.
    clean = a.transform(X_train)[:, :D]
    moves = []
    for s in (0.1, 0.3, 1.0):
        Z = clone(a).set_params(noise_scale=s).fit_transform(X_train)[:, :D]
        moves.append(np.mean(np.sum((Z - clean) ** 2, axis=1)))
    assert moves[0] < moves[1] < moves[2]
    # No noise: fit_transform is fit().transform(), exactly as the sklearn contract wants.
    for est in (CollapseCorrupt(noise_scale=0), CollapseCorrupt(corrupt=None)):
        np.testing.assert_array_equal(est.fit_transform(X_train), est.transform(X_train))


def test_float32_stays_float32_with_noise(data):
    X_train, _, _ = data
    assert CollapseCorrupt(random_state=0).fit_transform(X_train).dtype == np.float32
    Z = CollapseCorrupt(random_state=0).fit_transform(X_train.astype(np.float64))
    assert Z.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(Z[:, D:], axis=1), 1, atol=1e-12)


def test_text_only_training_transfers_to_images():
    # C3's setting: a classifier trained on (noisy, collapsed) text rows only is
    # applied to image rows of other items. The shared signal carries the class
    # along axis 0; each modality adds its own offset, which has a component
    # along that axis, so in the raw space the text classifier calls most images
    # one class. Collapsing removes the offsets.
    rng = np.random.default_rng(0)
    n, d = 1200, D
    y = rng.integers(0, 2, n)
    S = rng.standard_normal((n, d)) * 0.3
    S[:, 0] += np.where(y == 1, 1.0, -1.0)
    o_v, o_t = np.zeros(d), np.zeros(d)
    o_v[[0, 1]], o_t[[0, 2]] = (1.5, 3.0), (-1.5, 3.0)
    V = S + o_v + 0.3 * rng.standard_normal((n, d))
    T = S + o_t + 0.3 * rng.standard_normal((n, d))
    X = np.hstack([unit(V), unit(T)]).astype(np.float32)
    train, test = slice(0, 800), slice(800, None)

    def transfer_accuracy(transformer):
        Z_train = transformer.fit_transform(X[train])
        Z_test = transformer.transform(X[test])
        clf = LogisticRegression(max_iter=1000).fit(Z_train[:, D:], y[train])
        return clf.score(Z_test[:, :D], y[test])

    raw = transfer_accuracy(ModalityGapShifter(lam=0.0))
    c3 = transfer_accuracy(CollapseCorrupt(noise_scale=0.5, random_state=0))
    assert raw < 0.75
    assert c3 > 0.9


def test_pipeline_uses_noise_at_fit_only(data):
    X_train, X_test, y = data
    y_train = y[:300]
    pipe = make_pipeline(CollapseCorrupt(noise_scale=0.5, random_state=0),
                         LogisticRegression(max_iter=500)).fit(X_train, y_train)
    # Prediction sees the clean centring of the new rows.
    clean = CollapseCorrupt().fit(X_train).transform(X_test)
    np.testing.assert_array_equal(pipe.predict(X_test), pipe[-1].predict(clean))


@pytest.mark.parametrize(
    "est, X_fn, match",
    [
        (ModalityCentering(alpha=1.5), lambda X: X, "alpha"),
        (CollapseCorrupt(noise_scale=-1), lambda X: X, "noise_scale"),
        (CollapseCorrupt(corrupt="audio"), lambda X: X, "corrupt"),
        (CollapseCorrupt(corrupt=2), lambda X: X, "corrupt=2 names block 2"),
        (ModalityCentering(), lambda X: X[:, :-1], "modality_dims"),
        (ModalityCentering(), lambda X: np.where(np.arange(len(X))[:, None] == 3, np.nan, X),
         "NaN"),
        (ModalityCentering(), lambda X: np.where(np.arange(len(X))[:, None] == 2, 0.0, X),
         "zero norm"),
    ],
)
def test_bad_inputs(data, est, X_fn, match):
    with pytest.raises(ValueError, match=match):
        est.fit(X_fn(data[0]))


def test_full_centring_of_a_constant_block_is_refused():
    # All rows of a block equal: centring at alpha=1 leaves no direction.
    X = np.hstack([np.ones((5, 2)), np.random.default_rng(0).standard_normal((5, 2))])
    with pytest.raises(ValueError, match="image block after the shift has 5 row"):
        ModalityCentering().fit(X).transform(X)


def test_transform_checks_width(data):
    est = ModalityCentering().fit(data[0])
    with pytest.raises(ValueError, match="features"):
        est.transform(data[1][:, :20])


def test_coco_centring_raises_recall_while_closing_the_gap():
    # Mean-centring closes the held-out gap and raises R@1.
    try:
        X = load_coco_clip()
    except FileNotFoundError:
        pytest.skip("the shared COCO CLIP embeddings are absent")
    d = 512
    Z = ModalityCentering().fit(X[:400]).transform(X[400:])
    gap_before = modality_gap(X[400:, :d], X[400:, d:])[1]
    gap_after = modality_gap(Z[:, :d], Z[:, d:])[1]
    r_before = retrieval_recall_at_k(X[400:, :d], X[400:, d:], k=1)["image_to_text_recall@1"]
    r_after = retrieval_recall_at_k(Z[:, :d], Z[:, d:], k=1)["image_to_text_recall@1"]
    assert gap_before == pytest.approx(0.869, abs=2e-3)
    assert gap_after == pytest.approx(0.158, abs=2e-3)
    assert r_after > r_before
