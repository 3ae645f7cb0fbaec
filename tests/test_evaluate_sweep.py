import sys

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import LateFusionClassifier, gap_sweep, summarize_sweep
from skgap.evaluate import _sweep
from skgap.metrics import mean_resultant_length, modality_gap
from skgap.shift import ModalityGapShifter


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def binary():
    return make_paired_embeddings(240, 16, preset="mimic-clip", noise=4.0, random_state=0)


def test_table_layout(binary):
    X, y = binary
    table = gap_sweep(X, y, lams=[0.0, 0.5, 1.0], n_seeds=3, as_frame=False)
    assert list(table) == ["lam", "seed", "auc", "gap_norm", "R_image", "R_text"]
    np.testing.assert_array_equal(table["lam"], [0, 0.5, 1] * 3)
    np.testing.assert_array_equal(table["seed"], np.repeat([0, 1, 2], 3))
    assert np.all((table["auc"] > 0.5) & (table["auc"] <= 1))
    # The gap shrinks with lambda on every split.
    gaps = table["gap_norm"].reshape(3, 3)
    assert np.all(np.diff(gaps, axis=1) < 0)


def test_frame_and_dict_outputs(binary):
    X, y = binary
    pd = pytest.importorskip("pandas")
    frame = gap_sweep(X, y, lams=[0, 1], n_seeds=2)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (4, 6)
    as_dict = gap_sweep(X, y, lams=[0, 1], n_seeds=2, as_frame=False)
    np.testing.assert_allclose(frame["auc"].to_numpy(), as_dict["auc"])
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
    for s, seed in enumerate(seeds):
        train, test = train_test_split(np.arange(240), test_size=0.25, stratify=y,
                                       random_state=int(seed))
        for fitted in _RecordingShifter.fitted_on[2 * s: 2 * s + 2]:
            np.testing.assert_array_equal(fitted, X[np.sort(train)])
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
    np.testing.assert_array_equal(counts, [[120, 40]] * 4)


def test_unstratifiable_labels_fall_back_with_a_warning():
    X, _ = make_paired_embeddings(60, 8, random_state=1)
    y = np.zeros(60, dtype=int)
    y[:30] = 1
    y[0] = 2  # a class of one row
    with pytest.warns(UserWarning, match="cannot stratify"):
        table = gap_sweep(X, y, lams=[0.0], n_seeds=2, as_frame=False)
    assert table["auc"].shape == (2,)


def test_multiclass_and_multilabel():
    X, y = make_paired_embeddings(200, 12, n_classes=3, random_state=0)
    table = gap_sweep(X, y, lams=[0, 1], n_seeds=2, as_frame=False)
    assert np.all(table["auc"] > 0.6)
    X, Y = make_paired_embeddings(200, 12, n_classes=3, multilabel=True, random_state=0)
    table = gap_sweep(X, Y, lams=[0, 1], n_seeds=2, as_frame=False)
    assert [c for c in table if c.startswith("auc")] == ["auc", "auc_0", "auc_1", "auc_2"]
    per_label = np.column_stack([table[f"auc_{j}"] for j in range(3)])
    np.testing.assert_allclose(table["auc"], np.nanmean(per_label, axis=1))


def test_custom_probe_and_more_modalities():
    X, y = make_paired_embeddings(160, 8, random_state=0)
    table = gap_sweep(X, y, lams=[0, 1], n_seeds=1, probe=LateFusionClassifier(),
                      as_frame=False)
    assert table["auc"].shape == (2,)
    three = np.hstack([X, X[:, :8]])
    table = gap_sweep(three, y, lams=[0.5], n_seeds=1, modality_dims=(8, 8, 8), as_frame=False)
    assert list(table)[3:] == ["gap_norm_m1", "gap_norm_m2", "R_m0", "R_m1", "R_m2"]
    # Block m2 repeats the image block: no gap between them.
    assert table["gap_norm_m2"][0] == pytest.approx(0.0, abs=1e-6)


