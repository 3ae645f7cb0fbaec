"""Zero-shot classification by cosine similarity to class (prompt) embeddings."""

from numbers import Real

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._core._validation import Interval  # refuses booleans
from .._core._norms import check_nonzero_norms, normalize_rows, row_norms
from .._core._validation import FLOAT_DTYPES

__all__ = ["ZeroShotClassifier", "pool_prompt_embeddings"]


def _as_prompt_blocks(embeddings, name):
    """Split ``embeddings`` into one 2-D block of prompt embeddings per class."""
    if isinstance(embeddings, (list, tuple)):
        if len(embeddings) == 0:
            raise ValueError(f"{name} is empty; pass one embedding (or more) per class.")
        blocks = []
        for k, e in enumerate(embeddings):
            e = np.asarray(e)
            if e.ndim == 1:
                e = e[None, :]
            blocks.append(
                check_array(e, dtype=list(FLOAT_DTYPES), input_name=f"{name}[{k}]")
            )
        return blocks
    arr = np.asarray(embeddings)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be of shape (n_classes, d), (n_classes, n_prompts, d) or a "
            f"list of (n_prompts_k, d) arrays; got an array of shape {arr.shape}."
        )
    return [
        check_array(arr[k], dtype=list(FLOAT_DTYPES), input_name=f"{name}[{k}]")
        for k in range(arr.shape[0])
    ]


