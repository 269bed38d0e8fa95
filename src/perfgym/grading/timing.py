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
"""The run time a speedup compares: the lower quartile of a program's timed runs (the second
fastest of five). Interference on a shared machine only ever lengthens a run, so the fast end
measures the code rather than its neighbours: over repeated gradings of the same file on this
VM the ratio of medians varied by up to 17%, the ratio of lower quartiles by 6-8%. Unlike the
minimum, one freak fast run (say a cache hit in a repeated run) cannot set it."""


def typical_time(samples: list[float]) -> float:
    return float(np.percentile(samples, TIMING_QUANTILE))


def speedup_interval(
    baseline: list[float], candidate: list[float], n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """The speedup (ratio of lower quartiles) and a 95% bootstrap interval around it."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    point = typical_time(b) / typical_time(c)
    rng = np.random.default_rng(seed)
    bb = np.percentile(rng.choice(b, size=(n_boot, b.size)), TIMING_QUANTILE, axis=1)
    cc = np.percentile(rng.choice(c, size=(n_boot, c.size)), TIMING_QUANTILE, axis=1)
    lo, hi = np.percentile(bb / cc, [2.5, 97.5])
    return point, float(lo), float(hi)


def normalized_reward(speedup: float, reference_speedup: float) -> float:
    """Log speedup scaled so the baseline scores 0 and the reference 1; not capped above."""
    if speedup <= 1.0 or reference_speedup <= 1.0:
        return 0.0
    return math.log(speedup) / math.log(reference_speedup)
