"""Cross-validated choice of the gap-shift lambda with linear probes."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import type_of_target

from ..shift import ModalityGapShifter


def choose_lambda(X, y, lams, *, cv=5, random_state=0, n_jobs=None):
    """Score each lambda by cross-validated AUC of an early-fusion linear probe.

    The probe is a class-weighted :class:`~sklearn.linear_model.LogisticRegression`
    on the shifted ``[v' | t']`` (one-vs-rest for multi-label ``y``); the gap is
    estimated inside each training fold.

    Returns
    -------
    scores : dict with keys ``lam``, ``mean_auc``, ``std_auc`` (arrays) and
        ``best_lam`` (float), ``scoring`` (str).
    """
    target = type_of_target(y)
    probe = LogisticRegression(class_weight="balanced", max_iter=1000)
    if target == "multilabel-indicator":
        probe = OneVsRestClassifier(probe)
        scoring, splitter = "roc_auc", KFold(cv, shuffle=True, random_state=random_state)
    elif target == "binary":
        scoring, splitter = "roc_auc", StratifiedKFold(cv, shuffle=True, random_state=random_state)
    elif target == "multiclass":
        scoring = "roc_auc_ovr"
        splitter = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    else:
        raise ValueError(
            f"labels of type {target!r} cannot be probed; expected binary, multi-class "
            "or multi-label (indicator matrix) labels."
        )
    pipe = Pipeline([("gap", ModalityGapShifter()), ("probe", probe)])
    search = GridSearchCV(
        pipe, {"gap__lam": list(map(float, lams))}, scoring=scoring, cv=splitter, n_jobs=n_jobs
    )
    search.fit(X, y)
    res = search.cv_results_
    return {
        "lam": np.asarray(res["param_gap__lam"], dtype=float),
        "mean_auc": res["mean_test_score"],
        "std_auc": res["std_test_score"],
        "best_lam": float(search.best_params_["gap__lam"]),
        "scoring": scoring,
    }
