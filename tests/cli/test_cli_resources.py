"""The command line on bad labels, bad files and missing resources: one line, exit 2.

Read-only folders are made read-only for real: the command runs in a forked
child that drops root for ``nobody`` (root ignores permission bits; see
tests/unprivileged.py). A full disk is simulated by monkeypatching the write
to raise ``ENOSPC``.
"""

import errno
import os

import numpy as np
import pytest
from unprivileged import can_write, make_read_only, remove_folder, run_unprivileged, shared_folder

from skgap.cli import _outputs, build_parser, main


@pytest.fixture
def shared():
    path = shared_folder()
    yield path
    remove_folder(path)


def _embeddings(folder, n=60):
    rng = np.random.default_rng(0)
    V = rng.normal(size=(n, 8)).astype(np.float32) + 1
    T = rng.normal(size=(n, 8)).astype(np.float32) - 1
    path = folder / "emb.npz"
    np.savez(path, image=V, text=T)
    return path


def _one_line_error(capsys, command):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"skgap {command}: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("spelling", ["NA", "N/A", "null", "None", "?", ""])
def test_sweep_refuses_a_0_1_column_with_missing_cells_instead_of_going_multiclass(
    tmp_path, capsys, spelling
):
    emb = _embeddings(tmp_path)
    cells = ["1", "0"] * 30
    cells[7] = spelling
    (tmp_path / "f.csv").write_text("id,finding\n" + "".join(f"r{i},{c}\n" for i, c in
                                                             enumerate(cells)))
    out = tmp_path / "out"
    status = main(["sweep", str(emb), "--labels", f"{tmp_path / 'f.csv'}:finding",
                   "--out", str(out), "--seeds", "2"])
    assert status == 2
    line = _one_line_error(capsys, "sweep")
    assert "column 'finding': 1 missing label(s) on line 9" in line
    assert not out.exists()  # refused before any work


def test_report_of_an_empty_torch_file_is_one_line(tmp_path, capsys):
    (tmp_path / "empty.pt").write_bytes(b"")
    assert main(["report", str(tmp_path / "empty.pt")]) == 2
    assert "empty.pt: empty file (0 bytes)" in _one_line_error(capsys, "report")


def _sweep_into(emb, labels, out):
    """In the unprivileged child: the exit status and what stderr got."""
    import contextlib
    import io

    assert not can_write(out), "the child can still write: the test would prove nothing"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["sweep", str(emb), "--labels", str(labels), "--out", str(out),
                       "--seeds", "2"])
    return status, err.getvalue()


def test_a_read_only_out_folder_is_one_line_before_any_work(shared):
    """Run as nobody in a forked child: the folder exists and is read-only to that user."""
    emb = _embeddings(shared)
    np.save(shared / "y.npy", np.arange(60) % 2)
    out = shared / "out"
    out.mkdir()
    make_read_only(out)
    build_parser()  # import every command here: the child may not read the interpreter's files

    status, err = run_unprivileged(_sweep_into, emb, shared / "y.npy", out)

    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == (f"skgap sweep: error: {out}: cannot write to the output folder "
                        "(permission denied; it is read-only for this user).")
    assert list(out.iterdir()) == []


def test_prepare_out_dir_probes_by_writing(tmp_path, monkeypatch):
    """The probe's file creation is monkeypatched to fail as a read-only mount would."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_outputs.tempfile, "TemporaryFile", refuse)
    with pytest.raises(_outputs.DataError, match="cannot write to the output folder "
                                                 r"\(read-only file system\)"):
        _outputs.prepare_out_dir(tmp_path / "new")


def test_a_full_disk_while_writing_results_is_one_line(tmp_path, capsys, monkeypatch):
    """``open`` in skgap/cli/_outputs.py is monkeypatched to raise ENOSPC for the CSV."""
    emb = _embeddings(tmp_path)
    np.save(tmp_path / "y.npy", np.arange(60) % 2)

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_outputs, "open", full, raising=False)
    status = main(["sweep", str(emb), "--labels", str(tmp_path / "y.npy"),
                   "--out", str(tmp_path / "out"), "--seeds", "2"])
    assert status == 2
    line = _one_line_error(capsys, "sweep")
    assert line.endswith("sweep.csv: cannot be written (no space left on the device).")


def _encode_into(table, out):
    import contextlib
    import io

    assert not can_write(out.parent)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["encode", "--images", str(table), "--texts", "caption",
                       "--out", str(out)])
    return status, err.getvalue()


@pytest.mark.skipif(os.name != "posix", reason="fork and permissions")
def test_encode_refuses_a_read_only_out_folder_before_loading_a_model(shared):
    """Run as nobody in a forked child; no model is loaded, so none is needed."""
    (shared / "pairs.csv").write_text("image,caption\na.png,a cat\n")
    out_dir = shared / "out"
    out_dir.mkdir()
    make_read_only(out_dir)
    build_parser()
    status, err = run_unprivileged(_encode_into, shared / "pairs.csv", out_dir / "emb.npz")
    assert status == 2, err
    assert err.strip() == (f"skgap encode: error: {out_dir}: cannot write to the --out folder "
                           "(permission denied; it is read-only for this user).")
