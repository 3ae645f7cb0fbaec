"""summarize_sweep: statistics against scipy, verdicts, and the one-SE rule."""

import numpy as np
import pytest
from scipy import stats

from skgap.evaluate import summarize_sweep


def _long(scores, lams, task="fusion", metric="auc", **extra):
    """A long table from a (n_seeds, n_lams) score matrix."""
    scores = np.asarray(scores, dtype=float)
    n_seeds, n_lams = scores.shape
    table = {
        "task": np.array([task] * scores.size, dtype=object),
        "metric": np.array([metric] * scores.size, dtype=object),
        "lam": np.tile(np.asarray(lams, dtype=float), n_seeds),
        "seed": np.repeat(np.arange(n_seeds), n_lams),
        "score": scores.ravel(),
    }
    table.update({k: np.asarray(v, dtype=float) for k, v in extra.items()})
    return table


def _concat(*tables):
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def test_statistics_against_scipy():
    rng = np.random.RandomState(0)
    lams = [0.0, 0.5, 1.0]
    S = 0.8 + rng.normal(scale=0.05, size=(6, 1)) + rng.normal(scale=0.01, size=(6, 3))
    S[:, 2] += 0.03
    s = summarize_sweep(_long(S, lams, gap_norm=np.tile([1.0, 0.5, 0.1], 6)),
                        test_train_ratio=0.0, as_frame=False)
    np.testing.assert_allclose(s["mean"], S.mean(0))
    np.testing.assert_allclose(s["std"], S.std(0, ddof=1))
    np.testing.assert_array_equal(s["n"], [6, 6, 6])
    np.testing.assert_allclose(s["gap_norm"], [1.0, 0.5, 0.1])
    for j in (1, 2):
        res = stats.ttest_rel(S[:, j], S[:, 0])
        ci = res.confidence_interval(0.95)
        assert s["diff"][j] == pytest.approx((S[:, j] - S[:, 0]).mean())
        assert s["ci_low"][j] == pytest.approx(ci.low)
        assert s["ci_high"][j] == pytest.approx(ci.high)
        assert s["se"][j] == pytest.approx(stats.sem(S[:, j] - S[:, 0]))
    ci90 = stats.ttest_rel(S[:, 2], S[:, 0]).confidence_interval(0.9)
    s90 = summarize_sweep(_long(S, lams), confidence=0.9, test_train_ratio=0, as_frame=False)
    assert s90["ci_low"][2] == pytest.approx(ci90.low)
    assert s["verdict"][2] == "helps"
    assert s["diff"][0] == 0 and s["verdict"][0] == "no evidence"


def test_verdicts_follow_the_direction_of_each_metric():
    S = np.array([[0.5, 0.6, 0.3], [0.55, 0.66, 0.34], [0.52, 0.61, 0.33], [0.5, 0.62, 0.3]])
    auc = summarize_sweep(_long(S, [0, 0.5, 1]), select="best", as_frame=False)
    assert auc["verdict"].tolist() == ["no evidence", "helps", "hurts"]
    assert auc["selected"].tolist() == [False, True, False]
    mod = summarize_sweep(_long(S, [0, 0.5, 1], task="clustering", metric="modality_ARI"),
                          select="best", as_frame=False)
    # For modality_ARI lower is better: the clusters should not follow the modality.
    assert mod["verdict"].tolist() == ["no evidence", "hurts", "helps"]
    assert mod["selected"].tolist() == [False, False, True]


def test_one_se_picks_zero_on_a_flat_noisy_curve():
    rng = np.random.RandomState(3)
    lams = np.linspace(-1, 1, 9)
    # Split effects dominate; lambda adds noise around one flat mean ...
    noise = rng.normal(scale=0.004, size=(5, 9))
    S = 0.8 + rng.normal(scale=0.05, size=(5, 1)) + noise - noise.mean(0)
    # ... and lambda = 1 sits half a standard error above it: noise, not an effect.
    se = stats.sem(S[:, 8] - S[:, 4])
    S[:, 8] += 0.5 * se
    best = summarize_sweep(_long(S, lams), select="best", as_frame=False)
    one_se = summarize_sweep(_long(S, lams), as_frame=False)
    assert best["lam"][best["selected"]].tolist() == [1.0]
    assert one_se["lam"][one_se["selected"]].tolist() == [0.0]
    assert set(one_se["verdict"]) == {"no evidence"}


def test_one_se_keeps_a_real_effect():
    lams = [0.0, 0.5, 1.0]
    rng = np.random.RandomState(4)
    S = 0.7 + rng.normal(scale=0.05, size=(5, 1)) + np.array([0.0, 0.05, 0.1])
    S = S + rng.normal(scale=0.002, size=S.shape)
    s = summarize_sweep(_long(S, lams), as_frame=False)
    assert s["lam"][s["selected"]].tolist() == [1.0]
    assert s["se_to_best"][2] == 0


