"""Speedup statistics and the normalized reward."""

from __future__ import annotations

import math

from perfgym.grading.timing import PAIR_BAND, normalized_reward, paired_speedup

IDS = ("A", "B", "C", "A2", "B2", "C2")


def _pairs(measured: list[float], reference: list[float]) -> dict[str, tuple[float, float]]:
    return dict(zip(IDS, zip(measured, reference, strict=True), strict=True))


def test_speedup_goes_through_the_reference_with_an_interval_around_it():
    # baseline runs take 10x the reference, the candidate's runs half the reference's time
    baseline = _pairs([10.0, 11.0, 9.0, 10.0, 10.0, 12.0], [1.0, 1.1, 0.9, 1.0, 1.0, 1.2])
    candidate = _pairs([0.5, 0.55, 0.45, 0.5, 0.5, 0.6], [1.0, 1.1, 0.9, 1.0, 1.0, 1.2])
    point, lo, hi = paired_speedup(baseline, candidate)
    assert math.isclose(point, 20.0)
    assert lo <= point <= hi


def test_the_machine_slowing_down_between_baseline_and_grading_cancels():
    # The same programs on a machine 30% slower at grading time, and drifting within it: the
    # plain ratio of run times would say 10x / 1.3; the pairs still say 10x.
    baseline = _pairs([10.0] * 6, [1.0] * 6)
    drift = [1.3, 1.2, 1.45, 1.3, 1.35, 1.25]
    candidate = _pairs([1.0 * d for d in drift], [1.0 * d for d in drift])
    assert math.isclose(paired_speedup(baseline, candidate)[0], 10.0)


def test_one_freak_pair_moves_the_speedup_by_at_most_its_band():
    # one run 500x faster than the rest (a host hiccup the other way, or a shortcut the other
    # checks missed) counts as if only e^PAIR_BAND faster than the median pair
    baseline = _pairs([10.0] * 6, [1.0] * 6)
    for freak in (0.001, 1e-9):
        candidate = _pairs([0.5] * 5 + [freak], [1.0] * 6)
        point = paired_speedup(baseline, candidate)[0]
        assert math.isclose(point, 20.0 * math.exp(PAIR_BAND / 6))


def test_every_pair_within_the_band_counts():
    # a median would report the middle of these; the banded mean is their geometric mean,
    # which varies less from grading to grading (docs/grading.md)
    baseline = _pairs([10.0] * 6, [1.0] * 6)
    ratios = [1.9, 2.0, 2.05, 2.2, 2.3, 2.4]
    candidate = _pairs([1.0 / r for r in ratios], [1.0] * 6)
    geometric = math.exp(sum(math.log(r) for r in ratios) / 6)
    assert math.isclose(paired_speedup(baseline, candidate)[0], 10.0 * geometric)


def test_a_noisy_grading_has_a_wider_interval():
    baseline = _pairs([10.0] * 6, [1.0] * 6)
    steady = paired_speedup(baseline, _pairs([0.5] * 6, [1.0] * 6))
    noisy = paired_speedup(baseline, _pairs([0.4, 0.6, 0.5, 0.7, 0.45, 0.55], [1.0] * 6))
    assert steady[2] - steady[1] < 1e-9
    assert noisy[2] - noisy[1] > 3.0


def test_reward_is_log_speedup_normalized_by_reference():
    assert normalized_reward(1.0, 20.0) == 0.0
    assert normalized_reward(0.5, 20.0) == 0.0
    assert math.isclose(normalized_reward(20.0, 20.0), 1.0)
    assert normalized_reward(40.0, 20.0) > 1.0
    assert math.isclose(normalized_reward(math.sqrt(20.0), 20.0), 0.5)
