"""Area under the ROC curve for the probe tasks: binary, multi-class, multi-label."""

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "TASKS",
    "infer_task",
    "check_task",
    "continuous_scores",
    "binary_auc",
    "multiclass_auc",
    "multilabel_auc",
    "probe_auc",
    "auc_scorer",
]

#: The probe tasks, named as on the command line.
TASKS = ("binary", "multiclass", "multilabel")

_TARGET_TO_TASK = {
    "binary": "binary",
    "multiclass": "multiclass",
    "multilabel-indicator": "multilabel",
}


@validate_params(
    {"y": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def infer_task(y):
    """Name the probe task that labels ``y`` describe.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        Class labels, or a 0/1 indicator matrix for multi-label targets.

    Returns
    -------
    task : {'binary', 'multiclass', 'multilabel'}

    Raises
    ------
    ValueError
        For continuous, multi-output multi-class or otherwise unusable labels.

    Examples
    --------
    >>> from skgap.evaluate import infer_task
    >>> infer_task([0, 1, 1]), infer_task(["a", "b", "c"]), infer_task([[0, 1], [1, 1]])
    ('binary', 'multiclass', 'multilabel')
    """
    target = type_of_target(y, input_name="y")
    if target == "binary":
        classes = np.unique(np.asarray(y))
        if classes.size < 2:
            raise ValueError(
                f"the labels hold one class only ({classes.tolist()}); a probe needs at "
                "least two classes."
            )
    if target not in _TARGET_TO_TASK:
        raise ValueError(
            f"labels of type {target!r} cannot be probed; expected binary or multi-class "
            "labels (one per row) or a multi-label 0/1 indicator matrix "
            "(n_samples, n_labels)."
        )
    return _TARGET_TO_TASK[target]


def check_task(task, y):
    """Return ``task`` after checking it matches ``y`` (``None`` infers it)."""
    found = infer_task(y)
    if task is None:
        return found
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}.")
    if task != found:
        y_arr = np.asarray(y)
        n_classes = np.unique(y_arr).size if y_arr.ndim == 1 else None
        if n_classes is not None:
            detail = f"{n_classes} distinct classes"
        else:
            detail = f"shape {y_arr.shape}"
        raise ValueError(
            f"task={task!r} but the labels look {found} ({detail}); "
            + {
                "binary": "binary labels need exactly two classes.",
                "multiclass": "multi-class labels need three or more classes "
                "(use task='binary' for two).",
                "multilabel": "multi-label targets are a 0/1 indicator matrix "
                "of shape (n_samples, n_labels).",
            }[task]
        )
    return task


@validate_params(
    {"estimator": "no_validation", "X": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def continuous_scores(estimator, X):
    """Scores of a fitted classifier for ROC analysis.

    ``predict_proba`` when the estimator has it, else ``decision_function``.
    A list of per-label ``(n, 2)`` probability arrays (as from
    :class:`~sklearn.multioutput.MultiOutputClassifier`) becomes one
    ``(n, n_labels)`` array of positive-class probabilities.

    Parameters
    ----------
    estimator : fitted classifier
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    scores : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    """
    if hasattr(estimator, "predict_proba"):
        scores = estimator.predict_proba(X)
    elif hasattr(estimator, "decision_function"):
        scores = estimator.decision_function(X)
    else:
        raise TypeError(
            f"{type(estimator).__name__} has neither predict_proba nor decision_function; "
            "an AUC needs continuous scores."
        )
    if isinstance(scores, list):
        scores = np.column_stack([np.asarray(s)[:, -1] for s in scores])
    return np.asarray(scores)


def _as_scores(y_score):
    """``y_score`` as a float array; sparse and complex scores are refused by name.

    ``np.asarray(csr, dtype=float)`` fails with "setting an array element with
    a sequence", and a complex array cast to float drops the imaginary part
    with only a NumPy warning: an AUC of the real parts would be silently wrong.
    """
    if hasattr(y_score, "toarray") or type(y_score).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"y_score is a sparse matrix ({type(y_score).__name__}); the AUC helpers take "
            "dense scores. Convert it with .toarray() first."
        )
    y_score = np.asarray(y_score)
    if y_score.dtype.kind == "c":
        raise ValueError(
            "y_score holds complex numbers; an AUC ranks real scores (casting would drop "
            "the imaginary part). Pass the real scores, e.g. y_score.real if that is meant."
        )
    if y_score.dtype.kind not in "biuf":
        try:
            y_score = y_score.astype(float)
        except (TypeError, ValueError):
            raise ValueError(
                f"y_score must hold real numbers, got dtype {y_score.dtype}."
            ) from None
    return y_score.astype(float, copy=False)


def _check_lengths(y_true, y_score):
    if y_true.shape[0] != y_score.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} rows but y_score has {y_score.shape[0]}."
        )


