"""The paper's protocol: probe AUC against the gap-shift lambda over random splits."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_consistent_length

from .._layout import block_slices, resolve_modality_dims
from ..metrics._cone import mean_resultant_length, modality_gap
from ..shift import ModalityGapShifter
from .._validation import modality_names
from ._auc import check_task, continuous_scores, multiclass_auc, multilabel_auc, binary_auc
from ._probes import make_linear_probe
from ._table import as_columns, make_table

__all__ = ["gap_sweep", "summarize_sweep"]


def _check_lams(lams):
    lams = np.asarray(lams, dtype=float).ravel()
    if lams.size == 0:
        raise ValueError("lams must hold at least one value.")
    if not np.all(np.isfinite(lams)) or (lams < 0).any() or (lams > 1).any():
        raise ValueError(f"every lambda must lie in [0, 1], got {lams.tolist()}.")
    return lams


def _check_split_sizes(n_seeds, test_size, n_samples):
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, Integral) or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}.")
    if isinstance(test_size, bool) or not isinstance(test_size, Real):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}.")
    if isinstance(test_size, Integral):
        n_test = int(test_size)
        if not 2 <= n_test <= n_samples - 2:
            raise ValueError(
                f"test_size={test_size} rows leaves too few rows for a split of {n_samples}."
            )
    else:
        if not 0 < test_size < 1:
            raise ValueError(f"test_size must lie in (0, 1) as a fraction, got {test_size!r}.")
        n_test = int(np.ceil(test_size * n_samples))
    n_train = n_samples - n_test
    if n_test < 2 or n_train < 2:
        raise ValueError(
            f"{n_samples} rows with test_size={test_size} give {n_train} training and "
            f"{n_test} test rows; each split needs at least 2."
        )
    return n_train, n_test


def _stratify_labels(y, task, n_train, n_test):
    """``y`` when a stratified split is possible for this task, else None (with a warning)."""
    if task == "multilabel":
        return None
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() >= 2 and n_test >= classes.size and n_train >= classes.size:
        return y
    warnings.warn(
        f"cannot stratify the splits (smallest class has {counts.min()} row(s), "
        f"{classes.size} classes, {n_test} test rows); using plain random splits.",
        UserWarning,
        stacklevel=3,
    )
    return None


def _score(model, Z_test, y_test, task):
    scores = continuous_scores(model, Z_test)
    if task == "binary":
        return binary_auc(y_test, scores), None
    if task == "multiclass":
        return multiclass_auc(y_test, scores, labels=model.classes_), None
    with warnings.catch_warnings():
        # A label missing from one test split is reported as nan in its column.
        warnings.simplefilter("ignore")
        per_label, macro = multilabel_auc(y_test, scores)
    return macro, per_label


def _one_run(X, y, train, test, lam, probe, dims, direction, task):
    shifter = ModalityGapShifter(lam=lam, modality_dims=dims, direction=direction)
    Z_train = shifter.fit_transform(X[train])
    Z_test = shifter.transform(X[test])
    model = clone(probe).fit(Z_train, y[train])
    auc, per_label = _score(model, Z_test, y[test], task)
    blocks = [Z_test[:, s] for s in block_slices(dims)]
    geometry = [mean_resultant_length(B) for B in blocks]
    gaps = [modality_gap(blocks[0], B)[1] for B in blocks[1:]]
    return auc, per_label, geometry, gaps


def _progress_bar(total, progress):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("progress=True needs tqdm (pip install tqdm); running without a bar.")
        return None
    return tqdm(total=total, desc="gap sweep", unit="fit")


def gap_sweep(
    X,
    y,
    lams=np.linspace(0, 1, 11),
    n_seeds=5,
    test_size=0.2,
    probe=None,
    *,
    task=None,
    modality_dims=None,
    direction="raw",
    random_state=0,
    progress=False,
    n_jobs=None,
    as_frame="auto",
):
    r"""Score a probe against the gap-shift :math:`\lambda` over random splits.

    The protocol of the cone-effect paper: for each of ``n_seeds`` random
    train/test splits (stratified when the task allows) and each
    :math:`\lambda`, fit :class:`~skgap.ModalityGapShifter` on the training
    rows only, shift both splits, fit the probe on the shifted training rows
    and score its ROC AUC on the shifted test rows. The geometry of the
    shifted test rows (gap and cone sizes) is recorded beside the AUC.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Paired embeddings ``[V | T]``.
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        Binary or multi-class labels, or a 0/1 multi-label indicator matrix.
    lams : array-like of float in [0, 1], default=np.linspace(0, 1, 11)
        The :math:`\lambda` values to compare.
    n_seeds : int, default=5
        Number of random splits.
    test_size : float in (0, 1) or int, default=0.2
        Fraction (or number) of rows held out for testing in each split.
    probe : classifier, default=None
        Fitted on the shifted training rows; needs ``predict_proba`` or
        ``decision_function``. ``None`` uses :func:`make_linear_probe` for the
        task (the paper's class-weighted early-fusion logistic regression).
    task : {'binary', 'multiclass', 'multilabel'} or None, default=None
        ``None`` infers it from ``y``; otherwise it must match ``y``.
    modality_dims : sequence of int, default=None
        Width of each block; ``None`` means two blocks of equal width.
    direction : {'raw', 'unit'}, default='raw'
        Passed to :class:`~skgap.ModalityGapShifter`.
    random_state : int, RandomState instance or None, default=0
        Seeds the splits; split ``s`` is the same for every :math:`\lambda`,
        so the comparison between :math:`\lambda` values is paired.
    progress : bool, default=False
        Show a tqdm progress bar (one step per fit).
    n_jobs : int or None, default=None
        Fits run in parallel with joblib when given; ``None`` runs them one
        after another.
    as_frame : {'auto', True, False}, default='auto'
        Return a :class:`pandas.DataFrame` (``'auto'``: when pandas is
        installed) or a dict of 1-D arrays.

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        One row per (seed, :math:`\lambda`) with columns ``lam``, ``seed``,
        ``auc`` (macro AUC on the test split), ``auc_<j>`` for each label
        ``j`` of a multi-label task, ``gap_norm`` (centroid gap of the
        shifted test rows; ``gap_norm_<m>`` per further modality when there
        are more than two) and ``R_<modality>`` (mean resultant length of
        each shifted block, e.g. ``R_image``, ``R_text``).

    See Also
    --------
    summarize_sweep : Mean and standard deviation per :math:`\lambda`, and the best.
    skgap.plotting.plot_gap_sweep : The AUC curve with error bars.

    Notes
    -----
    For split :math:`s` and shift :math:`\lambda` the table records

    .. math:: \mathrm{AUC}_{s}(\lambda) = \mathrm{AUC}\big(y_{\mathrm{test}_s},\
        f_{\lambda,s}(\phi_{\lambda,s}(X_{\mathrm{test}_s}))\big)

    where :math:`\phi_{\lambda,s}` is the shift with the gap
    :math:`\Delta` estimated on :math:`X_{\mathrm{train}_s}` alone and
    :math:`f_{\lambda,s}` the probe fitted on
    :math:`\phi_{\lambda,s}(X_{\mathrm{train}_s})`. Estimating :math:`\Delta`
    on the whole data would leak the test rows into the shift.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", Section 4 and Figure 3.

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import gap_sweep, summarize_sweep
    >>> X, y = make_paired_embeddings(300, 16, preset="mimic-clip", random_state=0)
    >>> table = gap_sweep(X, y, lams=[0.0, 0.5, 1.0], n_seeds=2, as_frame=False)
    >>> sorted(table)
    ['R_image', 'R_text', 'auc', 'gap_norm', 'lam', 'seed']
    >>> table["lam"].tolist()
    [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
    >>> bool(table["gap_norm"][2] < table["gap_norm"][0])
    True
    """
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X", ensure_min_samples=4)
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    check_consistent_length(X, y)
    task = check_task(task, y)
    lams = _check_lams(lams)
    n_train, n_test = _check_split_sizes(n_seeds, test_size, X.shape[0])
    dims = resolve_modality_dims(X.shape[1], modality_dims)
    if direction not in ("raw", "unit"):
        raise ValueError(f"direction must be 'raw' or 'unit', got {direction!r}.")
    if progress not in (True, False):
        raise ValueError(f"progress must be True or False, got {progress!r}.")
    if probe is None:
        probe = make_linear_probe(task)
    elif not (
        hasattr(probe, "fit")
        and (hasattr(probe, "predict_proba") or hasattr(probe, "decision_function"))
    ):
        raise TypeError(
            "probe must be a scikit-learn classifier with predict_proba or "
            f"decision_function, got {type(probe).__name__}."
        )
    stratify = _stratify_labels(y, task, n_train, n_test)
    rng = check_random_state(random_state)
    split_seeds = rng.randint(np.iinfo(np.int32).max, size=n_seeds)
    splits = []
    indices = np.arange(X.shape[0])
    for seed in split_seeds:
        train, test = train_test_split(
            indices, test_size=test_size, stratify=stratify, random_state=int(seed)
        )
        splits.append((np.sort(train), np.sort(test)))

    jobs = [(s, lam) for s in range(n_seeds) for lam in lams]
    bar = _progress_bar(len(jobs), progress)
    args = (probe, dims, direction, task)
    if n_jobs is None:
        results = []
        for s, lam in jobs:
            results.append(_one_run(X, y, *splits[s], float(lam), *args))
            if bar is not None:
                bar.update()
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_one_run)(X, y, *splits[s], float(lam), *args) for s, lam in jobs
        )
        results = []
        for r in gen:
            results.append(r)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()

    names = modality_names(len(dims))
    columns = {
        "lam": np.array([float(lam) for _, lam in jobs]),
        "seed": np.array([s for s, _ in jobs], dtype=int),
        "auc": np.array([r[0] for r in results]),
    }
    if task == "multilabel":
        per_label = np.stack([r[1] for r in results])
        for j in range(per_label.shape[1]):
            columns[f"auc_{j}"] = per_label[:, j]
    gaps = np.array([r[3] for r in results])
    if len(dims) == 2:
        columns["gap_norm"] = gaps[:, 0]
    else:
        for m in range(1, len(dims)):
            columns[f"gap_norm_{names[m]}"] = gaps[:, m - 1]
    geometry = np.array([r[2] for r in results])
    for m, name in enumerate(names):
        columns[f"R_{name}"] = geometry[:, m]
    return make_table(columns, as_frame)


def summarize_sweep(table, metric="auc"):
    r"""Mean and standard deviation over seeds for each :math:`\lambda`, and the best one.

    Parameters
    ----------
    table : pandas.DataFrame, dict of arrays or structured array
        A table from :func:`gap_sweep` (columns ``lam`` and ``metric``; any
        other numeric columns are averaged as well).
    metric : str, default='auc'
        The column to maximise.

    Returns
    -------
    summary : dict
        - ``lam``: sorted distinct :math:`\lambda` values (ndarray);
        - ``mean``, ``std``, ``n``: mean, standard deviation (``ddof=0``, as
          in :class:`~sklearn.model_selection.GridSearchCV`) and number of
          seeds of ``metric`` at each :math:`\lambda` (nan values skipped);
        - ``<column>_mean`` for every other numeric column except ``seed``
          (e.g. ``gap_norm_mean``, ``R_image_mean``);
        - ``metric``: the column name;
        - ``best_lam``, ``best_mean``, ``best_std``: the :math:`\lambda` with
          the highest mean (the smallest such :math:`\lambda` on ties, i.e.
          the least intervention) and its score;
        - ``baseline_mean``: the mean at :math:`\lambda = 0` (nan when
          :math:`\lambda = 0` was not swept) and ``gain`` = ``best_mean`` -
          ``baseline_mean``;
        - ``delta_mean``, ``delta_std``: mean and standard deviation over
          seeds of the *paired* difference
          :math:`\mathrm{AUC}_s(\lambda) - \mathrm{AUC}_s(0)` on the same
          split :math:`s` (nan without :math:`\lambda = 0` or a ``seed``
          column). Splits vary more than :math:`\lambda` changes the score,
          so the paired difference shows an effect that ``std`` hides.

    See Also
    --------
    gap_sweep : Produces the table.

    Notes
    -----
    .. math:: \hat\lambda = \arg\max_{\lambda} \frac{1}{S}\sum_{s=1}^{S}
        \mathrm{AUC}_s(\lambda)

    Examples
    --------
    >>> from skgap.evaluate import summarize_sweep
    >>> table = {"lam": [0, 0, 1, 1], "seed": [0, 1, 0, 1], "auc": [0.7, 0.8, 0.9, 0.9]}
    >>> s = summarize_sweep(table)
    >>> s["lam"].tolist(), s["mean"].round(2).tolist(), s["best_lam"], round(s["gain"], 2)
    ([0.0, 1.0], [0.75, 0.9], 1.0, 0.15)
    """
    cols = as_columns(table)
    for needed in ("lam", metric):
        if needed not in cols:
            raise ValueError(
                f"the table has no column {needed!r} (columns: {sorted(cols)}); "
                "expected a table from gap_sweep."
            )
    lam = cols["lam"].astype(float)
    if lam.size == 0:
        raise ValueError("the table is empty.")
    values = cols[metric].astype(float)
    grid = np.unique(lam)
    out = {"metric": metric, "lam": grid}
    mean = np.empty(grid.size)
    std = np.empty(grid.size)
    n = np.empty(grid.size, dtype=int)
    for i, g in enumerate(grid):
        v = values[lam == g]
        v = v[~np.isnan(v)]
        n[i] = v.size
        mean[i] = v.mean() if v.size else np.nan
        std[i] = v.std() if v.size else np.nan
    out.update(mean=mean, std=std, n=n)
    for name, col in cols.items():
        if name in ("lam", "seed", metric) or not np.issubdtype(col.dtype, np.number):
            continue
        col = col.astype(float)
        out[f"{name}_mean"] = np.array(
            [np.nanmean(col[lam == g]) if np.isfinite(col[lam == g]).any() else np.nan
             for g in grid]
        )
    if np.isnan(mean).all():
        raise ValueError(f"every {metric!r} value is nan; there is no best lambda.")
    best = int(np.nanargmax(mean))
    out["best_lam"] = float(grid[best])
    out["best_mean"] = float(mean[best])
    out["best_std"] = float(std[best])
    baseline = float(mean[grid == 0][0]) if (grid == 0).any() else float("nan")
    out["baseline_mean"] = baseline
    out["gain"] = out["best_mean"] - baseline
    out["delta_mean"], out["delta_std"] = _paired_deltas(cols, lam, values, grid)
    return out


def _paired_deltas(cols, lam, values, grid):
    """Per-lambda mean and std over seeds of score(lambda) - score(0) on the same seed."""
    delta_mean = np.full(grid.size, np.nan)
    delta_std = np.full(grid.size, np.nan)
    if "seed" not in cols or not (grid == 0).any():
        return delta_mean, delta_std
    seed = cols["seed"]
    at_zero = {s: v for s, v, g in zip(seed.tolist(), values, lam) if g == 0}
    for i, g in enumerate(grid):
        diffs = np.array(
            [v - at_zero[s] for s, v, gg in zip(seed.tolist(), values, lam)
             if gg == g and s in at_zero]
        )
        diffs = diffs[~np.isnan(diffs)] if diffs.size else diffs
        if diffs.size:
            delta_mean[i], delta_std[i] = diffs.mean(), diffs.std()
    return delta_mean, delta_std
