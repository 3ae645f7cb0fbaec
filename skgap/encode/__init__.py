"""The encode stage: images and texts to paired embeddings (open_clip, transformers).

Needs the optional ``torch`` extra (``pip install 'skgap[torch]'``: torch,
torchvision, open_clip_torch, pillow, tqdm); ``import skgap`` never imports
this package, and ``skgap.OpenCLIPEncoder`` loads it on first access.

- :class:`OpenCLIPEncoder` -- a scikit-learn transformer from (image, text)
  pairs to ``X = [V | T]``, on the GPU when present, with an on-disk cache.
- :class:`TransformersEncoder` -- the same for Hugging Face CLIP-style
  models (CLIP, SigLIP, SigLIP 2, MedSigLIP); needs ``skgap[transformers]``.
- :func:`save_random_model` -- a tiny random-weight checkpoint folder, for
  dry runs before the real weights arrive.
- :func:`pool_by_group` -- one row per study (report) from several images.
- :class:`MissingWeightsError` -- weights that are neither on this machine nor
  downloadable (the message says how to use a local copy).
- :func:`load_image` -- a PNG/JPEG/TIFF or DICOM file (``skgap[dicom]``) as
  a PIL image, windowed for display as the DICOM standard prescribes.
- :func:`read_fixations`, :func:`gaze_heatmap`, :func:`sentence_heatmaps`,
  :class:`SynchronizedTransform` -- radiologists' eye gaze as heatmaps of
  the image, for expert annotations (eCLIP).
- :class:`BadItemError` -- one image or text that cannot be encoded (the
  message names its index and path).
- :func:`encode_archive` -- a whole table on a dask cluster into a
  clip-retrieval folder, resumable and fault-tolerant (needs
  ``skgap[dask,arrow]``).
"""

try:
    import torch  # noqa: F401
    import open_clip  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    # Keep the missing module's name, so callers can tell an absent extra apart.
    raise ImportError(
        "skgap.encode needs the optional torch extra: pip install 'skgap[torch]' "
        f"(torch, torchvision, open_clip_torch, pillow, tqdm). Missing: {exc.name}.",
        name=exc.name,
    ) from exc

from ._archive import ArchiveLockedError, ArchiveSummary, encode_archive
from ._encoder import OpenCLIPEncoder
from ._gaze import (
    SynchronizedTransform,
    check_heatmap,
    gaze_heatmap,
    read_fixations,
    sentence_heatmaps,
)
from ._items import BadItemError, load_image
from ._loading import MissingWeightsError
from ._replicas import save_random_model, save_word_tokenizer
from ._studies import pool_by_group
from ._transformers import TransformersEncoder

__all__ = [
    "ArchiveLockedError",
    "ArchiveSummary",
    "BadItemError",
    "MissingWeightsError",
    "OpenCLIPEncoder",
    "SynchronizedTransform",
    "TransformersEncoder",
    "check_heatmap",
    "encode_archive",
    "gaze_heatmap",
    "load_image",
    "pool_by_group",
    "read_fixations",
    "save_random_model",
    "save_word_tokenizer",
    "sentence_heatmaps",
]
