"""Noise-aware statistics over paired per-split scores.

One home for the rules that turn a table of scores -- one row per split
(seed or fold), one column per setting of a path parameter such as
:math:`\\lambda` -- into a summary that does not crown noise. Both
:func:`skgap.evaluate.summarize_sweep` and
:class:`skgap.ModalityGapShifterCV` use it, so a sweep and a search select
alike, with the same standard errors.

Every comparison is *paired*: two settings are compared through the
per-split differences :math:`d_s = a_s - b_s`, which cancel the split-to-split
variation that both settings share. Resampled splits of one data set share
rows, so the :math:`d_s` are positively correlated; every standard error here
carries the Nadeau & Bengio (2003) correction for that overlap.
"""

from numbers import Real

import numpy as np
from scipy import special, stats

__all__ = [
    "INTERVAL_METHOD",
    "SELECTION_RULES",
    "corrected_t_test",
    "family_helps",
    "holm_adjust",
    "paired_t_interval",
    "select_setting",
    "sign_flip_pvalue",
    "verdicts",
]

#: ``"holm_one_se"``: leave the reference only when Holm's family-wise test finds
#: a setting that helps (the default); ``"one_se"``: the classic one-SE rule;
#: ``"best"``: the highest mean.
SELECTION_RULES = ("holm_one_se", "one_se", "best")

#: The name of the interval that :func:`corrected_t_test` computes.
INTERVAL_METHOD = "Nadeau-Bengio corrected resampled t"


def _as_scores(scores):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(
            f"scores must be a 2-D array (n_splits, n_settings), got shape {scores.shape}."
        )
    if scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"scores needs at least one split and one setting, got {scores.shape}.")
    if np.isinf(scores).any():
        raise ValueError(
            "scores holds an infinite value; a score must be finite (or NaN: missing)."
        )
    return scores


def _check_confidence(confidence):
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    return float(confidence)


def _check_ratio(test_train_ratio):
    if (isinstance(test_train_ratio, bool) or not isinstance(test_train_ratio, Real)
            or not np.isfinite(test_train_ratio) or test_train_ratio < 0):
        raise ValueError(
            f"test_train_ratio must be a finite number >= 0 (n_test / n_train of one split), "
            f"got {test_train_ratio!r}."
        )
    return float(test_train_ratio)


