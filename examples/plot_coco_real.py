"""
Real CLIP embeddings: the gap on 500 COCO image-caption pairs
=============================================================

OpenAI CLIP ViT-B/16 embeddings of 500 COCO image-caption pairs, from the
repository of Liang et al. (2022), "Mind the Gap". They have no labels, so this
example looks at geometry and retrieval: the two cones and the gap between
them, and how cross-modal retrieval and the gap change with the shift
:math:`\\lambda`.

The file is not part of the package; :func:`skgap.datasets.load_coco_clip`
looks for it beside the project (or in ``$SKGAP_COCO_CLIP``). Where it is
absent -- a fresh clone, or this page when it was built without it -- the
example runs on **synthetic** embeddings instead: 500 pairs from
:func:`skgap.datasets.make_paired_embeddings` with the ``'coco-clip'`` preset,
whose cone sizes and gap were measured on the real file. The first line of the
output below says which data this page shows, and so do the figure titles;
the remarks about real embeddings hold for the real file only.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import KFold

from skgap import ConeStats, ModalityGapShifter
from skgap.datasets import load_coco_clip, make_paired_embeddings
from skgap.measure import modality_gap, retrieval_recall_at_k
from skgap.plotting import plot_cones, plot_lambda_curves

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"

try:
    X = load_coco_clip()
    source = "real COCO CLIP"
    print("Data: the real CLIP ViT-B/16 embeddings of 500 COCO pairs.")
except FileNotFoundError:
    # Same size, cone sizes and gap as the real file; no labels are used below.
    X, _ = make_paired_embeddings(500, 512, preset="coco-clip", random_state=0)
    source = "synthetic 'coco-clip'"
    print(
        "Data: SYNTHETIC stand-in (make_paired_embeddings, preset='coco-clip'); the real "
        "COCO CLIP embeddings were not found (see skgap.datasets.load_coco_clip)."
    )
d = X.shape[1] // 2
print(f"{X.shape[0]} pairs of {d}-d {source} embeddings")

# %%
# The cones and the gap
# ---------------------

report = ConeStats(random_state=0).fit(X).report()
for key in ("R_image", "R_text", "gap_norm", "mean_pair_cosine", "gap_principal_cosine"):
    print(f"{key:>22}: {report[key]:.3f}")

fig = plot_cones(X, lam=1.0, title=f"Cone effect and modality gap: {source} embeddings")

# %%
# Retrieval against lambda
# ------------------------
# The gap is estimated on one half of the pairs and the retrieval measured on
# the other half (then the halves swap), so no test pair informs the shift.
#
# On the real embeddings the post-hoc shift *costs* retrieval as
# :math:`\lambda` grows: after moving every text by :math:`+\lambda\Delta/2`,
# renormalisation divides text :math:`t_j` by
# :math:`\sqrt{1 + \lambda\, t_j\cdot\Delta + \lambda^2\lVert\Delta\rVert^2/4}`,
# which differs from text to text and so reorders the candidates of each image.
# The shift is a tool for tasks that read both modalities together (probes,
# clustering), not a free improvement for retrieval. (The synthetic stand-in
# matches its pairs far more easily, so there the curves barely move.)

lams = np.linspace(0, 1, 6 if small else 11)
ks = (1, 5)
folds = list(KFold(2, shuffle=True, random_state=0).split(X))
curves = {f"{direction} R@{k}": np.zeros(lams.size)
          for direction in ("image->text", "text->image") for k in ks}
gaps = np.zeros(lams.size)
for i, lam in enumerate(lams):
    for train, test in folds:
        Z = ModalityGapShifter(lam=lam).fit(X[train]).transform(X[test])
        r = retrieval_recall_at_k(Z[:, :d], Z[:, d:], k=ks)
        for k in ks:
            curves[f"image->text R@{k}"][i] += r[f"image_to_text_recall@{k}"] / len(folds)
            curves[f"text->image R@{k}"][i] += r[f"text_to_image_recall@{k}"] / len(folds)
        gaps[i] += modality_gap(Z[:, :d], Z[:, d:])[1] / len(folds)

for name, values in curves.items():
    print(f"{name:>16}: " + "  ".join(f"{v:.3f}" for v in values))

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
plot_lambda_curves(lams, {k.replace("->", "→"): v for k, v in curves.items()}, ax=left,
                   ylabel="recall on held-out pairs (250 per half)",
                   title=f"Cross-modal retrieval against λ ({source})")
plot_lambda_curves(lams, {"gap ‖μ_image − μ_text‖": gaps}, ax=right,
                   ylabel="gap on held-out pairs", title="The gap after the shift")
fig.tight_layout()
plt.show()
