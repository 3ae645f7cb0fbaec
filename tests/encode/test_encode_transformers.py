"""TransformersEncoder and the offline recipes of the seed papers' four backbones, each
on a tiny random-weight replica of its architecture built here (no download)."""

import json
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")
from PIL import Image  # noqa: E402
from sklearn.base import clone  # noqa: E402

from skgap.encode import (  # noqa: E402
    MissingWeightsError,
    OpenCLIPEncoder,
    TransformersEncoder,
    load_image,
    save_random_model,
    save_word_tokenizer,
)

TEXTS = ["a normal chest x-ray", "left pleural effusion", "a small dark square",
         "edema", "right lung opacity with effusion and edema"]


pytestmark = pytest.mark.usefixtures("hub_offline", "torch_one_thread")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(30 + 5 * i, 50 - 3 * i, 3), dtype=np.uint8)
            for i in range(len(TEXTS))]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("clip"), "clip")


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("siglip"), "siglip")


@pytest.fixture(scope="module")
def medsiglip_dir(tmp_path_factory):
    # MedSigLIP is a SigLIP at 448 pixels and 64 tokens; the replica keeps the
    # architecture and the longer context at a tiny size.
    return save_random_model(tmp_path_factory.mktemp("medsiglip"), "siglip", image_size=48,
                             max_length=64)


def reference(folder, images, texts, padding):
    """Embeddings computed directly with transformers, independently of skgap."""
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    proc = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():
        pix = proc(images=[Image.fromarray(a) for a in images], return_tensors="pt")
        V = model.get_image_features(pixel_values=pix["pixel_values"])
        enc = tok(texts, padding=padding, truncation=True, max_length=tok.model_max_length,
                  return_tensors="pt")
        T = model.get_text_features(**{k: enc[k] for k in tok.model_input_names})
    V = getattr(V, "pooler_output", V).numpy()
    T = getattr(T, "pooler_output", T).numpy()
    return np.hstack([V / np.linalg.norm(V, axis=1, keepdims=True),
                      T / np.linalg.norm(T, axis=1, keepdims=True)])


def test_clip_replica_matches_transformers(clip_dir, images):
    enc = TransformersEncoder(clip_dir, device="cpu", batch_size=2)
    X = enc.fit_transform(list(zip(images, TEXTS)))
    assert X.dtype == np.float32 and enc.modality_dims_ == (16, 16) and enc.padding_ == "longest"
    np.testing.assert_allclose(X, reference(clip_dir, images, TEXTS, True), atol=2e-5)
    assert enc.weights_ == "local-dir"
    assert list(enc.get_feature_names_out()[[0, 16]]) == ["image0", "text0"]


@pytest.mark.parametrize("which", ["siglip", "medsiglip"])
def test_siglip_pads_to_max_length(which, siglip_dir, medsiglip_dir, images):
    folder = siglip_dir if which == "siglip" else medsiglip_dir
    enc = TransformersEncoder(folder, device="cpu", batch_size=3)
    X = enc.fit_transform({"image": images, "text": TEXTS})
    assert enc.padding_ == "max_length"
    np.testing.assert_allclose(X, reference(folder, images, TEXTS, "max_length"), atol=2e-5)
    # Padding to the longest text gives other embeddings: the convention matters.
    d = enc.embedding_dim_
    longest = reference(folder, images, TEXTS, "longest")[:, d:]
    assert np.abs(X[:, d:] - longest).max() > 1e-3
    # ... and padding="longest" reproduces that other convention exactly.
    T = TransformersEncoder(folder, device="cpu", padding="longest").encode_texts(TEXTS)
    np.testing.assert_allclose(T, longest, atol=2e-5)


def test_cache_batching_and_pickle(clip_dir, images, tmp_path, monkeypatch):
    pairs = list(zip(images, TEXTS))
    enc = TransformersEncoder(clip_dir, device="cpu", cache_dir=tmp_path)
    X = enc.fit_transform(pairs)
    np.testing.assert_allclose(
        TransformersEncoder(clip_dir, device="cpu", batch_size=1).transform(pairs), X, atol=1e-5)
    again = pickle.loads(pickle.dumps(enc))
    assert "_runtime" not in again.__dict__
    monkeypatch.setattr(TransformersEncoder, "_load_backend",
                        lambda self, device: pytest.fail("the cache should answer"))
    np.testing.assert_array_equal(clone(enc).transform(pairs), X)
    # open_clip and transformers caches never mix in one folder
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


