"""A synthetic expert-annotation task: grey "radiographs", lesions, reports and gaze.

Real radiologist gaze is credentialed data; this task exercises the same
mechanics with data anyone can make. Re-exported as
:func:`skgap.datasets.make_lesion_task`.
"""

from numbers import Integral, Real

import numpy as np
from scipy import ndimage
from sklearn.utils import Bunch, check_random_state

__all__ = ["LESION_CLASSES", "make_lesion_task"]

#: Lesion names, in class order, and the shape each is drawn with.
LESION_CLASSES = ("nodule", "cavity", "linear scar", "calcification")
_REGIONS = (("upper", "left"), ("upper", "right"), ("lower", "left"), ("lower", "right"))


def _draw_lesion(shape, cls, cy, cx, radius):
    """A soft-edged mask in [0, 1] of lesion class ``cls`` centred at (cy, cx)."""
    H, W = shape
    rr, cc = np.mgrid[0:H, 0:W] + 0.5
    dist = np.hypot(rr - cy, cc - cx)
    if cls == 0:  # a filled disc
        mask = dist <= radius
    elif cls == 1:  # a ring with a dark centre
        mask = (dist <= radius) & (dist >= 0.55 * radius)
    elif cls == 2:  # a bar at 45 degrees
        along = ((rr - cy) + (cc - cx)) / np.sqrt(2)
        across = ((rr - cy) - (cc - cx)) / np.sqrt(2)
        mask = (np.abs(along) <= radius * 1.3) & (np.abs(across) <= max(0.3 * radius, 0.8))
    else:  # a cluster of small dots
        mask = np.zeros(shape, dtype=bool)
        for dy, dx in ((-0.6, -0.6), (-0.6, 0.6), (0.6, -0.6), (0.6, 0.6)):
            mask |= np.hypot(rr - cy - dy * radius, cc - cx - dx * radius) <= 0.3 * radius + 0.5
    return ndimage.gaussian_filter(mask.astype(np.float64), 0.6)


