import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from skgap.datasets import make_paired_embeddings  # noqa: E402
from skgap.evaluate import summarize_sweep  # noqa: E402
from skgap.measure import modality_gap
from skgap.plotting import plot_cones, plot_gap_sweep, plot_lambda_curves  # noqa: E402
from skgap.transform._shift import ModalityGapShifter


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def X():
    return make_paired_embeddings(300, 16, preset="coco-clip", random_state=0)[0]


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_plot_cones_single_panel(X):
    fig = plot_cones(X)
    (ax,) = fig.axes
    assert ax.get_xlabel().startswith("PC 1 (") and "% of variance" in ax.get_xlabel()
    assert ax.get_ylabel().startswith("PC 2 (")
    assert "R_{\\mathrm{image}}" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["image embeddings", "image centroid", "text embeddings", "text centroid"]
    # The gap norm is named in the title, where it covers no data.
    gap = modality_gap(X[:, :16], X[:, 16:])[1]
    assert f"= {gap:.3f}" in ax.get_title()
    assert not [t for t in _texts(ax) if t]
    clouds = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in clouds] == [300, 1, 1, 300, 1, 1]
    # The arrow runs from the text centroid to the image centroid (Delta = mu_V - mu_T).
    image_centroid, text_centroid = clouds[1].get_offsets()[0], clouds[4].get_offsets()[0]
    (arrow,) = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    np.testing.assert_allclose(arrow.xy, image_centroid)
    np.testing.assert_allclose(arrow.xyann, text_centroid)
    assert np.linalg.norm(image_centroid - text_centroid) > 0.5


def test_plot_cones_figure_title(X):
    fig = plot_cones(X, lam=0.5, title="my data")
    assert fig._suptitle.get_text() == "my data"
    assert fig.axes[0].get_title().startswith("before the shift")
    assert plot_cones(X, title=None)._suptitle is None


def test_plot_cones_before_and_after_share_axes(X):
    fig = plot_cones(X, lam=1.0, max_points=100)
    before, after = fig.axes
    assert "λ" in after.get_title() or "lambda" in after.get_title()
    assert "= 1" in after.get_title()
    assert before.get_xlim() == after.get_xlim()
    assert before.get_ylim() == after.get_ylim()
    Z = ModalityGapShifter(lam=1.0).fit_transform(X)
    shifted_gap = modality_gap(Z[:, :16], Z[:, 16:])[1]
    assert f"= {shifted_gap:.3f}" in after.get_title()
    clouds = [c for c in before.collections if len(c.get_offsets()) > 1]
    assert [len(c.get_offsets()) for c in clouds] == [100, 100]
    # The tighter cone is drawn on top of the wider one, and more opaque.
    for ax in (before, after):
        image, text = [c for c in ax.collections if len(c.get_offsets()) > 1]
        assert image.get_zorder() != text.get_zorder()
        top, bottom = sorted((image, text), key=lambda c: -c.get_zorder())
        assert top.get_alpha() > bottom.get_alpha()


def test_plot_cones_with_given_shifted_and_axes(X):
    Z = ModalityGapShifter(lam=0.5).fit_transform(X)
    fig, axes = plt.subplots(1, 2)
    out = plot_cones(X, shifted=Z, ax=axes, names=("X-ray", "report"))
    assert out is fig
    assert axes[1].get_title().startswith("after the shift")
    assert [t.get_text() for t in axes[0].get_legend().get_texts()][0] == "X-ray embeddings"


def test_plot_cones_3d(X):
    fig = plot_cones(X, lam=0.5, n_components=3)
    assert all(ax.name == "3d" for ax in fig.axes)
    assert fig.axes[0].get_zlabel().startswith("PC 3 (")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"modality_dims": (12, 20)}, "same width"),
        ({"n_components": 4}, "'n_components' parameter"),
        ({"lam": 0.5, "shifted": "given"}, "not both"),
        ({"shifted": np.zeros((3, 32))}, "shape of X"),
        ({"max_points": 0}, "max_points"),
        ({"names": ("a",)}, "one name per modality"),
        ({"lam": 0.5, "ax": "one"}, "one Axes per panel"),
    ],
)
def test_plot_cones_errors(X, kwargs, match):
    if isinstance(kwargs.get("shifted"), str):
        kwargs = {**kwargs, "shifted": X}
    with pytest.raises(ValueError, match=match):
        plot_cones(X, **kwargs)


def test_plot_cones_3d_needs_3d_axes(X):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="projection='3d'"):
        plot_cones(X, n_components=3, ax=ax)


