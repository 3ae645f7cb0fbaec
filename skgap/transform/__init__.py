"""Transform: estimators that move paired embeddings to close the gap.

- :class:`ModalityGapShifter`: the post-hoc gap shift
  :math:`v' = (v - \\lambda\\Delta/2)/\\lVert\\cdot\\rVert`,
  :math:`t' = (t + \\lambda\\Delta/2)/\\lVert\\cdot\\rVert`, and
  :class:`ModalityGapShifterCV`, its cross-validated choice of :math:`\\lambda`;
- :class:`ModalityCentering` and :class:`CollapseCorrupt`: the post-hoc
  centring relatives (I0T, C3);
- :class:`AnchorAffineAligner`: maps between encoders learned from anchor pairs;
- :class:`ZeroShotClassifier`: classification against class-prompt embeddings.

The shift's kernels live in :mod:`skgap._core`; the cross-validated search
trains its probes on implicitly shifted features (``_implicit``) with its own
logistic solver (``_solver``).
"""

from ._align import AnchorAffineAligner
from ._centering import CollapseCorrupt, ModalityCentering
from ._shift import ModalityGapShifter
from ._shift_cv import ModalityGapShifterCV
from ._zeroshot import ZeroShotClassifier, pool_prompt_embeddings

__all__ = [
    "AnchorAffineAligner",
    "CollapseCorrupt",
    "ModalityCentering",
    "ModalityGapShifter",
    "ModalityGapShifterCV",
    "ZeroShotClassifier",
    "pool_prompt_embeddings",
]
