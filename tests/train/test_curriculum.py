"""Tests of the eCLIP expert-curriculum schedule."""

import numpy as np
import pytest

pytest.importorskip("torch")

from skgap.train._curriculum import expert_probability  # noqa: E402


def test_phases_of_the_default_schedule():
    S = 1000
    s = np.arange(S)
    p = expert_probability(s, S)
    # Cold start: no expert pairs during the first 10% of the steps.
    assert np.all(p[s <= 100] == 0)
    # Warm-up over the next 30%: linear from 0.05 to 0.5.
    warm = (s > 100) & (s <= 400)
    assert np.all(np.diff(p[warm]) > 0)
    assert p[warm][-1] == pytest.approx(0.5)
    assert p[101] == pytest.approx(0.05 + 0.45 / 300)
    np.testing.assert_allclose(np.diff(p[warm]), 0.45 / 300)
    # Anneal over the next 40%: linear back to 0.05.
    anneal = (s > 400) & (s <= 800)
    assert np.all(np.diff(p[anneal]) < 0)
    np.testing.assert_allclose(np.diff(p[anneal]), -0.45 / 400)
    assert p[800] == pytest.approx(0.05)
    # Then the floor.
    assert np.all(p[s > 800] == 0.05)
    assert p.max() == pytest.approx(0.5)


def test_scalar_and_vector_agree():
    steps = [0, 7, 13, 55, 81, 99]
    vec = expert_probability(steps, 100)
    assert isinstance(expert_probability(13, 100), float)
    assert vec.shape == (6,)
    np.testing.assert_array_equal(vec, [expert_probability(s, 100) for s in steps])


def test_custom_phases():
    p = expert_probability(np.arange(10), 10, cold_start=0, warmup=0.5, anneal=0.5,
                           min_prob=0.2, max_prob=1.0)
    assert p[0] == 0  # step 0 is the (empty) cold start boundary
    assert p[5] == pytest.approx(1.0)
    assert p[9] == pytest.approx(0.36)


def test_short_run_skips_empty_phases():
    # With 3 steps every phase rounds to 0 or 1 step; values stay in [0, max].
    p = expert_probability(np.arange(3), 3)
    assert np.all((0 <= p) & (p <= 0.5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(step=0, n_steps=0), "n_steps"),
        (dict(step=-1, n_steps=10), "step"),
        (dict(step=0, n_steps=10, cold_start=0.5, warmup=0.5, anneal=0.5), "exceeds 1"),
        (dict(step=0, n_steps=10, warmup=1.5), "warmup"),
        (dict(step=0, n_steps=10, min_prob=0.6, max_prob=0.5), "min_prob"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        expert_probability(**kwargs)
