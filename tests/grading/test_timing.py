"""Speedup statistics and the normalized reward."""

from __future__ import annotations

import math

from perfgym.grading.timing import normalized_reward, paired_speedup

IDS = ("A", "B", "A2", "B2", "A3")


def _pairs(measured: list[float], reference: list[float]) -> dict[str, tuple[float, float]]:
    return dict(zip(IDS, zip(measured, reference, strict=True), strict=True))


def test_speedup_goes_through_the_reference_with_an_interval_around_it():
    # baseline runs take 10x the reference, the candidate's runs half the reference's time
    baseline = _pairs([10.0, 11.0, 9.0, 10.0, 10.0], [1.0, 1.1, 0.9, 1.0, 1.0])
    candidate = _pairs([0.5, 0.55, 0.45, 0.5, 0.5], [1.0, 1.1, 0.9, 1.0, 1.0])
    point, lo, hi = paired_speedup(baseline, candidate)
    assert math.isclose(point, 20.0)
    assert lo <= point <= hi


def test_the_machine_slowing_down_between_baseline_and_grading_cancels():
    # The same programs on a machine 30% slower at grading time, and drifting within it: the
    # plain ratio of run times would say 10x / 1.3; the pairs still say 10x.
    baseline = _pairs([10.0] * 5, [1.0] * 5)
    drift = [1.3, 1.2, 1.45, 1.3, 1.35]
    candidate = _pairs([1.0 * d for d in drift], [1.0 * d for d in drift])
    assert math.isclose(paired_speedup(baseline, candidate)[0], 10.0)


def test_one_freak_pair_cannot_set_the_speedup():
    # a cache hit in one repeated run makes one pair's ratio huge: the median ignores it
    baseline = _pairs([10.0] * 5, [1.0] * 5)
    candidate = _pairs([0.5, 0.5, 0.5, 0.5, 0.001], [1.0] * 5)
    assert math.isclose(paired_speedup(baseline, candidate)[0], 20.0)


def test_a_noisy_grading_has_a_wider_interval():
    baseline = _pairs([10.0] * 5, [1.0] * 5)
    steady = paired_speedup(baseline, _pairs([0.5] * 5, [1.0] * 5))
    noisy = paired_speedup(baseline, _pairs([0.4, 0.6, 0.5, 0.7, 0.45], [1.0] * 5))
    assert steady[2] - steady[1] < 1e-9
    assert noisy[2] - noisy[1] > 3.0


def test_reward_is_log_speedup_normalized_by_reference():
    assert normalized_reward(1.0, 20.0) == 0.0
    assert normalized_reward(0.5, 20.0) == 0.0
    assert math.isclose(normalized_reward(20.0, 20.0), 1.0)
    assert normalized_reward(40.0, 20.0) > 1.0
    assert math.isclose(normalized_reward(math.sqrt(20.0), 20.0), 0.5)
