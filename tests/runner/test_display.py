"""The live and plain displays: what a person watching a run sees."""

from __future__ import annotations

import io

from rich.console import Console

from perfgym.runner.display import LiveDisplay, PlainDisplay
from perfgym.runner.summary import EpisodeRecord

RECORD = EpisodeRecord(
    index=0,
    status="fail",
    agent="noop",
    agent_status="submitted",
    speedup=1.02,
    reason="speed.target: speedup 1.02x vs target 3x",
    steps=1,
    wall_seconds=12.0,
)


def test_live_display_tracks_running_episodes_and_prints_finished_ones():
    out = io.StringIO()
    display = LiveDisplay(Console(file=out, force_terminal=True, width=120))
    with display:
        display.event("run_0", "start", {})
        display.event("run_0", "tool", {"step": 3, "name": "profile"})
        assert display.rows["run_0"]["step"] == 3 and display.rows["run_0"]["tool"] == "profile"
        display.event("run_0", "done", {"record": RECORD})
        assert "run_0" not in display.rows
    assert "run_0: FAIL speedup 1.02x" in out.getvalue()


def test_plain_display_writes_one_line_per_event():
    out = io.StringIO()
    display = PlainDisplay(out)
    display.event("noop/run_0", "start", {})
    display.event("noop/run_0", "tool", {"step": 1, "name": "submit_answer"})
    display.event("noop/run_0", "done", {"record": RECORD})
    lines = out.getvalue().splitlines()
    assert lines[0] == "noop/run_0: started"
    assert lines[1] == "noop/run_0: step 1: submit_answer"
    assert lines[2].startswith("noop/run_0: FAIL speedup 1.02x reward 0.000 (1 steps, 12 s)")
