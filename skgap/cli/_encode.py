"""``skgap encode``: embed images and texts (open_clip or transformers) into an .npz.

The output holds arrays ``image`` and ``text`` (row ``i`` of each is pair
``i``), which ``skgap report`` and ``skgap sweep`` read, plus ``row`` (the
table row of each pair), ``skipped`` (table rows left out under
``--on-error skip``), ``paths``, with ``--labels`` ``labels``, and with
``--group-by`` ``group`` (the study of each row). With ``--pool mean`` there is
one row per study: ``image`` (pooled), ``text``, ``group``, ``n_images``.

torch and open_clip are imported only when the command runs.
"""

import argparse
import contextlib
import csv
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ._encode_archive import add_options as add_archive_options, run_archive, wants_archive
from ._io import DataError
from ._outputs import check_writable, writing

_DESCRIPTION = """\
Embed paired images and texts with an open_clip or Hugging Face model and
write an .npz with arrays 'image' and 'text' that 'skgap report' and
'skgap sweep' read.

Two layouts of the input:
  --images TABLE.csv --texts COLUMN
      one CSV, one row per pair; its --image-column holds image paths
      (relative paths are relative to the CSV's folder).
  --images DIR --texts TABLE.csv:COLUMN
      a folder of images and a CSV whose --image-column names each file
      inside DIR.
Images may be PNG/JPEG/TIFF or DICOM (.dcm; needs skgap[dicom]).

Studies (one report, several images; MIMIC-CXR has frontal and lateral views):
  --group-by study_id            pair each image with its study's report
  --group-by study_id --pool mean
      one row per study: the mean of its unit image embeddings, renormalised,
      paired with its report.

Weights, open_clip: --model ViT-B-32 --pretrained /path/to/weights.safetensors
(a local file), --model local-dir:/folder (open_clip_config.json + weights;
BiomedCLIP), or --pretrained TAG (a download: needs --online).
Weights, Hugging Face (CLIP, SigLIP, MedSigLIP): --hf-model /folder (written by
`hf download ORG/REPO --local-dir /folder`), or a hub id already in the local
cache. Needs skgap[transformers].

Offline by default: nothing is downloaded unless --online is given, so a
missing model fails at once instead of waiting for network retries.

Dry run without any weights: --model ViT-B-32 with no --pretrained builds
random open_clip weights (a warning says so); or make a tiny random
Hugging Face checkpoint with
  python -c "from skgap.encode import save_random_model; save_random_model('tiny', 'siglip')"
and pass --hf-model tiny. Their embeddings mean nothing.
Needs the torch extra: pip install 'skgap[torch]'.
"""


def register(sub):
    p = sub.add_parser(
        "encode",
        help="embed images and texts with an open_clip or Hugging Face model (needs skgap[torch])",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="ViT-B-32",
                   help="open_clip architecture, 'local-dir:/folder' or 'hf-hub:org/repo' "
                        "(default: %(default)s)")
    p.add_argument("--pretrained", default=None,
                   help="pretrained tag (e.g. openai) or weights file, for an architecture name")
    p.add_argument("--hf-model", default=None, metavar="FOLDER_OR_ID",
                   help="a Hugging Face CLIP/SigLIP/MedSigLIP checkpoint folder or cached hub id "
                        "(instead of --model; needs skgap[transformers])")
    p.add_argument("--online", action="store_true",
                   help="allow downloads from the Hugging Face Hub (default: offline)")
    p.add_argument("--group-by", default=None, metavar="COLUMN",
                   help="study id column: images of one study share its report")
    p.add_argument("--pool", choices=("none", "mean"), default="none",
                   help="with --group-by: 'mean' writes one row per study, the renormalised "
                        "mean of its unit image embeddings (default: %(default)s)")
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
    p.add_argument("--frame", type=int, default=None, metavar="I",
                   help="the frame to encode of each multi-frame DICOM file (0-based; read "
                        "up front, one frame per file); default: refuse multi-frame files")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_archive_options(p)
    p.set_defaults(func=run)


def _frames(paths, frame, on_error):
    """Each DICOM path replaced by its frame ``frame`` as an image; other paths kept.

    A file that cannot give that frame stays a path under ``--on-error skip``, so
    the encoder skips it with its reason; otherwise it stops the command.
    """
    from ..encode import load_image
    from ..encode._dicom import is_dicom

    if frame < 0:
        raise DataError(f"--frame must be 0 or more, got {frame}.")
    out = []
    for path in paths:
        if not (os.path.isfile(path) and is_dicom(path)):
            out.append(path)
            continue
        try:
            out.append(load_image(path, frame=frame))
        except (OSError, ValueError, ImportError) as exc:
            if on_error == "skip":
                out.append(path)
                continue
            raise DataError(f"{path}: {exc}") from exc
    return out


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


