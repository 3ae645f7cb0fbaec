"""``skgap demo``: the whole story on built-in synthetic data."""

import numpy as np

from ..datasets import PRESETS, make_paired_embeddings
from ..stats import ConeStats
from ._format import format_lambda_scores, format_report
from ._lambda import choose_lambda


def register(sub):
    p = sub.add_parser(
        "demo",
        help="measure the gap and choose lambda on built-in synthetic data",
        description=(
            "Generate synthetic paired embeddings calibrated to a published cone "
            "geometry, print their cone statistics, and choose the gap-shift lambda "
            "by cross-validated linear probes."
        ),
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="mimic-clip",
                   help="cone geometry of the synthetic data (default: %(default)s)")
    p.add_argument("--n-samples", type=int, default=2000, help="number of pairs (default: %(default)s)")
    p.add_argument("--n-features", type=int, default=64, help="embedding width (default: %(default)s)")
    p.add_argument("--lams", type=float, nargs="+", default=list(np.linspace(0, 1, 6)),
                   help="lambda values to compare (default: 0, 0.2, ..., 1)")
    p.add_argument("--cv", type=int, default=5, help="cross-validation folds (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=run)


def run(args):
    X, y = make_paired_embeddings(
        args.n_samples, args.n_features, preset=args.preset, random_state=args.seed
    )
    print(f"Synthetic data: preset {args.preset!r}, {X.shape[0]} pairs, dim {args.n_features}")
    print(format_report(ConeStats(random_state=args.seed).fit(X).report()))
    print()
    print(format_lambda_scores(choose_lambda(X, y, args.lams, cv=args.cv, random_state=args.seed)))
    return 0
