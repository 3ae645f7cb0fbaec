"""The documentation builds with warnings as errors and covers every public name.

One Sphinx build (of a copy of ``docs/`` in a temporary folder, so nothing is
written into the checkout) runs the gallery at its smallest size
(``SKGAP_EXAMPLE_SMALL=1``) and is shared by the tests below. Set
``SKGAP_DOCS_FAST=1`` to build without running the examples.

A second build hides torch, torchvision and open_clip (``sphinx_without_torch.py``),
as on an install of the ``docs`` extra alone: conf.py mocks them for autodoc and
shows the examples that import them without running them. That build skips the
gallery (``SKGAP_DOCS_FAST=1``) to keep the suite fast; what it tests is that
the API pages of the torch stages import under the mock.
"""

import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _name in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme", "matplotlib"):
    pytest.importorskip(_name)

import skgap  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
# What a build writes into the source folder; never copied.
GENERATED = ("_build", "api", "generated", "auto_examples", "sg_execution_times.rst")
FAST = os.environ.get("SKGAP_DOCS_FAST", "0") not in ("", "0")

pytestmark = pytest.mark.slow


def _sphinx(base, runner, **env_vars):
    """Build a copy of docs/ under ``base``; return (html folder, sphinx's output)."""
    src = base / "src"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns(*GENERATED, "__pycache__"))
    env = dict(
        os.environ,
        SKGAP_SOURCE_ROOT=str(ROOT),
        SKGAP_EXAMPLE_SMALL="1",
        HF_HUB_OFFLINE="1",
        MPLBACKEND="Agg",
        **env_vars,
    )
    cmd = [
        *runner, "-W", "--keep-going", "-b", "html",
        "-d", str(base / "doctrees"), str(src), str(base / "html"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    return base / "html", proc


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Build the HTML docs once; return (html folder, sphinx's output)."""
    return _sphinx(tmp_path_factory.mktemp("docs"), [sys.executable, "-m", "sphinx"])


@pytest.fixture(scope="module")
def build_without_torch(tmp_path_factory):
    """The docs as built where torch is not installed (gallery not run)."""
    base = tmp_path_factory.mktemp("docs-without-torch")
    helper = Path(__file__).resolve().parent / "sphinx_without_torch.py"
    runner = [sys.executable, str(helper), str(base / "site-packages")]
    return _sphinx(base, runner, SKGAP_DOCS_FAST="1")


def _tail(proc, n=60):
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-n:])


def _html(build):
    """The HTML folder; the content tests run even when warnings failed the build."""
    html, proc = build
    assert (html / "index.html").is_file(), f"no HTML was written:\n{_tail(proc)}"
    return html


def test_build_succeeds_without_warnings(build):
    html, proc = build
    # With -W any Sphinx warning fails the build. (Examples may print their own
    # log lines to stderr, so the exit status is the test, not a grep.) numpydoc
    # puts the details of a warning on the lines after it: show them all.
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-12000:]}"
    assert (html / "index.html").is_file()


def _documented_ids(html):
    """Every ``id="skgap...."`` anchor of the API pages."""
    ids = set()
    for page in (html / "generated").glob("*.html"):
        ids.update(re.findall(r'id="(skgap\.[\w.]+)"', page.read_text(encoding="utf-8")))
    return ids


def _public_objects():
    """(qualified name, object) for skgap.__all__ and each public submodule's __all__."""
    out = [(f"skgap.{n}", getattr(skgap, n)) for n in skgap.__all__ if n != "__version__"]
    for info in pkgutil.iter_modules(skgap.__path__):
        name = f"skgap.{info.name}"
        if info.name.startswith("_") or name == "skgap.cli":
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra (torch) is missing here
            continue
        out += [(f"{name}.{n}", getattr(module, n)) for n in getattr(module, "__all__", [])]
    return out


def test_every_public_name_has_an_api_page(build):
    html = _html(build)
    ids = _documented_ids(html)
    objects = _public_objects()
    aliases = {}
    for qualname, obj in objects:
        aliases.setdefault(id(obj), set()).add(qualname)
    # A name exported twice is documented once: any of its names will do.
    missing = [q for q, obj in objects if not aliases[id(obj)] & ids]
    assert not missing, f"public names without an API page: {missing}"


