"""Tests of the encode stage (OpenCLIPEncoder), on the CPU, offline, in seconds.

A tiny open_clip architecture (embed_dim 32, 64-pixel images, two layers per
tower) is registered with ``open_clip.add_model_config``; its weights are
random, built under a fixed seed and saved to a file and a ``local-dir:``
folder. Images are made here.
"""

import json
import os
import pickle
import sys
import time

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from skgap.encode import BadItemError, MissingWeightsError, OpenCLIPEncoder  # noqa: E402
from skgap.encode import _cache, _encoder, _loading  # noqa: E402
from skgap.encode._device import (  # noqa: E402
    resolve_device,
    resolve_precision,
    uses_pinned_memory,
)

TINY = "skgap-test-tiny"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
N = 9
TEXTS = [f"a picture of thing number {i}" for i in range(N)]
RANDOM_WEIGHTS = "ignore:.*pretrained=None builds random weights:UserWarning"


pytestmark = pytest.mark.usefixtures("hub_offline", "torch_one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return TINY


@pytest.fixture(scope="module")
def weights(tiny, tmp_path_factory):
    """Weights different from the encoder's seed-0 random init: a file and a folder."""
    folder = tmp_path_factory.mktemp("weights")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        model = open_clip.create_model(tiny)
    state = model.state_dict()
    path = folder / "tiny.pt"
    torch.save(state, path)
    local = folder / "local"
    local.mkdir()
    (local / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}})
    )
    torch.save(state, local / "open_clip_pytorch_model.bin")
    return path, local


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    """PNG files of several sizes and modes (RGB, grayscale, RGBA)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N):
        h, w = 40 + 7 * i, 90 - 5 * i
        channels = (3, 1, 4)[i % 3]
        arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
        img = Image.fromarray(arr[..., 0] if channels == 1 else arr)
        path = folder / f"img{i}.png"
        img.save(path)
        paths.append(str(path))
    return paths


def make(tiny, pretrained, **kw):
    kw.setdefault("device", "cpu")
    weights = None if pretrained is None else str(pretrained)
    return OpenCLIPEncoder(model=tiny, pretrained=weights, **kw)


def count_model_calls(monkeypatch):
    """Count the items each tower of every model the encoder loads sees."""
    calls = {"image": 0, "text": 0, "loads": 0}
    real = _encoder.load_model

    def load_and_count(spec, device):
        loaded = real(spec, device)
        calls["loads"] += 1
        towers = {"image": loaded.model.encode_image, "text": loaded.model.encode_text}

        def counted(kind):
            def call(x, *args, **kwargs):
                calls[kind] += len(x)
                return towers[kind](x, *args, **kwargs)

            return call

        loaded.model.encode_image = counted("image")
        loaded.model.encode_text = counted("text")
        return loaded

    monkeypatch.setattr(_encoder, "load_model", load_and_count)
    return calls


def reference(tiny, weights_path, paths, texts):
    """Embeddings computed with open_clip's own API, the documented way."""
    model, _, preprocess = open_clip.create_model_and_transforms(tiny, pretrained=str(weights_path))
    model.eval()
    tokenizer = open_clip.get_tokenizer(tiny)
    with torch.no_grad():
        images = torch.stack([preprocess(Image.open(p)) for p in paths])
        V = model.encode_image(images, normalize=True).numpy()
        T = model.encode_text(tokenizer(texts), normalize=True).numpy()
    return V, T


# -- output -------------------------------------------------------------------


