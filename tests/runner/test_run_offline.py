"""`perfgym run` end to end with the offline agents: real tools, real grading (small size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from run_artifacts import assert_no_overlap, read_summary, timed_slots

from perfgym.cli import main
from perfgym.grading.measure import run_seeds
from perfgym.tasks import get_task

TASK = ["--task", "numpy-rf", "--size", "small", "--plain"]


def test_reference_agent_passes_with_every_artifact_and_no_overlapping_timing(tmp_path, capsys):
    out = tmp_path / "ref"
    argv = ["run", *TASK, "--agent", "reference", "--runs", "2", "--concurrency", "2"]
    assert main([*argv, "--output", str(out)]) == 0
    s = read_summary(out)
    assert (s["passed"], s["failed"], s["errored"], s["complete"]) == (2, 0, 0, True)
    assert s["pass_rate_95"][0] > 0.3 and s["profiler_used"]["episodes"] == 2
    for i in range(2):
        ep = out / f"run_{i}"
        events = [json.loads(line) for line in (ep / "transcript.jsonl").read_text().splitlines()]
        tools = [
            b["name"]
            for e in events
            if e["type"] == "assistant"
            for b in e["content"]
            if b["type"] == "tool_use"
        ]
        assert tools == [
            "list_files",
            "read_file",
            "profile",
            "write_file",
            "check",
            "submit_answer",
        ]
        assert (ep / "workspace" / "optimized.py").read_text() == (ep / "submission.py").read_text()
        assert any((ep / "profiles").iterdir()), "the profile was not saved"
        assert json.loads((ep / "grade.json").read_text())["verdict"] == "pass"
        record = json.loads((ep / "episode.json").read_text())
        assert record["status"] == "pass" and record["tool_counts"]["profile"] == 1
    slots = timed_slots(out)
    assert len(slots) == 2 * len(run_seeds(get_task("numpy-rf"), "small"))
    assert_no_overlap(slots)
    printed = capsys.readouterr().out
    assert "passed 2, failed 0" in printed and "pass rate 100%" in printed


def test_noop_fails_on_speed_alone_report_reprints_it_and_replay_plays_it_again(tmp_path, capsys):
    out = tmp_path / "noop"
    assert main(["run", *TASK, "--agent", "noop", "--output", str(out)]) == 0
    s = read_summary(out)
    assert (s["passed"], s["failed"]) == (0, 1)
    assert s["failure_reasons"] == {"speed.target": 1}
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert "failure reasons: speed.target x1" in capsys.readouterr().out
    # The replay agent plays the saved transcript's tool calls again, through the real tools.
    again = tmp_path / "replay"
    transcript = out / "run_0" / "transcript.jsonl"
    argv = ["run", *TASK, "--agent", "replay", "--replay", str(transcript), "--output", str(again)]
    assert main(argv) == 0
    assert read_summary(again)["failure_reasons"] == {"speed.target": 1}
    replayed = json.loads((again / "run_0" / "episode.json").read_text())
    assert replayed["agent"] == "replay" and replayed["tool_counts"] == {"submit_answer": 1}


def test_resume_plays_only_the_unfinished_episodes(tmp_path):
    out = tmp_path / "resume"
    assert main(["run", *TASK, "--agent", "noop", "--runs", "2", "--output", str(out)]) == 0
    kept = (out / "run_0" / "episode.json").read_text()
    # As if the run had been killed while episode 1 was being graded.
    (out / "run_1" / "episode.json").unlink()
    (out / "run_1" / "grade.json").unlink()
    assert read_summary(out)["finished"] == 2  # stale until the resume rewrites it
    assert main(["run", "--resume", "--output", str(out), "--plain"]) == 0
    assert (out / "run_0" / "episode.json").read_text() == kept
    assert (out / "run_1" / "grade.json").is_file()
    assert read_summary(out)["finished"] == 2 and read_summary(out)["complete"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--task", "nope"], "unknown task 'nope'"),
        (["run", "--task", "numpy-rf", "--size", "huge"], "no size 'huge'"),
        (["run", "--agent", "claude"], "ANTHROPIC_API_KEY is not set"),
        (["run", "--agent", "replay"], "--agent replay needs --replay"),
        (["run", "--runs", "0"], "--runs must be at least 1"),
        (["run", "--resume", "--output", "/no/such/run"], "holds no run to resume"),
        (["report", "/no/such/run"], "not a perfgym run directory"),
    ],
)
def test_run_usage_errors_are_one_sentence_and_exit_2(argv, message, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "perfgym.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_harness_fault_is_an_error_episode_and_the_run_goes_on(tmp_path, monkeypatch):
    from perfgym.runner import run as run_module

    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_module, "play_episode", broken)
    out = tmp_path / "broken"
    assert main(["run", *TASK, "--agent", "noop", "--runs", "2", "--output", str(out)]) == 0
    s = read_summary(out)
    assert (s["errored"], s["complete"], s["pass_rate"]) == (2, True, None)
    assert s["errors"][0]["reason"] == "the harness failed: RuntimeError: disk full"
    assert "RuntimeError: disk full" in (out / "run_1" / "harness_error.txt").read_text()
