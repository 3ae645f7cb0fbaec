"""Pictures of the cone effect and of the lambda sweep (needs matplotlib: ``skgap[plot]``).

matplotlib is imported inside each function, so ``import skgap.plotting``
works without it and the error names the extra to install.
"""

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Options, validate_params

from ._core._layout import (
    block_slices,
    carried_modality_dims,
    check_carried_dims,
    resolve_modality_dims,
)
from ._core._norms import normalize_rows
from ._core._validation import Interval, PositiveInt, modality_dims_constraint, modality_names
from .evaluate._sweep import summarize_sweep
from .evaluate._table import as_columns
from .transform._shift import ModalityGapShifter

__all__ = [
    "metric_label",
    "plot_cones",
    "plot_gap_sweep",
    "plot_lambda_curves",
    "plot_sweep_summary",
]

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


@validate_params(
    {
        "X": ["array-like"],
        "modality_dims": modality_dims_constraint(),
        "lam": [Interval(Real, -1, 1, closed="both"), None],
        "shifted": ["array-like", None],
        "n_components": [Options(Integral, {2, 3})],
        "max_points": PositiveInt(),
        # A string is a sequence of letters, not of names: "ab" is refused.
        "names": [list, tuple, None],
        "random_state": ["random_state"],
        "figsize": "no_validation",
        "ax": "no_validation",
        "title": [str, None],
    },
    prefer_skip_nested_validation=True,
)
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
    modality_dims = check_carried_dims(modality_dims, carried_modality_dims(X), "plot_cones")
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X", ensure_min_samples=3)
    dims = resolve_modality_dims(X.shape[1], modality_dims, shared_space="plot_cones")
    if lam is not None and shifted is not None:
        raise ValueError("give lam or shifted, not both.")
    names = tuple(names) if names is not None else modality_names(len(dims))
    if len(names) != len(dims):
        raise ValueError(f"names must give one name per modality ({len(dims)}), got {names!r}.")

    panels = [("before the shift" if lam is not None or shifted is not None else "", X)]
    if lam is not None:
        shifter = ModalityGapShifter(lam=lam, modality_dims=dims)
        # In-sample: the gap is estimated on the very rows drawn, so the drawn gap after
        # a full shift is near 0 whatever a held-out split would show.
        panels.append((rf"after the shift ($\lambda$ = {lam:g}), in-sample",
                       shifter.fit_transform(X)))
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


@validate_params({"task": [str], "metric": [str]}, prefer_skip_nested_validation=True)
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


@validate_params(
    {
        "table": "no_validation",
        "task": [str],
        "metric": [str],
        "hue": [str, None],
        "ax": "no_validation",
        "paired": ["boolean"],
        "select": [str],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "mark_selected": ["boolean"],
        "xlabel": [str, None],
        "ylabel": [str, None],
        "title": [str, None],
    },
    prefer_skip_nested_validation=True,
)
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


