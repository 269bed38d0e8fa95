"""Speedup statistics and the normalized reward."""

from __future__ import annotations

import math

from perfgym.grading.timing import normalized_reward, speedup_interval


def test_speedup_is_ratio_of_medians_with_an_interval_around_it():
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


def test_calibration_cancels_a_machine_that_runs_slower():
    from perfgym.grading.timing import calibrated

    # The same work measured on a machine that ran 30% slower for the candidate's runs.
    base = calibrated({"A": 10.0, "B": 10.0}, {"A": 0.5, "B": 0.5})
    cand = calibrated({"A": 1.3, "B": 1.3}, {"A": 0.65, "B": 0.65})
    assert math.isclose(speedup_interval(base, cand)[0], 10.0)
    # Without every calibration the raw times are used.
    assert calibrated({"A": 2.0}, {"A": None}) == [2.0]
