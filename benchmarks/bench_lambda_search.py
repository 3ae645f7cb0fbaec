"""A fast cross-validated lambda search: ModalityGapShifterCV vs GridSearchCV.

Baseline, measured in the same run on the same folds::

    GridSearchCV(Pipeline([("shifter", ModalityGapShifter()),
                           ("probe", LogisticRegression())]),
                 {"shifter__lam": 11 values in [0, 1]}, cv=5, scoring="roc_auc")

The baseline is timed twice, with the default BLAS/OpenMP threads and under
``threadpool_limits(1)``, and the faster of the two is the reference (compare
against the baseline at its fastest setting). ``ModalityGapShifterCV``
runs as a user would call it (it limits its own fits to one BLAS thread).

Selection is compared like with like: ``select='best'`` against
GridSearchCV's highest mean, and ``select='one_se'`` (the default) against the
one-standard-error rule applied to GridSearchCV's own split scores (what
``GridSearchCV(refit=callable)`` with that rule picks).

Targets: >= 10x at n = 20k and 100k (stretch 20x); the same
selected lambda as the baseline or, on a flat curve, a lambda whose baseline CV
score is within 0.002 of the baseline's pick.

The data are synthetic CLIP-like embeddings (``make_paired_embeddings`` with
the ``coco-clip`` cone and gap) with enough noise that the probe's AUC is
not saturated (about 0.9), so that lambda matters to the fourth decimal only
-- as on real data, where the linear probe is nearly invariant to the shift.
``--classes 10`` scores the multi-class probe by one-vs-rest AUC.

The fast search's solver work is printed too: iterations (L-BFGS at the
first, cold-started lambda of each fold; conjugate-gradient steps at the
warm-started rest), loss-and-gradient evaluations (one read of the
fold's rows each; none for the forward products a warm start already has) and
the warm starts' direction passes (half an evaluation each).
``--accuracy`` also measures how far each search's tol-solutions lie from the
converged ones: a reference ``ModalityGapShifterCV(tol=1e-10)`` (which agrees
with ``GridSearchCV`` at that tolerance, ``tests/transform/test_shift_cv.py``) for the
mean CV scores, and ``LogisticRegression(tol=1e-10)`` on the shifted rows for
the refitted probe's coefficients.

Usage::

    python benchmarks/bench_lambda_search.py                 # n=20000, d=512, binary
    python benchmarks/bench_lambda_search.py --n 100000
    python benchmarks/bench_lambda_search.py --classes 10
    python benchmarks/bench_lambda_search.py --accuracy      # + distance from converged fits
    python benchmarks/bench_lambda_search.py --smoke         # tiny, for CI
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _util import header
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from skgap import ModalityGapShifter, ModalityGapShifterCV
from skgap._core._selection import select_setting
from skgap.datasets import make_paired_embeddings
from skgap.transform import _solver

TARGET, STRETCH = 10, 20


def _split_scores(cv_results, n_splits):
    return np.array([cv_results[f"split{k}_test_score"] for k in range(n_splits)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="rows (pairs)")
    parser.add_argument("--d", type=int, default=512, help="width of each modality")
    parser.add_argument("--lams", type=int, default=11, help="grid size in [0, 1]")
    parser.add_argument("--cv", type=int, default=5, help="folds")
    parser.add_argument("--classes", type=int, default=2, help="classes (2: binary)")
    parser.add_argument("--noise", type=float, default=12.0, help="make_paired_embeddings noise")
    parser.add_argument(
        "--preset",
        default="coco-clip",
        choices=("coco-clip", "mimic-clip"),
        help="cone geometry of the data; on mimic-clip lambda changes the AUC, on coco-clip it does not",
    )
    parser.add_argument("--n-jobs", type=int, default=None, help="joblib workers (both)")
    parser.add_argument(
        "--tol", type=float, default=1e-4, help="probe solver tolerance (both; default 1e-4)"
    )
    parser.add_argument("--max-iter", type=int, default=100, help="probe iteration cap (both)")
    parser.add_argument(
        "--baseline-threads",
        choices=("both", "one", "default"),
        default="both",
        help="thread settings of the baseline to time (default: both, the faster is used)",
    )
    parser.add_argument(
        "--accuracy", action="store_true",
        help="also measure the distance of both searches from converged (tol=1e-10) fits",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.d, args.lams, args.cv = 400, 16, 4, 3

    X, y = make_paired_embeddings(
        args.n, args.d, args.classes, preset=args.preset, noise=args.noise, random_state=0
    )
    scoring = "roc_auc" if args.classes == 2 else "roc_auc_ovr"
    lams = np.linspace(0.0, 1.0, args.lams)
    folds = list(StratifiedKFold(args.cv, shuffle=True, random_state=0).split(X, y))
    header(
        "lambda search: ModalityGapShifterCV vs GridSearchCV(Pipeline)",
        n=args.n, d=args.d, classes=args.classes, preset=args.preset, lams=args.lams,
        cv=args.cv, n_jobs=args.n_jobs, tol=args.tol,
    )

    def grid_search():
        return GridSearchCV(
            Pipeline(
                [
                    ("shifter", ModalityGapShifter()),
                    ("probe", LogisticRegression(tol=args.tol, max_iter=args.max_iter)),
                ]
            ),
            {"shifter__lam": list(lams)},
            cv=folds,
            scoring=scoring,
            n_jobs=args.n_jobs,
        ).fit(X, y)

    def fast_search(select):
        return ModalityGapShifterCV(
            lams, cv=folds, scoring=scoring, n_jobs=args.n_jobs, tol=args.tol,
            max_iter=args.max_iter, select=select,
        ).fit(X, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_grid = {}
        if args.baseline_threads in ("both", "default"):
            start = time.perf_counter()
            grid = grid_search()
            t_grid["default threads"] = time.perf_counter() - start
        if args.baseline_threads in ("both", "one"):
            start = time.perf_counter()
            with threadpool_limits(limits=1):
                grid = grid_search()
            t_grid["threadpool_limits(1)"] = time.perf_counter() - start
        start = time.perf_counter()
        fast = fast_search("one_se")
        t_fast = time.perf_counter() - start
        # Count the solver's passes over the rows of one more run (in-process
        # only, so not with n_jobs): loss-and-gradient evaluations, and the
        # direction products of the warm starts' conjugate-gradient steps.
        run_items, evals = _solver.run_work_items, {"loss_gradient": 0, "direction_products": 0}

        def counted(*a, **k):
            caller = sys._getframe(1).f_code.co_name
            if caller in evals:
                evals[caller] += 1
            return run_items(*a, **k)

        _solver.run_work_items = counted
        try:
            fast_best = fast_search("best")  # same scores; only the choice differs
        finally:
            _solver.run_work_items = run_items

    setting = min(t_grid, key=t_grid.get)
    t_base = t_grid[setting]
    grid_scores = grid.cv_results_["mean_test_score"]
    fast_scores = fast.cv_results_["mean_test_score"]
    grid_one_se, _ = select_setting(_split_scores(grid.cv_results_, args.cv), lams, "one_se")
    grid_picks = {"best": int(grid.best_index_), "one_se": int(grid_one_se)}
    fast_picks = {"best": fast_best.best_index_, "one_se": fast.best_index_}

    for label, t in t_grid.items():
        print(f"GridSearchCV(Pipeline), {label:<22s} {t:8.2f} s")
    print(f"ModalityGapShifterCV (default)               {t_fast:8.2f} s")
    print(
        f"speed-up                 x{t_base / t_fast:.2f} against the baseline's fastest "
        f"timed setting ({setting}); "
        + ", ".join(f"x{t / t_fast:.2f} against {label}" for label, t in t_grid.items())
        + f" (target >= {TARGET}, stretch {STRETCH})"
    )
    ok = True
    for rule in ("best", "one_se"):
        g, f = grid_picks[rule], fast_picks[rule]
        gap = float(grid_scores[g] - grid_scores[f])
        ok &= g == f or gap <= 0.002
        print(
            f"selected lambda ({rule:>6s}): baseline {lams[g]:.2f}, fast {lams[f]:.2f} "
            f"({'same' if g == f else f'{abs(g - f)} grid step(s) apart'}); baseline CV score "
            f"at the fast pick is {gap:.5f} below its own pick (target <= 0.002)"
        )
    print(
        "max |mean CV score difference| over the grid: "
        f"{np.max(np.abs(grid_scores - fast_scores)):.2e}"
    )
    print(
        "mean CV score minus best, baseline:",
        np.array2string(grid_scores - grid_scores.max(), precision=5, suppress_small=True),
    )
    print(
        "mean CV score minus best, fast:    ",
        np.array2string(fast_scores - fast_scores.max(), precision=5, suppress_small=True),
    )
    print(
        "se_to_best (fast, one-SE rule):    ",
        np.array2string(fast.cv_results_["se_to_best"], precision=5, suppress_small=True),
    )
    print(
        "solver iterations per lambda (fast, mean over folds):",
        fast.cv_results_["mean_n_iter"].round(1),
    )
    first = np.argsort(lams, kind="stable")[0]
    print(
        f"solver work (fast): {int(fast.n_iter_.sum())} iterations (L-BFGS iterations and "
        f"conjugate-gradient steps; {fast.n_iter_[:, first].mean():.1f} per fold at the "
        "cold-started first lambda)"
        + (
            f", {evals['loss_gradient']} loss-and-gradient evaluations and "
            f"{evals['direction_products']} direction passes of the warm starts"
            if args.n_jobs in (None, 1) else ""
        )
    )
    print(f"lambda target met: {ok}")
    if args.accuracy:
        accuracy(X, y, lams, folds, scoring, args, grid, fast)


def accuracy(X, y, lams, folds, scoring, args, grid, fast):
    """Distance of both searches' tol-solutions from converged ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = ModalityGapShifterCV(
            lams, cv=folds, scoring=scoring, tol=1e-10, max_iter=10_000, select="best"
        ).fit(X, y)
        shifter = fast.best_estimator_.named_steps["shifter"]
        Z = shifter.transform(X)
        exact = LogisticRegression(tol=1e-10, max_iter=10_000).fit(Z, y)
        old = LogisticRegression(tol=args.tol, max_iter=args.max_iter).fit(Z, y)
    ref_scores = ref.cv_results_["mean_test_score"]
    for label, search in (("GridSearchCV", grid), ("ModalityGapShifterCV", fast)):
        diff = np.abs(search.cv_results_["mean_test_score"] - ref_scores)
        print(
            f"{label:<21s} mean CV score - converged (tol=1e-10): max |diff| {diff.max():.2e}, "
            f"mean {diff.mean():.2e}"
        )
    for label, probe in (
        (f"LogisticRegression(tol={args.tol:g}) refit", old),
        ("ModalityGapShifterCV refit", fast.best_estimator_.named_steps["probe"]),
    ):
        coef = np.c_[probe.coef_, probe.intercept_].astype(np.float64)
        true = np.c_[exact.coef_, exact.intercept_].astype(np.float64)
        print(
            f"{label:<38s} coefficients - converged at lambda {shifter.lam:.2f}: "
            f"max |diff| {np.max(np.abs(coef - true)):.2e}, "
            f"relative L2 {np.linalg.norm(coef - true) / np.linalg.norm(true):.2e}"
        )


if __name__ == "__main__":
    main()
