r"""Captioning and report generation by retrieval in a shared image-text space.

A retrieval captioner keeps the texts of its training pairs (the *bank*) and
answers an image with the bank text whose embedding is the most
cosine-similar to the image's:

.. math:: \hat c(v) = c_{j^*}, \qquad
    j^* = \arg\max_j \frac{\langle v, t_j\rangle}{\lVert v\rVert\,\lVert t_j\rVert},

with ties broken towards the smaller bank index. In the paired layout the
bank's embeddings are the text block of the training rows, so a
:class:`~sklearn.pipeline.Pipeline` whose first step closes the gap
(``ModalityGapShifter``) shifts the bank and the queries alike, and
:class:`~sklearn.model_selection.GridSearchCV` can choose :math:`\lambda` by
a captioning score.

The scores name every choice they make: label agreement (accuracy, or F1
with its averaging named), text overlap from well-kept libraries (BLEU with
``sacrebleu``, ROUGE with ``rouge-score``, CIDEr-D with ``pycocoevalcap``),
and the cosine between the caption's and the reference's text embeddings.
"""

import importlib
import string
from hashlib import blake2b
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.cluster import KMeans
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from .._core._layout import block_slices, resolve_modality_dims
from .._core._norms import normalize_rows
from .._core._validation import Interval
from ._table import make_table

__all__ = [
    "CAPTION_METRICS",
    "LocalLMGenerator",
    "RetrievalCaptioner",
    "caption_metric_settings",
    "check_texts",
    "label_agreement",
    "make_captioning_scorer",
    "semantic_agreement",
    "text_overlap_scores",
]

#: Text-overlap metrics of :func:`text_overlap_scores`, in table order.
TEXT_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge1", "rouge2", "rougeL", "cider_d")
#: Every metric a captioning score can name (label agreement, text overlap, semantic).
CAPTION_METRICS = (
    ("label_accuracy", "label_f1_micro", "label_f1_macro", "label_f1_example")
    + TEXT_METRICS + ("text_cosine", "distinct_captions")
)
#: BLEU's settings (sacrebleu): the 13a tokenizer of WMT's mteval, lowercased,
#: exponential smoothing, corpus level.
BLEU_SETTINGS = {"tokenize": "13a", "lowercase": True, "smooth_method": "exp"}
#: ROUGE's settings (rouge-score): its own tokenizer (lowercase, non-alphanumerics
#: dropped), no stemming; the F-measure of each pair, averaged.
ROUGE_SETTINGS = {"use_stemmer": False, "score": "fmeasure", "aggregate": "mean over pairs"}
#: CIDEr-D's settings (pycocoevalcap's Cider: clipped n-gram counts and a
#: Gaussian length penalty): n-grams 1..4, sigma 6, scale 10; texts tokenised
#: by sacrebleu's 13a tokenizer and lowercased (no Java PTB tokenizer);
#: document frequencies from the references of the scored texts.
CIDER_SETTINGS = {"n": 4, "sigma": 6.0, "tokenize": "13a", "lowercase": True,
                  "idf": "references of the scored texts"}

#: The pip distribution of each optional module.
_DISTRIBUTIONS = {"sacrebleu": "sacrebleu", "rouge_score": "rouge-score",
                  "pycocoevalcap": "pycocoevalcap", "faiss": "faiss-cpu",
                  "transformers": "transformers"}
#: Query rows per block of the brute-force search: the block of cosines
#: (block x bank) stays near 64 MiB in float32.
_BLOCK_ENTRIES = 1 << 24
#: Extra neighbours FAISS returns before the exact re-ranking, so float32
#: rounding of near-ties cannot push a true neighbour out.
_FAISS_PAD = 8


def _require(module, what, extra="caption"):
    """Import an optional module or raise an ImportError naming the skgap extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        dist = _DISTRIBUTIONS.get(module.split(".")[0], module)
        raise ImportError(
            f"{what} needs {dist}, which is not installed: pip install 'skgap[{extra}]' "
            f"(or pip install {dist})."
        ) from None


def _version(dist):
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def check_texts(texts, n_rows=None, name="texts"):
    """Validate a sequence of texts: one non-empty ``str`` per row.

    Parameters
    ----------
    texts : sequence of str
        A list, tuple, NumPy array or pandas Series of strings.
    n_rows : int, default=None
        The number of rows the texts must match.
    name : str, default='texts'
        How error messages name the texts.

    Returns
    -------
    texts : ndarray of object, shape (n,)

    Raises
    ------
    TypeError
        ``texts`` is a single string, not a sequence, or holds a non-string.
    ValueError
        Wrong length, or an empty (or all-blank) text.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of strings (one per row), got one string.")
    try:
        values = list(texts.tolist() if hasattr(texts, "tolist") else texts)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of strings (one per row), got {type(texts).__name__}."
        ) from None
    if getattr(texts, "ndim", 1) != 1:
        raise ValueError(f"{name} must be 1-D (one text per row), got shape {texts.shape}.")
    for i, t in enumerate(values):
        if not isinstance(t, str):
            raise TypeError(
                f"{name}[{i}] is a {type(t).__name__} ({t!r:.40}), not a string; every "
                "text must be a str."
            )
        if not t.strip():
            raise ValueError(f"{name}[{i}] is an empty text; every text must hold words.")
    if n_rows is not None and len(values) != n_rows:
        raise ValueError(f"{name} has {len(values)} texts for {n_rows} rows; give one per row.")
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _check_labels(labels, n_rows, name="labels"):
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (one class per row) or 2-D (multi-label 0/1 columns), got "
            f"shape {y.shape}."
        )
    if y.shape[0] != n_rows:
        raise ValueError(f"{name} has {y.shape[0]} rows for {n_rows} texts; give one per row.")
    if y.ndim == 2 and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} is 2-D, so it must hold 0/1 indicators (one column per label).")
    if y.dtype == object:
        try:
            np.unique(y)
        except TypeError:
            # Sorting 'a' against 1 fails deep inside NumPy ("'<' not supported").
            kinds = sorted({type(v).__name__ for v in y.ravel().tolist()})
            raise ValueError(
                f"{name} mixes labels of different types ({', '.join(kinds)}), which cannot be "
                "ordered into classes; give every label one type (e.g. labels.astype(str))."
            ) from None
    return y


