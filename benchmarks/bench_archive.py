"""The whole lambda protocol at archive scale (MIMIC-CXR size): wall time and peak RSS.

Data: ``n`` pairs x (2 x 512) float32 in a memmap on disk (written chunk by
chunk, deleted at the end), binary labels, a modality gap between two narrow
cones and a small class signal. Protocol: 11 lambdas x 5 random 80/20 splits,
early fusion (the paired row ``[v' | t']`` into one linear probe), AUC on the
held-out rows. Each design runs in a fresh child process, so its peak RSS
(``VmHWM``, file pages of the memmap it touches included) is its own:

``gap_sweep``
    The public protocol, :func:`skgap.gap_sweep` with
    ``make_linear_probe('binary')``: per split and lambda it fits the shift
    chunk by chunk, writes out the shifted test rows only and fits the
    ``LogisticRegression`` cold on the implicit features of the mapped rows
    (held-out rows weighted 0), along scikit-learn's own solver path.
``ModalityGapShifterCV``
    The same protocol through the implicit-feature path:
    ``ModalityGapShifterCV(11, cv=StratifiedShuffleSplit(5, test_size=0.2),
    scoring='roc_auc', class_weight='balanced', max_iter=1000, select='best')``
    -- block norms once for all splits, shift products once per split, no
    shifted matrix written (the final refit on all rows, which the sweep does
    not do, trains on the implicit features too), the probe warm-started along
    lambda; the memmap is read in place (held-out rows weighted 0, the
    shifter fitted chunk by chunk), so only the held-out rows of a split are
    copied.

``all_tasks``
    :func:`skgap.gap_sweep` with every task family that reads single labels
    and no texts: ``tasks=('fusion', 'image', 'text', 'zeroshot',
    'retrieval', 'clustering')`` and the defaults for large test splits
    (retrieval among a gallery of 5,000 test pairs, k-means fitted on 5,000
    test pairs and every test row assigned). The time of each task is
    printed (each task scored on its own, the rest of a fit -- the shift,
    the shifted test rows, the zero-shot classes -- as ``map + rows``).

Targets at n = 400,000: under 10 minutes, peak RSS under
2x the data (the ratio is printed).

``--parts methods``: the large-test-split methods of ``all_tasks`` against
the exact ones on the test rows of one 80/20 split of
``make_paired_embeddings(n, d, n_classes=5, class_sep=1.0, noise=8.0)``
(classes that k-means finds in part, recall@1 of a few percent; shifted at
lambda 0 and 1): k-means fitted on a sample of the test pairs and every row
assigned, against k-means on all test rows (adjusted Rand index between the
two labellings, beside that between two seeds of k-means on all rows, and the
difference of each score); recall@k among a gallery
of 5,000 test pairs, against all test pairs, with the spread over galleries.

``--parts encode``: the encoder on a dask cluster. PNG files of 200-400 px and
captions go through :func:`skgap.encode.encode_archive` on a local cluster of
1 and of 2 worker processes (built beforehand, as ``encode_archive`` builds
them: one thread each, the cores shared out among the workers' torch), against
the encoder in this process (same model, all cores, loaded beforehand). Two
figures per run: the wall time of the call (the workers' model loads and the
shard writes included) and the encoding window (first shard's start to last
shard's end, from the commit records); the speed-up is 1 worker's over 2
workers'.

``--parts sweep-cluster``: the sweep's fits on a dask cluster. The same
protocol (11 lambdas x 5 splits, early fusion; ``--cluster-n`` pairs x
(2 x ``--cluster-d``), in memory) through ``gap_sweep(..., n_jobs=-1)`` under
``joblib.parallel_config(backend='dask')`` on a local cluster of 1 and of 2
worker processes (one fit at a time each: two threads and one ``fit``
resource per worker, since joblib runs the sweep in the calling process when
the whole cluster has a single thread; started and warmed up -- skgap
imported on every worker -- before the clock starts), against the sweep in this process
(``n_jobs=None``). The rows and the labels reach the cluster once per sweep
(the count of scattered arrays of their shape is printed), and the tables of
the two clusters must be equal; the speed-up is 1 worker's wall time over 2
workers'. The load average is printed before and after each run.

Usage::

    python benchmarks/bench_archive.py                 # reduced: n = 40,000 (shared machine)
    python benchmarks/bench_archive.py --full          # n = 400,000, 1.6 GB on disk
    python benchmarks/bench_archive.py --smoke         # tiny, for CI
    python benchmarks/bench_archive.py --parts encode  # the encoder cluster speed-up
    python benchmarks/bench_archive.py --parts methods # large-test-split methods vs exact
    python benchmarks/bench_archive.py --parts sweep-cluster  # the sweep's fits on 1 and 2 workers
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from _util import header

DESIGNS = ("gap_sweep", "ModalityGapShifterCV", "all_tasks")
PARTS = ("sweep", "encode", "methods", "sweep-cluster")
#: The task families of the ``all_tasks`` design.
ALL_TASKS = ("fusion", "image", "text", "zeroshot", "retrieval", "clustering")
#: Classes of the data of ``--parts methods`` (clusters to find).
K_METHODS = 5


def write_data(path, n, d, chunk=50_000, seed=0):
    """A paired float32 memmap with a gap and a weak binary signal; returns y."""
    rng = np.random.default_rng(seed)
    mu_v = rng.normal(size=d).astype(np.float32)
    mu_t = rng.normal(size=d).astype(np.float32)
    signal = rng.normal(size=2 * d).astype(np.float32)
    signal *= 0.08 / np.linalg.norm(signal) * np.sqrt(2 * d)
    y = (rng.random(n) < 0.3).astype(np.int64)  # a finding in 30% of studies
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 2 * d))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = rng.standard_normal((stop - start, 2 * d), dtype=np.float32) * 0.6
        block[:, :d] += 1.5 * mu_v
        block[:, d:] += 1.5 * mu_t
        block += y[start:stop, None] * signal
        X[start:stop] = block
    X.flush()
    del X
    return y


def peak_rss():
    """Peak resident memory of this process, bytes.

    ``VmHWM`` of ``/proc/self/status`` where there is one: unlike
    ``ru_maxrss``, which Linux carries across ``exec`` from the parent, it
    is this program's own high-water mark.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(design, data, labels, lams, seeds):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedShuffleSplit

    import skgap  # noqa: F401  (imports before the baseline RSS)

    base_rss = peak_rss()
    X = np.load(data, mmap_mode="r")
    y = np.load(labels)
    grid = np.linspace(0.0, 1.0, lams)
    warnings.simplefilter("ignore", ConvergenceWarning)
    start = time.perf_counter()
    task_times = None
    if design == "all_tasks":
        auc, task_times = all_tasks_sweep(X, y, grid, seeds)
    elif design == "gap_sweep":
        from skgap import gap_sweep
        from skgap.evaluate import make_linear_probe

        table = gap_sweep(X, y, lams=grid, n_seeds=seeds, probe=make_linear_probe("binary"),
                          tasks=("fusion",), as_frame=False)
        lam_col = np.asarray(table["lam"])
        keep = np.asarray(table["metric"]) == "auc"
        score = np.asarray(table["score"], dtype=float)
        auc = [score[keep & (lam_col == lam)].mean() for lam in grid]
    else:
        from skgap import ModalityGapShifterCV

        search = ModalityGapShifterCV(
            grid, cv=StratifiedShuffleSplit(seeds, test_size=0.2, random_state=0),
            scoring="roc_auc", class_weight="balanced", max_iter=1000, select="best",
        ).fit(X, y)
        auc = search.cv_results_["mean_test_score"]
    wall = time.perf_counter() - start
    rss = peak_rss()
    print(json.dumps({"wall": wall, "rss": rss, "base": base_rss, "auc": [float(a) for a in auc],
                      "task_times": task_times}))