@validate_params(
    {"y_true": ["array-like"], "y_score": ["array-like", "sparse matrix"]},
    prefer_skip_nested_validation=True,
)
def binary_auc(y_true, y_score):
    r"""ROC AUC of a binary task.

    .. math:: \mathrm{AUC} = P(s_+ > s_-) + \tfrac12 P(s_+ = s_-)

    for the score :math:`s` of a random positive and a random negative.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Two classes; the larger label (in sorted order) is the positive one.
    y_score : array-like of shape (n_samples,) or (n_samples, 2)
        Score of the positive class, or ``predict_proba`` output (its second
        column is used).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> from skgap.evaluate import binary_auc
    >>> binary_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y_true = np.asarray(y_true)
    y_score = _as_scores(y_score)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D for a binary AUC, got shape {y_true.shape}.")
    if y_score.ndim == 2 and y_score.shape[1] == 2:
        y_score = y_score[:, 1]
    if y_score.ndim != 1:
        raise ValueError(
            f"y_score must be 1-D or (n_samples, 2) for a binary AUC, got shape {y_score.shape}."
        )
    _check_lengths(y_true, y_score)
    classes = np.unique(y_true)
    if classes.size != 2:
        raise ValueError(
            f"a binary AUC needs both classes in y_true; found {classes.size} "
            f"({classes.tolist()})."
        )
    return float(roc_auc_score(y_true == classes[1], y_score))


@validate_params(
    {
        "y_true": ["array-like"],
        "y_score": ["array-like", "sparse matrix"],
        "labels": ["array-like", None],
        "check_labels": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def multiclass_auc(y_true, y_score, labels=None, *, check_labels=True):
    r"""Macro one-vs-rest ROC AUC of a multi-class task.

    .. math:: \mathrm{AUC}_{\mathrm{macro}} = \frac{1}{|K|} \sum_{k \in K}
        \mathrm{AUC}\big([y = k],\ s_{\cdot k}\big)

    over the classes :math:`K` that occur in ``y_true`` together with at
    least one other class; this equals
    ``roc_auc_score(y_true, y_score, multi_class='ovr')`` when every class
    occurs, and still works on a test split that misses a class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples, n_classes)
        One column per class, in the order of ``labels`` (e.g.
        ``predict_proba`` output).
    labels : array-like of shape (n_classes,), default=None
        The class of each column (e.g. ``estimator.classes_``). ``None``
        uses the sorted classes of ``y_true``.
    check_labels : bool, default=True
        Refuse a class of ``y_true`` that ``labels`` does not list. ``False``
        counts its rows as negatives of every column: a probe's held-out
        split may hold a class its training split missed.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.evaluate import multiclass_auc
    >>> y = [0, 1, 2, 2]
    >>> P = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .2, .7], [.3, .3, .4]])
    >>> multiclass_auc(y, P)
    1.0
    """
    y_true = np.asarray(y_true)
    y_score = _as_scores(y_score)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D for a multi-class AUC, got shape {y_true.shape}.")
    if y_score.ndim != 2:
        raise ValueError(
            f"y_score must be 2-D (n_samples, n_classes) for a multi-class AUC, "
            f"got shape {y_score.shape}."
        )
    _check_lengths(y_true, y_score)
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    if labels.shape[0] != y_score.shape[1]:
        raise ValueError(
            f"y_score has {y_score.shape[1]} columns but there are {labels.shape[0]} "
            "labels; pass labels=estimator.classes_ when a split misses a class."
        )
    if check_labels:
        unknown = np.setdiff1d(np.unique(y_true), labels)
        if unknown.size:
            # Rows of an unlisted class would count as negatives of every column.
            raise ValueError(
                f"y_true holds class(es) {unknown.tolist()} that are not among labels="
                f"{labels.tolist()}; every class of y_true needs its score column."
            )
    aucs = []
    for k, label in enumerate(labels):
        positive = y_true == label
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, y_score[:, k]))
    if not aucs:
        raise ValueError("a multi-class AUC needs at least two classes in y_true.")
    return float(np.mean(aucs))


@validate_params(
    {"y_true": ["array-like"], "y_score": ["array-like", "sparse matrix"]},
    prefer_skip_nested_validation=True,
)
def multilabel_auc(y_true, y_score):
    r"""Per-label and macro ROC AUC of a multi-label task.

    .. math:: \mathrm{AUC}_\ell = \mathrm{AUC}(y_{\cdot\ell}, s_{\cdot\ell}),
        \qquad
        \mathrm{AUC}_{\mathrm{macro}} = \frac{1}{|L|}\sum_{\ell \in L} \mathrm{AUC}_\ell

    where :math:`L` holds the labels with both positives and negatives in
    ``y_true``; the others get ``nan`` (with a warning) and are left out of
    the mean.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    y_score : array-like of shape (n_samples, n_labels)
        Score of each label (e.g. ``predict_proba`` of a one-vs-rest probe).

    Returns
    -------
    per_label : ndarray of shape (n_labels,)
    macro : float

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.evaluate import multilabel_auc
    >>> Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    >>> S = np.array([[.9, .2], [.1, .6], [.8, .4], [.3, .5]])
    >>> per_label, macro = multilabel_auc(Y, S)
    >>> per_label.tolist(), macro
    ([1.0, 0.75], 0.875)
    """
    y_true = np.asarray(y_true)
    y_score = _as_scores(y_score)
    if y_true.ndim != 2 or y_score.shape != y_true.shape:
        raise ValueError(
            "a multi-label AUC needs y_true and y_score of the same 2-D shape "
            f"(n_samples, n_labels); got {y_true.shape} and {y_score.shape}."
        )
    if y_true.shape[0] == 0 or y_true.shape[1] == 0:
        raise ValueError(
            f"a multi-label AUC needs at least one row and one label; got y_true of shape "
            f"{y_true.shape}."
        )
    per_label = np.full(y_true.shape[1], np.nan)
    for j in range(y_true.shape[1]):
        column = y_true[:, j]
        if column.min() != column.max():
            per_label[j] = roc_auc_score(column, y_score[:, j])
    undefined = np.flatnonzero(np.isnan(per_label))
    if undefined.size == per_label.size:
        raise ValueError(
            "no label has both positives and negatives in y_true; the multi-label AUC "
            "is undefined."
        )
    if undefined.size:
        warnings.warn(
            f"label(s) {undefined.tolist()} have a single class in y_true; their AUC is "
            "undefined (nan) and left out of the macro mean.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return per_label, float(np.nanmean(per_label))


@validate_params(
    {
        "y_true": ["array-like"],
        "y_score": ["array-like", "sparse matrix"],
        "task": [StrOptions(set(TASKS)), None],
        "labels": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def probe_auc(y_true, y_score, *, task=None, labels=None):
    """Macro ROC AUC for any probe task.

    Dispatches to :func:`binary_auc`, :func:`multiclass_auc` (macro
    one-vs-rest) or :func:`multilabel_auc` (macro over labels).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_labels)
    y_score : array-like
        Continuous scores (see :func:`continuous_scores`).
    task : {'binary', 'multiclass', 'multilabel'} or None, default=None
        ``None`` infers it from ``y_true``.
    labels : array-like, default=None
        Class of each score column, for the multi-class task.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> from skgap.evaluate import probe_auc
    >>> probe_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    if task is None:
        task = infer_task(y_true)
    if task == "binary":
        return binary_auc(y_true, y_score)
    if task == "multiclass":
        return multiclass_auc(y_true, y_score, labels=labels)
    return multilabel_auc(y_true, y_score)[1]


