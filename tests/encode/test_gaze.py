"""Gaze fixations to heatmaps: readers, the Gaussian map, sentence maps, joint transforms."""

import numpy as np
import pytest

pytest.importorskip("open_clip")
pd = pytest.importorskip("pandas")
torch = pytest.importorskip("torch")
from torchvision.transforms import v2  # noqa: E402

from skgap.encode._gaze import GAZE_LAYOUTS  # noqa: E402
from skgap.encode import (  # noqa: E402
    SynchronizedTransform,
    check_heatmap,
    gaze_heatmap,
    read_fixations,
    sentence_heatmaps,
)


def brute_force(x, y, d, sx, sy, H, W):
    """The duration-weighted sum of Gaussians, pixel by pixel (no factorisation)."""
    out = np.zeros((H, W))
    for r in range(H):
        for c in range(W):
            for k in range(len(x)):
                out[r, c] += d[k] * np.exp(-((c + 0.5 - x[k]) ** 2) / (2 * sx[k] ** 2)
                                           - ((r + 0.5 - y[k]) ** 2) / (2 * sy[k] ** 2))
    return out


def test_heatmap_equals_the_sum_of_gaussians():
    x, y, d = np.array([3.0, 12.5, 7.2]), np.array([4.0, 9.0, 1.5]), np.array([0.2, 0.5, 0.3])
    fix = {"x": x, "y": y, "duration": d}
    got = gaze_heatmap(fix, (11, 16), sigma=2.0, unit="pixels", normalize=None)
    want = brute_force(x, y, d, [2.0] * 3, [2.0] * 3, 11, 16)
    assert got.dtype == np.float32 and got.shape == (11, 16)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    peak = gaze_heatmap(fix, (11, 16), sigma=2.0, unit="pixels")
    assert peak.max() == pytest.approx(1.0)
    total = gaze_heatmap(fix, (11, 16), sigma=2.0, unit="pixels", normalize="sum")
    assert total.sum() == pytest.approx(1.0, rel=1e-5)


