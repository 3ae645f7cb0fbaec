"""Tests of the paired-split statistics in skgap._selection."""

import numpy as np
import pytest
from scipy import stats

from skgap._core._selection import (
    corrected_t_test,
    family_helps,
    holm_adjust,
    paired_t_interval,
    select_setting,
    sign_flip_pvalue,
    verdicts,
)


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


def test_one_se_tolerance_is_one_standard_error_not_two():
    # lambda = 0.5 sits 1.5 standard errors below the best (lambda = 1): outside one SE,
    # inside two. The rule must keep lambda = 1.
    a = 1.5 * np.sqrt(4 / 3) / 2
    d = np.array([-a - 1, -a + 1, -a - 1, -a + 1])
    scores = np.column_stack([np.zeros(4), 10 + d, np.full(4, 10.0)])
    index, se = select_setting(scores, [0.0, 0.5, 1.0], rule="one_se")
    assert se[1] == pytest.approx(np.sqrt(4 / 3) / 2)
    assert index == 2
    # At 0.9 standard errors below, lambda = 0.5 is a candidate and, closer to 0, chosen.
    b = 0.9 * np.sqrt(4 / 3) / 2
    scores[:, 1] = 10 + np.array([-b - 1, -b + 1, -b - 1, -b + 1])
    assert select_setting(scores, [0.0, 0.5, 1.0], rule="one_se")[0] == 1


def test_one_split_has_no_standard_error():
    mean, se, low, high, p = corrected_t_test(np.array([[0.1, 0.2]]), 0.25)
    assert np.isnan(se).all() and np.isnan(low).all() and np.isnan(high).all()
    assert np.isnan(p).all()
    _, se_best = select_setting(np.array([[0.5, 0.6, 0.7]]), [0.0, 0.5, 1.0])
    assert np.isnan(se_best).all()  # the best one too: one split says nothing of spread


def test_corrected_t_matches_nadeau_bengio():
    rng = np.random.default_rng(5)
    d = rng.normal(0.02, 0.05, size=10)
    ratio = 0.25
    mean, se, low, high, p = corrected_t_test(d, ratio, confidence=0.9)
    want_se = d.std(ddof=1) * np.sqrt(1 / 10 + ratio)
    t = d.mean() / want_se
    assert se == pytest.approx(want_se)
    assert p == pytest.approx(2 * stats.t.sf(abs(t), 9))
    q = stats.t.ppf(0.95, 9)
    assert (low, high) == pytest.approx((d.mean() - q * want_se, d.mean() + q * want_se))
    # ratio 0: the textbook paired t of scipy
    ref = stats.ttest_1samp(d, 0.0)
    assert corrected_t_test(d, 0.0)[4] == pytest.approx(ref.pvalue)


def test_holm_against_its_definition():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 with m = 4: 0.04, 0.09, 0.09 (monotone), 0.2
    np.testing.assert_allclose(holm_adjust(p), [0.04, 0.09, np.nan, 0.09, 0.2])


def test_sign_flip_is_exact_and_matches_scipy():
    x = np.array([0.3, -0.1, 0.5, 0.2, 0.4, 0.1])
    ref = stats.permutation_test((x,), np.sum, permutation_type="samples",
                                 n_resamples=10_000).pvalue
    assert sign_flip_pvalue(x) == pytest.approx(ref)
    assert sign_flip_pvalue(np.array([0.1, 0.2, 0.3, 0.4, 0.5])) == pytest.approx(2 / 32)
    assert np.isnan(sign_flip_pvalue(np.array([0.1])))


def test_holm_rule_stays_at_the_reference_unless_the_family_says_helps():
    lams = np.linspace(0, 1, 6)
    rng = np.random.default_rng(6)
    flat = 0.8 + rng.normal(0, 0.01, size=(5, 6))
    assert select_setting(flat, lams, "holm_one_se", test_train_ratio=0.25)[0] == 0
    effect = 0.7 + 0.1 * lams + rng.normal(0, 0.001, size=(5, 6))
    helps, p, p_holm = family_helps(effect, lams, test_train_ratio=0.25)
    assert helps[1:].all() and not helps[0] and np.isnan(p[0])
    assert np.all(p_holm[1:] >= p[1:])
    index = select_setting(effect, lams, "holm_one_se", test_train_ratio=0.25)[0]
    assert helps[index]
    with pytest.raises(ValueError, match="reference"):
        select_setting(effect[:, 1:], lams[1:], "holm_one_se")
    with pytest.raises(ValueError, match="infinite"):
        select_setting(np.array([[0.1, np.inf], [0.2, 0.3]]), [0, 1])
    with pytest.raises(ValueError, match="test_train_ratio"):
        corrected_t_test([0.1, 0.2], -1.0)
