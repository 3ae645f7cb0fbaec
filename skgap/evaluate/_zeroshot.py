"""Zero-shot classification scores with prompt ensembles."""

from numbers import Real

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

from .._core._norms import check_block
from .._core._validation import PositiveFinite
from .._core._shift import shift_block

__all__ = ["zero_shot_scores"]


def _pooled_classes(class_embeddings, classes):
    """Pool the prompts of each class; name the classes (dict keys by default)."""
    from ..transform._zeroshot import pool_prompt_embeddings

    if isinstance(class_embeddings, dict):
        default = np.asarray(list(class_embeddings))
        class_embeddings = list(class_embeddings.values())
    else:
        default = None
    C = pool_prompt_embeddings(class_embeddings)
    if C.shape[0] < 2:
        raise ValueError(f"zero-shot classification needs at least two classes, got {C.shape[0]}.")
    if classes is None:
        classes = default if default is not None else np.arange(C.shape[0])
    else:
        classes = np.asarray(classes)
        if classes.shape != (C.shape[0],):
            raise ValueError(
                f"classes must name each of the {C.shape[0]} classes, got shape {classes.shape}."
            )
        if np.unique(classes).size != classes.size:
            raise ValueError(f"classes must be distinct, got {classes.tolist()}.")
    return C, classes


@validate_params(
    {
        "V": ["array-like"],
        "y": ["array-like"],
        "class_embeddings": ["array-like", dict],
        "classes": ["array-like", None],
        "aligner": "no_validation",
        "temperature": [PositiveFinite(Real)],
        "shifter": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def zero_shot_scores(
    V, y, class_embeddings, *, classes=None, aligner=None, temperature=0.01, shifter=None
):
    r"""Zero-shot accuracy and balanced accuracy, with prompt ensembles.

    Each image is given the class whose (ensembled) text embedding is the
    most cosine-similar, through :class:`~skgap.ZeroShotClassifier`.

    Parameters
    ----------
    V : array-like of shape (n_samples, d_image)
        Image embeddings.
    y : array-like of shape (n_samples,)
        True classes, drawn from ``classes``.
    class_embeddings : array-like, list or dict
        Text embeddings of the class prompts: ``(n_classes, d)``,
        ``(n_classes, n_prompts, d)``, a list of ``(n_prompts_k, d)`` arrays,
        or a dict ``{class: (n_prompts_k, d) or (d,) array}``. The prompts of
        a class are ensembled as CLIP does: normalise, average, normalise
        (:func:`skgap.transform.pool_prompt_embeddings`).
    classes : array-like of shape (n_classes,), default=None
        The class of each entry of ``class_embeddings``; ``None`` uses the
        dict keys (in order), else ``0, ..., n_classes - 1``.
    aligner : fitted AnchorAffineAligner, default=None
        Maps image embeddings into the text space first (unimodal zero-shot).
    temperature : float, default=0.01
        Softmax temperature of the classifier (it does not change the
        predicted class).
    shifter : fitted ModalityGapShifter, default=None
        Apply its gap shift: images move by :math:`\lambda s_0` and class
        embeddings by :math:`\lambda s_1` before renormalisation (after the
        aligner, in the shared space), so zero-shot accuracy can be read
        against :math:`\lambda`.

    Returns
    -------
    scores : dict
        ``accuracy`` and ``balanced_accuracy`` (mean per-class recall), in [0, 1].

    See Also
    --------
    skgap.ZeroShotClassifier : The classifier.

    Notes
    -----
    With :math:`c_k` the pooled prompt embedding of class :math:`k`:

    .. math:: \hat y_i = \arg\max_k \cos(v_i, c_k), \qquad
        \mathrm{BA} = \frac{1}{K}\sum_k \frac{\#\{i : y_i = k,\ \hat y_i = k\}}{\#\{i : y_i = k\}}

    References
    ----------
    Radford et al. (2021), "Learning Transferable Visual Models From Natural
    Language Supervision", ICML (prompt ensembling).

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.evaluate import zero_shot_scores
    >>> prompts = {"cat": [[1.0, 0.1], [0.9, -0.1]], "dog": [[0.0, 1.0]]}
    >>> V = np.array([[1.0, 0.0], [0.2, 1.0], [0.1, 0.9], [0.6, 0.5]])
    >>> zero_shot_scores(V, ["cat", "dog", "dog", "dog"], prompts)
    {'accuracy': 0.75, 'balanced_accuracy': 0.8333...}
    """
    from ..transform._zeroshot import ZeroShotClassifier

    C, classes = _pooled_classes(class_embeddings, classes)
    V = check_block(V, "V")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != V.shape[0]:
        raise ValueError(
            f"y must hold one class per image row ({V.shape[0]}), got shape {y.shape}."
        )
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        raise ValueError(
            f"y holds classes with no class embedding: {unknown[:10].tolist()} "
            f"(known: {classes.tolist()})."
        )
    if shifter is not None:
        check_is_fitted(shifter, "shift_vectors_")
        if aligner is not None:
            V = aligner.translate(V)
            aligner = None
        if V.shape[1] != C.shape[1] or shifter.shift_vectors_.shape[1] != C.shape[1]:
            raise ValueError(
                f"the shifter works in {shifter.shift_vectors_.shape[1]} dimensions but the "
                f"images have {V.shape[1]} and the class embeddings {C.shape[1]}."
            )
        lam = shifter.lam
        V = shift_block(V, lam * shifter.shift_vectors_[0], name="V")
        C = shift_block(C, lam * shifter.shift_vectors_[1], name="class_embeddings")
    clf = ZeroShotClassifier(C, aligner=aligner, temperature=temperature).fit(V)
    # The classifier's rule (arg max of the cosines); its classes are the row
    # indices of C, mapped here to ours.
    pred = classes[clf.predict(V)]
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
    }
