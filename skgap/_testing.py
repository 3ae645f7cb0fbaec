"""Run scikit-learn's estimator checks on inputs of the paired layout.

scikit-learn's generic checks build inputs of 1, 3, 5 or 10 columns. An odd
width cannot be split into two equal modality blocks, and every skgap
estimator refuses it with a ``ValueError`` naming ``modality_dims``; run as
they are, most checks would stop at that refusal and test nothing else.

Nearly every check passes the X it builds through scikit-learn's
``_enforce_estimator_tags_X`` (the hook by which an estimator's input tags
shape the check data: positive-only, categorical, pairwise). Inside
:func:`paired_check_inputs` that hook first gives X the width the estimator
reads, by repeating columns:

- a paired estimator (the default) gets ``[X | X[:, ::-1]]``: the image block
  is the check's X, the text block the same columns in reverse order, so the
  width is even, the two blocks differ (unless X has one column) and every
  NaN, inf, dtype, memory order and row order of X carries to both blocks;
- an estimator of fixed width ``d`` (``ZeroShotClassifier``, whose width is
  that of its class embeddings) gets the columns ``j mod n`` for ``j < d``.

The widening is applied to X before the estimator's own tags act on it, so a
check sees exactly the data it would build for a plain estimator of that
width. Checks that build a second array of a deliberately wrong width (to test
the ``n_features_in_`` contract) still do so, since they slice the widened X.

:func:`parametrize_with_paired_checks` is ``parametrize_with_checks`` with
each check run inside that context and strict expected failures: a check
listed as expected to fail that passes is reported as a failure, so every
entry of an expected-failures dict keeps its reason honest.
:func:`paired_check_params` gives the same parameters as a list, so that one
test can gather the checks of many estimators, each with its own column rule
(``None``: scikit-learn's own inputs, for an estimator that reads any width).
:func:`paired_check_failures` runs the same checks outside pytest and returns
what deviates from the dict.
"""

from contextlib import contextmanager

import numpy as np
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import (
    _get_check_estimator_ids,
    check_estimator,
    estimator_checks_generator,
)


#: The true reason ``check_estimators_dtypes`` fails for every estimator that
#: projects rows onto the unit sphere.
INTEGER_ZERO_ROW = (
    "casts 3 * uniform[0, 1) data of width 5 to integers, which turns row 15 into "
    "zeros; a row of zero norm has no direction on the unit sphere and skgap refuses "
    "it with a ValueError naming the row, by design (integer input without zero rows "
    "is tested on its own)"
)


def paired_columns(n_columns):
    """Column indices that give ``X`` of ``n_columns`` columns an even width.

    Parameters
    ----------
    n_columns : int
        Width of the check's X.

    Returns
    -------
    ndarray of int, shape (2 * n_columns,)
        ``[0, 1, ..., n-1, n-1, ..., 1, 0]``: ``X[:, idx]`` is ``[X | X[:, ::-1]]``.
    """
    idx = np.arange(n_columns)
    return np.concatenate([idx, idx[::-1]])


def fixed_width_columns(width):
    """Column rule that repeats X's columns cyclically up to ``width`` columns.

    Parameters
    ----------
    width : int
        The number of columns the estimator reads.

    Returns
    -------
    callable
        ``n_columns -> arange(width) % n_columns``.
    """

    def columns(n_columns):
        return np.arange(width) % n_columns

    return columns


def _widen(X, columns):
    if X is None or getattr(X, "ndim", 0) != 2:
        return X
    idx = columns(X.shape[1])
    return X.iloc[:, idx] if hasattr(X, "iloc") else X[:, idx]


def text_targets(y):
    """Target rule that turns each label of a check's ``y`` into a text.

    For an estimator whose ``y`` is one text per row (a captioner's bank):
    equal labels give equal texts, so the check's ``y`` keeps its meaning.

    Parameters
    ----------
    y : ndarray
        The check's target.

    Returns
    -------
    ndarray of object, same shape as ``y``
        ``"text <label>"`` for each label.
    """
    y = np.asarray(y)
    texts = np.empty(y.shape, dtype=object)
    texts.flat[:] = [f"text {value}" for value in y.flat]
    return texts


@contextmanager
def paired_check_inputs(columns=paired_columns, target=None):
    """Context in which scikit-learn's checks build X of the width we read.

    Parameters
    ----------
    columns : callable or None, default=paired_columns
        ``n_columns -> indices`` of the columns of the check's X to feed the
        estimator (see :func:`paired_columns`, :func:`fixed_width_columns`);
        None leaves X as the check builds it.
    target : callable, default=None
        ``y -> y'`` applied to the check's target through scikit-learn's
        ``_enforce_estimator_tags_y`` hook (e.g. :func:`text_targets`);
        None leaves y as the check builds it.
    """
    original_X = estimator_checks._enforce_estimator_tags_X
    original_y = estimator_checks._enforce_estimator_tags_y

    def enforce_X(estimator, X, X_test=None, **kwargs):
        return original_X(estimator, _widen(X, columns), X_test=_widen(X_test, columns), **kwargs)

    def enforce_y(estimator, y):
        return target(original_y(estimator, y))

    if columns is not None:
        estimator_checks._enforce_estimator_tags_X = enforce_X
    if target is not None:
        estimator_checks._enforce_estimator_tags_y = enforce_y
    try:
        yield
    finally:
        estimator_checks._enforce_estimator_tags_X = original_X
        estimator_checks._enforce_estimator_tags_y = original_y


