"""Closing the gap by training: losses and light adapters on frozen embeddings.

Needs torch (``pip install skgap[torch]``); :mod:`skgap` itself never imports
this package eagerly.

- :mod:`skgap.train.losses`: CLIP, align-true-pairs (ATP),
  centroid-uniformity (CU), uniformity and alignment losses on unit rows;
- :class:`GapClosingAdapter`: per-modality heads trained with
  CLIP + ATP + CU (plus eCLIP mixup and expert curriculum);
- :class:`LearnedGapProbe`: a linear probe on gap-shifted, early-fused
  embeddings that learns the shift size :math:`\\lambda`;
- :func:`expert_probability`: the eCLIP curriculum schedule;
- :class:`ExpertCLIPTrainer`: fine-tunes an open_clip model with
  gaze-derived expert views (eCLIP), made by a :class:`HeatmapProcessor`.
"""

import sys

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "skgap.train needs torch; install it with `pip install skgap[torch]`.",
        name="torch",
    ) from exc

from ._adapter import GapClosingAdapter
from ._curriculum import expert_probability
from ._expert import ExpertCLIPTrainer
from ._heatmap_processor import HeatmapProcessor
from ._learned_probe import LearnedGapProbe
from .losses import (
    LearnableTemperature,
    align_true_pairs,
    alignment,
    centroid_uniformity,
    clip_loss,
    uniformity,
)

# Module paths of earlier releases stay importable.
sys.modules.setdefault(f"{__name__}.adapter", sys.modules[f"{__name__}._adapter"])
sys.modules.setdefault(f"{__name__}.learned_probe", sys.modules[f"{__name__}._learned_probe"])

__all__ = [
    "ExpertCLIPTrainer",
    "GapClosingAdapter",
    "HeatmapProcessor",
    "LearnableTemperature",
    "LearnedGapProbe",
    "align_true_pairs",
    "alignment",
    "centroid_uniformity",
    "clip_loss",
    "expert_probability",
    "uniformity",
]
