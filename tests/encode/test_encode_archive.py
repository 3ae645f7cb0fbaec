"""encode_archive on a real distributed.LocalCluster on loopback, with a tiny random-weight model.

The threaded cluster (one process) covers equality, resume, locks and the CLI;
the process cluster is used where a worker is killed by its pid.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
distributed = pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from PIL import Image  # noqa: E402

from skgap.encode import (  # noqa: E402
    ArchiveLockedError,
    BadItemError,
    TransformersEncoder,
    encode_archive,
    save_random_model,
)
from skgap.encode._archive import local_cluster  # noqa: E402
from skgap.io import load_embeddings  # noqa: E402

pytestmark = pytest.mark.usefixtures("hub_offline", "torch_one_thread")

N = 23
WORDS = ["a normal chest x-ray", "left pleural effusion", "a small dark square", "edema",
         "right lung opacity"]


def _cluster(**kw):
    return distributed.LocalCluster(
        protocol="tcp://", host="127.0.0.1", dashboard_address=":0", threads_per_worker=1, **kw
    )


@pytest.fixture(scope="module")
def client():
    with _cluster(n_workers=2, processes=False) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """N image files of varied sizes, their texts, an id column and the reference encoding."""
    folder = tmp_path_factory.mktemp("archive-data")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N):
        paths.append(str(folder / f"img{i}.png"))
        size = (20 + 3 * (i % 5), 40 - 2 * (i % 7), 3)
        Image.fromarray(rng.integers(0, 256, size=size, dtype=np.uint8)).save(paths[-1])
    texts = [f"{WORDS[i % 5]} {WORDS[(3 * i) % 5]}" for i in range(N)]
    model = save_random_model(folder / "model", "clip")
    enc = TransformersEncoder(model, device="cpu", batch_size=4)
    ref = enc.fit_transform({"image": paths, "text": texts})
    table = {"image": paths, "text": texts, "study": [f"s{i // 2}" for i in range(N)]}
    return table, model, ref


def _encoder(model, **kw):
    return TransformersEncoder(model, **{"device": "cpu", "batch_size": 4, **kw})


def _files(out):
    names = ("img_emb", "text_emb", "metadata")
    return {p: os.stat(p).st_mtime_ns for n in names for p in sorted((out / n).glob("*_*.*"))}


def test_archive_equals_single_process_row_for_row(client, data, tmp_path, capsys):
    table, model, ref = data
    out = tmp_path / "arch"
    summary = encode_archive(table, _encoder(model), out, client=client, shard_size=5,
                             progress=False)
    assert (summary.n_rows, summary.n_written, summary.n_shards) == (N, N, 5)
    assert summary.n_resumed == 0 and summary.skipped.size == 0
    printed = capsys.readouterr().out
    assert "dask dashboard: http://" in printed
    assert f"all {N} input rows exactly once" in printed
    # clip-retrieval layout, opened by skgap.io
    assert sorted(p.name for p in (out / "img_emb").iterdir()) == [
        f"img_emb_{k}.npy" for k in range(5)]
    X, study, dims = load_embeddings(out, labels="study")
    assert dims == (16, 16) and X.dtype == np.float32
    np.testing.assert_allclose(X, ref, atol=2e-6)
    np.testing.assert_array_equal(study, table["study"])
    meta = pa.concat_tables([pq.read_table(out / "metadata" / f"metadata_{k}.parquet")
                             for k in range(5)])
    assert meta.column_names == ["row", "image", "text", "study"]
    assert meta.column("row").to_pylist() == list(range(N))
    assert meta.column("image").to_pylist() == table["image"]
    assert meta.column("text").to_pylist() == table["text"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_written"] == N and manifest["skipped"] == []
    assert [s["shard"] for s in manifest["shards"]] == list(range(5))


def test_float16_storage(client, data, tmp_path):
    table, model, ref = data
    out = tmp_path / "arch16"
    encode_archive(table, _encoder(model), out, client=client, shard_size=10, dtype="float16",
                   progress=False, verbose=False)
    assert np.load(out / "img_emb" / "img_emb_0.npy").dtype == np.float16
    X, _, _ = load_embeddings(out)
    assert X.dtype == np.float32  # float16 shards are read as float32
    np.testing.assert_allclose(X, ref, atol=1e-3)
    assert np.abs(X - ref).max() > 0  # really stored in half precision


def test_bad_items_follow_on_error(client, data, tmp_path):
    table, model, ref = data
    broken = {k: list(v) for k, v in table.items()}
    broken["image"][7] = str(tmp_path / "missing.png")
    broken["text"][12] = "   "
    # Either failing shard may be first; the message names the input row, not the shard row.
    with pytest.raises(BadItemError, match=r"^(image 7|text 12) \("):
        encode_archive(broken, _encoder(model), tmp_path / "raise", client=client,
                       shard_size=5, progress=False, verbose=False)
    out = tmp_path / "skip"
    summary = encode_archive(broken, _encoder(model, on_error="skip"), out, client=client,
                             shard_size=5, progress=False, verbose=False)
    np.testing.assert_array_equal(summary.skipped, [7, 12])
    assert summary.skip_reasons[0].startswith("image 7 (") and "missing.png" in \
        summary.skip_reasons[0]
    assert summary.skip_reasons[1].startswith("text 12 (")
    assert "21 in 5 shards, 2 skipped" in summary.check
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["row"] for s in manifest["skipped"]] == [7, 12]
    X, rows, _ = load_embeddings(out, labels="row")
    keep = np.setdiff1d(np.arange(N), [7, 12])
    np.testing.assert_array_equal(rows, keep)
    np.testing.assert_allclose(X, ref[keep], atol=2e-6)


def test_resume_recomputes_only_unfinished_shards(client, data, tmp_path):
    table, model, ref = data
    out = tmp_path / "arch"
    encode_archive(table, _encoder(model), out, client=client, shard_size=4, progress=False,
                   verbose=False)
    before = _files(out)
    # Shard 2 as a killed attempt leaves it: data files, no commit record.
    (out / ".skgap" / "done" / "shard_2.json").unlink()
    np.save(out / "img_emb" / "img_emb_2.npy", np.zeros((1, 16), np.float32))
    summary = encode_archive(table, _encoder(model), out, client=client, shard_size=4,
                             progress=False, verbose=False)
    assert summary.n_resumed == summary.n_shards - 1 == 5
    after = _files(out)
    changed = sorted(p.name for p in before if before[p] != after[p])
    assert changed == ["img_emb_2.npy", "metadata_2.parquet", "text_emb_2.npy"]
    np.testing.assert_allclose(load_embeddings(out)[0], ref, atol=2e-6)


def test_resume_after_stopping_the_client(data, tmp_path):
    table, model, ref = data
    out = tmp_path / "arch"
    errors = []
    with _cluster(n_workers=1, processes=False) as cluster:
        client = distributed.Client(cluster)

        def job():
            try:
                encode_archive(table, _encoder(model, batch_size=1), out, client=client,
                               shard_size=2, progress=False, verbose=False)
            except Exception as exc:  # noqa: BLE001 - the stopped client's error
                errors.append(exc)

        worker = threading.Thread(target=job)
        worker.start()
        done = out / ".skgap" / "done"
        deadline = time.monotonic() + 60
        while (time.monotonic() < deadline and len(list(done.glob("*.json"))) < 2
               and worker.is_alive()):
            time.sleep(0.02)
        client.close()
        worker.join(60)
    assert not worker.is_alive() and errors, "closing the client must stop the job"
    finished = len(list(done.glob("*.json")))
    assert 2 <= finished < 12, errors
    with _cluster(n_workers=1, processes=False) as cluster, distributed.Client(cluster) as c:
        summary = encode_archive(table, _encoder(model), out, client=c, shard_size=2,
                                 progress=False, verbose=False)
    assert summary.n_resumed >= finished and summary.n_shards == 12
    np.testing.assert_allclose(load_embeddings(out)[0], ref, atol=2e-6)


def test_other_settings_in_the_folder_are_refused(client, data, tmp_path):
    table, model, _ = data
    out = tmp_path / "arch"
    encode_archive(table, _encoder(model), out, client=client, shard_size=8, progress=False,
                   verbose=False)
    with pytest.raises(ValueError, match="different shard_size"):
        encode_archive(table, _encoder(model), out, client=client, shard_size=4,
                       progress=False, verbose=False)
    other = {**table, "text": table["text"][::-1]}
    with pytest.raises(ValueError, match="different table_sha256"):
        encode_archive(other, _encoder(model), out, client=client, shard_size=8,
                       progress=False, verbose=False)


# Another client, as the folder sees it: a process holding .skgap/lock (flock).
_HOLD = """
import fcntl, os, socket, sys
os.makedirs(sys.argv[1], exist_ok=True)
fd = os.open(os.path.join(sys.argv[1], "lock"), os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
print("holding", flush=True)
sys.stdin.readline()
"""


def test_two_clients_on_one_folder_refused_or_serialised(client, data, tmp_path):
    table, model, ref = data
    out = tmp_path / "arch"
    # Another writer, in another process, holds the folder.
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out / ".skgap")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(ArchiveLockedError, match=f"pid {holder.pid} on"):
            encode_archive(table, _encoder(model), out, client=client, shard_size=8,
                           progress=False, verbose=False)
        result = {}
        waiting = threading.Thread(target=lambda: result.update(s=encode_archive(
            table, _encoder(model), out, client=client, shard_size=8, wait_for_lock=True,
            progress=False, verbose=False)))
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive() and not (out / ".skgap" / "settings.json").exists()
    finally:
        holder.communicate("\n", timeout=30)
    waiting.join(60)
    assert result["s"].n_written == N
    # Two clients at once, both queued on the lock: the second finds every shard done.
    summaries = []
    threads = [threading.Thread(target=lambda: summaries.append(encode_archive(
        table, _encoder(model), tmp_path / "both", client=client, shard_size=8,
        wait_for_lock=True, progress=False, verbose=False))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(s.n_resumed for s in summaries) == [0, 3]
    np.testing.assert_allclose(load_embeddings(tmp_path / "both")[0], ref, atol=2e-6)


def test_cli_on_a_scheduler(client, data, tmp_path, capsys):
    from skgap.cli import main

    table, model, ref = data
    csv = tmp_path / "pairs.csv"
    lines = ["path,report,study"] + [
        f"{p},{t},{s}" for p, t, s in zip(table["image"], table["text"], table["study"])]
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "arch"
    argv = ["encode", "--hf-model", str(model), "--device", "cpu", "--batch-size", "4",
            "--images", str(csv), "--texts", "report", "--image-column", "path",
            "--out", str(out), "--scheduler", client.scheduler.address, "--shard-size", "10",
            "--float16", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: {N} pairs of 16-dim" in printed and "in 3 shards" in printed
    X, study, _ = load_embeddings(out, labels="study")
    np.testing.assert_allclose(X, ref, atol=1e-3)
    np.testing.assert_array_equal(study, table["study"])
    assert main(argv[:-6] + ["--out", str(tmp_path / "x.npz"), "--scheduler",
                             client.scheduler.address]) == 2
    assert "name a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_worker_shard_recomputed_every_row_once(data, tmp_path):
    table, model, ref = data
    out = tmp_path / "arch"
    # The cluster encode_archive starts itself.
    with local_cluster(2, protocol="tcp://", host="127.0.0.1", dashboard_address=":0") as \
            cluster, distributed.Client(cluster) as c:
        pids = c.run(os.getpid)
        result, errors = {}, []

        def job():
            try:
                result["s"] = encode_archive(
                    table, _encoder(model, batch_size=1), out, client=c, shard_size=3,
                    progress=False, verbose=False)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=job)
        thread.start()
        victim = None
        deadline = time.monotonic() + 600  # model loads in spawned workers: slow on a busy host
        while victim is None and time.monotonic() < deadline and thread.is_alive():
            busy = {w: keys for w, keys in c.processing().items()
                    if any("skgap-archive-shard" in str(k) for k in keys)}
            if busy:
                victim = next(iter(busy))
                os.kill(pids[victim], signal.SIGKILL)
                key = next(str(k) for k in busy[victim] if "skgap-archive-shard" in str(k))
                shard = int(key.split("-")[3])
                # Committed just before the kill? Then it was not killed mid-shard.
                mid_shard = not (out / ".skgap" / "done" / f"shard_{shard}.json").exists()
            time.sleep(0.01)
        thread.join(600)
        assert victim is not None, f"no worker was ever busy with a shard; errors: {errors}"
        assert not errors, errors
    summary = result["s"]
    assert f"all {N} input rows exactly once" in summary.check
    if mid_shard:  # the killed worker's shard was written by another worker process
        assert summary.shards[shard]["worker"].split()[-1] != str(pids[victim])
    X, rows, _ = load_embeddings(out, labels="row")
    np.testing.assert_array_equal(rows, np.arange(N))
    np.testing.assert_allclose(X, ref, atol=2e-6)


def test_a_committed_shard_is_never_written_again(tmp_path):
    from skgap.encode._archive_layout import ArchiveFolder

    folder = ArchiveFolder(tmp_path / "arch")
    meta = pa.table({"row": pa.array([0, 1], pa.int64())})
    first = folder.commit(0, np.ones((2, 4), np.float32), np.ones((2, 4), np.float32), meta,
                          {"shard": 0, "worker": "a"})
    stamp = _files(folder.root)
    # A second attempt (a rerun task, a worker left from a stopped client) loses.
    second = folder.commit(0, np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32),
                           meta, {"shard": 0, "worker": "b"})
    assert first["committed_here"] and not second["committed_here"]
    assert second["worker"] == "a" and _files(folder.root) == stamp
    np.testing.assert_array_equal(np.load(folder.image(0)), 1.0)


@pytest.mark.parametrize("change, error, match", [
    (lambda t: {**t, "row": list(range(N))}, ValueError, "column 'row'"),
    (lambda t: {"path": t["image"], "text": t["text"]}, ValueError, "image_column='image'"),
    (lambda t: {**t, "text": list(range(N))}, TypeError, "column 'text' must hold strings"),
    (lambda t: {k: v[:0] for k, v in t.items()}, ValueError, "no rows"),
    (lambda t: list(zip(t["image"], t["text"])), TypeError, "pandas DataFrame, a pyarrow"),
])
def test_bad_tables_are_refused_before_any_work(data, tmp_path, change, error, match):
    table, model, _ = data
    with pytest.raises(error, match=match):
        encode_archive(change(table), _encoder(model), tmp_path / "arch", progress=False)
    assert not (tmp_path / "arch").exists()


def test_n_workers_with_a_client_is_refused(client, data, tmp_path):
    table, model, _ = data
    with pytest.raises(ValueError, match="n_workers sizes the local cluster"):
        encode_archive(table, _encoder(model), tmp_path / "arch", client=client, n_workers=2)
