"""Noise-aware summary of a multi-task sweep: paired differences, intervals, verdicts, selection."""

import warnings

import numpy as np

from .._core._selection import SELECTION_RULES, _check_confidence, paired_t_interval, select_setting
from .._core._selection import verdicts as _verdicts
from ._table import as_columns, make_table
from ._tasks import LOWER_IS_BETTER

__all__ = ["summarize_sweep"]

#: The columns of gap_sweep's long table that are not geometry.
_KEYS = ("task", "metric", "lam", "seed", "score")


def _groups(cols):
    """``{(task, metric): row mask}`` in the order the table first names them."""
    pairs = list(zip(cols["task"].tolist(), cols["metric"].tolist()))
    out = {}
    for key in dict.fromkeys(pairs):
        out[key] = np.array([p == key for p in pairs])
    return out


def _score_matrix(seed, lam, score, grid, key):
    """Scores as (n_seeds, n_values), NaN where a (seed, value) pair is missing."""
    seeds = np.unique(seed)
    rows, cols = np.searchsorted(seeds, seed), np.searchsorted(grid, lam)
    flat = rows * grid.size + cols
    if np.unique(flat).size != flat.size:
        i = int(np.flatnonzero(np.bincount(flat) > 1)[0])
        raise ValueError(
            f"the table holds several rows of {key[0]}/{key[1]} for seed {seeds[i // grid.size]} "
            f"and lambda {grid[i % grid.size]:g}; summarise one sweep at a time (e.g. split a "
            "table of several datasets by its dataset column)."
        )
    S = np.full((seeds.size, grid.size), np.nan)
    S[rows, cols] = score
    return S


