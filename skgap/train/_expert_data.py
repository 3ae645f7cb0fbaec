"""Inputs of ExpertCLIPTrainer: images, heatmaps and texts to tensors, once.

Images and heatmaps go through one synchronized resize and centre crop to
the model's input size (open_clip's own eval geometry), so every heatmap
stays aligned with its image; then the images are normalised with the
model's mean and standard deviation.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..encode._gaze import SynchronizedTransform, check_heatmap
from ..encode._items import BadItemError, describe, load_image

__all__ = ["PreparedPairs", "prepare_pairs"]


@dataclass
class PreparedPairs:
    """Everything the training loop reads, on the host.

    Attributes
    ----------
    images : torch.Tensor (n, 3, S, S), float32, normalised
    tokens : torch.Tensor (n, context), int64
    heatmaps : torch.Tensor (n_expert, S, S), float32, maximum 1
    expert_rows : ndarray of int
        Row of ``images`` each heatmap belongs to.
    snippet_tokens : torch.Tensor (n_expert, context), int64
    """

    images: torch.Tensor
    tokens: torch.Tensor
    heatmaps: torch.Tensor
    expert_rows: np.ndarray
    snippet_tokens: torch.Tensor


def _as_list(values, name, n):
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence with one entry per image, not a string.")
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but there are {n} images.")
    return values


def _image_size(model):
    size = getattr(model.visual, "image_size", None)
    if size is None:
        raise ValueError("The model's image tower does not state its input size (image_size).")
    size = (size, size) if isinstance(size, int) else tuple(size)
    if size[0] != size[1]:
        raise ValueError(f"Non-square model inputs ({size}) are not supported.")
    return int(size[0])


def _mean_std(model):
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    mean = cfg.get("mean") or getattr(model.visual, "image_mean", None) or OPENAI_DATASET_MEAN
    std = cfg.get("std") or getattr(model.visual, "image_std", None) or OPENAI_DATASET_STD
    return (torch.tensor(mean, dtype=torch.float32)[:, None, None],
            torch.tensor(std, dtype=torch.float32)[:, None, None])


def prepare_pairs(model, tokenizer, images, texts, heatmaps=None, snippets=None):
    """Load, align, normalise and tokenize once; see :class:`PreparedPairs`."""
    from torchvision.transforms import v2

    if isinstance(images, (str, bytes)):
        raise TypeError("images must be a sequence of images, not a single path.")
    images = list(images)
    n = len(images)
    if n < 4:
        raise ValueError(f"Fine-tuning needs at least 4 pairs; got {n}.")
    texts = _as_list(texts, "texts", n)
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"texts[{i}] must be a non-empty string, got {t!r}.")
    heatmaps = [None] * n if heatmaps is None else _as_list(heatmaps, "heatmaps", n)
    if snippets is not None and all(h is None for h in heatmaps):
        raise ValueError("snippets were given without heatmaps; they describe expert pairs.")
    snippets = [None] * n if snippets is None else _as_list(snippets, "snippets", n)
    size = _image_size(model)
    sync = SynchronizedTransform(v2.Compose([
        v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        v2.CenterCrop(size),
    ]))
    mean, std = _mean_std(model)
    X = torch.empty((n, 3, size, size), dtype=torch.float32)
    maps, rows, snippet_texts = [], [], []
    for i, (item, heat) in enumerate(zip(images, heatmaps)):
        try:
            img = load_image(item)
        except (OSError, TypeError, ValueError) as exc:
            raise BadItemError("image", i, describe(item), str(exc)) from exc
        shape = (img.height, img.width)
        if heat is None:
            x, _ = sync(img, np.ones(shape, dtype=np.float32))
        else:
            x, h = sync(img, check_heatmap(heat, shape, name=f"heatmaps[{i}]"))
            peak = float(h.max())
            if not peak > 0:
                raise ValueError(
                    f"heatmaps[{i}] is all zero inside the model's centre crop; its "
                    "fixations lie outside the part of the image the model sees."
                )
            # Divided by its maximum, as eCLIP does, so that the processor sees
            # weights in [0, 1] whatever the fixation durations were.
            maps.append(h / peak)
            rows.append(i)
            snip = snippets[i] if snippets[i] is not None else texts[i]
            if not isinstance(snip, str) or not snip.strip():
                raise ValueError(f"snippets[{i}] must be a non-empty string, got {snip!r}.")
            snippet_texts.append(snip)
        X[i] = (x - mean) / std
    tokens = tokenizer(texts)
    snippet_tokens = tokenizer(snippet_texts) if snippet_texts else tokens[:0]
    heat = torch.stack(maps) if maps else torch.empty((0, size, size))
    return PreparedPairs(X, tokens, heat, np.asarray(rows, dtype=np.int64), snippet_tokens)
