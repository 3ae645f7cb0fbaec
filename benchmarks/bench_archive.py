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

Targets at n = 400,000: under 10 minutes, peak RSS under
2x the data (the ratio is printed).

Usage::

    python benchmarks/bench_archive.py                 # reduced: n = 40,000 (shared machine)
    python benchmarks/bench_archive.py --full          # n = 400,000, 1.6 GB on disk
    python benchmarks/bench_archive.py --smoke         # tiny, for CI
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
from pathlib import Path

import numpy as np
from _util import header

DESIGNS = ("gap_sweep", "ModalityGapShifterCV")


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
    if design == "gap_sweep":
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
    print(json.dumps({"wall": wall, "rss": rss, "base": base_rss, "auc": [float(a) for a in auc]}))


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
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        design, data, labels = args.child
        return child(design, data, labels, args.lams, args.seeds)
    if args.full:
        args.n = 400_000
    if args.smoke:
        args.n, args.d, args.lams, args.seeds = 600, 16, 3, 2
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
    full = 400_000 / args.n
    for design, r in results.items():
        print(
            f"{design}: linear extrapolation to n = 400,000: {r['wall'] * full / 60:.1f} min "
            "(target < 10 min)"
        )


if __name__ == "__main__":
    main()
