"""The HTML report of ``skgap sweep`` and ``skgap report``: the page's content from a run."""

import math
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._format import _DESCRIPTIONS, _fmt, format_best, summary_groups

#: Summary columns that the verdict table shows in its own way (or not at all).
_SHOWN = ("task", "metric", "lam", "n", "mean", "std", "diff", "se", "ci_low", "ci_high",
          "verdict", "selected", "se_to_best")


def command_line(prog="skgap"):
    """The command as typed: ``skgap`` and the arguments, quoted for a POSIX shell."""
    return shlex.join([prog, *sys.argv[1:]])


def cone_rows(report):
    """(statistic, value, meaning) rows of a ConeStats report."""
    return [(k, _fmt(v), _DESCRIPTIONS.get(k, "")) for k, v in report.items()]


def data_rows(paths, X, dims, labels_name=None, y=None):
    """The data summary: file, pairs, widths, dtype, labels and class balance."""
    rows = [("file", " + ".join(map(str, paths))), ("pairs", str(X.shape[0])),
            ("widths (image, text)", f"{dims[0]}, {dims[1]}"), ("dtype", str(X.dtype))]
    if y is None:
        rows.append(("labels", "none (tasks that read no labels only)"))
        return rows
    rows.append(("labels", str(labels_name)))
    if y.ndim == 1:
        classes, counts = np.unique(y, return_counts=True)
        shown = ", ".join(f"{c}: {n}" for c, n in zip(classes[:20].tolist(), counts[:20]))
        more = f", ... ({classes.size} classes)" if classes.size > 20 else ""
        rows.append(("class balance", shown + more))
    else:
        rows.append(("class balance", "positives per label: "
                     + ", ".join(str(int(v)) for v in np.nansum(y, axis=0)[:20])))
    return rows


def _verdict_class(verdict):
    return {"helps": "verdict-helps", "hurts": "verdict-hurts"}.get(verdict, "verdict-none")


