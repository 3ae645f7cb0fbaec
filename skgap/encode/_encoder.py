"""OpenCLIPEncoder: images and texts to paired embeddings ``X = [V | T]``."""

import os
import sys
import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._batches import image_batches, text_batches
from ._cache import EmbeddingCache
from ._device import resolve_device, resolve_precision, uses_pinned_memory
from ._items import (
    BadItemError,
    as_item_list,
    check_text,
    describe,
    image_key,
    split_pairs,
    text_key,
)
from ._loading import fingerprint, load_model, resolve_spec

__all__ = ["OpenCLIPEncoder"]

_SKIP_HINT = (
    ". Fix or remove it, or pass on_error='skip' to leave such pairs out (their "
    "indices are then kept in skipped_)."
)


@dataclass
class _Runtime:
    """What an encoder holds once its model is loaded (never pickled)."""

    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    device: torch.device
    amp_dtype: "torch.dtype | None"
    pin: bool


class OpenCLIPEncoder(TransformerMixin, BaseEstimator):
    r"""Encode images and texts with an open_clip model into ``X = [V | T]``.

    The first stage of the skgap flow: it turns a table of (image, text) pairs
    -- chest X-rays and their reports, photos and captions -- into the paired
    layout every skgap estimator reads, by wrapping open_clip's own model
    factory, preprocessing and tokenizers. Row :math:`i` of ``X`` is
    :math:`[\hat v_i \mid \hat t_i]`, the image and text embeddings of pair
    :math:`i`.

    The model is loaded by :meth:`fit`, or on first use by :meth:`transform`,
    :meth:`encode_images` or :meth:`encode_texts`; nothing is learned from
    data, so ``fit`` may be skipped.

    Parameters
    ----------
    model : str, default='ViT-B-32'
        An open_clip architecture name (see ``open_clip.list_models()``), a
        ``'local-dir:/folder'`` holding ``open_clip_config.json`` and weights,
        or an ``'hf-hub:org/repo'`` id. See Notes for the four backbones of the
        cone-effect study.
    pretrained : str or path-like, default=None
        For an architecture name: a pretrained tag (``'openai'``), or a local
        weights file (``.safetensors``, ``.bin``, ``.pt``, ``.pth``). Must be
        ``None`` with ``local-dir:`` and ``hf-hub:`` models, which carry their
        weights. ``None`` with an architecture name builds *random* weights
        (seeded, so reproducible; a warning says so): useful for tests only.
    device : str, default='auto'
        ``'auto'`` runs on CUDA when present, else on the CPU; or any torch
        device name (``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'mps'``).
    batch_size : int, default=64
        Items per forward pass. Results do not depend on it (beyond float
        rounding).
    precision : {'auto', 'fp32', 'bf16', 'fp16'}, default='auto'
        Autocast precision. ``'auto'``: bf16 on CUDA devices that support it,
        else fp16 on CUDA, and fp32 on the CPU. Outputs are always float32.
    num_workers : int, default=0
        Processes that decode and preprocess images in the background (a
        :class:`torch.utils.data.DataLoader`); 0 decodes in the main process.
        On a GPU, 4-8 keep it fed.
    normalize : bool, default=True
        Scale every embedding to unit L2 norm, as CLIP-style similarity does.
    cache_dir : str or path-like, default=None
        Folder of an on-disk embedding cache; ``None`` disables caching. Keyed
        by model, weights, precision and item content (path, size and mtime for
        files; the pixels or characters otherwise), so a rerun encodes only
        new items. Written atomically, batch by batch.
    progress : bool, default=False
        Show a tqdm progress bar; shown only when stderr is a terminal.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with an item that cannot be encoded (unreadable or missing
        image file, blank or non-string text). ``'raise'``: raise
        :class:`BadItemError` naming its index and path. ``'skip'``: leave its
        pair out of the output, record its index in ``skipped_`` and warn.

    Attributes
    ----------
    embedding_dim_ : int
        Width :math:`d` of one modality's embedding.
    modality_dims_ : tuple of int
        ``(d, d)``: widths of the image and text blocks of ``X``.
    device_ : str
        The device the model runs on.
    precision_ : {'fp32', 'bf16', 'fp16'}
        The precision actually used.
    weights_ : str
        Where the weights came from: ``'random'``, ``'file'``, ``'tag'``,
        ``'local-dir'`` or ``'hf-hub'``.
    skipped_ : ndarray of int
        Indices of the input items (pairs, for :meth:`transform`) left out by
        the last call under ``on_error='skip'``; empty when none.
    skip_reasons_ : list of str
        Why each of ``skipped_`` was left out (index, source and reason).

    See Also
    --------
    skgap.ConeStats : Measure the cone effect of the embeddings produced here.
    skgap.ModalityGapShifter : Reduce their modality gap.

    Notes
    -----
    With image tower :math:`f` and text tower :math:`g` of the model,
    preprocessing :math:`P` and tokenizer :math:`\tau`,

    .. math::

        v_i = f(P(\text{image}_i)),\quad t_i = g(\tau(\text{text}_i)),\quad
        \hat v_i = \frac{v_i}{\lVert v_i \rVert_2},\quad
        \hat t_i = \frac{t_i}{\lVert t_i \rVert_2},

    computed under :func:`torch.inference_mode` and autocast, returned as
    float32 (normalised only when ``normalize=True``). Texts longer than the
    model's context (77 tokens for CLIP) are truncated by its tokenizer, as in
    open_clip. 16-bit and float images (radiographs) are windowed to 8 bits
    by their own min-max range before the model's preprocessing.

    **Offline use.** Weights are never downloaded behind your back when
    ``HF_HUB_OFFLINE=1`` is set (read at load time): a hub model that is not
    in the local cache raises :class:`MissingWeightsError` at once, saying
    which files are missing and how to point ``pretrained`` or
    ``local-dir:`` at a local copy. Without it, huggingface_hub retries the
    network for tens of seconds before the same error.

    **The four backbones of the cone-effect study, from a local copy.** A
    ``local-dir:`` folder holds ``open_clip_config.json`` (``{"model_cfg": ...,
    "preprocess_cfg": ...}``) and one weights file
    (``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``); a
    hub repository in open_clip format downloaded with
    ``hf download ORG/REPO --local-dir DIR`` is such a folder.

    - *CLIP ViT-B/32* (OpenAI): ``model='ViT-B-32', pretrained='openai'``
      downloads ``timm/vit_base_patch32_clip_224.openai``. From a copy:
      ``OpenCLIPEncoder('ViT-B-32-quickgelu',
      pretrained='DIR/open_clip_model.safetensors')`` -- the ``-quickgelu``
      architecture, since these weights were trained with QuickGELU (the
      ``'openai'`` tag sets it; a bare file does not) -- or
      ``model='local-dir:DIR'``.
    - *SigLIP ViT-B/16*: ``model='ViT-B-16-SigLIP', pretrained='webli'``
      downloads ``timm/ViT-B-16-SigLIP``. From a copy: ``model='local-dir:DIR'``
      with that repository's files, tokenizer files included: the SigLIP
      tokenizer is a Hugging Face tokenizer and needs ``transformers``
      (``pip install transformers``), and with ``local-dir:`` it is read from
      the folder.
    - *BiomedCLIP*: ``model='hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224'``.
      From a copy: ``model='local-dir:DIR'`` with that repository's
      ``open_clip_config.json`` and ``open_clip_pytorch_model.bin``, plus the
      PubMedBERT tokenizer files (``vocab.txt``, ``tokenizer_config.json``,
      ``special_tokens_map.json``) and its ``config.json`` from
      ``microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract``; then set
      ``text_cfg.hf_model_name`` in ``open_clip_config.json`` to the folder's
      absolute path so that the text tower's configuration is also read
      offline. The text tower and tokenizer need ``transformers``.
    - *MedSigLIP* (``google/medsiglip-448``, gated): Google publishes it as a
      ``transformers`` SigLIP checkpoint, not in open_clip format, so it loads
      here only as a ``local-dir:`` folder holding an ``open_clip_config.json``
      that describes its SigLIP towers (448-pixel images, 64 text tokens) and
      the weights converted to open_clip's parameter names, plus its tokenizer
      files; the conversion is yours to make and check (encode a few pairs and
      compare with the ``transformers`` model). Needs ``transformers``.

    The encoder holds the model only while it lives: pickles and
    :func:`~sklearn.base.clone` carry the parameters and fitted attributes,
    and the model is rebuilt from them on first use.

    References
    ----------
    .. [1] Cherti et al., "Reproducible scaling laws for contrastive
       language-image learning", CVPR 2023 (OpenCLIP).
    .. [2] Liang et al., "Mind the Gap: Understanding the Modality Gap in
       Multi-modal Contrastive Representation Learning", NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skgap.encode import OpenCLIPEncoder
    >>> images = [np.full((32, 32, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    >>> texts = ["a black square", "a grey square", "a white square"]
    >>> enc = OpenCLIPEncoder("ViT-B-32", device="cpu")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # random weights (a demo) warn
    ...     X = enc.fit_transform(list(zip(images, texts)))
    >>> X.shape, X.dtype, enc.modality_dims_
    ((3, 1024), dtype('float32'), (512, 512))
    >>> bool(np.allclose(np.linalg.norm(X[:, :512], axis=1), 1.0, atol=1e-5))
    True
    """

    _parameter_constraints = {
        "model": [str],
        "pretrained": [str, os.PathLike, None],
        "device": [str, torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "normalize": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
        "progress": ["boolean"],
        "on_error": [StrOptions({"raise", "skip"})],
    }

    def __init__(
        self,
        model="ViT-B-32",
        pretrained=None,
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
        self.pretrained = pretrained
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.num_workers = num_workers
        self.normalize = normalize
        self.cache_dir = cache_dir
        self.progress = progress
        self.on_error = on_error

    # -- scikit-learn protocol -------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # images and texts, not a numeric matrix
        tags.input_tags.string = True
        tags.requires_fit = False  # nothing is learned; transform loads on first use
        tags.transformer_tags.preserves_dtype = []  # always float32 out
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_runtime", None)  # the model is rebuilt from the parameters
        return state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Load the model (nothing is learned from ``X``).

        Parameters
        ----------
        X : ignored
            Accepted for pipeline compatibility.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        self : OpenCLIPEncoder

        Raises
        ------
        MissingWeightsError
            The weights are neither on this machine nor downloadable.
        ValueError
            Unknown architecture or tag, or weights that do not fit it.
        """
        self._load()
        return self

    def transform(self, X):
        """Encode a table of (image, text) pairs into ``X = [V | T]``.

        Parameters
        ----------
        X : DataFrame, mapping, array of shape (n, 2) or sequence of pairs
            A DataFrame with columns ``'image'`` and ``'text'`` (or exactly two
            columns, image first), a mapping with those keys, an object array
            of ``(image, text)`` rows, or a sequence of ``(image, text)``
            tuples. Images are paths, PIL images or uint8 arrays; texts are
            strings.

        Returns
        -------
        X_out : ndarray of shape (n_kept, 2 * embedding_dim), float32
            Image embeddings in the first block, text embeddings in the second.
            ``n_kept`` is ``n`` minus the pairs in ``skipped_``.

        Raises
        ------
        BadItemError
            An image or text cannot be encoded and ``on_error='raise'``.
        """
        images, texts = split_pairs(X)
        if not images:
            raise ValueError("no (image, text) pairs to encode.")
        T, bad_t = self._encode("text", texts)
        V, bad_v = self._encode("image", images, exclude=bad_t)
        bad = {**bad_t, **bad_v}
        kept = self._record_skipped(bad, len(images), "pairs")
        out = np.hstack([V[kept], T[kept]])
        return self._as_output(X, out, kept, len(images))

    def encode_images(self, images):
        """Encode images only.

        Parameters
        ----------
        images : sequence
            Paths, PIL images or uint8 arrays; or a uint8 array of shape
            ``(n, H, W, C)``.

        Returns
        -------
        V : ndarray of shape (n_kept, embedding_dim), float32
        """
        images = as_item_list(images, "image")
        V, bad = self._encode("image", images)
        return V[self._record_skipped(bad, len(images), "images")]

    def encode_texts(self, texts):
        """Encode texts only.

        Parameters
        ----------
        texts : sequence of str
            Non-blank strings (captions, report sentences).

        Returns
        -------
        T : ndarray of shape (n_kept, embedding_dim), float32
        """
        texts = as_item_list(texts, "text")
        T, bad = self._encode("text", texts)
        return T[self._record_skipped(bad, len(texts), "texts")]

    def get_feature_names_out(self, input_features=None):
        """Return the names of the output columns: ``image0..`` then ``text0..``.

        Parameters
        ----------
        input_features : ignored
            The output names do not depend on the input's.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "embedding_dim_")
        d = self.embedding_dim_
        return np.asarray(
            [f"image{i}" for i in range(d)] + [f"text{i}" for i in range(d)], dtype=object
        )

    # -- loading ---------------------------------------------------------------

    def _placement(self):
        device = resolve_device(self.device)
        precision, amp_dtype = resolve_precision(self.precision, device)
        return device, precision, amp_dtype

    def _set_fitted(self, embed_dim):
        """Record the setup: device, precision, weights source and widths."""
        device, precision, _ = self._placement()
        self.embedding_dim_ = int(embed_dim)
        self.modality_dims_ = (self.embedding_dim_, self.embedding_dim_)
        self.device_ = str(device)
        self.precision_ = precision
        self.weights_ = resolve_spec(self.model, self.pretrained).source

    def _load(self):
        """Build the model and set the fitted attributes."""
        spec = resolve_spec(self.model, self.pretrained)
        device, _, amp_dtype = self._placement()
        loaded = load_model(spec, device)
        self._runtime = _Runtime(
            loaded.model,
            loaded.preprocess,
            loaded.tokenizer,
            device,
            amp_dtype,
            uses_pinned_memory(device),
        )
        self._set_fitted(loaded.embed_dim)
        return self._runtime

    def _ensure_runtime(self):
        runtime = getattr(self, "_runtime", None)
        if runtime is None:
            self._validate_params()
            runtime = self._load()
        return runtime

    def _open_cache(self):
        if self.cache_dir is None:
            return None
        spec = resolve_spec(self.model, self.pretrained)
        _, precision, _ = self._placement()
        return EmbeddingCache(self.cache_dir, {"model": fingerprint(spec), "precision": precision})

    # -- encoding --------------------------------------------------------------

    def _forward(self, modality, batch):
        """Raw float32 embeddings of one batch (images or tokens) as NumPy."""
        rt = self._runtime
        encode = rt.model.encode_image if modality == "image" else rt.model.encode_text
        with torch.inference_mode():
            x = batch.to(rt.device, non_blocking=rt.pin)
            with torch.autocast(
                device_type=rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None
            ):
                feats = encode(x)
            return feats.float().cpu().numpy()

    def _encode(self, modality, items, exclude=()):
        """Embeddings of ``items`` and the items that could not be encoded.

        Items are checked (texts) and keyed (with a cache) first; cached ones
        are read back; the rest go through the model batch by batch, each
        batch stored in the cache as soon as it is computed. Positions in
        ``exclude`` are neither encoded nor reported (their pair failed in
        the other modality).

        Returns
        -------
        emb : ndarray of shape (len(items), d), float32
            Rows of failed or excluded items are zero.
        bad : dict
            ``position -> message`` of the items that could not be encoded
            (only under ``on_error='skip'``; otherwise the first one raises).
        """
        self._validate_params()
        bad = {}

        def fail(pos, reason):
            err = BadItemError(modality, pos, describe(items[pos]), reason, hint=_SKIP_HINT)
            if self.on_error == "raise":
                raise err
            bad[pos] = str(err).removesuffix(_SKIP_HINT)

        if modality == "text":
            for pos, text in enumerate(items):
                try:
                    check_text(text)
                except (TypeError, ValueError) as exc:
                    fail(pos, str(exc))
        skip = bad.keys() | set(exclude)
        cache = self._open_cache()
        keys = self._keys(modality, items, skip, fail) if cache is not None else None
        hits = cache.lookup(modality, [k for k in keys if k is not None]) if cache else {}
        todo = [
            pos for pos in range(len(items))
            if pos not in skip and pos not in bad and (keys is None or keys[pos] not in hits)
        ]

        if todo or not hits:
            self._ensure_runtime()
        elif not hasattr(self, "embedding_dim_"):
            # Everything is cached: describe the setup without loading the model.
            self._set_fitted(len(next(iter(hits.values()))))
        emb = np.zeros((len(items), self.embedding_dim_), dtype=np.float32)
        for pos, key in enumerate(keys or ()):
            if key in hits:
                emb[pos] = hits[key]
        if todo:
            self._run_model(modality, items, todo, emb, keys, cache, fail)
        if self.normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
            emb /= norms
        return emb, bad

    def _keys(self, modality, items, skip, fail):
        """Cache keys of the items not in ``skip``; an unreadable path fails its item."""
        key_of = image_key if modality == "image" else text_key
        keys = [None] * len(items)
        for pos, item in enumerate(items):
            if pos in skip:
                continue
            try:
                keys[pos] = key_of(item)
            except (OSError, TypeError) as exc:
                fail(pos, "no such file" if isinstance(exc, FileNotFoundError) else str(exc))
        return keys

    def _run_model(self, modality, items, todo, emb, keys, cache, fail):
        """Encode the items at ``todo`` into the rows of ``emb``, batch by batch."""
        rt = self._runtime
        if modality == "image":
            batches = image_batches(
                items, todo, rt.preprocess, batch_size=self.batch_size,
                num_workers=self.num_workers, pin_memory=rt.pin,
            )
        else:
            batches = text_batches(
                items, todo, rt.tokenizer, batch_size=self.batch_size, pin_memory=rt.pin
            )
        with self._progress_bar(len(todo), modality) as bar:
            for positions, batch, failed in batches:
                if batch is not None:
                    out = self._forward(modality, batch)
                    emb[positions] = out
                    if cache is not None:
                        # Stored before a failure below can raise: an
                        # interrupted run loses nothing it has encoded.
                        cache.store(modality, [keys[p] for p in positions], out)
                for pos, reason in failed:
                    fail(pos, reason)
                bar.update(len(positions) + len(failed))

    def _progress_bar(self, total, modality):
        from tqdm.auto import tqdm

        show = bool(self.progress) and sys.stderr.isatty()
        return tqdm(total=total, desc=f"encoding {modality}s", unit=modality, disable=not show)

    def _record_skipped(self, bad, n, what):
        """Set ``skipped_``/``skip_reasons_``, warn if any, return the kept rows."""
        skipped = np.array(sorted(bad), dtype=np.int64)
        self.skipped_ = skipped
        self.skip_reasons_ = [bad[i] for i in skipped.tolist()]
        if skipped.size:
            warnings.warn(
                f"OpenCLIPEncoder skipped {skipped.size} of {n} {what} (on_error='skip'); "
                f"their indices are in skipped_. First: {self.skip_reasons_[0]}",
                UserWarning,
                stacklevel=3,
            )
        keep = np.ones(n, dtype=bool)
        keep[skipped] = False
        return np.flatnonzero(keep)

    def _as_output(self, X, out, kept, n):
        """Keep a DataFrame's row labels for pandas output when rows were skipped.

        scikit-learn's output wrapper would label the rows with the full input
        index, which no longer matches once pairs are skipped.
        """
        if len(kept) == n or not (hasattr(X, "index") and hasattr(X, "columns")):
            return out
        from sklearn.utils._set_output import _get_output_config

        if _get_output_config("transform", self)["dense"] != "pandas":
            return out
        import pandas as pd

        return pd.DataFrame(out, index=X.index[kept], columns=self.get_feature_names_out())
