"""Run the Examples sections of every skgap module's docstrings."""

import doctest
import importlib
import pkgutil

import pytest

import skgap

OPTIONAL = ("torch", "open_clip", "matplotlib", "pandas", "dask", "distributed")


def _module_names():
    for info in pkgutil.walk_packages(skgap.__path__, prefix="skgap."):
        yield info.name


@pytest.mark.parametrize("name", sorted(_module_names()))
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if getattr(exc, "name", None) and exc.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs the optional package {exc.name}")
        raise
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        if test.examples:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"
