"""The grader's clock: one timing at a time per machine, and honest statistics on samples."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def timing_slot() -> Iterator[None]:
    """Hold the machine-wide timing slot (a file lock) so no two timed phases overlap, whatever
    cache directory each grader uses."""
    path = Path(os.environ.get("PERFGYM_TIMING_LOCK", "/tmp/perfgym-timing.lock"))
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def budget_cpus(budget: int) -> tuple[int, ...]:
    """The CPUs a timed run is moved to: the last `budget` of those this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    return tuple(cpus[-budget:])


def untimed_cpus(budget: int) -> tuple[int, ...]:
    """Where sandboxes live while not timed, so they never share a CPU with a timed run."""
    cpus = sorted(os.sched_getaffinity(0))
    return tuple(cpus[:-budget]) or tuple(cpus)


TIMING_QUANTILE = 25.0
"""A program's typical run time: the lower quartile of its timed runs (between the second and
third fastest of six). Tasks timed in pairs compare through the reference runs instead
(paired_speedup)."""


def typical_time(samples: list[float]) -> float:
    return float(np.percentile(samples, TIMING_QUANTILE))


def speedup_interval(
    baseline: list[float], candidate: list[float], n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """The speedup of a task timed without pairs: the ratio of lower quartiles, with a 95%
    bootstrap interval. Interference on a shared machine only lengthens a run, so the fast end
    measures the code rather than its neighbours; unlike the minimum, one freak fast run (say
    a cache hit in a repeated run) cannot set it."""
    return _with_interval(
        np.asarray(baseline, dtype=float),
        np.asarray(candidate, dtype=float),
        lambda b, c: (
            np.percentile(b, TIMING_QUANTILE, axis=-1) / np.percentile(c, TIMING_QUANTILE, axis=-1)
        ),
        n_boot,
        seed,
    )


def _with_interval(
    a: np.ndarray, b: np.ndarray, statistic, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """`statistic(a, b)` (computed along the last axis) and a 95% bootstrap interval around
    it, resampling `a` and `b` independently."""
    rng = np.random.default_rng(seed)
    aa = rng.choice(a, size=(n_boot, a.size))
    bb = rng.choice(b, size=(n_boot, b.size))
    lo, hi = np.percentile(statistic(aa, bb), [2.5, 97.5])
    return float(statistic(a, b)), float(lo), float(hi)


def pair_ratios(pairs: dict[str, tuple[float, float]], reference_over: bool) -> np.ndarray:
    """Per pair, reference time / measured time (`reference_over`) or the inverse."""
    t = np.array([p[0] for p in pairs.values()], dtype=float)
    r = np.array([p[1] for p in pairs.values()], dtype=float)
    return r / t if reference_over else t / r


PAIR_BAND = 0.2
"""How far (in log) a pair's ratio may pull the paired statistic from the pairs' median: a
ratio outside median x/÷ e^0.2 (1.22) counts as if at that edge."""


def banded_mean_ratio(ratios: np.ndarray) -> np.ndarray:
    """The geometric mean of pair ratios (along the last axis), each log ratio first clipped
    to the median's band (PAIR_BAND).

    A mean uses every pair where a median throws most of them away: 60 pairs of pytorch-nn's
    reference against itself (a pair's log ratio varies by 0.11), cut into gradings of five
    pairs, vary by 0.049 (sd of the log) with this statistic and 0.063 with the median
    (docs/grading.md). The band keeps most of the median's robustness: a freak pair (a hiccup
    of the host, or a run fast for a reason the other checks missed) counts as if at the
    band's edge, and can move the statistic only by that plus the one place it moves the
    median."""
    logs = np.log(ratios)
    mid = np.median(logs, axis=-1, keepdims=True)
    return np.exp(np.mean(np.clip(logs, mid - PAIR_BAND, mid + PAIR_BAND), axis=-1))


def paired_speedup(
    baseline_pairs: dict[str, tuple[float, float]],
    candidate_pairs: dict[str, tuple[float, float]],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The speedup through the reference solution, with a 95% bootstrap interval.

    Each run of the baseline and of the candidate was timed right beside a run of the reference
    on the same input, so each pair shares the machine's speed of that moment. The speedup is
    (over the baseline's pairs, baseline / reference) x (over the candidate's pairs,
    reference / candidate), each a banded mean (banded_mean_ratio): the machine's drift
    between the cached baseline and this grading, and within it, cancels (docs/grading.md has
    the measurements)."""
    return _with_interval(
        pair_ratios(baseline_pairs, reference_over=False),
        pair_ratios(candidate_pairs, reference_over=True),
        lambda b, c: banded_mean_ratio(b) * banded_mean_ratio(c),
        n_boot,
        seed,
    )


def normalized_reward(speedup: float, reference_speedup: float) -> float:
    """Log speedup scaled so the baseline scores 0 and the reference 1; not capped above."""
    if speedup <= 1.0 or reference_speedup <= 1.0:
        return 0.0
    return math.log(speedup) / math.log(reference_speedup)