def summarize_sweep(table, select="one_se", confidence=0.95, *, as_frame="auto"):
    r"""Per task, metric and :math:`\lambda`: mean, paired change from 0, interval, verdict.

    Parameters
    ----------
    table : pandas.DataFrame, dict of arrays or structured array
        A long table from :func:`gap_sweep` (columns ``task``, ``metric``,
        ``lam``, ``seed``, ``score``; numeric geometry columns such as
        ``gap_norm`` are averaged per :math:`\lambda`).
    select : {'one_se', 'best'}, default='one_se'
        How the ``selected`` value of each task and metric is chosen:
        ``'best'``, the highest mean (lowest for ``modality_ARI``);
        ``'one_se'``, the value closest to 0 whose mean is at most one
        standard error below the best mean, that standard error being the one
        of the paired per-split difference between it and the best value. On
        a flat or noisy curve the choice is :math:`\lambda = 0`, the "no
        intervention" point.
    confidence : float in (0, 1), default=0.95
        Coverage of the interval of the paired difference.
    as_frame : {'auto', True, False}, default='auto'
        Return a DataFrame (``'auto'``: when pandas is installed) or a dict.

    Returns
    -------
    summary : pandas.DataFrame or dict of ndarray
        One row per (task, metric, :math:`\lambda`) with columns

        - ``task``, ``metric``, ``lam``;
        - ``n``: number of splits with a score; ``mean``, ``std`` (``ddof=1``)
          of the score over splits;
        - ``diff``: mean over splits of the paired difference
          :math:`d_s = m_s(\lambda) - m_s(0)`; ``se``: its standard error;
          ``ci_low``, ``ci_high``: its Student-t interval;
        - ``verdict``: ``'helps'`` when the interval lies entirely on the
          better side of 0, ``'hurts'`` when entirely on the worse side,
          ``'no evidence'`` otherwise (and without :math:`\lambda = 0` in the
          sweep, or with fewer than two splits);
        - ``selected``: True on exactly one :math:`\lambda` per task and
          metric (none when every score of that metric is NaN);
        - ``se_to_best``: standard error of the paired difference from the
          best value (the quantity of the one-SE rule);
        - the mean of each geometry column of the table (``gap_norm``,
          ``R_image``, ``R_text``) at that :math:`\lambda`.

    See Also
    --------
    gap_sweep : Produces the table.

    Notes
    -----
    With :math:`S` splits and :math:`d_s = m_s(\lambda) - m_s(0)`,

    .. math::

        \bar d \pm t_{(1+c)/2,\,S-1}\,\frac{s_d}{\sqrt S},\qquad
        s_d^2 = \frac{1}{S-1}\sum_s (d_s - \bar d)^2 .

    The interval assumes independent, normally distributed :math:`d_s`.
    Random splits of one data set share rows, so the :math:`d_s` are
    positively correlated and the interval is too narrow (Nadeau & Bengio
    2003): a "helps" or "hurts" verdict is a screen against noise, not an
    exact test. Pairing matters: the split-to-split spread of the score
    (``std``) is often larger than the effect of :math:`\lambda`, which the
    paired difference isolates.

    References
    ----------
    Breiman et al. (1984), *Classification and Regression Trees* (the
    one-standard-error rule). Nadeau & Bengio (2003), "Inference for the
    Generalization Error", Machine Learning 52.

    Examples
    --------
    >>> from skgap.evaluate import summarize_sweep
    >>> table = {"task": ["fusion"] * 6, "metric": ["auc"] * 6,
    ...          "lam": [0, 0, 0, 1, 1, 1], "seed": [0, 1, 2, 0, 1, 2],
    ...          "score": [0.70, 0.80, 0.75, 0.80, 0.91, 0.85]}
    >>> s = summarize_sweep(table, as_frame=False)
    >>> s["diff"].round(3).tolist(), s["verdict"].tolist(), s["selected"].tolist()
    ([0.0, 0.103], ['no evidence', 'helps'], [False, True])
    """
    if select not in SELECTION_RULES:
        raise ValueError(f"select must be one of {SELECTION_RULES}, got {select!r}.")
    confidence = _check_confidence(confidence)
    cols = as_columns(table)
    missing = [c for c in _KEYS if c not in cols]
    if missing:
        raise ValueError(
            f"the table has no column(s) {missing} (columns: {sorted(cols)}); expected the long "
            "table of gap_sweep."
        )
    if cols["lam"].size == 0:
        raise ValueError("the table is empty.")
    geometry = [k for k, v in cols.items()
                if k not in _KEYS and np.issubdtype(np.asarray(v).dtype, np.number)]
    out = {k: [] for k in ("task", "metric", "lam", "n", "mean", "std", "diff", "se", "ci_low",
                           "ci_high", "verdict", "selected", "se_to_best", *geometry)}
    for (task, metric), mask in _groups(cols).items():
        lam = cols["lam"][mask].astype(float)
        grid = np.unique(lam)
        S = _score_matrix(cols["seed"][mask], lam, cols["score"][mask].astype(float), grid,
                          (task, metric))
        higher = metric not in LOWER_IS_BETTER
        n = np.isfinite(S).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, said in n
            mean = np.nanmean(S, axis=0)
            std = np.nanstd(S, axis=0, ddof=1)
        std = np.where(n > 1, std, np.nan)
        if (grid == 0).any():
            d = S - S[:, [int(np.flatnonzero(grid == 0)[0])]]
            diff, se, low, high = paired_t_interval(d, confidence)
        else:
            diff = se = low = high = np.full(grid.size, np.nan)
        verdict = _verdicts(low, high, higher_is_better=higher)
        selected = np.zeros(grid.size, dtype=bool)
        se_best = np.full(grid.size, np.nan)
        if np.isfinite(mean).any():
            index, se_best = select_setting(S, grid, rule=select, higher_is_better=higher)
            selected[index] = True
        for k in geometry:
            g = cols[k][mask].astype(float)
            out[k] += [float(np.nanmean(g[lam == v])) if np.isfinite(g[lam == v]).any()
                       else np.nan for v in grid]
        out["task"] += [task] * grid.size
        out["metric"] += [metric] * grid.size
        for key, value in (("lam", grid), ("n", n), ("mean", mean), ("std", std),
                           ("diff", diff), ("se", se), ("ci_low", low), ("ci_high", high),
                           ("verdict", verdict), ("selected", selected),
                           ("se_to_best", se_best)):
            out[key] += list(value)
    columns = {k: np.array(v, dtype=object if k in ("task", "metric", "verdict") else None)
               for k, v in out.items()}
    columns["n"] = columns["n"].astype(int)
    columns["selected"] = columns["selected"].astype(bool)
    return make_table(columns, as_frame)
