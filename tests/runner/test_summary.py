"""The run summary: counts, the Wilson interval, errors kept out of the pass rate."""

from __future__ import annotations

import json
import math

import pytest

from perfgym.runner.summary import (
    EpisodeRecord,
    read_episode,
    render_summary,
    summarize,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (4, 4, 0.5101, 1.0)],
)
def test_wilson_interval_matches_known_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert math.isclose(got[0], lo, abs_tol=1e-4)
    assert math.isclose(got[1], hi, abs_tol=1e-4)


def test_wilson_interval_without_data_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _record(i, status, **kw):
    return EpisodeRecord(index=i, status=status, agent="x", agent_status="submitted", **kw)


def test_errors_are_counted_apart_and_stay_out_of_the_pass_rate():
    records = [
        _record(0, "pass", speedup=12.0, reward=0.8, tool_counts={"profile": 1}),
        _record(1, "fail", speedup=1.0, reason_kind="speed.target"),
        _record(2, "fail", reason_kind="probe.activation"),
        _record(3, "error", reason="the model API failed"),
    ]
    s = summarize(records, planned=5, config={"task": "t", "size": "small", "agent": "x"})
    assert (s["passed"], s["failed"], s["errored"]) == (1, 2, 1)
    assert s["pass_rate"] == pytest.approx(1 / 3)
    assert s["pass_rate_95"] == pytest.approx(list(wilson_interval(1, 3)))
    assert s["failure_reasons"] == {"speed.target": 1, "probe.activation": 1}
    assert s["errors"] == [{"run": 3, "reason": "the model API failed"}]
    assert s["speedup"]["median"] == pytest.approx(6.5)
    assert s["profiler_used"]["episodes"] == 1
    assert s["complete"] is False
    text = render_summary(s)
    assert "passed 1, failed 2, errored 1" in text
    assert "incomplete" in text


def test_episode_record_round_trips_and_a_damaged_file_reads_as_unfinished(tmp_path):
    rec = _record(7, "pass", speedup=3.0, tokens={"input_tokens": 5})
    rec.write(tmp_path)
    assert read_episode(tmp_path) == rec
    (tmp_path / "episode.json").write_text(json.dumps({"index": 7})[:-3])
    assert read_episode(tmp_path) is None
