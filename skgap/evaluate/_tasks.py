"""The task families of the multi-task sweep, scored on one transformed train/test split.

Every function here takes rows that are already transformed (shifted) with a
map fitted on the training rows, so that all task families of one split and
one setting see exactly the same rows.
"""

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from ..measure._retrieval import _retrieval_recall_at_k as retrieval_recall_at_k
from ._auc import _binary_auc as binary_auc
from ._auc import _continuous_scores as continuous_scores
from ._auc import _multiclass_auc as multiclass_auc
from ._auc import _multilabel_auc as multilabel_auc
from ._paper_probe import ProbeTrainingWarning

__all__ = ["PROBE_TASKS", "TASK_FAMILIES", "LOWER_IS_BETTER", "check_tasks", "score_split"]

#: Names of the task families, as ``gap_sweep(tasks=...)`` and ``skgap sweep --tasks`` take them.
TASK_FAMILIES = (
    "fusion",
    "image",
    "text",
    "zeroshot",
    "retrieval",
    "clustering",
    "text_to_image",
    "image_to_text",
    "captioning",
)

#: Task families that fit a probe on the training rows (the others only read the test rows).
PROBE_TASKS = frozenset({"fusion", "image", "text", "text_to_image", "image_to_text"})

#: Metrics where a lower score is better (the clusters should not follow the modality).
LOWER_IS_BETTER = frozenset({"modality_ARI"})

#: Task families that need one class per row.
_SINGLE_LABEL = ("zeroshot", "clustering", "text_to_image", "image_to_text")
#: Task families that compare the image and text blocks in one space.
_SHARED_SPACE = ("zeroshot", "retrieval", "clustering", "text_to_image", "image_to_text",
                 "captioning")
_RECALL_KS = (1, 5, 10)


def check_tasks(tasks, label_task, dims):
    """Validate ``tasks`` against the labels and the layout; return a tuple of names."""
    if isinstance(tasks, str):
        tasks = (tasks,)
    try:
        tasks = tuple(tasks)
    except TypeError:
        raise ValueError(
            f"tasks must be a sequence of task names from {TASK_FAMILIES}, got {tasks!r}."
        ) from None
    if not tasks:
        raise ValueError(f"tasks must name at least one of {TASK_FAMILIES}.")
    unknown = [t for t in tasks if t not in TASK_FAMILIES]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {TASK_FAMILIES}.")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks holds a name twice: {list(tasks)}.")
    if label_task == "multilabel":
        single = [t for t in tasks if t in _SINGLE_LABEL]
        if single:
            raise ValueError(
                f"task(s) {single} need one class per row; the labels are multi-label. "
                "Use 'fusion', 'image', 'text' or 'retrieval'."
            )
    shared = [t for t in tasks if t in _SHARED_SPACE]
    if shared and len(set(dims)) != 1:
        raise ValueError(
            f"task(s) {shared} compare images and texts in one space, but the blocks have "
            f"widths {tuple(dims)}; they need one width."
        )
    return tasks


def _probe_metrics(model, Z_test, y_test, label_task, prefix="auc"):
    """``[(metric, score), ...]``: the AUC, and per label for multi-label tasks."""
    scores = continuous_scores(model, Z_test)
    if label_task == "binary":
        return [(prefix, binary_auc(y_test, scores) if _two_classes(y_test) else np.nan)]
    if label_task == "multiclass":
        return [(prefix, _multiclass_or_nan(y_test, scores, model.classes_))]
    with warnings.catch_warnings():
        # A label with no positive (or no negative) in the split is NaN; gap_sweep reports it.
        warnings.simplefilter("ignore")
        per_label, macro = multilabel_auc(y_test, scores)
    return [(prefix, macro)] + [(f"{prefix}_{j}", float(a)) for j, a in enumerate(per_label)]


def _two_classes(y):
    return np.unique(y).size == 2


def _multiclass_or_nan(y, scores, labels):
    try:
        # A held-out class the probe never saw counts as a negative of every column.
        return multiclass_auc(y, scores, labels=labels, check_labels=False)
    except ValueError:
        return np.nan


