"""The sweep's probes on implicitly shifted training rows (skgap.evaluate._implicit)."""

import tracemalloc

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skgap._core import _streaming
from skgap.datasets import make_paired_embeddings
from skgap.evaluate import _sweep, gap_sweep
from skgap.evaluate._implicit import ShiftedTrainingRows, fits_in_place
from skgap.transform._shift import ModalityGapShifter

D = 12
TIGHT = dict(tol=1e-10, max_iter=10_000)


pytestmark = pytest.mark.usefixtures("one_blas_thread")


class _Explicit(LogisticRegression):
    """The same probe, but a subclass: the sweep must write the shifted rows for it."""


@pytest.fixture(scope="module")
def data():
    X, y = make_paired_embeddings(300, D, n_classes=3, preset="coco-clip", noise=3.0,
                                  random_state=0)
    rng = np.random.default_rng(0)
    X = X.astype(np.float64) * rng.uniform(0.5, 20.0, size=(X.shape[0], 1))  # not unit rows
    train = np.sort(rng.choice(X.shape[0], 220, replace=False))
    test = np.setdiff1d(np.arange(X.shape[0]), train)
    return X, y, train, test


@pytest.mark.parametrize(
    "probe, expected",
    [
        (LogisticRegression(), True),
        (LogisticRegression(C=0.1, class_weight="balanced", max_iter=50, tol=1e-3), True),
        (_Explicit(), False),
        (LogisticRegression(solver="newton-cg"), False),
        (LogisticRegression(fit_intercept=False), False),
        (LogisticRegression(warm_start=True), False),
        (LogisticRegression(solver="saga", l1_ratio=0.5), False),
    ],
)
def test_which_probes_train_in_place(probe, expected):
    assert fits_in_place(probe) is expected


@pytest.mark.parametrize("lam", [0.0, 0.6, -0.4])
@pytest.mark.parametrize("columns", [slice(None), slice(0, D), slice(D, 2 * D)])
@pytest.mark.parametrize("binary, class_weight", [(True, "balanced"), (False, None),
                                                  (False, {0: 1.0, 1: 3.0, 2: 0.5})])
def test_equals_logistic_regression_on_the_written_out_rows(data, lam, columns, binary,
                                                            class_weight):
    X, y, train, test = data
    if binary:
        y = (y == 1).astype(int)
    shifter = ModalityGapShifter(lam=lam).fit(X[train])
    probe = LogisticRegression(C=0.5, class_weight=class_weight, **TIGHT)
    model = ShiftedTrainingRows(X, train, shifter, [slice(0, D), slice(D, 2 * D)]).fit(
        probe, columns, y)
    Z_train, Z_test = shifter.transform(X[train]), shifter.transform(X[test])
    want = LogisticRegression(C=0.5, class_weight=class_weight, **TIGHT).fit(
        Z_train[:, columns].astype(np.float64), y[train])
    np.testing.assert_array_equal(model.classes_, want.classes_)
    np.testing.assert_allclose(model.coef_, want.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.intercept_, want.intercept_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(Z_test[:, columns]),
                               want.predict_proba(Z_test[:, columns]), atol=1e-6)
    assert model.get_params() == probe.get_params()


def test_one_class_in_the_training_rows_is_refused_as_scikit_learn_does(data):
    X, y, train, _ = data
    y = np.where(np.isin(np.arange(X.shape[0]), train), 1, 0)
    shifter = ModalityGapShifter().fit(X[train])
    rows = ShiftedTrainingRows(X, train, shifter, [slice(0, D), slice(D, 2 * D)])
    with pytest.raises(ValueError, match="at least 2 classes in the data.*only one class"):
        rows.fit(LogisticRegression(), slice(None), y)
    with pytest.raises(ValueError, match="at least 2 classes in the data.*only one class"):
        LogisticRegression().fit(X[train], y[train])


def test_the_sweep_gives_the_table_of_the_written_out_rows(data):
    X, y, _, _ = data
    tasks = ("fusion", "image", "text", "text_to_image", "image_to_text", "retrieval")
    kwargs = dict(lams=[-0.5, 0.0, 1.0], n_seeds=2, tasks=tasks, as_frame=False)
    implicit = gap_sweep(X, y, probe=LogisticRegression(class_weight="balanced", **TIGHT),
                         **kwargs)
    explicit = gap_sweep(X, y, probe=_Explicit(class_weight="balanced", **TIGHT), **kwargs)
    for key in ("task", "metric", "lam", "seed"):
        np.testing.assert_array_equal(implicit[key], explicit[key])
    np.testing.assert_allclose(implicit["score"], explicit["score"], atol=1e-6)
    np.testing.assert_allclose(implicit["gap_norm"], explicit["gap_norm"], rtol=1e-12)


