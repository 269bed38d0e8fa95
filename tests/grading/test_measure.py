"""Paired measurement: every timed run sits beside a run of the reference solution; the
measured process is frozen while the reference is timed (its CPU use counted either way), and
a reference that fails beside a submission is blamed on the submission unless it fails alone."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from itertools import groupby, pairwise
from pathlib import Path

import pytest

from perfgym.grading import execution, grader
from perfgym.grading import measure as measure_module
from perfgym.grading.execution import TimedProcess
from perfgym.grading.measure import (
    PARKED_CPU_ALLOWANCE_S,
    ReferenceRunError,
    measure,
    paired_runs,
    processes,
    run_seeds,
)
from perfgym.grading.report import GradeReport
from perfgym.sandbox import cgroup_limits
from perfgym.tasks import get_task

PAIRED = "pytorch-nn"
NEEDS_FREEZER = pytest.mark.skipif(
    "freezer" not in cgroup_limits(), reason="needs the cgroup freezer (runs in turns)"
)

SPIN_AFTER_RETURN = '''

import threading as _threading
import time as _time

_run_pipeline = run_pipeline


def run_pipeline(*args, **kwargs):
    """The honest pipeline, then a thread that burns the CPU after it returns: while the
    grader times the reference solution next to it."""
    result = _run_pipeline(*args, **kwargs)

    def burn():
        end = _time.perf_counter() + 3.0
        while _time.perf_counter() < end:
            pass

    _threading.Thread(target=burn, daemon=True).start()
    return result
'''


def _measure(spec, source: Path):
    return measure(spec, source, "small", run_timeout_s=120)


def _spinner(tmp_path: Path, spec) -> Path:
    """(The static checks reject threads; this is measured directly, as if it slipped past.)"""
    source = tmp_path / "spin.py"
    source.write_text(spec.reference_path.read_text() + SPIN_AFTER_RETURN)
    return source


def _budget_check(spec, m):
    report = GradeReport(task=spec.id, size="small", submission={})
    baseline = type("Baseline", (), {})()
    baseline.samples = {k: 10.0 for k in run_seeds(spec, "small")}
    baseline.median = 10.0
    baseline.pairs = lambda: {k: (10.0, 1.0) for k in run_seeds(spec, "small")}
    report.timing["baseline"] = {}
    grader._check_speed(spec, "small", m, baseline, report)
    return report.check("budget.cpu")


@NEEDS_FREEZER
def test_background_work_gets_no_cpu_while_the_reference_is_timed(tmp_path):
    spec = get_task(PAIRED)
    m = _measure(spec, _spinner(tmp_path, spec))
    assert set(m.runs) == set(m.reference_runs) == set(run_seeds(spec, "small"))
    assert all(v <= PARKED_CPU_ALLOWANCE_S for v in m.parked_cpu.values()), m.parked_cpu


def test_without_a_freezer_background_work_fails_the_cpu_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(TimedProcess, "freeze", lambda self, frozen=True: False)
    monkeypatch.setattr(TimedProcess, "can_freeze", property(lambda self: False))
    spec = get_task(PAIRED)
    m = _measure(spec, _spinner(tmp_path, spec))
    assert max(m.parked_cpu.values()) > PARKED_CPU_ALLOWANCE_S
    check = _budget_check(spec, m)
    assert check.passed is False and "should have been idle" in check.detail


@NEEDS_FREEZER
def test_an_honest_file_waits_idle_and_every_run_has_its_reference_pair():
    spec = get_task(PAIRED)
    m = _measure(spec, spec.reference_path)
    assert set(m.pairs()) == set(run_seeds(spec, "small"))
    assert all(v <= PARKED_CPU_ALLOWANCE_S for v in m.parked_cpu.values()), m.parked_cpu
    assert _budget_check(spec, m).passed is True
    # the file's results are read; the reference's are not (only its times count)
    assert all(r.arrays and r.meta for r in m.runs.values())
    assert not any(r.arrays or r.meta for r in m.reference_runs.values())
    # each run and its reference run shared the timed CPU in turns, and no one else did
    for run_id, run in m.runs.items():
        ref = m.reference_runs[run_id]
        assert run.slot == ref.slot and run.turns >= 2 and ref.turns >= 2, (run, ref)
        assert abs(run.turns - ref.turns) <= 1
        assert run.wall_s + ref.wall_s <= ref.slot[1] - ref.slot[0]
        # neither ran during the other's turns: then each had the CPU for only part of its
        # own turns (CPU time well below them) and the other got free CPU
        assert all(0.8 * r.wall_s <= r.cpu_s <= 1.1 * r.wall_s + 0.02 for r in (run, ref)), (
            run,
            ref,
        )
    slots = sorted({r.slot for r in m.runs.values()})
    assert len(slots) == len(m.runs) and all(a[1] <= b[0] for a, b in pairwise(slots))


@pytest.mark.parametrize(
    "freezer",
    [pytest.param(True, marks=NEEDS_FREEZER, id="in turns"), pytest.param(False, id="alone")],
)
def test_a_run_gets_its_inputs_only_inside_the_timing_slot(monkeypatch, freezer):
    """Waiting for the slot can take seconds when other gradings hold it, and a wake-up takes
    a moment too: a thread left by an earlier run must not find the next run's inputs then.
    In turns, the inputs appear only while their process is frozen."""
    held, given = [], []
    real_slot, real_give = execution.timing_slot, TimedProcess._give

    @contextlib.contextmanager
    def slot():
        with real_slot():
            held.append(True)
            try:
                yield
            finally:
                held.pop()

    def give(self, run):
        frozen = self._proc._cgroup.paths.get("freezer") if freezer else None
        state = (frozen / "freezer.state").read_text().strip() if frozen else "FROZEN"
        given.append((run.id, bool(held) and state == "FROZEN"))
        return real_give(self, run)

    monkeypatch.setattr(execution, "timing_slot", slot)
    monkeypatch.setattr(TimedProcess, "_give", give)
    if not freezer:
        monkeypatch.setattr(TimedProcess, "can_freeze", property(lambda self: False))
    spec = get_task(PAIRED)
    m = _measure(spec, spec.reference_path)
    assert set(m.pairs()) == set(run_seeds(spec, "small"))
    assert len(given) == 2 * len(m.runs) and all(inside for _, inside in given), given


def test_without_a_freezer_the_runs_alternate_whole(monkeypatch):
    monkeypatch.setattr(TimedProcess, "can_freeze", property(lambda self: False))
    spec = get_task(PAIRED)
    m = _measure(spec, spec.reference_path)
    assert set(m.pairs()) == set(run_seeds(spec, "small"))
    # one after the other: slots never overlap, and runs alternate in time
    slots = sorted(
        [(r.slot, "file") for r in m.runs.values()]
        + [(r.slot, "reference") for r in m.reference_runs.values()]
    )
    assert all(a[0][1] <= b[0][0] for a, b in pairwise(slots))
    order = [who for _, who in slots]
    assert order.count("file") == order.count("reference") == len(run_seeds(spec, "small"))
    assert max(len(list(same)) for _, same in groupby(order)) <= 2
    assert all(r.turns == 1 for r in [*m.runs.values(), *m.reference_runs.values()])


@NEEDS_FREEZER
def test_a_size_with_fewer_pairs_times_the_other_runs_alone(monkeypatch):
    spec = get_task(PAIRED)
    monkeypatch.setitem(spec.sizes, "small", replace(spec.size("small"), pairs_per_process=1))
    assert paired_runs(spec, "small") == ("A", "C2")  # the first run of each process
    m = _measure(spec, spec.reference_path)
    assert set(m.runs) == set(run_seeds(spec, "small")) and set(m.pairs()) == {"A", "C2"}
    assert all((r.turns >= 2) == (k in ("A", "C2")) for k, r in m.runs.items()), m.runs
    assert all(r.wall_s is not None for r in m.runs.values())


def test_a_size_timed_without_pairs_runs_no_reference(monkeypatch):
    spec = get_task("numpy-rf")  # (no task turns pairs off now; the option stays)
    monkeypatch.setitem(spec.sizes, "small", replace(spec.size("small"), paired_timing=False))
    m = _measure(spec, spec.reference_path)
    assert (
        set(m.runs) == set(run_seeds(spec, "small")) and not m.reference_runs and not m.parked_cpu
    )


def test_a_reference_failing_everywhere_is_an_infrastructure_error(monkeypatch, tmp_path):
    spec = get_task(PAIRED)
    broken = tmp_path / "reference.py"
    broken.write_text("raise SystemExit('broken on purpose')\n")
    monkeypatch.setattr(type(spec), "reference_path", property(lambda _: broken))
    with pytest.raises(ReferenceRunError, match="reference solution"):
        _measure(spec, spec.baseline_path)


def test_a_reference_failing_only_beside_a_submission_fails_the_submission(monkeypatch):
    """A submission could make the reference's paired run fail (fill memory or disk) to turn
    its grading into an infrastructure error, which the runner leaves out of the pass rate and
    replays. The reference is run alone then: it works, so the submission is to blame."""

    def interfered(m, reference, candidate):
        raise measure_module._ReferenceFailed("killed by the kernel's OOM killer", file_ran=True)

    monkeypatch.setattr(measure_module, "_take_turns", interfered)
    spec = get_task(PAIRED)
    m = _measure(spec, spec.reference_path)
    assert any("interfered" in e for e in m.process_errors), m.process_errors


def test_no_process_sees_a_seed_twice_and_the_second_imports_during_the_first_runs(
    monkeypatch,
):
    """A repeat of a seed in one process could be memoized, so each process runs every seed
    once; the second process is started (and imports) while the first one's runs are timed,
    and the grader makes the hidden data while the first two import."""
    spec = get_task(PAIRED)
    for size in spec.sizes:
        first, second = processes(spec, size)
        assert len(set(first)) == len(first) >= 3 and set(second) == {f"{r}2" for r in first}
        assert {run_seeds(spec, size)[r] for r in second} == set(first)
        # each seed's two runs follow different runs (cheat_unseeded_weights passed otherwise)
        after = [
            {run[0]: prev and prev[0] for prev, run in zip((None, *runs[:-1]), runs, strict=True)}
            for runs in (first, second)
        ]
        assert all(after[0][seed] != after[1][seed] for seed in after[0]), after
    events = []
    real_init, real_give = TimedProcess.__init__, TimedProcess._give

    def init(self, spec, source, runs, *args, **kwargs):
        real_init(self, spec, source, runs, *args, **kwargs)
        who = "reference" if source == spec.reference_path and len(runs) > 3 else "file"
        events.append(("start", who, tuple(runs)))

    def give(self, run):  # (every timed run gets its inputs here, alone or in turns)
        events.append(("run", run.id))
        return real_give(self, run)

    def splits(*args, **kwargs):
        events.append(("splits",))
        return real_splits(*args, **kwargs)

    real_splits = measure_module.hidden_splits
    monkeypatch.setattr(TimedProcess, "__init__", init)
    monkeypatch.setattr(TimedProcess, "_give", give)
    monkeypatch.setattr(measure_module, "hidden_splits", splits)
    m = _measure(spec, spec.reference_path)
    assert set(m.pairs()) == set(run_seeds(spec, "small")) and set(m.splits) == {"A", "B", "C"}
    starts = [i for i, e in enumerate(events) if e[0] == "start" and e[1] == "file"]
    first_runs = [i for i, e in enumerate(events) if e[0] == "run"]
    assert len(starts) == 2 and starts[1] < first_runs[0], events
    assert [e[0] for e in events[:3]] == ["start", "start", "splits"], events
