"""scikit-learn's estimator checks for every public estimator of skgap.

The instances, the layout each reads and the expected failures come from the
one registry, ``tests/estimator_registry.py``; a public estimator missing
from it fails :func:`test_every_public_estimator_is_registered`. The checks
run on inputs of the paired layout (``skgap._testing``): every check feeds an
even-width ``[X | X[:, ::-1]]``, so pickling, NaN/inf handling, dtype
preservation, sample-order invariance and the rest test the estimators for
real. Each expected failure has its own reason, and ``xfail(strict=True)``
fails the suite if it ever passes.
"""

import inspect
import pkgutil
import subprocess
import sys
import warnings
from importlib import import_module

import numpy as np
import pytest
from estimator_registry import REGISTRY, UNCHECKED, entry_of
from sklearn.base import BaseEstimator, clone
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import (
    check_estimators_overwrite_params,
    check_transformer_general,
    estimator_checks_generator,
)
from threadpoolctl import threadpool_limits

import skgap
from skgap import ConeStats, ModalityGapShifter, RetrievalCaptioner
from skgap._testing import (
    _check_name,
    fixed_width_columns,
    paired_check_failures,
    paired_check_inputs,
    paired_check_params,
    paired_columns,
    text_targets,
)

# Optional extras: a public module that needs one is skipped where it is absent.
OPTIONAL = {"torch", "torchvision", "open_clip", "transformers"}


def _check_params():
    params = []
    for entry in REGISTRY:
        if not entry.available:
            reason = f"{entry.name} needs {', '.join(entry.requires)}"
            params.append(pytest.param(None, None, marks=pytest.mark.skip(reason=reason),
                                       id=entry.name))
            continue
        for case in entry.cases():
            params += paired_check_params(
                [case.estimator],
                case.expected_failed_checks,
                columns=entry.columns,
                target=entry.target,
            )
    return params


@pytest.fixture(scope="module")
def _one_thread():
    # Thousands of checks on matrices of a few rows: threads only add overhead.
    with threadpool_limits(limits=1):
        torch = sys.modules.get("torch")
        before = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(1)
        yield
        if torch is not None:
            torch.set_num_threads(before)


def _cuda_missing():
    try:
        import torch
    except ImportError:
        return True
    return not torch.cuda.is_available()


@pytest.mark.parametrize("estimator, check", _check_params())
def test_sklearn_compatible(estimator, check, _one_thread):
    entry = entry_of(estimator)
    with warnings.catch_warnings():
        for category in entry.ignore_warnings:
            warnings.simplefilter("ignore", category)
        try:
            check(estimator)
        except RuntimeError as exc:
            # With SCIPY_ARRAY_API=1, scikit-learn runs torch-on-CUDA checks of
            # an estimator that supports the array API when torch is built
            # with CUDA, even on a machine without a GPU.
            if "CUDA" in str(exc) and _cuda_missing():
                pytest.skip("torch is built with CUDA but no GPU is usable here")
            raise


