"""``skgap report``: cone statistics of the user's embeddings."""

import json

import numpy as np

from ..stats import ConeStats
from ._format import format_lambda_scores, format_report
from ._io import load_embeddings, load_labels
from ._lambda import choose_lambda


def register(sub):
    p = sub.add_parser(
        "report",
        help="cone statistics of your embeddings (and lambda, given labels)",
        description=(
            "Print the cone-effect and modality-gap statistics of paired embeddings. "
            "DATA is an .npz with arrays 'image' and 'text' (optionally 'labels'), a "
            ".npy of shape (2, n, d), or two .npy files (images, texts). With labels, "
            "also choose the gap-shift lambda by cross-validated linear probes."
        ),
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="embeddings file(s)")
    p.add_argument("--labels", default=None,
                   help="labels: .npy, .npz (array 'labels') or FILE.csv:COLUMN")
    p.add_argument("--lams", type=float, nargs="+", default=list(np.linspace(0, 1, 6)),
                   help="lambda values to compare (default: 0, 0.2, ..., 1)")
    p.add_argument("--cv", type=int, default=5, help="cross-validation folds (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args):
    X, found = load_embeddings(args.data)
    y = load_labels(args.labels, X.shape[0], default=found)
    report = ConeStats(random_state=args.seed).fit(X).report()
    scores = choose_lambda(X, y, args.lams, cv=args.cv, random_state=args.seed) if y is not None else None
    if args.json:
        out = {"report": report}
        if scores is not None:
            out["lambda"] = {
                "lam": scores["lam"].tolist(),
                "mean_auc": scores["mean_auc"].tolist(),
                "std_auc": scores["std_auc"].tolist(),
                "best_lam": scores["best_lam"],
                "scoring": scores["scoring"],
            }
        print(json.dumps(out, indent=2))
        return 0
    print(format_report(report))
    if scores is not None:
        print()
        print(format_lambda_scores(scores))
    return 0
