"""`perfgym run --agent claude` through the real SDK against the fake Messages API: a scripted
Claude that reads, profiles, writes and submits; an API that keeps failing; Ctrl-C; and
concurrency that speeds a run up without letting two timed phases overlap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fake_messages_api import message, server_error, tool_use
from run_artifacts import assert_no_overlap, read_summary, timed_slots

from perfgym.cli import main
from perfgym.grading.measure import run_seeds
from perfgym.tasks import get_task

TASK = ["--task", "numpy-rf", "--size", "small", "--plain"]
REFERENCE = get_task("numpy-rf").reference_path.read_text()


def scripted_claude(steps, latency: float = 0.0):
    """A stateless Claude: the reply to a conversation depends only on how many assistant turns
    it holds, so any number of concurrent episodes can share one fake server."""

    def respond(body):
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if turn >= len(steps):
            return message("I am done.", latency=latency)
        name, args = steps[turn]
        return message(f"Step {turn}: {name}.", tool_use(name, args), latency=latency)

    return respond


SOLVE = [
    ("list_files", {"path": "."}),
    ("read_file", {"path": "baseline.py"}),
    ("profile", {"path": "baseline.py", "args": ["--n-samples", "200"]}),
    ("write_file", {"path": "optimized.py", "content": REFERENCE}),
    ("submit_answer", {"path": "optimized.py"}),
]


@pytest.fixture
def claude_env(fake_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.url)
    return fake_api


def test_scripted_claude_reads_profiles_writes_and_submits(claude_env, tmp_path):
    claude_env.fallback = scripted_claude(SOLVE)
    out = tmp_path / "claude"
    assert main(["run", *TASK, "--agent", "claude", "--no-check", "--output", str(out)]) == 0
    s = read_summary(out)
    assert (s["passed"], s["failed"], s["errored"]) == (1, 0, 0)
    assert s["tokens"]["input_tokens"] == 100 * len(SOLVE)  # the fake API's usage per reply
    assert s["cost_usd"] > 0 and s["profiler_used"]["episodes"] == 1
    first = claude_env.requests[0]
    assert first["model"] == "claude-haiku-4-5"
    tool_names = {t["name"] for t in first["tools"]}
    assert "check" not in tool_names and {"profile", "submit_answer"} <= tool_names
    # The profile's hot spots went back to the model as the tool result.
    profile_result = claude_env.requests[3]["messages"][-1]["content"][0]
    assert profile_result["type"] == "tool_result" and "extract_features" in str(profile_result)
    events = [json.loads(x) for x in (out / "run_0" / "transcript.jsonl").read_text().splitlines()]
    kinds = {e["type"] for e in events}
    assert {"assistant", "tool_result", "usage"} <= kinds
    assert not claude_env.invalid


def test_an_api_that_keeps_failing_is_an_error_not_a_failure_and_the_run_goes_on(
    claude_env, tmp_path
):
    claude_env.fallback = lambda body: server_error()
    out = tmp_path / "down"
    argv = ["run", *TASK, "--agent", "claude", "--runs", "2", "--api-retries", "1"]
    assert main([*argv, "--api-backoff", "0.01", "--output", str(out)]) == 0
    s = read_summary(out)
    assert (s["passed"], s["failed"], s["errored"]) == (0, 0, 2)
    assert s["pass_rate"] is None and s["complete"]
    assert all("the model API failed" in e["reason"] for e in s["errors"])
    assert len(claude_env.requests) == 4  # two episodes, one try and one retry each


def test_ctrl_c_leaves_a_valid_partial_summary_and_resume_finishes_the_run(claude_env, tmp_path):
    # Each episode submits the baseline after a slow first reply; Ctrl-C comes during the
    # second episode, after the first one is graded.
    claude_env.fallback = scripted_claude([("submit_answer", {"path": "baseline.py"})], 1.0)
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfgym.cli",
            "run",
            *TASK,
            "--agent",
            "claude",
            "--runs",
            "3",
            "--output",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 240
    while not (out / "run_0" / "episode.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "episode 0 never finished"
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "--resume" in stderr and "Traceback" not in stderr
    s = read_summary(out)
    assert s["finished"] == 1 and not s["complete"] and s["planned"] == 3
    assert not (out / "run_2").exists()
    graded_first = (out / "run_0" / "grade.json").read_text()
    # The killed episode 1 left a transcript but no final record: resume plays it again, and 2.
    assert (out / "run_1" / "transcript.jsonl").exists()
    assert main(["run", "--resume", "--output", str(out), "--plain"]) == 0
    s = read_summary(out)
    assert s["finished"] == 3 and s["complete"] and s["failed"] == 3
    assert (out / "run_0" / "grade.json").read_text() == graded_first


@pytest.mark.slow
@pytest.mark.alone
def test_concurrency_speeds_up_a_run_and_timed_phases_never_overlap(claude_env, tmp_path):
    # 1 s per reply and 30 replies per episode: the model's latency dominates the episode, as
    # it does with a real API; grading (about 8 s here: two sandboxed processes import
    # scikit-learn, five timed runs) comes on top, and its timed phases stay one at a time.
    steps = [("list_files", {"path": "."})] * 28 + SOLVE[3:]
    claude_env.fallback = scripted_claude(steps, latency=1.0)
    walls = {}
    for k in (1, 8):
        out = tmp_path / f"c{k}"
        argv = ["run", *TASK, "--agent", "claude", "--runs", "8", "--concurrency", str(k)]
        argv += ["--max-steps", "35"]
        start = time.monotonic()
        assert main([*argv, "--no-check", "--output", str(out)]) == 0
        walls[k] = time.monotonic() - start
        s = read_summary(out)
        assert s["passed"] == 8, s
        assert len(timed_slots(out)) == 8 * len(run_seeds(get_task("numpy-rf"), "small"))
        assert_no_overlap(timed_slots(out))
    print(
        f"concurrency 1: {walls[1]:.1f} s, concurrency 8: {walls[8]:.1f} s, "
        f"speedup {walls[1] / walls[8]:.2f}x"
    )
    assert walls[1] >= 3 * walls[8]
    assert claude_env.max_in_flight >= 6