def test_shape_dtype_and_unit_rows(tiny, weights, image_paths):
    enc = make(tiny, weights[0])
    X = enc.fit_transform(list(zip(image_paths, TEXTS)))
    assert X.shape == (N, 64) and X.dtype == np.float32
    assert enc.modality_dims_ == (32, 32) and enc.embedding_dim_ == 32
    np.testing.assert_allclose(np.linalg.norm(X[:, :32], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(X[:, 32:], axis=1), 1.0, atol=1e-5)
    assert enc.skipped_.size == 0
    names = enc.get_feature_names_out()
    assert names[0] == "image0" and names[32] == "text0" and len(names) == 64
    assert (enc.device_, enc.precision_, enc.weights_) == ("cpu", "fp32", "file")


def test_normalize_false_returns_raw_features(tiny, weights, image_paths):
    raw = make(tiny, weights[0], normalize=False).encode_images(image_paths)
    unit = make(tiny, weights[0]).encode_images(image_paths)
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)
    np.testing.assert_allclose(raw / norms[:, None], unit, atol=1e-6)


def test_batch_size_invariance(tiny, weights, image_paths):
    pairs = list(zip(image_paths, TEXTS))
    X1 = make(tiny, weights[0], batch_size=1).transform(pairs)
    X7 = make(tiny, weights[0], batch_size=7).transform(pairs)
    np.testing.assert_allclose(X1, X7, atol=1e-5)


def test_equals_open_clip_encode_image_and_text(tiny, weights, image_paths):
    V_ref, T_ref = reference(tiny, weights[0], image_paths, TEXTS)
    enc = make(tiny, weights[0], batch_size=4)
    np.testing.assert_allclose(enc.encode_images(image_paths), V_ref, atol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(TEXTS), T_ref, atol=1e-5)


def test_all_input_forms_agree(tiny, weights, image_paths):
    pd = pytest.importorskip("pandas")
    enc = make(tiny, weights[0]).fit()
    expected = enc.transform(list(zip(image_paths, TEXTS)))
    pils = [Image.open(p) for p in image_paths]
    arrays = [np.asarray(im) for im in pils]
    forms = {
        "pil": list(zip(pils, TEXTS)),
        "arrays": list(zip(arrays, TEXTS)),
        "mapping": {"image": image_paths, "text": np.asarray(TEXTS)},
        "frame": pd.DataFrame({"text": TEXTS, "image": image_paths}),
        "two-column frame": pd.DataFrame({"a": image_paths, "b": TEXTS}),
        "object array": np.array(list(zip(image_paths, TEXTS)), dtype=object),
    }
    for name, X in forms.items():
        np.testing.assert_allclose(enc.transform(X), expected, atol=1e-6, err_msg=name)
    stack = np.stack([np.full((20, 30, 3), 17 * i, dtype=np.uint8) for i in range(3)])
    np.testing.assert_allclose(enc.encode_images(stack), enc.encode_images(list(stack)), atol=0)


def test_sixteen_bit_images_are_windowed_to_eight_bits(tiny, weights, tmp_path):
    rng = np.random.default_rng(1)
    deep = rng.integers(1000, 4000, size=(48, 48), dtype=np.uint16)  # 12-bit radiograph range
    path = tmp_path / "xray16.png"
    Image.fromarray(deep).save(path)
    assert Image.open(path).mode.startswith("I")
    windowed = np.round((deep - deep.min()) * (255.0 / (deep.max() - deep.min()))).astype(np.uint8)
    enc = make(tiny, weights[0])
    np.testing.assert_allclose(enc.encode_images([path]), enc.encode_images([windowed]), atol=1e-6)


def test_bad_containers_are_refused(tiny, weights):
    enc = make(tiny, weights[0])
    with pytest.raises(TypeError, match="single str"):
        enc.encode_texts("one caption")
    with pytest.raises(ValueError, match="looks like embeddings"):
        enc.transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not an \\(image, text\\) pair"):
        enc.transform([("a.png", "x", "extra")])
    with pytest.raises(ValueError, match="3 images but 2 texts"):
        enc.transform({"image": ["a", "b", "c"], "text": ["x", "y"]})
    with pytest.raises(ValueError, match="no \\(image, text\\) pairs"):
        enc.transform([])


# -- weights ------------------------------------------------------------------


