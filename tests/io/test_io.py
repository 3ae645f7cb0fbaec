"""skgap.io: every embeddings layout loads to the same X = [V | T], labels join and
follow the CheXpert policies, and every bad file gets a message naming file and key."""

import builtins
import warnings

import numpy as np
import pytest

from skgap import ConeStats, pair
from skgap.io import (
    ClipRetrievalArchive,
    DataFileError,
    KeyChoiceWarning,
    iter_embeddings,
    load_embeddings,
    load_labels,
)


@pytest.fixture
def VT():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(30, 6)).astype(np.float32)
    T = rng.normal(size=(30, 6)).astype(np.float32)
    return V, T


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no alias note unless a test expects one
        return load_embeddings(path, **kw)


def test_npz_default_keys_and_labels(tmp_path, VT):
    V, T = VT
    y = np.arange(30) % 2
    np.savez(tmp_path / "e.npz", image=V, text=T, labels=y)
    X, got_y, dims = _load(tmp_path / "e.npz")
    assert X.dtype == np.float32 and dims == (6, 6)
    np.testing.assert_array_equal(X, pair(V, T))
    np.testing.assert_array_equal(got_y, y)


@pytest.mark.parametrize(
    "image_name, text_name",
    [("vision_emb", "text_emb"), ("img_emb", "text_emb"),
     ("image_embeddings", "text_embeddings"), ("image_features", "text_features")],
)
def test_npz_aliases_with_object_arrays_beside_them(tmp_path, VT, image_name, text_name):
    # The third-party layout of the issue: embeddings plus object arrays of
    # file names and metadata, which cannot be read without pickle.
    V, T = VT
    names = np.array([f"img{i}.png" for i in range(30)], dtype=object)
    meta = np.array([{"i": i} for i in range(30)], dtype=object)
    np.savez(tmp_path / "third.npz", **{image_name: V, text_name: T}, files=names, meta=meta)
    with pytest.warns(KeyChoiceWarning, match=f"'{image_name}'.*'{text_name}'"):
        X, y, _ = load_embeddings(tmp_path / "third.npz")
    np.testing.assert_array_equal(X, pair(V, T))
    assert y is None


def test_named_keys_win_and_missing_keys_are_named(tmp_path, VT):
    V, T = VT
    np.savez(tmp_path / "k.npz", a=V, b=T, image=T, text=V)
    X, _, _ = _load(tmp_path / "k.npz", image_key="a", text_key="b")
    np.testing.assert_array_equal(X, pair(V, T))
    with pytest.raises(DataFileError, match=r"k.npz: no array 'zz' for the texts \(found: 'a', 'b'"):
        load_embeddings(tmp_path / "k.npz", image_key="a", text_key="zz")
    np.savez(tmp_path / "none.npz", foo=V, bar=T)
    with pytest.raises(DataFileError, match="no image embeddings under a known name.*--image-key"):
        load_embeddings(tmp_path / "none.npz")
    np.savez(tmp_path / "obj.npz", image=V, text=np.array([object()] * 30, dtype=object))
    with pytest.raises(DataFileError, match=r"obj.npz\['text'\]: an object array"):
        load_embeddings(tmp_path / "obj.npz")


def test_npy_pair_and_stacked(tmp_path, VT):
    V, T = VT
    np.save(tmp_path / "v.npy", V)
    np.save(tmp_path / "t.npy", T)
    np.save(tmp_path / "both.npy", np.stack([V, T]))
    ref = pair(V, T)
    np.testing.assert_array_equal(_load([tmp_path / "v.npy", tmp_path / "t.npy"])[0], ref)
    np.testing.assert_array_equal(_load(tmp_path / "both.npy")[0], ref)
    np.savez(tmp_path / "good.npz", image=V, text=T)
    with pytest.raises(DataFileError, match="good.npz: two files must each hold one array"):
        load_embeddings([tmp_path / "v.npy", tmp_path / "good.npz"])


def test_float16_becomes_float32_and_float64_stays(tmp_path, VT):
    V, T = VT
    np.savez(tmp_path / "h.npz", image=V.astype(np.float16), text=T.astype(np.float16))
    assert _load(tmp_path / "h.npz")[0].dtype == np.float32
    np.savez(tmp_path / "d.npz", image=V.astype(np.float64), text=T.astype(np.float64))
    assert _load(tmp_path / "d.npz")[0].dtype == np.float64


