"""Pictures of the cone effect and of the lambda sweep (needs matplotlib: ``skgap[plot]``).

matplotlib is imported inside each function, so ``import skgap.plotting``
works without it and the error names the extra to install.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils import check_array, check_random_state

from ._core._layout import block_slices, resolve_modality_dims
from ._core._norms import normalize_rows
from ._core._validation import modality_names
from .evaluate._sweep import summarize_sweep
from .evaluate._table import as_columns
from .transform._shift import ModalityGapShifter

__all__ = ["metric_label", "plot_cones", "plot_gap_sweep", "plot_lambda_curves"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skgap.plotting needs matplotlib: pip install skgap[plot] (or pip install matplotlib)."
        ) from exc
    return plt


def _unit_blocks(X, dims):
    names = modality_names(len(dims))
    return [
        normalize_rows(X[:, s], f"the {name} block") for s, name in zip(block_slices(dims), names)
    ]


def _draw_cones(ax, blocks, pca, idx, names, n_components, title, point_size):
    """Scatter the projected blocks, their centroids and the gap arrow on ``ax``."""
    centroids = []
    extra = {"depthshade": False} if n_components == 3 else {}
    Rs = [float(np.linalg.norm(B.mean(axis=0))) for B in blocks]
    for m, (B, name) in enumerate(zip(blocks, names)):
        P = pca.transform(B[idx])
        color = _COLORS[m % len(_COLORS)]
        mu = B.mean(axis=0)
        coords = [P[:, j] for j in range(n_components)]
        # The tighter cone (larger R) goes on top and more opaque, the wider one below and
        # fainter, so that a narrow cone stays visible where the two clouds overlap.
        tight = Rs[m] >= max(Rs)
        ax.scatter(*coords, s=point_size, alpha=0.75 if tight else 0.3, color=color,
                   label=f"{name} embeddings", linewidths=0, zorder=2 + Rs[m], **extra)
        c = pca.transform(mu[None, :])[0]
        centroids.append((mu, c))
        # Hollow marks keep a narrow cone visible under its own centroid.
        ax.scatter(*c[:n_components], s=150, marker="o", facecolors="none", edgecolors=color,
                   linewidths=2.5, label=f"{name} centroid", zorder=5, **extra)
        ax.scatter(*c[:n_components], s=12, marker="o", color="black", zorder=6, **extra)
    gap = float(np.linalg.norm(centroids[0][0] - centroids[1][0])) if len(blocks) > 1 else 0.0
    if len(blocks) > 1:
        start, end = centroids[1][1], centroids[0][1]
        if n_components == 2:
            # The arrow alone on the data; its value goes in the title, where it covers nothing.
            ax.annotate(
                "",
                xy=end[:2],
                xytext=start[:2],
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 2, "mutation_scale": 18},
                zorder=6,
            )
        else:
            d = end - start
            ax.quiver(*start[:3], *d[:3], color="black", linewidth=2, arrow_length_ratio=0.15)
    R = ", ".join(
        f"$R_{{\\mathrm{{{name}}}}}$ = {np.linalg.norm(mu):.2f}"
        for (mu, _), name in zip(centroids, names)
    )
    if len(blocks) > 1:
        R += rf", gap $\Vert\Delta\Vert$ = {gap:.3f}"
    ax.set_title(f"{title}\n{R}" if title else R, fontsize=11)
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({100 * ratio[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.0f}% of variance)")
    if n_components == 3:
        ax.set_zlabel(f"PC 3 ({100 * ratio[2]:.0f}% of variance)")
    return gap


def plot_cones(
    X,
    *,
    modality_dims=None,
    lam=None,
    shifted=None,
    n_components=2,
    max_points=1000,
    names=None,
    random_state=0,
    figsize=None,
    ax=None,
    title="Cone effect and modality gap (PCA of the unit embeddings)",
):
    r"""Draw the cones of both modalities: PCA scatter, centroids and the gap vector.

    The rows of each block are L2-normalised and projected on the first
    principal components of the pooled unit embeddings of both modalities
    (the cone-effect paper's Figure 2). Each modality's centroid
    :math:`\mu_m` is marked and the gap :math:`\Delta = \mu_V - \mu_T` is
    drawn as an arrow from the text centroid to the image centroid.

    Given ``lam`` or ``shifted``, a second panel shows the embeddings after
    the gap shift, in the *same* principal axes, so the two panels compare
    directly.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Paired embeddings ``[V | T]``.
    modality_dims : sequence of int, default=None
        Width of each block; ``None`` means two blocks of equal width.
    lam : float in [0, 1], default=None
        Shift ``X`` with :class:`~skgap.ModalityGapShifter` (fit on ``X``)
        for the second panel.
    shifted : array-like of shape (n_samples, n_features), default=None
        Already shifted embeddings for the second panel (e.g. from a
        pipeline); excludes ``lam``.
    n_components : {2, 3}, default=2
        Principal components to show (3 draws 3-D axes).
    max_points : int, default=1000
        At most this many rows per modality are drawn (a random subset);
        centroids and PCA use every row.
    names : sequence of str, default=None
        Modality names for the legend; ``None``: image, text.
    random_state : int, RandomState instance or None, default=0
        Seed of the drawn subset.
    figsize : tuple of float, default=None
        Figure size of a new figure; ``None`` picks one per panel count.
    ax : matplotlib Axes or sequence of Axes, default=None
        Draw into these axes (one per panel: two with ``lam`` or
        ``shifted``); ``None`` makes a new figure. 3-D panels need axes made
        with ``projection='3d'``.
    title : str or None, default='Cone effect and modality gap (PCA of the unit embeddings)'
        Title of a figure made here (``None``: none); each panel keeps its own
        title with the cone sizes :math:`R`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; its panels are ``fig.axes`` (before, then after) when it
        was made here.

    See Also
    --------
    skgap.ConeStats : The numbers behind the picture.

    Notes
    -----
    The principal axes are those of
    :math:`C = \frac{1}{2n}\sum_{e \in \hat V \cup \hat T}(e - \bar e)(e - \bar e)^\top`;
    the cone-effect paper finds :math:`\Delta` close to the first one.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", Figure 2.
    Liang et al. (2022), "Mind the Gap", NeurIPS, Figure 1.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.plotting import plot_cones
    >>> X, _ = make_paired_embeddings(300, 16, preset="mimic-clip", random_state=0)
    >>> fig = plot_cones(X, lam=1.0)
    >>> len(fig.axes)
    2
    """
    plt = _pyplot()
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X", ensure_min_samples=3)
    dims = resolve_modality_dims(X.shape[1], modality_dims, shared_space="plot_cones")
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components!r}.")
    if lam is not None and shifted is not None:
        raise ValueError("give lam or shifted, not both.")
    if (
        isinstance(max_points, bool)
        or not isinstance(max_points, (int, np.integer))
        or max_points < 1
    ):
        raise ValueError(f"max_points must be a positive integer, got {max_points!r}.")
    names = tuple(names) if names is not None else modality_names(len(dims))
    if len(names) != len(dims):
        raise ValueError(f"names must give one name per modality ({len(dims)}), got {names!r}.")

    panels = [("before the shift" if lam is not None or shifted is not None else "", X)]
    if lam is not None:
        shifter = ModalityGapShifter(lam=lam, modality_dims=dims)
        panels.append((rf"after the shift ($\lambda$ = {lam:g})", shifter.fit_transform(X)))
    elif shifted is not None:
        shifted = check_array(shifted, dtype=[np.float64, np.float32], input_name="shifted")
        if shifted.shape != X.shape:
            raise ValueError(
                f"shifted must have the shape of X {X.shape}, got {shifted.shape}."
            )
        panels.append(("after the shift", shifted))

    blocks_before = _unit_blocks(X, dims)
    pca = PCA(n_components=n_components).fit(np.concatenate(blocks_before, axis=0))
    rng = check_random_state(random_state)
    n = X.shape[0]
    idx = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else np.arange(n)
    point_size = float(np.clip(8000 / idx.size, 6, 40))

    if ax is None:
        if figsize is None:
            figsize = (6.0 * len(panels), 5.6)
        subplot_kw = {"projection": "3d"} if n_components == 3 else {}
        fig, grid = plt.subplots(
            1, len(panels), figsize=figsize, subplot_kw=subplot_kw, squeeze=False
        )
        axes = list(grid[0])
        own_figure = True
    else:
        axes = list(np.atleast_1d(np.asarray(ax, dtype=object)).ravel())
        if len(axes) != len(panels):
            raise ValueError(
                f"ax must hold one Axes per panel ({len(panels)}), got {len(axes)}."
            )
        if n_components == 3 and any(getattr(a, "name", "") != "3d" for a in axes):
            raise ValueError("n_components=3 needs axes made with projection='3d'.")
        fig = axes[0].figure
        own_figure = False
    for a, (panel_title, data) in zip(axes, panels):
        blocks = blocks_before if data is X else _unit_blocks(data, dims)
        _draw_cones(a, blocks, pca, idx, names, n_components, panel_title, point_size)
        if n_components == 2:
            a.grid(True, alpha=0.3)
    if n_components == 2 and len(panels) > 1:
        # Shared limits make the two panels comparable.
        xs = [a.get_xlim() for a in axes]
        ys = [a.get_ylim() for a in axes]
        for a in axes:
            a.set_xlim(min(x[0] for x in xs), max(x[1] for x in xs))
            a.set_ylim(min(y[0] for y in ys), max(y[1] for y in ys))
    # Below the panel: a legend inside the axes would cover part of a cloud.
    legend = axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
                            fontsize=9, frameon=False)
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        # Legend dots of the point clouds big and opaque enough to read.
        if text.get_text().endswith("embeddings"):
            handle.set_sizes([40])
            handle.set_alpha(0.9)
    if own_figure:
        if title:
            fig.suptitle(title, fontsize=13)
        fig.tight_layout()
    return fig


def _named_tables(table, hue):
    def is_table(v):
        return (
            isinstance(v, Mapping)
            or hasattr(v, "columns")
            or (isinstance(v, np.ndarray) and v.dtype.names is not None)
        )

    if isinstance(table, Mapping) and table and all(is_table(v) for v in table.values()):
        return [(str(name), as_columns(t)) for name, t in table.items()]
    cols = as_columns(table)
    if hue is None:
        return [(None, cols)]
    if hue not in cols:
        raise ValueError(f"hue={hue!r} is not a column of the table (columns: {sorted(cols)}).")
    out = []
    for value in dict.fromkeys(cols[hue].tolist()):
        mask = cols[hue] == value
        out.append((str(value), {k: v[mask] for k, v in cols.items()}))
    return out


#: Readable names of the sweep's metrics, for axis labels and legends.
METRIC_LABELS = {
    "auc": "ROC AUC",
    "accuracy": "accuracy",
    "ARI": "k-means ARI vs labels (mean over modalities)",
    "AMI": "k-means AMI vs labels (mean over modalities)",
    "modality_ARI": "k-means ARI vs modality (lower is better)",
}
_TASK_LABELS = {
    "fusion": "early-fusion probe",
    "image": "image-only probe",
    "text": "text-only probe",
    "zeroshot": "zero-shot",
    "retrieval": "retrieval",
    "clustering": "clustering",
    "text_to_image": "text→image transfer",
    "image_to_text": "image→text transfer",
}


def metric_label(task, metric):
    """A readable name of a sweep metric, e.g. ``'image→text R@1'``.

    Parameters
    ----------
    task : str
        A task family of :func:`~skgap.evaluate.gap_sweep`.
    metric : str
        One of its metrics.

    Returns
    -------
    str
    """
    if metric.startswith(("i2t_", "t2i_")):
        direction = "image→text" if metric.startswith("i2t") else "text→image"
        return f"{direction} {metric[4:]}"
    if metric.startswith("auc_"):
        return f"{_TASK_LABELS.get(task, task)} AUC, label {metric[4:]}"
    if task in ("clustering", "retrieval"):
        return METRIC_LABELS.get(metric, metric)
    return f"{_TASK_LABELS.get(task, task)} {METRIC_LABELS.get(metric, metric)}"


def _lam_label(lams):
    if np.min(lams) < 0:
        return "λ (fraction of the gap closed; < 0 widens it)"
    return "λ (fraction of the gap closed)"


def plot_gap_sweep(
    table,
    *,
    task="fusion",
    metric="auc",
    hue=None,
    ax=None,
    paired=False,
    select="one_se",
    confidence=0.95,
    mark_selected=True,
    xlabel=None,
    ylabel=None,
    title=None,
):
    r"""Plot one task's score against :math:`\lambda` with the paired interval as error bars.

    The cone-effect paper's Figure 3, with honest error bars: the bar at each
    :math:`\lambda` is the confidence interval of the *paired* change from
    :math:`\lambda = 0` on the same splits (the quantity the verdicts of
    :func:`~skgap.evaluate.summarize_sweep` use), not the spread of the splits,
    which is larger than the effect of :math:`\lambda` and hides it.

    Parameters
    ----------
    table : DataFrame, dict of arrays, or mapping of name to such a table
        A long table from :func:`~skgap.evaluate.gap_sweep`. Several sweeps:
        a dict ``{name: table}`` (one line each), or one table with a column
        named by ``hue``.
    task, metric : str, default='fusion', 'auc'
        The rows to plot.
    hue : str, default=None
        Column whose values split one table into lines (e.g. ``'dataset'``).
    ax : matplotlib Axes, default=None
        Draw here; ``None`` makes a new figure.
    paired : bool, default=False
        Plot the paired change :math:`m_s(\lambda) - m_s(0)` (its mean, with
        the interval) instead of the mean score (with the half-width of that
        interval as a symmetric bar).
    select : {'one_se', 'best'}, default='one_se'
    confidence : float, default=0.95
        Passed to :func:`~skgap.evaluate.summarize_sweep`.
    mark_selected : bool, default=True
        Star the selected :math:`\lambda` of a line, only when its verdict is
        ``'helps'`` (an interval above 0): noise is never crowned.
    xlabel, ylabel, title : str, default=None
        ``None`` writes defaults.

    Returns
    -------
    ax : matplotlib.axes.Axes

    See Also
    --------
    skgap.evaluate.gap_sweep : Produces the table.
    skgap.evaluate.summarize_sweep : The numbers behind each line.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skgap.plotting import plot_gap_sweep
    >>> table = {"task": ["fusion"] * 4, "metric": ["auc"] * 4, "lam": [0, 1, 0, 1],
    ...          "seed": [0, 0, 1, 1], "score": [0.7, 0.9, 0.8, 0.9]}
    >>> ax = plot_gap_sweep(table)
    >>> ax.get_xlabel()
    'λ (fraction of the gap closed)'
    """
    plt = _pyplot()
    lines = _named_tables(table, hue)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.4, 5.2))
    summaries = []
    for name, cols in lines:
        for needed in ("task", "metric", "score"):
            if needed not in cols:
                raise ValueError(
                    f"the table has no column {needed!r} (columns: {sorted(cols)}); expected "
                    "the long table of gap_sweep."
                )
        mask = (cols["task"] == task) & (cols["metric"] == metric)
        if not mask.any():
            found = sorted({f"{t}/{m}" for t, m in zip(cols["task"], cols["metric"])})
            raise ValueError(
                f"no rows of task={task!r}, metric={metric!r}"
                + (f" in {name!r}" if name else "") + f"; the table holds {found}."
            )
        summaries.append(summarize_sweep({k: v[mask] for k, v in cols.items()}, select=select,
                                         confidence=confidence, as_frame=False))
    if paired and any(not (s["lam"] == 0).any() for s in summaries):
        raise ValueError("paired=True needs lambda = 0 in every sweep.")
    all_lams = np.concatenate([s["lam"] for s in summaries])
    span = float(all_lams.max() - all_lams.min()) or 1.0
    n_seeds = set()
    for k, ((name, _), s) in enumerate(zip(lines, summaries)):
        n_seeds.update(s["n"].tolist())
        color = _COLORS[k % len(_COLORS)] if len(lines) <= len(_COLORS) else None
        label = name if name is not None else metric_label(task, metric)
        low = np.nan_to_num(s["ci_low"] - s["diff"])
        high = np.nan_to_num(s["ci_high"] - s["diff"])
        if paired:
            y, yerr = s["diff"], np.vstack([-low, high])
        else:
            half = (high - low) / 2
            y, yerr = s["mean"], np.vstack([half, half])
        chosen = np.flatnonzero(s["selected"] & (s["verdict"] == "helps"))
        if mark_selected and chosen.size:
            label = f"{label} (λ = {s['lam'][chosen[0]]:g} helps)"
        # Dodge the lines apart so that their error bars do not hide each other.
        dodge = (k - (len(lines) - 1) / 2) * 0.018 * span
        bars = ax.errorbar(s["lam"] + dodge, y, yerr=yerr, marker="o", capsize=4, lw=1.8,
                           color=color, label=label)
        if mark_selected and chosen.size:
            ax.plot(s["lam"][chosen] + dodge, y[chosen], marker="*", ms=16,
                    color=bars[0].get_color(), markeredgecolor="black", zorder=5,
                    linestyle="none")
    ax.set_xlabel(xlabel or _lam_label(all_lams))
    seeds = "/".join(str(n) for n in sorted(n_seeds))
    pretty = metric_label(task, metric)
    bars_are = f"bars: {100 * confidence:g}% CI of the paired change from λ = 0, {seeds} splits"
    if paired:
        ax.axhline(0.0, color="0.3", lw=1, zorder=1)
        default_ylabel = f"change in {pretty} from λ = 0\n({bars_are})"
        default_title = f"Paired change of the {pretty} with λ"
    else:
        default_ylabel = f"{pretty}, mean over splits\n({bars_are})"
        default_title = f"{pretty} against λ"
        lo, hi = ax.get_ylim()
        if hi > 1 >= np.nanmax([np.nanmax(s["mean"]) for s in summaries]):
            ax.set_ylim(lo, 1.0)  # scores of at most 1: the axis stops there
    ax.set_ylabel(ylabel or default_ylabel)
    ax.set_title(title or default_title)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    # Below the axes: the curves and error bars fill the plot area.
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=min(2, len(handles)), fontsize=9, frameon=False)
    return ax


def plot_lambda_curves(lams, curves, *, ax=None, ylabel="score", title=None, ylim=None):
    r"""Several scores against :math:`\lambda`, one line each.

    For task metrics that are not a probe sweep: retrieval recall@k,
    clustering V-measure, kNN or zero-shot accuracy measured after shifting
    by each :math:`\lambda`.

    Parameters
    ----------
    lams : array-like of shape (n_lams,)
        The :math:`\lambda` values (x axis).
    curves : dict of str to array-like
        ``{label: values}`` with one value per :math:`\lambda`, or
        ``{label: (mean, std)}`` to draw error bars.
    ax : matplotlib Axes, default=None
        Draw here; ``None`` makes a new figure.
    ylabel : str, default='score'
    title : str, default=None
    ylim : tuple of float, default=None
        Limits of the y axis.

    Returns
    -------
    ax : matplotlib.axes.Axes

    See Also
    --------
    plot_gap_sweep : Probe AUC from a :func:`~skgap.evaluate.gap_sweep` table.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skgap.plotting import plot_lambda_curves
    >>> ax = plot_lambda_curves([0, 0.5, 1], {"V-measure": [0.4, 0.7, 0.95]})
    >>> [line.get_label() for line in ax.get_lines()]
    ['V-measure']
    """
    plt = _pyplot()
    lams = np.asarray(lams, dtype=float)
    if lams.ndim != 1 or lams.size == 0:
        raise ValueError(f"lams must be a non-empty 1-D sequence, got shape {lams.shape}.")
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {label: values}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.4))
    for k, (label, values) in enumerate(curves.items()):
        color = _COLORS[k % len(_COLORS)] if len(curves) <= len(_COLORS) else None
        if isinstance(values, tuple) and len(values) == 2:
            mean, std = (np.asarray(v, dtype=float) for v in values)
        else:
            mean, std = np.asarray(values, dtype=float), None
        if mean.shape != lams.shape or (std is not None and std.shape != lams.shape):
            raise ValueError(
                f"curve {label!r} has {mean.shape[0] if mean.ndim else 0} values for "
                f"{lams.size} lambdas."
            )
        if std is None:
            ax.plot(lams, mean, marker="o", lw=1.8, color=color, label=str(label))
        else:
            ax.errorbar(lams, mean, yerr=std, marker="o", lw=1.8, capsize=4, color=color,
                        label=str(label))
    ax.set_xlabel("λ (fraction of the gap closed)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    # Below the axes, so that the legend never covers a curve.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(2, len(curves)),
              fontsize=9, frameon=False)
    return ax
