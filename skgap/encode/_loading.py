"""Resolve, check and load an open_clip model: names, weights, offline rules.

Everything here goes through open_clip's own factory
(:func:`open_clip.create_model_and_transforms`, :func:`open_clip.get_tokenizer`);
this module only decides, before any download is tried, whether the request
makes sense, and turns open_clip's failures into errors that say what is
missing and how to point the encoder at a local copy.

Model sources (``model`` / ``pretrained`` of :class:`OpenCLIPEncoder`):

========================  ==========================  ===========
``model``                 ``pretrained``              source
========================  ==========================  ===========
built-in name             ``None``                    ``random``
built-in name             a file path                 ``file``
built-in name             a tag (``'openai'``)        ``tag``
``'local-dir:/folder'``   ``None``                    ``local-dir``
``'hf-hub:org/repo'``     ``None``                    ``hf-hub``
========================  ==========================  ===========
"""

import difflib
import hashlib
import importlib.util
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import open_clip
import torch
from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

__all__ = ["MissingWeightsError", "ModelSpec", "resolve_spec", "load_model"]

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")
# Random-weight models are built under this seed, so that they are the same in
# every process: reproducible embeddings, a valid cache, pickles that rebuild.
RANDOM_SEED = 0


class MissingWeightsError(FileNotFoundError, ValueError):
    """The weights (or config/tokenizer files) a model needs are not on this machine.

    A :class:`FileNotFoundError` and a :class:`ValueError`: the request names
    weights that cannot be found. The message says which files are missing
    and how to point the encoder at a local copy.
    """


@dataclass(frozen=True)
class ModelSpec:
    """What to load, resolved from ``model`` and ``pretrained`` without network.

    Attributes
    ----------
    name : str
        The ``model_name`` handed to open_clip (``'local-dir:'`` paths expanded).
    pretrained : str or None
        The ``pretrained`` handed to open_clip (a tag or an absolute path).
    source : {'random', 'file', 'tag', 'local-dir', 'hf-hub'}
    display : str
        How the request reads in messages.
    config : dict or None
        The model config when it is known locally.
    """

    name: str
    pretrained: str | None
    source: str
    display: str
    config: dict | None = field(default=None, compare=False)

    @property
    def identifier(self):
        """The model name without its ``local-dir:``/``hf-hub:`` prefix."""
        for prefix in (LOCAL_DIR, HF_HUB):
            if self.name.startswith(prefix):
                return self.name[len(prefix):]
        return self.name


