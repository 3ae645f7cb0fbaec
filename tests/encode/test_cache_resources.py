"""The encoder cache when resources run out or are shared (skgap/encode/_cache.py).

- a read-only cache folder is read without its lock, and says that nothing
  new can be stored -- run as ``nobody`` in a forked child when the tests run
  as root (root ignores permission bits; see tests/unprivileged.py);
- a valid npz of the wrong width, or whose arrays do not fit together, is
  dropped like any damaged shard and its items encoded again;
- a full disk (the shard write monkeypatched to raise ``ENOSPC``) is an
  error in words that says what is stored, and a rerun continues;
- concurrent writers (processes and threads) encode each item once among
  them: claimed keys are skipped and waited for; a dead writer's claim and a
  hung writer's claim are taken over.
"""

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from unprivileged import (  # noqa: E402
    can_write,
    make_read_only,
    remove_folder,
    run_unprivileged,
    shared_folder,
)

from skgap.encode import _cache  # noqa: E402
from skgap.encode._cache import CacheFullError, EmbeddingCache  # noqa: E402

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX locks, fork and permissions")

NS = {"model": "tiny", "precision": "fp32"}
LOAD = f"""
import importlib.util, sys, time, os
import numpy as np
spec = importlib.util.spec_from_file_location("cache", {str(Path(_cache.__file__))!r})
cache = importlib.util.module_from_spec(spec); spec.loader.exec_module(cache)
"""


def _keys(n, start=0):
    return [f"{i:032x}".encode() for i in range(start, start + n)]


def _rows(keys, width=4):
    """The embedding of key ``k`` is ``int(k, 16)`` in every column: checkable anywhere."""
    return np.repeat(np.array([int(k, 16) for k in keys], np.float32)[:, None], width, axis=1)


def _run(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", LOAD + textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.fixture
def shared():
    path = shared_folder()
    yield path
    remove_folder(path)


# -- read-only caches -----------------------------------------------------------


def _read_only_view(root):
    """In the unprivileged child: what a reader of a read-only cache sees and does."""
    assert not can_write(root), "the child can still write: the test would prove nothing"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = EmbeddingCache(root, NS)
        found = cache.lookup("text", _keys(8))
        n_stored = cache.store("text", _keys(3, start=100), _rows(_keys(3, start=100)))
        n_encoded = []
        left = cache.encode_once("text", _keys(2, start=200), n_encoded.extend)
    return {
        "read_only": cache.read_only,
        "found": {k: v.tolist() for k, v in found.items()},
        "n_stored": n_stored,
        "encoded": n_encoded,
        "left": left,
        "warnings": [str(w.message) for w in caught],
    }


def test_a_read_only_cache_is_read_without_the_lock_and_stores_nothing(shared):
    """Permissions are real: the reader is a forked child that drops root for nobody."""
    root = shared / "cache"
    writer = EmbeddingCache(root, NS)
    writer.store("text", _keys(5), _rows(_keys(5)))
    writer.store("text", _keys(3, start=5), _rows(_keys(3, start=5)))
    lock = writer.dir / ".lock"
    lock.unlink()  # a cache copied read-only may come without it: reading must not need it
    make_read_only(root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))

    seen = run_unprivileged(_read_only_view, root)

    assert seen["read_only"] is True
    assert seen["found"] == {k: _rows([k])[0].tolist() for k in _keys(8)}
    assert seen["n_stored"] == 0
    assert seen["encoded"] == _keys(2, start=200)  # encoded (by the caller), not waited for
    assert seen["left"] == {}
    (note,) = seen["warnings"]
    assert str(writer.dir) in note and "new ones cannot be stored" in note
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written


def test_a_namespace_folder_that_cannot_be_created_is_an_empty_read_only_cache(shared):
    root = shared / "cache"
    root.mkdir()
    make_read_only(root)

    def view():
        with pytest.warns(RuntimeWarning, match="cannot be written"):
            cache = EmbeddingCache(root, NS)
        return cache.read_only, cache.lookup("image", _keys(2)), cache.store(
            "image", _keys(2), _rows(_keys(2)))

    assert run_unprivileged(view) == (True, {}, 0)


# -- shards of the wrong shape ----------------------------------------------------


def _foreign_shard(folder, keys, emb):
    path = folder / "f00d.npz"
    np.savez(path, keys=np.asarray(keys, dtype="S32"), emb=emb)
    return path


