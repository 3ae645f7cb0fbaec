"""Reading the user's embeddings and labels for the command line.

Every command reads its data through :func:`skgap.io.load_embeddings`; this
module adapts it to the command line: problems (a missing optional reader
included) become :class:`DataError`, which the command line prints as one
line, and the notes the loader gives (which arrays it recognised) are
printed to stderr.
"""

import contextlib
import contextvars
import sys
import warnings

from ..io import DataFileError, KeyChoiceWarning
from ..io import load_embeddings as _load
from ..io import load_labels as _load_labels
from ..io._embeddings import _paths

#: The forms DATA may take, for help texts and error messages.
DATA_FORMS = (
    "an .npz with arrays 'image' and 'text' (or img_emb/text_emb, vision_emb/text_emb and "
    "other common names; --image-key/--text-key name others), a .npy of shape (2, n, d) or "
    "two .npy files (images, texts), a .pt/.pth dict of tensors, a .safetensors, an HDF5 "
    "(.h5) file, a Parquet/Arrow table with list columns, or a clip-retrieval folder "
    "(img_emb/, text_emb/, metadata/)"
)
LABEL_FORMS = (
    "a .npy, an .npz with an array 'labels', or a table FILE:COLUMN (CSV/TSV with any "
    "delimiter, or Parquet; FILE:COL1,COL2,... for multi-label 0/1 columns)"
)

#: DataFileError is the error of every data problem; the old name stays for the commands.
DataError = DataFileError


def add_data_options(parser, labels=None):
    """Add ``--image-key``, ``--text-key`` (and ``--id-column``, ``--uncertain``).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    labels : bool, default=None
        Add the label-joining options too; ``None`` adds them when the parser
        already has a ``--labels`` option.
    """
    have = {a for action in parser._actions for a in action.option_strings}
    if "--image-key" not in have:
        parser.add_argument("--image-key", default=None, metavar="KEY",
                            help="array/column/dataset of the image embeddings "
                                 "(default: 'image' or a recognised name)")
        parser.add_argument("--text-key", default=None, metavar="KEY",
                            help="array/column/dataset of the text embeddings "
                                 "(default: 'text' or a recognised name)")
    if labels is None:
        labels = "--labels" in have
    if labels and "--id-column" not in have:
        parser.add_argument("--id-column", default=None, metavar="COLUMN",
                            help="join the --labels table to the embeddings by this id column "
                                 "(the embeddings file holds the ids under the same name)")
        parser.add_argument("--uncertain", choices=("zero", "one", "ignore"), default=None,
                            help="CheXpert-style labels (1, 0, -1 = uncertain, blank = 0): map "
                                 "-1 to 0, to 1, or leave those rows out")


# The loader options of the command being run (set by skgap.cli.main), so
# that a command calling load_embeddings(paths) / load_labels(spec, n) gets
# --image-key, --text-key, --id-column and --uncertain without passing them.
_COMMAND = contextvars.ContextVar("skgap_cli_command", default=None)


@contextlib.contextmanager
def command_options(args):
    """Make the loader options of ``args`` the defaults of this module's loaders."""
    token = _COMMAND.set({"options": data_options(args), "labels": getattr(args, "labels", None)})
    try:
        yield
    finally:
        _COMMAND.reset(token)


def data_options(args):
    """The loader keywords the parsed ``args`` carry (absent options are left out)."""
    return {
        k: getattr(args, k)
        for k in ("image_key", "text_key", "id_column", "uncertain")
        if getattr(args, k, None) is not None
    }


def _print_notes(caught):
    for w in caught:
        if issubclass(w.category, KeyChoiceWarning):
            from ._messages import cli_words  # the note's advice in the words of the flags

            print(f"skgap: note: {cli_words(w.message)}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _call(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KeyChoiceWarning)
        try:
            return fn(*args, **kwargs)
        except ImportError as exc:  # an optional reader: the message names the extra
            raise DataError(str(exc)) from exc
        finally:
            _print_notes(caught)


def _shared_space(X, dims, where):
    if dims[0] != dims[1]:
        raise DataError(
            f"{where}: image width {dims[0]} differs from text width {dims[1]}; "
            "gap statistics need one shared space."
        )
    return X


def load_embeddings(paths, image_key=None, text_key=None, **kwargs):
    """Load paired embeddings for a command: ``(X, labels_or_None)``.

    Any form :func:`skgap.io.load_embeddings` reads; both blocks must have
    one width (a shared space). Inside :func:`command_options`, the
    command's ``--image-key``/``--text-key`` are the defaults, and when the
    command has ``--labels`` with ``--id-column`` or ``--uncertain``, the
    labels are loaded here with the embeddings (rows dropped under
    ``--uncertain ignore`` leave both) and returned in place of the file's own;
    a later :func:`load_labels` of the same spec returns them.
    """
    context = _COMMAND.get()
    opts = dict(context["options"]) if context else {}
    if image_key is not None:
        opts["image_key"] = image_key
    if text_key is not None:
        opts["text_key"] = text_key
    opts.update(kwargs)
    label_opts = {k: opts.pop(k) for k in ("id_column", "uncertain") if k in opts}
    joint = context is not None and context["labels"] is not None and label_opts
    if "texts" in opts and "id_column" in label_opts:  # a text table joins on the ids too
        opts["id_column"] = label_opts["id_column"]
    if joint:
        opts.update(label_opts, labels=context["labels"])
    where = " and ".join(map(str, [paths] if isinstance(paths, str) else paths))
    # With texts=..., the loader returns the texts as a fourth value: passed on.
    X, y, dims, *texts = _call(_load, _paths(paths), **opts)
    if joint:
        context["loaded"] = (context["labels"], X.shape[0], y)
    return (_shared_space(X, dims, where), y, *texts)


def load_data(args):
    """``(X, y)`` from the ``data``, ``--labels`` and loader options of a command."""
    with command_options(args):
        X, y = load_embeddings(args.data)
        return X, load_labels(getattr(args, "labels", None), X.shape[0], default=y)


def load_labels(spec, n_rows, default=None, **kwargs):
    """Labels from ``spec`` (see :func:`skgap.io.load_labels`), else ``default``."""
    context = _COMMAND.get()
    if context is not None and context.get("loaded") is not None:
        loaded_spec, loaded_n, y = context["loaded"]
        if spec == loaded_spec and n_rows == loaded_n:
            return y
    if spec is None:
        if default is None:
            return None
        from ..io._labels import _check_labels

        return _check_labels(default, n_rows, "the 'labels' array of the embeddings file")
    if context is not None:
        kwargs = {**{k: v for k, v in context["options"].items() if k == "uncertain"}, **kwargs}
    return _call(_load_labels, spec, n_rows, **kwargs)