@validate_params(
    {"embeddings": ["array-like", dict], "name": [str]}, prefer_skip_nested_validation=True
)
def pool_prompt_embeddings(embeddings, name="class_embeddings"):
    r"""One unit vector per class from one or several prompt embeddings each.

    Each prompt embedding is L2-normalised, the prompts of a class are
    averaged and the mean is normalised again (the prompt ensembling of CLIP
    and CLIP_benchmark):

    .. math::

        c_k = \frac{\bar e_k}{\lVert \bar e_k \rVert}, \qquad
        \bar e_k = \frac{1}{P_k} \sum_{p=1}^{P_k} \frac{e_{kp}}{\lVert e_{kp} \rVert}.

    Parameters
    ----------
    embeddings : array-like or list of array-like
        Text embeddings of the class prompts, of shape (n_classes, d) or
        (n_classes, n_prompts, d), or a list of (n_prompts_k, d) arrays, which
        allows a different number of prompts per class.
    name : str, default='class_embeddings'
        Name used in error messages.

    Returns
    -------
    C : ndarray of shape (n_classes, d)
        Unit rows, float32 when every input block is float32, else float64.

    Raises
    ------
    ValueError
        On NaN or infinite values, blocks of different widths, zero-norm
        prompts, or prompts of one class that cancel out.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.transform import pool_prompt_embeddings
    >>> prompts = np.array([[[3.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 5.0]]])
    >>> pool_prompt_embeddings(prompts).round(4)
    array([[0.7071, 0.7071],
           [0.    , 1.    ]])
    """
    blocks = _as_prompt_blocks(embeddings, name)
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        raise ValueError(
            f"{name} holds embeddings of different widths {sorted(widths)}; every "
            "prompt embedding must live in the same space."
        )
    dtype = np.result_type(*blocks)
    C = np.empty((len(blocks), widths.pop()), dtype=dtype)
    for k, b in enumerate(blocks):
        C[k] = normalize_rows(b, name=f"{name}[{k}]").mean(axis=0)
    norms = row_norms(C)
    check_nonzero_norms(norms, f"{name} after averaging the normalised prompts of each class")
    C /= norms[:, None]
    return C


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    r"""Classify embeddings by their cosine similarity to class text embeddings.

    The zero-shot classifier of CLIP, and the unimodal zero-shot classifier of
    Di Folco et al. (2025) when an :class:`~skgap.AnchorAffineAligner`
    first maps the embeddings of a vision-only encoder into the text space.
    Nothing is learned from the training images: ``fit`` only checks the
    inputs and records the classes.

    Parameters
    ----------
    class_embeddings : array-like or list of array-like
        Text embeddings of one prompt, or of a prompt ensemble, per class: of
        shape (n_classes, d) or (n_classes, n_prompts, d), or a list of
        (n_prompts_k, d) arrays.
        Prompts are pooled by :func:`pool_prompt_embeddings` (normalise,
        average, normalise). Row ``k`` describes ``classes_[k]``.
    aligner : fitted estimator with a ``translate`` method or None, default=None
        Maps the input embeddings into the space of ``class_embeddings``,
        typically an :class:`~skgap.AnchorAffineAligner` fit on anchor
        pairs ``[image embeddings | text embeddings]``. It is used as is and
        never refit (``fit`` receives images and labels, not anchor pairs), so
        it must be fitted already: an unfitted aligner raises
        :class:`~sklearn.exceptions.NotFittedError` at ``fit``. Wrap it in
        :class:`sklearn.frozen.FrozenEstimator` so that
        :func:`~sklearn.base.clone` (cross-validation, grid search) keeps it
        fitted. ``None`` scores the inputs directly.
    temperature : float > 0, default=0.01
        Softmax (or sigmoid) temperature :math:`\tau` of ``predict_proba``;
        ``0.01`` is CLIP's learned logit scale of 100.
    multilabel : bool, default=False
        ``False``: one class per sample, probabilities by a softmax over the
        classes. ``True``: each class is present or absent independently,
        probabilities by a sigmoid (see Notes); ``y`` is then an indicator
        matrix of shape (n_samples, n_classes).
    negative_embeddings : array-like or None, default=None
        Multi-label only: embeddings of a negative prompt (or ensemble) per
        class ("no pleural effusion"), same layout as ``class_embeddings``.
        A class is predicted present when the sample is closer to its
        positive than to its negative prompt (Tiu et al., 2022).

    Attributes
    ----------
    class_embeddings_ : ndarray of shape (n_classes, d)
        The pooled unit class embeddings.
    negative_embeddings_ : ndarray of shape (n_classes, d) or None
        The pooled unit negative embeddings, when given.
    classes_ : ndarray of shape (n_classes,)
        Class labels, row ``k`` of ``class_embeddings_`` describing
        ``classes_[k]``; see :meth:`fit`.
    aligner_ : estimator or None
        The aligner used (the object passed, not a copy).
    n_features_in_ : int
        Width of the input embeddings: the aligner's source width, or ``d``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it had any.

    See Also
    --------
    AnchorAffineAligner : Map a vision-only encoder into a text space.

    Notes
    -----
    The input ``X`` holds image embeddings only, not the paired layout
    ``[V | T]``: at prediction time no paired text exists (and a paired
    caption would leak the label). With :math:`z = a(x)` the aligned
    embedding (:math:`a` the identity without aligner) and :math:`c_k` the
    pooled class embeddings, the scores are the cosines
    :math:`s_k = \cos(z, c_k)` and

    .. math::

        p(k \mid x) = \frac{\exp(s_k / \tau)}{\sum_j \exp(s_j / \tau)}, \qquad
        \hat y = \operatorname*{arg\,max}_k s_k .

    ``decision_function`` returns :math:`s` (for two classes
    :math:`s_1 - s_0`, the scikit-learn convention). In multi-label mode each
    class is scored against a reference :math:`r_k`, the cosine to its
    negative prompt, or, without negatives, the mean cosine over all
    classes (a class is then present when it is closer than average, a
    crude rule: pass negative prompts when you have them):

    .. math::

        p(k \mid x) = \sigma\big((s_k - r_k) / \tau\big), \qquad
        \hat y_k = [\, s_k > r_k \,],

    which for negatives equals the two-way softmax over a class's positive
    and negative prompt of CheXzero (Tiu et al., 2022).

    ``fit`` learns no weights, so the scores on arbitrary data are poor;
    scikit-learn's generic accuracy checks are skipped through the
    ``poor_score`` tag.

    References
    ----------
    Radford, A. et al. (2021). "Learning Transferable Visual Models From
    Natural Language Supervision". ICML.
    Di Folco, M. et al. (2025). "Semantic Alignment of Unimodal Medical Text
    and Vision Representations".
    Tiu, E. et al. (2022). "Expert-level detection of pathologies from
    unannotated chest X-ray images via self-supervised learning". Nature
    Biomedical Engineering 6, 1399-1406.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap import ZeroShotClassifier
    >>> C = np.eye(3)  # three class "text embeddings"
    >>> X = np.array([[2.0, 0.1, 0.0], [0.0, 0.2, 1.0]])
    >>> clf = ZeroShotClassifier(C).fit(X)
    >>> clf.classes_
    array([0, 1, 2])
    >>> clf.predict(X)
    array([0, 2])
    >>> ZeroShotClassifier(C).fit(X, ["cat", "dog"])
    Traceback (most recent call last):
        ...
    ValueError: y has 2 distinct labels but class_embeddings describes 3 classes...
    """

    _parameter_constraints = {
        "class_embeddings": ["array-like"],
        "aligner": [None, HasMethods(["translate"])],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "multilabel": ["boolean"],
        "negative_embeddings": [None, "array-like"],
    }

    def __init__(
        self,
        class_embeddings,
        aligner=None,
        temperature=0.01,
        multilabel=False,
        negative_embeddings=None,
    ):
        self.class_embeddings = class_embeddings
        self.aligner = aligner
        self.temperature = temperature
        self.multilabel = multilabel
        self.negative_embeddings = negative_embeddings

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Check the inputs and record the classes; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Image embeddings, of the aligner's source width (or of the class
            embeddings' width without aligner).
        y : array-like of shape (n_samples,) or (n_samples, n_classes), default=None
            Labels, used only to name the classes. ``None``: ``classes_`` is
            ``0, ..., n_classes - 1`` in the order of ``class_embeddings``.
            Whole-number labels within ``[0, n_classes)`` index the rows of
            ``class_embeddings`` (so a split may miss some classes). Other
            labels must have exactly ``n_classes`` distinct values, matched to
            the rows in sorted order. Multi-label: an indicator matrix with
            ``n_classes`` columns.

        Returns
        -------
        self : ZeroShotClassifier
        """
        if y is None:
            X = validate_data(self, X, dtype=list(FLOAT_DTYPES))
        else:
            X, y = validate_data(
                self, X, y, dtype=list(FLOAT_DTYPES), multi_output=self.multilabel
            )
            check_classification_targets(y)
        self.class_embeddings_ = pool_prompt_embeddings(self.class_embeddings)
        n_classes, d = self.class_embeddings_.shape
        self.negative_embeddings_ = None
        if self.negative_embeddings is not None:
            if not self.multilabel:
                raise ValueError(
                    "negative_embeddings is only used with multilabel=True; a "
                    "multi-class softmax compares the classes with one another."
                )
            neg = pool_prompt_embeddings(self.negative_embeddings, "negative_embeddings")
            if neg.shape != self.class_embeddings_.shape:
                raise ValueError(
                    f"negative_embeddings pools to shape {neg.shape} but "
                    f"class_embeddings to {self.class_embeddings_.shape}; give one "
                    "negative prompt (or ensemble) per class, in the same space."
                )
            self.negative_embeddings_ = neg
        self.aligner_ = self._check_aligner(X, d)
        self.classes_ = self._classes(y, n_classes)
        return self

    def _check_aligner(self, X, d):
        aligner = self.aligner
        if aligner is None:
            if X.shape[1] != d:
                raise ValueError(
                    f"X has {X.shape[1]} features but class_embeddings has width {d}; "
                    "without an aligner the embeddings must live in the space of "
                    "class_embeddings (pass a fitted AnchorAffineAligner to map them)."
                )
            return None
        try:
            check_is_fitted(aligner)
        except NotFittedError as exc:
            raise NotFittedError(
                f"The aligner {type(aligner).__name__} passed to ZeroShotClassifier is "
                "not fitted. Fit it on anchor pairs [image | text] first; "
                "ZeroShotClassifier never fits it (its fit sees images and labels "
                "only). To survive clone() in cross-validation, wrap the fitted "
                "aligner in sklearn.frozen.FrozenEstimator."
            ) from exc
        try:
            width = aligner.translate(X[:1]).shape[1]
        except ValueError as exc:
            raise ValueError(
                f"The aligner cannot translate X ({X.shape[1]} features): {exc}"
            ) from exc
        if width != d:
            raise ValueError(
                f"The aligner maps X into a space of width {width} but class_embeddings "
                f"has width {d}; fit the aligner with the text space of the class "
                "embeddings as its target block."
            )
        return aligner

    def _classes(self, y, n_classes):
        if y is None or self.multilabel:
            if y is not None and (y.ndim != 2 or y.shape[1] != n_classes):
                raise ValueError(
                    "With multilabel=True, y must be an indicator matrix of shape "
                    f"(n_samples, {n_classes}), one column per row of "
                    f"class_embeddings; got shape {y.shape}."
                )
            return np.arange(n_classes)
        labels = np.unique(y)
        if (
            np.issubdtype(labels.dtype, np.number)
            and np.all(labels == np.round(labels))
            and labels[0] >= 0
            and labels[-1] < n_classes
        ):
            # Whole numbers (1.0 counts) index the rows of class_embeddings.
            return np.arange(n_classes).astype(labels.dtype)
        if labels.shape[0] != n_classes:
            raise ValueError(
                f"y has {labels.shape[0]} distinct labels but class_embeddings "
                f"describes {n_classes} classes. Label the rows of class_embeddings "
                f"with the integers 0..{n_classes - 1}, or pass y holding exactly "
                f"{n_classes} distinct labels (matched to the rows in sorted order)."
            )
        return labels

    def _scores(self, X):
        """Cosines, and in multi-label mode the margins ``s - r``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=list(FLOAT_DTYPES))
        if self.aligner_ is not None:
            X = self.aligner_.translate(X)
            name = "X after the aligner"
        else:
            name = "X"
        Z = normalize_rows(X, name=name)
        S = Z @ self.class_embeddings_.T.astype(Z.dtype, copy=False)
        if not self.multilabel:
            return S
        if self.negative_embeddings_ is None:
            return S - S.mean(axis=1, keepdims=True)
        return S - Z @ self.negative_embeddings_.T.astype(Z.dtype, copy=False)

    def decision_function(self, X):
        r"""Cosine of each sample to each class (multi-label: the margin).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Image embeddings.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            :math:`\cos(z, c_k)`; for two classes :math:`s_1 - s_0`; in
            multi-label mode :math:`s_k - r_k` (positive: predicted present).
        """
        S = self._scores(X)
        if not self.multilabel and S.shape[1] == 2:
            return S[:, 1] - S[:, 0]
        return S

    def predict_proba(self, X):
        """Softmax (multi-label: sigmoid) of the scores over the temperature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Image embeddings.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Multi-class: rows sum to one. Multi-label: the probability that
            each class is present.
        """
        S = self._scores(X) / self.temperature
        if self.multilabel:
            return expit(S)
        return softmax(S, axis=1)

    def predict(self, X):
        """Most similar class (multi-label: every class closer than its reference).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Image embeddings.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_``; multi-label: an indicator matrix.
        """
        S = self._scores(X)
        if self.multilabel:
            return (S > 0).astype(np.int64)
        return self.classes_[np.argmax(S, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = self.multilabel
        # Nothing is learned from (X, y): generic accuracy checks cannot pass.
        tags.classifier_tags.poor_score = True
        tags.target_tags.required = False
        return tags
