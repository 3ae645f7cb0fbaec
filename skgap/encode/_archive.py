"""Encode a whole table of (image, text) pairs on a dask cluster into an archive folder."""

import contextlib
import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params

from .._core._validation import Interval
from ._archive_layout import ROW_COLUMN, ArchiveFolder, ArchiveLockedError
from ._base import BaseEncoder

__all__ = ["ArchiveLockedError", "ArchiveSummary", "encode_archive"]

_FORMAT = "skgap-archive"
_VERSION = 1


@dataclass
class ArchiveSummary:
    """What :func:`encode_archive` did.

    Parameters
    ----------
    out_dir : str
        The archive folder; open it with :func:`skgap.io.load_embeddings`.
    n_rows : int
        Rows of the input table.
    n_written : int
        Rows with embeddings in the archive (``n_rows`` minus ``skipped``).
    skipped : ndarray of int
        Input rows left out under ``on_error='skip'``, sorted.
    skip_reasons : list of str
        Why each of ``skipped`` was left out (its row and source).
    n_shards : int
        Shards of the archive.
    n_resumed : int
        Shards found finished when the call started (not encoded again).
    modality_dims : tuple of int
        ``(d, d)``: widths of the image and text embeddings.
    seconds : float
        Wall time of the call.
    dashboard_link : str or None
        The dask dashboard of the cluster used, when it reports one.
    check : str
        The every-row-exactly-once check, as printed.
    shards : list of dict
        The commit record of each shard: its input rows ``start``/``stop``,
        ``n_written``, ``skipped`` (row, reason), the ``worker`` (host and
        pid) and ``device`` that wrote it, when it ``started`` (Unix time) and
        how many ``seconds`` it took to encode.
    """

    out_dir: str
    n_rows: int
    n_written: int
    skipped: np.ndarray
    skip_reasons: list
    n_shards: int
    n_resumed: int
    modality_dims: tuple
    seconds: float
    dashboard_link: "str | None"
    check: str
    shards: list = field(default_factory=list, repr=False)


