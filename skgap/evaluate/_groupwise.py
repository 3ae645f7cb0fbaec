"""Group-wise evaluation: clustering and kNN on the stacked image and text embeddings."""

from numbers import Integral

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    completeness_score,
    homogeneity_score,
    normalized_mutual_info_score,
    v_measure_score,
)
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_array
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.multiclass import type_of_target

from .._core._layout import (
    block_slices,
    carried_modality_dims,
    check_carried_dims,
    resolve_modality_dims,
)
from .._core._norms import normalize_rows
from .._core._parallel import one_blas_thread
from .._core._validation import Interval, PositiveInt, modality_dims_constraint

__all__ = ["groupwise_scores", "knn_accuracy", "GROUPWISE_METRICS"]

#: Keys of :func:`groupwise_scores`.
GROUPWISE_METRICS = (
    "ari",
    "nmi",
    "homogeneity",
    "completeness",
    "v_measure",
    "knn_accuracy",
    "modality_ari",
)


def _check_labels(y, n_rows):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"group-wise evaluation needs one class label per row (1-D y), got shape {y.shape}; "
            "multi-label targets have no single group."
        )
    if y.shape[0] != n_rows:
        raise ValueError(f"y has {y.shape[0]} labels for {n_rows} rows of X.")
    if y.dtype == object:
        try:
            np.unique(y)
        except TypeError:
            # Sorting 'a' against 1 fails deep inside NumPy ("'<' not supported").
            kinds = sorted({type(v).__name__ for v in y.tolist()})
            raise ValueError(
                f"y mixes labels of different types ({', '.join(kinds)}), which cannot be "
                "ordered into classes; give every label one type (e.g. y.astype(str))."
            ) from None
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError("y holds NaN; every row needs a class label.")
    if type_of_target(y) == "continuous":
        raise ValueError(
            f"y looks continuous ({np.unique(y).size} distinct non-integer values for "
            f"{y.shape[0]} rows); group-wise scores need class labels. Pass the "
            "classes (e.g. binned values) as integers or strings."
        )
    return y


def _scale_free(Z):
    r"""``Z`` times a power of two that brings its largest entry into [0.5, 1).

    Distances are scale-free, but their squares under- or overflow at
    :math:`10^{\pm 200}` (float64): every distance 0 or inf, and the vote
    turns into a tie-break. A power of two scales every entry exactly.
    """
    peak = float(np.max(np.abs(Z))) if Z.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return Z
    return np.ldexp(Z, -np.frexp(peak)[1]).astype(Z.dtype, copy=False)