def task_sections(summary, reasons, figure_of, confidence):
    """One dict per task family for the template: title, status lines, figure, verdict table.

    Parameters
    ----------
    summary : dict of ndarray
        summarize_sweep columns; any column beyond the usual ones (an adjusted
        p-value, say) gets a column of its own in the table.
    reasons : dict
        ``{(task, metric): reason}`` of degenerate or trivial metrics.
    figure_of : callable or None
        ``figure_of(task)`` returns the task's figure as a data URI.
    confidence : float
    """
    from ..plotting import _TASK_LABELS, metric_label

    extra = [k for k in summary if k not in _SHOWN and k not in ("gap_norm", "R_image", "R_text")]
    columns = ["metric", "λ", "mean ± std", "change from λ = 0",
               f"{100 * confidence:g}% interval", "verdict", *extra, "selected"]
    groups = summary_groups(summary)
    out = []
    for task in dict.fromkeys(t for t, _, _ in groups):
        rows, status, task_reasons = [], [], []
        for t, m, idx in groups:
            if t != task:
                continue
            reason = reasons.get((t, m))
            if reason:
                task_reasons.append(reason)
                status.append(f"{metric_label(t, m)}: not a finding ({reason}).")
            else:
                status.append(format_best(summary, t, m))
            for i in idx:
                verdict = str(summary["verdict"][i])
                diff, low, high = (float(summary[k][i]) for k in ("diff", "ci_low", "ci_high"))
                cells = [
                    (metric_label(t, m), ""),
                    (f"{summary['lam'][i]:g}", "num"),
                    (f"{summary['mean'][i]:.4f} ± {summary['std'][i]:.4f}", "num"),
                    ("-" if math.isnan(diff) else f"{diff:+.4f}", "num"),
                    ("-" if math.isnan(low) else f"[{low:+.4f}, {high:+.4f}]", "num"),
                    ("not a finding" if reason else verdict,
                     "verdict-none" if reason else _verdict_class(verdict)),
                    *[(_cell(summary[k][i]), "num") for k in extra],
                    ("yes" if summary["selected"][i] and not reason else "", ""),
                ]
                rows.append([{"text": text, "cls": cls} for text, cls in cells])
        reason = "; ".join(dict.fromkeys(task_reasons)) or None
        n_metrics = sum(1 for t, _, _ in groups if t == task)
        if len(task_reasons) == n_metrics and len(set(task_reasons)) == 1:
            status = [f"Every metric: not a finding ({task_reasons[0]})."]
        out.append({
            "name": task, "title": _TASK_LABELS.get(task, task), "reason": reason,
            "status": status, "figure": figure_of(task) if figure_of else None,
            "columns": columns, "rows": rows,
        })
    return out


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def now():
    """The time of the run, for the foot of the page (UTC, to the minute)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _subset(summary, task):
    rows = np.asarray(summary["task"]) == task
    return {k: np.asarray(v)[rows] for k, v in summary.items()}


def _jinja_missing():
    try:
        import jinja2  # noqa: F401
    except ImportError:
        return True
    return False


def write_sweep_html(path, *, args, X, dims, y, labels_name, report, summary, reasons,
                     warnings, figures=True):
    """Write ``report.html`` of a sweep; None (with a note on stderr) without jinja2.

    Without matplotlib (or with ``figures=False``) the page has the tables alone.
    """
    if _jinja_missing():
        print("skgap sweep: note: report.html needs jinja2: pip install 'skgap[report]'.",
              file=sys.stderr)
        return None
    from ..plotting import _TASK_LABELS, plot_sweep_summary
    from ..report import figure_png, write_report

    confidence = args.confidence
    if figures:
        try:
            import matplotlib.pyplot  # noqa: F401
        except ImportError:
            figures = False

    def figure_of(task):
        sub = _subset(summary, task)
        n = len(dict.fromkeys(sub["metric"].tolist()))
        title = (f"{_TASK_LABELS.get(task, task)}: score against λ (held-out: test rows of "
                 f"{int(np.max(sub['n']))} random splits)")
        return figure_png(plot_sweep_summary(sub, degenerate=reasons, confidence=confidence,
                                             ncols=min(3, n), title=title))

    overview = []
    if figures:
        from ._figures import cones_figure
        from ._sweep import _shown_lambda

        groups = [(t, m) for t, m, _ in summary_groups(summary)]
        first = next((g for g in groups if g not in reasons), groups[0])
        shown = _shown_lambda(summary, *first)
        name = Path(args.data[0]).name
        overview.append({
            "title": "Cone effect and modality gap",
            "uri": figure_png(cones_figure({name: (X, shown)}, args.seed, synthetic=False),
                              dpi=80),
            "caption": ("PCA of the unit embeddings before and after the gap shift. In-sample: "
                        "the shift is fitted on the rows drawn, so the gap after a full shift is "
                        "near 0 here; the held-out gap of each lambda is the gap_norm column of "
                        "the tables below and of sweep.csv."),
        })
    settings = [
        ("tasks", ", ".join(args.tasks)), ("lambdas", ", ".join(f"{v:g}" for v in args.lams)),
        ("splits", str(args.seeds)), ("test fraction", f"{args.test_size:g}"),
        ("probe", args.probe), ("direction", args.direction), ("selection rule", args.select),
        ("confidence", f"{confidence:g}"), ("seed", str(args.seed)),
        ("scores", "held-out: test rows of each random split; the map and the probes are "
                   "fitted on its training rows"),
    ]
    return write_report(
        path, title=f"skgap sweep: {' + '.join(Path(p).name for p in args.data)}",
        command=command_line(), data=data_rows(args.data, X, dims, labels_name, y),
        cone=cone_rows(report), overview=overview,
        tasks=task_sections(summary, reasons, figure_of if figures else None, confidence),
        warnings=warnings, settings=settings, generated=now(),
    )


def write_report_html(path, *, paths, n, d, dtype, report, seed):
    """Write the cone-statistics page of ``skgap report``; raises DataError without jinja2."""
    from ._io import DataError

    if _jinja_missing():
        raise DataError("--html needs jinja2: pip install 'skgap[report]'.")
    from ..report import write_report

    data = [("file", " + ".join(map(str, paths))), ("pairs", str(n)),
            ("widths (image, text)", f"{d}, {d}"), ("dtype", str(dtype))]
    return write_report(
        path, title=f"skgap report: {' + '.join(Path(p).name for p in paths)}",
        command=command_line(), data=data, cone=cone_rows(report),
        settings=[("seed", str(seed))], generated=now(),
    )