def test_torch_dict_of_tensors(tmp_path, VT):
    torch = pytest.importorskip("torch")
    V, T = VT
    torch.save({"emb": {"image": torch.from_numpy(V), "text": torch.from_numpy(T)},
                "ids": torch.arange(30)}, tmp_path / "e.pt")
    X, _, _ = _load(tmp_path / "e.pt", image_key="emb/image", text_key="emb/text")
    np.testing.assert_array_equal(X, pair(V, T))
    # Anything but tensors needs pickle: weights_only=True refuses it with a clear message.
    torch.save({"image": V, "text": T, "hook": print}, tmp_path / "code.pt")
    with pytest.raises(DataFileError, match="code.pt: not a readable torch file with weights_only"):
        load_embeddings(tmp_path / "code.pt")


def test_safetensors(tmp_path, VT):
    st = pytest.importorskip("safetensors.numpy")
    V, T = VT
    st.save_file({"image_embeds": V, "text_embeds": T}, str(tmp_path / "e.safetensors"))
    with pytest.warns(KeyChoiceWarning, match="image_embeds"):
        X, _, _ = load_embeddings(tmp_path / "e.safetensors")
    np.testing.assert_array_equal(X, pair(V, T))


def test_hdf5_datasets_found_by_path(tmp_path, VT):
    h5py = pytest.importorskip("h5py")
    V, T = VT
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["emb/image"] = V
        f["emb/text"] = T
        f["names"] = np.array([b"a"] * 30)
    with pytest.warns(KeyChoiceWarning):
        X, _, _ = load_embeddings(tmp_path / "e.h5")
    np.testing.assert_array_equal(X, pair(V, T))


@pytest.mark.parametrize("fixed", [True, False])
@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_parquet_and_arrow_list_columns(tmp_path, VT, fixed, suffix):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    V, T = VT

    def col(A):
        if fixed:
            return pa.FixedSizeListArray.from_arrays(pa.array(A.ravel()), A.shape[1])
        return pa.array(A.tolist(), type=pa.list_(pa.float32()))

    table = pa.table({"path": [f"{i}.png" for i in range(30)], "img_emb": col(V),
                      "text_emb": col(T), "finding": np.arange(30) % 2})
    path = tmp_path / f"e{suffix}"
    (pq.write_table if suffix == ".parquet" else feather.write_feather)(table, path)
    with pytest.warns(KeyChoiceWarning):
        X, y, _ = load_embeddings(path, labels="finding")
    np.testing.assert_allclose(X, pair(V, T))
    np.testing.assert_array_equal(y, np.arange(30) % 2)


def test_parquet_ragged_and_null_rows_are_named(tmp_path, VT):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    V, T = VT
    ragged = V.tolist()
    ragged[4] = ragged[4][:3]
    pq.write_table(pa.table({"image": ragged, "text": T.tolist()}), tmp_path / "r.parquet")
    with pytest.raises(DataFileError, match=r"r.parquet\['image'\]: rows hold lists of different "
                                            r"lengths \(6 in row 0, 3 in row 4\)"):
        load_embeddings(tmp_path / "r.parquet")
    holes = T.tolist()
    holes[2] = None
    pq.write_table(pa.table({"image": V.tolist(), "text": holes}), tmp_path / "n.parquet")
    with pytest.raises(DataFileError, match=r"n.parquet\['text'\]: 1 row\(s\) are null \(first: row 2\)"):
        load_embeddings(tmp_path / "n.parquet")


