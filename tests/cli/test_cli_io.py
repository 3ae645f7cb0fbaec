"""Every command reads every format through skgap.io (skgap/cli/_io.py, cli/__init__.py)."""

import json

import numpy as np
import pytest

from skgap import ConeStats, pair
from skgap.cli import main


@pytest.fixture
def VT():
    rng = np.random.default_rng(5)
    V = rng.normal(size=(80, 8)).astype(np.float32) + 1
    T = rng.normal(size=(80, 8)).astype(np.float32) - 1
    return V, T


def report_json(argv, capsys):
    assert main(["report", "--json", *map(str, argv)]) == 0
    return json.loads(capsys.readouterr().out)["report"]


def test_report_reads_each_format_to_the_same_statistics(tmp_path, VT, capsys):
    h5py = pytest.importorskip("h5py")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    V, T = VT
    np.savez(tmp_path / "a.npz", vision_emb=V, text_emb=T,
             names=np.array(["x"] * 80, dtype=object))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["v"], f["t"] = V, T
    pq.write_table(pa.table({"img": V.tolist(), "txt": T.tolist()}), tmp_path / "a.parquet")
    ref = ConeStats().fit(pair(V, T)).report()
    got = report_json([tmp_path / "a.npz"], capsys)
    assert got["gap_norm"] == pytest.approx(ref["gap_norm"], rel=1e-6)
    for name in ("a.h5", "a.parquet"):
        keys = ["--image-key", "v", "--text-key", "t"] if name == "a.h5" else []
        got = report_json([tmp_path / name, *keys], capsys)
        assert got["gap_norm"] == pytest.approx(ref["gap_norm"], rel=1e-6)


def test_alias_note_goes_to_stderr(tmp_path, VT, capsys):
    V, T = VT
    np.savez(tmp_path / "a.npz", img_emb=V, text_emb=T)
    assert main(["report", str(tmp_path / "a.npz")]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "'img_emb'" in err and "'text_emb'" in err


def test_report_streams_a_clip_retrieval_folder(tmp_path, VT, capsys):
    V, T = VT
    for sub in ("img_emb", "text_emb"):
        (tmp_path / "arch" / sub).mkdir(parents=True)
    for i, rows in enumerate((slice(0, 30), slice(30, 55), slice(55, 80))):
        np.save(tmp_path / "arch/img_emb" / f"img_emb_{i}.npy", V[rows])
        np.save(tmp_path / "arch/text_emb" / f"text_emb_{i}.npy", T[rows])
    got = report_json([tmp_path / "arch", "--progress"], capsys)
    ref = ConeStats().fit(pair(V, T)).report()
    for key in ("gap_norm", "alignment"):
        assert got[key] == pytest.approx(ref[key], rel=1e-5)


def test_report_of_one_npy_and_one_npz_is_one_line(tmp_path, VT, capsys):
    V, T = VT
    np.save(tmp_path / "V.npy", V)
    np.savez(tmp_path / "good.npz", image=V, text=T)
    assert main(["report", str(tmp_path / "V.npy"), str(tmp_path / "good.npz")]) == 2
    err = capsys.readouterr().err
    assert "good.npz: two files must each hold one array" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_optional_reader_is_a_clear_command_line_error(tmp_path, monkeypatch, capsys):
    import sys

    (tmp_path / "a.h5").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "h5py", None)
    assert main(["report", str(tmp_path / "a.h5")]) == 2
    assert "pip install 'skgap[hdf5]'" in capsys.readouterr().err


def test_sweep_joins_labels_by_id_with_a_chexpert_policy(tmp_path, VT, capsys):
    V, T = VT
    ids = np.array([f"p{i}" for i in range(80)])
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=80)
    y[::10] = -1  # uncertain
    V = V + 0.5 * y[:, None]  # some signal
    np.savez(tmp_path / "e.npz", image=V, text=T, Path=ids)
    order = rng.permutation(80)
    (tmp_path / "chex.csv").write_text("Path;Edema\n" + "".join(f"{ids[i]};{y[i]}\n" for i in order))
    argv = ["sweep", str(tmp_path / "e.npz"), "--labels", f"{tmp_path / 'chex.csv'}:Edema",
            "--id-column", "Path", "--uncertain", "ignore", "--lams", "0", "1", "--seeds", "2",
            "--no-plots", "--out", str(tmp_path / "out"), "--json"]
    assert main(argv) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_samples"] == 72 and summary["task"] == "binary"  # 8 uncertain rows left out
    # U-Zeros keeps every row, the uncertain ones as negatives
    argv_zero = argv[:-3] + ["--out", str(tmp_path / "out0"), "--json"]
    argv_zero[argv_zero.index("ignore")] = "zero"
    assert main(argv_zero) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out0" / "summary.json").read_text())
    assert summary["n_samples"] == 80 and summary["task"] == "binary"


def test_new_options_on_every_data_command(capsys):
    for command in ("report", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "--image-key" in out and "--text-key" in out
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "--uncertain" in capsys.readouterr().out