def test_a_valid_npz_of_the_wrong_width_is_dropped_like_a_damaged_shard(tmp_path):
    cache = EmbeddingCache(tmp_path, NS)
    cache.store("text", _keys(5), _rows(_keys(5)))
    folder = cache.dir / "text"
    shard = _foreign_shard(folder, _keys(5, start=5), _rows(_keys(5, start=5), width=3))

    with pytest.warns(RuntimeWarning, match=r"removing cache shard .*f00d.npz of 3-dim "
                                            r"embeddings \(this cache holds 4-dim"):
        found = EmbeddingCache(tmp_path, NS).lookup("text", _keys(10))
    assert sorted(found) == _keys(5)
    assert not shard.exists()
    again = EmbeddingCache(tmp_path, NS)
    assert again.store("text", _keys(5, start=5), _rows(_keys(5, start=5))) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = EmbeddingCache(tmp_path, NS).lookup("text", _keys(10))
    assert {k: v.tolist() for k, v in found.items()} == {
        k: _rows([k])[0].tolist() for k in _keys(10)
    }


def test_a_cache_without_a_width_record_trusts_the_width_of_most_rows(tmp_path):
    cache = EmbeddingCache(tmp_path, NS)
    cache.store("text", _keys(6), _rows(_keys(6)))
    (cache.dir / "widths.json").unlink()  # as a cache written before widths were recorded
    _foreign_shard(cache.dir / "text", _keys(2, start=6), _rows(_keys(2, start=6), width=7))
    with pytest.warns(RuntimeWarning, match="of 7-dim embeddings"):
        found = EmbeddingCache(tmp_path, NS).lookup("text", _keys(8))
    assert sorted(found) == _keys(6)


@pytest.mark.parametrize("arrays", [
    {"keys": np.asarray(_keys(3), dtype="S32"), "emb": np.ones((2, 4), np.float32)},
    {"keys": np.asarray(_keys(3), dtype="S32"), "emb": np.ones(3, np.float32)},
    {"keys": np.asarray(_keys(3), dtype="S32"), "emb": np.ones((3, 4), np.float64)},
    {"keys": np.arange(3), "emb": np.ones((3, 4), np.float32)},
    {"keys": np.asarray(_keys(3), dtype="S32")},
], ids=["rows-differ", "1-D", "float64", "int-keys", "no-emb"])
def test_a_readable_npz_that_is_not_a_shard_is_dropped(tmp_path, arrays):
    cache = EmbeddingCache(tmp_path, NS)
    cache.store("text", _keys(2, start=10), _rows(_keys(2, start=10)))
    shard = cache.dir / "text" / "bad.npz"
    np.savez(shard, **arrays)
    with pytest.warns(RuntimeWarning, match="removing unreadable cache shard .*bad.npz"):
        found = EmbeddingCache(tmp_path, NS).lookup("text", _keys(3) + _keys(2, start=10))
    assert sorted(found) == _keys(2, start=10)
    assert not shard.exists()


# -- a full disk -------------------------------------------------------------------


def _no_space_after(n_writes, monkeypatch):
    real = _cache._write_arrays
    calls = []

    def write(f, arrays):
        calls.append(len(arrays["keys"]))
        if len(calls) > n_writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, arrays)

    monkeypatch.setattr(_cache, "_write_arrays", write)
    return calls


def test_a_full_disk_says_where_and_how_much_is_stored(tmp_path, monkeypatch):
    """The shard write is monkeypatched to raise ENOSPC (a full disk cannot be made here)."""
    _no_space_after(2, monkeypatch)
    cache = EmbeddingCache(tmp_path, NS)
    cache.store("text", _keys(4), _rows(_keys(4)))
    cache.store("text", _keys(3, start=4), _rows(_keys(3, start=4)))
    with pytest.raises(CacheFullError) as info:
        cache.store("text", _keys(5, start=7), _rows(_keys(5, start=7)))
    exc = info.value
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    assert str(exc).startswith(f"no space left on {cache.dir}; ")
    assert "7 text embeddings are stored, none is lost" in str(exc)
    assert "rerun to continue" in str(exc) and "[Errno" not in str(exc)
    assert not list((cache.dir / "text").glob(".tmp-*"))  # the failed shard left nothing
    monkeypatch.undo()
    assert sorted(EmbeddingCache(tmp_path, NS).lookup("text", _keys(12))) == _keys(7)


# -- concurrent writers --------------------------------------------------------------


