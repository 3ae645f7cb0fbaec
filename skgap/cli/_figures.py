"""The figures the commands write (matplotlib is imported only when they are drawn)."""


def sweep_figure(tables, title):
    """Two panels: the AUC against lambda, and its paired change from lambda = 0.

    Parameters
    ----------
    tables : dict of str to table
        One gap_sweep table per dataset (one line each).
    title : str
        Title of the left panel.
    """
    import matplotlib.pyplot as plt

    from ..evaluate._sweep import summarize_sweep
    from ..plotting import plot_gap_sweep

    # The paired panel needs lambda = 0 in every sweep.
    paired = all((summarize_sweep(t)["lam"] == 0).any() for t in tables.values())
    fig, axes = plt.subplots(1, 2 if paired else 1, figsize=(14 if paired else 7.4, 5.4),
                             squeeze=False)
    plot_gap_sweep(tables, ax=axes[0][0], show_gap=True, title=title)
    if paired:
        plot_gap_sweep(tables, ax=axes[0][1], paired=True,
                       title="The same, as the change from λ = 0 on each split")
    fig.tight_layout()
    return fig


def cones_figure(datasets, seed=0):
    """Before/after panels, one row per dataset.

    Parameters
    ----------
    datasets : dict of str to (X, lam)
        The embeddings and the lambda of the 'after' panel.
    """
    import matplotlib.pyplot as plt

    from ..plotting import plot_cones

    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 5.4 * len(datasets)), squeeze=False)
    for row, (name, (X, lam)) in zip(axes, datasets.items()):
        plot_cones(X, lam=lam, ax=row, random_state=seed, max_points=800)
        for ax in row:
            ax.set_title(f"{name}: {ax.get_title()}", fontsize=11)
    fig.suptitle("Cone effect and modality gap (PCA of the unit embeddings)", fontsize=14)
    fig.tight_layout()
    return fig


def tasks_figure(lams, tasks):
    """Retrieval and group-wise scores against lambda, one panel per dataset."""
    import matplotlib.pyplot as plt

    from ..plotting import plot_lambda_curves

    fig, axes = plt.subplots(1, len(tasks), figsize=(6.4 * len(tasks), 4.6), squeeze=False)
    for ax, (name, curves) in zip(axes[0], tasks.items()):
        pretty = {label.replace("->", "→"): values for label, values in curves.items()}
        plot_lambda_curves(lams, pretty, ax=ax, ylabel="score", ylim=(-0.02, 1.02),
                           title=f"{name}: retrieval vs clustering")
    fig.tight_layout()
    return fig
