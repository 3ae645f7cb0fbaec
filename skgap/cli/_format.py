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
    return format_table(["statistic", *names, ""], rows, title, align="l" + "r" * len(names) + "l")


def format_sweep(summary, title=None, metric_label="AUC"):
    """The per-lambda summary of a sweep, best row marked."""
    rows = []
    extra = [k for k in ("gap_norm_mean", "R_image_mean", "R_text_mean") if k in summary]
    paired = "delta_mean" in summary and not np.isnan(summary["delta_mean"]).all()
    for i, lam in enumerate(summary["lam"]):
        mark = "<- best" if lam == summary["best_lam"] else ""
        row = [f"{lam:.2f}", f"{summary['mean'][i]:.4f} +/- {summary['std'][i]:.4f}"]
        if paired:
            row.append(f"{summary['delta_mean'][i]:+.4f} +/- {summary['delta_std'][i]:.4f}")
        rows.append(row + [_fmt(summary[k][i], 3) for k in extra] + [mark])
    headers = ["lambda", f"{metric_label} mean +/- std"]
    if paired:
        headers.append("vs lambda 0, paired")
    headers += [{"gap_norm_mean": "gap", "R_image_mean": "R_image", "R_text_mean": "R_text"}[k]
                for k in extra]
    return format_table(headers + [""], rows, title, align="l" + "r" * (len(headers) - 1) + "l")


def format_best(summary, metric_label="AUC"):
    base = summary["baseline_mean"]
    text = (
        f"best lambda: {summary['best_lam']:g} "
        f"({metric_label} {summary['best_mean']:.4f} +/- {summary['best_std']:.4f})"
    )
    if not math.isnan(base) and summary["best_lam"] != 0:
        best = np.flatnonzero(summary["lam"] == summary["best_lam"])[0]
        delta = summary.get("delta_mean", np.full(best + 1, np.nan))[best]
        text += f"\n  lambda 0 gives {base:.4f}"
        if not math.isnan(delta):
            text += (f"; on the same splits the change is {delta:+.4f} "
                     f"+/- {summary['delta_std'][best]:.4f}")
    return text


def to_jsonable(obj):
    """Arrays and numpy scalars to lists and Python numbers; NaN to None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    return obj


def dumps(obj):
    return json.dumps(to_jsonable(obj), indent=2)
