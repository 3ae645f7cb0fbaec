"""One BLAS thread per fit: skgap._core._parallel and the entry points that use it."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

from skgap._core._parallel import one_blas_thread, run_fits
from skgap.datasets import make_paired_embeddings
from skgap.evaluate import LateFusionClassifier, make_retrieval_scorer
from skgap.transform._shift_cv import ModalityGapShifterCV


def _max_threads():
    return max(pool["num_threads"] for pool in threadpool_info())


def _max_blas_threads():
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


def _square_and_threads(x):
    return x * x, _max_threads()


@pytest.fixture
def two_threads():
    """Run the test with two threads in every pool, so that a limit of one shows."""
    with threadpool_limits(limits=2):
        if _max_threads() < 2:
            pytest.skip("the thread pools cannot be widened to two threads here")
        yield


def test_one_blas_thread_limits_and_restores(two_threads):
    before = _max_threads()
    with one_blas_thread():
        assert _max_threads() == 1
    assert _max_threads() == before == 2


def test_a_nested_block_leaves_the_limit_to_the_outermost(two_threads, monkeypatch):
    from skgap._core import _parallel

    with one_blas_thread():
        calls = []
        monkeypatch.setattr(_parallel, "_pools", lambda: calls.append(1))
        with one_blas_thread():  # nested: the limit is not set again
            assert _max_threads() == 1
        assert calls == []
        assert _max_threads() == 1  # the inner block did not restore the limits
    assert _max_threads() == 2


def test_a_library_loaded_after_the_first_block_is_limited_too(two_threads, monkeypatch):
    """The pools are scanned again once an import may have brought a new one."""
    import sys
    import types

    from skgap._core import _parallel

    with one_blas_thread():
        pass
    first = _parallel._pools()
    monkeypatch.setitem(sys.modules, "skgap_test_new_module", types.ModuleType("m"))
    assert _parallel._pools() is not first
    assert _parallel._pools() is _parallel._pools()  # and kept while nothing is imported


def test_concurrent_blocks_share_one_limit_and_the_last_restores_it(two_threads):
    """Two threads that enter and leave in an interleaved order: the limit
    holds while either is inside and is restored once both have left."""
    import threading

    entered, release = threading.Event(), threading.Event()
    seen = []

    def other():
        with one_blas_thread():
            entered.set()
            release.wait(10)
            seen.append(_max_blas_threads())

    t = threading.Thread(target=other)
    with one_blas_thread():
        t.start()
        entered.wait(10)
    # This thread has left; the other is still inside: the BLAS limit stays.
    assert _max_blas_threads() == 1
    release.set()
    t.join()
    assert seen == [1]
    assert _max_threads() == 2


@pytest.mark.parametrize("n_jobs", [None, 1, 2])
def test_run_fits_keeps_order_and_runs_each_fit_with_one_thread(two_threads, n_jobs):
    out = run_fits(_square_and_threads, [(k,) for k in range(5)], n_jobs=n_jobs)
    assert [v for v, _ in out] == [0, 1, 4, 9, 16]
    assert all(t == 1 for _, t in out)
    assert _max_threads() == 2  # the caller's setting is back


class _ThreadRecorder(ClassifierMixin, TransformerMixin, BaseEstimator):
    """A probe or transformer that records the widest thread pool it ran under."""

    def fit(self, X, y=None):
        self.threads_ = _max_threads()
        self.model_ = LogisticRegression().fit(X, y) if y is not None else None
        self.classes_ = getattr(self.model_, "classes_", None)
        return self

    def transform(self, X):
        type(self).seen.append(_max_threads())
        return X

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def test_late_fusion_fits_with_one_thread(two_threads):
    X, y = make_paired_embeddings(120, 8, 2, random_state=0)
    clf = LateFusionClassifier(_ThreadRecorder()).fit(X, y)
    assert [est.threads_ for est in clf.estimators_] == [1, 1]


def test_shifter_cv_folds_run_with_one_thread(two_threads):
    X, y = make_paired_embeddings(120, 8, 2, random_state=0)
    seen = []

    def scorer(estimator, X, y):
        seen.append(_max_threads())
        return float(np.mean(estimator.predict(X) == y))

    ModalityGapShifterCV([0.0, 1.0], cv=2, scoring=scorer).fit(X, y)
    assert seen == [1, 1, 1, 1]


def test_transform_scorers_score_with_one_thread(two_threads):
    X, _ = make_paired_embeddings(60, 8, 2, random_state=0)
    _ThreadRecorder.seen = []
    scorer = make_retrieval_scorer(k=1, modality_dims=(8, 8))
    GridSearchCV(_ThreadRecorder(), [{}], scoring=scorer, cv=2).fit(X)
    assert _ThreadRecorder.seen and set(_ThreadRecorder.seen) == {1}


def _assume_finite():
    import sklearn

    return sklearn.get_config()["assume_finite"]


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_run_fits_carries_the_scikit_learn_config_to_workers(n_jobs):
    import sklearn

    with sklearn.config_context(assume_finite=True):
        assert run_fits(_assume_finite, [(), ()], n_jobs=n_jobs) == [True, True]
    assert run_fits(_assume_finite, [()], n_jobs=n_jobs) == [False]


def test_run_fits_as_a_generator_yields_in_order_with_one_thread(two_threads):
    out = run_fits(_square_and_threads, [(k,) for k in range(5)], n_jobs=2,
                   return_as="generator")
    assert not isinstance(out, list)
    assert list(out) == [(k * k, 1) for k in range(5)]
    assert _max_threads() == 2  # the generator's end gave the limit back
    with pytest.raises(ValueError, match="return_as"):
        run_fits(_square_and_threads, [(1,)], return_as="tuple")


def _what_arrived(a, b):
    return type(a).__name__, getattr(a, "offset", None), float(np.asarray(a).sum()), b


def test_run_fits_sends_a_read_only_memmap_as_its_file(tmp_path):
    from joblib import parallel_config

    X = np.arange(40, dtype=np.float32).reshape(8, 5)
    np.save(tmp_path / "X.npy", X)
    m = np.load(tmp_path / "X.npy", mmap_mode="r")
    header = m.offset
    tasks = [(m[2:6], "b"), (m, None)]
    # Threads: nothing is pickled, so what arrives shows what run_fits sent.
    with parallel_config(backend="threading"):
        out = run_fits(_what_arrived, tasks, n_jobs=2, map_files=True)
    # Mapped again from the file at the view's own offset (a view of the
    # caller's map keeps its parent's offset), the same rows.
    assert out == [("memmap", header + 2 * 5 * 4, float(X[2:6].sum()), "b"),
                   ("memmap", header, float(X.sum()), None)]
    with parallel_config(backend="threading"):
        (kept, _) = run_fits(_what_arrived, tasks, n_jobs=2)
    assert kept[1] == header  # without map_files: the caller's view itself
    # One job: the arguments themselves, nothing mapped again.
    sentinel = object()
    (arrived,) = run_fits(lambda a, b: a, [(sentinel, 1)], map_files=True)
    assert arrived is sentinel
