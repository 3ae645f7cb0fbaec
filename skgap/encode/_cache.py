"""On-disk cache of embeddings, keyed by model, weights and input content.

Layout under the user's ``cache_dir``::

    cache_dir/
      <namespace>/            one folder per (model, weights, precision)
        meta.json             what the namespace holds, for humans
        widths.json           the embedding width of each modality
        .lock                 advisory lock of the writers (POSIX flock)
        image/<digest>.npz    shards: arrays 'keys' (n,) S32 and 'emb' (n, d) float32
        text/<digest>.npz
        claims/<modality>-<token>.claim   keys a live writer is encoding now

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
  file), or a readable one whose arrays do not fit together or whose width is
  not the namespace's, is reported once and removed, so its items are encoded
  again and stored in a new shard;
- **one encoding per item** -- a writer claims the keys it is about to encode
  (a claim file it holds an exclusive ``flock`` on while it lives), chunk by
  chunk; another writer skips claimed keys, encodes the unclaimed ones, then
  waits for the claimed ones to appear in a shard. A claim whose ``flock``
  nobody holds belongs to a dead process and is removed, its keys encoded by
  whoever comes next; a live writer that stores nothing for
  :attr:`EmbeddingCache.patience` seconds has its keys taken over too, so a
  hung writer cannot hang the others;
- **read-only caches** -- shards are immutable once written, so a cache
  folder this process cannot write to (permissions, a read-only mount) is
  read without the lock; a warning says that new items cannot be stored;
- **full disk** -- a write that finds no space raises :class:`CacheFullError`
  (an :class:`OSError` with ``errno.ENOSPC``) saying how many items the cache
  holds: everything stored before stays, and a rerun encodes only the rest;
- **permissions** -- files get ``0o666`` masked by the process umask, like
  any file the user creates (``mkstemp`` alone would give ``0o600``).

On systems without ``fcntl`` (Windows) the lock is a no-op; shards stay
atomic, and digest names make two writers of the same batch write one file.
"""

import contextlib
import errno
import hashlib
import json
import os
import secrets
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["CacheFullError", "EmbeddingCache", "atomic_write", "namespace_digest"]

_FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"
_WIDTHS = "widths.json"
_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_DAMAGE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class CacheFullError(OSError):
    """No space left where the cache writes; the message says what is stored.

    An :class:`OSError` with ``errno.ENOSPC``, so handlers of a full disk
    catch it; everything stored before the failure stays in the cache.
    """

    def __init__(self, message):
        super().__init__(errno.ENOSPC, message)

    def __str__(self):
        return self.strerror


