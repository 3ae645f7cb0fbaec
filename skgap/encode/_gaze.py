r"""Radiologists' eye gaze as heatmaps: fixation tables, Gaussian maps, joint transforms.

The expert views of eCLIP start from where a radiologist looked while
dictating a report. Eye trackers export one row per *fixation* (a pause of
the eye): its position on the image, its start and end time or its
duration. This module

- reads such tables, with the column layouts of the public chest X-ray gaze
  sets (REFLACX and the MIMIC-CXR eye-gaze set) or columns the user names
  (:func:`read_fixations`);
- turns the fixations of one image into a heatmap at the image's resolution,
  one Gaussian per fixation weighted by its duration (:func:`gaze_heatmap`),
  or into one heatmap per report sentence from the fixation timestamps
  (:func:`sentence_heatmaps`);
- applies one random geometric transform to an image and its heatmap
  together (:class:`SynchronizedTransform`), so that the heatmap keeps
  pointing at the same anatomy after a crop, flip or rotation.
"""

from numbers import Integral, Real

import numpy as np

__all__ = [
    "SynchronizedTransform",
    "check_heatmap",
    "gaze_heatmap",
    "read_fixations",
    "sentence_heatmaps",
]

#: Column names of the public chest X-ray gaze sets, from their documentation.
#:
#: ``'reflacx'``: REFLACX (Bigolin Lanfredi et al., 2022), ``fixations.csv`` of
#: one reading: times in seconds from the start of the case, positions in
#: pixels of the original image, and the angular resolution (pixels per degree
#: of visual angle) of the screen at each fixation. ``'egd'``: the MIMIC-CXR
#: eye-gaze set (Karargyris et al., 2021), ``fixations.csv`` of all readings:
#: Gazepoint fields ``FPOGS`` (fixation start, s) and ``FPOGD`` (duration, s),
#: positions mapped to the original image in ``X_ORIGINAL`` and
#: ``Y_ORIGINAL``, one image per ``DICOM_ID``.
GAZE_LAYOUTS = {
    "reflacx": {
        "x": "average_x_position",
        "y": "average_y_position",
        "start": "timestamp_start_fixation",
        "end": "timestamp_end_fixation",
        "ppd_x": "angular_resolution_x_pixels_per_degree",
        "ppd_y": "angular_resolution_y_pixels_per_degree",
    },
    "egd": {
        "x": "X_ORIGINAL",
        "y": "Y_ORIGINAL",
        "start": "FPOGS",
        "duration": "FPOGD",
        "image_id": "DICOM_ID",
    },
}
_FIELDS = ("x", "y", "duration", "start", "end", "image_id", "ppd_x", "ppd_y")


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - exercised without pandas
        raise ImportError(
            "Reading fixation tables needs pandas: pip install 'skgap[pandas]'.", name="pandas"
        ) from exc
    return pd


