"""
Searching lambda on a dask cluster
==================================

The choice of the gap-shift :math:`\\lambda` is a set of independent fits --
one per cross-validation fold (and, for ``GridSearchCV``, per candidate) --
so it spreads over a cluster with no change to the estimator: joblib's
``dask`` backend ships each fit to a ``dask.distributed`` worker.

This example starts a :class:`~distributed.LocalCluster` on loopback. On a
real cluster, replace it with ``Client("tcp://scheduler-address:8786")``;
nothing else changes. It also measures the embeddings as a dask array: the
statistics of :class:`~skgap.ConeStats` are a map-reduce over row blocks.

Set ``SKGAP_EXAMPLE_SMALL=1`` for a quick run.
"""

# %%
# Data: synthetic CLIP-like paired embeddings with binary labels.
import os

import joblib
import numpy as np
from dask import array as da
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from skgap.datasets import make_paired_embeddings
from skgap.measure._cone_stats import ConeStats
from skgap.transform._shift import ModalityGapShifter
from skgap.transform._shift_cv import ModalityGapShifterCV

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
n, d = (400, 16) if small else (4000, 128)
X, y = make_paired_embeddings(n, d, 2, preset="coco-clip", noise=6.0, random_state=0)
lams = np.linspace(0.0, 1.0, 5 if small else 11)
folds = StratifiedKFold(3 if small else 5, shuffle=True, random_state=0)

# %%
# A cluster on loopback: its workers are threads of this process, reached
# over TCP on 127.0.0.1; on a real cluster they are processes on other
# machines.
cluster = LocalCluster(
    n_workers=2,
    threads_per_worker=1,
    processes=False,
    protocol="tcp://",  # tasks and results travel over TCP on 127.0.0.1
    host="127.0.0.1",
    dashboard_address=":0",  # any free port: several clusters may run
)
client = Client(cluster)
print(client)

# %%
# The fast search: each fold is one task (its whole lambda path, with the
# probe warm-started along it). ``n_jobs=-1`` lets the backend decide.
with joblib.parallel_backend("dask"):
    # select="best" compares like with like against GridSearchCV's highest
    # mean; the default, "one_se", prefers the smallest lambda within noise.
    search = ModalityGapShifterCV(
        lams, cv=folds, scoring="roc_auc", n_jobs=-1, select="best"
    ).fit(X, y)
print(
    f"ModalityGapShifterCV: selected lambda = {search.lam_:.2f}, "
    f"CV AUC = {search.best_score_:.4f}"
)

# %%
# The same search with ``GridSearchCV`` over a pipeline: one task per fold and
# lambda, all independent.
pipe = Pipeline([("shifter", ModalityGapShifter()), ("probe", LogisticRegression())])
with joblib.parallel_backend("dask"):
    grid = GridSearchCV(
        pipe, {"shifter__lam": list(lams)}, cv=folds, scoring="roc_auc", n_jobs=-1
    ).fit(X, y)
print(
    f"GridSearchCV:         selected lambda = {grid.best_params_['shifter__lam']:.2f}, "
    f"CV AUC = {grid.best_score_:.4f}"
)

# %%
# The statistics of the embeddings as a reduction over row blocks: each block
# computes its sums of unit vectors and its share of the row sample, and the
# small results are merged. The answer equals the in-memory one.
dX = da.from_array(X, chunks=(n // 4, 2 * d))
on_cluster = ConeStats(random_state=0).fit(dX)
in_memory = ConeStats(random_state=0).fit(X)
print(f"gap on the cluster {on_cluster.gap_norm_:.6f}, in memory {in_memory.gap_norm_:.6f}")

client.close()
cluster.close()
