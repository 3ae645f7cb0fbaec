"""The user's images and texts: accepted forms, decoding, checks, cache keys.

An image is a path (``str`` or :class:`os.PathLike`), a PIL image, or a
``uint8`` array of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
``(H, W, 4)``. A text is a non-blank ``str``. Every problem with one item is
raised as an exception whose message says what is wrong with it; the encoder
turns it into a :class:`BadItemError` naming the item's index, or skips the
item, per its ``on_error`` policy.
"""

import hashlib
import os
from collections.abc import Mapping
from numbers import Integral

import numpy as np
from PIL import Image
from sklearn.utils._param_validation import StrOptions, validate_params

from .._core._validation import Interval

__all__ = ["BadItemError", "load_image"]

# PIL modes of images deeper than 8 bits (16-bit PNG/TIFF X-rays, float TIFFs).
_DEEP_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class BadItemError(ValueError):
    """One input item cannot be encoded; the message names its index and source.

    Parameters
    ----------
    modality : {'image', 'text'}
        Which kind of item failed.
    index : int
        Position of the item in the input.
    source : str
        A short description of the item (its path, or its type and shape).
    reason : str
        What is wrong with it.
    hint : str, default=''
        Advice appended to the message.

    Attributes
    ----------
    modality : {'image', 'text'}
        Which kind of item failed.
    index : int
        Position of the item in the input.
    source : str
        A short description of the item (its path, or its type and shape).
    reason : str
        What is wrong with it.
    """

    def __init__(self, modality, index, source, reason, *, hint=""):
        self.modality = modality
        self.index = int(index)
        self.source = source
        self.reason = reason
        super().__init__(f"{modality} {self.index} ({source}): {reason}{hint}")


def is_path(item):
    return isinstance(item, (str, os.PathLike))


