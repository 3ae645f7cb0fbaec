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


#: The (task, metric) columns of the demo's task table, in order.
TASK_CURVES = (
    ("retrieval", "i2t_R@10"),
    ("retrieval", "t2i_R@10"),
    ("zeroshot", "accuracy"),
    ("clustering", "ARI"),
    ("clustering", "modality_ARI"),
)