def all_tasks_sweep(X, y, grid, seeds):
    """``gap_sweep`` of :data:`ALL_TASKS`; the fusion AUC per lambda and the seconds per task.

    Each fit's ``score_split`` is timed task by task (the tasks of a fit are
    scored independently, so one call per task gives the same table); the
    rest of the sweep is ``map + rows``.
    """
    from skgap import gap_sweep
    from skgap.evaluate import _sweep

    times = dict.fromkeys(ALL_TASKS, 0.0)
    score_split = _sweep.score_split

    def timed(tasks, *args, **kwargs):
        rows = []
        for task in tasks:
            start = time.perf_counter()
            rows += score_split((task,), *args, **kwargs)
            times[task] += time.perf_counter() - start
        return rows

    _sweep.score_split = timed
    start = time.perf_counter()
    try:
        table = gap_sweep(X, y, lams=grid, n_seeds=seeds, tasks=ALL_TASKS, as_frame=False)
    finally:
        _sweep.score_split = score_split
    times["map + rows"] = time.perf_counter() - start - sum(times.values())
    lam_col = np.asarray(table["lam"])
    keep = (np.asarray(table["task"]) == "fusion") & (np.asarray(table["metric"]) == "auc")
    score = np.asarray(table["score"], dtype=float)
    return [score[keep & (lam_col == lam)].mean() for lam in grid], times


