"""One measurement of a pipeline file: three timed runs on two hidden seeds, plus the probes.

Process 1 runs hidden seed A (timed), then the equivalence probes; process 2 runs hidden seed B
and then A again (both timed), so determinism is checked across processes. The baseline and the
candidate are measured by exactly this code, under the same CPU budget.
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

RUN_SEEDS = {"A": "A", "B": "B", "A2": "A"}
"""Timed run id -> hidden seed label; A2 repeats A in another process for determinism."""

Progress = Callable[[str], None]


def hidden_seed(task_id: str, label: str) -> int:
    """A seed derived from the machine's secret: no agent has seen it, none can compute it."""
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


def hidden_splits(spec: TaskSpec, size: str) -> dict[str, HiddenSplit]:
    n = spec.size(size).n_samples
    return {label: hidden_split(spec, n, hidden_seed(spec.id, label)) for label in ("A", "B")}


def measure(
    spec: TaskSpec,
    source: Path,
    size: str,
    splits: dict[str, HiddenSplit],
    run_timeout_s: float,
    progress: Progress = lambda _: None,
    stop_after_probes: Callable[[Measurement], bool] = lambda _: False,
) -> Measurement:
    """Measure `source`; `stop_after_probes` may end it early (a failed probe needs no timing)."""
    m = Measurement()
    probe_seed = hidden_seed(spec.id, "probes")
    probes = (spec.make_probe_inputs(probe_seed), spec.probes)
    progress("run A (timed) and equivalence probes")
    first = execute(
        spec, source, [("A", splits["A"].sandbox_inputs())], run_timeout_s, probes=probes
    )
    _collect(m, first)
    if first.error or stop_after_probes(m):
        return m
    progress("runs B and A again (timed)")
    second = execute(
        spec,
        source,
        [("B", splits["B"].sandbox_inputs()), ("A2", splits["A"].sandbox_inputs())],
        run_timeout_s,
    )
    _collect(m, second)
    return m


def _collect(m: Measurement, outcome: Outcome) -> None:
    for run in outcome.runs:
        m.runs[run.id] = run
    m.probe_arrays.update(outcome.probe_arrays)
    m.probe_errors.update(outcome.probe_errors)
    if outcome.error:
        m.process_errors.append(outcome.error)
