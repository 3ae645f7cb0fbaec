"""OpenCLIPEncoder: images and texts to paired embeddings ``X = [V | T]``."""

import os

from ._base import Backend, BaseEncoder
from ._loading import fingerprint, load_model, resolve_spec

__all__ = ["OpenCLIPEncoder"]

class OpenCLIPEncoder(BaseEncoder):
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
        **BaseEncoder._shared_constraints,
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

    # -- backend ---------------------------------------------------------------

    def _load_backend(self, device):
        loaded = load_model(resolve_spec(self.model, self.pretrained), device)
        return Backend(
            preprocess=loaded.preprocess,
            tokenize=loaded.tokenizer,
            encode_image=loaded.model.encode_image,
            encode_text=loaded.model.encode_text,
            embed_dim=loaded.embed_dim,
        )

    def _model_fingerprint(self):
        return fingerprint(resolve_spec(self.model, self.pretrained))

    def _weights_source(self):
        return resolve_spec(self.model, self.pretrained).source
