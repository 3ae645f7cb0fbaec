"""skgap: measure and control the modality gap of vision-language embeddings.

Paired embeddings travel as one array ``X = [V | T]`` (image block, text
block), so every estimator drops into scikit-learn pipelines and
cross-validation. The flow of the package:

- encode (optional, torch): :class:`OpenCLIPEncoder` turns images and texts
  into ``X``;
- read: :mod:`skgap.io` loads embedding files (npz, pt, HDF5, Parquet,
  clip-retrieval folders) into ``X``;
- measure: :mod:`skgap.metrics` and :class:`ConeStats`;
- transform: :class:`ModalityGapShifter` (post-hoc gap shift),
  :class:`ModalityCentering` and :class:`CollapseCorrupt` (post-hoc centring);
- evaluate and command line: ``skgap`` / ``python -m skgap``.

Names that need torch are imported lazily, so ``import skgap`` works without it.
"""

from importlib import import_module

from . import datasets, evaluate, io, metrics, plotting
from ._layout import pair, unpair
from .align import AnchorAffineAligner
from .centering import CollapseCorrupt, ModalityCentering
from .evaluate import LateFusionClassifier, gap_sweep, summarize_sweep
from .shift import ModalityGapShifter
from .shift_cv import ModalityGapShifterCV
from .stats import ConeStats
from .zeroshot import ZeroShotClassifier

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
    "ZeroShotClassifier",
    "gap_sweep",
    "summarize_sweep",
    "pair",
    "unpair",
    "__version__",
] + sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
