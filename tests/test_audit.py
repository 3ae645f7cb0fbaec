"""The bad-input audit, kept: every public callable against inputs it must refuse or get right.

Each row is ``(public name, case, call, outcome)``. The outcome is either a
*clear error* -- an exception of a given type whose message names the
parameter or the problem (a regular expression) -- or a *correct result*
equal to a reference computed another way (e.g. the same call at scale 1).
A silent wrong result or an unclear error (``IndexError``, "'<' not
supported", a broadcast error) fails its row.

:func:`test_every_public_callable_has_audit_rows` walks ``skgap.__all__`` and
the ``__all__`` of the public submodules, so a new public function or class
fails the suite until it gets its rows here.
"""

import importlib
import importlib.util
import math
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp

import skgap
from skgap.datasets import make_paired_embeddings

X, y = make_paired_embeddings(60, 8, random_state=0)
X64 = X.astype(np.float64)
V, T = X[:, :8], X[:, 8:]
Y3 = np.where(np.arange(60) % 3 == 0, 2, y)  # three classes
MIXED = np.array([1 if i % 2 else "a" for i in range(60)], dtype=object)


def _one_positive():
    labels = np.zeros(60, dtype=int)
    labels[3] = 1
    return labels


def error(exc, pattern):
    """A clear error: ``exc`` with a message matching ``pattern``."""
    return ("error", exc, pattern)


def equals(reference, **tol):
    """A correct result: equal to ``reference()`` (within ``tol`` for floats)."""
    return ("equal", reference, tol)


def _torch():
    return pytest.importorskip("torch")


def _unit_torch(n=6, d=4, seed=0):
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def _losses():
    _torch()
    from skgap.train import losses

    return losses


def _fit(estimator, *args):
    return estimator.fit(*args)


# Captioning: paired rows with a template text each, and a fitted captioner.
XC, _, TEXTS = make_paired_embeddings(60, 8, return_texts=True, random_state=0)
REFS = ["a cat sits on the mat", "a dog runs in the park", "two birds on a wire"]
CAPS = ["the cat sits on a mat", "a dog walks in a park", "a bird on the wire"]


def _captioner():
    return skgap.RetrievalCaptioner().fit(XC[:40], TEXTS[:40])


def _bleu_from_recorded_settings():
    """BLEU-2 recomputed by sacrebleu from what caption_metric_settings records."""
    sacrebleu = pytest.importorskip("sacrebleu")
    recorded = skgap.evaluate.caption_metric_settings()["bleu"]
    bleu = sacrebleu.BLEU(max_ngram_order=2, tokenize=recorded["tokenize"],
                          lowercase=recorded["lowercase"], smooth_method=recorded["smooth_method"])
    return bleu.corpus_score(CAPS, [REFS]).score / 100


def _f1_micro_by_hand(y_true, y_pred):
    tp = np.sum((y_true == 1) & (y_pred == 1))
    return 2 * tp / (np.sum(y_true) + np.sum(y_pred))


ML_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
ML_PRED = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]])


def _text_cosines_by_hand(A, B):
    from sklearn.metrics.pairwise import cosine_similarity

    return float(np.mean(np.diag(cosine_similarity(A, B))))


# Gaze: two fixations on a 4x5 image.
FIX = {"x": [1.0, 3.5], "y": [2.0, 0.5], "duration": [0.2, 0.6]}
FIX_TIMED = {"x": [1.0, 3.5], "y": [2.0, 0.5], "start": [0.0, 1.0], "end": [0.5, 1.5]}


def _gaze_by_hand(fix, shape, sigma):
    """The duration-weighted sum of Gaussians, pixel by pixel."""
    H, W = shape
    out = np.zeros(shape)
    for x, y_, d in zip(fix["x"], fix["y"], fix["duration"]):
        for r in range(H):
            for c in range(W):
                out[r, c] += d * math.exp(-((c + 0.5 - x) ** 2 + (r + 0.5 - y_) ** 2) / (2 * sigma**2))
    return out


