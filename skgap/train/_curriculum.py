r"""The eCLIP curriculum: how often an expert batch joins a training step.

Pure NumPy; :class:`~skgap.train.GapClosingAdapter` calls it once per step.
"""

import numpy as np

__all__ = ["expert_probability"]


def expert_probability(
    step,
    n_steps,
    *,
    cold_start=0.1,
    warmup=0.3,
    anneal=0.4,
    min_prob=0.05,
    max_prob=0.5,
    unit="fraction",
):
    r"""Probability that training step ``step`` of ``n_steps`` adds expert pairs.

    The piecewise-linear schedule of eCLIP's code, with the phases given as
    fractions of the run. Writing :math:`s` for the step,
    :math:`S_c = \lfloor c S \rfloor, S_w = \lfloor w S \rfloor,
    S_a = \lfloor a S \rfloor` for the lengths of the cold start, warm-up and
    annealing phases of a run of :math:`S` steps:

    .. math::

        p(s) = \begin{cases}
            0 & s \le S_c \\
            p_{\min} + (p_{\max} - p_{\min}) \frac{s - S_c}{S_w}
                & S_c < s \le S_c + S_w \\
            p_{\max} - (p_{\max} - p_{\min}) \frac{s - S_c - S_w}{S_a}
                & S_c + S_w < s \le S_c + S_w + S_a \\
            p_{\min} & \text{after.}
        \end{cases}

    With the defaults: no expert pairs during the first 10% of the steps, a
    rise from 0.05 to 0.5 over the next 30%, a decline back to 0.05 over the
    next 40%, then 0.05 until the end. A phase of zero steps is skipped.

    Parameters
    ----------
    step : int or array-like of int
        Step index (0-based), ``0 <= step``.
    n_steps : int
        Planned number of steps :math:`S \ge 1` of the run.
    cold_start, warmup, anneal : float in [0, 1], default=0.1, 0.3, 0.4
        Phase lengths as fractions of ``n_steps``; their sum is at most 1.
        With ``unit='steps'``: the lengths :math:`S_c, S_w, S_a` themselves,
        integers whose sum is at most ``n_steps``.
    min_prob, max_prob : float in [0, 1], default=0.05, 0.5
        :math:`p_{\min} \le p_{\max}`.
    unit : {'fraction', 'steps'}, default='fraction'
        How the phase lengths are given. eCLIP's code counts them in steps
        (cool-down is its name for the annealing phase).

    Returns
    -------
    p : float or ndarray of float
        Same shape as ``step``.

    References
    ----------
    Kumar & Marttinen (2025), "Improving Medical Multi-modal Contrastive
    Learning with Expert Annotations" (eCLIP), ECCV.

    Examples
    --------
    >>> from skgap.train import expert_probability
    >>> [round(float(expert_probability(s, 100)), 3) for s in (0, 10, 25, 40, 60, 80, 99)]
    [0.0, 0.0, 0.275, 0.5, 0.275, 0.05, 0.05]
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")
    phases = (("cold_start", cold_start), ("warmup", warmup), ("anneal", anneal))
    if unit == "steps":
        for name, value in phases:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(
                    f"With unit='steps', {name} must be an integer >= 0, got {value!r}."
                )
        if cold_start + warmup + anneal > n_steps:
            raise ValueError(
                f"The schedule's phases exceed the run: cold_start + warmup + anneal = "
                f"{cold_start} + {warmup} + {anneal} = {cold_start + warmup + anneal} steps "
                f"> n_steps = {n_steps}. Shorten the phases or train for more steps."
            )
    elif unit == "fraction":
        for name, value in phases:
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}.")
        if cold_start + warmup + anneal > 1 + 1e-12:
            raise ValueError(
                f"cold_start + warmup + anneal = {cold_start + warmup + anneal} exceeds 1; "
                "the phases are fractions of one run."
            )
    else:
        raise ValueError(f"unit must be 'fraction' or 'steps', got {unit!r}.")
    if not 0 <= min_prob <= max_prob <= 1:
        raise ValueError(
            f"Need 0 <= min_prob <= max_prob <= 1, got min_prob={min_prob!r}, "
            f"max_prob={max_prob!r}."
        )
    try:
        s = np.asarray(step, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"step must be a number or an array of numbers, got {step!r}.") from None
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"step must be a finite number >= 0, got {step!r}.")
    scale = 1 if unit == "steps" else n_steps
    S_c = int(scale * cold_start)
    S_w = int(scale * warmup)
    S_a = int(scale * anneal)
    rise = (s - S_c) / max(S_w, 1)
    fall = (s - S_c - S_w) / max(S_a, 1)
    p = np.select(
        [s <= S_c, s <= S_c + S_w, s <= S_c + S_w + S_a],
        [0.0, min_prob + (max_prob - min_prob) * rise, max_prob - (max_prob - min_prob) * fall],
        default=min_prob,
    )
    return float(p) if p.ndim == 0 else p
