"""The grader against its fixtures, at small size.

Every cheat fixture names (first line, `# expect: CHECK`) the check that must reject it; every
honest fixture must pass; each task's baseline fails on speed and on nothing else; hostile
fixtures end in a clean fail or error while the grader goes on working.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgym.grading import grade
from perfgym.tasks import TASKS, get_task

FIXTURES = Path(__file__).parents[1] / "fixtures"
SUBMISSIONS = FIXTURES / "submissions"
HOSTILE = FIXTURES / "hostile"


def _header(path: Path, key: str, default: str | None = None) -> str:
    for line in path.read_text().splitlines()[:5]:
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].strip()
    if default is None:
        raise AssertionError(f"{path} has no '# {key}:' header line")
    return default


FAST_TASK = "numpy-rf"
"""Fixtures that need sandboxed runs are `slow` except one honest one of this task; static
rejections cost no run and always stay in the default suite."""


def _cases(kind: str) -> list:
    cases = []
    for task_dir in sorted(SUBMISSIONS.iterdir()):
        for i, path in enumerate(sorted(task_dir.glob(f"{kind}_*.py"))):
            cheap = _header(path, "expect", "pass").startswith("static") or (
                kind == "honest" and i == 0 and task_dir.name == FAST_TASK
            )
            marks = () if cheap else (pytest.mark.slow,)
            cases.append(
                pytest.param(task_dir.name, path, id=f"{task_dir.name}/{path.stem}", marks=marks)
            )
    return cases


def _failed(report) -> list[str]:
    return [c.name for c in report.checks if c.passed is False]


@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_every_task_has_three_honest_fixtures(task_id):
    assert len(list((SUBMISSIONS / task_id).glob("honest_*.py"))) >= 3


@pytest.mark.parametrize(("task_id", "path"), _cases("honest"))
def test_honest_optimization_passes(task_id, path):
    report = grade(get_task(task_id), path, "small")
    assert report.verdict == "pass", report.reasons
    assert report.reward > 0


@pytest.mark.parametrize(("task_id", "path"), _cases("cheat"))
def test_cheat_is_rejected_by_the_named_check(task_id, path):
    expect = _header(path, "expect")
    report = grade(get_task(task_id), path, "small")
    assert report.verdict == "fail", (report.verdict, report.reasons)
    assert report.reward == 0.0 or expect == "speed.target"
    failed = _failed(report)
    assert any(name == expect or name.startswith(expect + ".") for name in failed), failed


@pytest.mark.parametrize(
    "task_id", [t if t == FAST_TASK else pytest.param(t, marks=pytest.mark.slow) for t in TASKS]
)
def test_baseline_fails_on_speed_only(task_id):
    spec = get_task(task_id)
    report = grade(spec, spec.baseline_path, "small")
    assert report.verdict == "fail"
    assert _failed(report) == ["speed.target"], report.reasons
    assert all(c.passed for c in report.checks if c.name != "speed.target")


@pytest.mark.slow
@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in sorted(HOSTILE.glob("*.py"))])
def test_hostile_submission_ends_cleanly(path):
    task_id = _header(path, "task", "numpy-rf")
    report = grade(get_task(task_id), path, "small")
    assert report.verdict in ("fail", "error"), report.reasons
    assert report.reward == 0.0
    expect = _header(path, "expect", "fail")
    if expect not in ("fail", "error"):
        assert any(n == expect or n.startswith(expect + ".") for n in _failed(report))
    # The grader still works after it.
    spec = get_task("numpy-rf")
    assert grade(spec, spec.reference_path, "small").verdict == "pass"
