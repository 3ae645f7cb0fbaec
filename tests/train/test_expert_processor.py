"""HeatmapProcessor on its own, and the synthetic lesion task it is shown on."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from skgap.datasets import make_lesion_task  # noqa: E402
from skgap.train import HeatmapProcessor  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_shapes_and_the_heatmap_steers_the_output():
    torch.manual_seed(0)
    proc = HeatmapProcessor(patch_size=8, width=32, heads=4)
    x = torch.randn(3, 3, 32, 24)
    h = torch.rand(3, 32, 24)
    out = proc(x, h)
    assert out.shape == x.shape
    torch.testing.assert_close(proc(x, h[:, None]), out)
    other = torch.zeros_like(h)
    other[:, :8, :8] = 1
    assert not torch.allclose(proc(x, other), out)
    # Patches are tokens: the module is built of the documented parts.
    assert proc.patchify.stride == (8, 8) and proc.unpatchify.stride == (8, 8)
    assert proc.attention.num_heads == 4 and proc.out_proj.in_features == 32


def test_defaults_are_ecips_sizes():
    proc = HeatmapProcessor()
    assert (proc.patch_size, proc.width, proc.heads) == (16, 256, 8)


def test_reconstruction_loss_falls_and_every_parameter_learns():
    torch.manual_seed(0)
    data = make_lesion_task(16, image_size=32, random_state=0)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255
    x = (x - 0.5) / 0.25
    proc = HeatmapProcessor(patch_size=8, width=64, heads=4)
    opt = torch.optim.Adam(proc.parameters(), lr=3e-3)
    losses = []
    for i in range(40):
        loss = proc.reconstruction_loss(x)
        opt.zero_grad()
        loss.backward()
        if i == 0:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in proc.parameters())
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("image, heat, match", [
    (torch.zeros(2, 3, 30, 32), torch.zeros(2, 30, 32), "not a multiple of patch_size=8"),
    (torch.zeros(2, 1, 32, 32), torch.zeros(2, 32, 32), "1 channels"),
    (torch.zeros(2, 3, 32, 32), torch.zeros(2, 16, 16), r"heatmap must have shape \(2, 32, 32\)"),
    (torch.zeros(3, 32, 32), torch.zeros(3, 32, 32), "image must be a tensor"),
])
def test_bad_shapes(image, heat, match):
    with pytest.raises(ValueError, match=match):
        HeatmapProcessor(patch_size=8, width=16, heads=2)(image, heat)
    with pytest.raises(ValueError, match="multiple of heads"):
        HeatmapProcessor(width=10, heads=4)


def test_lesion_task_heatmaps_point_at_the_lesion_and_the_control_elsewhere():
    real = make_lesion_task(30, image_size=48, random_state=3)
    control = make_lesion_task(30, image_size=48, heatmaps="random", random_state=3)
    np.testing.assert_array_equal(real.images, control.images)
    assert real.texts == control.texts and (real.labels == control.labels).all()

    def distance_to_peak(d):
        peaks = np.array([np.unravel_index(h.argmax(), h.shape) for h in d.heatmaps]) + 0.5
        return np.hypot(*(peaks - d.centers).T)

    assert np.median(distance_to_peak(real)) < 48 / 10
    assert np.median(distance_to_peak(control)) > 48 / 5
    # The lesion is visible: its neighbourhood is brighter than the image on average.
    r, c = np.round(real.centers[0]).astype(int)
    assert real.images[0, r - 1:r + 2, c - 1:c + 2].mean() > real.images[0].mean()
    for i, t in enumerate(real.texts):
        assert real.class_names[real.labels[i]] in t
    assert real.images.dtype == np.uint8 and real.heatmaps.dtype == np.float32
    assert np.allclose(real.heatmaps.max(axis=(1, 2)), 1.0)
    with pytest.raises(ValueError, match="heatmaps must be 'lesion' or 'random'"):
        make_lesion_task(4, heatmaps="nowhere")
