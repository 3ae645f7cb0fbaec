"""Tests of skgap.train.losses: each loss against an independent NumPy computation."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

from skgap import metrics  # noqa: E402
from skgap.train.losses import (  # noqa: E402
    LearnableTemperature,
    align_true_pairs,
    alignment,
    centroid_uniformity,
    clip_loss,
    uniformity,
)


def unit_rows(rng, n, d):
    A = rng.standard_normal((n, d))
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def t64(A):
    return torch.tensor(A, dtype=torch.float64)


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    return unit_rows(rng, 12, 5), unit_rows(rng, 12, 5), unit_rows(rng, 12, 5)


# Independent NumPy references: explicit loops over pairs, no Gram tricks.


def np_clip(V, T, tau):
    S = V @ T.T / tau
    n = len(V)
    i2t = -np.mean([S[i, i] - logsumexp(S[i, :]) for i in range(n)])
    t2i = -np.mean([S[i, i] - logsumexp(S[:, i]) for i in range(n)])
    return 0.5 * (i2t + t2i)


def np_log_mean_exp_pairs(E, t):
    vals = [
        np.exp(-t * np.sum((E[i] - E[j]) ** 2))
        for i in range(len(E))
        for j in range(i + 1, len(E))
    ]
    return np.log(np.mean(vals))


def np_cu(Z, t):
    S = np.sum(Z, axis=0)
    C = S / np.linalg.norm(S, axis=1, keepdims=True)
    return np_log_mean_exp_pairs(C, t)


def test_clip_loss_matches_numpy(pairs):
    V, T, _ = pairs
    for tau in (0.07, 0.1, 1.0):
        got = float(clip_loss(t64(V), t64(T), tau))
        assert got == pytest.approx(np_clip(V, T, tau), rel=1e-10)


def test_clip_loss_is_symmetric_and_accepts_tensor_temperature(pairs):
    V, T, _ = pairs
    a = clip_loss(t64(V), t64(T), 0.1)
    assert float(a) == pytest.approx(float(clip_loss(t64(T), t64(V), 0.1)), rel=1e-12)
    tau = torch.tensor(0.1, dtype=torch.float64)
    assert float(clip_loss(t64(V), t64(T), tau)) == pytest.approx(float(a), rel=1e-12)


def test_clip_loss_is_near_zero_for_perfect_pairs():
    E = torch.eye(6, dtype=torch.float64)
    # Each pair's logit is 1/tau above the others: loss = log(1 + 5 exp(-1/tau)).
    assert float(clip_loss(E, E, 0.1)) == pytest.approx(math.log1p(5 * math.exp(-10)))


def test_align_true_pairs_matches_numpy(pairs):
    V, T, U = pairs
    two = np.mean([np.sum((V[i] - T[i]) ** 2) for i in range(len(V))])
    assert float(align_true_pairs(t64(V), t64(T))) == pytest.approx(two, rel=1e-12)
    three = np.mean([np.mean(np.sum((Z - T) ** 2, axis=1)) for Z in (V, U)])
    got = float(align_true_pairs(t64(V), t64(T), t64(U), anchor=1))
    assert got == pytest.approx(three, rel=1e-12)


def test_align_true_pairs_reduces_to_two_modal(pairs):
    V, T, _ = pairs
    two = float(align_true_pairs(t64(V), t64(T)))
    # Symmetric in the anchor for two modalities, equal to alignment(alpha=2),
    # and a repeated modality only repeats a term of the mean.
    assert float(align_true_pairs(t64(V), t64(T), anchor=1)) == pytest.approx(two)
    assert float(alignment(t64(V), t64(T), alpha=2)) == pytest.approx(two)
    assert float(align_true_pairs(t64(V), t64(T), t64(T))) == pytest.approx(two)


def test_centroid_uniformity_matches_numpy(pairs):
    V, T, U = pairs
    for t in (0.5, 2.0):
        got = float(centroid_uniformity(t64(V), t64(T), t=t))
        assert got == pytest.approx(np_cu(np.stack([V, T]), t), rel=1e-10)
    got = float(centroid_uniformity(t64(V), t64(T), t64(U)))
    assert got == pytest.approx(np_cu(np.stack([V, T, U]), 2.0), rel=1e-10)


def test_centroid_uniformity_reduces_to_uniformity(pairs):
    V, T, _ = pairs
    u = float(uniformity(t64(V)))
    # Identical modalities: every centroid is the item itself.
    assert float(centroid_uniformity(t64(V), t64(V))) == pytest.approx(u, rel=1e-12)
    assert float(centroid_uniformity(t64(V))) == pytest.approx(u, rel=1e-12)
    # n-modal with a repeated block weights that block twice, unlike the 2-modal form.
    assert float(centroid_uniformity(t64(V), t64(T), t64(T))) != pytest.approx(
        float(centroid_uniformity(t64(V), t64(T)))
    )


def test_uniformity_matches_numpy_and_the_metric(pairs):
    V, _, _ = pairs
    for t in (1.0, 2.0, 5.0):
        got = float(uniformity(t64(V), t=t))
        assert got == pytest.approx(np_log_mean_exp_pairs(V, t), rel=1e-10)
        assert got == pytest.approx(metrics.uniformity(V, t=t), rel=1e-10)


def test_alignment_matches_numpy_and_the_metric(pairs):
    V, T, _ = pairs
    for alpha in (1.0, 2.0, 3.0):
        ref = np.mean([np.linalg.norm(V[i] - T[i]) ** alpha for i in range(len(V))])
        got = float(alignment(t64(V), t64(T), alpha=alpha))
        assert got == pytest.approx(ref, rel=1e-10)
        assert got == pytest.approx(metrics.alignment(V, T, alpha=alpha), rel=1e-10)


def test_float32_agrees_with_float64(pairs):
    V, T, _ = pairs
    V32, T32 = torch.tensor(V, dtype=torch.float32), torch.tensor(T, dtype=torch.float32)
    for f64, f32 in [
        (clip_loss(t64(V), t64(T)), clip_loss(V32, T32)),
        (centroid_uniformity(t64(V), t64(T)), centroid_uniformity(V32, T32)),
        (uniformity(t64(V)), uniformity(V32)),
    ]:
        assert f32.dtype == torch.float32
        assert float(f32) == pytest.approx(float(f64), rel=1e-5)


def test_uniformity_is_stable_for_large_t():
    E = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float32)
    # exp(-4 * 100) underflows float32; the log-sum-exp keeps the exact value.
    assert float(uniformity(E, t=100.0)) == pytest.approx(-400.0)


def test_gradients_are_finite(pairs):
    V, T, U = (t64(A).requires_grad_() for A in pairs)
    tau = LearnableTemperature().double()
    total = (
        clip_loss(V, T, tau())
        + align_true_pairs(V, T, U)
        + centroid_uniformity(V, T, U)
        + uniformity(V)
        + alignment(V, T, alpha=1)
    )
    total.backward()
    for g in (V.grad, T.grad, U.grad, tau.log_temperature.grad):
        assert g is not None and torch.isfinite(g).all()
        assert g.abs().sum() > 0


def test_alignment_gradient_is_finite_at_zero_distance():
    V = torch.eye(3, dtype=torch.float64, requires_grad=True)
    alignment(V, V.detach(), alpha=1).backward()
    assert torch.isfinite(V.grad).all()


def test_gradient_matches_finite_differences(pairs):
    V, T, _ = pairs
    Vt = t64(V).requires_grad_()
    f = lambda A: centroid_uniformity(A, t64(T)) + align_true_pairs(A, t64(T))  # noqa: E731
    f(Vt).backward()
    eps = 1e-6
    E = np.zeros_like(V)
    E[3, 2] = eps
    numeric = (float(f(t64(V + E))) - float(f(t64(V - E)))) / (2 * eps)
    assert float(Vt.grad[3, 2]) == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_learnable_temperature():
    tau = LearnableTemperature()
    assert float(tau().detach()) == pytest.approx(0.07)
    assert float(tau.log_temperature.detach()) == pytest.approx(math.log(0.07))
    with torch.no_grad():
        tau.log_temperature.fill_(-20.0)
    assert float(tau().detach()) == pytest.approx(0.01)
    assert float(LearnableTemperature(init=0.5, max_value=0.6)().detach()) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="init"):
        LearnableTemperature(init=2.0)
    with pytest.raises(ValueError, match="positive"):
        LearnableTemperature(init=0.0)


def test_learnable_temperature_is_optimised():
    rng = np.random.default_rng(1)
    V = torch.tensor(unit_rows(rng, 16, 8), dtype=torch.float32)
    tau = LearnableTemperature(init=0.5)
    opt = torch.optim.SGD(tau.parameters(), lr=0.5)
    for _ in range(20):
        opt.zero_grad()
        clip_loss(V, V, tau()).backward()
        opt.step()
    # Perfectly matched pairs: a sharper softmax (smaller tau) lowers the loss.
    assert float(tau().detach()) < 0.5


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 8),
    d=st.integers(2, 6),
    seed=st.integers(0, 2**16),
    t=st.floats(0.1, 10.0),
)
def test_loss_ranges(n, d, seed, t):
    rng = np.random.default_rng(seed)
    V, T = t64(unit_rows(rng, n, d)), t64(unit_rows(rng, n, d))
    atp = float(align_true_pairs(V, T))
    assert -1e-12 <= atp <= 4 + 1e-12
    # log of a mean of values in (0, 1]: at most 0, at least -4t.
    for value in (float(centroid_uniformity(V, T, t=t)), float(uniformity(V, t=t))):
        assert -4 * t - 1e-9 <= value <= 1e-12
    # Each cross-entropy term is logsumexp_j s_ij - s_ii, which lies between
    # max_j s_ij - s_ii and that plus log n (logsumexp of n terms).
    S = (V @ T.T).numpy() / 0.1
    slack = 0.5 * (S.max(1) + S.max(0)) - np.diag(S)
    value = float(clip_loss(V, T, 0.1))
    assert slack.mean() - 1e-9 <= value <= slack.mean() + math.log(n) + 1e-9


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda V, T: clip_loss(V, T[:3]), ValueError, "same shape"),
        (lambda V, T: clip_loss(V[0], T[0]), ValueError, "2-D"),
        (lambda V, T: clip_loss(V.numpy(), T), TypeError, "torch.Tensor"),
        (lambda V, T: clip_loss(V, T, 0.0), ValueError, "temperature"),
        (lambda V, T: clip_loss(V, T, torch.ones(2)), ValueError, "scalar"),
        (lambda V, T: align_true_pairs(V), ValueError, "two modalities"),
        (lambda V, T: align_true_pairs(V, T, anchor=2), ValueError, "anchor"),
        (lambda V, T: centroid_uniformity(V[:1], T[:1]), ValueError, "at least 2 rows"),
        (lambda V, T: centroid_uniformity(V, T, t=-1.0), ValueError, "'t' parameter"),
        (lambda V, T: uniformity(V[:1]), ValueError, "at least 2 rows"),
        (lambda V, T: alignment(V, T, alpha=0), ValueError, "alpha"),
        (lambda V, T: uniformity(V.long()), TypeError, "floating"),
    ],
)
def test_bad_inputs(pairs, call, error, match):
    V, T, _ = pairs
    with pytest.raises(error, match=match):
        call(t64(V), t64(T))
