"""Tests of ``skgap encode`` (skgap/cli/_encode.py) with a tiny random-weight model."""

import argparse
import json
import sys

import numpy as np
import pytest

from skgap.cli import _encode
from skgap.cli._io import DataError, load_embeddings

TINY = "skgap-cli-tiny"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def run_cli(argv):
    """``skgap.cli.main`` once 'encode' is registered there; else the same by hand."""
    from skgap import cli

    if "encode" in cli._COMMANDS:
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="skgap")
    _encode.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f"skgap {args.command}: error: {exc}", file=sys.stderr)
        return 2


@pytest.fixture(scope="module")
def model_args(tmp_path_factory):
    open_clip = pytest.importorskip("open_clip")
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("cli-model")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(folder / f"{TINY}.json")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        state = open_clip.create_model(TINY).state_dict()
    torch.save(state, folder / "w.pt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model; threads only wait on a shared machine
    yield ["--model", TINY, "--pretrained", str(folder / "w.pt"), "--device", "cpu"]
    torch.set_num_threads(threads)


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """A folder of 6 PNGs and a CSV naming them (relative paths), with labels."""
    Image = pytest.importorskip("PIL.Image")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    rows = ["file,report,finding"]
    for i in range(6):
        arr = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / "imgs" / f"x{i}.png")
        rows.append(f"x{i}.png,report number {i},{i % 2}")
    (tmp_path / "imgs" / "pairs.csv").write_text("\n".join(rows) + "\n")
    table = "\n".join(
        ["image,caption,finding"]
        + [f"imgs/x{i}.png,report number {i},{i % 2}" for i in range(6)]
    )
    (tmp_path / "table.csv").write_text(table + "\n")
    return tmp_path


def test_csv_layout_writes_what_report_reads(model_args, dataset, capsys):
    out = dataset / "emb.npz"
    argv = ["encode", *model_args, "--images", str(dataset / "table.csv"), "--texts", "caption",
            "--labels", "finding", "--out", str(out), "--batch-size", "4"]
    assert run_cli(argv) == 0
    assert "wrote" in capsys.readouterr().out
    with np.load(out) as z:
        assert z["image"].shape == z["text"].shape == (6, 32)
        assert z["image"].dtype == np.float32
        np.testing.assert_array_equal(z["labels"], [0, 1, 0, 1, 0, 1])
        np.testing.assert_array_equal(z["row"], np.arange(6))
        assert z["skipped"].size == 0
    X, labels = load_embeddings([out])
    assert X.shape == (6, 64) and labels.shape == (6,)

    # The same numbers as the encoder itself, on the same files.
    from skgap.encode import OpenCLIPEncoder

    enc = OpenCLIPEncoder(TINY, pretrained=model_args[3], device="cpu")
    paths = [str(dataset / "imgs" / f"x{i}.png") for i in range(6)]
    expected = enc.transform(list(zip(paths, [f"report number {i}" for i in range(6)])))
    np.testing.assert_allclose(X, expected, atol=1e-6)

    from skgap import cli

    if "report" in cli._COMMANDS:
        assert cli.main(["report", str(out)]) == 0


def test_folder_layout_matches_csv_layout(model_args, dataset):
    a, b = dataset / "a.npz", dataset / "b.npz"
    assert run_cli(["encode", *model_args, "--images", str(dataset / "table.csv"),
                    "--texts", "caption", "--out", str(a)]) == 0
    assert run_cli(["encode", *model_args, "--images", str(dataset / "imgs"), "--image-column",
                    "file", "--texts", f"{dataset / 'imgs' / 'pairs.csv'}:report",
                    "--out", str(b)]) == 0
    with np.load(a) as za, np.load(b) as zb:
        np.testing.assert_allclose(za["image"], zb["image"], atol=1e-6)
        np.testing.assert_allclose(za["text"], zb["text"], atol=1e-6)


