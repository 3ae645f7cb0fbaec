"""Small random-weight models saved as real checkpoints: dry runs and offline tests.

No weights can be downloaded on many hospital machines (and none in this
project's tests). These helpers write a folder that loads exactly like a
downloaded checkpoint -- ``save_pretrained`` model, tokenizer and image
processor -- but with random weights of a tiny architecture, so a pipeline can
be tried end to end before the real weights arrive. The embeddings mean
nothing.
"""

import contextlib
import os
from numbers import Integral
from pathlib import Path

from sklearn.utils._param_validation import StrOptions, validate_params

from .._core._validation import Interval

__all__ = ["save_random_model", "save_word_tokenizer"]

_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0, 1, 2, 3


def _sizes():
    return [Interval(Integral, 1, None, closed="left")]


@validate_params(
    {
        "folder": [str, os.PathLike],
        "words": "no_validation",
        "max_length": _sizes(),
        "bos": ["boolean"],
        "model_input_names": [list, tuple],
    },
    prefer_skip_nested_validation=True,
)
def save_word_tokenizer(folder, words, *, max_length=16, bos=True,
                        model_input_names=("input_ids", "attention_mask")):
    """Save a word-level fast tokenizer over ``words`` (lower-cased) to ``folder``.

    Built with the ``tokenizers`` library, no download: ids 0-3 are
    ``<pad>``, ``<unk>``, ``<s>``, ``</s>``, then the words in sorted order;
    every text becomes ``[<s>] words </s>`` (``bos=False`` drops ``<s>``, as
    SigLIP's tokenizer does).

    Parameters
    ----------
    folder : path-like
    words : iterable of str
    max_length : int, default=16
        The tokenizer's ``model_max_length``.
    bos : bool, default=True
    model_input_names : sequence of str
        What the tokenizer hands the model (SigLIP: ``('input_ids',)``).

    Returns
    -------
    vocab_size : int
        Number of tokens, the four special ones included.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(_SPECIALS)}
    for w in sorted({w.lower() for w in words} - set(vocab)):
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=("<s> $A </s>" if bos else "$A </s>"),
        special_tokens=[("<s>", 2), ("</s>", 3)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
        eos_token="</s>", model_max_length=max_length,
        model_input_names=list(model_input_names),
    )
    fast.save_pretrained(folder)
    return len(vocab)


_WORDS = (
    "a an the of with and no normal chest x-ray lung lungs heart effusion edema "
    "pneumonia opacity left right small large photo picture dark light square"
).split()


@validate_params(
    {
        "folder": [str, os.PathLike],
        "kind": [StrOptions({"clip", "siglip"})],
        "words": "no_validation",
        "image_size": _sizes(),
        "patch_size": _sizes(),
        "max_length": _sizes(),
        "embed_dim": _sizes(),
        "width": _sizes(),
        "layers": _sizes(),
        "seed": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def save_random_model(folder, kind="clip", *, words=_WORDS, image_size=32, patch_size=16,
                      max_length=16, embed_dim=16, width=32, layers=2, seed=0):
    """Save a tiny random-weight CLIP or SigLIP checkpoint to ``folder``.

    The folder holds what ``hf download`` of a real checkpoint holds
    (``config.json``, weights, tokenizer and image-processor files), so
    :class:`TransformersEncoder` and ``skgap encode --hf-model`` load it the
    same way, offline.

    Parameters
    ----------
    folder : path-like
    kind : {'clip', 'siglip'}
        ``'clip'``: a ``CLIPModel`` (texts padded to the longest, attention
        mask). ``'siglip'``: a ``SiglipModel`` (texts padded to
        ``max_length``, no mask, no ``<s>``), also the architecture of
        MedSigLIP (448-pixel images, 64 tokens, at full size).
    words : iterable of str
        The tokenizer's vocabulary; other words map to ``<unk>``.
    image_size, patch_size, max_length, embed_dim, width, layers : int
        Architecture sizes.
    seed : int, default=0
        Seed of the random weights.

    Returns
    -------
    folder : pathlib.Path
    """
    import torch
    import transformers as tf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_vocab = save_word_tokenizer(
        folder, words, max_length=max_length, bos=kind == "clip",
        model_input_names=("input_ids", "attention_mask") if kind == "clip" else ("input_ids",),
    )
    text = dict(vocab_size=n_vocab, hidden_size=width, intermediate_size=2 * width,
                num_hidden_layers=layers, num_attention_heads=2,
                max_position_embeddings=max_length, pad_token_id=0, bos_token_id=2,
                eos_token_id=3)
    vision = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                  num_attention_heads=2, image_size=image_size, patch_size=patch_size)
    with torch.random.fork_rng(devices=[]), _quiet_transformers(tf):
        torch.manual_seed(seed)
        if kind == "clip":
            model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision,
                                               projection_dim=embed_dim))
            processor = tf.CLIPImageProcessor(
                size={"shortest_edge": image_size},
                crop_size={"height": image_size, "width": image_size},
            )
        elif kind == "siglip":
            text["projection_size"] = width
            model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
            processor = tf.SiglipImageProcessor(size={"height": image_size, "width": image_size})
        else:
            raise ValueError(f"kind must be 'clip' or 'siglip', got {kind!r}.")
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return folder


@contextlib.contextmanager
def _quiet_transformers(tf):
    """No log lines or progress bars from transformers while a tiny model is built.

    Its notes (default token ids of a config it builds before ours, "Writing model
    shards") are about transformers' defaults, not about anything the caller can act on.
    """
    logging = tf.utils.logging
    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
