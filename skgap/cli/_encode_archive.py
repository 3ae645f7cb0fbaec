"""``skgap encode --workers N`` / ``--scheduler ADDRESS``: a whole table into an archive folder.

The command's other options keep their meaning; ``--out`` then names a folder,
written in clip-retrieval's layout by :func:`skgap.encode.encode_archive`.
"""

import sys
from pathlib import Path

from ._io import DataError


def add_options(p):
    g = p.add_argument_group(
        "on a dask cluster (needs skgap[dask,arrow])",
        "--out then names a folder, written shard by shard in clip-retrieval's layout "
        "(img_emb/, text_emb/, metadata/, manifest.json); a rerun resumes it.",
    )
    where = g.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="start a local cluster of N worker processes (one per GPU)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on an existing dask cluster, e.g. tcp://head:8786")
    g.add_argument("--shard-size", type=int, default=10_000, metavar="ROWS",
                   help="rows per shard, the unit of work and of resume (default: %(default)s)")
    g.add_argument("--float16", action="store_true",
                   help="store the embeddings as float16 (half the disk)")
    g.add_argument("--wait-for-lock", action="store_true",
                   help="if another client is writing the folder, wait for it instead of failing")


def wants_archive(args):
    return args.workers is not None or args.scheduler is not None


def _table(args):
    """All columns of the input CSV, image paths resolved as for the .npz output."""
    from ._encode import _read_table, read_pairs

    paths, texts, _, _ = read_pairs(args.images, args.texts, args.image_column)
    images = Path(args.images).expanduser()
    if images.is_dir():
        table_path, _, text_column = args.texts.rpartition(":")
    else:
        table_path, text_column = images, args.texts
    rows, columns = _read_table(Path(table_path).expanduser())
    table = {c: [row[c] if row[c] is not None else "" for row in rows] for c in columns}
    table[args.image_column] = paths
    table[text_column] = texts
    return table, text_column


def run_archive(args, encoder, weights):
    if args.pool != "none":
        raise DataError(
            "--pool mean writes one row per study into an .npz; an archive keeps one row per "
            "image (the --group-by column is in its metadata): pool after loading it."
        )
    if args.workers is not None and args.workers < 1:
        raise DataError(f"--workers must be at least 1, got {args.workers}.")
    if args.shard_size < 1:
        raise DataError(f"--shard-size must be at least 1, got {args.shard_size}.")
    out = Path(args.out).expanduser()
    if out.suffix == ".npz" or out.is_file():
        raise DataError(f"--out {out}: with --workers/--scheduler, name a folder (the archive).")
    if not out.parent.is_dir():
        raise DataError(f"--out {out}: no such folder {out.parent}.")
    table, text_column = _table(args)
    try:
        from distributed import Client

        from ..encode import ArchiveLockedError, BadItemError, MissingWeightsError, encode_archive
    except ImportError as exc:
        raise DataError(
            "skgap encode --workers/--scheduler needs dask's distributed scheduler: pip install "
            f"'skgap[dask,arrow]'; missing: {exc.name or exc}."
        ) from exc
    client = None
    try:
        if args.scheduler is not None:
            try:
                client = Client(args.scheduler, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise DataError(f"--scheduler {args.scheduler}: cannot connect ({exc}).") from exc
        summary = encode_archive(
            table, encoder, out, client=client, n_workers=args.workers,
            shard_size=args.shard_size, dtype="float16" if args.float16 else "float32",
            image_column=args.image_column, text_column=text_column,
            wait_for_lock=args.wait_for_lock, progress=not args.no_progress,
        )
    except (MissingWeightsError, BadItemError, ArchiveLockedError, ValueError, ImportError,
            OSError) as exc:
        raise DataError(str(exc)) from exc
    finally:
        if client is not None:
            client.close()
    for reason in summary.skip_reasons[:10]:
        print(f"skgap encode: skipped {reason}", file=sys.stderr)
    if len(summary.skipped) > 10:
        print(f"skgap encode: ... and {len(summary.skipped) - 10} more (see "
              f"{Path(summary.out_dir) / 'manifest.json'}).", file=sys.stderr)
    print(
        f"wrote {summary.out_dir}: {summary.n_written} pairs of {summary.modality_dims[0]}-dim "
        f"image and text embeddings in {summary.n_shards} shards ({weights}"
        f"{', ' + str(len(summary.skipped)) + ' skipped' if len(summary.skipped) else ''}"
        f"{', ' + str(summary.n_resumed) + ' shards resumed' if summary.n_resumed else ''})."
    )
    return 0
