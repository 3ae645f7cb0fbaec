r"""ExpertCLIPTrainer: fine-tune an open_clip model with expert (gaze) views, eCLIP style."""

import hashlib
import json
import os
import tempfile
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from .._core._validation import Interval
from ..measure import (
    alignment,
    mean_resultant_length,
    modality_gap,
    retrieval_recall_at_k,
    uniformity,
)
from ._curriculum import expert_probability
from ._heatmap_processor import HeatmapProcessor
from .losses import LearnableTemperature, align_true_pairs, centroid_uniformity, clip_loss

__all__ = ["ExpertCLIPTrainer"]

CHECKPOINT_NAME = "expert_clip_checkpoint.pt"
# Parameters that do not change what is computed: a run may resume under new values.
_RESUME_FREE = ("progress", "verbose", "checkpoint_dir", "checkpoint_every", "output_dir",
                "device", "eval_every")


def _projection_params(model):
    """The projection parameters of each tower (trainable even when a tower is frozen)."""
    out = []
    for owner, names in ((model.visual, ("proj", "head")), (model, ("text_projection",)),
                         (getattr(model, "text", None), ("proj",))):
        if owner is None:
            continue
        for name in names:
            part = getattr(owner, name, None)
            if isinstance(part, torch.nn.Parameter):
                out.append(part)
            elif isinstance(part, torch.nn.Module):
                out.extend(part.parameters())
    return out


def _text_params(model):
    visual = {id(p) for p in model.visual.parameters()}
    return [p for n, p in model.named_parameters()
            if id(p) not in visual and not n.startswith("logit_")]


