"""Readers of the file formats embeddings are kept in, behind one interface.

Each reader opens a file and offers its named arrays (``keys``) and
``get(key)``, which reads that one array and nothing else: an ``.npz`` whose
other members are object arrays, a Parquet table with string columns, or an
HDF5 file with image stacks beside the embeddings are all fine, because only
the requested members are ever decoded.

======================  ===============================  =============
suffix                  keys                             extra
======================  ===============================  =============
``.npz``                member names                     --
``.npy``                (one array, no keys)             --
``.pt``, ``.pth``       keys of a dict of tensors        ``torch``
``.safetensors``        tensor names                     ``safetensors``
``.h5``, ``.hdf5``      dataset paths (``a/b``)          ``hdf5``
``.parquet``,           column names                     ``arrow``
``.arrow``, ``.feather``
======================  ===============================  =============
"""

import zipfile
from pathlib import Path

import numpy as np

from ._errors import DataFileError, require

__all__ = ["open_source", "SUFFIXES"]

SUFFIXES = {
    ".npz": "npz",
    ".npy": "npy",
    ".pt": "torch",
    ".pth": "torch",
    ".safetensors": "safetensors",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".parquet": "arrow",
    ".pq": "arrow",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}


class _Source:
    """A file of named arrays. Subclasses set ``keys`` and implement ``_read``."""

    keys = ()
    array = None  # a file holding one unnamed array (.npy, a bare tensor)

    def __init__(self, path):
        self.path = Path(path)

    def where(self, key):
        return f"{self.path}[{key!r}]"

    def get(self, key):
        if key not in self.keys:
            raise DataFileError(
                f"{self.path}: no array {key!r} (found: {', '.join(map(repr, self.keys)) or 'none'})."
            )
        try:
            return self._read(key)
        except DataFileError:
            raise
        except Exception as exc:  # a format library's own failure on this member
            raise DataFileError(
                f"{self.where(key)}: cannot be read ({type(exc).__name__}: {exc})."
            ) from exc

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Npz(_Source):
    def __init__(self, path, mmap):
        super().__init__(path)
        try:
            self._f = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataFileError(f"{self.path}: not a readable NumPy file (.npz) ({exc}).") from exc
        self.keys = tuple(self._f.files)

    def _read(self, key):
        try:
            return self._f[key]
        except ValueError as exc:
            if "Object arrays" in str(exc):
                raise DataFileError(
                    f"{self.where(key)}: an object array (Python objects need pickle, which "
                    "is never run on a data file); store it as a string or number array."
                ) from None
            raise

    def close(self):
        self._f.close()


