import sys

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import LateFusionClassifier, _sweep, gap_sweep
from skgap.measure import mean_resultant_length, modality_gap, retrieval_recall_at_k
from skgap.transform._shift import ModalityGapShifter


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def binary():
    return make_paired_embeddings(240, 16, preset="mimic-clip", noise=4.0, random_state=0)


def _wide(table, task="fusion", metric="auc"):
    """Scores of one task and metric as (n_seeds, n_lams), lambdas in table order."""
    mask = (np.asarray(table["task"]) == task) & (np.asarray(table["metric"]) == metric)
    seeds = np.unique(table["seed"][mask])
    return np.asarray(table["score"][mask], dtype=float).reshape(seeds.size, -1)


def test_table_layout(binary):
    X, y = binary
    table = gap_sweep(X, y, lams=[0.0, 0.5, 1.0], n_seeds=3, as_frame=False)
    assert list(table) == ["task", "metric", "lam", "seed", "score", "gap_norm", "R_image",
                           "R_text", "n_train", "n_test"]
    assert set(table["n_train"]) == {X.shape[0] - int(np.ceil(0.2 * X.shape[0]))}
    assert set(table["n_test"]) == {int(np.ceil(0.2 * X.shape[0]))}
    np.testing.assert_array_equal(table["lam"], [0, 0.5, 1] * 3)
    np.testing.assert_array_equal(table["seed"], np.repeat([0, 1, 2], 3))
    assert set(table["task"]) == {"fusion"} and set(table["metric"]) == {"auc"}
    assert np.all((table["score"] > 0.5) & (table["score"] <= 1))
    # The gap shrinks with lambda on every split.
    gaps = table["gap_norm"].reshape(3, 3)
    assert np.all(np.diff(gaps, axis=1) < 0)


def test_frame_and_dict_outputs(binary):
    X, y = binary
    pd = pytest.importorskip("pandas")
    frame = gap_sweep(X, y, lams=[0, 1], n_seeds=2)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (4, 10)
    as_dict = gap_sweep(X, y, lams=[0, 1], n_seeds=2, as_frame=False)
    np.testing.assert_allclose(frame["score"].to_numpy(), as_dict["score"])
    with pytest.raises(ValueError, match="as_frame"):
        gap_sweep(X, y, lams=[0], n_seeds=1, as_frame="yes")


def test_frame_without_pandas(binary, monkeypatch):
    X, y = binary
    from skgap.evaluate import _table

    # Simulate a missing pandas (sklearn itself peeks at sys.modules["pandas"]).
    monkeypatch.setattr(_table, "_pandas", lambda: None)
    out = gap_sweep(X, y, lams=[0], n_seeds=1)
    assert isinstance(out, dict)
    with pytest.raises(ImportError, match="skgap\\[pandas\\]"):
        gap_sweep(X, y, lams=[0], n_seeds=1, as_frame=True)


class _RecordingShifter(ModalityGapShifter):
    fitted_on = []

    def fit(self, X, y=None):
        type(self).fitted_on.append(np.asarray(X).copy())
        return super().fit(X, y)


def test_shifter_sees_the_training_rows_only(binary, monkeypatch):
    X, y = binary
    _RecordingShifter.fitted_on = []
    monkeypatch.setattr(_sweep, "ModalityGapShifter", _RecordingShifter)
    table = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, test_size=0.25, random_state=7,
                      as_frame=False)
    seeds = np.random.RandomState(7).randint(np.iinfo(np.int32).max, size=2)
    # One fit per split (the leakage check may add one on the first split's rows).
    assert 2 <= len(_RecordingShifter.fitted_on) <= 3
    for s, seed in enumerate(seeds):
        train, test = train_test_split(np.arange(240), test_size=0.25, stratify=y,
                                       random_state=int(seed))
        # Its centroids serve every lambda; fitted on the split's training rows.
        np.testing.assert_array_equal(_RecordingShifter.fitted_on[s], X[np.sort(train)])
        # The recorded geometry is that of the shifted test rows.
        Z = ModalityGapShifter(lam=1.0).fit(X[train]).transform(X[np.sort(test)])
        row = 2 * s + 1
        assert table["gap_norm"][row] == pytest.approx(modality_gap(Z[:, :16], Z[:, 16:])[1])
        assert table["R_text"][row] == pytest.approx(mean_resultant_length(Z[:, 16:]))