def read_fixations(table, layout=None, *, x=None, y=None, duration=None, start=None,
                   end=None, image_id=None, time_scale=1.0):
    """Read a fixation table into the standard columns ``x, y, duration, start, end``.

    Parameters
    ----------
    table : path-like or pandas.DataFrame or mapping of str to array-like
        A CSV file, a data frame or a dict of columns, one row per fixation.
    layout : {'reflacx', 'egd'} or None, default=None
        The column names of a public gaze set: REFLACX's ``fixations.csv``
        (``average_x_position``, ``average_y_position``,
        ``timestamp_start_fixation``, ``timestamp_end_fixation``,
        ``angular_resolution_{x,y}_pixels_per_degree``) or the MIMIC-CXR
        eye-gaze set's ``fixations.csv`` (``'egd'``: ``X_ORIGINAL``,
        ``Y_ORIGINAL``, ``FPOGS``, ``FPOGD``, ``DICOM_ID``). ``None``: name
        the columns below.
    x, y : str, default=None
        Columns of the fixation position in pixels of the image (column
        ``x`` from the left, row ``y`` from the top). Override ``layout``.
    duration : str, default=None
        Column of the fixation duration; or give ``start`` and ``end``.
    start, end : str, default=None
        Columns of the fixation start and end times (needed for
        :func:`sentence_heatmaps`; ``end`` may be derived as start + duration).
    image_id : str, default=None
        Column naming the image each fixation belongs to, for tables of many
        readings (the MIMIC-CXR eye-gaze set's ``DICOM_ID``).
    time_scale : float, default=1.0
        Factor turning the table's time unit into seconds (``1e-3`` for
        milliseconds).

    Returns
    -------
    fixations : pandas.DataFrame
        Columns ``x``, ``y``, ``duration`` (seconds), and ``start``, ``end``
        (seconds) when the table has times; ``image_id`` when named;
        ``ppd_x``, ``ppd_y`` (pixels per degree) for REFLACX.

    Raises
    ------
    ValueError
        Unknown layout, a named column missing from the table, neither a
        duration nor start and end times, negative durations, or non-finite
        positions or times.
    """
    pd = _pandas()
    if layout is not None and (not isinstance(layout, str) or layout not in GAZE_LAYOUTS):
        raise ValueError(
            f"layout={layout!r} is not one of {sorted(GAZE_LAYOUTS)}; or pass layout=None "
            "and name the x, y and duration (or start and end) columns."
        )
    names = dict(GAZE_LAYOUTS[layout]) if layout is not None else {}
    given = dict(x=x, y=y, duration=duration, start=start, end=end, image_id=image_id)
    names.update({k: v for k, v in given.items() if v is not None})
    if (isinstance(time_scale, bool) or not isinstance(time_scale, Real)
            or not 0 < time_scale < np.inf):
        raise ValueError(f"time_scale must be a finite positive number, got {time_scale!r}.")
    if isinstance(table, pd.DataFrame):
        df = table
    elif isinstance(table, dict):
        df = pd.DataFrame(table)
    else:
        df = pd.read_csv(table)
    for need in ("x", "y"):
        if need not in names:
            raise ValueError(
                f"No column given for the fixation {need}; pass layout='reflacx' or 'egd', "
                f"or {need}='<column name>'."
            )
    if "duration" not in names and not ("start" in names and "end" in names):
        raise ValueError(
            "Fixation durations need a duration column, or start and end columns; "
            "name them (duration=..., or start=... and end=...)."
        )
    missing = [f"{k}={v!r}" for k, v in names.items() if v not in df.columns]
    if missing:
        raise ValueError(
            f"The fixation table has no column(s) {', '.join(missing)}; its columns are "
            f"{list(df.columns)}."
        )
    out = pd.DataFrame(index=df.index)
    for field in _FIELDS:
        if field in names and field != "image_id":
            col = pd.to_numeric(df[names[field]], errors="coerce").to_numpy(np.float64)
            if not np.all(np.isfinite(col)):
                bad = np.flatnonzero(~np.isfinite(col))[:5].tolist()
                raise ValueError(
                    f"Column {names[field]!r} ({field}) holds missing or non-numeric values "
                    f"(rows {bad}); drop those fixations first."
                )
            out[field] = col
    for field in ("duration", "start", "end"):
        if field in out:
            out[field] *= time_scale
    if "duration" not in out:
        out["duration"] = out["end"] - out["start"]
    elif "start" in out and "end" not in out:
        out["end"] = out["start"] + out["duration"]
    if np.any(out["duration"].to_numpy() < 0):
        raise ValueError("Some fixations end before they start (negative durations).")
    if "image_id" in names:
        out["image_id"] = df[names["image_id"]].to_numpy()
    return out.reset_index(drop=True)


def _check_shape(shape):
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
                       for s in shape)):
        raise ValueError(f"shape must be (height, width) in pixels, got {shape!r}.")
    return int(shape[0]), int(shape[1])


def _columns(fixations):
    """``x, y, duration`` and optional ``ppd_x, ppd_y`` as float64 arrays."""
    get = fixations.get if hasattr(fixations, "get") else None
    if get is None:
        raise TypeError(
            "fixations must be a table with columns x, y, duration (a pandas DataFrame "
            f"from read_fixations, or a dict of arrays), got {type(fixations).__name__}."
        )
    cols = {}
    for key in ("x", "y", "duration", "ppd_x", "ppd_y"):
        value = get(key)
        if value is None:
            if key in ("x", "y"):
                raise ValueError(f"fixations has no {key!r} column.")
            continue
        cols[key] = np.asarray(value, dtype=np.float64).ravel()
    n = cols["x"].size
    if any(v.size != n for v in cols.values()):
        raise ValueError("The fixation columns have different lengths.")
    if "duration" not in cols:
        cols["duration"] = np.ones(n)
    return cols


