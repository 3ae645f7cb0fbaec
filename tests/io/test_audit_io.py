"""Bad inputs of every public reader and of the commands that read: a table.

Each row is one call and its expected outcome: a clear error (its type and a
pattern naming the problem) or a correct result equal to a known value. A
new public reader, option or file form gets its rows here, so that no bad
input goes back to a silent wrong result or an unclear error (an IndexError,
"not iterable", a traceback from the command line).
"""

import contextlib
import re
import io

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skgap import pair
from skgap.cli import main
from skgap.io import DataFileError, iter_embeddings, load_embeddings, load_labels

rng = np.random.default_rng(0)
V = rng.normal(size=(6, 3)).astype(np.float32)
T = rng.normal(size=(6, 3)).astype(np.float32)


@pytest.fixture
def files(tmp_path):
    """The files the rows name, by short name."""
    f = {"dir": tmp_path}
    np.savez(tmp_path / "good.npz", image=V, text=T)
    f["good"] = tmp_path / "good.npz"
    for name in ("empty.pt", "empty.npz", "empty.h5", "empty.parquet"):
        (tmp_path / name).write_bytes(b"")
        f[name] = tmp_path / name
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    f["junk.pt"] = tmp_path / "junk.pt"
    (tmp_path / "folder.npz").mkdir()
    f["folder.npz"] = tmp_path / "folder.npz"
    (tmp_path / "emb.txt").write_text("1 2 3\n")
    f["emb.txt"] = tmp_path / "emb.txt"
    (tmp_path / "na.csv").write_text("id,finding\na,1\nb,NA\nc,0\nd,?\ne,null\nf,None\n")
    f["na.csv"] = tmp_path / "na.csv"
    (tmp_path / "ok.csv").write_text("id,finding\na,1\nb,0\nc,0\nd,1\ne,1\nf,0\n")
    f["ok.csv"] = tmp_path / "ok.csv"
    (tmp_path / "multi.csv").write_text("id,a,b\nx,1,0\ny,2,1\nz,0,3\n")
    f["multi.csv"] = tmp_path / "multi.csv"
    np.save(tmp_path / "inf.npy", np.array([0.0, 1.0, np.inf, 1.0, 0.0, 1.0]))
    f["inf.npy"] = tmp_path / "inf.npy"
    np.save(tmp_path / "nan.npy", np.array([0.0, np.nan, 1.0, 1.0, 0.0, 1.0]))
    f["nan.npy"] = tmp_path / "nan.npy"
    np.save(tmp_path / "multi.npy", np.array([[0, 1], [1, 2]]))
    f["multi.npy"] = tmp_path / "multi.npy"
    return f