class _PairedCheck:
    """A check that runs inside :func:`paired_check_inputs` (picklable, named)."""

    def __init__(self, check, columns, target=None):
        self.check = check
        self.columns = columns
        self.target = target
        self.__name__ = _check_name(check)

    def __call__(self, estimator):
        with paired_check_inputs(self.columns, self.target):
            self.check(estimator)


def _check_name(check):
    func = getattr(check, "func", check)
    return getattr(func, "__name__", repr(func))


def _resolve(value, estimator):
    return value(estimator) if callable(value) else (value or {})


def paired_check_params(estimators, expected_failed_checks=None, columns=None, target=None):
    """The ``pytest.param`` of every check of every estimator, on paired inputs.

    Parameters
    ----------
    estimators : list of estimator instances
    expected_failed_checks : dict or callable, optional
        ``{check_name: reason}``, or ``estimator -> dict``. Each reason states
        why that check cannot pass for that estimator.
    columns : callable, optional
        ``estimator -> column rule`` (default :func:`paired_columns` for every
        estimator); e.g. ``lambda est: fixed_width_columns(d)``. A rule of
        ``None`` runs that estimator's checks on scikit-learn's own inputs,
        for an estimator that does not read the paired layout.
    target : callable, optional
        ``y -> y'``, the target rule of :func:`paired_check_inputs` (e.g.
        :func:`text_targets`) for every estimator.

    Returns
    -------
    list of pytest.param
        ``(estimator, check)`` pairs, each expected failure marked
        ``xfail(strict=True)``, with scikit-learn's ids
        (``"<estimator>-<check>(<keywords>)"``).
    """
    import pytest

    params = []
    for estimator in estimators:
        expected = _resolve(expected_failed_checks, estimator)
        rule = columns(estimator) if columns is not None else paired_columns
        for est, check in estimator_checks_generator(estimator, legacy=True):
            name = _check_name(check)
            marks = ()
            if name in expected:
                marks = pytest.mark.xfail(reason=expected[name], strict=True)
            params.append(
                pytest.param(
                    est, _PairedCheck(check, rule, target), marks=marks, id=_param_id(est, check)
                )
            )
    return params


def _param_id(estimator, check):
    # scikit-learn's own ids: the estimator's changed parameters, and the check
    # with its keywords, so the variants of one check have names, not indices.
    return f"{_get_check_estimator_ids(estimator)}-{_get_check_estimator_ids(check)}"


def parametrize_with_paired_checks(
    estimators, expected_failed_checks=None, columns=None, target=None
):
    """``parametrize_with_checks`` for estimators of the paired layout.

    Each check runs inside :func:`paired_check_inputs`, and an expected
    failure that passes fails the test (``xfail(strict=True)``).

    Parameters
    ----------
    estimators : list of estimator instances
    expected_failed_checks : dict or callable, optional
        ``{check_name: reason}``, or ``estimator -> dict``. Each reason states
        why that check cannot pass for that estimator.
    columns : callable, optional
        ``estimator -> column rule`` (default :func:`paired_columns` for every
        estimator); e.g. ``lambda est: fixed_width_columns(d)``; see
        :func:`paired_check_params`.
    target : callable, optional
        ``y -> y'``, the target rule of :func:`paired_check_inputs`.

    Returns
    -------
    decorator
        ``pytest.mark.parametrize("estimator, check", ...)``.

    Examples
    --------
    >>> from skgap import ModalityGapShifter
    >>> decorator = parametrize_with_paired_checks([ModalityGapShifter()])
    """
    import pytest

    params = paired_check_params(estimators, expected_failed_checks, columns, target)
    return pytest.mark.parametrize("estimator, check", params)


def paired_check_failures(
    estimator, expected_failed_checks=None, columns=paired_columns, target=None
):
    """Run every check on paired inputs; return what deviates from expectation.

    Parameters
    ----------
    estimator : estimator instance
    expected_failed_checks : dict, optional
        ``{check_name: reason}``.
    columns : callable or None, default=paired_columns
        Column rule of :func:`paired_check_inputs`.
    target : callable, default=None
        Target rule of :func:`paired_check_inputs`.

    Returns
    -------
    unexpected : list of (str, str)
        ``(check_name, message)`` of each check that failed without being
        expected to, and ``(check_name, "passed")`` of each expected failure
        that passed. Empty when every check behaves as documented.
    """
    expected = expected_failed_checks or {}
    unexpected = []
    with paired_check_inputs(columns, target):
        results = check_estimator(estimator, on_fail=None)
    for result in results:
        name, status = result["check_name"], result["status"]
        if status == "failed" and name not in expected:
            unexpected.append((name, str(result["exception"])))
        elif status == "passed" and name in expected:
            unexpected.append((name, "passed"))
    return unexpected
