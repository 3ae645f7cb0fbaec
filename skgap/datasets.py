"""Synthetic paired embeddings with a controlled cone effect and modality gap,
and a loader for the real CLIP embeddings shipped beside the project."""

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy import optimize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions, validate_params

from ._core._validation import Interval

from ._lesions import make_lesion_task

__all__ = ["make_paired_embeddings", "make_lesion_task", "load_coco_clip", "PRESETS"]

#: Presets of :func:`make_paired_embeddings`. Each one fixes the cone sizes
#: (mean resultant lengths) and the centroid gap of the synthetic data; the
#: embeddings themselves remain synthetic.
PRESETS = {
    "coco-clip": {
        "image_concentration": 0.730,
        "text_concentration": 0.718,
        "gap": 0.851,
        # Spectrum, measured on the same embeddings: PC 2 of the pooled unit rows holds 5.7%
        # of the variance (6.0% here at d = 64), PC 1 of each modality 9.7-9.9% (8.5-9.3%);
        # the cosine with the own cone axis has std 0.065 (image) and 0.081 (text).
        "spectrum_decay": 0.6,
        "axis_spread": (0.2, 0.245),
        "source": (
            "Measured on the 500 COCO val2017 image-caption pairs embedded with "
            "OpenAI CLIP ViT-B/16 (Liang et al. 2022's features_clip.npy): cone sizes, gap, "
            "share of variance of the top principal components and spread about each cone axis."
        ),
    },
    "mimic-clip": {
        "image_concentration": 0.970,
        "text_concentration": 0.915,
        # Table 1 reports R only; the gap keeps the angle between the two cone
        # axes measured for CLIP on COCO (cos = 0.31), an assumption.
        "gap": 1.109,
        # Not published either: the spectrum of CLIP on COCO, and a spread about each cone
        # axis in the same proportion to 1 - R as on COCO (std 0.007 image, 0.025 text).
        "spectrum_decay": 0.6,
        "axis_spread": (0.125, 0.165),
        "source": (
            "R_image = 0.970 and R_text = 0.915 from Table 1 of Restrepo et al. "
            "(2026), CLIP on MIMIC-CXR; the gap, the principal-component spectrum and the "
            "spread about each cone axis are not published there and are carried over from "
            "CLIP on COCO (the cone-axis angle, the decay of the spectrum, the spread "
            "relative to 1 - R)."
        ),
    },
}