# (public name, case, call, outcome). ``skgap.X`` names resolve like imports.
AUDIT = [
    # -- the paired layout -------------------------------------------------
    ("skgap.pair", "no block", lambda: skgap.pair(), error(ValueError, "at least one block")),
    ("skgap.pair", "sparse block", lambda: skgap.pair(sp.csr_matrix(V), T),
     error(TypeError, "sparse matrix.*toarray")),
    ("skgap.pair", "rows differ", lambda: skgap.pair(V, T[:5]), error(ValueError, "same number of rows")),
    ("skgap.unpair", "one-block width that does not add up", lambda: skgap.unpair(X, (5, 5)),
     error(ValueError, "sums to 10")),
    ("skgap.unpair", "True as a width", lambda: skgap.unpair(X, (True, 15)),
     error(ValueError, "modality_dims")),
    ("skgap.unpair", "True as n_modalities", lambda: skgap.unpair(X, n_modalities=True),
     error(ValueError, "n_modalities")),
    # -- measure --------------------------------------------------------------
    ("skgap.measure.alignment", "alpha=inf", lambda: skgap.measure.alignment(V, T, alpha=np.inf),
     error(ValueError, "'alpha' parameter")),
    ("skgap.measure.alignment", "alpha='2'", lambda: skgap.measure.alignment(V, T, alpha="2"),
     error(ValueError, "'alpha' parameter")),
    ("skgap.measure.alignment", "alpha=None", lambda: skgap.measure.alignment(V, T, alpha=None),
     error(ValueError, "'alpha' parameter")),
    ("skgap.measure.alignment", "alpha=True", lambda: skgap.measure.alignment(V, T, alpha=True),
     error(ValueError, "'alpha' parameter")),
    ("skgap.measure.alignment", "scale 1e30", lambda: skgap.measure.alignment(1e30 * X64[:, :8], T),
     equals(lambda: skgap.measure.alignment(X64[:, :8], T), rel=1e-6)),
    ("skgap.measure.uniformity", "t=inf", lambda: skgap.measure.uniformity(V, t=np.inf),
     error(ValueError, "'t' parameter")),
    ("skgap.measure.uniformity", "t='2'", lambda: skgap.measure.uniformity(V, t="2"),
     error(ValueError, "'t' parameter")),
    ("skgap.measure.uniformity", "t=None", lambda: skgap.measure.uniformity(V, t=None),
     error(ValueError, "'t' parameter")),
    ("skgap.measure.uniformity", "block_size=0", lambda: skgap.measure.uniformity(V, block_size=0),
     error(ValueError, "'block_size' parameter")),
    ("skgap.measure.uniformity", "max_samples=True", lambda: skgap.measure.uniformity(V, max_samples=True),
     error(ValueError, "'max_samples' parameter")),
    ("skgap.measure.cka", "rows differ", lambda: skgap.measure.cka(V, T[:5]), error(ValueError, "rows")),
    ("skgap.measure.cka", "a string", lambda: skgap.measure.cka("ab", T), error(ValueError, "'A' parameter")),
    ("skgap.measure.gap_principal_cosine", "widths differ",
     lambda: skgap.measure.gap_principal_cosine(V, T[:, :3]), error(ValueError, "shared space")),
    ("skgap.measure.mean_pair_cosine", "rows differ", lambda: skgap.measure.mean_pair_cosine(V, T[:5]),
     error(ValueError, "rows")),
    ("skgap.measure.mean_resultant_length", "1-D", lambda: skgap.measure.mean_resultant_length(np.ones(4)),
     error(ValueError, "2D array")),
    ("skgap.measure.mean_resultant_length", "scale 1e-200",
     lambda: skgap.measure.mean_resultant_length(1e-200 * X64[:, :8]),
     equals(lambda: skgap.measure.mean_resultant_length(X64[:, :8]), rel=1e-9)),
    ("skgap.measure.mean_within_cosine", "None", lambda: skgap.measure.mean_within_cosine(None),
     error(ValueError, "'E' parameter")),
    ("skgap.measure.modality_gap", "widths differ", lambda: skgap.measure.modality_gap(V, T[:, :3]),
     error(ValueError, "shared space")),
    ("skgap.measure.pairwise_gap", "rows differ", lambda: skgap.measure.pairwise_gap(V, T[:5]),
     error(ValueError, "rows")),
    ("skgap.measure.relative_modality_gap", "NaN row",
     lambda: skgap.measure.relative_modality_gap(np.where(np.arange(60)[:, None] == 2, np.nan, V), T),
     error(ValueError, "NaN")),
    ("skgap.measure.retrieval_recall_at_k", "k=True", lambda: skgap.measure.retrieval_recall_at_k(V, T, k=True),
     error(ValueError, "'k' parameter")),
    ("skgap.measure.retrieval_recall_at_k", "k=(1, 2.5)",
     lambda: skgap.measure.retrieval_recall_at_k(V, T, k=(1, 2.5)), error(ValueError, "positive integers")),
    ("skgap.measure.ConeStats", "True as a width", lambda: skgap.ConeStats(modality_dims=(True, 15)).fit(X),
     error(ValueError, "modality_dims")),
    ("skgap.measure.ConeStats", "uniformity_t=inf", lambda: skgap.ConeStats(uniformity_t=np.inf).fit(X),
     error(ValueError, "'uniformity_t' parameter")),
    # -- transform ------------------------------------------------------------
    ("skgap.ModalityGapShifter", "one block", lambda: skgap.ModalityGapShifter(modality_dims=(16,)).fit(X),
     error(ValueError, "1 modality block.*no gap")),
    ("skgap.ModalityGapShifter", "lam=True", lambda: skgap.ModalityGapShifter(lam=True).fit(X),
     error(ValueError, "'lam' parameter")),
    ("skgap.ModalityGapShifter", "True as a width",
     lambda: skgap.ModalityGapShifter(modality_dims=(True, 15)).fit(X), error(ValueError, "modality_dims")),
    ("skgap.ModalityGapShifterCV", "one block", lambda: skgap.ModalityGapShifterCV(modality_dims=(16,)).fit(X, y),
     error(ValueError, "1 modality block.*no gap")),
    ("skgap.ModalityGapShifterCV", "empty y", lambda: skgap.ModalityGapShifterCV().fit(X, y[:0]),
     error(ValueError, "inconsistent numbers of samples")),
    ("skgap.ModalityGapShifterCV", "lams=True", lambda: skgap.ModalityGapShifterCV(lams=True).fit(X, y),
     error(ValueError, "'lams' parameter")),
    ("skgap.ModalityCentering", "identical rows",
     lambda: skgap.ModalityCentering().fit_transform(np.tile(X[:1], (10, 1))),
     error(ValueError, "zero norm")),
    ("skgap.ModalityCentering", "identical rows, float64",
     lambda: skgap.ModalityCentering().fit_transform(np.tile(X64[:1], (10, 1))),
     error(ValueError, "zero norm")),
    ("skgap.ModalityCentering", "alpha=True", lambda: skgap.ModalityCentering(alpha=True).fit(X),
     error(ValueError, "'alpha' parameter")),
    ("skgap.CollapseCorrupt", "corrupt=True", lambda: skgap.CollapseCorrupt(corrupt=True).fit_transform(X),
     error(ValueError, "'corrupt' parameter")),
    ("skgap.CollapseCorrupt", "corrupt=5", lambda: skgap.CollapseCorrupt(corrupt=5).fit_transform(X),
     error(ValueError, "corrupt=5")),
    ("skgap.AnchorAffineAligner", "NaN anchors",
     lambda: skgap.AnchorAffineAligner().fit(np.where(np.arange(60)[:, None] == 0, np.nan, X)),
     error(ValueError, "NaN")),
    ("skgap.ZeroShotClassifier", "temperature=True",
     lambda: skgap.ZeroShotClassifier(np.eye(2, 8), temperature=True).fit(V),
     error(ValueError, "'temperature' parameter")),
    ("skgap.transform.pool_prompt_embeddings", "a string",
     lambda: skgap.transform.pool_prompt_embeddings("ab"), error(ValueError, "'embeddings' parameter")),
    # -- evaluate -------------------------------------------------------------
    ("skgap.gap_sweep", "one positive", lambda: skgap.gap_sweep(X, _one_positive(), lams=[0, 1], n_seeds=2),
     error(ValueError, "single row")),
    ("skgap.gap_sweep", "one block", lambda: skgap.gap_sweep(X, y, lams=[0, 1], n_seeds=2, modality_dims=(16,)),
     error(ValueError, "1 modality block.*no gap")),
    ("skgap.gap_sweep", "lams=[0, True]", lambda: skgap.gap_sweep(X, y, lams=[0.0, True], n_seeds=2),
     error(ValueError, "lams must hold numbers, not booleans")),
    ("skgap.gap_sweep", "n_seeds=True", lambda: skgap.gap_sweep(X, y, lams=[0, 1], n_seeds=True),
     error(ValueError, "'n_seeds' parameter")),
    ("skgap.gap_sweep", "y=None with a labelled task", lambda: skgap.gap_sweep(X, None, lams=[0, 1], n_seeds=2),
     error(ValueError, r"y is None, but task\(s\) \['fusion'\] need labels")),
    ("skgap.gap_sweep", "direction='sideways'", lambda: skgap.gap_sweep(X, y, direction="sideways"),
     error(ValueError, "'direction' parameter")),
    ("skgap.summarize_sweep", "not a sweep table", lambda: skgap.summarize_sweep({"score": [1.0]}),
     error(ValueError, "column")),
    ("skgap.evaluate.LateFusionClassifier", "weights of the wrong length",
     lambda: skgap.LateFusionClassifier(weights=[1.0]).fit(X, y), error(ValueError, "weights")),
    ("skgap.evaluate.PaperProbe", "learning_rate=True",
     lambda: skgap.evaluate.PaperProbe(learning_rate=True).fit(X, y), error(ValueError, "'learning_rate' parameter")),
    ("skgap.evaluate.binary_auc", "complex scores", lambda: skgap.evaluate.binary_auc(y, X[:, 0] + 1j),
     error(ValueError, "complex")),
    ("skgap.evaluate.binary_auc", "sparse scores", lambda: skgap.evaluate.binary_auc(y, sp.csr_matrix(X[:, :1])),
     error(TypeError, "sparse matrix.*toarray")),
    ("skgap.evaluate.probe_auc", "sparse scores", lambda: skgap.evaluate.probe_auc(y, sp.csr_matrix(X[:, :2])),
     error(TypeError, "sparse matrix.*toarray")),
    ("skgap.evaluate.probe_auc", "task='ranking'", lambda: skgap.evaluate.probe_auc(y, X[:, 0], task="ranking"),
     error(ValueError, "'task' parameter")),
    ("skgap.evaluate.multiclass_auc", "class missing from labels",
     lambda: skgap.evaluate.multiclass_auc(Y3, np.full((60, 3), 1 / 3), labels=[0, 1, 5]),
     error(ValueError, r"class\(es\) \[2\].*labels")),
    ("skgap.evaluate.multiclass_auc", "complex scores",
     lambda: skgap.evaluate.multiclass_auc(Y3, np.ones((60, 3)) * 1j), error(ValueError, "complex")),
    ("skgap.evaluate.multilabel_auc", "empty", lambda: skgap.evaluate.multilabel_auc(np.zeros((0, 3)), np.zeros((0, 3))),
     error(ValueError, "at least one row")),
    ("skgap.evaluate.auc_scorer", "no scores",
     lambda: skgap.evaluate.auc_scorer(skgap.ModalityGapShifter().fit(X), X, y),
     error(TypeError, "neither predict_proba nor decision_function")),
    ("skgap.evaluate.continuous_scores", "no scores",
     lambda: skgap.evaluate.continuous_scores(skgap.ModalityGapShifter().fit(X), X),
     error(TypeError, "neither predict_proba nor decision_function")),
    ("skgap.evaluate.infer_task", "continuous labels", lambda: skgap.evaluate.infer_task(X[:, 0]),
     error(ValueError, "continuous|classes")),
    ("skgap.evaluate.knn_accuracy", "scale 1e200", lambda: skgap.evaluate.knn_accuracy(1e200 * X64, y),
     equals(lambda: skgap.evaluate.knn_accuracy(X64, y))),
    ("skgap.evaluate.knn_accuracy", "scale 1e-200", lambda: skgap.evaluate.knn_accuracy(1e-200 * X64, y),
     equals(lambda: skgap.evaluate.knn_accuracy(X64, y))),
    ("skgap.evaluate.knn_accuracy", "mixed str/int labels", lambda: skgap.evaluate.knn_accuracy(X, MIXED),
     error(ValueError, "mixes labels of different types")),
    ("skgap.evaluate.knn_accuracy", "n_neighbors=True", lambda: skgap.evaluate.knn_accuracy(X, y, n_neighbors=True),
     error(ValueError, "'n_neighbors' parameter")),
    ("skgap.evaluate.groupwise_scores", "mixed str/int labels", lambda: skgap.evaluate.groupwise_scores(X, MIXED),
     error(ValueError, "mixes labels of different types")),
    ("skgap.evaluate.groupwise_scores", "n_init='many'", lambda: skgap.evaluate.groupwise_scores(X, y, n_init="many"),
     error(ValueError, "'n_init' parameter")),
    ("skgap.evaluate.make_clustering_scorer", "mixed str/int labels",
     lambda: skgap.evaluate.make_clustering_scorer()(skgap.ModalityGapShifter().fit(X), X, MIXED),
     error(ValueError, "mixes labels of different types")),
    ("skgap.evaluate.make_clustering_scorer", "metric='silhouette'",
     lambda: skgap.evaluate.make_clustering_scorer("silhouette"), error(ValueError, "'metric' parameter")),
    ("skgap.evaluate.make_retrieval_scorer", "k=True", lambda: skgap.evaluate.make_retrieval_scorer(k=True),
     error(ValueError, "'k' parameter")),
    ("skgap.evaluate.make_linear_probe", "C=inf", lambda: skgap.evaluate.make_linear_probe(C=np.inf),
     error(ValueError, "'C' parameter")),
    ("skgap.evaluate.make_paper_probe", "task='ordinal'", lambda: skgap.evaluate.make_paper_probe("ordinal"),
     error(ValueError, "task")),
    ("skgap.evaluate.zero_shot_scores", "temperature=-1",
     lambda: skgap.evaluate.zero_shot_scores(V, y, np.eye(2, 8), temperature=-1.0),
     error(ValueError, "'temperature' parameter")),
    ("skgap.RetrievalCaptioner", "n_candidates=True",
     lambda: skgap.RetrievalCaptioner(n_candidates=True).fit(XC[:40], TEXTS[:40]),
     error(ValueError, "'n_candidates' parameter")),
    ("skgap.RetrievalCaptioner", "texts of the wrong length",
     lambda: skgap.RetrievalCaptioner().fit(XC[:40], TEXTS[:20]), error(ValueError, "20 texts for 40 rows")),
    ("skgap.RetrievalCaptioner", "queries that are bank pairs", lambda: _captioner().predict(XC[:3]),
     error(ValueError, "pairs of the bank")),
    ("skgap.RetrievalCaptioner", "scale 1e30",
     lambda: skgap.RetrievalCaptioner(n_candidates=3).fit(1e30 * XC[:40].astype(np.float64), TEXTS[:40])
     .retrieve(1e30 * XC[40:].astype(np.float64))[0],
     equals(lambda: skgap.RetrievalCaptioner(n_candidates=3).fit(XC[:40], TEXTS[:40]).retrieve(XC[40:])[0])),
    ("skgap.evaluate.LocalLMGenerator", "not a folder",
     lambda: skgap.evaluate.LocalLMGenerator("/nonexistent/lm", [(["a"], "b")])(["a"]),
     error(ValueError, "not a local folder")),
    ("skgap.evaluate.LocalLMGenerator", "max_new_tokens=0",
     lambda: skgap.evaluate.LocalLMGenerator(tempfile.mkdtemp(), [(["a"], "b")], max_new_tokens=0)(["a"]),
     error(ValueError, "max_new_tokens must be a positive integer")),
    ("skgap.evaluate.LocalLMGenerator", "shots=None",
     lambda: skgap.evaluate.LocalLMGenerator(tempfile.mkdtemp(), None).build_prompt(["a"]),
     error(TypeError, "shots must be a sequence")),
    ("skgap.evaluate.LocalLMGenerator", "a template field other than shots and context",
     lambda: skgap.evaluate.LocalLMGenerator(tempfile.mkdtemp(), [(["a"], "b")],
                                             template="{shots}{context}{date}").build_prompt(["a"]),
     error(ValueError, r"no other.*\['context', 'date', 'shots'\]")),
    ("skgap.evaluate.caption_metric_settings", "an argument",
     lambda: skgap.evaluate.caption_metric_settings("bleu"), error(TypeError, "positional argument")),
    ("skgap.evaluate.caption_metric_settings", "BLEU from the recorded settings", _bleu_from_recorded_settings,
     equals(lambda: skgap.evaluate.text_overlap_scores(REFS, CAPS, metrics=("bleu2",))["bleu2"], rel=1e-12)),
    ("skgap.evaluate.label_agreement", "2-D labels that are not 0/1",
     lambda: skgap.evaluate.label_agreement(np.full((4, 2), 2), np.full((4, 2), 2)),
     error(ValueError, "0/1 indicators")),
    ("skgap.evaluate.label_agreement", "mixed str/int labels", lambda: skgap.evaluate.label_agreement(MIXED, MIXED),
     error(ValueError, "mixes labels of different types")),
    ("skgap.evaluate.label_agreement", "per_label='no'",
     lambda: skgap.evaluate.label_agreement(ML_TRUE, ML_PRED, per_label="no"),
     error(ValueError, "per_label must be True or False")),
    ("skgap.evaluate.label_agreement", "micro F1 by hand",
     lambda: skgap.evaluate.label_agreement(ML_TRUE, ML_PRED)["label_f1_micro"],
     equals(lambda: _f1_micro_by_hand(ML_TRUE, ML_PRED), rel=1e-12)),
    ("skgap.evaluate.make_captioning_scorer", "metric='label_accuracy'",
     lambda: skgap.evaluate.make_captioning_scorer("label_accuracy"), error(ValueError, "metric must be one of")),
    ("skgap.evaluate.make_captioning_scorer", "texts of the wrong length",
     lambda: skgap.evaluate.make_captioning_scorer("rouge1")(_captioner(), XC[40:], TEXTS[40:45]),
     error(ValueError, "20 texts for 5 rows")),
    ("skgap.evaluate.make_captioning_scorer", "the score of its metric",
     lambda: skgap.evaluate.make_captioning_scorer("rouge1")(_captioner(), XC[40:], TEXTS[40:]),
     equals(lambda: skgap.evaluate.text_overlap_scores(TEXTS[40:], _captioner().predict(XC[40:]),
                                                       metrics=("rouge1",))["rouge1"])),
    ("skgap.evaluate.semantic_agreement", "shapes differ", lambda: skgap.evaluate.semantic_agreement(V, T[:5]),
     error(ValueError, "T_true has shape")),
    ("skgap.evaluate.semantic_agreement", "a zero row", lambda: skgap.evaluate.semantic_agreement(0 * V, T),
     error(ValueError, "zero norm")),
    ("skgap.evaluate.semantic_agreement", "scale 1e300",
     lambda: skgap.evaluate.semantic_agreement(1e300 * X64[:, :8], X64[:, 8:]),
     equals(lambda: _text_cosines_by_hand(X64[:, :8], X64[:, 8:]), rel=1e-9)),
    ("skgap.evaluate.text_overlap_scores", "metrics='bleu4'",
     lambda: skgap.evaluate.text_overlap_scores(REFS, CAPS, metrics="bleu4"), error(ValueError, "got the string 'bleu4'")),
    ("skgap.evaluate.text_overlap_scores", "no texts", lambda: skgap.evaluate.text_overlap_scores([], []),
     error(ValueError, "references is empty")),
    ("skgap.evaluate.text_overlap_scores", "lengths differ",
     lambda: skgap.evaluate.text_overlap_scores(REFS, CAPS[:1]), error(ValueError, "1 texts for 3 rows")),
    ("skgap.evaluate.text_overlap_scores", "metric='meteor'",
     lambda: skgap.evaluate.text_overlap_scores(REFS, CAPS, metrics=("meteor",)),
     error(ValueError, "unknown text metric")),
    # -- datasets ---------------------------------------------------------------
    ("skgap.datasets.make_paired_embeddings", "n_samples=True",
     lambda: make_paired_embeddings(True, 8), error(ValueError, "'n_samples' parameter")),
    ("skgap.datasets.make_paired_embeddings", "gap=inf", lambda: make_paired_embeddings(10, 8, gap=np.inf),
     error(ValueError, "'gap' parameter")),
    ("skgap.datasets.make_paired_embeddings", "preset='nope'", lambda: make_paired_embeddings(preset="nope"),
     error(ValueError, "'preset' parameter")),
    ("skgap.datasets.load_coco_clip", "a number as the path", lambda: skgap.datasets.load_coco_clip(123),
     error(ValueError, "'path' parameter")),
    ("skgap.datasets.make_lesion_task", "contrast='0.3'", lambda: _lesions(contrast="0.3"),
     error(ValueError, "contrast must be a number")),
    ("skgap.datasets.make_lesion_task", "n_classes=2.0", lambda: _lesions(n_classes=2.0),
     error(ValueError, "n_classes must be 2, 3 or 4")),
    ("skgap.datasets.make_lesion_task", "image_size=8", lambda: _lesions(image_size=8),
     error(ValueError, "image_size must be an integer >= 16")),
    ("skgap.datasets.make_lesion_task", "heatmaps='gaze'", lambda: _lesions(heatmaps="gaze"),
     error(ValueError, "heatmaps must be 'lesion' or 'random'")),
    # -- plotting -----------------------------------------------------------------
    ("skgap.plotting.plot_cones", "names='ab'", lambda: _plotting().plot_cones(X, names="ab"),
     error(ValueError, "'names' parameter")),
    ("skgap.plotting.plot_cones", "max_points=True", lambda: _plotting().plot_cones(X, max_points=True),
     error(ValueError, "'max_points' parameter")),
    ("skgap.plotting.metric_label", "metric=None", lambda: _plotting().metric_label("fusion", None),
     error(ValueError, "'metric' parameter")),
    ("skgap.plotting.metric_label", "task=1", lambda: _plotting().metric_label(1, "auc"),
     error(ValueError, "'task' parameter")),
    ("skgap.plotting.plot_gap_sweep", "confidence=1.5", lambda: _plotting().plot_gap_sweep({}, confidence=1.5),
     error(ValueError, "'confidence' parameter")),
    ("skgap.plotting.plot_sweep_summary", "a list, not a table",
     lambda: _plotting().plot_sweep_summary([1, 2]), error(TypeError, "expected a table")),
    ("skgap.plotting.plot_sweep_summary", "ncols=0",
     lambda: _plotting().plot_sweep_summary({}, ncols=0), error(ValueError, "ncols must be a positive")),
    ("skgap.plotting.plot_sweep_summary", "a table without the summary's columns",
     lambda: _plotting().plot_sweep_summary({"lam": [0.0]}), error(ValueError, "summary has no column")),
    ("skgap.plotting.plot_lambda_curves", "curves as a list",
     lambda: _plotting().plot_lambda_curves([0, 1], [[0.5, 0.6]]), error(ValueError, "'curves' parameter")),
    # -- io -----------------------------------------------------------------------
    ("skgap.io.load_embeddings", "missing file", lambda: skgap.io.load_embeddings("/nonexistent/x.npz"),
     error(skgap.io.DataFileError, "no such file")),
    ("skgap.io.iter_embeddings", "missing file", lambda: next(iter(skgap.io.iter_embeddings("/nonexistent/x.npz"))),
     error(skgap.io.DataFileError, "no such file")),
    ("skgap.io.load_labels", "missing file", lambda: skgap.io.load_labels("/nonexistent/x.csv"),
     error(skgap.io.DataFileError, "no such file")),
    ("skgap.io.ClipRetrievalArchive", "not an archive", lambda: skgap.io.ClipRetrievalArchive("/nonexistent/dir"),
     error(skgap.io.DataFileError, "not a clip-retrieval folder")),
    # -- encode -------------------------------------------------------------------
    ("skgap.encode.load_image", "output='foo'", lambda: _encode().load_image(np.zeros((4, 4), np.uint8), output="foo"),
     error(ValueError, "'output' parameter")),
    ("skgap.encode.load_image", "frame=True", lambda: _encode().load_image(np.zeros((4, 4), np.uint8), frame=True),
     error(ValueError, "'frame' parameter")),
    ("skgap.encode.pool_by_group", "complex rows", lambda: _encode().pool_by_group(np.ones((3, 2)) + 1j, [0, 0, 1]),
     error(ValueError, "complex")),
    ("skgap.encode.OpenCLIPEncoder", "batch_size=0", lambda: _encode().OpenCLIPEncoder(batch_size=0).fit(None),
     error(ValueError, "'batch_size' parameter")),
    ("skgap.encode.TransformersEncoder", "batch_size=0",
     lambda: _encode().TransformersEncoder("m", batch_size=0).fit(None), error(ValueError, "'batch_size' parameter")),
    ("skgap.encode.save_random_model", "kind='nope'", lambda: _encode().save_random_model(tempfile.mkdtemp(), kind="nope"),
     error(ValueError, "'kind' parameter")),
    ("skgap.encode.save_word_tokenizer", "max_length=0",
     lambda: _encode().save_word_tokenizer(tempfile.mkdtemp(), ["a"], max_length=0), error(ValueError, "'max_length' parameter")),
    ("skgap.encode.read_fixations", "time_scale=inf",
     lambda: _encode().read_fixations(FIX, x="x", y="y", duration="duration", time_scale=np.inf),
     error(ValueError, "time_scale must be a finite positive")),
    ("skgap.encode.read_fixations", "layout as a list", lambda: _encode().read_fixations(FIX, layout=["egd"]),
     error(ValueError, r"layout=\['egd'\] is not one of")),
    ("skgap.encode.read_fixations", "a named column missing",
     lambda: _encode().read_fixations(FIX, x="x", y="y", duration="d"), error(ValueError, r"no column\(s\) duration='d'")),
    ("skgap.encode.read_fixations", "non-numeric positions",
     lambda: _encode().read_fixations({**FIX, "x": ["a", "b"]}, x="x", y="y", duration="duration"),
     error(ValueError, "non-numeric values")),
    ("skgap.encode.gaze_heatmap", "sigma=inf", lambda: _encode().gaze_heatmap(FIX, (4, 5), sigma=np.inf, unit="pixels"),
     error(ValueError, "sigma must be a finite positive")),
    ("skgap.encode.gaze_heatmap", "three pixels_per_degree",
     lambda: _encode().gaze_heatmap(FIX, (4, 5), pixels_per_degree=(1, 2, 3)),
     error(ValueError, r"pixels_per_degree must be one number or an \(x, y\) pair")),
    ("skgap.encode.gaze_heatmap", "a fixation outside the image",
     lambda: _encode().gaze_heatmap({"x": [9.0], "y": [1.0]}, (4, 5), unit="pixels"),
     error(ValueError, "outside the 4x5 image")),
    ("skgap.encode.gaze_heatmap", "Gaussians summed by hand",
     lambda: _encode().gaze_heatmap(FIX, (4, 5), sigma=1.5, unit="pixels", normalize=None),
     equals(lambda: _gaze_by_hand(FIX, (4, 5), 1.5), rel=1e-6)),
    ("skgap.encode.sentence_heatmaps", "a NaN sentence time",
     lambda: _encode().sentence_heatmaps(FIX_TIMED, [(np.nan, 1.0)], (4, 5), unit="pixels"),
     error(ValueError, r"finite \(start, end\) times")),
    ("skgap.encode.sentence_heatmaps", "lookback=nan",
     lambda: _encode().sentence_heatmaps(FIX_TIMED, [(0.0, 1.0)], (4, 5), lookback=np.nan, unit="pixels"),
     error(ValueError, "lookback must be a number >= 0")),
    ("skgap.encode.sentence_heatmaps", "a start column of another length",
     lambda: _encode().sentence_heatmaps({**FIX_TIMED, "start": [0.0]}, [(0.0, 1.0)], (4, 5), unit="pixels"),
     error(ValueError, "different lengths")),
    ("skgap.encode.check_heatmap", "image_shape=(4,)", lambda: _encode().check_heatmap(np.ones((4, 4)), (4,)),
     error(ValueError, "image_shape must be the image's")),
    ("skgap.encode.check_heatmap", "negative", lambda: _encode().check_heatmap(-np.ones((4, 4))),
     error(ValueError, "negative values")),
    ("skgap.encode.check_heatmap", "all zero", lambda: _encode().check_heatmap(np.zeros((4, 4))),
     error(ValueError, "all zero")),
    ("skgap.encode.check_heatmap", "booleans", lambda: _encode().check_heatmap(np.ones((4, 4), dtype=bool)),
     error(TypeError, "real numbers")),
    ("skgap.encode.SynchronizedTransform", "not callable",
     lambda: _encode().SynchronizedTransform(5)(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8))),
     error(TypeError, "transform must be a callable")),
    ("skgap.encode.SynchronizedTransform", "heatmap of another size",
     lambda: _encode().SynchronizedTransform(lambda t: t)(np.zeros((8, 8, 3), np.uint8), np.ones((4, 4))),
     error(ValueError, "size 4x4 but its image is 8x8")),
    ("skgap.encode.SynchronizedTransform", "a transform returning a tuple",
     lambda: _encode().SynchronizedTransform(lambda t: (t, t))(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8))),
     error(TypeError, "must return one")),
    ("skgap.encode.SynchronizedTransform", "a transform dropping a channel",
     lambda: _encode().SynchronizedTransform(lambda t: t[:3])(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8))),
     error(ValueError, "changed the number of channels")),
    ("skgap.encode.ArchiveSummary", "no fields", lambda: _encode().ArchiveSummary(),
     error(TypeError, "missing 11 required positional arguments: 'out_dir'")),
    ("skgap.encode.encode_archive", "a list as the table", lambda: _archive([("a.png", "a")]),
     error(TypeError, "pandas DataFrame, a pyarrow Table")),
    ("skgap.encode.encode_archive", "no text column", lambda: _archive({"image": ["a.png"], "caption": ["a"]}),
     error(ValueError, "text_column='text' is not a column")),
    ("skgap.encode.encode_archive", "shard_size=0", lambda: _archive({"image": ["a.png"], "text": ["a"]}, shard_size=0),
     error(ValueError, "'shard_size' parameter")),
    ("skgap.encode.encode_archive", "shard_size=True",
     lambda: _archive({"image": ["a.png"], "text": ["a"]}, shard_size=True), error(ValueError, "'shard_size' parameter")),
    ("skgap.encode.encode_archive", "client=5", lambda: _archive({"image": ["a.png"], "text": ["a"]}, client=5),
     error(TypeError, "client must be a distributed.Client")),
    # -- train (torch) ------------------------------------------------------------
    ("skgap.train.clip_loss", "negative tensor temperature",
     lambda: _losses().clip_loss(_unit_torch(), _unit_torch(seed=1), _torch().tensor(-0.1)),
     error(ValueError, "temperature must be a finite positive")),
    ("skgap.train.clip_loss", "NaN tensor temperature",
     lambda: _losses().clip_loss(_unit_torch(), _unit_torch(seed=1), _torch().tensor(math.nan)),
     error(ValueError, "temperature must be a finite positive")),
    ("skgap.train.clip_loss", "inf tensor temperature",
     lambda: _losses().clip_loss(_unit_torch(), _unit_torch(seed=1), _torch().tensor(math.inf)),
     error(ValueError, "temperature must be a finite positive")),
    ("skgap.train.clip_loss", "temperature=inf",
     lambda: _losses().clip_loss(_unit_torch(), _unit_torch(seed=1), math.inf),
     error(ValueError, "'temperature' parameter")),
    ("skgap.train.clip_loss", "rows of 1e30", lambda: _losses().clip_loss(1e30 * _unit_torch(), _unit_torch(seed=1)),
     error(ValueError, "not unit vectors")),
    ("skgap.train.uniformity", "t=inf", lambda: _losses().uniformity(_unit_torch(), t=math.inf),
     error(ValueError, "'t' parameter")),
    ("skgap.train.alignment", "alpha=inf", lambda: _losses().alignment(_unit_torch(), _unit_torch(seed=1), alpha=math.inf),
     error(ValueError, "'alpha' parameter")),
    ("skgap.train.alignment", "rows of 1e30", lambda: _losses().alignment(1e30 * _unit_torch(), _unit_torch(seed=1)),
     error(ValueError, "not unit vectors")),
    ("skgap.train.centroid_uniformity", "V and -V", lambda: _losses().centroid_uniformity(_unit_torch(), -_unit_torch()),
     error(ValueError, "cancel.*no direction")),
    ("skgap.train.centroid_uniformity", "t=True", lambda: _losses().centroid_uniformity(_unit_torch(), t=True),
     error(ValueError, "'t' parameter")),
    ("skgap.train.align_true_pairs", "anchor=True", lambda: _losses().align_true_pairs(_unit_torch(), _unit_torch(), anchor=True),
     error(ValueError, "'anchor' parameter")),
    ("skgap.train.LearnableTemperature", "init=inf", lambda: _losses().LearnableTemperature(init=math.inf),
     error(ValueError, "init must be a finite positive")),
    ("skgap.train.expert_probability", "step beyond n_steps", lambda: _train().expert_probability(-1, 10),
     error(ValueError, "step")),
    ("skgap.train.GapClosingAdapter", "lr=-1", lambda: _train().GapClosingAdapter(lr=-1).fit(X),
     error(ValueError, "'lr' parameter")),
    ("skgap.train.LearnedGapProbe", "one block", lambda: _train().LearnedGapProbe(modality_dims=(16,)).fit(X, y),
     error(ValueError, "1 modality block.*no gap")),
    ("skgap.train.ExpertCLIPTrainer", "max_steps=True", lambda: _expert_fit(max_steps=True),
     error(ValueError, "'max_steps' parameter")),
    ("skgap.train.ExpertCLIPTrainer", "processor_patch_size=True", lambda: _expert_fit(processor_patch_size=True),
     error(ValueError, "'processor_patch_size' parameter")),
    ("skgap.train.ExpertCLIPTrainer", "min_prob above max_prob", lambda: _expert_fit(min_prob=0.6, max_prob=0.5),
     error(ValueError, "min_prob=0.6 exceeds max_prob=0.5")),
    ("skgap.train.ExpertCLIPTrainer", "phases longer than the run", lambda: _expert_fit(max_steps=10),
     error(ValueError, "phases exceed the run")),
    ("skgap.train.HeatmapProcessor", "width not a multiple of heads",
     lambda: _train().HeatmapProcessor(width=10, heads=3), error(ValueError, "multiple of heads")),
    ("skgap.train.HeatmapProcessor", "NaN heatmap",
     lambda: _processor()(_torch().zeros(1, 3, 8, 8), _torch().full((1, 8, 8), math.nan)),
     error(ValueError, "finite, non-negative")),
    ("skgap.train.HeatmapProcessor", "heatmap of another size",
     lambda: _processor()(_torch().zeros(1, 3, 8, 8), _torch().ones(1, 4, 8)),
     error(ValueError, "heatmap must have shape")),
    ("skgap.train.HeatmapProcessor", "image not a multiple of patch_size",
     lambda: _processor()(_torch().zeros(1, 3, 6, 6), _torch().ones(1, 6, 6)),
     error(ValueError, "not a multiple of patch_size=4")),
]