def _offline_requested():
    """Whether the user asked huggingface_hub to stay offline.

    Read from the environment at call time as well as from huggingface_hub's
    constant (fixed when it was imported), so that ``HF_HUB_OFFLINE=1`` set
    after import still makes a missing model fail at once.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip depends on it
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _weight_files(folder):
    return sorted(p for p in Path(folder).iterdir() if p.suffix in _WEIGHT_SUFFIXES and p.is_file())


def _read_local_config(folder, display):
    path = folder / HF_CONFIG_NAME
    if not path.is_file():
        raise MissingWeightsError(
            f"{display}: the folder holds no {HF_CONFIG_NAME}. A local-dir: folder needs "
            f"{HF_CONFIG_NAME} ({{\"model_cfg\": ..., \"preprocess_cfg\": ...}}) beside the "
            f"weights file (e.g. open_clip_model.safetensors or open_clip_pytorch_model.bin)."
        )
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{display}: {path} is not readable JSON ({exc}).") from exc
    if not isinstance(cfg, dict) or "model_cfg" not in cfg:
        raise ValueError(f"{display}: {path} has no 'model_cfg' entry.")
    return cfg["model_cfg"]


def resolve_spec(model, pretrained=None):
    """Check ``model`` and ``pretrained`` and say where the weights come from.

    Looks only at open_clip's registry and the local file system: no network.

    Raises
    ------
    ValueError
        Unknown architecture or tag, or ``pretrained`` given with a
        ``local-dir:``/``hf-hub:`` model (which carry their own weights).
    MissingWeightsError
        A weights file or ``local-dir:`` folder that does not exist.
    """
    if pretrained is not None:
        pretrained = os.fspath(pretrained)
    display = f"model={model!r}" + (f", pretrained={pretrained!r}" if pretrained else "")

    if model.startswith((LOCAL_DIR, HF_HUB)):
        if pretrained is not None:
            raise ValueError(
                f"{display}: a {model.split(':')[0]}: model carries its own weights; leave "
                "pretrained=None (open_clip would ignore it)."
            )
        if model.startswith(HF_HUB):
            repo = model[len(HF_HUB):].strip()
            if not repo:
                raise ValueError(f"{display}: no repository after 'hf-hub:'.")
            return ModelSpec(HF_HUB + repo, None, "hf-hub", display)
        folder = Path(model[len(LOCAL_DIR):].strip()).expanduser()
        if not folder.is_dir():
            raise MissingWeightsError(f"{display}: no such folder {str(folder)!r}.")
        folder = folder.resolve()
        config = _read_local_config(folder, display)
        if not _weight_files(folder):
            raise MissingWeightsError(
                f"{display}: the folder holds {HF_CONFIG_NAME} but no weights file "
                f"(*.safetensors, *.bin or *.pth); open_clip would silently build random "
                "weights. Copy the weights into the folder."
            )
        return ModelSpec(LOCAL_DIR + str(folder), None, "local-dir", display, config)

    name = model.replace("/", "-")
    config = open_clip.get_model_config(name)
    if config is None:
        close = difflib.get_close_matches(name, open_clip.list_models(), n=3, cutoff=0.6)
        raise ValueError(
            f"{display}: {model!r} is not an open_clip architecture"
            + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
            + ". Use a name from open_clip.list_models(), a 'local-dir:/folder' holding "
            f"{HF_CONFIG_NAME} and weights, or an 'hf-hub:org/repo' id."
        )
    if pretrained is None:
        return ModelSpec(name, None, "random", display, config)
    if open_clip.get_pretrained_cfg(name, pretrained):
        return ModelSpec(name, pretrained, "tag", display, config)
    path = Path(pretrained).expanduser()
    if path.is_file():
        return ModelSpec(name, str(path.resolve()), "file", display, config)
    if path.suffix in (*_WEIGHT_SUFFIXES, ".pt") or os.sep in pretrained:
        raise MissingWeightsError(f"{display}: no such weights file {pretrained!r}.")
    tags = open_clip.list_pretrained_tags_by_model(name)
    raise ValueError(
        f"{display}: {pretrained!r} is neither a pretrained tag of {name!r} "
        f"(tags: {', '.join(tags) if tags else 'none'}) nor an existing weights file."
    )


def _file_stat(path):
    st = os.stat(path)
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fingerprint(spec):
    """A JSON-able identity of the model and its weights, for the cache key.

    Files are identified by path, size and modification time (hashing
    gigabytes of weights at every start would cost more than it saves).
    """
    fp = {"model": spec.name, "source": spec.source}
    if spec.source == "local-dir":
        folder = Path(spec.identifier)
        fp["config_sha256"] = hashlib.sha256((folder / HF_CONFIG_NAME).read_bytes()).hexdigest()
        fp["weights"] = [_file_stat(p) for p in _weight_files(folder)]
        return fp
    if spec.source == "hf-hub":
        return fp
    fp["config"] = spec.config
    if spec.source == "file":
        fp["weights"] = _file_stat(spec.pretrained)
    elif spec.source == "tag":
        cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained)
        fp["tag"] = spec.pretrained
        fp["weights"] = {k: cfg.get(k) for k in ("hf_hub", "url", "file")}
    else:  # random weights: the same seed gives the same weights per torch version
        fp["seed"] = RANDOM_SEED
        fp["torch"] = torch.__version__
    return fp


def _safe_alternatives(filename):
    # open_clip prefers a .safetensors twin of a requested .bin/.pth file.
    if filename == HF_WEIGHTS_NAME:
        return (HF_SAFE_WEIGHTS_NAME, filename)
    if filename.endswith((".bin", ".pth")):
        return (filename[:-4] + ".safetensors", filename)
    return (filename,)


def _remote_needs(spec):
    """Files open_clip would fetch: list of (repo_or_'url', alternatives)."""
    if spec.source == "hf-hub":
        return [
            (spec.identifier, (HF_CONFIG_NAME,)),
            (spec.identifier, _safe_alternatives(HF_WEIGHTS_NAME)),
        ]
    if spec.source != "tag":
        return []
    cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained)
    if cfg.get("file"):
        return []
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        return [(repo, _safe_alternatives(filename or HF_WEIGHTS_NAME))]
    if cfg.get("url"):
        return [("url", (cfg["url"],))]
    return []


def _cached(repo, alternatives):
    """Whether one of ``alternatives`` is already on disk (no network)."""
    if repo == "url":
        target = Path("~/.cache/clip").expanduser() / os.path.basename(alternatives[0])
        return target.is_file()
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in alternatives)


def _local_copy_hint(spec):
    needs = [repo for repo, _ in _remote_needs(spec) if repo != "url"]
    repo = needs[0] if needs else "REPO"
    hint = (
        f" Download the files once where a network is available (`hf download {repo} "
        "--local-dir DIR`), copy DIR here, and point the encoder at the copy: "
        "OpenCLIPEncoder(model='local-dir:DIR'), a folder holding open_clip_config.json and "
        "the weights (plus the tokenizer files for SigLIP/BiomedCLIP)"
    )
    if spec.source != "tag":
        return hint + "."
    arch = spec.name
    cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained)
    if cfg.get("quick_gelu") and f"{arch}-quickgelu" in open_clip.list_models():
        arch = f"{arch}-quickgelu"  # these weights were trained with QuickGELU
    return hint + (
        f", or OpenCLIPEncoder(model={arch!r}, pretrained='DIR/open_clip_model.safetensors') "
        "for the weights file alone."
    )


def _missing_message(spec, what, detail=None):
    offline = _offline_requested()
    msg = f"Cannot load {spec.display}: {what} is not on this machine"
    msg += (
        " and HF_HUB_OFFLINE is set, so the Hugging Face Hub was not asked."
        if offline
        else " and could not be downloaded."
    )
    if detail:
        msg += f" ({detail})"
    msg += _local_copy_hint(spec)
    if not offline:
        msg += " Set HF_HUB_OFFLINE=1 to fail at once instead of waiting for network retries."
    return msg


def _describe_need(repo, alternatives):
    if repo == "url":
        return f"the weights file {alternatives[0]}"
    return f"{repo}/{alternatives[-1]}" + (
        f" (or {alternatives[0]})" if len(alternatives) > 1 else ""
    )


#: Seconds the reachability probe waits for the hub before giving up.
PROBE_TIMEOUT = 3.0


def hub_reachable(timeout=PROBE_TIMEOUT):
    """Whether a TCP connection to the Hugging Face Hub opens within ``timeout`` seconds.

    One short probe instead of huggingface_hub's retries, which wait tens of
    seconds on a machine without network before the same failure.
    """
    import socket
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants

        endpoint = urlparse(constants.ENDPOINT)
    except (ImportError, AttributeError, ValueError):  # pragma: no cover
        endpoint = urlparse("https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme != "http" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_offline(spec):
    """Fail at once when files are missing and the hub is off limits or unreachable.

    With ``HF_HUB_OFFLINE`` set, nothing is asked of the network. Without
    it, files that are not cached trigger one short reachability probe
    (:func:`hub_reachable`) before open_clip would start its retries.
    """
    missing = [
        (repo, alternatives)
        for repo, alternatives in _remote_needs(spec)
        if not _cached(repo, alternatives)
    ]
    if not missing:
        return
    if _offline_requested():
        raise MissingWeightsError(_missing_message(spec, _describe_need(*missing[0])))
    if not hub_reachable():
        raise MissingWeightsError(
            _missing_message(spec, _describe_need(*missing[0]),
                             f"the hub did not answer within {PROBE_TIMEOUT:g} s")
        )


def _check_transformers(spec):
    text_cfg = (spec.config or {}).get("text_cfg", {})
    needs = text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name")
    if needs and importlib.util.find_spec("transformers") is None:
        raise ImportError(
            f"{spec.display} uses a Hugging Face text tower or tokenizer ({needs}), which "
            "needs the `transformers` package: pip install transformers."
        )


@dataclass
class LoadedModel:
    """An open_clip model ready to encode, with its preprocessing and tokenizer."""

    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    embed_dim: int


def load_model(spec, device):
    """Build the model of ``spec`` on ``device`` in eval mode.

    Raises
    ------
    MissingWeightsError
        Hub weights, config or tokenizer files are neither cached nor
        downloadable.
    ValueError
        A local weights file does not fit the architecture.
    ImportError
        The model needs ``transformers``, which is not installed.
    """
    check_offline(spec)
    _check_transformers(spec)
    if spec.source == "random":
        warnings.warn(
            f"{spec.display}: pretrained=None builds random weights (seed {RANDOM_SEED}); "
            "their embeddings carry no meaning. Pass a tag, a weights file or a "
            "'local-dir:' model for real embeddings.",
            UserWarning,
            stacklevel=4,
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.name, pretrained=spec.pretrained, device="cpu"
            )
            tokenizer = open_clip.get_tokenizer(spec.name)
        except ImportError:
            raise
        except Exception as exc:  # open_clip signals problems with many types
            if "transformers" in str(exc):
                raise ImportError(
                    f"{spec.display} needs the `transformers` package: pip install "
                    f"transformers ({exc})."
                ) from exc
            if spec.source in ("tag", "hf-hub") and isinstance(exc, (RuntimeError, OSError)):
                raise MissingWeightsError(
                    _missing_message(spec, "a file it needs", f"{type(exc).__name__}: {exc}")
                ) from exc
            raise ValueError(
                f"Cannot load {spec.display}: the weights do not fit the architecture or "
                f"cannot be read ({type(exc).__name__}: {exc})."
            ) from exc
    if spec.source == "hf-hub" and not _cached(*_remote_needs(spec)[1]):
        # open_clip only logs a warning and keeps random weights in this case.
        raise MissingWeightsError(
            _missing_message(spec, _describe_need(*_remote_needs(spec)[1]))
        )
    model.eval().to(device)
    with torch.inference_mode():
        embed_dim = int(model.encode_text(tokenizer(["a"]).to(device)).shape[-1])
    return LoadedModel(model, preprocess, tokenizer, embed_dim)