def _solve_axis_weight(R, g, C, name):
    """Axis weight ``a`` with ``||E[(a g_i u + c_i) / n_i]|| = R``, and the two mean parts.

    Returns ``a``, ``E[a g_i / n_i]`` and ``E[c_i / n_i]``.

    ``R(a)^2 = E[a g / n]^2 + ||E[c / n]||^2`` grows from ``||E[c]||^2`` (a = 0) to 1; it is
    solved to float precision by Brent's method (in closed form when every ``g_i = 1``).
    """
    cbar0 = C.mean(axis=0)
    if R**2 <= cbar0 @ cbar0:
        raise ValueError(
            f"{name}={R} is below what the content alone gives ({np.sqrt(cbar0 @ cbar0):.3f}); "
            "raise it or lower class_sep."
        )

    def parts(a):
        inv = 1 / np.sqrt((a * g) ** 2 + 1)
        m = float(np.mean(a * g * inv))
        cbar = (inv[:, None] * C).mean(axis=0)
        return m, cbar

    def excess(a):
        m, cbar = parts(a)
        return m * m + cbar @ cbar - R * R

    if np.all(g == 1):
        # The closed form of equal weights: R^2 = (a^2 + ||E c||^2) / (a^2 + 1).
        a = np.sqrt((R**2 - cbar0 @ cbar0) / (1 - R**2))
    else:
        hi = 1.0
        while excess(hi) < 0:
            hi *= 2
            if hi > 1e8:
                raise ValueError(f"{name}={R} cannot be reached with this axis spread.")
        a = optimize.brentq(excess, 0.0, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
    m, cbar = parts(a)
    return a, m, cbar


def _nonnegative_finite():
    return [Interval(Real, 0, np.inf, closed="left")]


@validate_params(
    {
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "n_features": [Interval(Integral, 8, None, closed="left")],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "multilabel": ["boolean"],
        "image_concentration": [Interval(Real, 0, 1, closed="neither")],
        "text_concentration": [Interval(Real, 0, 1, closed="neither")],
        "gap": _nonnegative_finite(),
        "class_sep": _nonnegative_finite(),
        "noise": _nonnegative_finite(),
        "spectrum_decay": [Interval(Real, 0, 4, closed="both"), None],
        "axis_spread": [Interval(Real, 0, 2, closed="both"), "array-like", None],
        "preset": [StrOptions(set(PRESETS)), None],
        "dtype": "no_validation",
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_paired_embeddings(
    n_samples=1000,
    n_features=64,
    n_classes=2,
    *,
    multilabel=False,
    image_concentration=0.9,
    text_concentration=0.9,
    gap=0.8,
    class_sep=0.3,
    noise=2.0,
    spectrum_decay=None,
    axis_spread=None,
    preset=None,
    dtype=np.float32,
    random_state=None,
    return_texts=False,
):
    r"""Generate paired image/text embeddings with a cone effect and a gap.

    Like :func:`sklearn.datasets.make_classification`, for paired embeddings
    on the unit sphere. Returns ``X = [V | T]`` and labels ``y``.

    **Generative model.** Each item :math:`i` has two private class scores
    :math:`a_i, b_i \sim \mathcal N(0, I_K)`: :math:`a_i` is visible only in
    the image, :math:`b_i` only in the text, and the label depends on both,

    .. math:: y_i = \arg\max_k (a_{ik} + b_{ik})
        \quad\text{(multi-label: } y_{ik} = [a_{ik} + b_{ik} > 0.74]\text{)},

    so that fusing both modalities beats either alone. A shared semantic code
    :math:`s_i = \text{class\_sep}\cdot p_{y_i} + z_i` (class prototype plus an
    item-specific part) is seen by both modalities and makes matched pairs
    closer than mismatched ones. The image content is
    :math:`c^V_i = [s_i + \epsilon, W_V a_i + \epsilon, 0]` and the text content
    :math:`c^T_i = [s_i + \epsilon', 0, W_T b_i + \epsilon']` with isotropic
    noise of scale ``noise``; contents are scaled to unit norm and placed
    orthogonal to two cone axes :math:`u_V, u_T`. The embeddings are

    .. math:: \hat v_i = \frac{\alpha_V u_V + c^V_i}{\sqrt{\alpha_V^2 + 1}},
        \qquad
        \hat t_i = \frac{\alpha_T u_T + c^T_i}{\sqrt{\alpha_T^2 + 1}},

    followed by one random rotation of the whole space. Because the contents
    are unit and orthogonal to the axes, :math:`\alpha_V, \alpha_T` and the
    angle between :math:`u_V` and :math:`u_T` are solved in closed form so that
    the sample has exactly the requested mean resultant lengths
    :math:`R_V, R_T` and centroid gap :math:`\lVert\Delta\rVert` (up to float
    rounding), whenever those are attainable.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of pairs.
    n_features : int, default=64
        Embedding width ``d`` of each modality (>= 8); ``X`` has ``2 d`` columns.
    n_classes : int, default=2
        Number of classes (or of labels when ``multilabel``).
    multilabel : bool, default=False
        Return a binary indicator matrix ``y`` of shape (n_samples, n_classes).
    image_concentration, text_concentration : float in (0, 1), default=0.9
        Target mean resultant length :math:`R` of each modality (cone effect).
    gap : float, default=0.8
        Target centroid gap :math:`\lVert \mu_V - \mu_T \rVert`. Attainable
        values lie between :math:`|R_V - R_T|` and :math:`R_V + R_T` (minus what
        the content means take up); others raise ``ValueError``.
    class_sep : float, default=0.3
        Scale of the class prototypes in the shared code (group structure
        visible to both modalities).
    noise : float, default=2.0
        Scale of the modality-specific noise.
    spectrum_decay : float in [0, 4] or None, default=None
        Shape of the principal-component spectrum of each cone: the content
        coordinates of both modalities go through one map :math:`M = Q\,
        \mathrm{diag}(j^{-\beta/2})` (a random rotation, then variances
        decaying as :math:`j^{-\beta}`) before they are normalised, so that a
        few principal axes shared by images and texts carry most of the
        spread, as in real CLIP spaces. ``0`` gives isotropic content (each
        cone a thin disc in PCA). ``None``: the preset's value, else 0.
    axis_spread : float or (float, float) in [0, 2], or None, default=None
        Spread of the angle between each row and its cone axis (one value, or
        one per modality): the weight of the axis in row :math:`i` is
        :math:`a\,e^{\sigma z_i}` with :math:`z_i \sim \mathcal N(0, 1)`, so
        each cone is a cloud along its axis too instead of a flat disc.
        ``None``: the preset's value, else 0.
    preset : {'coco-clip', 'mimic-clip'} or None, default=None
        Take ``image_concentration``, ``text_concentration`` and ``gap`` from
        :data:`PRESETS` (overriding those arguments). The data remain synthetic.
    dtype : dtype, default=np.float32
        Floating dtype of ``X``.
    random_state : int, RandomState instance or None, default=None
        Seed.
    return_texts : bool, default=False
        Also return a template caption per pair whose words carry the
        label(s) and the strongest text-private class score :math:`b_i`
        (e.g. ``'a picture of class two with hints of class zero'``; for
        multi-label data ``'findings: label one and label three, most marked
        label three'`` or ``'no findings, most marked label zero'``), so that
        examples and tests of captioning have texts. Drawing them consumes
        no randomness: ``X`` and ``y`` are the same either way.

    Returns
    -------
    X : ndarray of shape (n_samples, 2 * n_features)
        Unit rows in each block, ``[V | T]``.
    y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class labels, or the label indicator matrix when ``multilabel``.
    texts : ndarray of object, shape (n_samples,)
        With ``return_texts=True``: the template caption of each pair.

    Notes
    -----
    Presets (synthetic; calibrated, not real data):

    - ``'coco-clip'``: :math:`R_V = 0.730, R_T = 0.718, \lVert\Delta\rVert = 0.851`,
      measured on real CLIP ViT-B/16 embeddings of 500 COCO pairs (matched
      exactly), and their spectrum (matched approximately, at ``n_features=64``):
      the second principal component of the pooled unit rows holds 5.7% of
      the variance (6.0% here; 2.8% without ``spectrum_decay``), the first of
      each modality 9.7-9.9% (8.5-9.3%), and the cosine of a row with its
      cone axis has standard deviation 0.065 / 0.081 (0.066 / 0.081; 0.005
      without ``axis_spread``).
    - ``'mimic-clip'``: :math:`R_V = 0.970, R_T = 0.915` (Restrepo et al. 2026,
      Table 1, CLIP on MIMIC-CXR); :math:`\lVert\Delta\rVert = 1.109`, set by
      keeping the cone-axis angle of CLIP on COCO, since Table 1 gives no gap;
      the spectral decay of ``'coco-clip'`` and a spread about each axis in
      the same proportion to :math:`1 - R` as on COCO (assumptions: no
      spectrum is published).

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.measure import mean_resultant_length, modality_gap
    >>> X, y = make_paired_embeddings(500, 32, preset="mimic-clip", random_state=0)
    >>> V, T = X[:, :32], X[:, 32:]
    >>> round(mean_resultant_length(V), 3), round(mean_resultant_length(T), 3)
    (0.97, 0.915)
    >>> round(modality_gap(V, T)[1], 3)
    1.109
    """
    n_samples, d, K = int(n_samples), int(n_features), int(n_classes)
    if preset is not None:
        p = PRESETS[preset]
        image_concentration = p["image_concentration"]
        text_concentration = p["text_concentration"]
        gap = p["gap"]
        spectrum_decay = p["spectrum_decay"] if spectrum_decay is None else spectrum_decay
        axis_spread = p["axis_spread"] if axis_spread is None else axis_spread
    R_v, R_t = float(image_concentration), float(text_concentration)
    spectrum_decay = 0.0 if spectrum_decay is None else spectrum_decay
    axis_spread = (0.0, 0.0) if axis_spread is None else axis_spread
    axis_spread = tuple(np.broadcast_to(np.asarray(axis_spread, dtype=float), (2,)))
    if not all(0 <= a <= 2 for a in axis_spread):
        raise ValueError(
            f"axis_spread must lie in [0, 2] (one value, or one per modality), got {axis_spread!r}."
        )
    if return_texts not in (True, False):
        raise ValueError(f"return_texts must be True or False, got {return_texts!r}.")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}.")
    rng = check_random_state(random_state)

    # Content coordinates 2..d-1: shared, image-private and text-private parts.
    p = d - 2
    p_s = max(1, p // 2)
    p_v = (p - p_s) // 2
    p_t = p - p_s - p_v

    A = rng.standard_normal((n_samples, K))
    B = rng.standard_normal((n_samples, K))
    score = A + B
    if multilabel:
        Y = (score > 0.74).astype(int)
        proto_weight = Y / np.sqrt(np.maximum(Y.sum(axis=1, keepdims=True), 1))
        y = Y
    else:
        y = np.argmax(score, axis=1)
        proto_weight = np.eye(K)[y]
    prototypes = rng.standard_normal((K, p_s)) / np.sqrt(p_s)
    shared = class_sep * proto_weight @ prototypes
    shared += rng.standard_normal((n_samples, p_s)) / np.sqrt(p_s)

    W_v = rng.standard_normal((K, p_v)) / np.sqrt(p_v * K)
    W_t = rng.standard_normal((K, p_t)) / np.sqrt(p_t * K)
    scale = noise / np.sqrt(p)
    C_v = np.zeros((n_samples, p))
    C_v[:, :p_s] = shared + scale * rng.standard_normal((n_samples, p_s))
    C_v[:, p_s : p_s + p_v] = A @ W_v + scale * rng.standard_normal((n_samples, p_v))
    C_t = np.zeros((n_samples, p))
    C_t[:, :p_s] = shared + scale * rng.standard_normal((n_samples, p_s))
    C_t[:, p_s + p_v :] = B @ W_t + scale * rng.standard_normal((n_samples, p_t))
    if spectrum_decay > 0:
        # One anisotropic map for both modalities: a random rotation of the content
        # coordinates, then variances decaying as j^-spectrum_decay, so that a few principal
        # axes (shared by images and texts, as in real CLIP spaces) carry most of the spread.
        Q_c, R_c = np.linalg.qr(rng.standard_normal((p, p)))
        Q_c *= np.sign(np.diag(R_c))
        M = Q_c * np.arange(1, p + 1) ** (-spectrum_decay / 2)
        C_v = C_v @ M
        C_t = C_t @ M
    C_v /= np.linalg.norm(C_v, axis=1, keepdims=True)
    C_t /= np.linalg.norm(C_t, axis=1, keepdims=True)
    # Per-row weight of the cone axis: exp(sigma z_i), z_i standard normal (sigma = 0: every
    # row sits at the same angle from its axis, a flat disc in PCA).
    g_v = np.exp(axis_spread[0] * rng.standard_normal(n_samples))
    g_t = np.exp(axis_spread[1] * rng.standard_normal(n_samples))

    # Calibration (contents are unit and orthogonal to the axes): with alpha_i = a g_i and
    # n_i = sqrt(alpha_i^2 + 1), mu = E[alpha_i / n_i] u + E[c_i / n_i]; solve a for R.
    a_v, m_v, cbar_v = _solve_axis_weight(R_v, g_v, C_v, "image_concentration")
    a_t, m_t, cbar_t = _solve_axis_weight(R_t, g_t, C_t, "text_concentration")
    # ||Delta||^2 = R_v^2 + R_t^2 - 2 mu_v . mu_t, mu_v . mu_t = m_v m_t cos(theta) + cbar_v.cbar_t
    e_vt = cbar_v @ cbar_t
    cos_theta = ((R_v**2 + R_t**2 - gap**2) / 2 - e_vt) / (m_v * m_t)
    if not -1 <= cos_theta <= 1:
        lo = np.sqrt(max(R_v**2 + R_t**2 - 2 * (m_v * m_t + e_vt), 0))
        hi = np.sqrt(R_v**2 + R_t**2 + 2 * (m_v * m_t - e_vt))
        raise ValueError(
            f"gap={gap} cannot be reached with image_concentration={R_v} and "
            f"text_concentration={R_t}; attainable gaps here lie in [{lo:.3f}, {hi:.3f}]."
        )
    sin_theta = np.sqrt(1 - cos_theta**2)

    alpha_v, alpha_t = a_v * g_v, a_t * g_t
    n_v = np.sqrt(alpha_v**2 + 1)[:, None]
    n_t = np.sqrt(alpha_t**2 + 1)[:, None]
    V = np.zeros((n_samples, d))
    T = np.zeros((n_samples, d))
    V[:, 0] = alpha_v
    T[:, 0] = alpha_t * cos_theta
    T[:, 1] = alpha_t * sin_theta
    V[:, 2:] = C_v
    T[:, 2:] = C_t
    V /= n_v
    T /= n_t

    Q, R_ = np.linalg.qr(rng.standard_normal((d, d)))
    Q *= np.sign(np.diag(R_))
    X = np.empty((n_samples, 2 * d), dtype=dtype)
    X[:, :d] = V @ Q
    X[:, d:] = T @ Q
    if return_texts:
        return X, y, _template_texts(y, B, multilabel)
    return X, y


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _number_word(k):
    return _NUMBER_WORDS[k] if k < len(_NUMBER_WORDS) else str(k)


def _template_texts(y, B, multilabel):
    """A caption per pair: its label words, and the class its text-private score favours."""
    texts = np.empty(y.shape[0], dtype=object)
    order = np.argsort(-B, axis=1, kind="stable")
    for i in range(y.shape[0]):
        if multilabel:
            on = np.flatnonzero(y[i])
            marked = _number_word(int(order[i, 0]))
            if on.size:
                findings = " and ".join(f"label {_number_word(int(k))}" for k in on)
                texts[i] = f"findings: {findings}, most marked label {marked}"
            else:
                texts[i] = f"no findings, most marked label {marked}"
        else:
            hint = order[i, 0] if order[i, 0] != y[i] else order[i, 1]
            texts[i] = (f"a picture of class {_number_word(int(y[i]))} with hints of class "
                        f"{_number_word(int(hint))}")
    return texts


def _coco_candidates():
    env = os.environ.get("SKGAP_COCO_CLIP")
    if env:
        yield Path(env)
    rel = Path("shared") / "data" / "coco-clip-vitb16-500"
    here = Path(__file__).resolve().parent
    for base in (Path.cwd(), Path.cwd().parent, here.parent, here.parent.parent):
        yield base / rel


@validate_params({"path": [str, os.PathLike, None]}, prefer_skip_nested_validation=True)
def load_coco_clip(path=None):
    """Load the real CLIP ViT-B/16 embeddings of 500 COCO image-caption pairs.

    The file is not part of the package; it lies beside the project in
    ``shared/data/coco-clip-vitb16-500/features_clip.npy`` (from the public
    repository of Liang et al. 2022, MIT licence).

    Parameters
    ----------
    path : str or Path, default=None
        The folder holding ``features_clip.npy``, or the file itself. ``None``
        looks at ``$SKGAP_COCO_CLIP``, then at ``shared/data/coco-clip-vitb16-500``
        in the current folder, its parent and beside the source tree.

    Returns
    -------
    X : ndarray of shape (500, 1024), float32
        ``[V | T]``: image rows first, caption rows second; unit rows.

    Raises
    ------
    FileNotFoundError
        If no copy is found; the message lists where it looked.
    """
    candidates = [Path(path)] if path is not None else list(_coco_candidates())
    for c in candidates:
        f = c / "features_clip.npy" if c.is_dir() else c
        if f.is_file():
            try:
                arr = np.load(f, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise ValueError(
                    f"{f} is not a NumPy .npy file of the COCO CLIP embeddings (an array "
                    f"of shape (2, n, d) of floats): {exc}"
                ) from None
            if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[0] != 2:
                shape = getattr(arr, "shape", type(arr).__name__)
                raise ValueError(f"{f} should hold an array of shape (2, n, d); got {shape}.")
            if arr.dtype.kind != "f":
                raise ValueError(
                    f"{f} should hold floating-point embeddings; got dtype {arr.dtype}."
                )
            return np.concatenate([arr[0], arr[1]], axis=1).astype(np.float32, copy=False)
    raise FileNotFoundError(
        "The COCO CLIP embeddings (features_clip.npy) were not found; looked in: "
        + ", ".join(str(c) for c in candidates)
        + ". Set SKGAP_COCO_CLIP to the folder that holds them."
    )
