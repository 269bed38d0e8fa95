"""Paired measurement: every timed run sits beside a run of the reference solution, and a
submission that works while the reference is being timed is caught."""

from __future__ import annotations

from itertools import groupby, pairwise
from pathlib import Path

import pytest

from perfgym.grading import grader
from perfgym.grading.measure import (
    PARKED_CPU_ALLOWANCE_S,
    RUN_SEEDS,
    ReferenceRunError,
    hidden_splits,
    measure,
)
from perfgym.grading.report import GradeReport
from perfgym.tasks import get_task

SPIN_AFTER_RETURN = '''

import threading as _threading
import time as _time

_run_pipeline = run_pipeline


def run_pipeline(*args, **kwargs):
    """The honest pipeline, then a thread that burns the CPU after it returns: while the
    grader times the reference solution next to it, which a plain per-run CPU count misses."""
    result = _run_pipeline(*args, **kwargs)

    def burn():
        end = _time.perf_counter() + 3.0
        while _time.perf_counter() < end:
            pass

    _threading.Thread(target=burn, daemon=True).start()
    return result
'''


def _measure(spec, source: Path):
    splits = hidden_splits(spec, "small")
    return measure(spec, source, "small", splits, run_timeout_s=120)


def test_background_work_while_the_reference_is_timed_fails_the_cpu_budget(tmp_path):
    """(The static checks reject threads; this one is measured directly, as if it had slipped
    past them.)"""
    spec = get_task("numpy-rf")
    source = tmp_path / "spin.py"
    source.write_text(spec.reference_path.read_text() + SPIN_AFTER_RETURN)
    m = _measure(spec, source)
    assert set(m.runs) == set(m.reference_runs) == set(RUN_SEEDS)
    assert max(m.parked_cpu.values()) > PARKED_CPU_ALLOWANCE_S
    report = GradeReport(task=spec.id, size="small", submission={})
    baseline = type("Baseline", (), {})()
    baseline.samples = {k: 10.0 for k in RUN_SEEDS}
    baseline.median = 10.0
    baseline.pairs = lambda: {k: (10.0, 1.0) for k in RUN_SEEDS}
    report.timing["baseline"] = {}
    grader._check_speed(spec, "small", m, baseline, report)
    check = report.check("budget.cpu")
    assert check.passed is False and "while waiting" in check.detail


def test_an_honest_file_waits_idle_and_every_run_has_its_reference_pair():
    spec = get_task("numpy-rf")
    m = _measure(spec, spec.reference_path)
    assert set(m.pairs()) == set(RUN_SEEDS)
    assert all(v <= PARKED_CPU_ALLOWANCE_S for v in m.parked_cpu.values()), m.parked_cpu
    # the two took turns on the timed CPU: slots never overlap, runs alternate in time
    slots = sorted(
        [(r.slot, "file") for r in m.runs.values()]
        + [(r.slot, "reference") for r in m.reference_runs.values()]
    )
    assert all(a[0][1] <= b[0][0] for a, b in pairwise(slots))
    order = [who for _, who in slots]
    assert order.count("file") == order.count("reference") == len(RUN_SEEDS)
    assert max(len(list(same)) for _, same in groupby(order)) <= 2


def test_a_failing_reference_is_an_infrastructure_error(monkeypatch, tmp_path):
    spec = get_task("numpy-rf")
    broken = tmp_path / "reference.py"
    broken.write_text("raise SystemExit('broken on purpose')\n")
    monkeypatch.setattr(type(spec), "reference_path", property(lambda _: broken))
    with pytest.raises(ReferenceRunError, match="reference solution"):
        _measure(spec, spec.baseline_path)
