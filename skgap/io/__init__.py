"""Read paired embeddings and labels from the files researchers keep.

- :func:`load_embeddings` -- one loader for ``.npz``, ``.npy``, ``.pt``,
  ``.safetensors``, HDF5, Parquet/Arrow and clip-retrieval folders, to
  ``X = [V | T]``;
- :func:`iter_embeddings` -- the same in chunks (clip-retrieval shards
  memory-mapped one at a time) for :meth:`skgap.ConeStats.partial_fit`;
- :func:`load_labels` -- labels from CSV/TSV (sniffed delimiter), Parquet or
  ``.npy``, joined by an id column, with CheXpert's uncertain-label policies.

The readers of HDF5 (``h5py``), Parquet/Arrow (``pyarrow``), safetensors and
torch files are optional: ``pip install 'skgap[hdf5]'``, ``'skgap[arrow]'``,
``'skgap[safetensors]'``, ``'skgap[torch]'``; a missing one raises an
:class:`ImportError` naming the extra. Nothing here imports them up front.
"""

from ._archive import ClipRetrievalArchive
from ._embeddings import IMAGE_KEYS, TEXT_KEYS, iter_embeddings, load_embeddings
from ._errors import DataFileError, KeyChoiceWarning
from ._labels import load_labels

__all__ = [
    "ClipRetrievalArchive",
    "DataFileError",
    "IMAGE_KEYS",
    "KeyChoiceWarning",
    "TEXT_KEYS",
    "iter_embeddings",
    "load_embeddings",
    "load_labels",
]
