"""gap_sweep on a real distributed.LocalCluster (two worker processes on loopback).

The fits go to the workers through joblib's dask backend; the rows, the labels
and each split's indices must reach the cluster once per sweep, not once per
fit, and a read-only memory map must reach it as its file.
"""

import contextlib
import os
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from joblib import parallel_config  # noqa: E402

import skgap._core._parallel as parallel  # noqa: E402
from skgap import gap_sweep  # noqa: E402
from skgap._core._mapped import file_reference  # noqa: E402
from skgap.datasets import make_paired_embeddings  # noqa: E402
from skgap.evaluate import _sweep  # noqa: E402

SWEEP = dict(lams=[0.0, 0.5, 1.0], n_seeds=2, tasks=("fusion", "zeroshot", "clustering",
                                                     "retrieval"), as_frame=False)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    X, y = make_paired_embeddings(300, 16, preset="mimic-clip", random_state=0)
    return X.astype(np.float32), y


@pytest.fixture
def scattered(client, monkeypatch):
    """The shapes of the arrays that joblib scatters to the cluster, in order."""
    shapes = []
    scatter = client.scatter

    def recording(data, *args, **kwargs):
        shapes.append(getattr(data, "shape", type(data).__name__))
        return scatter(data, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", recording)
    return shapes


def _sweep_on(X, y, backend, n_jobs, **kw):
    """The sweep under joblib's ``backend`` (None: none chosen, in this process)."""
    chosen = parallel_config(backend=backend) if backend else contextlib.nullcontext()
    with chosen, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the leakage note of a synthetic set: not the point
        return gap_sweep(X, y, n_jobs=n_jobs, **{**SWEEP, **kw})


def _assert_same_table(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_table_on_the_cluster_is_the_one_in_this_process(client, data):
    X, y = data
    with distributed.get_task_stream(client) as stream:
        on_cluster = _sweep_on(X, y, "dask", -1)
    assert stream.data  # the fits ran on the workers
    _assert_same_table(on_cluster, _sweep_on(X, y, None, None))
    _assert_same_table(on_cluster, _sweep_on(X, y, "threading", 2))


def test_the_rows_reach_the_cluster_once(client, data, scattered):
    X, y = data
    n_fits = SWEEP["n_seeds"] * len(SWEEP["lams"])
    _sweep_on(X, y, "dask", -1)
    # The rows and the labels once for all the fits, not once per fit (nor per split).
    assert scattered.count(X.shape) == 1
    assert scattered.count(y.shape) == 1
    # And each split's train and test indices once for all its values.
    assert len(scattered) < n_fits


def test_the_lambda_search_sends_the_rows_once_too(client, data, scattered):
    from skgap import ModalityGapShifterCV

    X, y = data
    with parallel_config(backend="dask"):
        ModalityGapShifterCV([0.0, 1.0], cv=3, n_jobs=-1).fit(X, y)
    assert scattered.count(X.shape) == 1  # not once per fold


def test_the_progress_bar_counts_every_fit(client, data, monkeypatch):
    X, y = data
    steps = []

    class Bar:
        def update(self, n):
            steps.append(n)

        def close(self):
            steps.append("closed")

    monkeypatch.setattr(_sweep, "_progress_bar", lambda total, progress: Bar())
    _sweep_on(X, y, "dask", -1, progress=True)
    assert steps == [1] * (SWEEP["n_seeds"] * len(SWEEP["lams"])) + ["closed"]


@pytest.fixture
def mapped(data, tmp_path):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r"), y, tmp_path / "X.npy"


def test_a_memory_map_reaches_the_workers_as_its_file(client, mapped, scattered):
    Xm, y, _ = mapped
    on_cluster = _sweep_on(Xm, y, "dask", -1)
    assert Xm.shape not in scattered  # the rows never went through the client
    # The workers read the map in place, as fits off the main thread of this process do.
    _assert_same_table(on_cluster, _sweep_on(Xm, y, "threading", 2))
    # Opting out: the rows in memory are sent, once.
    scattered.clear()
    _assert_same_table(on_cluster, _sweep_on(np.array(Xm), y, "dask", -1))
    assert scattered.count(Xm.shape) == 1


def test_the_workers_open_the_file_by_its_path(client, mapped, monkeypatch):
    Xm, y, path = mapped

    def then_touched(a):
        # The file changes between the reference and the workers' opening it.
        ref = file_reference(a)
        if ref is not None:
            os.utime(path, ns=(ref.mtime_ns, ref.mtime_ns + 10**9))
        return ref

    monkeypatch.setattr(parallel, "file_reference", then_touched)
    with pytest.raises(OSError, match="changed after its memory map"):
        _sweep_on(Xm, y, "dask", -1)


def test_the_command_line_sweeps_on_the_cluster(client, data, tmp_path, capsys):
    from skgap.cli import main

    X, y = data
    np.savez(tmp_path / "emb.npz", image=X[:, :16], text=X[:, 16:], labels=y)
    argv = ["sweep", str(tmp_path / "emb.npz"), "--lams", "0", "1", "--seeds", "2",
            "--no-plots", "--json", "--out"]
    assert main(argv + [str(tmp_path / "here")]) == 0
    with distributed.get_task_stream(client) as stream:
        assert main(argv + [str(tmp_path / "there"),
                            "--scheduler", client.scheduler.address]) == 0
    assert stream.data  # the fits ran on the workers
    assert ((tmp_path / "there" / "sweep.csv").read_text()
            == (tmp_path / "here" / "sweep.csv").read_text())
    capsys.readouterr()
    assert main(argv + [str(tmp_path / "o"), "--scheduler", client.scheduler.address,
                        "--n-jobs", "2"]) == 2
    assert "leave out --n-jobs" in capsys.readouterr().err