def read_pairs(images, texts, image_column="image", labels=None, group_by=None):
    """Read the pairs named on the command line.

    Returns
    -------
    paths : list of str
        Image paths (empty cells stay empty, and are reported as missing).
    texts : list of str
    labels : list of str or None
    groups : list of str or None
        The ``group_by`` column (study ids), when asked.
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
    groups = _column(rows, columns, group_by, table, "--group-by") if group_by else None
    return paths, text_values, label_values, groups


def _label_array(values):
    try:
        return np.asarray([float(v) for v in values])
    except ValueError:
        return np.asarray(values, dtype=str)


def _check_out(out):
    if out.is_dir():
        raise DataError(f"--out {out}: is a folder; name a file to write, e.g. {out / 'emb.npz'}.")
    if out.suffix != ".npz":
        raise DataError(f"--out must name a .npz file, got {out}.")
    if not out.parent.is_dir():
        raise DataError(f"--out {out}: no such folder {out.parent}.")
    # Refused now, not after the encoding: the folder must take the file.
    check_writable(out.parent, "the --out folder")


def _check_groups(groups, texts, labels, table):
    """Every study has one report (and one label); blank ids are refused."""
    report, label = {}, {}
    for i, g in enumerate(groups):
        if not g.strip():
            raise DataError(f"{table}: empty --group-by value on line {i + 2}.")
        if report.setdefault(g, texts[i]) != texts[i]:
            raise DataError(
                f"{table}: study {g!r} has different texts on its rows (line {i + 2}); "
                "--group-by needs one report per study."
            )
        if labels is not None and label.setdefault(g, labels[i]) != labels[i]:
            raise DataError(f"{table}: study {g!r} has different labels (line {i + 2}).")


def _encoder(args):
    try:
        from ..encode import OpenCLIPEncoder, TransformersEncoder
    except ImportError as exc:
        raise DataError(
            "skgap encode needs the torch extra: pip install 'skgap[torch]' "
            f"(torch, torchvision, open_clip_torch, pillow, tqdm); missing: {exc.name or exc}."
        ) from exc
    shared = dict(device=args.device, batch_size=args.batch_size, precision=args.precision,
                  num_workers=args.num_workers, cache_dir=args.cache_dir,
                  progress=not args.no_progress, on_error=args.on_error)
    if args.hf_model is not None:
        if args.pretrained is not None:
            raise DataError("--pretrained belongs to open_clip models; --hf-model carries its weights.")
        return TransformersEncoder(args.hf_model, local_files_only=not args.online, **shared), \
            args.hf_model
    weights = f"{args.model}" + (f" / {args.pretrained}" if args.pretrained else "")
    return OpenCLIPEncoder(model=args.model, pretrained=args.pretrained, **shared), weights


@contextlib.contextmanager
def _offline(online):
    """``HF_HUB_OFFLINE=1`` for the run, unless ``--online``."""
    if online:
        yield
        return
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def run(args):
    if wants_archive(args):
        with _offline(args.online):
            return run_archive(args, *_encoder(args))
    if args.pool != "none" and not args.group_by:
        raise DataError("--pool mean needs --group-by COLUMN (the study id).")
    paths, texts, labels, groups = read_pairs(
        args.images, args.texts, args.image_column, args.labels, args.group_by
    )
    out = Path(args.out).expanduser()
    _check_out(out)
    if groups is not None:
        _check_groups(groups, texts, labels, args.images)
    encoder, weights = _encoder(args)
    try:
        from ..encode import BadItemError, MissingWeightsError, pool_by_group
        from ..encode._cache import atomic_write
    except ImportError as exc:  # pragma: no cover - checked in _encoder
        raise DataError(str(exc)) from exc
    try:
        with _offline(args.online), warnings.catch_warnings():
            # The skipped rows are listed below, one line each.
            warnings.filterwarnings("ignore", message=r"\w+Encoder skipped")
            images = paths if args.frame is None else _frames(paths, args.frame, args.on_error)
            X = encoder.transform({"image": images, "text": texts})
    except (MissingWeightsError, BadItemError, ValueError, ImportError, OSError) as exc:
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
    what = "pairs"
    if groups is not None:
        kept_groups = np.asarray([groups[i] for i in kept], dtype=str)
        arrays["group"] = kept_groups
        if args.pool == "mean":
            V, ids = pool_by_group(arrays["image"], kept_groups)
            T, _ = pool_by_group(arrays["text"], kept_groups)  # one report: its own embedding
            first = np.asarray([np.flatnonzero(kept_groups == g)[0] for g in ids])
            arrays = {
                "image": V.astype(np.float32),
                "text": T.astype(np.float32),
                "group": ids,
                "n_images": np.asarray([(kept_groups == g).sum() for g in ids]),
                "skipped": skipped,
                **({"labels": arrays["labels"][first]} if labels is not None else {}),
            }
            what = f"studies ({len(kept)} images pooled)"
    with writing(out):  # a full disk or a lost permission: one line, not a traceback
        atomic_write(out, lambda f: np.savez(f, **arrays))

    for reason in encoder.skip_reasons_[:10]:
        print(f"skgap encode: skipped {reason}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"skgap encode: ... and {len(skipped) - 10} more (see 'skipped' in {out}).",
              file=sys.stderr)
    print(
        f"wrote {out}: {arrays['image'].shape[0]} {what} of {d}-dim image and text embeddings "
        f"({weights}{', ' + str(len(skipped)) + ' skipped' if len(skipped) else ''})."
    )
    return 0