def _zeroshot_metrics(V, C, y, classes):
    """Accuracy and AUC of nearest-class-embedding classification (unit rows, cosine)."""
    absent = ~np.isfinite(C).all(axis=1)
    # The class embeddings take the rows' dtype: float32 rows are never copied
    # to float64 (on a large test split that copy was most of the task's time).
    S = V @ np.where(absent[:, None], 0.0, C).astype(V.dtype, copy=False).T
    S[:, absent] = -2.0  # below every cosine: a class without an embedding is never chosen
    pred = classes[np.argmax(S, axis=1)]
    out = [("accuracy", float(np.mean(pred == y)))]
    if classes.size == 2:
        auc = binary_auc(y, S[:, 1] - S[:, 0]) if _two_classes(y) else np.nan
    else:
        auc = _multiclass_or_nan(y, S, classes)
    return out + [("auc", auc)]


def _transfer_metrics(model, Z_to, y_to, label_task):
    accuracy = float(np.mean(model.predict(Z_to) == y_to))
    return [("accuracy", accuracy)] + _probe_metrics(model, Z_to, y_to, label_task)


def _test_sample(n_rows, size, seed):
    """Sorted rows of a random subsample of ``size`` of the ``n_rows`` test pairs.

    ``None`` (no cap) or a cap of at least ``n_rows``: every row, in order.
    Drawn from ``seed`` alone, so every value of the path parameter of a split
    scores the same pairs and their differences stay paired.
    """
    if size is None or size >= n_rows:
        return None
    rng = np.random.RandomState(seed)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def _clustering_metrics(V, T, y, n_classes, seed, sample=None):
    r"""k-means on the pooled rows; scores that let each pair vote once.

    The clusters are fitted on the pooled rows :math:`[V; T]`, but each
    score against the labels is computed on one modality's rows at a time
    and averaged,

    .. math:: \mathrm{ARI} = \tfrac12\big(\mathrm{ARI}(y, c_V) + \mathrm{ARI}(y, c_T)\big),

    and likewise the adjusted mutual information (``AMI``). The pooled ARI of
    :math:`[c_V; c_T]` against :math:`[y; y]` counts each pair twice and
    rises whenever an image and its own caption share a cluster, whatever
    the labels: under random labels it grows as the gap closes. Within one
    modality every row appears once, so with labels independent of the rows
    the chance-adjusted scores have expectation 0 at every :math:`\lambda`.

    With more than ``sample`` test pairs, k-means (the same settings) is
    fitted on the pooled rows of a random ``sample`` of the pairs only
    (:func:`_test_sample`, the split's seed) and every test row is assigned
    to its nearest centre; the scores are then computed on all test rows as
    above. The centres of a k-means fit are estimates of the population's
    that converge as the sample grows, so the assignment approaches the
    labelling of full k-means at a fraction of its cost (the comparison is in
    the user guide, "Archives on a cluster"). ``None``: no cap.
    """
    c_image, c_text = _cluster_labels(V, T, n_classes, seed, sample)
    clusters = np.concatenate([c_image, c_text])
    modality = np.repeat([0, 1], V.shape[0])
    ari = [adjusted_rand_score(y, c) for c in (c_image, c_text)]
    ami = [adjusted_mutual_info_score(y, c) for c in (c_image, c_text)]
    return [
        ("ARI", float(np.mean(ari))),
        ("AMI", float(np.mean(ami))),
        ("modality_ARI", float(adjusted_rand_score(modality, clusters))),
    ]


def _cluster_labels(V, T, n_classes, seed, sample=None):
    """The k-means cluster of each image row and of each text row.

    k-means on the pooled rows :math:`[V; T]`, or, with more than ``sample``
    pairs, fitted on the pooled rows of a random ``sample`` of them and
    every row assigned to its nearest centre.
    """
    idx = _test_sample(V.shape[0], sample, seed)
    if idx is None:
        Z = np.concatenate([V, T], axis=0)
        k = min(n_classes, Z.shape[0])
        clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(Z)
        return clusters[: V.shape[0]], clusters[V.shape[0]:]
    Z = np.concatenate([V[idx], T[idx]], axis=0)
    k = min(n_classes, Z.shape[0])
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(Z)
    # Each block is assigned on its own: no pooled copy of the whole test split.
    return model.predict(V), model.predict(T)


