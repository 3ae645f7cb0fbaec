"""Measure: the cone effect, the modality gap and the statistics around them.

Pure functions on one or two blocks of embeddings (``modality_gap``,
``mean_resultant_length``, ``alignment``, ``uniformity``, ``cka``,
``retrieval_recall_at_k``, ...) and :class:`ConeStats`, the estimator that
computes them all on the paired layout (in one pass, streamed with
``partial_fit``). Every estimator of skgap calls these functions: each formula
has one home, here. ``skgap.metrics`` is the same module under the name of
earlier releases.
"""

from ._cka import cka
from ._cone import (
    alignment,
    gap_principal_cosine,
    mean_pair_cosine,
    mean_resultant_length,
    mean_within_cosine,
    modality_gap,
    pairwise_gap,
    relative_modality_gap,
    uniformity,
)
from ._cone_stats import ConeStats
from ._retrieval import retrieval_recall_at_k

__all__ = [
    "ConeStats",
    "alignment",
    "cka",
    "gap_principal_cosine",
    "mean_pair_cosine",
    "mean_resultant_length",
    "mean_within_cosine",
    "modality_gap",
    "pairwise_gap",
    "relative_modality_gap",
    "retrieval_recall_at_k",
    "uniformity",
]
