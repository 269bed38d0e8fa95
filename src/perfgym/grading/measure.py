"""One measurement of a pipeline file: timed runs on hidden seeds, plus the probes, each run
paired with a run of the task's reference solution.

Process 1 runs each hidden seed once (A, B, C, ...), then the equivalence probes; process 2
runs every seed again in reverse order (..., C2, B2, A2), so determinism is checked across
processes and histories, and no process ever sees a seed twice (a repeat in one process could
be memoized). Process 2 imports its libraries while process 1's runs are timed, on the other
CPU; the grader makes the hidden data while process 1 and the reference import. Beside them,
in its own sandboxed process, the reference solution runs the same inputs: each run of the
measured file shares the timed CPU with a reference run of the same id, in turns of a tenth of
a second (execution.run_in_turns). The machine's speed swings by 20-40% within seconds (other
tenants on the host); a pair sees the same swings, so the ratio of a pair cancels them (see
timing.py). The baseline and the candidate are measured by exactly this code, under the same
CPU budget.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perfgym.grading.evaluate import HiddenSplit, hidden_split
from perfgym.grading.execution import (
    Outcome,
    RunOutput,
    TimedProcess,
    execute,
    run_in_turns,
)
from perfgym.paths import machine_secret
from perfgym.tasks.spec import TaskSpec


def seed_labels(spec: TaskSpec, size: str) -> tuple[str, ...]:
    """The hidden seeds of a measurement: A, B, C, ..."""
    return tuple("ABCDEFGH"[: spec.size(size).seeds])


def processes(spec: TaskSpec, size: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Timed run ids per sandboxed process: every seed once in each (the probes run in the
    first, after its runs), the second in reverse order, so that a seed's two runs follow
    different runs: a result that depends on what ran before (an unseeded generator, a file
    left by an earlier run) differs between them."""
    seeds = seed_labels(spec, size)
    return seeds, tuple(f"{s}2" for s in reversed(seeds))


def paired_runs(spec: TaskSpec, size: str) -> tuple[str, ...]:
    """The timed runs that have a reference run beside them, in the order they are timed: the
    first `pairs_per_process` of each process (every run by default; none unpaired). The
    first: a process's first run pays whatever one-time work the file does (compiling,
    caching), as a single real run of the pipeline would; a later run may reuse it."""
    sz = spec.size(size)
    if not sz.paired_timing:
        return ()
    k = sz.pairs_per_process
    return tuple(run for runs in processes(spec, size) for run in runs[:k])


def run_seeds(spec: TaskSpec, size: str) -> dict[str, str]:
    """Timed run id -> hidden seed label, in the order the runs are timed."""
    return {run: run[0] for runs in processes(spec, size) for run in runs}


Progress = Callable[[str], None]

PARKED_CPU_ALLOWANCE_S = 0.05
"""CPU seconds a measured process may use while the reference has the timed CPU (it is frozen
then, where the machine has a freezer) or after its `done`. More means it worked in the
background, to slow the reference down or to work off the clock."""


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
    """Run id -> CPU seconds the measured process used while it should have been idle: while
    that id's reference run had the timed CPU, or (in turns) after its own `done`."""
    splits: dict[str, HiddenSplit] = field(default_factory=dict)
    """The hidden data of each seed label (made while the sandboxed processes import)."""

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
        label: hidden_split(spec, n, hidden_seed(spec.id, label, public))
        for label in seed_labels(spec, size)
    }


def measure(
    spec: TaskSpec,
    source: Path,
    size: str,
    run_timeout_s: float,
    progress: Progress = lambda _: None,
    stop_after_probes: Callable[[Measurement], bool] = lambda _: False,
    public: bool = False,
) -> Measurement:
    """Measure `source` (each run paired with a reference run where the task times in pairs);
    `stop_after_probes` may end it early (a failed probe needs no timing). The hidden data is
    made while the first processes import (`Measurement.splits` keeps it). Raises
    ReferenceRunError if the reference fails even when it runs alone."""
    m = Measurement()
    seeds = run_seeds(spec, size)
    layout = processes(spec, size)
    by_run: dict[str, dict[str, np.ndarray]] = {}  # run id -> its inputs, once they are made
    probe_inputs: dict[str, np.ndarray] = {}

    def give(proc: TimedProcess, index: int) -> None:
        proc.give_inputs({run: by_run[run] for run in layout[index]}, probe_inputs)

    def start(index: int) -> TimedProcess:
        probes = spec.probes if index == 0 else None
        proc = TimedProcess(spec, source, list(layout[index]), run_timeout_s, probes)
        if by_run:  # else given once they are made
            give(proc, index)
        return proc

    try:
        with contextlib.ExitStack() as stack:
            reference = None
            if paired := paired_runs(spec, size):
                reference = stack.enter_context(
                    TimedProcess(
                        spec, spec.reference_path, list(paired), run_timeout_s, read_results=False
                    )
                )
            following = stack.enter_context(start(0))
            with reference.importing_on_timed_cpu() if reference else contextlib.nullcontext():
                # the grader's own work (making the hidden data) while those two import
                m.splits = hidden_splits(spec, size, public)
                per_seed = {k: split.sandbox_inputs() for k, split in m.splits.items()}
                by_run.update({run: per_seed[label] for run, label in seeds.items()})
                probe_inputs.update(spec.make_probe_inputs(hidden_seed(spec.id, "probes", public)))
                give(following, 0)
                if reference:
                    reference.give_inputs(by_run)
                    if not reference.wait_ready():
                        raise _ReferenceFailed(reference.outcome.error)
            for index, runs in enumerate(layout):
                beside = [r for r in runs if r in paired]
                progress(
                    f"timed runs {', '.join(runs)}"
                    + (" and equivalence probes" if index == 0 else "")
                    + (
                        (", each" if len(beside) == len(runs) else f"; {', '.join(beside)}")
                        + " beside a run of the reference solution"
                        if beside
                        else ""
                    )
                )
                with following as candidate:  # (closed by the stack too, if we leave early)
                    if candidate.wait_ready():
                        if index + 1 < len(layout):
                            # the next process imports on the untimed CPU while these runs
                            # are timed: its import costs no grading time
                            following = stack.enter_context(start(index + 1))
                        _take_turns(m, reference, candidate)
                        candidate.run_probes()
                _collect(m, candidate.outcome)
                if candidate.outcome.error or (index == 0 and stop_after_probes(m)):
                    break
    except _ReferenceFailed as failed:
        if not failed.file_ran:  # no code of the file had run yet: nothing to blame it for
            raise ReferenceRunError(f"the reference solution: {failed}") from None
        first = next(iter(seeds))
        _blame(spec, (first, by_run[first]), run_timeout_s, str(failed), m)
    return m


