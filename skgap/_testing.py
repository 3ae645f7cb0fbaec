"""Helpers for testing estimators of the paired layout with scikit-learn's checks.

scikit-learn's generic estimator checks build inputs of 1, 3 or 5 columns.
Such widths cannot be split into two equal modality blocks, and every skgap
estimator refuses them with a ``ValueError`` naming ``modality_dims``. Those
checks are expected to fail for that reason alone;
:func:`check_only_layout_failures` proves that no check fails for any other
reason.
"""

from sklearn.utils.estimator_checks import check_estimator

LAYOUT_REASON = (
    "feeds an X of odd width (1, 3 or 5 columns), which cannot be split into two "
    "equal modality blocks: skgap raises a ValueError naming modality_dims, by design"
)

#: Checks of scikit-learn 1.6-1.9 that feed odd-width X to a transformer.
ODD_WIDTH_CHECKS = (
    "check_estimators_dtypes",
    "check_fit_score_takes_y",
    "check_dont_overwrite_parameters",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit2d_predict1d",
)


def expected_failed_checks(estimator, extra=None, checks=ODD_WIDTH_CHECKS):
    """``expected_failed_checks`` callable for :func:`parametrize_with_checks`.

    Parameters
    ----------
    estimator : estimator instance
    extra : dict, optional
        More ``{check_name: reason}`` entries for this estimator.
    checks : iterable of str
        The names that fail only through the odd-width layout.
    """
    out = {name: LAYOUT_REASON for name in checks}
    out.update(extra or {})
    return out


def check_only_layout_failures(estimator, allowed=None):
    """Run every estimator check and return the failures not due to the layout.

    A failure is due to the layout when its exception message names
    ``modality_dims`` (the odd-width refusal). Returns a list of
    ``(check_name, message)``; empty when all is well.

    Parameters
    ----------
    estimator : estimator instance
    allowed : dict, optional
        ``{check_name: reason}`` of further documented expected failures.
    """
    allowed = allowed or {}
    unexpected = []
    for result in check_estimator(estimator, on_fail=None):
        if result["status"] != "failed" or result["check_name"] in allowed:
            continue
        message = str(result["exception"])
        if "modality_dims" not in message:
            unexpected.append((result["check_name"], message))
    return unexpected