def _links_an_example(page):
    """A link to one example's page (every page's navbar links the gallery index)."""
    return re.search(r'href="[./]*auto_examples/(?!index\.html)\w+\.html', page) is not None


def test_user_guide_pages_show_equations_and_link_examples(build):
    html = _html(build)
    pages = sorted((DOCS / "user_guide").glob("*.rst"))
    assert len(pages) >= 8
    examples = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    for rst in pages:
        if rst.stem in ("index", "paired_layout"):
            continue
        text = (html / "user_guide" / f"{rst.stem}.html").read_text(encoding="utf-8")
        assert 'class="math' in text, f"{rst.stem}: no equation"
        if examples:
            assert _links_an_example(text), f"{rst.stem}: links to no example"


def test_gallery_pages_and_figures(build):
    html = _html(build)
    assert (html / "auto_examples" / "index.html").is_file()
    for script in sorted(EXAMPLES.glob("*.py")):
        if script.name.startswith("_"):
            continue
        page = html / "auto_examples" / f"{script.stem}.html"
        assert page.is_file(), f"no gallery page for {script.name}"
        if script.name.startswith("plot_") and not FAST:
            # sphinx-gallery names the first figure of plot_x.py sphx_glr_plot_x_001.png.
            figure = f"sphx_glr_{script.stem}_001.png"
            assert figure in page.read_text(encoding="utf-8"), f"{script.name}: no figure shown"
            assert (html / "_images" / figure).is_file()


def test_equations_are_rendered_from_a_local_mathjax(build):
    if importlib.util.find_spec("sphinx-mathjax-offline") is None:
        pytest.skip("sphinx-mathjax-offline is not installed: MathJax comes from a CDN")
    html = _html(build)
    page = (html / "user_guide" / "cone_and_gap.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in page
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert list((html / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))


def test_scaling_page_is_wired_in_when_present(build):
    html = _html(build)
    if not (DOCS / "scaling.rst").is_file():
        pytest.skip("docs/scaling.rst is not there yet")
    index = (html / "user_guide" / "index.html").read_text(encoding="utf-8")
    assert (html / "scaling.html").is_file() and "../scaling.html" in index
    page = (html / "scaling.html").read_text(encoding="utf-8")
    assert 'class="math' in page, "scaling: no equation"
    assert _links_an_example(page), (
        "scaling: links to no example; add to docs/scaling.rst e.g. "
        "'.. seealso:: Example: :ref:`sphx_glr_auto_examples_dask_lambda_search.py`.'"
    )


def test_command_line_help_is_included(build):
    html = _html(build)
    page = (html / "getting_started.html").read_text(encoding="utf-8")
    assert "skgap demo" in page and "usage: skgap" in page


def test_unplaced_public_name_is_reported(monkeypatch):
    sys.path.insert(0, str(DOCS))
    try:
        api_reference = importlib.import_module("api_reference")
    finally:
        sys.path.remove(str(DOCS))
    sections = [(t, s, [n for n in names if n != "ConeStats"])
                for t, s, names in api_reference.TOP_LEVEL]
    monkeypatch.setattr(api_reference, "TOP_LEVEL", sections)
    missing = [m for m in ("torch", "torchvision", "open_clip") if importlib.util.find_spec(m) is None]
    text, warnings, _ = api_reference.build_api_reference(mock=missing)
    assert any("skgap.ConeStats" in w for w in warnings)
    other = text.split("\nOther\n=====\n", 1)
    assert len(other) == 2 and "   ConeStats" in other[1].split("\n\n:mod:")[0]


def test_build_without_torch_mocks_it_and_documents_the_torch_stages(build_without_torch):
    html, proc = build_without_torch
    assert proc.returncode == 0, f"sphinx-build without torch failed:\n{proc.stderr[-12000:]}"
    # conf.py found torch missing, mocked it and keeps its examples from running.
    assert "torch, torchvision, open_clip mocked" in proc.stdout
    not_run = re.search(r"not running (.*)", proc.stdout).group(1)
    assert {"compare_methods.py", "encode_offline.py"} <= set(not_run.split(", "))
    assert "plot_coco_real.py" not in not_run
    for name in ("OpenCLIPEncoder", "GapClosingAdapter", "LearnedGapProbe"):
        page = html / "generated" / f"skgap.{name}.html"
        assert page.is_file(), f"no API page for {name} without torch"
        assert f'id="skgap.{name}"' in page.read_text(encoding="utf-8")