def test_four_writer_processes_encode_each_item_once(tmp_path):
    go = tmp_path / "go"
    code = """
        root, seed, go, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        c = cache.EmbeddingCache(root, {"model": "tiny", "precision": "fp32"})
        keys = [f"{i:032x}".encode() for i in np.random.default_rng(seed).permutation(200)]
        encoded = []

        def encode(mine):
            time.sleep(0.002 * len(mine))  # a forward pass
            encoded.extend(mine)
            for i in range(0, len(mine), 8):
                part = mine[i:i + 8]
                rows = np.array([[int(k, 16)] * 4 for k in part], np.float32)
                c.store("text", part, rows)

        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.005)
        found = c.encode_once("text", keys, encode, chunk=16)
        ok = set(found) | set(encoded) == set(keys) and all(
            (v == int(k, 16)).all() for k, v in found.items())
        open(log, "w").write(f"{len(encoded)} {ok}")
        print("done", flush=True)
    """
    logs = [tmp_path / f"log{i}" for i in range(4)]
    procs = [_run(code, tmp_path / "cache", seed, go, log) for seed, log in enumerate(logs)]
    for p in procs:  # all four start together, whatever the machine's load
        assert p.stdout.readline().strip() == b"ready", p.stderr.read()
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert out.strip() == b"done", err
    counts = [log.read_text().split() for log in logs]
    assert all(ok == "True" for _, ok in counts)
    assert sum(int(n) for n, _ in counts) == 200  # not 4 x 200
    assert sum(int(n) > 0 for n, _ in counts) >= 2  # the work was shared, not queued
    keys = [k for shard in (tmp_path / "cache").rglob("text/*.npz")
            for k in np.load(shard)["keys"].tolist()]
    assert len(keys) == len(set(keys)) == 200
    assert not list((tmp_path / "cache").rglob("claims/*.claim"))  # every claim released


def test_the_claim_of_a_killed_writer_is_taken_over(tmp_path):
    proc = _run("""
        c = cache.EmbeddingCache(sys.argv[1], {"model": "tiny", "precision": "fp32"})
        with c._locked():
            c._claim("text", [f"{i:032x}".encode() for i in range(10)])
        print("claimed", flush=True)
        time.sleep(60)
    """, tmp_path)
    assert proc.stdout.readline().strip() == b"claimed", proc.stderr.read()
    cache = EmbeddingCache(tmp_path, NS)
    assert cache._live_claims("text") == set(_keys(10))  # alive: its claim holds
    proc.kill()
    proc.communicate(timeout=10)
    encoded = []
    start = time.perf_counter()
    found = cache.encode_once("text", _keys(10), lambda mine: (
        encoded.extend(mine), cache.store("text", mine, _rows(mine))))
    assert time.perf_counter() - start < 5
    assert found == {} and encoded == _keys(10)
    assert not list(tmp_path.rglob("claims/*"))


def test_a_hung_writer_is_taken_over_after_the_patience(tmp_path):
    proc = _run("""
        c = cache.EmbeddingCache(sys.argv[1], {"model": "tiny", "precision": "fp32"})
        with c._locked():
            c._claim("text", [f"{i:032x}".encode() for i in range(4)])
        print("claimed", flush=True)
        time.sleep(60)
    """, tmp_path)
    try:
        assert proc.stdout.readline().strip() == b"claimed", proc.stderr.read()
        cache = EmbeddingCache(tmp_path, NS)
        cache.patience = 0.3
        encoded = []
        with pytest.warns(RuntimeWarning, match="has stored none of the 4 text items"):
            found = cache.encode_once("text", _keys(6), lambda mine: (
                encoded.extend(mine), cache.store("text", mine, _rows(mine))))
        assert found == {} and encoded == _keys(2, start=4) + _keys(4)  # the free ones first
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_a_writer_waits_for_items_another_is_encoding(tmp_path):
    first = EmbeddingCache(tmp_path, NS)
    with first._locked():
        claim = first._claim("text", _keys(3))
    second = EmbeddingCache(tmp_path, NS)
    encoded = []

    def finish():
        time.sleep(0.3)
        first.store("text", _keys(3), _rows(_keys(3)))
        first._release(claim)

    helper = threading.Thread(target=finish)
    helper.start()
    found = second.encode_once("text", _keys(5), lambda mine: (
        encoded.extend(mine), second.store("text", mine, _rows(mine))))
    helper.join()
    assert encoded == _keys(2, start=3)  # only what nobody else was encoding
    assert {k: v.tolist() for k, v in found.items()} == {
        k: _rows([k])[0].tolist() for k in _keys(3)
    }


# -- the encoder on these caches --------------------------------------------------