def _traced_peak(f):
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_training_rows_are_not_shifted_into_memory(tmp_path, monkeypatch):
    X, y = make_paired_embeddings(4000, 256, preset="mimic-clip", random_state=0)
    monkeypatch.setattr(_streaming, "CHUNK_BYTES", X.nbytes // 20)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    # The old path held X[train] and its shifted copy (1.6x X) at once. A
    # memory map is now read in place: the largest arrays are the test rows
    # and their shifted copy (0.4x X); in memory, one copy of the training
    # rows (0.8x) comes on top.
    peak = _traced_peak(lambda: gap_sweep(mapped, y, lams=[0.0, 1.0], n_seeds=1,
                                          as_frame=False))
    assert peak < 0.6 * X.nbytes
    peak = _traced_peak(lambda: gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=1, as_frame=False))
    assert peak < 1.4 * X.nbytes


def test_a_memory_map_gives_the_table_of_the_array(tmp_path, data):
    X, y, _, _ = data
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    probe = LogisticRegression(class_weight="balanced", **TIGHT)
    kwargs = dict(lams=[0.0, 1.0], n_seeds=2, tasks=("fusion", "image"), probe=probe,
                  as_frame=False)
    np.testing.assert_allclose(gap_sweep(mapped, y, **kwargs)["score"],
                               gap_sweep(X, y, **kwargs)["score"], atol=1e-6)


@pytest.mark.parametrize("mapped", [False, True])
def test_the_block_norms_are_computed_once_per_sweep(data, tmp_path, monkeypatch, mapped):
    """They depend on neither the split nor lambda: one pass for every probe fit."""
    from skgap.evaluate import _implicit

    X, y, _, _ = data
    if mapped:
        np.save(tmp_path / "X.npy", X)
        X = np.load(tmp_path / "X.npy", mmap_mode="r")
    calls = []
    for module in (_sweep, _implicit):
        original = module.block_norms
        monkeypatch.setattr(module, "block_norms",
                            lambda *a, _f=original: calls.append(1) or _f(*a))
    kwargs = dict(lams=[0.0, 0.5, 1.0], n_seeds=2, tasks=("fusion", "image"), as_frame=False)
    table = gap_sweep(X, y, **kwargs)
    assert len(calls) == 1
    monkeypatch.undo()
    np.testing.assert_array_equal(table["score"], gap_sweep(X, y, **kwargs)["score"])


def test_the_shift_fitted_chunk_by_chunk_is_the_shift_fitted_at_once(data, monkeypatch):
    X, _, train, _ = data
    monkeypatch.setattr(_streaming, "CHUNK_BYTES", 7 * X.shape[1] * X.itemsize)  # 32 chunks
    chunked = _streaming.fit_rows_in_chunks(ModalityGapShifter(lam=0.3), X, train)
    whole = ModalityGapShifter(lam=0.3).fit(X[train])
    assert chunked._stats.n_samples == train.size
    np.testing.assert_allclose(chunked.centroids_, whole.centroids_, rtol=1e-6)
    np.testing.assert_allclose(chunked.shift_vectors_, whole.shift_vectors_, rtol=1e-6)


def test_class_name_captions_are_found_chunk_by_chunk(data, monkeypatch):
    X, y, train, _ = data
    monkeypatch.setattr(_streaming, "CHUNK_BYTES", 5 * D * X.itemsize)  # 5 rows a chunk
    T = np.eye(3, D, dtype=X.dtype)[y] * 2.0
    assert _sweep._one_text_row_per_class(T, train, y[train])
    members = train[y[train] == 2]
    T[members[-1], 0] += 1e-6  # one caption differs, in the last chunk of its class
    assert not _sweep._one_text_row_per_class(T, train, y[train])


def test_float32_rows_give_float32_coefficients_as_scikit_learn_does(data):
    X, y, train, test = data
    X = X.astype(np.float32)
    shifter = ModalityGapShifter(lam=0.5).fit(X[train])
    model = ShiftedTrainingRows(X, train, shifter, [slice(0, D), slice(D, 2 * D)]).fit(
        LogisticRegression(), slice(None), y)
    want = LogisticRegression().fit(shifter.transform(X[train]), y[train])
    assert model.coef_.dtype == model.intercept_.dtype == want.coef_.dtype == np.float32
    Z_test = shifter.transform(X[test])
    np.testing.assert_allclose(model.predict_proba(Z_test), want.predict_proba(Z_test),
                               atol=1e-3)


def test_the_threads_of_a_probe_fit_do_not_change_it(data, monkeypatch):
    from skgap.transform import _implicit as implicit_features

    X, y, train, _ = data
    monkeypatch.setattr(implicit_features, "_ITEM_BYTES", 16 * X.shape[1] * X.itemsize)  # 16-row items
    shifter = ModalityGapShifter(lam=0.5).fit(X[train])
    rows = ShiftedTrainingRows(X, train, shifter, [slice(0, D), slice(D, 2 * D)])
    one = rows.fit(LogisticRegression(), slice(None), y, threads=1)
    two = rows.fit(LogisticRegression(), slice(None), y, threads=2)
    np.testing.assert_array_equal(one.coef_, two.coef_)
    np.testing.assert_array_equal(one.intercept_, two.intercept_)
