"""Plain-text tables for the command line."""


def format_report(report, title="Cone statistics"):
    width = max(len(k) for k in report)
    lines = [title, "-" * len(title)]
    for key, value in report.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)


def format_lambda_scores(scores):
    lines = [
        f"Cross-validated {scores['scoring']} of an early-fusion linear probe",
        f"{'lambda':>6}  {'mean':>7}  {'std':>7}",
    ]
    for lam, m, s in zip(scores["lam"], scores["mean_auc"], scores["std_auc"]):
        mark = "  <- best" if lam == scores["best_lam"] else ""
        lines.append(f"{lam:>6.2f}  {m:>7.4f}  {s:>7.4f}{mark}")
    lines.append(f"best lambda: {scores['best_lam']:.2f}")
    return "\n".join(lines)