class _ReferenceFailed(Exception):
    """The reference failed while the measured file's process was alive beside it;
    `file_ran` says whether any of the file's code had run by then."""

    def __init__(self, why: str | None, file_ran: bool = False) -> None:
        super().__init__(why or "no reason given")
        self.file_ran = file_ran


def _take_turns(m: Measurement, reference: TimedProcess | None, candidate: TimedProcess) -> None:
    """Time the candidate's runs, each beside a reference run of the same id if the reference
    has one (paired_runs): in turns of a tenth of a second on the timed CPU where the machine
    has a freezer (run_in_turns), else one after the other, the reference first in every
    other pair (a run right after another may differ from one after a pause). Whatever CPU
    the candidate uses while the reference has the timed CPU is counted."""
    in_turns = reference is not None and reference.can_freeze and candidate.can_freeze

    def keep(ref_run: RunOutput | None) -> None:
        if ref_run is None or ref_run.wall_s is None:
            why = reference.outcome.error or (ref_run.error if ref_run else "no run left")
            raise _ReferenceFailed(why, file_ran=bool(m.runs) or candidate.started_runs > 0)
        m.reference_runs[ref_run.id] = ref_run

    for _ in range(len(candidate.outcome.runs)):
        reference_first = len(m.reference_runs) % 2 == 0
        paired = reference is not None and reference.next_run_id == candidate.next_run_id
        if paired and in_turns:
            ref_run, run, parked = run_in_turns(reference, candidate, reference_first)
            m.parked_cpu[ref_run.id if ref_run else "?"] = parked
            if run is None or candidate.outcome.error:
                return
            keep(ref_run)
            continue
        if paired and reference_first:
            keep(_reference_run(m, reference, candidate))
        run = candidate.run_next()
        if run is None or candidate.outcome.error:
            return
        if paired and not reference_first:
            keep(_reference_run(m, reference, candidate))


def _reference_run(m: Measurement, reference: TimedProcess, candidate: TimedProcess):
    """The reference's next run alone on the timed CPU, the candidate frozen meanwhile (where
    the machine has a freezer) and its CPU use counted either way."""
    before = candidate.cpu_seconds()
    candidate.freeze(True)
    try:
        run = reference.run_next()
    finally:
        candidate.freeze(False)  # even if freezing timed out half way
    m.parked_cpu[run.id if run else "?"] = candidate.cpu_seconds() - before
    return run


def _blame(spec: TaskSpec, run: tuple, run_timeout_s: float, why: str, m: Measurement) -> None:
    """The reference failed beside the measured file: run it alone. If it works alone, the
    file's process interfered with it (filled memory, say), and that is the file's failure; if
    it fails alone too, the grader itself is broken (an infrastructure error)."""
    alone = execute(spec, spec.reference_path, [run], run_timeout_s, timed=False)
    failed = alone.error or next((r.error for r in alone.runs if r.error), None)
    if failed:
        raise ReferenceRunError(f"the reference solution failed: {why}; alone, too: {failed}")
    m.process_errors.append(
        f"the reference solution, run beside this submission, failed ({why}) but runs cleanly"
        " alone: the submission interfered with it"
    )


def _collect(m: Measurement, outcome: Outcome) -> None:
    for run in outcome.runs:
        m.runs[run.id] = run
    m.probe_arrays.update(outcome.probe_arrays)
    m.probe_errors.update(outcome.probe_errors)
    if outcome.error:
        m.process_errors.append(outcome.error)
