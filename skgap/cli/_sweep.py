"""``skgap sweep``: choose the gap-shift lambda for your task, with files to show for it."""

from pathlib import Path

from threadpoolctl import threadpool_limits

from ..evaluate._auc import TASKS, check_task
from ..evaluate._sweep import gap_sweep, summarize_sweep
from ..stats import ConeStats
from ._figures import cones_figure, sweep_figure
from ._format import dumps, format_best, format_report, format_sweep
from ._io import DATA_FORMS, LABEL_FORMS, DataError, load_embeddings, load_labels
from ._options import (
    HelpFormatter,
    add_lams,
    add_progress,
    positive_int,
    test_fraction,
    want_progress,
)
from ._outputs import prepare_out_dir, save_figures, write_csv, write_json


def register(sub):
    p = sub.add_parser(
        "sweep",
        help="choose the gap-shift lambda for your labels (writes CSV, JSON and PNGs)",
        description=(
            "For each random train/test split and each lambda: estimate the modality gap "
            "on the training rows, shift both splits by lambda times the gap, fit a "
            "class-weighted logistic-regression probe on the concatenated [image | text] "
            "embeddings and score its ROC AUC on the test rows (Restrepo et al. 2026). "
            "Prints the table and the best lambda, and writes sweep.csv (one row per split "
            "and lambda), summary.json (mean +/- std per lambda, best lambda, cone "
            f"statistics), cones.png and sweep.png to --out. DATA is {DATA_FORMS}."
        ),
        epilog=(
            "examples:\n"
            "  skgap sweep embeddings.npz                       (labels inside the npz)\n"
            "  skgap sweep images.npy texts.npy --labels meta.csv:finding --task binary\n"
            "  skgap sweep emb.npz --labels y.npy --lams 0:1:6 --seeds 10 --out results/"
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="embeddings file(s)")
    p.add_argument(
        "--labels",
        default=None,
        metavar="LABELS",
        help=f"labels: {LABEL_FORMS}; default: the 'labels' array of the DATA .npz",
    )
    p.add_argument(
        "--task",
        choices=("auto", *TASKS),
        default="auto",
        help="probe task; 'auto' reads it from the labels (default: %(default)s)",
    )
    add_lams(p)
    p.add_argument("--seeds", type=positive_int, default=5, metavar="N",
                   help="number of random train/test splits (default: %(default)s)")
    p.add_argument("--test-size", type=test_fraction, default=0.2, metavar="FRACTION",
                   help="fraction of rows held out in each split (default: %(default)s)")
    p.add_argument("--direction", choices=("raw", "unit"), default="raw",
                   help="shift along the gap itself or its unit vector (default: %(default)s)")
    p.add_argument("--out", default="skgap-sweep", metavar="DIR",
                   help="folder for the output files, created if needed (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="do not draw cones.png and sweep.png")
    p.add_argument("--n-jobs", type=int, default=None, metavar="N",
                   help="fit in N parallel processes (-1: all cores; default: one)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the splits (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_progress(p)
    p.set_defaults(func=run)


def run(args):
    data_name = " + ".join(map(str, args.data))
    X, found = load_embeddings(args.data)
    y = load_labels(args.labels, X.shape[0], default=found)
    if y is None:
        raise DataError(
            f"{data_name}: no labels; pass --labels ({LABEL_FORMS}) or store an array "
            "'labels' in the .npz."
        )
    labels_name = args.labels or f"{data_name} ['labels']"
    try:
        task = check_task(None if args.task == "auto" else args.task, y)
    except ValueError as exc:
        raise DataError(f"{labels_name}: {exc}") from None
    out = prepare_out_dir(args.out)

    report = ConeStats(random_state=args.seed).fit(X).report()
    # Many small fits: one BLAS thread each avoids oversubscribed cores.
    with threadpool_limits(limits=1):
        try:
            table = gap_sweep(
                X, y, lams=args.lams, n_seeds=args.seeds, test_size=args.test_size, task=task,
                direction=args.direction, random_state=args.seed,
                progress=want_progress(args.progress), n_jobs=args.n_jobs, as_frame=False,
            )
        except ValueError as exc:
            raise DataError(f"{data_name}: {exc}") from None
    summary = summarize_sweep(table)

    files = [write_csv(out / "sweep.csv", table)]
    result = {
        "data": [str(p) for p in args.data],
        "labels": args.labels,
        "task": task,
        "n_samples": X.shape[0],
        "n_seeds": args.seeds,
        "test_size": args.test_size,
        "direction": args.direction,
        "per_lambda": [
            {out_key: summary[key][i] for key, out_key in _PER_LAMBDA.items() if key in summary}
            for i in range(summary["lam"].size)
        ],
        "best_lambda": summary["best_lam"],
        "best_auc_mean": summary["best_mean"],
        "best_auc_std": summary["best_std"],
        "baseline_auc_mean": summary["baseline_mean"],
        "gain": summary["gain"],
        "cone_statistics": report,
    }
    files.append(write_json(out / "summary.json", result))
    note = None
    if not args.no_plots:
        shown = _shown_lambda(summary)
        written, note = save_figures(out, [
            ("cones.png", lambda: cones_figure({Path(args.data[0]).name: (X, shown)}, args.seed)),
            ("sweep.png", lambda: sweep_figure({Path(args.data[0]).name: table},
                                               f"{task.capitalize()} probe AUC against λ")),
        ])
        files += written

    if args.json:
        print(dumps(result))
        return 0
    d = X.shape[1] // 2
    print(f"{data_name}: {X.shape[0]} pairs of {d}-d embeddings; {task} labels\n")
    print(format_report(report))
    print()
    title = (f"{task.capitalize()} probe AUC over {args.seeds} splits "
             f"(test fraction {args.test_size:g})")
    print(format_sweep(summary, title))
    print()
    print(format_best(summary))
    print()
    if note:
        print(note)
    print("wrote:\n" + "\n".join(f"  {f}" for f in files))
    return 0


#: summary key -> key in summary.json's per_lambda records.
_PER_LAMBDA = {
    "lam": "lambda",
    "mean": "auc_mean",
    "std": "auc_std",
    "n": "n_seeds",
    "delta_mean": "auc_change_from_lambda_0_mean",
    "delta_std": "auc_change_from_lambda_0_std",
    "gap_norm_mean": "gap_norm_mean",
    "R_image_mean": "R_image_mean",
    "R_text_mean": "R_text_mean",
}


def _shown_lambda(summary):
    """The lambda of the 'after' panel: the best one, or the largest when the best is 0."""
    best = summary["best_lam"]
    return best if best > 0 else float(summary["lam"].max())
