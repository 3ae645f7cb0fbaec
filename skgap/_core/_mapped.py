"""A read-only memory map sent to another process as its file, not its bytes.

A fit run in a worker process (joblib's loky or dask backends) receives its
arguments pickled. A memory-mapped array pickles as its contents: the
client reads the whole file into memory and ships it, and the worker holds
an in-memory copy. :class:`MappedFile` pickles as what locates the rows in
the file -- its path, dtype, shape, byte offset and order -- and the worker
maps the same file read-only (:meth:`MappedFile.open`), reading only the pages
its fits touch and sharing them, through the page cache, with every other
process of its machine that maps the file.

This is sound only where the worker sees the same file under the same path
(the same machine, or a filesystem every node mounts at the same place) and
the file does not change while the work runs: its size and modification time
are recorded when the reference is made and checked when it is opened, and a
missing or changed file raises an error that says so.
"""

import mmap
import os
import socket
from dataclasses import dataclass

import numpy as np

__all__ = ["MappedFile", "file_reference", "open_reference"]


@dataclass(frozen=True)
class MappedFile:
    """Where a read-only memory-mapped array lies in its file.

    Parameters
    ----------
    path : str
        Absolute path of the file.
    dtype : numpy.dtype
    shape : tuple of int
    offset : int
        Byte offset of the array's first element in the file.
    order : {'C', 'F'}
        Memory layout of the array (contiguous either way).
    size, mtime_ns : int
        The file's size and modification time when the reference was made.
    """

    path: str
    dtype: np.dtype
    shape: tuple
    offset: int
    order: str
    size: int
    mtime_ns: int

    def open(self):
        """The array, mapped read-only from the file.

        Raises
        ------
        FileNotFoundError
            The file is not there (this machine does not see it).
        OSError
            The file changed since the reference was made.
        """
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise FileNotFoundError(
                f"{self.path}: the rows are a memory map of this file, and this process "
                f"(on {socket.gethostname()}) cannot open it ({exc.strerror or exc}). Worker "
                "processes open the file by its path: put it on a filesystem that every "
                "worker mounts at the same path, or pass the rows in memory (np.array(X)) "
                "to have them sent to the workers."
            ) from exc
        if (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns):
            raise OSError(
                f"{self.path}: the file changed after its memory map was handed to the "
                f"workers (size {self.size} -> {stat.st_size} bytes, or a new modification "
                "time); the workers would read other rows than the caller. Do not rewrite "
                "the file while the work runs."
            )
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                         shape=self.shape, order=self.order)


def _backing_map(a):
    """The ``np.memmap`` that owns the mapping under ``a``'s buffer, or None."""
    while a is not None:
        if isinstance(a, np.memmap) and isinstance(a.base, mmap.mmap):
            return a
        a = getattr(a, "base", None)
    return None


def file_reference(a):
    """A :class:`MappedFile` for ``a``, or None when ``a`` cannot travel as one.

    ``a`` can when it is a contiguous view (C or F order) of a memory map
    opened read-only (``np.load(path, mmap_mode='r')``,
    ``np.memmap(path, mode='r')``) of a file that is still there. A map
    opened for writing or copy-on-write (modes ``'r+'``, ``'w+'``, ``'c'``)
    may hold rows that the file does not: it travels as its contents.
    """
    if not isinstance(a, np.ndarray) or a.size == 0:
        return None
    if a.flags.c_contiguous:
        order = "C"
    elif a.flags.f_contiguous:
        order = "F"
    else:
        return None
    m = _backing_map(a)
    if m is None or m.mode != "r" or not m.filename:
        return None
    try:
        stat = os.stat(m.filename)
    except OSError:
        return None
    # A contiguous array's data pointer is its lowest byte; the owner's data
    # pointer lies at its own offset in the file.
    start = a.__array_interface__["data"][0] - m.__array_interface__["data"][0] + m.offset
    return MappedFile(
        path=os.path.abspath(m.filename), dtype=a.dtype, shape=tuple(a.shape),
        offset=int(start), order=order, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
    )


def open_reference(a):
    """``a.open()`` for a :class:`MappedFile`, else ``a`` itself."""
    return a.open() if isinstance(a, MappedFile) else a