def test_missing_matplotlib_names_the_extra(X, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install skgap\[plot\]"):
        plot_cones(X)
    with pytest.raises(ImportError, match=r"skgap\[plot\]"):
        plot_gap_sweep(_sweep())


def _sweep(shift=0.0, effect=0.02):
    lam = np.tile([0.0, 0.5, 1.0], 4)
    seed = np.repeat([0, 1, 2, 3], 3)
    score = 0.8 + shift + effect * lam + 0.01 * seed + 0.001 * np.sin(7 * lam * seed)
    n = lam.size
    return {"task": np.array(["fusion"] * n, dtype=object),
            "metric": np.array(["auc"] * n, dtype=object), "lam": lam, "seed": seed,
            "score": score, "gap_norm": 1.0 - 0.9 * lam}


def _errorbar_halfwidths(ax, k=0):
    """Half heights of the error bars of the k-th errorbar container."""
    segments = ax.containers[k].lines[2][0].get_segments()
    return np.array([(seg[1][1] - seg[0][1]) / 2 for seg in segments])


def test_plot_gap_sweep_one_table():
    ax = plot_gap_sweep(_sweep())
    assert ax.get_xlabel() == "λ (fraction of the gap closed)"
    assert "95% CI of the paired change from λ = 0, 4 splits" in ax.get_ylabel()
    assert ax.get_title()
    s = summarize_sweep(_sweep(), as_frame=False)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), s["mean"])
    np.testing.assert_allclose(line.get_xdata(), s["lam"])
    # Error bars: the paired interval, not the spread of the splits.
    np.testing.assert_allclose(_errorbar_halfwidths(ax), (s["ci_high"] - s["ci_low"]) / 2)
    # lambda = 1 helps beyond noise: starred and named.
    star = [ln for ln in ax.get_lines() if ln.get_marker() == "*"][0]
    assert star.get_xdata()[0] == 1.0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["early-fusion probe ROC AUC (λ = 1 helps)"]
    assert ax.get_ylim()[1] <= 1.0


def test_noise_is_not_starred():
    flat = _sweep(effect=0.0)
    ax = plot_gap_sweep(flat)
    assert not [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert "helps" not in ax.get_legend().get_texts()[0].get_text()


def test_plot_gap_sweep_several_lines_and_hue():
    ax = plot_gap_sweep({"MIMIC": _sweep(), "COCO": _sweep(-0.1)})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["MIMIC (λ = 1 helps)", "COCO (λ = 1 helps)"]
    assert len(ax.figure.axes) == 1  # no twin axis
    # Lines are dodged apart but centred on the lambdas.
    xs = [ln.get_xdata() for ln in ax.get_lines() if ln.get_marker() == "o"]
    np.testing.assert_allclose((xs[0] + xs[1]) / 2, [0.0, 0.5, 1.0])
    assert np.all(xs[1] - xs[0] > 0.015)
    both = {k: np.concatenate([_sweep()[k], _sweep(-0.1)[k]]) for k in _sweep()}
    both["dataset"] = np.repeat(["MIMIC", "COCO"], 12)
    ax2 = plot_gap_sweep(both, hue="dataset")
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == labels


def test_plot_gap_sweep_paired():
    ax = plot_gap_sweep(_sweep(), paired=True)
    line = [ln for ln in ax.get_lines() if ln.get_marker() == "o"][0]
    s = summarize_sweep(_sweep(), as_frame=False)
    np.testing.assert_allclose(line.get_ydata(), s["diff"])
    np.testing.assert_allclose(line.get_ydata()[1:], [0.01, 0.02], atol=2e-3)
    assert "change" in ax.get_ylabel()


def test_plot_gap_sweep_other_task_and_negative_lambdas():
    t = _sweep()
    t["lam"] = t["lam"] - 0.5
    t["task"][:] = "clustering"
    t["metric"][:] = "modality_ARI"
    ax = plot_gap_sweep(t, task="clustering", metric="modality_ARI")
    assert "widens" in ax.get_xlabel()
    assert "lower is better" in ax.get_ylabel()


def test_plot_gap_sweep_into_given_axes_and_labels():
    fig, ax = plt.subplots()
    out = plot_gap_sweep(_sweep(), ax=ax, ylabel="AUC", title="mine", mark_selected=False)
    assert out is ax
    assert (ax.get_ylabel(), ax.get_title()) == ("AUC", "mine")
    assert not [ln for ln in ax.get_lines() if ln.get_marker() == "*"]


def test_plot_gap_sweep_errors():
    with pytest.raises(ValueError, match="hue='dataset'"):
        plot_gap_sweep(_sweep(), hue="dataset")
    no_zero = {k: v[_sweep()["lam"] > 0] for k, v in _sweep().items()}
    with pytest.raises(ValueError, match="lambda = 0"):
        plot_gap_sweep(no_zero, paired=True)
    with pytest.raises(ValueError, match="no column 'task'"):
        plot_gap_sweep({"lam": [0.0], "auc": [0.5]})
    with pytest.raises(ValueError, match="no rows of task='zeroshot'"):
        plot_gap_sweep(_sweep(), task="zeroshot")


def test_plot_lambda_curves():
    ax = plot_lambda_curves([0, 0.5, 1], {"R@1": [0.5, 0.5, 0.49],
                                          "V-measure": ([0.3, 0.6, 0.9], [0.1, 0.1, 0.05])},
                            ylabel="score", title="tasks", ylim=(0, 1))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["R@1", "V-measure"]
    assert ax.get_ylim() == (0, 1)
    assert ax.get_title() == "tasks"
    assert len(ax.containers) == 1  # one errorbar container
    with pytest.raises(ValueError, match="2 values for 3 lambdas"):
        plot_lambda_curves([0, 0.5, 1], {"bad": [0.1, 0.2]})
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_lambda_curves([0, 1], {})
    with pytest.raises(ValueError, match="non-empty 1-D"):
        plot_lambda_curves([], {"a": []})