def describe(item):
    """A short, safe description of an item for error messages."""
    if is_path(item):
        return repr(os.fspath(item))
    if isinstance(item, Image.Image):
        return f"PIL image {item.size[0]}x{item.size[1]} {item.mode}"
    if isinstance(item, np.ndarray):
        return f"{item.dtype} array of shape {item.shape}"
    text = repr(item)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_8bit(img):
    """Scale a deep (16-bit / float) image to 8 bits by its own value range.

    PIL's ``convert('RGB')`` clips such images at 255, which turns a 12- or
    16-bit radiograph white; a min-max window keeps its contrast.
    """
    arr = np.asarray(img, dtype=np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return Image.fromarray(((arr - lo) * scale).round().astype(np.uint8), mode="L")


@validate_params(
    {
        "item": "no_validation",
        "frame": [Interval(Integral, 0, None, closed="left"), None],
        "output": [StrOptions({"uint8", "float"})],
    },
    prefer_skip_nested_validation=True,
)
def load_image(item, *, frame=None, output="uint8"):
    r"""Return ``item`` as a PIL image ready for a model's preprocessing.

    Both encoders read every image through this function.

    Parameters
    ----------
    item : path-like, PIL image or uint8 array
        A PNG/JPEG/TIFF/... file (anything PIL opens), a DICOM file (suffix
        ``.dcm``/``.dicom`` or the ``DICM`` marker; needs ``skgap[dicom]``),
        a PIL image, or a uint8 array of shape ``(H, W)``, ``(H, W, 1)``,
        ``(H, W, 3)`` or ``(H, W, 4)``.
    frame : int, default=None
        The frame of a multi-frame DICOM file; ``None`` refuses such files.
    output : {'uint8', 'float'}, default='uint8'
        For DICOM: 8-bit codes, or float32 values in :math:`[0, 1]` (PIL mode
        ``'F'``) for models that take more than 8 bits.

    Returns
    -------
    image : PIL.Image.Image

    Raises
    ------
    FileNotFoundError, OSError
        The path is missing or not a readable image; a multi-frame DICOM
        without ``frame``; a compressed DICOM no installed decoder reads.
    TypeError, ValueError
        The item is not an image in one of the accepted forms.

    Notes
    -----
    A DICOM file goes through the standard's pixel pipeline: rescale slope
    and intercept, then its VOI LUT or window centre/width (else min--max
    scaling), ``MONOCHROME1`` inverted so that bone is bright in both
    photometric interpretations (see ``skgap.encode._dicom``). Other images
    deeper than 8 bits (16-bit PNG/TIFF radiographs) are scaled to 8 bits by
    their own min--max range, since PIL would clip them at 255.

    Paths are opened and decoded here (not lazily later), so a truncated or
    corrupt file fails now, with its path in the message.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from skgap.encode import load_image
    >>> img = load_image(get_testdata_file("CT_small.dcm"))
    >>> img.mode, img.size
    ('L', (128, 128))
    """
    if is_path(item):
        path = os.fspath(item)
        if not os.path.isfile(path):
            raise FileNotFoundError("no such file")
        from ._dicom import is_dicom, read_dicom

        if is_dicom(path):
            return read_dicom(path, frame=frame, output=output)
        try:
            with Image.open(path) as img:
                img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise OSError(f"cannot be read as an image ({type(exc).__name__}: {exc})") from exc
    elif isinstance(item, Image.Image):
        img = item
    elif isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise TypeError(
                f"image arrays must be uint8 (0-255), got {item.dtype}; scale the pixels "
                "to 0-255 and cast, or pass the file path."
            )
        arr = item[..., 0] if item.ndim == 3 and item.shape[2] == 1 else item
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            raise ValueError(
                f"image arrays must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                f"got {item.shape}."
            )
        if min(arr.shape[:2]) < 1:
            raise ValueError(f"image array has no pixels (shape {item.shape}).")
        img = Image.fromarray(np.ascontiguousarray(arr))
    else:
        raise TypeError(
            f"an image must be a file path, a PIL image or a uint8 array, got "
            f"{type(item).__name__}."
        )
    return _to_8bit(img) if img.mode in _DEEP_MODES else img


def check_text(item):
    """Return ``item`` if it is a usable text; raise otherwise."""
    if not isinstance(item, str):
        raise TypeError(f"a text must be a str, got {type(item).__name__}")
    if not item.strip():
        raise ValueError("the text is empty")
    return item


def image_key(item):
    """Cache key of an image: its path, size and modification time, or its pixels.

    Returns 32 hexadecimal ASCII bytes (128 bits of SHA-256), never holding a
    zero byte, so it survives NumPy's fixed-width ``S`` dtype unchanged.

    Raises
    ------
    OSError
        The path cannot be examined (the image is then a bad item).
    """
    h = hashlib.sha256()
    if is_path(item):
        path = os.path.realpath(os.fspath(item))
        st = os.stat(path)
        h.update(f"path\0{path}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    elif isinstance(item, Image.Image):
        h.update(f"pil\0{item.mode}\0{item.size}\0".encode())
        h.update(item.tobytes())
    elif isinstance(item, np.ndarray):
        h.update(f"array\0{item.dtype.str}\0{item.shape}\0".encode())
        h.update(np.ascontiguousarray(item).tobytes())
    else:
        raise TypeError(f"cannot key an image of type {type(item).__name__}")
    return h.hexdigest()[:32].encode("ascii")


def text_key(text):
    """Cache key of a text: a digest of its UTF-8 bytes (see :func:`image_key`)."""
    return hashlib.sha256(b"text\0" + text.encode("utf-8")).hexdigest()[:32].encode("ascii")


def as_item_list(items, modality):
    """A list of items from a sequence (or, for images, a 4-D uint8 array)."""
    if is_path(items) or isinstance(items, (bytes, Image.Image)):
        raise TypeError(
            f"expected a sequence of {modality}s, got a single {type(items).__name__}; "
            f"wrap it in a list."
        )
    if isinstance(items, np.ndarray):
        if modality == "image" and items.dtype == np.uint8 and items.ndim == 4:
            return list(items)  # a stack of (H, W, C) images
        if items.ndim != 1:
            raise ValueError(
                f"expected a 1-D sequence of {modality}s, got an array of shape {items.shape}"
                + (" (a stack of images must be uint8 of shape (n, H, W, C))."
                   if modality == "image" else ".")
            )
        return items.tolist()
    if hasattr(items, "tolist") and hasattr(items, "iloc"):  # a pandas Series
        return items.tolist()
    try:
        return list(items)
    except TypeError:
        raise TypeError(
            f"expected a sequence of {modality}s, got {type(items).__name__}."
        ) from None


def split_pairs(X):
    """Split a table of (image, text) pairs into a list of images and one of texts.

    Accepted tables: a pandas DataFrame with columns ``'image'`` and ``'text'``
    (or exactly two columns, image first); a mapping with keys ``'image'`` and
    ``'text'``; an object array of shape ``(n, 2)``; a sequence of
    ``(image, text)`` pairs.
    """
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        cols = list(X.columns)
        if "image" in cols and "text" in cols:
            images, texts = X["image"].tolist(), X["text"].tolist()
        elif len(cols) == 2:
            images, texts = X.iloc[:, 0].tolist(), X.iloc[:, 1].tolist()
        else:
            raise ValueError(
                f"a DataFrame of pairs needs columns 'image' and 'text' (or exactly two "
                f"columns, image first); got columns {cols}."
            )
    elif isinstance(X, Mapping):
        missing = [k for k in ("image", "text") if k not in X]
        if missing:
            raise ValueError(
                f"a mapping of pairs needs keys 'image' and 'text'; missing {missing}."
            )
        images, texts = as_item_list(X["image"], "image"), as_item_list(X["text"], "text")
    elif isinstance(X, np.ndarray):
        if X.ndim != 2 or X.shape[1] != 2 or X.dtype.kind not in "OUS":
            hint = (
                " It looks like embeddings already; OpenCLIPEncoder turns images and "
                "texts into embeddings."
                if X.dtype.kind == "f"
                else ""
            )
            raise ValueError(
                f"an array of pairs must be an object/str array of shape (n, 2) holding "
                f"(image, text) rows; got dtype {X.dtype} and shape {X.shape}.{hint}"
            )
        images, texts = list(X[:, 0]), X[:, 1].tolist()
    elif is_path(X) or isinstance(X, bytes):
        raise TypeError(
            f"expected a table of (image, text) pairs, got a single {type(X).__name__}."
        )
    else:
        try:
            rows = list(X)
        except TypeError:
            raise TypeError(
                f"expected a table of (image, text) pairs (DataFrame, mapping, (n, 2) array "
                f"or sequence of pairs), got {type(X).__name__}."
            ) from None
        for i, row in enumerate(rows):
            if is_path(row) or not hasattr(row, "__len__") or len(row) != 2:
                raise ValueError(
                    f"row {i} of the pairs is {describe(row)}, not an (image, text) pair."
                )
        images = [row[0] for row in rows]
        texts = [row[1] for row in rows]
    if len(images) != len(texts):
        raise ValueError(f"got {len(images)} images but {len(texts)} texts; pairs need both.")
    return images, texts
