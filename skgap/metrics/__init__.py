"""Pure functions that measure embeddings: cone effect, modality gap and more.

The estimators of :mod:`skgap` call these functions; use them directly on any
pair of blocks.
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
from ._retrieval import retrieval_recall_at_k

__all__ = [
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
