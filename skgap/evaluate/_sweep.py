"""Multi-task sweeps of a gap-closing path parameter over paired random splits.

:func:`gap_sweep` scores every task family on the same splits and the same
transformed rows; :func:`summarize_sweep` (in :mod:`._summary`) turns the long
table into paired differences, intervals, verdicts and a selection.
"""

import copy
import warnings
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.validation import check_consistent_length

from .._core._layout import (
    block_slices,
    carried_modality_dims,
    check_carried_dims,
    resolve_modality_dims,
)
from .._core._norms import normalize_rows
from .._core._parallel import one_blas_thread, pass_threads, run_fits
from .._core._streaming import chunk_rows, fit_rows_in_chunks
from .._core._validation import Interval, PositiveInt, modality_dims_constraint, modality_names
from ..measure._cone import _mean_resultant_length as mean_resultant_length
from ..measure._cone import _modality_gap as modality_gap
from ..transform._implicit import block_norms, is_memory_mapped
from ..transform._shift import ModalityGapShifter
from ._auc import TASKS, check_task
from ._captioning import caption_metric_settings, check_texts, require_caption_extra
from ._captioning import split_captioning
from ._degenerate import DegenerateTaskWarning, _TaskWarning, duplicate_rows_reason
from ._implicit import ShiftedTrainingRows, fits_in_place
from ._paper_probe import ProbeTrainingWarning, make_paper_probe
from ._probes import make_linear_probe
from ._summary import summarize_sweep
from ._table import make_table
from ._tasks import PROBE_TASKS, check_tasks, score_split

__all__ = ["DegenerateTaskWarning", "LabelLeakageWarning", "gap_sweep", "summarize_sweep"]

#: The tasks to score instead of a fusion probe that the text labels give away.
LEAKAGE_FREE_TASKS = ("image", "zeroshot", "clustering")

#: The tasks that read no labels: ``gap_sweep(X, None, tasks=...)`` runs them.
LABEL_FREE_TASKS = ("retrieval", "captioning")


class LabelLeakageWarning(_TaskWarning):
    """The text block gives the label away, so a probe that sees it is trivial.

    Raised (as a warning) by :func:`gap_sweep` when the text rows of the
    training split hold at most one distinct row per class (class-name
    captions, as in CIFAR-style zero-shot sets: "the text block copies the
    label") or when a text-only probe scores an AUC of at least 0.999 while
    an image-only one does not. The early-fusion probe then reads the label
    off the text block whatever :math:`\\lambda` does; score
    ``tasks=("image", "zeroshot", "clustering")`` instead. When both
    one-block probes reach 0.999 the task is easy rather than leaked: that is
    a :class:`DegenerateTaskWarning`. The warning object has the attributes
    ``task`` (``'fusion'``) and ``reason`` (one line).

    Parameters
    ----------
    message : str
        The warning's text.
    task : str, default=None
        The task family it concerns.
    reason : str, default=None
        One line that the command line, the figures and the report show
        next to the task instead of a verdict.
    """


@dataclass(frozen=True, eq=False)
class _SweepPlan:
    """Everything a fit of the sweep needs besides the rows: fixed before the first fit.

    ``transformer`` is None for the default gap shift (then ``path`` is
    ``'lam'`` and ``direction`` its shift direction); ``class_embeddings``
    are the zero-shot classes (None: text prototypes of each training split);
    ``threads`` is the count of threads one probe evaluation may use (1 when
    fits run in parallel); ``norms`` the block norms of every row of ``X``
    when the probes train in place; ``seed`` seeds k-means (and, with
    ``reseed_probe``, the probe) and differs from split to split, so that an
    interval over splits sees their own randomness too; ``retrieval_gallery``
    and ``clustering_sample`` cap the test pairs of those tasks (None: all);
    ``in_place`` says whether the caller's ``X`` is a memory map, read in
    place by every fit. It is decided once, from the caller's array, because
    a worker may receive another kind (joblib's process backends hand large
    arrays over as memory maps): the table must not depend on where the fits
    ran. ``split_shift`` (the default gap shift fitted on the split's training
    rows) and ``split_prototypes`` (the split's zero-shot text prototypes)
    depend on the split only, not on lambda: they are computed once
    per split, before the fits, instead of once per fit.
    """

    transformer: object
    path: str
    dims: tuple
    direction: str
    tasks: tuple
    probe: object
    label_task: str
    classes: object = None
    class_embeddings: object = None
    seed: int = 0
    threads: int = 1
    norms: object = None
    texts: object = None
    reseed_probe: bool = False
    retrieval_gallery: object = None
    clustering_sample: object = None
    in_place: bool = False
    split_shift: object = None
    split_prototypes: object = None

    @property
    def slices(self):
        return block_slices(self.dims)

    @property
    def implicit(self):
        """Whether the probes train on implicit features: the default gap
        shift and a probe that :func:`._implicit.fits_in_place` accepts."""
        return self.transformer is None and fits_in_place(self.probe)

    @property
    def probes(self):
        return bool(PROBE_TASKS.intersection(self.tasks))


def _check_values(lams, default_path):
    raw = np.asarray(lams, dtype=object).ravel()
    if any(isinstance(v, (bool, np.bool_)) for v in raw.tolist()):
        # np.asarray([True], dtype=float) is [1.0]: a flag would pass as a full shift.
        raise ValueError(f"lams must hold numbers, not booleans; got {lams!r}.")
    lams = np.asarray(lams, dtype=float).ravel()
    if lams.size == 0:
        raise ValueError("lams must hold at least one value.")
    if not np.all(np.isfinite(lams)):
        raise ValueError(f"every lambda must be finite, got {lams.tolist()}.")
    if default_path and ((lams < -1).any() or (lams > 1).any()):
        raise ValueError(
            f"every lambda must lie in [-1, 1] (negative values widen the gap), got "
            f"{lams.tolist()}."
        )
    if np.unique(lams).size != lams.size:
        raise ValueError(f"lams holds a value twice: {lams.tolist()}.")
    return lams


