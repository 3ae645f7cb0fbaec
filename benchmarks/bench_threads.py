"""No thread penalty: every public entry point, default threads vs one BLAS thread.

For each entry point that runs many small fits, the same call is timed with the
process's default BLAS/OpenMP threads and inside
``threadpoolctl.threadpool_limits(1)``, alternately in one process (so that a
burst of load hits both). The ratio default / one-thread should be <= 1.1
skgap limits the threads itself where it controls the
fits, so the default configuration is the fast one.

Entry points (public API only, so the script survives refactors):

- ``gap_sweep`` (the paper's protocol), 6 lambdas x 3 seeds;
- ``ModalityGapShifterCV.fit``, 6 lambdas x 3 folds;
- ``LateFusionClassifier.fit`` (one probe per modality);
- ``groupwise_scores`` (k-means and kNN on the stacked rows);
- ``GridSearchCV(ModalityGapShifter(), scoring=make_retrieval_scorer())`` and
  ``make_clustering_scorer`` (the scorers inside a user's search).

Usage::

    python benchmarks/bench_threads.py            # 3,000 x (2 x 256) float32, 5 classes
    python benchmarks/bench_threads.py --smoke    # tiny, for CI
"""

import argparse
import warnings

import numpy as np
from _util import header, interleaved
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

from skgap import LateFusionClassifier, ModalityGapShifter, ModalityGapShifterCV, gap_sweep
from skgap.datasets import make_paired_embeddings
from skgap.evaluate import groupwise_scores, make_clustering_scorer, make_retrieval_scorer

TARGET = 1.1


def entry_points(X, y, lams, n_seeds):
    grid = {"lam": list(lams)}
    return {
        "gap_sweep": lambda: gap_sweep(X, y, lams=lams, n_seeds=n_seeds),
        "ModalityGapShifterCV.fit": lambda: ModalityGapShifterCV(lams, cv=n_seeds).fit(X, y),
        "LateFusionClassifier.fit": lambda: LateFusionClassifier().fit(X, y),
        "groupwise_scores": lambda: groupwise_scores(X, y),
        "GridSearchCV(retrieval scorer)": lambda: GridSearchCV(
            ModalityGapShifter(), grid, scoring=make_retrieval_scorer(k=5), cv=n_seeds
        ).fit(X),
        "GridSearchCV(clustering scorer)": lambda: GridSearchCV(
            ModalityGapShifter(), grid, scoring=make_clustering_scorer("v_measure"), cv=n_seeds
        ).fit(X, y),
    }


def one_thread(fn):
    def run():
        with threadpool_limits(limits=1):
            return fn()

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="rows (pairs)")
    parser.add_argument("--d", type=int, default=256, help="width of each modality")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--lams", type=int, default=6, help="grid size in [0, 1]")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of gap_sweep, folds of CV")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds")
    parser.add_argument("--only", default=None, help="substring: time only matching entries")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.d, args.classes, args.lams, args.seeds, args.repeat = 300, 16, 3, 3, 2, 1

    X, y = make_paired_embeddings(args.n, args.d, args.classes, noise=2.0, random_state=0)
    lams = np.linspace(0.0, 1.0, args.lams)
    pools = ", ".join(
        f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()
    )
    header(
        "threads: default vs threadpool_limits(1), per public entry point",
        n=args.n, d=args.d, classes=args.classes, lams=args.lams, seeds=args.seeds,
    )
    print(f"   default pools: {pools}")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, fn in entry_points(X, y, lams, args.seeds).items():
            if args.only and args.only not in name:
                continue
            times = interleaved({"default": fn, "one": one_thread(fn)}, repeat=args.repeat)
            t_def, t_one = np.min(times["default"]), np.min(times["one"])
            median = np.median(np.asarray(times["default"]) / np.asarray(times["one"]))
            rows.append((name, t_def, t_one, t_def / t_one, median))
    print(f"{'entry point':<34s} {'default':>9s} {'1 thread':>9s}  default / one-thread")
    for name, t_def, t_one, ratio, median in rows:
        flag = "ok" if ratio <= TARGET else "SLOWER"
        print(
            f"{name:<34s} {t_def:8.3f}s {t_one:8.3f}s  x{ratio:5.2f} "
            f"(median x{median:5.2f}) {flag}"
        )
    worst = max(r[3] for r in rows)
    print(f"worst default / one-thread ratio x{worst:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
