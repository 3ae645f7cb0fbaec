r"""DICOM images to display-ready pixels, the way a radiologist's viewer shows them.

The pixel pipeline of the DICOM standard (PS3.3 C.11, PS3.4 N.2), in order:

1. **modality LUT** -- stored values :math:`s` to physical units (Hounsfield
   units for CT): :math:`x = m\,s + b` with ``RescaleSlope`` :math:`m` and
   ``RescaleIntercept`` :math:`b` (or a Modality LUT Sequence);
2. **VOI LUT** -- the window the study was meant to be read in. With
   ``WindowCenter`` :math:`c` and ``WindowWidth`` :math:`w` (the first pair
   when several are given), the standard's linear function

   .. math::

       y = \begin{cases}
           0 & x \le c - \tfrac12 - \tfrac{w-1}{2} \\
           1 & x > c - \tfrac12 + \tfrac{w-1}{2} \\
           \dfrac{x - (c - \tfrac12)}{w - 1} + \tfrac12 & \text{otherwise;}
           \end{cases}

   with a VOI LUT Sequence, its table, scaled to :math:`[0, 1]` by its
   output range; with neither, min--max scaling
   :math:`y = (x - \min x) / (\max x - \min x)`;
3. **presentation** -- ``MONOCHROME1`` images show low values bright, so
   they are inverted, :math:`y \mapsto 1 - y` (on the 8-bit codes,
   :math:`255 - q`, exactly): bone is bright in both photometric
   interpretations;
4. **output** -- 8-bit codes :math:`q = \operatorname{round}(255\,y)` (PIL
   mode ``'L'``), or :math:`y` itself as float32 (mode ``'F'``) for models
   that take more than 8 bits.

Colour images (``RGB``, ``YBR_*``) are converted to 8-bit RGB. Multi-frame
files are refused unless a frame is chosen. Compressed transfer syntaxes are
decoded by the handlers pydicom finds (pillow, pylibjpeg, GDCM); when none can
decode one, the error names the transfer syntax and the packages to install.
"""

import os

import numpy as np
from PIL import Image

__all__ = ["is_dicom", "read_dicom"]

_SUFFIXES = (".dcm", ".dicom", ".dic")


def is_dicom(path):
    """Whether ``path`` is a DICOM file: a DICOM suffix or the ``DICM`` marker at byte 128."""
    if os.fspath(path).lower().endswith(_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _first(value):
    """The first of a multi-valued DICOM element, as a float."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _window(x, center, width):
    """The DICOM linear VOI function (PS3.3 C.11.2.1.2.1), into [0, 1]."""
    if width < 1:
        raise ValueError(f"WindowWidth {width:g} is below 1 (the standard requires >= 1).")
    if width == 1:
        return (x > center - 0.5).astype(np.float32)
    y = (x - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def _min_max(x):
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def _decode(ds, path):
    try:
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom's handlers raise many types
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        if syntax is not None and getattr(syntax, "is_compressed", False):
            raise OSError(
                f"compressed DICOM ({name}) that no installed decoder can read; install one "
                "of pylibjpeg with pylibjpeg-libjpeg/-openjpeg, or python-gdcm "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from exc
        raise OSError(
            f"cannot decode the DICOM pixel data ({type(exc).__name__}: {exc})"
        ) from exc


def read_dicom(path, *, frame=None, output="uint8"):
    """Read one DICOM image as a PIL image, windowed as in the module notes.

    Parameters
    ----------
    path : path-like
    frame : int, default=None
        Which frame of a multi-frame file to take; ``None`` refuses
        multi-frame files.
    output : {'uint8', 'float'}, default='uint8'
        8-bit codes (PIL mode ``'L'``; ``'RGB'`` for colour) or float32 values
        in :math:`[0, 1]` (mode ``'F'``; grey-scale only).

    Returns
    -------
    image : PIL.Image.Image

    Raises
    ------
    OSError
        Not a DICOM file, no pixel data, a multi-frame file without
        ``frame``, or a compressed transfer syntax no handler decodes.
    ImportError
        pydicom is missing (``pip install 'skgap[dicom]'``).
    """
    from ..io._errors import require

    require("pydicom", "reading DICOM images")
    import pydicom
    from pydicom.errors import InvalidDicomError

    if output not in ("uint8", "float"):
        raise ValueError(f"output must be 'uint8' or 'float', got {output!r}.")
    try:
        ds = pydicom.dcmread(path, force=not is_dicom(path) or None)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise OSError(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise OSError("the DICOM file holds no pixel data (a report or structured document?)")
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if n_frames > 1 and frame is None:
        raise OSError(
            f"a multi-frame DICOM ({n_frames} frames); choose one with frame=i "
            "(load_image(path, frame=i)) or export the frames as separate files"
        )
    if frame is not None and not 0 <= frame < n_frames:
        raise OSError(f"frame {frame} does not exist; the file has {n_frames} frame(s)")
    arr = _decode(ds, path)
    if n_frames > 1:
        arr = arr[frame]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        # pydicom returns YBR_* pixel data converted to RGB already.
        if arr.dtype != np.uint8:
            arr = np.round(_min_max(arr.astype(np.float64)) * 255).astype(np.uint8)
        if output == "float":
            raise ValueError("output='float' is for grey-scale images; this one is colour.")
        return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    x = apply_modality_lut(arr, ds).astype(np.float64, copy=False)
    if "VOILUTSequence" in ds:
        # LUT entries are indexed by integer input values.
        lut = apply_voi_lut(np.round(x).astype(np.int64), ds, index=0, prefer_lut=True)
        lut = lut.astype(np.float64)
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        y = np.clip(lut / (2.0**bits - 1.0), 0.0, 1.0).astype(np.float32)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        y = _window(x, _first(ds.WindowCenter), _first(ds.WindowWidth))
    else:
        y = _min_max(x)
    inverted = photometric == "MONOCHROME1"
    if output == "float":
        return Image.fromarray(1.0 - y if inverted else y, mode="F")
    q = np.round(y * 255.0).astype(np.uint8)
    if inverted:
        q = 255 - q
    return Image.fromarray(q, mode="L")
