"""Dask: statistics as a map-reduce, transforms as map_blocks, the search on a cluster.

Everything runs on a real ``distributed.LocalCluster`` on loopback (threads in
this process, one worker), the same code path as a remote cluster.
"""

import os
import runpy
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from test_streaming import ATTRIBUTES  # noqa: E402

from skgap.datasets import make_paired_embeddings  # noqa: E402
from skgap.measure._cone_stats import ConeStats
from skgap.transform._shift import ModalityGapShifter
from skgap.transform._shift_cv import ModalityGapShifterCV

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dask_lambda_search.py"


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",  # real TCP on loopback, as with a remote scheduler
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: several clusters may run
    ) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def X():
    X, _ = make_paired_embeddings(2400, 16, random_state=0)
    scale = np.random.default_rng(0).uniform(1, 5, size=(2400, 2)).astype(np.float32)
    return X * np.repeat(scale, 16, axis=1)  # each block of each row its own norm


def test_cone_stats_fit_on_dask_equals_numpy(client, X):
    ref = ConeStats(max_uniformity_samples=300, random_state=5).fit(X)
    # Uneven row blocks and two column blocks (rechunked internally).
    dX = da.from_array(X, chunks=((500, 700, 1200), (10, 22)))
    est = ConeStats(max_uniformity_samples=300, random_state=5).fit(dX)
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(est, name), getattr(ref, name), atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(est._stats.reservoir.index, ref._stats.reservoir.index)
    assert est.n_features_in_ == 32


def test_cone_stats_partial_fit_mixing_dask_and_numpy(client, X):
    ref = ConeStats(max_uniformity_samples=200, random_state=1).fit(X)
    est = ConeStats(max_uniformity_samples=200, random_state=1)
    est.partial_fit(da.from_array(X[:1000], chunks=300))
    est.partial_fit(X[1000:1500])
    est.partial_fit(da.from_array(X[1500:], chunks=450))
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(est, name), getattr(ref, name), atol=1e-6, err_msg=name)


def test_shifter_fit_and_lazy_transform(client, X):
    ref = ModalityGapShifter(lam=0.9).fit(X)
    dX = da.from_array(X, chunks=(600, 32))
    est = ModalityGapShifter(lam=0.9).fit(dX)
    np.testing.assert_allclose(est.centroids_, ref.centroids_, atol=1e-6)
    out = est.transform(dX)
    assert isinstance(out, da.Array)  # lazy: nothing computed yet
    assert out.dtype == np.float32 and out.chunks[0] == dX.chunks[0]
    np.testing.assert_allclose(out.compute(), ref.transform(X), atol=1e-6)
    # ConeStats passes dask arrays through lazily, so it can follow the shifter.
    assert ConeStats().fit(dX).transform(dX) is not None


def test_errors_name_the_global_row(client, X):
    bad = X.copy()
    bad[1300, :16] = 0
    dX = da.from_array(bad, chunks=500)
    with pytest.raises(ValueError, match=r"image block has 1 row\(s\) with zero norm \(rows 1300"):
        ConeStats().fit(dX)
    est = ModalityGapShifter().fit(X)
    with pytest.raises(ValueError, match=r"rows 1300"):
        est.transform(dX).compute()
    with pytest.raises(ValueError, match="32 features"):
        est.transform(da.from_array(X[:, :30], chunks=500))
    with pytest.raises(ValueError, match="minimum of 2"):
        ConeStats().fit(da.from_array(X[:1], chunks=1))


def test_unknown_chunk_sizes_are_refused(client, X):
    dX = da.from_array(X, chunks=500)
    dX = dX[dX[:, 0] > -np.inf]  # boolean mask: row counts unknown until computed
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        ConeStats().fit(dX)


def test_lambda_search_under_the_dask_joblib_backend(client):
    import joblib

    X, y = make_paired_embeddings(300, 8, random_state=2)
    local = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, n_jobs=-1).fit(X, y)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.lam_ == local.lam_


def test_the_dask_example_runs(monkeypatch, capsys):
    monkeypatch.setenv("SKGAP_EXAMPLE_SMALL", "1")
    runpy.run_path(os.fspath(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "selected lambda" in out
