"""Degenerate and trivial tasks are named, leakage and easy tasks told apart, and the
label-free tasks run without labels (skgap/evaluate/_degenerate.py, _sweep.py)."""

import warnings

import numpy as np
import pytest

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import DegenerateTaskWarning, LabelLeakageWarning, gap_sweep, summarize_sweep
from skgap.evaluate._degenerate import constant_metrics, duplicate_rows_reason

D = 12


@pytest.fixture(scope="module")
def classes3():
    return make_paired_embeddings(240, D, n_classes=3, class_sep=1.0, preset="coco-clip",
                                  random_state=0)


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [w.message for w in caught]


def test_class_name_captions_make_retrieval_degenerate_with_the_counts(classes3):
    X, y = classes3
    names = np.random.RandomState(0).normal(size=(3, D))
    X = X.copy()
    X[:, D:] = names[y]
    _, found = _caught(lambda: gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2,
                                         tasks=("retrieval",)))
    degenerate = [w for w in found if isinstance(w, DegenerateTaskWarning)]
    assert len(degenerate) == 1
    assert degenerate[0].task == "retrieval"
    assert degenerate[0].reason.startswith("degenerate: 3 distinct texts for 240 pairs")


def test_distinct_rows_are_not_degenerate(classes3):
    X, y = classes3
    _, found = _caught(lambda: gap_sweep(X, y, lams=[0.0], n_seeds=1, tasks=("retrieval",)))
    assert not [w for w in found if isinstance(w, DegenerateTaskWarning)]


def test_duplicate_rows_reason_counts_tied_rows():
    rng = np.random.RandomState(0)
    V = rng.normal(size=(10, 4))
    T = rng.normal(size=(10, 4))
    slices = (slice(0, 4), slice(4, 8))
    assert duplicate_rows_reason(np.hstack([V, T]), slices) is None
    T[:6] = T[0]  # six of ten rows tie: ties decide most ranks
    assert duplicate_rows_reason(np.hstack([V, T]), slices) == (
        "degenerate: 5 distinct texts for 10 pairs; ties decide the retrieval ranks")
    T[:6] = rng.normal(size=(6, 4))
    T[:4] = T[0]  # four of ten: not most
    assert duplicate_rows_reason(np.hstack([V, T]), slices) is None


def test_copied_labels_and_an_easy_task_get_one_message_each(classes3):
    X, y = classes3
    rng = np.random.RandomState(0)
    copied = X.copy()
    copied[:, D:] = rng.normal(size=(3, D))[y]
    _, found = _caught(lambda: gap_sweep(copied, y, lams=[0.0], n_seeds=1))
    assert len(found) == 1 and isinstance(found[0], LabelLeakageWarning)
    assert "copies the label" in str(found[0]) and found[0].task == "fusion"

    easy = X.copy()
    easy[:, :D] = 5 * np.eye(3, D)[y] + 0.01 * rng.normal(size=(y.size, D))
    easy[:, D:] = 5 * np.eye(3, D)[y] + 0.01 * rng.normal(size=(y.size, D))
    _, found = _caught(lambda: gap_sweep(easy, y, lams=[0.0], n_seeds=1))
    assert len(found) == 1 and isinstance(found[0], DegenerateTaskWarning)
    assert not isinstance(found[0], LabelLeakageWarning)
    assert "the task is easy" in str(found[0]) and "leak" in str(found[0])
    assert found[0].reason.startswith("trivial: image-only and text-only probes both")

    leaky = X.copy()
    leaky[:, D:] = 5 * np.eye(3, D)[y] + 0.01 * rng.normal(size=(y.size, D))
    _, found = _caught(lambda: gap_sweep(leaky, y, lams=[0.0], n_seeds=1))
    assert len(found) == 1 and isinstance(found[0], LabelLeakageWarning)
    assert "text-only probe scores AUC 1.0000 while an image-only one" in str(found[0])


def test_retrieval_runs_without_labels(classes3):
    X, y = classes3
    table = gap_sweep(X, None, lams=[0.0, 0.5], n_seeds=2, tasks=("retrieval",),
                      as_frame=False)
    assert set(table["task"].tolist()) == {"retrieval"}
    assert np.isfinite(table["score"]).all() and np.isfinite(table["gap_norm"]).all()
    with pytest.raises(ValueError, match=r"y is None.*\['fusion'\] need labels"):
        gap_sweep(X, None, lams=[0.0], n_seeds=1, tasks=("retrieval", "fusion"))
    with pytest.raises(ValueError, match="leave them None"):
        gap_sweep(X, None, lams=[0.0], n_seeds=1, tasks=("retrieval",), task="binary")


def test_constant_metrics_names_a_flat_metric_only():
    table = {"task": ["fusion"] * 4 + ["image"] * 4, "metric": ["auc"] * 8,
             "lam": [0, 0, 1, 1] * 2, "seed": [0, 1] * 4,
             "score": [1.0, 1.0, 1.0, 1.0, 0.7, 0.8, 0.75, 0.9]}
    reasons = constant_metrics(summarize_sweep(table, as_frame=False))
    assert list(reasons) == [("fusion", "auc")]
    assert reasons[("fusion", "auc")].startswith("trivial: 1.0000 at every lambda")
