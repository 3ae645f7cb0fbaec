"""Sphinx configuration of the skgap documentation.

Build with ``make -C docs html`` (or ``python -m sphinx -W --keep-going -b html
docs docs/_build/html``). Environment variables:

``SKGAP_EXAMPLE_SMALL``
    Defaults to ``1`` here: the gallery runs every example at its smallest
    size so the build takes a few minutes on a laptop. Set it to ``0`` for
    the full-size figures.
``SKGAP_DOCS_FAST``
    ``1`` renders the gallery pages without running the examples (no figures);
    for quick checks of the prose and the API reference.
``SKGAP_SOURCE_ROOT``
    Root of the skgap checkout whose ``examples/`` folder feeds the gallery;
    defaults to the folder above this one. Lets a test build a copy of
    ``docs/`` elsewhere without writing into the checkout.

No step of the build uses the network: intersphinx is off, and MathJax is
copied from the ``sphinx-mathjax-offline`` package when it is installed (the
``docs`` extra installs it), so the equations render offline too.
"""

import importlib
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("SKGAP_SOURCE_ROOT", DOCS.parent)).resolve()
sys.path.insert(0, str(DOCS))

# Examples read these; set them before sphinx-gallery runs any of them.
os.environ.setdefault("SKGAP_EXAMPLE_SMALL", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
FAST = os.environ.get("SKGAP_DOCS_FAST", "0") not in ("", "0")

import skgap  # noqa: E402

from api_reference import write_api_reference  # noqa: E402

# -- Project -----------------------------------------------------------------

project = "skgap"
author = "skgap developers"
copyright = "2026, skgap developers"
release = skgap.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
# `x` in prose and docstrings is code, as in scikit-learn's documentation.
default_role = "literal"
add_module_names = False
pygments_style = "sphinx"
# Broken :doc: and :ref: links warn (and -W fails the build). Python object
# references that do not resolve -- numpy, scikit-learn, torch, with
# intersphinx off -- stay plain text: nitpicky mode would flag every one.
nitpicky = False


def _importable(name):
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any failure means "document it mocked"
        return False
    return True


# The docs extra does not pull torch, but the CI and the full build install
# it so autodoc imports the real torch modules. Mocking is only a fallback
# that keeps the build alive where torch cannot be imported: the API pages of
# the torch stages are still written (from their docstrings), and the examples
# that import a mocked module are shown without being run (see the gallery).
autodoc_mock_imports = [m for m in ("torch", "torchvision", "open_clip") if not _importable(m)]


def _examples_needing(modules):
    """Names of the examples that import any of ``modules`` (top-level imports)."""
    import ast

    out = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        if names & set(modules):
            out.append(path.name)
    return out


#: Examples that cannot run here (they import a module that is mocked).
NOT_RUN = _examples_needing(autodoc_mock_imports)
if NOT_RUN:
    print(f"skgap docs: {', '.join(autodoc_mock_imports)} mocked; not running {', '.join(NOT_RUN)}")

# -- API reference -------------------------------------------------------------

# docs/api/index.rst is generated from docs/api_reference.py and the modules'
# __all__, so a new public name cannot be left out of the reference.
API_WARNINGS, API_PAGES = write_api_reference(DOCS / "api" / "index.rst", mock=autodoc_mock_imports)
# Stubs of names that are no longer public would be orphan pages (a warning).
for _stub in (DOCS / "generated").glob("*.rst"):
    if _stub.stem not in API_PAGES:
        _stub.unlink()

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"
autodoc_member_order = "bysource"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Checks that keep docstrings and signatures in step; see the numpydoc docs
# for the codes. Stylistic checks (summary verb mood, extended summary,
# Examples in every method) are left to review.
numpydoc_validation_checks = {
    "GL06",  # unknown section
    "GL07",  # sections in the wrong order
    "GL08",  # no docstring
    "PR01",  # a parameter is not documented
    "PR02",  # a documented parameter does not exist
    "PR03",  # parameters documented in the wrong order
    "PR10",  # "x: int" instead of "x : int"
    "RT01",  # no Returns section
    "SS01",  # no summary
    "YD01",  # no Yields section
}
numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\.__sklearn_tags__$",
    r"\.__getattr__$",
    r"\.__dir__$",
}