def _as_arrow(table, image_column, text_column):
    """The input table as a :class:`pyarrow.Table`, its two columns checked."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        out = table
    elif hasattr(table, "columns") and hasattr(table, "iloc"):
        out = pa.Table.from_pandas(table, preserve_index=False)
    elif isinstance(table, dict):
        try:
            out = pa.table({k: list(v) if not isinstance(v, (pa.Array, np.ndarray)) else v
                            for k, v in table.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ValueError(f"the table's columns do not form a table ({exc}).") from exc
    else:
        raise TypeError(
            "table must be a pandas DataFrame, a pyarrow Table or a dict of equal-length "
            f"columns; got {type(table).__name__}."
        )
    if out.num_rows == 0:
        raise ValueError("the table has no rows.")
    for name, what in ((image_column, "image_column"), (text_column, "text_column")):
        if name not in out.column_names:
            raise ValueError(
                f"{what}={name!r} is not a column of the table (columns: {out.column_names})."
            )
        kind = out.schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise TypeError(
                f"column {name!r} must hold strings "
                f"({'image paths' if name == image_column else 'texts'}) to be stored in the "
                f"archive's metadata; it holds {kind}."
            )
    if ROW_COLUMN in out.column_names:
        raise ValueError(
            f"the table has a column {ROW_COLUMN!r}, the name the archive gives each row's "
            "input position; rename it."
        )
    return out.combine_chunks()


def _digest(table, columns):
    """A digest of the input columns: a resumed run must continue the same table."""
    h = hashlib.sha256(str(table.num_rows).encode())
    for name in columns:
        for chunk in table.column(name).chunks:
            for value in chunk.to_pylist():
                h.update(b"\x00" if value is None else value.encode() + b"\x01")
    return h.hexdigest()


def _settings(table, encoder, shard_size, dtype, image_column, text_column):
    encoder._validate_params()
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "n_rows": table.num_rows,
        "shard_size": int(shard_size),
        "dtype": dtype,
        "image_column": image_column,
        "text_column": text_column,
        "table_sha256": _digest(table, (image_column, text_column)),
        "encoder": json.loads(json.dumps({
            "class": type(encoder).__name__,
            "model": encoder._model_fingerprint(),
            "precision": encoder.precision,
            "normalize": encoder.normalize,
        }, default=str)),
    }


def _check_settings(folder, settings):
    """Record the settings of a new archive; refuse a folder holding another one."""
    path = folder.settings_path
    if not path.exists():
        if any(folder.image(0).parent.iterdir()) or any(folder.text(0).parent.iterdir()):
            raise ValueError(
                f"{folder.root} already holds embeddings not written by encode_archive; "
                "choose an empty or new folder."
            )
        folder.write_json(path, settings)
        return
    old = json.loads(path.read_text())
    diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    if diff:
        raise ValueError(
            f"{folder.root} holds an archive of other settings (different {', '.join(diff)}); "
            "a rerun resumes only the same table, encoder, shard_size and dtype. Choose "
            "another folder, or remove this one to start over."
        )


def _shard_bounds(n, shard_size):
    return [(k, s, min(s + shard_size, n)) for k, s in enumerate(range(0, n, shard_size))]


def _check_archive(folder, bounds, n_rows):
    """Every input row exactly once: in one shard's metadata, or skipped.

    Reads the commit records, the ``.npy`` headers and the metadata ``row``
    columns (never the embeddings). Returns ``(records, message)``.
    """
    import pyarrow.parquet as pq

    seen = np.zeros(n_rows, dtype=np.int64)
    records, problems = [], []
    for k, start, stop in bounds:
        rec = folder.read_record(k)
        if rec is None:
            problems.append(f"shard {k} has no commit record")
            continue
        records.append(rec)
        try:
            rows = pq.read_table(folder.metadata(k), columns=[ROW_COLUMN]).column(0)
            rows = rows.to_numpy()
            n_v = np.load(folder.image(k), mmap_mode="r").shape[0]
            n_t = np.load(folder.text(k), mmap_mode="r").shape[0]
        except (OSError, ValueError) as exc:
            problems.append(f"shard {k} cannot be read ({exc})")
            continue
        if not (len(rows) == n_v == n_t == rec["n_written"]):
            problems.append(
                f"shard {k}: {n_v} image rows, {n_t} text rows, {len(rows)} metadata rows, "
                f"{rec['n_written']} in its record"
            )
        skipped = np.asarray([r for r, _ in rec["skipped"]], dtype=np.int64)
        both = np.concatenate([rows, skipped])
        if both.size and (both.min() < start or both.max() >= stop):
            problems.append(f"shard {k} holds rows outside [{start}, {stop})")
            continue
        np.add.at(seen, both, 1)
    extra = []
    for path in (folder.image(0).parent, folder.text(0).parent, folder.metadata(0).parent):
        for p in path.iterdir():
            stem = p.name.split(".")[0]
            if not p.name.startswith(".") and stem.rsplit("_", 1)[-1].isdigit():
                if int(stem.rsplit("_", 1)[-1]) >= len(bounds):
                    extra.append(p.name)
    if extra:
        problems.append(f"files of shards beyond the plan: {sorted(extra)[:5]}")
    missing = np.flatnonzero(seen == 0)
    twice = np.flatnonzero(seen > 1)
    if missing.size:
        problems.append(f"{missing.size} rows missing (first: {missing[:5].tolist()})")
    if twice.size:
        problems.append(f"{twice.size} rows more than once (first: {twice[:5].tolist()})")
    if problems:
        raise RuntimeError(f"{folder.root}: the archive check failed: " + "; ".join(problems) + ".")
    n_skipped = sum(len(r["skipped"]) for r in records)
    message = (
        f"check: all {n_rows} input rows exactly once -- {n_rows - n_skipped} in "
        f"{len(bounds)} shards, {n_skipped} skipped."
    )
    return records, message


def _default_workers():
    import torch

    return max(torch.cuda.device_count(), 1)


@contextlib.contextmanager
def local_cluster(n_workers=None, **kwargs):
    """The local cluster of ``encode_archive(client=None)``: processes, one thread each.

    Each worker's torch gets an equal share of this machine's cores
    (``OMP_NUM_THREADS``): left alone, every worker would start one thread
    per core and the workers would compete for them. Workers are not
    daemonic, for as long as the cluster lives (restarts included), so that
    an encoder with ``num_workers > 0`` can start its image-decoding
    processes.
    """
    import dask
    from distributed import LocalCluster

    n_workers = n_workers or _default_workers()
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    with dask.config.set({"distributed.worker.daemon": False}), LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True,
        env={"OMP_NUM_THREADS": str(threads)}, **kwargs,
    ) as cluster:
        yield cluster


def _run_shards(client, folder, table, pending, name, image_column, text_column, dtype, bar):
    """Submit the pending shards and wait for them; the first error cancels the rest."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = [
        client.submit(
            _worker().encode_shard, name, str(folder.root), k, table.slice(start, stop - start),
            start, image_column, text_column, dtype, key=f"skgap-archive-shard-{k}-{run}",
        )
        for k, start, stop in pending
    ]
    try:
        for future in as_completed(futures):
            if future.status == "error":
                exc = future.exception()
                from distributed import KilledWorker

                if isinstance(exc, KilledWorker):
                    raise RuntimeError(
                        f"a shard killed every worker that tried it ({exc}); finished shards "
                        f"are kept in {folder.root}: rerun to resume."
                    ) from exc
                raise exc
            record = future.result()
            bar.update(record["stop"] - record["start"])
    finally:
        client.cancel([f for f in futures if not f.done()])