def _plotting():
    pytest.importorskip("matplotlib")
    from skgap import plotting

    return plotting


def _encode():
    _torch()
    pytest.importorskip("open_clip")
    from skgap import encode

    return encode


def _lesions(**params):
    _encode()  # the heatmaps are drawn by skgap.encode.gaze_heatmap
    return skgap.datasets.make_lesion_task(4, image_size=params.pop("image_size", 16), **params)


def _archive(table, **params):
    """encode_archive on a tiny table: every row here fails before any cluster starts."""
    encode = _encode()
    pytest.importorskip("distributed")
    pytest.importorskip("pyarrow")
    return encode.encode_archive(table, encode.TransformersEncoder("m"), tempfile.mkdtemp(),
                                 progress=False, verbose=False, **params)


def _expert_fit(**params):
    """ExpertCLIPTrainer.fit on four blank images: every row here fails before a model loads."""
    _encode()
    images = [np.zeros((8, 8, 3), np.uint8)] * 4
    return _train().ExpertCLIPTrainer(**params).fit(images, ["a b"] * 4)


def _processor():
    return _train().HeatmapProcessor(patch_size=4, width=8, heads=2)


def _train():
    _torch()
    from skgap import train

    return train


@pytest.mark.parametrize(
    "name, case, call, outcome", AUDIT, ids=[f"{row[0]}: {row[1]}" for row in AUDIT]
)
def test_audit(name, case, call, outcome):
    if outcome[0] == "error":
        _, exc, pattern = outcome
        with pytest.raises(exc, match=pattern):
            call()
    else:
        _, reference, tol = outcome
        assert call() == pytest.approx(reference(), **tol)


