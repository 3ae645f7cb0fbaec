"""``skgap report``: cone statistics of the user's embeddings."""

from ..stats import ConeStats
from ._format import dumps, format_report
from ._io import DATA_FORMS, load_embeddings
from ._options import positive_int


def register(sub):
    p = sub.add_parser(
        "report",
        help="cone-effect and modality-gap statistics of your embeddings",
        description=(
            "Print the cone-effect and modality-gap statistics of paired image/text "
            f"embeddings. DATA is {DATA_FORMS}; row i of the images and of the texts "
            "must be the same pair. Rows are L2-normalised first."
        ),
        epilog="example: skgap report embeddings.npz --json",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="embeddings file(s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-uniformity-samples",
        type=positive_int,
        default=5000,
        metavar="N",
        help="estimate uniformity on at most N rows per modality (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=run)


def run(args):
    X, _ = load_embeddings(args.data)
    max_samples = max(args.max_uniformity_samples, 2)
    report = ConeStats(max_uniformity_samples=max_samples, random_state=args.seed).fit(X).report()
    if args.json:
        data = [str(p) for p in args.data]
        print(dumps({"data": data, "dim": X.shape[1] // 2, "report": report}))
        return 0
    d = X.shape[1] // 2
    print(f"{' + '.join(map(str, args.data))}: {X.shape[0]} pairs of {d}-d embeddings\n")
    print(format_report(report))
    return 0
