"""
Captioning by retrieval against lambda
======================================

A retrieval captioner answers an image with the training text whose embedding
is the most cosine-similar to the image's,

.. math:: \\hat c(v) = c_{j^*}, \\qquad j^* = \\arg\\max_j \\cos(v, t_j),

the simplest form of the retrieval-augmented report generation that eCLIP
(Kumar & Marttinen) evaluates. Closing the gap moves the images towards the
texts, so it can change which text each image retrieves. This example

1. tunes :math:`\\lambda` of :class:`~skgap.ModalityGapShifter` in a
   pipeline with :class:`~skgap.RetrievalCaptioner`, by a captioning score in
   :class:`~sklearn.model_selection.GridSearchCV` (the texts travel as ``y``);
2. runs :func:`~skgap.gap_sweep` with ``tasks=("captioning",)`` and plots the
   semantic agreement (``text_cosine``) with its floors and ceiling.

The captions are synthetic templates whose words carry the class
(``make_paired_embeddings(..., return_texts=True)``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skgap import ModalityGapShifter, RetrievalCaptioner, gap_sweep
from skgap.datasets import make_paired_embeddings
from skgap.evaluate import make_captioning_scorer, summarize_sweep
from skgap.plotting import plot_gap_sweep

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
n_samples, dim = (400, 32) if small else (1000, 64)
lams = np.linspace(0, 1, 3 if small else 5)

X, y, texts = make_paired_embeddings(n_samples, dim, n_classes=5, preset="coco-clip",
                                     class_sep=1.0, return_texts=True, random_state=0)
print(texts[:3])

# %%
# Tune lambda by a captioning score
# ---------------------------------
# GridSearchCV splits the texts with the rows: each fold's training texts are
# the bank, its held-out texts the references of ROUGE-L.

search = GridSearchCV(
    Pipeline([("gap", ModalityGapShifter()), ("cap", RetrievalCaptioner())]),
    {"gap__lam": lams}, scoring=make_captioning_scorer("rougeL"), cv=3,
).fit(X, texts)
print("ROUGE-L per lambda:", np.round(search.cv_results_["mean_test_score"], 4))
print("chosen lambda:", search.best_params_["gap__lam"])

# %%
# The sweep: scores, floors and the ceiling on the same splits
# ------------------------------------------------------------
# ``text_cosine`` is the cosine between the caption's and the reference's text
# embeddings; ``_random`` (a random training text) and ``_frequent`` (the most
# frequent one) are floors, ``_oracle`` (the training text nearest the
# reference's own embedding) the ceiling. They do not depend on lambda.

table = gap_sweep(X, y, lams=lams, n_seeds=3 if small else 5, tasks=("captioning",),
                  texts=texts)
summary = summarize_sweep(table)
for metric in ("label_accuracy", "rougeL", "text_cosine"):
    rows = summary[summary["metric"] == metric]
    print(metric, dict(zip(rows["lam"].round(2), rows["mean"].round(4))), rows["verdict"].tolist())

fig, ax = plt.subplots(figsize=(5.5, 3.8))
plot_gap_sweep(table, task="captioning", metric="text_cosine", ax=ax)
means = table.groupby("metric")["score"].mean()
for suffix, style in (("_random", ":"), ("_frequent", "-."), ("_oracle", "--")):
    ax.axhline(means["text_cosine" + suffix], color="grey", linestyle=style,
               label=suffix.strip("_"))
ax.legend(fontsize=8)
ax.set_title("Semantic agreement of retrieved captions")
fig.tight_layout()
plt.show()
