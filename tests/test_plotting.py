import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from skgap.datasets import make_paired_embeddings  # noqa: E402
from skgap.evaluate import summarize_sweep  # noqa: E402
from skgap.metrics import modality_gap  # noqa: E402
from skgap.plotting import plot_cones, plot_gap_sweep, plot_lambda_curves  # noqa: E402
from skgap.shift import ModalityGapShifter  # noqa: E402


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
    # The gap arrow is labelled with the gap norm.
    gap = modality_gap(X[:, :16], X[:, 16:])[1]
    assert any(f"{gap:.3f}" in t for t in _texts(ax))
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
    assert any(f"{shifted_gap:.3f}" in t for t in _texts(after))
    clouds = [c for c in before.collections if len(c.get_offsets()) > 1]
    assert [len(c.get_offsets()) for c in clouds] == [100, 100]


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
        ({"n_components": 4}, "2 or 3"),
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
        plot_gap_sweep({"lam": [0.0], "auc": [0.5]})


def _sweep(shift=0.0):
    lam = np.tile([0.0, 0.5, 1.0], 3)
    seed = np.repeat([0, 1, 2], 3)
    auc = 0.8 + shift + 0.02 * lam + 0.01 * seed
    return {"lam": lam, "seed": seed, "auc": auc, "gap_norm": 1.0 - 0.9 * lam}


def test_plot_gap_sweep_one_table():
    ax = plot_gap_sweep(_sweep())
    assert ax.get_xlabel() == "λ (fraction of the gap closed)"
    assert "mean ± std, 3 seeds" in ax.get_ylabel()
    assert ax.get_title()
    line = ax.get_lines()[0]
    s = summarize_sweep(_sweep())
    np.testing.assert_allclose(line.get_ydata(), s["mean"])
    np.testing.assert_allclose(line.get_xdata(), s["lam"])
    # The best lambda is starred.
    star = [ln for ln in ax.get_lines() if ln.get_marker() == "*"][0]
    assert star.get_xdata()[0] == 1.0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["auc (best λ = 1)"]


def test_plot_gap_sweep_several_lines_and_hue():
    ax = plot_gap_sweep({"MIMIC": _sweep(), "COCO": _sweep(-0.1)}, show_gap=True)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["MIMIC (best λ = 1)", "COCO (best λ = 1)"]
    assert "MIMIC: gap after shift" in labels
    twin = [a for a in ax.figure.axes if a is not ax][0]
    assert "gap" in twin.get_ylabel()
    # Lines are dodged apart but centred on the lambdas.
    xs = [ln.get_xdata() for ln in ax.get_lines() if ln.get_marker() == "o"]
    np.testing.assert_allclose((xs[0] + xs[1]) / 2, [0.0, 0.5, 1.0])
    assert np.all(xs[0] < xs[1])
    both = {k: np.concatenate([_sweep()[k], _sweep(-0.1)[k]]) for k in _sweep()}
    both["dataset"] = np.repeat(["MIMIC", "COCO"], 9)
    ax2 = plot_gap_sweep(both, hue="dataset")
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == labels[:2]


def test_plot_gap_sweep_paired():
    ax = plot_gap_sweep(_sweep(), paired=True)
    line = [ln for ln in ax.get_lines() if ln.get_marker() == "o"][0]
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.01, 0.02])
    assert "change" in ax.get_ylabel()


def test_plot_gap_sweep_into_given_axes_and_labels():
    fig, ax = plt.subplots()
    out = plot_gap_sweep(_sweep(), ax=ax, ylabel="AUC", title="mine", mark_best=False)
    assert out is ax
    assert (ax.get_ylabel(), ax.get_title()) == ("AUC", "mine")
    assert not [ln for ln in ax.get_lines() if ln.get_marker() == "*"]


def test_plot_gap_sweep_errors():
    with pytest.raises(ValueError, match="hue='dataset'"):
        plot_gap_sweep(_sweep(), hue="dataset")
    no_gap = {k: v for k, v in _sweep().items() if k != "gap_norm"}
    with pytest.raises(ValueError, match="gap_norm column"):
        plot_gap_sweep(no_gap, show_gap=True)
    no_zero = {k: v[_sweep()["lam"] > 0] for k, v in _sweep().items()}
    with pytest.raises(ValueError, match="lambda = 0"):
        plot_gap_sweep(no_zero, paired=True)
    with pytest.raises(ValueError, match="no column 'auc'"):
        plot_gap_sweep({"lam": [0.0]})


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
