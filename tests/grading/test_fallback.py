"""Without bubblewrap the grader still works, in the weaker sandbox, and says so."""

from __future__ import annotations

from perfgym.grading import grade
from perfgym.tasks import get_task


def test_fallback_sandbox_grades_and_is_recorded(monkeypatch):
    monkeypatch.setenv("PERFGYM_SANDBOX", "fallback")
    spec = get_task("numpy-rf")
    report = grade(spec, spec.reference_path, "small")
    assert report.environment["sandbox"] == "fallback"
    assert "FALLBACK" in report.environment["sandbox_note"]
    assert report.verdict == "pass", report.reasons
