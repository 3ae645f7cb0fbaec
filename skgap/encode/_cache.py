"""On-disk cache of embeddings, keyed by model, weights and input content.

Layout under the user's ``cache_dir``::

    cache_dir/
      <namespace>/            one folder per (model, weights, precision)
        meta.json             what the namespace holds, for humans
        image/<uuid>.npz      shards: arrays 'keys' (n,) S32 and 'emb' (n, d) float32
        text/<uuid>.npz

Each encoded batch becomes one shard, written to a temporary file in the same
folder and moved into place with :func:`os.replace` (atomic on POSIX and
Windows). A run that is interrupted keeps every batch it finished, and a
reader never sees a half-written shard: temporary files start with ``.`` and
are ignored.
"""

import contextlib
import hashlib
import json
import os
import tempfile
import uuid
import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingCache", "namespace_digest"]

_FORMAT_VERSION = 1


def namespace_digest(namespace):
    """A short stable digest of a JSON-able description of the encoder."""
    text = json.dumps({"format": _FORMAT_VERSION, **namespace}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _write_arrays(f, arrays):
    np.savez(f, **arrays)


def atomic_write(path, write):
    """Write ``path`` through ``write(file)`` so that it appears whole or not at all.

    The data goes to a temporary file beside ``path``, is flushed to disk, and
    only then replaces ``path``. On any failure, an interrupt included, the
    temporary file is removed and the exception propagates.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class EmbeddingCache:
    """Embeddings of already-seen items, one namespace of one cache folder.

    Parameters
    ----------
    root : path-like
        The cache folder (created if missing).
    namespace : dict
        JSON-able description of everything that changes the embeddings
        (model, weights, precision); its digest names the sub-folder.
    """

    def __init__(self, root, namespace):
        self.dir = Path(root).expanduser() / namespace_digest(namespace)
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "meta.json"
        if not meta.exists():
            text = json.dumps(namespace, indent=2, sort_keys=True, default=str).encode()
            atomic_write(meta, lambda f: f.write(text))

    def _shards(self, modality):
        folder = self.dir / modality
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))

    def lookup(self, modality, keys):
        """Cached embeddings of ``keys``.

        Parameters
        ----------
        modality : {'image', 'text'}
        keys : iterable of bytes

        Returns
        -------
        found : dict
            ``key -> embedding (float32 1-D array)`` for the keys in the cache.
        """
        wanted = set(keys)
        found = {}
        for shard in self._shards(modality):
            if len(found) == len(wanted):
                break
            try:
                with np.load(shard, allow_pickle=False) as z:
                    shard_keys = z["keys"].tolist()
                    rows = [i for i, k in enumerate(shard_keys) if k in wanted]
                    if rows:
                        found.update(zip([shard_keys[i] for i in rows], z["emb"][rows]))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                # Atomic writes make this unexpected (disk damage, a foreign
                # file); the entries are simply encoded again.
                warnings.warn(
                    f"ignoring unreadable cache shard {shard} ({type(exc).__name__}: {exc}).",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return found

    def store(self, modality, keys, emb):
        """Add one shard: ``keys`` (sequence of bytes) and their embeddings ``emb``."""
        if len(keys) == 0:
            return
        folder = self.dir / modality
        folder.mkdir(exist_ok=True)
        arrays = {
            "keys": np.asarray(keys, dtype="S32"),
            "emb": np.ascontiguousarray(emb, dtype=np.float32),
        }
        atomic_write(folder / f"{uuid.uuid4().hex}.npz", lambda f: _write_arrays(f, arrays))