def test_groups_are_summarised_apart_and_frames_work():
    a = _long([[0.5, 0.6], [0.55, 0.7]], [0, 1])
    b = _long([[0.3, 0.2], [0.35, 0.3]], [0, 1], task="retrieval", metric="i2t_R@1")
    s = summarize_sweep(_concat(a, b), as_frame=False)
    assert list(zip(s["task"], s["metric"], s["lam"])) == [
        ("fusion", "auc", 0.0), ("fusion", "auc", 1.0),
        ("retrieval", "i2t_R@1", 0.0), ("retrieval", "i2t_R@1", 1.0)]
    assert s["selected"].sum() == 2
    np.testing.assert_allclose(s["mean"], [0.525, 0.65, 0.325, 0.25])
    pd = pytest.importorskip("pandas")
    frame = summarize_sweep(pd.DataFrame(_concat(a, b)))
    assert isinstance(frame, pd.DataFrame) and frame.shape[0] == 4


def test_without_lambda_zero_or_with_nan_scores():
    # Without lambda = 0 there is nothing to measure a change against: refused, not '-'.
    with pytest.raises(ValueError, match="fusion/auc: the table has no lambda = 0"):
        summarize_sweep(_long([[0.5, 0.6], [0.55, 0.7]], [0.5, 1]), as_frame=False)
    t = _long([[np.nan, np.nan], [np.nan, np.nan]], [0, 1], metric="auc_0")
    s = summarize_sweep(t, as_frame=False)
    assert not s["selected"].any() and s["n"].tolist() == [0, 0]
    t = _long([[0.5, np.nan], [0.6, 0.7], [0.55, 0.65]], [0, 1])
    s = summarize_sweep(t, as_frame=False)
    assert s["n"].tolist() == [3, 2]
    assert s["diff"][1] == pytest.approx(0.1)


def test_two_sweeps_in_one_table_are_refused():
    a = _long([[0.5, 0.6], [0.55, 0.7]], [0, 1])
    with pytest.raises(ValueError, match="several rows of fusion/auc for seed 0 and lambda 0"):
        summarize_sweep(_concat(a, a))


@pytest.mark.parametrize(
    "table, kwargs, match",
    [
        ({"lam": [0.0], "auc": [0.5]}, {}, "no column"),
        (_long(np.zeros((0, 1)), [0.0]), {}, "empty"),
        (_long([[0.5]], [0.0]), {"select": "max"}, "select"),
        (_long([[0.5]], [0.0]), {"confidence": 1.0}, "confidence"),
    ],
)
def test_errors(table, kwargs, match):
    with pytest.raises(ValueError, match=match):
        summarize_sweep(table, **kwargs)


def test_overlap_correction_reads_the_split_sizes():
    rng = np.random.RandomState(7)
    S = 0.8 + rng.normal(scale=0.05, size=(6, 1)) + rng.normal(scale=0.01, size=(6, 2))
    t = _long(S, [0, 1], n_train=np.full(12, 160), n_test=np.full(12, 40))
    s = summarize_sweep(t, as_frame=False)
    d = S[:, 1] - S[:, 0]
    assert s["se"][1] == pytest.approx(d.std(ddof=1) * np.sqrt(1 / 6 + 40 / 160))
    assert s["ci_method"][1] == "Nadeau-Bengio corrected resampled t"
    assert "n_train" not in s  # sizes are not geometry to average
    # No sizes: gap_sweep's default split (test_size=0.2), n_test / n_train = 1/4.
    assert summarize_sweep(_long(S, [0, 1]), as_frame=False)["se"][1] == pytest.approx(s["se"][1])
    half = summarize_sweep(t, test_train_ratio=1.0, as_frame=False)
    assert half["se"][1] == pytest.approx(d.std(ddof=1) * np.sqrt(1 / 6 + 1))
    with pytest.raises(ValueError, match="n_train/n_test"):
        summarize_sweep(_long(S, [0, 1], n_train=np.arange(12) + 1.0, n_test=np.ones(12)))


@pytest.mark.parametrize("column, value, match", [
    ("lam", np.nan, "'lam' column holds NaN"),
    ("seed", np.nan, "'seed' column holds NaN"),
    ("score", np.inf, "infinite"),
])
def test_missing_keys_and_infinite_scores_are_refused(column, value, match):
    t = _long([[0.5, 0.6], [0.55, 0.7]], [0, 1])
    t[column] = t[column].astype(float)
    t[column][1] = value
    with pytest.raises(ValueError, match=match):
        summarize_sweep(t)


def test_selected_is_consistent_with_the_verdicts():
    rng = np.random.RandomState(8)
    for _ in range(20):
        S = 0.8 + rng.normal(scale=0.05, size=(5, 1)) + rng.normal(scale=0.01, size=(5, 4))
        s = summarize_sweep(_long(S, [0, 0.3, 0.6, 1]), as_frame=False)
        chosen = int(np.flatnonzero(s["selected"])[0])
        # Off lambda = 0 only where the family-wise test (and so the verdict) says helps.
        assert s["lam"][chosen] == 0 or (s["helps_fwer"][chosen]
                                         and s["verdict"][chosen] == "helps")