@validate_params(
    {"estimator": "no_validation", "X": ["array-like"], "y": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def auc_scorer(estimator, X, y):
    """Scorer ``(estimator, X, y) -> macro AUC`` for any probe task.

    Use it as ``scoring=auc_scorer`` in
    :class:`~sklearn.model_selection.GridSearchCV` when one search should
    handle binary, multi-class and multi-label targets alike. The task
    follows ``y`` (2-D: multi-label) and ``estimator.classes_`` (more than two
    classes: multi-class, even when a test fold misses one).

    Parameters
    ----------
    estimator : fitted classifier
        With ``predict_proba`` or ``decision_function``.
    X : array-like of shape (n_samples, n_features)
        Held-out rows.
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        Their labels.

    Returns
    -------
    auc : float
        Macro ROC AUC (see :func:`probe_auc`).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skgap.evaluate import auc_scorer
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    >>> auc_scorer(LogisticRegression().fit(X, y), X, y)
    1.0
    """
    y = np.asarray(y)
    scores = continuous_scores(estimator, X)
    if y.ndim == 2 and y.shape[1] > 1:
        return multilabel_auc(y, scores)[1]
    y = y.ravel()
    classes = getattr(estimator, "classes_", None)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    if classes.ndim == 1 and classes.size > 2:
        # A held-out fold may hold a class the fitted estimator never saw.
        return multiclass_auc(y, scores, labels=classes, check_labels=False)
    return binary_auc(y, scores)


# Unvalidated twins for skgap's own loops (a sweep scores every split and value).
_binary_auc = binary_auc.__wrapped__
_multiclass_auc = multiclass_auc.__wrapped__
_multilabel_auc = multilabel_auc.__wrapped__
_continuous_scores = continuous_scores.__wrapped__