def test_degrees_use_the_angular_resolution_per_axis_and_per_fixation():
    fix = {"x": np.array([10.0, 20.0]), "y": np.array([8.0, 5.0]), "duration": np.ones(2),
           "ppd_x": np.array([3.0, 4.0]), "ppd_y": np.array([2.0, 2.5])}
    got = gaze_heatmap(fix, (16, 32), sigma=1.5, normalize=None)
    want = brute_force(fix["x"], fix["y"], fix["duration"], 1.5 * fix["ppd_x"],
                       1.5 * fix["ppd_y"], 16, 32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    scalar = gaze_heatmap(fix, (16, 32), sigma=1.5, pixels_per_degree=4.0, normalize=None)
    np.testing.assert_allclose(scalar, brute_force(fix["x"], fix["y"], np.ones(2), [6.0] * 2,
                                                   [6.0] * 2, 16, 32), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="angular resolution"):
        gaze_heatmap({"x": [1.0], "y": [1.0]}, (4, 4))


def test_longer_fixations_weigh_more():
    fix = {"x": np.array([4.0, 28.0]), "y": np.array([4.0, 28.0]), "duration": np.array([0.2, 0.6])}
    h = gaze_heatmap(fix, (32, 32), sigma=1.0, unit="pixels", normalize=None)
    assert h[28, 28] / h[4, 4] == pytest.approx(3.0, rel=1e-3)


def test_fixations_outside_the_image():
    fix = {"x": np.array([5.0, 40.0]), "y": np.array([5.0, 5.0]), "duration": np.ones(2)}
    with pytest.raises(ValueError, match=r"1 fixation\(s\) lie outside the 10x20 image"):
        gaze_heatmap(fix, (10, 20), sigma=1.0, unit="pixels")
    kept = gaze_heatmap(fix, (10, 20), sigma=1.0, unit="pixels", outside="drop")
    only = gaze_heatmap({k: v[:1] for k, v in fix.items()}, (10, 20), sigma=1.0, unit="pixels")
    np.testing.assert_array_equal(kept, only)


def test_read_reflacx_layout():
    table = pd.DataFrame({
        "timestamp_start_fixation": [0.1, 0.5], "timestamp_end_fixation": [0.4, 1.3],
        "average_x_position": [100.0, 200.0], "average_y_position": [50.0, 60.0],
        "angular_resolution_x_pixels_per_degree": [40.0, 41.0],
        "angular_resolution_y_pixels_per_degree": [39.0, 40.0],
        "average_pupil_area_normalized": [0.1, 0.2],
    })
    fix = read_fixations(table, "reflacx")
    assert set(fix.columns) == {"x", "y", "duration", "start", "end", "ppd_x", "ppd_y"}
    np.testing.assert_allclose(fix["duration"], [0.3, 0.8])
    np.testing.assert_allclose(fix["ppd_x"], [40.0, 41.0])


def test_read_egd_layout_from_csv(tmp_path):
    path = tmp_path / "fixations.csv"
    pd.DataFrame({"DICOM_ID": ["a", "a", "b"], "FPOGS": [0.0, 0.3, 0.1],
                  "FPOGD": [0.25, 0.5, 0.2], "X_ORIGINAL": [10, 20, 30],
                  "Y_ORIGINAL": [5, 6, 7], "FPOGX": [0.1, 0.2, 0.3]}).to_csv(path, index=False)
    fix = read_fixations(path, "egd")
    np.testing.assert_allclose(fix["end"], [0.25, 0.8, 0.3])
    assert fix["image_id"].tolist() == ["a", "a", "b"]
    assert set(GAZE_LAYOUTS) == {"reflacx", "egd"}


def test_read_user_named_columns_and_errors():
    table = {"px": [1.0, 2.0], "py": [3.0, 4.0], "t0": [0.0, 100.0], "t1": [50.0, 400.0]}
    fix = read_fixations(table, x="px", y="py", start="t0", end="t1", time_scale=1e-3)
    np.testing.assert_allclose(fix["duration"], [0.05, 0.3])
    with pytest.raises(ValueError, match=r"no column\(s\) x='nope'"):
        read_fixations(table, x="nope", y="py", duration="t0")
    with pytest.raises(ValueError, match="duration column, or start and end"):
        read_fixations(table, x="px", y="py")
    with pytest.raises(ValueError, match="layout='other'"):
        read_fixations(table, "other")
    with pytest.raises(ValueError, match="end before they start"):
        read_fixations(table, x="px", y="py", start="t1", end="t0")


def test_sentence_heatmaps_use_the_fixations_of_each_sentence():
    fix = read_fixations({"x": [5.0, 25.0], "y": [5.0, 25.0], "s": [0.0, 10.0],
                          "e": [1.0, 11.0]}, x="x", y="y", start="s", end="e")
    maps, counts = sentence_heatmaps(fix, [(1.5, 3.0), (11.5, 12.0), (50.0, 51.0)], (32, 32),
                                     lookback=1.0, sigma=2.0, unit="pixels")
    assert counts.tolist() == [1, 1, 0]
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (4, 4)
    assert np.unravel_index(maps[1].argmax(), maps[1].shape) == (24, 24)
    assert not maps[2].any()
    with pytest.raises(ValueError, match="start and end times"):
        sentence_heatmaps({"x": [1.0], "y": [1.0]}, [(0, 1)], (4, 4))


@pytest.mark.parametrize("bad, match", [
    (np.ones((5, 6)), "size 5x6 but its image is 4x6"),
    (-np.ones((4, 6)), "negative"),
    (np.zeros((4, 6)), "all zero"),
    (np.full((4, 6), np.nan), "NaN"),
])
def test_check_heatmap_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        check_heatmap(bad, (4, 6))


def test_synchronized_transform_moves_image_and_heatmap_together():
    rng = np.random.default_rng(0)
    heat = gaze_heatmap({"x": [10.0, 30.0], "y": [12.0, 40.0], "duration": [1.0, 0.5]},
                        (48, 40), sigma=3.0, unit="pixels")
    # The image's red channel is the heatmap: after any geometric transform the two must agree.
    image = np.zeros((48, 40, 3), dtype=np.uint8)
    image[..., 0] = np.round(heat * 255).astype(np.uint8)
    image[..., 1] = rng.integers(0, 256, (48, 40))
    t = SynchronizedTransform(v2.Compose([
        v2.RandomResizedCrop(32, scale=(0.5, 1.0), antialias=True),
        v2.RandomHorizontalFlip(), v2.RandomRotation(20),
    ]))
    torch.manual_seed(0)
    moved = []
    for _ in range(5):
        img, h = t(image, heat)
        assert img.shape == (3, 32, 32) and h.shape == (32, 32)
        np.testing.assert_allclose(img[0].numpy(), h.numpy(), atol=3 / 255)
        moved.append(h.numpy())
    assert not all(np.allclose(moved[0], m) for m in moved[1:])  # the draws differ
    with pytest.raises(ValueError, match="size 10x10 but its image is 48x40"):
        t(image, np.ones((10, 10)))