def _clip_retrieval(folder, blocks, metadata=True):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for sub in ("img_emb", "text_emb", "metadata"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    start = 0
    for i, (V, T) in enumerate(blocks):
        np.save(folder / "img_emb" / f"img_emb_{i}.npy", V.astype(np.float16))
        np.save(folder / "text_emb" / f"text_emb_{i}.npy", T.astype(np.float16))
        if metadata:
            n = V.shape[0]
            pq.write_table(pa.table({"image_path": [f"im{start + j}.jpg" for j in range(n)],
                                     "caption": ["c"] * n,
                                     "label": (np.arange(start, start + n) % 3)}),
                           folder / "metadata" / f"metadata_{i}.parquet")
            start += n


def test_clip_retrieval_folder_loads_and_streams(tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(1)
    blocks = [(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)) + 1) for n in (7, 11, 5)]
    # shard 10 sorts after 2 numerically, not as text
    _clip_retrieval(tmp_path / "arch", blocks)
    for name in ("img_emb", "text_emb"):
        (tmp_path / "arch" / name / f"{name}_2.npy").rename(
            tmp_path / "arch" / name / f"{name}_10.npy")
    (tmp_path / "arch/metadata/metadata_2.parquet").rename(tmp_path / "arch/metadata/metadata_10.parquet")
    ref = pair(np.vstack([b[0] for b in blocks]), np.vstack([b[1] for b in blocks]))
    ref = ref.astype(np.float16).astype(np.float32)
    X, y, dims = _load(tmp_path / "arch", labels="label")
    np.testing.assert_array_equal(X, ref)
    np.testing.assert_array_equal(y, np.arange(23) % 3)
    assert [s.index for s in ClipRetrievalArchive(tmp_path / "arch").shards] == [0, 1, 10]
    n, dims, chunks = iter_embeddings(tmp_path / "arch", chunk_rows=4)
    chunks = list(chunks)
    assert n == 23 and dims == (8, 8) and max(c.shape[0] for c in chunks) == 4
    streamed = ConeStats(random_state=0)
    for c in chunks:
        streamed.partial_fit(c)
    whole = ConeStats(random_state=0).fit(ref)
    np.testing.assert_allclose(streamed.gap_norm_, whole.gap_norm_, rtol=1e-6)
    np.testing.assert_allclose(streamed.mean_resultant_length_, whole.mean_resultant_length_,
                               rtol=1e-6)


def test_clip_retrieval_folder_errors(tmp_path):
    rng = np.random.default_rng(2)
    _clip_retrieval(tmp_path / "a", [(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))] * 2,
                    metadata=False)
    (tmp_path / "a/text_emb/text_emb_1.npy").unlink()
    with pytest.raises(DataFileError, match=r"no text_emb_N.npy for shard\(s\) \[1\]"):
        load_embeddings(tmp_path / "a")
    np.save(tmp_path / "a/text_emb/text_emb_1.npy", rng.normal(size=(5, 3)))
    with pytest.raises(DataFileError, match="shard 1 has 4 image rows .* but 5 text rows"):
        load_embeddings(tmp_path / "a")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataFileError, match="is a folder but not a clip-retrieval archive"):
        load_embeddings(tmp_path / "plain")


def test_bad_files_name_file_key_and_problem(tmp_path, VT):
    V, T = VT
    with pytest.raises(DataFileError, match="nope.h5: no such file"):
        load_embeddings(tmp_path / "nope.h5")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataFileError, match=r"x.csv: unknown embeddings format '.csv'"):
        load_embeddings(tmp_path / "x.csv")
    bad = V.copy()
    bad[3, 1] = np.inf
    np.savez(tmp_path / "inf.npz", image=bad, text=T)
    with pytest.raises(DataFileError, match=r"inf.npz\['image'\]: 1 row\(s\) hold NaN .*row 3"):
        load_embeddings(tmp_path / "inf.npz")
    tiny = np.zeros_like(T)
    tiny[:, 0] = 1e-30  # tiny but not zero: a norm would underflow in float32
    np.savez(tmp_path / "tiny.npz", image=V, text=tiny)
    assert load_embeddings(tmp_path / "tiny.npz")[0].shape == (30, 12)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    pytest.importorskip("torch")
    with pytest.raises(DataFileError, match="junk.pt: not a readable torch file"):
        load_embeddings(tmp_path / "junk.pt")


@pytest.mark.parametrize("suffix, package, extra", [
    (".h5", "h5py", "hdf5"), (".parquet", "pyarrow", "arrow"),
    (".safetensors", "safetensors", "safetensors"),
])
def test_missing_optional_reader_names_the_extra(tmp_path, monkeypatch, suffix, package, extra):
    path = tmp_path / f"e{suffix}"
    path.write_bytes(b"x")
    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ImportError(f"No module named {package!r}", name=package)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    import importlib

    real_im = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda n, *a: no_package(n) if n == package else real_im(n, *a))
    with pytest.raises(ImportError, match=rf"pip install 'skgap\[{extra}\]'"):
        load_embeddings(path)


# -- labels ----------------------------------------------------------------------------


def test_semicolon_and_tab_tables_are_sniffed(tmp_path):
    (tmp_path / "y.csv").write_text("id;finding\n0;1\n1;0\n2;1\n")
    (tmp_path / "y.tsv").write_text("id\tfinding\n0\t1\n1\t0\n2\t1\n")
    for name in ("y.csv", "y.tsv"):
        np.testing.assert_array_equal(load_labels(f"{tmp_path / name}:finding", 3), [1, 0, 1])
    (tmp_path / "one.csv").write_text("finding\nyes\nno\nyes\n")
    np.testing.assert_array_equal(load_labels(tmp_path / "one.csv"), ["yes", "no", "yes"])


