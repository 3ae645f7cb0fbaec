"""On-disk cache of embeddings, keyed by model, weights and input content.

Layout under the user's ``cache_dir``::

    cache_dir/
      <namespace>/            one folder per (model, weights, precision)
        meta.json             what the namespace holds, for humans
        .lock                 advisory lock of the writers (POSIX flock)
        image/<digest>.npz    shards: arrays 'keys' (n,) S32 and 'emb' (n, d) float32
        text/<digest>.npz

Safety under faults and several writers:

- **atomic shards** -- each shard is written to a temporary ``.tmp-*`` file
  in the same folder, flushed, and moved into place with :func:`os.replace`:
  a reader never sees half a shard;
- **no duplicates** -- a writer takes the namespace's lock, reads the keys of
  the shards written since it last looked, and stores only the keys no shard
  holds yet, under a name that is the digest of those keys. Two processes
  encoding the same items at once therefore store each item once;
- **stale temporaries** -- temporaries are only written under the lock, so a
  ``.tmp-*`` file found while holding it belongs to a killed process and is
  removed (when the cache is opened);
- **damaged shards** -- a shard that cannot be read (disk damage, a foreign
  file) is reported once and removed, so its items are encoded again and
  stored in a new shard;
- **permissions** -- files get ``0o666`` masked by the process umask, like
  any file the user creates (``mkstemp`` alone would give ``0o600``).

On systems without ``fcntl`` (Windows) the lock is a no-op; shards stay
atomic, and digest names make two writers of the same batch write one file.
"""

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["EmbeddingCache", "atomic_write", "namespace_digest"]

_FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"


def namespace_digest(namespace):
    """A short stable digest of a JSON-able description of the encoder."""
    text = json.dumps({"format": _FORMAT_VERSION, **namespace}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _write_arrays(f, arrays):
    np.savez(f, **arrays)


def _umask():
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Write ``path`` through ``write(file)`` so that it appears whole or not at all.

    The data goes to a temporary file beside ``path``, is flushed to disk, is
    given the permissions the umask allows (``0o666 & ~umask``), and only then
    replaces ``path``. On any failure, an interrupt included, the temporary
    file is removed and the exception propagates.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
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
        # shard path -> its keys, for the shards this process has read
        self._seen = {}
        self._depth = 0
        with self._locked():
            self._remove_stale_temporaries()
            meta = self.dir / "meta.json"
            if not meta.exists():
                text = json.dumps(namespace, indent=2, sort_keys=True, default=str).encode()
                atomic_write(meta, lambda f: f.write(text))

    @contextlib.contextmanager
    def _locked(self):
        """Hold the namespace's writer lock (released by the OS if the process dies)."""
        # Re-entrant: flock on a second descriptor of the same file would wait
        # for this process's own lock.
        if fcntl is None or self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            yield
        finally:
            self._depth = 0
            os.close(fd)  # closing releases the lock

    def _remove_stale_temporaries(self):
        """Remove ``.tmp-*`` files: under the lock, no live writer owns one."""
        for folder in (self.dir, self.dir / "image", self.dir / "text"):
            if folder.is_dir():
                for tmp in folder.glob(_TMP_PREFIX + "*"):
                    with contextlib.suppress(OSError):
                        tmp.unlink()

    def _shards(self, modality):
        folder = self.dir / modality
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))

    def _shard_keys(self, shard):
        """The keys of ``shard`` (read once per process); ``None`` if it is unreadable."""
        if shard not in self._seen:
            try:
                with np.load(shard, allow_pickle=False) as z:
                    self._seen[shard] = z["keys"].tolist()
            except FileNotFoundError:
                return []  # removed by another process in the meantime
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                self._drop(shard, exc)
                return None
        return self._seen[shard]

    def _drop(self, shard, exc):
        """Report a damaged shard once and remove it, so its items are encoded again."""
        warnings.warn(
            f"removing unreadable cache shard {shard} ({type(exc).__name__}: {exc}); its "
            "entries will be encoded again.",
            RuntimeWarning,
            stacklevel=4,
        )
        with self._locked(), contextlib.suppress(OSError):
            # Another process may have removed it already; shards are never
            # rewritten in place, so an unreadable name stays unreadable.
            shard.unlink()
        self._seen.pop(shard, None)

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
            shard_keys = self._shard_keys(shard)
            if not shard_keys:
                continue
            rows = [i for i, k in enumerate(shard_keys) if k in wanted and k not in found]
            if not rows:
                continue
            try:
                with np.load(shard, allow_pickle=False) as z:
                    found.update(zip([shard_keys[i] for i in rows], z["emb"][rows]))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                self._drop(shard, exc)
        return found

    def store(self, modality, keys, emb):
        """Add the ``keys`` (sequence of bytes) not yet cached, with their rows of ``emb``.

        Under the namespace's lock: the shards written since this process last
        looked are read, keys already stored by anyone are left out, and the
        rest become one shard named by the digest of its keys.

        Returns
        -------
        n_stored : int
            How many of ``keys`` were new.
        """
        if len(keys) == 0:
            return 0
        folder = self.dir / modality
        folder.mkdir(exist_ok=True)
        with self._locked():
            stored = set()
            for shard in self._shards(modality):
                stored.update(self._shard_keys(shard) or ())
            rows, new = [], set()
            for i, k in enumerate(keys):
                if k not in stored and k not in new:
                    rows.append(i)
                    new.add(k)
            if not rows:
                return 0
            arrays = {
                "keys": np.asarray([keys[i] for i in rows], dtype="S32"),
                "emb": np.ascontiguousarray(np.asarray(emb)[rows], dtype=np.float32),
            }
            name = hashlib.sha256(b"".join(arrays["keys"].tolist())).hexdigest()[:32]
            path = folder / f"{name}.npz"
            atomic_write(path, lambda f: _write_arrays(f, arrays))
            self._seen[path] = arrays["keys"].tolist()
        return len(rows)
