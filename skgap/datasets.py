"""Synthetic paired embeddings with a controlled cone effect and modality gap,
and a loader for the real CLIP embeddings shipped beside the project."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_paired_embeddings", "load_coco_clip", "PRESETS"]

#: Presets of :func:`make_paired_embeddings`. Each one fixes the cone sizes
#: (mean resultant lengths) and the centroid gap of the synthetic data; the
#: embeddings themselves remain synthetic.
PRESETS = {
    "coco-clip": {
        "image_concentration": 0.730,
        "text_concentration": 0.718,
        "gap": 0.851,
        "source": (
            "Measured on the 500 COCO val2017 image-caption pairs embedded with "
            "OpenAI CLIP ViT-B/16 (Liang et al. 2022's features_clip.npy)."
        ),
    },
    "mimic-clip": {
        "image_concentration": 0.970,
        "text_concentration": 0.915,
        # Table 1 reports R only; the gap keeps the angle between the two cone
        # axes measured for CLIP on COCO (cos = 0.31), an assumption.
        "gap": 1.109,
        "source": (
            "R_image = 0.970 and R_text = 0.915 from Table 1 of Restrepo et al. "
            "(2026), CLIP on MIMIC-CXR; the gap is not published there and is set "
            "by keeping the cone-axis angle measured for CLIP on COCO."
        ),
    },
}


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_unit_interval(name, value, *, low_open=True, high_open=True):
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}.")
    return float(value)


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
    preset=None,
    dtype=np.float32,
    random_state=None,
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
    preset : {'coco-clip', 'mimic-clip'} or None, default=None
        Take ``image_concentration``, ``text_concentration`` and ``gap`` from
        :data:`PRESETS` (overriding those arguments). The data remain synthetic.
    dtype : dtype, default=np.float32
        Floating dtype of ``X``.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2 * n_features)
        Unit rows in each block, ``[V | T]``.
    y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class labels, or the label indicator matrix when ``multilabel``.

    Notes
    -----
    Presets (synthetic; calibrated, not real data):

    - ``'coco-clip'``: :math:`R_V = 0.730, R_T = 0.718, \lVert\Delta\rVert = 0.851`,
      measured on real CLIP ViT-B/16 embeddings of 500 COCO pairs.
    - ``'mimic-clip'``: :math:`R_V = 0.970, R_T = 0.915` (Restrepo et al. 2026,
      Table 1, CLIP on MIMIC-CXR); :math:`\lVert\Delta\rVert = 1.109`, set by
      keeping the cone-axis angle of CLIP on COCO, since Table 1 gives no gap.

    Examples
    --------
    >>> from skgap.datasets import make_paired_embeddings
    >>> from skgap.metrics import mean_resultant_length, modality_gap
    >>> X, y = make_paired_embeddings(500, 32, preset="mimic-clip", random_state=0)
    >>> V, T = X[:, :32], X[:, 32:]
    >>> round(mean_resultant_length(V), 3), round(mean_resultant_length(T), 3)
    (0.97, 0.915)
    >>> round(modality_gap(V, T)[1], 3)
    1.109
    """
    n_samples = _check_int("n_samples", n_samples, 2)
    d = _check_int("n_features", n_features, 8)
    K = _check_int("n_classes", n_classes, 2)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
        p = PRESETS[preset]
        image_concentration = p["image_concentration"]
        text_concentration = p["text_concentration"]
        gap = p["gap"]
    R_v = _check_unit_interval("image_concentration", image_concentration)
    R_t = _check_unit_interval("text_concentration", text_concentration)
    if not gap >= 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}.")
    if not class_sep >= 0:
        raise ValueError(f"class_sep must be >= 0, got {class_sep!r}.")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}.")
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
    C_v /= np.linalg.norm(C_v, axis=1, keepdims=True)
    C_t /= np.linalg.norm(C_t, axis=1, keepdims=True)

    # Closed-form calibration (contents are unit and orthogonal to the axes).
    cbar_v, cbar_t = C_v.mean(axis=0), C_t.mean(axis=0)
    r_v2, r_t2 = cbar_v @ cbar_v, cbar_t @ cbar_t
    for name, R, r2 in (("image_concentration", R_v, r_v2), ("text_concentration", R_t, r_t2)):
        if R**2 <= r2:
            raise ValueError(
                f"{name}={R} is below what the content alone gives ({np.sqrt(r2):.3f}); "
                "raise it or lower class_sep."
            )
    a_v = np.sqrt((R_v**2 - r_v2) / (1 - R_v**2))
    a_t = np.sqrt((R_t**2 - r_t2) / (1 - R_t**2))
    c_v, c_t = np.sqrt(a_v**2 + 1), np.sqrt(a_t**2 + 1)
    # ||Delta||^2 = R_v^2 + R_t^2 - 2 mu_v . mu_t, with
    # mu_v . mu_t = (a_v a_t cos(theta) + cbar_v . cbar_t) / (c_v c_t).
    cos_theta = ((R_v**2 + R_t**2 - gap**2) / 2 * c_v * c_t - cbar_v @ cbar_t) / (a_v * a_t)
    if not -1 <= cos_theta <= 1:
        lo = np.sqrt(max(R_v**2 + R_t**2 - 2 * (a_v * a_t + cbar_v @ cbar_t) / (c_v * c_t), 0))
        hi = np.sqrt(R_v**2 + R_t**2 + 2 * (a_v * a_t - cbar_v @ cbar_t) / (c_v * c_t))
        raise ValueError(
            f"gap={gap} cannot be reached with image_concentration={R_v} and "
            f"text_concentration={R_t}; attainable gaps here lie in [{lo:.3f}, {hi:.3f}]."
        )
    sin_theta = np.sqrt(1 - cos_theta**2)

    V = np.zeros((n_samples, d))
    T = np.zeros((n_samples, d))
    V[:, 0] = a_v
    T[:, 0] = a_t * cos_theta
    T[:, 1] = a_t * sin_theta
    V[:, 2:] = C_v
    T[:, 2:] = C_t
    V /= c_v
    T /= c_t

    Q, R_ = np.linalg.qr(rng.standard_normal((d, d)))
    Q *= np.sign(np.diag(R_))
    X = np.empty((n_samples, 2 * d), dtype=dtype)
    X[:, :d] = V @ Q
    X[:, d:] = T @ Q
    return X, y


def _coco_candidates():
    env = os.environ.get("SKGAP_COCO_CLIP")
    if env:
        yield Path(env)
    rel = Path("shared") / "data" / "coco-clip-vitb16-500"
    here = Path(__file__).resolve().parent
    for base in (Path.cwd(), Path.cwd().parent, here.parent, here.parent.parent):
        yield base / rel


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
