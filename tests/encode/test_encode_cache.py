"""The encoder's embedding cache under faults and several writers (skgap/encode/_cache.py).

The cache module needs only NumPy; the subprocesses load it from its file, so
that they start in a fraction of a second instead of importing torch.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")
from skgap.encode import _cache  # noqa: E402
from skgap.encode._cache import EmbeddingCache  # noqa: E402

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX locks and signals")

NS = {"model": "tiny", "precision": "fp32"}
LOAD = f"""
import importlib.util, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("cache", {str(Path(_cache.__file__))!r})
cache = importlib.util.module_from_spec(spec); spec.loader.exec_module(cache)
"""


def _keys(n, start=0):
    return [f"{i:032x}".encode() for i in range(start, start + n)]


def _all_keys(root, modality="text"):
    keys = []
    for shard in sorted(Path(root).rglob(f"{modality}/*.npz")):
        with np.load(shard) as z:
            keys.extend(z["keys"].tolist())
    return keys


def _run(code, *args):
    return subprocess.Popen([sys.executable, "-c", LOAD + textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_mid_write_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    proc = _run("""
        c = cache.EmbeddingCache(sys.argv[1], {"model": "tiny", "precision": "fp32"})
        def hang(f, arrays):
            f.write(b"PK\\x03\\x04 half a shard")
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
        cache._write_arrays = hang
        c.store("text", [b"0" * 32], np.ones((1, 4), np.float32))
    """, tmp_path)
    assert proc.stdout.readline().strip() == b"writing", proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert [p.name[:5] for p in (folder / "text").iterdir()] == [".tmp-"]
    start = time.perf_counter()
    cache = EmbeddingCache(tmp_path, NS)  # the killed writer's lock died with it
    assert time.perf_counter() - start < 5
    assert list((folder / "text").iterdir()) == []
    assert cache.lookup("text", [b"0" * 32]) == {}
    cache.store("text", [b"0" * 32], np.ones((1, 4), np.float32))
    assert list(EmbeddingCache(tmp_path, NS).lookup("text", [b"0" * 32])) == [b"0" * 32]


def test_two_concurrent_writers_store_each_item_once(tmp_path):
    go = tmp_path / "go"
    code = """
        root, seed, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        import os
        c = cache.EmbeddingCache(root, {"model": "tiny", "precision": "fp32"})
        rng = np.random.default_rng(seed)
        order = rng.permutation(300)
        while not os.path.exists(go):
            time.sleep(0.005)
        for start in range(0, 300, 7):  # overlapping, differently ordered batches
            idx = order[start:start + 7]
            keys = [f"{i:032x}".encode() for i in idx]
            c.store("text", keys, np.repeat(idx[:, None], 4, axis=1).astype(np.float32))
        print("done", flush=True)
    """
    procs = [_run(code, tmp_path / "cache", seed, go) for seed in (1, 2)]
    time.sleep(0.3)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert out.strip() == b"done", err
    keys = _all_keys(tmp_path / "cache")
    assert len(keys) == len(set(keys)) == 300
    found = EmbeddingCache(tmp_path / "cache", NS).lookup("text", _keys(300))
    assert all(found[k][0] == int(k, 16) for k in found) and len(found) == 300


def test_truncated_shard_is_reported_once_and_replaced(tmp_path):
    cache = EmbeddingCache(tmp_path, NS)
    cache.store("text", _keys(5), np.ones((5, 4), np.float32))
    (shard,) = (p for p in tmp_path.rglob("text/*.npz"))
    shard.write_bytes(shard.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="removing unreadable cache shard"):
        assert EmbeddingCache(tmp_path, NS).lookup("text", _keys(5)) == {}
    assert not shard.exists()
    fresh = EmbeddingCache(tmp_path, NS)
    assert fresh.store("text", _keys(5), 2 * np.ones((5, 4), np.float32)) == 5
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the damage is gone: no warning on later runs
        found = EmbeddingCache(tmp_path, NS).lookup("text", _keys(5))
    assert len(found) == 5 and all((v == 2).all() for v in found.values())


def test_store_leaves_out_keys_already_cached(tmp_path):
    cache = EmbeddingCache(tmp_path, NS)
    assert cache.store("text", _keys(4), np.zeros((4, 3), np.float32)) == 4
    other = EmbeddingCache(tmp_path, NS)  # another process's view
    assert other.store("text", _keys(6, start=2) + _keys(1, start=7), np.ones((7, 3), np.float32)) == 4
    assert sorted(_all_keys(tmp_path)) == _keys(8)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        cache = EmbeddingCache(tmp_path, NS)
        cache.store("image", _keys(2), np.ones((2, 3), np.float32))
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert len(files) == 3  # meta.json, widths.json and the shard
    assert {p.stat().st_mode & 0o777 for p in files} == {mode}