def compare_methods(args):
    """The large-test-split methods against the exact ones on one split's test rows."""
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import train_test_split

    from skgap import ModalityGapShifter
    from skgap.datasets import make_paired_embeddings
    from skgap.evaluate._tasks import (
        _cluster_labels,
        _clustering_metrics,
        _retrieval_metrics,
    )

    header("large test splits: sampled k-means and a fixed retrieval gallery vs exact",
           n=args.n, d=args.d)
    X, y = make_paired_embeddings(args.n, args.d, n_classes=K_METHODS, class_sep=1.0,
                                  noise=8.0, random_state=0)
    train, test = train_test_split(np.arange(args.n), test_size=0.2, stratify=y,
                                   random_state=0)
    n_test = test.size
    samples = sorted({max(2, n_test // 8), max(2, n_test // 4), max(2, n_test // 2)})
    gallery = min(5000, max(2, n_test // 2))
    for lam in (0.0, 1.0):
        shifter = ModalityGapShifter(lam=lam).fit(X[train])
        Z = shifter.transform(X[test])
        V, T = Z[:, : args.d], Z[:, args.d:]
        start = time.perf_counter()
        full = _cluster_labels(V, T, K_METHODS, 0)
        exact = dict(_clustering_metrics(V, T, y[test], K_METHODS, 0))
        t_full = time.perf_counter() - start
        # The yardstick: k-means on all rows from another seed.
        other = adjusted_rand_score(np.concatenate(full),
                                    np.concatenate(_cluster_labels(V, T, K_METHODS, 1)))
        print(f"lambda {lam:g}: k-means on all {n_test} test pairs ({t_full:.1f} s): "
              + ", ".join(f"{k} {v:.4f}" for k, v in exact.items())
              + f"; ARI between its labellings from two seeds {other:.4f}")
        for sample in samples:
            start = time.perf_counter()
            part = _cluster_labels(V, T, K_METHODS, 0, sample)
            approx = dict(_clustering_metrics(V, T, y[test], K_METHODS, 0, sample))
            t_part = time.perf_counter() - start
            agree = adjusted_rand_score(np.concatenate(full), np.concatenate(part))
            diffs = ", ".join(f"{k} {approx[k] - exact[k]:+.4f}" for k in exact)
            print(f"   fitted on {sample} pairs ({t_part:.1f} s): ARI between labellings "
                  f"{agree:.4f}; score differences {diffs}")
        whole = dict(_retrieval_metrics(V, T))
        galleries = np.array([[v for _, v in _retrieval_metrics(V, T, gallery, seed)]
                              for seed in range(5)])
        names = [m for m, _ in _retrieval_metrics(V[:20], T[:20])]
        print(f"   recall@k among all {n_test} test pairs / among {gallery} "
              "(mean +- sd over 5 galleries):")
        print("   " + "; ".join(
            f"{m} {whole[m]:.4f} / {galleries[:, j].mean():.4f} +- {galleries[:, j].std():.4f}"
            for j, m in enumerate(names)))


def _encoder(args, folder):
    if args.encode_model == "tiny-hf":
        from skgap.encode import TransformersEncoder, save_random_model

        model = save_random_model(Path(folder) / "model", "clip")
        return TransformersEncoder(model, device="cpu", batch_size=args.encode_batch)
    from skgap.encode import OpenCLIPEncoder

    return OpenCLIPEncoder(args.encode_model, device="cpu", batch_size=args.encode_batch)


def encode_speedup(args):
    """Pairs/s of the encoder: in this process, then on 1 and 2 dask worker processes."""
    import torch
    from bench_encode import make_inputs
    from distributed import Client

    from skgap.encode import encode_archive
    from skgap.encode._archive import local_cluster
    from skgap.io import load_embeddings

    header(
        "the encoder on a local dask cluster (encode_archive)",
        n=args.encode_n, model=args.encode_model, shard_size=args.shard_size,
        batch_size=args.encode_batch, cores=os.cpu_count(),
    )
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights: a benchmark
        enc = _encoder(args, folder)
        paths, texts = make_inputs(folder, args.encode_n, args.encode_n)
        table = {"image": paths, "text": texts}
        enc.fit()
        start = time.perf_counter()
        ref = enc.transform(table)
        t_single = time.perf_counter() - start
        rows.append((f"in this process, {torch.get_num_threads()} torch threads", t_single,
                     t_single))
        for n_workers in (1, 2):
            with local_cluster(n_workers, dashboard_address=":0") as cluster, \
                    Client(cluster) as client:
                out = Path(folder) / f"archive{n_workers}"
                start = time.perf_counter()
                summary = encode_archive(table, enc, out, client=client,
                                         shard_size=args.shard_size, progress=False,
                                         verbose=False)
                wall = time.perf_counter() - start
            first = min(r["started"] for r in summary.shards)
            last = max(r["started"] + r["seconds"] for r in summary.shards)
            diff = np.abs(load_embeddings(out)[0] - ref).max()
            rows.append((f"encode_archive, {n_workers} worker(s)", wall, last - first))
            print(f"   {n_workers} worker(s): {summary.n_shards} shards, max |archive - "
                  f"in-process| {diff:.1e}")
    n = args.encode_n
    print(f"{'runner':<40s}{'wall':>9s}{'pairs/s':>9s}{'encoding':>10s}{'pairs/s':>9s}")
    for name, wall, busy in rows:
        print(f"{name:<40s}{wall:8.1f}s{n / wall:9.1f}{busy:9.1f}s{n / busy:9.1f}")
    (_, w1, b1), (_, w2, b2) = rows[1], rows[2]
    print(f"encoder cluster speed-up, 2 workers vs 1: x{w1 / w2:.2f} wall (model loads and "
          f"writes included), x{b1 / b2:.2f} encoding (first shard start to last shard end); "
          f"{os.cpu_count()} cores")


def _load_average():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _warm(client):
    """Every worker has imported what a fit needs before the clock starts."""
    def imports():
        import skgap.evaluate._sweep  # noqa: F401

    client.run(imports)


def _compute_seconds(records):
    """Seconds the workers spent computing tasks, summed (task stream records)."""
    return sum(span["stop"] - span["start"] for r in records for span in r["startstops"]
               if span["action"] == "compute")


def _sweep_table(X, y, args, n_jobs):
    from sklearn.exceptions import ConvergenceWarning

    from skgap import gap_sweep

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gap_sweep(X, y, lams=np.linspace(0.0, 1.0, args.lams), n_seeds=args.seeds,
                         tasks=("fusion",), n_jobs=n_jobs, as_frame=False)


def sweep_cluster_speedup(args):
    """gap_sweep's fits in this process, then on 1 and 2 dask worker processes."""
    import joblib
    from distributed import Client, LocalCluster, get_task_stream

    n, d = args.cluster_n, args.cluster_d
    header(
        "the sweep's fits on a local dask cluster (gap_sweep under joblib's dask backend)",
        n=n, d=d, lams=args.lams, seeds=args.seeds, cores=os.cpu_count(),
        data=f"{n * 2 * d * 4 / 2**20:.0f} MiB",
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "X.npy"
        y = write_data(path, n, d)
        X = np.load(path)  # in memory: the cluster gets the rows from this process
    rows, tables = [], {}
    print(f"   load average before: {_load_average()}")
    start = time.perf_counter()
    tables["in this process"] = _sweep_table(X, y, args, None)
    rows.append(("gap_sweep in this process, n_jobs=None", time.perf_counter() - start, "-"))
    print(f"   load average after it: {_load_average()}")
    for n_workers in (1, 2):
        # Two threads per worker but one "fit" resource: one fit at a time on each
        # worker. (With a single worker thread in the whole cluster joblib would
        # run the sweep in this process.)
        with LocalCluster(n_workers=n_workers, threads_per_worker=2, processes=True,
                          resources={"fit": 1}, host="127.0.0.1",
                          dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.wait_for_workers(n_workers)
            _warm(client)
            shapes = []
            scatter = client.scatter

            def counted(data, *a, _scatter=scatter, **k):
                shapes.append(getattr(data, "shape", None))
                return _scatter(data, *a, **k)

            client.scatter = counted
            start = time.perf_counter()
            with joblib.parallel_config(backend="dask", resources={"fit": 1}), \
                    get_task_stream(client) as stream:
                tables[n_workers] = _sweep_table(X, y, args, -1)
            wall = time.perf_counter() - start
        per_worker = sorted(Counter(r["worker"] for r in stream.data).values())
        sent = (f"X x{shapes.count(X.shape)}, y x{shapes.count(y.shape)}; tasks per worker "
                f"{per_worker}; {_compute_seconds(stream.data) / wall:.2f} fits computing at "
                "once on average")
        rows.append((f"gap_sweep on {n_workers} worker process(es)", wall, sent))
        print(f"   load average after {n_workers} worker(s): {_load_average()}")
    same = all(np.array_equal(tables[1][k], tables[2][k]) for k in tables[1])
    diff = np.max(np.abs(tables[1]["score"] - tables["in this process"]["score"]))
    n_fits = args.lams * args.seeds
    print(f"{'runner':<44s}{'wall':>9s}{'s/fit':>8s}  scattered")
    for name, wall, sent in rows:
        print(f"{name:<44s}{wall:8.1f}s{wall / n_fits:8.2f}  {sent}")
    (_, w1, _), (_, w2, _) = rows[1], rows[2]
    print(f"sweep cluster speed-up, 2 workers vs 1: x{w1 / w2:.2f} ({n_fits} fits, "
          f"{os.cpu_count()} cores); tables of 1 and 2 workers equal: {same}; max |score - "
          f"in this process| {diff:.1e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="pairs (default: reduced)")
    parser.add_argument("--full", action="store_true", help="n = 400,000 (MIMIC-CXR size)")
    parser.add_argument("--d", type=int, default=512, help="width of each modality")
    parser.add_argument("--lams", type=int, default=11)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--designs", default=",".join(DESIGNS), help=f"comma list of {DESIGNS}")
    parser.add_argument("--dir", default=None, help="folder of the data file (default: temp)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--parts", default="sweep", help=f"comma list of {PARTS}")
    parser.add_argument("--encode-n", type=int, default=256, help="pairs to encode")
    parser.add_argument("--encode-model", default="ViT-B-32",
                        help="open_clip architecture (random weights), or tiny-hf")
    parser.add_argument("--encode-batch", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=32, help="rows per archive shard")
    parser.add_argument("--cluster-n", type=int, default=30_000,
                        help="pairs of the sweep-cluster part")
    parser.add_argument("--cluster-d", type=int, default=256,
                        help="width of each modality in the sweep-cluster part")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        design, data, labels = args.child
        return child(design, data, labels, args.lams, args.seeds)
    if args.full:
        args.n = 400_000
    if args.smoke:
        args.n, args.d, args.lams, args.seeds = 600, 16, 3, 2
        args.encode_n, args.encode_model, args.encode_batch, args.shard_size = 8, "tiny-hf", 4, 4
        args.cluster_n, args.cluster_d = 600, 16
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"parts must be among {PARTS}")
    if "sweep" in parts:
        sweep(args, parser)
    if "encode" in parts:
        encode_speedup(args)
    if "methods" in parts:
        compare_methods(args)
    if "sweep-cluster" in parts:
        sweep_cluster_speedup(args)


def sweep(args, parser):
    designs = [s.strip() for s in args.designs.split(",") if s.strip()]
    if set(designs) - set(DESIGNS):
        parser.error(f"designs must be among {DESIGNS}")

    data_mib = args.n * 2 * args.d * 4 / 2**20
    header(
        "archive scale: the whole lambda protocol on a memmap",
        n=args.n, d=args.d, lams=args.lams, seeds=args.seeds, data=f"{data_mib:.0f} MiB",
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        data, labels = Path(folder) / "X.npy", Path(folder) / "y.npy"
        start = time.perf_counter()
        np.save(labels, write_data(data, args.n, args.d))
        print(f"   data written in {time.perf_counter() - start:.1f} s")
        results = {}
        for design in designs:
            proc = subprocess.run(
                [sys.executable, __file__, "--lams", str(args.lams), "--seeds",
                 str(args.seeds), "--child", design, str(data), str(labels)],
                capture_output=True, text=True, env={**os.environ},
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{design} failed:\n{proc.stderr[-3000:]}")
            results[design] = json.loads(proc.stdout.strip().splitlines()[-1])
    base = results.get("gap_sweep")
    print(
        f"{'design':<24s}{'wall':>10s}{'peak RSS':>12s}{'RSS / data':>12s}"
        f"{'less imports':>14s}  vs gap_sweep"
    )
    for design, r in results.items():
        rss_mib = r["rss"] / 2**20
        extra = (r["rss"] - r["base"]) / 2**20
        vs = f"x{r['wall'] / base['wall']:.3f} of its time" if base else "-"
        print(
            f"{design:<24s}{r['wall']:9.1f}s{rss_mib:10.0f} MiB{rss_mib / data_mib:11.2f}x"
            f"{extra / data_mib:13.2f}x  {vs}"
        )
    if base and "ModalityGapShifterCV" in results:
        diff = np.max(np.abs(np.subtract(base["auc"], results["ModalityGapShifterCV"]["auc"])))
        print(
            f"mean AUC per lambda: max |difference| {diff:.4f} "
            "(different random splits of the same protocol)"
        )
    for design, r in results.items():
        if r.get("task_times"):
            print(f"{design}: seconds per task: " + ", ".join(
                f"{task} {sec:.1f}" for task, sec in r["task_times"].items()))
    full = 400_000 / args.n
    for design, r in results.items():
        print(
            f"{design}: linear extrapolation to n = 400,000: {r['wall'] * full / 60:.1f} min "
            "(target < 10 min)"
        )


if __name__ == "__main__":
    main()
