"""
Stitching two encoders with a handful of anchors
================================================

Two synthetic "encoders" look at the same items: a source encoder of width 48
and a target encoder of width 64 whose space is a rotated, unevenly scaled,
shifted and noisy view of the source's. A classifier is trained on the target
space only. :class:`~skgap.AnchorAffineAligner` estimates the map
between the spaces from a few matched *anchors* (items seen by both
encoders), so that source embeddings can be fed to the target's classifier:
model stitching as in Maiorca et al. (2023).

For each kind of map and each number of anchors we measure

- the translation error on held-out items,
  :math:`\\sum_i \\lVert \\tilde t_i - t_i \\rVert^2 / \\sum_i \\lVert t_i - \\bar t \\rVert^2`;
- the accuracy of the target's classifier on the translated source embeddings,

which is the shape of Figure 3 of the paper. The least-squares kinds
(``'linear'``, ``'affine'``) are ill posed below 48 anchors, the source width,
and the most accurate with many; the orthogonal kinds have fewer degrees of
freedom, so they are competitive around that width, but cannot undo the uneven
scaling. With the default ``standardize='feature'`` both spaces are centred on
their anchors, so ``'linear'`` and ``'affine'`` coincide (they differ only with
``standardize=None``).
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from skgap import pair
from skgap.measure import cka
from skgap.transform._align import AnchorAffineAligner, IllPosedAlignmentWarning

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
rng = np.random.default_rng(0)

# %%
# Two encoders that see the same items
# ------------------------------------
# Items come from 10 overlapping classes in a 32-dimensional latent space. The source
# encoder embeds them in 48 dimensions; the target encoder rotates that
# space into 64 dimensions, rescales each axis by a factor in [0.5, 2], shifts
# it and adds noise.

n_items = 800 if small else 3000
n_classes, d_latent, d_source, d_target = 10, 32, 48, 64

y = rng.integers(0, n_classes, n_items)
Z = 0.6 * rng.standard_normal((n_classes, d_latent))[y] + rng.standard_normal((n_items, d_latent))
S = Z @ rng.standard_normal((d_latent, d_source)) + 0.5 * rng.standard_normal((n_items, d_source))

Q, _ = np.linalg.qr(rng.standard_normal((d_target, d_target)))
scales = np.exp(rng.uniform(np.log(0.5), np.log(2.0), d_target))
T = (S @ Q[:d_source]) * scales + rng.normal(0, 3, d_target)
T += 1.0 * rng.standard_normal(T.shape)

# Anchors come from the first half, evaluation uses the second.
pool, test = np.arange(n_items // 2), np.arange(n_items // 2, n_items)
probe = LogisticRegression(max_iter=2000).fit(T[pool], y[pool])
native = probe.score(T[test], y[test])
print(f"target classifier on target embeddings: accuracy {native:.3f}")

# %%
# Translation error and stitched accuracy against the number of anchors
# ---------------------------------------------------------------------

kinds = ["ortho", "lortho", "linear", "affine"]
anchor_counts = [8, 32, 128] if small else [8, 16, 32, 64, 128, 256, 512, 1024]
n_draws = 1 if small else 3


def evaluate(kind, n_anchors, seed):
    anchors = np.random.default_rng(seed).choice(pool, n_anchors, replace=False)
    aligner = AnchorAffineAligner(kind=kind, modality_dims=(d_source, d_target))
    with warnings.catch_warnings():
        # Few anchors make linear and affine ill posed: that is the point here.
        warnings.simplefilter("ignore", IllPosedAlignmentWarning)
        aligner.fit(pair(S[anchors], T[anchors]))
    T_hat = aligner.translate(S[test])
    error = np.sum((T_hat - T[test]) ** 2) / np.sum((T[test] - T[test].mean(0)) ** 2)
    return error, probe.score(T_hat, y[test]), aligner


errors = np.zeros((len(kinds), len(anchor_counts)))
accuracy = np.zeros_like(errors)
for i, kind in enumerate(kinds):
    for j, n_anchors in enumerate(anchor_counts):
        runs = [evaluate(kind, n_anchors, seed)[:2] for seed in range(n_draws)]
        errors[i, j], accuracy[i, j] = np.mean(runs, axis=0)

header = f"{'anchors':>8} | " + " ".join(f"{k:>8}" for k in kinds)
for title, table in (("translation error", errors), ("stitched accuracy", accuracy)):
    print(f"\n{title} (mean of {n_draws} anchor draw(s))")
    print(header)
    for j, n_anchors in enumerate(anchor_counts):
        print(f"{n_anchors:>8} | " + " ".join(f"{v:8.3f}" for v in table[:, j]))

# %%
# How similar do the spaces look? Linear CKA ignores rotations and isotropic
# scale but not uneven scaling: the per-feature standardisation around the
# orthogonal map already undoes part of it, the affine map nearly all.
print(f"\nCKA(source, target) = {cka(S[test], T[test]):.3f}")
for kind in ("ortho", "affine"):
    aligner = evaluate(kind, anchor_counts[-1], 0)[2]
    print(f"CKA(translated by {kind}, target) = {cka(aligner.translate(S[test]), T[test]):.3f}")

# %%
# The figure
# ----------

fig, (ax_err, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for i, kind in enumerate(kinds):
    ax_err.plot(anchor_counts, errors[i], marker="o", label=kind)
    ax_acc.plot(anchor_counts, accuracy[i], marker="o", label=kind)
ax_acc.axhline(native, color="k", linestyle="--", label="target encoder")
ax_acc.axhline(1 / n_classes, color="grey", linestyle=":", label="chance")
ax_err.set(xscale="log", yscale="log", xlabel="number of anchors", ylabel="translation error")
ax_acc.set(xscale="log", xlabel="number of anchors", ylabel="stitched accuracy", ylim=(0, 1.02))
for ax in (ax_err, ax_acc):
    ax.axvline(d_source, color="grey", linewidth=0.8)  # anchors = source width
    ax.legend()
fig.suptitle("Stitching a 48-d encoder to a 64-d one with AnchorAffineAligner")
plt.show()
