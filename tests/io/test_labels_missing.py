"""Labels as spreadsheets write them (skgap/io/_labels.py).

Missing cells come in many spellings (pandas' default ``na_values`` and
``?``); each is read as blank, so one policy holds: without ``uncertain=`` a
missing label is refused with the count and the lines, under a CheXpert
policy it is "not mentioned" (0). Infinite labels and multi-label values
other than 0/1 are refused.
"""

import numpy as np
import pytest

from skgap.io import DataFileError, load_embeddings, load_labels
from skgap.io._labels import MISSING_CELLS

SPELLINGS = ["NA", "N/A", "null", "None", "?", "", "NaN", "nan", "NULL", "#N/A", "<NA>", "n/a",
             " NA "]


def _csv(tmp_path, cells, name="f.csv", column="finding"):
    path = tmp_path / name
    path.write_text(f"id,{column}\n" + "".join(f"r{i},{c}\n" for i, c in enumerate(cells)))
    return path


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_missing_spelling_in_a_0_1_column_is_refused_not_a_class(tmp_path, spelling):
    path = _csv(tmp_path, ["1", "0", spelling, "1", "0"])
    with pytest.raises(DataFileError, match=r"column 'finding': 1 missing label\(s\) on line 4 "
                                            r"\(written .*\); a missing label is never a class"):
        load_labels(f"{path}:finding")


def test_the_message_counts_and_lists_the_rows(tmp_path):
    path = _csv(tmp_path, ["1", "NA", "0", "?", "null", "", "None", "N/A", "1"])
    with pytest.raises(DataFileError) as info:
        load_labels(f"{path}:finding")
    msg = str(info.value)
    assert "6 missing label(s) on lines 3, 5, 6, 7, 8, ... (6 in all)" in msg
    assert "(written '?', 'N/A', 'NA', 'None', 'null', blank)" in msg
    assert "--uncertain" in msg


@pytest.mark.parametrize("policy", ["zero", "one", "ignore"])
def test_under_a_policy_every_missing_spelling_means_blank(tmp_path, policy):
    cells = ["1", "0", "-1", "", "1"]
    blank = load_labels(f"{_csv(tmp_path, cells, 'a.csv')}:finding", uncertain=policy)
    for spelling in ("NA", "null", "?", "None", "N/A"):
        spelled = cells[:3] + [spelling] + cells[4:]
        got = load_labels(f"{_csv(tmp_path, spelled, 'b.csv')}:finding", uncertain=policy)
        np.testing.assert_array_equal(got, blank)
    assert blank[3] == 0  # blank is "not mentioned", a negative, under every policy


def test_classes_that_only_look_like_missing_values_stay_classes(tmp_path):
    # pandas matches its na_values exactly; so does skgap.
    got = load_labels(f"{_csv(tmp_path, ['none', 'n.a.', 'cat', 'none'])}:finding")
    assert got.tolist() == ["none", "n.a.", "cat", "none"]
    assert "none" not in MISSING_CELLS and "None" in MISSING_CELLS


def test_a_text_column_with_missing_cells_is_refused(tmp_path):
    with pytest.raises(DataFileError, match=r"1 missing label\(s\) on line 3 \(written 'NA'\)"):
        load_labels(f"{_csv(tmp_path, ['cat', 'NA', 'dog'])}:finding")


def test_a_clean_0_1_column_reads_as_integers(tmp_path):
    got = load_labels(f"{_csv(tmp_path, ['1', '0', ' 1', '0.0'])}:finding")
    assert got.dtype.kind == "i" and got.tolist() == [1, 0, 1, 0]


def test_infinite_labels_are_refused_in_tables_and_arrays(tmp_path):
    with pytest.raises(DataFileError, match=r"1 label\(s\) are infinite on line 4"):
        load_labels(f"{_csv(tmp_path, ['1', '0', 'inf', '1'])}:finding")
    np.save(tmp_path / "y.npy", np.array([0.0, 1.0, np.inf, -np.inf, 1.0]))
    with pytest.raises(DataFileError, match=r"y.npy: 2 label\(s\) are infinite in rows 2 and 3"):
        load_labels(tmp_path / "y.npy")
    np.savez(tmp_path / "y.npz", labels=np.array([[0.0, 1.0], [1.0, np.inf]]))
    with pytest.raises(DataFileError, match=r"infinite in row 1"):
        load_labels(tmp_path / "y.npz")


def test_nan_and_missing_strings_in_array_files_are_refused_with_their_rows(tmp_path):
    np.save(tmp_path / "f.npy", np.array([0.0, np.nan, 1.0, np.nan]))
    with pytest.raises(DataFileError, match=r"2 missing \(NaN\) label\(s\) in rows 1 and 3"):
        load_labels(tmp_path / "f.npy")
    np.save(tmp_path / "s.npy", np.array(["0", "1", "NA", "1"]))
    with pytest.raises(DataFileError, match=r"1 missing label\(s\) in row 2 \(written 'NA'\)"):
        load_labels(tmp_path / "s.npy")


@pytest.mark.parametrize("value", ["2", "3", "-1", "0.5"])
def test_multi_label_columns_hold_0_and_1_only(tmp_path, value):
    path = tmp_path / "m.csv"
    path.write_text(f"id,a,b\nx,1,0\ny,{value},1\nz,0,1\n")
    with pytest.raises(DataFileError, match=rf"column 'a': multi-label columns must hold 0/1; "
                                            rf"found {float(value):g} on line 3"):
        load_labels(f"{path}:a,b")


def test_multi_label_arrays_hold_0_and_1_only(tmp_path):
    np.save(tmp_path / "m.npy", np.array([[0, 1], [1, 3], [2, 0]]))
    with pytest.raises(DataFileError, match=r"found 2, 3 in rows 1 and 2"):
        load_labels(tmp_path / "m.npy")
    np.save(tmp_path / "ok.npy", np.array([[0, 1], [1, 1], [1, 0]]))
    assert load_labels(tmp_path / "ok.npy").tolist() == [[0, 1], [1, 1], [1, 0]]


def test_multi_label_uncertain_ignore_keeps_its_nan_marks(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,a,b\nx,1,-1\ny,NA,1\nz,0,1\n")
    got = load_labels(f"{path}:a,b", uncertain="ignore")
    assert np.isnan(got[0, 1]) and got[1].tolist() == [0, 1]


def test_load_embeddings_refuses_a_label_column_with_missing_cells(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "e.npz", image=rng.normal(size=(4, 3)), text=rng.normal(size=(4, 3)),
             finding=np.array(["1", "0", "null", "1"]))
    path = _csv(tmp_path, ["1", "0", "?", "1"])
    with pytest.raises(DataFileError, match=r"1 missing label\(s\) on line 4"):
        load_embeddings(tmp_path / "e.npz", labels=f"{path}:finding")
    # An array of the embeddings file holding the labels follows the same policy.
    with pytest.raises(DataFileError,
                       match=r"e.npz: column 'finding': 1 missing label\(s\) in row 2"):
        load_embeddings(tmp_path / "e.npz", labels="finding")
    X, y, _ = load_embeddings(tmp_path / "e.npz", labels="finding", uncertain="zero")
    assert y.tolist() == [1, 0, 0, 1] and X.shape == (4, 6)


def test_parquet_strings_spelling_missing_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"y": ["1", "N/A", "0"]}), tmp_path / "y.parquet")
    with pytest.raises(DataFileError, match=r"1 missing label\(s\) in row 1 \(written 'N/A'\)"):
        load_labels(f"{tmp_path / 'y.parquet'}:y")
