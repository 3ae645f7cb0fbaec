"""Evaluation: what closing the gap does to downstream tasks.

- probes: :func:`make_linear_probe` (early fusion, the paper's probe) and
  :class:`LateFusionClassifier`; AUC helpers for binary, multi-class and
  multi-label tasks;
- the paper's protocol, for every task family at once: :func:`gap_sweep`
  (probe AUC, zero-shot, retrieval, clustering and cross-modal transfer
  against the gap-shift :math:`\\lambda`, or any paired transformer's path
  parameter, over paired random splits) and :func:`summarize_sweep` (paired
  differences from :math:`\\lambda = 0`, t-intervals, verdicts and the
  one-standard-error selection); :class:`LabelLeakageWarning`;
  :class:`PaperProbe`, the probe as the cone-effect paper trains it;
- scorers for :class:`~sklearn.model_selection.GridSearchCV` beyond
  classification: :func:`make_retrieval_scorer`, :func:`make_clustering_scorer`
  and :func:`auc_scorer`;
- zero-shot (:func:`zero_shot_scores`) and group-wise
  (:func:`groupwise_scores`) evaluation.

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
from ._groupwise import groupwise_scores, knn_accuracy
from ._probes import LateFusionClassifier, make_linear_probe
from ._scorers import make_clustering_scorer, make_retrieval_scorer
from ._paper_probe import PaperProbe, ProbeTrainingWarning, make_paper_probe
from ._sweep import LabelLeakageWarning, gap_sweep, summarize_sweep
from ._tasks import TASK_FAMILIES
from ._zeroshot import zero_shot_scores

__all__ = [
    "LabelLeakageWarning",
    "LateFusionClassifier",
    "PaperProbe",
    "ProbeTrainingWarning",
    "TASK_FAMILIES",
    "auc_scorer",
    "binary_auc",
    "continuous_scores",
    "gap_sweep",
    "groupwise_scores",
    "infer_task",
    "knn_accuracy",
    "make_clustering_scorer",
    "make_linear_probe",
    "make_paper_probe",
    "make_retrieval_scorer",
    "multiclass_auc",
    "multilabel_auc",
    "probe_auc",
    "summarize_sweep",
    "zero_shot_scores",
]
