"""``skgap sweep``: what the gap-shift lambda does to each task, with files to show for it."""

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..evaluate._auc import TASKS, check_task
from ..evaluate._degenerate import constant_metrics
from ..evaluate._sweep import LABEL_FREE_TASKS, gap_sweep, summarize_sweep
from ..measure._cone_stats import ConeStats
from ..plotting import _panel_reasons, metric_label, plot_sweep_summary
from ._figures import cones_figure, sweep_figure
from ._format import dumps, format_best, format_report, format_sweep, selection, summary_groups
from ._io import DATA_FORMS, LABEL_FORMS, DataError, load_embeddings, load_labels
from ._messages import (
    cli_words,
    collect_warnings,
    data_keys,
    missing_labels_message,
    print_warning,
)
from ._html import write_sweep_html
from ._options import (
    HelpFormatter,
    add_lams,
    add_progress,
    add_sweep_statistics,
    positive_int,
    task_list,
    test_fraction,
    want_progress,
)
from ._outputs import prepare_out_dir, save_figures, write_csv, write_json



def register(sub):
    p = sub.add_parser(
        "sweep",
        help="what the gap-shift lambda does to each task (writes CSV, JSON and PNGs)",
        description=(
            "For each random train/test split and each lambda: estimate the modality gap "
            "on the training rows, shift both splits by lambda times the gap, and score every "
            "task family on the shifted rows (Restrepo et al. 2026): by default the "
            "class-weighted early-fusion probe on the concatenated [image | text] embeddings "
            "(ROC AUC on the test rows). Prints, per task and metric, the mean score, its "
            "paired change from lambda 0 with a t-interval, and a verdict (helps, hurts, no "
            "evidence); a lambda is called best only when it helps beyond noise. Writes "
            "sweep.csv (one row per split, lambda, task and metric), summary.json, cones.png, "
            "sweep.png, tasks.png (every scored task) and report.html (one self-contained "
            f"page) to --out. DATA is {DATA_FORMS}."
        ),
        epilog=(
            "examples:\n"
            "  skgap sweep embeddings.npz                       (labels inside the npz)\n"
            "  skgap sweep embeddings.npz --labels label_ids    (an array of the npz)\n"
            "  skgap sweep features.npy --tasks retrieval       (no labels needed)\n"
            "  skgap sweep images.npy texts.npy --labels meta.csv:finding --task binary\n"
            "  skgap sweep emb.npz --labels y.npy --lams -1:1:9 --seeds 10 --out results/\n"
            "  skgap sweep emb.npz --tasks fusion,zeroshot,retrieval,clustering --probe paper"
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="embeddings file(s)")
    p.add_argument(
        "--labels",
        default=None,
        metavar="LABELS",
        help=("labels: the name of an array of DATA (or of a metadata column of a "
              f"clip-retrieval folder), else {LABEL_FORMS}; default: the 'labels' array of "
              "DATA; tasks that read no labels (retrieval) need none"),
    )
    p.add_argument(
        "--task",
        choices=("auto", *TASKS),
        default="auto",
        help="kind of labels; 'auto' reads it from the labels (default: %(default)s)",
    )
    p.add_argument(
        "--tasks", type=task_list, default=("fusion",), metavar="NAMES",
        help="task families to score, comma-separated: fusion, image, text, zeroshot (text "
             "prototypes of the training split as class embeddings), retrieval, clustering, "
             "text_to_image, image_to_text, captioning (needs --texts) (default: fusion)",
    )
    p.add_argument(
        "--texts", default=None, metavar="NAME",
        help="the text of each row, for --tasks captioning: a string array or column of DATA "
             "(e.g. 'caption' of a clip-retrieval archive's metadata) or a table FILE:COLUMN "
             "(joined by --id-column when given)",
    )
    p.add_argument(
        "--probe", choices=("converged", "paper"), default="converged",
        help="'converged': class-weighted logistic regression (L-BFGS to convergence); "
             "'paper': the cone-effect paper's linear probe (SGD with momentum 0.9, learning "
             "rate 3e-4, early stopping) (default: %(default)s)",
    )
    add_lams(p)
    p.add_argument("--seeds", type=positive_int, default=5, metavar="N",
                   help="number of random train/test splits (default: %(default)s)")
    p.add_argument("--test-size", type=test_fraction, default=0.2, metavar="FRACTION",
                   help="fraction of rows held out in each split (default: %(default)s)")
    p.add_argument("--direction", choices=("raw", "unit"), default="raw",
                   help="shift along the gap itself or its unit vector (default: %(default)s)")
    add_sweep_statistics(p)
    p.add_argument("--out", default="skgap-sweep", metavar="DIR",
                   help="folder for the output files, created if needed (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true",
                   help="do not draw cones.png, sweep.png and tasks.png (report.html keeps "
                        "its tables)")
    p.add_argument("--n-jobs", type=int, default=None, metavar="N",
                   help="fit in N parallel processes (-1: all cores; default: one)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the fits on an existing dask cluster, e.g. tcp://head:8786 "
                        "(needs skgap[dask]): the embeddings and labels are sent to it once, "
                        "the fits spread over all its worker threads")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the splits (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_progress(p)
    p.set_defaults(func=run)


def run(args):
    if args.scheduler is not None and args.n_jobs is not None:
        raise DataError("--scheduler runs the fits on every worker thread of the cluster; "
                        "leave out --n-jobs.")
    data_name = " + ".join(map(str, args.data))
    X, y, labels_name, texts = _load(args, data_name)
    if "captioning" in args.tasks and texts is None:
        raise DataError(f"{data_name}: --tasks captioning needs the texts: pass --texts NAME.")
    dims = (X.shape[1] // 2, X.shape[1] // 2)  # the loader refuses unequal widths
    if y is None:
        task = None
    else:
        try:
            task = check_task(None if args.task == "auto" else args.task, y)
        except ValueError as exc:
            raise DataError(f"{labels_name}: {exc}") from None
    out = prepare_out_dir(args.out)

    report = ConeStats(random_state=args.seed).fit(X).report()
    with warnings.catch_warnings(record=True) as caught, _fits_on(args.scheduler):
        warnings.simplefilter("always")
        try:
            # gap_sweep runs each fit with one BLAS thread (skgap._core._parallel.run_fits).
            table = gap_sweep(
                X, y, lams=args.lams, n_seeds=args.seeds, test_size=args.test_size, task=task,
                tasks=args.tasks, probe="paper" if args.probe == "paper" else None, texts=texts,
                direction=args.direction, random_state=args.seed,
                progress=want_progress(args.progress),
                n_jobs=-1 if args.scheduler else args.n_jobs, as_frame=False,
            )
        except ValueError as exc:
            raise DataError(f"{data_name}: {cli_words(str(exc))}") from None
    notes = collect_warnings(caught)
    summary = summarize_sweep(table, select=args.select, confidence=args.confidence,
                              as_frame=False)
    groups = summary_groups(summary)
    reasons = {**constant_metrics(summary),
               **_panel_reasons(notes["reasons"], [(t, m) for t, m, _ in groups])}
    leakage = notes["leakage"]

    files = [write_csv(out / "sweep.csv", table)]
    result = {
        "data": [str(p) for p in args.data],
        "labels": args.labels,
        "task": task,
        "tasks": list(args.tasks),
        "probe": args.probe,
        "n_samples": X.shape[0],
        "n_seeds": args.seeds,
        "test_size": args.test_size,
        "direction": args.direction,
        "select": args.select,
        "confidence": args.confidence,
        "label_leakage": leakage,
        "degenerate": [{"task": t, "metric": m, "reason": r} for (t, m), r in reasons.items()],
        "warnings": notes["messages"],
        "summary": [{k: summary[k][i] for k in summary} for i in range(summary["lam"].size)],
        "selected": [selection(summary, t, m) for t, m, _ in groups],
        "cone_statistics": report,
    }
    if "captioning" in args.tasks:
        from ..evaluate._captioning import caption_metric_settings

        result["captioning_metrics"] = caption_metric_settings()
    files.append(write_json(out / "summary.json", result))
    note = None
    first = next(((t, m) for t, m, _ in groups if (t, m) not in reasons), groups[0][:2])
    shown = _shown_lambda(summary, first[0], first[1])
    name = Path(args.data[0]).name
    if not args.no_plots:
        written, note = save_figures(out, [
            ("cones.png", lambda: cones_figure({name: (X, shown)}, args.seed, synthetic=False)),
            ("sweep.png", lambda: sweep_figure({name: table}, first[0], first[1],
                                               select=args.select, confidence=args.confidence)),
            ("tasks.png", lambda: plot_sweep_summary(summary, degenerate=reasons,
                                                     confidence=args.confidence)),
        ])
        files += written
    html = write_sweep_html(
        out / "report.html", args=args, X=X, dims=dims, y=y, labels_name=labels_name,
        report=report, summary=summary, reasons=reasons, warnings=notes["messages"],
        figures=not args.no_plots,
    )
    if html is not None:
        files.append(html)

    for message in notes["messages"]:
        print_warning(message, "sweep")
    if args.json:
        print(dumps(result))
        return 0
    labelled = f"{task} labels" if task else "no labels"
    print(f"{data_name}: {X.shape[0]} pairs of {dims[0]}-d embeddings; {labelled}\n")
    print(format_report(report))
    probe = "the paper's SGD probe" if args.probe == "paper" else "a converged probe"
    print(f"\nEach task over {args.seeds} splits (test fraction {args.test_size:g}, scores on "
          f"the held-out rows), {probe}; the change from lambda 0 is paired (same splits).")
    printed = _without_findings(summary, reasons)
    # Captioning's floors and ceilings do not depend on lambda: in the files, not printed.
    shown = [(t, m) for t, m, _ in groups
             if not (t == "captioning" and m.endswith(("_random", "_frequent", "_oracle")))]
    for t, m in shown:
        print()
        print(format_sweep(printed, t, m, confidence=args.confidence))
        if (t, m) in reasons:
            print(f"not a finding: {reasons[(t, m)]}")
    print()
    for t, m in shown:
        if (t, m) in reasons:
            print(f"{metric_label(t, m)}: not a finding ({reasons[(t, m)]}).")
        else:
            print(format_best(summary, t, m))
    print()
    if note:
        print(note)
    print("wrote:\n" + "\n".join(f"  {f}" for f in files))
    return 0


@contextmanager
def _fits_on(scheduler):
    """joblib's dask backend on the cluster at ``scheduler`` for the block (None: as is)."""
    if scheduler is None:
        yield
        return
    try:
        from distributed import Client
        from joblib import parallel_config
    except ImportError as exc:
        raise DataError(
            "skgap sweep --scheduler needs dask's distributed scheduler: pip install "
            f"'skgap[dask]'; missing: {exc.name or exc}."
        ) from exc
    try:
        client = Client(scheduler, timeout=30, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DataError(f"--scheduler {scheduler}: cannot connect ({exc}).") from exc
    try:
        with parallel_config(backend="dask", client=client):
            yield
    finally:
        client.close()


def _load(args, data_name):
    """``(X, y or None, name of the labels, texts or None)``: ``--labels NAME`` is an
    array of the embeddings file (or a metadata column of a clip-retrieval folder) or
    a label file; ``--texts NAME`` likewise for the captions."""
    extra = {"texts": args.texts} if args.texts else {}

    def load(**kw):
        X, y, *texts = load_embeddings(args.data, **kw, **extra)
        return X, y, (texts[0] if texts else None)

    if args.labels is not None:
        keys = data_keys(args.data)
        if args.labels in keys:
            X, y, texts = load(labels=args.labels)
            return X, y, f"{data_name} [{args.labels!r}]", texts
        X, _, texts = load()
        try:
            return X, load_labels(args.labels, X.shape[0]), args.labels, texts
        except DataError as exc:
            if ":" in args.labels or Path(args.labels).suffix or Path(args.labels).exists():
                raise
            raise DataError(
                f"--labels {args.labels}: no array or column of that name in {data_name}"
                + (f" (it holds: {', '.join(map(repr, keys))})" if keys else "")
                + f", and no label file of that name ({exc})."
            ) from None
    X, y, texts = load()
    if y is not None:
        return X, y, f"{data_name} ['labels']", texts
    needing = [t for t in args.tasks if t not in LABEL_FREE_TASKS]
    if needing:
        raise DataError(missing_labels_message(args.data, needing))
    return X, None, None, texts


def _without_findings(summary, reasons):
    """The summary as printed: a degenerate or trivial metric shows no verdict and no choice."""
    out = dict(summary)
    hide = np.zeros(summary["lam"].size, dtype=bool)
    for t, m in reasons:
        hide |= (summary["task"] == t) & (summary["metric"] == m)
    out["verdict"] = np.where(hide, "-", summary["verdict"]).astype(object)
    out["selected"] = summary["selected"] & ~hide
    return out


def _shown_lambda(summary, task, metric):
    """The lambda of the 'after' panel: the selected one when it helps and closes the gap,
    else the largest swept one (1 when none is positive)."""
    sel = selection(summary, task, metric)
    if sel is not None and sel["helps"] and sel["lambda"] > 0:
        return sel["lambda"]
    top = float(np.max(summary["lam"]))
    return top if top > 0 else 1.0