def _worker():
    from . import _archive_worker

    return _archive_worker


@validate_params(
    {
        "table": "no_validation",
        "encoder": [BaseEncoder],
        "out_dir": [str, os.PathLike],
        "client": "no_validation",
        "n_workers": [Interval(Integral, 1, None, closed="left"), None],
        "shard_size": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "float16"})],
        "image_column": [str],
        "text_column": [str],
        "wait_for_lock": ["boolean"],
        "progress": ["boolean"],
        "verbose": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def encode_archive(
    table,
    encoder,
    out_dir,
    *,
    client=None,
    n_workers=None,
    shard_size=10_000,
    dtype="float32",
    image_column="image",
    text_column="text",
    wait_for_lock=False,
    progress=True,
    verbose=True,
):
    r"""Encode a table of (image, text) pairs on a dask cluster into a clip-retrieval folder.

    The input rows are cut into shards of ``shard_size`` consecutive rows;
    each dask worker loads the model once (a worker plugin) and encodes whole
    shards, writing shard :math:`k` as ``img_emb/img_emb_k.npy``,
    ``text_emb/text_emb_k.npy`` and ``metadata/metadata_k.parquet`` (column
    ``'row'``, the input row, then the input's columns). The folder opens
    with :func:`skgap.io.load_embeddings` (row :math:`i` of the result is
    :math:`[\hat v \mid \hat t]` of the :math:`i`-th written pair, in input
    order) and with the tools that read clip-retrieval's layout.

    Parameters
    ----------
    table : pandas.DataFrame, pyarrow.Table or dict of columns
        One row per pair; ``image_column`` holds image paths (PNG/JPEG/TIFF or
        DICOM, as :func:`skgap.encode.load_image` reads them), ``text_column``
        the texts. Other columns are copied into the metadata.
    encoder : OpenCLIPEncoder or TransformersEncoder
        Its parameters say what to load; every worker fits its own clone.
        ``device='auto'`` puts local worker :math:`i` on GPU
        :math:`i \bmod n_\text{gpu}`. Its ``on_error`` decides what a bad
        item does: ``'raise'`` stops the job (finished shards are kept),
        ``'skip'`` leaves the pair out and lists it in ``manifest.json``.
    out_dir : str or path-like
        The archive folder, created if missing. A folder holding an unfinished
        archive of the same table, encoder, ``shard_size`` and ``dtype`` is
        resumed; one holding anything else is refused.
    client : distributed.Client, default=None
        The cluster to run on. ``None`` starts a local cluster of
        ``n_workers`` worker processes (one thread each) for the call, and
        prints its dashboard address.
    n_workers : int, default=None
        Workers of the local cluster (``client=None`` only); ``None``: one
        per visible GPU, or one without a GPU.
    shard_size : int, default=10000
        Rows per shard: the unit of work, of writing and of recomputation
        after a fault.
    dtype : {'float32', 'float16'}, default='float32'
        Storage type of the embeddings. float16 halves the folder; unit
        vectors keep about 3 significant digits (relative error
        :math:`\le 2^{-11}` per entry).
    image_column, text_column : str, default='image', 'text'
        Columns of the paths and of the texts.
    wait_for_lock : bool, default=False
        When another client is writing to ``out_dir``: ``False`` raises
        :class:`ArchiveLockedError`, ``True`` waits for it to finish, then
        resumes (typically finding every shard done).
    progress : bool, default=True
        One tqdm bar over the input rows (rows/s) for the whole cluster.
    verbose : bool, default=True
        Print the dashboard address of a local cluster and the final check.

    Returns
    -------
    summary : ArchiveSummary

    Raises
    ------
    ArchiveLockedError
        Another client holds the folder and ``wait_for_lock=False``.
    BadItemError
        An image or text cannot be encoded and ``encoder.on_error='raise'``;
        the message names the input row.
    ValueError
        ``out_dir`` holds another archive, or a column is missing.
    RuntimeError
        The final check finds a row missing or present twice.

    Notes
    -----
    **Faults.** A shard is committed under a folder-wide commit lock: its
    three files are written atomically, then its commit record; an attempt
    that finds a record discards its own result. So when a worker dies
    mid-shard, dask reruns the task on another worker and the shard is
    written once; a rerun of the call skips committed shards; a worker left
    running by a stopped client cannot overwrite a finished shard. At the end
    every input row must appear exactly once -- in one shard's metadata, or
    in the skipped list -- or the call raises.

    **Exclusive writer.** The calling process holds ``OUT/.skgap/lock`` for
    the whole call, so two clients never write one folder at the same time.

    **Throughput.** A shard is encoded by one worker, in ``encoder.batch_size``
    batches; size shards so that there are several per worker (load balance)
    and each takes seconds or more (scheduling and commit overheads).

    Examples
    --------
    >>> import tempfile, warnings
    >>> import numpy as np
    >>> from distributed import Client, LocalCluster
    >>> from PIL import Image
    >>> from skgap.encode import TransformersEncoder, encode_archive, save_random_model
    >>> from skgap.io import load_embeddings
    >>> tmp = tempfile.mkdtemp()
    >>> paths = []
    >>> for i in range(6):
    ...     paths.append(f"{tmp}/{i}.png")
    ...     Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(paths[-1])
    >>> table = {"image": paths, "text": ["a dark square", "a light square"] * 3}
    >>> enc = TransformersEncoder(save_random_model(f"{tmp}/model"), device="cpu")
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, \
    ...         Client(cluster) as client:
    ...     summary = encode_archive(table, enc, f"{tmp}/archive", client=client,
    ...                              shard_size=4, progress=False, verbose=False)
    >>> summary.n_written, summary.n_shards, summary.modality_dims
    (6, 2, (16, 16))
    >>> load_embeddings(f"{tmp}/archive")[0].shape
    (6, 32)
    """
    try:
        import distributed
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "encode_archive needs dask's distributed scheduler and pyarrow: pip install "
            f"'skgap[dask,arrow]'. Missing: {exc.name}.", name=exc.name,
        ) from exc
    if client is not None and not isinstance(client, distributed.Client):
        # Checked before the folder is locked and its settings written: anything else
        # would fail only when the first shard is submitted.
        raise TypeError(
            "client must be a distributed.Client (or None for a local cluster), got "
            f"{type(client).__name__}."
        )
    if client is not None and n_workers is not None:
        raise ValueError("n_workers sizes the local cluster of client=None; with a client, "
                         "size its cluster instead.")
    t0 = time.perf_counter()
    table = _as_arrow(table, image_column, text_column)
    settings = _settings(table, encoder, shard_size, dtype, image_column, text_column)
    folder = ArchiveFolder(out_dir)
    bounds = _shard_bounds(table.num_rows, shard_size)
    say = (lambda msg: print(msg, flush=True)) if verbose else (lambda msg: None)
    dashboard = None
    with folder.locked("lock", wait=wait_for_lock):
        _check_settings(folder, settings)
        pending = [b for b in bounds if folder.read_record(b[0]) is None]
        n_resumed = len(bounds) - len(pending)
        if n_resumed:
            say(f"{folder.root}: {n_resumed} of {len(bounds)} shards already finished.")
        if pending:
            dashboard = _encode_pending(
                client, n_workers, encoder, folder, table, bounds, pending, settings,
                image_column, text_column, dtype, progress, say,
            )
        records, message = _check_archive(folder, bounds, table.num_rows)
        say(message)
        skipped = sorted((r, why) for rec in records for r, why in rec["skipped"])
        dim = records[0]["dim"]
        seconds = time.perf_counter() - t0
        folder.write_json(folder.manifest_path, {
            "settings": settings,
            "n_written": int(sum(rec["n_written"] for rec in records)),
            "skipped": [{"row": r, "reason": why} for r, why in skipped],
            "shards": [{k: rec[k] for k in ("shard", "start", "stop", "n_written", "worker",
                                             "device", "seconds", "started")} for rec in records],
            "check": message,
        })
    return ArchiveSummary(
        out_dir=str(folder.root),
        n_rows=table.num_rows,
        n_written=table.num_rows - len(skipped),
        skipped=np.asarray([r for r, _ in skipped], dtype=np.int64),
        skip_reasons=[why for _, why in skipped],
        n_shards=len(bounds),
        n_resumed=n_resumed,
        modality_dims=(dim, dim),
        seconds=seconds,
        dashboard_link=dashboard,
        check=message,
        shards=records,
    )


