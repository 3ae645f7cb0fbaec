"""The default summary holds its level under the null: a fixed-seed simulation.

Scores come from a resampling model with the overlap that random splits of
one data set have: every row carries noise that no lambda changes (a shared
part and a part of its own per lambda), and split s scores the mean over its
random test rows. Two splits share test rows, so their scores are correlated
-- the correlation that the plain paired t ignores. The simulation is cheap
(no model is fitted) and deterministic, so the bound below is a regression
check: a change that undoes the overlap correction or the family-wise
control fails it. The full simulation through ``gap_sweep`` is
``benchmarks/calibration.py``.
"""

import numpy as np
import pytest

from skgap._core._selection import corrected_t_test, select_setting, verdicts
from skgap.evaluate import summarize_sweep

N_ROWS, N_TEST, N_SPLITS, REPS = 200, 40, 5, 300
LAMS = np.linspace(0, 1, 6)
RATIO = N_TEST / (N_ROWS - N_TEST)


def _null_scores(rng):
    shared = rng.standard_normal((N_ROWS, 1))
    noise = shared + 0.5 * rng.standard_normal((N_ROWS, LAMS.size))
    return np.array([noise[rng.permutation(N_ROWS)[:N_TEST]].mean(axis=0)
                     for _ in range(N_SPLITS)])


def _table(scores):
    return {
        "task": np.full(scores.size, "fusion", dtype=object),
        "metric": np.full(scores.size, "auc", dtype=object),
        "lam": np.tile(LAMS, N_SPLITS),
        "seed": np.repeat(np.arange(N_SPLITS), LAMS.size),
        "score": scores.ravel(),
        "n_train": np.full(scores.size, N_ROWS - N_TEST),
        "n_test": np.full(scores.size, N_TEST),
    }


@pytest.fixture(scope="module")
def null_rates():
    """Rates over REPS null runs: the default summary, and the two rules it replaced."""
    rng = np.random.default_rng(20)
    counts = dict.fromkeys(("flagged", "moved", "plain_flagged", "one_se_moved"), 0)
    for _ in range(REPS):
        S = _null_scores(rng)
        s = summarize_sweep(_table(S), as_frame=False)
        counts["flagged"] += s["verdict"][-1] != "no evidence"
        counts["moved"] += bool(s["selected"][1:].any())
        _, _, low, high, _ = corrected_t_test(S[:, -1] - S[:, 0], 0.0)
        counts["plain_flagged"] += verdicts(low, high) != "no evidence"
        counts["one_se_moved"] += select_setting(S, LAMS, "one_se", test_train_ratio=RATIO)[0] > 0
    return {k: v / REPS for k, v in counts.items()}


def test_default_summary_keeps_its_level_under_the_null(null_rates):
    # 5% nominal; 7.5% is beyond the Monte-Carlo noise of 300 runs of a calibrated 5%.
    assert null_rates["flagged"] <= 0.075
    assert null_rates["moved"] <= 0.075


def test_the_check_can_fail(null_rates):
    """Without the overlap correction, and with the classic one-SE rule, the
    same runs break the bounds: the test above is not vacuous."""
    assert null_rates["plain_flagged"] > 0.075
    assert null_rates["one_se_moved"] > 0.075


def test_a_real_effect_is_still_found():
    rng = np.random.default_rng(21)
    found = 0
    for _ in range(40):
        S = _null_scores(rng) + 0.4 * LAMS  # a planted effect, growing with lambda
        s = summarize_sweep(_table(S), as_frame=False)
        found += s["lam"][s["selected"]][0] > 0
    assert found >= 36


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_verdicts_do_not_depend_on_the_scale_of_the_scores(scale):
    rng = np.random.default_rng(22)
    t = _table(_null_scores(rng) + 0.4 * LAMS)
    ref = summarize_sweep(t, as_frame=False)
    big = summarize_sweep(dict(t, score=t["score"] * scale), as_frame=False)
    assert big["verdict"].tolist() == ref["verdict"].tolist()
    assert big["selected"].tolist() == ref["selected"].tolist()
    np.testing.assert_allclose(big["std"] / scale, ref["std"], rtol=1e-9)
    np.testing.assert_allclose(big["se"][1:] / scale, ref["se"][1:], rtol=1e-9)
    np.testing.assert_allclose(big["p_value"][1:], ref["p_value"][1:], rtol=1e-7)