class _RecordingProbe(LogisticRegression):
    seen = []

    def fit(self, X, y, sample_weight=None):
        type(self).seen.append(np.bincount(y))
        return super().fit(X, y, sample_weight)


def test_splits_are_stratified():
    X, y = make_paired_embeddings(200, 8, random_state=1)
    y = (np.arange(200) % 4 == 0).astype(int)  # 25 % positives
    _RecordingProbe.seen = []
    gap_sweep(X, y, lams=[0.0], n_seeds=4, probe=_RecordingProbe(), as_frame=False)
    counts = np.array(_RecordingProbe.seen)
    # Four splits, and the text-only leakage check on the first split.
    np.testing.assert_array_equal(counts, [[120, 40]] * 5)


def test_unstratifiable_labels_fall_back_with_a_warning():
    X, _ = make_paired_embeddings(60, 8, random_state=1)
    y = np.zeros(60, dtype=int)
    y[:30] = 1
    y[0] = 2  # a class of one row
    with pytest.warns(UserWarning, match="cannot stratify"):
        table = gap_sweep(X, y, lams=[0.0], n_seeds=2, as_frame=False)
    assert table["score"].shape == (2,)


def test_multiclass_and_multilabel():
    X, y = make_paired_embeddings(200, 12, n_classes=3, random_state=0)
    table = gap_sweep(X, y, lams=[0, 1], n_seeds=2, as_frame=False)
    assert np.all(table["score"] > 0.6)
    X, Y = make_paired_embeddings(200, 12, n_classes=3, multilabel=True, random_state=0)
    table = gap_sweep(X, Y, lams=[0, 1], n_seeds=2, as_frame=False)
    assert list(dict.fromkeys(table["metric"])) == ["auc", "auc_0", "auc_1", "auc_2"]
    per_label = np.stack([_wide(table, metric=f"auc_{j}") for j in range(3)], axis=-1)
    np.testing.assert_allclose(_wide(table), np.nanmean(per_label, axis=-1))


def test_a_label_missing_from_a_test_split_is_reported():
    X, Y = make_paired_embeddings(60, 8, n_classes=3, multilabel=True, random_state=0)
    Y[:, 2] = 0
    Y[:2, 2] = 1  # two positives: some test split of 12 rows has none
    with pytest.warns(UserWarning, match=r"no positive or no negative.*auc_2 \(seed"):
        table = gap_sweep(X, Y, lams=[0], n_seeds=4, as_frame=False)
    auc2 = _wide(table, metric="auc_2").ravel()
    assert np.isnan(auc2).any()  # kept in the table, as NaN, not dropped
    assert table["score"][table["metric"] == "auc_2"].size == 4


def test_custom_probe_and_more_modalities():
    X, y = make_paired_embeddings(160, 8, random_state=0)
    table = gap_sweep(X, y, lams=[0, 1], n_seeds=1, probe=LateFusionClassifier(),
                      as_frame=False)
    assert table["score"].shape == (2,)
    three = np.hstack([X, X[:, :8]])
    with pytest.warns(UserWarning, match=r"lams \[0.5\] has no 0 .* adding lambda = 0"):
        table = gap_sweep(three, y, lams=[0.5], n_seeds=1, modality_dims=(8, 8, 8),
                          as_frame=False)
    assert table["lam"].tolist() == [0.0, 0.5]
    assert list(table)[5:] == ["gap_norm_m1", "gap_norm_m2", "R_m0", "R_m1", "R_m2",
                               "n_train", "n_test"]
    # Block m2 repeats the image block: no gap between them.
    assert table["gap_norm_m2"][1] == pytest.approx(0.0, abs=1e-6)


def test_reproducible_and_parallel_equal(binary):
    X, y = binary
    tasks = ("fusion", "clustering", "zeroshot")
    a = gap_sweep(X, y, lams=[0, 1], n_seeds=2, random_state=3, tasks=tasks, as_frame=False)
    # Threads, not processes: the parallel path without the start-up cost of workers.
    with parallel_config(backend="threading"):
        b = gap_sweep(X, y, lams=[0, 1], n_seeds=2, random_state=3, tasks=tasks,
                      as_frame=False, n_jobs=2)
    c = gap_sweep(X, y, lams=[0, 1], n_seeds=2, random_state=4, tasks=tasks, as_frame=False)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.allclose(a["score"], c["score"])