def _check_transformer(transformer, path):
    if transformer is None:
        if path != "lam":
            raise ValueError(
                f"path={path!r} needs a transformer; the default gap shift's path is 'lam'."
            )
        return None
    if not (hasattr(transformer, "fit") and hasattr(transformer, "transform")
            and hasattr(transformer, "get_params")):
        raise TypeError(
            "transformer must be a scikit-learn transformer (fit, transform, get_params) in "
            f"the paired layout, got {type(transformer).__name__}."
        )
    if not isinstance(path, str) or path not in transformer.get_params():
        raise ValueError(
            f"path={path!r} is not a parameter of {type(transformer).__name__} "
            f"(parameters: {sorted(transformer.get_params())})."
        )
    return transformer


def _reseeded(probe, seed):
    """A clone of ``probe`` whose every ``random_state`` parameter is ``seed``."""
    keys = [k for k in probe.get_params() if k == "random_state" or k.endswith("__random_state")]
    return clone(probe).set_params(**dict.fromkeys(keys, seed))


def _resolve_probe(probe, task):
    if probe is None:
        return make_linear_probe(task)
    if isinstance(probe, str):
        if probe != "paper":
            raise ValueError(f"probe must be None, 'paper' or a classifier, got {probe!r}.")
        return make_paper_probe(task)
    if not (
        hasattr(probe, "fit")
        and (hasattr(probe, "predict_proba") or hasattr(probe, "decision_function"))
    ):
        raise TypeError(
            "probe must be a scikit-learn classifier with predict_proba or "
            f"decision_function, got {type(probe).__name__}."
        )
    return probe


def _class_embeddings(class_embeddings, classes, d):
    """Pooled unit class embeddings in the order of ``classes`` (None: text prototypes)."""
    from ..transform._zeroshot import pool_prompt_embeddings

    if class_embeddings is None:
        return None
    if isinstance(class_embeddings, dict):
        missing = [c for c in classes.tolist() if c not in class_embeddings]
        if missing:
            raise ValueError(
                f"class_embeddings has no entry for class(es) {missing[:10]} "
                f"(keys: {list(class_embeddings)[:10]})."
            )
        C = pool_prompt_embeddings([class_embeddings[c] for c in classes.tolist()])
    else:
        C = pool_prompt_embeddings(class_embeddings)
        if C.shape[0] != classes.size:
            raise ValueError(
                f"class_embeddings has {C.shape[0]} rows for {classes.size} classes; give one "
                "row per class in the order of np.unique(y), or a dict class -> embeddings."
            )
    if C.shape[1] != d:
        raise ValueError(
            f"class_embeddings are {C.shape[1]}-d but the text block is {d}-d."
        )
    return C


def _text_prototypes(T, train, y_train, classes):
    """Mean unit text row of each class among the rows ``train`` of the text block
    ``T`` (a class absent from the split: NaN row).

    The rows are gathered a chunk at a time (:func:`chunk_rows`), so a
    memory-mapped archive is never copied whole; training rows that fit in one
    chunk take the one-gather path.
    """
    step = chunk_rows(T)
    C = np.full((classes.size, T.shape[1]), np.nan)
    if train.size <= step:
        U = normalize_rows(T[train], "the text block")
        for k, c in enumerate(classes):
            rows = U[y_train == c]
            if rows.shape[0]:
                m = rows.mean(axis=0)
                C[k] = m / np.linalg.norm(m)
        return C
    sums = np.zeros((classes.size, T.shape[1]))
    counts = np.zeros(classes.size, dtype=np.intp)
    for start in range(0, train.size, step):
        U = normalize_rows(T[train[start:start + step]], "the text block")
        k_rows = np.searchsorted(classes, y_train[start:start + step])
        np.add.at(counts, k_rows, 1)
        for k in np.unique(k_rows):
            sums[k] += U[k_rows == k].sum(axis=0, dtype=np.float64)
    present = counts > 0
    C[present] = sums[present] / np.linalg.norm(sums[present], axis=1, keepdims=True)
    return C


def _as_text_rows(fitted, C, slices, n_features):
    """Transform class embeddings as text rows: [C | C] through the fitted map, text block."""
    rows = np.zeros((C.shape[0], n_features), dtype=np.float64)
    for sl in slices:
        rows[:, sl] = C
    return np.asarray(fitted.transform(rows))[:, slices[1]]


def _fit_map(value, plan):
    """The map of one value: the transformer unfitted, or the split's fitted gap
    shift at ``lam=value`` (its centroids do not depend on lam, which the
    shift reads when it transforms)."""
    if plan.transformer is not None:
        return clone(plan.transformer).set_params(**{plan.path: value})
    return copy.copy(plan.split_shift).set_params(lam=value)


