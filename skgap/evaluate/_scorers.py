"""Scorers that judge a transformer's output, so GridSearchCV can choose lambda by them.

scikit-learn scorers judge predictions; retrieval and clustering judge the
embeddings themselves. These scorers are callables ``scorer(estimator, X, y)``
that call ``estimator.transform(X)`` (a fitted :class:`~skgap.ModalityGapShifter`
or a pipeline of transformers) and score the paired output.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params

from .._core._layout import block_slices, resolve_modality_dims
from .._core._parallel import one_blas_thread
from .._core._validation import Interval, PositiveInt, modality_dims_constraint
from ..measure._retrieval import retrieval_recall_at_k
from ._groupwise import GROUPWISE_METRICS, groupwise_scores

__all__ = ["make_retrieval_scorer", "make_clustering_scorer"]

_DIRECTIONS = ("both", "image_to_text", "text_to_image")


def _fitted_layout(estimator):
    """``modality_dims_`` of the estimator or of the last pipeline step that has one."""
    dims = getattr(estimator, "modality_dims_", None)
    if dims is not None:
        return dims
    for _, step in reversed(getattr(estimator, "steps", [])):
        dims = getattr(step, "modality_dims_", None)
        if dims is not None:
            return dims
    return None


def _transform(estimator, X):
    if not hasattr(estimator, "transform"):
        raise TypeError(
            f"this scorer judges transformed embeddings, but {type(estimator).__name__} has no "
            "transform method; search over a transformer (e.g. ModalityGapShifter) or a "
            "Pipeline of transformers, not over a pipeline that ends in a classifier."
        )
    return np.asarray(estimator.transform(X))


def _blocks(Z, estimator, modality_dims):
    dims = modality_dims if modality_dims is not None else _fitted_layout(estimator)
    dims = resolve_modality_dims(Z.shape[1], dims)
    if len(dims) != 2:
        raise ValueError(f"this scorer needs two modality blocks, got modality_dims={dims}.")
    s_v, s_t = block_slices(dims)
    return Z[:, s_v], Z[:, s_t]


def _dedupe_images(V, group_ids):
    """One image row per group, and the image row of every text (paired layout)."""
    group_ids = np.asarray(group_ids)
    if group_ids.ndim != 1 or group_ids.shape[0] != V.shape[0]:
        raise ValueError(
            f"y must give one image id per row ({V.shape[0]}) when y_as_groups=True, "
            f"got shape {group_ids.shape}."
        )
    _, first, inverse = np.unique(group_ids, return_index=True, return_inverse=True)
    return V[first], inverse


class _TransformScorer:
    """Base: transform, split into blocks, score."""

    _name = "scorer"

    def __init__(self, modality_dims):
        self.modality_dims = modality_dims

    def __call__(self, estimator, X, y=None):
        # One BLAS thread: a search scores many folds, and threads only contend
        # there; GridSearchCV's n_jobs spends the cores.
        with one_blas_thread():
            Z = _transform(estimator, X)
            V, T = _blocks(Z, estimator, self.modality_dims)
            return self._score(V, T, y)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{self._name}({params})"


class _RetrievalScorer(_TransformScorer):
    _name = "make_retrieval_scorer"

    def __init__(self, k, direction, y_as_groups, modality_dims, block_size):
        super().__init__(modality_dims)
        self.k = k
        self.direction = direction
        self.y_as_groups = y_as_groups
        self.block_size = block_size

    def _params(self):
        return {"k": self.k, "direction": self.direction, "y_as_groups": self.y_as_groups}

    def _score(self, V, T, y):
        groups = None
        if self.y_as_groups:
            if y is None:
                raise ValueError("y_as_groups=True needs y (the image id of each row).")
            V, groups = _dedupe_images(V, y)
        r = retrieval_recall_at_k(V, T, k=(self.k,), groups=groups, block_size=self.block_size)
        i2t = r[f"image_to_text_recall@{self.k}"]
        t2i = r[f"text_to_image_recall@{self.k}"]
        return {"both": (i2t + t2i) / 2, "image_to_text": i2t, "text_to_image": t2i}[
            self.direction
        ]


class _ClusteringScorer(_TransformScorer):
    _name = "make_clustering_scorer"

    def __init__(self, metric, kwargs, modality_dims):
        super().__init__(modality_dims)
        self.metric = metric
        self.kwargs = kwargs

    def _params(self):
        return {"metric": self.metric, **self.kwargs}

    def _score(self, V, T, y):
        if y is None:
            raise ValueError("a clustering scorer needs the class labels y.")
        X = np.concatenate([V, T], axis=1)
        return groupwise_scores(X, y, modality_dims=(V.shape[1], T.shape[1]), **self.kwargs)[
            self.metric
        ]


@validate_params(
    {
        "k": [Interval(Integral, 1, None, closed="left")],
        "direction": [StrOptions(set(_DIRECTIONS))],
        "y_as_groups": ["boolean"],
        "modality_dims": modality_dims_constraint(),
        "block_size": PositiveInt(allow_none=True),
    },
    prefer_skip_nested_validation=True,
)
def make_retrieval_scorer(
    k=1, *, direction="both", y_as_groups=False, modality_dims=None, block_size=None
):
    r"""A GridSearchCV scorer: retrieval recall@k of the transformed embeddings.

    The scorer calls ``estimator.transform(X)``, splits the output into its
    image and text blocks and returns recall@k
    (:func:`~skgap.measure.retrieval_recall_at_k`) on the held-out rows.

    Parameters
    ----------
    k : int, default=1
        The cut-off.
    direction : {'both', 'image_to_text', 'text_to_image'}, default='both'
        Which recall to return; ``'both'`` averages the two directions.
    y_as_groups : bool, default=False
        Read ``y`` as the image id of each row: rows with the same id are
        several captions of one image (their image rows are merged). With
        ``False`` row ``i``'s image is matched with row ``i``'s text only.
    modality_dims : sequence of int, default=None
        Width of each block of the transformed output; ``None`` takes the
        fitted ``modality_dims_`` of the estimator (or of the last pipeline
        step that has one), else two equal blocks.
    block_size : int or None, default=None
        Passed to :func:`~skgap.measure.retrieval_recall_at_k`.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y=None) -> float``
        Greater is better.

    See Also
    --------
    make_clustering_scorer : The group-wise counterpart.

    Notes
    -----
    With ``direction='both'`` the score is
    :math:`\tfrac12(\mathrm{R@k}_{I\to T} + \mathrm{R@k}_{T\to I})`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skgap import ModalityGapShifter
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import make_retrieval_scorer
    >>> X, _ = make_paired_embeddings(200, 16, random_state=0)
    >>> search = GridSearchCV(ModalityGapShifter(), {"lam": [0.0, 1.0]},
    ...                       scoring=make_retrieval_scorer(k=5), cv=2).fit(X)
    >>> search.cv_results_["mean_test_score"].shape
    (2,)
    """
    return _RetrievalScorer(int(k), direction, bool(y_as_groups), modality_dims, block_size)


@validate_params(
    {
        "metric": [StrOptions({m for m in GROUPWISE_METRICS if m != "modality_ari"})],
        "n_clusters": PositiveInt(allow_none=True),
        "n_neighbors": PositiveInt(),
        "random_state": ["random_state"],
        "modality_dims": modality_dims_constraint(),
    },
    prefer_skip_nested_validation=True,
)
def make_clustering_scorer(
    metric="v_measure", *, n_clusters=None, n_neighbors=10, random_state=0, modality_dims=None
):
    r"""A GridSearchCV scorer: a group-wise metric of the transformed embeddings.

    The scorer calls ``estimator.transform(X)`` and returns one entry of
    :func:`groupwise_scores` (k-means on the stacked image and text rows
    against the labels ``y``, or kNN accuracy).

    Parameters
    ----------
    metric : str, default='v_measure'
        The score to return, one of ``'ari'``, ``'nmi'``, ``'homogeneity'``,
        ``'completeness'``, ``'v_measure'`` and ``'knn_accuracy'`` (greater is
        better for each).
    n_clusters : int, default=None
        Clusters of k-means; ``None`` uses the number of classes.
    n_neighbors : int, default=10
        Neighbours of the kNN vote.
    random_state : int, default=0
        Seed of k-means.
    modality_dims : sequence of int, default=None
        Layout of the transformed output, as in :func:`make_retrieval_scorer`.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y) -> float``

    See Also
    --------
    groupwise_scores : Every group-wise metric at once.
    make_retrieval_scorer : The instance-wise counterpart.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skgap import ModalityGapShifter
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.evaluate import make_clustering_scorer
    >>> X, y = make_paired_embeddings(300, 16, n_classes=3, class_sep=3.0, random_state=0)
    >>> search = GridSearchCV(ModalityGapShifter(), {"lam": [0.0, 1.0]},
    ...                       scoring=make_clustering_scorer("ari"), cv=3).fit(X, y)
    >>> search.best_params_
    {'lam': 1.0}
    """
    kwargs = {"n_clusters": n_clusters, "n_neighbors": n_neighbors, "random_state": random_state}
    return _ClusteringScorer(metric, kwargs, modality_dims)