# -- Command line ----------------------------------------------------------------


def write_cli_help(path, width=88):
    """Write the ``--help`` of ``skgap`` and of each subcommand as an include.

    The command-line page includes this file, so it always shows the options
    the installed code has.
    """
    import argparse

    from skgap.cli import build_parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)  # argparse wraps help to $COLUMNS
    try:
        parser = build_parser()
        parts = [("skgap", parser)]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parts += [(f"skgap {name}", sub) for name, sub in action.choices.items()]
        chunks = []
        for title, sub in parts:
            chunks += [f"``{title}``", "~" * (len(title) + 4), "", ".. code-block:: text", ""]
            chunks += ["   " + line if line else "" for line in sub.format_help().splitlines()]
            chunks.append("")
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    text = "\n".join(chunks) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# An .inc suffix: included by getting_started.rst, never a page of its own.
write_cli_help(DOCS / "generated" / "cli_help.inc")

# -- Math ----------------------------------------------------------------------


def _offline_mathjax():
    """Folder of the MathJax 3 files shipped by ``sphinx-mathjax-offline``."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    return folder if (folder / "tex-chtml.js").is_file() else None


MATHJAX_SOURCE = _offline_mathjax()
# The parts of MathJax that pages load: the combined TeX-to-HTML file, the
# TeX extensions it autoloads, its fonts, and the context menu.
MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y")
if MATHJAX_SOURCE is not None:
    # Relative paths are relative to the built _static folder.
    mathjax_path = "mathjax/tex-chtml.js"
# Without the package Sphinx's default (a CDN) is used: fine online.

# -- Gallery -------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Run every example, not only plot_*.py: a broken one fails the build --
    # except those that need a mocked module, which are shown without output.
    "filename_pattern": (
        r"/(?!(?:" + "|".join(re.escape(n) for n in NOT_RUN) + r")$)[^/]+\.py$"
        if NOT_RUN
        else r"/[^/]+\.py$"
    ),
    "ignore_pattern": r"(__init__|/_[^/]*)\.py$",
    "plot_gallery": "False" if FAST else "True",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skgap",),
    "image_scrapers": ("matplotlib",),
    # Reset matplotlib between examples; and see gallery_hooks.py for why
    # sys.exit is refused while an example runs.
    "reset_modules": ("matplotlib", "gallery_hooks.forbid_sys_exit"),
    "reset_modules_order": "both",
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "show_signature": False,
    "min_reported_time": 1,
    "capture_repr": ("_repr_html_", "__repr__"),
    "write_computation_times": False,
}

# -- HTML ----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skgap {release}"
html_static_path = ["_static"]
html_css_files = ["skgap.css"]
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": {"**": ["page-toc"], "index": [], "references": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "logo": {"text": "skgap"},
}
# The gallery pages get the full width for code and figures.
html_sidebars = {"index": [], "references": [], "getting_started": [], "auto_examples/*": []}
html_context = {"default_mode": "light"}


def _copy_mathjax(app, exception):
    if exception is not None or MATHJAX_SOURCE is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        source = MATHJAX_SOURCE / part
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def _skip_member(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods scikit-learn generates.

    They are metadata-routing boilerplate whose docstrings point into
    scikit-learn's own user guide.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


# docs/scaling.rst comes with the scaling work. Until it is on disk the
# user guide leaves its entry out instead of failing the build; once it is
# there this does nothing.
HAS_SCALING = (DOCS / "scaling.rst").is_file()


def _wire_scaling(app, docname, source):
    if HAS_SCALING:
        return
    if docname == "user_guide/index":
        source[0] = source[0].replace("   ../scaling\n", "")
    elif docname == "getting_started":
        source[0] = source[0].replace(":doc:`scaling`", "the scaling guide")


def _report_api_warnings(app):
    from sphinx.util import logging

    logger = logging.getLogger("skgap.docs")
    for message in API_WARNINGS:
        logger.warning(message)


def setup(app):
    app.connect("builder-inited", _report_api_warnings)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("source-read", _wire_scaling)
    app.connect("build-finished", _copy_mathjax)