@validate_params(
    {"Z": ["array-like"], "y": ["array-like"], "n_neighbors": PositiveInt()},
    prefer_skip_nested_validation=True,
)
def knn_accuracy(Z, y, n_neighbors=10):
    r"""Leave-one-out k-nearest-neighbour accuracy of labels ``y`` on rows ``Z``.

    Each row is labelled by the majority label of its ``n_neighbors``
    nearest other rows (Euclidean; cosine on unit rows); ties go to the
    label that sorts first.

    .. math:: \mathrm{acc} = \frac{1}{N}\sum_{i=1}^{N}
        \Big[\, y_i = \arg\max_c \sum_{j \in \mathcal N_k(i)} [y_j = c] \,\Big]

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_neighbors : int, default=10

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.evaluate import knn_accuracy
    >>> Z = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> knn_accuracy(Z, [0, 0, 0, 1, 1, 1], n_neighbors=2)
    1.0
    """
    Z = check_array(Z, dtype=[np.float64, np.float32], input_name="Z", ensure_min_samples=2)
    y = _check_labels(y, Z.shape[0])
    Z = _scale_free(Z)
    k = int(n_neighbors)
    if k >= Z.shape[0]:
        raise ValueError(f"n_neighbors={k} must be below the number of rows ({Z.shape[0]}).")
    classes, codes = np.unique(y, return_inverse=True)
    with one_blas_thread():  # threads only contend on these sizes
        idx = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z, return_distance=False)
    rows = np.arange(Z.shape[0])
    # Drop each row itself (usually, not always, the first neighbour: duplicates).
    is_self = idx == rows[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    neighbours = idx[keep].reshape(Z.shape[0], k)
    counts = np.zeros((Z.shape[0], classes.size), dtype=np.intp)
    np.add.at(counts, (np.repeat(rows, k), codes[neighbours].ravel()), 1)
    return float(np.mean(np.argmax(counts, axis=1) == codes))


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "modality_dims": modality_dims_constraint(),
        "n_clusters": PositiveInt(allow_none=True),
        "n_neighbors": PositiveInt(),
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def groupwise_scores(
    X,
    y,
    *,
    modality_dims=None,
    n_clusters=None,
    n_neighbors=10,
    n_init=10,
    random_state=0,
):
    r"""Group-wise evaluation: do the embeddings group by meaning or by modality?

    Stacks the unit image and text embeddings into one set of :math:`2n`
    points labelled by the class of their pair, clusters them with k-means
    and compares the clusters with the classes; also reports leave-one-out
    kNN accuracy on the same points. With a large modality gap the clusters
    follow the modalities instead of the classes; closing the gap fixes that
    (Grassucci et al., 2026).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Paired embeddings ``[V | T]``; both blocks share a width.
    y : array-like of shape (n_samples,)
        Class of each pair.
    modality_dims : sequence of int, default=None
        Width of each block; ``None`` means two blocks of equal width.
    n_clusters : int, default=None
        Clusters of k-means; ``None`` uses the number of classes.
    n_neighbors : int, default=10
        Neighbours of the kNN vote.
    n_init : int or 'auto', default=10
        Restarts of :class:`~sklearn.cluster.KMeans` (the best inertia wins).
        Several restarts keep the score from jumping between local optima
        as :math:`\lambda` changes.
    random_state : int, RandomState instance or None, default=0
        Seed of k-means.

    Returns
    -------
    scores : dict
        ``ari``, ``nmi``, ``homogeneity``, ``completeness``, ``v_measure``:
        k-means clusters of the stacked points against the class labels;
        ``knn_accuracy``: see :func:`knn_accuracy`; ``modality_ari``: ARI of
        the clusters against the *modality* of each point (near 1: the
        clusters split the modalities apart, the gap dominates).

    See Also
    --------
    make_clustering_scorer : Any of these as a GridSearchCV scorer.

    Notes
    -----
    With :math:`Z = [\hat V; \hat T] \in \mathbb R^{2n \times d}` and labels
    :math:`[y; y]`, k-means gives clusters :math:`c`; then
    :math:`\mathrm{V} = 2hc/(h + c)` with homogeneity
    :math:`h = 1 - H(C \mid K)/H(C)` and completeness
    :math:`c = 1 - H(K \mid C)/H(K)`, and NMI uses the arithmetic mean of
    the entropies (scikit-learn's default).

    References
    ----------
    Grassucci et al. (2026), "Closing the Modality Gap Aligns Group-Wise
    Semantics", ICLR.

    Examples
    --------
    >>> from skgap import ModalityGapShifter
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import groupwise_scores
    >>> X, y = make_paired_embeddings(300, 16, n_classes=3, class_sep=3.0, random_state=0)
    >>> before = groupwise_scores(X, y)
    >>> after = groupwise_scores(ModalityGapShifter(lam=1.0).fit_transform(X), y)
    >>> bool(after["modality_ari"] < before["modality_ari"])
    True
    """
    modality_dims = check_carried_dims(modality_dims, carried_modality_dims(X),
                                       "groupwise_scores")
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X", ensure_min_samples=2)
    y = _check_labels(y, X.shape[0])
    dims = resolve_modality_dims(
        X.shape[1], modality_dims, shared_space="group-wise evaluation"
    )
    n_classes = np.unique(y).size
    if n_classes < 2:
        raise ValueError("group-wise evaluation needs at least two classes in y.")
    k = n_classes if n_clusters is None else int(n_clusters)
    blocks = [normalize_rows(X[:, s], f"block {m}") for m, s in enumerate(block_slices(dims))]
    Z = np.concatenate(blocks, axis=0)
    if k > Z.shape[0]:
        raise ValueError(f"n_clusters={k} exceeds the {Z.shape[0]} stacked points.")
    labels = np.concatenate([y] * len(blocks))
    modality = np.repeat(np.arange(len(blocks)), X.shape[0])
    with one_blas_thread():  # threads only contend on these sizes
        clusters = KMeans(n_clusters=k, n_init=n_init, random_state=random_state).fit_predict(Z)
    return {
        "ari": float(adjusted_rand_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "homogeneity": float(homogeneity_score(labels, clusters)),
        "completeness": float(completeness_score(labels, clusters)),
        "v_measure": float(v_measure_score(labels, clusters)),
        "knn_accuracy": knn_accuracy(Z, labels, n_neighbors=n_neighbors),
        "modality_ari": float(adjusted_rand_score(modality, clusters)),
    }