class ExpertCLIPTrainer(BaseEstimator):
    r"""Fine-tune an open_clip model on image--report pairs plus gaze-derived expert views.

    The expert-annotation recipe of eCLIP (Kumar & Marttinen): besides the
    ordinary contrastive batch of (image, report) pairs, a training step may
    add a batch of *expert* pairs -- an image, the heatmap of where a
    radiologist looked, and the words spoken meanwhile (a snippet, or the
    report). A :class:`HeatmapProcessor` turns image and heatmap into an
    expert view :math:`e = \mathrm{proc}(x, h / \max h)`, which is mixed with
    the image, :math:`\tilde x = \lambda x + (1 - \lambda) e` with
    :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`, encoded by the same
    image tower, and concatenated with the main batch before the loss:

    .. math::

        \mathcal L = \mathcal L_{\mathrm{CLIP}}\big([f(x_B); f(\tilde x_E)],
            [g(t_B); g(s_E)]; \tau\big)
            + w_{\mathrm{ATP}} \mathcal L_{\mathrm{ATP}}
            + w_{\mathrm{CU}} \mathcal L_{\mathrm{CU}}

    on unit embeddings, with a learnable temperature :math:`\tau` as in CLIP.
    An expert batch joins step :math:`s` with probability :math:`p(s)` of
    :func:`~skgap.train.expert_probability` (phases in steps): 0 during a
    cold start, a linear rise from ``min_prob`` to ``max_prob`` over the
    warm-up, a linear fall back over the cool-down, then ``min_prob``.
    During the cold start the processor learns to reconstruct the image from
    an all-ones heatmap, mixed in as
    :math:`(1 - a)\,\mathcal L + a\,\lVert \mathrm{proc}(x, \mathbf 1) - x\rVert^2`
    with :math:`a` = ``aux_loss_proportion``.

    Parameters
    ----------
    model : str, default='ViT-B-32'
        An open_clip architecture name or a ``'local-dir:/folder'`` (as for
        :class:`~skgap.encode.OpenCLIPEncoder`; hub models: download them and
        use ``local-dir:``).
    pretrained : str or path-like, default=None
        A tag or a local weights file; ``None`` starts from random weights
        (tests and dry runs).
    device : str, default='auto'
    precision : {'auto', 'fp32', 'bf16', 'fp16'}, default='auto'
        Autocast precision, chosen as by the encoder (bf16 or fp16 on CUDA,
        fp32 on the CPU); fp16 runs with a gradient scaler.
    batch_size : int, default=32
        Main pairs per micro-batch.
    expert_batch_size : int, default=None
        Expert pairs per expert batch; ``None`` uses ``batch_size``.
    grad_accumulation : int, default=1
        Micro-batches per optimizer step (each with its own expert draw).
    max_steps : int, default=1000
        Optimizer steps of the run.
    lr : float, default=1e-5
        Learning rate of the pretrained towers.
    head_lr : float, default=1e-4
        Learning rate of the parts trained from scratch: the heatmap
        processor and the temperature.
    weight_decay : float, default=0.1
        AdamW weight decay (not on the temperature).
    cold_start_steps, warmup_steps, cooldown_steps : int, default=100, 300, 400
        Phase lengths of the schedule, in steps; their sum must not exceed
        ``max_steps``.
    min_prob, max_prob : float, default=0.05, 0.5
        The schedule's floor and peak.
    aux_loss_proportion : float in [0, 1], default=0.5
        Weight :math:`a` of the reconstruction loss during the cold start.
    mixup_alpha : float, default=0.4
        :math:`\alpha` of the Beta mixing weight; 0 uses the expert view
        unmixed.
    train_image_tower, train_text_tower : bool, default=True, False
        Train the whole tower, or only its projection.
    temperature : float, default=0.07
        Initial :math:`\tau`.
    learn_temperature : bool, default=True
    w_atp, w_cu : float, default=0.0
        Weights of the gap-closing terms of :mod:`skgap.train.losses`.
    processor_patch_size, processor_width, processor_heads : int, default=16, 256, 8
        The :class:`HeatmapProcessor`; the model's image size must be a
        multiple of the patch size.
    validation_fraction : float in [0, 1), default=0.1
        Pairs held out for the evaluations in ``history_``.
    eval_every : int, default=100
        Steps between evaluations (and one before the first step and one
        after the last).
    checkpoint_dir : path-like, default=None
        Folder of the checkpoint; a run whose folder holds one resumes from
        it (same step, same random state).
    checkpoint_every : int, default=None
        Steps between checkpoints; ``None`` writes none.
    output_dir : path-like, default=None
        Where the fine-tuned model is written as a ``local-dir:`` folder;
        ``None`` uses a new temporary folder (see ``weights_dir_``).
    progress : bool, default=False
        A tqdm progress bar.
    verbose : int, default=0
        Print the evaluations.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    encoder_ : OpenCLIPEncoder
        Encodes with the fine-tuned weights (``model='local-dir:'`` +
        ``weights_dir_``).
    model_ : torch.nn.Module
        The fine-tuned open_clip model (kept while the object lives).
    processor_ : HeatmapProcessor or None
        ``None`` when no heatmaps were given.
    temperature_ : float
    history_ : list of dict
        One record per optimizer step: ``step``, ``loss``, ``clip``, ``mse``
        (NaN after the cold start), ``expert_probability``, ``expert_batches``
        (how many of its micro-batches had one), ``mixup_lambda``,
        ``temperature``; on evaluation steps (and a record of ``step`` 0
        before training) the held-out ``valid_clip``, ``gap``, ``R_image``,
        ``R_text``, ``alignment``, ``uniformity_image``, ``uniformity_text``,
        ``i2t_recall@1``, ``t2i_recall@1``.
    n_steps_ : int
        Optimizer steps done (``max_steps`` after a complete run).
    n_expert_pairs_ : int
        Pairs with a heatmap (training and held-out).
    weights_dir_ : str
        The ``local-dir:`` folder of the fine-tuned model.
    precision_ : {'fp32', 'bf16', 'fp16'}
        The autocast precision used.
    device_ : str
        The device trained on.

    See Also
    --------
    skgap.train.HeatmapProcessor : The expert-view module.
    skgap.encode.gaze_heatmap : Fixations to heatmaps.
    skgap.train.GapClosingAdapter : eCLIP's mixup and curriculum on frozen embeddings.

    Notes
    -----
    Images and heatmaps are loaded, resized and centre-cropped together to
    the model's input size once, before training, and held in memory
    (:math:`4 \cdot 3 S^2` bytes per image of side :math:`S`).

    Batches are random draws without replacement from the training pairs,
    and every random choice (batches, expert draws, :math:`\lambda`) comes
    from one NumPy generator whose state the checkpoint carries, with
    torch's, so a resumed run continues exactly where the checkpoint was
    written.

    References
    ----------
    Kumar & Marttinen (2025), "Improving Medical Multi-modal Contrastive
    Learning with Expert Annotations" (eCLIP), ECCV.
    """

    _parameter_constraints = {
        "model": [str],
        "pretrained": [str, os.PathLike, None],
        "device": [str],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "expert_batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "grad_accumulation": [Interval(Integral, 1, None, closed="left")],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "head_lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "cold_start_steps": [Interval(Integral, 0, None, closed="left")],
        "warmup_steps": [Interval(Integral, 0, None, closed="left")],
        "cooldown_steps": [Interval(Integral, 0, None, closed="left")],
        "min_prob": [Interval(Real, 0, 1, closed="both")],
        "max_prob": [Interval(Real, 0, 1, closed="both")],
        "aux_loss_proportion": [Interval(Real, 0, 1, closed="both")],
        "mixup_alpha": [Interval(Real, 0, None, closed="left")],
        "train_image_tower": ["boolean"],
        "train_text_tower": ["boolean"],
        "temperature": [Interval(Real, 0.01, 1, closed="both")],
        "learn_temperature": ["boolean"],
        "w_atp": [Interval(Real, 0, None, closed="left")],
        "w_cu": [Interval(Real, 0, None, closed="left")],
        "processor_patch_size": [Interval(Integral, 1, None, closed="left")],
        "processor_width": [Interval(Integral, 1, None, closed="left")],
        "processor_heads": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "eval_every": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left"), None],
        "output_dir": [str, os.PathLike, None],
        "progress": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        model="ViT-B-32",
        pretrained=None,
        *,
        device="auto",
        precision="auto",
        batch_size=32,
        expert_batch_size=None,
        grad_accumulation=1,
        max_steps=1000,
        lr=1e-5,
        head_lr=1e-4,
        weight_decay=0.1,
        cold_start_steps=100,
        warmup_steps=300,
        cooldown_steps=400,
        min_prob=0.05,
        max_prob=0.5,
        aux_loss_proportion=0.5,
        mixup_alpha=0.4,
        train_image_tower=True,
        train_text_tower=False,
        temperature=0.07,
        learn_temperature=True,
        w_atp=0.0,
        w_cu=0.0,
        processor_patch_size=16,
        processor_width=256,
        processor_heads=8,
        validation_fraction=0.1,
        eval_every=100,
        checkpoint_dir=None,
        checkpoint_every=None,
        output_dir=None,
        progress=False,
        verbose=0,
        random_state=None,
    ):
        self.model = model
        self.pretrained = pretrained
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.expert_batch_size = expert_batch_size
        self.grad_accumulation = grad_accumulation
        self.max_steps = max_steps
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.cold_start_steps = cold_start_steps
        self.warmup_steps = warmup_steps
        self.cooldown_steps = cooldown_steps
        self.min_prob = min_prob
        self.max_prob = max_prob
        self.aux_loss_proportion = aux_loss_proportion
        self.mixup_alpha = mixup_alpha
        self.train_image_tower = train_image_tower
        self.train_text_tower = train_text_tower
        self.temperature = temperature
        self.learn_temperature = learn_temperature
        self.w_atp = w_atp
        self.w_cu = w_cu
        self.processor_patch_size = processor_patch_size
        self.processor_width = processor_width
        self.processor_heads = processor_heads
        self.validation_fraction = validation_fraction
        self.eval_every = eval_every
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.output_dir = output_dir
        self.progress = progress
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    def __getstate__(self):
        # The torch model is rebuilt from weights_dir_ through encoder_; a pickle
        # carries parameters and fitted numbers only.
        state = self.__dict__.copy()
        state.pop("model_", None)
        state.pop("processor_", None)
        return state

    # -- checks ------------------------------------------------------------------

    def _check_schedule(self):
        if self.min_prob > self.max_prob:
            raise ValueError(
                f"min_prob={self.min_prob} exceeds max_prob={self.max_prob}."
            )
        # Raises, naming the phases, when they do not fit in max_steps.
        expert_probability(0, self.max_steps, cold_start=self.cold_start_steps,
                           warmup=self.warmup_steps, anneal=self.cooldown_steps,
                           min_prob=self.min_prob, max_prob=self.max_prob, unit="steps")

    def _params_key(self):
        params = {k: v for k, v in self.get_params().items() if k not in _RESUME_FREE}
        params["pretrained"] = None if params["pretrained"] is None else os.fspath(
            params["pretrained"])
        rs = params["random_state"]
        params["random_state"] = rs if rs is None or isinstance(rs, (int, np.integer)) \
            else "instance"
        return json.dumps(params, sort_keys=True, default=str)

    def _checkpoint_file(self):
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / CHECKPOINT_NAME

    def _read_checkpoint(self):
        """The checkpoint of this run in ``checkpoint_dir``, or None when there is none."""
        path = self._checkpoint_file()
        if path is None or not path.is_file():
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["params"] != self._params_key():
            raise ValueError(
                f"{path} holds a checkpoint of another run (other parameters); resume with "
                "the same settings, or use another checkpoint_dir."
            )
        return state

    def expert_probability(self, step):
        """The scheduled probability of an expert batch at ``step``.

        Parameters
        ----------
        step : int or array-like of int
            Optimizer step, 0-based.

        Returns
        -------
        p : float or ndarray of float
        """
        return expert_probability(step, self.max_steps, cold_start=self.cold_start_steps,
                                  warmup=self.warmup_steps, anneal=self.cooldown_steps,
                                  min_prob=self.min_prob, max_prob=self.max_prob, unit="steps")

    # -- fit ---------------------------------------------------------------------

    def fit(self, images, texts, heatmaps=None, snippets=None):
        """Fine-tune the model.

        Parameters
        ----------
        images : sequence of image
            Files (PNG, JPEG, DICOM...), PIL images or uint8 arrays, as
            :func:`skgap.encode.load_image` reads them.
        texts : sequence of str
            The report of each image.
        heatmaps : sequence of (2-D array or None), default=None
            A gaze heatmap per image at the image's resolution (None where
            there is none); the pairs with one are the expert pairs. Without
            any, the run is plain CLIP fine-tuning (no processor).
        snippets : sequence of (str or None), default=None
            The text of each expert pair (a transcript snippet); the report
            where None.

        Returns
        -------
        self : ExpertCLIPTrainer
        """
        # The encode stage needs open_clip, which skgap.train alone does not.
        from ..encode._device import resolve_device, resolve_precision
        from ..encode._loading import load_model, resolve_spec
        from ._expert_data import prepare_pairs

        self._validate_params()
        self._check_schedule()
        resume = self._read_checkpoint()
        # A resumed run keeps its first seed: the split and the processor's
        # initialisation derive from it (random_state=None draws a new one).
        seed = int(resume["seed"]) if resume is not None else int(
            check_random_state(self.random_state).randint(2**31 - 1))
        device = resolve_device(self.device)
        precision, amp_dtype = resolve_precision(self.precision, device)
        spec = resolve_spec(self.model, self.pretrained)
        if spec.config is None:
            raise ValueError(
                f"{spec.display}: the model's configuration is not on this machine; download "
                "the repository (hf download ORG/REPO --local-dir DIR) and pass "
                "model='local-dir:DIR'."
            )
        with warnings.catch_warnings():
            if spec.source == "random":
                warnings.simplefilter("ignore", UserWarning)
            loaded = load_model(spec, torch.device("cpu"))
        model, tokenizer = loaded.model, loaded.tokenizer
        data = prepare_pairs(model, tokenizer, images, texts, heatmaps, snippets)
        if resume is not None and resume["data"] != _data_key(data):
            raise ValueError(
                f"{self._checkpoint_file()} holds a checkpoint of a run on other data; "
                "resume with the same images, texts and heatmaps, or use another "
                "checkpoint_dir."
            )
        n = data.images.shape[0]
        rng = np.random.RandomState(seed)
        n_val = int(round(self.validation_fraction * n))
        if self.validation_fraction > 0:
            n_val = max(n_val, 2)
        if n - n_val < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {n - n_val} of {n} "
                "pairs for training; use more pairs or a smaller fraction."
            )
        perm = rng.permutation(n)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        pool = np.flatnonzero(np.isin(data.expert_rows, train_idx))
        if data.expert_rows.size and pool.size == 0:
            raise ValueError(
                "Every pair with a heatmap fell into the validation split; give more expert "
                "pairs or a smaller validation_fraction."
            )
        # The caller's torch random state is left as it was; the run's own is
        # seeded here and carried by the checkpoint.
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            run = _Run(self, model, data, device, amp_dtype, seed, train_idx, val_idx, pool)
            if precision == "fp16":
                run.scaler = torch.amp.GradScaler(device.type)
            run.train(resume)
        self.model_ = run.model.eval()
        self.processor_ = run.processor
        self.temperature_ = float(run.tau().detach())
        self.history_ = run.history
        self.n_steps_ = run.step
        self.n_expert_pairs_ = int(data.expert_rows.size)
        self.precision_ = precision
        self.device_ = str(device)
        self._export(spec)
        return self

    def _export(self, spec):
        """Write the fine-tuned model as a ``local-dir:`` folder and build ``encoder_``."""
        from ..encode import OpenCLIPEncoder

        folder = Path(self.output_dir) if self.output_dir is not None else Path(
            tempfile.mkdtemp(prefix="skgap-expert-clip-"))
        folder.mkdir(parents=True, exist_ok=True)
        model = self.model_
        with torch.no_grad():
            # The learned temperature becomes the model's own logit scale.
            if isinstance(getattr(model, "logit_scale", None), torch.nn.Parameter):
                model.logit_scale.fill_(float(np.log(1.0 / self.temperature_)))
        preprocess = dict(getattr(model.visual, "preprocess_cfg", None) or {})
        cfg = {"model_cfg": spec.config, "preprocess_cfg": preprocess}
        (folder / "open_clip_config.json").write_text(json.dumps(cfg, indent=1, default=list))
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, folder / "open_clip_pytorch_model.bin")
        self.weights_dir_ = str(folder.resolve())
        self.encoder_ = OpenCLIPEncoder(model="local-dir:" + self.weights_dir_,
                                        device=self.device, precision=self.precision)