CHEX = "Path,Edema,Effusion\np0,1,-1\np1,,0\np2,-1,1\np3,0,\n"


@pytest.mark.parametrize("policy, edema, effusion", [
    ("zero", [1, 0, 0, 0], [0, 0, 1, 0]),
    ("one", [1, 0, 1, 0], [1, 0, 1, 0]),
])
def test_chexpert_policies(tmp_path, policy, edema, effusion):
    (tmp_path / "c.csv").write_text(CHEX)
    y = load_labels(f"{tmp_path / 'c.csv'}:Edema,Effusion", 4, uncertain=policy)
    assert y.dtype.kind == "i"
    np.testing.assert_array_equal(y, np.column_stack([edema, effusion]))


def test_chexpert_ignore_drops_rows_from_X_and_y(tmp_path, VT):
    V, T = VT
    rows = "\n".join(f"p{i},{(-1 if i % 5 == 0 else i % 2)}" for i in range(30))
    (tmp_path / "c.csv").write_text("Path,Edema\n" + rows + "\n")
    np.savez(tmp_path / "e.npz", image=V, text=T)
    X, y, _ = _load(tmp_path / "e.npz", labels=f"{tmp_path / 'c.csv'}:Edema", uncertain="ignore")
    keep = np.arange(30) % 5 != 0
    np.testing.assert_array_equal(X, pair(V, T)[keep])
    np.testing.assert_array_equal(y, (np.arange(30) % 2)[keep])


def test_chexpert_errors(tmp_path):
    (tmp_path / "c.csv").write_text(CHEX)
    with pytest.raises(DataFileError, match=r"column 'Edema': 1 missing label\(s\) on line 3 \(written blank\).*uncertain="):
        load_labels(f"{tmp_path / 'c.csv'}:Edema")
    (tmp_path / "d.csv").write_text("Edema\n1\n2\n")
    with pytest.raises(DataFileError, match="column 'Edema': CheXpert-style labels must be 1, 0, -1"):
        load_labels(tmp_path / "d.csv", uncertain="zero")


def test_join_by_id_column(tmp_path, VT):
    V, T = VT
    ids = np.array([f"s{i:02d}" for i in range(30)])
    np.savez(tmp_path / "e.npz", image=V, text=T, study=ids)
    order = np.random.default_rng(3).permutation(30)
    y = np.arange(30) % 3
    (tmp_path / "y.csv").write_text(
        "study,label\n" + "\n".join(f"{ids[i]},{y[i]}" for i in order) + "\nextra,1\n")
    _, got, _ = _load(tmp_path / "e.npz", labels=f"{tmp_path / 'y.csv'}:label", id_column="study")
    np.testing.assert_array_equal(got, y)
    (tmp_path / "short.csv").write_text("study,label\ns00,1\ns01,0\n")
    with pytest.raises(DataFileError, match="28 of 30 embedding id.*column 'study' .*'s02'"):
        load_embeddings(tmp_path / "e.npz", labels=f"{tmp_path / 'short.csv'}:label",
                        id_column="study")
    (tmp_path / "dup.csv").write_text("study,label\ns00,1\ns00,0\n")
    with pytest.raises(DataFileError, match="repeats 1 id"):
        load_embeddings(tmp_path / "e.npz", labels=f"{tmp_path / 'dup.csv'}:label",
                        id_column="study")


def test_labels_from_parquet_and_npy(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a", "b", "c"], "y": [1, None, -1]}), tmp_path / "y.parquet")
    np.testing.assert_array_equal(load_labels(f"{tmp_path / 'y.parquet'}:y", 3, uncertain="one"),
                                  [1, 0, 1])
    with pytest.raises(DataFileError, match=r"column 'y': 1 missing label\(s\) in row 1"):
        load_labels(f"{tmp_path / 'y.parquet'}:y", 3)
    np.save(tmp_path / "y.npy", np.array([0, 1, 1]))
    np.testing.assert_array_equal(load_labels(tmp_path / "y.npy", 3), [0, 1, 1])
    with pytest.raises(DataFileError, match="y.npy: 3 labels for 4 embedding rows"):
        load_labels(tmp_path / "y.npy", 4)


def test_import_skgap_loads_no_optional_reader():
    import subprocess
    import sys

    optional = ["torch", "open_clip", "h5py", "safetensors", "pydicom", "transformers"]
    code = (
        "import sys, skgap, skgap.io, skgap.cli; "
        f"print([m for m in {optional!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