def _row_keys(X):
    """An 8-byte digest of each row's bytes: finds a query's own pair in the bank."""
    X = np.ascontiguousarray(X)
    keys = np.empty(X.shape[0], dtype=np.uint64)
    for i, row in enumerate(X):
        keys[i] = int.from_bytes(blake2b(row.tobytes(), digest_size=8).digest(), "little")
    return keys


def _select_top(S, k):
    """Bank indices and cosines of the ``k`` largest entries of each row of ``S``.

    Ordered by cosine, largest first; equal cosines by bank index, smallest
    first -- also at the k-th place, where ``argpartition`` alone would pick
    among ties arbitrarily.
    """
    n, m = S.shape
    if k >= m:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    else:
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(S, part, axis=1).min(axis=1)
        tied = np.flatnonzero((S >= kth[:, None]).sum(axis=1) > k)
        for r in tied:
            part[r] = np.argsort(-S[r], kind="stable")[:k]
    vals = np.take_along_axis(S, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    return part, np.take_along_axis(vals, order, axis=1)


def nearest_rows(Q, B, k, *, index="brute", block_size=None):
    """The ``k`` rows of unit ``B`` most cosine-similar to each unit row of ``Q``.

    Brute force multiplies blocks of ``Q`` with ``B`` in their dtype;
    ``index='faiss'`` searches a FAISS inner-product index (float32) for
    ``k`` plus a few rows and re-ranks them by their cosines in the input
    dtype, so both return the same neighbours unless float32 rounding
    reorders more than that margin of near-ties.

    Returns
    -------
    indices : ndarray of int64, shape (n, k)
    similarities : ndarray of shape (n, k), dtype of ``B``
    """
    n, m = Q.shape[0], B.shape[0]
    if index == "faiss":
        faiss = _require("faiss", "index='faiss'")
        flat = faiss.IndexFlatIP(B.shape[1])
        flat.add(np.ascontiguousarray(B, dtype=np.float32))
        wide = min(m, k + _FAISS_PAD)
        _, cand = flat.search(np.ascontiguousarray(Q, dtype=np.float32), wide)
        cand = cand.astype(np.int64)
        # Exact cosines of the candidates, in the input dtype, and the tie rule.
        S = np.einsum("nd,nkd->nk", Q, B[cand])
        order = np.lexsort((cand, -S), axis=1)[:, :k]
        return (np.take_along_axis(cand, order, axis=1),
                np.take_along_axis(S, order, axis=1))
    block = block_size or max(1, _BLOCK_ENTRIES // max(m, 1))
    indices = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.result_type(Q.dtype, B.dtype))
    for start in range(0, n, block):
        stop = min(start + block, n)
        indices[start:stop], sims[start:stop] = _select_top(Q[start:stop] @ B.T, k)
    return indices, sims


def _cluster_representatives(C, n_clusters, seed):
    """Positions (into the rows of ``C``, ranked by similarity) of one row per
    k-means cluster: the row nearest its centre, returned by rank.

    A cluster that k-means leaves empty (fewer distinct rows than clusters)
    gives its place to the best-ranked row not chosen yet.
    """
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(C)
    d2 = ((C - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1)
    reps = []
    for c in range(n_clusters):
        members = np.flatnonzero(km.labels_ == c)
        if members.size:
            # argmin takes the first of equal distances: the better-ranked row.
            reps.append(int(members[np.argmin(d2[members])]))
    reps = sorted(set(reps))
    rest = [i for i in range(C.shape[0]) if i not in reps]
    return np.array(sorted(reps + rest[: n_clusters - len(reps)]), dtype=np.int64)


class RetrievalCaptioner(BaseEstimator):
    r"""Caption images with the texts of their nearest training pairs.

    ``fit(X, y)`` takes paired training rows ``X = [V | T]`` and their texts
    ``y``: the unit text rows :math:`t_j` form the bank, with the texts (and
    the labels, when given) they carry. ``predict(X)`` answers each image
    row :math:`v` of paired (or image-only) rows with a text. By default it
    is the bank text of

    .. math:: j^*(v) = \arg\max_j \cos(v, t_j),

    ties going to the smaller bank index. With ``n_candidates`` and
    ``n_clusters`` it follows eCLIP's retrieval recipe (Kumar & Marttinen):
    the :math:`M` = ``n_candidates`` most similar bank texts are clustered
    by k-means (``n_clusters`` = :math:`K`, 10 restarts, on their unit text
    embeddings), the candidate nearest each centre represents its cluster,
    and the :math:`K` representatives are ordered by their similarity to the
    image. A ``generator`` then turns the retrieved texts into one text.

    Texts travel as the target ``y``, so that
    ``Pipeline([("gap", ModalityGapShifter(lam=0.5)), ("cap", RetrievalCaptioner())])``
    fits the shift and the bank on the same rows (the bank holds the
    *shifted* text rows, the queries are shifted alike), and
    :class:`~sklearn.model_selection.GridSearchCV` splits the texts with the
    rows and scores each fold's held-out texts (:func:`make_captioning_scorer`).
    Labels are a fit parameter (``fit(X, y, labels=...)``; in a pipeline
    ``cap__labels=...``).

    Parameters
    ----------
    n_candidates : int or None, default=None
        Bank texts retrieved per image. ``None``: 1, or ``20 * n_clusters``
        with ``n_clusters`` (eCLIP's :math:`K \times 20`).
    n_clusters : int or None, default=None
        :math:`K` of eCLIP's recipe; ``None`` keeps the candidates as ranked.
    generator : 'top-1' or callable, default='top-1'
        Turns the retrieved texts of one image (a list, most similar first)
        into its caption. ``'top-1'``: the first. A callable
        ``generator(texts) -> str``; one with a ``generate_batch(list of
        lists) -> list of str`` method is called once for all images
        (:class:`LocalLMGenerator` batches a local language model so).
    index : {'brute', 'faiss'}, default='brute'
        ``'brute'``: blocks of queries times the bank, in the input dtype
        (float32 stays float32). ``'faiss'``: a FAISS inner-product index
        (``skgap[caption]``), for banks too large for that; its candidates
        are re-ranked by exact cosines with the same tie rule.
    block_size : int or None, default=None
        Queries per block of the brute-force search; ``None`` keeps each
        block of cosines near :math:`2^{24}` entries.
    modality_dims : sequence of int, default=None
        Widths of the two blocks; ``None`` means two equal halves. The blocks
        must have one width (one shared space).
    random_state : int, RandomState instance or None, default=0
        Seeds k-means (the same seed for every image).

    Attributes
    ----------
    bank_embeddings_ : ndarray of shape (n_bank, d)
        Unit text rows of the bank, in the dtype of ``X``.
    bank_texts_ : ndarray of object, shape (n_bank,)
    bank_labels_ : ndarray or None
    modality_dims_ : tuple of int
    n_features_in_ : int

    See Also
    --------
    make_captioning_scorer : Scorer for GridSearchCV.
    text_overlap_scores, label_agreement, semantic_agreement : The scores.

    Notes
    -----
    A paired query row identical to a bank row is the query's own pair: its
    own text would be retrieved. ``predict`` refuses it (each bank row's
    bytes are kept as an 8-byte digest); image-only queries cannot be
    checked.

    References
    ----------
    Kumar & Marttinen (2024), "Improving Medical Multi-modal Contrastive
    Learning with Expert Annotations" (eCLIP), ECCV: retrieval-augmented
    report generation.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from skgap import ModalityGapShifter, RetrievalCaptioner
    >>> from skgap.datasets import make_paired_embeddings
    >>> X, y, texts = make_paired_embeddings(200, 16, n_classes=3, return_texts=True,
    ...                                      random_state=0)
    >>> model = Pipeline([("gap", ModalityGapShifter(lam=0.5)), ("cap", RetrievalCaptioner())])
    >>> captions = model.fit(X[:150], texts[:150]).predict(X[150:])
    >>> captions.shape, isinstance(captions[0], str)
    ((50,), True)
    """

    _parameter_constraints = {
        "n_candidates": [Interval(Integral, 1, None, closed="left"), None],
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "generator": [StrOptions({"top-1"}), callable],
        "index": [StrOptions({"brute", "faiss"})],
        "block_size": [Interval(Integral, 1, None, closed="left"), None],
        "modality_dims": [None, "array-like"],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_candidates=None, n_clusters=None, generator="top-1", index="brute",
                 block_size=None, modality_dims=None, random_state=0):
        self.n_candidates = n_candidates
        self.n_clusters = n_clusters
        self.generator = generator
        self.index = index
        self.block_size = block_size
        self.modality_dims = modality_dims
        self.random_state = random_state

    def _n_retrieved(self, n_bank):
        m = self.n_candidates
        if m is None:
            m = 1 if self.n_clusters is None else 20 * self.n_clusters
        if self.n_clusters is not None and self.n_clusters > m:
            raise ValueError(
                f"n_clusters={self.n_clusters} is larger than n_candidates={m}; each cluster "
                "needs a candidate."
            )
        if m > n_bank:
            what = ("n_candidates" if self.n_candidates is not None
                    else f"20 * n_clusters = {m}")
            raise ValueError(
                f"{what} asks for {m} bank texts but the bank holds {n_bank}; retrieve at "
                "most as many texts as the bank has."
            )
        return m

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, labels=None):
        """Keep the unit text rows of ``X``, their texts ``y`` and labels as the bank.

        Parameters
        ----------
        X : array-like of shape (n_bank, d_image + d_text)
            Paired training rows.
        y : sequence of str of length n_bank
            The text of each row (a caption, a report).
        labels : array-like of shape (n_bank,) or (n_bank, n_labels), default=None
            Class of each row, or 0/1 indicators of several labels; needed
            by :meth:`predict_labels`.

        Returns
        -------
        self : RetrievalCaptioner
        """
        if y is None:
            raise ValueError(
                "RetrievalCaptioner requires y to be passed, but the target y is None: fit "
                "needs the bank's texts as y (one string per row)."
            )
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        dims = tuple(resolve_modality_dims(X.shape[1], self.modality_dims))
        if len(dims) != 2 or dims[0] != dims[1]:
            raise ValueError(
                f"the captioner compares images with texts in one space: it needs two blocks "
                f"of one width, got modality_dims={dims}."
            )
        texts = check_texts(y, X.shape[0], "y (the bank's texts)")
        if X.shape[0] < 2:
            raise ValueError(
                f"the bank holds {X.shape[0]} text (n_samples={X.shape[0]}); a caption chosen "
                "from one text says nothing about the image. Fit on at least 2 rows."
            )
        self._n_retrieved(X.shape[0])
        if self.index == "faiss":
            _require("faiss", "index='faiss'")
        img, txt = block_slices(dims)
        self.bank_embeddings_ = normalize_rows(X[:, txt], "the text block of the bank")
        self.bank_texts_ = texts
        self.bank_labels_ = None if labels is None else _check_labels(labels, X.shape[0])
        self._bank_keys = np.sort(_row_keys(X))
        self.modality_dims_ = dims
        self.n_features_in_ = X.shape[1]
        return self

    def _query_images(self, X):
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        d_img = self.modality_dims_[0]
        if X.shape[1] == self.n_features_in_:
            keys = _row_keys(X)
            pos = np.minimum(np.searchsorted(self._bank_keys, keys), self._bank_keys.size - 1)
            own = np.flatnonzero(self._bank_keys[pos] == keys)
            if own.size:
                raise ValueError(
                    f"{own.size} query row(s) (first: row {own[0]}) are pairs of the bank: "
                    "their own texts would be retrieved. Caption rows held out of the bank "
                    "(fit on training rows, predict test rows; remove duplicate pairs)."
                )
            X = X[:, block_slices(self.modality_dims_)[0]]
        elif X.shape[1] != d_img:
            raise ValueError(
                f"X has {X.shape[1]} columns; the captioner was fitted on {self.n_features_in_} "
                f"(paired rows) and takes those or image rows of width {d_img}."
            )
        Q = normalize_rows(X, "the image block of the queries")
        return Q.astype(self.bank_embeddings_.dtype, copy=False)

    def retrieve(self, X):
        """The bank rows retrieved for each image, most similar first.

        Parameters
        ----------
        X : array-like of shape (n, d_image + d_text) or (n, d_image)

        Returns
        -------
        indices : ndarray of int64, shape (n, k)
            Bank rows: the ``k = n_candidates`` nearest, or the
            ``k = n_clusters`` cluster representatives.
        similarities : ndarray of shape (n, k)
            Their cosines with the image.
        """
        Q = self._query_images(X)
        B = self.bank_embeddings_
        m = self._n_retrieved(B.shape[0])
        idx, sims = nearest_rows(Q, B, m, index=self.index, block_size=self.block_size)
        if self.n_clusters is None:
            return idx, sims
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        keep = np.stack([_cluster_representatives(B[row], self.n_clusters, seed)
                         for row in idx])
        return np.take_along_axis(idx, keep, axis=1), np.take_along_axis(sims, keep, axis=1)

    def predict(self, X):
        """A text per image: the generator applied to its retrieved texts.

        Parameters
        ----------
        X : array-like of shape (n, d_image + d_text) or (n, d_image)

        Returns
        -------
        captions : ndarray of object, shape (n,)
        """
        idx, _ = self.retrieve(X)
        if isinstance(self.generator, str):  # 'top-1'
            return self.bank_texts_[idx[:, 0]]
        retrieved = [self.bank_texts_[row].tolist() for row in idx]
        if hasattr(self.generator, "generate_batch"):
            out = list(self.generator.generate_batch(retrieved))
        else:
            out = [self.generator(texts) for texts in retrieved]
        if len(out) != len(retrieved) or not all(isinstance(t, str) for t in out):
            raise TypeError(
                f"the generator must return one str per image ({len(retrieved)}); got "
                f"{len(out)} value(s) of type(s) {sorted({type(t).__name__ for t in out})}."
            )
        captions = np.empty(len(out), dtype=object)
        captions[:] = out
        return captions

    def predict_labels(self, X):
        """The label(s) of each image's caption: those of the retrieved bank text.

        Only a retrieved text carries labels; a generated one would need a
        labeler, so this refuses a ``generator`` other than ``'top-1'``.

        Parameters
        ----------
        X : array-like of shape (n, d_image + d_text) or (n, d_image)

        Returns
        -------
        labels : ndarray of shape (n,) or (n, n_labels)
        """
        check_is_fitted(self)
        if not isinstance(self.generator, str):
            raise ValueError(
                "a generated text has no label of its own: label agreement needs a labeler "
                "(e.g. CheXbert) run on the generated texts; predict_labels reads the labels of "
                "retrieved texts only (generator='top-1')."
            )
        if self.bank_labels_ is None:
            raise ValueError("the bank has no labels; pass labels= to fit.")
        idx, _ = self.retrieve(X)
        return self.bank_labels_[idx[:, 0]]

    def score(self, X, y):
        """Corpus BLEU-4 (sacrebleu, :data:`BLEU_SETTINGS`) of the captions against ``y``.

        Parameters
        ----------
        X : array-like of shape (n, d_image + d_text) or (n, d_image)
        y : sequence of str of length n
            The reference text of each image.

        Returns
        -------
        score : float
            BLEU-4 on a 0-1 scale.
        """
        return text_overlap_scores(y, self.predict(X), metrics=("bleu4",))["bleu4"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


# --------------------------------------------------------------------------- scores


def _tokenized(texts):
    tok = importlib.import_module("sacrebleu.tokenizers.tokenizer_13a").Tokenizer13a()
    return [tok(t).lower() for t in texts]


def text_overlap_scores(references, captions, metrics=TEXT_METRICS):
    """Text overlap of captions with their reference texts, from well-kept libraries.

    Parameters
    ----------
    references : sequence of str
        The true text of each image (one reference each).
    captions : sequence of str
        The caption of each image.
    metrics : sequence of str, default=TEXT_METRICS
        Any of ``'bleu1'`` ... ``'bleu4'`` (corpus BLEU with n-grams up to n,
        sacrebleu with :data:`BLEU_SETTINGS`, on a 0-1 scale: sacrebleu's
        score / 100), ``'rouge1'``, ``'rouge2'``, ``'rougeL'`` (rouge-score's
        F-measure averaged over the pairs, :data:`ROUGE_SETTINGS`) and
        ``'cider_d'`` (pycocoevalcap's CIDEr-D, :data:`CIDER_SETTINGS`).

    Returns
    -------
    scores : dict of str to float

    Raises
    ------
    ImportError
        A library of the ``caption`` extra is missing (the message names it).

    Notes
    -----
    Each library is called as its authors wrote it; :func:`caption_metric_settings`
    records the versions and settings, for the table's metadata.
    """
    if isinstance(metrics, str):
        raise ValueError(
            f"metrics must be a sequence of metric names, got the string {metrics!r}; "
            f"pass ({metrics!r},)."
        )
    try:
        metrics = tuple(metrics)
    except TypeError:
        raise ValueError(
            f"metrics must be a sequence of metric names from {TEXT_METRICS}, got {metrics!r}."
        ) from None
    if not metrics:
        raise ValueError(f"metrics is empty; name at least one of {TEXT_METRICS}.")
    unknown = [m for m in metrics if m not in TEXT_METRICS]
    if unknown:
        raise ValueError(f"unknown text metric(s) {unknown}; choose from {TEXT_METRICS}.")
    refs = check_texts(references, name="references").tolist()
    if not refs:
        raise ValueError("references is empty; give at least one text to score.")
    hyps = check_texts(captions, len(refs), name="captions").tolist()
    out = {}
    if any(m.startswith("bleu") for m in metrics):
        sacrebleu = _require("sacrebleu", "BLEU")
        for m in metrics:
            if m.startswith("bleu"):
                bleu = sacrebleu.BLEU(max_ngram_order=int(m[-1]), **BLEU_SETTINGS)
                out[m] = bleu.corpus_score(hyps, [refs]).score / 100.0
    rouge = [m for m in metrics if m.startswith("rouge")]
    if rouge:
        scorer = _require("rouge_score.rouge_scorer", "ROUGE").RougeScorer(
            rouge, use_stemmer=ROUGE_SETTINGS["use_stemmer"])
        pairs = [scorer.score(r, h) for r, h in zip(refs, hyps)]
        for m in rouge:
            out[m] = float(np.mean([p[m].fmeasure for p in pairs]))
    if "cider_d" in metrics:
        cider = _require("pycocoevalcap.cider.cider", "CIDEr-D")
        _require("sacrebleu", "CIDEr-D's tokenizer")
        gts = {i: [r] for i, r in enumerate(_tokenized(refs))}
        res = {i: [h] for i, h in enumerate(_tokenized(hyps))}
        score, _ = cider.Cider(n=CIDER_SETTINGS["n"], sigma=CIDER_SETTINGS["sigma"]).compute_score(
            gts, res)
        out["cider_d"] = float(score)
    return {m: float(out[m]) for m in metrics}


def caption_metric_settings():
    """The library, version and settings behind each captioning metric.

    Returns
    -------
    settings : dict of str to dict
        Keys ``'bleu'``, ``'rouge'``, ``'cider_d'``, ``'label_agreement'``
        and ``'text_cosine'``; a missing library has version ``None``.
    """
    return {
        "bleu": {"library": "sacrebleu", "version": _version("sacrebleu"),
                 "metrics": "bleu1-bleu4 (max_ngram_order 1-4), corpus level, score/100",
                 **BLEU_SETTINGS},
        "rouge": {"library": "rouge-score", "version": _version("rouge-score"),
                  "metrics": "rouge1, rouge2, rougeL", **ROUGE_SETTINGS},
        "cider_d": {"library": "pycocoevalcap", "version": _version("pycocoevalcap"),
                    **CIDER_SETTINGS},
        "label_agreement": {
            "library": "scikit-learn", "version": _version("scikit-learn"),
            "single-label": "label_accuracy: accuracy of the caption's label",
            "multi-label": ("label_f1_micro / label_f1_macro / label_f1_example: f1_score "
                            "with average='micro' / 'macro' / 'samples', zero_division=0"),
            "labels": "those of the retrieved bank text; generated texts need a labeler",
        },
        "text_cosine": {"embeddings": "the file's own text embeddings (no new model)",
                        "score": "mean cosine of caption's and reference's text embeddings"},
    }


def label_agreement(y_true, y_pred, *, per_label=False, label_names=None):
    """Agreement of the captions' labels with the images' labels.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,) or (n, n_labels)
        Classes, or 0/1 indicators of several labels (e.g. the 14 CheXpert
        findings, under the uncertain policy the labels were loaded with).
    per_label : bool, default=False
        Also return the per-label table (multi-label only).
    label_names : sequence of str, default=None
        Names of the label columns for the table (default ``'0'``, ``'1'``, ...).

    Returns
    -------
    scores : dict of str to float
        Single-label: ``label_accuracy``. Multi-label: ``label_f1_micro``,
        ``label_f1_macro`` and ``label_f1_example`` -- scikit-learn's
        :func:`~sklearn.metrics.f1_score` with ``average='micro'``,
        ``'macro'`` and ``'samples'``, ``zero_division=0``.
    table : DataFrame or dict of ndarray
        With ``per_label=True`` (multi-label): ``label``, ``precision``,
        ``recall``, ``f1``, ``support`` per label column.
    """
    if not isinstance(per_label, (bool, np.bool_)):
        raise ValueError(f"per_label must be True or False, got {per_label!r}.")
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has shape {y_true.shape} but y_pred {y_pred.shape}; give one label (row "
            "of indicators) per caption."
        )
    # scikit-learn reads any 2-D array of at most two integer values (e.g. all 2s)
    # as multi-label indicators; refuse what is not 0/1, and one-column 2-D labels.
    y_true = _check_labels(y_true, y_true.shape[0] if y_true.ndim else 0, "y_true")
    y_pred = _check_labels(y_pred, y_true.shape[0], "y_pred")
    if y_true.ndim == 1:
        if per_label:
            raise ValueError("per_label=True needs multi-label indicators (2-D labels).")
        return {"label_accuracy": float(accuracy_score(y_true, y_pred))}
    scores = {
        f"label_f1_{name}": float(f1_score(y_true, y_pred, average=avg, zero_division=0))
        for name, avg in (("micro", "micro"), ("macro", "macro"), ("example", "samples"))
    }
    if not per_label:
        return scores
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    names = (np.asarray(label_names, dtype=object) if label_names is not None
             else np.array([str(j) for j in range(y_true.shape[1])], dtype=object))
    if names.size != y_true.shape[1]:
        raise ValueError(f"label_names has {names.size} names for {y_true.shape[1]} labels.")
    table = make_table({"label": names, "precision": p, "recall": r, "f1": f, "support": s})
    return scores, table


def semantic_agreement(T_true, T_caption):
    r"""Mean cosine between each caption's and its reference's text embedding.

    .. math:: \frac1n \sum_i \cos(t_i, t_{c(i)})

    Both embeddings come from the user's own text encoder (the file): for a
    retrieved caption, the bank row's text embedding. The encoder-agnostic
    analogue of eCLIP's CheXbert-embedding cosine.

    Parameters
    ----------
    T_true : array-like of shape (n, d)
        Text embedding of each image's own (reference) text.
    T_caption : array-like of shape (n, d)
        Text embedding of each image's caption.

    Returns
    -------
    score : float
    """
    A = normalize_rows(check_array(T_true, dtype=[np.float64, np.float32]), "T_true")
    B = normalize_rows(check_array(T_caption, dtype=[np.float64, np.float32]), "T_caption")
    if A.shape != B.shape:
        raise ValueError(f"T_true has shape {A.shape} but T_caption {B.shape}.")
    return float(np.mean(np.einsum("ij,ij->i", A, B)))


class _CaptionScorer:
    def __init__(self, metric):
        self.metric = metric

    def __call__(self, estimator, X, y):
        return text_overlap_scores(y, estimator.predict(X), metrics=(self.metric,))[self.metric]

    def __repr__(self):
        return f"make_captioning_scorer({self.metric!r})"


def make_captioning_scorer(metric="bleu4"):
    """A scorer ``scorer(estimator, X, texts)`` for GridSearchCV over a captioner.

    The estimator (a :class:`RetrievalCaptioner` or a pipeline ending in
    one) predicts a caption per held-out row and the scorer compares them
    with the held-out texts -- the ``y`` that GridSearchCV splits with the
    rows.

    Parameters
    ----------
    metric : str, default='bleu4'
        One of :data:`TEXT_METRICS` (higher is better for all).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, texts) -> float``.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import Pipeline
    >>> from skgap import ModalityGapShifter, RetrievalCaptioner
    >>> from skgap.evaluate import make_captioning_scorer
    >>> from skgap.datasets import make_paired_embeddings
    >>> X, y, texts = make_paired_embeddings(120, 16, return_texts=True, random_state=0)
    >>> search = GridSearchCV(
    ...     Pipeline([("gap", ModalityGapShifter()), ("cap", RetrievalCaptioner())]),
    ...     {"gap__lam": [0.0, 1.0]}, scoring=make_captioning_scorer("rouge1"), cv=3)
    >>> search.fit(X, texts).best_params_["gap__lam"] in (0.0, 1.0)
    True
    """
    if metric not in TEXT_METRICS:
        raise ValueError(f"metric must be one of {TEXT_METRICS}, got {metric!r}.")
    return _CaptionScorer(metric)


# ------------------------------------------------------------------ the sweep's task


def captioning_metrics(Z_bank, Z_query, texts_bank, texts_query, T_bank, T_query, *,
                       dims, labels_bank=None, labels_query=None, seed_rows=(0,), seed=0):
    """Captioning scores of one split, with its floors and ceilings.

    ``Z_*`` are the transformed paired rows (the bank: the training rows),
    ``T_*`` the untransformed text blocks from the file (for
    ``text_cosine`` and the oracle). Four ways to pick a bank text for each
    query are scored with the same metrics:

    - ``<metric>``: the retrieval captioner on the transformed rows;
    - ``<metric>_random``: a bank text drawn uniformly (seeded by ``seed``
      and ``seed_rows``, so the same at every value of the path);
    - ``<metric>_frequent``: the most frequent bank text for every query
      (among equally frequent texts, the one whose embedding has the largest
      mean cosine with the bank's, then the smaller index);
    - ``<metric>_oracle``: the bank text whose embedding is nearest the
      query's own text embedding -- the best text-to-text match, which
      maximises ``text_cosine``.

    Besides the scores, ``distinct_captions`` is the share of distinct texts
    among the queries' captions: a diagnostic of hubness (a few generic bank
    texts answering many images), not a quality score.

    Returns
    -------
    list of (metric, score)
    """
    cap = RetrievalCaptioner(modality_dims=dims).fit(Z_bank, texts_bank, labels=labels_bank)
    picks = {"": cap.retrieve(Z_query)[0][:, 0]}
    n_bank, n_query = Z_bank.shape[0], Z_query.shape[0]
    rng = np.random.default_rng([int(seed)] + [int(r) for r in seed_rows])
    picks["_random"] = rng.integers(n_bank, size=n_query)
    Ub = normalize_rows(np.asarray(T_bank, dtype=cap.bank_embeddings_.dtype),
                        "the text block of the bank")
    Uq = normalize_rows(np.asarray(T_query, dtype=Ub.dtype), "the text block of the queries")
    picks["_frequent"] = np.full(n_query, _most_frequent(texts_bank, Ub))
    picks["_oracle"] = nearest_rows(Uq, Ub, 1)[0][:, 0]
    rows = []
    for suffix, pick in picks.items():
        found = {}
        if labels_bank is not None:
            found.update(label_agreement(labels_query, np.asarray(labels_bank)[pick]))
        found.update(text_overlap_scores(texts_query, texts_bank[pick]))
        found["text_cosine"] = float(np.mean(np.einsum("ij,ij->i", Uq, Ub[pick])))
        # Hubness: a map that sends every image to a few generic texts scores well on
        # text_cosine and poorly here.
        found["distinct_captions"] = np.unique(texts_bank[pick].astype(str)).size / n_query
        rows += [(metric + suffix, score) for metric, score in found.items()]
    return rows


def require_caption_extra(what):
    """Import the text-metric libraries up front, naming the extra when one is missing."""
    for module in ("sacrebleu", "rouge_score.rouge_scorer", "pycocoevalcap.cider.cider"):
        _require(module, what)


def split_captioning(X, y, train, test, fitted, Z_test, *, texts, dims, labelled, seed):
    """The ``'captioning'`` rows of one split of :func:`~skgap.evaluate.gap_sweep`.

    The bank is the training rows through the fitted map (``transform``),
    the queries the test rows ``Z_test``; ``text_cosine`` and the oracle
    read the untransformed text block of ``X``. The query's own text is
    never in the bank: the splits are disjoint (checked here) and the
    captioner refuses a query row equal to a bank row.
    """
    overlap = np.intersect1d(train, test)
    if overlap.size:
        raise RuntimeError(
            f"{overlap.size} row(s) are both in the bank (training rows) and among the queries "
            f"(first: row {overlap[0]}); a query's own text must never be in the bank."
        )
    txt = block_slices(dims)[1]
    Z_bank = np.asarray(fitted.transform(X[train]))
    return captioning_metrics(
        Z_bank, Z_test, texts[train], texts[test], X[train][:, txt], X[test][:, txt],
        dims=dims, labels_bank=y[train] if labelled else None,
        labels_query=y[test] if labelled else None, seed_rows=test, seed=seed,
    )


def _most_frequent(texts, U):
    _, first, inverse, counts = np.unique(texts.astype(str), return_index=True,
                                          return_inverse=True, return_counts=True)
    top = np.flatnonzero(counts == counts.max())
    cands = first[top]
    if cands.size == 1:
        return int(cands[0])
    centre = U.mean(axis=0)
    score = U[cands] @ centre
    best = cands[score == score.max()]
    return int(best.min())


# --------------------------------------------------------------- language model


#: skgap's wording of eCLIP's two-shot prompt: two worked examples (retrieved
#: reports, then the report written from them), then the query's retrieved
#: reports. ``{shots}`` and ``{context}`` are filled by :class:`LocalLMGenerator`.
ECLIP_TEMPLATE = (
    "Write the report of an image from the reports of the most similar images.\n\n"
    "{shots}"
    "Similar reports:\n{context}\nReport:"
)
_SHOT = "Similar reports:\n{context}\nReport: {report}\n\n"


class LocalLMGenerator:
    """A local Hugging Face causal language model that writes a report from retrieved texts.

    The prompt follows eCLIP's two-shot recipe: two worked examples (the
    retrieved texts of an image and the report written from them), then the
    query's retrieved texts; greedy decoding writes the report. The model
    is read from a local folder only (``local_files_only=True``), never
    downloaded. Needs ``skgap[transformers]``.

    Parameters
    ----------
    path : path-like
        Folder holding the model and its tokenizer (``save_pretrained``).
    shots : sequence of (sequence of str, str)
        The worked examples: ``(retrieved texts, report)`` pairs; two for
        eCLIP's two-shot prompt.
    template : str, default=ECLIP_TEMPLATE
        Prompt with the fields ``{shots}`` and ``{context}``. The default is
        skgap's wording of eCLIP's structure, not the paper's exact text:
        pass theirs to reproduce it.
    max_new_tokens : int, default=64
    batch_size : int, default=8
        Prompts per ``generate`` call (left-padded).
    device : str, default='cpu'

    Notes
    -----
    The generated texts have no labels: score them with text overlap (or
    run a labeler on them), not :meth:`RetrievalCaptioner.predict_labels`.
    """

    def __init__(self, path, shots, *, template=ECLIP_TEMPLATE, max_new_tokens=64,
                 batch_size=8, device="cpu"):
        self.path = path
        self.shots = shots
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.device = device
        self._loaded = None

    def _check(self):
        folder = Path(self.path).expanduser()
        if not folder.is_dir():
            raise ValueError(
                f"path={str(self.path)!r} is not a local folder; LocalLMGenerator reads a model "
                "saved with save_pretrained and never downloads one."
            )
        for name, value in (("max_new_tokens", self.max_new_tokens),
                            ("batch_size", self.batch_size)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self._check_prompt()
        return folder

    def _check_prompt(self):
        if not isinstance(self.template, str):
            raise TypeError(f"template must be a str, got {type(self.template).__name__}.")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None}
        except ValueError as exc:  # an unmatched brace
            raise ValueError(f"template is not a format string ({exc}).") from None
        if fields != {"shots", "context"}:
            raise ValueError(
                "template must hold the fields {shots} and {context} and no other (write a "
                f"literal brace as {{{{ or }}}}); it holds {sorted(fields)}."
            )
        if isinstance(self.shots, (str, bytes)) or not hasattr(self.shots, "__iter__"):
            raise TypeError(
                "shots must be a sequence of (retrieved texts, report) pairs, got "
                f"{type(self.shots).__name__}."
            )
        for i, shot in enumerate(self.shots):
            if (not isinstance(shot, (tuple, list)) or len(shot) != 2
                    or not isinstance(shot[1], str)):
                raise ValueError(f"shots[{i}] must be a pair (retrieved texts, report).")
            check_texts(shot[0], name=f"shots[{i}][0]")
            check_texts([shot[1]], name=f"shots[{i}][1]")

    @staticmethod
    def _context(texts):
        return "\n".join(f"- {t}" for t in texts)

    def build_prompt(self, texts):
        """The prompt for one image's retrieved texts.

        Parameters
        ----------
        texts : sequence of str
            The image's retrieved texts, most similar first.

        Returns
        -------
        prompt : str
        """
        self._check_prompt()
        shots = "".join(_SHOT.format(context=self._context(c), report=r) for c, r in self.shots)
        return self.template.format(shots=shots, context=self._context(texts))

    def _load(self):
        if self._loaded is None:
            folder = self._check()
            tf = _require("transformers", "LocalLMGenerator", extra="transformers")
            tokenizer = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
            # Decoder-only batches pad on the left, so every prompt ends where generation starts.
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = tf.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
            model.to(self.device).eval()
            self._loaded = (tokenizer, model)
        return self._loaded

    def generate_batch(self, retrieved):
        """One report per image, from each image's list of retrieved texts.

        Parameters
        ----------
        retrieved : list of list of str
            The retrieved texts of each image.

        Returns
        -------
        reports : list of str
        """
        tokenizer, model = self._load()  # checks the parameters first
        import torch

        prompts = [self.build_prompt(texts) for texts in retrieved]
        out = []
        for start in range(0, len(prompts), self.batch_size):
            enc = tokenizer(prompts[start:start + self.batch_size], return_tensors="pt",
                            padding=True).to(self.device)
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            new = ids[:, enc["input_ids"].shape[1]:]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out

    def __call__(self, texts):
        return self.generate_batch([list(texts)])[0]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_loaded"] = None  # the model is read again from its folder
        return state
