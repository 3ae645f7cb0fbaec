"""No statistic of a sweep may see a test row, on any path through gap_sweep.

Each test runs the sweep twice: on ``X``, and on ``X`` whose test rows (of the
sweep's own splits) were poisoned after the split by adding a huge constant
(which turns their directions towards the diagonal). Everything fitted on the
training rows -- the gap :math:`\\Delta` and the centroids of the map, every
fitted attribute of a transformer, the zero-shot text prototypes, the probe's
coefficients -- must be the same in both runs. A statistic that reads a test
row moves with the poison and fails the test.

Paths: NumPy in memory with the implicit probe (the default lbfgs logistic
regression trains on ``X`` in place) and with a written-out probe; a memory
map (``np.load(..., mmap_mode='r')``, the gap shift fitted chunk by chunk);
a dask array; each paired transformer ``gap_sweep`` accepts; and the
captioning bank.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skgap import AnchorAffineAligner, CollapseCorrupt, ModalityCentering, ModalityGapShifter
from skgap.datasets import make_paired_embeddings
from skgap.evaluate import _sweep, gap_sweep

POISON = 1e3


def _fitted_state(estimator):
    """Every fitted array attribute (``centroids_``, ``coef_``, ...), copied."""
    return {
        k: np.array(v, dtype=np.float64, copy=True)
        for k, v in vars(estimator).items()
        if k.endswith("_") and not k.startswith("_") and isinstance(v, np.ndarray)
        and np.issubdtype(np.asarray(v).dtype, np.number)
    }


def _spy_class(cls, log):
    """``cls`` recording its fitted state whenever it transforms (i.e. after every fit)."""

    def transform(self, X):
        log.append(("map", _fitted_state(self)))
        return cls.transform(self, X)

    return type(f"Spy{cls.__name__}", (cls,), {"transform": transform})


@pytest.fixture
def recorder(monkeypatch):
    """Record the splits, the fitted maps, probes and class embeddings of a sweep."""
    log = []
    run_one = _sweep._run_one
    score_split = _sweep.score_split

    def spy_run_one(X, y, train, test, value, plan):
        log.append(("split", (np.array(train), np.array(test))))
        return run_one(X, y, train, test, value, plan)

    def spy_score_split(tasks, fit_probe, *args, class_embeddings, **kwargs):
        if class_embeddings is not None:
            log.append(("classes", np.array(class_embeddings, copy=True)))

        def fit_and_record(columns):
            model = fit_probe(columns)
            log.append(("probe", _fitted_state(model)))
            return model

        wrapped = None if fit_probe is None else fit_and_record
        return score_split(tasks, wrapped, *args, class_embeddings=class_embeddings, **kwargs)

    monkeypatch.setattr(_sweep, "_run_one", spy_run_one)
    monkeypatch.setattr(_sweep, "score_split", spy_score_split)
    monkeypatch.setattr(_sweep, "ModalityGapShifter", _spy_class(ModalityGapShifter, log))
    return log


def _data(n=80, d=8, n_classes=2):
    return make_paired_embeddings(n, d, n_classes=n_classes, random_state=0)


def _statistics(log):
    return [(kind, value) for kind, value in log if kind != "split"]


def _test_rows(log):
    tests = [value[1] for kind, value in log if kind == "split"]
    assert tests, "the sweep ran no split"
    return np.unique(np.concatenate(tests))


def _assert_same(clean, poisoned):
    assert [k for k, _ in clean] == [k for k, _ in poisoned]
    assert {k for k, _ in clean} >= {"map"} or {k for k, _ in clean} >= {"classes"}
    for (kind, a), (_, b) in zip(clean, poisoned):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-9,
                                           err_msg=f"{kind} attribute {key} saw a test row")
        else:
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9,
                                       err_msg=f"{kind} saw a test row")


def _sweep_twice(recorder, X, y, make_input=lambda A: A, **kwargs):
    """Run the sweep on X and on X with its test rows poisoned; return both logs."""
    kwargs = {"lams": [0.0, 1.0], "n_seeds": 1, "test_size": 0.25, "n_jobs": 1,
              "as_frame": False, **kwargs}
    gap_sweep(make_input(X), y, **kwargs)
    clean = list(recorder)
    test = _test_rows(clean)
    recorder.clear()
    Xp = np.array(X, copy=True)
    Xp[test] += POISON
    gap_sweep(make_input(Xp), y, **kwargs)
    poisoned = list(recorder)
    # The poison reached the sweep: the splits are the same, and the test rows differ.
    np.testing.assert_array_equal(_test_rows(poisoned), test)
    return _statistics(clean), _statistics(poisoned)


def test_numpy_implicit_probe(recorder):
    X, y = _data()
    clean, poisoned = _sweep_twice(recorder, X, y, tasks=("fusion", "image", "clustering"))
    assert {k for k, _ in clean} == {"map", "probe"}
    _assert_same(clean, poisoned)


def test_numpy_written_out_probe(recorder):
    X, y = _data()
    probe = LogisticRegression(solver="liblinear")
    clean, poisoned = _sweep_twice(recorder, X, y, probe=probe, tasks=("fusion", "text"))
    assert {k for k, _ in clean} == {"map", "probe"}
    _assert_same(clean, poisoned)


def test_memory_map(recorder, tmp_path):
    X, y = _data()
    path = tmp_path / "X.npy"

    def as_memmap(A):
        np.save(path, A)
        return np.load(path, mmap_mode="r")

    clean, poisoned = _sweep_twice(recorder, X, y, make_input=as_memmap,
                                   tasks=("fusion", "retrieval"))
    assert {k for k, _ in clean} == {"map", "probe"}
    _assert_same(clean, poisoned)


def test_dask_array(recorder):
    da = pytest.importorskip("dask.array")
    X, y = _data()
    clean, poisoned = _sweep_twice(recorder, X, y, make_input=lambda A: da.from_array(A, chunks=20))
    _assert_same(clean, poisoned)


@pytest.mark.parametrize("class_embeddings", [None, "prompts"])
def test_zeroshot_prototypes(recorder, class_embeddings):
    X, y = _data(n=90, n_classes=3)
    C = None if class_embeddings is None else np.eye(3, 8) + 0.1
    clean, poisoned = _sweep_twice(recorder, X, y, tasks=("zeroshot",), class_embeddings=C)
    assert {k for k, _ in clean} == {"map", "classes"}
    _assert_same(clean, poisoned)


@pytest.mark.parametrize(
    "transformer, path, values",
    [
        (ModalityCentering(), "alpha", [0.0, 1.0]),
        (CollapseCorrupt(random_state=0), "noise_scale", [0.0, 0.1]),
        (AnchorAffineAligner(kind="ortho"), "alpha", [0.0, 1.0]),
    ],
    ids=["ModalityCentering", "CollapseCorrupt", "AnchorAffineAligner"],
)
@pytest.mark.parametrize("tasks", [("fusion",), ("zeroshot", "clustering")], ids=["probe", "no-probe"])
def test_every_transformer(recorder, transformer, path, values, tasks):
    X, y = _data(n=90, n_classes=3)
    log = recorder
    spy = _spy_class(type(transformer), log)(**transformer.get_params())
    clean, poisoned = _sweep_twice(recorder, X, y, transformer=spy, path=path, lams=values,
                                   tasks=tasks)
    kinds = {k for k, _ in clean}
    assert "map" in kinds and any(state for kind, state in clean if kind == "map")
    _assert_same(clean, poisoned)


def test_captioning_bank(recorder, monkeypatch):
    """The captioner's bank (the training rows through the map, their texts and
    their own text embeddings) is the same whatever the test rows hold."""
    pytest.importorskip("sacrebleu")
    pytest.importorskip("rouge_score")
    from skgap.evaluate import _captioning

    metrics = _captioning.captioning_metrics

    def spy(Z_bank, Z_test, texts_bank, texts_query, T_bank, T_query, **kwargs):
        recorder.append(("bank", np.hstack([Z_bank, T_bank]).astype(np.float64)))
        recorder.append(("bank texts", np.array([hash(t) for t in texts_bank], dtype=np.float64)))
        return metrics(Z_bank, Z_test, texts_bank, texts_query, T_bank, T_query, **kwargs)

    monkeypatch.setattr(_captioning, "captioning_metrics", spy)
    X, y = _data()
    texts = np.array([f"caption {i} of class {c}" for i, c in enumerate(y)], dtype=object)
    clean, poisoned = _sweep_twice(recorder, X, None, tasks=("captioning",), texts=texts)
    assert "bank" in {k for k, _ in clean}
    _assert_same(clean, poisoned)
