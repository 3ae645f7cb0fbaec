"""
The post-hoc family and a trained adapter on the same held-out pairs
====================================================================

Four ways to close the modality gap of frozen CLIP embeddings, each fitted on
the same training pairs and scored on the same held-out pairs:

- **λ shift** (:class:`~skgap.ModalityGapShifter`, ``lam=1``): move both
  modalities onto the midpoint of their centroids, then renormalise;
- **centring** (:class:`~skgap.ModalityCentering`): subtract each modality's
  own training centroid, then renormalise (I0T's post-hoc step);
- **C3** (:class:`~skgap.CollapseCorrupt`): the same centring ("collapse"),
  plus Gaussian noise on the training text rows only ("corrupt"). Held-out rows
  are never corrupted, so on held-out pairs C3 *is* the centring; the noise
  matters for a model trained on its output (text-only training, see the
  class's documentation);
- **adapter** (:class:`~skgap.train.GapClosingAdapter` with its defaults):
  linear heads started at the centring and trained for a few seconds with the
  CLIP loss plus the gap-closing losses of Grassucci et al.

The scores, on held-out pairs: the centroid gap
:math:`\\lVert\\mu_V - \\mu_T\\rVert`, the mean resultant length :math:`R` of
each modality (the cone effect), recall@1 and @5 both ways, and the adjusted
Rand index of 2-means on the pooled image and text embeddings against the
modality of each point (1: the clusters *are* the modalities; 0: the gap no
longer organises the space).

The real CLIP ViT-B/16 embeddings of 500 COCO pairs are used where present
(first 400 pairs to fit, last 100 held out, as in issue 15); elsewhere the
synthetic ``'coco-clip'`` preset stands in for them. Needs torch for the
adapter (``pip install skgap[torch]``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from skgap import CollapseCorrupt, GapClosingAdapter, ModalityCentering, ModalityGapShifter
from skgap.datasets import load_coco_clip, make_paired_embeddings
from skgap.metrics import mean_resultant_length, modality_gap, retrieval_recall_at_k

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
torch.set_num_threads(1)  # small matrices: threads only wait on each other

try:
    X = load_coco_clip()
    source, n_train = "COCO CLIP ViT-B/16", 400
except FileNotFoundError:
    X, _ = make_paired_embeddings(600 if small else 1200, 64, preset="coco-clip",
                                  random_state=0)
    source, n_train = "synthetic 'coco-clip' preset", (400 if small else 900)
d = X.shape[1] // 2
X_train, X_test = X[:n_train], X[n_train:]
print(f"{source}: {len(X_train)} training pairs, {len(X_test)} held out, d = {d}")

# %%
# Fit on the training pairs, transform the held-out pairs
# -------------------------------------------------------

methods = {
    "frozen": None,
    "λ shift (λ=1)": ModalityGapShifter(lam=1.0),
    "centring (α=1)": ModalityCentering(alpha=1.0),
    "C3 (σ=0.1)": CollapseCorrupt(noise_scale=0.1, random_state=0),
    "adapter (defaults)": GapClosingAdapter(random_state=0),
}


def modality_ari(Z):
    """ARI of 2-means on the stacked unit rows against the modality of each row."""
    pooled = np.vstack([Z[:, :d], Z[:, d:]])
    clusters = KMeans(2, n_init=4, random_state=0).fit_predict(pooled)
    return adjusted_rand_score(np.repeat([0, 1], len(Z)), clusters)


def scores(Z):
    V, T = Z[:, :d], Z[:, d:]
    r = retrieval_recall_at_k(V, T, k=(1, 5))
    return {
        "gap": modality_gap(V, T)[1],
        "R_image": mean_resultant_length(V),
        "R_text": mean_resultant_length(T),
        "i→t R@1": r["image_to_text_recall@1"],
        "i→t R@5": r["image_to_text_recall@5"],
        "t→i R@1": r["text_to_image_recall@1"],
        "t→i R@5": r["text_to_image_recall@5"],
        "modality ARI": modality_ari(Z),
    }


table = {}
for name, method in methods.items():
    Z = X_test if method is None else method.fit(X_train).transform(X_test)
    table[name] = scores(Z)

columns = list(next(iter(table.values())))
width = max(map(len, table)) + 2
print("\n" + "method".ljust(width) + "".join(c.rjust(13) for c in columns))
for name, row in table.items():
    print(name.ljust(width) + "".join(f"{row[c]:13.3f}" for c in columns))

# %%
# Reading the table: on the real COCO embeddings the λ shift closes the gap
# but costs retrieval, because renormalising after a common shift rescales the
# texts by different amounts and reorders each image's candidates. Centring
# removes each cone's *own* offset, the part every embedding of a modality
# shares and no query can use, so it closes the gap about as far while
# retrieval rises. C3 equals the centring on held-out rows (its noise is for
# training rows only). The adapter starts at the centring and trains from
# there; its retrieval stays within a few points of the frozen embeddings.

fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
names = list(table)
x = np.arange(len(names))
panels = [
    ("held-out gap", ["gap"]),
    ("cone effect R", ["R_image", "R_text"]),
    ("retrieval", ["i→t R@1", "t→i R@1", "i→t R@5", "t→i R@5"]),
    ("2-means vs modality (ARI)", ["modality ARI"]),
]
for ax, (title, keys) in zip(axes, panels):
    w = 0.8 / len(keys)
    for j, key in enumerate(keys):
        ax.bar(x + (j - (len(keys) - 1) / 2) * w, [table[n][key] for n in names], w, label=key)
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    if len(keys) > 1:
        ax.legend(fontsize=7)
fig.suptitle(f"{source}: fit on {len(X_train)} pairs, scored on {len(X_test)} held out")
fig.tight_layout()
plt.show()
