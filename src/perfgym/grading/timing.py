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


def speedup_interval(
    baseline: list[float], candidate: list[float], n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Median speedup and a 95% bootstrap interval of the ratio of medians."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    point = float(np.median(b) / np.median(c))
    rng = np.random.default_rng(seed)
    bb = np.median(rng.choice(b, size=(n_boot, b.size)), axis=1)
    cc = np.median(rng.choice(c, size=(n_boot, c.size)), axis=1)
    lo, hi = np.percentile(bb / cc, [2.5, 97.5])
    return point, float(lo), float(hi)


def calibrated(samples: dict[str, float], calibration: dict[str, float | None]) -> list[float]:
    """Run times in units of the calibration workload timed just before each run; the raw
    times when any calibration is missing."""
    if any(calibration.get(k) in (None, 0) for k in samples):
        return list(samples.values())
    return [samples[k] / calibration[k] for k in samples]


def normalized_reward(speedup: float, reference_speedup: float) -> float:
    """Log speedup scaled so the baseline scores 0 and the reference 1; not capped above."""
    if speedup <= 1.0 or reference_speedup <= 1.0:
        return 0.0
    return math.log(speedup) / math.log(reference_speedup)
