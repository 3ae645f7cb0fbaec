"""scikit-learn's estimator checks for the foundation estimators.

The checks run on inputs of the paired layout (``skgap._testing``): every check
feeds an even-width ``[X | X[:, ::-1]]``, so pickling, NaN/inf handling, dtype
preservation, sample-order invariance and the rest test the estimators for
real. The one expected failure has its own reason, and ``xfail(strict=True)``
fails the suite if it ever passes.
"""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import check_transformer_general

from skgap import ConeStats, ModalityGapShifter
from skgap._testing import (
    INTEGER_ZERO_ROW,
    fixed_width_columns,
    paired_check_failures,
    paired_check_inputs,
    paired_columns,
    parametrize_with_paired_checks,
)

ESTIMATORS = [ConeStats(), ModalityGapShifter(), ModalityGapShifter(lam=1.0, direction="unit")]
EXPECTED = {"check_estimators_dtypes": INTEGER_ZERO_ROW}


@parametrize_with_paired_checks(ESTIMATORS, expected_failed_checks=EXPECTED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
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