def _public_modules():
    """skgap and its public (sub)modules; those of a missing extra are left out."""
    modules = [skgap]
    for info in pkgutil.walk_packages(skgap.__path__, "skgap."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        try:
            modules.append(import_module(info.name))
        except ImportError as exc:
            if exc.name in OPTIONAL:
                continue
            raise
    return modules


def _public_estimators():
    """``{class: public path}`` of every BaseEstimator subclass skgap exports."""
    found = {}
    for module in _public_modules():
        names = getattr(module, "__all__", None)
        if names is None:
            names = [name for name in vars(module) if not name.startswith("_")]
        for name in names:
            try:
                obj = getattr(module, name)
            except ImportError as exc:  # a lazy name of a missing extra
                if exc.name in OPTIONAL:
                    continue
                raise
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                if obj.__module__.split(".")[0] == "skgap":
                    found.setdefault(obj, f"{module.__name__}.{name}")
    return found


def _resolve(path):
    """The class a registry path names; None where its optional extra is absent."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(import_module(module), name)
    except ImportError as exc:
        if exc.name in OPTIONAL:
            return None
        raise
    except AttributeError:
        raise AssertionError(
            f"tests/estimator_registry.py lists {path}, which skgap does not export"
        ) from None


def test_every_public_estimator_is_registered():
    # A new estimator cannot skip the checks: it goes into the registry, or
    # into UNCHECKED with the reason the checks cannot run on it.
    public = _public_estimators()
    assert ConeStats in public and ModalityGapShifter in public  # the walk finds them
    registered = {_resolve(entry.name) for entry in REGISTRY} | {
        _resolve(path) for path in UNCHECKED
    }
    missing = sorted(path for cls, path in public.items() if cls not in registered)
    assert not missing, (
        f"public estimator(s) missing from tests/estimator_registry.py: {missing}; add each to "
        "REGISTRY (instances and expected failed checks) or to UNCHECKED (with the reason)"
    )


def test_registry_names_public_estimators_once():
    # Each name resolves to a public estimator, none is listed twice, and no
    # estimator is both checked and unchecked.
    public = _public_estimators()
    paths = [entry.name for entry in REGISTRY] + list(UNCHECKED)
    assert len(set(paths)) == len(paths)
    classes = [cls for cls in map(_resolve, paths) if cls is not None]
    assert len(set(classes)) == len(classes)
    assert not set(classes) - set(public), set(classes) - set(public)
    assert all(reason.strip() for reason in UNCHECKED.values())


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda entry: entry.name)
def test_expected_failures_name_checks_that_run(entry):
    # A reason for a check that no longer runs (renamed, or dropped by
    # scikit-learn) would stay in the registry unseen; each one names a check
    # of its instance, and says why.
    if not entry.available:
        pytest.skip(f"{entry.name} needs {', '.join(entry.requires)}")
    cases = entry.cases()
    assert cases
    for case in cases:
        assert type(case.estimator) is entry.cls
        checks = estimator_checks_generator(case.estimator, legacy=True)
        names = {_check_name(check) for _, check in checks}
        stale = set(case.expected_failed_checks) - names
        assert not stale, f"{case.estimator!r}: no such check {sorted(stale)}"
        assert all(reason.strip() for reason in case.expected_failed_checks.values())


# The foundation estimators, on integer input.
INTEGER_INPUT = [ConeStats(), ModalityGapShifter(), ModalityGapShifter(lam=1.0, direction="unit")]


@pytest.mark.parametrize("estimator", INTEGER_INPUT, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_input_is_its_float64_cast(estimator, dtype):
    # What check_estimators_dtypes cannot show (its integer data hold a zero
    # row): integer embeddings without zero rows are read as their float64 cast.
    X = np.random.default_rng(0).integers(-3, 4, size=(30, 10))
    X[:, 0] = np.where(X[:, 0] == 0, 5, X[:, 0])  # no zero row in the image block
    X[:, 5] = np.where(X[:, 5] == 0, -5, X[:, 5])  # nor in the text block
    on_int = clone(estimator).fit(X.astype(dtype))
    on_float = clone(estimator).fit(X.astype(np.float64))
    learned = [k for k in vars(on_float) if k.endswith("_") and not k.startswith("_")]
    assert learned
    for key in learned:
        a, b = getattr(on_int, key), getattr(on_float, key)
        if isinstance(b, (np.ndarray, float, np.floating)):
            np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=key)
        else:
            assert a == b, key
    out = on_int.transform(X.astype(dtype))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, on_float.transform(X.astype(np.float64)), rtol=1e-12)


def test_paired_columns_give_even_width_with_blocks_reversed():
    X = np.arange(12.0).reshape(4, 3)
    with paired_check_inputs():
        wide = estimator_checks._enforce_estimator_tags_X(ConeStats(), X)
    np.testing.assert_array_equal(wide, np.hstack([X, X[:, ::-1]]))
    np.testing.assert_array_equal(paired_columns(1), [0, 0])
    np.testing.assert_array_equal(fixed_width_columns(5)(2), [0, 1, 0, 1, 0])


def test_paired_inputs_make_a_refused_check_run_and_restore_the_hook():
    original = estimator_checks._enforce_estimator_tags_X
    # Outside the context the check feeds 5 columns, which the layout refuses ...
    with pytest.raises(ValueError, match="modality_dims"):
        check_transformer_general("ModalityGapShifter", ModalityGapShifter())
    # ... inside it the whole check runs and passes.
    with paired_check_inputs():
        check_transformer_general("ModalityGapShifter", ModalityGapShifter())
    assert estimator_checks._enforce_estimator_tags_X is original


def test_text_targets_make_a_text_check_run_and_restore_the_hook():
    np.testing.assert_array_equal(
        text_targets(np.array([0, 1, 1, 2])), ["text 0", "text 1", "text 1", "text 2"]
    )
    assert text_targets(np.array([0.5])).dtype == object
    original = estimator_checks._enforce_estimator_tags_y
    captioner = RetrievalCaptioner(n_candidates=5)
    # With the checks' numeric y the captioner refuses its bank's texts ...
    with pytest.raises(TypeError, match="not a string"), paired_check_inputs():
        check_estimators_overwrite_params("RetrievalCaptioner", captioner)
    # ... with text targets the whole check runs and passes.
    with paired_check_inputs(target=text_targets):
        check_estimators_overwrite_params("RetrievalCaptioner", captioner)
    assert estimator_checks._enforce_estimator_tags_y is original


def test_check_params_mark_expected_failures_strict():
    params = paired_check_params(
        [ModalityGapShifter()], {"check_estimators_dtypes": "integer rows of zeros"}
    )
    marked = {param.id: param.marks for param in params if param.marks}
    assert list(marked) == ["ModalityGapShifter()-check_estimators_dtypes"]
    (mark,) = marked["ModalityGapShifter()-check_estimators_dtypes"]
    assert mark.name == "xfail" and mark.kwargs == {
        "reason": "integer rows of zeros",
        "strict": True,
    }


def test_paired_check_failures_reports_both_directions():
    # An expected failure that passes is reported, and so is an unexpected failure.
    wrong = {"check_estimators_pickle": "not expected to fail at all"}
    failures = dict(paired_check_failures(ModalityGapShifter(), wrong))
    assert set(failures) == {"check_estimators_pickle", "check_estimators_dtypes"}
    assert failures["check_estimators_pickle"] == "passed"
    assert "zero norm" in failures["check_estimators_dtypes"]


def test_import_does_not_import_torch():
    code = "import sys, skgap; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("module", ["skgap.encode", "skgap.train"])
def test_torch_stages_say_which_extra_is_missing(module):
    # Simulate an install without torch: the import must fail with a message that
    # names the extra, and keep the missing module's name for callers to test.
    code = (
        "import sys\n"
        "import skgap\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['open_clip'] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(exc.name, 'skgap[torch]' in str(exc))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["torch", "True"]