@validate_params(
    {
        "lams": ["array-like"],
        "curves": [Mapping],
        "ax": "no_validation",
        "ylabel": [str],
        "title": [str, None],
        "ylim": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
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


#: Colours of the verdict marks and of a greyed (degenerate or trivial) panel.
_HELPS, _HURTS, _GREY = "tab:green", "tab:red", "0.55"


def _panel_reasons(degenerate, groups):
    """``{(task, metric): reason}`` from reasons keyed by task or by (task, metric)."""
    out = {}
    for key, reason in (degenerate or {}).items():
        for t, m in groups:
            if key == t or key == (t, m):
                out[(t, m)] = str(reason)
    return out


def _wrap(text, width):
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_sweep_summary(
    summary,
    *,
    degenerate=None,
    held_out=True,
    confidence=None,
    ncols=3,
    title=None,
):
    r"""Every scored task and metric against :math:`\lambda`, one small panel each.

    Each panel draws the mean score over splits at each :math:`\lambda` and,
    around it, the interval of the *paired* change from :math:`\lambda = 0`
    placed on the score axis (score at 0 plus the interval), the quantity
    the verdicts use; a dashed line marks the score at :math:`\lambda = 0`.
    A green upward triangle marks a :math:`\lambda` whose verdict is
    ``'helps'``, a red downward one ``'hurts'``, a black ring the selected
    :math:`\lambda`. A degenerate or trivial task is drawn in grey with its
    reason, and its verdicts are not marked: they are not findings. One
    legend serves every panel.

    Parameters
    ----------
    summary : DataFrame, dict of arrays, or mapping of name to such a table
        The table of :func:`~skgap.evaluate.summarize_sweep` (columns
        ``task``, ``metric``, ``lam``, ``mean``, ``diff``, ``ci_low``,
        ``ci_high``, ``verdict``, ``selected``, ``n``); further columns are
        ignored. Several data sets: ``{name: summary}``, each starting a row
        of panels of its own.
    degenerate : dict, default=None
        ``{task: reason}`` or ``{(task, metric): reason}`` (with several data
        sets, optionally ``{name: such a dict}``): panels to grey,
        e.g. the ``task`` and ``reason`` of each
        :class:`~skgap.evaluate.DegenerateTaskWarning`. A metric with the
        same score at every :math:`\lambda` and split is greyed as trivial
        whether named here or not.
    held_out : bool, default=True
        Whether the scores are of held-out rows (test rows of random splits,
        as :func:`~skgap.evaluate.gap_sweep` scores them); the title says so.
        ``False`` says "in-sample".
    confidence : float, default=None
        Coverage of the interval, for the legend; ``None`` reads it from a
        ``confidence`` column of ``summary`` when there is one, else 0.95.
    ncols : int, default=3
        Panels per row.
    title : str, default=None
        The figure's title; ``None`` writes one that says held-out or in-sample.

    Returns
    -------
    fig : matplotlib.figure.Figure

    See Also
    --------
    plot_gap_sweep : One task with its lines per dataset.
    skgap.evaluate.summarize_sweep : The numbers drawn.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skgap.evaluate import summarize_sweep
    >>> from skgap.plotting import plot_sweep_summary
    >>> table = {"task": ["fusion"] * 6, "metric": ["auc"] * 6,
    ...          "lam": [0, 0, 0, 1, 1, 1], "seed": [0, 1, 2, 0, 1, 2],
    ...          "score": [0.70, 0.80, 0.75, 0.80, 0.91, 0.85]}
    >>> fig = plot_sweep_summary(summarize_sweep(table, as_frame=False))
    >>> [ax.get_title() for ax in fig.axes if ax.get_visible()]
    ['early-fusion probe ROC AUC: helps']
    """
    from .evaluate._degenerate import constant_metrics
    from .evaluate._tasks import LOWER_IS_BETTER

    plt = _pyplot()
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}.")
    named = _named_tables(summary, None)
    needed = ("task", "metric", "lam", "mean", "diff", "ci_low", "ci_high", "verdict",
              "selected", "n")
    panels, counts = [], []
    for name, cols in named:
        missing = [k for k in needed if k not in cols]
        if missing:
            raise ValueError(
                f"summary{f' {name!r}' if name else ''} has no column(s) {missing} (columns: "
                f"{sorted(cols)}); expected the table of summarize_sweep."
            )
        groups = list(dict.fromkeys(zip(cols["task"].astype(str).tolist(),
                                        cols["metric"].astype(str).tolist())))
        given = degenerate
        if name is not None and isinstance(degenerate, Mapping) and isinstance(
                degenerate.get(name), Mapping):
            given = degenerate[name]
        reasons = {**constant_metrics(cols), **_panel_reasons(given, groups)}
        panels.append([(name, cols, t, m, reasons.get((t, m))) for t, m in groups])
        counts.append(int(np.max(cols["n"])) if np.size(cols["n"]) else 0)
    if not any(panels):
        raise ValueError("summary is empty.")
    if confidence is None:
        first = named[0][1]
        confidence = float(first["confidence"][0]) if "confidence" in first else 0.95
    ncols = min(ncols, max(len(p) for p in panels))
    # Each data set starts a row of its own.
    nrows = sum(-(-len(p) // ncols) for p in panels)
    # Wide enough for the title and a legend of two columns even with one panel.
    width = max(4.6 * ncols, 9.2)
    legend_cols = 4 if width >= 13 else 2
    legend_rows = -(-7 // legend_cols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.5 * nrows + 0.9 + 0.22 * legend_rows),
                             squeeze=False)
    slots, row = [], 0
    for p in panels:
        for k, panel in enumerate(p):
            slots.append((axes[row + k // ncols][k % ncols], panel))
        row += -(-len(p) // ncols)
    used = {id(ax) for ax, _ in slots}
    for ax, (dataset, cols, t, m, reason) in slots:
        task, metric = cols["task"].astype(str), cols["metric"].astype(str)
        lam = cols["lam"].astype(float)
        rows = np.flatnonzero((task == t) & (metric == m))
        rows = rows[np.argsort(lam[rows], kind="stable")]
        x, mean = lam[rows], cols["mean"][rows].astype(float)
        low, high = cols["ci_low"][rows].astype(float), cols["ci_high"][rows].astype(float)
        verdict = cols["verdict"][rows].astype(str)
        color = _GREY if reason else "tab:blue"
        zero = np.flatnonzero(x == 0)
        if zero.size and np.isfinite(mean[zero[0]]):
            base = mean[zero[0]]
            ax.axhline(base, color="0.4", lw=1, ls="--", zorder=1)
            ok = np.isfinite(low) & np.isfinite(high)
            ax.fill_between(x[ok], base + low[ok], base + high[ok], color=color, alpha=0.2,
                            lw=0, zorder=2)
        ax.plot(x, mean, marker="o", ms=4, lw=1.6, color=color, zorder=3)
        name = metric_label(t, m)
        if m in LOWER_IS_BETTER and "lower is better" not in name:
            name += " (lower is better)"
        if dataset is not None:
            name = f"{dataset}: {name}"
        if reason:
            ax.set_facecolor("0.94")
            ax.text(0.5, 0.5, _wrap(reason, 44), transform=ax.transAxes, ha="center",
                    va="center", fontsize=8.5, color="0.15", zorder=6,
                    bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.9))
            ax.set_title(_wrap(f"{name}: not a finding", 48), fontsize=10, color="0.35")
        else:
            for mark, col, sym in (("helps", _HELPS, "^"), ("hurts", _HURTS, "v")):
                at = verdict == mark
                ax.plot(x[at], mean[at], linestyle="none", marker=sym, ms=10, color=col,
                        markeredgecolor="black", zorder=5)
            chosen = np.flatnonzero(cols["selected"][rows].astype(bool))
            ax.plot(x[chosen], mean[chosen], linestyle="none", marker="o", ms=13,
                    fillstyle="none", markeredgecolor="black", markeredgewidth=1.5, zorder=4)
            found = [v for v in ("helps", "hurts") if (verdict == v).any()]
            ax.set_title(_wrap(f"{name}: {' and '.join(found) or 'no evidence'}", 48),
                         fontsize=10)
        lo, hi = ax.get_ylim()
        if hi > 1 >= np.nanmax(mean, initial=-np.inf):
            hi = 1.0  # scores of at most 1: the axis stops there
        if lo < 0 <= np.nanmin(mean, initial=np.inf) and "ARI" not in m:
            lo = 0.0  # recall, accuracy and AUC are never negative (an ARI can be)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("λ", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel():
        if id(ax) not in used:
            ax.set_visible(False)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pct = f"{100 * confidence:g}%"
    handles = [
        Line2D([], [], color="tab:blue", marker="o", ms=4, label="mean score over splits"),
        Line2D([], [], color="0.4", ls="--", label="score at λ = 0"),
        Patch(color="tab:blue", alpha=0.2,
              label=f"score at λ = 0 + {pct} interval of the paired change"),
        Line2D([], [], linestyle="none", marker="^", ms=9, color=_HELPS,
               markeredgecolor="black", label="helps (interval above 0)"),
        Line2D([], [], linestyle="none", marker="v", ms=9, color=_HURTS,
               markeredgecolor="black", label="hurts (interval below 0)"),
        Line2D([], [], linestyle="none", marker="o", ms=11, fillstyle="none",
               markeredgecolor="black", label="selected λ"),
        Patch(facecolor="0.94", edgecolor="0.6", label="grey: degenerate or trivial task"),
    ]
    n = "/".join(str(c) for c in sorted(set(counts)))
    where = (f"held-out: test rows of {n} random train/test splits" if held_out
             else "in-sample: scored on the rows the map was fitted on")
    heading = title or f"Score against λ for every task ({where})"
    fig.suptitle(_wrap(heading, int(width * 9)), fontsize=13)
    fig.legend(handles=handles, loc="lower center", ncol=legend_cols, fontsize=9, frameon=False)
    top = 0.15 + 0.25 * (heading.count("\n") + 1 + len(heading) // int(width * 9))
    fig.tight_layout(rect=(0, (0.1 + 0.2 * legend_rows) / fig.get_figheight(), 1,
                           1 - top / fig.get_figheight()))
    return fig
