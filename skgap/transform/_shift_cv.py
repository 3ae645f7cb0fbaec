"""ModalityGapShifterCV: a fast cross-validated choice of the gap-shift lambda."""

import time
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from scipy.special import softmax
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from .._core._validation import Interval  # refuses booleans
from .._core._parallel import one_blas_thread, pass_threads, run_fits
from .._core._selection import SELECTION_RULES, family_helps, select_setting
from .._core._streaming import fit_rows_in_chunks
from .._core._validation import PairedMixin, modality_dims_constraint
from ._implicit import (
    block_norms,
    decision_values,
    fold_statistics,
    gather_rows,
    is_memory_mapped,
    row_scalars,
)
from ._shift import ModalityGapShifter
from ._solver import encode_labels, fit_logistic_regression, fit_shifted_logistic, preconditioner

__all__ = ["ModalityGapShifterCV"]


def _refit_has(name):
    """``available_if`` check: the refitted pipeline has method ``name`` (before
    fit, the probe's class decides, as in GridSearchCV)."""

    def check(self):
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, name)
        return hasattr(LogisticRegression, name)

    return check


class _FoldProbe(LogisticRegression):
    """The probe of one fold and lambda, applied to *raw* rows.

    Its decision values are those of ``LogisticRegression`` on the shifted
    rows, computed without forming them (:func:`skgap.transform._implicit.decision_values`),
    so any scikit-learn scorer can score the raw held-out rows. The statistics
    of the fold's own held-out rows are reused.
    """

    def _bind(self, slices, shifts, lam, classes, coef, test_rows, threads):
        self._slices, self._shifts, self._lam = slices, shifts, lam
        self._threads = threads
        self._test_rows = test_rows  # (X_test, fold statistics)
        self.classes_ = classes
        self.coef_ = coef[:, :-1]
        self.intercept_ = coef[:, -1]
        self.n_features_in_ = self.coef_.shape[1]
        self.n_iter_ = np.zeros(1, dtype=np.int32)
        return self

    def decision_function(self, X):
        X_test, stats = self._test_rows
        if X is not X_test:
            X = np.asarray(X)
            stats = fold_statistics(X, self._slices, self._shifts)
        alpha, gamma = row_scalars(X, self._slices, stats, self._lam)
        raw = decision_values(
            X, self._slices, stats[2], alpha, gamma, self.coef_, self.intercept_, self._threads
        )
        return raw[:, 0] if raw.shape[1] == 1 else raw


def _rank_auc(positive, score):
    """Area under the ROC curve of ``score`` for the ``positive`` rows.

    The Mann-Whitney statistic with mid-ranks (a tie counts one half): the
    area that ``roc_auc_score`` integrates. ``None`` when one side is empty.
    """
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _score_decisions(scoring, raw, y_true, classes):
    """Held-out score straight from the decision values, where scikit-learn's needs nothing else.

    For ``scoring=None`` and ``'accuracy'`` (``LogisticRegression.score``),
    binary ``'roc_auc'`` and multi-class ``'roc_auc_ovr'`` (the unweighted
    mean over classes of each class's AUC against the rest, on the softmax
    probabilities, as ``LogisticRegression.predict_proba`` gives them) this
    equals the scorer's value -- exactly for accuracy, to rounding for the
    AUCs (:func:`_rank_auc`) -- without its input validation, which at 55
    small scorings costs more than the scoring itself. Returns ``None`` for
    any other scoring (the scorer is then called), and for the AUCs when the
    held-out labels miss a class or hold one the training rows lack (the
    scorer's own error or warning then applies).
    """
    if scoring is None or scoring == "accuracy":
        pred = classes[(raw > 0).astype(np.intp) if raw.ndim == 1 else raw.argmax(axis=1)]
        return float(np.mean(pred == y_true))
    if scoring not in ("roc_auc", "roc_auc_ovr") or not np.isin(y_true, classes).all():
        return None
    if scoring == "roc_auc" and raw.ndim == 1:
        return _rank_auc(y_true == classes[1], raw)
    if scoring == "roc_auc_ovr" and raw.ndim == 2:
        proba = softmax(raw, axis=1)
        aucs = [_rank_auc(y_true == c, proba[:, k]) for k, c in enumerate(classes)]
        return None if None in aucs else float(np.mean(aucs))
    return None


