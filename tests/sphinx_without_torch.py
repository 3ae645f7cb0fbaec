"""Run ``sphinx-build`` as if torch, torchvision and open_clip were not installed.

Usage: ``python sphinx_without_torch.py FARM SPHINX-ARGS...``. ``FARM`` is a
scratch folder that receives a symbolic link to every entry of this
interpreter's site-packages except the torch stack; it replaces site-packages
on ``sys.path``, so ``import torch`` fails as on an install without the extra
(setting ``sys.modules['torch'] = None`` instead would break SciPy, which looks
torch up there).
"""

import importlib.util
import os
import site
import sys
import sysconfig

HIDDEN = ("torch", "torchvision", "torchgen", "functorch", "open_clip", "nvidia", "triton")


def _hidden(entry):
    top = entry.split("-")[0].split(".")[0].lower()
    return top in HIDDEN or top.startswith(("torch", "open_clip", "nvidia"))


def main(argv):
    farm, sphinx_args = argv[0], argv[1:]
    purelib = sysconfig.get_paths()["purelib"]
    os.makedirs(farm, exist_ok=True)
    for entry in os.listdir(purelib):
        link = os.path.join(farm, entry)
        if not _hidden(entry) and not os.path.lexists(link):
            os.symlink(os.path.join(purelib, entry), link)
    real = os.path.realpath(purelib)
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != real]
    site.addsitedir(farm)
    for name in ("torch", "open_clip"):
        if importlib.util.find_spec(name) is not None:
            raise SystemExit(f"{name} is still importable")
    from sphinx.cmd.build import main as sphinx_main

    return sphinx_main(sphinx_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
