"""check: the grader on the public seed, reported compactly."""

from __future__ import annotations

import asyncio

import pytest

from perfgym.agent.tools.check import format_report
from perfgym.grading import GradeReport


def test_format_report_lists_every_check_and_the_speedup():
    report = GradeReport(task="complex-pipeline", size="small", submission={}, verdict="fail")
    report.target_speedup = 3.0
    report.add("static.names", True, "all required names defined")
    report.add("probe.normalize_features", False, "output 0: max relative error 0.5")
    report.add("e2e.ran", None, "skipped after an earlier failure")
    report.reasons.append("infrastructure: something else")
    report.timing = {
        "baseline": {"lower_quartile": 12.0},
        "candidate": {"lower_quartile": 3.0},
        "speedup": 4.0,
        "speedup_interval_95": [3.5, 4.5],
    }
    text = format_report(report, "optimized.py")
    lines = text.splitlines()
    assert lines[0] == "check of optimized.py on the public seed (size small): FAIL"
    assert lines[1] == (
        "speedup 4.00x (95% interval 3.50-4.50), target 3x; "
        "run time 3.00 s vs baseline 12.00 s (second fastest of five runs)"
    )
    assert "  [pass] static.names: all required names defined" in lines
    assert "  [FAIL] probe.normalize_features: output 0: max relative error 0.5" in lines
    assert "  [skip] e2e.ran: skipped after an earlier failure" in lines
    assert "problems: infrastructure: something else" in lines
    assert "probe.normalize_features: output" not in text.split("problems:")[1]


def test_check_on_a_missing_file_is_an_error(make_toolbox):
    box = make_toolbox(check=True)
    result = asyncio.run(box.call("check", {}))
    assert result.is_error and "'optimized.py' does not exist" in result.content


def test_check_reports_static_failures_quickly(make_toolbox, workspace):
    (workspace / "optimized.py").write_text("print('no pipeline here')\n")
    box = make_toolbox(check=True)
    result = asyncio.run(box.call("check", {"path": "optimized.py"}))
    assert not result.is_error, result.content
    assert result.content.startswith("check of optimized.py on the public seed (size small): FAIL")
    assert "[FAIL]" in result.content


@pytest.mark.slow
def test_check_passes_the_reference(make_toolbox, workspace, spec):
    (workspace / "optimized.py").write_bytes(spec.reference_path.read_bytes())
    box = make_toolbox(check=True)
    result = asyncio.run(box.call("check", {}))
    assert not result.is_error, result.content
    assert result.content.startswith("check of optimized.py on the public seed (size small): PASS")
    assert "speedup" in result.content and "[FAIL]" not in result.content
