"""What runs on the dask workers of :func:`skgap.encode.encode_archive`.

Imported only where ``distributed`` is installed: the driver imports it when a
job starts, a worker when it unpickles the plugin or a task.
"""

import os
import re
import socket
import threading
import time
import warnings

import numpy as np
from distributed import WorkerPlugin, get_worker
from sklearn.base import clone

from ._archive_layout import ROW_COLUMN, ArchiveFolder
from ._items import BadItemError

__all__ = ["EncoderPlugin", "encode_shard"]

_LOCAL_INDEX = re.compile(r"^(image|text) (\d+)")


def _worker_device(device, name, n_cuda):
    """The device of one worker: ``'auto'`` spreads local workers over the GPUs.

    Workers of a :class:`distributed.LocalCluster` are named ``0, 1, ...``;
    worker ``i`` takes ``cuda:(i mod n_gpus)``. Workers of other clusters
    usually see one GPU each (``CUDA_VISIBLE_DEVICES`` set by dask-cuda or the
    batch system), which ``'auto'`` then picks.
    """
    if device != "auto" or n_cuda <= 1:
        return device
    try:
        index = int(name)
    except (TypeError, ValueError):
        return device
    return f"cuda:{index % n_cuda}"


class EncoderPlugin(WorkerPlugin):
    """Load the encoder once per worker process, when the worker starts.

    The scheduler keeps the plugin and installs it on every worker that
    joins later, a worker restarted after a crash included, so a task always
    finds the model loaded. A loading error (weights missing on a node) is
    raised to the client when the plugin is registered.

    Parameters
    ----------
    encoder : BaseEncoder
        Unfitted parameters; each worker fits its own clone.
    """

    def __init__(self, encoder):
        self.encoder = encoder

    def setup(self, worker):
        import multiprocessing

        import torch

        if self.encoder.num_workers > 0 and multiprocessing.current_process().daemon:
            raise RuntimeError(
                f"encoder.num_workers={self.encoder.num_workers} starts image-decoding "
                f"processes, which the daemonic dask worker {worker.name!r} cannot have. "
                "Start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False (config "
                "distributed.worker.daemon: false), or use num_workers=0."
            )
        enc = clone(self.encoder)
        device = _worker_device(enc.device, worker.name, torch.cuda.device_count())
        enc.set_params(device=device, progress=False)
        enc.fit()
        self.loaded = enc
        # One shard at a time per worker: an encoder records its skipped
        # items on itself, and a model gains nothing from two callers.
        self.lock = threading.Lock()

    def teardown(self, worker):
        # Unregistered at the end of a job: a long-lived cluster gets its memory back.
        self.loaded = None
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _global_reason(reason, start):
    """A skip reason with the shard's item index turned into the input row."""
    return _LOCAL_INDEX.sub(lambda m: f"{m[1]} {int(m[2]) + start}", reason, count=1)


def encode_shard(plugin_name, root, k, table, start, image_column, text_column, dtype):
    """Encode one shard of the input table and commit it; return its record.

    A shard already committed (by an earlier attempt or an earlier run) is
    not encoded again: its record is returned with ``committed_here=False``.
    """
    folder = ArchiveFolder(root)
    done = folder.read_record(k)
    if done is not None:
        return {**done, "committed_here": False}
    plugin = get_worker().plugins[plugin_name]
    enc = plugin.loaded
    images = table.column(image_column).to_pylist()
    texts = table.column(text_column).to_pylist()
    started = time.time()
    t0 = time.perf_counter()
    with plugin.lock, warnings.catch_warnings():
        # Skipped items are listed in the manifest, not warned about on a worker.
        warnings.filterwarnings("ignore", message=r"\w+Encoder skipped")
        try:
            X = enc.transform({"image": images, "text": texts})
        except BadItemError as exc:
            # The message names the input row, not the position in the shard.
            raise BadItemError(
                exc.modality, exc.index + start, exc.source, exc.reason,
                hint=". Fix or remove it, or pass on_error='skip' (--on-error skip) to "
                "leave such pairs out; they are then listed in manifest.json.",
            ) from None
        skipped = enc.skipped_.tolist()
        reasons = [_global_reason(r, start) for r in enc.skip_reasons_]
    seconds = time.perf_counter() - t0
    d = X.shape[1] // 2
    keep = np.setdiff1d(np.arange(len(images)), skipped)
    rows = np.arange(start, start + len(images), dtype=np.int64)
    import pyarrow as pa

    meta = table.take(pa.array(keep, type=pa.int64()))
    meta = meta.add_column(0, ROW_COLUMN, pa.array(rows[keep], type=pa.int64()))
    record = {
        "shard": k,
        "start": start,
        "stop": start + len(images),
        "n_written": int(keep.size),
        "skipped": [[int(start + i), r] for i, r in zip(skipped, reasons)],
        "dim": d,
        "seconds": round(seconds, 3),
        "started": round(started, 3),
        "worker": f"{socket.gethostname()} pid {os.getpid()}",
        "device": enc.device_,
    }
    return folder.commit(
        k, X[:, :d].astype(dtype), X[:, d:].astype(dtype), meta, record
    )