def _probe_fitter(X, y, train, fitted, plan):
    """``fit_probe(columns)``: the probe fitted on the transformed training rows
    (their ``columns``), written out or implicit."""
    if plan.transformer is not None:
        # fit_transform on the training rows: a transformer may treat them apart (C3's noise).
        Z_train = np.asarray(fitted.fit_transform(X[train]))
    elif not plan.implicit:
        Z_train = np.asarray(fitted.transform(X[train]))
    else:
        # A memory map is read in place (held-out rows weighted 0); an array in
        # memory gives up one copy of its training rows.
        X_train = None if plan.in_place else X[train]
        if X_train is None:
            rows, y_rows = ShiftedTrainingRows(X, train, fitted, plan.slices, plan.norms), y
        else:
            train_norms = None if plan.norms is None else plan.norms[train]
            rows = ShiftedTrainingRows(X_train, None, fitted, plan.slices, train_norms)
            y_rows = y[train]
        return lambda columns: rows.fit(plan.probe, columns, y_rows, threads=plan.threads)
    y_train = y[train]
    return lambda columns: clone(plan.probe).fit(Z_train[:, columns], y_train)


def _zeroshot_classes(X, y, train, fitted, plan):
    """Unit class embeddings through the fitted map, as text rows; a class with
    no text row in the training split gets a NaN row (it is never predicted)."""
    C0 = plan.split_prototypes if plan.class_embeddings is None else plan.class_embeddings
    slices = plan.slices
    present = np.isfinite(C0).all(axis=1)
    C = np.full(C0.shape, np.nan)
    C[present] = normalize_rows(_as_text_rows(fitted, C0[present], slices, X.shape[1]),
                                "the class embeddings")
    return C