def _nan_mean_se(d, axis=0, test_train_ratio=0.0):
    r"""Mean, corrected standard error of the mean and count over ``axis``, ignoring NaN.

    The standard error is :math:`s_d\sqrt{1/n + \rho}` with :math:`\rho` the
    test/train ratio (:math:`\rho = 0`: the textbook :math:`s_d/\sqrt n`).
    The deviations are divided by the largest magnitude before they are
    squared, so that scores of any scale (1e-300 or 1e300) neither overflow
    nor underflow. With fewer than two finite entries the standard error is
    NaN: one split says nothing about the spread.
    """
    d = np.asarray(d, dtype=np.float64)
    finite = np.isfinite(d)
    n = np.sum(finite, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale = np.max(np.where(finite, np.abs(d), 0.0), axis=axis, keepdims=True)
        scale = np.where(scale > 0, scale, 1.0)
        u = np.where(finite, d / scale, 0.0)
        mean_u = np.sum(u, axis=axis, keepdims=True) / np.maximum(np.expand_dims(n, axis), 1)
        dev = np.where(finite, u - mean_u, 0.0)
        var_u = np.sum(dev * dev, axis=axis) / np.maximum(n - 1, 1)
        scale = np.squeeze(scale, axis=axis)
        mean = np.where(n > 0, np.squeeze(mean_u, axis=axis) * scale, np.nan)
        factor = np.sqrt(1.0 / np.maximum(n, 1) + test_train_ratio)
        se = np.where(n > 1, np.sqrt(var_u) * factor * scale, np.nan)
    return mean, se, n


def corrected_t_test(differences, test_train_ratio, confidence=0.95, axis=0):
    r"""Corrected resampled t-test of paired differences over overlapping splits.

    For per-split differences :math:`d_1, \dots, d_J` from :math:`J` random
    splits with :math:`n_1` training and :math:`n_2` test rows each (NaN
    entries are left out), the Nadeau & Bengio (2003) corrected resampled t
    statistic is

    .. math::

        t = \frac{\bar d}{\hat\sigma_d\sqrt{1/J + n_2/n_1}},
        \qquad \hat\sigma_d^2 = \frac{1}{J-1}\sum_s (d_s - \bar d)^2 ,

    referred to Student's t with :math:`J - 1` degrees of freedom. The term
    :math:`n_2/n_1` inflates the variance for the correlation between splits
    that share rows (the plain :math:`\hat\sigma_d^2/J` assumes independent
    splits and is too small); for repeated k-fold cross-validation the same
    formula with :math:`J = k r` folds and :math:`n_2/n_1 = 1/(k-1)` is the
    corrected repeated k-fold test of Bouckaert & Frank (2004). The interval
    is :math:`\bar d \pm t_{(1+c)/2,\,J-1}\,\mathrm{se}` and the two-sided
    p-value :math:`2\,P(T_{J-1} > |t|)`, so the interval excludes 0 exactly
    when :math:`p < 1 - c`. With fewer than two finite differences everything
    but the mean is NaN.

    Parameters
    ----------
    differences : array-like
        Paired differences, one per split along ``axis``.
    test_train_ratio : float >= 0
        :math:`n_2 / n_1` of one split; 0 gives the uncorrected paired t.
    confidence : float, default=0.95
        Coverage of the interval, in (0, 1).
    axis : int, default=0
        Axis that runs over splits.

    Returns
    -------
    mean, se, low, high, p_value : ndarray
        The mean difference, its corrected standard error, the interval
        bounds and the two-sided p-value of "mean difference = 0".

    References
    ----------
    Nadeau & Bengio (2003), "Inference for the Generalization Error",
    Machine Learning 52, 239-281. Bouckaert & Frank (2004), "Evaluating the
    Replicability of Significance Tests for Comparing Learning Algorithms",
    PAKDD.
    """
    confidence = _check_confidence(confidence)
    ratio = _check_ratio(test_train_ratio)
    d = np.asarray(differences, dtype=np.float64)
    mean, se, n = _nan_mean_se(d, axis=axis, test_train_ratio=ratio)
    df = np.maximum(n - 1, 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Student's t quantile and tail (scipy.special: the same values as scipy.stats.t).
        tq = special.stdtrit(df, 0.5 + confidence / 2)
        half = np.where(n > 1, tq * se, np.nan)
        # Zero spread (every split agrees exactly): no evidence when the mean is 0 too,
        # a certain difference otherwise.
        t = np.where(se > 0, mean / np.where(se > 0, se, 1.0), np.where(mean == 0, 0.0, np.inf))
        p = np.where(n > 1, 2 * special.stdtr(df, -np.abs(t)), np.nan)
    return mean, se, mean - half, mean + half, p


def paired_t_interval(differences, confidence=0.95, axis=0):
    r"""Uncorrected Student-t confidence interval of the mean of paired differences.

    :math:`\bar d \pm t_{(1+c)/2,\,n-1}\, s_d/\sqrt n` (NaN entries are left
    out): :func:`corrected_t_test` with a test/train ratio of 0. It assumes
    independent splits; for random splits of one data set use
    :func:`corrected_t_test`, which this interval understates.

    Returns
    -------
    mean, se, low, high : ndarray
    """
    mean, se, low, high, _ = corrected_t_test(differences, 0.0, confidence, axis)
    return mean, se, low, high


def sign_flip_pvalue(differences, axis=0, n_resamples=9999, random_state=0):
    r"""Two-sided sign-flip permutation p-value of "the mean paired difference is 0".

    Under the null each :math:`d_s` is as likely to be :math:`-d_s`; the
    p-value is the share of the :math:`2^J` sign patterns whose
    :math:`|\sum_s \pm d_s|` reaches the observed one. Up to 16 splits every
    pattern is enumerated (an exact p-value, one matrix product); beyond,
    :func:`scipy.stats.permutation_test` draws ``n_resamples`` seeded
    patterns. It needs no normality, but, like the plain t, it treats the
    splits as independent, and with :math:`J` splits it cannot fall below
    :math:`2^{1-J}` (1/16 with 5 splits). Columns with fewer than two finite
    differences get NaN.
    """
    d = np.moveaxis(np.asarray(differences, dtype=np.float64), axis, 0)
    flat = d.reshape(d.shape[0], -1)
    out = np.full(flat.shape[1], np.nan)
    for j in range(flat.shape[1]):
        x = flat[np.isfinite(flat[:, j]), j]
        if x.size < 2:
            continue
        if not np.any(x):
            out[j] = 1.0
            continue
        x = x / np.max(np.abs(x))  # scale-free: no overflow in the sums
        observed = abs(x.sum())
        # Ties with the observed sum count as reaching it, up to rounding.
        atol = 64 * np.finfo(np.float64).eps * x.size
        if x.size <= 16:
            bits = (np.arange(2 ** x.size)[:, None] >> np.arange(x.size)) & 1
            sums = np.abs((1 - 2 * bits) @ x)
            out[j] = float(np.mean(sums >= observed - atol))
            continue
        res = stats.permutation_test(
            (x,), np.sum, permutation_type="samples", n_resamples=n_resamples,
            alternative="two-sided", random_state=random_state,
        )
        out[j] = float(res.pvalue)
    return out.reshape(d.shape[1:]) if d.ndim > 1 else out[0]


def holm_adjust(p_values):
    r"""Holm (1979) step-down adjusted p-values; NaN entries are left out.

    With the :math:`m` finite p-values sorted, :math:`p_{(1)} \le \dots \le
    p_{(m)}`, the adjusted value of :math:`p_{(i)}` is
    :math:`\max_{k \le i} \min\{1, (m - k + 1)\, p_{(k)}\}`. Rejecting every
    hypothesis whose adjusted p-value is below :math:`\alpha` controls the
    family-wise error rate at :math:`\alpha` under any dependence between
    the tests (statsmodels' ``multipletests(method='holm')`` computes the
    same values).
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m:
        order = finite[np.argsort(p[finite], kind="stable")]
        stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(stepped)
    return out


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


def family_helps(scores, values, *, higher_is_better=True, reference=0.0, test_train_ratio=0.0,
                 confidence=0.95):
    r"""Which settings help over the reference at family-wise level :math:`1 - c`.

    Each setting other than the reference is compared with it by
    :func:`corrected_t_test` (two-sided); the p-values are Holm-adjusted over
    the grid (:func:`holm_adjust`). A setting helps family-wise when its
    adjusted p-value is below :math:`1 - c` and its mean difference lies on
    the better side.

    Returns
    -------
    helps : ndarray of bool, shape (n_settings,)
    p_value, p_holm : ndarray of shape (n_settings,)
        Per-setting and Holm-adjusted p-values (NaN for the reference).
    """
    scores = _as_scores(scores)
    values = np.asarray(values, dtype=np.float64).ravel()
    ref = np.flatnonzero(values == reference)
    if ref.size == 0:
        raise ValueError(
            f"the settings {values.tolist()} hold no reference value {reference:g}; every "
            "setting is tested against it, so include it."
        )
    signed = scores if higher_is_better else -scores
    d = signed - signed[:, [int(ref[0])]]
    mean, _, _, _, p = corrected_t_test(d, test_train_ratio, confidence)
    p[ref] = np.nan
    p_holm = holm_adjust(p)
    helps = (p_holm < 1 - confidence) & (mean > 0)
    return helps, p, p_holm


def select_setting(scores, values, rule="one_se", *, higher_is_better=True, reference=0.0,
                   test_train_ratio=0.0, confidence=0.95):
    r"""Index of the selected setting, and each setting's standard error to the best.

    Parameters
    ----------
    scores : array-like of shape (n_splits, n_settings)
        Score of every setting on every split (the same splits for every
        setting, so that columns are paired). NaN entries are left out.
    values : array-like of shape (n_settings,)
        The path parameter of each setting (e.g. :math:`\lambda`).
    rule : {"holm_one_se", "one_se", "best"}, default="one_se"
        ``"best"``: the highest mean score (the first on ties).

        ``"one_se"``: the classic one-standard-error rule (Breiman et al.
        1984; glmnet's ``lambda.1se``). With :math:`b` the best setting and

        .. math::

            \mathrm{se}_j = \operatorname{sd}_s(x_{sj} - x_{sb})\sqrt{1/n + \rho},

        the (corrected, :math:`\rho` the test/train ratio) standard error of
        the paired difference from the best, the candidates are the settings
        with :math:`\bar x_j \ge \bar x_b - \mathrm{se}_j`; the rule picks
        the candidate whose value is closest to ``reference`` (the "no
        intervention" point), then the higher mean on ties. It is no test:
        on pure noise it leaves the reference often (in skgap's null
        simulation, ``benchmarks/calibration.py``, with six values of
        :math:`\lambda`, 5 splits and the corrected standard error it left
        :math:`\lambda = 0` in 15-26% of the runs, depending on the task
        and metric).

        ``"holm_one_se"``: the family-wise rule. The reference is kept
        unless Holm's step-down test over the grid (:func:`family_helps`:
        corrected resampled t against the reference, family-wise level
        :math:`1 - c`) finds settings that help; then the one-SE rule runs
        among those settings only (best = the highest mean among them,
        candidates within one standard error of it, the one closest to the
        reference). Under the null it leaves the reference in at most
        :math:`1 - c` of the runs, up to the accuracy of the corrected t.
    higher_is_better : bool, default=True
        Direction of the score; ``False`` negates it first.
    reference : float, default=0.0
        The value that "doing nothing" corresponds to (``"holm_one_se"``
        requires it among ``values``).
    test_train_ratio : float >= 0, default=0.0
        :math:`\rho = n_{test}/n_{train}` of one split, the overlap
        correction of :func:`corrected_t_test`.
    confidence : float in (0, 1), default=0.95
        The family-wise level of ``"holm_one_se"`` is ``1 - confidence``.

    Returns
    -------
    index : int
        Column of the selected setting.
    se_to_best : ndarray of shape (n_settings,)
        :math:`\mathrm{se}_j` above to the best setting overall (0 for the
        best, NaN with one split).
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"rule must be one of {SELECTION_RULES}, got {rule!r}.")
    confidence = _check_confidence(confidence)
    ratio = _check_ratio(test_train_ratio)
    scores = _as_scores(scores)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape[0] != scores.shape[1]:
        raise ValueError(
            f"values has {values.shape[0]} entries for {scores.shape[1]} settings."
        )
    if not np.isfinite(values).all():
        raise ValueError(f"values must be finite, got {values.tolist()}.")
    signed = scores if higher_is_better else -scores
    mean, _, n = _nan_mean_se(signed, axis=0)
    if not np.isfinite(mean).any():
        raise ValueError("every setting's score is NaN; nothing can be selected.")
    masked = np.where(np.isfinite(mean), mean, -np.inf)
    best = int(np.argmax(masked))
    se = _se_to(signed, best, n, ratio)
    if rule == "best":
        return best, se
    pool = np.ones(values.size, dtype=bool)
    if rule == "holm_one_se":
        pool, _, _ = family_helps(scores, values, higher_is_better=higher_is_better,
                                  reference=reference, test_train_ratio=ratio,
                                  confidence=confidence)
        if not pool.any():
            return int(np.flatnonzero(values == reference)[0]), se
    return _one_se_among(signed, values, masked, pool, n, ratio, reference), se


def _se_to(signed, best, n, ratio):
    """Corrected standard error of each column's paired difference from column ``best``."""
    _, se, _ = _nan_mean_se(signed - signed[:, [best]], axis=0, test_train_ratio=ratio)
    se[best] = 0.0 if n[best] > 1 else np.nan
    return se


def _one_se_among(signed, values, masked, pool, n, ratio, reference):
    """The one-SE rule restricted to the columns in ``pool``."""
    inside = np.where(pool, masked, -np.inf)
    best = int(np.argmax(inside))
    se = _se_to(signed, best, n, ratio)
    tolerance = np.where(np.isfinite(se), se, 0.0)
    candidates = np.flatnonzero(pool & (masked >= masked[best] - tolerance))
    distance = np.abs(values[candidates] - reference)
    # lexsort: the last key is primary -- closest to the reference, then highest mean.
    order = np.lexsort((-masked[candidates], distance))
    return int(candidates[order[0]])
