"""The machinery every encoder shares: batching, device, AMP, cache, skipping.

:class:`BaseEncoder` is a scikit-learn transformer from (image, text) pairs to
``X = [V | T]``. A backend (open_clip, Hugging Face ``transformers``) only
says how to load its model, in :meth:`BaseEncoder._load_backend`, returning a
:class:`Backend`: an image preprocessing, a tokenizer and the two forward
functions. Everything else -- checking items, the on-disk cache, batching in
background workers, device placement, autocast, normalisation, the
``on_error`` policy, progress bars and pandas output -- lives here once.
"""

import os
import sys
import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import Callable

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

__all__ = ["Backend", "BaseEncoder"]

_SKIP_HINT = (
    ". Fix or remove it, or pass on_error='skip' to leave such pairs out (their "
    "indices are then kept in skipped_)."
)


@dataclass
class Backend:
    """A loaded model, as the shared machinery uses it.

    Attributes
    ----------
    preprocess : callable
        PIL image -> float tensor ``(3, H, W)``, or a dict of tensors (one
        item's model inputs, e.g. SigLIP 2's patches and mask).
    tokenize : callable
        list of str -> token tensor ``(n, L)`` or a dict of tensors.
    encode_image, encode_text : callable
        Batch on the device (tensor or dict) -> features ``(n, d)``.
    embed_dim : int
    """

    preprocess: Callable
    tokenize: Callable
    encode_image: Callable
    encode_text: Callable
    embed_dim: int


@dataclass
class _Runtime:
    """What an encoder holds once its model is loaded (never pickled)."""

    backend: Backend
    device: torch.device
    amp_dtype: "torch.dtype | None"  # a string: torch may be mocked in a docs build
    pin: bool


def _to_device(batch, device, non_blocking):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def _features(out):
    """The feature tensor of a forward call.

    ``transformers`` >= 5 returns an output object from ``get_*_features``
    whose ``pooler_output`` holds the projected features; older versions and
    open_clip return the tensor itself.
    """
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"the model returned {type(out).__name__}, not a feature tensor.")


class BaseEncoder(TransformerMixin, BaseEstimator):
    """Shared machinery of :class:`OpenCLIPEncoder` and :class:`TransformersEncoder`.

    Subclasses define ``__init__`` (their model parameters plus the shared
    ones below), ``_load_backend(device)``, ``_model_fingerprint()`` and
    ``_weights_source()``.

    Shared parameters: ``device``, ``batch_size``, ``precision``,
    ``num_workers``, ``normalize``, ``cache_dir``, ``progress``, ``on_error``
    (documented on the subclasses).
    """

    _shared_constraints = {
        "device": [str, torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "normalize": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
        "progress": ["boolean"],
        "on_error": [StrOptions({"raise", "skip"})],
    }

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
        self : encoder

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
        self.weights_ = self._weights_source()

    def _load(self):
        """Build the model and set the fitted attributes."""
        device, _, amp_dtype = self._placement()
        backend = self._load_backend(device)
        self._runtime = _Runtime(backend, device, amp_dtype, uses_pinned_memory(device))
        self._set_fitted(backend.embed_dim)
        return self._runtime

    # -- backend hooks ---------------------------------------------------------

    def _load_backend(self, device):  # pragma: no cover - abstract
        """Load the model onto ``device``; return a :class:`Backend`."""
        raise NotImplementedError

    def _model_fingerprint(self):  # pragma: no cover - abstract
        """A JSON-able identity of the model and its weights, for the cache key."""
        raise NotImplementedError

    def _weights_source(self):  # pragma: no cover - abstract
        """Where the weights come from, for ``weights_``."""
        raise NotImplementedError

    def _ensure_runtime(self):
        runtime = getattr(self, "_runtime", None)
        if runtime is None:
            self._validate_params()
            runtime = self._load()
        return runtime

    def _open_cache(self):
        if self.cache_dir is None:
            return None
        _, precision, _ = self._placement()
        namespace = {"model": self._model_fingerprint(), "precision": precision}
        if type(self).__name__ != "OpenCLIPEncoder":  # keeps open_clip caches valid
            namespace["backend"] = type(self).__name__
        return EmbeddingCache(self.cache_dir, namespace)

    # -- encoding --------------------------------------------------------------

    def _forward(self, modality, batch):
        """Raw float32 embeddings of one batch (images or tokens) as NumPy."""
        rt = self._runtime
        encode = rt.backend.encode_image if modality == "image" else rt.backend.encode_text
        with torch.inference_mode():
            x = _to_device(batch, rt.device, rt.pin)
            with torch.autocast(
                device_type=rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None
            ):
                feats = _features(encode(x))
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
        if todo and cache is None:
            self._run_model(modality, items, todo, emb, keys, cache, fail)
        elif todo:
            # Other writers of the cache may be encoding some of these items:
            # each is encoded once among them, the rest read from their shards.
            at = {}
            for pos in todo:
                at.setdefault(keys[pos], []).append(pos)

            def run(mine):
                positions = sorted(p for k in mine for p in at[k])
                self._run_model(modality, items, positions, emb, keys, cache, fail)

            # A chunk of many batches: each call of run starts a DataLoader
            # (and its worker processes), too costly to do for every batch.
            for key, row in cache.encode_once(modality, list(at), run,
                                              chunk=32 * self.batch_size).items():
                emb[at[key]] = row
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
                items, todo, rt.backend.preprocess, batch_size=self.batch_size,
                num_workers=self.num_workers, pin_memory=rt.pin,
            )
        else:
            batches = text_batches(
                items, todo, rt.backend.tokenize, batch_size=self.batch_size, pin_memory=rt.pin
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
                f"{type(self).__name__} skipped {skipped.size} of {n} {what} (on_error='skip'); "
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