def _run_one(X, y, train, test, value, plan):
    """Fit the map on the training rows, transform the test rows, score every task.

    With the default gap shift and a plain lbfgs ``LogisticRegression`` probe
    the training rows are never shifted into a new array: the probe trains
    through the implicit features (:mod:`._implicit`). A memory-mapped archive
    is read in place (the shift fitted chunk by chunk, the held-out rows
    weighted 0), so it costs little more than its mapped pages; an array in
    memory gives up one copy of its training rows. Any other map or probe sees
    the written-out training rows, as ``fit_transform`` gives them.
    """
    plan = replace(plan, **_split_statistics(X, y, train, plan))
    fitted = _fit_map(value, plan)
    fit_probe = _probe_fitter(X, y, train, fitted, plan) if plan.probes else None
    if plan.transformer is not None and fit_probe is None:
        fitted.fit(X[train])
    Z_test = np.asarray(fitted.transform(X[test]))
    C = _zeroshot_classes(X, y, train, fitted, plan) if "zeroshot" in plan.tasks else None

    def caption():
        return split_captioning(X, y, train, test, fitted, Z_test, texts=plan.texts,
                                dims=plan.dims, labelled=plan.label_task != "none",
                                seed=plan.seed)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ProbeTrainingWarning)
        rows = score_split(
            plan.tasks, fit_probe, Z_test, y[test], plan.slices, label_task=plan.label_task,
            classes=plan.classes, class_embeddings=C, seed=plan.seed, caption=caption,
            retrieval_gallery=plan.retrieval_gallery, clustering_sample=plan.clustering_sample,
        )
    # A probe that did not train is reported once per sweep, naming its fits; the
    # records travel back with the scores (a worker process's warnings would be lost).
    notes = [str(w.message) for w in caught if issubclass(w.category, ProbeTrainingWarning)]
    for w in caught:
        if not issubclass(w.category, ProbeTrainingWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    blocks = [Z_test[:, s] for s in plan.slices]
    geometry = [mean_resultant_length(B) for B in blocks]
    gaps = [modality_gap(blocks[0], B)[1] for B in blocks[1:]]
    return rows, geometry, gaps, notes


def _warn_leakage(X, y, splits, plan, results, values):
    """Warn when the fusion probe can read the label off the text block, or when
    the task is easy for either block alone (one warning, in its own words)."""
    if "fusion" not in plan.tasks:
        return
    train = splits[0][0]
    hint = ("Score tasks that do not see the text labels: "
            f"tasks={LEAKAGE_FREE_TASKS}.")
    if plan.label_task != "multilabel" and _one_text_row_per_class(
        X[:, plan.slices[1]], train, y[train]
    ):
        warnings.warn(LabelLeakageWarning(
            "label leakage: the text block copies the label (one distinct row per class, as "
            "class-name captions), so the early-fusion probe reads the label off the text at "
            f"every lambda. {hint}", task="fusion",
            reason="trivial: the text block copies the label (one distinct text per class)",
        ), stacklevel=3)
        return
    text_auc = _block_probe_auc(X, y, splits, plan, results, values, "text")
    if not text_auc >= 0.999:
        return
    image_auc = _block_probe_auc(X, y, splits, plan, results, values, "image")
    if image_auc >= 0.999:
        reason = (f"trivial: image-only and text-only probes both score AUC >= 0.999 "
                  f"({image_auc:.4f}, {text_auc:.4f}); the task is easy")
        warnings.warn(DegenerateTaskWarning(
            f"{reason}, not leaked: the early-fusion probe is at its ceiling at every lambda, "
            "so no lambda can help it. Score a harder task.", task="fusion", reason=reason,
        ), stacklevel=3)
        return
    warnings.warn(LabelLeakageWarning(
        f"label leakage: a text-only probe scores AUC {text_auc:.4f} while an image-only one "
        f"scores {image_auc:.4f}, so the early-fusion probe reads the label off the text at "
        f"every lambda. {hint}", task="fusion",
        reason=f"trivial: the text gives the label away (text-only AUC {text_auc:.4f})",
    ), stacklevel=3)


def _warn_degenerate(X, plan):
    """Warn when ties, not the geometry, decide the retrieval ranks."""
    if "retrieval" not in plan.tasks:
        return
    reason = duplicate_rows_reason(X, plan.slices)
    if reason is not None:
        warnings.warn(DegenerateTaskWarning(
            f"retrieval: {reason}, so its recalls are not evidence for or against any "
            "lambda.",
            task="retrieval", reason=reason,
        ), stacklevel=3)


def _one_text_row_per_class(T, rows, y_rows):
    """Whether the rows ``T[rows]`` of each class are all one and the same row.

    Read chunk by chunk against each class's first row (no copy of the text
    block, no sort); real captions differ in the first chunk.
    """
    step = chunk_rows(T)
    for c in np.unique(y_rows):
        members = rows[y_rows == c]
        first = T[members[0]]
        for start in range(0, members.size, step):
            if not np.all(T[members[start:start + step]] == first):
                return False
    return True


def _block_probe_auc(X, y, splits, plan, results, values, block):
    """Mean one-block probe AUC at the value closest to 0 (one extra fit when not swept).

    The extra fit uses the default gap shift at 0 and the sweep's probe (and
    its block norms of ``X``, when it has them: no pass of its own for them).
    """
    j = int(np.argmin(np.abs(values)))
    if block in plan.tasks:
        scores = [score for rows, _, _, _ in results[j::len(values)]
                  for task, metric, score in rows if task == block and metric == "auc"]
        return float(np.nanmean(scores)) if np.isfinite(scores).any() else np.nan
    train, test = splits[0]
    block_plan = replace(plan, transformer=None, path="lam", direction="raw", tasks=(block,),
                         classes=None, class_embeddings=None, threads=pass_threads(X.shape[0]))
    # One BLAS thread, as every fit; in this process whatever joblib backend is
    # active (a dask backend ignores n_jobs=1): one fit is not worth sending
    # the rows to a cluster again.
    with one_blas_thread():
        rows, _, _, _ = _run_one(X, y, train, test, 0.0, block_plan)
    return rows[0][2]


def _report_missing_labels(results, jobs):
    """Warn, naming each split, when a label has no positive or no negative in a test split."""
    missing = sorted({
        (metric, seed) for (seed, _), (rows, _, _, _) in zip(jobs, results)
        for task, metric, score in rows if metric.startswith("auc_") and np.isnan(score)
    })
    if missing:
        listed = ", ".join(f"{m} (seed {s})" for m, s in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        warnings.warn(
            f"{len(missing)} label/split pair(s) have no positive or no negative in the test "
            f"split: {listed}{more}. Their AUC is NaN in the table and left out of the macro "
            "'auc'.",
            UserWarning,
            stacklevel=3,
        )


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like", None],
        "lams": ["array-like"],
        "n_seeds": PositiveInt(),
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "probe": "no_validation",
        "tasks": [str, "array-like"],
        "class_embeddings": "no_validation",
        "transformer": "no_validation",
        "path": [str],
        "task": [StrOptions(set(TASKS)), None],
        "modality_dims": modality_dims_constraint(),
        "direction": [StrOptions({"raw", "unit"})],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "n_jobs": [Integral, None],
        "as_frame": [StrOptions({"auto"}), "boolean"],
        "retrieval_gallery": [Interval(Integral, 2, None, closed="left"), None],
        "clustering_sample": [Interval(Integral, 2, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def gap_sweep(
    X,
    y,
    lams=np.linspace(0, 1, 11),
    n_seeds=5,
    test_size=0.2,
    probe=None,
    *,
    tasks=("fusion",),
    class_embeddings=None,
    texts=None,
    transformer=None,
    path="lam",
    task=None,
    modality_dims=None,
    direction="raw",
    random_state=0,
    progress=False,
    n_jobs=None,
    as_frame="auto",
    retrieval_gallery=5000,
    clustering_sample=5000,
):
    r"""Score several task families against a gap-closing parameter over paired splits.

    The protocol of the cone-effect paper, for every task at once: for each
    of ``n_seeds`` random train/test splits (stratified when the labels
    allow) and each value of the path parameter (:math:`\lambda` by default),
    fit the map on the training rows only, transform both splits, and score
    every task family on the transformed rows. Every task sees the same
    splits and the same rows, so differences between values -- and between
    tasks -- are *paired*.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Paired embeddings ``[V | T]``.
    y : array-like of shape (n_samples,) or (n_samples, n_labels), or None
        Binary or multi-class labels, or a 0/1 multi-label indicator matrix.
        ``None`` when every task reads no labels (``'retrieval'``,
        ``'captioning'``): the splits are then plain random splits.
    lams : array-like of float, default=np.linspace(0, 1, 11)
        Values of the path parameter. For the default gap shift they lie in
        :math:`[-1, 1]`: :math:`\lambda > 0` closes the gap (1 moves both
        centroids to their midpoint), :math:`\lambda < 0` *widens* it by
        moving each modality away from the other along :math:`\Delta` (the
        two-directional sweep of Liang et al. 2022). Include 0 (no
        intervention): :func:`summarize_sweep` measures every value against it
        (for the default gap shift a grid without 0 gets it added, with a
        warning).
    n_seeds : int, default=5
        Number of random splits.
    test_size : float in (0, 1) or int, default=0.2
        Fraction (or number) of rows held out for testing in each split.
    probe : classifier, 'paper' or None, default=None
        The linear probe of the probe tasks (``'fusion'``, ``'image'``,
        ``'text'``, ``'text_to_image'``, ``'image_to_text'``); needs
        ``predict_proba`` or ``decision_function``. ``None``: the converged,
        class-weighted logistic regression of :func:`make_linear_probe`.
        ``'paper'``: the probe the cone-effect paper states
        (:class:`PaperProbe`: no hidden layer, SGD with momentum 0.9 at
        learning rate 3e-4, early stopping, class-weighted loss).
    tasks : sequence of str, default=('fusion',)
        Task families to score, any of

        - ``'fusion'``: the early-fusion probe on :math:`[v', t']`; metric ``auc``
          (and ``auc_<j>`` per label of a multi-label task);
        - ``'image'``, ``'text'``: the same probe on one transformed block
          (a modality whose partner is missing at inference); metric ``auc``;
        - ``'zeroshot'``: each image row of the test split gets the class whose
          embedding is the most cosine-similar; metrics ``accuracy`` and ``auc``
          (one-vs-rest on the cosines);
        - ``'retrieval'``: recall@1, 5, 10 between the test pairs in both
          directions (among at most ``retrieval_gallery`` of them); metrics
          ``i2t_R@1``, ``t2i_R@1``, ...;
        - ``'clustering'``: k-means (k = number of classes, 10 restarts) on the
          pooled image and text rows of the test split (fitted on at most
          ``clustering_sample`` of its pairs); metrics ``ARI`` and
          ``AMI`` against the labels (each on one modality's rows, averaged
          over the two: a pair votes once), and ``modality_ARI`` against the modality
          of each row (high: the clusters follow the modality, not the meaning;
          lower is better);
        - ``'text_to_image'``: the probe trained on the *text* rows of the
          training split and scored on the *image* rows of the test split (the
          setting of text-only training); ``'image_to_text'`` the mirror;
          metrics ``accuracy`` and ``auc``;
        - ``'captioning'``: each test image gets the training text whose
          transformed text row is the most cosine-similar
          (:class:`RetrievalCaptioner` with the training rows as its bank);
          metrics ``label_accuracy`` (single-label ``y``) or
          ``label_f1_micro``, ``label_f1_macro``, ``label_f1_example``
          (multi-label ``y``; none when ``y`` is None), ``bleu1`` ...
          ``bleu4``, ``rouge1``, ``rouge2``, ``rougeL``, ``cider_d``
          (:func:`text_overlap_scores`) and ``text_cosine``
          (:func:`semantic_agreement` on the untransformed text rows), and
          ``distinct_captions`` (the share of distinct captions among the
          test images: a diagnostic of hubness, not a quality score); each
          also with the suffixes ``_random``, ``_frequent`` and ``_oracle``,
          its floors and ceiling on the same split (a random training text,
          the most frequent one, the training text nearest the query's own
          text embedding), which do not depend on :math:`\lambda`. Needs
          ``texts`` and ``skgap[caption]``; the library versions and settings
          are in ``table.attrs['captioning']`` (a DataFrame) and
          :func:`caption_metric_settings`.

        The last six need both blocks in one space (one width), and all but
        ``'retrieval'`` and ``'captioning'`` need one class per row.
    class_embeddings : array-like, dict or None, default=None
        Class embeddings of ``'zeroshot'``: ``(n_classes, d)`` rows in the
        order of ``np.unique(y)`` (or ``(n_classes, n_prompts, d)``), or a dict
        ``{class: one or several prompt embeddings}``; the prompts of a class
        are normalised, averaged and normalised again. They are transformed as
        *text* rows with the map of the training split. ``None`` uses the
        *text prototype* of each class: the normalised mean unit text row of
        that class in the training split (no prompts needed, but not the
        zero-shot setting of CLIP: the prototypes have seen training texts).
    texts : sequence of str or None, default=None
        The text (caption, report) of each row, for ``'captioning'``: the
        training rows' texts are the bank, the test rows' texts the
        references.
    transformer : paired transformer or None, default=None
        The gap-closing map. ``None``: the gap shift of
        :class:`~skgap.ModalityGapShifter` (eq. 5), with ``path='lam'``.
        Otherwise any scikit-learn transformer in the paired layout
        (e.g. ``ModalityCentering()``); a clone with ``path`` set to each value
        is fitted on the training rows (``fit_transform``) and applies
        ``transform`` to the test rows. For ``'zeroshot'`` it must act on each
        block separately, as skgap's post-hoc transformers do.
    path : str, default='lam'
        The parameter of ``transformer`` that ``lams`` sets (e.g. ``'alpha'``).
    task : {'binary', 'multiclass', 'multilabel'} or None, default=None
        ``None`` infers it from ``y``; otherwise it must match ``y``.
    modality_dims : sequence of int, default=None
        Width of each block; ``None`` means two blocks of equal width.
    direction : {'raw', 'unit'}, default='raw'
        Shift direction of the default gap shift (see
        :class:`~skgap.ModalityGapShifter`).
    random_state : int, RandomState instance or None, default=0
        Seeds the splits; split ``s`` is the same for every value and task.
    progress : bool, default=False
        Show a tqdm progress bar (one step per split and value).
    n_jobs : int or None, default=None
        Fits run in parallel across (split, value) pairs, each with one BLAS
        thread (:func:`skgap._core._parallel.run_fits`). With one fit at a time, the
        cores BLAS may use share the row items of each evaluation of an
        lbfgs ``LogisticRegression`` probe instead (see Notes). The table does
        not depend on ``n_jobs`` with process workers (loky, dask): whether the
        rows are read in place is decided from the ``X`` given here, not from
        what a worker receives. Fits on threads other than the main one (the
        ``'threading'`` backend) cut their row passes into smaller tiles (see
        :data:`skgap._core._parallel.WORKER_TILE_BYTES`), which rounds
        differently: scores agree to about 1e-6. Under ``joblib.parallel_config(backend='dask')``
        the fits run on a ``dask.distributed`` cluster: ``X`` and ``y`` are sent
        to it once per sweep, and a read-only memory map of a file as its path,
        which every worker must see (:ref:`archives_on_a_cluster`).
    as_frame : {'auto', True, False}, default='auto'
        Return a :class:`pandas.DataFrame` (``'auto'``: when pandas is
        installed) or a dict of 1-D arrays.
    retrieval_gallery : int >= 2 or None, default=5000
        Largest gallery of ``'retrieval'``: a test split with more pairs is
        scored among a random ``retrieval_gallery`` of them (drawn from the
        split's seed, the same pairs at every value). Recall@k falls as the
        gallery grows, so it is reported at a fixed gallery size (as COCO 5k
        and Flickr30k 1k are); the default is COCO's. ``None``: every test
        pair, at a cost of :math:`n_{\mathrm{test}}^2 d` per fit. Test splits
        of at most this many pairs are scored whole either way.
    clustering_sample : int >= 2 or None, default=5000
        Largest number of test pairs k-means is fitted on for
        ``'clustering'``: with more, k-means is fitted on the pooled rows of a
        random ``clustering_sample`` of them (the split's seed) and every test
        row is assigned to its nearest centre; the scores are computed on all
        test rows. ``None``: k-means on every test row. See Notes.

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        Long format: one row per (seed, value, task, metric) with columns
        ``task``, ``metric``, ``lam`` (the value of the path parameter),
        ``seed``, ``score``, ``n_train`` and ``n_test`` (the split sizes, which
        the overlap correction of :func:`summarize_sweep` reads), and the
        geometry of the transformed test rows:
        ``gap_norm`` (centroid gap; ``gap_norm_<m>`` per further modality when
        there are more than two) and ``R_image``, ``R_text`` (mean resultant
        length of each block). For the wide layout of one task (one column
        per metric), pivot it:
        ``table.pivot_table(index=["seed", "lam"], columns="metric", values="score")``.

    Warns
    -----
    LabelLeakageWarning
        When ``'fusion'`` is scored and the text block gives the label away.
    DegenerateTaskWarning
        When ``'fusion'`` is scored and both one-block probes reach AUC 0.999
        (the task is easy), or ``'retrieval'`` is scored on a block whose rows
        are mostly copies of each other (ties decide the ranks: a copy of the
        right partner ranks ahead of it). The warning names the task and the
        reason.
    UserWarning
        When a label of a multi-label task has no positive or no negative in
        a test split (its AUC is NaN in the table, named in the warning).

    See Also
    --------
    summarize_sweep : Paired differences from :math:`\lambda = 0`, intervals, verdicts.
    skgap.plotting.plot_gap_sweep : The curves with their intervals.

    Notes
    -----
    For split :math:`s`, value :math:`\lambda` and a task with score
    function :math:`m`, the table records

    .. math:: m_{s}(\lambda) = m\big(y_{\mathrm{test}_s},\
        f_{\lambda,s}(\phi_{\lambda,s}(X_{\mathrm{test}_s}))\big)

    where :math:`\phi_{\lambda,s}` is the map fitted on
    :math:`X_{\mathrm{train}_s}` alone (for the gap shift: :math:`\Delta`
    estimated on the training rows) and :math:`f_{\lambda,s}` the probe
    fitted on :math:`\phi_{\lambda,s}(X_{\mathrm{train}_s})` (or the class
    embeddings, or k-means). Estimating the map on the whole data would leak
    the test rows into it.

    Memory: with the default gap shift and a plain lbfgs
    :class:`~sklearn.linear_model.LogisticRegression` probe (the probe of
    :func:`make_linear_probe`), the shifted training rows are never written
    out. The shift is fitted on the training rows chunk by chunk and the probe
    trains on ``X`` in place through per-row scalars (block :math:`m` of a
    shifted row is :math:`\alpha_{im} x_{im} + \gamma_{im} s_m`), with weight
    zero on the held-out rows -- scikit-learn's objective, term for term, so
    the scores equal those of the written-out rows within the solver's
    tolerance. A memory-mapped archive (``np.load(path, mmap_mode='r')``)
    then costs its mapped pages plus the shifted test rows. Other maps and
    probes see the written-out training rows.

    Large test splits: the probe tasks (``'fusion'``, ``'image'``,
    ``'text'``) train through the implicit features above; ``'zeroshot'``
    needs :math:`n_{\mathrm{test}} \times n_{\mathrm{classes}}` cosines
    (its text prototypes are read chunk by chunk). ``'retrieval'`` is the one
    task whose exact cost grows as :math:`n_{\mathrm{test}}^2 d`: at 80,000
    test pairs of width 512 that is :math:`6.6 \cdot 10^{12}` multiply-adds
    per direction and fit, hours for the 55 fits of the default protocol on
    a few cores, and each query's recall@k is one against a gallery of
    80,000 candidates, a number not comparable with another split size. It is
    therefore scored among a fixed gallery of ``retrieval_gallery`` test
    pairs (the blocked ranks of :func:`~skgap.measure.retrieval_recall_at_k`,
    memory :math:`O(2^{24})` scores whatever the gallery). ``'clustering'``
    fits k-means (10 restarts) on ``clustering_sample`` test pairs and assigns
    every test row to its nearest centre, at a cost that no longer grows with
    the restarts times the test split. Where k-means finds the classes the
    labelling is close to that of k-means on all rows; where the clusters
    are ambiguous (a wide gap splitting the classes by modality) k-means
    ends in another local optimum more often than with all rows (the figures
    are in the user guide, "Archives on a cluster"); ``clustering_sample=None``
    clusters every row.

    References
    ----------
    Restrepo et al. (2026), "On the Cone Effect and Modality Gap in Medical
    Vision-Language Embeddings", Section 4 and Figure 3.
    Liang et al. (2022), "Mind the Gap", NeurIPS (shifts in both directions).

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import gap_sweep
    >>> X, y = make_paired_embeddings(300, 16, preset="mimic-clip", random_state=0)
    >>> table = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=("fusion", "clustering"),
    ...                   as_frame=False)
    >>> sorted(table)  # doctest: +NORMALIZE_WHITESPACE
    ['R_image', 'R_text', 'gap_norm', 'lam', 'metric', 'n_test', 'n_train', 'score',
     'seed', 'task']
    >>> sorted(set(table["metric"].tolist()))
    ['AMI', 'ARI', 'auc', 'modality_ARI']
    """
    modality_dims = check_carried_dims(modality_dims, carried_modality_dims(X), "gap_sweep")
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X", ensure_min_samples=4)
    unlabelled = y is None
    if unlabelled:
        y, label_task = _no_labels(X.shape[0], tasks, task, class_embeddings), "none"
    else:
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        check_consistent_length(X, y)
        label_task = check_task(task, y)
    transformer = _check_transformer(transformer, path)
    values = _check_values(lams, transformer is None)
    if transformer is None and not (values == 0).any():
        # Every change is measured against the unshifted rows; without them no verdict exists.
        warnings.warn(
            f"lams {values.tolist()} has no 0 (the unshifted embeddings, which every change is "
            "measured against); adding lambda = 0 to the sweep.",
            UserWarning,
            stacklevel=2,
        )
        values = np.concatenate([[0.0], values])
    n_train, n_test = _check_split_sizes(n_seeds, test_size, X.shape[0])
    _check_class_sizes(y, label_task)
    dims = resolve_modality_dims(X.shape[1], modality_dims, min_blocks=2)
    tasks = check_tasks(tasks, label_task, dims)
    if direction not in ("raw", "unit"):
        raise ValueError(f"direction must be 'raw' or 'unit', got {direction!r}.")
    if progress not in (True, False):
        raise ValueError(f"progress must be True or False, got {progress!r}.")
    probe = _resolve_probe(probe, label_task) if label_task != "none" else None
    if "captioning" in tasks:
        texts = check_texts(texts, X.shape[0], "texts")
        require_caption_extra("the 'captioning' task")
    elif texts is not None:
        raise ValueError("texts is only used by the 'captioning' task; add it to tasks.")
    classes = np.unique(y) if label_task != "multilabel" else None
    C = None
    if "zeroshot" in tasks:
        C = _class_embeddings(class_embeddings, classes, dims[1])
    elif class_embeddings is not None:
        raise ValueError("class_embeddings is only used by the 'zeroshot' task; add it to tasks.")
    threads = pass_threads(X.shape[0]) if effective_n_jobs(n_jobs) == 1 else 1
    plan = _SweepPlan(
        transformer=transformer, path=path, dims=tuple(dims), direction=direction, tasks=tasks,
        probe=probe, label_task=label_task, classes=classes, class_embeddings=C,
        # One fit at a time: the BLAS-allowed cores share each probe
        # evaluation (the result does not depend on them).
        threads=threads, texts=texts, reseed_probe=isinstance(probe, str),
        retrieval_gallery=retrieval_gallery, clustering_sample=clustering_sample,
        in_place=is_memory_mapped(X),
    )
    if plan.implicit and plan.probes:
        # The probes' block norms depend on neither the split nor the value:
        # one pass over X for the whole sweep, not one per fit.
        plan = replace(plan, norms=block_norms(X, plan.slices))
    stratify = None if unlabelled else _stratify_labels(y, label_task, n_train, n_test)
    splits, split_seeds = _make_splits(X.shape[0], n_seeds, test_size, stratify, random_state)
    jobs = [(s, float(v)) for s in range(n_seeds) for v in values]
    results = _run_splits(X, y, splits, split_seeds, values, plan, n_jobs, progress)
    _warn_leakage(X, y, splits, plan, results, values)
    _warn_degenerate(X, plan)
    if label_task == "multilabel":
        _report_missing_labels(results, jobs)
    _report_untrained_probes(results, jobs)
    columns = _long_columns(results, jobs, dims)
    # The split sizes: summarize_sweep's overlap correction needs n_test / n_train.
    columns["n_train"] = np.full(columns["lam"].size, n_train)
    columns["n_test"] = np.full(columns["lam"].size, n_test)
    table = make_table(columns, as_frame)
    if "captioning" in tasks and hasattr(table, "attrs"):
        table.attrs["captioning"] = caption_metric_settings()
    return table


def _no_labels(n_rows, tasks, task, class_embeddings):
    """Placeholder labels for a sweep of tasks that read none, after checking the tasks."""
    names = (tasks,) if isinstance(tasks, str) else tuple(tasks) if tasks is not None else ()
    needing = [t for t in names if t not in LABEL_FREE_TASKS]
    if needing:
        raise ValueError(
            f"y is None, but task(s) {needing} need labels; without labels only "
            f"{LABEL_FREE_TASKS} run (the geometry columns come with every task)."
        )
    if task is not None or class_embeddings is not None:
        raise ValueError("y is None: task and class_embeddings describe labels; leave them None.")
    # Never read: a label-free task scores the rows, not y (the splits are not stratified).
    return np.zeros(n_rows, dtype=np.intp)


def _make_splits(n_samples, n_seeds, test_size, stratify, random_state):
    """``n_seeds`` sorted (train, test) index pairs, the same for every value and task,
    and each split's seed."""
    rng = check_random_state(random_state)
    split_seeds = rng.randint(np.iinfo(np.int32).max, size=n_seeds)
    indices = np.arange(n_samples)
    splits = []
    for seed in split_seeds:
        train, test = train_test_split(
            indices, test_size=test_size, stratify=stratify, random_state=int(seed)
        )
        splits.append((np.sort(train), np.sort(test)))
    return splits, [int(seed) for seed in split_seeds]


def _run_splits(X, y, splits, split_seeds, values, plan, n_jobs, progress):
    """Every (split, value) fit, in that order, in one parallel call; the
    progress bar advances as the fits finish. Each split has its own seed
    (k-means, and the probe when the sweep built it); the values of one split
    share it, so that their differences stay paired.

    The arrays that every fit reads -- the rows, the labels, the block norms,
    the texts, the class embeddings -- are arguments of their own, the same
    objects in every task (and each split's indices the same objects for its
    values): joblib's dask backend then sends each to the cluster once, not
    once per task. A read-only memory map travels as its file
    (:func:`run_fits`'s ``map_files``).
    """
    shared = replace(plan, norms=None, texts=None, class_embeddings=None)
    tasks = []
    for (train, test), seed in zip(splits, split_seeds):
        probe = _reseeded(plan.probe, seed) if plan.reseed_probe else plan.probe
        split_plan = replace(shared, seed=seed, probe=probe, **_split_statistics(X, y, train, plan))
        tasks += [(X, y, train, test, float(v), split_plan, plan.norms, plan.texts,
                   plan.class_embeddings) for v in values]
    bar = _progress_bar(len(tasks), progress)
    results = []
    for result in run_fits(_run_fit, tasks, n_jobs=n_jobs, return_as="generator",
                           map_files=True):
        results.append(result)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def _split_statistics(X, y, train, plan):
    """What every value of one split shares and ``plan`` lacks: the default gap
    shift fitted on its training rows, and its zero-shot text prototypes.
    Computed once per split before the fits (one read of the training rows
    per split instead of one per fit), or by a lone fit for itself."""
    found = {}
    if plan.transformer is None and plan.split_shift is None:
        shift = ModalityGapShifter(lam=0.0, modality_dims=plan.dims, direction=plan.direction)
        if plan.in_place:
            fit_rows_in_chunks(shift, X, train)
        else:
            shift.fit(X[train])
        found["split_shift"] = shift
    if ("zeroshot" in plan.tasks and plan.class_embeddings is None
            and plan.split_prototypes is None):
        found["split_prototypes"] = _text_prototypes(X[:, plan.slices[1]], train, y[train],
                                                     plan.classes)
    return found


def _run_fit(X, y, train, test, value, plan, norms, texts, class_embeddings):
    """:func:`_run_one` with the plan's shared arrays passed beside it."""
    plan = replace(plan, norms=norms, texts=texts, class_embeddings=class_embeddings)
    return _run_one(X, y, train, test, value, plan)


def _long_columns(results, jobs, dims):
    names = modality_names(len(dims))
    columns = {k: [] for k in ("task", "metric", "lam", "seed", "score")}
    geometry_names = (["gap_norm"] if len(dims) == 2
                      else [f"gap_norm_{names[m]}" for m in range(1, len(dims))])
    geometry_names += [f"R_{name}" for name in names]
    geometry = {k: [] for k in geometry_names}
    for (seed, value), (rows, R, gaps, _) in zip(jobs, results):
        for task, metric, score in rows:
            columns["task"].append(task)
            columns["metric"].append(metric)
            columns["lam"].append(value)
            columns["seed"].append(seed)
            columns["score"].append(score)
            for name, g in zip(geometry_names, list(gaps) + list(R)):
                geometry[name].append(g)
    out = {
        "task": np.array(columns["task"], dtype=object),
        "metric": np.array(columns["metric"], dtype=object),
        "lam": np.array(columns["lam"], dtype=float),
        "seed": np.array(columns["seed"], dtype=int),
        "score": np.array(columns["score"], dtype=float),
    }
    out.update({k: np.array(v, dtype=float) for k, v in geometry.items()})
    return out


def _report_untrained_probes(results, jobs):
    """One warning naming every fit whose probe ended no better than chance on its
    own training rows (task, split, value)."""
    found = [f"{note} [split {seed}, lambda {value:g}]"
             for (seed, value), (_, _, _, notes) in zip(jobs, results) for note in notes]
    if found:
        listed = "; ".join(found[:5])
        more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
        warnings.warn(
            f"{len(found)} of the sweep's probe fits ended no better than chance on their own "
            f"training rows, so their test scores say nothing about the embeddings: "
            f"{listed}{more}.",
            ProbeTrainingWarning,
            stacklevel=3,
        )


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


def _check_class_sizes(y, task):
    """Refuse binary labels that no split can hold on both sides.

    A binary split scores only when it has both classes in training *and* in
    test; with a single positive (or negative) every score of the sweep would
    be NaN or fail inside the probe's solver. (A rare class of a multi-class
    task only leaves its own column out, and a rare multi-label column is
    named by the sweep's warning.)
    """
    if task != "binary":
        return
    classes, counts = np.unique(y, return_counts=True)
    rare = classes[counts < 2]
    if rare.size:
        raise ValueError(
            f"class {rare.tolist()[0]!r} of the binary labels has a single row; every split "
            "needs both classes in training and in test, so each class needs at least 2 "
            "rows (each score would otherwise be NaN or the probe would fail)."
        )


def _stratify_labels(y, task, n_train, n_test):
    """``y`` when a stratified split is possible for this task, else None (with a warning)."""
    if task in ("multilabel", "none"):
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


def _progress_bar(total, progress):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("progress=True needs tqdm (pip install tqdm); running without a bar.")
        return None
    return tqdm(total=total, desc="gap sweep", unit="fit")


