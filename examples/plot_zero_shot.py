"""
Zero-shot classification, and with a vision-only encoder
=========================================================

A CLIP-style model classifies an image with no training examples: the class
whose prompt embedding is the most cosine-similar wins.
:class:`~skgap.ZeroShotClassifier` does this on stored embeddings, averaging
several prompts per class (a prompt ensemble).

A *vision-only* encoder has no text tower, so its embeddings cannot be compared
with prompts at all -- unless an :class:`~skgap.AnchorAffineAligner` first maps
them into the text space, from anchor pairs (images with their reports) seen by
both encoders. That is the unimodal zero-shot classification of Di Folco et
al. (2025). Here the vision-only encoder is simulated as a rotated, unevenly
scaled, shifted and noisy view of the CLIP image space; we measure zero-shot
accuracy against the number of anchors.
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator

from skgap import AnchorAffineAligner, ZeroShotClassifier, pair, unpair
from skgap.datasets import make_paired_embeddings
from skgap.transform._align import IllPosedAlignmentWarning

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
rng = np.random.default_rng(0)

# %%
# Embeddings, prompts and a vision-only encoder
# ----------------------------------------------
# Paired image and text embeddings of five classes, with the cone and gap of
# CLIP on COCO. As the text prompts of a class we use the embeddings of 20
# held-out captions of that class: five prompt ensembles of shape (5, 20, d).

n_classes, dim = 5, 64
X, y = make_paired_embeddings(
    1500 if small else 4000, dim, n_classes=n_classes, preset="coco-clip",
    class_sep=1.0, random_state=0,
)
V, T = unpair(X)
order = rng.permutation(len(y))
prompt_rows, anchor_rows, test_rows = np.split(order, [250, 750 if small else 1500])
prompts = np.stack([T[prompt_rows][y[prompt_rows] == k][:20] for k in range(n_classes)])
print(f"prompt ensembles: {prompts.shape}")

# The vision-only encoder sees the same images in a space of its own.
Q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
S = (V @ Q) * rng.uniform(0.5, 2.0, dim) + 0.3 + 0.05 * rng.standard_normal(V.shape)

# %%
# Zero-shot with and without the aligner
# --------------------------------------
# The CLIP image tower shares the text space, so its embeddings can be
# classified directly. The vision-only embeddings, scored against the prompts
# as they are, land at chance: their axes mean nothing in the text space.

clip = ZeroShotClassifier(class_embeddings=prompts).fit(V[test_rows], y[test_rows])
acc_clip = clip.score(V[test_rows], y[test_rows])
raw = ZeroShotClassifier(class_embeddings=prompts).fit(S[test_rows], y[test_rows])
acc_raw = raw.score(S[test_rows], y[test_rows])
print(f"CLIP image tower, zero-shot accuracy:          {acc_clip:.3f}")
print(f"vision-only encoder without an aligner:        {acc_raw:.3f}")
print(f"chance:                                        {1 / n_classes:.3f}")

# %%
# Accuracy against the number of anchors
# --------------------------------------
# Each anchor is one image (vision-only embedding) with its report (text
# embedding). The aligner maps the vision-only space onto the *text* space,
# crossing the modality gap in the same step. ``FrozenEstimator`` keeps the
# fitted aligner as it is when the classifier is cloned.

anchor_counts = [8, 16, 32, 64, 128, 256] + ([] if small else [512, 1024])
kinds = ["ortho", "affine"]
accuracy = {kind: [] for kind in kinds}
for kind in kinds:
    for n_anchors in anchor_counts:
        rows = anchor_rows[:n_anchors]
        with warnings.catch_warnings():
            # Fewer anchors than dimensions: the affine fit is ill posed (it warns).
            warnings.simplefilter("ignore", IllPosedAlignmentWarning)
            aligner = AnchorAffineAligner(kind=kind).fit(pair(S[rows], T[rows]))
        clf = ZeroShotClassifier(class_embeddings=prompts, aligner=FrozenEstimator(aligner))
        clf.fit(S[test_rows], y[test_rows])
        accuracy[kind].append(clf.score(S[test_rows], y[test_rows]))

print(f"{'anchors':>8} | " + " ".join(f"{k:>7}" for k in kinds))
for j, n_anchors in enumerate(anchor_counts):
    print(f"{n_anchors:>8} | " + " ".join(f"{accuracy[k][j]:7.3f}" for k in kinds))

# %%
# The orthogonal map has few degrees of freedom and works with a few dozen
# anchors; the affine map needs more anchors than dimensions (64 here) before
# it is even well posed, then models the uneven scaling the rotation cannot.

fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
for kind in kinds:
    ax.plot(anchor_counts, accuracy[kind], marker="o", label=f"vision-only + {kind} aligner")
ax.axhline(acc_clip, color="k", linestyle="--", label="CLIP image tower")
ax.axhline(acc_raw, color="tab:red", linestyle="-.", label="vision-only, no aligner")
ax.axhline(1 / n_classes, color="grey", linestyle=":", label="chance")
ax.axvline(dim, color="grey", linewidth=0.8)
ax.set(xscale="log", xlabel="number of anchor pairs", ylabel="zero-shot accuracy",
       ylim=(0, 1.02), title="Unimodal zero-shot classification through an aligner")
ax.legend(loc="lower right", fontsize="small")
plt.show()
