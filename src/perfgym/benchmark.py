"""Measures the grader itself: its overhead, and how stable the speedup it reports is.

For each task it warms the baseline cache, then grades the reference several times, each
grading right after a timing of the reference solution's own script run (interpreter, imports
and its pipeline, as a user would run it), and reports ratios measured side by side:
  overhead   median over the gradings of grading seconds / (3 x the own runtime timed just
             before it + 5 s)                                             must be <= 1
  spread     max / min of the reference's speedup over the gradings      must be <= 1.15
  speedup    the median over the gradings of the reference's speedup / floor must be >= 1
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from perfgym.grading import grade
from perfgym.grading.baseline_cache import get_baseline
from perfgym.sandbox import Limits, run_sandboxed
from perfgym.tasks import TaskSpec

SPEEDUP_FLOOR = {"complex-pipeline": 40.0}
"""Speedups the reference must reach at full size beyond 1.5x the target (from the issue)."""


@dataclass
class TaskBenchmark:
    task: str
    size: str
    own_runtime_s: float
    """The median of `own_runtimes_s`."""
    own_runtimes_s: list[float]
    """The reference script's own runtime, timed right before each grading: the host's speed
    drifts by 20-30% over minutes, so each grading is compared with its own moment's."""
    grading_s: list[float]
    speedups: list[float]
    unpaired_speedups: list[float]
    """The same gradings' plain ratio of lower quartiles, without the reference pairs: the
    spread the pairs remove."""
    speedup_floor: float
    overhead_ratio: float
    spread: float
    speedup_ratio: float
    timings: list[dict]
    """Each grading's `timing` section (every run and its paired reference run): which pairs
    moved a grading can be read afterwards."""

    @property
    def ok(self) -> bool:
        return self.overhead_ratio <= 1.0 and self.spread <= 1.15 and self.speedup_ratio >= 1.0


def own_runtime(spec: TaskSpec, size: str) -> float:
    """Wall seconds of `python reference.py --n-samples N` in the sandbox, one CPU."""
    from perfgym.grading.timing import budget_cpus

    with tempfile.TemporaryDirectory(prefix="perfgym-bench-") as tmp:
        script = Path(tmp) / "solution.py"
        script.write_text(spec.reference_path.read_text())
        n = str(spec.size(size).n_samples)
        limits = Limits(timeout_s=600, cpus=budget_cpus(spec.cpu_budget))
        start = time.perf_counter()
        result = run_sandboxed(
            [sys.executable, "-I", "solution.py", "--n-samples", n], Path(tmp), limits
        )
        elapsed = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"the reference script failed: {result.stderr[-500:]}")
    return elapsed


def benchmark_task(spec: TaskSpec, size: str, gradings: int, say=print) -> TaskBenchmark:
    get_baseline(spec, size, progress=say)
    own, times, speedups, unpaired, timings = [], [], [], [], []
    for i in range(gradings):
        own.append(own_runtime(spec, size))
        say(f"{spec.id}: reference script runs {own[-1]:.2f} s on its own")
        report = grade(spec, spec.reference_path, size)
        if report.verdict != "pass":
            raise RuntimeError(f"the reference did not pass: {report.reasons}")
        times.append(report.grading_seconds)
        speedups.append(report.timing["speedup"])
        unpaired.append(report.timing["speedup_unpaired"])
        timings.append(report.timing)
        say(
            f"{spec.id}: grading {i + 1}/{gradings}: {report.grading_seconds:.1f} s, "
            f"speedup {speedups[-1]:.2f}x (without the pairs {unpaired[-1]:.2f}x)"
        )
    floor = max(
        1.5 * spec.size(size).target_speedup,
        SPEEDUP_FLOOR.get(spec.id, 0.0) if size == "full" else 0.0,
    )
    return TaskBenchmark(
        task=spec.id,
        size=size,
        own_runtime_s=statistics.median(own),
        own_runtimes_s=own,
        grading_s=times,
        speedups=speedups,
        unpaired_speedups=unpaired,
        speedup_floor=floor,
        overhead_ratio=statistics.median(t / (3 * o + 5) for t, o in zip(times, own, strict=True)),
        spread=max(speedups) / min(speedups),
        speedup_ratio=statistics.median(speedups) / floor,
        timings=timings,
    )


def render(results: list[TaskBenchmark]) -> str:
    lines = [
        f"{'task':<17} {'size':<5} {'own s':>6} {'grade s':>8} {'overhead':>9} "
        f"{'speedup':>8} {'spread':>7} {'unpaired':>9} {'vs floor':>9}  ok"
    ]
    for r in results:
        lines.append(
            f"{r.task:<17} {r.size:<5} {r.own_runtime_s:6.2f} "
            f"{statistics.median(r.grading_s):8.1f} "
            f"{r.overhead_ratio:9.2f} {statistics.median(r.speedups):7.1f}x {r.spread:7.3f} "
            f"{max(r.unpaired_speedups) / min(r.unpaired_speedups):9.3f} "
            f"{r.speedup_ratio:9.2f}  {'yes' if r.ok else 'NO'}"
        )
    lines.append(
        "overhead = median over gradings of grading time / (3 x own runtime just before + 5 s),"
        " must be <= 1; "
        "spread = max/min speedup, must be <= 1.15 (unpaired: the same without the reference "
        "pairs); "
        "vs floor must be >= 1"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from perfgym.tasks import TASKS

    parser = argparse.ArgumentParser(prog="perfgym benchmark", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", action="append", choices=sorted(TASKS), help="repeatable; default all"
    )
    parser.add_argument("--size", default="full", choices=["full", "small"])
    parser.add_argument("--gradings", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = []
    for task_id in args.task or list(TASKS):
        results.append(
            benchmark_task(
                TASKS[task_id], args.size, args.gradings, lambda m: print(m, file=sys.stderr)
            )
        )
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
