"""scikit-learn's estimator checks for the foundation estimators.

The paired layout refuses odd widths by design (a ValueError naming
``modality_dims``); the checks that feed such widths are listed as expected
failures, and ``test_no_other_check_fails`` proves that nothing else fails.
"""

import subprocess
import sys

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skgap import ConeStats, ModalityGapShifter
from skgap._testing import check_only_layout_failures, expected_failed_checks

ESTIMATORS = [ConeStats(), ModalityGapShifter(), ModalityGapShifter(lam=1.0, direction="unit")]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_no_other_check_fails(estimator):
    assert check_only_layout_failures(estimator) == []


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