def test_dicom_images_go_through_load_image(medsiglip_dir, images):
    pydicom = pytest.importorskip("pydicom")
    path = pydicom.data.get_testdata_file("CT_small.dcm")
    enc = TransformersEncoder(medsiglip_dir, device="cpu")
    from_path = enc.encode_images([path])
    from_pil = enc.encode_images([load_image(path)])
    np.testing.assert_array_equal(from_path, from_pil)
    # the DICOM was windowed, not clipped at 255 by PIL: not a flat white image
    white = enc.encode_images([np.full((128, 128, 3), 255, np.uint8)])
    assert np.abs(from_path - white).max() > 1e-3


def test_missing_models_fail_at_once_with_the_recipe(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="google/medsiglip-448.*local Hugging Face cache"
                                                  ".*hf download google/medsiglip-448"):
        TransformersEncoder("google/medsiglip-448").fit()
    with pytest.raises(MissingWeightsError, match="no such folder"):
        TransformersEncoder(str(tmp_path / "nowhere" / "model")).fit()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="cannot load its model"):
        TransformersEncoder(tmp_path / "half").fit()


def test_a_model_without_feature_heads_is_refused(tmp_path):
    folder = tmp_path / "bert"
    cfg = transformers.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32)
    transformers.BertModel(cfg).save_pretrained(folder)
    save_word_tokenizer(folder, ["a"])
    transformers.CLIPImageProcessor().save_pretrained(folder)
    with pytest.raises(ValueError, match="BertModel has no get_image_features"):
        TransformersEncoder(folder, device="cpu").fit()


def test_biomedclip_recipe_open_clip_with_hf_tokenizer(tmp_path, images):
    """BiomedCLIP: open_clip ViT image tower + a Hugging Face BERT text tower and tokenizer,
    all from local folders named in open_clip_config.json."""
    bert = tmp_path / "pubmedbert"
    words = " ".join(TEXTS).split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words))
    bert.mkdir()
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(str(bert / "vocab.txt"), model_max_length=16).save_pretrained(bert)
    transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=64,
                            max_position_embeddings=32).save_pretrained(bert)
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                       "patch_size": 16},
        "text_cfg": {"hf_model_name": str(bert), "hf_tokenizer_name": str(bert),
                     "hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler",
                     "context_length": 16},
    }
    local = tmp_path / "biomedclip"
    local.mkdir()
    # open_clip reads a local-dir model's HF tokenizer from the folder itself
    transformers.BertTokenizerFast.from_pretrained(bert).save_pretrained(local)
    (local / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": model_cfg,
         "preprocess_cfg": {"mean": [0.48, 0.46, 0.41], "std": [0.27, 0.26, 0.28]}}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        # random towers; pretrained_hf=False: the BERT folder holds a config only
        model = open_clip.create_model(f"local-dir:{local}", pretrained_hf=False)
    torch.save(model.state_dict(), local / "open_clip_pytorch_model.bin")

    enc = OpenCLIPEncoder(f"local-dir:{local}", device="cpu")
    T = enc.encode_texts(TEXTS)
    # independent: the BERT tokenizer's ids (not CLIP's BPE) through the loaded model
    tok = transformers.BertTokenizerFast.from_pretrained(bert)
    ids = tok(TEXTS, padding="max_length", max_length=16, truncation=True,
              return_tensors="pt")["input_ids"]
    model.eval()
    with torch.no_grad():
        ref = model.encode_text(ids).numpy()
    np.testing.assert_allclose(T, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=2e-5)
    X = enc.transform(list(zip(images, TEXTS)))
    assert X.shape == (len(TEXTS), 32) and enc.weights_ == "local-dir"


@pytest.mark.skipif(not os.environ.get("SKGAP_TEST_WEIGHTS"),
                    reason="set SKGAP_TEST_WEIGHTS to a local checkpoint folder to run")
def test_real_weights_smoke():
    """Real weights, when a local checkpoint is given: open_clip local-dir or transformers."""
    folder = os.path.expanduser(os.environ["SKGAP_TEST_WEIGHTS"])
    if os.path.isfile(os.path.join(folder, "open_clip_config.json")):
        enc = OpenCLIPEncoder(f"local-dir:{folder}")
    else:
        enc = TransformersEncoder(folder)
    black = np.zeros((224, 224, 3), np.uint8)
    white = np.full((224, 224, 3), 255, np.uint8)
    X = enc.fit_transform([(black, "a black image"), (white, "a white image")])
    d = enc.embedding_dim_
    assert np.isfinite(X).all()
    np.testing.assert_allclose(np.linalg.norm(X[:, :d], axis=1), 1, atol=1e-4)
    S = X[:, :d] @ X[:, d:].T  # trained models match each colour to its caption
    assert S[0, 0] - S[0, 1] + S[1, 1] - S[1, 0] > 0