def test_weights_from_file_and_local_dir_are_identical(tiny, weights, image_paths):
    path, folder = weights
    pairs = list(zip(image_paths, TEXTS))
    from_file = make(tiny, path).fit()
    from_dir = OpenCLIPEncoder(model=f"local-dir:{folder}", device="cpu").fit()
    assert from_dir.weights_ == "local-dir"
    np.testing.assert_allclose(from_file.transform(pairs), from_dir.transform(pairs), atol=1e-6)
    with pytest.warns(UserWarning, match="random weights"):
        random_init = make(tiny, None).fit()
    # The saved weights were really loaded: they differ from the seed-0 init.
    assert not np.allclose(random_init.transform(pairs), from_file.transform(pairs), atol=1e-3)


@pytest.mark.filterwarnings(RANDOM_WEIGHTS)
def test_random_weights_are_reproducible(tiny, image_paths):
    a = make(tiny, None).encode_images(image_paths[:3])
    b = make(tiny, None).encode_images(image_paths[:3])
    np.testing.assert_array_equal(a, b)


def test_pickle_and_clone_leave_the_model_out(tiny, weights, image_paths):
    enc = make(tiny, weights[0], batch_size=5).fit()
    X = enc.transform(list(zip(image_paths, TEXTS)))
    blob = pickle.dumps(enc)
    assert len(blob) < 20_000  # the tiny model alone is ~13 MB of float32
    back = pickle.loads(blob)
    assert getattr(back, "_runtime", None) is None and back.embedding_dim_ == 32
    np.testing.assert_allclose(back.transform(list(zip(image_paths, TEXTS))), X, atol=1e-6)
    twin = clone(enc)
    assert twin.get_params() == enc.get_params() and not hasattr(twin, "embedding_dim_")
    np.testing.assert_allclose(twin.transform(list(zip(image_paths, TEXTS))), X, atol=1e-6)


def test_model_name_errors_are_clear(tiny, weights, tmp_path):
    with pytest.raises(ValueError, match="did you mean 'ViT-B-32'"):
        OpenCLIPEncoder("ViT-B-33").fit()
    with pytest.raises(ValueError, match="neither a pretrained tag .*tags: openai"):
        OpenCLIPEncoder("ViT-B-32", pretrained="opena1").fit()
    with pytest.raises(MissingWeightsError, match="no such weights file"):
        OpenCLIPEncoder(tiny, pretrained=str(tmp_path / "missing.safetensors")).fit()
    with pytest.raises(MissingWeightsError, match="no such folder"):
        OpenCLIPEncoder(f"local-dir:{tmp_path / 'nowhere'}").fit()
    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG}))
    with pytest.raises(MissingWeightsError, match="no weights file"):
        OpenCLIPEncoder(f"local-dir:{empty}").fit()
    with pytest.raises(ValueError, match="leave pretrained=None"):
        OpenCLIPEncoder(f"local-dir:{weights[1]}", pretrained="openai").fit()
    with pytest.raises(ValueError, match="does not fit|size mismatch|Cannot load"):
        OpenCLIPEncoder("ViT-B-32", pretrained=str(weights[0])).fit()  # tiny weights, big model