def test_bad_image_skipped_or_reported(model_args, dataset, capsys):
    (dataset / "imgs" / "x2.png").write_bytes(b"not a png")
    base = ["encode", *model_args, "--images", str(dataset / "table.csv"), "--texts", "caption"]
    assert run_cli([*base, "--out", str(dataset / "e.npz")]) == 2
    err = capsys.readouterr().err
    assert "image 2" in err and "x2.png" in err and "--on-error skip" in err
    assert "on_error=" not in err, err
    assert "kept in skipped_" not in err, err
    assert not (dataset / "e.npz").exists()

    assert run_cli([*base, "--out", str(dataset / "e.npz"), "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    assert "skipped image 2" in captured.err and "1 skipped" in captured.out
    with np.load(dataset / "e.npz") as z:
        np.testing.assert_array_equal(z["skipped"], [2])
        np.testing.assert_array_equal(z["row"], [0, 1, 3, 4, 5])
        assert z["image"].shape == (5, 32)


def test_cache_dir_makes_a_rerun_free(model_args, dataset, monkeypatch):
    from skgap.encode import _encoder

    argv = ["encode", *model_args, "--images", str(dataset / "table.csv"), "--texts", "caption",
            "--cache-dir", str(dataset / "cache"), "--out", str(dataset / "c.npz")]
    assert run_cli(argv) == 0
    first = np.load(dataset / "c.npz")["image"]

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although everything is cached")

    monkeypatch.setattr(_encoder, "load_model", no_model)
    assert run_cli(argv) == 0
    np.testing.assert_array_equal(np.load(dataset / "c.npz")["image"], first)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--images", "{d}/table.csv", "--texts", "nope"], "no column 'nope' for --texts"),
        (["--images", "{d}/imgs", "--texts", "caption"], "must be TABLE.csv:COLUMN"),
        (["--images", "{d}/missing.csv", "--texts", "caption"], "no such file"),
        (["--images", "{d}/table.csv", "--texts", "caption", "--labels", "zzz"], "no column 'zzz'"),
    ],
)
def test_input_errors_are_one_line(dataset, capsys, extra, message):
    argv = ["encode", *[a.format(d=dataset) for a in extra], "--out", str(dataset / "o.npz")]
    assert run_cli(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_weights_and_missing_torch_are_clear(model_args, dataset, capsys, monkeypatch):
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(dataset / "empty-hub-cache"))
    argv = ["encode", "--model", "ViT-B-32", "--pretrained", "openai", "--images",
            str(dataset / "table.csv"), "--texts", "caption", "--out", str(dataset / "o.npz")]
    assert run_cli(argv) == 2
    assert "not on this machine" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "skgap.encode", None)  # as if torch were not installed
    assert run_cli(argv) == 2
    assert "pip install 'skgap[torch]'" in capsys.readouterr().err


