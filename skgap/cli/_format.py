"""Plain-text tables for the command line."""

import json
import math

import numpy as np

#: What each ConeStats key means, for the printed report.
_DESCRIPTIONS = {
    "R_image": "cone size of the images (1 = one direction)",
    "R_text": "cone size of the texts",
    "mean_within_cosine_image": "mean cosine between two images",
    "mean_within_cosine_text": "mean cosine between two texts",
    "uniformity_image": "spread of the images (lower: more uniform)",
    "uniformity_text": "spread of the texts",
    "gap_norm": "modality gap ||mu_image - mu_text|| (L2M)",
    "pairwise_gap": "mean distance of matched pairs (L2I)",
    "alignment": "mean squared distance of matched pairs",
    "mean_pair_cosine": "mean cosine of matched pairs",
    "relative_gap": "relative modality gap (Schrodi et al.)",
    "gap_principal_cosine": "|cos(gap, first principal axis)|",
    "n_samples": "pairs",
}


def _fmt(value, digits=4):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_table(headers, rows, title=None, align=None):
    """A text table with a rule under the header.

    ``align`` holds one letter per column, ``l`` or ``r``; by default the
    first column is left-aligned and the others right-aligned.
    """
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        return "  ".join(parts).rstrip()

    out = []
    if title:
        out += [title, "=" * len(title)]
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def format_report(reports, title="Cone statistics"):
    """One column of values per dataset, with what each row means.

    Parameters
    ----------
    reports : dict
        A ConeStats report, or ``{name: report}`` for several datasets.
    """
    if reports and not isinstance(next(iter(reports.values())), dict):
        reports = {"value": reports}
    names = list(reports)
    keys = list(dict.fromkeys(k for r in reports.values() for k in r))
    rows = [
        [k] + [_fmt(reports[n].get(k)) for n in names] + [_DESCRIPTIONS.get(k, "")]
        for k in keys
    ]
    return format_table(["statistic", *names, "meaning"], rows, title,
                        align="l" + "r" * len(names) + "l")


def summary_groups(summary):
    """``[(task, metric, row indices), ...]`` of a summarize_sweep dict, in table order."""
    pairs = list(zip(summary["task"].tolist(), summary["metric"].tolist()))
    return [(t, m, np.array([i for i, p in enumerate(pairs) if p == (t, m)]))
            for t, m in dict.fromkeys(pairs)]


def _label(task, metric):
    from ..plotting import metric_label

    return metric_label(task, metric)


def format_sweep(summary, task, metric, title=None, confidence=0.95):
    """The per-lambda rows of one task and metric: mean, paired change, interval, verdict."""
    rows = []
    rows_of = dict(((t, m), idx) for t, m, idx in summary_groups(summary))[(task, metric)]
    extra = [k for k in ("gap_norm", "R_image", "R_text") if k in summary]
    for i in rows_of:
        mark = "<- selected" if summary["selected"][i] else ""
        ci = (f"[{summary['ci_low'][i]:+.4f}, {summary['ci_high'][i]:+.4f}]"
              if not math.isnan(summary["ci_low"][i])
              else "no interval with one split" if summary["n"][i] < 2 else "-")
        diff = summary["diff"][i]
        rows.append(
            [f"{summary['lam'][i]:.2f}", f"{summary['mean'][i]:.4f} +/- {summary['std'][i]:.4f}",
             "-" if math.isnan(diff) else f"{diff:+.4f}", ci, summary["verdict"][i]]
            + [_fmt(summary[k][i], 3) for k in extra] + [mark]
        )
    headers = ["lambda", "mean +/- std", "change vs lambda 0",
               f"{100 * confidence:g}% CI of change", "verdict",
               *extra, "choice"]
    return format_table(headers, rows, title or _label(task, metric),
                        align="l" + "r" * (len(headers) - 3) + "ll")


def selection(summary, task, metric):
    """The selected row of one task and metric, as a dict (None when nothing is selected)."""
    rows_of = dict(((t, m), idx) for t, m, idx in summary_groups(summary))[(task, metric)]
    chosen = [i for i in rows_of if summary["selected"][i]]
    if not chosen:
        return None
    i = chosen[0]
    return {"task": task, "metric": metric, "lambda": float(summary["lam"][i]),
            "verdict": str(summary["verdict"][i]), "mean": float(summary["mean"][i]),
            "change": float(summary["diff"][i]), "ci_low": float(summary["ci_low"][i]),
            "ci_high": float(summary["ci_high"][i]),
            "helps": bool(summary["verdict"][i] == "helps")}


def format_best(summary, task, metric):
    """One line per task and metric: a best lambda only when it helps; where lambda hurts."""
    label = _label(task, metric)
    sel = selection(summary, task, metric)
    if sel is None:
        return f"{label}: no score to compare (every value is NaN)."
    if sel["helps"]:
        text = (f"{label}: best lambda: {sel['lambda']:g}, change from lambda 0 "
                f"{sel['change']:+.4f} (CI [{sel['ci_low']:+.4f}, {sel['ci_high']:+.4f}])")
    else:
        text = f"{label}: no lambda beats lambda 0 beyond noise"
        text += _width_note(summary, task, metric)
        if sel["lambda"] != 0:
            text += f" (the selection rule, within noise of the top, picks {sel['lambda']:g})"
    rows = dict(((t, m), idx) for t, m, idx in summary_groups(summary))[(task, metric)]
    hurts = [i for i in rows if summary["verdict"][i] == "hurts"]
    if hurts:
        worst = max(hurts, key=lambda i: abs(summary["diff"][i]))
        where = ", ".join(f"{summary['lam'][i]:g}" for i in hurts)
        text += (f"; hurts at lambda {where} "
                 f"(at {summary['lam'][worst]:g}: {summary['diff'][worst]:+.4f}, "
                 f"CI [{summary['ci_low'][worst]:+.4f}, {summary['ci_high'][worst]:+.4f}])")
    return text + "."


def _width_note(summary, task, metric):
    """What the interval can say: its half-width at the most promising lambda, or that
    one split gives none."""
    rows = dict(((t, m), idx) for t, m, idx in summary_groups(summary))[(task, metric)]
    rows = [i for i in rows if summary["lam"][i] != 0 and not math.isnan(summary["diff"][i])]
    if not rows:
        return ""
    if all(summary["n"][i] < 2 for i in rows):
        return " (no interval with one split: use --seeds 5 or more)"
    top = max((i for i in rows if not math.isnan(summary["ci_low"][i])),
              key=lambda i: abs(summary["diff"][i]), default=None)
    if top is None:
        return ""
    half = (summary["ci_high"][top] - summary["ci_low"][top]) / 2
    return (f" (no evidence \N{EM DASH} the interval spans \N{PLUS-MINUS SIGN}{half:.4f} "
            f"at lambda {summary['lam'][top]:g}; more splits would tell)")


def to_jsonable(obj):
    """Arrays and numpy scalars to lists and Python numbers; NaN to None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    return obj


def dumps(obj):
    return json.dumps(to_jsonable(obj), indent=2)
