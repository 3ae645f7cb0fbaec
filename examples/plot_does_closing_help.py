"""
Does closing the gap help? Every task, the converged and the paper's probe
==========================================================================

:func:`skgap.evaluate.gap_sweep` scores several task families on the same
random splits and the same shifted rows, and
:func:`skgap.evaluate.summarize_sweep` compares every :math:`\\lambda` with
:math:`\\lambda = 0` on each split: the mean paired change, its t-interval and a
verdict (helps, hurts, no evidence).

We run it on the two synthetic presets (calibrated to CLIP on COCO and on
MIMIC-CXR), with two probes: a converged class-weighted logistic regression
(the default) and the probe as the cone-effect paper trains it
(``probe="paper"``: SGD with momentum 0.9 at learning rate 3e-4, early
stopping). Then, where the shared COCO CLIP embeddings are present, retrieval
on real data. Set ``SKGAP_EXAMPLE_SMALL=1`` for a quick run.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from skgap.datasets import load_coco_clip, make_paired_embeddings
from skgap.evaluate import gap_sweep, summarize_sweep
from skgap.plotting import plot_gap_sweep

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
# The paper's probe trains for up to thousands of SGD epochs: the small run
# (the test suite's) keeps its fits few.
n_samples, n_seeds = (300, 2) if small else (2000, 5)
lams = np.linspace(-0.5, 1.0, 4 if small else 7)
tasks = ("fusion", "image", "zeroshot", "retrieval", "clustering", "text_to_image")

# %%
# One sweep per preset and probe
# ------------------------------
# Four classes; each class is seen partly by the image and partly by the text.

tables, summaries = {}, {}
for preset in ("coco-clip", "mimic-clip"):
    X, y = make_paired_embeddings(n_samples, 64, n_classes=4, class_sep=1.0, noise=3.0,
                                  preset=preset, random_state=0)
    for probe in ("converged", "paper"):
        key = f"{preset}, {probe} probe"
        tables[key] = gap_sweep(X, y, lams=lams, n_seeds=n_seeds, tasks=tasks,
                                probe=None if probe == "converged" else "paper",
                                random_state=0)
        summaries[key] = summarize_sweep(tables[key])

# %%
# The verdicts, task by task
# --------------------------
# For each task and metric: the change from :math:`\lambda = 0` at
# :math:`\lambda = 1` (closing the gap) and at :math:`\lambda = -0.5`
# (widening it), with the verdict of the 95% interval.


def verdict_table(summary):
    rows = summary[summary["lam"].isin([-0.5, 1.0])]
    rows = rows[~rows["metric"].str.startswith(("i2t_R@5", "t2i_R@5", "i2t_R@10", "t2i_R@10"))]
    return rows.pivot_table(index=["task", "metric"], columns="lam",
                            values=["diff", "verdict"], aggfunc="first")


for key, summary in summaries.items():
    print(f"\n{key}")
    print(verdict_table(summary).to_string())

# %%
# The probe curves side by side
# -----------------------------
# Bars: the 95% interval of the paired change from :math:`\lambda = 0`.

fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
for ax, preset in zip(axes, ("coco-clip", "mimic-clip")):
    plot_gap_sweep({probe: tables[f"{preset}, {probe} probe"]
                    for probe in ("converged", "paper")}, ax=ax, paired=True,
                   title=f"synthetic {preset}: early-fusion probe AUC")
fig.tight_layout()

# %%
# Other task families
# -------------------

fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
for ax, (task, metric) in zip(axes, [("zeroshot", "accuracy"), ("retrieval", "i2t_R@1"),
                                     ("clustering", "ARI")]):
    plot_gap_sweep({p: tables[f"{p}, converged probe"] for p in ("coco-clip", "mimic-clip")},
                   task=task, metric=metric, ax=ax)
fig.tight_layout()

# %%
# Real CLIP embeddings (COCO)
# ---------------------------
# The 500 COCO pairs have no labels, so only retrieval applies; it ignores
# the labels, and a placeholder label (row parity) only serves the splits.

try:
    X_coco = load_coco_clip()
except FileNotFoundError as exc:
    print(f"Skipping the real-data sweep: {exc}")
else:
    parity = np.arange(X_coco.shape[0]) % 2
    coco = gap_sweep(X_coco, parity, lams=lams, n_seeds=n_seeds, tasks=("retrieval",),
                     random_state=0)
    s = summarize_sweep(coco)
    print(s[s["metric"].isin(["i2t_R@1", "t2i_R@1"])][
        ["metric", "lam", "mean", "diff", "ci_low", "ci_high", "verdict"]].to_string())
    plot_gap_sweep(coco, task="retrieval", metric="i2t_R@1",
                   title="COCO CLIP ViT-B/16: image→text R@1 (100 test pairs per split)")
plt.show()
