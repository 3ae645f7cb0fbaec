"""A read-only memory map travels to worker processes as its file (skgap._core._mapped)."""

import os
import pickle

import numpy as np
import pytest

from skgap._core._mapped import MappedFile, file_reference, open_reference


@pytest.fixture
def saved(tmp_path):
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    return X, path


def test_reference_pickles_small_and_opens_the_same_rows(saved):
    X, path = saved
    mapped = np.load(path, mmap_mode="r")
    ref = file_reference(mapped)
    assert isinstance(ref, MappedFile)
    assert len(pickle.dumps(ref)) < 1000 < X.nbytes
    opened = pickle.loads(pickle.dumps(ref)).open()
    assert isinstance(opened, np.memmap) and opened.mode == "r"
    assert opened.dtype == X.dtype and opened.shape == X.shape
    np.testing.assert_array_equal(opened, X)
    assert not opened.flags.writeable


@pytest.mark.parametrize("view", [
    lambda m: m[10:50],  # rows: an offset inside the file
    lambda m: np.asarray(m),  # a plain ndarray over the map, as check_array returns it
    lambda m: m[7:8],
])
def test_reference_of_a_contiguous_view_opens_that_view(saved, view):
    X, path = saved
    a = view(np.load(path, mmap_mode="r"))
    np.testing.assert_array_equal(file_reference(a).open(), view(X))


def test_fortran_ordered_file(tmp_path):
    X = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(4, 6))
    np.save(tmp_path / "F.npy", X)
    ref = file_reference(np.load(tmp_path / "F.npy", mmap_mode="r"))
    assert ref.order == "F"
    np.testing.assert_array_equal(ref.open(), X)


def test_what_travels_as_its_contents(saved, tmp_path):
    X, path = saved
    m = np.load(path, mmap_mode="r")
    assert file_reference(X) is None  # in memory
    assert file_reference(m[:, :3]) is None  # not contiguous
    assert file_reference(m[::2]) is None
    assert file_reference(m[:0]) is None
    assert file_reference([1.0, 2.0]) is None
    # A writable or copy-on-write map may hold rows that the file does not.
    assert file_reference(np.load(path, mmap_mode="c")) is None
    assert file_reference(np.load(path, mmap_mode="r+")) is None


def test_open_reference_passes_anything_else_through(saved):
    X, _ = saved
    assert open_reference(X) is X
    assert open_reference(None) is None


def test_a_missing_file_is_named(saved):
    _, path = saved
    ref = file_reference(np.load(path, mmap_mode="r"))
    os.remove(path)  # the caller's map stays valid; the file is gone for others
    with pytest.raises(FileNotFoundError, match=r"X\.npy.*cannot open it.*np\.array\(X\)"):
        ref.open()


def test_a_changed_file_is_refused(saved):
    _, path = saved
    ref = file_reference(np.load(path, mmap_mode="r"))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(OSError, match="changed after its memory map"):
        ref.open()