def test_progress_bar(binary, capsys, monkeypatch):
    X, y = binary
    gap_sweep(X, y, lams=[0, 1], n_seeds=1, progress=True, as_frame=False)
    assert "gap sweep" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.warns(UserWarning, match="needs tqdm"):
        gap_sweep(X, y, lams=[0], n_seeds=1, progress=True, as_frame=False)


def test_narrow_cones_gain_from_closing_the_gap():
    """The paper's finding, on the MIMIC-calibrated preset: AUC(1) > AUC(0) on every split."""
    X, y = make_paired_embeddings(2000, 64, preset="mimic-clip", noise=4.0, random_state=0)
    table = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=3, as_frame=False)
    auc = _wide(table)
    assert np.all(auc[:, 1] > auc[:, 0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lams": []}, ValueError, "at least one"),
        ({"lams": [0, 1.5]}, ValueError, r"\[-1, 1\]"),
        ({"lams": [-1.01]}, ValueError, r"\[-1, 1\]"),
        ({"lams": [np.nan]}, ValueError, "finite"),
        ({"lams": [0, 0]}, ValueError, "twice"),
        ({"tasks": ("fusion", "speed")}, ValueError, "unknown task"),
        ({"tasks": ()}, ValueError, "at least one"),
        ({"tasks": ("fusion", "fusion")}, ValueError, "twice"),
        ({"class_embeddings": np.eye(2, 16)}, ValueError, "zeroshot"),
        ({"tasks": "zeroshot", "class_embeddings": np.eye(3, 16)}, ValueError, "3 rows"),
        ({"tasks": "zeroshot", "class_embeddings": {0: np.ones(16)}}, ValueError, "class"),
        ({"tasks": "zeroshot", "class_embeddings": np.eye(2, 5)}, ValueError, "5-d"),
        ({"path": "alpha"}, ValueError, "needs a transformer"),
        ({"transformer": ModalityGapShifter(), "path": "alpha"}, ValueError, "not a parameter"),
        ({"transformer": object()}, TypeError, "transformer"),
        ({"probe": "logreg"}, ValueError, "'paper'"),
        ({"probe": object()}, TypeError, "classifier"),
        ({"n_seeds": 0}, ValueError, "n_seeds"),
        ({"n_seeds": True}, ValueError, "n_seeds"),
        ({"test_size": 0.0}, ValueError, "test_size"),
        ({"test_size": 1.0}, ValueError, "test_size"),
        ({"test_size": "half"}, ValueError, "test_size"),
        ({"test_size": 1}, ValueError, "too few rows"),
        ({"test_size": 0.001}, ValueError, "at least 2"),
        ({"task": "multiclass"}, ValueError, "task='binary'"),
        ({"direction": "up"}, ValueError, "direction"),
        ({"progress": "yes"}, ValueError, "progress"),
        ({"modality_dims": (10, 20)}, ValueError, "sums to"),
    ],
)
def test_bad_arguments(binary, kwargs, error, match):
    X, y = binary
    with pytest.raises(error, match=match):
        gap_sweep(X, y, **{"lams": [0.0], "n_seeds": 1, **kwargs})


def test_bad_data(binary):
    X, y = binary
    with pytest.raises(ValueError, match="inconsistent"):
        gap_sweep(X, y[:-1], lams=[0], n_seeds=1)
    with pytest.raises(ValueError, match="continuous"):
        gap_sweep(X, np.linspace(0, 1, 240), lams=[0], n_seeds=1)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gap_sweep(bad, y, lams=[0], n_seeds=1)


# -- lambda beyond [0, 1], any paired transformer, n_jobs ------------------------


def _unit(B):
    return B / np.linalg.norm(B, axis=1, keepdims=True)


def _split(X, y, random_state=0, test_size=0.2, n_seeds=1, s=0, stratify=True):
    seeds = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max, size=n_seeds)
    train, test = train_test_split(np.arange(X.shape[0]), test_size=test_size,
                                   stratify=y if stratify else None, random_state=int(seeds[s]))
    return np.sort(train), np.sort(test)


