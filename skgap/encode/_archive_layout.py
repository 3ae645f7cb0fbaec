"""Files of an archive being written: shards, their commit records, the locks.

The embeddings follow clip-retrieval's folder layout, which
:class:`skgap.io.load_embeddings` and clip-retrieval's own tools read::

    OUT/
      img_emb/img_emb_{k}.npy          (n_k, d) float32 or float16
      text_emb/text_emb_{k}.npy        (n_k, d)
      metadata/metadata_{k}.parquet    'row' (the input row) and the input's columns
      manifest.json                    written at the end: settings, skipped rows, the check
      .skgap/settings.json             what the folder is an archive of (refuses a mismatch)
      .skgap/done/shard_{k}.json       commit record of shard k (its presence = finished)
      .skgap/lock                      held by the one client writing the folder
      .skgap/commit.lock               held by a worker while it commits a shard

A shard is *committed* by writing its three files atomically (temporary file,
``fsync``, :func:`os.replace`) and then its record, all under the commit
lock; a record found under that lock means the shard is final, and a second
attempt at it (a task rerun after its worker was thought lost, a worker left
from a stopped client) discards its result. Data files without a record are
left-overs of a killed attempt and are replaced by the next one.

Locks are POSIX ``flock``: released by the operating system when the process
holding them dies, and honoured across machines on NFSv4 and on most cluster
file systems. Without ``fcntl`` (Windows) they are no-ops.
"""

import contextlib
import json
import os
import socket
from pathlib import Path

import numpy as np

from ._cache import atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["ArchiveLockedError", "ArchiveFolder"]

_IMG, _TXT, _META = "img_emb", "text_emb", "metadata"
ROW_COLUMN = "row"


class ArchiveLockedError(RuntimeError):
    """Another client is writing to the same archive folder."""


class ArchiveFolder:
    """Paths and atomic writes of one output folder.

    Parameters
    ----------
    root : path-like
        The output folder (created with its sub-folders).
    """

    def __init__(self, root):
        self.root = Path(root).expanduser().resolve()
        self.private = self.root / ".skgap"
        for folder in (self.root / _IMG, self.root / _TXT, self.root / _META,
                       self.private / "done"):
            folder.mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------

    def image(self, k):
        return self.root / _IMG / f"{_IMG}_{k}.npy"

    def text(self, k):
        return self.root / _TXT / f"{_TXT}_{k}.npy"

    def metadata(self, k):
        return self.root / _META / f"{_META}_{k}.parquet"

    def record(self, k):
        return self.private / "done" / f"shard_{k}.json"

    @property
    def settings_path(self):
        return self.private / "settings.json"

    @property
    def manifest_path(self):
        return self.root / "manifest.json"

    # -- records ---------------------------------------------------------------

    def read_record(self, k):
        """The commit record of shard ``k``, or ``None`` when it is not finished."""
        try:
            return json.loads(self.record(k).read_text())
        except FileNotFoundError:
            return None

    def write_json(self, path, obj):
        text = json.dumps(obj, indent=1, sort_keys=True).encode()
        atomic_write(path, lambda f: f.write(text))

    def commit(self, k, V, T, metadata, record):
        """Write shard ``k`` unless it is already committed; return the final record.

        Parameters
        ----------
        V, T : ndarray of shape (n_k, d)
            Embeddings in their stored dtype.
        metadata : pyarrow.Table
            ``n_k`` rows.
        record : dict
            What the commit record says (rows, skipped rows, worker, time).

        Returns
        -------
        record : dict
            The record now on disk; ``record['committed_here']`` says whether
            this call wrote the shard (``False``: another attempt had).
        """
        import pyarrow.parquet as pq

        with self.locked("commit.lock", wait=True):
            existing = self.read_record(k)
            if existing is not None:
                return {**existing, "committed_here": False}
            atomic_write(self.metadata(k), lambda f: pq.write_table(metadata, f))
            atomic_write(self.text(k), lambda f: np.save(f, T, allow_pickle=False))
            atomic_write(self.image(k), lambda f: np.save(f, V, allow_pickle=False))
            # The record last: its presence is what makes the shard final.
            self.write_json(self.record(k), record)
        return {**record, "committed_here": True}

    # -- locks -----------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, name, *, wait):
        """Hold the flock ``.skgap/<name>``; without ``wait``, refuse if it is held.

        Raises
        ------
        ArchiveLockedError
            ``wait=False`` and another process (or another open of the file in
            this process) holds the lock.
        """
        path = self.private / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
                try:
                    fcntl.flock(fd, flags)
                except BlockingIOError:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise ArchiveLockedError(
                        f"{self.root} is being written by another client ({holder or 'unknown'}); "
                        "wait for it to finish, or pass wait=True (--wait-for-lock) to queue "
                        "behind it."
                    ) from None
            # Who holds it, for the message above (informational only).
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock
