import numpy as np
import pytest

from skgap.datasets import PRESETS, load_coco_clip, make_paired_embeddings
from skgap.measure import mean_pair_cosine, mean_resultant_length, modality_gap


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_hit_their_statistics(preset):
    X, y = make_paired_embeddings(800, 32, preset=preset, random_state=3)
    V, T = X[:, :32], X[:, 32:]
    p = PRESETS[preset]
    assert mean_resultant_length(V) == pytest.approx(p["image_concentration"], abs=1e-4)
    assert mean_resultant_length(T) == pytest.approx(p["text_concentration"], abs=1e-4)
    assert modality_gap(V, T)[1] == pytest.approx(p["gap"], abs=1e-4)
    assert "source" in p


def test_shape_dtype_units_and_determinism():
    X, y = make_paired_embeddings(100, 10, n_classes=3, random_state=0)
    assert X.shape == (100, 20) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X[:, :10], axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(X[:, 10:], axis=1), 1, atol=1e-5)
    assert set(np.unique(y)) == {0, 1, 2}
    X2, y2 = make_paired_embeddings(100, 10, n_classes=3, random_state=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X64, _ = make_paired_embeddings(100, 10, dtype=np.float64, random_state=0)
    assert X64.dtype == np.float64


def test_knobs_control_cone_and_gap():
    X, _ = make_paired_embeddings(
        500, 16, image_concentration=0.5, text_concentration=0.6, gap=0.3, random_state=0
    )
    assert mean_resultant_length(X[:, :16]) == pytest.approx(0.5, abs=1e-4)
    assert modality_gap(X[:, :16], X[:, 16:])[1] == pytest.approx(0.3, abs=1e-4)


def test_pairs_are_matched():
    X, _ = make_paired_embeddings(400, 32, random_state=0)
    V, T = X[:, :32], X[:, 32:]
    shuffled = T[np.random.default_rng(0).permutation(400)]
    assert mean_pair_cosine(V, T) > mean_pair_cosine(V, shuffled) + 0.02


def test_labels_need_both_modalities():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y = make_paired_embeddings(1500, 32, random_state=0)
    lr = LogisticRegression(max_iter=2000)
    auc = lambda Z: cross_val_score(lr, Z, y, cv=3, scoring="roc_auc").mean()  # noqa: E731
    image, text, both = auc(X[:, :32]), auc(X[:, 32:]), auc(X)
    assert both > max(image, text) + 0.03


def test_multilabel():
    X, Y = make_paired_embeddings(300, 16, n_classes=5, multilabel=True, random_state=0)
    assert Y.shape == (300, 5)
    assert set(np.unique(Y)) <= {0, 1}
    assert 0.1 < Y.mean() < 0.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=1), "n_samples"),
        (dict(n_features=4), "n_features"),
        (dict(n_classes=1), "n_classes"),
        (dict(image_concentration=1.0), "image_concentration"),
        (dict(text_concentration=0), "text_concentration"),
        (dict(gap=-1), "gap"),
        (dict(gap=1.95), "cannot be reached"),
        (dict(preset="nope"), "'preset' parameter"),
        (dict(dtype=np.int32), "floating"),
        (dict(noise=-1), "noise"),
        (dict(class_sep=-1), "class_sep"),
        (dict(spectrum_decay=-0.1), "spectrum_decay"),
        (dict(spectrum_decay=5), "spectrum_decay"),
        (dict(axis_spread=-0.1), "axis_spread"),
        (dict(axis_spread=(0.1, 3.0)), "axis_spread"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_paired_embeddings(**{"n_samples": 50, "n_features": 16, **kwargs})


def _spectrum(X, d):
    """Pooled PC-2 share, per-modality PC-1 shares, std of the cosine with each cone axis."""
    from sklearn.decomposition import PCA

    V, T = X[:, :d].astype(float), X[:, d:].astype(float)
    pooled = PCA(2).fit(np.vstack([V, T])).explained_variance_ratio_[1]
    own = [PCA(1).fit(B).explained_variance_ratio_[0] for B in (V, T)]
    axis = [np.std(B @ (B.mean(0) / np.linalg.norm(B.mean(0)))) for B in (V, T)]
    return pooled, own, axis


def test_coco_preset_matches_the_real_spectrum():
    """The cones are clouds like real CLIP cones, not lines (issue: PC 2 held 1-3%)."""
    try:
        real = load_coco_clip()
        pooled, own, axis = _spectrum(real, 512)
    except FileNotFoundError:  # the figures measured on the shared data, in the docstring
        pooled, own, axis = 0.057, [0.097, 0.099], [0.065, 0.081]
    X, _ = make_paired_embeddings(2000, 64, preset="coco-clip", noise=4.0, random_state=0)
    s_pooled, s_own, s_axis = _spectrum(X, 64)
    assert s_pooled == pytest.approx(pooled, abs=0.01)
    np.testing.assert_allclose(s_own, own, atol=0.015)
    np.testing.assert_allclose(s_axis, axis, atol=0.005)
    # Without the calibration the same data are the old thin discs.
    flat, _ = make_paired_embeddings(2000, 64, preset="coco-clip", noise=4.0, random_state=0,
                                     spectrum_decay=0, axis_spread=0)
    f_pooled, _, f_axis = _spectrum(flat, 64)
    assert f_pooled < 0.035 and max(f_axis) < 0.01


@pytest.mark.parametrize("spread", [0.0, 0.3, (0.1, 0.6)])
def test_spectrum_knobs_keep_the_exact_calibration(spread):
    X, _ = make_paired_embeddings(400, 16, image_concentration=0.8, text_concentration=0.6,
                                  gap=0.7, spectrum_decay=1.0, axis_spread=spread,
                                  random_state=2)
    V, T = X[:, :16], X[:, 16:]
    assert mean_resultant_length(V) == pytest.approx(0.8, abs=1e-6)
    assert mean_resultant_length(T) == pytest.approx(0.6, abs=1e-6)
    assert modality_gap(V, T)[1] == pytest.approx(0.7, abs=1e-6)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1, atol=1e-5)


def test_load_coco_clip_real_data():
    try:
        X = load_coco_clip()
    except FileNotFoundError:
        pytest.skip("shared COCO CLIP embeddings are not present")
    assert X.shape == (500, 1024) and X.dtype == np.float32
    V, T = X[:, :512], X[:, 512:]
    # The figures the data's README reports.
    assert modality_gap(V, T)[1] == pytest.approx(0.851, abs=2e-3)
    assert mean_resultant_length(V) == pytest.approx(0.730, abs=2e-3)
    assert mean_pair_cosine(V, T) == pytest.approx(0.310, abs=2e-3)


def test_load_coco_clip_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="features_clip.npy"):
        load_coco_clip(tmp_path)
    bad = tmp_path / "features_clip.npy"
    np.save(bad, np.zeros((3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, n, d\)"):
        load_coco_clip(tmp_path)