def _search_preconditioner(X, y, slices, lam, shifter, probe_params, norms, threads):
    """One :func:`~skgap.transform._solver.preconditioner` for the cold start of every fold.

    Built from the features of ``lam`` (the first lambda of the path) with the
    gap of all rows (``shifter``, fitted on them): a fold's own gap and rows
    differ only a little, and any preconditioner leaves the optimum where it
    is -- it only decides how fast L-BFGS gets there -- so one GEMM and one
    Cholesky serve all folds. Returns it with the statistics of all rows
    (:func:`~skgap.transform._implicit.fold_statistics`), which the refit uses too.
    """
    stats = fold_statistics(X, slices, shifter.shift_vectors_, norms, threads)
    alpha, gamma = row_scalars(X, slices, stats, lam)
    classes, _, sample_weight = encode_labels(y, probe_params["class_weight"])
    pre = preconditioner(
        X, slices, stats[2], alpha, gamma, sample_weight, classes.size, probe_params["C"]
    )
    return pre, stats


def _lambda_path(
    X, y, train, test, slices, lams, direction, probe_params, scoring, scorer, norms, in_place,
    pre, threads,
):
    """Scores of every lambda on one fold, the probe warm-started along the path.

    The fold's gap is estimated on its training rows only (as
    ``ModalityGapShifter`` inside a pipeline would); dot products with the
    shifts are computed once per fold (block norms once for all folds,
    ``norms``); the probe of each lambda trains on the implicit features
    (:mod:`skgap.transform._implicit`) starting from the previous lambda's solution; the
    held-out rows are scored through the same implicit features.

    In memory, the fold's training rows are copied once (``X[train]``), which
    keeps every solver pass on the fold's rows only. With ``in_place`` (a
    memory-mapped ``X``: an archive on disk, often larger than what should be
    copied) ``X`` is read in place instead: the probe trains on all rows with
    zero weight on the held-out ones -- the same objective term for term, each
    pass reading ``1 / (1 - test fraction)`` times more rows -- and the
    shifter is fitted chunk by chunk, so no copy of the training rows is ever
    made.

    ``pre`` preconditions the cold start (:func:`_search_preconditioner`);
    the warm starts take conjugate-gradient steps from the previous
    solution, whose block products (kept from its last evaluation) they
    reuse (:func:`skgap.transform._solver.fit_shifted_logistic`); ``threads`` share
    each pass over the rows (the solver's, the gathers, the shift products
    and the held-out decision values).
    Accuracy and the AUCs (binary, one-vs-rest) are computed from the
    held-out decision values directly (:func:`_score_decisions`), other
    scorings by ``scorer``.

    Returns the scores, iterations and fit times of each lambda, the fold's
    classes and the solution of each lambda (the refit's start).
    """
    y_test = y[test]
    # Held-out rows read in place: weight 0 (their label code is a placeholder).
    classes, y_enc, sample_weight = encode_labels(
        y if in_place else y[train], probe_params["class_weight"],
        rows=train if in_place else None, name="the training fold",
    )
    X_test = gather_rows(X, test, threads)
    shifter = ModalityGapShifter(direction=direction)
    if in_place:
        fit_rows_in_chunks(shifter, X, train)
        shifts = shifter.shift_vectors_
        stats_all = fold_statistics(X, slices, shifts, norms, threads)
        stats_test = (stats_all[0][test], stats_all[1][test], stats_all[2])
        X_train, stats_train = X, stats_all
    else:
        X_train = gather_rows(X, train, threads)
        shifter.fit(X_train)
        shifts = shifter.shift_vectors_
        stats_train = fold_statistics(X_train, slices, shifts, norms[train], threads)
        stats_test = fold_statistics(X_test, slices, shifts, norms[test], threads)
    S = stats_train[2]
    coef = None
    coefs = [None] * len(lams)
    products = {}  # X_train @ W of the last evaluation: a warm start begins there
    scores = np.empty(len(lams))
    n_iter = np.empty(len(lams), dtype=int)
    fit_time = np.empty(len(lams))
    for k in np.argsort(lams, kind="stable"):
        lam = float(lams[k])
        start = time.perf_counter()
        alpha, gamma = row_scalars(X_train, slices, stats_train, lam)
        # The cold start (first lambda) is the expensive fit: precondition it.
        # Warm starts take conjugate-gradient steps from the last solution.
        coef, n_iter[k] = fit_shifted_logistic(
            X_train, slices, S, alpha, gamma, y_enc, classes.size, sample_weight,
            C=probe_params["C"], tol=probe_params["tol"], max_iter=probe_params["max_iter"],
            coef0=coef, precondition=pre if coef is None else None, products=products,
            threads=threads,
        )
        coefs[k] = coef
        fit_time[k] = time.perf_counter() - start
        probe = _FoldProbe(**probe_params)._bind(
            slices, shifts, lam, classes, coef, (X_test, stats_test), threads
        )
        score = None
        if isinstance(scoring, str) or scoring is None:
            score = _score_decisions(scoring, probe.decision_function(X_test), y_test, classes)
        scores[k] = scorer(probe, X_test, y_test) if score is None else score
    return scores, n_iter, fit_time, classes, coefs


