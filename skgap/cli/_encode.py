"""``skgap encode``: embed images and texts with an open_clip model into an .npz.

The output holds arrays ``image`` and ``text`` (row ``i`` of each is pair
``i``), which ``skgap report`` and ``skgap sweep`` read, plus ``row`` (the
table row of each pair), ``skipped`` (table rows left out under
``--on-error skip``), ``paths`` and, with ``--labels``, ``labels``.

torch and open_clip are imported only when the command runs.
"""

import argparse
import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from ._io import DataError

_DESCRIPTION = """\
Embed paired images and texts with an open_clip model and write an .npz with
arrays 'image' and 'text' that 'skgap report' and 'skgap sweep' read.

Two layouts of the input:
  --images TABLE.csv --texts COLUMN
      one CSV, one row per pair; its --image-column holds image paths
      (relative paths are relative to the CSV's folder).
  --images DIR --texts TABLE.csv:COLUMN
      a folder of images and a CSV whose --image-column names each file
      inside DIR.

Weights: --model ViT-B-32 --pretrained openai (a tag; downloaded once), or
--pretrained /path/to/weights.safetensors (a local file), or
--model local-dir:/folder (open_clip_config.json + weights). Set
HF_HUB_OFFLINE=1 to fail at once when weights are not on this machine.
Needs the torch extra: pip install 'skgap[torch]'.
"""


def register(sub):
    p = sub.add_parser(
        "encode",
        help="embed images and texts with an open_clip model (needs skgap[torch])",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="ViT-B-32",
                   help="open_clip architecture, 'local-dir:/folder' or 'hf-hub:org/repo' "
                        "(default: %(default)s)")
    p.add_argument("--pretrained", default=None,
                   help="pretrained tag (e.g. openai) or weights file, for an architecture name")
    p.add_argument("--images", required=True, metavar="DIR_OR_CSV",
                   help="a CSV with one row per pair, or a folder of images")
    p.add_argument("--texts", required=True, metavar="COLUMN|CSV:COLUMN",
                   help="the text column of the --images CSV, or TABLE.csv:COLUMN with a folder")
    p.add_argument("--image-column", default="image",
                   help="CSV column holding image paths (default: %(default)s)")
    p.add_argument("--labels", default=None, metavar="COLUMN",
                   help="CSV column of labels to store as 'labels' in the output")
    p.add_argument("--out", required=True, metavar="EMB.npz", help="output file (.npz)")
    p.add_argument("--device", default="auto",
                   help="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N' "
                        "(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="items per forward pass (default: %(default)s)")
    p.add_argument("--num-workers", type=int, default=0,
                   help="image-decoding processes (default: %(default)s; 4-8 on a GPU)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="autocast precision (default: %(default)s: bf16/fp16 on CUDA, fp32 on CPU)")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder; a rerun encodes only new items")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="unreadable image or blank text: stop, or skip the pair "
                        "(default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.set_defaults(func=run)


def _read_table(path):
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from exc
    if not rows:
        raise DataError(f"{path}: the table has no rows.")
    return rows, columns


def _column(rows, columns, name, path, option):
    if name not in columns:
        raise DataError(f"{path}: no column {name!r} for {option} (columns: {columns}).")
    return [row[name] if row[name] is not None else "" for row in rows]


def read_pairs(images, texts, image_column="image", labels=None):
    """Read the pairs named on the command line.

    Returns
    -------
    paths : list of str
        Image paths (empty cells stay empty, and are reported as missing).
    texts : list of str
    labels : list of str or None
    """
    images = Path(images).expanduser()
    if images.is_dir():
        table, _, text_column = texts.rpartition(":")
        if not table.lower().endswith(".csv") or not text_column:
            raise DataError(
                f"--images {images} is a folder, so --texts must be TABLE.csv:COLUMN, a CSV "
                f"whose {image_column!r} column names each image file in the folder "
                f"(got --texts {texts!r})."
            )
        table = Path(table).expanduser()
        base = images
    elif images.suffix.lower() == ".csv":
        if ":" in texts and texts.rpartition(":")[0].lower().endswith(".csv"):
            raise DataError(
                f"--images {images} is a CSV, so --texts names one of its columns "
                f"(got {texts!r})."
            )
        table, text_column, base = images, texts, images.parent
    elif not images.exists():
        raise DataError(f"{images}: no such file or folder.")
    else:
        raise DataError(f"--images must be a folder or a .csv file, got {images}.")
    rows, columns = _read_table(table)
    names = _column(rows, columns, image_column, table, "--image-column")
    paths = [str(base / name) if name.strip() else "" for name in names]
    text_values = _column(rows, columns, text_column, table, "--texts")
    label_values = _column(rows, columns, labels, table, "--labels") if labels else None
    return paths, text_values, label_values


def _label_array(values):
    try:
        return np.asarray([float(v) for v in values])
    except ValueError:
        return np.asarray(values, dtype=str)


def run(args):
    paths, texts, labels = read_pairs(args.images, args.texts, args.image_column, args.labels)
    out = Path(args.out).expanduser()
    if out.suffix != ".npz":
        raise DataError(f"--out must name a .npz file, got {out}.")
    if not out.parent.is_dir():
        raise DataError(f"--out {out}: no such folder {out.parent}.")
    try:
        from ..encode import BadItemError, MissingWeightsError, OpenCLIPEncoder
        from ..encode._cache import atomic_write
    except ImportError as exc:
        raise DataError(
            "skgap encode needs the torch extra: pip install 'skgap[torch]' "
            f"(torch, torchvision, open_clip_torch, pillow, tqdm); missing: {exc.name or exc}."
        ) from exc

    encoder = OpenCLIPEncoder(
        model=args.model,
        pretrained=args.pretrained,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        on_error=args.on_error,
    )
    try:
        with warnings.catch_warnings():
            # The skipped rows are listed below, one line each.
            warnings.filterwarnings("ignore", message=r"\w+Encoder skipped")
            X = encoder.transform({"image": paths, "text": texts})
    except (MissingWeightsError, BadItemError, ValueError, ImportError) as exc:
        raise DataError(str(exc)) from exc

    n, d = len(paths), X.shape[1] // 2
    skipped = encoder.skipped_
    kept = np.setdiff1d(np.arange(n), skipped)
    arrays = {
        "image": X[:, :d],
        "text": X[:, d:],
        "row": kept,
        "skipped": skipped,
        "paths": np.asarray([paths[i] for i in kept], dtype=str),
    }
    if labels is not None:
        arrays["labels"] = _label_array([labels[i] for i in kept])
    atomic_write(out, lambda f: np.savez(f, **arrays))

    for reason in encoder.skip_reasons_[:10]:
        print(f"skgap encode: skipped {reason}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"skgap encode: ... and {len(skipped) - 10} more (see 'skipped' in {out}).",
              file=sys.stderr)
    weights = f"{args.model}" + (f" / {args.pretrained}" if args.pretrained else "")
    print(
        f"wrote {out}: {len(kept)} pairs of {d}-dim image and text embeddings "
        f"({weights}{', ' + str(len(skipped)) + ' skipped' if len(skipped) else ''})."
    )
    return 0