@pytest.mark.parametrize(
    "model, pretrained, missing",
    [
        ("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", None,
         "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224/open_clip_config.json"),
        ("ViT-B-32", "openai", "timm/vit_base_patch32_clip_224.openai/open_clip_pytorch_model.bin"),
    ],
)
def test_missing_hub_weights_fail_fast_offline(monkeypatch, tmp_path, model, pretrained, missing):
    hub = pytest.importorskip("huggingface_hub.constants")
    # HF_HUB_OFFLINE set after huggingface_hub was imported (its own flag stays
    # False) and an empty hub cache: only skgap's check stands between the
    # request and tens of seconds of network retries.
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(MissingWeightsError) as info:
        OpenCLIPEncoder(model, pretrained=pretrained, device="cpu").fit()
    assert time.perf_counter() - start < 5
    msg = str(info.value)
    assert missing in msg and "not on this machine" in msg and "HF_HUB_OFFLINE is set" in msg
    assert "local-dir:DIR" in msg and f"hf download {missing.rsplit('/', 1)[0]}" in msg
    if pretrained == "openai":
        assert "ViT-B-32-quickgelu" in msg  # these weights need QuickGELU from a bare file
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_open_clip_runtime_error_becomes_missing_weights_error(monkeypatch, tmp_path):
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(_loading, "_offline_requested", lambda: False)  # skip the pre-check
    monkeypatch.setattr(_loading, "hub_reachable", lambda timeout=None: True)  # and the probe
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # open_clip then fails at once
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="could not be downloaded") as info:
        OpenCLIPEncoder("ViT-B-32", pretrained="laion2b_s34b_b79k").fit()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "Set HF_HUB_OFFLINE=1" in str(info.value)


def test_unreachable_hub_fails_after_one_short_probe(monkeypatch, tmp_path):
    import socket

    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    probes = []

    def unreachable(address, timeout=None):
        probes.append((address, timeout))
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    with pytest.raises(MissingWeightsError, match="did not answer within 3 s"):
        OpenCLIPEncoder("ViT-B-32", pretrained="openai", device="cpu").fit()
    assert time.perf_counter() - start < 5
    assert len(probes) == 1 and probes[0][1] == _loading.PROBE_TIMEOUT
    assert probes[0][0][1] == 443


# -- cache --------------------------------------------------------------------


def test_cache_returns_identical_arrays_and_skips_work(
    tiny, weights, image_paths, tmp_path, monkeypatch
):
    pairs = list(zip(image_paths, TEXTS))
    uncached = make(tiny, weights[0]).transform(pairs)
    calls = count_model_calls(monkeypatch)
    cache = tmp_path / "cache"
    first = make(tiny, weights[0], cache_dir=cache, batch_size=4).transform(pairs[:6])
    assert (calls["image"], calls["text"]) == (6, 6)

    rerun = make(tiny, weights[0], cache_dir=cache, batch_size=4)
    np.testing.assert_array_equal(rerun.transform(pairs[:6]), first)
    assert (calls["image"], calls["text"], calls["loads"]) == (6, 6, 1)  # not even loaded
    assert getattr(rerun, "_runtime", None) is None and rerun.modality_dims_ == (32, 32)
    assert rerun.set_output(transform="pandas").transform(pairs[:6]).shape == (6, 64)

    more = make(tiny, weights[0], cache_dir=cache, batch_size=4).transform(pairs)
    assert (calls["image"], calls["text"]) == (9, 9)  # only the 3 new pairs
    np.testing.assert_array_equal(more[:6], first)
    np.testing.assert_allclose(more, uncached, atol=1e-6)

    # A changed file (new mtime) is encoded again.
    changed = tmp_path / "changed.png"
    changed.write_bytes(open(image_paths[0], "rb").read())
    make(tiny, weights[0], cache_dir=cache).encode_images([changed])
    os.utime(changed, ns=(10**18, 10**18))
    make(tiny, weights[0], cache_dir=cache).encode_images([changed, *image_paths])
    assert calls["image"] == 11
    # Other weights: another namespace, encoded afresh.
    OpenCLIPEncoder(f"local-dir:{weights[1]}", device="cpu", cache_dir=cache).encode_texts(TEXTS)
    assert calls["text"] == 18


