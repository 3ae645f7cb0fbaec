"""What a researcher sees from the command line: labels where the data has them,
label-free tasks without labels, degenerate tasks named, every task in the figures,
messages in the words of the flags (skgap/cli/_sweep.py, _messages.py, _html.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skgap.cli import main
from skgap.cli._messages import cli_words
from skgap.datasets import make_paired_embeddings


@pytest.fixture(scope="module")
def data():
    X, y = make_paired_embeddings(160, 8, n_classes=3, class_sep=1.0, noise=1.5,
                                  random_state=0)
    return X[:, :8].astype(np.float32), X[:, 8:].astype(np.float32), y


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


SMALL = ["--lams", "0", "1", "--seeds", "2", "--no-plots"]


def test_labels_name_an_array_of_the_embeddings_file(tmp_path, data, capsys):
    V, T, y = data
    np.savez(tmp_path / "e.npz", image=V, text=T, label_ids=y)
    code, out, err = run(["sweep", tmp_path / "e.npz", "--labels", "label_ids", *SMALL,
                          "--json", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["task"] == "multiclass" and doc["n_samples"] == 160


def test_labels_name_a_metadata_column_of_a_clip_retrieval_folder(tmp_path, data, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    V, T, y = data
    root = tmp_path / "arch"
    for sub in ("img_emb", "text_emb", "metadata"):
        (root / sub).mkdir(parents=True)
    for i, rows in enumerate((slice(0, 90), slice(90, 160))):
        np.save(root / "img_emb" / f"img_emb_{i}.npy", V[rows])
        np.save(root / "text_emb" / f"text_emb_{i}.npy", T[rows])
        pq.write_table(pa.table({"caption": [f"c{j}" for j in range(160)][rows],
                                 "label": y[rows].tolist()}),
                       root / "metadata" / f"metadata_{i}.parquet")
    code, out, err = run(["sweep", root, "--labels", "label", *SMALL, "--json",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert json.loads(out)["task"] == "multiclass"
    code, _, err = run(["sweep", root, *SMALL, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "try --labels label" in err


def test_missing_labels_name_the_array_the_file_holds(tmp_path, data, capsys):
    V, T, y = data
    np.savez(tmp_path / "e.npz", image=V, text=T, label_ids=y)
    code, _, err = run(["sweep", tmp_path / "e.npz", *SMALL, "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert "try --labels label_ids" in err and "--tasks retrieval" in err
    code, _, err = run(["sweep", tmp_path / "e.npz", "--labels", "label_id", *SMALL,
                        "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert "--labels label_id: no array or column of that name" in err
    assert "'label_ids'" in err


def test_retrieval_runs_without_labels_and_a_class_name_text_block_is_named(
        tmp_path, data, capsys):
    V, T, y = data
    np.save(tmp_path / "pairs.npy", np.stack([V, T]))
    code, out, err = run(["sweep", tmp_path / "pairs.npy", "--tasks", "retrieval", *SMALL,
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "no labels" in out and "not a finding" not in out
    names = np.random.RandomState(0).normal(size=(3, 8)).astype(np.float32)
    np.savez(tmp_path / "names.npz", image=V, text=names[y], labels=y)
    code, out, err = run(["sweep", tmp_path / "names.npz", "--tasks", "image,retrieval",
                          *SMALL, "--out", tmp_path / "o2"], capsys)
    assert code == 0, err
    assert "degenerate: 3 distinct texts for 160 pairs" in err
    assert err.count("degenerate: 3 distinct texts") == 1
    assert "\nimage→text R@1: not a finding (degenerate: 3 distinct texts for 160" in out
    assert "R@1: no lambda beats" not in out and "R@1: best lambda" not in out
    doc = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert {d["task"] for d in doc["degenerate"]} == {"retrieval"}


def test_sweep_draws_every_task_and_writes_the_report(tmp_path, data, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    V, T, y = data
    np.savez(tmp_path / "e.npz", image=V, text=T, labels=y)
    code, out, err = run(["sweep", tmp_path / "e.npz", "--tasks", "image,zeroshot,clustering",
                          "--lams", "0", "1", "--seeds", "2", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    for name in ("tasks.png", "report.html", "cones.png", "sweep.png"):
        assert (tmp_path / "o" / name).is_file()
    page = (tmp_path / "o" / "report.html").read_text()
    for title in ("image-only probe", "zero-shot", "clustering"):
        assert f">{title}</h3>" in page
    assert "skgap sweep" in page and "class balance" in page and "0: " in page


def test_report_html_and_a_closed_pipe(tmp_path, data, capsys):
    pytest.importorskip("jinja2")
    V, T, _ = data
    np.savez(tmp_path / "e.npz", image=V, text=T)
    code, out, err = run(["report", tmp_path / "e.npz", "--html", tmp_path / "r.html"], capsys)
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert "Cone statistics" in page and "gap_norm" in page
    # A reader that stops early (skgap report X | head -1) ends the command quietly.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        f"{sys.executable} -m skgap report {tmp_path / 'e.npz'} | head -1",
        shell=True, capture_output=True, text=True, env=env, check=False,
    )
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == ""


def test_library_advice_is_said_in_flags():
    assert cli_words("pass image_key= / text_key= to choose others") == (
        "pass --image-key / --text-key to choose others")
    assert cli_words("or pass on_error='skip' to leave such pairs out") == (
        "or pass --on-error skip to leave such pairs out")
    assert cli_words("choose one with frame=i (load_image(path, frame=i)) or export") == (
        "choose one with --frame I or export")
    assert cli_words("Score tasks=('image', 'zeroshot', 'clustering').") == (
        "Score --tasks image,zeroshot,clustering.")


def test_a_warning_is_printed_once_on_one_line_without_a_path(tmp_path, data, capsys):
    V, T, y = data
    y = y.copy()
    y[0] = 7  # a class of one row: the splits cannot be stratified, which warns
    np.savez(tmp_path / "e.npz", image=V, text=T, labels=y)
    code, _, err = run(["sweep", tmp_path / "e.npz", "--tasks", "image", *SMALL,
                        "--out", tmp_path / "o"], capsys)
    assert code == 0
    lines = [line for line in err.splitlines() if "cannot stratify" in line]
    assert len(lines) == 1
    assert ".py:" not in err and "UserWarning" not in err