class _Npy(_Source):
    def __init__(self, path, mmap):
        super().__init__(path)
        try:
            self.array = np.load(self.path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            msg = str(exc)
            if "Object arrays" in msg:
                msg = "an object array; pickled Python objects are never loaded"
            raise DataFileError(f"{self.path}: not a readable NumPy file (.npy) ({msg}).") from exc


def _tensor_to_numpy(t):
    import torch

    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()  # NumPy has no bfloat16; float16 is computed on in float32
    return t.detach().cpu().numpy()


def _first_line(exc):
    """``'Type: first line of the message'`` (some errors, EOFError, have none)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class _Torch(_Source):
    def __init__(self, path, mmap):
        super().__init__(path)
        torch = require("torch", f"reading {self.path}")
        try:
            try:
                obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError as exc:
                if not (mmap and "mmap" in str(exc)):
                    raise
                # The legacy (non-zip) format cannot be memory-mapped.
                obj = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types
            raise DataFileError(
                f"{self.path}: not a readable torch file with weights_only=True "
                f"({_first_line(exc)})."
            ) from exc
        if isinstance(obj, torch.Tensor):
            self.array = _tensor_to_numpy(obj)
            return
        if not isinstance(obj, dict):
            raise DataFileError(
                f"{self.path}: expected a dict of tensors or one tensor, got "
                f"{type(obj).__name__}."
            )
        self._items = {}
        self._flatten(obj, "")
        self.keys = tuple(self._items)

    def _flatten(self, obj, prefix):
        import torch

        for k, v in obj.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                self._flatten(v, name + "/")
            elif isinstance(v, torch.Tensor):
                self._items[name] = v
            elif isinstance(v, np.ndarray) or isinstance(v, (list, tuple)):
                self._items[name] = v

    def _read(self, key):
        import torch

        v = self._items[key]
        if isinstance(v, torch.Tensor):
            return _tensor_to_numpy(v)
        return np.asarray(v)


class _Safetensors(_Source):
    def __init__(self, path, mmap):
        super().__init__(path)
        require("safetensors", f"reading {self.path}")
        from safetensors import safe_open

        try:
            self._f = safe_open(str(self.path), framework="np")
            self.keys = tuple(self._f.keys())
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types
            raise DataFileError(
                f"{self.path}: not a readable .safetensors file ({type(exc).__name__}: {exc})."
            ) from exc

    def _read(self, key):
        return self._f.get_tensor(key)


class _Hdf5(_Source):
    def __init__(self, path, mmap):
        super().__init__(path)
        h5py = require("h5py", f"reading {self.path}")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataFileError(f"{self.path}: not a readable HDF5 file ({exc}).") from exc
        names = []
        self._f.visititems(
            lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        self.keys = tuple(names)

    def _read(self, key):
        dset = self._f[key]
        if dset.dtype.kind == "O":
            return np.asarray(dset.asstr()[...]) if dset.ndim else dset.asstr()[()]
        return dset[...]

    def close(self):
        self._f.close()


def arrow_column_to_numpy(column, where):
    """A pyarrow column as NumPy: numbers as 1-D, (fixed-size) lists as 2-D.

    List columns must hold one non-null list per row, all of one length.
    """
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count:
        rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
        raise DataFileError(
            f"{where}: {column.null_count} row(s) are null (first: row {rows[0]})."
        )
    typ = column.type
    if pa.types.is_fixed_size_list(typ):
        width = typ.list_size
        values = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), width)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            bad = int(np.flatnonzero(lengths != lengths[0])[0])
            raise DataFileError(
                f"{where}: rows hold lists of different lengths ({lengths[0]} in row 0, "
                f"{lengths[bad]} in row {bad}); embeddings need one width."
            )
        values = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), int(lengths[0]) if len(lengths) else 0)
    return column.to_numpy(zero_copy_only=False)


class _Arrow(_Source):
    def __init__(self, path, mmap):
        super().__init__(path)
        require("pyarrow", f"reading {self.path}")
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self.path.suffix.lower() in (".parquet", ".pq"):
                self._file = pq.ParquetFile(self.path, memory_map=mmap)
                self.keys = tuple(self._file.schema_arrow.names)
                self._read_columns = lambda cols: self._file.read(columns=cols)
            else:
                source = pa.memory_map(str(self.path)) if mmap else pa.OSFile(str(self.path))
                try:
                    reader = pa.ipc.open_file(source)
                except pa.ArrowInvalid:
                    source = pa.memory_map(str(self.path)) if mmap else pa.OSFile(str(self.path))
                    reader = pa.ipc.open_stream(source)
                table = reader.read_all()
                self.keys = tuple(table.column_names)
                self._read_columns = lambda cols: table.select(cols)
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(
                f"{self.path}: not a readable Parquet/Arrow file ({type(exc).__name__}: {exc})."
            ) from exc

    def _read(self, key):
        return arrow_column_to_numpy(self._read_columns([key]).column(0), self.where(key))


_READERS = {
    "npz": _Npz,
    "npy": _Npy,
    "torch": _Torch,
    "safetensors": _Safetensors,
    "hdf5": _Hdf5,
    "arrow": _Arrow,
}


def open_source(path, mmap=True):
    """Open ``path`` with the reader its suffix names.

    Raises
    ------
    DataFileError
        Missing file, unknown suffix, or a file its reader cannot open.
    ImportError
        The reader's optional package is missing (the message names the extra).
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataFileError(
            f"{path}: unknown embeddings format {path.suffix or '(no suffix)'!r}; expected "
            f"one of {', '.join(sorted(SUFFIXES))} or a clip-retrieval folder."
        )
    if path.is_dir():
        raise DataFileError(f"{path}: is a folder, not a {path.suffix} file.")
    if not path.is_file():
        raise DataFileError(f"{path}: no such file.")
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if empty:
        # Every format has a header; a 0-byte file is an interrupted or failed write.
        raise DataFileError(f"{path}: empty file (0 bytes); it holds no embeddings.")
    return _READERS[kind](path, mmap)