TINY = "skgap-test-tiny-resources"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TEXTS = [f"a picture of thing number {i}" for i in range(24)]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A tiny random-weight open_clip encoder (``make(cache_dir)``) and the texts' embeddings."""
    open_clip = pytest.importorskip("open_clip")
    import json

    import torch

    from skgap.encode import OpenCLIPEncoder

    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    folder = shared_folder()  # readable by the unprivileged child too
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        torch.save(open_clip.create_model(TINY).state_dict(), folder / "tiny.pt")
    before = torch.get_num_threads()
    torch.set_num_threads(1)

    def make(cache_dir=None, **kw):
        return OpenCLIPEncoder(model=TINY, pretrained=str(folder / "tiny.pt"), device="cpu",
                               cache_dir=cache_dir, batch_size=4, **kw)

    yield make, make().encode_texts(TEXTS)
    torch.set_num_threads(before)
    remove_folder(folder)


def count_forward(monkeypatch, delay=0.0):
    """Rows each tower's forward pass sees, over every encoder and thread."""
    from skgap.encode._base import BaseEncoder

    seen = {"text": 0, "image": 0}
    lock = threading.Lock()
    real = BaseEncoder._forward

    def forward(self, modality, batch):
        out = real(self, modality, batch)
        time.sleep(delay)  # long enough for the writers to overlap
        with lock:
            seen[modality] += out.shape[0]
        return out

    monkeypatch.setattr(BaseEncoder, "_forward", forward)
    return seen


def test_three_encoder_threads_on_one_cache_run_each_text_once(encoder, tmp_path, monkeypatch):
    make, expected = encoder
    seen = count_forward(monkeypatch, delay=0.02)
    results, errors = [None] * 3, []

    def work(i):
        try:
            results[i] = make(tmp_path).encode_texts(TEXTS[i * 3:] + TEXTS[:i * 3])
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert seen["text"] == len(TEXTS)  # not 3 x 24
    for i, got in enumerate(results):
        np.testing.assert_allclose(got, np.roll(expected, -3 * i, axis=0), atol=1e-5)


def test_the_encoder_re_encodes_a_shard_of_the_wrong_width(encoder, tmp_path, monkeypatch):
    make, expected = encoder
    make(tmp_path).encode_texts(TEXTS[:8])
    (ns,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    keys = []
    for shard in (ns / "text").glob("*.npz"):  # one shard a batch: all become foreign
        keys.extend(np.load(shard)["keys"].tolist())
        shard.unlink()
    keys = np.asarray(keys, dtype="S32")
    np.savez(ns / "text" / "f00d.npz", keys=keys, emb=np.ones((len(keys), 5), np.float32))
    seen = count_forward(monkeypatch)
    with pytest.warns(RuntimeWarning, match="of 5-dim embeddings"):
        got = make(tmp_path).encode_texts(TEXTS[:8])
    np.testing.assert_allclose(got, expected[:8], atol=1e-5)
    assert seen["text"] == 8
    assert not (ns / "text" / "f00d.npz").exists()


def test_the_encoder_on_a_full_disk_says_what_is_stored_and_a_rerun_continues(
    encoder, tmp_path, monkeypatch
):
    """The shard write is monkeypatched to raise ENOSPC after two batches of 4."""
    make, expected = encoder
    _no_space_after(2, monkeypatch)
    with pytest.raises(CacheFullError, match=r"no space left on .*; 8 text embeddings are "
                                             r"stored, none is lost.*rerun to continue"):
        make(tmp_path).encode_texts(TEXTS)
    monkeypatch.undo()
    seen = count_forward(monkeypatch)
    got = make(tmp_path).encode_texts(TEXTS)
    assert seen["text"] == len(TEXTS) - 8  # the stored ones are not encoded again
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not list(tmp_path.rglob("claims/*.claim"))


def test_the_encoder_reads_a_read_only_cache(encoder, shared, monkeypatch):
    """Run as nobody in a forked child (root ignores permission bits)."""
    make, expected = encoder
    make(shared).encode_texts(TEXTS[:6])
    make_read_only(shared)
    seen = count_forward(monkeypatch)

    def encode():
        assert not can_write(shared)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = make(shared).encode_texts(TEXTS[:6])
        return out, seen["text"], [str(w.message) for w in caught]

    got, n_forward, notes = run_unprivileged(encode)
    np.testing.assert_allclose(got, expected[:6], atol=1e-5)
    assert n_forward == 0  # all read back, no model run
    assert any("new ones cannot be stored" in n for n in notes)
