"""skgap: measure and control the modality gap of vision-language embeddings.

Paired embeddings travel as one array ``X = [V | T]`` (image block, text
block), so every estimator drops into scikit-learn pipelines and
cross-validation. The flow of the package:

- encode (optional, torch): :class:`OpenCLIPEncoder` turns images and texts
  into ``X``;
- read: :mod:`skgap.io` loads embedding files (npz, pt, HDF5, Parquet,
  clip-retrieval folders) into ``X``;
- measure: :mod:`skgap.measure` (the metrics and :class:`ConeStats`);
- transform: :mod:`skgap.transform` (:class:`ModalityGapShifter`, the
  post-hoc gap shift, and its relatives);
- train (optional, torch): :mod:`skgap.train`, gap-closing adapters;
- evaluate: :mod:`skgap.evaluate` (probes, the λ sweep, verdicts) and
  :mod:`skgap.plotting`;
- command line: ``skgap`` / ``python -m skgap``.

Kernels shared by every stage (norms, the shift, threads, validation) live in
the private :mod:`skgap._core`.

Names that need torch are imported lazily, so ``import skgap`` works without it.
"""

import sys
from importlib import import_module

from . import datasets, evaluate, io, measure, plotting, transform
from ._core._layout import pair, unpair
from .evaluate import LateFusionClassifier, RetrievalCaptioner, gap_sweep, summarize_sweep
from .measure import ConeStats
from .transform import (
    AnchorAffineAligner,
    CollapseCorrupt,
    ModalityCentering,
    ModalityGapShifter,
    ModalityGapShifterCV,
    ZeroShotClassifier,
)

__version__ = "0.1.0"

# name -> module, imported on first access (these modules need optional extras).
_LAZY = {
    "GapClosingAdapter": ".train",
    "LearnedGapProbe": ".train",
    "OpenCLIPEncoder": ".encode",
    "TransformersEncoder": ".encode",
}

__all__ = [
    "AnchorAffineAligner",
    "CollapseCorrupt",
    "ConeStats",
    "LateFusionClassifier",
    "ModalityCentering",
    "ModalityGapShifter",
    "ModalityGapShifterCV",
    "RetrievalCaptioner",
    "ZeroShotClassifier",
    "gap_sweep",
    "summarize_sweep",
    "pair",
    "unpair",
    "__version__",
] + sorted(_LAZY)


# Module paths of earlier releases stay importable (and unpickling finds their
# classes): each old name is the module that now holds its code.
_MOVED = {
    "metrics": "measure",
    "stats": "measure._cone_stats",
    "shift": "transform._shift",
    "shift_cv": "transform._shift_cv",
    "centering": "transform._centering",
    "align": "transform._align",
    "zeroshot": "transform._zeroshot",
}
for _old, _new in _MOVED.items():
    sys.modules.setdefault(f"{__name__}.{_old}", import_module(f".{_new}", __name__))
del _old, _new


def __getattr__(name):
    if name in _MOVED:
        return sys.modules[f"{__name__}.{name}"]
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