def _naming_task(fit_probe, task):
    """``fit_probe`` whose training warnings name ``task``."""
    def fit(columns):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ProbeTrainingWarning)
            model = fit_probe(columns)
        for w in caught:
            if issubclass(w.category, ProbeTrainingWarning):
                warnings.warn(f"task {task!r}: {w.message}", ProbeTrainingWarning, stacklevel=2)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return model

    return fit


def _retrieval_metrics(V, T, gallery=None, seed=0):
    """Recall@1, 5, 10 in both directions among the test pairs.

    With more than ``gallery`` test pairs, among a random ``gallery`` of them
    (:func:`_test_sample`, the split's seed): recall@k falls as the gallery
    grows, so the field reports it at a fixed gallery size (COCO 5k,
    Flickr30k 1k), and the cost is then ``gallery**2 * d`` per fit whatever
    the size of the test split. ``None``: every test pair.
    """
    idx = _test_sample(V.shape[0], gallery, seed)
    if idx is not None:
        V, T = V[idx], T[idx]
    ks = tuple(k for k in _RECALL_KS if k <= V.shape[0])
    r = retrieval_recall_at_k(V, T, k=ks)
    return [(f"i2t_R@{k}", r[f"image_to_text_recall@{k}"]) for k in ks] + [
        (f"t2i_R@{k}", r[f"text_to_image_recall@{k}"]) for k in ks
    ]


def score_split(tasks, fit_probe, Z_test, y_test, slices, *, label_task, classes,
                class_embeddings, seed, caption=None, retrieval_gallery=None,
                clustering_sample=None):
    """Score every task family on one transformed split.

    Parameters
    ----------
    tasks : tuple of str
    fit_probe : callable
        ``fit_probe(columns)`` returns the probe fitted on the columns
        ``columns`` (a slice) of the transformed training rows and their labels.
        The training rows themselves never reach this function, so the caller
        may fit without writing them out.
    Z_test : ndarray
        Transformed test rows ``[V' | T']`` (unit rows per block).
    y_test : ndarray
    slices : list of slice
        The column block of each modality (image first, text second).
    label_task : {'binary', 'multiclass', 'multilabel'}
    classes : ndarray
        Sorted classes of the whole ``y`` (single-label tasks only).
    class_embeddings : ndarray of shape (n_classes, d) or None
        Transformed unit class embeddings for ``'zeroshot'``, rows in the
        order of ``classes``.
    seed : int
        Seeds k-means.
    caption : callable or None, default=None
        ``caption()`` returns the ``'captioning'`` task's ``[(metric, score),
        ...]`` (it needs the training rows and texts, which this function
        does not see).
    retrieval_gallery : int or None, default=None
        Test pairs ``'retrieval'`` ranks among (a random subset of the split
        when it has more); None: all.
    clustering_sample : int or None, default=None
        Test pairs k-means is fitted on for ``'clustering'`` (every test row
        is then assigned to its nearest centre); None: all.

    Returns
    -------
    list of (task, metric, score)
    """
    img, txt = slices[0], slices[1]
    rows = []
    unnamed = fit_probe
    for task in tasks:
        fit_probe = None if unnamed is None else _naming_task(unnamed, task)
        if task == "fusion":
            model = fit_probe(slice(None))
            found = _probe_metrics(model, Z_test, y_test, label_task)
        elif task in ("image", "text"):
            sl = img if task == "image" else txt
            found = _probe_metrics(fit_probe(sl), Z_test[:, sl], y_test, label_task)
        elif task == "zeroshot":
            found = _zeroshot_metrics(Z_test[:, img], class_embeddings, y_test, classes)
        elif task == "retrieval":
            found = _retrieval_metrics(Z_test[:, img], Z_test[:, txt], retrieval_gallery, seed)
        elif task == "clustering":
            found = _clustering_metrics(Z_test[:, img], Z_test[:, txt], y_test, classes.size,
                                        seed, clustering_sample)
        elif task == "captioning":
            found = caption()
        elif task == "text_to_image":
            found = _transfer_metrics(fit_probe(txt), Z_test[:, img], y_test, label_task)
        else:  # image_to_text
            found = _transfer_metrics(fit_probe(img), Z_test[:, txt], y_test, label_task)
        rows += [(task, metric, float(score)) for metric, score in found]
    return rows
