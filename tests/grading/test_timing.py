"""Speedup statistics and the normalized reward."""

from __future__ import annotations

import math

from perfgym.grading.timing import normalized_reward, speedup_interval


def test_speedup_is_a_ratio_with_an_interval_around_it():
    point, lo, hi = speedup_interval([10.0, 11.0, 9.0], [1.0, 1.1, 0.9])
    assert math.isclose(point, 10.0)
    assert lo <= point <= hi
    assert lo > 7 and hi < 13


def test_reward_is_log_speedup_normalized_by_reference():
    assert normalized_reward(1.0, 20.0) == 0.0
    assert normalized_reward(0.5, 20.0) == 0.0
    assert math.isclose(normalized_reward(20.0, 20.0), 1.0)
    assert normalized_reward(40.0, 20.0) > 1.0
    assert math.isclose(normalized_reward(math.sqrt(20.0), 20.0), 0.5)


def test_speedup_compares_the_fast_end_and_ignores_one_freak_run():
    # Interference lengthens some runs; one run far faster than the rest (a cache hit) is one
    # sample out of five and cannot set the speedup alone.
    baseline = [10.0, 10.0, 12.0, 15.0, 11.0]
    steady = speedup_interval(baseline, [1.0, 1.0, 1.2, 1.5, 1.1])[0]
    assert math.isclose(steady, 10.0)
    with_freak = speedup_interval(baseline, [1.0, 1.0, 1.2, 1.5, 0.01])[0]
    assert math.isclose(with_freak, 10.0)
    noisy = speedup_interval(baseline, [1.0, 1.0, 1.6, 1.9, 1.7])[0]
    assert math.isclose(noisy, 10.0)
