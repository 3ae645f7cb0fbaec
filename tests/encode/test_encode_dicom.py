"""DICOM images through skgap.encode.load_image, against the DICOM standard's pixel
pipeline computed here from pydicom's raw values, on files pydicom ships and copies
the tests write."""

import shutil
import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("torch")
pytest.importorskip("open_clip")
from pydicom.data import get_testdata_file  # noqa: E402

from skgap.encode import load_image  # noqa: E402


def shipped(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


def codes(y):
    return np.round(np.asarray(y, dtype=np.float64) * 255).astype(np.uint8)


def test_ct_rescale_then_min_max():
    path = shipped("CT_small.dcm")
    ds = pydicom.dcmread(path)
    assert "WindowCenter" not in ds  # so min-max applies
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = codes((hu - hu.min()) / (hu.max() - hu.min()))
    img = load_image(path)
    assert img.mode == "L" and img.size == (128, 128)
    np.testing.assert_array_equal(np.asarray(img), expected)


def test_mr_window_centre_and_width():
    path = shipped("MR_small.dcm")
    ds = pydicom.dcmread(path)
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    x = ds.pixel_array.astype(np.float64)
    lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
    y = np.where(x <= lo, 0.0, np.where(x > hi, 1.0, (x - (c - 0.5)) / (w - 1) + 0.5))
    got = np.asarray(load_image(path)).astype(int)
    assert np.abs(got - codes(y).astype(int)).max() <= 1  # float32 rounding at .5
    # pydicom's own windowing, rescaled from its output range, agrees
    from pydicom.pixels import apply_voi_lut

    theirs = apply_voi_lut(x, ds).astype(np.float64)
    bits = int(ds.BitsStored)
    ymin, ymax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ds.PixelRepresentation else (0, 2**bits - 1)
    assert np.abs(got - codes((theirs - ymin) / (ymax - ymin)).astype(int)).max() <= 1


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_monochrome1_copy_is_the_inverted_image(tmp_path, name):
    ds = pydicom.dcmread(shipped(name))
    ds.PhotometricInterpretation = "MONOCHROME1"
    copy = tmp_path / "inverted.dcm"
    ds.save_as(copy)
    np.testing.assert_array_equal(np.asarray(load_image(copy)), 255 - np.asarray(load_image(shipped(name))))
    f1 = np.asarray(load_image(copy, output="float"))
    f2 = np.asarray(load_image(shipped(name), output="float"))
    np.testing.assert_allclose(f1, 1 - f2, atol=1e-7)


def test_float_output_keeps_more_than_eight_bits():
    path = shipped("CT_small.dcm")
    f = load_image(path, output="float")
    arr = np.asarray(f)
    assert f.mode == "F" and arr.min() == 0 and arr.max() == 1
    assert np.unique(arr).size > 256  # 16-bit CT: more levels than 8 bits hold
    np.testing.assert_array_equal(codes(arr), np.asarray(load_image(path)))


def test_voi_lut_sequence_is_applied(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(shipped("MR_small.dcm"))
    del ds.WindowCenter, ds.WindowWidth
    first, n = 0, 4096
    table = (np.sqrt(np.arange(n) / (n - 1)) * 4095).round().astype(np.uint16)  # a gamma curve
    item = Dataset()
    item.LUTDescriptor = [n, first, 12]  # 12-bit entries, stored as 16-bit words
    item.LUTData = table.astype("<u2").tobytes()
    ds.VOILUTSequence = Sequence([item])
    path = tmp_path / "lut.dcm"
    ds.save_as(path)
    x = np.clip(ds.pixel_array.astype(int), first, first + n - 1)
    np.testing.assert_array_equal(np.asarray(load_image(path)), codes(table[x - first] / 4095))


def test_multi_frame_refused_or_chosen():
    path = shipped("rtdose.dcm")
    with pytest.raises(OSError, match=r"multi-frame DICOM \(15 frames\); choose one with frame="):
        load_image(path)
    ds = pydicom.dcmread(path)
    assert "RescaleSlope" not in ds and "WindowCenter" not in ds
    x = ds.pixel_array[3].astype(np.float64)
    img = np.asarray(load_image(path, frame=3))
    expected = codes((x - x.min()) / (x.max() - x.min()))
    np.testing.assert_array_equal(img, expected)
    with pytest.raises(OSError, match="frame 15 does not exist"):
        load_image(path, frame=15)


def test_compressed_transfer_syntaxes_decoded_or_refused_clearly():
    # RLE is decoded by pydicom itself: the same pixels as the uncompressed file
    np.testing.assert_array_equal(np.asarray(load_image(shipped("MR_small_RLE.dcm"))),
                                  np.asarray(load_image(shipped("MR_small.dcm"))))
    ds = pydicom.dcmread(shipped("JPEG-lossy.dcm"))
    try:
        ds.pixel_array
    except Exception:  # noqa: BLE001 - no decoder here: the refusal is what we test
        with pytest.raises(OSError, match=r"compressed DICOM \(JPEG Extended.*pylibjpeg"):
            load_image(shipped("JPEG-lossy.dcm"))
    else:  # a decoder is installed: then it must be used
        assert load_image(shipped("JPEG-lossy.dcm")).mode == "L"


def test_detected_by_marker_and_bad_files(tmp_path):
    copy = tmp_path / "scan.bin"
    shutil.copy(shipped("CT_small.dcm"), copy)
    np.testing.assert_array_equal(np.asarray(load_image(copy)),
                                  np.asarray(load_image(shipped("CT_small.dcm"))))
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    with pytest.raises(OSError):
        load_image(bad)
