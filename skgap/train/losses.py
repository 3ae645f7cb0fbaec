r"""Gap-closing training losses on L2-normalised embeddings (torch).

Pure functions of torch tensors whose rows are unit vectors (one row per
item, row ``i`` of every modality describing the same item). They are the
objectives of :class:`~skgap.train.GapClosingAdapter`:

.. math::

    \mathcal L = \mathcal L_{\mathrm{CLIP}}
        + w_{\mathrm{ATP}} \, \mathcal L_{\mathrm{ATP}}
        + w_{\mathrm{CU}} \, \mathcal L_{\mathrm{CU}}.

:func:`uniformity` and :func:`alignment` give the same numbers as
:func:`skgap.measure.uniformity` and :func:`skgap.measure.alignment` on unit
rows, so a value logged during training can be compared with one measured on
the embeddings afterwards.

The unit-row precondition is checked, not silently restored: a row whose norm
is off 1 by more than :math:`10^{-3} + 16\epsilon` (:math:`\epsilon` of its
dtype) is refused with a ``ValueError`` (normalise with
:func:`torch.nn.functional.normalize` first). Normalising inside would change
the gradient the caller built, and rows of :math:`10^{30}` would otherwise
give inf or NaN losses.

References
----------
Grassucci, Cicchetti, Comminiello (2025), "Closing the gap in multimodal
medical representation alignment", MLSP.
Grassucci, Cicchetti, Comminiello (2026), "Closing the Modality Gap Aligns
Group-Wise Semantics", ICLR.
Radford et al. (2021), "Learning Transferable Visual Models From Natural
Language Supervision", ICML.
Wang & Isola (2020), "Understanding Contrastive Representation Learning
through Alignment and Uniformity on the Hypersphere", ICML.
"""

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import validate_params
from torch import nn

from .._core._validation import Interval, PositiveFinite

__all__ = [
    "LearnableTemperature",
    "align_true_pairs",
    "alignment",
    "centroid_uniformity",
    "clip_loss",
    "uniformity",
]


def _check_unit_rows(Z, name):
    norms = torch.linalg.vector_norm(Z.detach(), dim=1)
    tol = 1e-3 + 16 * torch.finfo(Z.dtype).eps
    off = (norms - 1).abs() > tol
    if bool(off.any()):
        rows = off.nonzero().flatten().tolist()
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        raise ValueError(
            f"{name} has {len(rows)} row(s) that are not unit vectors (rows {shown}; norms "
            f"such as {float(norms[rows[0]]):.3g}); the losses take L2-normalised rows. "
            "Normalise them first (torch.nn.functional.normalize(Z, dim=1))."
        )


def _check_matrix(Z, name, min_rows=1, unit=True):
    if not isinstance(Z, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(Z).__name__}.")
    if Z.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got shape {tuple(Z.shape)}."
        )
    if Z.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {Z.shape[0]}.")
    if not Z.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {Z.dtype}.")
    finite = torch.isfinite(Z)
    if not bool(finite.all()):
        rows = (~finite).any(dim=1).nonzero().flatten().tolist()
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        raise ValueError(
            f"{name} has {len(rows)} row(s) with NaN or infinite entries (rows {shown}); "
            "the losses need finite embeddings (check the encoder outputs or the "
            "learning rate)."
        )
    if unit:
        _check_unit_rows(Z, name)


def _check_paired(Z, names, min_rows=1):
    for z, name in zip(Z, names):
        _check_matrix(z, name, min_rows)
    shapes = {tuple(z.shape) for z in Z}
    if len(shapes) != 1:
        raise ValueError(
            "Paired embeddings need the same shape in every modality (one row per "
            "item, one shared space); got "
            + ", ".join(f"{n}: {tuple(z.shape)}" for n, z in zip(names, Z))
            + "."
        )


def _check_positive(value, name):
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not 0 < value < math.inf
    ):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}.")


def _check_temperature(temperature):
    """A 0-d tensor temperature: finite and positive (a learnable one is checked each call)."""
    if temperature.numel() != 1:
        raise ValueError(
            f"temperature must be a scalar tensor, got shape {tuple(temperature.shape)}."
        )
    temperature = temperature.reshape(())
    if not temperature.is_floating_point():
        raise TypeError(f"temperature must be a floating tensor, got dtype {temperature.dtype}.")
    value = temperature.detach()
    if not bool(torch.isfinite(value) & (value > 0)):
        raise ValueError(
            f"temperature must be a finite positive number, got {float(value)!r}; a "
            "negative or NaN temperature gives a meaningless loss."
        )
    return temperature