def test_negative_lambda_widens_the_gap_as_eq5_says(binary):
    X, y = binary
    table = gap_sweep(X, y, lams=[-1.0, -0.5, 0.0], n_seeds=1, as_frame=False)
    assert np.all(np.diff(table["gap_norm"]) < 0)  # the gap shrinks from -1 to 0
    train, test = _split(X, y)
    V, T = _unit(X[train][:, :16]), _unit(X[train][:, 16:])
    delta = V.mean(0) - T.mean(0)
    Vt = _unit(_unit(X[test][:, :16]) + 0.5 * delta / 2)  # lam = -0.5: v - lam * delta / 2
    Tt = _unit(_unit(X[test][:, 16:]) - 0.5 * delta / 2)
    assert table["gap_norm"][1] == pytest.approx(np.linalg.norm(Vt.mean(0) - Tt.mean(0)))
    assert table["R_image"][1] == pytest.approx(np.linalg.norm(Vt.mean(0)))


class _ScaledCentering(TransformerMixin, BaseEstimator):
    """Subtract a fraction of each block's training centroid, then renormalise."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, X, y=None):
        d = X.shape[1] // 2
        self.means_ = [_unit(X[:, :d]).mean(0), _unit(X[:, d:]).mean(0)]
        return self

    def transform(self, X):
        d = X.shape[1] // 2
        return np.hstack([_unit(_unit(X[:, :d]) - self.alpha * self.means_[0]),
                          _unit(_unit(X[:, d:]) - self.alpha * self.means_[1])])


def test_any_paired_transformer_and_its_path(binary):
    X, y = binary
    table = gap_sweep(X, y, lams=[0.0, 0.7], n_seeds=2, tasks=("fusion", "retrieval"),
                      transformer=_ScaledCentering(), path="alpha", as_frame=False)
    for s in range(2):
        train, test = _split(X, y, n_seeds=2, s=s)
        for j, alpha in enumerate([0.0, 0.7]):
            t = _ScaledCentering(alpha).fit(X[train])
            probe = LogisticRegression(class_weight="balanced", max_iter=1000)
            probe.fit(t.transform(X[train]), y[train])
            Z = t.transform(X[test])
            want = roc_auc_score(y[test], probe.predict_proba(Z)[:, 1])
            assert _wide(table)[s, j] == pytest.approx(want)
            r = retrieval_recall_at_k(Z[:, :16], Z[:, 16:], k=(5,))
            assert _wide(table, "retrieval", "i2t_R@5")[s, j] == pytest.approx(
                r["image_to_text_recall@5"])
    # A transformer's own values are not limited to [-1, 1].
    gap_sweep(X, y, lams=[0.0, 2.0], n_seeds=1, transformer=_ScaledCentering(), path="alpha")


class _NoisyTraining(_ScaledCentering):
    """Like C3's corrupt step: noise on the training rows only, never at transform."""

    def fit_transform(self, X, y=None):
        Z = self.fit(X).transform(X)
        return Z + np.random.RandomState(0).normal(scale=0.5, size=Z.shape)


def test_training_rows_go_through_fit_transform(binary):
    X, y = binary
    a = gap_sweep(X, y, lams=[0.5], n_seeds=1, transformer=_ScaledCentering(), path="alpha",
                  as_frame=False)
    b = gap_sweep(X, y, lams=[0.5], n_seeds=1, transformer=_NoisyTraining(), path="alpha",
                  as_frame=False)
    assert a["score"][0] != b["score"][0]
    np.testing.assert_allclose(a["gap_norm"], b["gap_norm"])  # test rows: transform only


def test_the_default_shift_equals_modality_gap_shifter_in_its_range(binary):
    X, y = binary
    a = gap_sweep(X, y, lams=[0.0, 0.4, 1.0], n_seeds=2, as_frame=False)
    b = gap_sweep(X, y, lams=[0.0, 0.4, 1.0], n_seeds=2, transformer=ModalityGapShifter(),
                  path="lam", as_frame=False)
    np.testing.assert_allclose(a["score"], b["score"])
    np.testing.assert_allclose(a["gap_norm"], b["gap_norm"], rtol=1e-10)


