"""TransformersEncoder: Hugging Face CLIP-style models to paired embeddings ``X = [V | T]``."""

import hashlib
import os
from numbers import Integral
from pathlib import Path

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import Backend, BaseEncoder
from ._loading import MissingWeightsError, _offline_requested

__all__ = ["TransformersEncoder"]

# Model types trained with texts padded to the full context (their text tower
# pools the last position, so the padding changes the embedding).
_MAX_LENGTH_TYPES = frozenset({"siglip", "siglip2"})
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _transformers():
    from ..io._errors import require

    return require("transformers", "TransformersEncoder")


def _snapshot(repo, revision):
    """The local folder of a hub repository already in the cache, else None (no network)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def _recipe(model):
    return (
        f" Download it once where a network is available (`hf download {model} --local-dir "
        "DIR`), copy DIR here and pass TransformersEncoder('DIR'); or pass a model that is in "
        "the local Hugging Face cache. For a dry run without weights, save a small random "
        "model (see the 'From your files' guide)."
    )


class TransformersEncoder(BaseEncoder):
    r"""Encode images and texts with a Hugging Face CLIP-style model into ``X = [V | T]``.

    Any ``transformers`` model with ``get_image_features`` and
    ``get_text_features`` -- CLIP, SigLIP, SigLIP 2, MedSigLIP, ... -- loaded
    from a local folder or the local hub cache, with the same interface,
    cache, batching, device and precision handling as
    :class:`OpenCLIPEncoder` (the machinery is shared). Needs
    ``pip install 'skgap[transformers]'``.

    Parameters
    ----------
    model : str or path-like
        A folder written by ``save_pretrained`` / ``hf download`` (model,
        tokenizer and image-processor files), or a hub id such as
        ``'google/medsiglip-448'`` that is in the local hub cache.
    revision : str, default=None
        Hub revision (branch, tag or commit) for a hub id.
    local_files_only : bool, default=True
        Never touch the network (hospital machines are offline). ``False``
        lets ``transformers`` download a hub id that is not cached.
    padding : {'auto', 'max_length', 'longest'}, default='auto'
        How texts are padded. ``'auto'``: ``'max_length'`` for SigLIP and
        SigLIP 2 (they were trained so, and pool the last position),
        ``'longest'`` otherwise.
    max_length : int, default=None
        Token budget; texts are truncated to it. ``None``: the tokenizer's
        ``model_max_length``, else the text tower's
        ``max_position_embeddings``.
    device : str, default='auto'
        ``'auto'`` (CUDA when present, else the CPU) or a torch device name.
    batch_size : int, default=64
        Items per forward pass.
    precision : {'auto', 'fp32', 'bf16', 'fp16'}, default='auto'
        Autocast precision; ``'auto'`` is bf16/fp16 on CUDA, fp32 on the CPU.
    num_workers : int, default=0
        Image-decoding processes.
    normalize : bool, default=True
        Scale every embedding to unit L2 norm.
    cache_dir : str or path-like, default=None
        On-disk embedding cache (see :class:`OpenCLIPEncoder`).
    progress : bool, default=False
        Show a progress bar on a terminal.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with an item that cannot be encoded.

    Attributes
    ----------
    embedding_dim_ : int
        Width :math:`d` of one modality's embedding (the projection size).
    modality_dims_ : tuple of int
        ``(d, d)``.
    device_ : str
        The device the model runs on.
    precision_ : {'fp32', 'bf16', 'fp16'}
        The precision actually used.
    weights_ : {'local-dir', 'hub-cache', 'hf-hub'}
        Where the weights came from.
    padding_ : {'max_length', 'longest'}
        The padding used.
    skipped_ : ndarray of int
        Indices of the items left out under ``on_error='skip'``.
    skip_reasons_ : list of str
        Why each of ``skipped_`` was left out.

    See Also
    --------
    OpenCLIPEncoder : The same for open_clip models (and BiomedCLIP).
    load_image : How image files (DICOM included) are read.

    Notes
    -----
    With the model's image processor :math:`P`, tokenizer :math:`\tau`
    (padding and truncation as above) and projection heads,
    :math:`v_i` = ``get_image_features(P(image_i))`` and :math:`t_i` =
    ``get_text_features(tau(text_i))``, normalised to unit length when
    ``normalize=True``. ``transformers`` 5 returns an output object whose
    ``pooler_output`` holds the projected features; older versions return
    the tensor: both are handled. Only the inputs the tokenizer declares
    (``model_input_names``) are passed: SigLIP's tokenizer gives no
    attention mask, as in its training.

    Examples
    --------
    A tiny random-weight SigLIP saved offline stands in for a real checkpoint
    folder here:

    >>> import tempfile, numpy as np
    >>> from skgap.encode import TransformersEncoder, save_random_model
    >>> folder = save_random_model(tempfile.mkdtemp(), "siglip", embed_dim=16)
    >>> enc = TransformersEncoder(folder, device="cpu")
    >>> images = [np.full((40, 40, 3), v, dtype=np.uint8) for v in (20, 230)]
    >>> X = enc.fit_transform(list(zip(images, ["a dark square", "a light square"])))
    >>> X.shape, X.dtype, enc.modality_dims_, enc.weights_, enc.padding_
    ((2, 64), dtype('float32'), (32, 32), 'local-dir', 'max_length')
    """

    _parameter_constraints = {
        "model": [str, os.PathLike],
        "revision": [str, None],
        "local_files_only": ["boolean"],
        "padding": [StrOptions({"auto", "max_length", "longest"})],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        **BaseEncoder._shared_constraints,
    }

    def __init__(
        self,
        model,
        revision=None,
        local_files_only=True,
        padding="auto",
        max_length=None,
        device="auto",
        batch_size=64,
        precision="auto",
        num_workers=0,
        normalize=True,
        cache_dir=None,
        progress=False,
        on_error="raise",
    ):
        self.model = model
        self.revision = revision
        self.local_files_only = local_files_only
        self.padding = padding
        self.max_length = max_length
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.num_workers = num_workers
        self.normalize = normalize
        self.cache_dir = cache_dir
        self.progress = progress
        self.on_error = on_error

    # -- where the files are ------------------------------------------------------

    def _source(self):
        """``(what to hand to from_pretrained, weights source, local folder or None)``."""
        name = os.fspath(self.model)
        path = Path(name).expanduser()
        if path.is_dir():
            return str(path.resolve()), "local-dir", path.resolve()
        looks_like_path = name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1
        if looks_like_path:
            raise MissingWeightsError(f"TransformersEncoder: no such folder {name!r}.")
        folder = _snapshot(name, self.revision)
        if folder is not None:
            return str(folder), "hub-cache", folder
        if self.local_files_only or _offline_requested():
            raise MissingWeightsError(
                f"TransformersEncoder({name!r}): neither a folder nor in the local Hugging Face "
                "cache, and local_files_only=True (the default), so the hub was not asked."
                + _recipe(name)
            )
        return name, "hf-hub", None

    def _weights_source(self):
        return self._source()[1]

    def _model_fingerprint(self):
        target, source, folder = self._source()
        fp = {"model": target, "source": source, "revision": self.revision,
              "padding": self.padding, "max_length": self.max_length}
        if folder is not None:
            config = folder / "config.json"
            if config.is_file():
                fp["config_sha256"] = hashlib.sha256(config.read_bytes()).hexdigest()
            fp["weights"] = [
                {"path": str(p), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
                for p in sorted(folder.iterdir())
                if p.suffix in _WEIGHT_SUFFIXES and p.is_file()
            ]
        return fp

    # -- loading ------------------------------------------------------------------

    def _load_backend(self, device):
        transformers = _transformers()
        import torch

        target, source, _ = self._source()
        kw = {"local_files_only": self.local_files_only or source != "hf-hub"}
        if self.revision is not None and source == "hf-hub":
            kw["revision"] = self.revision
        parts = {}
        for part, cls in (("model", transformers.AutoModel),
                          ("tokenizer", transformers.AutoTokenizer),
                          ("image processor", transformers.AutoImageProcessor)):
            try:
                parts[part] = cls.from_pretrained(target, **kw)
            except (OSError, ValueError, KeyError) as exc:
                raise MissingWeightsError(
                    f"TransformersEncoder({os.fspath(self.model)!r}): cannot load its {part} "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0]})."
                    + _recipe(os.fspath(self.model))
                ) from exc
        model, tokenizer, processor = parts["model"], parts["tokenizer"], parts["image processor"]
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise ValueError(
                f"TransformersEncoder({os.fspath(self.model)!r}): a {type(model).__name__} has "
                "no get_image_features/get_text_features; use a CLIP-style model (CLIP, "
                "SigLIP, SigLIP 2, MedSigLIP)."
            )
        model.eval().to(device)
        model_type = getattr(model.config, "model_type", "")
        padding = self.padding
        if padding == "auto":
            padding = "max_length" if model_type in _MAX_LENGTH_TYPES else "longest"
        max_length = self.max_length
        if max_length is None:
            max_length = getattr(tokenizer, "model_max_length", None)
            if not max_length or max_length > 100_000:  # transformers' "no limit" sentinel
                text_cfg = getattr(model.config, "text_config", model.config)
                max_length = int(getattr(text_cfg, "max_position_embeddings", 77))
        self.padding_ = padding
        inputs = list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"]))

        def tokenize(texts):
            enc = tokenizer(list(texts), padding=padding, truncation=True,
                            max_length=max_length, return_tensors="pt")
            return {k: enc[k] for k in inputs if k in enc and k != "token_type_ids"}

        def preprocess(img):
            out = processor(images=img.convert("RGB"), return_tensors="pt")
            if set(out.keys()) == {"pixel_values"}:
                return out["pixel_values"][0]
            return {k: v[0] for k, v in out.items()}

        def encode_image(x):
            return model.get_image_features(**x) if isinstance(x, dict) else \
                model.get_image_features(pixel_values=x)

        def encode_text(x):
            return model.get_text_features(**x)

        from ._base import _features, _to_device

        with torch.inference_mode():
            probe = _features(encode_text(_to_device(tokenize(["a"]), device, False)))
        return Backend(preprocess, tokenize, encode_image, encode_text, int(probe.shape[-1]))
