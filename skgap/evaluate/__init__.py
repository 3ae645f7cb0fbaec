"""Evaluation: what closing the gap does to downstream tasks.

- probes: :func:`make_linear_probe` (early fusion, the paper's probe) and
  :class:`LateFusionClassifier`; AUC helpers for binary, multi-class and
  multi-label tasks;
- the paper's protocol, for every task family at once: :func:`gap_sweep`
  (probe AUC, zero-shot, retrieval, clustering and cross-modal transfer
  against the gap-shift :math:`\\lambda`, or any paired transformer's path
  parameter, over paired random splits) and :func:`summarize_sweep` (paired
  differences from :math:`\\lambda = 0`, t-intervals, verdicts and the
  one-standard-error selection); :class:`LabelLeakageWarning`, :class:`DegenerateTaskWarning`;
  :class:`PaperProbe`, the probe as the cone-effect paper trains it;
- scorers for :class:`~sklearn.model_selection.GridSearchCV` beyond
  classification: :func:`make_retrieval_scorer`, :func:`make_clustering_scorer`
  and :func:`auc_scorer`;
- zero-shot (:func:`zero_shot_scores`) and group-wise
  (:func:`groupwise_scores`) evaluation;
- captioning and report generation by retrieval: :class:`RetrievalCaptioner`
  (eCLIP's recipe as an option, :class:`LocalLMGenerator` for a local
  language model), scored by :func:`label_agreement`,
  :func:`text_overlap_scores` and :func:`semantic_agreement`, and
  :func:`make_captioning_scorer` for GridSearchCV.

Retrieval recall@k itself is a metric: :func:`skgap.measure.retrieval_recall_at_k`.
"""

from ._auc import (
    auc_scorer,
    binary_auc,
    continuous_scores,
    infer_task,
    multiclass_auc,
    multilabel_auc,
    probe_auc,
)
from ._captioning import (
    LocalLMGenerator,
    RetrievalCaptioner,
    caption_metric_settings,
    label_agreement,
    make_captioning_scorer,
    semantic_agreement,
    text_overlap_scores,
)
from ._groupwise import groupwise_scores, knn_accuracy
from ._probes import LateFusionClassifier, make_linear_probe
from ._scorers import make_clustering_scorer, make_retrieval_scorer
from ._paper_probe import PaperProbe, ProbeTrainingWarning, make_paper_probe
from ._sweep import DegenerateTaskWarning, LabelLeakageWarning, gap_sweep, summarize_sweep
from ._tasks import TASK_FAMILIES
from ._zeroshot import zero_shot_scores

__all__ = [
    "DegenerateTaskWarning",
    "LabelLeakageWarning",
    "LateFusionClassifier",
    "LocalLMGenerator",
    "PaperProbe",
    "ProbeTrainingWarning",
    "RetrievalCaptioner",
    "TASK_FAMILIES",
    "auc_scorer",
    "binary_auc",
    "caption_metric_settings",
    "continuous_scores",
    "gap_sweep",
    "groupwise_scores",
    "infer_task",
    "knn_accuracy",
    "label_agreement",
    "make_captioning_scorer",
    "make_clustering_scorer",
    "make_linear_probe",
    "make_paper_probe",
    "make_retrieval_scorer",
    "multiclass_auc",
    "multilabel_auc",
    "probe_auc",
    "semantic_agreement",
    "summarize_sweep",
    "text_overlap_scores",
    "zero_shot_scores",
]
