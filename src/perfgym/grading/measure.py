"""One measurement of a pipeline file: five timed runs on two hidden seeds, plus the probes.

Process 1 runs hidden seeds A and B (timed), then the equivalence probes; process 2 runs A, B
and A again (timed), so determinism is checked across processes and the median has five
samples. The baseline and the candidate are measured by exactly this code, under the same CPU
budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perfgym.grading.evaluate import HiddenSplit, hidden_split
from perfgym.grading.execution import Outcome, RunOutput, execute
from perfgym.paths import machine_secret
from perfgym.tasks.spec import TaskSpec

PROCESSES = (("A", "B"), ("A2", "B2", "A3"))
"""Timed runs per sandboxed process: five samples; A2 and B2 repeat A and B in another process
(determinism). The probes run in the first process after its runs."""
RUN_SEEDS = {run: run[0] for runs in PROCESSES for run in runs}
"""Timed run id -> hidden seed label."""

Progress = Callable[[str], None]


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

    def samples(self) -> list[float]:
        return [r.wall_s for r in self.runs.values() if r.wall_s is not None]


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
    """Measure `source`; `stop_after_probes` may end it early (a failed probe needs no timing)."""
    m = Measurement()
    probe_seed = hidden_seed(spec.id, "probes", public)
    probes = (spec.make_probe_inputs(probe_seed), spec.probes)
    for index, runs in enumerate(PROCESSES):
        progress(
            f"timed runs {', '.join(runs)}" + (" and equivalence probes" if index == 0 else "")
        )
        outcome = execute(
            spec,
            source,
            [(run, splits[RUN_SEEDS[run]].sandbox_inputs()) for run in runs],
            run_timeout_s,
            probes=probes if index == 0 else None,
        )
        _collect(m, outcome)
        if outcome.error or (index == 0 and stop_after_probes(m)):
            break
    return m


def _collect(m: Measurement, outcome: Outcome) -> None:
    for run in outcome.runs:
        m.runs[run.id] = run
    m.probe_arrays.update(outcome.probe_arrays)
    m.probe_errors.update(outcome.probe_errors)
    if outcome.error:
        m.process_errors.append(outcome.error)