def _centred_gap(X, train, test):
    """Held-out centroid gap after I0T's centring, by hand: unit rows minus training means."""
    d = X.shape[1] // 2
    blocks = []
    for sl in (slice(0, d), slice(d, None)):
        mu = _unit(X[train][:, sl]).mean(axis=0)
        blocks.append(_unit(_unit(X[test][:, sl]) - mu))
    return np.linalg.norm(blocks[0].mean(axis=0) - blocks[1].mean(axis=0))


def _coco_or_skip():
    from skgap.datasets import load_coco_clip

    try:
        return load_coco_clip()
    except FileNotFoundError:
        pytest.skip("the shared COCO CLIP embeddings are absent")


@pytest.mark.parametrize("data", ["synthetic", "coco"])
def test_centring_in_the_sweep_matches_a_direct_held_out_gap(binary, data):
    # The comparison of examples/compare_posthoc.py scores ModalityCentering through
    # gap_sweep; its held-out gap_norm must be the centring fitted on the training rows of
    # the same split and applied to its test rows, computed here without the sweep.
    from skgap import ModalityCentering

    if data == "synthetic":
        X, y = binary
    else:
        X = _coco_or_skip()
        y = np.arange(X.shape[0]) % 2  # retrieval needs no labels; any two classes do
    table = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=("retrieval",),
                      transformer=ModalityCentering(), path="alpha", as_frame=False)
    d = X.shape[1] // 2
    for s in range(2):
        train, test = _split(X, y, n_seeds=2, s=s)
        rows = (table["seed"] == s) & (table["metric"] == "i2t_R@1")
        frozen, centred = table["gap_norm"][rows & (table["lam"] == 0)][0], \
            table["gap_norm"][rows & (table["lam"] == 1)][0]
        Z = ModalityCentering(alpha=1.0).fit(X[train]).transform(X[test])
        assert centred == pytest.approx(modality_gap(Z[:, :d], Z[:, d:])[1], rel=1e-5)
        assert centred == pytest.approx(_centred_gap(X, train, test), rel=1e-4)
        assert frozen == pytest.approx(
            modality_gap(_unit(X[test][:, :d]), _unit(X[test][:, d:]))[1], rel=1e-5)
        assert centred < 0.5 * frozen  # centring closes most of the held-out gap
        r = retrieval_recall_at_k(Z[:, :d], Z[:, d:], k=(1,))
        assert table["score"][rows & (table["lam"] == 1)][0] == pytest.approx(
            r["image_to_text_recall@1"])


def test_a_trained_adapter_goes_through_the_sweep_on_the_same_splits(binary):
    # The comparison example scores GapClosingAdapter at its one default setting
    # (path "lr") and compares it with the frozen rows of another sweep: the held-out gap
    # of the sweep must be the adapter fitted on the training rows of that same split.
    pytest.importorskip("torch")
    from skgap.train import GapClosingAdapter

    X, y = binary
    adapter = GapClosingAdapter(epochs=2, batch_size=64, random_state=0)
    table = gap_sweep(X, y, lams=[1e-4], n_seeds=1, tasks=("retrieval",),
                      transformer=adapter, path="lr", as_frame=False)
    train, test = _split(X, y)
    Z = GapClosingAdapter(epochs=2, batch_size=64, random_state=0).fit(X[train]).transform(
        X[test])
    assert table["gap_norm"][0] == pytest.approx(modality_gap(Z[:, :16], Z[:, 16:])[1],
                                                 rel=1e-4)


def test_process_workers_give_the_table_of_one_process():
    # joblib's process workers receive an array of more than 1 MB as a memory
    # map; the sweep must still take the in-memory path the caller's array
    # asked for, so that the table does not depend on n_jobs. (Rows enough for
    # several row items, where the two paths round differently.)
    X, y = make_paired_embeddings(20000, 32, 3, random_state=0)
    assert X.nbytes > 1e6
    kw = dict(lams=[0.0, 1.0], n_seeds=2, tasks=("fusion", "zeroshot"), as_frame=False)
    one = gap_sweep(X, y, **kw)
    many = gap_sweep(X, y, n_jobs=2, **kw)
    for key, column in one.items():
        np.testing.assert_array_equal(many[key], column, err_msg=key)