class ModalityGapShifterCV(ClassifierMixin, MetaEstimatorMixin, PairedMixin, BaseEstimator):
    r"""Gap shift plus linear probe, with the shift :math:`\lambda` chosen by CV.

    The cross-validated equivalent of

    .. code-block:: python

        GridSearchCV(
            Pipeline([("shifter", ModalityGapShifter()), ("probe", LogisticRegression())]),
            {"shifter__lam": lams},
        )

    (like :class:`~sklearn.linear_model.LogisticRegressionCV` for ``C``), but
    several times faster: per fold, the gap, the block norms and the dot
    products of every row with the shift are computed once; each
    :math:`\lambda`'s features are then a per-row rescaling of those, which
    the probe uses without writing them out; and the probe is warm-started
    from the previous :math:`\lambda`'s solution along the sorted path. The
    selected :math:`\lambda` (by default the one-standard-error rule, see
    ``select``) is then refitted on all the data. Every BLAS call runs on
    one thread: with one fold at a time the cores share each pass over the
    rows, with ``n_jobs`` they run folds in parallel.

    Parameters
    ----------
    lams : int or array-like of float in [0, 1], default=11
        The grid of :math:`\lambda`; an int ``k`` means ``k`` values evenly
        spaced in [0, 1].
    cv : int, cross-validation generator or iterable, default=5
        Splitting strategy, as in :func:`~sklearn.model_selection.check_cv`
        (an int gives :class:`~sklearn.model_selection.StratifiedKFold`). Use
        a group splitter (``groups`` in :meth:`fit`) to keep the studies of
        one patient together.
    scoring : str, callable or None, default=None
        Scorer of the probe on the held-out fold (e.g. ``'roc_auc'``);
        ``None`` is accuracy.
    n_jobs : int or None, default=None
        Folds run in parallel with joblib (any backend, e.g. dask), each
        with one BLAS thread. ``None`` means one fold at a time (unless a
        :func:`joblib.parallel_config` context says otherwise); ``-1`` uses
        every core, which pays on many-core machines. One BLAS thread per fit
        is the fast setting: inside these small fits a multi-threaded BLAS
        spends more time synchronising than computing.
    C : float > 0, default=1.0
        Inverse L2 penalty of the logistic-regression probe.
    class_weight : dict, 'balanced' or None, default=None
        Class weights of the probe.
    tol : float >= 0, default=1e-4
        Tolerance of the probe's L-BFGS solver.
    max_iter : int >= 1, default=100
        Iteration cap of the probe's solver.
    modality_dims : sequence of int, default=None
        Width of each modality block of ``X``; ``None`` means two equal blocks.
    direction : {'raw', 'unit'}, default='raw'
        Shift direction (see :class:`ModalityGapShifter`).
    select : {'holm_one_se', 'one_se', 'best'}, default='holm_one_se'
        How :math:`\lambda` is chosen from the cross-validated scores
        (the rules of :func:`skgap.summarize_sweep` too, with the same
        standard errors). ``'holm_one_se'``: :math:`\lambda = 0` (which the
        grid must then hold) unless a family-wise test over the grid -- the
        corrected resampled t of each :math:`\lambda` against 0, Holm-adjusted
        at level 0.05 -- finds values that help; among those, the one-SE rule.
        ``'one_se'``: the classic one-standard-error rule over the whole grid
        -- the :math:`\lambda` closest to 0 whose mean score is at most one
        standard error below the best, that error being the one of the paired
        per-fold difference from the best :math:`\lambda` (no test: it leaves
        0 on pure noise often). ``'best'``: the highest mean score, as
        ``GridSearchCV``.

    Attributes
    ----------
    lam_ : float
        The selected :math:`\lambda` (by ``select``; with ``'best'`` the
        highest mean CV score, the first one on ties).
    best_score_ : float
        Its mean cross-validated score.
    best_index_ : int
        Its index in ``cv_results_``.
    cv_results_ : dict of ndarray
        ``params``, ``param_lam``, ``split{k}_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score`` (by mean
        score, 1 the highest, whatever ``select``; ties share the smallest
        rank), ``se_to_best`` (corrected standard error of the paired per-fold
        difference from the highest-mean :math:`\lambda`, 0 for that one, NaN
        with one fold), ``p_holm`` (Holm-adjusted p-value of each
        :math:`\lambda` against 0; NaN without 0 in the grid), ``selected``
        (True at ``best_index_`` only), ``mean_fit_time``, ``std_fit_time``
        (seconds per probe fit, features included) and ``mean_n_iter``
        (solver iterations), one entry per :math:`\lambda` in grid order.
    test_train_ratio_ : float
        Mean held-out over mean training rows of the folds, :math:`n_2/n_1`
        of the standard errors' overlap correction.
    n_iter_ : ndarray of shape (n_splits, n_lams)
        Solver iterations of each fold and :math:`\lambda`.
    best_estimator_ : Pipeline
        ``ModalityGapShifter(lam=lam_)`` then the probe, a fitted
        ``LogisticRegression``, refitted on all rows: it is fitted on the
        implicit features, so the shifted matrix is never written, starting
        from the mean of the folds' solutions of ``lam_`` (preconditioned);
        its coefficients are those of
        ``LogisticRegression(...).fit(shifter.transform(X), y)`` to the
        solver's tolerance (its ``n_iter_`` may be 0: the start already met
        ``tol``).
    classes_ : ndarray of shape (n_classes,)
    modality_dims_ : tuple of int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    ModalityGapShifter : The shift itself, for any downstream estimator.
    sklearn.linear_model.LogisticRegressionCV : The same idea for ``C``.

    Notes
    -----
    With ``select='one_se'``, let :math:`b` be the :math:`\lambda` of highest
    mean score :math:`\bar x_b` over the :math:`n` folds and
    :math:`\mathrm{se}_j = \operatorname{sd}_k(x_{kj} - x_{kb})
    \sqrt{1/n + n_2/n_1}` (``se_to_best``), with :math:`n_2/n_1` the mean
    test/train ratio of the folds: the folds share training rows, and this
    term (Nadeau & Bengio 2003; Bouckaert & Frank 2004 for k-fold) widens the
    plain :math:`\operatorname{sd}/\sqrt n` for it. The selected
    :math:`\lambda` is the smallest one with
    :math:`\bar x_j \ge \bar x_b - \mathrm{se}_j`. ``'holm_one_se'`` runs
    the same rule among the :math:`\lambda` whose Holm-adjusted corrected-t
    p-value against :math:`\lambda = 0` is below 0.05 (and whose mean
    exceeds that of 0), and keeps 0 when there are none
    (:func:`skgap._core._selection.select_setting`).

    For every fold with training rows :math:`\mathcal T`, the shift of block
    :math:`m` is :math:`s_m` (``ModalityGapShifter``'s ``shift_vectors_`` on
    :math:`\mathcal T`), and for every row the fold keeps
    :math:`r = \lVert x \rVert` and :math:`p = x \cdot s_m`. The features of
    :math:`\lambda` are then

    .. math:: x' = \frac{x}{r\sqrt{q}} + \frac{\lambda s_m}{\sqrt{q}},
        \qquad q = 1 + 2\lambda \frac{p}{r} + \lambda^2 \lVert s_m \rVert^2,

    one read and one write per row if written out. The probe is
    ``LogisticRegression(C=C, class_weight=class_weight, tol=tol,
    max_iter=max_iter)`` term for term -- the same objective (weighted mean
    log-loss plus :math:`\lVert W\rVert^2 / (2C\sum_i w_i)`) with the same
    stopping rule (largest absolute gradient at most ``tol``) -- started from
    the previous :math:`\lambda`'s solution, for :math:`\lambda` in
    increasing order. The first :math:`\lambda` of each fold starts cold,
    minimised by the same L-BFGS-B with the same options but in
    preconditioned variables: the cone makes the features' covariance so
    anisotropic that plain L-BFGS needs 15-40 iterations there, against
    about 6 after whitening with a Cholesky factor of the features'
    covariance on 2048 rows (:func:`skgap.transform._solver.preconditioner`; one for
    the whole search, from the first :math:`\lambda` and the gap of all
    rows). The warm starts, already near the optimum, take
    conjugate-gradient steps, each to the minimum of the quadratic model
    along its direction (one pass over the rows a step, where L-BFGS-B's
    first iteration from a warm start spends two to three; L-BFGS-B goes on
    if a step does not lower the loss enough, or after five steps). This changes the path, not
    the objective, and stops closer to the optimum. Its optimum is
    the one the cold-started pipeline reaches, to the solver's tolerance
    ``tol``: the scores agree with ``GridSearchCV`` to that tolerance, and
    exactly once both have converged (small ``tol``). A
    linear probe with an intercept is nearly invariant to the shift, so the
    CV curve can be flatter than the solver noise at the default ``tol``;
    the selected :math:`\lambda` may then differ from ``GridSearchCV``'s while
    its score differs by less than that noise.

    The probe never sees the shifted training matrix: a linear model needs
    only :math:`Z w` and :math:`Z^\top g`, and with
    :math:`z = \alpha x + \gamma s_m` block by block (per-row scalars
    :math:`\alpha = 1/(r\sqrt q)`, :math:`\gamma = \lambda/\sqrt q`)

    .. math:: (Z w)_i = \sum_m \alpha_{im}\, x_{im}^\top w_m
        + \gamma_{im}\, s_m^\top w_m, \qquad
        (Z^\top g)_m = X_m^\top (\alpha_m \odot g) + s_m\, \gamma_m^\top g,

    so every loss-and-gradient evaluation is two BLAS passes over the raw
    rows, as for ``LogisticRegression`` itself, and nothing is rewritten per
    :math:`\lambda`. The held-out rows are scored through the same formulas.

    Binary and multi-class labels are supported; for multi-label indicator
    ``y`` use ``GridSearchCV`` with a one-vs-rest probe.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", equation 5 (the shift).
    Byrd, Lu, Nocedal & Zhu (1995), "A Limited Memory Algorithm for Bound
    Constrained Optimization", SIAM J. Sci. Comput. (L-BFGS-B, the probe's
    solver).
    Breiman, Friedman, Olshen & Stone (1984), "Classification and Regression
    Trees", section 3.4.3 (the one-standard-error rule).
    Nadeau & Bengio (2003), "Inference for the Generalization Error", Machine
    Learning 52 (why fold-wise standard errors are optimistic).

    Examples
    --------
    >>> from skgap import ModalityGapShifterCV
    >>> from skgap.datasets import make_paired_embeddings
    >>> X, y = make_paired_embeddings(n_samples=400, n_features=16, random_state=0)
    >>> search = ModalityGapShifterCV(lams=[0.0, 0.5, 1.0], cv=3, scoring="roc_auc").fit(X, y)
    >>> search.lam_ in (0.0, 0.5, 1.0)
    True
    >>> search.predict(X[:3]).shape
    (3,)
    """

    # One block has no gap to search over.
    _min_modalities = 2

    _parameter_constraints = {
        "lams": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "n_jobs": [Integral, None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "modality_dims": modality_dims_constraint(),
        "direction": [StrOptions({"raw", "unit"})],
        "select": [StrOptions(set(SELECTION_RULES))],
    }

    def __init__(
        self,
        lams=11,
        *,
        cv=5,
        scoring=None,
        n_jobs=None,
        C=1.0,
        class_weight=None,
        tol=1e-4,
        max_iter=100,
        modality_dims=None,
        direction="raw",
        select="holm_one_se",
    ):
        self.lams = lams
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.C = C
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.modality_dims = modality_dims
        self.direction = direction
        self.select = select

    def _lam_grid(self):
        if isinstance(self.lams, Integral):
            return np.linspace(0.0, 1.0, self.lams) if self.lams > 1 else np.array([0.0])
        lams = np.asarray(self.lams, dtype=np.float64)
        if lams.ndim != 1 or lams.size == 0:
            raise ValueError(f"lams must be a non-empty 1-D sequence of floats, got {self.lams!r}.")
        if not np.all((lams >= 0) & (lams <= 1)):
            raise ValueError(f"lams must lie in [0, 1], got {self.lams!r}.")
        return lams

    def _probe_params(self):
        return dict(
            C=self.C, class_weight=self.class_weight, tol=self.tol, max_iter=self.max_iter
        )

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Score every lambda by cross-validation, then refit the best one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Paired embeddings ``[V | T]``.
        y : array-like of shape (n_samples,)
            Binary or multi-class labels.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter (e.g. patient ids).

        Returns
        -------
        self : ModalityGapShifterCV
        """
        # Labels first: they are cheap to check and their errors are the more
        # specific ones.
        target = type_of_target(y, input_name="y")
        if target == "multilabel-indicator":
            raise ValueError(
                "ModalityGapShifterCV needs binary or multi-class labels, got multi-label "
                "y; use GridSearchCV with a one-vs-rest probe for those."
            )
        y = column_or_1d(y, warn=True)
        # Before the class count: an empty y beside a full X is a length mismatch.
        check_consistent_length(X, y)
        check_classification_targets(y)
        classes = np.unique(y)
        if classes.size == 0:  # empty data: scikit-learn's own message
            self._validate_paired(X, reset=True)
        if classes.size < 2:
            raise ValueError(
                "ModalityGapShifterCV needs samples of at least 2 classes in y, but y "
                f"holds one class: {classes[0]!r}."
            )
        X, slices = self._validate_paired(X, reset=True, equal_dims=True)
        check_consistent_length(X, y)
        self.classes_ = classes
        lams = self._lam_grid()
        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y, groups))
        probe_params = self._probe_params()
        scorer = check_scoring(LogisticRegression(**probe_params), scoring=self.scoring)

        norms = block_norms(X, slices)  # the same in every fold
        # Decided here: joblib hands large arrays to process workers as memory maps.
        in_place = is_memory_mapped(X)
        # With one fold at a time (n_jobs=None), the cores the BLAS may use go
        # to each evaluation's row items instead (one BLAS thread each);
        # with parallel folds each fold keeps one thread.
        threads = pass_threads(X.shape[0]) if effective_n_jobs(self.n_jobs) == 1 else 1
        # The gap of all rows: the search's preconditioner and the refit's shift
        # (a shifter's fitted state does not depend on lam).
        shifter = ModalityGapShifter(modality_dims=self.modality_dims, direction=self.direction)
        with one_blas_thread():
            shifter.fit(X)
            pre, stats_all = _search_preconditioner(
                X, y, slices, float(lams.min()), shifter, probe_params, norms, threads
            )
        results = run_fits(
            _lambda_path,
            [
                (X, y, train, test, slices, lams, self.direction, probe_params, self.scoring,
                 scorer, norms, in_place, pre, threads)
                for train, test in splits
            ],
            n_jobs=self.n_jobs,
        )
        scores = np.array([r[0] for r in results])  # (n_splits, n_lams)
        self.n_iter_ = np.array([r[1] for r in results])
        fit_times = np.array([r[2] for r in results])

        mean = scores.mean(axis=0)
        # Rank 1 is the best; ties share the smallest rank, as in GridSearchCV.
        rank = rankdata(-mean, method="min").astype(np.int32)
        # The folds overlap in their training rows: the corrected standard errors
        # of the sweep's summary, with this search's test/train ratio.
        ratio = float(np.mean([t.size for _, t in splits]) / np.mean([t.size for t, _ in splits]))
        if self.select == "holm_one_se" and not (lams == 0).any():
            raise ValueError(
                f"select='holm_one_se' tests every lambda against 0, but lams {lams.tolist()} "
                "has no 0; add it, or use select='one_se' or 'best'."
            )
        self.best_index_, se_to_best = select_setting(scores, lams, rule=self.select,
                                                      test_train_ratio=ratio)
        p_holm = np.full(len(lams), np.nan)
        if (lams == 0).any():
            _, _, p_holm = family_helps(scores, lams, test_train_ratio=ratio)
        self.cv_results_ = {
            "params": [{"lam": float(v)} for v in lams],
            "param_lam": lams.copy(),
            **{f"split{k}_test_score": scores[k] for k in range(len(splits))},
            "mean_test_score": mean,
            "std_test_score": scores.std(axis=0),
            "rank_test_score": rank,
            "se_to_best": se_to_best,
            "p_holm": p_holm,
            "selected": np.arange(len(lams)) == self.best_index_,
            "mean_fit_time": fit_times.mean(axis=0),
            "std_fit_time": fit_times.std(axis=0),
            "mean_n_iter": self.n_iter_.mean(axis=0),
        }
        self.lam_ = float(lams[self.best_index_])
        self.test_train_ratio_ = ratio
        self.best_score_ = float(mean[self.best_index_])

        shifter.set_params(lam=self.lam_)
        # The refit starts from the folds' mean solution of lam_ (their classes
        # permitting); L-BFGS-B, if the warm steps stop short, runs in the
        # search's whitened variables.
        coef0 = None
        if all(np.array_equal(r[3], classes) for r in results):
            coef0 = np.mean([r[4][self.best_index_] for r in results], axis=0)
        with one_blas_thread():
            probe = fit_logistic_regression(
                probe_params, X, y, slices, stats_all, shifter.lam,
                precondition=True if pre is None else pre, coef0=coef0, threads=threads,
            )
        self.best_estimator_ = Pipeline([("shifter", shifter), ("probe", probe)])
        return self

    def _check_X(self, X):
        check_is_fitted(self)
        X, _ = self._validate_paired(X, reset=False)
        return X

    @available_if(_refit_has("predict"))
    def predict(self, X):
        """Class labels of the refitted pipeline.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X = self._check_X(X)
        return self.best_estimator_.predict(X)

    @available_if(_refit_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the refitted pipeline.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._check_X(X)
        return self.best_estimator_.predict_proba(X)

    @available_if(_refit_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the refitted pipeline.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._check_X(X)
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_refit_has("decision_function"))
    def decision_function(self, X):
        """Decision values of the refitted pipeline's probe.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        X = self._check_X(X)
        return self.best_estimator_.decision_function(X)

    def score(self, X, y):
        """Score of the refitted pipeline with ``scoring`` (accuracy if None).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        score : float
        """
        X = self._check_X(X)
        scorer = check_scoring(self.best_estimator_, scoring=self.scoring)
        return float(scorer(self.best_estimator_, X, y))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Blocks are projected onto the unit sphere, by design: on the checks'
        # 2-feature blobs each block keeps only a sign, so the score is poor.
        tags.classifier_tags.poor_score = True
        return tags