def test_reproducible_and_parallel_equal(binary):
    X, y = binary
    a = gap_sweep(X, y, lams=[0, 1], n_seeds=2, random_state=3, as_frame=False)
    # Threads, not processes: the parallel path without the start-up cost of workers.
    with parallel_config(backend="threading"):
        b = gap_sweep(X, y, lams=[0, 1], n_seeds=2, random_state=3, as_frame=False, n_jobs=2)
    c = gap_sweep(X, y, lams=[0, 1], n_seeds=2, random_state=4, as_frame=False)
    np.testing.assert_allclose(a["auc"], b["auc"])
    assert not np.allclose(a["auc"], c["auc"])


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
    auc = table["auc"].reshape(3, 2)
    assert np.all(auc[:, 1] > auc[:, 0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lams": []}, ValueError, "at least one"),
        ({"lams": [0, 1.5]}, ValueError, r"\[0, 1\]"),
        ({"lams": [np.nan]}, ValueError, r"\[0, 1\]"),
        ({"n_seeds": 0}, ValueError, "n_seeds"),
        ({"n_seeds": True}, ValueError, "n_seeds"),
        ({"test_size": 0.0}, ValueError, "test_size"),
        ({"test_size": 1.0}, ValueError, "test_size"),
        ({"test_size": "half"}, ValueError, "test_size"),
        ({"test_size": 1}, ValueError, "too few rows"),
        ({"test_size": 0.001}, ValueError, "at least 2"),
        ({"task": "multiclass"}, ValueError, "task='binary'"),
        ({"probe": "logreg"}, TypeError, "classifier"),
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


# -- summarize_sweep -----------------------------------------------------------


def _table():
    return {
        "lam": np.array([0, 0.5, 1, 0, 0.5, 1, 0, 0.5, 1.0]),
        "seed": np.repeat([0, 1, 2], 3),
        "auc": np.array([0.70, 0.74, 0.72, 0.80, 0.83, 0.81, 0.75, 0.80, 0.79]),
        "gap_norm": np.array([1.0, 0.5, 0.1] * 3),
    }


def test_summarize_sweep_numbers():
    s = summarize_sweep(_table())
    np.testing.assert_allclose(s["lam"], [0, 0.5, 1])
    np.testing.assert_allclose(s["mean"], [0.75, 0.79, 2.32 / 3])
    np.testing.assert_allclose(s["std"], np.std([[0.70, 0.80, 0.75], [0.74, 0.83, 0.80],
                                                 [0.72, 0.81, 0.79]], axis=1))
    np.testing.assert_array_equal(s["n"], [3, 3, 3])
    np.testing.assert_allclose(s["gap_norm_mean"], [1.0, 0.5, 0.1])
    assert "seed_mean" not in s
    assert s["best_lam"] == 0.5
    assert s["best_mean"] == pytest.approx(0.79)
    assert s["baseline_mean"] == pytest.approx(0.75)
    assert s["gain"] == pytest.approx(0.04)
    np.testing.assert_allclose(s["delta_mean"], [0.0, 0.04, 2.32 / 3 - 0.75], atol=1e-12)
    np.testing.assert_allclose(s["delta_std"][1], np.std([0.04, 0.03, 0.05]))


def test_summarize_sweep_ties_nan_and_inputs():
    t = {"lam": [0.0, 0.5, 1.0], "auc": [0.8, 0.9, 0.9]}
    s = summarize_sweep(t)
    assert s["best_lam"] == 0.5  # the smallest of the tied lambdas
    assert np.isnan(s["delta_mean"]).all()  # no seed column
    s = summarize_sweep({"lam": [0.5, 0.5, 1.0], "auc": [0.8, np.nan, 0.7]})
    assert s["n"].tolist() == [1, 1]
    assert np.isnan(s["baseline_mean"]) and np.isnan(s["gain"])
    structured = np.array([(0.0, 0.6), (1.0, 0.7)], dtype=[("lam", float), ("auc", float)])
    assert summarize_sweep(structured)["best_lam"] == 1.0
    pd = pytest.importorskip("pandas")
    assert summarize_sweep(pd.DataFrame(_table()))["best_lam"] == 0.5


def test_summarize_sweep_other_metric():
    s = summarize_sweep(_table(), metric="gap_norm")
    assert s["best_lam"] == 0.0
    assert "auc_mean" in s


def test_summarize_sweep_errors():
    with pytest.raises(ValueError, match="no column 'auc'"):
        summarize_sweep({"lam": [0.0]})
    with pytest.raises(ValueError, match="empty"):
        summarize_sweep({"lam": [], "auc": []})
    with pytest.raises(ValueError, match="every 'auc' value is nan"):
        summarize_sweep({"lam": [0.0, 1.0], "auc": [np.nan, np.nan]})
    with pytest.raises(ValueError, match="one length"):
        summarize_sweep({"lam": [0.0, 1.0], "auc": [0.5]})
    with pytest.raises(TypeError, match="expected a table"):
        summarize_sweep([0.1, 0.2])
