"""Tests of the paired-split statistics in skgap._selection."""

import numpy as np
import pytest
from scipy import stats

from skgap._core._selection import paired_t_interval, select_setting, verdicts


def test_t_interval_matches_scipy_one_sample_t():
    rng = np.random.default_rng(0)
    d = rng.normal(0.3, 1.0, size=12)
    mean, se, low, high = paired_t_interval(d, confidence=0.9)
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.9)
    assert mean == pytest.approx(d.mean())
    assert se == pytest.approx(d.std(ddof=1) / np.sqrt(d.size))
    assert (low, high) == pytest.approx((ref.low, ref.high))


def test_t_interval_skips_nan_and_is_undefined_for_one_split():
    d = np.array([[0.1, np.nan], [0.3, 0.2], [np.nan, np.nan]]).T  # splits along axis 0
    mean, se, low, high = paired_t_interval(d, axis=0)
    assert mean[0] == pytest.approx(0.1) and np.isnan(low[0]) and np.isnan(high[0])
    assert mean[1] == pytest.approx(0.25)
    ref = stats.ttest_1samp([0.3, 0.2], 0.0).confidence_interval(0.95)
    assert (low[1], high[1]) == pytest.approx((ref.low, ref.high))
    assert np.isnan(mean[2])


def test_verdicts_follow_the_direction_of_the_metric():
    low = np.array([0.1, -0.3, -0.1, np.nan])
    high = np.array([0.2, -0.1, 0.1, np.nan])
    assert list(verdicts(low, high)) == ["helps", "hurts", "no evidence", "no evidence"]
    assert list(verdicts(low, high, higher_is_better=False)) == [
        "hurts", "helps", "no evidence", "no evidence"]


def test_one_se_picks_reference_on_a_flat_noisy_curve():
    rng = np.random.default_rng(1)
    lams = np.linspace(0, 1, 11)
    scores = 0.8 + rng.normal(0, 0.01, size=(5, 11))  # no true effect of lambda
    best, _ = select_setting(scores, lams, rule="best")
    chosen, se = select_setting(scores, lams, rule="one_se")
    assert chosen == 0
    assert best == int(np.argmax(scores.mean(axis=0)))
    # se to the best, computed independently
    diff = scores - scores[:, [best]]
    assert se == pytest.approx(diff.std(axis=0, ddof=1) / np.sqrt(5))


def test_one_se_keeps_a_real_effect():
    lams = np.linspace(0, 1, 6)
    rng = np.random.default_rng(2)
    scores = 0.7 + 0.2 * lams + rng.normal(0, 0.001, size=(4, 6))
    assert select_setting(scores, lams, rule="one_se")[0] == 5


def test_one_se_is_closest_to_reference_and_handles_lower_is_better():
    lams = np.array([-1.0, -0.5, 0.25, 1.0])
    scores = np.array([[1.0, 1.0, 0.0, 3.0], [1.0, 1.0, 0.0, 3.0]]) + np.array([[0.0], [0.5]])
    # lower is better: setting 2 is best with zero spread; the only candidate.
    assert select_setting(scores, lams, higher_is_better=False)[0] == 2
    # reference moves the preference
    flat = np.zeros((3, 4))
    assert select_setting(flat, lams, reference=1.0)[0] == 3


def test_select_setting_validates():
    with pytest.raises(ValueError, match="rule"):
        select_setting(np.zeros((2, 2)), [0, 1], rule="median")
    with pytest.raises(ValueError, match="values"):
        select_setting(np.zeros((2, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="NaN"):
        select_setting(np.full((2, 2), np.nan), [0, 1])
    with pytest.raises(ValueError, match="confidence"):
        paired_t_interval([1.0, 2.0], confidence=1.5)