def test_interrupted_cache_write_leaves_no_corrupt_entry(
    tiny, weights, image_paths, tmp_path, monkeypatch
):
    real_write = _cache._write_arrays
    writes = []

    def dies_on_second_shard(f, arrays):
        writes.append(1)
        if len(writes) == 2:
            f.write(b"PK\x03\x04 half a zip file")
            raise KeyboardInterrupt
        real_write(f, arrays)

    monkeypatch.setattr(_cache, "_write_arrays", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        make(tiny, weights[0], cache_dir=tmp_path, batch_size=4).encode_images(image_paths)
    monkeypatch.setattr(_cache, "_write_arrays", real_write)

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".tmp-")]
    shards = [p for p in files if p.suffix == ".npz"]
    assert len(shards) == 1
    with np.load(shards[0]) as z:
        assert z["keys"].shape == (4,) and z["emb"].shape == (4, 32)

    calls = count_model_calls(monkeypatch)
    V = make(tiny, weights[0], cache_dir=tmp_path, batch_size=4).encode_images(image_paths)
    assert calls["image"] == N - 4  # the finished batch was kept
    np.testing.assert_allclose(V, make(tiny, weights[0]).encode_images(image_paths), atol=1e-6)


def test_leftover_temp_files_and_damaged_shards_are_ignored(tiny, weights, image_paths, tmp_path):
    enc = make(tiny, weights[0], cache_dir=tmp_path)
    V = enc.encode_images(image_paths)
    (folder,) = {p.parent for p in tmp_path.rglob("*.npz")}
    (folder / ".tmp-killed.npz").write_bytes(b"PK\x03\x04 killed mid-write")
    (folder / "000-damaged.npz").write_bytes(b"not a zip")  # read first
    with pytest.warns(RuntimeWarning, match="unreadable cache shard .*000-damaged.npz"):
        again = make(tiny, weights[0], cache_dir=tmp_path).encode_images(image_paths)
    np.testing.assert_array_equal(again, V)


# -- bad items ----------------------------------------------------------------


@pytest.fixture
def with_bad_image(image_paths, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    paths = list(image_paths)
    paths[3] = str(bad)
    return paths


def test_corrupt_image_raises_with_index_and_path(tiny, weights, with_bad_image):
    enc = make(tiny, weights[0], batch_size=2)
    with pytest.raises(BadItemError, match=r"image 3 \('.*corrupt.png'\): cannot be read") as info:
        enc.transform(list(zip(with_bad_image, TEXTS)))
    assert (info.value.modality, info.value.index) == ("image", 3)
    assert "on_error='skip'" in str(info.value)


def test_corrupt_image_skipped_and_recorded_with_decoding_workers(
    tiny, weights, with_bad_image, image_paths
):
    # A worker process decodes; the failure travels back with its position.
    enc = make(tiny, weights[0], batch_size=2, num_workers=1, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1 of 9 pairs"):
        X = enc.transform(list(zip(with_bad_image, TEXTS)))
    assert X.shape == (N - 1, 64)
    np.testing.assert_array_equal(enc.skipped_, [3])
    assert "corrupt.png" in enc.skip_reasons_[0]
    clean = make(tiny, weights[0]).transform(list(zip(image_paths, TEXTS)))
    np.testing.assert_allclose(X, np.delete(clean, 3, axis=0), atol=1e-6)


def test_bad_texts_and_missing_files(tiny, weights, image_paths, tmp_path):
    texts = list(TEXTS)
    texts[2], texts[5] = "   ", None
    with pytest.raises(BadItemError, match="text 2 .*: the text is empty"):
        make(tiny, weights[0]).transform(list(zip(image_paths, texts)))
    paths = list(image_paths)
    paths[7] = str(tmp_path / "gone.png")
    enc = make(tiny, weights[0], on_error="skip", cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning, match="skipped 3 of 9"):
        X = enc.transform(list(zip(paths, texts)))
    assert X.shape[0] == N - 3
    np.testing.assert_array_equal(enc.skipped_, [2, 5, 7])
    assert "must be a str" in enc.skip_reasons_[1] and "no such file" in enc.skip_reasons_[2]
    with pytest.raises(BadItemError, match="image 1 .*uint8"):
        make(tiny, weights[0]).encode_images([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3))])