def gaze_heatmap(fixations, shape, *, sigma=1.0, unit="degrees", pixels_per_degree=None,
                 outside="raise", normalize="max"):
    r"""One image's fixations as a heatmap: a duration-weighted sum of Gaussians.

    .. math::

        H(r, c) = \sum_k d_k \exp\Big(-\frac{(c - x_k)^2}{2\sigma_{x,k}^2}
            - \frac{(r - y_k)^2}{2\sigma_{y,k}^2}\Big)

    over fixations :math:`k` at column :math:`x_k`, row :math:`y_k`, of
    duration :math:`d_k`, evaluated at every pixel centre. The Gaussian is
    separable, so the map is one matrix product
    :math:`G_y^\top \operatorname{diag}(d)\, G_x` of an
    :math:`n \times H` and an :math:`n \times W` factor, never an
    :math:`n \times H \times W` array.

    Parameters
    ----------
    fixations : pandas.DataFrame or mapping
        Columns ``x``, ``y`` (pixels) and ``duration`` (weights; all 1 when
        absent), as :func:`read_fixations` returns; optional ``ppd_x``,
        ``ppd_y`` (pixels per degree, per fixation).
    shape : (int, int)
        ``(height, width)`` of the image the positions refer to.
    sigma : float, default=1.0
        Width of each Gaussian, in ``unit``. One degree of visual angle is
        about the fovea's extent, the common choice for gaze maps.
    unit : {'degrees', 'pixels'}, default='degrees'
        ``'degrees'`` converts with ``pixels_per_degree`` or else the
        table's ``ppd_x``, ``ppd_y`` columns (REFLACX records them).
    pixels_per_degree : float or (float, float), default=None
        The screen's angular resolution on the image (x, y), overriding the
        table's columns.
    outside : {'raise', 'drop'}, default='raise'
        What to do with fixations outside the image (off-image glances, or a
        table that belongs to another image size).
    normalize : {'max', 'sum'} or None, default='max'
        Scale the map to a maximum of 1, to a sum of 1, or not at all.

    Returns
    -------
    heatmap : ndarray of shape (height, width), float32
        Non-negative; all zero when no fixation is left (``outside='drop'``).
    """
    H, W = _check_shape(shape)
    cols = _columns(fixations)
    if unit not in ("degrees", "pixels"):
        raise ValueError(f"unit must be 'degrees' or 'pixels', got {unit!r}.")
    if outside not in ("raise", "drop"):
        raise ValueError(f"outside must be 'raise' or 'drop', got {outside!r}.")
    if normalize not in ("max", "sum", None):
        raise ValueError(f"normalize must be 'max', 'sum' or None, got {normalize!r}.")
    # An infinite sigma would flatten every Gaussian into a uniform map.
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not 0 < sigma < np.inf:
        raise ValueError(f"sigma must be a finite positive number, got {sigma!r}.")
    x, y, d = cols["x"], cols["y"], cols["duration"]
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(d))):
        raise ValueError("fixations hold non-finite positions or durations.")
    if np.any(d < 0):
        raise ValueError("fixation durations must be >= 0.")
    n = x.size
    if unit == "pixels":
        sx = sy = np.full(n, float(sigma))
    else:
        if pixels_per_degree is not None:
            try:
                ppd = np.asarray(pixels_per_degree, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                ppd = np.empty(0)
            if ppd.size not in (1, 2):
                raise ValueError(
                    "pixels_per_degree must be one number or an (x, y) pair of numbers, got "
                    f"{pixels_per_degree!r}."
                )
            ppd = np.broadcast_to(ppd, (2,))
            px, py = np.full(n, ppd[0]), np.full(n, ppd[1])
        elif "ppd_x" in cols and "ppd_y" in cols:
            px, py = cols["ppd_x"], cols["ppd_y"]
        else:
            raise ValueError(
                "unit='degrees' needs the screen's angular resolution: pass "
                "pixels_per_degree=..., or a table with ppd_x and ppd_y columns "
                "(REFLACX's), or unit='pixels'."
            )
        if not (np.all(np.isfinite(px)) and np.all(px > 0)
                and np.all(np.isfinite(py)) and np.all(py > 0)):
            raise ValueError("pixels_per_degree must be positive and finite.")
        sx, sy = sigma * px, sigma * py
    inside = (x >= 0) & (x <= W) & (y >= 0) & (y <= H)
    if not np.all(inside):
        if outside == "raise":
            bad = np.flatnonzero(~inside)
            raise ValueError(
                f"{bad.size} fixation(s) lie outside the {H}x{W} image (first: index "
                f"{bad[0]} at x={x[bad[0]]:.1f}, y={y[bad[0]]:.1f}); check that the table "
                "belongs to this image and its resolution, or pass outside='drop'."
            )
        x, y, d, sx, sy = x[inside], y[inside], d[inside], sx[inside], sy[inside]
    # Pixel centres at integer + 0.5, positions in continuous pixel coordinates.
    cols_px = np.arange(W) + 0.5
    rows_px = np.arange(H) + 0.5
    Gx = np.exp(-0.5 * ((cols_px[None, :] - x[:, None]) / sx[:, None]) ** 2)
    Gy = np.exp(-0.5 * ((rows_px[None, :] - y[:, None]) / sy[:, None]) ** 2)
    heat = (Gy * d[:, None]).T @ Gx
    total = heat.max() if normalize == "max" else heat.sum()
    if normalize is not None and total > 0:
        heat = heat / total
    return heat.astype(np.float32)


def sentence_heatmaps(fixations, sentences, shape, *, lookback=2.0, **heatmap_params):
    r"""One heatmap per report sentence, from the fixations made while it was spoken.

    A radiologist looks at a finding shortly before and while naming it, so
    sentence :math:`j` spoken over :math:`[a_j, b_j]` gets the fixations
    that overlap :math:`[a_j - \ell, b_j]`, with lookback :math:`\ell`.
    eCLIP pairs such heatmaps with the sentence (a transcript snippet).

    Parameters
    ----------
    fixations : pandas.DataFrame
        With ``start`` and ``end`` columns (:func:`read_fixations`).
    sentences : sequence of (float, float)
        Start and end time of each sentence, in the table's seconds (REFLACX's
        ``timestamps_transcription.csv`` gives them per word).
    shape : (int, int)
    lookback : float, default=2.0
        Seconds before a sentence whose fixations still count.
    **heatmap_params
        Passed to :func:`gaze_heatmap`.

    Returns
    -------
    heatmaps : ndarray of shape (n_sentences, height, width), float32
    n_fixations : ndarray of shape (n_sentences,), int
        Fixations behind each map; a sentence with none has an all-zero map,
        which the trainer refuses, so drop it before training.
    """
    get = getattr(fixations, "get", None)
    if get is None or get("start") is None or get("end") is None:
        raise ValueError(
            "sentence_heatmaps needs fixation start and end times; read the table with "
            "start=... and end=... (or duration=...) columns."
        )
    # ``not >= 0`` also refuses NaN, which would select no fixation for any sentence.
    if isinstance(lookback, bool) or not isinstance(lookback, Real) or not lookback >= 0:
        raise ValueError(f"lookback must be a number >= 0, got {lookback!r}.")
    try:
        times = np.asarray(sentences, dtype=np.float64)
    except (TypeError, ValueError):
        times = np.empty(0)
    if (times.ndim != 2 or times.shape[1] != 2 or not np.all(np.isfinite(times))
            or np.any(times[:, 1] < times[:, 0])):
        raise ValueError(
            "sentences must be a sequence of finite (start, end) times with start <= end."
        )
    start = np.asarray(get("start"), dtype=np.float64).ravel()
    end = np.asarray(get("end"), dtype=np.float64).ravel()
    cols = {k: np.asarray(get(k)).ravel() for k in ("x", "y", "duration", "ppd_x", "ppd_y")
            if get(k) is not None}
    if any(v.size != start.size for v in [end, *cols.values()]):
        raise ValueError("The fixation columns (start, end, x, y, ...) have different lengths.")
    H, W = _check_shape(shape)
    out = np.zeros((len(times), H, W), dtype=np.float32)
    counts = np.zeros(len(times), dtype=int)
    for j, (a, b) in enumerate(times):
        keep = (end >= a - lookback) & (start <= b)
        counts[j] = int(keep.sum())
        if counts[j]:
            out[j] = gaze_heatmap({k: v[keep] for k, v in cols.items()}, (H, W),
                                  **heatmap_params)
    return out, counts


def check_heatmap(heatmap, image_shape=None, *, name="heatmap"):
    """Validate one heatmap: 2-D, finite, non-negative, not all zero, the image's size.

    Parameters
    ----------
    heatmap : array-like of shape (height, width) or (1, height, width)
    image_shape : (int, int), default=None
        The image's ``(height, width)``; ``None`` skips the size check.
    name : str, default='heatmap'
        How the heatmap is called in error messages.

    Returns
    -------
    heatmap : ndarray of shape (height, width), float32
    """
    h = np.asarray(heatmap)
    if h.ndim == 3 and h.shape[0] == 1:
        h = h[0]
    if h.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (height, width) array, got shape {h.shape}.")
    if not np.issubdtype(h.dtype, np.number) or np.issubdtype(h.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {h.dtype}.")
    h = h.astype(np.float32, copy=False)
    if image_shape is not None:
        try:
            image_shape = _check_shape(tuple(image_shape))
        except (TypeError, ValueError):
            raise ValueError(
                f"image_shape must be the image's (height, width) in pixels, got {image_shape!r}."
            ) from None
    if image_shape is not None and tuple(h.shape) != tuple(image_shape):
        raise ValueError(
            f"{name} has size {h.shape[0]}x{h.shape[1]} but its image is "
            f"{image_shape[0]}x{image_shape[1]}; make it at the image's resolution "
            "(gaze_heatmap(..., shape=image size))."
        )
    if not np.all(np.isfinite(h)):
        raise ValueError(f"{name} holds NaN or infinite values.")
    if np.any(h < 0):
        raise ValueError(f"{name} has negative values; gaze heatmaps are non-negative.")
    if not np.any(h > 0):
        raise ValueError(
            f"{name} is all zero (no fixation on the image); leave this pair's heatmap "
            "out (None) instead."
        )
    return h


class SynchronizedTransform:
    """Apply one random geometric transform to an image and its heatmap together.

    The heatmap rides along as an extra channel of the image tensor, so any
    :mod:`torchvision.transforms.v2` geometric transform (resize, crop, flip,
    rotation, affine) draws its random parameters once and moves both by the
    same amount, with the same (bilinear or bicubic) interpolation. Photometric
    transforms (colour jitter, normalisation) would change the heatmap too:
    apply them to the image afterwards.

    Parameters
    ----------
    transform : callable
        A torchvision v2 transform (or ``v2.Compose``) of tensors
        ``(channels, height, width)``.

    Examples
    --------
    >>> import numpy as np
    >>> from torchvision.transforms import v2
    >>> from skgap.encode import SynchronizedTransform
    >>> t = SynchronizedTransform(v2.RandomHorizontalFlip(p=1.0))
    >>> image = np.zeros((4, 6, 3), dtype=np.uint8); image[:, 0] = 255
    >>> heat = np.zeros((4, 6), dtype=np.float32); heat[:, 0] = 1
    >>> img, h = t(image, heat)
    >>> float(img[0, 0, -1]), float(h[0, -1])
    (1.0, 1.0)
    """

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image, heatmap):
        """Return ``(image, heatmap)`` as tensors ``(C, H', W')`` in [0, 1] and ``(H', W')``.

        ``image`` is anything :func:`~skgap.encode.load_image` reads (a
        file, a DICOM, a PIL image, a uint8 array); ``heatmap`` a 2-D array
        of the image's size.
        """
        import torch
        from torchvision.transforms.v2 import functional as TF
        from torchvision import tv_tensors

        from ._items import load_image

        if not callable(self.transform):
            raise TypeError(
                "transform must be a callable torchvision v2 transform, got "
                f"{type(self.transform).__name__}."
            )
        img = load_image(image)
        img = img.convert("RGB") if img.mode != "RGB" else img
        x = TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True)
        h = torch.from_numpy(check_heatmap(heatmap, tuple(x.shape[1:])).copy())
        stacked = tv_tensors.Image(torch.cat([x, h[None]], dim=0))
        out = self.transform(stacked)
        if not isinstance(out, torch.Tensor) or out.ndim != 3:
            raise TypeError(
                "The transform must return one (channels, height, width) tensor, got "
                f"{type(out).__name__}{tuple(getattr(out, 'shape', ()))}."
            )
        if out.shape[0] != x.shape[0] + 1:
            raise ValueError(
                "The transform changed the number of channels; SynchronizedTransform "
                "takes geometric transforms only."
            )
        return out[:-1].as_subclass(torch.Tensor), out[-1].as_subclass(torch.Tensor).clamp_min(0)

    def __repr__(self):
        return f"SynchronizedTransform({self.transform!r})"
