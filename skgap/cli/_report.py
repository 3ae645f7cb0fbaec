"""``skgap report``: cone statistics of the user's embeddings."""

from ..io import iter_embeddings
from ..io._archive import is_clip_retrieval_folder
from ..measure._cone_stats import ConeStats
from ._format import dumps, format_report
from ._io import DATA_FORMS, DataError, add_data_options, data_options, load_embeddings
from ._options import HelpFormatter, add_progress, positive_int, want_progress


def register(sub):
    p = sub.add_parser(
        "report",
        help="cone-effect and modality-gap statistics of your embeddings",
        description=(
            "Print the cone-effect and modality-gap statistics of paired image/text "
            f"embeddings. DATA is {DATA_FORMS}; row i of the images and of the texts "
            "must be the same pair. Rows are L2-normalised first."
        ),
        epilog=("examples:\n  skgap report embeddings.npz --json\n"
                "  skgap report embeddings.npz --html cones.html"),
        formatter_class=HelpFormatter,
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="embeddings file(s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", default=None, metavar="OUT.html",
                   help="also write the statistics as one self-contained HTML page "
                        "(needs skgap[report])")
    p.add_argument(
        "--max-uniformity-samples",
        type=positive_int,
        default=5000,
        metavar="N",
        help="estimate uniformity on at most N rows per modality (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add_data_options(p)
    add_progress(p)
    p.set_defaults(func=run)


def _stream(args, max_samples):
    """ConeStats of a clip-retrieval folder, shard by shard through partial_fit."""
    from ._io import _call

    n, dims, chunks = _call(iter_embeddings, args.data[0], **data_options(args))
    if dims[0] != dims[1]:
        raise DataError(
            f"{args.data[0]}: image width {dims[0]} differs from text width {dims[1]}; "
            "gap statistics need one shared space."
        )
    stats = ConeStats(max_uniformity_samples=max_samples, random_state=args.seed)
    with _progress_bar(n, want_progress(args.progress)) as bar:
        for X in chunks:
            stats.partial_fit(X)
            bar.update(X.shape[0])
    return stats, n, dims[0]


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _progress_bar(total, show):
    if not show:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm comes with the torch and dev extras
        return _NoBar()
    return tqdm(total=total, desc="reading shards", unit="pair")


def run(args):
    max_samples = max(args.max_uniformity_samples, 2)
    if len(args.data) == 1 and is_clip_retrieval_folder(args.data[0]):
        stats, n, d = _stream(args, max_samples)
        dtype = "read shard by shard"
    else:
        X, _ = load_embeddings(args.data, **data_options(args))
        n, d, dtype = X.shape[0], X.shape[1] // 2, X.dtype
        stats = ConeStats(max_uniformity_samples=max_samples, random_state=args.seed).fit(X)
    report = stats.report()
    html = None
    if args.html is not None:
        from ._html import write_report_html

        html = write_report_html(args.html, paths=args.data, n=n, d=d,
                                 dtype=dtype, report=report,
                                 seed=args.seed)
    if args.json:
        data = [str(p) for p in args.data]
        print(dumps({"data": data, "dim": d, "report": report}))
        return 0
    print(f"{' + '.join(map(str, args.data))}: {n} pairs of {d}-d embeddings\n")
    print(format_report(report))
    if html is not None:
        print(f"\nwrote: {html}")
    return 0
