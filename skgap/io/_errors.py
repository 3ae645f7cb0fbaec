"""Errors of the readers and the optional packages they need."""

import importlib

__all__ = ["DataFileError", "KeyChoiceWarning", "require"]


class DataFileError(ValueError):
    """A user's data file cannot be used; the message names file, key and problem."""


class KeyChoiceWarning(UserWarning):
    """Which arrays of a file were taken as the image and text embeddings.

    Issued when the keys were recognised by alias (``img_emb``/``text_emb``,
    ...) rather than named, so that a wrong guess is visible.
    """


# package -> (import name, extra of skgap that installs it)
_EXTRAS = {
    "h5py": ("h5py", "hdf5"),
    "pyarrow": ("pyarrow", "arrow"),
    "safetensors": ("safetensors", "safetensors"),
    "torch": ("torch", "torch"),
    "pydicom": ("pydicom", "dicom"),
    "transformers": ("transformers", "transformers"),
}


def require(package, what):
    """Import an optional ``package`` or raise an ImportError naming the extra.

    Parameters
    ----------
    package : str
        One of the optional packages (``'h5py'``, ``'pyarrow'``, ...).
    what : str
        What needs it, for the message (``'reading x.h5'``).

    Returns
    -------
    module
    """
    name, extra = _EXTRAS[package]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the optional package {package!r}: pip install 'skgap[{extra}]' "
            f"(or pip install {package}).",
            name=name,
        ) from exc
