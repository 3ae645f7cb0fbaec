"""Run test code as a user whom file permissions bind.

Root ignores permission bits: a folder with mode ``0o555`` is still writable
to root, so a "read-only" test run as root would pass whatever the code does.
:func:`run_unprivileged` runs a function in a forked child that first drops
to ``nobody`` (uid/gid 65534) when the tests run as root; otherwise the child
keeps the current user, whom the bits already bind. The child shares the
parent's imported modules, so it needs no access to the interpreter's files.
"""

import os
import pickle
import shutil
import tempfile
import traceback
from pathlib import Path

NOBODY = 65534


def shared_folder():
    """A new folder under the system temp dir that ``nobody`` may enter and read.

    pytest's ``tmp_path`` lies under a ``0o700`` folder of the user running
    the tests, which another user cannot enter.
    """
    path = Path(tempfile.mkdtemp(prefix="skgap-perm-"))
    path.chmod(0o755)
    return path


def remove_folder(path):
    """Remove a folder made read-only by a test."""
    for p in [path, *Path(path).rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def make_read_only(path):
    """Take write permission off ``path`` and everything under it."""
    for p in [*Path(path).rglob("*"), Path(path)]:
        p.chmod(0o555 if p.is_dir() else 0o444)


def can_write(folder):
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def run_unprivileged(fn, *args):
    """``fn(*args)`` in a forked child without root; returns what it returns.

    An exception in the child is raised again here, with the child's
    traceback in its notes.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        try:
            try:
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
                result = ("ok", fn(*args))
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                result = ("error", exc, traceback.format_exc())
            try:
                data = pickle.dumps(result)
            except Exception:  # noqa: BLE001 - an unpicklable result or exception
                data = pickle.dumps(("error", RuntimeError(repr(result)), ""))
            with os.fdopen(write, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        raise RuntimeError("the unprivileged child died without a result")
    kind, *rest = pickle.loads(data)
    if kind == "error":
        exc, text = rest
        exc.add_note(f"in the unprivileged child:\n{text}")
        raise exc
    return rest[0]