def _data_key(data):
    """A cheap identity of the prepared inputs: tokens exactly, pixel sums to float64."""
    tokens = hashlib.sha1(data.tokens.numpy().tobytes())
    tokens.update(data.snippet_tokens.numpy().tobytes())
    tokens.update(data.expert_rows.tobytes())
    sums = [float(data.images.double().sum()), float(data.heatmaps.double().sum())]
    return f"{tuple(data.images.shape)} {tokens.hexdigest()} {sums[0]!r} {sums[1]!r}"


class _Run:
    """One training run: the modules, the optimizer and the loop (kept off the estimator)."""

    def __init__(self, est, model, data, device, amp_dtype, seed, train_idx, val_idx, pool):
        self.est, self.data, self.device, self.amp_dtype = est, data, device, amp_dtype
        self.train_idx, self.val_idx, self.pool = train_idx, val_idx, pool
        self.rng = np.random.RandomState(seed)
        self.seed = seed
        self.scaler = None
        self.model = model.to(device)
        torch.manual_seed(seed)
        self.processor = None
        if data.expert_rows.size:
            self.processor = HeatmapProcessor(
                3, est.processor_patch_size, est.processor_width, est.processor_heads
            ).to(device)
            size = data.images.shape[-1]
            if size % est.processor_patch_size:
                raise ValueError(
                    f"The model's image size {size} is not a multiple of "
                    f"processor_patch_size={est.processor_patch_size}."
                )
        self.tau_module = LearnableTemperature(init=float(est.temperature)).to(device)
        self.tau_module.log_temperature.requires_grad_(bool(est.learn_temperature))
        self._set_trainable()
        groups = [{"params": [p for p in self.model.parameters() if p.requires_grad],
                   "lr": est.lr, "weight_decay": est.weight_decay}]
        if self.processor is not None:
            groups.append({"params": list(self.processor.parameters()), "lr": est.head_lr,
                           "weight_decay": est.weight_decay})
        if est.learn_temperature:
            groups.append({"params": [self.tau_module.log_temperature], "lr": est.head_lr,
                           "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups)
        self.history, self.step = [], 0

    def _set_trainable(self):
        est, model = self.est, self.model
        for p in model.parameters():
            p.requires_grad_(False)
        if est.train_image_tower:
            for p in model.visual.parameters():
                p.requires_grad_(True)
        if est.train_text_tower:
            for p in _text_params(model):
                p.requires_grad_(True)
        for p in _projection_params(model):
            p.requires_grad_(True)

    def tau(self):
        return self.tau_module()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype,
                              enabled=self.amp_dtype is not None)

    def _to(self, t):
        return t.to(self.device, non_blocking=True)

    # -- checkpoint --------------------------------------------------------------

    def _state(self):
        name, keys, pos, has_gauss, cached = self.rng.get_state()
        return {
            "step": self.step,
            "params": self.est._params_key(),
            "seed": self.seed,
            "data": _data_key(self.data),
            "model": self.model.state_dict(),
            "processor": None if self.processor is None else self.processor.state_dict(),
            "tau": self.tau_module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "numpy_rng": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                          int(has_gauss), float(cached)],
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state(self.device)
                         if self.device.type == "cuda" else None),
            "history": self.history,
        }

    def save(self):
        path = self.est._checkpoint_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self._state(), tmp)
        # Atomic: a run killed while writing leaves the previous checkpoint intact.
        os.replace(tmp, path)

    def resume(self, state):
        self.model.load_state_dict(state["model"])
        if self.processor is not None:
            self.processor.load_state_dict(state["processor"])
        self.tau_module.load_state_dict(state["tau"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        name, keys, pos, has_gauss, cached = state["numpy_rng"]
        self.rng.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step = int(state["step"])
        self.history = list(state["history"])

    # -- the loop ----------------------------------------------------------------

    def train(self, resume=None):
        est = self.est
        if resume is not None:
            self.resume(resume)
        if self.step == 0:
            self.history.append({"step": 0, **self.evaluate()})
        from tqdm.auto import tqdm

        bar = tqdm(total=est.max_steps, initial=self.step, disable=not est.progress,
                   desc="expert CLIP", unit="step")
        try:
            while self.step < est.max_steps:
                record = self.train_step(self.step)
                self.step += 1
                if self.step % est.eval_every == 0 or self.step == est.max_steps:
                    record.update(self.evaluate())
                    if est.verbose:
                        print(f"step {self.step:5d}  loss {record['loss']:.4f}  "
                              f"gap {record['gap']:.3f}  i2t R@1 {record['i2t_recall@1']:.3f}")
                self.history.append(record)
                if est.checkpoint_every and self.est._checkpoint_file() is not None and (
                        self.step % est.checkpoint_every == 0 or self.step == est.max_steps):
                    self.save()
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
        finally:
            bar.close()

    def _embed(self, images, tokens):
        V = self.model.encode_image(images)
        T = self.model.encode_text(tokens)
        return F.normalize(V.float(), dim=-1), F.normalize(T.float(), dim=-1)

    def train_step(self, step):
        est, data, rng = self.est, self.data, self.rng
        self.model.train()
        if not est.train_image_tower:
            self.model.visual.eval()
        p = est.expert_probability(step) if self.processor is not None else 0.0
        cold = self.processor is not None and step < est.cold_start_steps
        self.optimizer.zero_grad(set_to_none=True)
        sums = np.zeros(3)
        n_expert, lambdas = 0, []
        n_batch = min(est.batch_size, self.train_idx.size)
        n_exp = min(est.expert_batch_size or est.batch_size, self.pool.size)
        for _ in range(est.grad_accumulation):
            idx = np.sort(rng.choice(self.train_idx, n_batch, replace=False))
            use_expert = self.pool.size > 0 and rng.random_sample() < p
            images = self._to(data.images[idx])
            with self._autocast():
                V, T = self._embed(images, self._to(data.tokens[idx]))
                if use_expert:
                    e = np.sort(rng.choice(self.pool, n_exp, replace=False))
                    lam = float(rng.beta(est.mixup_alpha, est.mixup_alpha)) \
                        if est.mixup_alpha > 0 else 0.0
                    x = self._to(data.images[data.expert_rows[e]])
                    expert = self.processor(x, self._to(data.heatmaps[e]))
                    Ve, Te = self._embed(lam * x + (1.0 - lam) * expert,
                                         self._to(data.snippet_tokens[e]))
                    V, T = torch.cat([V, Ve]), torch.cat([T, Te])
                    n_expert += 1
                    lambdas.append(lam)
                clip = clip_loss(V, T, self.tau())
                loss = clip
                if est.w_atp:
                    loss = loss + est.w_atp * align_true_pairs(V, T)
                if est.w_cu:
                    loss = loss + est.w_cu * centroid_uniformity(V, T)
                mse = torch.zeros((), device=self.device)
                if cold:
                    mse = self.processor.reconstruction_loss(images).float()
                    a = est.aux_loss_proportion
                    loss = (1.0 - a) * loss + a * mse
            scaled = loss / est.grad_accumulation
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            sums += [float(loss.detach()), float(clip.detach()), float(mse.detach())]
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        sums /= est.grad_accumulation
        return {
            "step": step + 1,
            "loss": float(sums[0]),
            "clip": float(sums[1]),
            "mse": float(sums[2]) if cold else float("nan"),
            "expert_probability": float(p),
            "expert_batches": n_expert,
            "mixup_lambda": float(np.mean(lambdas)) if lambdas else float("nan"),
            "temperature": float(self.tau().detach()),
        }

    @torch.no_grad()
    def encode(self, idx):
        """Unit image and text embeddings of rows ``idx`` (NumPy float32)."""
        self.model.eval()
        Vs, Ts = [], []
        size = max(self.est.batch_size, 2)
        for a in range(0, idx.size, size):
            b = idx[a:a + size]
            with self._autocast():
                V, T = self._embed(self._to(self.data.images[b]), self._to(self.data.tokens[b]))
            Vs.append(V.float().cpu())
            Ts.append(T.float().cpu())
        return torch.cat(Vs).numpy(), torch.cat(Ts).numpy()

    def evaluate(self):
        """Gap, cone sizes, alignment, uniformity and R@1 of the held-out pairs."""
        keys = ("valid_clip", "gap", "R_image", "R_text", "alignment", "uniformity_image",
                "uniformity_text", "i2t_recall@1", "t2i_recall@1")
        if self.val_idx.size < 2:
            return dict.fromkeys(keys, float("nan"))
        V, T = self.encode(self.val_idx)
        recall = retrieval_recall_at_k(V, T, k=1)
        tau = float(self.tau().detach())
        valid_clip = float(clip_loss(torch.from_numpy(V), torch.from_numpy(T), tau))
        return dict(zip(keys, (
            valid_clip,
            modality_gap(V, T)[1],
            mean_resultant_length(V),
            mean_resultant_length(T),
            alignment(V, T),
            uniformity(V),
            uniformity(T),
            recall["image_to_text_recall@1"],
            recall["text_to_image_recall@1"],
        )))
