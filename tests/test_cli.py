"""The CLI contract other tools rely on: JSON shapes, exit codes, one-sentence errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perfgym.cli import main

PERFGYM = [sys.executable, "-m", "perfgym.cli"]


def test_tasks_json_lists_the_three_tasks(capsys):
    assert main(["tasks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["numpy-rf", "pytorch-nn", "complex-pipeline"]
    for r in rows:
        assert {"id", "title", "baseline_path", "reference_path", "target_speedup"} <= r.keys()
        assert Path(r["baseline_path"]).is_file() and Path(r["reference_path"]).is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["grade", "--task", "numpy-rf", "/no/such/file.py"], "no such file"),
        (["grade", "--task", "nope", __file__], "unknown task 'nope'"),
        (["grade", "--task", "numpy-rf", "--size", "huge", __file__], "no size 'huge'"),
        (["baseline", "--task", "nope"], "unknown task"),
    ],
)
def test_user_errors_are_one_sentence_and_exit_2(argv, message):
    proc = subprocess.run([*PERFGYM, *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_syntax_error_is_a_graded_fail_with_json(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def run_pipeline(:\n")
    proc = subprocess.run(
        [*PERFGYM, "grade", "--task", "numpy-rf", "--size", "small", "--json", "--quiet", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["verdict"] == "fail" and report["reward"] == 0.0
    assert report["checks"][0]["name"] == "static.syntax" and not report["checks"][0]["passed"]
    assert report["submission"]["sha256"]


def test_grade_json_pass_and_out_dir(tmp_path):
    from perfgym.grading.measure import run_seeds
    from perfgym.tasks import get_task

    ref = get_task("numpy-rf").reference_path
    proc = subprocess.run(
        [
            *PERFGYM,
            "grade",
            "--task",
            "numpy-rf",
            "--size",
            "small",
            "--json",
            "--quiet",
            "--out",
            str(tmp_path),
            str(ref),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == json.loads((tmp_path / "grade.json").read_text())
    assert report["verdict"] == "pass"
    t = report["timing"]
    runs = run_seeds(get_task("numpy-rf"), "small")
    assert t["candidate"]["samples"].keys() == t["baseline"]["samples"].keys() == set(runs)
    lo, hi = t["speedup_interval_95"]
    assert lo <= t["speedup"] <= hi
    assert {"sandbox", "libraries", "cpu_budget"} <= report["environment"].keys()
    assert [a["seed"] for a in report["accuracy"]["per_seed"]] == ["A", "B", "C"]
