"""One measurement of a pipeline file: five timed runs on two hidden seeds, plus the probes,
each run paired with a run of the task's reference solution.

Process 1 runs hidden seeds A and B (timed), then the equivalence probes; process 2 runs A, B
and A again (timed), so determinism is checked across processes. Beside them, in its own
sandboxed process, the reference solution runs the same inputs, and the two take turns on the
timed CPU: each run of the measured file has a reference run next to it. The machine's speed
drifts by 20-30% over tens of seconds (other tenants on the host); a pair shares that drift,
so the ratio of a pair cancels it (see timing.py). The baseline and the candidate are measured
by exactly this code, under the same CPU budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perfgym.grading.evaluate import HiddenSplit, hidden_split
from perfgym.grading.execution import Outcome, RunOutput, TimedProcess
from perfgym.paths import machine_secret
from perfgym.tasks.spec import TaskSpec

PROCESSES = (("A", "B"), ("A2", "B2", "A3"))
"""Timed runs per sandboxed process: five samples; A2 and B2 repeat A and B in another process
(determinism). The probes run in the first process after its runs."""
RUN_SEEDS = {run: run[0] for runs in PROCESSES for run in runs}
"""Timed run id -> hidden seed label."""

Progress = Callable[[str], None]

PARKED_CPU_ALLOWANCE_S = 0.05
"""CPU seconds a measured process may use while it waits and the reference's run is timed
(clock-tick rounding). More means it worked in the background to slow the reference down."""


class ReferenceRunError(RuntimeError):
    """The task's reference solution failed in its paired runs: an infrastructure error."""


PUBLIC_SEED = 0
"""The seed every task's baseline `main()` runs on: the data the agent sees. The agent's
`check` tool grades on it alone, so it learns nothing about the hidden seeds."""


def hidden_seed(task_id: str, label: str, public: bool = False) -> int:
    """A seed derived from the machine's secret: no agent has seen it, none can compute it.
    With `public`, every label maps to the public seed instead."""
    if public:
        return PUBLIC_SEED
    digest = hashlib.sha256(f"{machine_secret()}|{task_id}|{label}".encode()).hexdigest()
    return int(digest[:8], 16)


@dataclass
class Measurement:
    runs: dict[str, RunOutput] = field(default_factory=dict)
    probe_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)
    process_errors: list[str] = field(default_factory=list)
    reference_runs: dict[str, RunOutput] = field(default_factory=dict)
    """The reference solution's run paired with each run of the same id."""
    parked_cpu: dict[str, float] = field(default_factory=dict)
    """Run id -> CPU seconds the measured process used while that id's reference run was timed."""

    def samples(self) -> list[float]:
        return [r.wall_s for r in self.runs.values() if r.wall_s is not None]

    def pairs(self) -> dict[str, tuple[float, float]]:
        """Run id -> (this file's time, the paired reference run's time), for complete pairs."""
        return {
            k: (r.wall_s, self.reference_runs[k].wall_s)
            for k, r in self.runs.items()
            if r.wall_s is not None
            and k in self.reference_runs
            and self.reference_runs[k].wall_s is not None
        }


def hidden_splits(spec: TaskSpec, size: str, public: bool = False) -> dict[str, HiddenSplit]:
    n = spec.size(size).n_samples
    return {
        label: hidden_split(spec, n, hidden_seed(spec.id, label, public)) for label in ("A", "B")
    }


def measure(
    spec: TaskSpec,
    source: Path,
    size: str,
    splits: dict[str, HiddenSplit],
    run_timeout_s: float,
    progress: Progress = lambda _: None,
    stop_after_probes: Callable[[Measurement], bool] = lambda _: False,
    public: bool = False,
) -> Measurement:
    """Measure `source`, each run paired with a reference run; `stop_after_probes` may end it
    early (a failed probe needs no timing). Raises ReferenceRunError if the reference fails."""
    m = Measurement()
    probe_seed = hidden_seed(spec.id, "probes", public)
    probes = (spec.make_probe_inputs(probe_seed), spec.probes)
    every_run = [(run, splits[RUN_SEEDS[run]].sandbox_inputs()) for run in RUN_SEEDS]
    with TimedProcess(spec, spec.reference_path, every_run, run_timeout_s) as reference:
        for index, runs in enumerate(PROCESSES):
            progress(
                f"timed runs {', '.join(runs)}"
                + (" and equivalence probes" if index == 0 else "")
                + ", each beside a run of the reference solution"
            )
            with TimedProcess(
                spec,
                source,
                [(run, splits[RUN_SEEDS[run]].sandbox_inputs()) for run in runs],
                run_timeout_s,
                probes=probes if index == 0 else None,
            ) as candidate:
                if index == 0 and not reference.wait_ready():
                    raise ReferenceRunError(f"the reference solution: {reference.outcome.error}")
                if candidate.wait_ready():
                    _take_turns(m, reference, candidate, len(m.runs))
                    candidate.run_probes()
            _collect(m, candidate.outcome)
            if candidate.outcome.error or (index == 0 and stop_after_probes(m)):
                break
    return m


def _take_turns(
    m: Measurement, reference: TimedProcess, candidate: TimedProcess, done: int
) -> None:
    """Alternate the two processes' runs, the reference first in every other pair (a run
    right after another may differ from one after a pause)."""
    for i in range(len(candidate.outcome.runs)):
        first, second = (reference, candidate) if (done + i) % 2 == 0 else (candidate, reference)
        for proc in (first, second):
            before = candidate.cpu_seconds() if proc is reference else 0.0
            run = proc.run_next()
            if proc is reference:
                if run is None or run.wall_s is None:
                    why = reference.outcome.error or (run.error if run else "no run left")
                    raise ReferenceRunError(f"the reference solution's paired run failed: {why}")
                m.reference_runs[run.id] = run
                m.parked_cpu[run.id] = candidate.cpu_seconds() - before
            elif run is None or candidate.outcome.error:
                return


def _collect(m: Measurement, outcome: Outcome) -> None:
    for run in outcome.runs:
        m.runs[run.id] = run
    m.probe_arrays.update(outcome.probe_arrays)
    m.probe_errors.update(outcome.probe_errors)
    if outcome.error:
        m.process_errors.append(outcome.error)
