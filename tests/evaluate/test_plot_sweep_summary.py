"""plot_sweep_summary: one panel per scored task and metric, verdicts marked, degenerate
tasks greyed with their reason, one legend, held-out vs in-sample in the title."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from skgap.evaluate import summarize_sweep  # noqa: E402
from skgap.plotting import plot_sweep_summary  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _summary():
    rng = np.random.RandomState(0)
    rows = {"task": [], "metric": [], "lam": [], "seed": [], "score": []}
    curves = {("fusion", "auc"): lambda lam: 0.8 + 0.1 * lam,       # helps
              ("retrieval", "i2t_R@1"): lambda lam: 0.5 - 0.2 * lam,  # hurts
              ("clustering", "ARI"): lambda lam: 0.3 + 0.0 * lam}   # noise only
    for (task, metric), f in curves.items():
        for seed in range(5):
            noise = rng.normal(scale=0.01)
            for lam in (0.0, 0.5, 1.0):
                rows["task"].append(task)
                rows["metric"].append(metric)
                rows["lam"].append(lam)
                rows["seed"].append(seed)
                rows["score"].append(f(lam) + noise + rng.normal(scale=0.002)
                                     + (rng.normal(scale=0.05) if task == "clustering" else 0))
    return summarize_sweep(rows, as_frame=False)


def _titles(fig):
    return [ax.get_title().replace("\n", " ") for ax in fig.axes if ax.get_visible()]


def test_one_panel_per_task_and_metric_with_its_verdict():
    fig = plot_sweep_summary(_summary())
    titles = _titles(fig)
    assert titles == ["early-fusion probe ROC AUC: helps", "image→text R@1: hurts",
                      "k-means ARI vs labels (mean over modalities): no evidence"]
    assert "held-out" in fig._suptitle.get_text()
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    # The helps and hurts marks: a green and a red marker line with points on them.
    colors = {line.get_color() for ax in fig.axes for line in ax.get_lines()
              if len(line.get_xdata()) and line.get_linestyle() == "None"}
    assert {"tab:green", "tab:red"} <= colors


def test_a_degenerate_task_is_greyed_with_its_reason_and_no_verdict():
    reason = "degenerate: 10 distinct texts for 848 pairs; ties decide the retrieval ranks"
    fig = plot_sweep_summary(_summary(), degenerate={"retrieval": reason}, held_out=False)
    ax = [a for a in fig.axes if a.get_visible()][1]
    assert ax.get_title().replace("\n", " ") == "image→text R@1: not a finding"
    assert reason.replace("\n", " ") in " ".join(t.get_text().replace("\n", " ")
                                                 for t in ax.texts)
    assert "tab:red" not in {line.get_color() for line in ax.get_lines()}
    assert "in-sample" in fig._suptitle.get_text()


def test_a_flat_metric_is_greyed_as_trivial():
    table = {"task": ["fusion"] * 6, "metric": ["auc"] * 6, "lam": [0, 0, 0, 1, 1, 1],
             "seed": [0, 1, 2] * 2, "score": [1.0] * 6}
    fig = plot_sweep_summary(summarize_sweep(table, as_frame=False))
    assert _titles(fig) == ["early-fusion probe ROC AUC: not a finding"]
    assert "trivial" in fig.axes[0].texts[0].get_text()


def test_several_data_sets_start_a_row_each():
    s = _summary()
    fig = plot_sweep_summary({"a": s, "b": s}, ncols=2)
    titles = _titles(fig)
    assert len(titles) == 6 and titles[0].startswith("a: ") and titles[3].startswith("b: ")
    assert len(fig.axes) == 8  # 2 rows of 2 per data set, one slot left empty in each


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"no column\(s\) \['diff'"):
        plot_sweep_summary({"task": np.array(["fusion"]), "metric": np.array(["auc"]),
                            "lam": np.array([0.0]), "mean": np.array([0.5])})
    with pytest.raises(ValueError, match="ncols must be a positive integer"):
        plot_sweep_summary(_summary(), ncols=0)
