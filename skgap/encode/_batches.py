"""Batches of preprocessed images and tokenized texts, ready for the model.

Images are decoded and preprocessed by a :class:`torch.utils.data.DataLoader`,
in ``num_workers`` background processes when asked, so that a GPU is fed
while the next batch is read from disk. A bad image does not stop the
workers: it travels back as ``(position, reason)`` and the encoder applies its
``on_error`` policy in the main process, with the item's index and path.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ._items import load_image

__all__ = ["image_batches", "text_batches"]


def _reason(exc):
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, OSError) and str(exc).startswith("cannot be read"):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _ImageDataset(Dataset):
    """The images at ``positions`` of ``images``, decoded and preprocessed."""

    def __init__(self, images, positions, preprocess):
        self.images = images
        self.positions = positions
        self.preprocess = preprocess

    def __len__(self):
        return len(self.positions)

    def __getitem__(self, j):
        pos = self.positions[j]
        try:
            return pos, self.preprocess(load_image(self.images[pos])), None
        except Exception as exc:  # any failure on one user file is that item's failure
            return pos, None, _reason(exc)


def _collate(samples):
    """Stack the good images; pass the failures on as ``(position, reason)``."""
    good = [(pos, tensor) for pos, tensor, err in samples if err is None]
    failed = [(pos, err) for pos, _, err in samples if err is not None]
    positions = np.array([pos for pos, _ in good], dtype=np.int64)
    if not good:
        batch = None
    elif isinstance(good[0][1], dict):  # several model inputs per image (SigLIP 2)
        batch = {k: torch.stack([t[k] for _, t in good]) for k in good[0][1]}
    else:
        batch = torch.stack([t for _, t in good])
    return positions, batch, failed


def image_batches(images, positions, preprocess, *, batch_size, num_workers, pin_memory):
    """Yield ``(positions, batch, failed)`` for the images at ``positions``.

    Parameters
    ----------
    images : list
        All images of the request (paths, PIL images, uint8 arrays).
    positions : sequence of int
        Which of them to encode, in order.
    preprocess : callable
        open_clip's evaluation transform (PIL image -> float tensor).
    batch_size, num_workers : int
        Batch size and number of decoding processes (0: the main process).
    pin_memory : bool
        Put batches in page-locked memory for asynchronous copies to CUDA.

    Yields
    ------
    positions : ndarray of int64
        Positions of the rows of ``batch``.
    batch : torch.Tensor of shape (len(positions), 3, H, W) or None
        None when every image of the batch failed.
    failed : list of (int, str)
        Position and reason of each image that could not be read.
    """
    loader = DataLoader(
        _ImageDataset(images, positions, preprocess),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
    )
    yield from loader


def text_batches(texts, positions, tokenizer, *, batch_size, pin_memory):
    """Yield ``(positions, tokens, [])`` for the texts at ``positions``.

    ``tokens`` is what ``tokenizer`` returns: a tensor, or a dict of tensors
    (``input_ids``, ``attention_mask``).

    Tokenizing is cheap next to the text tower, so it runs in the main
    process. The texts were checked before (non-blank strings).
    """
    positions = np.asarray(positions, dtype=np.int64)
    for start in range(0, len(positions), batch_size):
        pos = positions[start : start + batch_size]
        tokens = tokenizer([texts[p] for p in pos])
        if pin_memory:
            if isinstance(tokens, torch.Tensor):
                tokens = tokens.pin_memory()
            else:
                tokens = {k: v.pin_memory() for k, v in tokens.items()}
        yield pos, tokens, []
