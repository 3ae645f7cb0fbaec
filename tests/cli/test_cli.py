import argparse
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from skgap.cli import main
from skgap.cli._options import lambda_grid
from skgap.datasets import make_paired_embeddings
from skgap.measure._cone_stats import ConeStats


@pytest.fixture(scope="module")
def emb():
    X, y = make_paired_embeddings(200, 8, preset="mimic-clip", noise=4.0, random_state=0)
    return X[:, :8], X[:, 8:], y


@pytest.fixture
def npz(tmp_path, emb):
    V, T, y = emb
    path = tmp_path / "emb.npz"
    np.savez(path, image=V, text=T, labels=y)
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def check_error(argv, capsys, *fragments):
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert err.startswith("skgap ")
    assert "error:" in err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


# -- top level -------------------------------------------------------------------


def test_no_command_prints_help(capsys):
    code, out, _ = run([], capsys)
    assert code == 0
    for command in ("demo", "report", "sweep"):
        assert command in out
    assert "start here" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("skgap ")


@pytest.mark.parametrize("command", ["demo", "report", "sweep"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: skgap {command}" in out
    assert "example" in out


def test_python_dash_m_skgap():
    out = subprocess.run([sys.executable, "-m", "skgap", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: skgap" in out.stdout


# -- report ------------------------------------------------------------------------


def test_report_text_and_json(npz, emb, capsys):
    V, T, _ = emb
    code, out, _ = run(["report", npz], capsys)
    assert code == 0
    assert "200 pairs of 8-d embeddings" in out
    assert "R_image" in out and "gap_norm" in out
    code, out, _ = run(["report", npz, "--json"], capsys)
    doc = json.loads(out)
    want = ConeStats(random_state=0).fit(np.hstack([V, T])).report()
    assert doc["report"]["gap_norm"] == pytest.approx(want["gap_norm"])
    assert doc["report"]["n_samples"] == 200
    assert doc["dim"] == 8


def test_report_reads_every_data_form(tmp_path, emb, capsys):
    V, T, _ = emb
    np.save(tmp_path / "both.npy", np.stack([V, T]))
    np.save(tmp_path / "v.npy", V)
    np.save(tmp_path / "t.npy", T)
    np.save(tmp_path / "v16.npy", V.astype(np.float16))
    np.save(tmp_path / "vint.npy", np.round(V * 100).astype(np.int32))
    outs = []
    for argv in (["both.npy"], ["v.npy", "t.npy"]):
        code, out, _ = run(["report", *[tmp_path / a for a in argv], "--json"], capsys)
        assert code == 0
        outs.append(json.loads(out)["report"])
    assert outs[0] == pytest.approx(outs[1])
    for name in ("v16.npy", "vint.npy"):
        code, _, _ = run(["report", tmp_path / name, tmp_path / "t.npy"], capsys)
        assert code == 0


def _write(tmp_path, name, **arrays):
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, **arrays)
    else:
        np.save(path, arrays["a"])
    return path


def test_report_data_errors(tmp_path, emb, capsys):
    V, T, _ = emb
    missing = tmp_path / "nope.npz"
    check_error(["report", missing], capsys, str(missing), "no such file")
    txt = tmp_path / "emb.txt"
    txt.write_text("1 2 3")
    check_error(["report", txt], capsys, "unknown embeddings format", "'.txt'")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy at all")
    check_error(["report", garbage], capsys, str(garbage), "not a readable NumPy file")
    zipbad = tmp_path / "bad.npz"
    zipbad.write_bytes(b"PK\x03\x04 broken")
    check_error(["report", zipbad], capsys, "not a readable NumPy file")
    p = _write(tmp_path, "keys.npz", image=V, txts=T)
    check_error(["report", p], capsys, "no text embeddings", "found: 'image', 'txts'")
    p = _write(tmp_path, "shape.npy", a=V)
    check_error(["report", p], capsys, "shape (2, n_items, dim)", "(200, 8)")
    nan = V.copy()
    nan[7, 3] = np.nan
    p = _write(tmp_path, "nan.npz", image=nan, text=T)
    check_error(["report", p], capsys, "['image']", "NaN or infinity", "row 7")
    zero = T.copy()
    zero[11] = 0
    p = _write(tmp_path, "zero.npz", image=V, text=zero)
    check_error(["report", p], capsys, "['text']", "all zeros", "row 11")
    p = _write(tmp_path, "rows.npz", image=V, text=T[:150])
    check_error(["report", p], capsys, "200 image rows but 150 text rows")
    p = _write(tmp_path, "width.npz", image=V, text=np.hstack([T, T]))
    check_error(["report", p], capsys, "image width 8 differs from text width 16")
    p = _write(tmp_path, "flat.npz", image=V[:, 0], text=T)
    check_error(["report", p], capsys, "expected a 2-D array", "(200,)")
    p = _write(tmp_path, "one.npz", image=V[:1], text=T[:1])
    check_error(["report", p], capsys, "at least 2 rows")
    p = _write(tmp_path, "str.npz", image=V.astype(str), text=T)
    check_error(["report", p], capsys, "expected real numbers")
    check_error(["report", txt, txt, txt], capsys, "got 3 files")


# -- sweep ---------------------------------------------------------------------------


def test_sweep_writes_its_files(npz, tmp_path, capsys):
    out_dir = tmp_path / "results" / "run1"
    code, out, _ = run(["sweep", npz, "--lams", "0", "0.5", "1", "--seeds", "3",
                        "--out", out_dir], capsys)
    assert code == 0
    for name in ("sweep.csv", "summary.json", "cones.png", "sweep.png"):
        assert (out_dir / name).is_file(), name
    for header in ("change vs lambda 0", "95% CI of change", "verdict", "choice"):
        assert header in out
    assert "<- selected" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["task"] == "binary" and summary["tasks"] == ["fusion"]
    assert [r["lam"] for r in summary["summary"]] == [0.0, 0.5, 1.0]
    (chosen,) = summary["selected"]
    assert chosen["lambda"] in (0.0, 0.5, 1.0)
    # "best" is said only of a lambda that helps beyond noise.
    if chosen["helps"]:
        assert "best lambda:" in out
    else:
        assert "no lambda beats lambda 0 beyond noise" in out and "best lambda" not in out
    assert summary["cone_statistics"]["n_samples"] == 200
    lines = (out_dir / "sweep.csv").read_text().splitlines()
    assert lines[0] == "task,metric,lam,seed,score,gap_norm,R_image,R_text,n_train,n_test"
    assert len(lines) == 1 + 3 * 3


def test_sweep_several_tasks_negative_lambdas_and_the_paper_probe(npz, tmp_path, capsys):
    code, out, err = run(["sweep", npz, "--lams", "-0.5:0:2", "1", "--seeds", "2",
                          "--tasks", "fusion,retrieval,text_to_image", "--probe", "paper",
                          "--no-plots", "--json", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["probe"] == "paper"
    got = {(r["task"], r["metric"]) for r in doc["selected"]}
    assert ("fusion", "auc") in got and ("retrieval", "i2t_R@1") in got
    assert ("text_to_image", "accuracy") in got
    assert sorted({r["lam"] for r in doc["summary"]}) == [-0.5, 0.0, 1.0]


def test_sweep_warns_of_label_leakage(tmp_path, emb, capsys):
    V, T, y = emb
    T = np.where(y[:, None] == 1, 1.0, -1.0) * np.ones_like(T)  # one "caption" per class
    data = tmp_path / "leak.npz"
    np.savez(data, image=V, text=T, labels=y)
    code, out, err = run(["sweep", data, "--lams", "0", "1", "--seeds", "2", "--no-plots",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0
    assert "label leakage" in err and "--tasks image,zeroshot,clustering" in err
    # One message, once, in the words of the command line.
    assert err.count("label leakage") == 1 and "tasks=(" not in err
    assert "copies the label" in err


def test_sweep_json_and_no_plots(npz, tmp_path, capsys):
    code, out, _ = run(["sweep", npz, "--lams", "0:1:3", "--seeds", "1", "--no-plots",
                        "--json", "--out", tmp_path / "o"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert [r["lam"] for r in doc["summary"]] == [0.0, 0.5, 1.0]
    assert not (tmp_path / "o" / "cones.png").exists()
    assert (tmp_path / "o" / "summary.json").is_file()


def test_sweep_progress_bar_goes_to_stderr(npz, tmp_path, capsys):
    code, out, err = run(["sweep", npz, "--lams", "0", "1", "--seeds", "1", "--no-plots",
                          "--progress", "--out", tmp_path / "o"], capsys)
    assert code == 0
    assert "gap sweep" in err and "gap sweep" not in out


def test_sweep_without_matplotlib_still_writes_the_tables(npz, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    code, out, _ = run(["sweep", npz, "--lams", "0", "1", "--seeds", "1",
                        "--out", tmp_path / "o"], capsys)
    assert code == 0
    assert "skgap[plot]" in out
    assert (tmp_path / "o" / "sweep.csv").is_file()
    assert not (tmp_path / "o" / "sweep.png").exists()


def test_sweep_label_sources(tmp_path, emb, capsys):
    V, T, y = emb
    data = tmp_path / "emb.npz"
    np.savez(data, image=V, text=T)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "y.npz", labels=y)
    rows = ["id,finding,other"] + [f"{i},{'yes' if v else 'no'},{i % 3}" for i, v in enumerate(y)]
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "one.csv").write_text("label\n" + "\n".join(map(str, y)) + "\n")
    results = []
    for labels in ("y.npy", "y.npz", "meta.csv:finding", "one.csv"):
        code, out, err = run(["sweep", data, "--labels", tmp_path / labels, "--lams", "0", "1",
                              "--seeds", "1", "--no-plots", "--json",
                              "--out", tmp_path / "o"], capsys)
        assert code == 0, err
        results.append(json.loads(out)["summary"][0]["mean"])
    assert results == pytest.approx([results[0]] * 4)
    # Several CSV columns make a multi-label target; other gives a multi-class one.
    (tmp_path / "ml.csv").write_text(
        "a,b\n" + "\n".join(f"{v},{1 - v if i % 2 else v}" for i, v in enumerate(y)) + "\n"
    )
    code, out, err = run(["sweep", data, "--labels", f"{tmp_path / 'ml.csv'}:a,b", "--lams", "0",
                          "--seeds", "1", "--no-plots", "--json", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert json.loads(out)["task"] == "multilabel"
    code, out, err = run(["sweep", data, "--labels", f"{tmp_path / 'meta.csv'}:other",
                          "--task", "multiclass", "--lams", "0", "--seeds", "1", "--no-plots",
                          "--json", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert json.loads(out)["task"] == "multiclass"


def test_sweep_label_errors(tmp_path, emb, capsys):
    V, T, y = emb
    data = tmp_path / "emb.npz"
    np.savez(data, image=V, text=T)
    base = ["sweep", data, "--lams", "0", "--seeds", "1", "--no-plots", "--out", tmp_path / "o"]
    check_error(base, capsys, "no labels", "--labels")
    np.save(tmp_path / "short.npy", y[:50])
    check_error(base + ["--labels", tmp_path / "short.npy"], capsys,
                "short.npy", "50 labels for 200 embedding rows")
    np.save(tmp_path / "nan.npy", np.where(np.arange(200) == 4, np.nan, y))
    check_error(base + ["--labels", tmp_path / "nan.npy"], capsys, "missing (NaN) label",
                "row 4")
    np.save(tmp_path / "cube.npy", np.zeros((200, 2, 2)))
    check_error(base + ["--labels", tmp_path / "cube.npy"], capsys, "1-D", "(200, 2, 2)")
    np.savez(tmp_path / "nolabels.npz", y=y)
    check_error(base + ["--labels", tmp_path / "nolabels.npz"], capsys, "no array 'labels'")
    np.save(tmp_path / "y.npy", y)
    check_error(base + ["--labels", tmp_path / "y.npy", "--task", "multiclass"], capsys,
                "y.npy", "task='multiclass'", "2 distinct classes")
    check_error(base + ["--labels", tmp_path / "y.npy", "--task", "multilabel"], capsys,
                "indicator matrix")
    np.save(tmp_path / "cont.npy", np.linspace(0, 1, 200))
    check_error(base + ["--labels", tmp_path / "cont.npy"], capsys, "continuous")
    np.save(tmp_path / "one.npy", np.ones(200))
    check_error(base + ["--labels", tmp_path / "one.npy"], capsys, "one class only")
    csv = tmp_path / "meta.csv"
    csv.write_text("id,finding\n" + "\n".join(f"{i},{v}" for i, v in enumerate(y)) + "\n")
    check_error(base + ["--labels", csv], capsys, "name the label column", "id, finding")
    check_error(base + ["--labels", f"{csv}:age"], capsys, "no column(s) 'age'")
    check_error(base + ["--labels", f"{tmp_path / 'absent.csv'}:x"], capsys, "no such file")
    (tmp_path / "empty.csv").write_text("")
    check_error(base + ["--labels", tmp_path / "empty.csv"], capsys, "empty CSV file")
    (tmp_path / "header.csv").write_text("finding\n")
    check_error(base + ["--labels", tmp_path / "header.csv"], capsys, "no data rows")
    (tmp_path / "hole2.csv").write_text("id,finding\n0,1\n1,\n")
    check_error(base + ["--labels", f"{tmp_path / 'hole2.csv'}:finding"], capsys,
                "column 'finding': 1 missing label(s) on line 3")
    (tmp_path / "mlbad.csv").write_text("a,b\n" + "\n".join("x,1" for _ in y) + "\n")
    check_error(base + ["--labels", f"{tmp_path / 'mlbad.csv'}:a,b"], capsys, "0/1 numbers")
    (tmp_path / "latin.csv").write_bytes(b"finding\n\xe9\xe9\n")
    check_error(base + ["--labels", tmp_path / "latin.csv"], capsys, "not a UTF-8")


def test_sweep_split_and_output_errors(npz, tmp_path, capsys):
    tiny = tmp_path / "tiny.npz"
    X, _ = make_paired_embeddings(3, 8, random_state=0)
    np.savez(tiny, image=X[:, :8], text=X[:, 8:], labels=[0, 1, 0])
    check_error(["sweep", tiny, "--lams", "0", "--seeds", "1", "--no-plots",
                 "--out", tmp_path / "o"], capsys, "tiny.npz", "minimum of 4")
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    check_error(["sweep", npz, "--out", a_file], capsys, "--out must be a folder")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lams", "0", "2"], "every lambda must lie in [-1, 1]"),
        (["--lams", "-1.5"], "every lambda must lie in [-1, 1]"),
        (["--tasks", "fusion,speed"], "bad --tasks"),
        (["--probe", "deep"], "invalid choice"),
        (["--select", "max"], "invalid choice"),
        (["--lams", "zero"], "bad lambda 'zero'"),
        (["--lams", "0:1"], "bad lambda range '0:1'"),
        (["--seeds", "0"], "positive integer"),
        (["--test-size", "1.5"], "fraction in (0, 1)"),
        (["--task", "regression"], "invalid choice"),
    ],
)
def test_sweep_usage_errors(npz, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(npz), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_lambda_grid():
    np.testing.assert_allclose(lambda_grid(["0:1:5"]), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(lambda_grid(["1", "0.5,0.25", "0.5"]), [0.25, 0.5, 1])
    np.testing.assert_allclose(lambda_grid("0:0.2:3 1"), [0, 0.1, 0.2, 1])
    np.testing.assert_allclose(lambda_grid(["-1:1:5"]), [-1, -0.5, 0, 0.5, 1])
    for bad in (["0:1:x"], ["0:1:0"], ["a"], ["-1.1"], [""], ["0:1:2:3"]):
        with pytest.raises(argparse.ArgumentTypeError):
            lambda_grid(bad)


# -- demo ----------------------------------------------------------------------------


def test_demo_tells_the_story_and_writes_figures(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    code, out, _ = run(["demo", "--out", out_dir, "--n-samples", "200", "--n-features", "16",
                        "--seeds", "2", "--lams", "0", "0.5", "1"], capsys)
    assert code == 0
    for heading in ("1. Measure", "2. Choose lambda", "3. Other tasks"):
        assert heading in out
    # One verdict line per dataset for the probe, and one per task metric.
    assert out.count("early-fusion probe ROC AUC: ") == 2
    assert "k-means ARI" in out and "zero-shot accuracy" in out
    assert "synthetic mimic-clip" in out and "synthetic coco-clip" in out
    for name in ("cones.png", "sweep.png", "tasks.png", "sweep.csv", "tasks.csv"):
        assert (out_dir / name).is_file(), name
    header = (out_dir / "sweep.csv").read_text().splitlines()[0]
    assert header == "dataset,task,metric,lam,seed,score,gap_norm,R_image,R_text,n_train,n_test"
    # Every printed table column has a header: no blank header cell.
    for block in out.split("\n\n"):
        lines = block.splitlines()
        rules = [i for i, ln in enumerate(lines) if ln and set(ln) <= {"-", " "}]
        for i in rules:
            for dashes in re.finditer("-+", lines[i]):
                header = lines[i - 1][dashes.start():dashes.end()]
                assert header.strip(), (lines[i - 1], lines[i])


def test_demo_defaults_to_skgap_demo_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(["demo", "--n-samples", "100", "--n-features", "8", "--seeds", "1",
                      "--lams", "0", "1", "--no-plots"], capsys)
    assert code == 0
    assert (tmp_path / "skgap-demo" / "sweep.csv").is_file()


def test_demo_errors(tmp_path, capsys):
    check_error(["demo", "--n-features", "4", "--out", tmp_path], capsys, "at least 8")
    check_error(["demo", "--n-samples", "20", "--out", tmp_path], capsys, "at least 50")