def test_skipped_rows_keep_dataframe_labels(tiny, weights, with_bad_image):
    pd = pytest.importorskip("pandas")
    labels = [f"p{i}" for i in range(N)]
    frame = pd.DataFrame({"image": with_bad_image, "text": TEXTS}, index=labels)
    enc = make(tiny, weights[0], on_error="skip").set_output(transform="pandas")
    with pytest.warns(UserWarning, match="skipped 1"):
        out = enc.transform(frame)
    assert list(out.index) == [f"p{i}" for i in range(N) if i != 3]
    assert list(out.columns[:2]) == ["image0", "image1"]


# -- device, precision, progress, API ----------------------------------------


def test_device_resolution():
    assert resolve_device("auto", cuda_available=True) == torch.device("cuda")
    assert resolve_device("auto", cuda_available=False) == torch.device("cpu")
    assert resolve_device("cuda:1", cuda_available=True) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")
    assert uses_pinned_memory(torch.device("cuda")) and not uses_pinned_memory(torch.device("cpu"))


def test_precision_resolution():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_precision("auto", cuda, bf16_supported=True) == ("bf16", torch.bfloat16)
    assert resolve_precision("auto", cuda, bf16_supported=False) == ("fp16", torch.float16)
    assert resolve_precision("auto", cpu) == ("fp32", None)
    assert resolve_precision("fp32", cuda, bf16_supported=True) == ("fp32", None)
    assert resolve_precision("fp16", cpu) == ("fp16", torch.float16)
    with pytest.raises(ValueError, match="does not support bfloat16"):
        resolve_precision("bf16", cuda, bf16_supported=False)
    with pytest.raises(ValueError, match="not one of"):
        resolve_precision("int8", cpu)


def test_autocast_path_runs_on_cpu_and_has_its_own_cache(tiny, weights, image_paths, tmp_path):
    pairs = list(zip(image_paths, TEXTS))
    full = make(tiny, weights[0], cache_dir=tmp_path).transform(pairs)
    enc = make(tiny, weights[0], precision="bf16", cache_dir=tmp_path)
    half = enc.transform(pairs)
    assert enc.precision_ == "bf16" and half.dtype == np.float32
    assert not np.array_equal(half, full)  # computed in bf16, not read from the fp32 cache
    cos = np.sum(half[:, :32] * full[:, :32], axis=1)
    assert cos.min() > 0.98
    assert len({p.parent.parent for p in tmp_path.rglob("*.npz")}) == 2


def test_progress_bar_only_on_a_terminal(tiny, weights, image_paths, capsys, monkeypatch):
    make(tiny, weights[0], progress=True).encode_images(image_paths)
    assert "encoding images" not in capsys.readouterr().err  # stderr is not a TTY here
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    make(tiny, weights[0], progress=False).encode_images(image_paths)
    assert "encoding images" not in capsys.readouterr().err
    make(tiny, weights[0], progress=True).encode_images(image_paths)
    assert "encoding images" in capsys.readouterr().err


def test_scikit_learn_api(tiny, weights):
    from sklearn.utils import estimator_checks as checks

    enc = make(tiny, weights[0])
    for check in (
        checks.check_no_attributes_set_in_init,
        checks.check_estimator_repr,
        checks.check_do_not_raise_errors_in_init_or_set_params,
        checks.check_parameters_default_constructible,
        checks.check_valid_tag_types,
    ):
        check("OpenCLIPEncoder", enc)
    assert enc.fit() is enc
    tags = enc.__sklearn_tags__()
    assert not tags.requires_fit and not tags.input_tags.two_d_array
    with pytest.raises(InvalidParameterError, match="batch_size"):
        make(tiny, weights[0], batch_size=0).fit()
    with pytest.raises(InvalidParameterError, match="on_error"):
        make(tiny, weights[0], on_error="ignore").encode_texts(["x"])
    with pytest.raises(ValueError, match="not a torch device"):
        make(tiny, weights[0], device="gpu").fit()
