"""The figures the commands write (matplotlib is imported only when they are drawn)."""


def sweep_figure(tables, task="fusion", metric="auc", *, select="one_se", confidence=0.95):
    """One column per dataset: the score against lambda, and its paired change from lambda 0.

    Parameters
    ----------
    tables : dict of str to table
        One long gap_sweep table per dataset (facets, so curves never hide each other).
    task, metric : str
        The rows to draw.
    select, confidence
        Passed to summarize_sweep.
    """
    import matplotlib.pyplot as plt

    from ..plotting import metric_label, plot_gap_sweep

    n = len(tables)
    fig, axes = plt.subplots(2, n, figsize=(6.4 * n, 9.6), squeeze=False)
    for k, (name, table) in enumerate(tables.items()):
        plot_gap_sweep(table, task=task, metric=metric, ax=axes[0][k], select=select,
                       confidence=confidence, title=f"{name}: {metric_label(task, metric)}")
        lams = table["lam"]
        if (lams == 0).any():
            plot_gap_sweep(table, task=task, metric=metric, ax=axes[1][k], paired=True,
                           select=select, confidence=confidence,
                           title=f"{name}: change from λ = 0 on the same splits")
        else:
            axes[1][k].set_axis_off()
    fig.tight_layout()
    return fig


def cones_figure(datasets, seed=0, *, synthetic=True):
    """Before/after panels, one row per dataset.

    Parameters
    ----------
    datasets : dict of str to (X, lam)
        The embeddings and the lambda of the 'after' panel.
    synthetic : bool, default=True
        Say "synthetic" in each panel's title.
    """
    import matplotlib.pyplot as plt

    from ..plotting import plot_cones

    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 5.6 * len(datasets)), squeeze=False)
    kind = "synthetic " if synthetic else ""
    for row, (name, (X, lam)) in zip(axes, datasets.items()):
        plot_cones(X, lam=lam, ax=row, random_state=seed, max_points=800)
        for ax in row:
            ax.set_title(f"{kind}{name}: {ax.get_title()}", fontsize=11)
    fig.suptitle("Cone effect and modality gap (PCA of the unit embeddings)\n"
                 "in-sample: the shift is fitted on the rows drawn; held-out gaps are in the "
                 "sweep's gap_norm column", fontsize=13)
    fig.tight_layout()
    return fig


#: The (task, metric) curves of the task figure, in drawing order.
TASK_CURVES = (
    ("retrieval", "i2t_R@10"),
    ("retrieval", "t2i_R@10"),
    ("zeroshot", "accuracy"),
    ("clustering", "ARI"),
    ("clustering", "modality_ARI"),
)


#: Longer names where the metric alone does not say what was measured.
_CURVE_LABELS = {
    ("zeroshot", "accuracy"): "zero-shot accuracy (image → nearest class text prototype)",
}


def tasks_figure(summaries, curves=TASK_CURVES):
    """Several tasks against lambda (mean +/- std over splits), one panel per dataset.

    Parameters
    ----------
    summaries : dict of str to summary
        summarize_sweep dicts, one per dataset.
    curves : sequence of (task, metric)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from ..plotting import metric_label, plot_lambda_curves

    fig, axes = plt.subplots(1, len(summaries), figsize=(6.8 * len(summaries), 5.4),
                             squeeze=False)
    for ax, (name, s) in zip(axes[0], summaries.items()):
        lines, lams = {}, None
        for task, metric in curves:
            mask = (s["task"] == task) & (s["metric"] == metric)
            if not mask.any():
                continue
            lams = s["lam"][mask]
            label = _CURVE_LABELS.get((task, metric)) or metric_label(task, metric)
            lines[label] = (s["mean"][mask], np.nan_to_num(s["std"][mask]))
        n = int(s["n"].max())
        plot_lambda_curves(lams, lines, ax=ax, ylabel=f"score (mean ± std over {n} splits)",
                           ylim=(-0.05, 1.0), title=f"synthetic {name}: every task, same splits")
    # The panels share their curves: one legend under the figure instead of one per panel,
    # so that no legend overlaps another panel's or runs off the page.
    handles, labels = {}, []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    n_rows = -(-len(labels) // 2)
    fig.legend([handles[label] for label in labels], labels, loc="lower center", ncol=2,
               fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.055 * n_rows, 1, 1))
    return fig
