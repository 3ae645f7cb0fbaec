"""What the command line prints: messages in the words of its flags, warnings once, one line.

The library's messages name Python keywords (``image_key=``, ``on_error='skip'``);
on the command line the same advice must name the flags. Warnings raised while
a command runs are printed once each, as one line, without the file and line
of the code that raised them.
"""

import contextlib
import re
import sys
import warnings
from pathlib import Path

#: Python keywords of library messages and the command line flags that set them.
_FLAGS = (
    (re.compile(r"\s*\(load_image\([^)]*\)\)"), ""),
    (re.compile(r"\(their indices are then kept in skipped_\)"),
     "(their rows are listed in the 'skipped' array of the output)"),
    (re.compile(r"\bimage_key=\s*/\s*text_key="), "--image-key / --text-key"),
    (re.compile(r"\bimage_key="), "--image-key "),
    (re.compile(r"\btext_key="), "--text-key "),
    (re.compile(r"\bon_error='skip'"), "--on-error skip"),
    (re.compile(r"\bon_error="), "--on-error "),
    (re.compile(r"\bprecision='(\w+)'"), r"--precision \1"),
    (re.compile(r"\bframe=i\b"), "--frame I"),
    (re.compile(r"\buncertain=\s*'zero'\|'one'\|'ignore'"), "--uncertain zero|one|ignore"),
    (re.compile(r"\bid_column="), "--id-column "),
    (re.compile(r"\bn_seeds="), "--seeds "),
    (re.compile(r"\btest_size="), "--test-size "),
)
_TASKS = re.compile(r"\btasks=\(([^)]*)\)")


def cli_words(message):
    """``message`` with each Python keyword it names replaced by its command line flag.

    Examples
    --------
    >>> cli_words("pass on_error='skip' to leave such pairs out")
    'pass --on-error skip to leave such pairs out'
    >>> cli_words("Score tasks=('image', 'zeroshot') instead.")
    'Score --tasks image,zeroshot instead.'
    """
    text = str(message)
    for pattern, flag in _FLAGS:
        text = pattern.sub(flag, text)
    text = _TASKS.sub(
        lambda m: "--tasks " + ",".join(t.strip(" '\"") for t in m.group(1).split(",") if t.strip()),
        text,
    )
    # A flag given as its own advice in brackets after the keyword is said once.
    text = re.sub(r"(--[\w-]+) (\w[\w|]*) \(\1\)", r"\1 \2", text)
    return re.sub(r"(--[\w-]+) +", r"\1 ", text)


def one_line(message):
    """A message on one line: inner line breaks and runs of spaces become one space."""
    return " ".join(str(message).split())


def collect_warnings(caught):
    """Sort the warnings a command caught: ``{'messages', 'leakage', 'reasons'}``.

    ``messages``: every distinct warning once, one line each, in CLI words;
    ``leakage``: the label-leakage messages; ``reasons``: ``{task: reason}`` of
    the warnings that name a degenerate or trivial task.
    """
    from ..evaluate import LabelLeakageWarning

    messages, leakage, reasons = [], [], {}
    for w in caught:
        text = one_line(cli_words(w.message))
        if text not in messages:
            messages.append(text)
        if issubclass(w.category, LabelLeakageWarning) and text not in leakage:
            leakage.append(text)
        task, reason = getattr(w.message, "task", None), getattr(w.message, "reason", None)
        if task is not None and reason is not None:
            reasons.setdefault(task, reason)
    return {"messages": messages, "leakage": leakage, "reasons": reasons}


def print_warning(message, command=None):
    """Print one warning line to stderr."""
    prefix = f"skgap {command}: warning" if command else "warning"
    print(f"{prefix}: {one_line(cli_words(message))}", file=sys.stderr)


#: Names of an array or column that plausibly holds the labels.
_LABEL_NAMES = re.compile(r"(label|class|target|category|finding|diagnos|^y$)", re.IGNORECASE)


def _keys(path):
    """Array names of an embeddings file, or metadata columns of a clip-retrieval folder."""
    from ..io._archive import ClipRetrievalArchive, is_clip_retrieval_folder
    from ..io._sources import open_source

    try:
        if is_clip_retrieval_folder(path):
            shard = ClipRetrievalArchive(path).shards[0]
            if shard.metadata is None:
                return []
            with open_source(shard.metadata) as src:
                return list(src.keys)
        with open_source(path) as src:
            return list(src.keys)
    except Exception:  # noqa: BLE001 - only a hint: a file we cannot list names nothing
        return []


def data_keys(paths):
    """Names of the arrays (or metadata columns) of the embeddings file(s)."""
    return list(dict.fromkeys(k for p in paths for k in _keys(Path(p))))


def missing_labels_message(paths, tasks):
    """The error for a sweep without labels: what needs them, and a labels array the file has."""
    names = [k for k in data_keys(paths) if _LABEL_NAMES.search(k)]
    where = " + ".join(map(str, paths))
    text = (f"{where}: no labels, and task(s) {', '.join(tasks)} need them. Pass --labels NAME "
            "(an array of the embeddings file, a metadata column of a clip-retrieval folder, a "
            "label file, or FILE:COLUMN of a table), or score tasks that read no labels "
            "(--tasks retrieval).")
    if names:
        text += f" The file holds {', '.join(map(repr, dict.fromkeys(names)))}: try --labels {names[0]}."
    return text



@contextlib.contextmanager
def one_line_warnings(command):
    """Print each distinct warning of a command once, as one line in CLI words.

    No file name or line number of the code that warned: they say nothing to a
    user of the command line.
    """
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = one_line(cli_words(message))
        if text not in shown:
            shown.add(text)
            print(f"skgap {command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield
