"""Noise-aware statistics over paired per-split scores.

One home for the rules that turn a table of scores -- one row per split
(seed or fold), one column per setting of a path parameter such as
:math:`\\lambda` -- into a summary that does not crown noise. Both
:func:`skgap.evaluate.summarize_sweep` and
:class:`skgap.ModalityGapShifterCV` use it, so a sweep and a search select
alike.

Every comparison is *paired*: two settings are compared through the
per-split differences :math:`d_s = a_s - b_s`, which cancel the split-to-split
variation that both settings share.
"""

from numbers import Real

import numpy as np
from scipy import stats

__all__ = [
    "SELECTION_RULES",
    "paired_t_interval",
    "select_setting",
    "verdicts",
]

SELECTION_RULES = ("best", "one_se")


def _as_scores(scores):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(
            f"scores must be a 2-D array (n_splits, n_settings), got shape {scores.shape}."
        )
    if scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"scores needs at least one split and one setting, got {scores.shape}.")
    return scores


def _check_confidence(confidence):
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    return float(confidence)


def _nan_mean_se(d, axis=0):
    """Mean, standard error of the mean and count over ``axis``, ignoring NaN."""
    n = np.sum(np.isfinite(d), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(d, axis=axis)
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        dev = np.where(np.isfinite(d), d - np.expand_dims(mean, axis), 0.0)
        var = np.where(n > 1, np.sum(dev * dev, axis=axis) / np.maximum(n - 1, 1), np.nan)
        se = np.sqrt(var / np.maximum(n, 1))
    return mean, se, n


def paired_t_interval(differences, confidence=0.95, axis=0):
    r"""Student-t confidence interval of the mean of paired differences.

    For per-split differences :math:`d_1, \dots, d_n` (NaN entries are left
    out),

    .. math::

        \bar d \pm t_{(1+c)/2,\; n-1}\, \frac{s_d}{\sqrt n},
        \qquad s_d^2 = \frac{1}{n-1}\sum_s (d_s - \bar d)^2 .

    The interval assumes that the :math:`d_s` are independent draws from a
    normal distribution. Random train/test splits of one data set share rows,
    so the splits are not independent and the interval is optimistic (too
    narrow; Nadeau & Bengio 2003); read it as a screen against noise, not as
    an exact test. With fewer than two finite differences the interval is
    undefined (NaN).

    Parameters
    ----------
    differences : array-like
        Paired differences, one per split along ``axis``.
    confidence : float, default=0.95
        Coverage of the interval, in (0, 1).
    axis : int, default=0
        Axis that runs over splits.

    Returns
    -------
    mean, se, low, high : ndarray
        The mean difference, its standard error and the interval bounds.
    """
    confidence = _check_confidence(confidence)
    d = np.asarray(differences, dtype=np.float64)
    mean, se, n = _nan_mean_se(d, axis=axis)
    with np.errstate(invalid="ignore"):
        tq = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
    half = np.where(n > 1, tq * se, np.nan)
    return mean, se, mean - half, mean + half


def verdicts(low, high, higher_is_better=True):
    """``"helps"``, ``"hurts"`` or ``"no evidence"`` from interval bounds.

    A setting *helps* when the interval of its difference from the reference
    lies strictly on the better side of zero, *hurts* when it lies strictly on
    the worse side, and there is *no evidence* otherwise (including an
    undefined interval).
    """
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    above = low > 0
    below = high < 0
    better, worse = (above, below) if higher_is_better else (below, above)
    out = np.full(np.broadcast(low, high).shape, "no evidence", dtype=object)
    out[better] = "helps"
    out[worse] = "hurts"
    return out


def select_setting(scores, values, rule="one_se", *, higher_is_better=True, reference=0.0):
    r"""Index of the selected setting, and each setting's standard error to the best.

    Parameters
    ----------
    scores : array-like of shape (n_splits, n_settings)
        Score of every setting on every split (the same splits for every
        setting, so that columns are paired). NaN entries are left out.
    values : array-like of shape (n_settings,)
        The path parameter of each setting (e.g. :math:`\lambda`).
    rule : {"one_se", "best"}, default="one_se"
        ``"best"``: the highest mean score (the first on ties).
        ``"one_se"``: the one-standard-error rule (Breiman et al. 1984;
        glmnet's ``lambda.1se``). With :math:`b` the best setting and

        .. math::

            \mathrm{se}_j = \operatorname{sd}_s(x_{sj} - x_{sb}) / \sqrt n,

        the standard error of the paired difference from the best, the
        candidates are the settings with
        :math:`\bar x_j \ge \bar x_b - \mathrm{se}_j`; the rule picks the
        candidate whose value is closest to ``reference`` (the "no
        intervention" point), then the higher mean on ties. On a flat or
        noisy curve it therefore returns the reference.
    higher_is_better : bool, default=True
        Direction of the score; ``False`` negates it first.
    reference : float, default=0.0
        The value that "doing nothing" corresponds to.

    Returns
    -------
    index : int
        Column of the selected setting.
    se_to_best : ndarray of shape (n_settings,)
        :math:`\mathrm{se}_j` above (0 for the best, NaN with one split).
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"rule must be one of {SELECTION_RULES}, got {rule!r}.")
    scores = _as_scores(scores)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape[0] != scores.shape[1]:
        raise ValueError(
            f"values has {values.shape[0]} entries for {scores.shape[1]} settings."
        )
    signed = scores if higher_is_better else -scores
    mean, _, n = _nan_mean_se(signed, axis=0)
    if not np.isfinite(mean).any():
        raise ValueError("every setting's score is NaN; nothing can be selected.")
    masked = np.where(np.isfinite(mean), mean, -np.inf)
    best = int(np.argmax(masked))
    _, se, _ = _nan_mean_se(signed - signed[:, [best]], axis=0)
    se[best] = 0.0 if n[best] > 1 else np.nan
    if rule == "best":
        return best, se
    tolerance = np.where(np.isfinite(se), se, 0.0)
    candidates = np.flatnonzero(masked >= masked[best] - tolerance)
    distance = np.abs(values[candidates] - reference)
    # lexsort: the last key is primary -- closest to the reference, then highest mean.
    order = np.lexsort((-masked[candidates], distance))
    return int(candidates[order[0]]), se