def _encode_pending(client, n_workers, encoder, folder, table, bounds, pending, settings,
                    image_column, text_column, dtype, progress, say):
    """Run the pending shards on ``client`` (or a local cluster); return the dashboard link."""
    from distributed import Client
    from tqdm.auto import tqdm

    stack = contextlib.ExitStack()
    if client is None:
        cluster = stack.enter_context(local_cluster(n_workers))
        client = stack.enter_context(Client(cluster))
    name = "skgap-encoder-" + hashlib.sha256(
        json.dumps(settings["encoder"], sort_keys=True).encode()
    ).hexdigest()[:16]
    try:
        link = getattr(client, "dashboard_link", None)
        if link and getattr(client, "cluster", None) is not None:
            say(f"dask dashboard: {link}")
        client.register_plugin(_worker().EncoderPlugin(encoder), name=name)
        done_rows = sum(stop - start for k, start, stop in bounds) - sum(
            stop - start for k, start, stop in pending
        )
        with tqdm(total=table.num_rows, initial=done_rows, unit="row", unit_scale=True,
                  desc="encoding archive", disable=not progress, file=sys.stderr) as bar:
            _run_shards(client, folder, table, pending, name, image_column, text_column,
                        dtype, bar)
        return link
    finally:
        try:
            client.unregister_worker_plugin(name)
        except Exception:  # noqa: BLE001 - a cluster going down: nothing left to free
            pass
        stack.close()
