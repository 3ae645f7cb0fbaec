"""The folder layout of clip-retrieval embedding archives, read shard by shard.

clip-retrieval (``clip-retrieval inference``) writes::

    FOLDER/
      img_emb/img_emb_0.npy     (n_0, d) float16/float32, row i = item i of shard 0
      text_emb/text_emb_0.npy   (n_0, d)
      metadata/metadata_0.parquet   one row per item (image_path, caption, ...)
      img_emb/img_emb_1.npy ...

Shards are opened memory-mapped, one at a time, so an archive larger than
memory streams through :meth:`~skgap.ConeStats.partial_fit`.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import DataFileError, require

__all__ = ["ClipRetrievalArchive", "is_clip_retrieval_folder"]

_IMG, _TXT, _META = "img_emb", "text_emb", "metadata"


def is_clip_retrieval_folder(path):
    path = Path(path)
    return path.is_dir() and (path / _IMG).is_dir() and (path / _TXT).is_dir()


def _numbered(folder, stem, suffix):
    """``{index: path}`` of the files ``stem_<index><suffix>`` in ``folder``."""
    pattern = re.compile(rf"{re.escape(stem)}_(\d+){re.escape(suffix)}$")
    found = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = pattern.match(p.name)
            if m:
                found[int(m.group(1))] = p
    return found


@dataclass(frozen=True)
class _Shard:
    index: int
    image: Path
    text: Path
    metadata: Path | None
    n_rows: int


class ClipRetrievalArchive:
    """A clip-retrieval embeddings folder: its shards, sizes and widths.

    Opening reads only the ``.npy`` headers (memory maps), never the data.

    Parameters
    ----------
    folder : path-like

    Attributes
    ----------
    shards : list
        One entry per shard, in index order.
    n_rows : int
        Rows over all shards.
    modality_dims : tuple of int
        ``(d_image, d_text)``.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        if not is_clip_retrieval_folder(self.folder):
            raise DataFileError(
                f"{self.folder}: not a clip-retrieval folder (expected sub-folders "
                f"{_IMG}/ and {_TXT}/ with {_IMG}_N.npy and {_TXT}_N.npy shards)."
            )
        images = _numbered(self.folder / _IMG, _IMG, ".npy")
        texts = _numbered(self.folder / _TXT, _TXT, ".npy")
        metas = _numbered(self.folder / _META, _META, ".parquet")
        if not images:
            raise DataFileError(f"{self.folder / _IMG}: no {_IMG}_N.npy shards.")
        if set(images) != set(texts):
            only_i = sorted(set(images) - set(texts))
            only_t = sorted(set(texts) - set(images))
            raise DataFileError(
                f"{self.folder}: image and text shards do not match"
                + (f"; no {_TXT}_N.npy for shard(s) {only_i}" if only_i else "")
                + (f"; no {_IMG}_N.npy for shard(s) {only_t}" if only_t else "")
                + "."
            )
        self.shards = []
        dims = None
        for i in sorted(images):
            vi, ti = self._header(images[i]), self._header(texts[i])
            if vi.ndim != 2 or ti.ndim != 2:
                bad = images[i] if vi.ndim != 2 else texts[i]
                raise DataFileError(f"{bad}: expected a 2-D array (n_items, dim).")
            if vi.shape[0] != ti.shape[0]:
                raise DataFileError(
                    f"{self.folder}: shard {i} has {vi.shape[0]} image rows ({images[i].name}) "
                    f"but {ti.shape[0]} text rows ({texts[i].name})."
                )
            shard_dims = (vi.shape[1], ti.shape[1])
            if dims is not None and shard_dims != dims:
                raise DataFileError(
                    f"{self.folder}: shard {i} has widths {shard_dims}, shard "
                    f"{self.shards[0].index} has {dims}."
                )
            dims = shard_dims
            self.shards.append(_Shard(i, images[i], texts[i], metas.get(i), vi.shape[0]))
        self.n_rows = sum(s.n_rows for s in self.shards)
        self.modality_dims = dims

    @staticmethod
    def _header(path):
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataFileError(f"{path}: not a readable .npy shard ({exc}).") from exc

    def iter_blocks(self, chunk_rows=None):
        """Yield ``(V, T, where, first_row)`` memory-mapped slices, shard by shard.

        Parameters
        ----------
        chunk_rows : int, default=None
            Split shards into slices of at most this many rows; ``None`` yields
            whole shards.

        Yields
        ------
        V, T : ndarray
            Memory-mapped rows of the image and text shards.
        where : str
            The folder and shard, for messages.
        first_row : int
            Row of ``V[0]`` within its shard.
        """
        for shard in self.shards:
            V = self._header(shard.image)
            T = self._header(shard.text)
            step = chunk_rows or max(shard.n_rows, 1)
            for start in range(0, shard.n_rows, step):
                stop = min(start + step, shard.n_rows)
                yield V[start:stop], T[start:stop], f"{self.folder} shard {shard.index}", start

    def metadata_column(self, column):
        """One column of the ``metadata_N.parquet`` shards, concatenated in row order.

        Parameters
        ----------
        column : str
            Column name in the metadata tables.

        Returns
        -------
        values : ndarray of shape (n_rows,) or (n_rows, k)
        """
        require("pyarrow", f"reading the metadata of {self.folder}")
        from ._sources import open_source

        parts = []
        for shard in self.shards:
            if shard.metadata is None:
                raise DataFileError(
                    f"{self.folder}: no {_META}/{_META}_{shard.index}.parquet for shard "
                    f"{shard.index}, so column {column!r} is not available."
                )
            with open_source(shard.metadata) as src:
                if column not in src.keys:
                    raise DataFileError(
                        f"{shard.metadata}: no column {column!r} (columns: "
                        f"{', '.join(src.keys)})."
                    )
                values = src.get(column)
            if len(values) != shard.n_rows:
                raise DataFileError(
                    f"{shard.metadata}: {len(values)} rows for {shard.n_rows} embeddings."
                )
            parts.append(values)
        return np.concatenate(parts)