# Public names that are not callables taking inputs: exceptions and warnings are raised,
# not called with user data.
_NOT_AUDITED = (BaseException,)


def _resolve(dotted):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _public_callables():
    modules = ["skgap", "skgap.measure", "skgap.evaluate", "skgap.transform", "skgap.datasets",
               "skgap.io"]
    if all(importlib.util.find_spec(m) is not None for m in ("torch", "open_clip")):
        modules.append("skgap.encode")
    if importlib.util.find_spec("matplotlib") is not None:
        modules.append("skgap.plotting")
    if importlib.util.find_spec("torch") is not None:
        modules += ["skgap.train", "skgap.train.losses"]
    found = {}
    for module in modules:
        mod = importlib.import_module(module)
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            if not callable(obj) or (isinstance(obj, type) and issubclass(obj, _NOT_AUDITED)):
                continue
            found.setdefault(id(obj), f"{module}.{attr}")
    return found


def test_every_public_callable_has_audit_rows():
    audited = set()
    for name, *_ in AUDIT:
        try:
            audited.add(id(_resolve(name)))
        except ImportError:  # an optional extra is missing: its names are not walked either
            continue
    missing = sorted(name for key, name in _public_callables().items() if key not in audited)
    assert not missing, f"public callables without bad-input rows in tests/test_audit.py: {missing}"


def test_audit_names_resolve():
    for name, *_ in AUDIT:
        try:
            obj = _resolve(name)
        except ImportError:
            continue
        assert callable(obj), name