def _cli(argv):
    """``(exit status, stderr)`` of the command line."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    return status, err.getvalue()


PARAM = InvalidParameterError
# (id, call on the files, expected): ("error", type, pattern) | ("equal", value) |
# ("cli", status, pattern of the one stderr line)
ROWS = [
    # load_embeddings: what the path is
    ("emb-None", lambda f: load_embeddings(None), ("error", PARAM, "'path' parameter")),
    ("emb-int", lambda f: load_embeddings(123), ("error", PARAM, "'path' parameter")),
    ("emb-float", lambda f: load_embeddings(1.5), ("error", PARAM, "'path' parameter")),
    ("emb-bytes", lambda f: load_embeddings(b"x.npz"), ("error", PARAM, "'path' parameter")),
    ("emb-list-None", lambda f: load_embeddings([f["good"], None]),
     ("error", TypeError, "the list holds a NoneType")),
    ("emb-no-files", lambda f: load_embeddings([]), ("error", DataFileError, "got 0 files")),
    ("emb-three-files", lambda f: load_embeddings([f["good"]] * 3),
     ("error", DataFileError, "got 3 files")),
    ("emb-missing", lambda f: load_embeddings(f["dir"] / "nope.npz"),
     ("error", DataFileError, "nope.npz: no such file")),
    ("emb-folder-npz", lambda f: load_embeddings(f["folder.npz"]),
     ("error", DataFileError, r"folder.npz: is a folder but not a clip-retrieval archive")),
    ("emb-unknown-suffix", lambda f: load_embeddings(f["emb.txt"]),
     ("error", DataFileError, "unknown embeddings format '.txt'")),
    # load_embeddings: what the file holds
    *[
        (f"emb-{name}", (lambda name: lambda f: load_embeddings(f[name]))(name),
         ("error", DataFileError, rf"{name}: empty file \(0 bytes\)"))
        for name in ("empty.pt", "empty.npz", "empty.h5", "empty.parquet")
    ],
    ("emb-junk-pt", lambda f: load_embeddings(f["junk.pt"]),
     ("error", DataFileError, "junk.pt: not a readable torch file")),
    ("emb-good", lambda f: load_embeddings(f["good"])[0], ("equal", pair(V, T))),
    # load_embeddings: options
    ("emb-mmap-str", lambda f: load_embeddings(f["good"], mmap="yes"),
     ("error", PARAM, "'mmap' parameter")),
    ("emb-uncertain-bad", lambda f: load_embeddings(f["good"], uncertain="maybe"),
     ("error", PARAM, "'uncertain' parameter")),
    ("emb-image-key-int", lambda f: load_embeddings(f["good"], image_key=0),
     ("error", PARAM, "'image_key' parameter")),
    ("emb-labels-na", lambda f: load_embeddings(f["good"], labels=f"{f['na.csv']}:finding"),
     ("error", DataFileError, r"4 missing label\(s\) on lines 3, 5, 6 and 7")),
    ("emb-labels-ok", lambda f: load_embeddings(f["good"], labels=f"{f['ok.csv']}:finding")[1],
     ("equal", np.array([1, 0, 0, 1, 1, 0]))),
    ("emb-labels-na-zero",
     lambda f: load_embeddings(f["good"], labels=f"{f['na.csv']}:finding", uncertain="zero")[1],
     ("equal", np.array([1, 0, 0, 0, 0, 0]))),
    # iter_embeddings
    ("iter-None", lambda f: iter_embeddings(None), ("error", PARAM, "'path' parameter")),
    ("iter-chunk-0", lambda f: iter_embeddings(f["good"], chunk_rows=0),
     ("error", PARAM, "'chunk_rows' parameter")),
    ("iter-good", lambda f: np.concatenate(list(iter_embeddings(f["good"], chunk_rows=4)[2])),
     ("equal", pair(V, T))),
    # load_labels
    ("labels-None", lambda f: load_labels(None), ("error", PARAM, "'source' parameter")),
    ("labels-n-rows-negative", lambda f: load_labels(f["ok.csv"], n_rows=-1),
     ("error", PARAM, "'n_rows' parameter")),
    ("labels-columns-str", lambda f: load_labels(f["ok.csv"], columns="finding"),
     ("error", PARAM, "'columns' parameter")),
    ("labels-na", lambda f: load_labels(f"{f['na.csv']}:finding"),
     ("error", DataFileError, r"column 'finding': 4 missing label\(s\)")),
    ("labels-inf-npy", lambda f: load_labels(f["inf.npy"]),
     ("error", DataFileError, r"1 label\(s\) are infinite in row 2")),
    ("labels-nan-npy", lambda f: load_labels(f["nan.npy"]),
     ("error", DataFileError, r"1 missing \(NaN\) label\(s\) in row 1")),
    ("labels-multi-2-3", lambda f: load_labels(f"{f['multi.csv']}:a,b"),
     ("error", DataFileError, "multi-label columns must hold 0/1; found 2 on line 3")),
    ("labels-multi-npy", lambda f: load_labels(f["multi.npy"]),
     ("error", DataFileError, "multi-label columns must hold 0/1; found 2 in row 1")),
    ("labels-ok", lambda f: load_labels(f"{f['ok.csv']}:finding", 6),
     ("equal", np.array([1, 0, 0, 1, 1, 0]))),
    # the command line: one line on stderr, exit 2
    ("cli-report-empty-pt", lambda f: _cli(["report", f["empty.pt"]]),
     ("cli", 2, r"empty.pt: empty file \(0 bytes\)")),
    ("cli-report-junk-pt", lambda f: _cli(["report", f["junk.pt"]]),
     ("cli", 2, "junk.pt: not a readable torch file")),
    ("cli-sweep-na-labels",
     lambda f: _cli(["sweep", f["good"], "--labels", f"{f['na.csv']}:finding",
                     "--out", f["dir"] / "out"]),
     ("cli", 2, r"4 missing label\(s\)")),
    ("cli-sweep-inf-labels",
     lambda f: _cli(["sweep", f["good"], "--labels", f["inf.npy"], "--out", f["dir"] / "out"]),
     ("cli", 2, "infinite")),
    ("cli-sweep-out-is-file",
     lambda f: _cli(["sweep", f["good"], "--labels", f"{f['ok.csv']}:finding",
                     "--out", f["emb.txt"]]),
     ("cli", 2, "--out must be a folder, but this is a file")),
]


@pytest.mark.parametrize("call, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_audit_row(files, call, expected):
    kind, *spec = expected
    if kind == "error":
        exc_type, pattern = spec
        with pytest.raises(exc_type, match=pattern):
            call(files)
    elif kind == "equal":
        (value,) = spec
        got = call(files)
        assert np.asarray(got).shape == np.asarray(value).shape
        np.testing.assert_array_equal(got, value)
    else:
        status, pattern = spec
        got_status, err = call(files)
        lines = err.strip().splitlines()
        assert got_status == status, err
        assert len(lines) == 1 and "Traceback" not in err, err
        assert re.search(pattern, lines[0]), lines[0]


def test_the_table_names_each_row_once():
    ids = [r[0] for r in ROWS]
    assert len(ids) == len(set(ids))