def _log_mean_exp_pairs(E, t):
    """``log mean_{i<j} exp(-t ||e_i - e_j||^2)``, stable via logsumexp."""
    n = E.shape[0]
    sq_norms = (E * E).sum(dim=1)
    # ||e_i - e_j||^2 from the Gram matrix: one matmul, no n x n x d tensor.
    sq = (sq_norms[:, None] + sq_norms[None, :] - 2.0 * (E @ E.T)).clamp_min(0.0)
    iu = torch.triu_indices(n, n, offset=1, device=E.device)
    return torch.logsumexp(-t * sq[iu[0], iu[1]], dim=0) - math.log(n * (n - 1) / 2.0)


@validate_params(
    {"V": "no_validation", "T": "no_validation", "temperature": [PositiveFinite(), torch.Tensor]},
    prefer_skip_nested_validation=True,
)
def clip_loss(V, T, temperature=0.1):
    r"""Symmetric InfoNCE (CLIP) loss of matched pairs.

    .. math::

        s_{ij} = \frac{v_i \cdot t_j}{\tau}, \qquad
        \mathcal L_{\mathrm{CLIP}} = \frac{1}{2n} \sum_{i=1}^{n} \Big[
            -\log \frac{e^{s_{ii}}}{\sum_j e^{s_{ij}}}
            -\log \frac{e^{s_{ii}}}{\sum_j e^{s_{ji}}} \Big]

    the mean of the image-to-text and text-to-image cross-entropies with the
    matched pair as the target.

    Parameters
    ----------
    V, T : torch.Tensor of shape (n_samples, d)
        Unit rows; row ``i`` of ``V`` and of ``T`` describe the same item.
    temperature : float or torch.Tensor, default=0.1
        :math:`\tau > 0`. A 0-d tensor (for instance the output of
        :class:`LearnableTemperature`) makes :math:`\tau` learnable; 0.1 is the
        fixed value of the reference code of Grassucci et al.

    Returns
    -------
    loss : torch.Tensor (0-d)

    See Also
    --------
    LearnableTemperature : A log-parameterised learnable :math:`\tau`.

    References
    ----------
    Radford et al. (2021), "Learning Transferable Visual Models From Natural
    Language Supervision", ICML.

    Examples
    --------
    >>> import torch
    >>> from skgap.train.losses import clip_loss
    >>> V = torch.eye(3)
    >>> round(float(clip_loss(V, V, temperature=0.1)), 4)
    0.0001
    """
    _check_paired((V, T), ("V", "T"))
    if isinstance(temperature, torch.Tensor):
        temperature = _check_temperature(temperature)
    logits = (V @ T.T) / temperature
    target = torch.arange(V.shape[0], device=V.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@validate_params(
    {"Z": "no_validation", "anchor": [Interval(Integral, 0, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def align_true_pairs(*Z, anchor=0):
    r"""Align-true-pairs (ATP) loss: mean squared distance of matched pairs.

    For two modalities

    .. math:: \mathcal L_{\mathrm{ATP}} = \frac{1}{n} \sum_{i=1}^{n}
        \lVert v_i - t_i \rVert_2^2,

    and for :math:`M` modalities :math:`z^1, \dots, z^M` with an anchor
    modality :math:`a`, the mean over the other modalities

    .. math:: \mathcal L_{\mathrm{ATP}} = \frac{1}{M - 1} \sum_{m \ne a}
        \frac{1}{n} \sum_{i=1}^{n} \lVert z_i^m - z_i^a \rVert_2^2,

    which is the two-modal loss when :math:`M = 2`. Pulling every pair
    together pulls the modality centroids together: the gap
    :math:`\lVert \mu_V - \mu_T \rVert^2` is at most the ATP loss (Jensen).

    Parameters
    ----------
    *Z : torch.Tensor of shape (n_samples, d)
        Two or more modalities, row ``i`` of each describing item ``i``.
    anchor : int, default=0
        Index of the anchor modality :math:`a`.

    Returns
    -------
    loss : torch.Tensor (0-d), in [0, 4] for unit rows

    See Also
    --------
    alignment : The same quantity for two modalities and any exponent.

    References
    ----------
    Grassucci, Cicchetti, Comminiello (2025), "Closing the gap in multimodal
    medical representation alignment", MLSP.

    Examples
    --------
    >>> import torch
    >>> from skgap.train.losses import align_true_pairs
    >>> V = torch.tensor([[1.0, 0.0]])
    >>> T = torch.tensor([[0.0, 1.0]])
    >>> float(align_true_pairs(V, T))
    2.0
    """
    if len(Z) < 2:
        raise ValueError(f"align_true_pairs needs at least two modalities, got {len(Z)}.")
    _check_paired(Z, [f"Z[{m}]" for m in range(len(Z))])
    if not anchor < len(Z):
        raise ValueError(f"anchor must be an integer in [0, {len(Z) - 1}], got {anchor!r}.")
    za = Z[anchor]
    losses = [((z - za) ** 2).sum(dim=1).mean() for m, z in enumerate(Z) if m != anchor]
    return torch.stack(losses).mean()


@validate_params(
    {"Z": "no_validation", "t": [PositiveFinite()]},
    prefer_skip_nested_validation=True,
)
def centroid_uniformity(*Z, t=2.0):
    r"""Centroid-uniformity (CU) loss: spread the per-item centroids.

    Each item's centroid is the L2-normalised mean of its embeddings in the
    :math:`M` modalities, and CU is the Wang–Isola uniformity of those
    centroids:

    .. math::

        c_i = \frac{\sum_m z_i^m}{\lVert \sum_m z_i^m \rVert}, \qquad
        \mathcal L_{\mathrm{CU}} = \log \frac{2}{n(n-1)} \sum_{i<j}
            \exp\!\big(-t \lVert c_i - c_j \rVert_2^2\big).

    For two modalities :math:`c_i = (v_i + t_i) / \lVert v_i + t_i \rVert`.
    Minimising it keeps the aligned pairs (see :func:`align_true_pairs`)
    spread over the sphere instead of collapsing onto one point.

    Parameters
    ----------
    *Z : torch.Tensor of shape (n_samples, d)
        Two or more modalities (one is allowed: then :math:`c_i = z_i`), at
        least two rows.
    t : float, default=2.0
        :math:`t > 0`.

    Returns
    -------
    loss : torch.Tensor (0-d), at most 0

    See Also
    --------
    uniformity : The same statistic for one set of embeddings.

    References
    ----------
    Grassucci, Cicchetti, Comminiello (2026), "Closing the Modality Gap Aligns
    Group-Wise Semantics", ICLR.

    Examples
    --------
    >>> import torch
    >>> from skgap.train.losses import centroid_uniformity
    >>> V = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> round(float(centroid_uniformity(V, V)), 3)
    -8.0
    """
    if len(Z) < 1:
        raise ValueError("centroid_uniformity needs at least one modality.")
    _check_paired(Z, [f"Z[{m}]" for m in range(len(Z))], min_rows=2)
    S = torch.stack(Z).sum(dim=0)
    norms = torch.linalg.vector_norm(S.detach(), dim=1)
    # Pairs that cancel (v = -t) have no centroid direction; F.normalize would
    # return the zero vector and a finite, meaningless loss.
    flat = norms <= 16 * len(Z) * torch.finfo(S.dtype).eps
    if bool(flat.any()):
        rows = flat.nonzero().flatten().tolist()
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        raise ValueError(
            f"the modalities of {len(rows)} item(s) cancel (rows {shown}): the sum of their "
            "unit rows is zero, so their centroid has no direction and the centroid "
            "uniformity is undefined."
        )
    C = F.normalize(S, dim=1)
    return _log_mean_exp_pairs(C, t)


@validate_params(
    {"E": "no_validation", "t": [PositiveFinite()]},
    prefer_skip_nested_validation=True,
)
def uniformity(E, t=2.0):
    r"""Uniformity of unit embeddings (Wang & Isola, 2020).

    .. math:: \mathcal L_{\mathrm{unif}} = \log \frac{2}{n(n-1)}
        \sum_{i<j} \exp\!\big(-t \lVert e_i - e_j \rVert_2^2\big)

    The torch twin of :func:`skgap.measure.uniformity`: the same number on
    unit rows, differentiable. Computed from the Gram matrix and a
    log-sum-exp, so it is stable for large ``t``.

    Parameters
    ----------
    E : torch.Tensor of shape (n_samples, d)
        Unit rows; at least two.
    t : float, default=2.0
        :math:`t > 0`.

    Returns
    -------
    loss : torch.Tensor (0-d), at most 0

    See Also
    --------
    skgap.measure.uniformity : The NumPy measurement.

    Examples
    --------
    >>> import torch
    >>> from skgap.train.losses import uniformity
    >>> E = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> float(uniformity(E))
    -4.0
    """
    _check_matrix(E, "E", min_rows=2)
    return _log_mean_exp_pairs(E, t)


@validate_params(
    {"V": "no_validation", "T": "no_validation", "alpha": [PositiveFinite()]},
    prefer_skip_nested_validation=True,
)
def alignment(V, T, alpha=2.0):
    r"""Alignment of matched unit pairs (Wang & Isola, 2020).

    .. math:: \mathcal L_{\mathrm{align}} = \frac{1}{n} \sum_i
        \lVert v_i - t_i \rVert_2^{\alpha}

    The torch twin of :func:`skgap.measure.alignment`; with ``alpha=2`` it
    equals :func:`align_true_pairs` of two modalities.

    Parameters
    ----------
    V, T : torch.Tensor of shape (n_samples, d)
        Unit rows; row ``i`` of each describes item ``i``.
    alpha : float, default=2.0
        Exponent, finite and :math:`\alpha > 0`.

    Returns
    -------
    loss : torch.Tensor (0-d)

    See Also
    --------
    skgap.measure.alignment : The NumPy measurement.

    Examples
    --------
    >>> import torch
    >>> from skgap.train.losses import alignment
    >>> float(alignment(torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]]), alpha=1))
    2.0
    """
    _check_paired((V, T), ("V", "T"))
    sq = ((V - T) ** 2).sum(dim=1)
    if alpha == 2:
        return sq.mean()
    # d/dx x**(a/2) is infinite at 0 for a < 2: keep the gradient finite.
    return sq.clamp_min(torch.finfo(sq.dtype).tiny).pow(alpha / 2.0).mean()


class LearnableTemperature(nn.Module):
    r"""A learnable softmax temperature, parameterised by its logarithm.

    .. math:: \tau = \exp(\theta), \qquad
        \theta \in [\log \tau_{\min}, \log \tau_{\max}]

    Optimising :math:`\theta` rather than :math:`\tau` keeps :math:`\tau`
    positive and makes its steps multiplicative, as in CLIP (which learns
    :math:`\log(1/\tau)`, starts at :math:`\tau = 0.07` and caps
    :math:`1/\tau` at 100). The clamp happens in :meth:`forward`, so the stored
    parameter is free and the value used never leaves the bounds.

    Parameters
    ----------
    init : float, default=0.07
        Initial :math:`\tau`.
    min_value, max_value : float, default=0.01, 1.0
        Bounds of :math:`\tau`.

    Attributes
    ----------
    log_temperature : torch.nn.Parameter (0-d)
        :math:`\theta`.

    Examples
    --------
    >>> import torch
    >>> from skgap.train.losses import LearnableTemperature, clip_loss
    >>> tau = LearnableTemperature()
    >>> round(float(tau().detach()), 4)
    0.07
    >>> loss = clip_loss(torch.eye(3), torch.eye(3), temperature=tau())
    >>> loss.backward()
    >>> tau.log_temperature.grad is not None
    True
    """

    def __init__(self, init=0.07, min_value=0.01, max_value=1.0):
        super().__init__()
        for value, name in ((init, "init"), (min_value, "min_value"), (max_value, "max_value")):
            _check_positive(value, name)
        if not min_value <= init <= max_value:
            raise ValueError(
                f"init={init} must lie in [min_value, max_value] = [{min_value}, {max_value}]."
            )
        self.log_min = math.log(min_value)
        self.log_max = math.log(max_value)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(init)))

    def forward(self):
        """Return the temperature :math:`\\tau`, clamped to its bounds.

        Returns
        -------
        tau : torch.Tensor (0-d)
        """
        return self.log_temperature.clamp(self.log_min, self.log_max).exp()


# Unvalidated twins for the training loop (one call per step; @validate_params
# binds the signature on every call).
_clip_loss = clip_loss.__wrapped__
_align_true_pairs = align_true_pairs.__wrapped__
_centroid_uniformity = centroid_uniformity.__wrapped__