def test_out_naming_a_folder_is_one_line(model_args, dataset, capsys):
    (dataset / "res.npz").mkdir()
    argv = ["encode", *model_args, "--images", str(dataset / "table.csv"), "--texts", "caption",
            "--out", str(dataset / "res.npz")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "res.npz: is a folder" in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def studies(dataset):
    """Six images in three studies (frontal + lateral), one report per study."""
    rows = ["file,study,report,finding"] + [
        f"imgs/x{i}.png,s{i // 2},report of study {i // 2},{(i // 2) % 2}" for i in range(6)
    ]
    (dataset / "studies.csv").write_text("\n".join(rows) + "\n")
    return dataset


def test_group_by_pairs_each_image_with_its_report_or_pools(model_args, studies):
    base = ["encode", *model_args, "--images", str(studies / "studies.csv"), "--texts", "report",
            "--image-column", "file", "--labels", "finding", "--group-by", "study"]
    assert run_cli(base + ["--out", str(studies / "each.npz")]) == 0
    assert run_cli(base + ["--pool", "mean", "--out", str(studies / "pooled.npz")]) == 0
    each, pooled = np.load(studies / "each.npz"), np.load(studies / "pooled.npz")
    assert each["image"].shape == (6, 32) and each["group"].tolist() == [f"s{i // 2}" for i in range(6)]
    assert pooled["group"].tolist() == ["s0", "s1", "s2"]
    assert pooled["n_images"].tolist() == [2, 2, 2] and pooled["labels"].tolist() == [0, 1, 0]
    for g in range(3):  # mean of the two unit views, renormalised; the study's report
        m = each["image"][2 * g] + each["image"][2 * g + 1]
        np.testing.assert_allclose(pooled["image"][g], m / np.linalg.norm(m), atol=1e-6)
        np.testing.assert_allclose(pooled["text"][g], each["text"][2 * g], atol=1e-6)
    X, _ = load_embeddings([studies / "pooled.npz"])
    assert X.shape == (3, 64)


def test_group_by_errors(model_args, studies, capsys):
    base = ["encode", *model_args, "--images", str(studies / "studies.csv"), "--texts", "report",
            "--image-column", "file", "--out", str(studies / "o.npz")]
    assert run_cli(base + ["--pool", "mean"]) == 2
    assert "--pool mean needs --group-by" in capsys.readouterr().err
    text = (studies / "studies.csv").read_text().replace("report of study 1,1\n", "other,1\n", 1)
    (studies / "studies.csv").write_text(text)
    assert run_cli(base + ["--group-by", "study"]) == 2
    assert "study 's1' has different texts" in capsys.readouterr().err


def test_hf_model_and_dicom_through_the_command_line(dataset, capsys):
    pytest.importorskip("transformers")
    pydicom = pytest.importorskip("pydicom")
    from skgap.encode import save_random_model

    save_random_model(dataset / "tiny-siglip", "siglip")
    ct = pydicom.data.get_testdata_file("CT_small.dcm")
    (dataset / "dicom.csv").write_text(f"image,text\n{ct},a ct slice\nimgs/x0.png,a photo\n")
    argv = ["encode", "--hf-model", str(dataset / "tiny-siglip"), "--device", "cpu",
            "--images", str(dataset / "dicom.csv"), "--texts", "text",
            "--out", str(dataset / "hf.npz")]
    assert run_cli(argv) == 0, capsys.readouterr().err
    assert np.load(dataset / "hf.npz")["image"].shape == (2, 32)
    assert run_cli(argv[:2] + ["google/siglip-base-patch16-224"] + argv[3:]) == 2
    assert "local Hugging Face cache" in capsys.readouterr().err


def test_help_says_how_to_dry_run(capsys):
    from skgap import cli

    with pytest.raises(SystemExit):
        cli.main(["encode", "--help"])
    out = capsys.readouterr().out
    assert "save_random_model" in out and "--online" in out


def _two_frame_dicom(path):
    """CT_small.dcm with its one frame twice: a multi-frame DICOM built offline."""
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(path)
    return path


def test_frame_picks_a_frame_of_a_multi_frame_dicom(dataset, capsys):
    pytest.importorskip("transformers")
    from skgap.encode import save_random_model

    save_random_model(dataset / "tiny-clip", "clip")
    movie = _two_frame_dicom(dataset / "movie.dcm")
    (dataset / "frames.csv").write_text(f"image,text\n{movie},a ct slice\nimgs/x0.png,a photo\n")
    argv = ["encode", "--hf-model", str(dataset / "tiny-clip"), "--device", "cpu",
            "--images", str(dataset / "frames.csv"), "--texts", "text",
            "--out", str(dataset / "f.npz")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "--frame I" in err and "frame=" not in err  # the refusal names the flag
    assert run_cli(argv + ["--frame", "1"]) == 0, capsys.readouterr().err
    assert np.load(dataset / "f.npz")["image"].shape[0] == 2
    assert run_cli(argv + ["--frame", "5"]) == 2
    assert "frame 5 does not exist" in capsys.readouterr().err