def make_lesion_task(n_samples=200, *, image_size=64, n_classes=3, heatmaps="lesion",
                     contrast=0.35, texture=0.12, n_fixations=5, random_state=None):
    r"""Grey "radiographs" with one class-bearing lesion, reports, and gaze heatmaps.

    Each image is a smooth grey gradient plus textured noise (white noise
    blurred with a Gaussian of 1.5 pixels, amplitude ``texture``), with one
    lesion of ``contrast`` above the background at a random place in the
    central part. The class is the lesion's shape: ``nodule`` (disc),
    ``cavity`` (ring), ``linear scar`` (bar) or ``calcification`` (four
    dots). The report names the class and the lung zone the lesion is in;
    the snippet (what a radiologist says while looking) names the class.

    The heatmap simulates a radiologist's fixations: ``n_fixations``
    fixations around the lesion (jitter of half its radius, durations
    uniform in 0.2--0.8 s) turned into a map by
    :func:`skgap.encode.gaze_heatmap` with a Gaussian of the lesion's
    radius. With ``heatmaps='random'`` the same fixations are centred on a
    random place instead (the control: gaze that carries no information);
    the images, texts and labels are the same as with ``'lesion'`` for the
    same ``random_state``.

    Parameters
    ----------
    n_samples : int, default=200
    image_size : int, default=64
        Height and width in pixels.
    n_classes : int in [2, 4], default=3
    heatmaps : {'lesion', 'random'}, default='lesion'
    contrast : float, default=0.35
        Lesion brightness above the background (intensities in [0, 1]).
    texture : float, default=0.12
        Amplitude of the textured noise.
    n_fixations : int, default=5
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, size, size, 3) uint8; ``heatmaps`` (n, size, size)
        float32 with maximum 1; ``texts`` and ``snippets`` (lists of str);
        ``labels`` (n,) int; ``class_names`` (tuple of str); ``prompts``
        (one zero-shot prompt per class); ``centers`` (n, 2) float (row,
        column of each lesion).

    Notes
    -----
    Needs the torch extra for the heatmaps (:mod:`skgap.encode`); the rest
    is NumPy and SciPy.

    Examples
    --------
    >>> from skgap.datasets import make_lesion_task
    >>> data = make_lesion_task(8, image_size=32, random_state=0)
    >>> data.images.shape, data.heatmaps.shape, data.texts[0]
    ((8, 32, 32, 3), (8, 32, 32), 'chest radiograph: a nodule in the upper left zone.')
    """
    try:
        from .encode import gaze_heatmap
    except ImportError as exc:
        raise ImportError(
            "make_lesion_task draws its heatmaps with skgap.encode.gaze_heatmap, which "
            "needs the torch extra: pip install 'skgap[torch]'.", name=exc.name,
        ) from exc
    for name, value, low in (("n_samples", n_samples, 2), ("image_size", image_size, 16),
                             ("n_fixations", n_fixations, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if (isinstance(n_classes, bool) or not isinstance(n_classes, Integral)
            or n_classes not in (2, 3, 4)):
        raise ValueError(f"n_classes must be 2, 3 or 4, got {n_classes!r}.")
    if heatmaps not in ("lesion", "random"):
        raise ValueError(f"heatmaps must be 'lesion' or 'random', got {heatmaps!r}.")
    for name, value in (("contrast", contrast), ("texture", texture)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"{name} must be a number, got {value!r}.")
    if not 0 < contrast <= 1 or not 0 <= texture <= 1:
        raise ValueError(
            f"contrast must lie in (0, 1] and texture in [0, 1]; got {contrast}, {texture}."
        )
    rng = check_random_state(random_state)
    S = int(image_size)
    radius = S / 10
    labels = rng.randint(n_classes, size=n_samples)
    lo, hi = 0.2 * S, 0.8 * S
    centers = rng.uniform(lo, hi, size=(n_samples, 2))
    rr, cc = np.mgrid[0:S, 0:S] / S
    images = np.empty((n_samples, S, S, 3), dtype=np.uint8)
    texts, snippets = [], []
    for i in range(n_samples):
        tilt = rng.uniform(-0.15, 0.15, size=2)
        base = 0.4 + tilt[0] * (rr - 0.5) + tilt[1] * (cc - 0.5)
        noise = ndimage.gaussian_filter(rng.standard_normal((S, S)), 1.5)
        noise *= texture / max(noise.std(), 1e-12)
        img = base + noise + contrast * _draw_lesion((S, S), labels[i], *centers[i], radius)
        images[i] = np.clip(img * 255, 0, 255).astype(np.uint8)[..., None]
        cy, cx = centers[i]
        zone, side = _REGIONS[2 * (cy > S / 2) + (cx > S / 2)]
        name = LESION_CLASSES[labels[i]]
        texts.append(f"chest radiograph: a {name} in the {zone} {side} zone.")
        snippets.append(f"{name} here")
    # Fixations are drawn in both modes (the same stream), so that 'lesion' and
    # 'random' differ only in where the gaze is centred.
    jitter = rng.normal(scale=radius / 2, size=(n_samples, n_fixations, 2))
    durations = rng.uniform(0.2, 0.8, size=(n_samples, n_fixations))
    elsewhere = rng.uniform(lo, hi, size=(n_samples, 2))
    gaze_centres = centers if heatmaps == "lesion" else elsewhere
    heat = np.empty((n_samples, S, S), dtype=np.float32)
    for i in range(n_samples):
        pts = np.clip(gaze_centres[i] + jitter[i], 0, S)
        heat[i] = gaze_heatmap({"y": pts[:, 0], "x": pts[:, 1], "duration": durations[i]},
                               (S, S), sigma=radius, unit="pixels")
    names = LESION_CLASSES[:n_classes]
    return Bunch(
        images=images, heatmaps=heat, texts=texts, snippets=snippets, labels=labels,
        class_names=names, prompts=[f"chest radiograph: a {n}." for n in names],
        centers=centers,
    )