def _shard_index(shard):
    """``(keys, width)`` of a shard, reading the keys and only the header of 'emb'.

    Raises ``ValueError`` when the file is a readable npz whose arrays are not
    a shard's: 1-D byte-string keys, and one float32 row of ``emb`` per key.
    """
    with zipfile.ZipFile(shard) as zf:
        names = set(zf.namelist())
        if not {"keys.npy", "emb.npy"} <= names:
            raise ValueError(f"arrays {sorted(n[:-4] for n in names)}, not 'keys' and 'emb'")
        with zf.open("emb.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
        with zf.open("keys.npy") as f:
            keys = np.lib.format.read_array(f, allow_pickle=False)
    if keys.ndim != 1 or keys.dtype.kind != "S":
        raise ValueError(f"'keys' of shape {keys.shape} and dtype {keys.dtype}, not 1-D bytes")
    if len(shape) != 2 or shape[0] != keys.shape[0] or dtype != np.float32:
        raise ValueError(
            f"'emb' of shape {shape} and dtype {dtype} for {keys.shape[0]} keys, not "
            f"({keys.shape[0]}, d) float32"
        )
    return keys.tolist(), int(shape[1])


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

    Attributes
    ----------
    dir : pathlib.Path
        The namespace's folder.
    read_only : bool
        The folder cannot be written (permissions, a read-only mount): its
        shards are read without the lock and :meth:`store` stores nothing.
    """

    #: Seconds to wait for keys a live writer claimed while none of them is
    #: stored, before encoding them here (a hung writer must not hang others).
    patience = 300.0
    #: Seconds between two looks at the shards while waiting for other writers.
    poll = 0.05

    def __init__(self, root, namespace):
        self.dir = Path(root).expanduser() / namespace_digest(namespace)
        # shard path -> (keys, width), for the shards this process has read
        self._seen = {}
        self._bad = set()  # damaged shards that could not be removed
        self._widths = {}
        self._recorded = {}  # widths this process has seen in (or written to) the record
        self._stored_sets = {}  # modality -> (shards counted, their keys)
        self._claims = {}  # claim path -> descriptor holding its flock
        self._depth = 0
        self.read_only = False
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with self._locked():
                self._remove_stale_temporaries()
                meta = self.dir / "meta.json"
                if not meta.exists():
                    text = json.dumps(namespace, indent=2, sort_keys=True, default=str).encode()
                    atomic_write(meta, lambda f: f.write(text))
        except OSError as exc:
            if exc.errno in _FULL:
                raise self._full("", exc) from exc
            if exc.errno not in _DENIED:
                raise
            # Shards are never rewritten in place, so reading them needs no lock.
            self.read_only = True
            self._depth = 0
            warnings.warn(
                f"the embedding cache {self.dir} cannot be written ({os.strerror(exc.errno)}): "
                "cached embeddings are read from it, new ones cannot be stored.",
                RuntimeWarning,
                stacklevel=4,
            )

    @contextlib.contextmanager
    def _locked(self):
        """Hold the namespace's writer lock (released by the OS if the process dies)."""
        # Re-entrant: flock on a second descriptor of the same file would wait
        # for this process's own lock.
        if fcntl is None or self.read_only or self._depth:
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
        for folder in (self.dir, self.dir / "image", self.dir / "text", self.dir / "claims"):
            if folder.is_dir():
                for tmp in folder.glob(_TMP_PREFIX + "*"):
                    with contextlib.suppress(OSError):
                        tmp.unlink()

    def _full(self, modality, exc):
        """The error of a full disk: where, and what the cache holds (nothing is lost)."""
        held, total = [], 0
        for m in (modality,) if modality else ("image", "text"):
            n = len(self._stored(m)) if (self.dir / m).is_dir() else 0
            held.append(f"{n} {m} embedding{'s' if n != 1 else ''}")
            total += n
        quota = " (disk quota exceeded)" if exc.errno != errno.ENOSPC else ""
        return CacheFullError(
            f"no space left on {self.dir}{quota}; {' and '.join(held)} "
            f"{'is' if total == 1 and len(held) == 1 else 'are'} "
            "stored, none is lost: free some space and rerun to continue (stored items are "
            "not encoded again)."
        )

    # -- shards ----------------------------------------------------------------

    def _shards(self, modality):
        folder = self.dir / modality
        if not folder.is_dir():
            return []
        return sorted(
            p for p in folder.glob("*.npz") if not p.name.startswith(".") and p not in self._bad
        )

    def _index(self, modality, shard):
        """The keys of a usable ``shard`` (read once per process); ``None`` if it is not one.

        A shard that cannot be read, whose arrays are not a shard's, or whose
        width is not the namespace's is reported and removed.
        """
        if shard not in self._seen:
            try:
                self._seen[shard] = _shard_index(shard)
            except FileNotFoundError:
                return None  # removed by another process in the meantime
            except _DAMAGE as exc:
                self._drop(modality, shard, f"unreadable cache shard {shard} "
                           f"({type(exc).__name__}: {exc})")
                return None
        keys, width = self._seen[shard]
        expected = self._width(modality)
        if expected is not None and width != expected:
            self._drop(modality, shard, f"cache shard {shard} of {width}-dim embeddings "
                       f"(this cache holds {expected}-dim {modality} embeddings)")
            return None
        return keys

    def _shard_keys(self, shard):
        """The keys of ``shard``, or ``None`` if it is damaged (see :meth:`_index`)."""
        return self._index(shard.parent.name, shard)

    def _drop(self, modality, shard, what):
        """Report a damaged shard once and remove it, so its items are encoded again."""
        warnings.warn(
            f"removing {what}; its entries will be encoded again.",
            RuntimeWarning,
            stacklevel=4,
        )
        self._stored_sets.pop(modality, None)
        self._seen.pop(shard, None)
        removed = False
        if not self.read_only:
            with self._locked():
                try:
                    shard.unlink()
                    removed = True
                except FileNotFoundError:
                    removed = True  # another process removed it already
                except OSError:
                    pass
        if not removed:
            # It stays on disk: skip it from now on. A removed name may come
            # back, rewritten whole, when its items are encoded again.
            self._bad.add(shard)

    def _read_widths(self):
        try:
            record = json.loads((self.dir / _WIDTHS).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict):
            return {}
        return {m: w for m, w in record.items() if isinstance(w, int) and w > 0}

    def _width(self, modality):
        """The namespace's width for ``modality``: recorded, else that of most cached rows."""
        if modality not in self._widths:
            width = self._read_widths().get(modality)
            if width is None:
                # A cache written before widths were recorded: the width of
                # most rows wins, and the shards of other widths are foreign.
                rows = {}
                for shard in self._shards(modality):
                    if shard not in self._seen:
                        try:
                            self._seen[shard] = _shard_index(shard)
                        except _DAMAGE:
                            continue  # reported when the shard itself is read
                    keys, w = self._seen[shard]
                    rows[w] = rows.get(w, 0) + len(keys)
                if not rows:
                    return None
                width = max(rows, key=lambda w: (rows[w], -w))
            self._widths[modality] = width
        return self._widths[modality]

    def _record_width(self, modality, width):
        """Record the width the encoder gives (under the lock); the model is the authority."""
        if self._recorded.get(modality) == width:
            return
        record = self._read_widths()
        if record.get(modality) == width:
            self._widths[modality] = self._recorded[modality] = width
            return
        old = record.get(modality, self._width(modality))
        if old is not None and old != width:
            warnings.warn(
                f"the embedding cache {self.dir} held {old}-dim {modality} embeddings but the "
                f"encoder gives {width}-dim ones; the {old}-dim shards will be encoded again.",
                RuntimeWarning,
                stacklevel=4,
            )
        record[modality] = width
        text = json.dumps(record, sort_keys=True).encode()
        atomic_write(self.dir / _WIDTHS, lambda f: f.write(text))
        self._widths[modality] = self._recorded[modality] = width
        self._stored_sets.pop(modality, None)

    def _stored(self, modality):
        """Every key of the usable shards of ``modality`` (new shards read incrementally)."""
        entry = self._stored_sets.get(modality)
        if entry is None:
            entry = self._stored_sets[modality] = (set(), set())
        counted, keys = entry
        for shard in self._shards(modality):
            if shard not in counted:
                shard_keys = self._index(modality, shard)
                if self._stored_sets.get(modality) is not entry:
                    # A shard was dropped meanwhile: count again without it.
                    return self._stored(modality)
                counted.add(shard)
                keys.update(shard_keys or ())
        return keys

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
            shard_keys = self._index(modality, shard)
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
            except _DAMAGE as exc:
                self._drop(modality, shard, f"unreadable cache shard {shard} "
                           f"({type(exc).__name__}: {exc})")
        return found

    def store(self, modality, keys, emb):
        """Add the ``keys`` (sequence of bytes) not yet cached, with their rows of ``emb``.

        Under the namespace's lock: the shards written since this process last
        looked are read, keys already stored by anyone are left out, and the
        rest become one shard named by the digest of its keys. A read-only
        cache stores nothing.

        Returns
        -------
        n_stored : int
            How many of ``keys`` were new.

        Raises
        ------
        CacheFullError
            No space left on the cache's disk; what was stored before stays.
        """
        if len(keys) == 0 or self.read_only:
            return 0
        emb = np.ascontiguousarray(np.asarray(emb), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys for embeddings of shape {emb.shape}.")
        folder = self.dir / modality
        try:
            folder.mkdir(exist_ok=True)
            with self._locked():
                self._record_width(modality, emb.shape[1])
                stored = self._stored(modality)
                rows, new = [], set()
                for i, k in enumerate(keys):
                    if k not in stored and k not in new:
                        rows.append(i)
                        new.add(k)
                if not rows:
                    return 0
                arrays = {
                    "keys": np.asarray([keys[i] for i in rows], dtype="S32"),
                    "emb": emb[rows],
                }
                name = hashlib.sha256(b"".join(arrays["keys"].tolist())).hexdigest()[:32]
                path = folder / f"{name}.npz"
                atomic_write(path, lambda f: _write_arrays(f, arrays))
                shard_keys = arrays["keys"].tolist()
                self._seen[path] = (shard_keys, emb.shape[1])
                counted, known = self._stored_sets.get(modality, (set(), set()))
                counted.add(path)
                known.update(shard_keys)
                self._stored_sets[modality] = (counted, known)
        except OSError as exc:
            if exc.errno in _FULL:
                raise self._full(modality, exc) from exc
            raise
        return len(rows)

    # -- one encoding per item among concurrent writers -------------------------

    def encode_once(self, modality, keys, encode, *, chunk=256):
        """Have ``keys`` encoded once among all the writers of this namespace.

        Chunk by chunk, keys that no shard holds and no live writer has
        claimed are claimed and handed to ``encode``, which encodes and
        :meth:`store`\\ s them; keys another writer claimed are skipped, then
        waited for until they are stored (or until their writer dies or
        stores nothing for :attr:`patience` seconds, when they are claimed
        here).

        Parameters
        ----------
        modality : {'image', 'text'}
        keys : sequence of bytes
            The keys to encode (not yet found by :meth:`lookup`).
        encode : callable
            ``encode(list_of_keys)`` encodes those keys and stores them.
        chunk : int, default=256
            Keys claimed at a time: small enough that writers share the work,
            large enough that one call to ``encode`` fills batches.

        Returns
        -------
        found : dict
            ``key -> embedding`` of the keys other writers stored.
        """
        pending = dict.fromkeys(keys)
        if fcntl is None or self.read_only:
            encode(list(pending))
            return {}
        found = {}
        waiting_since = None
        while pending:
            with self._locked():
                claimed = self._live_claims(modality)
                stored = self._stored(modality)
                ready = [k for k in pending if k in stored]
                free = [k for k in pending if k not in stored and k not in claimed]
                stalled = (
                    waiting_since is not None
                    and time.monotonic() - waiting_since > self.patience
                )
                if not free and not ready and stalled:
                    free = list(pending)
                    warnings.warn(
                        f"another writer of {self.dir} has stored none of the {len(free)} "
                        f"{modality} items it claimed for {self.patience:g} s; encoding them here.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                mine = free[:chunk]
                claim = self._claim(modality, mine) if mine else None
            if ready:
                got = self.lookup(modality, ready)
                found.update(got)
                for k in got:
                    del pending[k]
                waiting_since = None
            if mine:
                try:
                    encode(mine)
                finally:
                    self._release(claim)
                for k in mine:
                    # Stored, or failed here (a bad item): either way not waited for.
                    pending.pop(k, None)
                waiting_since = None
            elif not ready:
                if waiting_since is None:
                    waiting_since = time.monotonic()
                time.sleep(self.poll)
        return found

    def _live_claims(self, modality):
        """Keys that other live writers are encoding (under the lock); dead claims removed."""
        folder = self.dir / "claims"
        claimed = set()
        if not folder.is_dir():
            return claimed
        for path in folder.glob(f"{modality}-*.claim"):
            if path in self._claims:
                continue
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                continue
            except OSError:
                continue  # unreadable claim: its keys are encoded here too (and stored once)
            with f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # its writer holds it: alive
                    claimed.update(f.read().split(b"\n"))
                    continue
            # Nobody holds it: its writer died without releasing it.
            with contextlib.suppress(OSError):
                path.unlink()
        return claimed

    def _claim(self, modality, keys):
        """Claim ``keys`` for this writer (under the lock); ``None`` if it cannot be written.

        A claim only saves work: without one the keys are still encoded,
        and stored once.
        """
        folder = self.dir / "claims"
        fd = tmp = None
        try:
            folder.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TMP_PREFIX)
            fcntl.flock(fd, fcntl.LOCK_EX)  # the lock follows the inode through the rename
            with open(fd, "wb", closefd=False) as f:
                f.write(b"\n".join(keys))
            os.chmod(tmp, 0o666 & ~_umask())
            path = folder / f"{modality}-{secrets.token_hex(8)}.claim"
            os.replace(tmp, path)
        except OSError:
            if fd is not None:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return None
        self._claims[path] = fd
        return path

    def _release(self, path):
        if path is None:
            return
        fd = self._claims.pop(path)
        try:
            with self._locked(), contextlib.suppress(OSError):
                path.unlink()
        finally:
            os.close(fd)
