"""
Encoding images and texts offline, from a local copy of the weights
===================================================================

:class:`~skgap.OpenCLIPEncoder` turns (image, text) pairs into the paired layout
``X = [V | T]`` that every other part of skgap reads. It wraps open_clip and
never downloads weights behind your back: here a small CLIP-style model is
saved as a ``local-dir:`` folder -- a config file and a weights file, the form a
local copy of CLIP, SigLIP or BiomedCLIP takes on a machine without network --
and loaded from there.

The weights are random, so the embeddings mean nothing; their *geometry* is
still telling. Liang et al. (2022) showed that the cone effect is already there
at random initialisation: each tower puts its outputs in a narrow cone of its
own, and the two cones sit apart. Needs the ``torch`` extra.
"""

import json
import os
import tempfile
import time
from pathlib import Path

# Never wait on the network for weights (set this on offline machines).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402

from skgap import ConeStats, OpenCLIPEncoder  # noqa: E402
from skgap.encode import MissingWeightsError  # noqa: E402

small = os.environ.get("SKGAP_EXAMPLE_SMALL") == "1"
workdir = tempfile.TemporaryDirectory()
root = Path(workdir.name)

# %%
# A model as data: a config and a weights file
# --------------------------------------------
# A two-layer CLIP (64-pixel images, 16 text tokens, 32-dimensional
# embeddings), built with random weights and saved as a ``local-dir:`` folder.

model_cfg = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
(root / "tiny-clip.json").write_text(json.dumps(model_cfg))
open_clip.add_model_config(root / "tiny-clip.json")
torch.manual_seed(0)
model = open_clip.create_model("tiny-clip")

local = root / "tiny-clip-local"
local.mkdir()
(local / "open_clip_config.json").write_text(
    json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}})
)
torch.save(model.state_dict(), local / "open_clip_pytorch_model.bin")
print(sorted(p.name for p in local.iterdir()))

# %%
# Encode pairs
# ------------
# Images may be file paths, PIL images or ``uint8`` arrays; texts are strings.
# Here: noisy stripes at a few angles, and a caption naming the angle.

n_pairs = 48 if small else 400
angles = np.random.default_rng(0).choice([0, 45, 90, 135], size=n_pairs)
yy, xx = np.mgrid[0:48, 0:48]
images, texts = [], []
for i, angle in enumerate(angles):
    theta = np.deg2rad(angle)
    stripes = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) / 3.0)
    noise = np.random.default_rng(i).normal(0, 0.3, stripes.shape)
    gray = np.clip(127 + 100 * (stripes + noise), 0, 255).astype(np.uint8)
    images.append(np.repeat(gray[..., None], 3, axis=2))
    texts.append(f"stripes at {angle} degrees, sample {i}")

encoder = OpenCLIPEncoder(f"local-dir:{local}", device="cpu", batch_size=16,
                          cache_dir=root / "cache")
start = time.perf_counter()
X = encoder.fit_transform(list(zip(images, texts)))
first = time.perf_counter() - start
print(f"X: {X.shape} {X.dtype}, blocks {encoder.modality_dims_}, weights from {encoder.weights_!r}")

# %%
# The cone effect at random initialisation
# ----------------------------------------
# Random towers already squeeze their outputs together (R near 1 means every
# embedding points the same way), and the two cones do not coincide.

report = ConeStats(random_state=0).fit(X).report()
for key in ("R_image", "R_text", "gap_norm", "mean_pair_cosine"):
    print(f"{key:>18}: {report[key]:.3f}")

# %%
# The cache
# ---------
# Embeddings are stored under a key made of the model, its weights and each
# item's content, written atomically; a rerun reads them back instead of
# running the model.

start = time.perf_counter()
X_again = encoder.transform(list(zip(images, texts)))
print(f"first encode {first:.2f} s, from the cache {time.perf_counter() - start:.2f} s, "
      f"identical: {np.array_equal(X, X_again)}")

# %%
# Missing weights fail at once, and say what to do
# ------------------------------------------------
# A hub model whose weights are not on this machine raises
# :class:`~skgap.encode.MissingWeightsError` straight away (with
# ``HF_HUB_OFFLINE=1``) instead of retrying the network; its message names the
# weights and how to point ``pretrained`` or ``local-dir:`` at a local copy.

try:
    OpenCLIPEncoder("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224").fit()
except MissingWeightsError as exc:
    print(f"{type(exc).__name__}: {str(exc)[:400]}...")

workdir.cleanup()
